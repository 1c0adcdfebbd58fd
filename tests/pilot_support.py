"""Waiting in Pilot tests for what a worker or a timer does, without fixed sleeps."""

from __future__ import annotations

import time


async def wait_until(pilot, condition, what: str, timeout_s: float = 120.0) -> None:
    """Pause the pilot until `condition()` holds; fail naming `what` after `timeout_s`.

    `app.workers.wait_for_complete()` alone is not enough where the worker starts after the first
    paint (`call_after_refresh`): on a loaded machine the wait can return before the worker exists.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        await pilot.pause(0.1)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
