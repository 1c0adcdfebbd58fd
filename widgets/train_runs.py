"""The runs list: every run directory with its state, step and best eval loss."""

from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path
from typing import Optional, Sequence

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from workbench.runs.monitor import RunSummary

MIN_NAME_WIDTH = 10

STATE_STYLES = {
    "starting": ("◌", "yellow"),
    "running": ("●", "green"),
    "completed": ("✔", "cyan"),
    "stopped": ("■", "yellow"),
    "failed": ("✗", "red"),
    "dead": ("✝", "red"),
    "unknown": ("?", "dim"),
}


STATE_WIDTH = max(len(f"{symbol} {state}") for state, (symbol, _style) in STATE_STYLES.items())
"""The state column is as wide as its longest state ("✔ completed"): a fixed width, since cells
updated in place never widen a column (a run listed while "running" showed "✔ complet" once done)."""
BEST_WIDTH = 5
"""Best eval loss, "1.180"."""
OTHER_COLUMNS_WIDTH = STATE_WIDTH + BEST_WIDTH + 3 * 2
"""State and best eval with their cell padding: the name gets what is left, so state and best eval
loss stay visible in an 80-column terminal (step shows when there is room)."""


def state_text(state: str) -> Text:
    """The state with its symbol, coloured (shared with the stats panel)."""
    symbol, style = STATE_STYLES.get(state, STATE_STYLES["unknown"])
    return Text(f"{symbol} {state}", style=style)


class RunsTable(DataTable):
    """Runs newest first. Moving the cursor shows a run; `m` marks it for the comparison overlay."""

    BINDINGS = [Binding("m", "toggle_compare", "Compare", tooltip="Mark this run for the loss overlay")]

    @dataclass
    class RunHighlighted(Message):
        """The cursor moved to a run."""

        run_dir: Path

    @dataclass
    class CompareToggled(Message):
        """The set of runs marked for comparison changed."""

        compared: frozenset[Path]

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self.summaries: list[RunSummary] = []
        self.compared: set[Path] = set()
        """Runs whose curves the loss chart overlays."""
        self.name_width = MIN_NAME_WIDTH
        self.selected: Optional[Path] = None

    def on_resize(self) -> None:
        width = max(MIN_NAME_WIDTH, self.scrollable_content_region.width - OTHER_COLUMNS_WIDTH - 1)
        if width != self.name_width or not self.columns:
            self.name_width = width
            self._rebuild()

    def _rebuild(self) -> None:
        self.clear(columns=True)
        self.add_column("Run", key="name", width=self.name_width)
        self.add_column("State", key="state", width=STATE_WIDTH)
        self.add_column("Best", key="best", width=BEST_WIDTH)
        self.add_column("Step", key="step")
        for summary in self.summaries:
            self.add_row(*self._cells(summary), key=str(summary.run_dir))
        if self.selected is not None:
            self.select_run(self.selected)

    def show_runs(self, summaries: Sequence[RunSummary], selected: Optional[Path]) -> None:
        """Refresh the rows in place; rebuild only when runs appeared or vanished (keeps the cursor)."""
        keys = [str(s.run_dir) for s in summaries]
        previous = [str(s.run_dir) for s in self.summaries]
        self.summaries = list(summaries)
        self.selected = selected
        if keys != previous or not self.columns:
            self._rebuild()
            return
        for summary in summaries:
            for column, value in zip(("name", "state", "best", "step"), self._cells(summary)):
                self.update_cell(str(summary.run_dir), column, value)

    def select_run(self, run_dir: Path) -> None:
        self.selected = Path(run_dir)
        keys = [str(s.run_dir) for s in self.summaries]
        if str(run_dir) in keys:
            with self.prevent(DataTable.RowHighlighted):
                self.move_cursor(row=keys.index(str(run_dir)))

    def _cells(self, summary: RunSummary) -> tuple:
        name = Text.assemble(("◆ " if summary.run_dir in self.compared else "", "magenta"), summary.name)
        name.truncate(self.name_width, overflow="ellipsis")
        step = f"{summary.step}/{summary.max_steps}" if summary.max_steps else str(summary.step)
        best = f"{summary.best_eval_loss:.3f}" if summary.best_eval_loss is not None else "—"
        return name, state_text(summary.state), best, step

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.RunHighlighted(Path(event.row_key.value)))

    def action_toggle_compare(self) -> None:
        if not self.summaries or self.cursor_row >= len(self.summaries):
            return
        summary = self.summaries[self.cursor_row]
        self.compared ^= {summary.run_dir}
        self.update_cell(str(summary.run_dir), "name", self._cells(summary)[0])
        self.post_message(self.CompareToggled(frozenset(self.compared)))
