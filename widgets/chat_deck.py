"""The prompt deck dialog: replay a list of prompts against the base and checkpoints, as a table."""

from __future__ import annotations

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
from workbench.inference.deck import DeckReplay, DeckRow, save_deck
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import ModelSource

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

    class RowDone(Message):
        def __init__(self, index: int, row: DeckRow) -> None:
            super().__init__()
            self.index = index
            self.row = row

    class Progress(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

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
        table.add_column("prompt", width=prompt_width)
        for source in sources:
            table.add_column(source.label, width=answer_width)
        self.rows = []
        self.query_one("#deck-run", Button).disabled = True
        self.query_one("#deck-stop", Button).disabled = False
        self._replay = DeckReplay(self.engine_factory(), sources, prompts, self.settings, self.system_prompt)
        self.replay(self._replay)

    @work(thread=True, exclusive=True, group="deck", exit_on_error=False)
    def replay(self, replay: DeckReplay) -> None:
        total = len(replay.prompts)
        worker = get_current_worker()

        def started(index: int, prompt: str) -> None:
            self.post_message(self.Progress(f"{index + 1}/{total}: {prompt[:30]}…"))

        for index, row in enumerate(replay.rows(on_start=started)):
            self.post_message(self.RowDone(index, row))
            if worker.is_cancelled:
                replay.cancel()

    def on_deck_dialog_progress(self, message: Progress) -> None:
        self.query_one("#deck-status", Static).update(message.text)

    def on_deck_dialog_row_done(self, message: RowDone) -> None:
        self.rows.append(message.row)
        self.query_one("#deck-table", DataTable).add_row(
            _cell(message.row.prompt), *(_cell(answer.text) for answer in message.row.answers)
        )
        if len(self.rows) == 1:
            self._show_detail(0)

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
        if not 0 <= index < len(self.rows):
            return
        row = self.rows[index]
        detail = Text()
        detail.append(row.prompt + "\n", style="bold cyan")
        for source, answer in zip(self._chosen_labels(), row.answers):
            detail.append(f"{source}: ", style="bold")
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
