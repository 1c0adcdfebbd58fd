"""The untrained model's eval loss, measured once before the first step, so that the best
checkpoint can never be worse than not training at all.

At step 0 the eval loss is computed like every later evaluation (the eval tracker takes it as the
first best) and, except under DeepSpeed/FSDP, the untrained weights are saved as
checkpoints/checkpoint-0 (for LoRA: an adapter that changes nothing). A run whose every later
evaluation is worse (a learning rate far too high) then keeps checkpoint-0 as its best, and its
final adapter is the untrained one instead of the damaged weights. A resumed run already has its
baseline (the tracker's state comes from the checkpoint), so it is not measured again.
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
    control = trainer.control
    usable = tracker.state.best_step == 0  # a finite eval loss: a broken base (NaN) gets no checkpoint
    if usable and not (trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled):
        trainer._save_checkpoint(trainer.model, None)
        trainer.control = trainer.callback_handler.on_save(args, state, control)
    # the tracker asks for a checkpoint at every new best; this one is saved (or skipped) already
    trainer.control.should_save = False
    trainer.control.should_evaluate = False
    return True
