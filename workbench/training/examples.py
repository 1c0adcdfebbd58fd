"""The training and evaluation samples of a run: loaded, split, templated and tokenized.

Tokenization goes through `render_training_example`, the same function the Data pane previews, so
the trainer learns exactly the tokens the user saw highlighted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from workbench.data.mixture import load_mixture
from workbench.data.row_bounds import capped_for_training
from workbench.data.templating import TrainingExample, render_training_example
from workbench.errors import WorkbenchError

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
        sources: per training source, its counts (workbench.data.mixture.SourceRows.summary) and the
            training samples and tokens it gives.
    """

    train: list[TrainingExample]
    eval: list[TrainingExample]
    skipped_without_target: int = 0
    truncated: int = 0
    notes: list[str] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)

    @property
    def train_tokens(self) -> int:
        return sum(len(sample) for sample in self.train)


def tokenize_conversations(
    tokenizer: "PreTrainedTokenizerBase",
    conversations: Sequence["Conversation"],
    *,
    max_seq_length: int,
    assistant_only: bool,
    system_prompt: str | None,
) -> tuple[list[TrainingExample], int, int]:
    """(samples, skipped without a trained token, truncated)."""
    samples, skipped, truncated = [], 0, 0
    for conversation in conversations:
        conversation = capped_for_training(conversation, max_seq_length)  # a 50 MB row: its first tokens only
        example = render_training_example(
            tokenizer, conversation, max_seq_length, assistant_only=assistant_only, system_prompt=system_prompt,
            with_text=False,
        )
        truncated += example.truncated
        # labels[0] is never a target (nothing precedes it), so a sample needs a trained token after it.
        if not any(label != -100 for label in example.labels[1:]):
            skipped += 1
            continue
        samples.append(example)
    return samples, skipped, truncated


def _interleave(order: Sequence[str | None], by_source: dict[str | None, list[TrainingExample]]) -> list[TrainingExample]:
    """Samples tokenized per source, put back in the mix's order (skipped rows leave no gap)."""
    queues = {name: iter(samples) for name, samples in by_source.items()}
    placed = [next(queues[name], None) for name in order]
    return [sample for sample in placed if sample is not None]


def prepare_data(config: "RunConfig", tokenizer: "PreTrainedTokenizerBase", report: Report = print) -> PreparedData:
    """Load config.data's sources, split off validation rows, mix by weight, and tokenize both sides."""
    data = config.data
    mixture = load_mixture(data, config.optimization.seed)
    for source in mixture.sources:
        report(f"data: {source.loaded.rows:,} rows from {source.loaded.path.name} ({source.loaded.format})")
        for warning in source.loaded.warnings:
            report(f"data: {warning}")
    if len(mixture.sources) > 1:
        report(f"data: mixture ({mixture.strategy}):")
        for line in mixture.describe().splitlines():
            report(f"data:   {line}")

    options = {
        "max_seq_length": data.max_seq_length,
        "assistant_only": data.assistant_only_loss,
        "system_prompt": data.system_prompt,
    }
    skipped = truncated = 0
    by_source: dict[str | None, list[TrainingExample]] = {}
    summaries = []
    for source in mixture.sources:
        rows = [row for row in mixture.train if row.source == source.spec.name]
        samples, source_skipped, source_truncated = tokenize_conversations(tokenizer, rows, **options)
        by_source[source.spec.name] = samples
        skipped, truncated = skipped + source_skipped, truncated + source_truncated
        summaries.append({**source.summary(), "train_samples": len(samples), "train_tokens": sum(map(len, samples))})
    train = _interleave([row.source for row in mixture.train], by_source)
    evaluation, eval_skipped, eval_truncated = tokenize_conversations(tokenizer, mixture.eval, **options)
    prepared = PreparedData(train, evaluation, skipped + eval_skipped, truncated + eval_truncated, sources=summaries)
    if not train:
        where = data.train_file or "data.sources"
        raise WorkbenchError(
            f"{where}: no sample has an assistant token left to train on "
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
    if len(summaries) > 1:
        report("data: per source: " + ", ".join(
            f"{summary['name']} {summary['train_samples']:,} samples / {summary['train_tokens']:,} tokens"
            for summary in summaries
        ))
    for note in prepared.notes:
        report(f"data: {note}")
    return prepared
