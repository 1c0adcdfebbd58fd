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
