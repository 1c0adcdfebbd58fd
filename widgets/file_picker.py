"""A keyboard-driven file picker for open and save dialogs: a path box with completion over a
folder tree.

Keys: type a path (Tab takes the grey completion) and Enter; or Tab / ↓ into the tree, ↑↓ to move,
Enter on a file to pick it, Enter on a folder to open it in the tree, Backspace for the folder above;
Esc cancels. Dismisses with the chosen Path, or None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Label, Static

from widgets.path_input import PathInput


class PickerTree(DirectoryTree):
    """The folder tree: hidden entries and files of other kinds left out; Backspace goes up a folder."""

    BINDINGS = [Binding("backspace", "parent", "Folder above", show=False)]

    def __init__(self, path: Path, suffixes: Optional[tuple[str, ...]], **kwargs) -> None:
        super().__init__(path, **kwargs)
        self.suffixes = suffixes

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [
            path
            for path in paths
            if not path.name.startswith(".")
            and (self.suffixes is None or path.name.endswith(self.suffixes) or self._safe_is_dir(path))
        ]

    def action_parent(self) -> None:
        current = Path(self.path).resolve()
        if current.parent != current:
            self.path = current.parent


class FilePicker(ModalScreen[Optional[Path]]):
    """Pick a file to open, or name one to save.

    Args:
        title: what the dialog is for ("Open a data file").
        initial: the path to start from (its folder roots the tree; "" for the working directory).
        suffixes: the file kinds listed and completed (None: every file).
        save: a save dialog: the typed path may be new (the caller decides about overwriting).
        accept_directory: folders this returns True for are picked by Enter like files (a
            save_to_disk dataset, a model directory); other folders open in the tree.
        hint: one line under the title.
    """

    DEFAULT_CSS = """
    FilePicker {
        align: center middle;
        background: $background 60%;
    }
    #picker-dialog {
        width: 90%;
        max-width: 110;
        height: 90%;
        max-height: 40;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    #picker-title { text-style: bold; }
    #picker-hint, #picker-keys { color: $text-muted; height: auto; }
    #picker-path { margin: 1 0 0 0; border: none; height: 1; background: $boost; }
    #picker-error { color: $error; height: auto; }
    #picker-tree { height: 1fr; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "into_tree", "Tree", show=False)]

    def __init__(
        self,
        title: str,
        initial: str = "",
        *,
        suffixes: Optional[Iterable[str]] = None,
        save: bool = False,
        accept_directory: Optional[Callable[[Path], bool]] = None,
        hint: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.initial = initial
        self.suffixes = tuple(suffixes) if suffixes is not None else None
        self.save = save
        self.accept_directory = accept_directory
        self.hint = hint

    def _start_folder(self) -> Path:
        typed = Path(self.initial).expanduser() if self.initial else Path.cwd()
        for candidate in (typed, typed.parent):
            if candidate.is_dir():
                return candidate
        return Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="picker-dialog"):
            yield Label(self.title_text, id="picker-title")
            if self.hint:
                yield Static(escape(self.hint), id="picker-hint")
            yield PathInput(self.initial, suffixes=self.suffixes, id="picker-path", placeholder="a path (Tab completes)")
            yield Static("", id="picker-error")
            yield PickerTree(self._start_folder(), self.suffixes, id="picker-tree")
            yield Static(
                "Enter picks · Tab takes the grey completion, else moves to the tree · in the tree: ↑↓ move, "
                "Enter on a file picks it, on a folder opens it, Backspace goes up · Esc cancels",
                id="picker-keys",
            )

    def on_mount(self) -> None:
        self.query_one("#picker-path", PathInput).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_into_tree(self) -> None:
        self.query_one(PickerTree).focus()

    def _error(self, text: str) -> None:
        self.query_one("#picker-error", Static).update(escape(text))

    @on(Input.Changed, "#picker-path")
    def _follow_typed_folder(self, event: Input.Changed) -> None:
        """The tree shows the folder typed so far (once its `/` is typed)."""
        folder_text = event.value.rpartition("/")[0] + "/" if "/" in event.value else ""
        folder = Path(folder_text).expanduser() if folder_text else None
        tree = self.query_one(PickerTree)
        if folder is not None and folder.is_dir() and folder.resolve() != Path(tree.path).resolve():
            tree.path = folder

    @on(Input.Submitted, "#picker-path")
    def _typed(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self._error("Type a path, or pick one in the tree.")
            return
        path = Path(text).expanduser()
        if path.is_dir() and not (self.accept_directory and self.accept_directory(path)):
            self.query_one(PickerTree).path = path
            self._error("")
            return
        if not self.save and not path.exists() and "#" not in text:
            self._error(f"{text}: no such file")
            return
        self.dismiss(Path(text).expanduser())

    @on(DirectoryTree.FileSelected)
    def _file_chosen(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        path = _shown(event.path)
        if self.save:  # the name goes in the box, so an existing file is never overwritten by one key
            box = self.query_one("#picker-path", PathInput)
            with box.prevent(Input.Changed):
                box.value = str(path)
            box.cursor_position = len(box.value)
            box.focus()
            return
        self.dismiss(path)

    @on(DirectoryTree.DirectorySelected)
    def _folder_chosen(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        path = _shown(event.path)
        if self.accept_directory and self.accept_directory(event.path) and not self.save:
            self.dismiss(path)
            return
        box = self.query_one("#picker-path", PathInput)
        with box.prevent(Input.Changed):  # the tree is already there: it must not re-root under the cursor
            box.value = f"{path}/"
        box.cursor_position = len(box.value)


def _shown(path: Path) -> Path:
    """A path under the working directory as a relative one (shorter, and what a config keeps)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)
