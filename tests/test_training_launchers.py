"""Two CPU ranks (gloo) started by the field's launchers, bare `torchrun` and `accelerate launch`,
with no --run-dir: one training is one run directory (created by rank 0, joined by rank 1), and
its checkpoint resumes with `workbench train --resume RUN`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from training_test_support import read_events, run_config, varied_rows, write_alpaca
from workbench.runs.rundir import complete_checkpoints, read_status

MAX_STEPS = 6


def _launch_stop_and_resume(tmp_path: Path, tiny_model_dir: Path, launcher: list[str]) -> Path:
    """Start the config's ranks with `launcher`, stop the run (SIGTERM) after its first checkpoint,
    check the stopped run directory, then resume it to the end; returns the run directory."""
    from workbench.config.io import save_config

    train = write_alpaca(tmp_path / "train.json", varied_rows(24))
    # devices.num_processes stays 1: the launcher decides, and the run directory records what it started
    config = run_config(  # no validation split: evaluating would only add time here
        tiny_model_dir, train, optimization={"max_steps": MAX_STEPS}, data={"validation_split": 0.0},
        evaluation={"load_best_model_at_end": False},
    )
    config_path = save_config(config, tmp_path / "run.yaml")
    runs = tmp_path / "runs"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    ranks = subprocess.Popen(
        [*launcher, "-m", "workbench", "train", str(config_path), "--runs-dir", str(runs)],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (runs.is_dir() and any(complete_checkpoints(run) for run in runs.iterdir())):
            assert ranks.poll() is None, ranks.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        (run_dir,) = runs.iterdir()
        os.kill(read_status(run_dir).pid, signal.SIGTERM)  # rank 0 shares the stop with rank 1
        output = ranks.communicate(timeout=120)[0]
    finally:
        if ranks.poll() is None:
            ranks.kill()
    assert ranks.returncode == 0, output[-3000:]

    assert list(runs.iterdir()) == [run_dir]  # one directory for both ranks
    status = read_status(run_dir)
    assert status.state == "stopped", status.reason
    stopped_at = status.step
    assert 2 <= stopped_at < MAX_STEPS
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["devices"]["num_processes"] == 2  # what really trained, so a resume starts two ranks
    assert sorted(path.name for path in run_dir.glob("*.yaml")) == ["config.yaml"]
    events = read_events(run_dir)
    assert [event["event"] for event in events].count("start") == 1 and events[0]["world_size"] == 2
    assert [event["step"] for event in events if event["event"] == "train"] == list(range(1, stopped_at + 1))
    for checkpoint in complete_checkpoints(run_dir):
        assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert output.count(f"step 1/{MAX_STEPS}") == 1  # only rank 0 reports

    resumed = subprocess.run(
        [sys.executable, "-m", "workbench", "train", "--resume", str(run_dir)],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert list(runs.iterdir()) == [run_dir]
    status = read_status(run_dir)
    assert status.state == "completed" and status.step == MAX_STEPS, status.reason
    events = read_events(run_dir)
    starts = [index for index, event in enumerate(events) if event["event"] == "start"]
    assert len(starts) == 2 and events[starts[1]]["world_size"] == 2
    resumed_from = events[starts[1]]["resumed_from_step"]
    assert resumed_from == stopped_at
    assert [event["step"] for event in events[starts[1]:] if event["event"] == "train"] == list(range(resumed_from + 1, MAX_STEPS + 1))
    last = complete_checkpoints(run_dir)[-1]
    assert json.loads((last / "trainer_state.json").read_text())["global_step"] == MAX_STEPS
    assert (last / "rng_state_0.pth").is_file() and (last / "rng_state_1.pth").is_file()
    return run_dir


def test_bare_torchrun_ranks_share_one_run_directory_that_resumes(tmp_path, tiny_model_dir):
    _launch_stop_and_resume(
        tmp_path, tiny_model_dir, [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    )


def test_accelerate_launch_ranks_share_one_run_directory_that_resumes(tmp_path, tiny_model_dir):
    _launch_stop_and_resume(
        tmp_path, tiny_model_dir,
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"],
    )
