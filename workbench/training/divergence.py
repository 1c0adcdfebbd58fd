"""Telling a diverged run from a training one, from the losses and gradient norms the Trainer logs.

A far too high learning rate does not always end in NaN. Measured on SmolLM2-135M at lr 1000: the
loss went 7.0 -> 32 -> a flat 10.8027 = ln(49152), the vocabulary size: the model outputs a uniform
distribution, every gradient is 0, and without this watch the run "completed" and kept that
adapter. So a run is diverged when, besides a non-finite loss (StopControl's own check):

- the gradient norm is 0 while the loss sits at ln(vocabulary) for COLLAPSE_STEPS logged steps
  in a row (collapsed: nothing can be learned any more);
- the loss stays far above where it started (more than RISE_FACTOR times the first logged loss
  and RISE_MARGIN nats above it) for RISE_STEPS logged steps in a row;
- the gradient norm is not finite (the next update writes NaN into the weights), except in fp16
  mixed precision, whose loss scaler skips such steps on purpose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

COLLAPSE_STEPS = 3
UNIFORM_TOLERANCE = 0.01
"""Relative distance from ln(vocabulary) that still counts as the uniform distribution's loss."""
ZERO_GRAD_NORM = 1e-8
RISE_STEPS = 5
RISE_FACTOR = 2.0
RISE_MARGIN = 2.0


@dataclass
class DivergenceWatch:
    """Fed each logged (step, loss, grad norm); `observe` returns why the run diverged, once it has."""

    vocab_size: Optional[int] = None
    fp16: bool = False
    first_loss: Optional[float] = None
    collapsed_steps: int = 0
    risen_steps: int = 0

    def observe(self, step: int, loss: Optional[float], grad_norm: Optional[float]) -> Optional[str]:
        if not isinstance(loss, (int, float)) or not math.isfinite(loss):
            return None  # a non-finite loss is StopControl's own check
        if self.first_loss is None:
            self.first_loss = float(loss)
        if isinstance(grad_norm, (int, float)) and not math.isfinite(grad_norm) and not self.fp16:
            return f"diverged: the gradient norm became {grad_norm} at step {step} (loss {loss:.4f})"
        uniform = math.log(self.vocab_size) if self.vocab_size and self.vocab_size > 1 else None
        at_uniform = uniform is not None and abs(loss - uniform) <= UNIFORM_TOLERANCE * uniform
        zero_gradient = isinstance(grad_norm, (int, float)) and abs(grad_norm) <= ZERO_GRAD_NORM
        self.collapsed_steps = self.collapsed_steps + 1 if at_uniform and zero_gradient else 0
        if self.collapsed_steps >= COLLAPSE_STEPS:
            return (
                f"diverged: collapsed at step {step}: loss {loss:.4f} = ln(vocabulary {self.vocab_size:,}) with gradient "
                f"norm 0 for {self.collapsed_steps} logged steps, so the model outputs a uniform distribution and "
                "no longer learns"
            )
        far_above = loss > max(self.first_loss * RISE_FACTOR, self.first_loss + RISE_MARGIN)
        self.risen_steps = self.risen_steps + 1 if far_above else 0
        if self.risen_steps >= RISE_STEPS:
            return (
                f"diverged: the loss has stayed far above its start ({self.first_loss:.4f}) for {self.risen_steps} "
                f"logged steps (now {loss:.4f} at step {step})"
            )
        return None


def divergence_advice(learning_rate: float, warmup_ratio: float, warmup_steps: int) -> str:
    """What to change after a divergence."""
    warmup = "" if warmup_ratio > 0 or warmup_steps > 0 else ", and warm up (optimization.warmup_ratio: 0.05)"
    return (
        f"start a new run with a lower optimization.learning_rate (now {learning_rate:g}; LoRA usually 1e-4 to 2e-4)"
        f"{warmup}; the best checkpoint so far is kept"
    )
