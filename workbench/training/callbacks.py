"""Trainer callbacks that connect transformers' Trainer to the run directory.

- `StopControl`: a SIGTERM/Ctrl-C or a non-finite loss stops every rank at the same step.
- `EvalTracker`: best eval loss, early stopping with patience, and a checkpoint at every new best.
- `CheckpointKeeper`: marks finished checkpoints COMPLETE and keeps the last K plus the best.
- `RunRecorder`: events.jsonl, status.json, prompt-deck samples and the progress lines.

transformers is imported lazily; `callback_classes()` builds the classes on first use.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from workbench.evaluation.deck import score_deck
from workbench.runs.rundir import (
    CHECKPOINT_COMPLETE_MARKER,
    CHECKPOINTS_DIR,
    EventLog,
    RunStatus,
    complete_checkpoints,
    write_json_atomic,
    write_status,
)
from workbench.training.baseline import measure_final_weights, measure_untrained_baseline
from workbench.training.divergence import DivergenceWatch, divergence_advice
from workbench.training.generation import generate_samples
from workbench.units import format_duration

TRACKER_STATE_FILE = "workbench_state.json"
"""Inside each checkpoint: the eval tracker's state, so a resumed run keeps its best and patience."""

RESUME_ONLY_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "trainer_state.json", "training_args.bin")


def is_resume_only_file(name: str) -> bool:
    """Files of a checkpoint that only resuming needs (the exported weights leave them out)."""
    return (
        name in RESUME_ONLY_FILES
        or name.startswith("rng_state")
        or name in (CHECKPOINT_COMPLETE_MARKER, TRACKER_STATE_FILE)
    )


@dataclass
class StopRequest:
    """Set from a signal handler; read at the next step end."""

    requested: bool = False
    signal_name: Optional[str] = None


def install_stop_handlers(request: StopRequest) -> dict[int, Any]:
    """SIGTERM and the first Ctrl-C ask for a graceful stop (checkpoint, then exit); a second Ctrl-C aborts.

    Returns the handlers they replace, for `restore_signal_handlers`.
    """

    def ask_to_stop(signum, _frame):
        if signum == signal.SIGINT and request.requested:
            raise KeyboardInterrupt
        request.requested = True
        request.signal_name = signal.Signals(signum).name

    return {signum: signal.signal(signum, ask_to_stop) for signum in (signal.SIGTERM, signal.SIGINT)}


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@dataclass
class RunOutcome:
    """How the run ended; callbacks fill it in, the runner writes it to status.json."""

    state: str = "completed"
    reason: Optional[str] = None


@dataclass
class TrackerState:
    best_eval_loss: Optional[float] = None
    best_step: Optional[int] = None
    evaluations_without_improvement: int = 0

    @classmethod
    def read(cls, checkpoint: Path) -> "TrackerState":
        try:
            data = json.loads((checkpoint / TRACKER_STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def checkpoint_relpath(step: int) -> str:
    return f"{CHECKPOINTS_DIR}/checkpoint-{step}"


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def remove_checkpoint(path: Path) -> None:
    """Delete a checkpoint so that no moment leaves a partial one looking complete: the marker goes first."""
    (path / CHECKPOINT_COMPLETE_MARKER).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def remove_incomplete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint folders without COMPLETE (a save cut short by a kill); removed before training resumes."""
    folder = Path(run_dir) / CHECKPOINTS_DIR
    complete = set(complete_checkpoints(run_dir))
    removed = []
    for path in folder.glob("checkpoint-*") if folder.is_dir() else ():
        if path.is_dir() and path not in complete:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@dataclass
class RecorderInfo:
    """What the start event says beyond what the Trainer knows."""

    start_fields: dict[str, Any] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    system_prompt: Optional[str] = None
    sample_max_new_tokens: int = 48
    expected: list[Optional[tuple[str, ...]]] = field(default_factory=list)
    """Per deck prompt, the accepted answers (None: not scored); see workbench/evaluation/deck.py."""


def _output_vocabulary(trainer) -> Optional[int]:
    """Rows of the model's output layer (what ln(vocabulary) is taken of), or None."""
    try:
        return int(trainer.model.get_output_embeddings().weight.shape[0])
    except Exception:  # an unusual head: the collapse check then relies on the other signs
        return None


@functools.cache
def callback_classes():
    import torch
    from transformers import TrainerCallback

    def world_size() -> int:
        return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1

    def barrier() -> None:
        if torch.distributed.is_initialized():
            torch.distributed.barrier()

    class StopControl(TrainerCallback):
        """Turns a stop request or a non-finite loss into a coordinated stop.

        The flags are reduced over all ranks at every step end (one tiny all-reduce), so the ranks
        stop at the same step and reach the same collective calls.
        """

        def __init__(self, request: StopRequest, outcome: RunOutcome, trainer_ref: Callable[[], Any]):
            self.request = request
            self.outcome = outcome
            self.trainer_ref = trainer_ref
            self.watch: DivergenceWatch | None = None

        def on_step_end(self, args, state, control, **kwargs):
            trainer = self.trainer_ref()
            flags = torch.tensor(
                [float(self.request.requested), float(trainer.nonfinite_loss_seen)], device=args.device
            )
            if world_size() > 1:
                torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            stop_requested, nonfinite = bool(flags[0]), bool(flags[1])
            if nonfinite:
                control.should_training_stop = True
                control.should_save = control.should_evaluate = False
                control.should_log = True
                self.outcome.state = "failed"
                self.outcome.reason = (
                    f"diverged: the loss became NaN/inf at step {state.global_step}; the weights are no longer usable. "
                    "Lower optimization.learning_rate, keep max_grad_norm on, or train in fp32; "
                    "resume restarts from the last good checkpoint"
                )
            elif stop_requested:
                control.should_training_stop = True
                control.should_save = True
                control.should_evaluate = False
                control.should_log = True
                self.outcome.state = "stopped"
                self.outcome.reason = f"stopped on request at step {state.global_step}; resume continues from here"
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            """A collapsed or exploding run stops as failed (workbench/training/divergence.py); every
            rank logs the same gathered loss and gradient norm, so every rank decides alike."""
            logs = logs or {}
            if "loss" not in logs or self.outcome.state == "failed":
                return control
            if self.watch is None:
                self.watch = DivergenceWatch(_output_vocabulary(self.trainer_ref()), fp16=bool(args.fp16))
            reason = self.watch.observe(state.global_step, logs["loss"], logs.get("grad_norm"))
            if reason is not None:
                control.should_training_stop = True
                control.should_save = control.should_evaluate = False
                self.outcome.state = "failed"
                self.outcome.reason = f"{reason}; " + divergence_advice(args.learning_rate, getattr(args, "warmup_ratio", 0) or 0, getattr(args, "warmup_steps", 0) or 0)
            return control

    class EvalTracker(TrainerCallback):
        """Best eval loss, patience, and a checkpoint whenever the eval loss improves."""

        def __init__(self, patience: Optional[int], outcome: RunOutcome, initial: TrackerState | None = None):
            self.patience = patience
            self.outcome = outcome
            self.state = initial or TrackerState()
            self.last_was_best = False
            self.last_evaluated_step: Optional[int] = None

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            loss = (metrics or {}).get("eval_loss")
            if loss is not None:
                self.last_evaluated_step = state.global_step
            if loss is None or not math.isfinite(loss):
                self.last_was_best = False
                return control
            tracked = self.state
            self.last_was_best = tracked.best_eval_loss is None or loss < tracked.best_eval_loss
            if self.last_was_best:
                tracked.best_eval_loss, tracked.best_step = float(loss), state.global_step
                tracked.evaluations_without_improvement = 0
                control.should_save = True  # the best point always has a checkpoint to go back to
            else:
                tracked.evaluations_without_improvement += 1
                if self.patience and tracked.evaluations_without_improvement >= self.patience:
                    control.should_training_stop = True
                    self.outcome.state = "completed"
                    self.outcome.reason = (
                        f"early stopping at step {state.global_step}: eval loss has not improved for "
                        f"{tracked.evaluations_without_improvement} evaluations; best {tracked.best_eval_loss:.4f} "
                        f"at step {tracked.best_step}"
                    )
            return control

    class CheckpointKeeper(TrainerCallback):
        """After each save: all ranks done, tracker state written, files synced, COMPLETE marked, old ones pruned."""

        def __init__(self, run_dir: Path, tracker: EvalTracker, keep_last: int, on_complete: Callable[[int, bool], None]):
            self.run_dir = Path(run_dir)
            self.tracker = tracker
            self.keep_last = keep_last
            self.on_complete = on_complete

        def on_save(self, args, state, control, **kwargs):
            barrier()  # every rank's files (e.g. rng_state_<rank>.pth) are written
            if state.is_world_process_zero:
                step = state.global_step
                folder = self.run_dir / checkpoint_relpath(step)
                write_json_atomic(folder / TRACKER_STATE_FILE, self.tracker.state.__dict__)
                _fsync_tree(folder)
                is_best = self.tracker.state.best_step == step
                marker = {"step": step, "time": time.time(), "is_best": is_best}
                write_json_atomic(folder / CHECKPOINT_COMPLETE_MARKER, marker)
                self.prune()
                self.on_complete(step, is_best)
            barrier()
            return control

        def prune(self) -> None:
            best = self.tracker.state.best_step
            complete = complete_checkpoints(self.run_dir)
            keep = set(complete[-self.keep_last :])
            for path in complete:
                if path not in keep and path.name != f"checkpoint-{best}":
                    remove_checkpoint(path)

    class RunRecorder(TrainerCallback):
        """Writes events and status (rank 0 only) and prints one progress line per log."""

        def __init__(
            self,
            run_dir: Path,
            status: RunStatus,
            info: RecorderInfo,
            tracker: EvalTracker,
            probe,
            trainer_ref: Callable[[], Any],
            report: Callable[[str], None] = print,
        ):
            self.run_dir = Path(run_dir)
            self.events = EventLog(run_dir)
            self.status = status
            self.info = info
            self.tracker = tracker
            self.probe = probe
            self.trainer_ref = trainer_ref
            self.report = report
            self.session_started = time.monotonic()
            self.session_first_step = 0
            self.last_log_time = time.monotonic()
            self.last_log_pause = 0.0
            self.last_log_tokens = 0

        def on_train_begin(self, args, state, control, **kwargs):
            self.session_started = self.last_log_time = time.monotonic()
            self.session_first_step = state.global_step
            self.last_log_tokens = state.num_input_tokens_seen
            self.last_log_pause = self.trainer_ref().pause_seconds
            if state.is_world_process_zero:
                self.status.state = "running"
                self.status.step = state.global_step
                self.status.max_steps = state.max_steps
                write_status(self.run_dir, self.status)
                self.events.append("start", max_steps=state.max_steps, **self.info.start_fields)
                resumed = self.info.start_fields.get("resumed_from_step")
                where = f" (resuming at step {resumed})" if resumed else ""
                self.report(f"training: {state.max_steps} steps{where}")
            self.measure_baseline(args, state)

        def on_train_end(self, args, state, control, **kwargs):
            """Weights trained past the last evaluation are evaluated once, so a run that only
            evaluated before training (or long ago) never keeps a worse checkpoint as its best."""
            measure_final_weights(self.trainer_ref(), self.tracker, args, state)

        def measure_baseline(self, args, state) -> None:
            """The untrained model's eval loss (and checkpoint-0), on every rank, after the start event."""
            if measure_untrained_baseline(self.trainer_ref(), self.tracker, args, state):
                self.session_started = self.last_log_time = time.monotonic()  # the baseline's time is no training time
                self.last_log_pause = self.trainer_ref().pause_seconds

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" not in logs or not state.is_world_process_zero:
                return
            now = time.monotonic()
            trainer = self.trainer_ref()
            busy = (now - self.last_log_time) - (trainer.pause_seconds - self.last_log_pause)
            tokens = state.num_input_tokens_seen - self.last_log_tokens
            tokens_per_s = tokens / busy if busy > 0 else None
            self.last_log_time, self.last_log_pause = now, trainer.pause_seconds
            self.last_log_tokens = state.num_input_tokens_seen
            steps_done = state.global_step - self.session_first_step
            eta = None
            if steps_done > 0:
                eta = (state.max_steps - state.global_step) * (now - self.session_started) / steps_done
            memory = self.probe.snapshot()
            self.events.append(
                "train",
                step=state.global_step,
                epoch=state.epoch,
                loss=logs["loss"],
                learning_rate=logs.get("learning_rate"),
                grad_norm=logs.get("grad_norm"),
                tokens_seen=state.num_input_tokens_seen,
                tokens_per_s=tokens_per_s,
                memory=memory,
                eta_s=eta,
            )
            self.status.step = state.global_step
            self.status.measured_peak_bytes = max(self.status.measured_peak_bytes or 0, self.probe.peak_bytes())
            write_status(self.run_dir, self.status)
            speed = f" · {tokens_per_s:,.0f} tok/s" if tokens_per_s else ""
            grad = logs.get("grad_norm")
            grad_text = f" · grad {grad:.3g}" if isinstance(grad, (int, float)) else ""
            eta_text = f" · ETA {format_duration(eta)}" if eta is not None else ""
            self.report(
                f"step {state.global_step}/{state.max_steps} · epoch {state.epoch:.2f} · loss {logs['loss']:.4f}"
                f" · lr {logs.get('learning_rate', 0):.3g}{grad_text}{speed}{eta_text}"
            )

        def on_evaluate(self, args, state, control, metrics=None, model=None, processing_class=None, **kwargs):
            loss = (metrics or {}).get("eval_loss")
            if not state.is_world_process_zero or loss is None:
                return
            self.events.append("eval", step=state.global_step, epoch=state.epoch, eval_loss=loss)
            tracked = self.tracker.state
            self.status.best_eval_loss = tracked.best_eval_loss
            write_status(self.run_dir, self.status)
            if self.tracker.last_was_best:
                mark = " (best)"
            elif tracked.best_eval_loss is None:
                mark = " (not finite)" if not math.isfinite(loss) else ""
            else:
                mark = f" (best {tracked.best_eval_loss:.4f} at step {tracked.best_step})"
            self.report(f"eval step {state.global_step} · eval loss {loss:.4f}{mark}")
            if self.info.prompts and model is not None and processing_class is not None:
                self.record_samples(state.global_step, model, processing_class)

        def record_samples(self, step: int, model, tokenizer) -> None:
            # Runs inside Trainer.evaluate(), so its time already counts as a pause in training.
            started = time.monotonic()
            with self.trainer_ref().accelerator.autocast():
                samples = generate_samples(
                    model,
                    tokenizer,
                    self.info.prompts,
                    system_prompt=self.info.system_prompt,
                    max_new_tokens=self.info.sample_max_new_tokens,
                )
            deck_score = {}
            if any(accepted is not None for accepted in self.info.expected):
                deck_score = score_deck(samples, self.info.expected)
                self.report(f"  deck: {deck_score['deck_hits']}/{deck_score['deck_scored']} expected answers")
            self.events.append("samples", step=step, samples=samples, **deck_score)
            for sample in samples:
                first_line = sample["completion"].splitlines()[0] if sample["completion"] else ""
                self.report(f"  sample {sample['prompt']!r} -> {first_line[:100]!r}")
            self.report(f"  ({len(samples)} samples in {time.monotonic() - started:.1f}s)")

        def checkpoint_complete(self, step: int, is_best: bool) -> None:
            path = checkpoint_relpath(step)
            self.events.append("checkpoint", step=step, path=path, is_best=is_best)
            self.status.last_checkpoint = path
            best = self.tracker.state.best_step
            if best is not None and (self.run_dir / checkpoint_relpath(best)).is_dir():
                self.status.best_checkpoint = checkpoint_relpath(best)
            write_status(self.run_dir, self.status)
            self.report(f"checkpoint {path}{' (best)' if is_best else ''}")

    return StopControl, EvalTracker, CheckpointKeeper, RunRecorder
