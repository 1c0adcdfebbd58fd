"""workbench.runs.monitor: events folded into curves, the EMA, overfitting detection, run summaries."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.runs.monitor import (
    RunView,
    Series,
    detect_overfitting,
    downsample,
    ema,
    summarize_run,
    summarize_runs,
)
from workbench.runs.rundir import EventLog, RunStatus, write_status
from workbench.units import format_duration

RECORDED_RUNS = Path(__file__).parent / "fixtures" / "runs"
OVERFIT_RUN = RECORDED_RUNS / "20261121-101500-identity-lora"
HEALTHY_RUN = RECORDED_RUNS / "20261120-164000-identity-lr5e-5"


def recorded_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def falling_train_losses(last_step: int) -> list[tuple[int, float]]:
    return [(step, 2.0 * math.exp(-step / 20) + 0.3) for step in range(1, last_step + 1)]


# EMA


def test_ema_is_bias_corrected_and_matches_the_recurrence():
    values = [3.0, 1.0, 2.0, 5.0, 4.0]
    smoothed = ema(values, weight=0.8)
    assert smoothed[0] == pytest.approx(3.0)  # no pull towards zero at the start
    biased = 0.0
    for i, value in enumerate(values, start=1):
        biased = 0.8 * biased + 0.2 * value
        assert smoothed[i - 1] == pytest.approx(biased / (1 - 0.8**i))


def test_ema_of_a_constant_is_that_constant_and_it_damps_noise():
    assert ema([1.5] * 30) == pytest.approx([1.5] * 30)
    noisy = [1.0 + (0.5 if i % 2 else -0.5) for i in range(200)]
    tail = ema(noisy, 0.9)[-20:]
    assert max(tail) - min(tail) < 0.2 * (max(noisy) - min(noisy))


def test_ema_rejects_a_weight_outside_zero_to_one():
    with pytest.raises(ValueError):
        ema([1.0], weight=1.0)


# Overfitting detection


def test_overfitting_fires_when_eval_rises_k_times_while_train_falls():
    evals = [(10, 1.85), (20, 1.32), (30, 1.18), (40, 1.21), (50, 1.29), (60, 1.38)]
    warning = detect_overfitting(evals, falling_train_losses(60), k=3)
    assert warning is not None
    assert warning.best_step == 30 and warning.best_eval_loss == 1.18
    assert warning.rise_start_eval_loss == 1.18 and warning.latest_eval_loss == 1.38
    assert warning.train_loss_now < warning.train_loss_before
    text = warning.message("checkpoints/checkpoint-30")
    assert "risen for 3 evaluations" in text and "memorising" in text and "step 30 (checkpoint-30)" in text


def test_overfitting_needs_k_consecutive_rises():
    two_rises = [(10, 1.85), (20, 1.32), (30, 1.18), (40, 1.21), (50, 1.29)]
    assert detect_overfitting(two_rises, falling_train_losses(50), k=3) is None
    assert detect_overfitting(two_rises, falling_train_losses(50), k=2) is not None
    dip_between = [(10, 1.3), (20, 1.2), (30, 1.25), (40, 1.22), (50, 1.3), (60, 1.4)]
    assert detect_overfitting(dip_between, falling_train_losses(60), k=3) is None


def test_no_overfitting_when_train_loss_rises_too():
    """Both losses climbing is divergence (too high a learning rate), not memorising."""
    evals = [(10, 1.2), (20, 1.3), (30, 1.4), (40, 1.5)]
    rising_train = [(step, 1.0 + step / 40) for step in range(1, 41)]
    assert detect_overfitting(evals, rising_train, k=3) is None


def test_no_overfitting_on_a_healthy_curve_or_too_few_evaluations():
    healthy = [(10, 2.05), (20, 1.83), (30, 1.66), (40, 1.54)]
    assert detect_overfitting(healthy, falling_train_losses(40)) is None
    assert detect_overfitting([(10, 1.0), (20, 1.1)], falling_train_losses(20)) is None
    assert detect_overfitting([], []) is None


def test_overfitting_points_at_the_overall_best_evaluation(tmp_path):
    evals = [(10, 1.0), (20, 1.5), (30, 1.2), (40, 1.3), (50, 1.4), (60, 1.45)]
    warning = detect_overfitting(evals, falling_train_losses(60), k=3)
    assert warning is not None and warning.best_step == 10 and warning.rise_start_eval_loss == 1.2
    view = RunView(tmp_path)
    view.apply({"event": "train", "step": step, "loss": loss} for step, loss in falling_train_losses(60))
    view.apply({"event": "eval", "step": step, "eval_loss": loss} for step, loss in evals)
    assert view.overfitting() == warning


# RunView


def test_run_view_folds_the_recorded_run():
    events = recorded_events(OVERFIT_RUN)
    trains = [e for e in events if e["event"] == "train"]
    view = RunView.load(OVERFIT_RUN)
    assert view.train_loss.steps == [e["step"] for e in trains]
    assert view.train_loss.values == [e["loss"] for e in trains]
    assert view.train_loss_smoothed.values == pytest.approx(ema([e["loss"] for e in trains]))
    assert view.eval_loss.points() == [(e["step"], e["eval_loss"]) for e in events if e["event"] == "eval"]
    assert view.learning_rate.values == [e["learning_rate"] for e in trains]
    assert view.grad_norm.values == [e["grad_norm"] for e in trains]
    assert view.step == trains[-1]["step"] and view.max_steps == events[0]["max_steps"]
    assert view.latest_tokens_per_s == trains[-1]["tokens_per_s"]
    assert view.eta_s == trains[-1]["eta_s"]
    assert view.total_epochs == pytest.approx(trains[-1]["epoch"] * view.max_steps / view.step)
    assert view.best_eval == min(view.eval_loss.points(), key=lambda p: p[1])
    assert view.best_checkpoint == f"checkpoints/checkpoint-{int(view.best_eval[0])}"
    assert view.end["state"] == "completed"
    assert view.latest_samples["step"] == view.eval_loss.steps[-1]
    warning = view.overfitting()
    assert warning is not None and warning.best_step == int(view.best_eval[0])
    assert RunView.load(HEALTHY_RUN).overfitting() is None


def test_run_view_applies_events_incrementally_like_a_full_load():
    events = recorded_events(OVERFIT_RUN)
    view = RunView(OVERFIT_RUN)
    for start in range(0, len(events), 7):
        view.apply(events[start : start + 7])
    full = RunView.load(OVERFIT_RUN)
    assert view.train_loss_smoothed.values == pytest.approx(full.train_loss_smoothed.values)
    assert view.eval_loss == full.eval_loss
    assert view.apply([]) is False


def test_a_resumed_run_replaces_the_steps_after_its_checkpoint(tmp_path):
    log = EventLog(tmp_path)
    log.append("start", max_steps=50)
    for step in range(1, 38):
        log.append("train", step=step, loss=2.0 - step / 100)
        if step % 10 == 0:
            log.append("eval", step=step, eval_loss=1.5)
    log.append("start", max_steps=50)  # resumed from checkpoint-30 after a kill at step 37
    for step in range(31, 41):
        log.append("train", step=step, loss=1.0)
    log.append("eval", step=40, eval_loss=1.2)
    view = RunView.load(tmp_path)
    assert view.train_loss.steps == list(range(1, 41))
    assert view.train_loss.values[30:] == [1.0] * 10
    assert view.eval_loss.points() == [(10, 1.5), (20, 1.5), (30, 1.5), (40, 1.2)]
    assert view.train_loss_smoothed.values == pytest.approx(ema(view.train_loss.values))


def test_eta_falls_back_to_the_recent_pace(tmp_path):
    view = RunView(tmp_path)
    view.apply([{"event": "start", "max_steps": 100}])
    view.apply([{"event": "train", "step": s, "loss": 1.0, "time": 1000.0 + 2.0 * s} for s in range(1, 11)])
    assert view.eta_s == pytest.approx(90 * 2.0)


def test_non_finite_losses_are_kept_raw_but_not_smoothed(tmp_path):
    view = RunView(tmp_path)
    view.apply([{"event": "train", "step": 1, "loss": 1.0}, {"event": "train", "step": 2, "loss": float("nan")}])
    assert len(view.train_loss) == 2 and math.isnan(view.train_loss.values[1])
    assert view.train_loss_smoothed.steps == [1]


# Helpers and the runs list


def test_series_truncate_and_downsample():
    series = Series(list(range(1, 11)), [float(v) for v in range(1, 11)])
    series.truncate_from(6)
    assert series.steps == [1, 2, 3, 4, 5]
    steps, values = downsample(list(range(1000)), list(range(1000)), 50)
    assert len(steps) == 50 and steps[0] == 0 and steps[-1] == 999 and steps == sorted(steps)
    assert downsample([1, 2], [3, 4], 50) == ([1, 2], [3, 4])


@pytest.mark.parametrize("seconds,text", [(None, "—"), (42, "42s"), (450, "7m 30s"), (7500, "2h 05m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_summaries_are_newest_first_with_best_eval(tmp_path):
    for name in (OVERFIT_RUN.name, HEALTHY_RUN.name):
        shutil.copytree(RECORDED_RUNS / name, tmp_path / name)
    summaries = summarize_runs(tmp_path)
    assert [s.run_dir.name for s in summaries] == [OVERFIT_RUN.name, HEALTHY_RUN.name]
    assert summaries[0].best_eval_loss == min(RunView.load(OVERFIT_RUN).eval_loss.values)
    assert all(s.state == "completed" and not s.can_resume for s in summaries)


def finished_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_running_status_whose_trainer_is_gone_is_dead_and_resumable(tmp_path):
    write_status(tmp_path, RunStatus(name="crashed", state="running", pid=finished_pid(), step=37))
    summary = summarize_run(tmp_path)
    assert summary.state == "dead" and not summary.can_resume  # no checkpoint yet
    checkpoint = tmp_path / "checkpoints" / "checkpoint-30"
    checkpoint.mkdir(parents=True)
    (checkpoint / "COMPLETE").touch()
    assert summarize_run(tmp_path).can_resume
    write_status(tmp_path, RunStatus(name="alive", state="running", pid=os.getpid()))
    assert summarize_run(tmp_path).state == "running"
