"""The selected row, two ways: as a conversation, and as the model sees it (token by token, with
the tokens that receive loss highlighted and the masked ones dimmed)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

if TYPE_CHECKING:
    from workbench.data.conversation import Conversation
    from workbench.data.templating import TrainingExample

ROLE_STYLES = {"system": "bold magenta", "user": "bold cyan", "assistant": "bold green", "tool": "bold yellow"}
MAX_SHOWN_CHARACTERS = 20_000
"""Longer messages are cut in the view (the data is not): drawing megabytes of text stalls the UI."""
TRAINED_STYLES = ("black on #9ece6a", "black on #73a942")
"""Trained tokens alternate two greens so each token's extent is visible."""
MASKED_STYLES = ("#7f849c", "#7f849c on #313244")
CUT_STYLE = "#f38ba8 strike"


def _shown(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARACTERS:
        return text
    return text[:MAX_SHOWN_CHARACTERS] + f"\n… {len(text) - MAX_SHOWN_CHARACTERS:,} more characters not shown"


def conversation_text(conversation: "Conversation", reasons: list[str] | None = None) -> Text:
    """The row as a chat: each turn under its role, then the checks' findings for it."""
    text = Text()
    location = f"row {conversation.source_index}"
    if conversation.source_line is not None:
        location += f" · line {conversation.source_line}"
    text.append(f"{location} · {conversation.source_format}\n", style="dim")
    for reason in reasons or []:
        text.append(f"⚠ {reason}\n", style="bold red")
    if conversation.text is not None:
        text.append("\ntext (every token trained)\n", style="bold")
        text.append(_shown(conversation.text) + "\n")
    if conversation.tools:
        names = ", ".join(tool.get("function", {}).get("name", "?") for tool in conversation.tools)
        text.append(f"\ntools offered: {names}\n", style="dim")
    for message in conversation.messages:
        masked = " (masked: loss weight 0)" if message.trained is False and message.role == "assistant" else ""
        masked = " (trained: loss weight 1)" if message.trained and message.role != "assistant" else masked
        text.append(f"\n{message.role}{masked}\n", style=ROLE_STYLES.get(message.role, "bold"))
        if message.reasoning:
            text.append(_shown(message.reasoning) + "\n", style="dim italic")
        if message.content.strip():
            text.append(_shown(message.content) + "\n")
        elif not message.tool_calls:
            text.append("(empty)\n", style="italic red")
        for call in message.tool_calls:
            arguments = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments, ensure_ascii=False)
            text.append(f"→ {call.name}({_shown(arguments)})\n", style="cyan")
    return text


def _visible(piece: str) -> str:
    """Whitespace made visible inside a token, keeping line breaks as line breaks."""
    return piece.replace("\n", "↵\n").replace("\t", "→")


def model_view_text(example: "TrainingExample") -> Text:
    """The templated text token by token: trained tokens highlighted, masked ones dimmed, and the
    part beyond max_seq_length struck through."""
    text = Text()
    shown = 0
    for position, (piece, label) in enumerate(zip(example.token_texts, example.labels)):
        styles = TRAINED_STYLES if label != -100 else MASKED_STYLES
        text.append(_visible(piece), style=styles[position % 2])
        shown += len(piece)
        if shown > MAX_SHOWN_CHARACTERS:
            text.append(f"\n… {len(example.input_ids) - position - 1:,} more tokens not shown", style="dim")
            return text
    if example.truncated:
        rest = example.text[sum(len(piece) for piece in example.token_texts) :]
        text.append(f"\n✂ cut here: {example.full_length - example.max_seq_length:,} tokens beyond max_seq_length\n", style="bold red")
        text.append(_visible(_shown(rest)), style=CUT_STYLE)
    return text


def model_view_summary(example: "TrainingExample") -> Text:
    """One or two lines over the token view: counts against the limit, and warnings."""
    summary = Text()
    over = example.full_length > example.max_seq_length
    summary.append(f"{example.full_length:,} tokens", style="bold red" if over else "bold")
    summary.append(f" / max {example.max_seq_length:,} · ")
    summary.append(f"{example.trained_token_count:,} trained", style=TRAINED_STYLES[0])
    summary.append(" · ")
    summary.append(f"{len(example.input_ids) - example.trained_token_count:,} masked", style=MASKED_STYLES[1])
    if example.eos_trained:
        summary.append(" · end-of-turn trained ✓", style="green")
    else:
        summary.append("\n⚠ an end-of-turn token is not trained: the model would not learn to stop here", style="bold red")
    if example.truncated:
        summary.append("\n⚠ longer than max_seq_length: training cuts it", style="bold red")
    return summary


class RowDetail(Vertical):
    """The selected row as a conversation, or (mode "model") as the model sees it, with the
    counts and warnings fixed above the scrolling text."""

    DEFAULT_CSS = """
    RowDetail {
        border-top: hkey $primary 50%;
        border-title-color: $text;
        border-title-style: bold;
    }
    RowDetail #detail-summary {
        height: auto;
        padding: 0 1;
        background: $boost;
    }
    RowDetail #detail-scroll {
        height: 1fr;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    """

    mode: reactive[str] = reactive("conversation")
    """"conversation" or "model"."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.conversation: "Conversation | None" = None
        self.reasons: list[str] = []
        self.example: "TrainingExample | None" = None
        self.model_note = "Loading the model's tokenizer…"

    def compose(self):
        yield Static("", id="detail-summary")
        with VerticalScroll(id="detail-scroll"):
            yield Static("Open a file to see its rows.", id="detail-body")

    def show(
        self,
        conversation: "Conversation | None",
        reasons: list[str] | None = None,
        example: "TrainingExample | None" = None,
        model_note: str | None = None,
    ) -> None:
        """Show a row; `example` is its rendering for the model view (None: `model_note` says why)."""
        self.conversation, self.reasons, self.example = conversation, reasons or [], example
        if model_note is not None:
            self.model_note = model_note
        self._redraw()

    def watch_mode(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if not self.is_mounted:
            return
        summary = self.query_one("#detail-summary", Static)
        body = self.query_one("#detail-body", Static)
        self.border_title = "What the model sees" if self.mode == "model" else "Conversation"
        if self.conversation is None:
            summary.display = False
            body.update("No row selected.")
            return
        if self.mode == "conversation":
            summary.display = False
            body.update(conversation_text(self.conversation, self.reasons))
        elif self.example is None:
            summary.display = False
            body.update(Text(self.model_note, style="dim"))
        else:
            summary.display = True
            summary.update(model_view_summary(self.example))
            tokens = model_view_text(self.example)
            body.update(tokens)
            self.query_one("#detail-scroll").scroll_home(animate=False)
            self.call_after_refresh(self._scroll_to_first_trained_token, tokens)
            return
        self.query_one("#detail-scroll").scroll_home(animate=False)

    def first_trained_line(self, tokens: Text | None = None) -> int | None:
        """The line of the model view (as wrapped now) that holds the first trained token."""
        example = self.example
        first = next((i for i, label in enumerate(example.labels) if label != -100), None) if example else None
        if first is None:
            return None
        offset = sum(len(_visible(piece)) for piece in example.token_texts[:first])
        body = self.query_one("#detail-body", Static)
        lines = (tokens or model_view_text(example)).wrap(self.app.console, max(1, body.content_region.width))
        seen = 0
        for number, line in enumerate(lines):
            seen += len(line.plain) + 1
            if seen > offset:
                return number
        return None

    def _scroll_to_first_trained_token(self, tokens: Text) -> None:
        """Bring the first trained token near the top: the answer is what the view is about. Two
        lines of context above it when the view has room; on a short view (80×24, the demo's guide
        below) the answer's line comes first, so the trained tokens are always in sight."""
        number = self.first_trained_line(tokens)
        if number is not None:
            scroll = self.query_one("#detail-scroll")
            context = 2 if scroll.scrollable_content_region.height >= 6 else 0
            scroll.scroll_to(y=max(0, number - context), animate=False)
