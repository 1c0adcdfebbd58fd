"""The one way sizes and durations are written, for every pane, the CLI and the trainer's log lines."""

from __future__ import annotations

import math

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30


def format_bytes(count: float | None) -> str:
    """Binary units: '1.07 GiB', '19.4 GiB', '512 MiB', '12 KiB', '300 bytes'; '—' when unknown.

    GiB keep three significant digits, so a measured peak and its estimate (Train pane, Memory
    pane) still differ on screen when they differ by a few per cent.
    """
    if count is None or not math.isfinite(count):
        return "—"
    size = abs(count)
    if size >= GIB:
        gib = count / GIB
        return f"{gib:.2f} GiB" if size < 10 * GIB else f"{gib:.1f} GiB" if size < 100 * GIB else f"{gib:.0f} GiB"
    if size >= MIB:
        return f"{count / MIB:.0f} MiB"
    if size >= KIB:
        return f"{count / KIB:.0f} KiB"
    return f"{count:.0f} bytes"


def format_duration(seconds: float | None) -> str:
    """'2h 05m', '7m 30s', '42s'; '—' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = int(round(max(0.0, seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
