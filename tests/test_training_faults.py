"""Runs that cannot go on end with the truth: a diverged run fails, two trainers never share a run
directory, a full disk fails cleanly and resumes once space is freed, and the best checkpoint is
never worse than not training at all."""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from training_test_support import read_events, run_config, varied_rows, write_alpaca

from workbench.errors import WorkbenchError
from workbench.runs.rundir import complete_checkpoints, read_status


def test_a_learning_rate_of_1000_ends_as_diverged_never_completed(tmp_path, tiny_model_dir):
    from workbench.training.failures import EXIT_FAILED
    from workbench.training.run import run_training

    train = write_alpaca(tmp_path / "train.json", varied_rows(20))
    config = run_config(tiny_model_dir, train, optimization={"learning_rate": 1000.0, "max_steps": 12})
    run_dir = tmp_path / "run"
    lines: list[str] = []
    assert run_training(config, run_dir, report=lines.append) == EXIT_FAILED
    status = read_status(run_dir)
    assert status.state == "failed" and status.reason.startswith("diverged"), status.reason
    assert "learning_rate" in status.reason and status.step < 12
    end = read_events(run_dir)[-1]
    assert end["event"] == "end" and end["state"] == "failed" and end["reason"].startswith("diverged")
    assert not (run_dir / "adapter").exists(), "a diverged run leaves no final adapter"


def test_the_divergence_watch_tells_collapse_and_explosion_from_training():
    from workbench.training.divergence import COLLAPSE_STEPS, RISE_STEPS, DivergenceWatch

    vocab = 49152
    uniform = math.log(vocab)
    collapsed = DivergenceWatch(vocab)
    reasons = [collapsed.observe(step, loss, grad) for step, (loss, grad) in
               enumerate([(7.0, 2.0), (32.0, 50.0)] + [(uniform, 0.0)] * COLLAPSE_STEPS, start=1)]
    assert reasons[:-1] == [None] * (len(reasons) - 1) and "collapsed" in reasons[-1] and "49,152" in reasons[-1]

    exploding = DivergenceWatch(vocab)
    assert exploding.observe(1, 2.0, 1.0) is None
    results = [exploding.observe(step, 9.0, 30.0) for step in range(2, 2 + RISE_STEPS)]
    assert results[:-1] == [None] * (RISE_STEPS - 1) and "far above its start" in results[-1]

    assert "gradient norm became nan" in DivergenceWatch(vocab).observe(3, 10.8, float("nan"))
    assert DivergenceWatch(vocab, fp16=True).observe(3, 10.8, float("inf")) is None  # fp16's scaler skips such steps

    # a random model starts at ln(vocab) and learns: never diverged
    healthy = DivergenceWatch(vocab)
    assert all(healthy.observe(step, uniform - 0.01 * step, 0.3) is None for step in range(1, 50))
    spike = DivergenceWatch(vocab)  # one spike is not a divergence
    assert all(spike.observe(step, loss, 1.0) is None for step, loss in enumerate([2.0, 9.0, 2.1, 2.0, 9.0, 1.9], start=1))


def test_the_best_checkpoint_is_never_worse_than_the_untrained_adapter(tmp_path, tiny_model_dir, monkeypatch):
    """Every evaluation after step 0 is worse: checkpoint-0 (the untrained adapter) stays the best
    and becomes adapter/, whose LoRA B matrices are all zero (it changes nothing)."""
    from safetensors.numpy import load_file

    from workbench.training.run import run_training
    from workbench.training.trainer import workbench_trainer_class

    trainer_class = workbench_trainer_class()

    def worse_after_training(self):
        return 1.0 + self.state.global_step, 1  # (loss sum, tokens): step 0 is the lowest

    monkeypatch.setattr(trainer_class, "_token_weighted_eval_loss", worse_after_training)
    train = write_alpaca(tmp_path / "train.json", varied_rows(20))
    run_dir = tmp_path / "run"
    assert run_training(run_config(tiny_model_dir, train), run_dir, report=lambda line: None) == 0
    status = read_status(run_dir)
    evals = [event for event in read_events(run_dir) if event["event"] == "eval"]
    assert evals[0]["step"] == 0 and [event["step"] for event in evals] == [0, 2, 4, 6]
    assert status.best_checkpoint == "checkpoints/checkpoint-0" and status.best_eval_loss == 1.0
    weights = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    lora_b = [array for name, array in weights.items() if "lora_B" in name]
    assert lora_b and all(not array.any() for array in lora_b)


def _spawn_train(config_path: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "workbench", "train", str(config_path), "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_concurrent_trainings_into_one_directory_exactly_one_runs(tmp_path, tiny_model_dir):
    from workbench.config.io import save_config

    train = write_alpaca(tmp_path / "train.json", varied_rows(12))
    config_path = tmp_path / "run.yaml"
    save_config(run_config(tiny_model_dir, train, optimization={"max_steps": 2}, evaluation={"eval_steps": 2, "save_steps": 2}), config_path)
    run_dir = tmp_path / "run"
    first, second = _spawn_train(config_path, run_dir), _spawn_train(config_path, run_dir)
    results = [(process.wait(timeout=180), *process.communicate()) for process in (first, second)]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, _, err in results if code == 2)
    assert "is using this run directory" in refused and "(pid " in refused and "Traceback" not in refused
    assert len(refused.strip().splitlines()) == 1
    events = read_events(run_dir)
    assert [event["event"] for event in events].count("start") == 1
    assert [event["step"] for event in events if event["event"] == "train"] == [1, 2]
    assert read_status(run_dir).state == "completed"


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path):
    from workbench.runs.run_lock import claim_run_dir, release_run_dir

    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from workbench.runs.run_lock import claim_run_dir; "
        f"claim_run_dir(Path({str(run_dir)!r})); print('held', flush=True); time.sleep(60)"
    )], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkbenchError, match=rf"a trainer \(pid {holder.pid}, since .*\) is using this run directory"):
            claim_run_dir(run_dir, "a resume")
        os.kill(holder.pid, signal.SIGKILL)  # a kill -9 leaves no stale lock: the kernel drops it
        holder.wait(10)
        claim_run_dir(run_dir, "a trainer")
    finally:
        holder.kill()
        release_run_dir(run_dir)


@pytest.fixture
def small_disk(tmp_path):
    """A 6 MiB tmpfs (checkpoint-0 fits, the next checkpoint does not), and a way to grow it; None
    when this machine cannot mount one (the test then fills the disk by simulation)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(folder)], capture_output=True).returncode:
        yield None
        return

    def grow() -> None:
        subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)

    yield folder, grow
    subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_full_disk_fails_the_run_cleanly_and_it_resumes_once_space_is_freed(tmp_path, tiny_model_dir, small_disk, monkeypatch):
    from workbench.training.run import run_training
    from workbench.training.trainer import workbench_trainer_class

    if small_disk is not None:
        disk, grow = small_disk
    else:  # no tmpfs here: the save of checkpoint-2 fails as a full disk would
        disk = tmp_path
        trainer_class = workbench_trainer_class()
        real_save = trainer_class._save_checkpoint

        def save_fills_the_disk(self, model, trial):
            if self.state.global_step == 2:
                partial = Path(self.args.output_dir) / "checkpoint-2"
                partial.mkdir(parents=True, exist_ok=True)
                (partial / "adapter_model.safetensors").write_bytes(b"\0" * 100)
                raise OSError(errno.ENOSPC, "No space left on device", str(partial / "optimizer.pt"))
            return real_save(self, model, trial)

        monkeypatch.setattr(trainer_class, "_save_checkpoint", save_fills_the_disk)

        def grow() -> None:
            monkeypatch.setattr(trainer_class, "_save_checkpoint", real_save)

    train = write_alpaca(tmp_path / "train.json", varied_rows(20))
    config = run_config(tiny_model_dir, train)
    run_dir = disk / "run"
    assert run_training(config, run_dir, report=lambda line: None) == 1
    status = read_status(run_dir)
    assert status.state == "failed" and status.reason.startswith("no space left on "), status.reason
    assert f"workbench train --resume {run_dir}" in status.reason
    end = read_events(run_dir)[-1]
    assert end["event"] == "end" and end["state"] == "failed" and end["reason"] == status.reason
    assert [path.name for path in complete_checkpoints(run_dir)] == ["checkpoint-0"]
    assert not [path for path in (run_dir / "checkpoints").iterdir() if path.name != "checkpoint-0"], "the cut-short save is gone"
    assert not [path.name for path in run_dir.rglob(".*") if path.name != ".workbench.lock"], "no temp files are left"

    grow()
    assert run_training(config, run_dir, resume=True, report=lambda line: None) == 0
    status = read_status(run_dir)
    assert status.state == "completed" and status.step == 6
    assert [event["resumed_from_step"] for event in read_events(run_dir) if event["event"] == "start"][-1] == 0


def test_leftovers_of_a_killed_trainer_are_removed_by_the_next_one(tmp_path):
    from workbench.runs.run_lock import claim_run_dir, release_run_dir, remove_leftover_temp_files

    run_dir = tmp_path / "run"
    checkpoint = run_dir / "checkpoints" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    leftovers = [run_dir / ".status.json.k3j2", run_dir / ".training_args.json.partial", checkpoint / ".COMPLETE.x1"]
    for path in leftovers:
        path.write_text("")
    (run_dir / ".adapter.partial").mkdir()
    (run_dir / "status.json").write_text("{}")
    claim_run_dir(run_dir)
    try:
        removed = remove_leftover_temp_files(run_dir)
    finally:
        release_run_dir(run_dir)
    assert sorted(map(str, removed)) == sorted(map(str, [*leftovers, run_dir / ".adapter.partial"]))
    assert (run_dir / "status.json").exists() and not any(path.exists() for path in leftovers)


def test_a_resume_after_the_data_changed_says_so(tmp_path, tiny_model_dir):
    from workbench.training.data_fingerprint import DATA_FINGERPRINT_FILE, check_data_unchanged

    train = write_alpaca(tmp_path / "train.json", varied_rows(10))
    config = run_config(tiny_model_dir, train)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    said: list[str] = []
    check_data_unchanged(run_dir, config, resume=False, report=said.append)
    stored = json.loads((run_dir / DATA_FINGERPRINT_FILE).read_text())
    assert stored["data.train_file"]["path"] == str(train) and said == []
    check_data_unchanged(run_dir, config, resume=True, report=said.append)
    assert said == [], "unchanged data: nothing to say"
    write_alpaca(train, varied_rows(10, seed=5))
    check_data_unchanged(run_dir, config, resume=True, report=said.append)
    assert len(said) == 1 and said[0].startswith("warning: data.train_file: ") and "changed since the run started" in said[0]


def test_weights_trained_past_the_last_evaluation_are_evaluated_at_the_end(tmp_path, tiny_model_dir, monkeypatch):
    """eval_steps larger than the run: without a last evaluation the untrained checkpoint-0 would
    stay the best and become adapter/; the final weights are measured once and kept when better."""
    from safetensors.numpy import load_file

    from workbench.training.run import run_training
    from workbench.training.trainer import workbench_trainer_class

    monkeypatch.setattr(workbench_trainer_class(), "_token_weighted_eval_loss", lambda self: (10.0 - self.state.global_step, 1))
    train = write_alpaca(tmp_path / "train.json", varied_rows(20))
    run_dir = tmp_path / "run"
    config = run_config(tiny_model_dir, train, optimization={"max_steps": 3}, evaluation={"eval_steps": 10, "save_steps": 10})
    assert run_training(config, run_dir, report=lambda line: None) == 0
    assert [event["step"] for event in read_events(run_dir) if event["event"] == "eval"] == [0, 3]
    status = read_status(run_dir)
    assert status.best_checkpoint == "checkpoints/checkpoint-3" and status.best_eval_loss == 7.0
    weights = load_file(str(run_dir / "adapter" / "adapter_model.safetensors"))
    assert any(array.any() for name, array in weights.items() if "lora_B" in name), "the trained weights were kept"
