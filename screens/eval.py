"""The Eval view of a run, opened from the Train pane (v): evaluate the base, the tuned model and every
checkpoint on the run's held-out rows and the forgetting check, in a thread worker with progress;
chart the headline metric across checkpoints next to the eval loss; open a differing row in Chat.

The evaluation is `workbench eval RUN --checkpoints all` (the same plan, engine and results file),
run on the app's loaded base model through the Chat pane's engine, so no second copy of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import threading
from pathlib import Path
from typing import Any, Optional

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from workbench.evaluation import knowledge
from screens.chat import ChatScreen
from widgets.eval_view import EvalRows, EvalView
from workbench.errors import WorkbenchError
from workbench.evaluation.metrics import parse_metrics
from workbench.evaluation.plan import build_plan, default_out_dir, resolve_target
from workbench.evaluation.report import read_results, write_results
from workbench.evaluation.runner import EvalCancelled, EvalProgress, run_evaluation
from workbench.inference.engine import engine_for
from workbench.inference.sources import BASE_SOURCE, run_source
from workbench.known_errors import first_line
from workbench.models import resolve_model
from workbench.paths import runs_dir
from workbench.runs.monitor import RunView

CHAT_WAIT_S = 0.25


class EvalScreen(Screen):
    """One run's evaluation: the last results (from <run>/eval/results.json) and a way to run a new one."""

    BINDINGS = [
        Binding("r", "run_eval", "Evaluate", tooltip="Evaluate base, tuned and every checkpoint (workbench eval --checkpoints all)"),
        Binding("s", "stop_eval", "Stop"),
        Binding("escape", "close", "Back"),
    ]

    @dataclass
    class Progress(Message):
        fraction: float
        text: str

    @dataclass
    class Finished(Message):
        results: dict[str, Any]

    @dataclass
    class CurveLoaded(Message):
        steps: list[float]
        values: list[float]

    def __init__(self, run_dir: Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.results: Optional[dict[str, Any]] = None
        self.eval_curve: tuple[list[float], list[float]] = ([], [])
        self._stop = threading.Event()

    def compose(self) -> ComposeResult:
        yield Static(f"[b]Eval[/b] · {self.run_dir.name}", id="eval-title")
        yield EvalView(id="eval-view")
        yield Footer()

    def on_mount(self) -> None:
        try:
            self.results = read_results(self.run_dir)
        except Exception as error:  # a broken results file: say so, keep the view usable
            self.notify(str(error), severity="warning")
        self._show()
        self.load_eval_curve()

    def _show(self) -> None:
        self.query_one(EvalView).show_results(self.results, *self.eval_curve)

    @work(thread=True, exclusive=True, group="eval-curve", exit_on_error=False)
    def load_eval_curve(self) -> None:
        view = RunView.load(self.run_dir)
        self.post_message(self.CurveLoaded(list(view.eval_loss.steps), list(view.eval_loss.values)))

    def on_eval_screen_curve_loaded(self, message: CurveLoaded) -> None:
        self.eval_curve = (message.steps, message.values)
        self._show()

    # -- running -----------------------------------------------------------------------------

    def action_run_eval(self) -> None:
        if any(w.group == "eval-run" and w.is_running for w in self.workers):
            self.notify("An evaluation is already running.", severity="warning")
            return
        if self.app.base_model is None or self.app.model_status.state != "ready":
            self.notify("The base model is not loaded yet.", severity="warning")
            return
        self._stop.clear()
        self.query_one(EvalView).show_progress(0.0, "Preparing the evaluation…")
        self.run_evaluation()

    def action_stop_eval(self) -> None:
        self._stop.set()

    @work(thread=True, exclusive=True, group="eval-run", exit_on_error=False)
    def run_evaluation(self) -> None:
        app = self.app
        target = resolve_target(str(self.run_dir), runs_dir())
        resolved = app.resolved_model
        if resolved is None or resolve_model(target.base_model).path.resolve() != Path(resolved.path).resolve():
            raise WorkbenchError(
                f"this run was trained on {target.base_model}; the workbench has {resolved.display_name if resolved else 'no model'} "
                "loaded (run workbench eval from the command line)"
            )
        engine = engine_for(app.base_model, app.tokenizer, model_path=resolved.path, model_name=resolved.display_name)
        plan = build_plan(target, engine.tokenizer, checkpoints="all", metrics=parse_metrics("all"), knowledge_file=knowledge.KNOWLEDGE_FILE)

        def on_event(event) -> None:
            if isinstance(event, EvalProgress):
                self.post_message(self.Progress(event.fraction, f"{event.stage}: {event.done}/{event.total} · {len(plan.models)} models"))

        results = run_evaluation(engine, plan, on_event, cancelled=self._stop.is_set)
        write_results(results, default_out_dir(target, runs_dir()))
        self.post_message(self.Finished(results))

    def on_eval_screen_progress(self, message: Progress) -> None:
        self.query_one(EvalView).show_progress(message.fraction, message.text)

    def on_eval_screen_finished(self, message: Finished) -> None:
        self.results = message.results
        self.query_one(EvalView).show_progress(1.0, f"Done in {message.results['seconds']['total']:.0f} s")
        self._show()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "eval-run" or event.state != WorkerState.ERROR:
            return

        error = event.worker.error
        text = "Stopped." if isinstance(error, EvalCancelled) else first_line(error)
        self.query_one(EvalView).show_progress(0.0, text)
        if not isinstance(error, EvalCancelled):
            self.notify(text, title="Evaluation failed", severity="error", timeout=10)

    # -- leaving ---------------------------------------------------------------------------------

    def action_close(self) -> None:
        self._stop.set()
        self.app.pop_screen()

    @on(EvalRows.Chosen)
    def ask_in_chat(self, message: EvalRows.Chosen) -> None:
        """Ask the row's prompt to the base and the tuned model side by side in the Chat pane."""
        self._stop.set()
        prompt = message.prompt
        app = self.app
        app.pop_screen()
        app.open_run(self.run_dir, "chat")
        tries = {"left": 40}

        def deliver() -> None:
            chat = app.screen
            if not isinstance(chat, ChatScreen) or not chat.is_mounted:
                tries["left"] -= 1
                if tries["left"] > 0:
                    app.set_timer(CHAT_WAIT_S, deliver)
                return
            send_to_chat(chat, self.run_dir, prompt)

        app.set_timer(CHAT_WAIT_S, deliver)


def send_to_chat(chat, run_dir: Path, prompt: str) -> None:
    """Base vs the run's tuned model, the prompt in the box; sent at once when the model is ready."""
    from textual.widgets import Input

    tuned = run_source(run_dir)
    if chat.sources != [BASE_SOURCE, tuned]:
        chat.set_sources(BASE_SOURCE, tuned)
    box = chat.query_one("#chat-input", Input)
    box.value = prompt
    if chat.model_ready and not chat.generating:
        box.post_message(Input.Submitted(box, prompt))
    else:
        chat.notify("The prompt is in the box: press Enter once the model is ready.", timeout=6)
