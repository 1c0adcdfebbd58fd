"""One way to write sizes and durations: the Memory pane, the Train pane, the CLI and the trainer agree."""

from __future__ import annotations

import pytest

from workbench.units import GIB, MIB, format_bytes, format_duration


@pytest.mark.parametrize(
    "count,text",
    [(None, "—"), (300, "300 bytes"), (12 * 1024, "12 KiB"), (768 * MIB, "768 MiB"), (1.07 * GIB, "1.07 GiB"),
     (19.44 * GIB, "19.4 GiB"), (141 * GIB, "141 GiB"), (-2 * GIB, "-2.00 GiB")],
)
def test_format_bytes_keeps_three_significant_digits_of_gib(count, text):
    assert format_bytes(count) == text


def test_the_memory_and_train_panes_write_the_same_size_alike(tmp_path):
    """A measured 1.32 GiB reads the same in the Train pane's memory row and in the Memory pane's verdict."""
    from widgets.train_stats import _memory_rows
    from workbench.memory.verdict import Budget, FitVerdict
    from workbench.runs.monitor import RunView

    size = int(1.32 * GIB)
    view = RunView(tmp_path)
    view.apply([{"event": "train", "step": 1, "loss": 1.0, "memory": {"cpu_rss_bytes": size, "gpus": []}}])
    [(_, train_row)] = [(label, str(value)) for label, value in _memory_rows(view, None)]
    verdict = FitVerdict("fits", "", Budget(size, "RAM"), headroom=0.1, fit_line_bytes=size)
    assert train_row == "1.32 GiB RAM (process)"
    assert verdict.fit_line_text.startswith("fit line 1.32 GiB = 90% of 1.32 GiB")


@pytest.mark.parametrize("seconds,text", [(None, "—"), (42, "42s"), (450, "7m 30s"), (7500, "2h 05m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
