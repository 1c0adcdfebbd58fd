"""A path box whose Tab completes: suggestions come from the folder typed so far (not only the
working directory), and Tab takes the grey suggestion when there is one, else moves on.

`complete_path` is the completion itself (pure, tested without a UI); `PathSuggester` offers it to
an Input; `PathInput` is an Input with that suggester and the Tab behaviour.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Optional

from textual.binding import Binding
from textual.suggester import Suggester
from textual.widgets import Input

MAX_LISTED = 2000
"""A folder with more entries than this is completed from its first MAX_LISTED names (sorted)."""


def _entries(folder: Path) -> list[tuple[str, bool]]:
    """(name, is_dir) in `folder`, sorted; [] when it cannot be listed."""
    try:
        with os.scandir(folder) as scan:
            found = []
            for entry in scan:
                try:
                    found.append((entry.name, entry.is_dir()))
                except OSError:
                    continue
                if len(found) >= MAX_LISTED:
                    break
    except OSError:
        return []
    return sorted(found)


def _dataset_info_entries(info_file: Path) -> list[str]:
    try:
        data = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return sorted(data) if isinstance(data, dict) else []


def complete_path(
    text: str, *, suffixes: Optional[Iterable[str]] = None, base_dir: str | os.PathLike | None = None
) -> Optional[str]:
    """The completion of a typed path, or None when there is nothing to add.

    The folder is the one typed (`data/sub/` lists data/sub, `~/` the home folder, relative paths
    from `base_dir`, else the working directory). One match completes whole (a folder gets its `/`);
    several complete to their common start when that is longer than what was typed, else to the
    first of them, so a grey hint always shows what Tab would give. Hidden entries show only once a
    `.` is typed; with `suffixes`, files of other kinds are left out (folders never are).
    `dataset_info.json#al` completes an entry name of that file.
    """
    if not text:
        return None
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if "#" in text:
        head, _, prefix = text.rpartition("#")
        info = Path(os.path.expanduser(head))
        names = [name for name in _dataset_info_entries(info if info.is_absolute() else base / info) if name.startswith(prefix)]
        return _best(text, head + "#", prefix, [(name, False) for name in names])
    head, slash, prefix = text.rpartition("/")
    folder_text = head + slash
    folder = Path(os.path.expanduser(folder_text or "."))
    if not folder.is_absolute():
        folder = base / folder
    wanted = tuple(suffixes) if suffixes is not None else None
    matches = [
        (name, is_dir)
        for name, is_dir in _entries(folder)
        if name.startswith(prefix)
        and (prefix.startswith(".") or not name.startswith("."))
        and (is_dir or wanted is None or name.endswith(wanted))
    ]
    return _best(text, folder_text, prefix, matches)


def _best(text: str, head: str, prefix: str, matches: list[tuple[str, bool]]) -> Optional[str]:
    if not matches:
        return None
    if len(matches) == 1:
        name, is_dir = matches[0]
        completed = head + name + ("/" if is_dir else "")
    else:
        common = os.path.commonprefix([name for name, _ in matches])
        if len(common) > len(prefix):
            completed = head + common
        else:
            name, is_dir = matches[0]
            completed = head + name + ("/" if is_dir else "")
    return completed if completed != text else None


class PathSuggester(Suggester):
    """Offers `complete_path` of the text typed, read afresh each time (the folder may change)."""

    def __init__(self, *, suffixes: Optional[Iterable[str]] = None) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.suffixes = tuple(suffixes) if suffixes is not None else None

    async def get_suggestion(self, value: str) -> Optional[str]:
        return complete_path(value, suffixes=self.suffixes)


class PathInput(Input):
    """An Input for a path: Tab takes the grey completion when one is shown, else moves to the next control."""

    BINDINGS = [Binding("tab", "complete_or_next", "Complete", show=False)]

    def __init__(self, value: str = "", *, suffixes: Optional[Iterable[str]] = None, **kwargs) -> None:
        super().__init__(value, suggester=PathSuggester(suffixes=suffixes), **kwargs)

    @property
    def completion(self) -> str:
        """The grey suggestion Tab would take ("" when none is shown)."""
        suggestion = self._suggestion
        return suggestion if len(suggestion) > len(self.value) and suggestion.startswith(self.value) else ""

    def action_complete_or_next(self) -> None:
        completion = self.completion
        if completion and self.cursor_at_end:
            self.value = completion
            self.cursor_position = len(completion)
        else:
            self.screen.focus_next()
