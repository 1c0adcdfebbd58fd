"""The Train pane's export dialog, driven by the Pilot on a tiny run (no training)."""

from __future__ import annotations

import pytest

from export_test_support import chatml_tokenizer, build_tiny_model, make_run
from screens.app import make_app


@pytest.fixture
def tiny_run(tmp_path, monkeypatch, default_tokenizer):
    runs = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs))
    tokenizer = chatml_tokenizer(tmp_path / "tokenizer", default_tokenizer.chat_template)
    model_dir = build_tiny_model(tmp_path / "model", tokenizer)
    return make_run(runs / "20261201-120000-tiny", model_dir, tokenizer)


async def wait_for_export(app, pilot) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()
    await app.screen.workers.wait_for_complete()
    await pilot.pause()


async def test_the_dialog_exports_a_gguf_and_shows_the_path_and_the_command(tiny_run, fixed_devices):
    from textual.widgets import Select

    from widgets.train_export import ExportDialog

    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for_export(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        assert dialog.query_one("#export-quant-row").display is False  # quantization is for gguf only
        dialog.query_one("#export-format", Select).value = "gguf"
        await pilot.pause()
        assert dialog.query_one("#export-quant-row").display and not dialog.query_one("#export-dtype-row").display
        target = tiny_run / "exports" / "gguf-q8_0"
        assert dialog.query_one("#export-target").value == str(target)
        assert "--format gguf --quant q8_0" in str(dialog.query_one("#export-command").render())
        await pilot.click("#export-start")
        await wait_for_export(app, pilot)
        status = str(dialog.query_one("#export-status").render())
        assert (target / "tiny-q8_0.gguf").is_file() and (target / "Modelfile").is_file()
        assert str(target) in status and f"workbench export {tiny_run} --format gguf --quant q8_0" in status
        assert "ollama create tiny" in status
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ExportDialog)


async def test_an_export_that_cannot_be_done_says_why_in_the_dialog(tiny_run, fixed_devices):
    from widgets.train_export import ExportDialog

    (tiny_run / "exports" / "hf").mkdir(parents=True)
    (tiny_run / "exports" / "hf" / "keep.txt").write_text("mine")
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for_export(app, pilot)
        await pilot.click("#train-export")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        await pilot.click("#export-start")
        await wait_for_export(app, pilot)
        assert "not empty" in str(dialog.query_one("#export-status").render())
        assert not dialog.query_one("#export-start").disabled  # the user can fix it and try again
        assert (tiny_run / "exports" / "hf" / "keep.txt").read_text() == "mine"
