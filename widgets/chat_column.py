"""One side of the Chat pane: a title, the side's conversation (streaming), and the answer's timings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static


@dataclass
class Turn:
    """One exchange as shown: the user's message and the answer so far."""

    user: str
    answer: str = ""
    state: str = "streaming"  # "streaming" | "done" | "stopped" | "error"


class ChatColumn(Vertical):
    """Shows one side's turns. The screen pushes text in (attributes down); the column never
    talks to the engine. `show_answer` takes the whole answer so far, so repaints can be coalesced."""

    DEFAULT_CSS = """
    ChatColumn {
        border: round $primary 50%;
        border-title-color: $text;
        border-title-style: bold;
    }
    ChatColumn .column-log {
        height: 1fr;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    ChatColumn .column-transcript {
        width: 1fr;
    }
    ChatColumn .column-timing {
        height: auto;
        max-height: 2;
        padding: 0 1;
        color: $text-muted;
    }
    """

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id, classes="chat-column")
        self.turns: list[Turn] = []

    def compose(self) -> ComposeResult:
        yield Static("", classes="column-title")
        with VerticalScroll(classes="column-log"):
            yield Static("", classes="column-transcript")
        yield Static("", classes="column-timing")

    def set_title(self, title: str) -> None:
        self.query_one(".column-title", Static).update(title)

    def set_timing(self, text: str) -> None:
        self.query_one(".column-timing", Static).update(text)

    def clear(self, note: str = "") -> None:
        self.turns = []
        self.set_timing("")
        self._redraw(note)

    def load(self, turns: list[Turn]) -> None:
        """Replace the transcript (the sides swap columns between blind rounds)."""
        self.turns = [Turn(t.user, t.answer, t.state) for t in turns]
        self._redraw()

    def begin_turn(self, user_text: str, waiting: str = "[dim]waiting for the first token…[/dim]") -> None:
        """A new exchange; `waiting` shows under it until the first token (the screen's estimate)."""
        self.turns.append(Turn(user_text))
        self.set_timing(waiting)
        self._redraw()

    def show_answer(self, text: str, state: Optional[str] = None) -> None:
        if not self.turns:
            return
        turn = self.turns[-1]
        turn.answer = text
        if state is not None:
            turn.state = state
        self._redraw()

    def _redraw(self, note: str = "") -> None:
        transcript = Text()
        if note and not self.turns:
            transcript.append(note, style="dim")
        for index, turn in enumerate(self.turns):
            if index:
                transcript.append("\n\n")
            transcript.append("You: ", style="bold cyan")
            transcript.append(turn.user + "\n", style="cyan")
            if turn.state == "error":
                transcript.append(turn.answer, style="bold red")
                continue
            transcript.append(turn.answer)
            if turn.state == "streaming":
                transcript.append("▌", style="blink dim")
            elif turn.state == "stopped":
                transcript.append(" [stopped]", style="dim italic")
        self.query_one(".column-transcript", Static).update(transcript)
        self.query_one(".column-log", VerticalScroll).scroll_end(animate=False)
