"""The launch view: the config as TrainingArguments / LoraConfig / from_pretrained / command / YAML,
what still blocks a run, and the "Start training" button."""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from rich.syntax import Syntax
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Select, Static

VIEWS = (
    ("TrainingArguments", "training-args"),
    ("LoraConfig", "lora"),
    ("Model loading", "model"),
    ("Launch command", "command"),
    ("YAML", "yaml"),
)
LEXERS = {"yaml": "yaml", "command": "bash"}


class ConfigLaunch(Vertical):
    """Shows a rendering the screen provides; sends `ViewChosen` when another view is picked."""

    @dataclass
    class ViewChosen(Message):
        view: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.code = ""
        """The text shown (before highlighting)."""
        self._blockers: list[str] | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="launch-bar"):
            yield Select(VIEWS, value="training-args", allow_blank=False, compact=True, id="launch-view")
            yield Button("Start training", id="start-training", variant="success", compact=True)
        with VerticalScroll(id="launch-code-scroll"):
            yield Static("", id="launch-code")
        yield Static("", id="launch-problems")

    @property
    def view(self) -> str:
        return str(self.query_one("#launch-view", Select).value)

    def show_code(self, view: str, code: str) -> None:
        if code == self.code:
            return
        self.code = code
        syntax = Syntax(code, LEXERS.get(view, "python"), theme="ansi_dark", background_color="default", word_wrap=True)
        self.query_one("#launch-code", Static).update(syntax)

    def show_blockers(self, errors: list[str]) -> None:
        if errors == self._blockers:
            return
        self._blockers = errors
        text = (
            "[green]✓ No errors: ready to train.[/green]"
            if not errors
            else "[red]Fix before training:[/red]\n" + "\n".join(f"[red]✗[/red] {escape(line)}" for line in errors)
        )
        self.query_one("#launch-problems", Static).update(text)

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.post_message(self.ViewChosen(str(event.value)))
