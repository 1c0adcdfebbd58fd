"""The Data pane's finishing touches: the search says how many rows match, a failed open keeps naming
the file still shown, the next file starts without the last one's filter, and the export path
follows the file that is open."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from textual.widgets import Input, Select

from test_data_pane import FIXTURES, data_app, open_file, settle


def copy_messy(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    shutil.copy2(FIXTURES / "messy.jsonl", path)
    return path


async def test_search_shows_how_many_rows_match(fixed_devices, tmp_path):
    messy = copy_messy(tmp_path, "messy.jsonl")
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        await open_file(pilot, messy)
        rows = len(screen.session.conversations)
        assert str(screen.query_one("#data-matches").render()) == ""
        screen.query_one("#data-search", Input).value = "zzz-nothing-like-this"
        await settle(pilot, lambda: "0 of" in str(screen.query_one("#data-matches").render()))
        assert str(screen.query_one("#data-matches").render()) == f"0 of {rows:,}"
        screen.query_one("#data-search", Input).value = ""
        await settle(pilot, lambda: str(screen.query_one("#data-matches").render()) == "")


async def test_the_next_file_starts_without_the_last_files_filter(fixed_devices, tmp_path):
    first = copy_messy(tmp_path / "a", "first.jsonl")
    second = tmp_path / "b" / "second.json"
    second.parent.mkdir()
    second.write_text(json.dumps([{"instruction": f"q{i}", "output": f"a{i}"} for i in range(5)]))
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        await open_file(pilot, first)
        screen.query_one("#data-search", Input).value = "zzz"
        screen.query_one("#data-flag", Select).value = "dup"
        await settle(pilot, lambda: not screen.row_filter.is_empty)
        await open_file(pilot, second)
        await settle(pilot, lambda: screen.loaded.path == second and screen.report is not None)
        assert screen.query_one("#data-search", Input).value == ""
        assert screen.query_one("#data-flag", Select).value == ""
        assert screen.row_filter.is_empty
        assert len(screen.query_one("#data-table").view) == 5


async def test_a_failed_open_keeps_naming_the_file_still_shown(fixed_devices, tmp_path):
    messy = copy_messy(tmp_path, "messy.jsonl")
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        await open_file(pilot, messy)
        await open_file(pilot, tmp_path / "missing.jsonl")
        await settle(pilot, lambda: screen.query_one("#data-error").has_class("-shown"))
        assert "messy.jsonl" in str(screen.query_one("#data-status").render())
        assert "still showing messy.jsonl" in str(screen.query_one("#data-error").render())
        assert screen.loaded.path == messy and len(screen.query_one("#data-table").view) > 0


async def test_the_export_path_follows_the_open_file_until_one_is_typed(fixed_devices, tmp_path):
    first = copy_messy(tmp_path / "a", "first.jsonl")
    second = copy_messy(tmp_path / "b", "second.jsonl")
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        export = screen.query_one("#export-path", Input)
        await open_file(pilot, first)
        assert export.value == str(tmp_path / "a" / "first.clean.jsonl")
        await open_file(pilot, second)
        assert export.value == str(tmp_path / "b" / "second.clean.jsonl")
        export.value = str(tmp_path / "mine.jsonl")  # typed by hand: kept
        await open_file(pilot, first)
        assert export.value == str(tmp_path / "mine.jsonl")


async def test_long_steps_show_a_real_progress_bar(fixed_devices, tmp_path):
    from textual.widgets import ProgressBar

    messy = copy_messy(tmp_path, "messy.jsonl")
    app = data_app(fixed_devices)
    fractions = []
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        bar = screen.query_one("#data-progress", ProgressBar)
        original = type(screen).on_data_screen_progress

        def watch(self, message) -> None:
            original(self, message)
            fractions.append((message.fraction, bar.display, bar.percentage))

        type(screen).on_data_screen_progress = watch
        try:
            await open_file(pilot, messy)
        finally:
            type(screen).on_data_screen_progress = original
        shown = [(fraction, percentage) for fraction, display, percentage in fractions if display]
        assert shown and all(abs(fraction - percentage) < 1e-9 for fraction, percentage in shown)
        assert not bar.display  # the summary replaces it once the checks are done
