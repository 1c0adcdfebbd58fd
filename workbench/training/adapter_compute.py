"""How LoRA adapters compute during training: on the compute dtype's activations, with one dropout
mask per input.

Measured on the quick-demo-cpu config (SmolLM2-135M, LoRA r16 on every linear layer, mixed bf16,
2-core Xeon with AMX; torch.profiler shares of a training step, see docs/benchmarks.md):

- PEFT casts every adapter's input to the adapter's fp32 (`_cast_input_dtype`) and autocast casts
  it straight back to bf16 for the adapter's matmul, in the forward pass and again in the backward
  pass. Those casts were ~10% of a step (`copy_`), and each adapter kept its own fp32 copy of its
  input. With the casting off (PEFT's own switch, `cast_input_dtype_enabled`, which
  `peft.helpers.disable_input_dtype_casting` sets), the adapters read the bf16 activations as they
  are and autocast still runs their matmuls in bf16 on their fp32 weights: the same numbers.
- LoRA dropout drew its mask with `bernoulli_`, single-threaded and slow on CPU (~2.4 ms for one
  2 × 256 × 576 input), once per adapter: 7 masks per layer, ~15–20% of a step. q, k and v read
  one input, and gate and up another, so `SharedInputDropout` draws one mask per input (4 per
  layer) from 16-bit words of `random_` on int64 (0.34 ms for the same input, 7× faster) and every
  adapter reading that input gets the same dropped tensor (also saved once for backward).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

WORD_STATES = 1 << 16
"""A dropout decision compares one random 16-bit word with p · 65536, so p is rounded to 1/65536."""


def lora_layers(model) -> list:
    """The PEFT LoRA layers of a model (none for full fine-tuning)."""
    from peft.tuners.lora import LoraLayer

    return [module for module in model.modules() if isinstance(module, LoraLayer)]


def keep_adapter_inputs_in_compute_dtype(model) -> int:
    """Turn off PEFT's cast of each adapter's input to the adapter's dtype; returns the layers changed.

    Only for runs under autocast: there the cast is undone at once by autocast itself. Without
    autocast (fp32 or pure 16-bit runs) the adapter's dtype decides the matmul, so the cast stays.
    Layers with a LoRA variant (DoRA) keep it: DoRA computes its weight norm in the input's dtype.
    """
    layers = [layer for layer in lora_layers(model) if not getattr(layer, "lora_variant", None)]
    for layer in layers:
        layer.cast_input_dtype_enabled = False
    return len(layers)


def dropout_keep_mask(shape: "torch.Size", p: float) -> "torch.Tensor":
    """A boolean mask, True with probability 1 - p (p rounded to 1/65536), from the default generator.

    One `random_` call on int64 yields four 16-bit words; drawing the words this way is ~7× faster
    on CPU than `bernoulli_` (measured above), and it reproduces under a restored RNG state as
    gradient checkpointing needs.
    """
    import torch

    count = 1
    for size in shape:
        count *= size
    words = torch.empty((count + 3) // 4, dtype=torch.int64).random_(-(1 << 63), (1 << 63) - 1)
    threshold = round(p * WORD_STATES) - WORD_STATES // 2
    return (words.view(torch.int16)[:count] >= threshold).view(shape)


def quantized_rate(p: float) -> float:
    """The dropout rate `dropout_keep_mask` really applies for a requested `p`."""
    return round(p * WORD_STATES) / WORD_STATES


class InputDropouts:
    """The dropped tensor of the last input seen, shared by the adapters that read the same input."""

    def __init__(self) -> None:
        self._input = None
        self._version = -1
        self._rate = -1.0
        self._output = None

    def dropped(self, x: "torch.Tensor", p: float) -> "torch.Tensor":
        known = self._input() if self._input is not None else None
        if known is x and self._version == x._version and self._rate == p:
            return self._output
        rate = quantized_rate(p)
        keep = dropout_keep_mask(x.shape, p).to(x.device)
        scale = keep.to(x.dtype) * (1.0 / (1.0 - rate))
        output = x * scale
        self._input, self._version, self._rate, self._output = weakref.ref(x), x._version, p, output
        return output

    def clear(self) -> None:
        self._input, self._output = None, None


def _shared_dropout_class():
    import torch

    class SharedInputDropout(torch.nn.Module):
        """Dropout with rate `p` whose mask is shared by every adapter that reads the same input tensor."""

        def __init__(self, p: float, shared: InputDropouts) -> None:
            super().__init__()
            self.p = p
            self.shared = shared

        def forward(self, x):
            if not self.training or self.p == 0:
                return x
            return self.shared.dropped(x, self.p)

        def extra_repr(self) -> str:
            return f"p={self.p}, shared per input"

    return SharedInputDropout


def share_dropout_masks(model) -> InputDropouts | None:
    """Replace PEFT's per-adapter `nn.Dropout` with `SharedInputDropout`; None when no adapter uses dropout.

    CPU only: CUDA's fused dropout kernel is fast and keeps a 1-byte mask.
    """
    import torch

    shared = InputDropouts()
    shared_dropout = _shared_dropout_class()
    replaced = 0
    for layer in lora_layers(model):
        for name, dropout in list(layer.lora_dropout.items()):
            if isinstance(dropout, torch.nn.Dropout) and dropout.p > 0:
                layer.lora_dropout[name] = shared_dropout(dropout.p, shared)
                replaced += 1
    return shared if replaced else None
