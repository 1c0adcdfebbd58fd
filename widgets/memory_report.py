"""The Memory pane's report: the model line, the stacked bar, the verdict, suggestions and plain words."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from widgets.memory_bar import MemoryBar
from workbench.memory.verdict import format_bytes

if TYPE_CHECKING:
    from workbench.memory import FitVerdict, MemoryEstimate, RunMemory

VERDICT_STYLES = {"fits": "green", "tight": "yellow", "does not fit": "red", "unknown": "blue"}
SHOWN_SUGGESTIONS = 4


class MemoryReport(VerticalScroll):
    """Shows one estimate; `show(...)` replaces everything at once."""

    def compose(self) -> ComposeResult:
        yield Static("", id="mem-title")
        yield MemoryBar(id="mem-bar")
        yield Static("", id="mem-verdict")
        yield Static("", id="mem-measured")
        yield Static("", id="mem-suggestions")
        yield Static("", id="mem-thumb")
        yield Static("", id="mem-explanation")

    def show_message(self, text: str) -> None:
        """A state without an estimate (counting a local model, or an error)."""
        self.query_one("#mem-title", Static).update(text)
        self.query_one(MemoryBar).show({}, None)
        for name in ("verdict", "measured", "suggestions", "thumb", "explanation"):
            self._set(f"#mem-{name}", "")

    def _set(self, selector: str, text: str) -> None:
        """Update a block, hiding it (and its margin) while it has nothing to say."""
        block = self.query_one(selector, Static)
        block.update(text)
        block.display = bool(text)

    def show(self, estimate: "MemoryEstimate", verdict: "FitVerdict", run: "RunMemory | None", whatif: bool) -> None:
        from workbench.memory import plain_explanation, rule_of_thumb

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
        self.query_one(MemoryBar).show(estimate.at_peak(), verdict.budget.bytes, run.measured_bytes if run else None)
        style = VERDICT_STYLES[verdict.status]
        notes = "".join(f"\n[dim]note: {escape(note)}[/dim]" for note in estimate.notes)
        self._set("#mem-verdict", f"[b {style}]{escape(verdict.headline)}[/]{notes}")
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
        lines = []
        for suggestion in verdict.suggestions[:SHOWN_SUGGESTIONS]:
            mark = "[green]✓[/green]" if suggestion.fits else "[red]✗[/red]"
            lines.append(f" {mark} {escape(suggestion.text)}: {format_bytes(suggestion.total_bytes)}")
        heading = "[b]What would make it fit[/b]" if verdict.status != "fits" else "[b]Room to grow[/b]"
        self._set("#mem-suggestions", "\n".join([heading, *lines]) if lines else "")
        self._set("#mem-thumb", f"[dim]{escape(rule_of_thumb(estimate).text)}[/dim]")
        explanation = "\n".join(escape(line) for line in plain_explanation(estimate))
        self._set("#mem-explanation", f"[b]In plain words[/b]\n{explanation}")
