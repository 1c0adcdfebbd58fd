"""The Train pane's export dialog: choose format, dtype, quantization and target; the export runs in
a thread worker with a progress bar, and the dialog ends by showing where it went and the command
line that does the same (`workbench export ...`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, ProgressBar, Select, Static
from textual.worker import Worker, WorkerState

from workbench.export.options import (
    DEFAULT_QUANT,
    DTYPES,
    FORMAT_HELP,
    FORMATS,
    GGUF_QUANTS,
    ExportOptions,
    default_output_dir,
    equivalent_command,
)
from workbench.runs.export import export

BASE_DTYPE = "base"
"""The dtype choice that keeps the base model's own dtype (no --dtype)."""
CHECKPOINT_CHOICES = (("final weights", ""), ("best checkpoint", "best"), ("last checkpoint", "last"))


class ExportDialog(ModalScreen[Optional[Path]]):
    """Export one run; dismisses with the export's path (None when closed without exporting)."""

    BINDINGS = [Binding("escape", "close", "Close")]
    DEFAULT_CSS = """
    ExportDialog {
        align: center middle;
    }
    ExportDialog > #export-dialog {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        overflow-y: auto;
        border: round $primary;
        background: $surface;
        padding: 0 1;
    }
    ExportDialog .export-row {
        height: 1;
        margin: 1 0 0 0;
    }
    ExportDialog .export-row Label {
        width: 14;
    }
    ExportDialog #export-force {
        margin: 1 0 0 0;
    }
    ExportDialog .export-row Select, ExportDialog .export-row Input {
        width: 1fr;
    }
    ExportDialog #export-format-help, ExportDialog #export-command {
        color: $text-muted;
    }
    ExportDialog #export-progress {
        display: none;
    }
    ExportDialog.-running #export-progress {
        display: block;
    }
    ExportDialog #export-command, ExportDialog #export-status, ExportDialog #export-progress {
        margin: 1 0 0 0;
    }
    ExportDialog #export-buttons {
        height: 1;
        margin: 1 0 0 0;
        align-horizontal: right;
    }
    ExportDialog #export-buttons Button {
        margin: 0 0 0 1;
    }
    """

    @dataclass
    class Progress(Message):
        """A stage of the export and how far it is (None: not known)."""

        stage: str
        fraction: Optional[float]

    @dataclass
    class Line(Message):
        """A line the export reports (what it wrote, a note)."""

        text: str

    def __init__(self, run_dir: Path, checkpoint: Optional[str] = None) -> None:
        """Args: checkpoint: the weights to preselect ("best" for an overfit run), None for the final ones."""
        super().__init__()
        self.run_dir = Path(run_dir)
        self.initial_checkpoint = checkpoint or ""
        self.suggested_target = str(default_output_dir(self.run_dir, ExportOptions()))
        self.result = None
        self.lines: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog"):
            yield Label(f"[b]Export[/b] {self.run_dir.name}")
            with Horizontal(classes="export-row"):
                yield Label("Format")
                yield Select([(name, name) for name in FORMATS], value="hf", allow_blank=False, compact=True, id="export-format")
            yield Static("", id="export-format-help")
            with Horizontal(classes="export-row", id="export-dtype-row"):
                yield Label("Dtype")
                yield Select([("the base model's own", BASE_DTYPE)] + [(name, name) for name in DTYPES],
                             value=BASE_DTYPE, allow_blank=False, compact=True, id="export-dtype")
            with Horizontal(classes="export-row", id="export-quant-row"):
                yield Label("Quantization")
                yield Select([(name, name) for name in GGUF_QUANTS], value=DEFAULT_QUANT, allow_blank=False, compact=True,
                             id="export-quant")
            with Horizontal(classes="export-row"):
                yield Label("Weights")
                yield Select(list(CHECKPOINT_CHOICES), value=self.initial_checkpoint, allow_blank=False, compact=True,
                             id="export-checkpoint")
            with Horizontal(classes="export-row"):
                yield Label("Target")
                yield Input(self.suggested_target, compact=True, id="export-target")
            yield Checkbox("Replace the target if it is not empty (--force)", compact=True, id="export-force")
            yield Static("", id="export-command")
            yield ProgressBar(total=1.0, show_eta=False, id="export-progress")
            yield Static("", id="export-status")
            with Horizontal(id="export-buttons"):
                yield Button("Export", variant="primary", compact=True, id="export-start")
                yield Button("Close", compact=True, id="export-close")

    def on_mount(self) -> None:
        self._show_choices()

    # What the form says

    def options(self) -> ExportOptions:
        """The export the form describes."""
        export_format = self.query_one("#export-format", Select).value
        dtype = self.query_one("#export-dtype", Select).value
        target = self.query_one("#export-target", Input).value.strip()
        if target == self.suggested_target:
            target = ""  # the default place: the command line needs no -o
        return ExportOptions(
            format=str(export_format),
            dtype=None if export_format != "hf" or dtype == BASE_DTYPE else str(dtype),
            quant=str(self.query_one("#export-quant", Select).value),
            checkpoint=str(self.query_one("#export-checkpoint", Select).value) or None,
            output=Path(target).expanduser() if target else None,
            force=self.query_one("#export-force", Checkbox).value,
        )

    def _show_choices(self) -> None:
        options = self.options()
        self.query_one("#export-format-help", Static).update(FORMAT_HELP[options.format])
        self.query_one("#export-dtype-row").display = options.format == "hf"
        self.query_one("#export-quant-row").display = options.format == "gguf"
        target = self.query_one("#export-target", Input)
        if target.value.strip() == self.suggested_target:  # not typed over: follow the choices
            self.suggested_target = str(default_output_dir(self.run_dir, ExportOptions(options.format, options.dtype, options.quant)))
            target.value = self.suggested_target
            options = self.options()
        self.query_one("#export-command", Static).update(equivalent_command(self.run_dir, options))

    @on(Select.Changed)
    def _choice_changed(self) -> None:
        self._show_choices()

    @on(Checkbox.Changed)
    def _force_changed(self) -> None:
        self._show_choices()

    @on(Input.Changed, "#export-target")
    def _target_changed(self) -> None:
        self._show_choices()

    # Running it

    @on(Button.Pressed, "#export-start")
    def start_export(self) -> None:
        if self.has_class("-running"):
            return
        self.add_class("-running")
        for widget in self.query("Select, Input, Checkbox, #export-start"):
            widget.disabled = True
        self.query_one("#export-status", Static).update("Starting…")
        self.run_export(self.options())

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def run_export(self, options: ExportOptions):
        """The export itself, in a thread: it only posts messages; the result comes back with the worker."""
        return export(
            self.run_dir, options,
            report=lambda line: self.post_message(self.Line(line)),
            progress=lambda stage, fraction: self.post_message(self.Progress(stage, fraction)),
        )

    def on_export_dialog_progress(self, message: Progress) -> None:
        bar = self.query_one("#export-progress", ProgressBar)
        if message.fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=1.0, progress=message.fraction)
        self.query_one("#export-status", Static).update(escape(message.stage))

    def on_export_dialog_line(self, message: Line) -> None:
        self.lines.append(message.text)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "export" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR):
            return
        self.remove_class("-running")
        status = self.query_one("#export-status", Static)
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
            status.update(f"[b red]Not exported:[/b red] {escape(detail)}")
            for widget in self.query("Select, Input, Checkbox, #export-start"):
                widget.disabled = False
            return
        self.result = event.worker.result
        self.query_one("#export-progress", ProgressBar).update(total=1.0, progress=1.0)
        done = [f"[b]Written:[/b] {escape(str(self.result.path))}", f"[dim]same from a terminal:[/dim] {escape(self.result.command)}"]
        done += [f"[dim]next:[/dim] {escape(line)}" for line in self.result.next_steps]
        done += [f"[dim]{escape(line)}[/dim]" for line in self.lines if line.startswith("note:")]
        status.update("\n".join(done))
        self.query_one("#export-command", Static).update("")
        self.query_one("#export-close", Button).focus()

    @on(Button.Pressed, "#export-close")
    def action_close(self) -> None:
        if self.has_class("-running"):
            self.notify("The export is still running; it finishes in a hidden folder, so closing waits.", severity="warning")
            return
        self.dismiss(self.result.path if self.result is not None else None)
