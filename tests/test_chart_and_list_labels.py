"""Labels that read right: count axes tick in whole numbers, and the runs list never cuts a state."""

import time
from pathlib import Path

from textual.app import App, ComposeResult

from widgets.data_quality import BarPlot, count_ticks
from widgets.train_runs import STATE_STYLES, RunsTable
from workbench.runs.monitor import RunSummary


def test_count_ticks_are_whole_numbers_on_a_1_2_5_step_past_the_largest():
    assert count_ticks(0) == [0]
    assert count_ticks(3) == [0, 1, 2, 3]
    assert count_ticks(7) == [0, 2, 4, 6, 8]
    assert count_ticks(932) == [0, 500, 1000]
    for largest in (1, 5, 24, 99, 932, 12345):
        ticks = count_ticks(largest)
        assert all(isinstance(tick, int) for tick in ticks) and ticks[-1] >= largest and len(ticks) <= 5


class Charts(App):
    def compose(self) -> ComposeResult:
        yield BarPlot("Assistant turns per row", id="bars")


async def test_a_count_axis_shows_no_decimals():
    app = Charts()
    async with app.run_test(size=(60, 16)) as pilot:
        app.query_one(BarPlot).show([("1", 932), ("2", 41)])
        await pilot.pause()
        drawn = app.query_one(BarPlot).plt.build()
        assert "932.0" not in drawn and ".0" not in drawn
        assert "500" in drawn and "1000" in drawn


def summary(run_dir: Path, state: str) -> RunSummary:
    return RunSummary(run_dir, run_dir.name, state, 3, 10, 1.18, time.time(), None, False)


class Runs(App):
    def compose(self) -> ComposeResult:
        yield RunsTable(id="runs")


async def test_a_state_updated_in_place_is_shown_whole(tmp_path):
    run = tmp_path / "20261201-120000-a-long-run-name-that-takes-the-room"
    app = Runs()
    async with app.run_test(size=(80, 12)) as pilot:
        table = app.query_one(RunsTable)
        table.show_runs([summary(run, "running")], run)
        await pilot.pause()
        table.show_runs([summary(run, "completed")], run)  # the same run: its cells update in place
        await pilot.pause()
        assert table.columns["state"].width >= len("✔ completed")
        shown = "".join(segment.text for segment in table.render_line(1))
        assert "✔ completed" in shown, shown
        assert all(len(f"{symbol} {state}") <= len("✔ completed") for state, (symbol, _) in STATE_STYLES.items())
