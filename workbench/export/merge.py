"""The run's weights as one plain model: base + adapter merged in fp32 (or a full fine-tune as saved)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workbench.data.chat_templates import resize_embeddings_for
from workbench.export.source import ExportSource
from workbench.inference.prompting import load_saved_tokenizer
from workbench.models import ProgressCallback, load_model, quiet_transformers

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def _no_progress(stage: str, fraction: float | None) -> None:
    pass


def merged_model(source: ExportSource, progress: ProgressCallback = _no_progress) -> "PreTrainedModel":
    """The model to export, in fp32 on the CPU.

    An adapter is merged in fp32 whatever the base is stored in, so casting to the export dtype
    rounds once. The tuner layers merge one by one through PEFT's own `merge()` so the merge can report
    progress (`merge_and_unload` only offers a tqdm bar); the rows of tokens a chat template added
    are tuner layers too (PEFT's trainable tokens), so they merge the same way.
    """
    import torch
    from peft import PeftModel
    from peft.tuners.tuners_utils import BaseTunerLayer

    quiet_transformers()
    trust = source.config.model.trust_remote_code
    if not source.is_adapter:
        progress(f"Loading the fine-tuned model from {source.weights_label}", None)
        return load_model(source.weights, dtype="fp32", device="cpu", trust_remote_code=trust)
    progress(f"Loading the base model {source.base_display_name}", None)
    base = load_model(source.base_path, dtype="fp32", device="cpu", trust_remote_code=trust)
    # tokens the run's chat template added: the adapter carries their rows for a base of its tokenizer's size
    resize_embeddings_for(base, len(load_saved_tokenizer(source.tokenizer_dir) or ()))
    wrapped = PeftModel.from_pretrained(base, source.weights)
    layers = [module for module in wrapped.modules() if isinstance(module, BaseTunerLayer)]
    stage = f"Merging {source.weights_label} into {source.base_display_name}"
    with torch.no_grad():
        for index, layer in enumerate(layers):
            layer.merge()
            progress(stage, (index + 1) / len(layers))
        merged = wrapped.unload()  # the tuner layers go; their base layers already hold the merge
    return merged.eval()
