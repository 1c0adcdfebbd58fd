"""Resuming continues the same training: after a stop, the resumed steps see the same batches, the
same optimizer state and the same random numbers, so their losses match an uninterrupted run."""

from __future__ import annotations

import subprocess
import sys
import time

from training_test_support import read_events, run_config, varied_rows, write_alpaca


def _train_losses(run_dir) -> dict[int, float]:
    return {event["step"]: event["loss"] for event in read_events(run_dir) if event["event"] == "train"}


def test_losses_after_a_stop_and_resume_match_an_uninterrupted_run(tmp_path, tiny_model_dir):
    from workbench.config.io import save_config
    from workbench.runs.launch import resume_run, start_run, stop_run, wait_for_end
    from workbench.runs.rundir import read_status

    train = write_alpaca(tmp_path / "train.json", varied_rows(40))
    config = run_config(
        tiny_model_dir, train, optimization={"max_steps": 30}, evaluation={"save_steps": 2, "eval_steps": 2},
        # Without dropout nothing random is left: every resumed step must give the same loss. (With
        # dropout the masks after a resume differ slightly: the eval loader draws from the same
        # generator, and a stop saves its checkpoint before the step's evaluation.)
        method={"type": "lora", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0},
    )
    config_path = save_config(config, tmp_path / "run.yaml")
    straight = tmp_path / "straight"
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(config_path), "--run-dir", str(straight)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _train_losses(straight)
    assert sorted(expected) == list(range(1, 31))

    interrupted = start_run(config, runs_root=tmp_path / "runs")
    deadline = time.monotonic() + 180
    while (status := read_status(interrupted)) is None or status.step < 3:
        assert time.monotonic() < deadline, "the run never reached step 3"
        assert status is None or status.state in ("starting", "running"), status
        time.sleep(0.05)
    assert stop_run(interrupted)
    stopped = wait_for_end(interrupted, 120)
    assert stopped.state == "stopped", stopped.reason
    stopped_at = stopped.step
    assert stopped_at < 30
    before_stop = _train_losses(interrupted)
    assert before_stop == {step: expected[step] for step in before_stop}, "one config trains the same way twice"

    resume_run(interrupted)
    finished = wait_for_end(interrupted, 180)
    assert finished.state == "completed", finished.reason
    events = read_events(interrupted)
    second_start = [i for i, event in enumerate(events) if event["event"] == "start"][1]
    resumed = {e["step"]: e["loss"] for e in events[second_start:] if e["event"] == "train"}
    assert resumed and min(resumed) == events[second_start]["resumed_from_step"] + 1
    for step, loss in resumed.items():
        assert abs(loss - expected[step]) < 1e-5 * abs(expected[step]), (step, loss, expected[step])
