"""Line charts of a training run (loss, learning rate, grad norm), drawn with plotext.

Each chart keeps its curves on the widget; `show_curves` stores new ones and asks for a replot,
which is throttled so a fast run never redraws more than twice a second.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence, Union

from rich.markup import escape
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from workbench.runs.monitor import downsample

Color = Union[str, tuple[int, int, int]]

REPLOT_INTERVAL_S = 0.5
"""Least time between two redraws of one chart (plotext redraws the whole figure each time)."""

POINTS_PER_COLUMN = 2
"""Braille markers resolve two points per terminal column; more points only cost time."""


@dataclass(frozen=True)
class Curve:
    """One labelled line on a chart; `markers` also draws a dot at every point (sparse series like eval loss)."""

    label: str
    steps: Sequence[float]
    values: Sequence[float]
    color: Color
    markers: bool = False
    show_last: bool = False
    """Print the latest value beside the label in the legend."""


class CurvePlot(PlotextPlot):
    """A chart of curves against the optimizer step, with an optional log-scale y axis.

    The legend is the widget's border title (coloured like the curves), so it never covers the data.
    """

    log_scale: reactive[bool] = reactive(False)
    """Plot log10 of the values, with the axis labelled in the values themselves."""

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.curves: list[Curve] = []
        self.replot_count = 0
        self._last_replot = -math.inf
        self._replot_pending = False
        self._drew_data = False

    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def on_resize(self) -> None:
        # Tick count and point budget follow the size; a resize is rare, so redraw at once.
        self.replot()

    def show_curves(self, curves: Sequence[Curve]) -> None:
        """Replace the curves and redraw (at once, or when the throttle allows)."""
        self.curves = list(curves)
        self.request_replot()

    def watch_log_scale(self) -> None:
        self.request_replot()

    def request_replot(self) -> None:
        if self._replot_pending or not self.is_mounted:
            return
        wait = self._last_replot + REPLOT_INTERVAL_S - time.monotonic()
        if wait <= 0 or not self._drew_data:  # the first data shows at once; only redraws wait
            self.replot()
        else:
            self._replot_pending = True
            self.set_timer(wait, self._trailing_replot)

    def _trailing_replot(self) -> None:
        self._replot_pending = False
        self.replot()

    def replot(self) -> None:
        """Clear the figure and draw the stored curves."""
        self._last_replot = time.monotonic()
        self.replot_count += 1
        self.border_title = self.legend_markup()
        plt = self.plt
        plt.clear_figure()
        plt.xaxes(True, False)
        plt.yaxes(True, False)
        max_points = max(16, self.size.width * POINTS_PER_COLUMN)
        all_steps: list[float] = []
        all_values: list[float] = []
        for curve in self.curves:
            steps, values = _finite_points(curve.steps, curve.values, positive=self.log_scale)
            if not steps:
                continue
            steps, values = downsample(steps, values, max_points)
            if self.log_scale:
                values = [math.log10(v) for v in values]
            all_steps.extend(steps)
            all_values.extend(values)
            plt.plot(steps, values, marker="braille", color=curve.color)
            if curve.markers:
                plt.scatter(steps, values, marker="●", color=curve.color)
        self._drew_data = bool(all_values)
        if not all_values:
            plt.xticks([])
            plt.yticks([])
        else:
            x_ticks = nice_ticks(min(all_steps), max(all_steps), 5, min_step=1)  # steps are whole numbers
            plt.xticks(x_ticks, [f"{t:g}" for t in x_ticks])
            low, high = min(all_values), max(all_values)
            count = _y_tick_count(self.size.height)
            if self.log_scale:
                y_ticks = _log_ticks(low, high, count)
                plt.yticks(y_ticks, [_format_tick(10**t) for t in y_ticks])
            else:
                y_ticks = nice_ticks(low, high, count)
                plt.yticks(y_ticks, [_format_tick(t) for t in y_ticks])
        self.refresh()

    def legend_markup(self) -> str:
        """'Title  ━ label 0.418  ● eval 1.380', each entry in its curve's colour."""
        parts = [f"[b]{self.chart_title}[/b]" + (" [dim](log)[/dim]" if self.log_scale else "")]
        for curve in self.curves:
            if not curve.label and not curve.show_last:
                continue
            color = curve.color if isinstance(curve.color, str) else "rgb({},{},{})".format(*curve.color)
            symbol = "●" if curve.markers else "━"
            last = next((v for v in reversed(curve.values) if math.isfinite(v)), None) if curve.show_last else None
            words = [symbol] + ([escape(curve.label)] if curve.label else []) + ([f"{last:.3g}"] if last is not None else [])
            parts.append(f"[{color}]{' '.join(words)}[/]")
        if len(parts) == 1 and not self.curves:
            parts.append("[dim]waiting for data[/dim]")
        return " ".join(parts)


def _finite_points(steps: Sequence[float], values: Sequence[float], positive: bool) -> tuple[list[float], list[float]]:
    kept = [(s, v) for s, v in zip(steps, values) if math.isfinite(v) and (v > 0 or not positive)]
    return [s for s, _ in kept], [v for _, v in kept]


def nice_ticks(low: float, high: float, max_count: int, min_step: float = 0.0) -> list[float]:
    """Round tick values (multiples of 1, 2 or 5 times a power of ten, at least `min_step` apart) inside
    [low, high], at most `max_count`."""
    if not high - low > 1e-12 or max_count < 2:
        return [low]
    for exponent in range(math.floor(math.log10(high - low)) - 1, math.floor(math.log10(high - low)) + 2):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**exponent
            if step < min_step:
                continue
            first = math.ceil(low / step - 1e-9)
            last = math.floor(high / step + 1e-9)
            if last - first + 1 <= max_count:
                ticks = [round(i * step, 12) for i in range(first, last + 1)]
                return ticks if len(ticks) >= 2 else [low, high]
    return [low, high]


def _log_ticks(low: float, high: float, max_count: int) -> list[float]:
    """Log10 positions of round values (1, 2, 5 × 10^k) inside the range; evenly spaced when too few fit."""
    candidates = [
        math.log10(m * 10.0**e)
        for e in range(math.floor(low) - 1, math.ceil(high) + 1)
        for m in (1, 2, 5)
        if low - 1e-9 <= math.log10(m * 10.0**e) <= high + 1e-9
    ]
    if len(candidates) < 2:
        return [low + (high - low) * i / (max_count - 1) for i in range(max_count)] if high > low else [low]
    stride = math.ceil(len(candidates) / max_count)
    return candidates[::stride]


def _y_tick_count(height: int) -> int:
    return max(2, min(5, height // 3))


def _format_tick(value: float) -> str:
    if value == 0:
        return "0"
    return f"{value:.3g}" if 1e-2 <= abs(value) < 1e4 else f"{value:.1e}"
