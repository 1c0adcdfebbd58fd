"""Sampling settings shared by the Chat pane, `workbench compare` and the prompt deck."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Optional

from workbench.errors import WorkbenchError

DEFAULT_DECK_BATCH_SIZE = 24
"""Rows (prompt × model) a deck decodes together: 10 prompts × base and tuned fit one batch.
Measured roughly (SmolLM2-135M, bf16, 2 cores, load ~1–2): a decode step took about as long at
16–24 rows as at 1, and ~1.5× as long at 32."""

MAX_NEW_TOKENS_LIMIT = 1 << 20
"""No model's context is longer; a larger value is a typo that would decode for hours."""


@dataclass(frozen=True)
class SamplingSettings:
    """How one side decodes.

    Attributes:
        temperature: 0 means greedy decoding (the default: answers are reproducible).
        top_p: nucleus sampling threshold (1 = off); only when sampling.
        top_k: keep the k likeliest tokens (0 = off); only when sampling.
        max_new_tokens: the longest answer in tokens.
        repetition_penalty: > 1 discourages repeating tokens already in the prompt or answer (1 = off).
        seed: seeds the sampler so a sampled answer can be reproduced; None draws a fresh one.
    """

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 128
    repetition_penalty: float = 1.0
    seed: Optional[int] = None

    def __post_init__(self) -> None:
        problems = [
            f"{name}: must be a finite number, got {value}"
            for name, value in (("temperature", self.temperature), ("top_p", self.top_p),
                                ("repetition_penalty", self.repetition_penalty))
            if isinstance(value, float) and not math.isfinite(value)
        ]
        if problems:
            raise WorkbenchError("sampling settings: " + "; ".join(problems))
        if self.seed is not None and not 0 <= self.seed < 2**63:
            problems.append(f"seed: must be in 0..2^63-1, got {self.seed}")
        if self.max_new_tokens > MAX_NEW_TOKENS_LIMIT:
            problems.append(f"max_new_tokens: at most {MAX_NEW_TOKENS_LIMIT:,}, got {self.max_new_tokens:,}")
        if self.temperature < 0:
            problems.append(f"temperature: must be 0 (greedy) or more, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            problems.append(f"top_p: must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            problems.append(f"top_k: must be 0 (off) or more, got {self.top_k}")
        if self.max_new_tokens < 1:
            problems.append(f"max_new_tokens: must be at least 1, got {self.max_new_tokens}")
        if self.repetition_penalty <= 0:
            problems.append(f"repetition_penalty: must be above 0 (1 = off), got {self.repetition_penalty}")
        if problems:
            raise WorkbenchError("sampling settings: " + "; ".join(problems))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def decoding_key(self) -> tuple:
        """What decides the next-token choice (not the length): equal keys can share generate's own sampling."""
        if self.greedy:
            return ("greedy", self.repetition_penalty)
        return ("sample", self.temperature, self.top_p, self.top_k, self.repetition_penalty, self.seed)

    def with_changes(self, **changes: Any) -> "SamplingSettings":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SamplingSettings":
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def summary(self) -> str:
        """One short line for the pane and the vote log."""
        if self.greedy:
            mode = "greedy"
        else:
            mode = f"T={self.temperature:g} top-p={self.top_p:g} top-k={self.top_k or 'off'}"
            mode += f" seed={self.seed if self.seed is not None else 'random'}"
        penalty = f" rep={self.repetition_penalty:g}" if self.repetition_penalty != 1 else ""
        return f"{mode}{penalty} max={self.max_new_tokens}"
