"""The Chat pane's settings dialog: sampling settings per side (or shared) and the system prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from workbench.errors import WorkbenchError
from workbench.inference.settings import SamplingSettings

CHAT_CSS = str(Path(__file__).resolve().parent.parent / "screens" / "styles" / "chat.tcss")

# (field, label, parser); parsers turn the typed text into the field's value.
FIELDS = (
    ("temperature", "Temperature (0 = greedy)", float),
    ("top_p", "Top-p (1 = off)", float),
    ("top_k", "Top-k (0 = off)", int),
    ("max_new_tokens", "Max new tokens", int),
    ("repetition_penalty", "Repetition penalty (1 = off)", float),
    ("seed", "Seed (blank = random)", lambda text: int(text) if text else None),
)


@dataclass(frozen=True)
class ChatSettings:
    """What the Chat pane generates with.

    Attributes:
        left / right: each side's sampling settings; `right` is ignored while `same_on_both` is on.
        same_on_both: one set of settings for both sides (the fair comparison; on by default).
        system_prompt: None leaves the chat template's default system message; any string ("" too)
            is the system message (training's rule, `workbench.data.system_prompt`).
    """

    left: SamplingSettings = field(default_factory=SamplingSettings)
    right: SamplingSettings = field(default_factory=SamplingSettings)
    same_on_both: bool = True
    system_prompt: Optional[str] = None

    def for_side(self, side: int) -> SamplingSettings:
        return self.left if self.same_on_both or side == 0 else self.right

    def summary(self) -> str:
        if self.same_on_both:
            return self.left.summary()
        return f"left {self.left.summary()} | right {self.right.summary()}"


def _text(value) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class SettingsDialog(ModalScreen[Optional[ChatSettings]]):
    """Edit ChatSettings; returns the new settings, or None when cancelled."""

    CSS_PATH = CHAT_CSS
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+o", "accept", "Apply", show=False)]

    def __init__(self, settings: ChatSettings) -> None:
        super().__init__()
        self.settings = settings

    def compose(self) -> ComposeResult:
        with Vertical(id="settings-dialog", classes="chat-dialog"):
            yield Label("[b]Generation settings[/b]", classes="dialog-title")
            yield Checkbox("Same settings on both sides", self.settings.same_on_both, id="same-settings", compact=True)
            with Grid(id="settings-grid"):
                yield Static("")
                yield Static("[b]left / both[/b]")
                yield Static("[b]right[/b]")
                for name, label, _ in FIELDS:
                    yield Static(label)
                    yield Input(_text(getattr(self.settings.left, name)), id=f"left-{name}", compact=True)
                    yield Input(_text(getattr(self.settings.right, name)), id=f"right-{name}", compact=True)
            yield Label("System prompt (blank = the chat template's default)")
            yield Input(self.settings.system_prompt or "", id="system-prompt", compact=True)
            yield Static("", id="settings-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", id="settings-apply", variant="primary", compact=True)
                yield Button("Cancel", id="settings-cancel", compact=True)

    def on_mount(self) -> None:
        self._show_right_enabled(self.settings.same_on_both)
        self.query_one("#left-temperature", Input).focus()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._show_right_enabled(event.value)

    def _show_right_enabled(self, same: bool) -> None:
        for name, _, _ in FIELDS:
            self.query_one(f"#right-{name}", Input).disabled = same

    def _read_side(self, side: str) -> SamplingSettings:
        values = {}
        for name, label, parse in FIELDS:
            text = self.query_one(f"#{side}-{name}", Input).value.strip()
            try:
                values[name] = parse(text)
            except ValueError:
                raise WorkbenchError(f"{side}: {label}: {text!r} is not a number") from None
        return SamplingSettings(**values)

    def action_accept(self) -> None:
        try:
            same = self.query_one("#same-settings", Checkbox).value
            left = self._read_side("left")
            right = left if same else self._read_side("right")
        except WorkbenchError as error:
            self.query_one("#settings-error", Static).update(f"[red]{error}[/red]")
            return
        typed = self.query_one("#system-prompt", Input).value
        # An untouched box keeps the prompt it showed ("" from a run trained with an empty system
        # message stays ""); a box cleared by hand means the template's default.
        if typed == (self.settings.system_prompt or ""):
            system_prompt = self.settings.system_prompt
        else:
            system_prompt = typed if typed.strip() else None
        self.dismiss(ChatSettings(left, right, same, system_prompt))

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_accept()

    @on(Button.Pressed, "#settings-apply")
    def _apply_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_accept()

    @on(Button.Pressed, "#settings-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()
