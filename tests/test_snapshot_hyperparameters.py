"""SVG snapshot of the Hyperparameters pane at 80x24."""

from screens.app import make_app


def test_hyperparameters_pane_snapshot(snap_compare, fixed_devices):
    """The Hyperparameters pane at 80x24: header (model, CPU), pane tabs with Hyperparameters active, the pane's body, footer."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="hyperparameters")
    assert snap_compare(app, terminal_size=(80, 24))
