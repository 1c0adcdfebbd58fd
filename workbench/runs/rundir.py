"""The run directory: the only channel between the trainer process and everything that watches it.

Layout (the trainer child writes it, except where a line names another writer):

    config.yaml        the resolved RunConfig; written by whoever starts the run (the Train pane and
                       `workbench train --detach` through workbench.runs.launch, or `workbench train`)
    status.json        RunStatus, rewritten atomically on every change of state; the launcher writes
                       the first one ("starting", its own pid) before the child takes over, and
                       `launch_distributed` marks a run failed when its ranks die
    events.jsonl       append-only, one JSON object per line (see EVENT_KINDS)
    trainer.log        the trainer's stdout/stderr
    training_args.json what the Trainer was given: TrainingArguments.to_dict() plus the LoraConfig,
                       quantization and from_pretrained arguments (workbench.config.hf_arguments)
    logs/              experiment-tracker files (evaluation.report_to: TensorBoard events, W&B offline runs)
    checkpoints/       checkpoint-<step>/ directories, each complete only when it holds COMPLETE;
                       checkpoint-0 is the untrained model, saved after the step-0 evaluation
    .workbench.lock    the lock of the one process writing here (workbench/runs/run_lock.py)
    data_sha256.json   the data files' sha256 at the run's first start (compared on resume)
    adapter/           the final adapter (PEFT layout) or, for full fine-tuning, the final model
    ab_votes.jsonl     blind A/B votes, appended by the Chat pane (workbench.inference.votes)
    results.json       what the run achieved, written when it ends (workbench.runs.results); rebuilt by
                       `workbench export` when missing
    README.md          the run's model card, written when it ends (workbench.export.card); rebuilt likewise
    exports/           `workbench export` output, one folder per export (written by the export, not the trainer)

Events (every line has "event" and "time" = unix seconds):

    start       max_steps, num_train_samples, num_eval_samples, world_size, device, precision,
                method, trainable_params, total_params, estimated_peak_bytes; also num_train_rows
                (rows after packing), packing, train_tokens_per_epoch, resumed_from_step (0 on a
                fresh start; after a resume, train events repeat the steps after that checkpoint),
                data_sources: one per training source [{name, path, format, rows, train_rows,
                eval_rows, sampled_rows, share, train_samples, train_tokens}]
    train       step, epoch, loss, learning_rate, grad_norm, tokens_seen, tokens_per_s
                (non-padding tokens per second), memory {cpu_rss_bytes, gpus: [{index,
                allocated_bytes, reserved_bytes, utilization}]}, eta_s
    eval        step, epoch, eval_loss (step 0: the untrained model, before the first step)
    samples     step, samples: [{prompt, completion}]
    checkpoint  step, path (relative to the run dir), is_best
    end         state (completed | stopped | failed), reason, measured_peak_bytes
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
CONFIG_FILE = "config.yaml"
LOG_FILE = "trainer.log"
CHECKPOINTS_DIR = "checkpoints"
TRAINING_ARGS_FILE = "training_args.json"
LOGS_DIR = "logs"
FINAL_ADAPTER_DIR = "adapter"
CHECKPOINT_COMPLETE_MARKER = "COMPLETE"
EVENT_KINDS = ("start", "train", "eval", "samples", "checkpoint", "end")
ACTIVE_STATES = ("starting", "running")


@dataclass
class RunStatus:
    """status.json. `state` is one of starting, running, completed, stopped, failed; a reader that
    finds an active state whose pid is gone reports "dead" (see `read_status`)."""

    name: str
    state: str = "starting"
    reason: Optional[str] = None
    pid: Optional[int] = None
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    step: int = 0
    max_steps: Optional[int] = None
    best_checkpoint: Optional[str] = None
    best_eval_loss: Optional[float] = None
    last_checkpoint: Optional[str] = None
    estimated_peak_bytes: Optional[int] = None
    measured_peak_bytes: Optional[int] = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunStatus":
        """The status a status.json holds; a field of the wrong type (a hand-edited or damaged
        file) falls back to its default, and a file that is not an object raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"status.json holds {type(data).__name__}, not an object")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and _status_value_ok(k, v)}
        if not isinstance(known.get("name"), str):
            known["name"] = "run"
        return cls(**known)


_STATUS_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "state": (str,), "reason": (str, type(None)), "pid": (int, type(None)),
    "started_at": (int, float), "updated_at": (int, float), "step": (int,), "max_steps": (int, type(None)),
    "best_checkpoint": (str, type(None)), "best_eval_loss": (int, float, type(None)), "last_checkpoint": (str, type(None)),
    "estimated_peak_bytes": (int, type(None)), "measured_peak_bytes": (int, type(None)),
}


def _status_value_ok(name: str, value: Any) -> bool:
    kinds = _STATUS_TYPES.get(name)
    if kinds is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return isinstance(value, kinds)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON via a temp file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            json.dump(data, handle, indent=2)
        os.replace(handle.name, path)
    except BaseException:  # a full disk or a kill mid-write: no temp file is left behind
        Path(handle.name).unlink(missing_ok=True)
        raise


def write_status(run_dir: Path, status: RunStatus) -> None:
    status.updated_at = time.time()
    write_json_atomic(Path(run_dir) / STATUS_FILE, asdict(status))


def pid_is_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not running.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def read_status(run_dir: Path, *, as_written: bool = False) -> Optional[RunStatus]:
    """The run's status (None when status.json is missing or unreadable), with an active run whose
    process is gone reported as "dead"; `as_written=True` keeps the state the file holds (the trainer
    taking over its own run directory)."""
    path = Path(run_dir) / STATUS_FILE
    try:
        status = RunStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
    if as_written:
        return status
    if status.state in ACTIVE_STATES and not pid_is_alive(status.pid):
        status.state = "dead"
        status.reason = status.reason or "the trainer process ended without finishing (killed?)"
    return status


class EventLog:
    """Appends events to events.jsonl (trainer side): one line per event, flushed at once."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        if event not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {event!r}")
        record = {"event": event, "time": time.time(), **fields}
        line = json.dumps(record, default=float) + "\n"
        # One write() of one line with O_APPEND: lines from several processes never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
        return record


class EventTail:
    """Reads events.jsonl incrementally (watcher side): each `read_new()` returns only new complete lines."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / EVENTS_FILE
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for line in chunk[: end + 1].splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash mid-write; the rest of the log is still good
        return events


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    return EventTail(run_dir).read_new()


def list_run_dirs(root: Path) -> Iterator[Path]:
    """Run directories under `root`, newest first."""
    root = Path(root)
    if not root.is_dir():
        return iter(())
    runs = [p for p in root.iterdir() if (p / STATUS_FILE).is_file() or (p / CONFIG_FILE).is_file()]
    return iter(sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True))


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints that finished saving, oldest first (a killed save has no COMPLETE marker)."""
    folder = Path(run_dir) / CHECKPOINTS_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob("checkpoint-*"):
        suffix = path.name.rsplit("-", 1)[-1]
        if suffix.isdigit() and (path / CHECKPOINT_COMPLETE_MARKER).is_file():
            found.append((int(suffix), path))
    return [path for _, path in sorted(found)]
