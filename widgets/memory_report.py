"""The Memory pane's report: what the what-if changes, the model line, the stacked bar, the verdict
with its fit line, the cheapest changes that fit, and plain words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from widgets.memory_bar import MemoryBar
from widgets.memory_inputs import FIELDS
from workbench.memory import plain_explanation, rule_of_thumb
from workbench.units import format_bytes

if TYPE_CHECKING:
    from workbench.memory import FitVerdict, MemoryEstimate, RunMemory

VERDICT_STYLES = {"fits": "green", "tight": "yellow", "does not fit": "red", "unknown": "blue"}
FIT_MARKS = {"fits": "[green]✓[/green]", "tight": "[yellow]![/yellow]", "does not fit": "[red]✗[/red]"}


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def differences_text(differences: list[tuple[str, Any, Any]]) -> str:
    """'batch size 4 → 1, grad ckpt off → on' for (field, run-config value, what-if value) triples."""
    labels = {field.key: field.label for field in FIELDS}
    return ", ".join(f"{labels.get(key, key.rsplit('.', 1)[-1])} {_value_text(old)} → {_value_text(new)}"
                     for key, old, new in differences)


class MemoryReport(VerticalScroll):
    """Shows one estimate; `show(...)` replaces everything at once. The Apply/Reset buttons and the
    suggestion list post their own messages (Button.Pressed, OptionList.OptionSelected) to the screen."""

    DEFAULT_CSS = """
    MemoryReport #mem-whatif-text { height: auto; }
    MemoryReport #mem-whatif-actions { height: auto; margin-bottom: 1; }
    MemoryReport #mem-whatif-actions Button { margin-right: 2; }
    MemoryReport #mem-suggestions { height: auto; max-height: 12; border: none; padding: 0; }
    MemoryReport #mem-suggestions:focus { background: $boost; }
    MemoryReport #mem-command { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.commands: list[str] = []
        """The `workbench estimate` line of each suggestion shown, in order."""

    def compose(self) -> ComposeResult:
        yield Static("", id="mem-whatif-text")
        with Horizontal(id="mem-whatif-actions"):
            yield Button("Apply to run config ^y", id="mem-apply", compact=True, variant="primary", disabled=True,
                         tooltip="write the what-if's changes into the run config (ctrl+y)")
            yield Button("Reset ^l", id="mem-reset", compact=True, disabled=True,
                         tooltip="drop the what-if's changes: show the run config again (ctrl+l)")
        yield Static("", id="mem-title")
        yield MemoryBar(id="mem-bar")
        yield Static("", id="mem-verdict")
        yield Static("", id="mem-advice-heading")
        yield OptionList(id="mem-suggestions")
        yield Static("", id="mem-command")
        yield Static("", id="mem-fit-line")
        yield Static("", id="mem-measured")
        yield Static("", id="mem-thumb")
        yield Static("", id="mem-explanation")

    def show_message(self, text: str) -> None:
        """A state without an estimate (counting a local model, or an error)."""
        self.query_one("#mem-title", Static).update(text)
        self.query_one(MemoryBar).show({}, None)
        for name in ("verdict", "measured", "advice-heading", "command", "fit-line", "thumb", "explanation"):
            self._set(f"#mem-{name}", "")
        self.query_one("#mem-suggestions", OptionList).display = False

    def show_whatif(self, differences: list[tuple[str, Any, Any]], model_whatif: str | None,
                    refused: str | None = None) -> None:
        """The what-if strip: what differs from the run config, whether Apply has anything to write, and
        why the last edit was refused (if it was)."""
        parts = [f"[b red]{escape(refused)}[/]"] if refused else []
        if differences:
            parts.append(f"[b yellow]What-if[/]: {escape(differences_text(differences))} "
                         "[dim](not in the run config)[/dim]")
        else:
            parts.append("[dim]What-if = the run config (edits here stay a what-if until applied)[/dim]")
        if model_whatif:
            parts.append(f"[dim]model {escape(model_whatif)} is an estimate only; it is never applied[/dim]")
        self.query_one("#mem-whatif-text", Static).update("\n".join(parts))
        self.query_one("#mem-apply", Button).disabled = not differences
        self.query_one("#mem-reset", Button).disabled = not differences and not model_whatif

    def _set(self, selector: str, text: str) -> None:
        """Update a block, hiding it (and its margin) while it has nothing to say."""
        block = self.query_one(selector, Static)
        block.update(text)
        block.display = bool(text)

    def show(self, estimate: "MemoryEstimate", verdict: "FitVerdict", run: "RunMemory | None", whatif: bool,
             commands: list[str]) -> None:
        """Draw an estimate and its verdict; `commands` are the `workbench estimate` lines of the
        suggestions, in order (the highlighted one is shown)."""
        spec, inputs = estimate.spec, estimate.inputs
        share = estimate.trainable_params / spec.total_params
        where = "GPU" if inputs.device == "cuda" else "CPU"
        title = (
            f"[b]{escape(spec.name)}[/b]{' [dim](what-if)[/dim]' if whatif else ''} · "
            f"{spec.total_params / 1e9:.2f}B params · {estimate.trainable_params:,} trainable ({share:.2%}) · "
            f"{inputs.precision} on {where} · peak [b]{format_bytes(estimate.total_bytes)}[/b]"
            f"{' per GPU' if inputs.device == 'cuda' and inputs.gpus > 1 else ''}"
        )
        self.query_one("#mem-title", Static).update(title)
        self.query_one(MemoryBar).show(estimate.at_peak(), verdict.budget.bytes, run.measured_bytes if run else None,
                                       verdict.fit_line_bytes)
        style = VERDICT_STYLES[verdict.status]
        lines = [f"[b {style}]{escape(verdict.headline)}[/]"]
        lines += [f"[yellow]⚠ {escape(warning)}[/yellow]" for warning in estimate.warnings]
        self._set("#mem-verdict", "\n".join(lines))
        details = [f"[dim]{escape(verdict.fit_line_text)}[/dim]"] if verdict.fit_line_text else []
        details += [f"[dim]note: {escape(note)}[/dim]" for note in estimate.notes]
        self._set("#mem-fit-line", "\n".join(details))
        measured_text = ""
        if run:
            if inputs.device == "cuda":
                what = "PyTorch's max reserved, without the CUDA context"
            else:
                what = "whole-process RSS, Python and data included"
            its_estimate = f"; its estimate at start {format_bytes(run.estimated_bytes)}" if run.estimated_bytes else ""
            measured_text = (f"[magenta]▲ run {escape(run.run_name)} measured {format_bytes(run.measured_bytes)}"
                             f"[/magenta] ({what}){its_estimate}")
        self._set("#mem-measured", measured_text)
        self._show_suggestions(verdict, commands)
        self._set("#mem-thumb", f"[dim]{escape(rule_of_thumb(estimate).text)}[/dim]")
        explanation = "\n".join(escape(line) for line in plain_explanation(estimate))
        self._set("#mem-explanation", f"[b]In plain words[/b]\n{explanation}")

    def _show_suggestions(self, verdict: "FitVerdict", commands: list[str]) -> None:
        self.commands = commands
        suggestions = verdict.suggestions
        options = self.query_one("#mem-suggestions", OptionList)
        options.clear_options()
        if not suggestions:
            self._set("#mem-advice-heading", f"[b]{escape(verdict.advice_note)}[/b]" if verdict.advice_note else "")
            options.display = False
            self._set("#mem-command", "")
            return
        heading = "Room to grow" if verdict.status == "fits" else "Cheapest changes that fit"
        note = f"\n[dim]{escape(verdict.advice_note)}[/dim]" if verdict.advice_note else ""
        self._set("#mem-advice-heading", f"[b]{heading}[/b] [dim](enter: try it in the what-if)[/dim]{note}")
        for suggestion in suggestions:
            mark = FIT_MARKS["fits" if suggestion.fits else "tight"]
            cost = f"\n   [dim]{escape(suggestion.cost_text)}[/dim]" if suggestion.cost_text else ""
            options.add_option(Option(f"{mark} {escape(suggestion.text)}: [b]{format_bytes(suggestion.total_bytes)}[/b]"
                                      f"{cost}"))
        options.display = True
        options.highlighted = 0
        self.show_command(0)

    def show_command(self, index: int | None) -> None:
        """The CLI line that reproduces the suggestion at `index`."""
        text = self.commands[index] if index is not None and 0 <= index < len(self.commands) else ""
        self._set("#mem-command", f"same on the CLI: {escape(text)}" if text else "")

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_command(event.option_index)
