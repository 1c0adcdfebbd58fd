"""SVG snapshots of the Data pane at 80x24 and 120x40, with the messy fixture open."""

from pathlib import Path

from screens.app import make_app

REPO = Path(__file__).resolve().parents[1]
MESSY = "tests/fixtures/data/messy.jsonl"


async def open_messy_file_in_model_view(pilot):
    screen = pilot.app.screen
    screen.query_one("#data-path").value = MESSY
    screen.open_path(MESSY)
    while screen.report is None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
    await pilot.press("down", "down", "m")
    await pilot.pause(0.3)
    pilot.app.clear_notifications()
    await pilot.pause()


def test_data_pane_snapshot(snap_compare, fixed_devices, monkeypatch):
    """The Data pane at 80x24 with tests/fixtures/data/messy.jsonl open: the path in the file bar, the
    status line (27 rows, messages detected, rows flagged), the Rows tab with the table (row, fmt,
    turns, prompt and response previews, token counts, red flags: dup on rows 0-1, near on 2-3) and
    row 2 highlighted; below it "What the model sees" for row 2: its token count against max 1,024,
    trained and masked counts, "end-of-turn trained ✓", and the templated text scrolled to the
    answer: the user's question dimmed, the answer's tokens and its <|im_end|> on alternating greens;
    the footer whole (the rows have the focus, so x Drop and u Undo are in it)."""
    monkeypatch.chdir(REPO)
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="data")
    assert snap_compare(app, terminal_size=(80, 24), run_before=open_messy_file_in_model_view)


def test_data_pane_snapshot_demo_size(snap_compare, fixed_devices, monkeypatch):
    """The same at 120x40: the table with more rows and wider previews above the model view of row 2,
    its trained tokens in green with two lines of context above them; the footer whole."""
    monkeypatch.chdir(REPO)
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="data")
    assert snap_compare(app, terminal_size=(120, 40), run_before=open_messy_file_in_model_view)
