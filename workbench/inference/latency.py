"""What the next answer will take on this machine, from the answers it already wrote.

The latency model (workbench/inference/timing.py): time ≈ b + k·x, b the time to the first token
(reading the prompt), k the time per further token, x the tokens. Every answer the workbench writes
records its b, k, prompt length, batch rows and threads in `<cache>/latency.jsonl`; before the next
one starts, `LatencyLog.estimate` predicts its b (fitted over the prompt length: prefill grows with
it) and k from the recent answers of the same model, rows and threads, so the wait before the first
token shows an expected time instead of "waiting…". UI-free: the Chat pane shows the estimate.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from workbench.inference.timing import Answer
from workbench.paths import cache_dir

LOG_NAME = "latency.jsonl"
RECENT = 12
"""Answers an estimate uses (the newest): enough to smooth one slow answer, few enough to follow a
machine whose load changed (a run started training beside the chat)."""
KEEP = 400
"""Lines the log keeps (older ones are dropped when it grows past twice this)."""


@dataclass(frozen=True)
class Observation:
    """One answer's timings."""

    model: str
    rows: int
    threads: int
    prompt_tokens: int
    first_token_s: float
    per_token_s: Optional[float]
    tokens: int
    at: float


@dataclass(frozen=True)
class LatencyEstimate:
    """The expected b and k of the next answer, and what they rest on."""

    first_token_s: float
    per_token_s: Optional[float]
    max_new_tokens: int
    answers: int
    """How many measured answers the estimate uses."""
    threads: int
    measured_threads: int
    """The threads those answers had (≠ threads: measured under another CPU split)."""

    @property
    def longest_s(self) -> Optional[float]:
        """b + k·x for an answer of max_new_tokens (an answer that ends sooner takes less)."""
        if self.per_token_s is None:
            return None
        return self.first_token_s + self.per_token_s * max(0, self.max_new_tokens - 1)

    def words(self) -> str:
        """"first token in ≈ 2.1 s · up to 128 tokens in ≤ 14 s (b + k·x of this machine's last 5 answers)"."""
        text = f"first token in ≈ {_seconds(self.first_token_s)}"
        if self.longest_s is not None:
            text += f" · up to {self.max_new_tokens} tokens in ≤ {_seconds(self.longest_s)}"
        basis = f"b + k·x of this machine's last {self.answers} answer{'s' if self.answers != 1 else ''}"
        if self.measured_threads != self.threads:
            basis += f", measured with {self.measured_threads} thread{'s' if self.measured_threads != 1 else ''} (now {self.threads})"
        return f"{text} ({basis})"


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _fit_first_token(observations: list[Observation], prompt_tokens: int) -> float:
    """b for a prompt of `prompt_tokens`: a least-squares line over the prompt length when the
    answers had prompts of clearly different lengths, else their median scaled by the length."""
    lengths = [o.prompt_tokens for o in observations]
    times = [o.first_token_s for o in observations]
    if len(observations) >= 3 and max(lengths) >= 1.5 * max(1, min(lengths)):
        mean_length, mean_time = statistics.fmean(lengths), statistics.fmean(times)
        spread = sum((length - mean_length) ** 2 for length in lengths)
        slope = max(0.0, sum((l - mean_length) * (t - mean_time) for l, t in zip(lengths, times)) / spread)
        intercept = max(0.0, mean_time - slope * mean_length)
        return intercept + slope * prompt_tokens
    median_time, typical = statistics.median(times), statistics.median(lengths)
    if prompt_tokens > typical > 0:  # a longer prompt than before: prefill grows with it
        return median_time * prompt_tokens / typical
    return median_time


class LatencyLog:
    """The answers this machine wrote, in `<cache>/latency.jsonl` (or `path`)."""

    def __init__(self, path: Optional[Path] = None) -> None:
        if path is None:
            path = cache_dir() / LOG_NAME
        self.path = Path(path)

    def read(self) -> list[Observation]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return []
        found = []
        for line in lines[-KEEP:]:
            try:
                found.append(Observation(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line cut short by a crash, or from another version
        return found

    def record(self, model: str, rows: int, threads: int, prompt_tokens: int, answer: Answer) -> None:
        """Keep one finished answer's b and k (answers cut short or without tokens teach nothing)."""
        if answer.ttft_s is None or answer.finish_reason == "cancelled":
            return
        observation = Observation(
            model, rows, threads, prompt_tokens, round(answer.ttft_s, 4),
            None if answer.seconds_per_token is None else round(answer.seconds_per_token, 5), answer.tokens, time.time(),
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(asdict(observation)) + "\n")
            if self.path.stat().st_size > KEEP * 2 * 200:  # ~200 bytes a line
                kept = self.path.read_text(encoding="utf-8").splitlines()[-KEEP:]
                temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
                temporary.write_text("\n".join(kept) + "\n", encoding="utf-8")
                os.replace(temporary, self.path)
        except OSError:
            pass  # a read-only cache costs the estimate, never the answer

    def estimate(
        self, model: str, *, rows: int, threads: int, prompt_tokens: int, max_new_tokens: int
    ) -> Optional[LatencyEstimate]:
        """The next answer's expected b and k, or None before this model has answered here."""
        same_model = [o for o in self.read() if o.model == model]
        if not same_model:
            return None
        same_rows = [o for o in same_model if o.rows == rows] or same_model
        same_threads = [o for o in same_rows if o.threads == threads]
        recent = (same_threads or same_rows)[-RECENT:]
        per_token = [o.per_token_s for o in recent if o.per_token_s]
        return LatencyEstimate(
            first_token_s=_fit_first_token(recent, prompt_tokens),
            per_token_s=statistics.median(per_token) if per_token else None,
            max_new_tokens=max_new_tokens,
            answers=len(recent),
            threads=threads,
            measured_threads=threads if same_threads else recent[-1].threads,
        )
