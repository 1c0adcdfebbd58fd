"""The trainer as real child processes: detached start, kill -9, resume, and two ranks over gloo."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from training_test_support import read_events, run_config, varied_rows, write_alpaca
from workbench.runs.rundir import complete_checkpoints, read_status


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_kill_9_leaves_a_dead_run_whose_resume_continues_the_step_count(tmp_path, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from workbench.config.io import save_config
    from workbench.runs.launch import resume_run, wait_for_end

    train = write_alpaca(tmp_path / "train.json", varied_rows(24))
    config = run_config(
        tiny_model_dir, train, optimization={"max_steps": 10}, evaluation={"save_steps": 2, "eval_steps": 2}
    )
    config_path = save_config(config, tmp_path / "run.yaml")
    # The launching process (as the TUI would) exits at once; the run must live on without it.
    launcher = (
        "import sys; from workbench.config.io import load_config; from workbench.runs.launch import start_run; "
        f"print(start_run(load_config({str(config_path)!r}), runs_root={str(tmp_path / 'runs')!r}))"
    )
    launched = subprocess.run([sys.executable, "-c", launcher], capture_output=True, text=True, timeout=60, check=True)
    run_dir = Path(launched.stdout.strip())
    assert run_dir.parent == tmp_path / "runs" and (run_dir / "config.yaml").is_file()
    assert read_status(run_dir).state in ("starting", "running")

    trained = lambda: [path for path in complete_checkpoints(run_dir) if path.name != "checkpoint-0"]  # noqa: E731
    first = _wait_for(trained, 180, "a complete checkpoint after training began")[0]  # checkpoint-0: the untrained baseline
    pid = read_status(run_dir).pid
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: read_status(run_dir).state == "dead", 10, "the run to read as dead")
    killed_at = read_status(run_dir).step
    assert killed_at < 10

    # the last complete checkpoint loads as a PEFT adapter
    saved = complete_checkpoints(run_dir)[-1]
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), saved)
    assert torch.isfinite(model(torch.tensor([[1, 2, 3]])).logits).all()
    assert int(first.name.rsplit("-", 1)[1]) >= 2

    resume_run(run_dir)
    status = wait_for_end(run_dir, 180)
    assert status.state == "completed", status.reason
    assert status.step == 10

    events = read_events(run_dir)
    starts = [index for index, event in enumerate(events) if event["event"] == "start"]
    assert len(starts) == 2
    resumed_from = events[starts[1]]["resumed_from_step"]
    assert resumed_from == int(saved.name.rsplit("-", 1)[1])
    steps_after = [event["step"] for event in events[starts[1]:] if event["event"] == "train"]
    assert steps_after == list(range(resumed_from + 1, 11))
    state = json.loads((complete_checkpoints(run_dir)[-1] / "trainer_state.json").read_text())
    assert state["global_step"] == 10
    log = (run_dir / "trainer.log").read_text()
    assert f"resume: continuing from checkpoints/checkpoint-{resumed_from}" in log


def test_two_cpu_processes_over_gloo_write_one_coherent_event_stream(tmp_path, tiny_model_dir):
    from workbench.config.io import save_config

    train = write_alpaca(tmp_path / "train.json", varied_rows(24))
    config = run_config(
        tiny_model_dir, train, optimization={"max_steps": 4}, evaluation={"save_steps": 2, "eval_steps": 2},
        devices={"num_processes": 2},
    )
    config_path = save_config(config, tmp_path / "ddp.yaml")
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "train", str(config_path), "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    lines = (run_dir / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line whole: no interleaved writes
    kinds = [event["event"] for event in events]
    assert kinds.count("start") == 1 and kinds.count("end") == 1
    assert events[0]["world_size"] == 2
    assert [event["step"] for event in events if event["event"] == "train"] == [1, 2, 3, 4]
    assert [event["step"] for event in events if event["event"] == "eval"] == [0, 2, 4]  # 0: the untrained baseline
    assert read_status(run_dir).state == "completed"
    checkpoint = complete_checkpoints(run_dir)[-1]
    assert (checkpoint / "rng_state_0.pth").is_file() and (checkpoint / "rng_state_1.pth").is_file()
    assert done.stdout.count("step 4/4") == 1  # only rank 0 prints progress
