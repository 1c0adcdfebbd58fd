"""The training and evaluation samples of a run: loaded, split, templated and tokenized.

Tokenization goes through `render_training_example`, the same function the Data pane previews, so
the trainer learns exactly the tokens the user saw highlighted.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from workbench.errors import WorkbenchError
from workbench.training.packing import TokenizedSample

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workbench.config.schema import RunConfig
    from workbench.data.conversation import Conversation

Report = Callable[[str], None]


@dataclass
class PreparedData:
    """Tokenized samples ready for packing.

    Attributes:
        train / eval: the samples; eval is empty when the run has no validation data.
        skipped_without_target: samples dropped because no token was left to learn from (no assistant
            turn, or truncation cut every assistant token).
        truncated: samples cut to max_seq_length.
    """

    train: list[TokenizedSample]
    eval: list[TokenizedSample]
    skipped_without_target: int = 0
    truncated: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def train_tokens(self) -> int:
        return sum(len(sample) for sample in self.train)


def split_for_validation(
    conversations: Sequence["Conversation"], fraction: float, seed: int
) -> tuple[list["Conversation"], list["Conversation"]]:
    """Hold out ceil(fraction · n) rows, chosen by a seeded shuffle (the same split every run)."""
    if fraction <= 0 or len(conversations) < 2:
        return list(conversations), []
    held_out = min(len(conversations) - 1, math.ceil(len(conversations) * fraction))
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    chosen = set(order[:held_out])
    train = [c for i, c in enumerate(conversations) if i not in chosen]
    evaluation = [c for i, c in enumerate(conversations) if i in chosen]
    return train, evaluation


def tokenize_conversations(
    tokenizer: "PreTrainedTokenizerBase",
    conversations: Sequence["Conversation"],
    *,
    max_seq_length: int,
    assistant_only: bool,
    system_prompt: str | None,
) -> tuple[list[TokenizedSample], int, int]:
    """(samples, skipped without a trained token, truncated)."""
    from workbench.data.templating import render_training_example

    samples, skipped, truncated = [], 0, 0
    for conversation in conversations:
        example = render_training_example(
            tokenizer, conversation, max_seq_length, assistant_only=assistant_only, system_prompt=system_prompt
        )
        truncated += example.truncated
        # labels[0] is never a target (nothing precedes it), so a sample needs a trained token after it.
        if not any(label != -100 for label in example.labels[1:]):
            skipped += 1
            continue
        samples.append(TokenizedSample(example.input_ids, example.labels))
    return samples, skipped, truncated


def prepare_data(config: "RunConfig", tokenizer: "PreTrainedTokenizerBase", report: Report = print) -> PreparedData:
    """Load config.data's files, split off validation rows, and tokenize both sides."""
    from workbench.data.loading import load_conversations

    data = config.data
    if not data.train_file:
        raise WorkbenchError("data.train_file: no training data; set a .json, .jsonl, .csv or .parquet file")
    loaded = load_conversations(Path(data.train_file), data.format)
    report(f"data: {loaded.rows:,} rows from {loaded.path.name} ({loaded.format})")
    if data.validation_file:
        train_rows = loaded.conversations
        eval_rows = load_conversations(Path(data.validation_file), data.format).conversations
    else:
        train_rows, eval_rows = split_for_validation(loaded.conversations, data.validation_split, config.optimization.seed)

    options = {
        "max_seq_length": data.max_seq_length,
        "assistant_only": data.assistant_only_loss,
        "system_prompt": data.system_prompt,
    }
    train, skipped, truncated = tokenize_conversations(tokenizer, train_rows, **options)
    evaluation, eval_skipped, eval_truncated = tokenize_conversations(tokenizer, eval_rows, **options)
    prepared = PreparedData(train, evaluation, skipped + eval_skipped, truncated + eval_truncated)
    if not train:
        raise WorkbenchError(
            f"{data.train_file}: no sample has an assistant token left to train on "
            f"(max_seq_length {data.max_seq_length} may cut every answer off)"
        )
    if prepared.skipped_without_target:
        prepared.notes.append(
            f"{prepared.skipped_without_target} samples skipped: no assistant token to learn from within "
            f"max_seq_length {data.max_seq_length}"
        )
    if prepared.truncated:
        prepared.notes.append(f"{prepared.truncated} samples truncated to {data.max_seq_length} tokens")
    report(
        f"data: {len(train):,} training samples ({prepared.train_tokens:,} tokens), "
        f"{len(evaluation):,} validation samples"
    )
    for note in prepared.notes:
        report(f"data: {note}")
    return prepared
