"""The Train pane driven by the Pilot from recorded run directories (no trainer, no model)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from screens.app import make_app
from widgets.train_plots import CurvePlot
from widgets.train_runs import RunsTable
from widgets.train_stats import OverfittingBanner, RunStats
import workbench.runs.launch
from workbench.units import format_duration
from workbench.runs.rundir import EventLog, RunStatus, write_status

RECORDED_RUNS = Path(__file__).parent / "fixtures" / "runs"
OVERFIT_RUN = "20261121-101500-identity-lora"
HEALTHY_RUN = "20261120-164000-identity-lr5e-5"


@pytest.fixture
def runs_root(tmp_path, monkeypatch) -> Path:
    """A copy of the recorded runs as the workbench's runs folder."""
    root = tmp_path / "runs"
    for name in (OVERFIT_RUN, HEALTHY_RUN):
        shutil.copytree(RECORDED_RUNS / name, root / name)
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    return root


def events_of(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [event for event in map(json.loads, lines) if event["event"] == kind]


def mark_running(run_dir: Path, pid: int) -> None:
    status = json.loads((run_dir / "status.json").read_text())
    status.update(state="running", pid=pid, reason=None)
    (run_dir / "status.json").write_text(json.dumps(status))


def stats_text(app) -> str:
    """The stats panel as plain text, rendered at the panel's width."""
    from rich.console import Console

    static = app.screen.query_one("#train-stats-text")
    console = Console(width=max(static.size.width, 20), record=True, file=open(os.devnull, "w"))
    console.print(static.content)
    return " ".join(console.export_text().split())


def curve(app, plot_id: str, label: str):
    return next(c for c in app.screen.query_one(plot_id, CurvePlot).curves if c.label == label)


def finished_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


async def settle(app, pilot, seconds: float = 0.0) -> None:
    """Let the loader threads finish and their messages land."""
    await pilot.pause(seconds)
    await app.workers.wait_for_complete()
    await pilot.pause()


async def open_train_pane(fixed_devices, size=(80, 24)):
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    return app, app.run_test(size=size)


async def test_recorded_run_fills_the_charts_and_warns_of_overfitting(runs_root, fixed_devices):
    run_dir = runs_root / OVERFIT_RUN
    mark_running(run_dir, os.getpid())
    trains, evals = events_of(run_dir, "train"), events_of(run_dir, "eval")
    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        assert app.screen.shown_run == run_dir and app.selected_run == run_dir
        train = curve(app, "#train-loss-plot", "train")
        assert list(train.steps) == [e["step"] for e in trains] and list(train.values) == [e["loss"] for e in trains]
        eval_curve = curve(app, "#train-loss-plot", "eval")
        assert list(zip(eval_curve.steps, eval_curve.values)) == [(e["step"], e["eval_loss"]) for e in evals]
        assert len(curve(app, "#train-loss-plot", "smoothed").values) == len(trains)
        learning_rate = app.screen.query_one("#train-lr-plot", CurvePlot).curves[0]
        assert list(learning_rate.values) == [e["learning_rate"] for e in trains]
        assert app.screen.query_one("#train-grad-plot", CurvePlot).replot_count >= 1

        banner = app.screen.query_one(OverfittingBanner)
        best_step = min(evals, key=lambda e: e["eval_loss"])["step"]
        assert banner.display and "memorising" in str(banner.render())
        assert f"best checkpoint is step {best_step}" in str(banner.render())

        text = stats_text(app)
        assert f"{trains[-1]['tokens_per_s']:,.0f} tokens/s" in text
        assert format_duration(trains[-1]["eta_s"]) in text
        assert "running" in text and f"{trains[-1]['step']}/{events_of(run_dir, 'start')[0]['max_steps']}" in text


async def test_a_growing_event_log_updates_the_charts(tmp_path, monkeypatch, fixed_devices):
    run_dir = tmp_path / "runs" / "20261121-120000-live"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    write_status(run_dir, RunStatus(name="live", state="running", pid=os.getpid(), max_steps=20))
    log = EventLog(run_dir)
    log.append("start", max_steps=20)
    for step in range(1, 6):
        log.append("train", step=step, loss=2.0 - step / 10, learning_rate=1e-4, grad_norm=1.0, tokens_per_s=100.0, eta_s=60.0)
    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        assert list(curve(app, "#train-loss-plot", "train").steps) == [1, 2, 3, 4, 5]
        assert not app.screen.query_one(OverfittingBanner).display
        for step in range(6, 11):
            log.append("train", step=step, loss=2.0 - step / 10, learning_rate=1e-4, grad_norm=1.0, tokens_per_s=150.0, eta_s=30.0)
        log.append("eval", step=10, eval_loss=1.4)
        await settle(app, pilot, 0.8)  # one tail interval and one replot throttle
        assert list(curve(app, "#train-loss-plot", "train").steps) == list(range(1, 11))
        assert list(curve(app, "#train-loss-plot", "eval").values) == [1.4]
        assert "150 tokens/s" in stats_text(app) and "30s" in stats_text(app)


async def test_the_stats_name_the_tracker_log_directory(tmp_path, monkeypatch, fixed_devices):
    run_dir = tmp_path / "runs" / "20261121-120000-tracked"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    write_status(run_dir, RunStatus(name="tracked", state="running", pid=os.getpid(), max_steps=4))
    EventLog(run_dir).append("train", step=1, loss=2.0, learning_rate=1e-4, grad_norm=1.0, tokens_per_s=100.0)
    app, running = await open_train_pane(fixed_devices, size=(200, 40))
    async with running as pilot:
        await settle(app, pilot)
        assert "Logs" not in stats_text(app)  # no tracker: no logs/ folder
    (run_dir / "logs").mkdir()
    app, running = await open_train_pane(fixed_devices, size=(200, 40))
    async with running as pilot:
        await settle(app, pilot)
        assert f"Logs{run_dir / 'logs'}" in stats_text(app).replace(" ", "")  # a long path folds


async def test_a_run_whose_trainer_vanished_shows_dead(runs_root, fixed_devices):
    run_dir = runs_root / "20261121-130000-crashed"
    write_status(run_dir, RunStatus(name="crashed", state="running", pid=finished_pid(), step=3, started_at=1895256100.0))
    EventLog(run_dir).append("train", step=3, loss=1.0)
    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        table = app.screen.query_one(RunsTable)
        crashed = next(s for s in table.summaries if s.run_dir == run_dir)
        assert crashed.state == "dead"
        assert app.screen.shown_run == run_dir  # the newest run is shown
        assert "dead" in stats_text(app)
        assert app.screen.query_one("#train-resume").disabled  # nothing to resume from: no checkpoint
        assert app.screen.query_one("#train-stop").disabled


async def test_selected_run_and_highlighting_pick_the_shown_run(runs_root, fixed_devices):
    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        assert app.screen.shown_run == runs_root / OVERFIT_RUN
        app.selected_run = runs_root / HEALTHY_RUN
        await settle(app, pilot)
        assert app.screen.shown_run == runs_root / HEALTHY_RUN
        assert not app.screen.query_one(OverfittingBanner).display
        app.screen.query_one(RunsTable).focus()
        await pilot.press("up")
        await settle(app, pilot)
        assert app.screen.shown_run == runs_root / OVERFIT_RUN and app.selected_run == runs_root / OVERFIT_RUN


async def test_log_scale_and_overlay_of_another_run(runs_root, fixed_devices):
    app, running = await open_train_pane(fixed_devices, size=(120, 40))
    async with running as pilot:
        await settle(app, pilot)
        loss_plot = app.screen.query_one("#train-loss-plot", CurvePlot)
        await pilot.press("l")
        assert loss_plot.log_scale and "(log)" in loss_plot.legend_markup()
        await pilot.press("o")
        await settle(app, pilot)
        labels = [c.label for c in loss_plot.curves]
        assert "identity-lr5e-5" in labels
        overlay = next(c for c in loss_plot.curves if c.label == "identity-lr5e-5")
        assert len(overlay.steps) == len(events_of(runs_root / HEALTHY_RUN, "train"))
        await pilot.press("o")
        await settle(app, pilot)
        assert "identity-lr5e-5" not in [c.label for c in loss_plot.curves]


async def test_stop_calls_the_launcher_and_chat_opens_the_run(runs_root, fixed_devices, monkeypatch):
    run_dir = runs_root / OVERFIT_RUN
    mark_running(run_dir, os.getpid())
    stopped: list[Path] = []
    monkeypatch.setattr(workbench.runs.launch, "stop_run", stopped.append)
    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        assert not app.screen.query_one("#train-stop").disabled
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await settle(app, pilot)
        assert stopped == [run_dir]
        await pilot.press("c")
        await settle(app, pilot)
        assert app.current_mode == "chat" and app.selected_run == run_dir


async def test_events_written_while_another_pane_shows_appear_on_return(tmp_path, monkeypatch, fixed_devices):
    run_dir = tmp_path / "runs" / "20261121-140000-background"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    write_status(run_dir, RunStatus(name="background", state="running", pid=os.getpid(), max_steps=10))
    log = EventLog(run_dir)
    log.append("train", step=1, loss=2.0)
    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        await pilot.press("5")
        await settle(app, pilot)
        assert app.current_mode == "chat"
        log.append("train", step=2, loss=1.8)
        await pilot.press("4")
        await settle(app, pilot)
        assert list(curve(app, "#train-loss-plot", "train").steps) == [1, 2]


async def test_resume_is_offered_for_a_dead_run_with_a_checkpoint(runs_root, fixed_devices, monkeypatch):
    run_dir = runs_root / "20261121-150000-killed"
    write_status(run_dir, RunStatus(name="killed", state="running", pid=finished_pid(), step=12, started_at=1895256100.0))
    (run_dir / "config.yaml").write_text("name: killed\n")
    checkpoint = run_dir / "checkpoints" / "checkpoint-10"
    checkpoint.mkdir(parents=True)
    (checkpoint / "COMPLETE").touch()
    resumed: list[Path] = []
    monkeypatch.setattr(workbench.runs.launch, "resume_run", resumed.append)
    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        assert app.screen.shown_run == run_dir and "dead" in stats_text(app)
        assert not app.screen.query_one("#train-resume").disabled
        await pilot.click("#train-resume")
        await settle(app, pilot)
        assert resumed == [run_dir]


async def test_export_dialog_preselects_the_best_checkpoint_of_an_overfit_run(runs_root, fixed_devices):
    from widgets.train_export import ExportDialog

    app, running = await open_train_pane(fixed_devices)
    async with running as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, ExportDialog)
        command = str(app.screen.query_one("#export-command").render())
        assert f"workbench export {runs_root / OVERFIT_RUN} --format hf" in command and "--checkpoint best" in command


def test_memory_rows_show_each_gpu_or_the_process_ram(tmp_path):
    from widgets.train_stats import _memory_rows
    from workbench.runs.monitor import RunView

    view = RunView(tmp_path)
    gpu = {"index": 1, "allocated_bytes": 3 * 2**30, "reserved_bytes": 4 * 2**30, "utilization": 87}
    view.apply([{"event": "train", "step": 1, "loss": 1.0, "memory": {"cpu_rss_bytes": 2**30, "gpus": [gpu]}}])
    rows = [(label, str(value)) for label, value in _memory_rows(view, None)]
    assert rows == [("GPU 1", "3.00 GiB used / 4.00 GiB held · 87% busy")]
    view.apply([{"event": "train", "step": 2, "loss": 1.0, "memory": {"cpu_rss_bytes": 2**30, "gpus": []}}])
    assert [(label, str(value)) for label, value in _memory_rows(view, None)] == [("Memory", "1.00 GiB RAM (process)")]
