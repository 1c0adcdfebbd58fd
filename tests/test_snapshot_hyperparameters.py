"""SVG snapshots of the Hyperparameters pane at 80x24 and 120x40."""

from screens.app import make_app


async def _after_checks(pilot) -> None:
    await pilot.pause(0.4)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_hyperparameters_pane_snapshot(snap_compare, fixed_devices):
    """The Hyperparameters pane at 80x24 with the default config: header (model, CPU), pane tabs with
    Hyperparameters active, the sub-tabs (F2 Form, F3 Presets, F4 Compare, F5 Launch), the form's Run,
    Model and Data sections with one field per line, data.train_file marked with the red inline error
    "no training data …", the help strip, the status line ("unsaved config · ✗ 1 error(s) ·
    effective batch 4") and the footer with Save / Open / Save as / Train, ^q Quit, F1 Help and ^p palette,
    not cut."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="hyperparameters")
    assert snap_compare(app, terminal_size=(80, 24), run_before=_after_checks)


def test_hyperparameters_pane_snapshot_demo_size(snap_compare, fixed_devices):
    """The same at 120x40: more of the form (Run, Model, Data and the start of Method), the help strip
    on one or two lines, the status line and the footer."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="hyperparameters")
    assert snap_compare(app, terminal_size=(120, 40), run_before=_after_checks)
