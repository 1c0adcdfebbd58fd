"""Which attention kernel a run loads, and how its packed rows tell that kernel where samples end.

A packed row holds several samples that must not see each other. How that is said depends on the
kernel (transformers 5.23):

- flash_attention_2 (CUDA): no mask at all. The batch is flattened into one row and the sample
  boundaries travel as `cu_seq_lens_q/k` and `max_length_q/k` (what transformers'
  `DataCollatorWithFlattening(return_flash_attn_kwargs=True)` produces), so FlashAttention runs
  its variable-length kernel and never computes across samples.
- flex_attention (CUDA, chosen for a packed run that asks for sdpa on a GPU): no mask either; the
  restarted `position_ids` are enough, because transformers turns them into a block-sparse document
  mask (`masking_utils.find_packed_sequence_indices`) when the model gets no attention mask and no
  KV cache (the trainer turns the cache off).
- sdpa and eager (the CPU, or a run that asks for eager): a dense additive (batch, 1, L, L) mask in
  the compute dtype, built by `packing.block_causal_mask`. On a GPU that is what flex attention
  avoids: at 8k tokens the mask alone is 128 MiB per row in bf16, and sdpa's fused kernels do not
  take an arbitrary mask.

On the CPU, grouped-query attention (fewer key/value heads than query heads) goes to sdpa with its
heads grouped (`enable_gqa`) rather than repeated: see `cpu_training_environment`.

Cheap to import: nothing heavy is loaded.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workbench.config.hf_arguments import RunFacts
    from workbench.config.schema import RunConfig

VARLEN_IMPLEMENTATIONS = ("flash_attention_2",)
"""Kernels that read packed samples as variable-length sequences (cu_seq_lens kwargs, no mask)."""
DOCUMENT_MASK_IMPLEMENTATIONS = ("flex_attention",)
"""Kernels that get a block-sparse document mask from the restarted position_ids."""


def loaded_attention(requested: str, *, on_gpu: bool, packing: bool) -> str:
    """The `attn_implementation` the model is loaded with for the config's `model.attn_implementation`.

    A packed run on a GPU that asks for sdpa gets flex attention (PyTorch's kernel for document
    masks); everything else loads what was asked for.
    """
    if packing and on_gpu and requested == "sdpa":
        return "flex_attention"
    return requested


def run_attention(config: "RunConfig", facts: "RunFacts") -> str:
    """`loaded_attention` for a run: its config, and whether it trains on a GPU."""
    return loaded_attention(config.model.attn_implementation, on_gpu=facts.on_gpu, packing=config.data.packing)


def packed_rows_mode(implementation: str) -> str:
    """How packed rows mark their samples for a loaded kernel: "varlen", "document-mask" or "dense-mask"."""
    if implementation in VARLEN_IMPLEMENTATIONS:
        return "varlen"
    if implementation in DOCUMENT_MASK_IMPLEMENTATIONS:
        return "document-mask"
    return "dense-mask"


GROUPED_HEADS_SWITCH = "TRANSFORMERS_SDPA_FORCE_GQA"
"""transformers' switch: "1" hands grouped key/value heads to sdpa as they are, even with a mask."""


def cpu_training_environment() -> dict[str, str]:
    """The environment a CPU training run sets while it trains (none of it over the user's own).

    With an attention mask (a packed row's block mask always is one), transformers' sdpa path copies
    every key/value head once per query head that shares it (`repeat_kv`, and a sum in backward),
    because CUDA's fused kernels take no mask with grouped heads. PyTorch's CPU kernel takes both.
    Handing it the grouped heads, a quick-demo training step took 0.985x as long (median of 40
    step-interleaved pairs; 0.91x and 0.97x in two shorter runs), with the same loss and the
    adapters' gradients within 4.6e-4 of a largest 3.1e-2 (summation order in bf16); the copies
    are not kept for backward either (`bench/sdpa_gqa.py`, docs/benchmarks.md, fifth session).
    """
    return {} if GROUPED_HEADS_SWITCH in os.environ else {GROUPED_HEADS_SWITCH: "1"}
