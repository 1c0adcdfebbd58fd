"""Prompt decks: a saved list of prompts replayed against the base and one or more adapters.

Each prompt is one batched `generate` with a row per model, so a deck over base + three
checkpoints costs about one answer's time per prompt, not four. Decks start a fresh conversation
per prompt (no history).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

from workbench.errors import WorkbenchError
from workbench.inference.engine import ChatEngine, GenerationJob, GenerationStream
from workbench.inference.prompting import build_messages
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import ModelSource
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
    """One prompt's answers, one per model in deck order."""

    prompt: str
    answers: list[Answer]


def read_prompt_file(path: str | Path) -> list[str]:
    """Prompts one per line; blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkbenchError(f"{path}: no such prompts file (one prompt per line)") from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"{path}: not UTF-8 text") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts:
        raise WorkbenchError(f"{path}: holds no prompts (write one prompt per line)")
    return prompts


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
    """Replays prompts against several models, one batched generate per prompt; `cancel()` stops it."""

    def __init__(
        self,
        engine: ChatEngine,
        sources: Sequence[ModelSource],
        prompts: Sequence[str],
        settings: SamplingSettings,
        system_prompt: Optional[str] = None,
    ) -> None:
        if not sources:
            raise ValueError("a deck needs at least one model")
        self.engine = engine
        self.sources = list(sources)
        self.prompts = list(prompts)
        self.settings = settings
        self.system_prompt = system_prompt
        self._stream: Optional[GenerationStream] = None
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._cancelled = True
        if self._stream is not None:
            self._stream.cancel()

    def rows(self, on_start: Callable[[int, str], None] = lambda index, prompt: None) -> Iterator[DeckRow]:
        for index, prompt in enumerate(self.prompts):
            if self._cancelled:
                return
            on_start(index, prompt)
            messages = build_messages(self.system_prompt, [], prompt)
            jobs = [GenerationJob(source, messages, self.settings) for source in self.sources]
            self._stream = self.engine.start(jobs)
            if self._cancelled:
                self._stream.cancel()
            answers = self._stream.result()
            yield DeckRow(prompt, answers)
