"""Paths by keyboard: completion from the folder typed (Tab takes it, else moves on), the file picker
(DirectoryTree in a ModalScreen) in the Data pane's open and the config open/save dialogs, and the
Clean export path that follows the open file."""

import json
import os
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import Button

from screens.app import make_app
from widgets.file_picker import FilePicker, PickerTree
from widgets.path_input import PathInput, complete_path
from workbench.data.export import default_clean_path

ROWS = [{"instruction": f"question {i}", "output": f"answer {i}"} for i in range(6)]


def tree(tmp_path: Path) -> Path:
    (tmp_path / "data" / "deep").mkdir(parents=True)
    (tmp_path / "data" / "train.jsonl").write_text("\n".join(json.dumps(row) for row in ROWS))
    (tmp_path / "data" / "tiny.json").write_text(json.dumps(ROWS[:2]))
    (tmp_path / "data" / "notes.txt").write_text("not data")
    (tmp_path / "data" / ".hidden.jsonl").write_text("")
    (tmp_path / "data" / "deep" / "more.csv").write_text("instruction,output\nq,a\n")
    (tmp_path / "data" / "dataset_info.json").write_text(json.dumps({"alpaca_en": {}, "alpaca_zh": {}, "glaive": {}}))
    return tmp_path


def test_completion_comes_from_the_typed_folder(tmp_path):
    base = tree(tmp_path)
    suffixes = (".json", ".jsonl", ".csv")
    assert complete_path("da", base_dir=base) == "data/"
    assert complete_path("data/tr", base_dir=base, suffixes=suffixes) == "data/train.jsonl"
    assert complete_path("data/t", base_dir=base, suffixes=suffixes) == "data/tiny.json"  # first of two
    assert complete_path("data/no", base_dir=base, suffixes=suffixes) is None  # notes.txt is not data
    assert complete_path("data/de", base_dir=base) == "data/deep/"
    assert complete_path("data/deep/", base_dir=base, suffixes=suffixes) == "data/deep/more.csv"
    assert complete_path("data/.h", base_dir=base) == "data/.hidden.jsonl"  # hidden only once a dot is typed
    assert complete_path("data/dataset_info.json#al", base_dir=base) == "data/dataset_info.json#alpaca_"
    assert complete_path("data/dataset_info.json#g", base_dir=base) == "data/dataset_info.json#glaive"
    assert complete_path(str(base / "data" / "tr"), suffixes=suffixes) == str(base / "data" / "train.jsonl")
    assert complete_path("data/train.jsonl", base_dir=base) is None  # nothing to add


class OnePathBox(App):
    def compose(self) -> ComposeResult:
        yield PathInput(id="box")
        yield Button("next", id="next")


async def test_tab_takes_the_grey_completion_and_otherwise_moves_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tree(tmp_path))
    app = OnePathBox()
    async with app.run_test() as pilot:
        box = app.query_one(PathInput)
        box.focus()
        await pilot.press(*"data/tr")
        await pilot.pause(0.2)
        assert box.completion == "data/train.jsonl"
        await pilot.press("tab")
        await pilot.pause()
        assert box.value == "data/train.jsonl" and app.focused is box
        await pilot.press("tab")  # nothing left to complete: Tab moves on, as everywhere
        await pilot.pause()
        assert app.focused is app.query_one("#next")


async def until(pilot, condition, seconds: float = 20.0) -> None:
    """Pause until `condition()` (the tree loads folders in a worker that never completes)."""
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("timed out")


async def test_the_data_pane_opens_a_file_picked_with_the_keyboard(tmp_path, monkeypatch, fixed_devices):
    monkeypatch.chdir(tree(tmp_path))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="data")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker)
        await pilot.press("down")  # from the path box into the tree
        await pilot.pause()
        picker_tree = app.screen.query_one(PickerTree)
        assert app.focused is picker_tree
        await until(pilot, lambda: len(picker_tree.root.children) > 0)
        labels = " ".join(str(node.label) for node in picker_tree.root.children)
        assert "data" in labels and "notes.txt" not in labels
        await pilot.press("down", "enter")  # the data folder opens in the tree
        await until(pilot, lambda: len(picker_tree.cursor_node.children) > 0)
        names = [str(node.label) for node in picker_tree.cursor_node.children]
        assert "train.jsonl" in names and "notes.txt" not in names and ".hidden.jsonl" not in names
        position = names.index("train.jsonl")
        await pilot.press(*["down"] * (position + 1), "enter")
        await pilot.pause()
        assert not isinstance(app.screen, FilePicker)
        await until(pilot, lambda: app.screen.loaded is not None)
        assert app.screen.loaded.path.name == "train.jsonl"
        assert app.screen.query_one("#data-path").value == "data/train.jsonl"


async def test_the_config_dialogs_are_file_pickers(tmp_path, monkeypatch, fixed_devices):
    monkeypatch.chdir(tmp_path)
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="hyperparameters")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker) and app.screen.save
        await pilot.press("enter")  # the suggested configs/run.yaml
        await pilot.pause()
        assert (tmp_path / "configs" / "run.yaml").is_file()
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker) and not app.screen.save
        box = app.screen.query_one(PathInput)
        box.value = "configs/missing.yaml"
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FilePicker)  # an open dialog refuses a file that is not there
        assert "no such file" in str(app.screen.query_one("#picker-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, FilePicker)


def test_the_clean_copy_goes_beside_the_source_or_to_the_workspace(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "data" / "rows.jsonl"
    source.parent.mkdir()
    source.write_text("{}")
    assert default_clean_path(source) == tmp_path / "data" / "rows.clean.jsonl"
    # A read-only folder (the tests run as root, for whom chmod would not stop a write).
    writable = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != source.parent and writable(path, mode))
    assert default_clean_path(source) == Path("workspace") / "rows.clean.jsonl"
