"""Bounds on generation work: prompts that fit the model's context, prompt files read safely, and
a confirmation before a deck so large it would decode for hours.

Measured reason for the context check: a 1 MB prompt in `compare` (about 250,000 tokens for an
8,192-token model) produced nothing for minutes and would then have answered from positions the
model never saw; it is refused at once with the prompt's line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from workbench.errors import WorkbenchError
from workbench.io_checks import MAX_PROMPTS_BYTES, read_input_text

LARGE_DECK_PROMPTS = 200
"""Decks with more prompts than this ask for confirmation (`--yes`); the demo's decks hold ~10."""
BYTES_PER_TOKEN_BOUND = 64
"""A prompt longer than context × this many UTF-8 bytes cannot fit (no tokenizer packs that many
bytes into one token), so it is refused without tokenizing megabytes."""


def read_numbered_prompts(path: str | Path, *, label: Optional[str] = None) -> list[tuple[int, str]]:
    """(line, prompt) for each non-blank line of a prompts file, checked and decoded first."""
    path = Path(path)
    name = label or str(path)
    if not path.exists() and not path.is_symlink():
        raise WorkbenchError(f"{name}: no such prompts file (one prompt per line)")
    text = read_input_text(path, label=name, max_bytes=MAX_PROMPTS_BYTES)
    prompts = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1) if line.strip()]
    if not prompts:
        raise WorkbenchError(f"{name}: holds no prompts (write one prompt per line)")
    return prompts


def model_context_length(model: Any) -> Optional[int]:
    """The longest sequence a loaded model was built for (its config), or None when it does not say."""
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def prompt_fit_problem(prompt_tokens: int, context: Optional[int]) -> Optional[str]:
    """Why a prompt of `prompt_tokens` cannot be answered within `context` (None when it can).

    Only the prompt is held to the context: max_new_tokens is a cap most answers never reach (they
    end at the end-of-turn token), so it is not refused for what it might do.
    """
    if context is None or prompt_tokens < context:
        return None
    return f"the prompt is {prompt_tokens:,} tokens, longer than the model's context of {context:,}; shorten it"


def check_prompt_texts(tokenizer: Any, prompts: Sequence[tuple[int, str]], *, context: Optional[int], label: str) -> None:
    """Refuse the first prompt (by its line) that cannot fit the context; long ones are refused by
    their size before any tokenizing. The chat template adds a few dozen tokens more, which the
    engine checks again when it renders each prompt."""
    if context is None:
        return
    for line, prompt in prompts:
        size = len(prompt.encode("utf-8", "surrogatepass"))
        if size > context * BYTES_PER_TOKEN_BOUND:
            raise WorkbenchError(
                f"{label}:{line}: the prompt is {size:,} bytes, far more than the model's context of {context:,} tokens holds; shorten it"
            )
    for line, prompt in prompts:
        problem = prompt_fit_problem(len(tokenizer(prompt, add_special_tokens=False)["input_ids"]), context)
        if problem:
            raise WorkbenchError(f"{label}:{line}: {problem}")


def confirm_large_deck(prompts: int, sides: int, max_new_tokens: int, *, yes: bool, label: str) -> None:
    """Ask before a deck of more than LARGE_DECK_PROMPTS prompts (or refuse without a terminal,
    unless `yes`): it may decode for hours."""
    if yes or prompts <= LARGE_DECK_PROMPTS:
        return
    work = f"{prompts:,} prompts × {sides} models × up to {max_new_tokens:,} new tokens ({prompts * sides * max_new_tokens:,} tokens)"
    if not sys.stdin.isatty():
        raise WorkbenchError(f"{label}: {work} may take hours on this machine; pass --yes to start it anyway")
    print(f"{label}: {work} may take hours on this machine. Start? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise WorkbenchError(f"{label}: not started")
