"""Teacher-forced scoring: the log-probability a model gives to labelled tokens.

One function serves the validation loss (labels from `render_training_example`, masked exactly as
training masks them) and the multiple-choice check (labels on the choice's tokens only). Rows are
left-padded into batches so every row's labelled tokens sit at the right edge; the model is asked
for the logits of the last K positions only (`logits_to_keep`), K covering the longest labelled
stretch of the batch: the vocabulary projection and the float32 log-softmax then run on a few
positions per row instead of all of them (SmolLM2's vocabulary is 49,152 wide, so the full logits
of a 64-row batch of 48 tokens would be 600 MB in float32).

`score_choice_groups` scores several continuations of one prompt in one row (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from workbench.data.templating import IGNORE_INDEX

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

MAX_BATCH_TOKENS = 8192
"""Padded tokens per forward pass (rows × width)."""
MAX_BATCH_LOGITS = 1024
"""Kept logit positions per forward pass (rows × K): 1024 × 49,152 float32 logits is 200 MB."""


@dataclass(frozen=True)
class ScoredSequence:
    """One row's teacher-forced score.

    Attributes:
        logprob: the sum of log p(token | everything before it) over the labelled tokens.
        tokens: how many tokens were labelled (scored).
    """

    logprob: float
    tokens: int


def _first_scored_position(labels: Sequence[int]) -> Optional[int]:
    """The first labelled position after position 0 (nothing precedes position 0, so it is never scored)."""
    return next((t for t in range(1, len(labels)) if labels[t] != IGNORE_INDEX), None)


def _batches(order: list[int], lengths: list[int], spans: list[int]) -> list[list[int]]:
    """Consecutive rows of `order` (sorted by length) grouped within the token and logit budgets."""
    batches: list[list[int]] = []
    current: list[int] = []
    width = keep = 0
    for index in order:
        new_width, new_keep = max(width, lengths[index]), max(keep, spans[index])
        rows = len(current) + 1
        if current and (rows * new_width > MAX_BATCH_TOKENS or rows * new_keep > MAX_BATCH_LOGITS):
            batches.append(current)
            current, new_width, new_keep = [], lengths[index], spans[index]
        current.append(index)
        width, keep = new_width, new_keep
    if current:
        batches.append(current)
    return batches


def score_sequences(
    model: "PreTrainedModel",
    sequences: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    pad_token_id: int = 0,
    progress: Callable[[int], None] = lambda done: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[ScoredSequence]:
    """Sum of log-probabilities of each row's labelled tokens under `model`.

    Args:
        model: a causal LM (a PeftModel with its adapter routing set, or a plain model).
        sequences: (input_ids, labels) per row; labels hold -100 where a token is not scored, else
            the token id (unshifted, as `render_training_example` returns them).
        pad_token_id: fills the left padding (masked out by the attention mask).
        progress: called with the rows done so far after each batch.
        cancelled: checked before each batch; scoring stops early when it returns True.

    Returns:
        One ScoredSequence per row, in input order (a row without labelled tokens scores 0 over 0).
    """
    import torch
    import torch.nn.functional as F

    results: list[Optional[ScoredSequence]] = [None] * len(sequences)
    lengths = [len(ids) for ids, _ in sequences]
    spans = []
    for index, (ids, labels) in enumerate(sequences):
        if len(ids) != len(labels):
            raise ValueError(f"row {index}: input_ids and labels differ in length")
        first = _first_scored_position(labels)
        if first is None:
            results[index] = ScoredSequence(0.0, 0)
            spans.append(0)
        else:
            spans.append(len(ids) - first + 1)  # the logit before the first scored token onwards
    order = sorted((i for i in range(len(sequences)) if results[i] is None), key=lambda i: (lengths[i], spans[i]))
    device = next(model.parameters()).device
    done = len(sequences) - len(order)
    was_training = model.training
    model.eval()
    try:
        for batch in _batches(order, lengths, spans):
            if cancelled():
                break
            width, keep = max(lengths[i] for i in batch), max(spans[i] for i in batch)
            input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
            labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
            attention = torch.zeros((len(batch), width), dtype=torch.long)
            for row, index in enumerate(batch):
                ids, row_labels = sequences[index]
                input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
                labels[row, width - len(ids) :] = torch.tensor(list(row_labels), dtype=torch.long)
                attention[row, width - len(ids) :] = 1
            # Left padding: positions must count from each row's first real token.
            positions = (attention.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                output = model(
                    input_ids=input_ids.to(device),
                    attention_mask=attention.to(device),
                    position_ids=positions.to(device),
                    logits_to_keep=keep,
                    use_cache=False,
                )
            logits = output.logits[:, -keep:, :]
            # The logit at position p predicts the token at p + 1.
            targets = labels[:, width - keep + 1 :].to(logits.device)
            losses = F.cross_entropy(
                logits[:, :-1, :].float().reshape(-1, logits.shape[-1]),
                targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="none",
            ).view(len(batch), keep - 1)
            counted = (targets != IGNORE_INDEX).sum(dim=1)
            sums = -losses.sum(dim=1)
            for row, index in enumerate(batch):
                results[index] = ScoredSequence(float(sums[row]), int(counted[row]))
            done += len(batch)
            progress(done)
    finally:
        model.train(was_training)
    return [result if result is not None else ScoredSequence(float("nan"), 0) for result in results]


def _shared_prefix_mask(segments: "torch.Tensor", dtype: "torch.dtype") -> "torch.Tensor":
    """Additive (batch, 1, L, L) mask for rows laid out as [padding, prompt, choice 1, choice 2, ...]:
    segment 0 is padding (sees only itself, so no softmax row is empty), 1 the prompt, 2+ the choices.
    A token sees the earlier tokens of its own segment, and a choice's tokens also see the prompt."""
    import torch

    length = segments.shape[1]
    causal = torch.ones((length, length), dtype=torch.bool).tril()
    query, key = segments[:, :, None], segments[:, None, :]
    allowed = causal & ((query == key) | ((key == 1) & (query >= 1)))
    allowed |= torch.eye(length, dtype=torch.bool)
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]


def score_choice_groups(
    model: "PreTrainedModel",
    groups: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]],
    *,
    pad_token_id: int = 0,
    progress: Callable[[int], None] = lambda done: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> list[list[float]]:
    """Sum of log p(choice tokens | prompt) for each choice of each (prompt, choices) group.

    The prompt is read once per group: one row holds the prompt followed by every choice, with a
    mask that lets each choice see the prompt and itself only and positions that restart after the
    prompt for every choice, so each choice is scored exactly as if it followed the prompt alone
    (the same 4D additive-mask technique as packed training; a multiple-choice prompt of ~30
    tokens with four ~3-token choices is 42 tokens this way instead of 132).
    """
    import torch

    results: list[Optional[list[float]]] = [None] * len(groups)
    lengths, spans = [], []
    for prompt, choices in groups:
        if not prompt or not choices or any(not choice for choice in choices):
            raise ValueError("every group needs a prompt and non-empty choices")
        choice_tokens = sum(len(choice) for choice in choices)
        lengths.append(len(prompt) + choice_tokens)
        spans.append(choice_tokens + 1)  # the prompt's last logit predicts every choice's first token
    order = sorted(range(len(groups)), key=lambda i: (lengths[i], spans[i]))
    parameter = model.get_input_embeddings().weight
    done = 0
    was_training = model.training
    model.eval()
    try:
        for batch in _batches(order, lengths, spans):
            if cancelled():
                break
            width, keep = max(lengths[i] for i in batch), max(spans[i] for i in batch)
            input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
            segments = torch.zeros((len(batch), width), dtype=torch.long)
            positions = torch.zeros((len(batch), width), dtype=torch.long)
            for row, index in enumerate(batch):
                prompt, choices = groups[index]
                cursor = width - lengths[index]
                input_ids[row, cursor : cursor + len(prompt)] = torch.tensor(list(prompt), dtype=torch.long)
                segments[row, cursor : cursor + len(prompt)] = 1
                positions[row, cursor : cursor + len(prompt)] = torch.arange(len(prompt))
                cursor += len(prompt)
                for number, choice in enumerate(choices):
                    input_ids[row, cursor : cursor + len(choice)] = torch.tensor(list(choice), dtype=torch.long)
                    segments[row, cursor : cursor + len(choice)] = number + 2
                    positions[row, cursor : cursor + len(choice)] = torch.arange(len(prompt), len(prompt) + len(choice))
                    cursor += len(choice)
            with torch.inference_mode():
                output = model(
                    input_ids=input_ids.to(parameter.device),
                    attention_mask=_shared_prefix_mask(segments, parameter.dtype).to(parameter.device),
                    position_ids=positions.to(parameter.device),
                    logits_to_keep=keep,
                    use_cache=False,
                )
                logprobs = output.logits[:, -keep:, :].float().log_softmax(dim=-1)
            window_start = width - keep
            for row, index in enumerate(batch):
                prompt, choices = groups[index]
                prompt_end = width - lengths[index] + len(prompt) - 1  # the prompt's last token
                cursor = prompt_end + 1
                sums = []
                for choice in choices:
                    predictors = [prompt_end] + list(range(cursor, cursor + len(choice) - 1))
                    rows = torch.tensor(predictors) - window_start
                    targets = torch.tensor(list(choice))
                    sums.append(float(logprobs[row, rows, targets].sum()))
                    cursor += len(choice)
                results[index] = sums
            done += len(batch)
            progress(done)
    finally:
        model.train(was_training)
    return [result if result is not None else [float("nan")] * len(groups[i][1]) for i, result in enumerate(results)]
