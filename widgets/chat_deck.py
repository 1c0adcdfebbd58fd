"""The prompt deck dialog: replay a list of prompts against the base and checkpoints, as a table.

Every prompt × model is a row of the engine's batches (workbench/inference/deck.py), so the table
has a line per prompt from the start and each cell fills in as its answer streams.
"""

from __future__ import annotations

from dataclasses import dataclass

import time
from typing import Callable, Optional, Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label, SelectionList, Static, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from widgets.chat_settings import CHAT_CSS
from workbench.inference.deck import DeckAnswer, DeckReplay, DeckRow, DeckText, save_deck
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import ModelSource
from workbench.inference.timing import Answer

TEXT_REFRESH_S = 0.25
"""How often streamed text reaches the table: every row's deltas in between go in one message."""

def _cell(text: str) -> Text:
    """One line of the answer; the table cuts it to the column and the row's detail shows all of it."""
    return Text(" ".join(text.split()), no_wrap=True, overflow="ellipsis")


class DeckDialog(ModalScreen[None]):
    """Pick prompts and models, replay, read the table; the highlighted row's full answers show below."""

    CSS_PATH = CHAT_CSS
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("ctrl+t", "run", "Replay"),
    ]

    @dataclass
    class TextGrew(Message):
        """Streamed text since the last one, by (prompt index, model index)."""

        texts: dict[tuple[int, int], str]

    @dataclass
    class AnswerDone(Message):
        answer: DeckAnswer

    def __init__(
        self,
        engine_factory: Callable[[], object],
        choices: Sequence[ModelSource],
        selected: Sequence[ModelSource],
        prompts: Sequence[str],
        settings: SamplingSettings,
        system_prompt: Optional[str],
    ) -> None:
        super().__init__()
        self.engine_factory = engine_factory
        self.choices = list(choices)
        self.selected = {choice.label for choice in selected}
        self.initial_prompts = list(prompts)
        self.settings = settings
        self.system_prompt = system_prompt
        self.rows: list[DeckRow] = []
        """Prompts every model has answered, in the order they completed."""
        self._prompts: list[str] = []
        self._texts: dict[tuple[int, int], str] = {}
        self._answers: dict[int, dict[int, Answer]] = {}
        self._row_keys: list = []
        self._column_keys: list = []
        self._replay: Optional[DeckReplay] = None

    def compose(self) -> ComposeResult:
        with Vertical(id="deck-dialog", classes="chat-dialog"):
            yield Label("[b]Prompt deck[/b] [dim]a prompt per line · tick models · ctrl+t replays[/dim]", classes="dialog-title")
            with Horizontal(id="deck-setup"):
                yield TextArea("\n".join(self.initial_prompts), id="deck-prompts", show_line_numbers=False)
                yield SelectionList[int](
                    *[(choice.label, index, choice.label in self.selected) for index, choice in enumerate(self.choices)],
                    id="deck-models",
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Replay", id="deck-run", variant="primary", compact=True)
                yield Button("Stop", id="deck-stop", compact=True, disabled=True)
                yield Button("Close", id="deck-close", compact=True)
                yield Static("", id="deck-status")
            yield DataTable(id="deck-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="deck-detail")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"deck-run": self.action_run, "deck-stop": self.action_stop, "deck-close": self.action_close}[event.button.id]()

    def _chosen_sources(self) -> list[ModelSource]:
        return [self.choices[index] for index in sorted(self.query_one("#deck-models", SelectionList).selected)]

    def action_run(self) -> None:
        prompts = [line.strip() for line in self.query_one("#deck-prompts", TextArea).text.splitlines() if line.strip()]
        sources = self._chosen_sources()
        status = self.query_one("#deck-status", Static)
        if not prompts or not sources:
            status.update("[red]needs at least one prompt and one model[/red]")
            return
        if self._replay is not None:
            return
        save_deck(prompts)
        table = self.query_one("#deck-table", DataTable)
        table.clear(columns=True)
        prompt_width = 18
        # Fit the models into the table's width (each column also takes 2 cells of padding).
        answer_width = max(16, (table.size.width - prompt_width - 2 * (len(sources) + 1)) // len(sources))
        self._column_keys = [table.add_column("prompt", width=prompt_width)]
        for source in sources:
            self._column_keys.append(table.add_column(source.label, width=answer_width))
        self._row_keys = [table.add_row(_cell(prompt), *(_cell("…") for _ in sources)) for prompt in prompts]
        self._prompts, self.rows, self._texts, self._answers = prompts, [], {}, {}
        self.query_one("#deck-run", Button).disabled = True
        self.query_one("#deck-stop", Button).disabled = False
        status.update(f"answering {len(prompts)} prompts × {len(sources)} models…")
        self._replay = DeckReplay(self.engine_factory(), sources, prompts, self.settings, self.system_prompt)
        self.replay(self._replay)

    @work(thread=True, exclusive=True, group="deck", exit_on_error=False)
    def replay(self, replay: DeckReplay) -> None:
        worker = get_current_worker()
        pending: dict[tuple[int, int], str] = {}
        sent_at = time.monotonic()
        for event in replay.events():
            if worker.is_cancelled:
                replay.cancel()
            if isinstance(event, DeckText):
                key = (event.prompt_index, event.source_index)
                pending[key] = pending.get(key, "") + event.text
                if time.monotonic() - sent_at >= TEXT_REFRESH_S:
                    self.post_message(self.TextGrew(pending))
                    pending, sent_at = {}, time.monotonic()
            elif isinstance(event, DeckAnswer):
                if pending:
                    self.post_message(self.TextGrew(pending))
                    pending = {}
                self.post_message(self.AnswerDone(event))
        if pending:
            self.post_message(self.TextGrew(pending))

    def on_deck_dialog_text_grew(self, message: TextGrew) -> None:
        table = self.query_one("#deck-table", DataTable)
        for (prompt_index, source_index), text in message.texts.items():
            key = (prompt_index, source_index)
            self._texts[key] = self._texts.get(key, "") + text
            if source_index not in self._answers.get(prompt_index, {}):
                table.update_cell(self._row_keys[prompt_index], self._column_keys[source_index + 1], _cell(self._texts[key]))
        self._refresh_detail(message.texts)

    def on_deck_dialog_answer_done(self, message: AnswerDone) -> None:
        done = message.answer
        answers = self._answers.setdefault(done.prompt_index, {})
        answers[done.source_index] = done.answer
        table = self.query_one("#deck-table", DataTable)
        table.update_cell(self._row_keys[done.prompt_index], self._column_keys[done.source_index + 1], _cell(done.answer.text))
        models = len(self._column_keys) - 1
        if len(answers) == models:
            self.rows.append(DeckRow(self._prompts[done.prompt_index], [answers[i] for i in range(models)], done.prompt_index))
            if self._replay is not None:
                self.query_one("#deck-status", Static).update(f"{len(self.rows)}/{len(self._prompts)} prompts answered")
        self._refresh_detail({(done.prompt_index, done.source_index): ""})

    def _refresh_detail(self, changed) -> None:
        cursor = self.query_one("#deck-table", DataTable).cursor_row
        if any(prompt_index == cursor for prompt_index, _ in changed):
            self._show_detail(cursor)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "deck" or event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        stopped = self._replay is not None and self._replay.cancelled
        self._replay = None
        self.query_one("#deck-run", Button).disabled = False
        self.query_one("#deck-stop", Button).disabled = True
        status = self.query_one("#deck-status", Static)
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            status.update(f"[red]failed: {str(error).splitlines()[0] if str(error) else type(error).__name__}[/red]")
        else:
            status.update(f"{'stopped after' if stopped else 'done:'} {len(self.rows)} prompts")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail(event.cursor_row)

    def _show_detail(self, index: int) -> None:
        """The highlighted prompt's answers in full: finished ones with their timings, others as far as they got."""
        if not 0 <= index < len(self._prompts):
            return
        answers = self._answers.get(index, {})
        detail = Text()
        detail.append(self._prompts[index] + "\n", style="bold cyan")
        for source_index, label in enumerate(self._chosen_labels()):
            detail.append(f"{label}: ", style="bold")
            answer = answers.get(source_index)
            if answer is None:
                detail.append(f"{self._texts.get((index, source_index), '').strip()}…\n")
                continue
            detail.append(f"{answer.text.strip()}\n")
            detail.append(f"  {answer.summary()}\n", style="dim")
        self.query_one("#deck-detail", Static).update(detail)

    def _chosen_labels(self) -> list[str]:
        table = self.query_one("#deck-table", DataTable)
        return [str(column.label) for column in list(table.columns.values())[1:]]

    def action_stop(self) -> None:
        if self._replay is not None:
            self._replay.cancel()

    def action_close(self) -> None:
        self.action_stop()
        self.dismiss(None)
