"""Training data from several sources, mixed by weight: the config's `data.sources` (or the one
`data.train_file`), each loaded with its own format and columns, split into train and validation
rows, and sampled into one training mix.

Weights are shares of the mix (normalized). `interleave_under` makes the largest mix in which no
source repeats a row: total = min(rows_i / share_i); `interleave_over` the smallest in which every
row appears: total = max(rows_i / share_i), smaller sources repeating. Each source then gives
exactly round(total · share_i) rows (largest remainders, so the counts add up), drawn by a seeded
shuffle, and the mix is shuffled with the same seed.

Why quotas and not `datasets.interleave_datasets(probabilities=...)`: that draws every next row's
source at random, so the counts only approach the weights. Measured here on 91 + 1,000 rows with
weights 0.3/0.7 and first_exhausted, seeds 0, 1 and 2 gave 261, 194 and 171 rows of the larger
source where 0.3/0.7 asks for 212 (the small source's share ranged 26–35%); with all_exhausted the
small source was drawn 405–435 times for 1,000. Quotas give the shares asked for, state the
per-source counts before training, and the same seed gives the same rows.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from workbench.config.schema import DataSource
from workbench.data.loading import load_conversations
from workbench.data.token_lengths import TokenCounter
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config.schema import DataSection
    from workbench.data.conversation import Conversation
    from workbench.data.loading import LoadedData

Progress = Callable[[str, float | None], None]
MIX_STRATEGIES = ("interleave_under", "interleave_over")


@dataclass(frozen=True)
class SourceSpec:
    """One training source as the config gives it.

    Attributes:
        name: the short name shown in reports and events.
        field: where it is set in the config ("data.train_file", "data.sources[1]"), for errors.
        path: the data (a file, a save_to_disk directory, a cached id or dataset_info.json#entry).
        format / columns / split / subset: how to read it.
        weight: its weight in the mix (None: every row once).
        validation_file: its own validation data; validation_split: the share held out otherwise.
    """

    name: str
    field: str
    path: str
    format: str = "auto"
    columns: dict[str, Any] | None = None
    split: str | None = None
    subset: str | None = None
    weight: float | None = None
    validation_file: str | None = None
    validation_split: float = 0.0


def source_specs(data: "DataSection") -> list[SourceSpec]:
    """The sources a config's data section trains on (one for `train_file`, none when unset)."""
    def columns_of(model) -> dict[str, Any] | None:
        return model.model_dump(exclude_none=True) if model is not None else None

    if data.sources:
        return [
            SourceSpec(
                name=source.display_name,
                field=f"data.sources[{position}]",
                path=source.path,
                format=source.format,
                columns=columns_of(source.columns),
                split=source.split,
                subset=source.subset,
                weight=source.weight,
                validation_file=source.validation_file,
                validation_split=(
                    0.0 if data.validation_file and source.validation_split is None
                    else source.validation_split if source.validation_split is not None else data.validation_split
                ),
            )
            for position, source in enumerate(data.sources)
        ]
    if not data.train_file:
        return []
    return [
        SourceSpec(
            name=DataSource(path=data.train_file).display_name,
            field="data.train_file",
            path=data.train_file,
            format=data.format,
            columns=columns_of(data.columns),
            validation_file=data.validation_file,
            validation_split=0.0 if data.validation_file else data.validation_split,
        )
    ]


@dataclass
class SourceRows:
    """One source, loaded and split, with what the mix took from it.

    Attributes:
        spec: the source.
        loaded: all its rows as read.
        train / eval: its rows after the validation split (eval from its own validation file, if any).
        sampled: how many rows of `train` the training mix holds (repeats counted).
        share: its weight as a share of the mix (None without weights).
    """

    spec: SourceSpec
    loaded: "LoadedData"
    train: list["Conversation"]
    eval: list["Conversation"]
    sampled: int = 0
    share: float | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts (the run's `start` event lists one per source)."""
        return {
            "name": self.spec.name,
            "path": str(self.loaded.path),
            "format": self.loaded.format,
            "rows": self.loaded.rows,
            "train_rows": len(self.train),
            "eval_rows": len(self.eval),
            "sampled_rows": self.sampled,
            "share": round(self.share, 4) if self.share is not None else None,
        }


@dataclass
class Mixture:
    """The training mix and the validation rows of every source.

    Attributes:
        sources: each source with its counts.
        train: the mixed training rows (each Conversation's `source` names its source).
        eval: every source's validation rows, plus the shared validation file's.
        strategy: "concat" without weights, else the mix strategy.
    """

    sources: list[SourceRows]
    train: list["Conversation"]
    eval: list["Conversation"]
    strategy: str

    def describe(self, tokens: dict[str, int] | None = None) -> str:
        """One line per source: 'name: 91 rows (alpaca), 82 train → 82 in the mix (30%), 9 validation',
        with ', 4,321 tokens' when `tokens` (per source name, from source_tokens) is given."""
        lines = []
        for source in self.sources:
            share = f" ({source.share:.0%})" if source.share is not None else ""
            counted = f", {tokens[source.spec.name]:,} tokens" if tokens and source.spec.name in tokens else ""
            lines.append(
                f"{source.spec.name}: {source.loaded.rows:,} rows ({source.loaded.format}), "
                f"{len(source.train):,} train → {source.sampled:,} in the mix{share}{counted}, {len(source.eval):,} validation"
            )
        return "\n".join(lines)

    def source_tokens(self, tokenizer, system_prompt: str | None = None) -> dict[str, int]:
        """Templated tokens each source puts into the training mix (repeats counted), per source name."""
        counter = TokenCounter(tokenizer, system_prompt)
        return {
            source.spec.name: int(counter.lengths([row for row in self.train if row.source == source.spec.name]).total.sum())
            for source in self.sources
        }


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


def mix_counts(available: Sequence[int], weights: Sequence[float], strategy: str) -> list[int]:
    """Rows to take from each source so the mix follows the weights (see the module docstring)."""
    if strategy not in MIX_STRATEGIES:
        raise WorkbenchError(f"data.mix_strategy: {strategy!r}; expected one of {', '.join(MIX_STRATEGIES)}")
    shares = [weight / sum(weights) for weight in weights]
    sizes = [rows / share for rows, share in zip(available, shares)]
    total = min(sizes) if strategy == "interleave_under" else max(sizes)
    exact = [total * share for share in shares]
    counts = [math.floor(value) for value in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: exact[i] - counts[i], reverse=True)
    for position in by_remainder[: round(total) - sum(counts)]:
        counts[position] += 1
    if strategy == "interleave_under":
        return [min(count, rows) for count, rows in zip(counts, available)]
    return [max(count, rows) for count, rows in zip(counts, available)]


def _sample(rows: Sequence["Conversation"], count: int, rng: random.Random) -> list["Conversation"]:
    """`count` rows: whole shuffled passes, then the start of one more (no row twice before all once)."""
    taken: list["Conversation"] = []
    while len(taken) < count:
        order = list(rows)
        rng.shuffle(order)
        taken += order[: count - len(taken)]
    return taken


def _load_source(spec: SourceSpec, seed: int, progress: Progress | None, base_dir) -> SourceRows:
    import dataclasses

    def load(path: str) -> "LoadedData":
        return load_conversations(
            path, spec.format, progress, columns=spec.columns, split=spec.split, subset=spec.subset,
            source_name=spec.name, base_dir=base_dir,
        )

    loaded = load(spec.path)
    if spec.validation_file:
        train = loaded.conversations
        evaluation = [dataclasses.replace(c, source=spec.name) for c in load(spec.validation_file).conversations]
    else:
        train, evaluation = split_for_validation(loaded.conversations, spec.validation_split, seed)
    return SourceRows(spec, loaded, train, evaluation)


def load_mixture(data: "DataSection", seed: int, progress: Progress | None = None, base_dir=None) -> Mixture:
    """Load every source of `data`, split each, and sample the training mix.

    Raises:
        WorkbenchError: no training data, or a source that cannot be read (the line names it).
    """
    specs = source_specs(data)
    if not specs:
        raise WorkbenchError("data.train_file: no training data; set a data file, or several in data.sources")
    sources = [_load_source(spec, seed, progress, base_dir) for spec in specs]
    shared_eval: list["Conversation"] = []
    if data.sources and data.validation_file:
        shared_eval = load_conversations(
            data.validation_file, data.format, progress, columns=data.columns.model_dump(exclude_none=True) if data.columns else None,
            base_dir=base_dir,
        ).conversations
    evaluation = [row for source in sources for row in source.eval] + shared_eval

    weights = [spec.weight for spec in specs]
    if all(weight is None for weight in weights):
        for source in sources:
            source.sampled = len(source.train)
        train = [row for source in sources for row in source.train]
        return Mixture(sources, train, evaluation, "concat")
    empty = [source.spec for source in sources if not source.train]
    if empty:
        raise WorkbenchError(f"{empty[0].field}: {empty[0].name} has no training rows left after the validation split")
    counts = mix_counts([len(source.train) for source in sources], weights, data.mix_strategy)
    rng = random.Random(seed)
    train = []
    for source, count, weight in zip(sources, counts, weights):
        source.sampled, source.share = count, weight / sum(weights)
        train += _sample(source.train, count, rng)
    rng.shuffle(train)
    return Mixture(sources, train, evaluation, data.mix_strategy)
