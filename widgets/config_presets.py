"""The preset picker: the presets on the left, the chosen one's values and reasons on the right."""

from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from workbench.config.presets import PRESETS, Preset


def describe_preset(preset: Preset) -> str:
    """Rich markup: the summary, then every value the preset sets with the reason for it."""
    lines = [f"[b]{escape(preset.title)}[/b]  [dim]({preset.name})[/dim]", escape(preset.summary), ""]
    for dotted, value in preset.settings.items():
        shown = value if not isinstance(value, list) else f"{len(value)} prompts"
        lines.append(f"[b]{escape(dotted)}[/b] = {escape(repr(shown))}")
        reason = preset.reasons.get(dotted)
        if reason:
            lines.append(f"  [dim]{escape(reason)}[/dim]")
    return "\n".join(lines)


class PresetPicker(Horizontal):
    """Highlight a preset to read its reasons; Enter or "Apply" sends `Applied`."""

    @dataclass
    class Applied(Message):
        preset_name: str

    def compose(self) -> ComposeResult:
        with Vertical(id="preset-side"):
            yield OptionList(*(Option(p.title, id=p.name) for p in PRESETS.values()), id="preset-list")
            yield Button("Apply preset", id="preset-apply", compact=True, variant="primary")
            yield Static("[dim]Keeps your data file and prompts when the preset has none.[/dim]", id="preset-note")
        with VerticalScroll(id="preset-details-scroll"):
            yield Static("", id="preset-details")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0

    @property
    def highlighted_name(self) -> str | None:
        options = self.query_one(OptionList)
        if options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        self.query_one("#preset-details", Static).update(describe_preset(PRESETS[event.option.id]))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Applied(event.option.id))

    @on(Button.Pressed, "#preset-apply")
    def _apply_pressed(self, event: Button.Pressed) -> None:
        if self.highlighted_name:
            event.stop()
            self.post_message(self.Applied(self.highlighted_name))
