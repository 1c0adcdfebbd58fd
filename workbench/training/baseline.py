"""The untrained model's eval loss, measured once before the first step, so that the best
checkpoint can never be worse than not training at all.

At step 0 the eval loss is computed like every later evaluation (the eval tracker takes it as the
first best) and, except under DeepSpeed/FSDP, the untrained weights are saved as
checkpoints/checkpoint-0 (for LoRA: an adapter that changes nothing). A run whose every later
evaluation is worse (a learning rate far too high) then keeps checkpoint-0 as its best, and its
final adapter is the untrained one instead of the damaged weights. A resumed run already has its
baseline (the tracker's state comes from the checkpoint), so it is not measured again.

The other end: a completed run whose last steps came after its last evaluation (eval_steps does not
divide the step count, or is larger than it) is evaluated once more at the end, with a checkpoint
when that is the new best; otherwise the untrained checkpoint-0 could stay "best" over weights
nobody measured.
"""

from __future__ import annotations

from typing import Any


def measure_untrained_baseline(trainer: Any, tracker: Any, args: Any, state: Any) -> bool:
    """Evaluate (and save checkpoint-0) before the first step when it makes sense; True when it ran.

    Called from the last callback's on_train_begin, after the start event is written.
    """
    import torch

    if state.global_step != 0 or tracker.state.best_step is not None or not getattr(trainer, "eval_rows", None):
        return False
    # A DataLoader draws its base seed from the global generator: without the fork, measuring the
    # baseline would change the shuffle and dropout of the steps that follow.
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        trainer.evaluate()
    if tracker.state.best_step == 0:  # a finite eval loss: a broken base (NaN) gets no checkpoint
        _save_checkpoint_now(trainer, args, state)
    # the tracker asks for a checkpoint at every new best; this one is saved (or skipped) already
    trainer.control.should_save = False
    trainer.control.should_evaluate = False
    return True


def _save_checkpoint_now(trainer: Any, args: Any, state: Any) -> None:
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled:
        return
    trainer._save_checkpoint(trainer.model, None)
    trainer.control = trainer.callback_handler.on_save(args, state, trainer.control)


def measure_final_weights(trainer: Any, tracker: Any, args: Any, state: Any) -> bool:
    """At the end of a completed run: evaluate weights trained past the last evaluation (and save
    them as a checkpoint when they are the new best); True when it ran."""
    if (
        tracker.outcome.state != "completed"
        or tracker.state.best_step is None  # nothing was ever evaluated: there is no best to beat
        or tracker.last_evaluated_step == state.global_step
        or not getattr(trainer, "eval_rows", None)
    ):
        return False
    trainer.evaluate()
    if tracker.last_was_best:
        _save_checkpoint_now(trainer, args, state)
    trainer.control.should_save = False
    return True
