"""The Data pane never hangs on a bad file: a FIFO is refused by name, and checks that fail say so
instead of "checking…" for ever."""

from __future__ import annotations

import os
import shutil

from test_data_pane import FIXTURES, data_app, open_file, settle
from textual.widgets import Static


async def test_a_fifo_is_refused_by_name_without_hanging(fixed_devices, tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, fifo)
        error = str(pilot.app.screen.query_one("#data-error", Static).render())
        assert "pipe.jsonl: is a FIFO (named pipe), not a regular file" in error


async def test_checks_that_fail_say_so_instead_of_checking_for_ever(fixed_devices, tmp_path, monkeypatch):
    from workbench.data.cleaning import CleaningSession

    def broken_report(self, progress=None):
        raise RuntimeError("the checks broke on this file")

    monkeypatch.setattr(CleaningSession, "report", broken_report)
    path = tmp_path / "messy.jsonl"
    shutil.copy2(FIXTURES / "messy.jsonl", path)
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = pilot.app.screen
        path_input = screen.query_one("#data-path")
        path_input.value = str(path)
        path_input.focus()
        await pilot.press("enter")
        await settle(pilot, lambda: screen.checks_failed is not None)
        status = str(screen.query_one("#data-status", Static).render())
        assert "checks failed: RuntimeError: the checks broke on this file" in status
        assert "checking…" not in status
