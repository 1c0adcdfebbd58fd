"""The Data pane driven like a person would: open, browse, filter, look at tokens, clean, export."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Select
from textual.worker import WorkerCancelled

from screens.app import make_app
from widgets.data_clean import CleaningPanel
from widgets.data_detail import RowDetail
from widgets.data_table import RowTable

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def data_app(fixed_devices):
    return make_app(load_model=False, device_report=fixed_devices, initial_pane="data")


async def settle(pilot, until=lambda: True, timeout: float = 60.0) -> None:
    """Let workers finish and their messages land, until `until()` holds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await pilot.app.workers.wait_for_complete()
        except WorkerCancelled:  # a newer request replaced a worker: that is the pane working
            pass
        await pilot.pause()
        if until() or time.monotonic() > deadline:
            break
        await pilot.pause(0.05)
    assert until(), "the pane did not settle"


async def click_use_for_training(pilot) -> None:
    """Press the Clean tab's "Use for training" button, as a user reaches it."""
    screen = pilot.app.screen
    screen.show_tab("tab-clean")
    await pilot.pause()
    screen.query_one("#export-use").scroll_visible(animate=False)
    await pilot.pause()
    await pilot.click("#export-use")
    await pilot.pause()


async def open_file(pilot, path: Path) -> None:
    screen = pilot.app.screen
    path_input = screen.query_one("#data-path", Input)
    path_input.value = str(path)
    path_input.focus()
    await pilot.press("enter")
    await settle(pilot, lambda: screen.report is not None or screen.query_one("#data-error").has_class("-shown"))


@pytest.fixture
def messy(tmp_path) -> Path:
    path = tmp_path / "messy.jsonl"
    shutil.copy2(FIXTURES / "messy.jsonl", path)
    return path


async def test_open_lists_every_row_with_its_flags_and_tokens(fixed_devices, messy):
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, messy)
        screen = app.screen
        table = screen.query_one(RowTable)

        assert len(table.view) == 27
        assert table.flags[0] == ("dup",) and table.flags[20] == ("long",)
        assert table.tokens[20] > app.config_store.config.data.max_seq_length
        assert "27 rows" in str(screen.query_one("#data-status").render())
        assert app.focused is table
        await pilot.press("down", "down")
        await pilot.pause(0.2)
        assert table.current_row == 2
        detail = screen.query_one(RowDetail)
        assert detail.conversation.source_index == 2
        assert any("near duplicates" in reason for reason in detail.reasons)


async def test_model_view_marks_trained_tokens_and_warns_on_cut_rows(fixed_devices, messy):
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, messy)
        screen = app.screen
        detail = screen.query_one(RowDetail)
        await pilot.press("m")
        await pilot.pause(0.2)

        example = detail.example
        assert detail.mode == "model" and example is not None
        assert example.eos_trained and not example.truncated
        trained = "".join(t for t, label in zip(example.token_texts, example.labels) if label != -100)
        assert trained == detail.conversation.final_response + "<|im_end|>"
        assert "end-of-turn trained" in str(screen.query_one("#detail-summary").render())

        table = screen.query_one(RowTable)
        table.cursor = 20
        await pilot.pause(0.3)
        assert detail.example.truncated and not detail.example.eos_trained
        summary = str(screen.query_one("#detail-summary").render())
        assert "not learn to stop" in summary and "training cuts it" in summary


async def test_search_flag_and_length_filters(fixed_devices, messy):
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, messy)
        screen = app.screen
        table = screen.query_one(RowTable)

        await pilot.press("slash", *"haiku")
        await settle(pilot, lambda: len(table.view) == 5)
        assert [table.rows[i].source_index for i in table.view] == [4, 5, 6, 7, 8]

        screen.query_one("#data-search", Input).value = ""
        screen.query_one("#data-flag", Select).value = "dup"
        await settle(pilot, lambda: len(table.view) == 2)
        assert [table.rows[i].source_index for i in table.view] == [0, 1]

        screen.query_one("#data-flag", Select).value = ""
        screen.query_one("#data-min-tokens", Input).value = "500"
        await settle(pilot, lambda: len(table.view) == 1)
        assert table.current_row == 20


async def test_a_bad_file_shows_one_line_in_the_error_panel(fixed_devices, tmp_path):
    broken = tmp_path / "broken.jsonl"
    shutil.copy2(FIXTURES / "bad" / "broken_line.jsonl", broken)
    before = (broken.read_bytes(), os.stat(broken).st_mtime_ns)
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, broken)
        panel = app.screen.query_one("#data-error")

        assert panel.has_class("-shown") and panel.display
        text = str(panel.render())
        assert "broken.jsonl:2: invalid JSON" in text and "\n" not in text.strip()
        assert app.screen.session is None
    assert (broken.read_bytes(), os.stat(broken).st_mtime_ns) == before


async def test_clean_counts_undo_and_export(fixed_devices, messy, tmp_path):
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, messy)
        screen = app.screen
        table = screen.query_one(RowTable)
        assert screen.plan_summaries["dedupe_near"] == "2 rows dropped"
        assert screen.plan_summaries["drop_too_long"] == "1 rows dropped"

        screen.query_one(CleaningPanel).post_message(CleaningPanel.StepChosen("dedupe_near"))
        await settle(pilot, lambda: len(table.view) == 25 and screen.report is not None)
        assert screen.plan_summaries["dedupe_near"] == "0 rows dropped"
        await pilot.press("u")
        await settle(pilot, lambda: len(table.view) == 27 and screen.report is not None)

        table.focus()
        table.cursor = 18  # "Sydney" answer of the conflict 17/18: keep it by hand
        await pilot.pause(0.2)
        await pilot.press("k")
        await settle(pilot, lambda: len(table.view) == 26 and screen.report is not None)
        assert 17 not in [table.rows[i].source_index for i in table.view]

        out = tmp_path / "out" / "clean.jsonl"
        screen.query_one("#export-path", Input).value = str(out)
        screen.query_one(CleaningPanel).post_message(CleaningPanel.ExportRequested(str(out), "sharegpt"))
        await settle(pilot, lambda: screen.last_export is not None)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 26 and "conversations" in rows[0]
        recipe = (out.parent / "clean.recipe.yaml").read_text()
        assert "mode: pick" in recipe and "keep_rows: [18]" in recipe
        await click_use_for_training(pilot)
        assert app.config_store.config.data.train_file == str(out)
    assert messy.read_bytes() == (FIXTURES / "messy.jsonl").read_bytes()


async def test_a_large_file_scrolls_without_waiting(fixed_devices, tmp_path, monkeypatch):
    """20,000 rows: listing is immediate, and paging to the end does not wait for the checks."""
    path = tmp_path / "large.jsonl"
    with open(path, "w") as handle:
        for i in range(20_000):
            handle.write(json.dumps({"instruction": f"Question number {i} about topic {i % 97}?", "output": f"Answer {i}."}) + "\n")
    drawn = []
    draw_row = RowTable._row_strip
    monkeypatch.setattr(RowTable, "_row_strip", lambda self, index, *rest: drawn.append(index) or draw_row(self, index, *rest))
    app = data_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = app.screen
        screen.open_path(str(path))
        table = screen.query_one(RowTable)
        await settle(pilot, lambda: len(table.view) == 20_000, timeout=30)
        table.focus()
        started = time.monotonic()
        for _ in range(40):
            await pilot.press("pagedown")
        await pilot.press("end")
        await pilot.pause()
        elapsed = time.monotonic() - started
        assert table.current_row == 19_999
        assert elapsed < 30, f"paging took {elapsed:.1f} s"
        assert 30 < len(drawn) < 5_000  # rows are drawn when they come on screen, not all 20,000


async def test_use_for_training_trains_on_the_export_in_its_format(fixed_devices, tmp_path):
    """The config trained on an alpaca file with a column mapping and another validation file;
    after "Use for training" on a messages export the trainer's loader reads the new file."""
    from workbench.data.mixture import load_mixture

    source = tmp_path / "alpaca.json"
    shutil.copy2(FIXTURES / "alpaca.json", source)
    old_validation = tmp_path / "old_validation.json"
    shutil.copy2(FIXTURES / "alpaca.json", old_validation)
    app = data_app(fixed_devices)
    app.config_store.update("data.format", "alpaca")
    app.config_store.update("data.columns", {"prompt": "instruction", "response": "output"})
    app.config_store.update("data.validation_file", str(old_validation))
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, source)
        screen = app.screen
        out = tmp_path / "out" / "clean.jsonl"
        screen.query_one(CleaningPanel).post_message(CleaningPanel.ExportRequested(str(out), "messages"))
        await settle(pilot, lambda: screen.last_export is not None)
        await click_use_for_training(pilot)
        data = app.config_store.config.data
        assert (data.train_file, data.format, data.columns, data.validation_file) == (str(out), "messages", None, None)
        mixture = load_mixture(data, seed=0)
        assert len(mixture.train) + len(mixture.eval) == 4
