"""The Train pane: watch, compare, stop and resume training runs.

The pane only reads run directories (see workbench/runs/rundir.py): a timer tails the shown run's
events.jsonl and status.json, another re-scans the runs folder. A run is a separate process, so
leaving or quitting the pane never touches it, and reopening re-attaches by reading the files again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path
from typing import Optional

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button
from textual.worker import Worker, WorkerState

from screens.base import PaletteEntry, PaneScreen
from screens.eval import EvalScreen
from widgets.train_export import ExportDialog
from widgets.train_plots import Curve, CurvePlot
from widgets.train_runs import RunsTable
from widgets.train_stats import OverfittingBanner, RunStats, SamplesPanel
from workbench.paths import runs_dir
from workbench.runs import launch
from workbench.runs.monitor import RunSummary, RunView, summarize_run, summarize_runs
from workbench.runs.rundir import EVENTS_FILE, EventTail, RunStatus, complete_checkpoints, read_status

TAIL_INTERVAL_S = 0.5
"""How often the shown run's new events are read (a seek and a read of the new bytes: cheap)."""

RESCAN_INTERVAL_S = 2.0
"""How often the runs folder is listed again (one small status.json per run)."""

MAX_AUTO_OVERLAY_RUNS = 2

RAW_LOSS_COLOR = (125, 125, 135)
SMOOTHED_LOSS_COLOR = (80, 160, 255)
EVAL_LOSS_COLOR = (255, 150, 50)
DECK_HITS_COLOR = (240, 220, 90)
LR_COLOR = (120, 200, 140)
GRAD_NORM_COLOR = (200, 120, 220)
OVERLAY_COLORS = ((220, 90, 170), (110, 210, 200), (220, 200, 80), (170, 170, 255))


class TrainScreen(PaneScreen):
    PANE_ID = "train"
    PANE_TITLE = "Train"
    CSS_PATH = "styles/train.tcss"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]
    BINDINGS = [
        Binding("s", "stop_run", "Stop", tooltip="Ask the trainer to save a checkpoint and stop"),
        Binding("r", "resume_run", "Resume", tooltip="Continue a stopped, failed or dead run from its last checkpoint"),
        Binding("c", "open_chat", "Chat", tooltip="Talk to this run's adapter in the Chat pane"),
        Binding("v", "open_eval", "Eval", show=False, tooltip="Evaluate the base, the tuned model and every checkpoint"),
        Binding("e", "export_run", "Export", show=False, tooltip="Export this run: merged model, adapter or GGUF"),
        Binding("l", "toggle_log_scale", "Log", tooltip="Log-scale loss axis"),
        Binding("o", "toggle_overlay", "Overlay", tooltip="Overlay the loss of runs marked with m"),
        Binding("g", "toggle_samples", "Gens", show=False, tooltip="Show the latest generations (small terminals)"),
    ]
    MAIN_FOCUS = "#train-runs"
    PALETTE = (
        PaletteEntry("Stop the run", "stop_run", "the trainer saves a checkpoint first"),
        PaletteEntry("Resume the run", "resume_run", "a stopped, failed or dead run, from its last checkpoint"),
        PaletteEntry("Chat with this run", "open_chat", "its adapter against the base model"),
        PaletteEntry("Evaluate this run", "open_eval", "base, tuned and every checkpoint"),
        PaletteEntry("Export this run…", "export_run", "merged model, adapter or GGUF"),
        PaletteEntry("Log-scale loss axis", "toggle_log_scale"),
        PaletteEntry("Overlay other runs' loss", "toggle_overlay", "mark runs with m in the list"),
        PaletteEntry("Show the generations", "toggle_samples", "the prompt deck's answers (small terminals)"),
    )

    @dataclass
    class RunLoaded(Message):
        """A run's log so far, read by the loader thread, with the tail positioned after it."""

        view: RunView
        tail: EventTail

    @dataclass
    class OverlayLoaded(Message):
        """A compared run's curves, read by a thread; `size` is the events file size they reflect."""

        view: RunView
        size: int

    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[RunSummary] = []
        self.shown_run: Optional[Path] = None
        self.view: Optional[RunView] = None
        self.status: Optional[RunStatus] = None
        self.overlay_enabled = False
        self.compared: frozenset[Path] = frozenset()
        self._tail: Optional[EventTail] = None
        self._overlay_views: dict[Path, tuple[int, RunView]] = {}
        self._overlay_loading: set[Path] = set()
        self._poll_timers: list = []

    def compose_body(self) -> ComposeResult:
        yield OverfittingBanner(id="train-warning")
        with Horizontal(id="train-body"):
            with Vertical(id="train-side"):
                yield RunsTable(id="train-runs")
                yield RunStats(id="train-stats")
                with Horizontal(id="train-actions"):
                    yield Button("Stop", id="train-stop", variant="error", compact=True)
                    yield Button("Resume", id="train-resume", variant="primary", compact=True)
                    yield Button("Chat", id="train-chat", compact=True)
                    yield Button("Export", id="train-export", compact=True)
            with Vertical(id="train-main"):
                yield CurvePlot("Loss", id="train-loss-plot")
                with Horizontal(id="train-small-plots"):
                    yield CurvePlot("LR", id="train-lr-plot")
                    yield CurvePlot("Grad norm", id="train-grad-plot")
                yield SamplesPanel(id="train-samples")

    def on_mount(self) -> None:
        self.query_one("#train-runs").border_title = "Runs"
        self.query_one("#train-stats").border_title = "Run"
        self.rescan_runs()
        initial = self.app.selected_run or self._default_run()
        if initial is not None:
            self.show_run(initial)
        self.watch(self.app, "selected_run", self._follow_selected_run, init=False)
        self._poll_timers = [
            self.set_interval(TAIL_INTERVAL_S, self.poll_shown_run, name="train-tail"),
            self.set_interval(RESCAN_INTERVAL_S, self.rescan_runs, name="train-rescan"),
        ]

    def on_screen_suspend(self) -> None:
        """Another pane is showing: stop reading files for a picture nobody sees."""
        for timer in self._poll_timers:
            timer.pause()

    def on_screen_resume(self) -> None:
        """Back on this pane: catch up with what the runs did meanwhile, then keep tailing."""
        if self._poll_timers:
            self.rescan_runs()
            self.poll_shown_run()
        for timer in self._poll_timers:
            timer.resume()

    def _default_run(self) -> Optional[Path]:
        """A running run if there is one (re-attach after reopening), else the newest."""
        for summary in self.summaries:
            if summary.is_active:
                return summary.run_dir
        return self.summaries[0].run_dir if self.summaries else None

    def _follow_selected_run(self, run_dir: Optional[Path]) -> None:
        if run_dir is not None and Path(run_dir) != self.shown_run:
            self.show_run(Path(run_dir))
            self.rescan_runs()

    # Reading the run directories

    def rescan_runs(self) -> None:
        also = [self.shown_run] if self.shown_run is not None else []
        self.summaries = summarize_runs(runs_dir(), also=also)
        self.query_one(RunsTable).show_runs(self.summaries, self.shown_run)
        if self.shown_run is None and self.summaries:
            self.show_run(self._default_run())
        if self.overlay_enabled:
            self._update_charts()

    def show_run(self, run_dir: Path) -> None:
        """Show a run: read its whole log in a thread (a long run's log is megabytes), then tail it."""
        run_dir = Path(run_dir)
        self.shown_run = run_dir
        self.view = None
        self._tail = None
        self.status = read_status(run_dir)
        self.query_one(RunsTable).select_run(run_dir)
        if self.app.selected_run != run_dir:
            self.app.selected_run = run_dir
        self._update_charts()
        self._refresh_panels()
        self.load_run(run_dir)

    @work(thread=True, exclusive=True, group="train-load", exit_on_error=False)
    def load_run(self, run_dir: Path) -> None:
        tail = EventTail(run_dir)
        view = RunView(run_dir)
        view.apply(tail.read_new())
        self.post_message(self.RunLoaded(view, tail))

    def on_train_screen_run_loaded(self, message: RunLoaded) -> None:
        if message.view.run_dir != self.shown_run:
            return  # the user moved on while it was reading
        self.view, self._tail = message.view, message.tail
        self.poll_shown_run(force=True)

    def poll_shown_run(self, force: bool = False) -> None:
        """Fold the new events in and refresh what changed; the charts throttle their own redraws."""
        if self.view is None or self._tail is None:
            return  # still loading, or nothing to show
        events_changed = self.view.apply(self._tail.read_new())
        status = read_status(self.view.run_dir)
        status_changed = status != self.status
        self.status = status
        if events_changed or force:
            self._update_charts()
        if events_changed or status_changed or force:
            self._refresh_panels()

    # Showing

    def _update_charts(self) -> None:
        view = self.view
        loss_plot = self.query_one("#train-loss-plot", CurvePlot)
        lr_plot = self.query_one("#train-lr-plot", CurvePlot)
        grad_plot = self.query_one("#train-grad-plot", CurvePlot)
        if view is None:
            for plot in (loss_plot, lr_plot, grad_plot):
                plot.show_curves([])
            return
        curves = [
            Curve("train", view.train_loss.steps, view.train_loss.values, RAW_LOSS_COLOR),
            Curve("smoothed", view.train_loss_smoothed.steps, view.train_loss_smoothed.values, SMOOTHED_LOSS_COLOR, show_last=True),
            Curve("eval", view.eval_loss.steps, view.eval_loss.values, EVAL_LOSS_COLOR, markers=True, show_last=True),
        ]
        deck = view.deck_hit_rate
        if deck:  # evaluation.deck_expected: the share of deck answers that say what they should
            curves.append(Curve("deck hits", deck.steps, deck.values, DECK_HITS_COLOR, markers=True, show_last=True))
        if self.overlay_enabled:
            curves.extend(self._overlay_curves())
        loss_plot.show_curves(curves)
        lr_plot.show_curves([Curve("", view.learning_rate.steps, view.learning_rate.values, LR_COLOR, show_last=True)])
        grad_plot.show_curves([Curve("", view.grad_norm.steps, view.grad_norm.values, GRAD_NORM_COLOR, show_last=True)])

    def _overlay_curves(self) -> list[Curve]:
        curves = []
        others = [s for s in self.summaries if s.run_dir in self.compared and s.run_dir != self.shown_run]
        for color, summary in zip(OVERLAY_COLORS, others):
            other = self._overlay_view(summary.run_dir)
            if other is None:
                continue  # being read; the charts update when it arrives
            smoothed = other.train_loss_smoothed
            curves.append(Curve(summary.name, smoothed.steps, smoothed.values, color))
            curves.append(Curve("", other.eval_loss.steps, other.eval_loss.values, color, markers=True))
        return curves

    def _overlay_view(self, run_dir: Path) -> Optional[RunView]:
        """A compared run's curves; (re-)read in a thread when its events file changed size."""
        size = _events_size(run_dir)
        cached = self._overlay_views.get(run_dir)
        if (cached is None or cached[0] != size) and run_dir not in self._overlay_loading:
            self._overlay_loading.add(run_dir)
            self.load_overlay_run(run_dir, size)
        return cached[1] if cached is not None else None

    @work(thread=True, group="train-overlay", exit_on_error=False)
    def load_overlay_run(self, run_dir: Path, size: int) -> None:
        self.post_message(self.OverlayLoaded(RunView.load(run_dir), size))

    def on_train_screen_overlay_loaded(self, message: OverlayLoaded) -> None:
        self._overlay_loading.discard(message.view.run_dir)
        self._overlay_views[message.view.run_dir] = (message.size, message.view)
        if self.overlay_enabled:
            self._update_charts()

    def _refresh_panels(self) -> None:
        view, status = self.view, self.status
        self.query_one(RunStats).show(view, status, loading=view is None and self.shown_run is not None)
        warning = view.overfitting() if view is not None else None
        checkpoint = (view.best_checkpoint if view else None) or (status.best_checkpoint if status else None)
        self.query_one(OverfittingBanner).show(warning.message(checkpoint) if warning else None)
        self.query_one(SamplesPanel).show(view)
        self._update_buttons()

    def _update_buttons(self) -> None:
        summary = self._shown_summary()
        stop, resume = self.query_one("#train-stop", Button), self.query_one("#train-resume", Button)
        chat, export = self.query_one("#train-chat", Button), self.query_one("#train-export", Button)
        stop.disabled = not (summary is not None and summary.is_active)
        stop.tooltip = "Save a checkpoint and stop the trainer (s)"
        resume.disabled = not (summary is not None and summary.can_resume)
        resume.tooltip = "Continue from the last complete checkpoint (r)"
        has_weights = self.shown_run is not None and _has_weights(self.shown_run)
        chat.disabled = export.disabled = not has_weights
        chat.tooltip = "Talk to this run's adapter (c)" if has_weights else "No adapter or checkpoint saved yet"
        export.tooltip = "Export this run (e)" if has_weights else "No adapter or checkpoint saved yet"

    def _shown_summary(self) -> Optional[RunSummary]:
        if self.shown_run is None:
            return None
        if self.status is not None:
            return summarize_run(self.shown_run, self.status)
        return next((s for s in self.summaries if s.run_dir == self.shown_run), None)

    # Messages from the widgets

    def on_runs_table_run_highlighted(self, message: RunsTable.RunHighlighted) -> None:
        if message.run_dir != self.shown_run:
            self.show_run(message.run_dir)

    def on_runs_table_compare_toggled(self, message: RunsTable.CompareToggled) -> None:
        self.compared = message.compared
        if self.compared and not self.overlay_enabled:
            self.overlay_enabled = True
        self._update_charts()

    @on(Button.Pressed, "#train-stop")
    def _stop_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_stop_run()

    @on(Button.Pressed, "#train-resume")
    def _resume_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_resume_run()

    @on(Button.Pressed, "#train-chat")
    def _chat_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_open_chat()

    @on(Button.Pressed, "#train-export")
    def _export_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_export_run()

    # Actions

    def action_stop_run(self) -> None:
        summary = self._shown_summary()
        if summary is None or not summary.is_active:
            self.notify("This run is not running.", severity="warning")
            return
        self.stop_in_background(summary.run_dir)

    def action_resume_run(self) -> None:
        summary = self._shown_summary()
        if summary is None:
            return
        if not summary.can_resume:
            why = (
                "it is still running"
                if summary.is_active
                else "it finished"
                if summary.state == "completed"
                else "it has no complete checkpoint"
            )
            self.notify(f"Cannot resume {summary.name}: {why}.", severity="warning")
            return
        self.resume_in_background(summary.run_dir)

    def action_open_chat(self) -> None:
        if self.shown_run is None or not _has_weights(self.shown_run):
            self.notify("This run has no adapter or checkpoint to chat with yet.", severity="warning")
            return
        self.app.open_run(self.shown_run, "chat")

    def action_open_eval(self) -> None:
        if self.shown_run is None or not _has_weights(self.shown_run):
            self.notify("This run has no adapter or checkpoint to evaluate yet.", severity="warning")
            return

        self.app.push_screen(EvalScreen(self.shown_run))

    def action_export_run(self) -> None:
        if self.shown_run is None or not _has_weights(self.shown_run):
            self.notify("This run has no adapter or checkpoint to export yet.", severity="warning")
            return

        overfit = self.view is not None and self.view.overfitting() is not None
        # the last weights of an overfit run are the memorised ones
        self.app.push_screen(ExportDialog(self.shown_run, checkpoint="best" if overfit else None))

    def action_toggle_log_scale(self) -> None:
        plot = self.query_one("#train-loss-plot", CurvePlot)
        plot.log_scale = not plot.log_scale

    def action_toggle_overlay(self) -> None:
        self.overlay_enabled = not self.overlay_enabled
        if self.overlay_enabled and not (self.compared - {self.shown_run}):
            finished = [s.run_dir for s in self.summaries if s.run_dir != self.shown_run and s.step > 0]
            if not finished:
                self.overlay_enabled = False
                self.notify("No other runs to compare with yet.", severity="warning")
                return
            table = self.query_one(RunsTable)
            table.compared |= set(finished[:MAX_AUTO_OVERLAY_RUNS])
            self.compared = frozenset(table.compared)
            table.show_runs(self.summaries, self.shown_run)
            self.notify("Overlaying the latest other runs; mark runs with m in the list to choose.", timeout=5)
        self._update_charts()

    def action_toggle_samples(self) -> None:
        self.toggle_class("-show-samples")

    @work(thread=True, exclusive=True, group="train-launcher", exit_on_error=False)
    def stop_in_background(self, run_dir: Path) -> str:
        """Stop the run's trainer in a thread (it signals a process); returns what to tell the user."""
        if launch.stop_run(run_dir) is False:
            return "No live trainer was found for this run; it has already ended."
        return "Asked the trainer to stop; it saves a checkpoint first."

    @work(thread=True, exclusive=True, group="train-launcher", exit_on_error=False)
    def resume_in_background(self, run_dir: Path) -> str:
        """Resume the run in a thread (it spawns the trainer child); returns what to tell the user."""
        launch.resume_run(run_dir)
        return "Resuming from the last complete checkpoint."

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group = event.worker.group
        if event.state == WorkerState.SUCCESS and group == "train-launcher":
            self.notify(event.worker.result)
            self.rescan_runs()
        elif event.state == WorkerState.ERROR and group in ("train-launcher", "train-load", "train-overlay"):
            if group == "train-overlay":
                self._overlay_loading.clear()  # retried at the next chart update
            error = event.worker.error
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            title = "Could not do that" if group == "train-launcher" else "Could not read the run"
            self.notify(detail, title=title, severity="error", timeout=10)


def _events_size(run_dir: Path) -> int:
    try:
        return (run_dir / EVENTS_FILE).stat().st_size
    except OSError:
        return -1


def _has_weights(run_dir: Path) -> bool:
    return (run_dir / "adapter").is_dir() or bool(complete_checkpoints(run_dir))
