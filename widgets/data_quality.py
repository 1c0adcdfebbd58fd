"""The quality report: what each check found (pick one to list its rows) and the distributions,
drawn with plotext."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING, Sequence

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual_plotext import PlotextPlot

if TYPE_CHECKING:
    from workbench.data.checks import QualityReport

CHECK_LABELS = {
    "exact_duplicates": "Exact duplicates",
    "near_duplicates": "Near duplicates",
    "conflicts": "Conflicts (same prompt, different answers)",
    "empty_response": "Empty answers",
    "too_long": "Longer than max_seq_length",
    "malformed_turns": "Malformed turns",
    "junk": "Junk (markup, broken characters)",
}
HISTOGRAM_BINS = 30
TOP_BARS = 10
COUNT_TICKS = 4
"""At most this many labelled ticks on a count axis (plus 0)."""


def count_ticks(largest: int, most: int = COUNT_TICKS) -> list[int]:
    """Whole-number ticks from 0 past `largest` on a 1-2-5 step ("0 250 500 750 1000"), for axes that
    count rows: plotext's own ticks are floats ("932.0"), which no count is."""
    step = 1
    while (largest + step - 1) // step > most:
        for factor in (2, 5 / 2, 2):  # 1 -> 2 -> 5 -> 10 -> 20 ...
            step = int(step * factor)
            if (largest + step - 1) // step <= most:
                break
    top = -(-largest // step) * step
    return list(range(0, top + 1, step))


class _ChartPlot(PlotextPlot):
    """A chart drawn from its data attributes: `replot` draws them, on mount and after each `show`."""

    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def replot(self) -> None:
        raise NotImplementedError


class HistogramPlot(_ChartPlot):
    """Prompt and response token counts as histograms over the same bins, with the cut-off line."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.prompt: Sequence[int] = ()
        self.response: Sequence[int] = ()
        self.limit: int | None = None

    def show(self, prompt: Sequence[int], response: Sequence[int], limit: int | None) -> None:
        self.prompt, self.response, self.limit = prompt, response, limit
        self.replot()

    def replot(self) -> None:
        import numpy as np

        plt = self.plt
        plt.clear_figure()
        self.border_title = "[b]Token lengths[/b] [#7aa2f7]■ prompt[/] [#9ece6a]■ response[/]"
        if len(self.prompt) == 0:
            self.refresh()
            return
        prompt, response = np.asarray(self.prompt), np.asarray(self.response)
        top = max(int(np.percentile(prompt + response, 99) * 1.1), 8)
        limit_shown = bool(self.limit) and self.limit <= top * 2
        if limit_shown:
            top = max(top, int(self.limit * 1.05))
            self.border_title += " [red]│ max_seq_length[/]"
        elif self.limit:
            self.border_title += f" [dim](max_seq_length {self.limit:,} is off the right edge)[/dim]"
        edges = np.linspace(0, top, HISTOGRAM_BINS + 1)
        centers = ((edges[:-1] + edges[1:]) / 2).tolist()
        largest = 0
        for values, color in ((prompt, (122, 162, 247)), (response, (158, 206, 106))):
            counts, _ = np.histogram(np.minimum(values, top), bins=edges)
            plt.plot(centers, counts.tolist(), color=color, marker="braille")
            largest = max(largest, int(counts.max()))
        plt.yticks(count_ticks(largest))
        token_ticks = [tick for tick in count_ticks(top, most=6) if tick <= top]
        plt.xticks(token_ticks, [f"{tick:,}" for tick in token_ticks])
        if limit_shown:
            plt.vline(self.limit, "red")
        plt.xlabel("tokens (the last bin holds everything longer)")
        self.refresh()


class BarPlot(_ChartPlot):
    """A small bar chart of labelled counts."""

    def __init__(self, title: str, *, horizontal: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.chart_title = title
        self.horizontal = horizontal
        self.items: list[tuple[str, int]] = []

    def show(self, items: Sequence[tuple[str, int]]) -> None:
        self.items = list(items)
        self.replot()

    def replot(self) -> None:
        plt = self.plt
        plt.clear_figure()
        self.border_title = f"[b]{self.chart_title}[/b]"
        if self.items:
            labels = [label[:14] for label, _ in self.items]
            counts = [count for _, count in self.items]
            if self.horizontal:
                plt.bar(labels[::-1], counts[::-1], orientation="horizontal", width=0.3, color=(187, 154, 247))
                plt.xticks(count_ticks(max(counts)))
            else:
                plt.bar(labels, counts, width=0.4, color=(125, 207, 255))
                plt.yticks(count_ticks(max(counts)))
        self.refresh()


class QualityView(VerticalScroll):
    """The report of the current rows. Messages up: CheckChosen (list a check's rows),
    ThresholdChanged (recompute near-duplicates)."""

    DEFAULT_CSS = """
    QualityView #quality-status {
        height: auto;
        margin-bottom: 1;
    }
    QualityView #quality-checks {
        height: auto;
        max-height: 9;
        border: none;
    }
    QualityView #quality-threshold-row {
        height: 1;
        margin: 1 0;
    }
    QualityView .quality-label {
        width: auto;
        color: $text-muted;
        padding-right: 1;
    }
    QualityView #quality-threshold {
        width: 8;
        height: 1;
        border: none;
        background: $boost;
    }
    QualityView #quality-balance {
        height: auto;
    }
    QualityView #quality-lengths {
        height: 14;
    }
    QualityView #quality-bars {
        height: 12;
    }
    QualityView #quality-turns {
        width: 1fr;
    }
    QualityView #quality-leading {
        width: 2fr;
    }
    QualityView #quality-labels {
        height: 10;
    }
    QualityView PlotextPlot {
        border-top: solid $primary 40%;
        border-title-align: left;
    }
    """

    @dataclass
    class CheckChosen(Message):
        check: str

    @dataclass
    class ThresholdChanged(Message):
        threshold: float

    def compose(self) -> ComposeResult:
        yield Static("Open a file to check it.", id="quality-status")
        yield OptionList(id="quality-checks")
        with Horizontal(id="quality-threshold-row"):
            yield Static("near-duplicate threshold (Jaccard)", classes="quality-label")
            yield Input("0.8", id="quality-threshold", restrict=r"[0-9.]*", max_length=4)
        yield Static("", id="quality-balance")
        yield HistogramPlot(id="quality-lengths")
        with Horizontal(id="quality-bars"):
            yield BarPlot("Assistant turns per row", id="quality-turns")
            yield BarPlot("Prompts start with", horizontal=True, id="quality-leading")
        yield BarPlot("Label balance", id="quality-labels")

    def show_status(self, text: str) -> None:
        self.query_one("#quality-status", Static).update(text)

    def show(self, report: "QualityReport") -> None:
        """Draw a report."""
        summary = report.token_summary()
        status = Text(f"{report.rows:,} rows checked")
        if summary:
            status.append(
                f" · tokens min {summary['min']:,}, median {summary['median']:,}, p95 {summary['p95']:,}, "
                f"max {summary['max']:,} (max_seq_length {report.max_seq_length:,})"
            )
        for note in report.notes:
            status.append(f"\n{note}", style="yellow")
        self.show_status(status)
        checks = self.query_one("#quality-checks", OptionList)
        highlighted = checks.highlighted
        checks.clear_options()
        for check, label in CHECK_LABELS.items():
            rows = report.count(check)
            groups = len(report.groups[check]) if check in report.groups else None
            line = Text(f"{label:<44}", style="bold" if rows else "dim")
            found = f"{groups:,} groups · {rows:,} rows" if groups is not None else f"{rows:,} rows"
            line.append(found, style="red" if rows else "green")
            checks.add_option(Option(line, id=check))
        if highlighted is not None:
            checks.highlighted = highlighted
        self.query_one("#quality-threshold", Input).value = f"{report.near_threshold:g}"
        self._show_distributions(report)

    def _show_distributions(self, report: "QualityReport") -> None:
        lengths = report.token_lengths
        histogram = self.query_one(HistogramPlot)
        if lengths is not None:
            histogram.show(lengths.prompt, lengths.response, report.max_seq_length)
        self.query_one("#quality-turns", BarPlot).show([(str(t), n) for t, n in sorted(report.turns.items())])
        self.query_one("#quality-leading", BarPlot).show(report.leading_words[:TOP_BARS])
        labels = self.query_one("#quality-labels", BarPlot)
        balance = self.query_one("#quality-balance", Static)
        if report.label_balance:
            labels.display = True
            labels.show(report.label_balance[:TOP_BARS])
            largest, smallest = report.label_balance[0][1], report.label_balance[-1][1]
            balance.update(
                f"Answers look like labels ({len(report.label_balance)} values); "
                f"the most common is {largest / max(1, smallest):.1f}× the rarest."
            )
        else:
            labels.display = False
            balance.update("")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.post_message(self.CheckChosen(event.option.id))

    @on(Input.Submitted, "#quality-threshold")
    def _threshold_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            threshold = float(event.value)
        except ValueError:
            threshold = -1.0
        if not 0 < threshold <= 1:
            self.app.notify("The threshold is a Jaccard similarity between 0 and 1, e.g. 0.8", severity="error")
            return
        self.post_message(self.ThresholdChanged(threshold))
