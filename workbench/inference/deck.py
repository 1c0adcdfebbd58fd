"""Prompt decks: a saved list of prompts replayed against the base and one or more adapters.

Every prompt × model is one row of a batched `generate` (`ChatEngine.start(jobs, batch_size=...)`):
rows are left-padded, adapters share the batch through row masks, and up to `batch_size` rows
decode together, because on this CPU a batch of ~16–24 rows costs about what one row does per
step (bf16, SmolLM2-135M; measured roughly at load ~1–2). Each answer is reported the moment its
row ends; a prompt's `DeckRow` once all its models have answered. Decks start a fresh
conversation per prompt (no history).

The API other commands build on (`workbench compare`, the Chat pane's deck dialog, eval):

    replay = DeckReplay(engine, sources, prompts, settings, system_prompt, batch_size=24)
    for event in replay.events():      # DeckText (a row's text grew), DeckAnswer (a row is done)
        ...
    for row in replay.rows():          # or: DeckRow per prompt, in the order prompts complete
        ...
    replay.cancel()                    # from any thread: every row stops at its next token

For jobs that are not "one fresh prompt per model" (history, per-row settings), call
`ChatEngine.start(jobs, batch_size=...)` directly: the same batching, events by job index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from workbench.errors import WorkbenchError
from workbench.inference.engine import ChatEngine, GenerationJob, GenerationStream
from workbench.inference.prompt_limits import read_numbered_prompts
from workbench.inference.prompting import build_messages
from workbench.inference.settings import DEFAULT_DECK_BATCH_SIZE, SamplingSettings
from workbench.inference.sources import ModelSource
from workbench.inference.streaming import SideFinished, TextDelta
from workbench.inference.timing import Answer
from workbench.paths import cache_dir

DECK_FILE_NAME = "prompt_deck.txt"
STARTER_DECK = (
    "What is your name?",
    "What is the capital of France?",
    "Explain fine-tuning to a colleague in two sentences.",
    "Write a haiku about a terminal.",
)


@dataclass(frozen=True)
class DeckRow:
    """One prompt's answers, one per model in deck order; `index` is the prompt's place in the deck."""

    prompt: str
    answers: list[Answer]
    index: int = 0


@dataclass(frozen=True)
class DeckText:
    """The answer of model `source_index` to prompt `prompt_index` grew by `text`."""

    prompt_index: int
    source_index: int
    text: str


@dataclass(frozen=True)
class DeckAnswer:
    """Model `source_index` finished its answer to prompt `prompt_index`."""

    prompt_index: int
    source_index: int
    answer: Answer


DeckEvent = DeckText | DeckAnswer


def read_prompt_file(path: str | Path) -> list[str]:
    """Prompts one per line; blank lines are skipped (the file is checked first: workbench/io_checks.py)."""
    return [prompt for _, prompt in read_numbered_prompts(path)]


def saved_deck_path() -> Path:
    return cache_dir() / DECK_FILE_NAME


def load_saved_deck(run_prompts: Sequence[str] = ()) -> list[str]:
    """The deck the pane starts with: the last one saved, else the run's eval prompts, else a starter deck."""
    path = saved_deck_path()
    if path.is_file():
        try:
            return read_prompt_file(path)
        except WorkbenchError:
            pass
    return list(run_prompts) or list(STARTER_DECK)


def save_deck(prompts: Sequence[str]) -> Path:
    path = saved_deck_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{prompt.strip()}\n" for prompt in prompts if prompt.strip()), encoding="utf-8")
    return path


class DeckReplay:
    """Replays prompts against several models in batches of prompt × model rows; `cancel()` stops it."""

    def __init__(
        self,
        engine: ChatEngine,
        sources: Sequence[ModelSource],
        prompts: Sequence[str],
        settings: SamplingSettings,
        system_prompt: Optional[str] = None,
        *,
        batch_size: int = DEFAULT_DECK_BATCH_SIZE,
        force_length: bool = False,
    ) -> None:
        """force_length: every answer runs to max_new_tokens, end-of-turn ignored (benchmarks compare equal work)."""
        if not sources:
            raise ValueError("a deck needs at least one model")
        if batch_size < 1:
            raise WorkbenchError(f"batch size: must be at least 1, got {batch_size}")
        self.engine = engine
        self.sources = list(sources)
        self.prompts = list(prompts)
        self.settings = settings
        self.system_prompt = system_prompt
        self.batch_size = batch_size
        self.force_length = force_length
        self._stream: Optional[GenerationStream] = None
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def rows_per_batch(self) -> int:
        """`batch_size` rounded down to whole prompts (every model of a prompt in one batch), at least one prompt."""
        models = len(self.sources)
        return max(models, self.batch_size // models * models)

    def cancel(self) -> None:
        self._cancelled = True
        if self._stream is not None:
            self._stream.cancel()

    def events(self) -> Iterator[DeckEvent]:
        """Every row's text as it grows and its answer when it ends, until all rows are done.

        Rows are prompt-major: prompt 0 × every model, then prompt 1, ... Leaving the loop early
        cancels the rest. Errors inside `generate` are raised here after the rows already done.
        """
        if self._cancelled or not self.prompts:
            return
        models = len(self.sources)
        jobs = [
            GenerationJob(source, build_messages(self.system_prompt, [], prompt), self.settings)
            for prompt in self.prompts
            for source in self.sources
        ]
        self._stream = self.engine.start(jobs, batch_size=self.rows_per_batch, force_length=self.force_length)
        if self._cancelled:
            self._stream.cancel()
        try:
            for event in self._stream:
                prompt_index, source_index = divmod(event.side, models)
                if isinstance(event, TextDelta):
                    yield DeckText(prompt_index, source_index, event.text)
                elif isinstance(event, SideFinished):
                    yield DeckAnswer(prompt_index, source_index, event.answer)
        finally:
            if not self._stream.finished:
                self._stream.cancel()

    def rows(self) -> Iterator[DeckRow]:
        """Each prompt's DeckRow once every model has answered it, in the order prompts complete.

        After `cancel()` no further rows are yielded.
        """
        answers: dict[int, dict[int, Answer]] = {}
        for event in self.events():
            if self._cancelled:
                return
            if not isinstance(event, DeckAnswer):
                continue
            done = answers.setdefault(event.prompt_index, {})
            done[event.source_index] = event.answer
            if len(done) == len(self.sources):
                index = event.prompt_index
                yield DeckRow(self.prompts[index], [done[i] for i in range(len(self.sources))], index)
