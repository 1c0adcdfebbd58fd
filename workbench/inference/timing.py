"""One answer and its timings: time to first token, decode speed, and the latency model in words.

The latency model (from the seeds): time ≈ b + k·x, where b is the time to the first token (the
fixed cost of reading the prompt), k the time per further token and x the number of tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class Answer:
    """One side's answer to one prompt.

    Times are `time.perf_counter()` readings. `started_at` is when this side's `generate` call
    began (after any wait for the shared weights), so time to first token includes reading the
    prompt (prefill) and the first decoding step.

    Attributes:
        text: the decoded answer, without special tokens.
        token_ids: every generated token, the end-of-turn token included when one was generated.
        finish_reason: "eos" (the model ended its turn), "length" (max new tokens) or "cancelled".
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "eos"
    started_at: float = 0.0
    first_token_at: Optional[float] = None
    last_token_at: Optional[float] = None
    ended_at: float = 0.0

    @property
    def tokens(self) -> int:
        return len(self.token_ids)

    @property
    def ttft_s(self) -> Optional[float]:
        return None if self.first_token_at is None else self.first_token_at - self.started_at

    @property
    def seconds_per_token(self) -> Optional[float]:
        """k in the latency model: decode time per token after the first."""
        if self.tokens < 2 or self.first_token_at is None or self.last_token_at is None:
            return None
        elapsed = self.last_token_at - self.first_token_at
        return elapsed / (self.tokens - 1) if elapsed > 0 else None

    @property
    def decode_tokens_per_s(self) -> Optional[float]:
        per_token = self.seconds_per_token
        return None if per_token is None else 1.0 / per_token

    @property
    def total_s(self) -> float:
        return self.ended_at - self.started_at

    def timing_dict(self) -> dict:
        """The per-side figures `workbench compare --json` prints and the vote log keeps."""
        return {
            "ttft_s": _rounded(self.ttft_s),
            "tokens_per_s": _rounded(self.decode_tokens_per_s, 2),
            "tokens": self.tokens,
            "total_s": _rounded(self.total_s),
            "finish_reason": self.finish_reason,
        }

    def summary(self) -> str:
        """One line under an answer: "first token 0.42 s · 12.3 tok/s · 57 tokens · 5.0 s"."""
        parts = []
        if self.ttft_s is not None:
            parts.append(f"first token {self.ttft_s:.2f} s")
        if self.decode_tokens_per_s is not None:
            parts.append(f"{self.decode_tokens_per_s:.1f} tok/s")
        parts.append(f"{self.tokens} tokens")
        parts.append(f"{self.total_s:.1f} s")
        if self.finish_reason != "eos":
            parts.append("stopped" if self.finish_reason == "cancelled" else "hit max tokens")
        return " · ".join(parts)

    def latency_words(self) -> str:
        """The latency model with this answer's numbers, for demos."""
        b, k = self.ttft_s, self.seconds_per_token
        if b is None:
            return "no tokens were generated"
        if k is None:
            return f"{self.total_s:.1f} s: {b:.2f} s until the first (and only) token"
        more = self.tokens - 1
        return (
            f"time ≈ b + k·x = {b:.2f} s to read the prompt and write the first token"
            f" + {more} more tokens × {k * 1000:.0f} ms = {b + k * more:.1f} s"
        )


def _rounded(value: Optional[float], digits: int = 3) -> Optional[float]:
    return None if value is None else round(value, digits)
