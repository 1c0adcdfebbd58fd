"""Streaming for batched generation: per-row tokens, a cancel flag, per-row limits and sampling.

transformers' `TextIteratorStreamer` handles one sequence and leaves its consumer waiting forever
when `generate` raises. `BatchStreamer` follows the streamer protocol (`put`, `end`) for a batch
of rows, turns each row's tokens into text deltas and a final `Answer`, and hands them to an
`emit` callback; `GenerationStream` (engine.py) makes sure the consumer always hears the end,
error or not.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from workbench.inference.settings import SamplingSettings
from workbench.inference.timing import Answer

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class TextDelta:
    """New text for one side (its answer so far grew by `text`)."""

    side: int
    text: str


@dataclass(frozen=True)
class SideFinished:
    """One side's answer is complete (ended its turn, hit max tokens, or was cancelled)."""

    side: int
    answer: Answer


StreamEvent = TextDelta | SideFinished
REPLACEMENT_CHARACTER = "\ufffd"


class _Row:
    __slots__ = ("side", "max_new_tokens", "token_ids", "emitted", "first_at", "last_at", "done")

    def __init__(self, side: int, max_new_tokens: int) -> None:
        self.side = side
        self.max_new_tokens = max_new_tokens
        self.token_ids: list[int] = []
        self.emitted = ""
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.done = False


class BatchStreamer:
    """Receives one batched `generate`'s tokens (a row per side) and emits TextDelta / SideFinished.

    A row is finished at its first end-of-turn token or at its own `max_new_tokens`; later tokens
    for it (padding, while other rows go on) are ignored. `end()` finishes the rows still open, as
    "cancelled" when the cancel flag is set. `on_step` is called at every decoding step, in
    generate's thread (the engine re-reads its CPU share there); `after_step` after each step's
    tokens are taken, with every row's finished flag (the engine retires adapters whose rows are done).
    """

    def __init__(
        self,
        tokenizer: "PreTrainedTokenizerBase",
        sides: Sequence[int],
        max_new_tokens: Sequence[int],
        eos_token_ids: set[int],
        emit: Callable[[StreamEvent], None],
        cancel: threading.Event,
        started_at: float,
        stop_at_eos: bool = True,
        on_step: Callable[[], object] = lambda: None,
        after_step: Callable[[list[bool]], object] = lambda finished: None,
    ) -> None:
        self.tokenizer = tokenizer
        self.rows = [_Row(side, limit) for side, limit in zip(sides, max_new_tokens)]
        self.eos_token_ids = eos_token_ids
        self.emit = emit
        self.cancel = cancel
        self.started_at = started_at
        self.stop_at_eos = stop_at_eos
        self.on_step = on_step
        self.after_step = after_step
        self._prompt_seen = False

    def put(self, value: "torch.Tensor") -> None:
        if not self._prompt_seen:
            # generate() first hands over the prompt ids (batch x prompt length).
            self._prompt_seen = True
            return
        self.on_step()  # runs in generate's thread, between two decoding steps
        now = time.perf_counter()
        for row, token in zip(self.rows, value.reshape(-1).tolist()):
            if row.done:
                continue
            row.token_ids.append(token)
            if row.first_at is None:
                row.first_at = now
            row.last_at = now
            if self.stop_at_eos and token in self.eos_token_ids:
                self._finish(row, "eos")
            elif len(row.token_ids) >= row.max_new_tokens:
                self._finish(row, "length")
            else:
                self._emit_text(row, final=False)
        self.after_step([row.done for row in self.rows])

    def end(self) -> None:
        for row in self.rows:
            if not row.done:
                self._finish(row, "cancelled" if self.cancel.is_set() else "length")

    def _text(self, row: _Row) -> str:
        ids = row.token_ids
        if ids and ids[-1] in self.eos_token_ids:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _emit_text(self, row: _Row, final: bool) -> str:
        text = self._text(row)
        if not final and text.endswith(REPLACEMENT_CHARACTER):
            return text  # half of a multi-byte character; wait for the rest
        if text.startswith(row.emitted) and len(text) > len(row.emitted):
            self.emit(TextDelta(row.side, text[len(row.emitted) :]))
            row.emitted = text
        return text

    def _finish(self, row: _Row, reason: str) -> None:
        row.done = True
        text = self._emit_text(row, final=True)
        answer = Answer(
            text=text,
            token_ids=list(row.token_ids),
            finish_reason=reason,
            started_at=self.started_at,
            first_token_at=row.first_at,
            last_token_at=row.last_at,
            ended_at=time.perf_counter(),
        )
        self.emit(SideFinished(row.side, answer))


class CancelCriterion:
    """A stopping criterion that stops every row once the cancel flag is set (checked each step)."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel

    def __call__(self, input_ids: "torch.Tensor", scores: "torch.Tensor", **kwargs) -> "torch.Tensor":
        import torch

        return torch.full((input_ids.shape[0],), self.cancel.is_set(), dtype=torch.bool, device=input_ids.device)


class RowLengthCriterion:
    """Stops each row at its own max new tokens (generate's own limit is the longest of them)."""

    def __init__(self, prompt_length: int, max_new_tokens: Sequence[int]) -> None:
        self.prompt_length = prompt_length
        self.max_new_tokens = list(max_new_tokens)

    def __call__(self, input_ids: "torch.Tensor", scores: "torch.Tensor", **kwargs) -> "torch.Tensor":
        import torch

        generated = input_ids.shape[1] - self.prompt_length
        limits = torch.tensor(self.max_new_tokens, device=input_ids.device)
        return generated >= limits


class PerRowSampling:
    """A logits processor that applies each row's own sampling settings, so sides with different
    settings still share one batched `generate` (called with do_sample=True and no global warpers).

    Uses transformers' own processors in `generate`'s order (repetition penalty, temperature,
    top-k, top-p); a greedy row keeps only its best token, so sampling it returns that token.
    """

    def __init__(self, settings: Sequence[SamplingSettings]) -> None:
        from transformers import (
            RepetitionPenaltyLogitsProcessor,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        self.chains: list[list[Callable]] = []
        for row in settings:
            chain: list[Callable] = []
            if row.repetition_penalty != 1:
                chain.append(RepetitionPenaltyLogitsProcessor(row.repetition_penalty))
            if row.greedy:
                chain.append(_keep_best_token)
            else:
                if row.temperature != 1:
                    chain.append(TemperatureLogitsWarper(row.temperature))
                if row.top_k:
                    chain.append(TopKLogitsWarper(top_k=row.top_k))
                if row.top_p < 1:
                    chain.append(TopPLogitsWarper(top_p=row.top_p))
            self.chains.append(chain)

    def __call__(self, input_ids: "torch.Tensor", scores: "torch.Tensor") -> "torch.Tensor":
        import torch

        rows = []
        for index, chain in enumerate(self.chains):
            row_ids, row_scores = input_ids[index : index + 1], scores[index : index + 1]
            for processor in chain:
                row_scores = processor(row_ids, row_scores)
            rows.append(row_scores)
        return torch.cat(rows, dim=0)


def _keep_best_token(input_ids: "torch.Tensor", scores: "torch.Tensor") -> "torch.Tensor":
    import torch

    best = scores.argmax(dim=-1, keepdim=True)
    only_best = torch.full_like(scores, float("-inf"))
    return only_best.scatter(-1, best, scores.gather(-1, best))
