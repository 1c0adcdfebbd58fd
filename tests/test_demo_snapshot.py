"""SVG snapshots of the guided tour's panel (the first step, on the Data pane)."""

from pathlib import Path

import pytest


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_demo_welcome_snapshot(snap_compare, fixed_devices, size):
    """The demo's first step on the Data pane, no model loaded: the header, the pane tabs with Data
    active, the Data pane with the messy sample path in its box and "No file open", and at the bottom
    the guide panel above the footer: a thick accent rule, the bold title "Teaching a model something
    new, in ten minutes" with "step 1 of 11" on the right, four short sentences (pretraining, SFT,
    preference tuning, today's goal: Sage by Northwind Labs), and the keys "n/PgDn next · b/PgUp back ·
    q quit tour" at the bottom right. At 80x24 the sentences wrap and the pane above gets less room."""
    from screens.demo import make_demo_app
    from workbench.demo.pipeline import DemoOptions

    app = make_demo_app(
        DemoOptions(data_file=Path("sample_data/messy_identity.jsonl"), heldout_file=None),
        device_report=fixed_devices,
        load_model=False,
    )

    async def guide_shown(pilot):
        while app._guide is None or not app._guide.children:
            await pilot.pause(0.05)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=guide_shown)


def test_demo_tokens_step_snapshot_at_80x24(snap_compare, fixed_devices, tmp_path, monkeypatch):
    """Step 4 of the tour ("What the model actually sees") at 80x24: the Data pane zoomed to the row's
    model view (no table: the guide takes the lower half), the counts line (61 tokens / max 256 ·
    33 trained · 28 masked · end-of-turn trained ✓), the system and user turns dimmed and the answer
    "I'm Sage, an assistant from Northwind Labs, …" in green; the guide with its title, three
    sentences and keys; the footer whole."""
    from screens.demo import make_demo_app
    from workbench.demo.pipeline import DemoOptions
    from workbench.demo.tour import step_index

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    app = make_demo_app(
        DemoOptions(data_file=Path("sample_data/messy_identity.jsonl"), heldout_file=None, runs_dir=tmp_path / "runs"),
        device_report=fixed_devices,
        load_model=False,
    )

    async def tokens_step_shown(pilot):
        from widgets.data_detail import RowDetail

        while app._guide is None or not app._guide.children:
            await pilot.pause(0.05)
        await app.show_step(step_index("masking"))
        for _ in range(600):  # the step's set-up, then the row's tokens scrolled to its answer
            await pilot.pause(0.05)
            detail = app.screen.query(RowDetail)
            if app._step_timer is None and detail and detail.first().example is not None and app.screen.has_class("-zoom-detail"):
                line = detail.first().first_trained_line()
                scroll = detail.first().query_one("#detail-scroll")
                if line is not None and scroll.scroll_y == min(scroll.max_scroll_y, max(0, line - 2)):
                    break  # where the zoomed view scrolls to: two lines above the answer, or the end
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=tokens_step_shown)
