"""One row of the config form: the field's name, an editor suited to its kind, and its problem."""

from __future__ import annotations

from dataclasses import dataclass

from typing import Any

from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Checkbox, Input, Label, Select, Static, TextArea

from widgets.path_input import PathInput
from workbench.config.fields import FieldSpec
from workbench.config.io import PATH_FIELDS


def _on_off(value: bool) -> str:
    return "on" if value else "off"


class ConfigFieldRow(Vertical):
    """Edits one config field. Sends `Edited` with the raw text (the screen validates through the
    store) and `Focused` so the help panel can explain the field; the screen shows problems with
    `show_problem` and new values with `show_value` (attributes down, messages up)."""

    @dataclass
    class Edited(Message):
        row: ConfigFieldRow
        text: str

    @dataclass
    class Focused(Message):
        row: ConfigFieldRow

    def __init__(self, spec: FieldSpec, value: Any) -> None:
        super().__init__(classes="config-field", id=f"field-{spec.dotted.replace('.', '-')}")
        self.spec = spec
        self._initial = value
        self.problem: tuple[str, str] | None = None
        """(severity, message) shown under the field, or None."""

    def compose(self) -> ComposeResult:
        # A two-column grid (name | editor, the problem spanning both below): no inner containers,
        # since the form holds ~50 rows and every widget costs layout time on each edit.
        yield Label(self.spec.name, classes="config-field-label")
        yield self._make_editor(self._initial)
        yield Static("", classes="config-field-problem")

    def _make_editor(self, value: Any) -> Widget:
        spec = self.spec
        if spec.kind == "choice":
            return Select([(choice, choice) for choice in spec.choices], value=str(value), allow_blank=False, compact=True, classes="config-editor")
        if spec.kind == "bool":
            return Checkbox(_on_off(bool(value)), bool(value), compact=True, classes="config-editor")
        if spec.kind in ("lines", "yaml"):
            area = TextArea(spec.format(value), classes="config-editor", soft_wrap=True, show_line_numbers=False)
            area.tab_behavior = "focus"
            return area
        if spec.dotted in PATH_FIELDS:  # Tab takes the grey completion of the path typed, else moves on
            return PathInput(spec.format(value), placeholder=spec.placeholder, compact=True, select_on_focus=False, classes="config-editor")
        return Input(spec.format(value), placeholder=spec.placeholder, compact=True, select_on_focus=False, classes="config-editor")

    @property
    def editor(self) -> Widget:
        return self.query_one(".config-editor")

    def editor_text(self) -> str:
        editor = self.editor
        if isinstance(editor, Select):
            return str(editor.value)
        if isinstance(editor, Checkbox):
            return "true" if editor.value else "false"
        if isinstance(editor, TextArea):
            return editor.text
        return editor.value

    def show_value(self, value: Any) -> None:
        """Show a value that came from the store, unless the editor already means it (so text
        being typed, like '2e-4' for 0.0002, is never rewritten under the cursor)."""
        try:
            if self.spec.parse(self.editor_text()) == value:
                return
        except ValueError:
            pass
        editor = self.editor
        with editor.prevent(Input.Changed, Select.Changed, Checkbox.Changed, TextArea.Changed):
            if isinstance(editor, Select):
                editor.value = str(value)
            elif isinstance(editor, Checkbox):
                editor.value = bool(value)
                editor.label = _on_off(bool(value))
            elif isinstance(editor, TextArea):
                editor.load_text(self.spec.format(value))
            else:
                editor.value = self.spec.format(value)

    def show_problem(self, problem: tuple[str, str] | None) -> None:
        """Show ("error" | "warning", message) under the field, or clear it with None."""
        if problem == self.problem:
            return
        self.problem = problem
        label = self.query_one(".config-field-problem", Static)
        label.update(f"{'✗' if problem and problem[0] == 'error' else '⚠'} {problem[1]}" if problem else "")
        for severity in ("error", "warning"):
            self.set_class(problem is not None and problem[0] == severity, f"-{severity}")

    def _edited(self, event: Message) -> None:
        event.stop()
        self.post_message(self.Edited(self, self.editor_text()))

    def on_input_changed(self, event: Input.Changed) -> None:
        self._edited(event)

    def on_select_changed(self, event: Select.Changed) -> None:
        self._edited(event)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.checkbox.label = _on_off(event.value)
        self._edited(event)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._edited(event)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        # Values apply as they are typed; Enter confirms and moves on, as in a paper form.
        event.stop()
        self.screen.focus_next()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self.post_message(self.Focused(self))
