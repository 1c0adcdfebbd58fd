"""What a watcher makes of a run directory: events folded into curves, figures and warnings (no UI).

The Train pane keeps one `RunView` per shown run and feeds it what `EventTail.read_new()` returns;
`summarize_runs` is the runs list. Everything here only reads the run directory.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from workbench.runs.rundir import (
    ACTIVE_STATES,
    RunStatus,
    complete_checkpoints,
    list_run_dirs,
    read_events,
    read_status,
)

SMOOTHING_WEIGHT = 0.9
"""EMA weight of the smoothed train loss: per-step losses of small batches swing by ±10%, and 0.9
averages over roughly the last ten steps while still turning within a few evaluations."""

OVERFITTING_EVALUATIONS = 3
"""How many consecutive rises of eval loss (while train loss falls) count as overfitting; the same
patience the seeds use for early stopping."""

ETA_WINDOW_STEPS = 20
"""Recent train events the fallback ETA averages over, when the trainer does not report one."""


@dataclass
class Series:
    """One curve: x = optimizer step, y = value, in step order."""

    steps: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def append(self, step: float, value: float) -> None:
        self.steps.append(step)
        self.values.append(value)

    def truncate_from(self, step: float) -> None:
        """Drop the points at `step` and after (a resumed run replays steps after its checkpoint)."""
        keep = next((i for i, s in enumerate(self.steps) if s >= step), len(self.steps))
        del self.steps[keep:], self.values[keep:]

    def points(self) -> list[tuple[float, float]]:
        return list(zip(self.steps, self.values))

    def last(self) -> Optional[float]:
        return self.values[-1] if self.values else None

    def __len__(self) -> int:
        return len(self.steps)


class EmaSmoother:
    """Exponential moving average with bias correction (as TensorBoard smooths), so the first points
    are not dragged towards zero or towards the first value."""

    def __init__(self, weight: float = SMOOTHING_WEIGHT):
        if not 0.0 <= weight < 1.0:
            raise ValueError("smoothing weight must be in [0, 1)")
        self.weight = weight
        self._biased = 0.0
        self._count = 0

    def update(self, value: float) -> float:
        self._count += 1
        self._biased = self.weight * self._biased + (1 - self.weight) * value
        return self._biased / (1 - self.weight**self._count)


def ema(values: Iterable[float], weight: float = SMOOTHING_WEIGHT) -> list[float]:
    """The bias-corrected EMA of `values` (non-finite values are skipped by the caller, not here)."""
    smoother = EmaSmoother(weight)
    return [smoother.update(v) for v in values]


@dataclass(frozen=True)
class OverfittingWarning:
    """Eval loss rose for `rising_evaluations` evaluations in a row while train loss fell."""

    rising_evaluations: int
    best_step: int
    best_eval_loss: float
    rise_start_eval_loss: float
    latest_eval_loss: float
    train_loss_before: float
    train_loss_now: float

    def message(self, best_checkpoint: Optional[str] = None) -> str:
        """The plain-language warning, pointing at the best checkpoint."""
        where = f"step {self.best_step}"
        if best_checkpoint:
            where += f" ({Path(best_checkpoint).name})"
        return (
            f"Eval loss has risen for {self.rising_evaluations} evaluations in a row "
            f"({self.rise_start_eval_loss:.3f} → {self.latest_eval_loss:.3f}) while train loss keeps falling: "
            f"the model is memorising its training examples. The best checkpoint is {where}."
        )


def _mean_train_loss_up_to(trains: Sequence[tuple[float, float]], after: float, upto: float) -> Optional[float]:
    window = [loss for step, loss in trains if after < step <= upto and math.isfinite(loss)]
    return sum(window) / len(window) if window else None


def detect_overfitting(
    evals: Sequence[tuple[float, float]],
    trains: Sequence[tuple[float, float]],
    k: int = OVERFITTING_EVALUATIONS,
) -> Optional[OverfittingWarning]:
    """The classic curve: the last `k` evaluations each had a higher eval loss than the one before,
    while train loss fell over the same stretch.

    Train loss is noisy step to step, so it is compared as the mean over the steps leading to the
    evaluation where the rise began versus the mean over the steps leading to the latest one.

    Args:
        evals: (step, eval_loss) in step order.
        trains: (step, train_loss) in step order.
        k: consecutive rises needed.

    Returns:
        The warning (with the best evaluation so far), or None.
    """
    if k < 1 or len(evals) < k + 1:
        return None
    streak = evals[-(k + 1) :]
    if not all(later[1] > earlier[1] for earlier, later in zip(streak, streak[1:])):
        return None
    turn_step, latest_step = streak[0][0], streak[-1][0]
    before_turn = evals[-(k + 2)][0] if len(evals) >= k + 2 else -math.inf
    train_before = _mean_train_loss_up_to(trains, before_turn, turn_step)
    train_now = _mean_train_loss_up_to(trains, streak[-2][0], latest_step)
    if train_before is None or train_now is None or not train_now < train_before:
        return None
    best_step, best_loss = min(evals, key=lambda point: point[1])
    return OverfittingWarning(k, int(best_step), best_loss, streak[0][1], streak[-1][1], train_before, train_now)


def downsample(steps: Sequence[float], values: Sequence[float], max_points: int) -> tuple[list[float], list[float]]:
    """At most `max_points` evenly spaced points, always keeping the last (a terminal plot has only so
    many columns; plotting 10k points costs time and shows nothing more)."""
    count = len(steps)
    if count <= max_points or max_points < 2:
        return list(steps), list(values)
    stride = (count - 1) / (max_points - 1)
    picks = sorted({round(i * stride) for i in range(max_points)})
    return [steps[i] for i in picks], [values[i] for i in picks]


@dataclass
class RunView:
    """Everything the monitor shows about one run, folded from its events; feed it with `apply`."""

    run_dir: Path
    smoothing_weight: float = SMOOTHING_WEIGHT
    train_loss: Series = field(default_factory=Series)
    train_loss_smoothed: Series = field(default_factory=Series)
    eval_loss: Series = field(default_factory=Series)
    learning_rate: Series = field(default_factory=Series)
    grad_norm: Series = field(default_factory=Series)
    tokens_per_s: Series = field(default_factory=Series)
    start: Optional[dict[str, Any]] = None
    latest_train: Optional[dict[str, Any]] = None
    samples_history: list[dict[str, Any]] = field(default_factory=list)
    best_checkpoint: Optional[str] = None
    end: Optional[dict[str, Any]] = None
    _train_times: list[tuple[float, float]] = field(default_factory=list, repr=False)
    _smoother: Optional[EmaSmoother] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self._smoother = EmaSmoother(self.smoothing_weight)

    @classmethod
    def load(cls, run_dir: Path, **kwargs: Any) -> "RunView":
        """A view of everything the run has logged so far."""
        view = cls(run_dir, **kwargs)
        view.apply(read_events(run_dir))
        return view

    def apply(self, events: Iterable[dict[str, Any]]) -> bool:
        """Fold new events in; True when anything changed."""
        changed = False
        for event in events:
            handler = getattr(self, f"_on_{event.get('event')}", None)
            if handler is not None:
                handler(event)
                changed = True
        return changed

    def _on_start(self, event: dict[str, Any]) -> None:
        self.start = event
        self.end = None  # a resumed run starts again in the same directory

    def _on_train(self, event: dict[str, Any]) -> None:
        step = event.get("step")
        if step is None:
            return
        if self.train_loss and step <= self.train_loss.steps[-1]:
            self._rewind_to(step)
        loss = event.get("loss")
        if _is_number(loss):
            self.train_loss.append(step, loss)
            if math.isfinite(loss):
                self.train_loss_smoothed.append(step, self._smoother.update(loss))
        for series, key in ((self.learning_rate, "learning_rate"), (self.grad_norm, "grad_norm"), (self.tokens_per_s, "tokens_per_s")):
            if _is_number(event.get(key)):
                series.append(step, event[key])
        if _is_number(event.get("time")):
            self._train_times.append((step, event["time"]))
            del self._train_times[:-ETA_WINDOW_STEPS]
        self.latest_train = event

    def _rewind_to(self, step: float) -> None:
        """A resume from an earlier checkpoint: the steps after it are logged again, so forget the old ones."""
        for series in (self.train_loss, self.learning_rate, self.grad_norm, self.tokens_per_s, self.eval_loss):
            series.truncate_from(step)
        self.samples_history = [s for s in self.samples_history if s.get("step", 0) < step]
        self._train_times = [(s, t) for s, t in self._train_times if s < step]
        self._smoother = EmaSmoother(self.smoothing_weight)
        self.train_loss_smoothed = Series()
        for replay_step, loss in self.train_loss.points():
            if math.isfinite(loss):
                self.train_loss_smoothed.append(replay_step, self._smoother.update(loss))

    def _on_eval(self, event: dict[str, Any]) -> None:
        step, loss = event.get("step"), event.get("eval_loss")
        if step is None or not _is_number(loss):
            return
        if self.eval_loss and step <= self.eval_loss.steps[-1]:
            self.eval_loss.truncate_from(step)
        self.eval_loss.append(step, loss)

    def _on_samples(self, event: dict[str, Any]) -> None:
        if event.get("samples"):
            self.samples_history.append(event)

    def _on_checkpoint(self, event: dict[str, Any]) -> None:
        if event.get("is_best"):
            self.best_checkpoint = event.get("path")

    def _on_end(self, event: dict[str, Any]) -> None:
        self.end = event

    @property
    def deck_hit_rate(self) -> Series:
        """Per evaluation, the share of the scored deck prompts answered as expected
        (evaluation.deck_expected); empty when the deck has no expected answers."""
        series = Series()
        for event in self.samples_history:
            scored = event.get("deck_scored")
            if _is_number(scored) and scored > 0 and _is_number(event.get("deck_hits")):
                series.append(event.get("step", 0), event["deck_hits"] / scored)
        return series

    @property
    def step(self) -> int:
        return int(self.latest_train["step"]) if self.latest_train else 0

    @property
    def max_steps(self) -> Optional[int]:
        return self.start.get("max_steps") if self.start else None

    @property
    def epoch(self) -> Optional[float]:
        return self.latest_train.get("epoch") if self.latest_train else None

    @property
    def total_epochs(self) -> Optional[float]:
        """Epochs the run will cover at max_steps (from the logged epoch/step ratio)."""
        epoch, max_steps = self.epoch, self.max_steps
        if not epoch or not self.step or not max_steps:
            return None
        return epoch * max_steps / self.step

    @property
    def latest_tokens_per_s(self) -> Optional[float]:
        return self.tokens_per_s.last()

    @property
    def eta_s(self) -> Optional[float]:
        """Seconds left: the trainer's own estimate, else the recent pace times the steps left."""
        if self.latest_train and _is_number(self.latest_train.get("eta_s")):
            return float(self.latest_train["eta_s"])
        if not self.max_steps or len(self._train_times) < 2:
            return None
        (first_step, first_time), (last_step, last_time) = self._train_times[0], self._train_times[-1]
        if last_step <= first_step:
            return None
        return max(0.0, (self.max_steps - last_step) * (last_time - first_time) / (last_step - first_step))

    @property
    def memory(self) -> Optional[dict[str, Any]]:
        return self.latest_train.get("memory") if self.latest_train else None

    @property
    def best_eval(self) -> Optional[tuple[float, float]]:
        """(step, eval_loss) of the lowest eval loss so far."""
        points = self.eval_loss.points()
        return min(points, key=lambda point: point[1]) if points else None

    @property
    def latest_samples(self) -> Optional[dict[str, Any]]:
        return self.samples_history[-1] if self.samples_history else None

    def first_completion(self, prompt: str) -> Optional[tuple[int, str]]:
        """(step, completion) of the earliest generation for `prompt`, to show how the answer changed."""
        for event in self.samples_history:
            for sample in event.get("samples", []):
                if sample.get("prompt") == prompt:
                    return event.get("step", 0), sample.get("completion", "")
        return None

    def overfitting(self, k: int = OVERFITTING_EVALUATIONS) -> Optional[OverfittingWarning]:
        evals = self.eval_loss.points()
        # Only the train steps after the evaluation before the streak matter; a long run has tens of thousands.
        first = bisect.bisect_right(self.train_loss.steps, evals[-(k + 2)][0]) if len(evals) >= k + 2 else 0
        trains = list(zip(self.train_loss.steps[first:], self.train_loss.values[first:]))
        return detect_overfitting(evals, trains, k)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class RunSummary:
    """One line of the runs list."""

    run_dir: Path
    name: str
    state: str
    step: int
    max_steps: Optional[int]
    best_eval_loss: Optional[float]
    started_at: float
    reason: Optional[str]
    can_resume: bool

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


def summarize_run(run_dir: Path, status: Optional[RunStatus] = None) -> RunSummary:
    """A run's line for the list, from status.json (with dead-trainer detection)."""
    run_dir = Path(run_dir)
    status = status or read_status(run_dir)
    if status is None:
        try:
            started = run_dir.stat().st_mtime
        except OSError:
            started = 0.0
        return RunSummary(run_dir, run_dir.name, "unknown", 0, None, None, started, "no status.json yet", False)
    resumable = status.state in ("stopped", "failed", "dead") and bool(complete_checkpoints(run_dir))
    return RunSummary(
        run_dir,
        status.name or run_dir.name,
        status.state,
        status.step,
        status.max_steps,
        status.best_eval_loss,
        status.started_at,
        status.reason,
        resumable,
    )


def summarize_runs(root: Path, also: Iterable[Path] = ()) -> list[RunSummary]:
    """Runs under `root` (plus `also`, e.g. a run started with --run-dir elsewhere), newest start first."""
    dirs = {Path(p).resolve(): Path(p) for p in list_run_dirs(root)}
    for extra in also:
        if Path(extra).is_dir():
            dirs.setdefault(Path(extra).resolve(), Path(extra))
    summaries = [summarize_run(path) for path in dirs.values()]
    return sorted(summaries, key=lambda s: s.started_at, reverse=True)
