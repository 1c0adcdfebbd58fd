"""A stacked bar of where training memory goes, with the budget and a measured peak marked."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from workbench.units import format_bytes

COMPONENT_COLORS = {
    "weights": "#4e79a7",
    "gradients": "#f28e2b",
    "optimizer state": "#e15759",
    "activations": "#59a14f",
    "logits": "#edc948",
    "evaluation": "#76b7b2",
    "framework overhead": "#9c755f",
}
BUDGET_MARK = "┃"
FIT_LINE_MARK = "╎"
MEASURED_MARK = "▲"
EMPTY_COLOR = "grey23"


def bar_cells(parts: dict[str, int], scale: int, width: int) -> list[tuple[str, int]]:
    """(component, cells) for a bar `width` cells wide where `scale` bytes fill it.

    Cells are apportioned by largest remainder so they sum to round(total / scale * width), and every
    non-zero component that is at least half a cell gets a cell of its own.
    """
    if scale <= 0 or width <= 0:
        return []
    exact = {name: value / scale * width for name, value in parts.items() if value > 0}
    target = round(sum(exact.values()))
    cells = {name: int(share) for name, share in exact.items()}
    for name, share in exact.items():
        if cells[name] == 0 and share >= 0.5:
            cells[name] = 1
    leftovers = sorted(exact, key=lambda name: exact[name] - int(exact[name]), reverse=True)
    for name in leftovers:
        if sum(cells.values()) >= target:
            break
        if exact[name] - int(exact[name]) > 0 and cells[name] == int(exact[name]):
            cells[name] += 1
    return [(name, cells[name]) for name in exact if cells[name] > 0]


class MemoryBar(Widget):
    """One row of coloured blocks per component at the peak, scaled so the larger of the total and the
    budget fills the width; a ┃ marks the budget, a ╎ the fit line (the budget less its headroom) and
    a ▲ the measured peak of a run, when known."""

    DEFAULT_CSS = """
    MemoryBar { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.parts: dict[str, int] = {}
        """Components alive at the peak (name -> bytes)."""
        self.budget: int | None = None
        self.measured: int | None = None
        self.fit_line: int | None = None

    def show(self, parts: dict[str, int], budget: int | None, measured: int | None = None,
             fit_line: int | None = None) -> None:
        self.parts, self.budget, self.measured, self.fit_line = dict(parts), budget, measured, fit_line
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Text:
        return Text("\n").join(self._lines(self.size.width))

    def _lines(self, width: int) -> list[Text]:
        if not self.parts or width < 10:
            return [Text("")]
        scale = max(sum(self.parts.values()), self.budget or 0, self.measured or 0)
        backgrounds = [COMPONENT_COLORS.get(name, "grey50") for name, cells in bar_cells(self.parts, scale, width)
                       for _ in range(cells)][:width]
        backgrounds += [EMPTY_COLOR] * (width - len(backgrounds))
        glyphs = [(" ", "")] * width
        for value, glyph, style in ((self.fit_line, FIT_LINE_MARK, "bold yellow"),
                                    (self.budget, BUDGET_MARK, "bold white"),
                                    (self.measured, MEASURED_MARK, "bold magenta")):
            if value:
                glyphs[min(width - 1, max(0, round(value / scale * width) - 1))] = (glyph, style)
        bar = Text()
        for (glyph, style), background in zip(glyphs, backgrounds):
            bar.append(glyph, style=f"{style} on {background}".strip())
        label = format_bytes(scale)
        scale_line = Text(f"0{' ' * max(1, width - len(label) - 1)}{label}", style="dim")
        return [bar, scale_line, *self._legend(width)]

    def _legend(self, width: int) -> list[Text]:
        entries = [Text.assemble(("■ ", COMPONENT_COLORS.get(name, "grey50")), f"{name} {format_bytes(value)}")
                   for name, value in self.parts.items() if value > 0]
        if self.budget:
            entries.append(Text.assemble((BUDGET_MARK + " ", "bold"), f"budget {format_bytes(self.budget)}"))
        if self.fit_line:
            entries.append(Text.assemble((FIT_LINE_MARK + " ", "bold yellow"), f"fit line {format_bytes(self.fit_line)}"))
        if self.measured:
            entries.append(Text.assemble((MEASURED_MARK + " ", "bold magenta"), f"measured {format_bytes(self.measured)}"))
        lines, current = [], Text()
        for entry in entries:
            if current.cell_len and current.cell_len + 2 + entry.cell_len > width:
                lines.append(current)
                current = Text()
            if current.cell_len:
                current.append("  ")
            current.append_text(entry)
        if current.cell_len:
            lines.append(current)
        return lines

