"""The peak a training run measured, to show beside the estimate.

The trainer records in the run's status.json `estimated_peak_bytes` (this estimator, for the run's
own config, at start) and `measured_peak_bytes`: `torch.cuda.max_memory_reserved()` on a GPU (no
CUDA context), the process's peak RSS on the CPU (Python, PyTorch and the loaded data included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.runs.rundir import read_status


@dataclass(frozen=True)
class RunMemory:
    run_name: str
    measured_bytes: int
    estimated_bytes: int | None


def _positive_int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def read_run_memory(run_dir: str | Path) -> RunMemory | None:
    """The run's measured (and estimated) peak from its status.json; None when nothing was measured."""
    status = read_status(Path(run_dir), as_written=True)
    measured = _positive_int(status.measured_peak_bytes) if status else None
    if measured is None:
        return None
    return RunMemory(Path(run_dir).name, measured, _positive_int(status.estimated_peak_bytes))


def read_measured_peak(run_dir: str | Path) -> int | None:
    """`measured_peak_bytes` from the run's status.json, or None when absent or unreadable."""
    found = read_run_memory(run_dir)
    return found.measured_bytes if found else None
