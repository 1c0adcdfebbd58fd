"""Batches for training: packed rows whose samples never see each other, or plain padded rows.

Packing puts several tokenized samples into one row of at most `max_seq_length` tokens (best-fit
decreasing), so little compute is spent on padding. Each sample in a row must behave exactly as if
it were alone: positions restart at 0 for every sample, and attention is limited to the sample's
own earlier tokens. Measured on this CPU (sdpa and eager): restarting `position_ids` alone is not
enough, samples still attend across the boundary; a 4D additive float mask (0 where allowed, the
dtype's minimum elsewhere, block-diagonal and causal) together with restarted positions gives the
unpacked loss exactly. A 4D boolean mask is right on sdpa but wrong on eager, so it is never used.
On GPUs the kernels that need no dense mask get none (`workbench.config.attention`):
FlashAttention-2 takes the batch flattened into one row with the samples' cumulative lengths, and
flex attention builds its document mask from the restarted `position_ids`.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TYPE_CHECKING, Any, Sequence

from workbench.data.templating import IGNORE_INDEX, TrainingExample
from workbench.config.attention import packed_rows_mode

if TYPE_CHECKING:
    import torch

# Keys the collator adds beside the model inputs; the trainer pops them before the forward pass.
REAL_TOKENS_KEY = "num_real_tokens"
SAMPLE_LENGTHS_KEY = "token_sample_lengths"


Row = Sequence[TrainingExample]
"""What one dataset item is: the samples sharing one row (exactly one when not packing)."""


def best_fit_decreasing(lengths: Sequence[int], max_seq_length: int) -> list[list[int]]:
    """Group item indices into bins (rows) holding at most `max_seq_length` tokens each.

    Longest items first; each goes into the bin it fills most tightly (the one with the least room
    that still fits), else opens a new bin. Items longer than `max_seq_length` are an error: samples are
    truncated to max_seq_length before packing.
    """
    bins: list[list[int]] = []
    room: list[tuple[int, int]] = []  # (free tokens, bin index), sorted
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        length = lengths[index]
        if length > max_seq_length:
            raise ValueError(f"item {index} has {length} tokens, more than max_seq_length {max_seq_length}")
        position = bisect_left(room, (length, -1))
        if position < len(room):
            free, bin_index = room.pop(position)
        else:
            free, bin_index = max_seq_length, len(bins)
            bins.append([])
        bins[bin_index].append(index)
        insort(room, (free - length, bin_index))
    return bins


def pack_samples(samples: Sequence[TrainingExample], max_seq_length: int) -> list[list[TrainingExample]]:
    """Rows of samples packed best-fit decreasing into `max_seq_length` tokens."""
    bins = best_fit_decreasing([len(sample) for sample in samples], max_seq_length)
    return [[samples[index] for index in members] for members in bins]


def single_sample_rows(samples: Sequence[TrainingExample]) -> list[list[TrainingExample]]:
    return [[sample] for sample in samples]


class RowCollator:
    """Turns a list of rows into model inputs.

    Packed rows get restarted `position_ids` and, by the loaded kernel
    (`attention.packed_rows_mode`): a block-diagonal causal 4D float mask (sdpa, eager), no mask
    (flex attention builds a document mask from the positions), or one flattened row with the
    samples' `cu_seq_lens_q/k` and `max_length_q/k` (flash_attention_2). Rows of one sample each
    get an ordinary 2D padding mask. Every batch also carries `num_real_tokens` (non-padding
    tokens) and, per token, the length of the sample it belongs to (NEFTune scales its noise per
    sample).

    Args:
        pad_token_id: id written into padding positions (never trained, never attended to).
        packed: rows may hold several samples.
        attn_implementation: the kernel the model was loaded with ("sdpa", "eager",
            "flash_attention_2", "flex_attention").
        mask_dtype: dtype of the additive mask; the model's compute dtype.
        pad_to_multiple_of: round the batch length up to this (friendlier matmul shapes).
    """

    def __init__(
        self,
        pad_token_id: int,
        *,
        packed: bool,
        attn_implementation: str = "sdpa",
        mask_dtype: "torch.dtype | None" = None,
        pad_to_multiple_of: int = 8,
    ) -> None:
        self.pad_token_id = pad_token_id
        self.packed = packed
        self.attn_implementation = attn_implementation
        self.mask_dtype = mask_dtype
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, rows: Sequence[Row]) -> dict[str, Any]:
        if self.packed and packed_rows_mode(self.attn_implementation) == "varlen":
            return flattened_batch(rows)
        import torch

        row_lengths = [sum(len(sample) for sample in row) for row in rows]
        width = max(row_lengths)
        multiple = self.pad_to_multiple_of
        if multiple > 1:
            width = -(-width // multiple) * multiple
        batch = len(rows)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((batch, width), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((batch, width), dtype=torch.long)
        # 0 marks padding; samples in a row are numbered 1, 2, ...
        segments = torch.zeros((batch, width), dtype=torch.long)
        sample_lengths = torch.zeros((batch, width), dtype=torch.long)
        for row_index, row in enumerate(rows):
            cursor = 0
            for sample_number, sample in enumerate(row, start=1):
                length = len(sample)
                span = slice(cursor, cursor + length)
                input_ids[row_index, span] = torch.tensor(sample.input_ids, dtype=torch.long)
                sample_labels = torch.tensor(sample.labels, dtype=torch.long)
                # The first token is never a target when the sample stands alone (nothing precedes it);
                # masking it keeps the previous sample's last token from predicting it.
                sample_labels[0] = IGNORE_INDEX
                labels[row_index, span] = sample_labels
                position_ids[row_index, span] = torch.arange(length)
                segments[row_index, span] = sample_number
                sample_lengths[row_index, span] = length
                cursor += length
            # Padding continues the positions so flash-attention sees it as one more (untrained) sequence.
            position_ids[row_index, cursor:] = torch.arange(width - cursor)
        result: dict[str, Any] = {
            "input_ids": input_ids,
            "labels": labels,
            REAL_TOKENS_KEY: torch.tensor(sum(row_lengths), dtype=torch.long),
            SAMPLE_LENGTHS_KEY: sample_lengths,
        }
        if not self.packed:
            result["attention_mask"] = (segments > 0).long()
            return result
        result["position_ids"] = position_ids
        if packed_rows_mode(self.attn_implementation) == "dense-mask":
            result["attention_mask"] = block_causal_mask(segments, self.mask_dtype or torch.float32)
        return result


def flattened_batch(rows: Sequence[Row]) -> dict[str, Any]:
    """Every sample of the batch in one row, no padding, with FlashAttention's variable-length kwargs
    (the layout of transformers' `DataCollatorWithFlattening(return_flash_attn_kwargs=True)`)."""
    import torch

    samples = [sample for row in rows for sample in row]
    lengths = [len(sample) for sample in samples]
    input_ids, labels, positions, sample_lengths = [], [], [], []
    for sample, length in zip(samples, lengths):
        input_ids.extend(sample.input_ids)
        # as in RowCollator: a sample's first token is never a target of the sample before it
        labels.extend([IGNORE_INDEX, *sample.labels[1:]])
        positions.extend(range(length))
        sample_lengths.extend([length] * length)
    boundaries = torch.tensor([0, *lengths], dtype=torch.int32).cumsum(0, dtype=torch.int32)
    longest = max(lengths)
    return {
        "input_ids": torch.tensor([input_ids], dtype=torch.long),
        "labels": torch.tensor([labels], dtype=torch.long),
        "position_ids": torch.tensor([positions], dtype=torch.long),
        "cu_seq_lens_q": boundaries,
        "cu_seq_lens_k": boundaries,
        "max_length_q": longest,
        "max_length_k": longest,
        REAL_TOKENS_KEY: torch.tensor(sum(lengths), dtype=torch.long),
        SAMPLE_LENGTHS_KEY: torch.tensor([sample_lengths], dtype=torch.long),
    }


def block_causal_mask(segments: "torch.Tensor", dtype: "torch.dtype") -> "torch.Tensor":
    """Additive (batch, 1, L, L) mask: a token sees earlier tokens of its own sample only.

    Padding positions (segment 0) see only themselves, so no softmax row is entirely masked
    (that would give NaN); their labels are ignored anyway.
    """
    import torch

    width = segments.shape[1]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    same_sample = segments[:, :, None] == segments[:, None, :]
    real = (segments > 0)[:, :, None]
    diagonal = torch.eye(width, dtype=torch.bool)[None]
    allowed = (same_sample & causal[None] & real) | diagonal
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None]
