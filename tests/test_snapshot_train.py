"""SVG snapshots of the Train pane showing a recorded run, at 80x24 and at 120x40."""

from pathlib import Path

import pytest

from screens.app import make_app

RECORDED_RUNS = Path(__file__).parent / "fixtures" / "runs"


@pytest.fixture
def recorded_runs(monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(RECORDED_RUNS))


async def wait_for_the_run(pilot):
    """The pane reads the run's log in a thread; the picture is of the loaded run."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def test_train_pane_snapshot(snap_compare, fixed_devices, recorded_runs):
    """The Train pane at 80x24 on the recorded overfitting run: the amber overfitting banner across the
    top (eval loss rose 1.180 → 1.380, best checkpoint step 30); the runs list with both recorded runs
    (identity-lora selected, state and best eval visible); the stats (completed, why: early stopping,
    step 60/90 with a progress bar, epoch, 122 tokens/s, ETA, best eval 1.180 · checkpoint-30); Stop and
    Resume disabled (the run is finished), Chat and Export enabled; the loss chart with train (grey),
    smoothed (blue) and eval (orange dots) curves and a legend, and the LR and grad norm charts below."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait_for_the_run)


def test_train_pane_snapshot_demo_size(snap_compare, fixed_devices, recorded_runs):
    """The same run at 120x40: wider runs list, memory and peak rows in the stats, taller charts, and the
    Generations panel showing the step-60 answers under each prompt with the step-10 answer dimmed beneath
    (the model learnt the name "Nova" and then forgot Paris)."""
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait_for_the_run)
