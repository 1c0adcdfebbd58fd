"""SVG snapshot of the Chat pane at 80x24."""

from screens.app import make_app


def test_chat_pane_snapshot(snap_compare, fixed_devices):
    """The Chat pane at 80x24: header (model, CPU), pane tabs with Chat active, the pane's body, footer."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="chat")
    assert snap_compare(app, terminal_size=(80, 24))
