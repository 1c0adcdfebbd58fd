"""Start-up timing: seconds since this process was created (interpreter start included)."""

from __future__ import annotations

import os
import time


def seconds_since_process_start() -> float:
    """Wall time since the OS created this process, so imports and interpreter start count too."""
    try:
        with open(f"/proc/{os.getpid()}/stat", encoding="ascii") as handle:
            start_ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as handle:
            uptime = float(handle.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        import psutil

        return time.time() - psutil.Process().create_time()
