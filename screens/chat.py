"""The Chat pane: the base model and a fine-tuned one answer the same message side by side.

Both answers come from one batched generate (see workbench.inference.engine) and stream into two
columns at once, with their timings underneath. Blind A/B mode hides which side is which, shuffles
the seats every round, and logs each vote to the run's ab_votes.jsonl.
"""

from __future__ import annotations

from dataclasses import dataclass

import time
from pathlib import Path
from typing import Optional

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, ProgressBar, Select, Static
from textual.worker import Worker, WorkerState, get_current_worker

from screens.base import PaletteEntry, PaneScreen
from widgets.chat_column import ChatColumn
from widgets.chat_deck import DeckDialog
from widgets.chat_dialogs import PromptDialog
from widgets.chat_settings import ChatSettings, SettingsDialog
from widgets.file_picker import FilePicker
from workbench.cpu_budget import CpuBudget, current_split
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line
from workbench.inference.deck import load_saved_deck
from workbench.inference.engine import engine_for
from workbench.inference.latency import LatencyLog
from workbench.inference.prompting import (
    build_messages,
    read_run_config,
    render_prompt,
    trained_system_prompt,
    training_mismatches,
)
from workbench.inference.session import ChatSession
from workbench.inference.sources import (
    BASE_SOURCE,
    ModelSource,
    all_run_choices,
    run_source,
    source_from_directory,
    votes_dir,
)
from workbench.inference.streaming import SideFinished, TextDelta
from workbench.inference.votes import (
    PAIRS_FILE,
    VoteTally,
    append_vote,
    export_preference_pairs,
    read_votes,
    vote_record,
    votes_between,
)
from workbench.paths import runs_dir

REPAINT_INTERVAL_S = 0.05
"""Token updates are coalesced to at most one repaint per 50 ms, whatever the token rate."""
NARROW_WIDTH = 72
"""Below this many columns the two answers stack instead of sitting side by side."""
TALL_HEIGHT = 34
"""From this many rows on, the latency model in words shows under each answer."""
SIDES = ("base", "tuned")
"""Side 0 is the reference (the base model unless another is picked), side 1 the fine-tuned one."""


def _is_model_directory(folder: Path) -> bool:
    """A folder the picker opens instead of browsing: it holds an adapter or a model's config."""
    return (folder / "adapter_config.json").is_file() or (folder / "config.json").is_file()


def _session_attribute(name: str) -> property:
    """The screen's view of one ChatSession attribute (read and written through `self.session`)."""
    return property(lambda self: getattr(self.session, name), lambda self, value: setattr(self.session, name, value),
                    doc=f"ChatSession.{name} of this pane's conversation")


class ChatScreen(PaneScreen):
    PANE_ID = "chat"
    PANE_TITLE = "Chat"
    CSS_PATH = "styles/chat.tcss"
    AUTO_FOCUS = "#chat-input"
    MAIN_FOCUS = "#column-right .column-log"
    BINDINGS = [
        Binding("escape", "stop", "Stop", tooltip="Stop answering"),
        Binding("escape", "leave_text_box", "Leave box", tooltip="Leave the message box: the pane's keys work again"),
        Binding("i", "focus_input", "Type", tooltip="Back to the message box"),
        Binding("ctrl+o", "settings", "Settings"),
        Binding("ctrl+b", "toggle_blind", "Blind"),
        Binding("ctrl+t", "deck", "Deck"),
        Binding("ctrl+r", "show_prompt", "Prompt", show=False),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+s", "export_votes", "Export votes", show=False),
        Binding("ctrl+l", "open_directory", "Open dir", show=False),
        # Function keys, so votes work over SSH without a mouse while the prompt box keeps the letters.
        # Out of the footer: the vote buttons name their keys, and four more keys would cut an
        # 80-column footer.
        Binding("f6", "vote('a')", "A better", show=False),
        Binding("f7", "vote('b')", "B better", show=False),
        Binding("f8", "vote('tie')", "Tie", show=False),
        Binding("f9", "vote('both_bad')", "Both bad", show=False),
    ]
    PALETTE = (
        PaletteEntry("New chat", "new_chat", "a new conversation on both sides"),
        PaletteEntry("Blind A/B mode on or off", "toggle_blind", "hide which side is which, then vote"),
        PaletteEntry("Stop answering", "stop"),
        PaletteEntry("Settings (temperature, length, system prompt)", "settings"),
        PaletteEntry("Prompt deck: all prompts × models", "deck"),
        PaletteEntry("Show the exact prompt", "show_prompt", "the text each model reads, template applied"),
        PaletteEntry("Export votes as preference pairs", "export_votes"),
        PaletteEntry("Chat with an adapter or model folder…", "open_directory", "file picker; it goes on the right"),
        PaletteEntry("Type a message", "focus_input"),
        PaletteEntry("Vote: A better", "vote('a')"),
        PaletteEntry("Vote: B better", "vote('b')"),
        PaletteEntry("Vote: tie", "vote('tie')"),
        PaletteEntry("Vote: both bad", "vote('both_bad')"),
    )

    @dataclass
    class StreamUpdate(Message):
        """Both sides' answers so far and the finished ones (a snapshot, so a newer one may replace
        an unprocessed older one without losing anything)."""

        generation: int
        texts: tuple[str, str]
        finished: tuple
        tokens: tuple[int, int] = (0, 0)

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ChatScreen.StreamUpdate) and message.generation == self.generation

    @dataclass
    class GenerationDone(Message):
        """The generation ended: answers per side (None where none came), or the error in one line."""

        generation: int
        answers: list
        error: Optional[str] = None

    @dataclass
    class Progress(Message):
        text: str

    def __init__(self) -> None:
        super().__init__()
        self.settings = ChatSettings()
        self.system_prompt_customized = False
        self.sources: list[ModelSource] = [BASE_SOURCE, BASE_SOURCE]
        self.choices: list[ModelSource] = [BASE_SOURCE]
        self.extra_choices: list[ModelSource] = []
        self.session = ChatSession()
        """The conversation (histories, the turn being answered, the blind round); this screen renders it."""
        self.blind = False
        self.waiting: Optional[dict] = None
        """The turn being answered: when it started, its latency estimate and what it is measured by."""
        self._progress_timer = None

    generation = _session_attribute("generation")
    generating = _session_attribute("generating")
    histories = _session_attribute("histories")
    last_prompts = _session_attribute("last_prompts")
    last_answers = _session_attribute("last_answers")
    pending_user_text = _session_attribute("pending_user_text")
    blind_round = _session_attribute("blind_round")
    round_voted = _session_attribute("round_voted")

    # -- layout ----------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Vertical(id="chat-body"):
            with Horizontal(id="chat-toolbar"):
                yield Select([(BASE_SOURCE.label, 0)], id="left-source", allow_blank=False, compact=True, value=0)
                yield Static("vs", classes="toolbar-label")
                yield Select([(BASE_SOURCE.label, 0)], id="right-source", allow_blank=False, compact=True, value=0)
                yield Checkbox("blind A/B", False, id="blind-switch", compact=True)
            yield Static("", id="chat-warnings")
            with Horizontal(id="chat-columns"):
                yield ChatColumn(id="column-left")
                yield ChatColumn(id="column-right")
            with Horizontal(id="vote-bar"):
                yield Button("F6 A better", id="vote-a", compact=True, disabled=True)
                yield Button("F7 B better", id="vote-b", compact=True, disabled=True)
                yield Button("F8 Tie", id="vote-tie", compact=True, disabled=True)
                yield Button("F9 Both bad", id="vote-both_bad", compact=True, disabled=True)
                yield Static("", id="vote-tally")
            yield Input(id="chat-input", placeholder="Ask both models… (Enter to send)", compact=True)
            with Horizontal(id="chat-status-row"):
                yield Static("", id="chat-status")
                yield ProgressBar(id="chat-progress", show_eta=False, show_percentage=False)

    def on_mount(self) -> None:
        self.refresh_choices()
        self._pick_default_sources(self.app.selected_run)
        self.watch(self.app, "selected_run", self._follow_selected_run, init=False)
        self.watch(self.app, "model_status", self._follow_model_status)
        self._apply_size(self.size.width, self.size.height)
        for column in self.query(ChatColumn):
            column.clear(self._empty_note())
        self._refresh_titles()
        self._refresh_status()

    def on_resize(self, event) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        self.set_class(0 < width < NARROW_WIDTH, "-narrow")
        self.set_class(height >= TALL_HEIGHT, "-tall")

    def on_screen_resume(self) -> None:
        """Runs may have finished or gained checkpoints while another pane showed."""
        self.refresh_choices()

    # -- model and sources -----------------------------------------------------------------------

    @property
    def model_ready(self) -> bool:
        return self.app.model_status.state == "ready" and self.app.base_model is not None

    def _follow_model_status(self, status) -> None:
        chat_input = self.query_one("#chat-input", Input)
        chat_input.disabled = not self.model_ready
        self.refresh_bindings()  # `i` (back to typing) shows only once there is a box to type in
        if self.model_ready:
            chat_input.placeholder = "Ask both models… (Enter to send)"
            if self.focused is None:
                chat_input.focus()
        elif status.state == "error":
            chat_input.placeholder = f"The base model failed to load: {status.detail}"
        elif status.state == "idle":
            chat_input.placeholder = "The base model is not loaded"
        else:
            chat_input.placeholder = "Waiting for the base model to load…"
        self._refresh_warnings()

    def engine(self):
        """The engine of the app's base model (one per loaded model; adapters attach to it)."""
        resolved = self.app.resolved_model
        return engine_for(
            self.app.base_model,
            self.app.tokenizer,
            model_path=resolved.path if resolved else None,
            model_name=resolved.display_name if resolved else "base model",
        )

    def refresh_choices(self) -> None:
        """Rebuild the pickers from the runs on disk, keeping the current picks."""
        try:
            found = all_run_choices(runs_dir())
        except OSError:
            found = []
        self.choices = [BASE_SOURCE, *found, *(c for c in self.extra_choices if c not in found)]
        for source in self.sources:
            if source not in self.choices:
                self.choices.append(source)
        self._sync_selects()

    def _sync_selects(self) -> None:
        options = [(choice.label, index) for index, choice in enumerate(self.choices)]
        for select_id, source in (("#left-source", self.sources[0]), ("#right-source", self.sources[1])):
            select = self.query_one(select_id, Select)
            select.set_options(options)
            select.value = self.choices.index(source)

    def _pick_default_sources(self, run_dir: Optional[Path]) -> None:
        right = None
        if run_dir is not None:
            try:
                right = run_source(Path(run_dir))
            except WorkbenchError as error:
                self.notify(str(error), severity="warning")
        if right is None:
            right = next((choice for choice in self.choices if not choice.is_base), BASE_SOURCE)
        self.set_sources(BASE_SOURCE, right)

    def _follow_selected_run(self, run_dir: Optional[Path]) -> None:
        self.refresh_choices()
        if run_dir is not None and (self.sources[1].run_dir is None or self.sources[1].run_dir != Path(run_dir).resolve()):
            self._pick_default_sources(run_dir)

    def set_sources(self, left: ModelSource, right: ModelSource) -> None:
        """Pick both sides; a new pair starts a new conversation."""
        changed = [left, right] != self.sources
        self.sources = [left, right]
        for source in (left, right):
            if source not in self.choices:
                self.choices.append(source)
        if not self.system_prompt_customized:
            known, trained = trained_system_prompt(right)
            self.settings = ChatSettings(self.settings.left, self.settings.right, self.settings.same_on_both, trained if known else None)
        self._sync_selects()
        if changed:
            self.action_new_chat()
        if self.blind and right.is_base:
            self._set_blind(False)
        self._refresh_titles()
        self._refresh_warnings()
        self._refresh_status()

    @on(Select.Changed, "#left-source")
    def _left_source_chosen(self, event: Select.Changed) -> None:
        self._source_chosen(event, 0)

    @on(Select.Changed, "#right-source")
    def _right_source_chosen(self, event: Select.Changed) -> None:
        self._source_chosen(event, 1)

    def _source_chosen(self, event: Select.Changed, side: int) -> None:
        event.stop()
        if event.value != event.select.value or not isinstance(event.value, int):
            return  # a stale change from rebuilding the options
        chosen = self.choices[event.value]
        if chosen != self.sources[side]:
            self.set_sources(*(chosen if i == side else source for i, source in enumerate(self.sources)))

    def action_open_directory(self) -> None:
        def opened(path: Optional[Path]) -> None:
            if not path:
                return

            try:
                source = source_from_directory(path)
            except WorkbenchError as error:
                self.notify(str(error), title="Cannot open", severity="error")
                return
            self.extra_choices.append(source)
            self.set_sources(self.sources[0], source)

        self.app.push_screen(
            FilePicker(
                "Chat with a directory", "", suffixes=(), accept_directory=_is_model_directory,
                hint="a PEFT adapter or a merged model folder; it goes on the right-hand side",
            ),
            opened,
        )

    # -- sending and streaming -------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            return
        if not self.model_ready:
            self.notify("The base model is not ready yet.", severity="warning")
            return
        if self.generating:
            self.notify("Still answering: press Esc to stop first.", severity="warning")
            return
        if self.session.needs_new_round(self.blind):
            self._new_blind_round()
        event.input.value = ""
        self.send(text)

    def send(self, text: str) -> None:
        """Ask both sides `text`, each with its own history; answers stream into the columns."""
        jobs = self.session.start_turn(text, self.sources, self.settings.system_prompt, self.settings.for_side)
        self.waiting = self._expected_wait(jobs)
        estimate = self.waiting["estimate"]
        note = (
            estimate.words() if estimate is not None
            else "no answer measured on this machine yet: this one measures b and k for the next"
        )
        for side in (0, 1):
            self.column_for(side).begin_turn(text, f"[dim]waiting for the first token · {note}[/dim]")
        self._set_votes_enabled(False)
        self.refresh_bindings()  # Esc: stop while answering, else leave the box
        self._refresh_status("answering… (Esc to stop)")
        self._start_progress()
        self.generate(self.generation, jobs)

    # -- waiting that informs --------------------------------------------------------------------

    def _expected_wait(self, jobs: list) -> dict:
        """What this turn is measured by (model, rows, threads, prompt length) and its estimate
        from this machine's earlier answers (workbench/inference/latency.py)."""
        resolved = self.app.resolved_model
        model = resolved.display_name if resolved else self.app.model_status.name
        try:
            threads = CpuBudget.from_environment().chat_threads(current_split().train > 0)
        except WorkbenchError:
            threads = 0
        try:
            prompt_tokens = max(len(self.engine().prompt_ids(job.messages, job.source)) for job in jobs)
        except WorkbenchError:
            prompt_tokens = 0
        longest = max(job.settings.max_new_tokens for job in jobs)
        log = LatencyLog()
        estimate = log.estimate(model, rows=len(jobs), threads=threads, prompt_tokens=prompt_tokens, max_new_tokens=longest)
        return {
            "log": log, "model": model, "rows": len(jobs), "threads": threads, "prompt_tokens": prompt_tokens,
            "estimate": estimate, "started": time.monotonic(), "first_token": False, "tokens": 0, "max_new_tokens": longest,
        }

    def _start_progress(self) -> None:
        bar = self.query_one("#chat-progress", ProgressBar)
        bar.display = True
        self._tick_progress()
        if self._progress_timer is None:
            self._progress_timer = self.set_interval(0.25, self._tick_progress)
        else:
            self._progress_timer.resume()

    def _tick_progress(self) -> None:
        """Before the first token: the time waited against the expected b (a pulsing bar when there
        is no estimate yet); then the tokens written against the longest answer."""
        waiting = self.waiting
        bar = self.query_one("#chat-progress", ProgressBar)
        if waiting is None or not self.generating:
            return
        estimate = waiting["estimate"]
        elapsed = time.monotonic() - waiting["started"]
        if not waiting["first_token"] and waiting.get("stage", "").startswith("attaching"):
            bar.update(total=None)
            self._refresh_status(f"{waiting['stage']} (Esc to stop)")
            return
        if not waiting["first_token"]:
            if estimate is None:
                bar.update(total=None)
                self._refresh_status(f"answering · {elapsed:.0f} s, waiting for the first token (Esc to stop)")
                return
            expected = max(0.1, estimate.first_token_s)
            bar.update(total=expected, progress=min(elapsed, expected))
            left = expected - elapsed
            when = f"≈ {left:.0f} s to the first token" if left >= 0.5 else "the first token is late"
            self._refresh_status(f"answering · {when} (Esc to stop)")
            return
        written, longest = waiting["tokens"], waiting["max_new_tokens"]
        bar.update(total=longest, progress=min(written, longest))
        left = ""
        if estimate is not None and estimate.per_token_s:
            left = f" · ≤ {max(0.0, (longest - written) * estimate.per_token_s):.0f} s left"
        self._refresh_status(f"writing · {written}/{longest} tokens{left} (Esc to stop)")

    def _stop_progress(self) -> None:
        self.query_one("#chat-progress", ProgressBar).display = False
        if self._progress_timer is not None:
            self._progress_timer.pause()

    def _record_timings(self, answers: list) -> None:
        """This turn's b and k, for the next turn's estimate."""
        waiting, self.waiting = self.waiting, None
        if waiting is None:
            return
        for answer in answers:
            if answer is not None:
                waiting["log"].record(waiting["model"], waiting["rows"], waiting["threads"], waiting["prompt_tokens"], answer)

    @work(thread=True, exclusive=True, group="chat-generate", exit_on_error=False)
    def generate(self, generation: int, jobs: list) -> None:
        """Runs in a thread: attaches what is needed, streams, posts coalesced snapshots."""
        worker = get_current_worker()
        texts = ["", ""]
        pieces = [0, 0]
        finished = [None, None]
        try:
            if any(not job.source.is_base for job in jobs):
                self.post_message(self.Progress("attaching the adapter…"))
            stream = self.engine().start(jobs)
            self.post_message(self.Progress("answering… (Esc to stop)"))
            while not stream.finished:
                if worker.is_cancelled:
                    stream.cancel()
                events = stream.drain(timeout=0.1)
                for event in events:
                    if isinstance(event, TextDelta):
                        texts[event.side] += event.text
                        pieces[event.side] += 1
                    elif isinstance(event, SideFinished):
                        finished[event.side] = event.answer
                if events:
                    self.post_message(self.StreamUpdate(generation, (texts[0], texts[1]), tuple(finished), (pieces[0], pieces[1])))
                    time.sleep(REPAINT_INTERVAL_S)
            self.post_message(self.GenerationDone(generation, list(stream.answers)))
        except Exception as error:  # every failure is shown in the pane, never a hang
            self.post_message(self.GenerationDone(generation, [None, None], first_line(error)))

    def on_chat_screen_progress(self, message: Progress) -> None:
        if self.waiting is not None:
            self.waiting["stage"] = message.text
        if self.generating:
            self._refresh_status(message.text)

    def on_chat_screen_stream_update(self, message: StreamUpdate) -> None:
        if message.generation != self.generation:
            return
        if self.waiting is not None:
            self.waiting["first_token"] = self.waiting["first_token"] or any(message.texts) or any(message.finished)
            self.waiting["tokens"] = max(message.tokens)
        for side in (0, 1):
            column, answer = self.column_for(side), message.finished[side]
            if answer is not None:
                column.show_answer(answer.text, state="stopped" if answer.finish_reason == "cancelled" else "done")
                column.set_timing(self._timing_text(answer))
            elif message.texts[side]:
                column.show_answer(message.texts[side])
                column.set_timing("[dim]writing…[/dim]")

    def on_chat_screen_generation_done(self, message: GenerationDone) -> None:
        if not self.session.is_current(message.generation):
            return
        self._stop_progress()
        self._record_timings(message.answers)
        self.session.finish_turn(None if message.error is not None else message.answers)
        self.refresh_bindings()  # Esc: stop while answering, else leave the box
        if message.error is not None:
            for side in (0, 1):
                column = self.column_for(side)
                column.show_answer(f"⚠ generation failed: {message.error}", state="error")
                column.set_timing("")
            self.notify(message.error, title="Generation failed", severity="error", timeout=10)
            self._refresh_status()
            return
        for side, answer in enumerate(message.answers):
            column = self.column_for(side)
            if answer is None:
                column.show_answer("(no answer)", state="error")
                continue
            stopped = answer.finish_reason == "cancelled"
            column.show_answer(answer.text, state="stopped" if stopped else "done")
            column.set_timing(self._timing_text(answer))
        if self.session.vote_open(self.blind):
            self._set_votes_enabled(True)
            self._refresh_status("vote: which answer is better?")
        else:
            self._refresh_status()

    @staticmethod
    def _timing_text(answer) -> str:
        return f"{answer.summary()}\n[dim]{answer.latency_words()}[/dim]"

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "chat-generate" and event.state == WorkerState.ERROR and self.generating:
            self.post_message(self.GenerationDone(self.generation, [None, None], first_line(event.worker.error)))

    def action_stop(self) -> None:
        if self.generating:
            self.workers.cancel_group(self, "chat-generate")
            self._refresh_status("stopping…")
            self.refresh_bindings()

    def action_new_chat(self) -> None:
        if self.generating:
            self.action_stop()
            self._stop_progress()
            self.waiting = None
        self.session.new_conversation()  # a stopped turn's late messages belong to the old conversation
        self.refresh_bindings()  # Esc: stop while answering, else leave the box
        self._set_votes_enabled(False)
        for column in self.query(ChatColumn):
            column.clear(self._empty_note())
        self._refresh_titles()

    def _empty_note(self) -> str:
        if self.sources[1].is_base and self.sources[0].is_base:
            return "No fine-tuned model picked: train a run (pane 4), or ctrl+l to open an adapter directory."
        return "Type a message below; both models answer it at once."

    # -- columns, titles, status -----------------------------------------------------------------

    def column_for(self, side: int) -> ChatColumn:
        """The column showing a side: base left, fine-tuned right; in blind mode wherever the round seated it."""
        left = side == 0
        if self.blind and self.blind_round is not None and self.blind_round.tuned_on_left:
            left = side == 1
        return self.query_one("#column-left" if left else "#column-right", ChatColumn)

    def _refresh_titles(self) -> None:
        left, right = self.query_one("#column-left", ChatColumn), self.query_one("#column-right", ChatColumn)
        if not self.blind:
            left.border_title = f"◀ {self._describe(0)}"
            right.border_title = f"▶ {self._describe(1)}"
            return
        if self.blind_round is not None and self.round_voted:
            self.column_for(0).border_title = f"{'A' if self.column_for(0) is left else 'B'} was {self._describe(0)}"
            self.column_for(1).border_title = f"{'A' if self.column_for(1) is left else 'B'} was {self._describe(1)}"
        else:
            left.border_title, right.border_title = "A (hidden)", "B (hidden)"

    def _describe(self, side: int) -> str:
        source = self.sources[side]
        if source.is_base:
            resolved = self.app.resolved_model
            return f"base · {resolved.display_name if resolved else self.app.model_status.name}"
        return source.label

    def _refresh_warnings(self) -> None:
        tokenizer = self.app.tokenizer
        model_path = self.app.resolved_model.path if self.app.resolved_model else None
        lines = []
        for source in dict.fromkeys(self.sources):
            lines.extend(training_mismatches(source, tokenizer, self.settings.system_prompt, model_path))
        warnings = self.query_one("#chat-warnings", Static)
        warnings.update("\n".join(f"⚠ {line}" for line in lines))
        warnings.set_class(bool(lines), "-shown")

    def _refresh_status(self, activity: str = "") -> None:
        system = self.settings.system_prompt
        system_text = "template default" if system is None else repr(system if len(system) <= 24 else system[:23] + "…")
        parts = [activity] if activity else []
        parts.append(self.settings.summary())
        parts.append(f"system: {system_text}")
        self.query_one("#chat-status", Static).update(" · ".join(parts))

    # -- blind A/B -------------------------------------------------------------------------------

    def action_toggle_blind(self) -> None:
        self._set_blind(not self.blind)

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        if event.value != self.blind:
            self._set_blind(event.value)

    def _set_blind(self, on: bool) -> None:
        if on and self.sources[1].is_base:
            self.notify("Pick a fine-tuned model on the right first.", severity="warning")
            on = False
        self.blind = on
        switch = self.query_one("#blind-switch", Checkbox)
        if switch.value != on:
            switch.value = on
        self.set_class(on, "-blind")
        self.action_new_chat()
        self._refresh_tally()

    def _new_blind_round(self) -> None:
        self.action_new_chat()
        self.session.new_blind_round()
        self._refresh_titles()

    def _set_votes_enabled(self, enabled: bool) -> None:
        for button in self.query("#vote-bar Button"):
            button.disabled = not enabled
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "vote":  # the vote keys work only while a vote is open
            return self.session.vote_open(self.blind)
        if action == "stop":
            return self.generating
        if action == "leave_text_box":
            return self.typing and not self.generating
        if action == "focus_input":
            chat_input = self.query_one("#chat-input")
            return super().check_action(action, parameters) and not chat_input.disabled and self.focused is not chat_input
        return super().check_action(action, parameters)

    def action_focus_input(self) -> None:
        self.query_one("#chat-input", Input).focus()

    def action_vote(self, choice: str) -> None:
        self.vote(choice)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()

    @on(Button.Pressed, "#vote-bar Button")
    def _vote_pressed(self, event: Button.Pressed) -> None:
        self.vote(event.button.id.removeprefix("vote-"))

    def vote(self, choice: str) -> None:
        """Log the vote to the run's ab_votes.jsonl, then reveal who was who."""
        if self.session.blind_round is None or not self.session.vote_open(self.blind):
            return
        sides = self.session.vote_sides(self.sources, self.settings.for_side, SIDES)
        record = vote_record(self.blind_round, choice, self.pending_user_text, self.settings.system_prompt, sides)
        directory = votes_dir(self.sources[1])
        try:
            append_vote(directory, record)
        except OSError as error:
            self.notify(f"{directory}: cannot write the vote: {error}", severity="error")
            return
        self.session.round_voted = True
        self._set_votes_enabled(False)
        self._refresh_titles()
        self._refresh_tally()
        winner = {"tuned": "the fine-tuned model", "base": "the base model"}.get(record["winner"], record["winner"].replace("_", " "))
        self._refresh_status(f"vote saved ({winner}) · send a message for the next round")

    def _refresh_tally(self) -> None:
        tally_text = ""
        directory = votes_dir(self.sources[1])
        if self.blind and directory is not None:
            base_path = str(self.sources[0].path) if self.sources[0].path else None
            votes = votes_between(read_votes(directory), base_path, str(self.sources[1].path))
            tally_text = VoteTally.of(votes).summary()
        self.query_one("#vote-tally", Static).update(tally_text)

    def action_export_votes(self) -> None:
        directory = votes_dir(self.sources[1])
        if directory is None:
            self.notify("Pick a fine-tuned model on the right: its votes are exported.", severity="warning")
            return
        votes = read_votes(directory)
        destination = directory / PAIRS_FILE
        try:
            count = export_preference_pairs(votes, destination)
        except (OSError, WorkbenchError) as error:
            self.notify(str(error), title="Export failed", severity="error")
            return
        self.notify(f"{count} preference pairs (of {len(votes)} votes) → {destination}", title="Votes exported")

    # -- dialogs ---------------------------------------------------------------------------------

    def action_settings(self) -> None:
        def applied(settings: Optional[ChatSettings]) -> None:
            if settings is None:
                return
            if settings.system_prompt != self.settings.system_prompt:
                self.system_prompt_customized = True
            self.settings = settings
            self._refresh_warnings()
            self._refresh_status()

        self.app.push_screen(SettingsDialog(self.settings), applied)

    def action_show_prompt(self) -> None:
        if self.app.tokenizer is None:
            self.notify("The tokenizer is not loaded yet.", severity="warning")
            return
        prompts = []
        for side in (0, 1):
            messages = self.last_prompts[side] or build_messages(
                self.settings.system_prompt, self.histories[side], "(your next message)"
            )
            # each side renders through its own tokenizer: a run's is saved with its adapter
            tokenizer = self.engine().tokenizer_for(self.sources[side]) if self.app.base_model is not None else self.app.tokenizer
            try:
                text = render_prompt(tokenizer, messages)
            except WorkbenchError as error:
                text = str(error)
            tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            title = ("A" if self.column_for(side).id == "column-left" else "B") if self.blind and not self.round_voted else self._describe(side)
            prompts.append((title, text, tokens))
        self.app.push_screen(PromptDialog(prompts))

    def action_deck(self) -> None:
        if not self.model_ready:
            self.notify("The base model is not ready yet.", severity="warning")
            return
        run_prompts = []
        if self.sources[1].run_dir is not None:
            config = read_run_config(self.sources[1].run_dir)
            run_prompts = config.prompts if config is not None else []
        selected = list(dict.fromkeys(self.sources))
        self.app.push_screen(
            DeckDialog(self.engine, self.choices, selected, load_saved_deck(run_prompts), self.settings.left, self.settings.system_prompt)
        )
