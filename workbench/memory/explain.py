"""The estimate in plain words, for people who do not train models, and the rule of thumb beside it."""

from __future__ import annotations

from dataclasses import dataclass

from workbench.config.optimizers import OPTIMIZERS
from workbench.memory.estimator import MemoryEstimate, quantized_bits_per_weight
from workbench.units import format_bytes

# Articles on fine-tuning quote "about 10-12x the parameter count" (bytes per parameter) for full
# fine-tuning, e.g. ~12 GB for a 1B model.
RULE_OF_THUMB_BYTES_PER_PARAM = (10, 12)


@dataclass(frozen=True)
class RuleOfThumb:
    low_bytes: int
    high_bytes: int
    text: str


def _billions(count: int) -> str:
    if count >= 10**9:
        return f"{count / 10**9:.1f} billion"
    return f"{count / 10**6:.0f} million"


def rule_of_thumb(estimate: MemoryEstimate) -> RuleOfThumb:
    """The 10-12 bytes-per-parameter rule for full fine-tuning, and why this configuration differs."""
    params = estimate.spec.total_params
    low, high = (share * params for share in RULE_OF_THUMB_BYTES_PER_PARAM)
    per_param = estimate.persistent_bytes_per_param
    inputs = estimate.inputs
    if inputs.method == "full":
        reason = {
            "fp32": "fp32 training keeps 4-byte weights, 4-byte gradients and 8 bytes of Adam state",
            "bf16": "pure bf16 keeps 2-byte weights, gradients and Adam moments (about 8 bytes)",
            "fp16": "pure fp16 keeps 2-byte weights, gradients and Adam moments (about 8 bytes)",
        }.get(inputs.precision, "mixed precision keeps fp32 master weights, a 16-bit working copy, "
                                "fp32 gradients and Adam state (16-18 bytes)")
        state = OPTIMIZERS[inputs.optimizer].state
        if state == "8bit":
            reason += ", less 6 bytes with 8-bit Adam"
        elif state == "none":
            reason += ", less the 8 bytes of Adam state with plain SGD"
    elif inputs.method == "qlora":
        reason = ("QLoRA stores the frozen linear layers in about 4 bits per weight (embeddings and the output "
                  "layer are not quantized) and trains only small adapters")
    elif inputs.method == "8bit-base":
        reason = "the frozen base is stored in 8 bits (about 1 byte per weight) and only small adapters train"
    else:
        reason = "LoRA freezes the base (no gradients or optimizer state for it) and trains only small adapters"
    activations = estimate.activations + estimate.logits
    text = (
        f"Rule of thumb for full fine-tuning: 10-12 bytes per parameter = {format_bytes(low)}-{format_bytes(high)}. "
        f"This configuration holds {per_param:.1f} bytes per parameter before activations: {reason}. "
        f"Activations and logits ({format_bytes(activations)} at batch {inputs.batch_size} x {inputs.seq_len} "
        "tokens) are not in the rule at all."
    )
    return RuleOfThumb(int(low), int(high), text)


def plain_explanation(estimate: MemoryEstimate) -> list[str]:
    """A few short paragraphs a non-specialist can follow."""
    spec, inputs = estimate.spec, estimate.inputs
    lines = [f"{spec.name} is {_billions(spec.total_params)} numbers (parameters); the model is those numbers."]
    if inputs.method == "full":
        lines.append(
            f"Full fine-tuning adjusts every one of them. Storing them takes {format_bytes(estimate.weights)}; "
            f"for each, training also keeps a gradient (which way to nudge it, {format_bytes(estimate.gradients)}) "
            f"and the optimizer's running averages ({format_bytes(estimate.optimizer_state)})."
        )
    else:
        share = estimate.trainable_params / spec.total_params
        if inputs.method == "qlora":
            storage = (f"compresses most of them to about {quantized_bits_per_weight(inputs.double_quant):.2f} "
                       "bits per number (the vocabulary tables are not compressed)")
        elif inputs.method == "8bit-base":
            storage = "stores most of them in 8 bits per number"
        else:
            storage = "keeps them as they are"
        lines.append(
            f"{'QLoRA' if inputs.method == 'qlora' else 'LoRA'} freezes them, {storage}, and trains small add-on "
            f"matrices instead: {estimate.trainable_params:,} numbers ({share:.2%} of the model). "
            f"Weights take {format_bytes(estimate.weights)}; the add-ons' gradients and optimizer state only "
            f"{format_bytes(estimate.gradients + estimate.optimizer_state)}."
        )
    lines.append(
        f"While learning from a batch ({inputs.batch_size} x {inputs.seq_len} tokens) the model keeps every "
        f"layer's intermediate results for the backward pass: {format_bytes(estimate.activations)}"
        + (" (gradient checkpointing keeps only each layer's input and recomputes the rest)"
           if inputs.gradient_checkpointing else "")
        + f". Scoring all {spec.vocab_size:,} vocabulary words at every position (the logits) and their "
        f"gradients take {format_bytes(estimate.logits)}."
    )
    if estimate.peak_phase == "backward":
        moment = "at the start of the backward pass, when all of those intermediate results are still alive"
    elif estimate.peak_phase == "evaluation":
        moment = (f"while it scores the validation data, {inputs.eval_batch_size} sequences at a time: their "
                  f"logits take {format_bytes(estimate.evaluation)}")
    else:
        moment = "in the optimizer step, when every gradient and the optimizer's scratch copies are alive"
    if inputs.device == "cpu":
        lines.append(f"On the CPU the figure is the whole training process: it includes the "
                     f"{format_bytes(estimate.framework_overhead)} that Python, PyTorch and the other libraries "
                     "hold before training starts.")
    lines.append(f"Memory peaks {moment}: {format_bytes(estimate.total_bytes)} per device.")
    return lines
