"""The measured peak a finished (or running) training run recorded, to show beside the estimate."""

from __future__ import annotations

import json
from pathlib import Path


def read_measured_peak(run_dir: str | Path) -> int | None:
    """`measured_peak_bytes` from the run's status.json, or None when absent or unreadable."""
    try:
        status = json.loads((Path(run_dir) / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = status.get("measured_peak_bytes") if isinstance(status, dict) else None
    return int(value) if isinstance(value, (int, float)) and value > 0 else None
