"""Cleaning steps with the rows each would touch, the steps applied so far (undo), and export."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING, Mapping

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from widgets.file_picker import FilePicker
from widgets.path_input import PathInput
from workbench.data.cleaning_steps import STEP_LABELS
from workbench.data.export import OUTPUT_FORMATS

if TYPE_CHECKING:
    from workbench.data.cleaning import Plan

class CleaningPanel(VerticalScroll, can_focus=False):
    """The steps (with counts once they are known), the applied steps, and export.

    Messages up: StepChosen (apply a step), UndoRequested, ExportRequested, SettingsChanged (the
    validation share or seed changed, so the split's count is stale).

    Not focusable itself: Tab goes straight to the step list and the fields (focusing one scrolls it
    into view).
    """

    DEFAULT_CSS = """
    CleaningPanel .clean-hint {
        color: $text-muted;
        height: auto;
    }
    CleaningPanel #clean-steps {
        height: auto;
        max-height: 13;
        border: none;
    }
    CleaningPanel .clean-row {
        height: auto;
        min-height: 1;
        margin-top: 1;
    }
    CleaningPanel .clean-label {
        width: auto;
        padding-right: 1;
        color: $text-muted;
    }
    CleaningPanel .clean-label-short {
        width: auto;
        padding: 0 1 0 2;
        color: $text-muted;
    }
    CleaningPanel #clean-fraction, CleaningPanel #clean-seed {
        width: 10;
        height: 1;
        border: none;
        background: $boost;
    }
    CleaningPanel #clean-applied {
        width: 1fr;
        height: auto;
    }
    CleaningPanel #export-path {
        width: 1fr;
        height: 1;
        border: none;
        background: $boost;
    }
    CleaningPanel #export-format {
        width: 24;
        margin-left: 1;
    }
    CleaningPanel #export-status {
        width: 1fr;
        height: auto;
    }
    """

    suggested_export_path = ""
    """The export path last suggested for the open file (replaced when another file opens, unless typed over)."""

    @dataclass
    class StepChosen(Message):
        step: str

    class UndoRequested(Message):
        pass

    @dataclass
    class ExportRequested(Message):
        path: str
        output_format: str

    class SettingsChanged(Message):
        pass

    class UseForTraining(Message):
        """Point the run config at the last export."""

    def compose(self) -> ComposeResult:
        yield Static("Each step shows how many rows it would touch. Enter applies it; u undoes.", classes="clean-hint")
        yield OptionList(*[Option(label, id=step) for step, label in STEP_LABELS.items()], id="clean-steps")
        with Horizontal(classes="clean-row"):
            yield Static("validation share", classes="clean-label")
            yield Input("0.1", id="clean-fraction", restrict=r"[0-9.]*", max_length=5)
            yield Static("seed", classes="clean-label-short")
            yield Input("0", id="clean-seed", restrict=r"[0-9]*", max_length=9)
        with Horizontal(classes="clean-row"):
            yield Static("", id="clean-applied")
            yield Button("Undo", id="clean-undo", disabled=True)
        with Horizontal(classes="clean-row"):
            yield PathInput(placeholder="export to… e.g. data/clean.jsonl (Tab completes)", id="export-path")
            yield Button("Pick…", id="export-pick", tooltip="choose the file with the file picker")
            yield Select([(name, name) for name in OUTPUT_FORMATS], value="messages", allow_blank=False, id="export-format")
            yield Button("Export", id="export-button", variant="primary")
        with Horizontal(classes="clean-row"):
            yield Static("", id="export-status")
            yield Button("Use for training", id="export-use", disabled=True)

    @property
    def fraction(self) -> float:
        try:
            value = float(self.query_one("#clean-fraction", Input).value)
        except ValueError:
            return 0.1
        return value if 0 < value < 1 else 0.1

    @property
    def seed(self) -> int:
        value = self.query_one("#clean-seed", Input).value
        return int(value) if value.isdigit() else 0

    def show_plans(self, summaries: Mapping[str, str | None], query: str) -> None:
        """Each step's effect ('12 rows dropped'); None while it is being computed."""
        steps = self.query_one("#clean-steps", OptionList)
        highlighted = steps.highlighted
        steps.clear_options()
        for step, label in STEP_LABELS.items():
            if step.startswith("filter"):
                label = f"{label} ({query!r})" if query else f"{label} (type a search in Rows first)"
            line = Text(f"{label:<52}")
            summary = summaries.get(step)
            if summary is None:
                line.append("…" if step in summaries else "", style="dim")
            else:
                nothing = summary.startswith("0 ")
                line.append(summary, style="dim" if nothing else "bold yellow")
            steps.add_option(Option(line, id=step))
        if highlighted is not None:
            steps.highlighted = min(highlighted, len(STEP_LABELS) - 1)

    def show_applied(self, applied: list["Plan"], rows: int) -> None:
        if applied:
            steps = "; ".join(f"{plan.operation.describe()} ({plan.summary()})" for plan in applied[-3:])
            more = f"{len(applied) - 3} earlier steps; " if len(applied) > 3 else ""
            text = f"{rows:,} rows after {len(applied)} steps: {more}{steps}"
        else:
            text = f"{rows:,} rows, no steps applied"
        self.query_one("#clean-applied", Static).update(text)
        self.query_one("#clean-undo", Button).disabled = not applied

    def show_export(self, text: str, exported: bool = False) -> None:
        """The export's outcome; `exported` enables "Use for training"."""
        self.query_one("#export-status", Static).update(text)
        self.query_one("#export-use", Button).disabled = not exported

    def suggest_export_path(self, path: str) -> None:
        """Follow the file just opened: replace the path unless the user typed one of their own."""
        field = self.query_one("#export-path", Input)
        if not field.value or field.value == self.suggested_export_path:
            field.value = path
        self.suggested_export_path = path

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.StepChosen(event.option.id))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()  # the panel's buttons speak through its own messages

    @on(Button.Pressed, "#clean-undo")
    def _undo_pressed(self) -> None:
        self.post_message(self.UndoRequested())

    @on(Button.Pressed, "#export-button")
    def _export_pressed(self) -> None:
        self.request_export()

    @on(Button.Pressed, "#export-use")
    def _use_pressed(self) -> None:
        self.post_message(self.UseForTraining())

    @on(Button.Pressed, "#export-pick")
    def _pick_pressed(self) -> None:
        self.pick_export_path()

    def pick_export_path(self) -> None:
        """The file picker for the export target (a save dialog: the file may be new)."""
        def chosen(path) -> None:
            if path is not None:
                field = self.query_one("#export-path", Input)
                field.value = str(path)
                field.focus()

        current = self.query_one("#export-path", Input).value.strip()
        self.app.push_screen(FilePicker("Export the cleaned rows to", current, save=True, suffixes=(".jsonl", ".json")), chosen)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()  # Enter in the panel's boxes is the panel's

    @on(Input.Submitted, "#export-path")
    def _export_path_submitted(self) -> None:
        self.request_export()

    @on(Input.Changed, "#clean-fraction, #clean-seed")
    def _settings_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.SettingsChanged())

    def request_export(self) -> None:
        """Ask the pane to export to the path in the box (a red line when there is none)."""
        path = self.query_one("#export-path", Input).value.strip()
        if not path:
            self.show_export("[red]Type a path to export to.[/red]")
            return
        output_format = str(self.query_one("#export-format", Select).value)
        self.post_message(self.ExportRequested(path, output_format))
