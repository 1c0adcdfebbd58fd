"""The model as training sees it: precision, placement, quantization and the PEFT wrapper."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from workbench.config.hf_arguments import RunFacts, build_from_pretrained_arguments, build_lora_config
from workbench.config.optimizers import OPTIMIZERS
from workbench.data.chat_templates import new_token_peft_kwargs, resize_embeddings_for
from workbench.errors import WorkbenchError
from workbench.models import keep_output_layer_input_contiguous, safetensors_model_path
from workbench.training.adapter_compute import keep_adapter_inputs_in_compute_dtype, share_dropout_masks

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from workbench.config.schema import RunConfig
    from workbench.models import ResolvedModel


def check_method_supported(config: "RunConfig", on_gpu: bool) -> None:
    """Fail early, in one line, where the method cannot run on this machine."""
    if config.method.type == "qlora":
        if not on_gpu:
            raise WorkbenchError(
                "method.type: qlora needs a CUDA GPU (bitsandbytes 4-bit kernels) and this run is on the CPU; "
                "use method.type: lora"
            )
        if importlib.util.find_spec("bitsandbytes") is None:
            raise WorkbenchError(
                "method.type: qlora needs the bitsandbytes package; run `pip install 'sft-workbench[gpu]'` or use lora"
            )
    if OPTIMIZERS[config.optimization.optim].bitsandbytes:
        if not on_gpu or importlib.util.find_spec("bitsandbytes") is None:
            raise WorkbenchError(
                f"optimization.optim: {config.optimization.optim} needs a CUDA GPU and bitsandbytes; use adamw_torch"
            )


def build_training_model(
    config: "RunConfig",
    resolved: "ResolvedModel",
    facts: RunFacts,
    *,
    extra_peft_kwargs: "Mapping[str, Any] | None" = None,
    vocab_size: int | None = None,
    new_token_ids: "Sequence[int]" = (),
) -> "PreTrainedModel":
    """Load the base model and make it trainable per `config.method` (LoRA / QLoRA / full), with
    the `from_pretrained` arguments and LoraConfig that `workbench.config.hf_arguments` builds.

    Args:
        extra_peft_kwargs: further LoraConfig fields that depend on the run (see `lora_config_kwargs`).
        vocab_size: the prepared tokenizer's size; the embeddings grow to it when the chat
            template added tokens (`resize_embeddings_for`).
        new_token_ids: the tokens the chat template added: LoRA trains their embedding (and
            untied output) rows as PEFT trainable tokens; full fine-tuning trains them anyway.
    """
    from transformers import AutoModelForCausalLM, set_seed

    path = safetensors_model_path(resolved)
    model = AutoModelForCausalLM.from_pretrained(path, **build_from_pretrained_arguments(config, facts))
    keep_output_layer_input_contiguous(model)  # the deck's generations during training
    if vocab_size is not None and vocab_size > model.get_input_embeddings().weight.shape[0]:
        set_seed(config.optimization.seed)  # new rows start the same way in every run of one config
        resize_embeddings_for(model, vocab_size)
    if config.method.type == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.optimization.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    model.config.use_cache = False  # the KV cache is useless in training and costs memory

    lora = build_lora_config(config, {**(extra_peft_kwargs or {}), **new_token_peft_kwargs(model, new_token_ids)})
    if lora is None:
        model.train()
        return model

    from peft import get_peft_model

    # The adapters' A matrices start random: seed them, or two runs of one config train differently.
    set_seed(config.optimization.seed)
    model = get_peft_model(model, lora)
    tune_adapter_compute(model, facts)
    model.train()
    return model


def tune_adapter_compute(model, facts: RunFacts) -> None:
    """Adapters compute on the activations as autocast has them, and on the CPU share one dropout
    mask per input (measured in `workbench.training.adapter_compute`)."""
    if facts.precision.autocast is not None:
        keep_adapter_inputs_in_compute_dtype(model)
    if not facts.on_gpu:
        share_dropout_masks(model)


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = total = 0
    for parameter in model.parameters():
        count = parameter.numel()
        # bitsandbytes 4-bit weights pack two values per byte
        if parameter.__class__.__name__ == "Params4bit":
            count *= 2
        total += count
        if parameter.requires_grad:
            trainable += count
    return trainable, total
