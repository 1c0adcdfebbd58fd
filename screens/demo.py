"""`workbench demo`: the workbench with a guided tour through its five panes.

DemoApp is the ordinary WorkbenchApp plus a guide panel and three keys (n next, b back, q quit
tour). Each step switches to its pane and sets it up through the pane's own public methods (the
Data pane opens and cleans the messy sample file, the Train pane follows the demo run, the Chat pane
asks base and fine-tuned the same question), so what the audience sees is the real workbench.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

from textual import events, work
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from screens.app import WorkbenchApp
from screens.chat import ChatScreen
from screens.data import DataScreen
from screens.eval import EvalScreen
from widgets.data_detail import RowDetail
from widgets.data_table import RowTable
from widgets.demo_guide import GuidePanel
from workbench.config import ConfigStore
from workbench.data.token_lengths import load_data_tokenizer
from workbench.demo.cleaning import CLEANING_STEPS, clean_for_demo, cleaned_file_name
from workbench.demo.config import demo_config
from workbench.demo.heldout import HELDOUT_MAX_NEW_TOKENS, read_heldout, score_heldout
from workbench.demo.pipeline import DemoOptions, demo_work_dir
from workbench.demo.tour import TOUR
from workbench.evaluation.knowledge import read_choice_items
from workbench.evaluation.report import eval_dir, headline, read_results
from workbench.evaluation.runner import EvalProgress
from workbench.inference.deck import read_prompt_file
from workbench.inference.engine import engine_for
from workbench.inference.prompting import read_run_config
from workbench.inference.sources import BASE_SOURCE, run_source
from workbench.known_errors import first_line
from workbench.paths import RUNS_DIR_ENV
from workbench.runs.launch import start_run
from workbench.runs.rundir import read_status

POLL_INTERVAL_S = 0.25
CLEANING_STEP_PAUSE_S = 0.8
"""Time between two cleaning steps, so the room sees each one land."""
COMPARE_PROMPT_INDEX = 0
VOTE_PROMPT_INDEX = 2
"""Which deck prompts the before/after and the blind-vote steps ask (wrapping round a short deck)."""
TOUR_ACTIONS = ("tour_key", "tour_next", "tour_back", "tour_quit")
SCORES_HINT = "v: the questions whose answers changed"
TEXT_ENTRY = (Input, TextArea)
KEY_CONTENT = {"memory": "#mem-title"}
"""Steps whose pane scrolls to what the guide talks about: the Memory estimate, its bar and the verdict."""
ZOOM_BELOW_ROWS = 34
"""On terminals shorter than this the tokens step zooms the row over the table: at 80×24 the guide
leaves the row's view two lines, too few for the green (trained) tokens."""
AUTO_FOCUS_WINDOW_S = 1.5
"""A text box focused this soon after the tour changed pane was focused by the pane (not by a
person); the tour takes the focus back so n, b and q keep turning pages."""


class DemoApp(WorkbenchApp):
    """The workbench with the guided tour on top."""

    CSS_PATH = ["styles/app.tcss", "styles/demo.tcss"]
    BINDINGS = [
        Binding("n", "tour_key('next')", "Next step", show=False, priority=True),
        Binding("b", "tour_key('back')", "Back", show=False, priority=True),
        Binding("q", "tour_key('quit')", "Quit tour", show=False, priority=True),
        Binding("v", "tour_key('scores')", "Scores", show=False, priority=True),
        # What presentation clickers send; they also work while a text box has the focus.
        Binding("pagedown", "tour_next", "Next step", show=False, priority=True),
        Binding("pageup", "tour_back", "Back", show=False, priority=True),
    ]

    @dataclass
    class ScoresReady(Message):
        """The recap's figures from the eval engine (identity hits, general knowledge)."""

        lines: list[str]

    @dataclass
    class TrainingStarted(Message):
        run_dir: Path

    def __init__(self, options: DemoOptions, config_store: ConfigStore, *, device_report=None, load_model: bool = True) -> None:
        super().__init__(config_store=config_store, initial_pane=TOUR[0].pane, load_model=load_model, device_report=device_report)
        self.options = options
        self.tour_active = True
        self.tour_index = 0
        self.demo_run: Optional[Path] = None
        """The run the tour started (None until the training step)."""
        self.cleaned_file: Optional[Path] = None
        self._guide: Optional[GuidePanel] = None
        self._step_timer = None
        self._training_requested = False
        self._tour_moved_at = 0.0
        self._zoomed = None
        """The Data pane when the tour zoomed its row (short terminals), to unzoom on the next step."""

    # -- moving through the tour -----------------------------------------------------------------

    def on_mount(self) -> None:
        super().on_mount()
        self.call_after_refresh(self.show_step, 0)

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        if action in TOUR_ACTIONS:
            if not self.tour_active or isinstance(self.screen, (ModalScreen, EvalScreen)):
                return False  # a dialog or the Eval view has the keys (escape goes back to the tour)
            # n, b and q typed into a text box (a chat message, a path) are letters, not page turns.
            if action == "tour_key" and isinstance(self.focused, TEXT_ENTRY):
                return False
        return super().check_action(action, parameters)

    async def action_tour_key(self, which: str) -> None:
        if which == "next":
            await self.action_tour_next()
        elif which == "back":
            await self.action_tour_back()
        elif which == "scores":
            self.open_scores()
        else:
            self.action_tour_quit()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if (
            self.tour_active
            and isinstance(event.widget, TEXT_ENTRY)
            and time.monotonic() - self._tour_moved_at < AUTO_FOCUS_WINDOW_S
        ):
            self.call_after_refresh(self._leave_text_entry)

    async def action_tour_next(self) -> None:
        if self.tour_index + 1 < len(TOUR):
            await self.show_step(self.tour_index + 1)
        else:
            self.action_tour_quit()

    async def action_tour_back(self) -> None:
        if self.tour_index > 0:
            await self.show_step(self.tour_index - 1)

    def action_tour_quit(self) -> None:
        self._stop_step_timer()
        self.tour_active = False
        if self._guide is not None:
            self._guide.remove()
            self._guide = None
        self.notify("The tour is over: the workbench is yours. Ctrl+Q quits.", title="Demo", timeout=6)

    async def show_step(self, index: int) -> None:
        """Go to step `index`: its pane, the guide panel there, then the step's set-up."""
        self._stop_step_timer()
        if self._zoomed is not None:  # the tour zoomed the Data pane's row for its tokens step
            self._zoomed.remove_class("-zoom-detail")
            self._zoomed = None
        self.tour_index = index
        step = TOUR[index]
        await self._go_to_pane(self._pane_for(step))
        if step.key in KEY_CONTENT:
            self.call_after_refresh(self._bring_into_view, KEY_CONTENT[step.key])
        if step.action:
            getattr(self, f"step_{step.action}")()

    def _bring_into_view(self, selector: str) -> None:
        """Scroll the step's key content to the top of its pane (the guide takes half an 80×24 screen)."""
        found = list(self.screen.query(selector))
        if found:
            found[0].scroll_visible(top=True, animate=False)

    def _pane_for(self, step) -> str:
        if step.action in ("compare_answers", "blind_vote") and not self._adapter_ready():
            return "train"  # the answers need the finished adapter: wait where the run is visible
        return step.pane

    async def _go_to_pane(self, pane: str) -> None:
        self._tour_moved_at = time.monotonic()
        if self.current_mode != pane:
            await self.switch_mode(pane)
            self._tour_moved_at = time.monotonic()
        self._place_guide()
        self._leave_text_entry()
        # A pane focuses its first control when it shows (often a text box, which would swallow n/b/q).
        self.call_after_refresh(self._leave_text_entry)

    def _leave_text_entry(self) -> None:
        if isinstance(self.focused, TEXT_ENTRY):
            self.set_focus(None)

    def _place_guide(self) -> None:
        """One guide panel, on the screen now showing (moved there from the previous pane)."""
        step = TOUR[self.tour_index]
        if self._guide_is_showing():
            self._guide.show(step, self.tour_index, len(TOUR))
            return
        if self._guide is not None:
            self._guide.remove()
        self._guide = GuidePanel(step, self.tour_index, len(TOUR))
        self.screen.mount(self._guide)

    def on_resize(self, event: events.Resize) -> None:
        if self._guide is not None:
            self._guide.fit_to(event.size.height)

    def _guide_is_showing(self) -> bool:
        return self._guide is not None and self._guide.parent is self.screen

    def notify(self, message: str, *, title: str = "", severity="information", timeout=None, markup: bool = True) -> None:
        """While the guide is up, routine toasts would pile up over its text on a projector: the
        guide's status line tells what happened instead. Warnings and errors still show."""
        if severity == "information" and self.tour_active and self._guide_is_showing():
            return
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def set_guide_status(self, text: str) -> None:
        if self._guide is not None:
            self._guide.set_status(text)

    def _stop_step_timer(self) -> None:
        if self._step_timer is not None:
            self._step_timer.stop()
            self._step_timer = None
        self.set_guide_status("")

    def _every_tick(self, tick: Callable[[], bool]) -> None:
        """Call `tick` every POLL_INTERVAL_S until it returns True or the step changes (one timer at a time)."""
        if self._step_timer is not None:
            self._step_timer.stop()
        step_index = self.tour_index
        timer = None

        def run() -> None:
            if self.tour_index != step_index or not self.tour_active or tick():
                timer.stop()
                if self._step_timer is timer:
                    self._step_timer = None

        timer = self._step_timer = self.set_interval(POLL_INTERVAL_S, run)

    # -- the steps' set-up (named by TourStep.action) ------------------------------------------

    def _data_screen_with_messy_file(self):
        """The Data pane showing, with the messy file opened there (None if another pane shows)."""
        data = self.screen
        if not isinstance(data, DataScreen):
            return None
        if not self._has_messy_file(data):
            data.open_path(str(self.options.data_file))
        return data

    def _has_messy_file(self, data) -> bool:
        loaded = data.loaded
        return loaded is not None and loaded.path.resolve() == Path(self.options.data_file).resolve()

    def _data_ready(self, data) -> bool:
        """The messy file is open, the tokenizer is there and the checks have run."""
        return (
            self._has_messy_file(data)
            and data.tokenizer is not None
            and data.session is not None
            and data.report is not None
        )

    def step_open_messy_data(self) -> None:
        data = self._data_screen_with_messy_file()
        if data is None:
            return
        self.set_guide_status("Opening the file and running the checks…")

        def tick() -> bool:
            if not self._data_ready(data):
                return False
            data.show_tab("tab-quality")
            flagged = len(data.report.flags_by_row())
            self.set_guide_status(f"{data.loaded.rows:,} rows, {flagged:,} of them flagged.")
            return True

        self._every_tick(tick)

    def step_clean_data(self) -> None:
        data = self._data_screen_with_messy_file()
        if data is None:
            return
        target = demo_work_dir(self.options) / cleaned_file_name(Path(self.options.data_file))
        state = {"pending": None, "last_apply": 0.0, "exporting": False, "tab": False}

        def tick() -> bool:
            if not self._data_ready(data):
                self.set_guide_status("Waiting for the checks…")
                return False
            if not state["tab"]:
                data.show_tab("tab-clean")
                state["tab"] = True
            session = data.session
            done = [plan.operation for plan in session.applied]
            if state["pending"] is not None and state["pending"] not in done:
                return False  # the step is still running in the pane's worker
            state["pending"] = None
            # The steps applied so far (under the step list): in view, however short the terminal.
            data.query_one("#clean-applied").scroll_visible(animate=False)
            remaining = [operation for _, operation in CLEANING_STEPS if operation not in done]
            if remaining:
                if time.monotonic() - state["last_apply"] < CLEANING_STEP_PAUSE_S:
                    return False
                state["pending"], state["last_apply"] = remaining[0], time.monotonic()
                self.set_guide_status(f"{remaining[0].describe()}…")
                data.apply_operation(remaining[0])
                return False
            if not state["exporting"]:
                state["exporting"] = True
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    target.unlink()
                data.export_rows(str(target), "messages")
                return False
            if not target.is_file():
                return False
            self.cleaned_file = target
            self.config_store.update("data.train_file", str(target))
            self.set_guide_status(f"{len(session.conversations):,} clean rows saved: {target.name}")
            return True

        self._every_tick(tick)

    def step_show_model_view(self) -> None:
        data = self._data_screen_with_messy_file()
        if data is None:
            return

        def tick() -> bool:
            if not self._data_ready(data):
                return False
            data.show_tab("tab-rows")
            table = data.query_one(RowTable)
            position = _first_identity_row(table)
            if position is not None:
                table.cursor = position
            if self.size.height < ZOOM_BELOW_ROWS and not data.has_class("-zoom-detail"):
                # The row's tokens over the table, so the green ones show (zoomed first: the view
                # scrolls to the answer in the layout it will be seen in).
                data.action_toggle_zoom()
                self._zoomed = data
            if data.query_one(RowDetail).mode != "model":
                data.action_toggle_model_view()
            return True

        self._every_tick(tick)

    def step_show_recipe(self) -> None:
        if self.demo_run is not None:
            self.set_guide_status(f"Training already started: {self.demo_run.name}. Press n to watch it.")
            return
        # Show exactly the recipe that will train (panes visited before may have edited the shared config).
        self.config_store.replace(self.demo_recipe())

    def demo_recipe(self):
        options = self.options
        train_file = self.cleaned_file or options.data_file
        return demo_config(train_file, model=options.model, epochs=options.epochs, max_steps=options.max_steps)

    def step_start_training(self) -> None:
        if self.demo_run is not None:
            self.open_run(self.demo_run, "train")
            self._place_guide()
            self._follow_training()
            return
        if not self._training_requested:
            self._training_requested = True
            self.set_guide_status("Starting the trainer…")
            self.start_demo_training()

    def step_follow_training(self) -> None:
        self._follow_training()

    def step_compare_answers(self) -> None:
        self._ask_when_trained(COMPARE_PROMPT_INDEX, blind=False)

    def step_blind_vote(self) -> None:
        self._ask_when_trained(VOTE_PROMPT_INDEX, blind=True)

    # -- training ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="demo-training", exit_on_error=False)
    def start_demo_training(self) -> None:
        """Clean the data first if the tour skipped that step, then launch the trainer process."""
        config = self.config_store.config
        if self.cleaned_file is None or Path(config.data.train_file or "") != self.cleaned_file:
            cleaned = self._clean_headless()
            self.call_from_thread(self.config_store.update, "data.train_file", str(cleaned))
            config = self.config_store.config
        run_dir = start_run(config, self.options.runs_dir)
        self.post_message(self.TrainingStarted(Path(run_dir)))

    def _clean_headless(self) -> Path:
        config = self.config_store.config
        model = config.model.name_or_path
        name, tokenizer = load_data_tokenizer(None if model == "default" else model)
        cleaning = clean_for_demo(
            self.options.data_file, demo_work_dir(self.options), tokenizer,
            max_seq_length=config.data.max_seq_length, system_prompt=config.data.system_prompt, model_name=name,
        )
        self.cleaned_file = cleaning.export.train_path
        return self.cleaned_file

    def on_demo_app_training_started(self, message: TrainingStarted) -> None:
        self.demo_run = message.run_dir
        self.open_run(message.run_dir, "train")
        if TOUR[self.tour_index].pane == "train":
            self._place_guide()
            self._follow_training()

    # -- scores (the recap) ----------------------------------------------------------------------

    def step_show_scores(self) -> None:
        """Held-out identity hits and the forgetting check, from the eval engine (once per run)."""
        if self.demo_run is None or not self._adapter_ready() or self.options.heldout_file is None:
            return  # as headless: no held-out questions, no scores
        results = read_results(self.demo_run)
        if results is not None:
            self.set_guide_status(" · ".join(headline(results)) + f" · {SCORES_HINT}")
            return
        self.set_guide_status("Scoring held-out questions and the general-knowledge check (workbench eval)…")
        self.score_demo_run()

    @work(thread=True, exclusive=True, group="demo-scores", exit_on_error=False)
    def score_demo_run(self) -> None:
        from textual.worker import get_current_worker

        worker = get_current_worker()
        run, options, resolved = self.demo_run, self.options, self.resolved_model
        engine = engine_for(self.base_model, self.tokenizer, model_path=resolved.path if resolved else None,
                            model_name=resolved.display_name if resolved else "base model")
        config = read_run_config(run)

        def progress(event) -> None:
            if isinstance(event, EvalProgress):
                self.call_from_thread(self.set_guide_status, f"Scoring with workbench eval… {event.fraction:.0%}")

        score = score_heldout(
            engine, run_source(run), read_heldout(options.heldout_file) if options.heldout_file else [],
            config.data.system_prompt if config else None, min(HELDOUT_MAX_NEW_TOKENS, options.max_new_tokens),
            knowledge=read_choice_items(options.knowledge_file) if options.knowledge_file else [],
            knowledge_file=options.knowledge_file, out_dir=eval_dir(run), on_event=progress,
            cancelled=lambda: worker.is_cancelled,
        )
        self.post_message(self.ScoresReady(score.headline()))

    def on_demo_app_scores_ready(self, message: ScoresReady) -> None:
        if TOUR[self.tour_index].action == "show_scores":
            self.set_guide_status(" · ".join(message.lines) + f" · {SCORES_HINT}")

    def open_scores(self) -> None:
        """The Eval view of the demo run: the rows whose answers changed, each one to ask in Chat."""
        if self.demo_run is None or read_results(self.demo_run) is None:
            self.set_guide_status("No scores yet: they come at the last step, once the model is trained.")
            return
        self.push_screen(EvalScreen(self.demo_run))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        super().on_worker_state_changed(event)
        if event.worker.group == "demo-scores" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self.set_guide_status(f"Scoring stopped: {first_line(error)}")
        if event.worker.group == "demo-training" and event.state == WorkerState.ERROR:
            self._training_requested = False
            error = event.worker.error
            text = first_line(error)
            self.set_guide_status(f"Training could not start: {text}")
            self.notify(text, title="Training not started", severity="error", timeout=10)

    def training_status(self):
        return read_status(self.demo_run) if self.demo_run is not None else None

    def _training_line(self) -> tuple[str, bool]:
        """(what the run is doing, whether it has ended)."""
        status = self.training_status()
        if status is None:
            return ("Starting the trainer…" if self._training_requested else "Training has not started yet."), False
        if status.state in ("starting", "running"):
            steps = f"step {status.step} of {status.max_steps}" if status.max_steps else "loading the model"
            elapsed = time.time() - status.started_at
            return f"Training: {steps} · {int(elapsed // 60)}m {int(elapsed % 60):02d}s so far", False
        if status.state == "completed":
            return "Training finished. Press n to compare the models.", True
        if status.state == "stopped":
            return "Training was stopped; the last checkpoint is used.", True
        return f"Training {status.state}: {status.reason or 'see trainer.log in the run directory'}", True

    def _follow_training(self) -> None:
        def tick() -> bool:
            line, ended = self._training_line()
            self.set_guide_status(line)
            return ended

        tick()
        self._every_tick(tick)

    # -- chat ------------------------------------------------------------------------------------

    def _adapter_ready(self) -> bool:
        status = self.training_status()
        return status is not None and status.state in ("completed", "stopped") and (self.demo_run / "adapter").is_dir()


    def _ask_when_trained(self, prompt_index: int, *, blind: bool) -> None:
        """Wait on the Train pane until the adapter exists, then ask both models a deck prompt in Chat."""
        if self.demo_run is None and not self._training_requested:
            self.set_guide_status("Training has not started: go back (b) to the recipe and press n.")
            return
        moving = {"worker": None}

        def move_to(pane: str) -> None:
            """One pane change at a time: a second switch_mode while one is under way builds a second screen."""
            worker = moving["worker"]
            if self.current_mode != pane and (worker is None or worker.is_finished):
                moving["worker"] = self.run_worker(self._go_to_pane(pane), group="demo-pane")

        def tick() -> bool:
            if not self._adapter_ready():
                line, ended = self._training_line()
                if ended:
                    self.set_guide_status(line)
                    return True
                move_to("train")
                self.set_guide_status(f"{line} · the answers come when it finishes")
                return False
            if self.current_mode != "chat" or not (moving["worker"] is None or moving["worker"].is_finished):
                move_to("chat")
                return False
            return self._ask_in_chat(prompt_index, blind)

        self._every_tick(tick)

    def _use_demo_answer_length(self, chat) -> None:
        """Short answers keep the room waiting seconds, not a minute (a CPU writes ~10 tokens a second)."""
        length = self.options.max_new_tokens
        if chat.settings.left.max_new_tokens != length or chat.settings.right.max_new_tokens != length:
            chat.settings = _with_answer_length(chat.settings, length)

    def _ask_in_chat(self, prompt_index: int, blind: bool) -> bool:
        """True once the question is sent (the Chat pane streams both answers)."""
        chat = self.screen
        if not isinstance(chat, ChatScreen):
            return False
        if not self._guide_is_showing():
            self._place_guide()
        if not chat.model_ready:
            self.set_guide_status("Waiting for the base model to load…")
            return False
        if chat.generating:
            return False
        tuned = run_source(self.demo_run)
        if chat.sources != [BASE_SOURCE, tuned]:
            chat.set_sources(BASE_SOURCE, tuned)
        self._use_demo_answer_length(chat)
        if blind and not chat.blind:
            chat.action_toggle_blind()
        if not blind and chat.blind:
            chat.action_toggle_blind()
        prompts = read_prompt_file(self.options.prompts_file)
        prompt = prompts[prompt_index % len(prompts)]
        # Typed and sent as a person would, so blind rounds start exactly as they do by hand.
        box = chat.query_one("#chat-input", Input)
        box.value = prompt
        box.post_message(Input.Submitted(box, prompt))
        self._tour_moved_at = time.monotonic()
        self.set_guide_status("Vote with the buttons or F6 to F9 once both answers are in." if blind else f"Asked: {prompt}")
        self.set_focus(None)
        return True


def _with_answer_length(settings, max_new_tokens: int):
    return replace(
        settings,
        left=settings.left.with_changes(max_new_tokens=max_new_tokens),
        right=settings.right.with_changes(max_new_tokens=max_new_tokens),
    )


def _first_identity_row(table) -> Optional[int]:
    """Position in the table's view of a short question about the model whose answer names the new identity."""
    for position, row in enumerate(table.view):
        conversation = table.rows[row]
        answer, prompt = conversation.final_response or "", conversation.first_prompt
        if "Sage" in answer and len(answer) < 160 and "Sage" not in prompt and "Northwind" not in prompt:
            return position
    return None


def make_demo_app(options: DemoOptions, *, device_report=None, load_model: bool = True) -> DemoApp:
    """The demo app: the shared config starts as the demo recipe on the messy sample file."""
    if options.runs_dir is not None:
        # The Train and Chat panes list runs from $WORKBENCH_RUNS_DIR; the demo's run must be among them.
        os.environ[RUNS_DIR_ENV] = str(options.runs_dir)
    config = demo_config(options.data_file, model=options.model, epochs=options.epochs, max_steps=options.max_steps)
    return DemoApp(options, ConfigStore(config), device_report=device_report, load_model=load_model)


__all__ = ["DemoApp", "make_demo_app"]
