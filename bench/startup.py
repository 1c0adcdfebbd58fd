"""Cold start of the workbench: process start -> first paint, and `workbench --help`.

Runs each in a fresh process under a pseudo-terminal (as a user would), 5 times, and prints
the median. The app writes its own first-paint time (seconds since the OS created the process,
so interpreter start and imports count) when WORKBENCH_STARTUP_REPORT is set, then exits.

    .venv/bin/python bench/startup.py
"""

from __future__ import annotations

import json
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
WORKBENCH = str(Path(sys.executable).parent / "workbench")


def first_paint_seconds() -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "startup.json"
        env = {**os.environ, "WORKBENCH_STARTUP_REPORT": str(report), "TERM": "xterm-256color",
               "COLUMNS": "120", "LINES": "40"}
        primary, secondary = pty.openpty()
        process = subprocess.Popen([WORKBENCH], stdin=secondary, stdout=secondary, stderr=secondary, env=env)
        os.close(secondary)
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                os.read(primary, 65536)  # drain the terminal so the app never blocks on output
            except OSError:
                break
        process.wait(timeout=10)
        os.close(primary)
        result = json.loads(report.read_text())
        return result["first_paint_s"], result["heavy_modules_at_paint"]


def help_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([WORKBENCH, "--help"], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    paints, heavy = [], set()
    for _ in range(RUNS):
        seconds, modules = first_paint_seconds()
        paints.append(seconds)
        heavy.update(modules)
    helps = [help_seconds() for _ in range(RUNS)]
    print(f"first paint (s), {RUNS} runs: {', '.join(f'{s:.3f}' for s in paints)}; median {statistics.median(paints):.3f}")
    print(f"heavy modules imported before first paint: {sorted(heavy) or 'none'}")
    print(f"workbench --help (s), {RUNS} runs: {', '.join(f'{s:.3f}' for s in helps)}; median {statistics.median(helps):.3f}")


if __name__ == "__main__":
    main()
