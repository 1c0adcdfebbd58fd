"""SVG snapshot of the Data pane at 80x24."""

from screens.app import make_app


def test_data_pane_snapshot(snap_compare, fixed_devices):
    """The Data pane at 80x24: header (model, CPU), pane tabs with Data active, the pane's body, footer."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="data")
    assert snap_compare(app, terminal_size=(80, 24))
