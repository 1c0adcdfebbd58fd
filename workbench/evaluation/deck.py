"""The prompt deck scored during training: each deck answer checked against its expected answers.

`evaluation.deck_expected` holds one line per deck prompt, in deck order: the accepted answers
separated by "|" ("Sage | Northwind"), or "-" (or nothing) for a prompt that is not scored. An
answer is a hit when it contains one accepted answer (the `contains` metric of workbench eval:
normalized, whole words), so the monitor's "deck hits" is the same figure eval reports.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from workbench.errors import WorkbenchError
from workbench.evaluation.metrics import contains

NOT_SCORED = "-"


def deck_expectations(prompts: Sequence[str], lines: Sequence[str]) -> list[Optional[tuple[str, ...]]]:
    """Accepted answers per deck prompt (None: not scored); one-line error when there are more lines than prompts."""
    if len(lines) > len(prompts):
        raise WorkbenchError(
            f"evaluation.deck_expected: {len(lines)} lines for {len(prompts)} deck prompts; "
            f"write one line per prompt, in deck order ('{NOT_SCORED}' for a prompt not scored)"
        )
    expectations: list[Optional[tuple[str, ...]]] = []
    for index in range(len(prompts)):
        line = lines[index].strip() if index < len(lines) else ""
        accepted = tuple(part.strip() for part in line.split("|") if part.strip()) if line != NOT_SCORED else ()
        expectations.append(accepted or None)
    return expectations


def score_deck(samples: list[dict[str, Any]], expectations: Sequence[Optional[tuple[str, ...]]]) -> dict[str, Any]:
    """Mark each sample {prompt, completion} with `expected` and `hit` (scored prompts only), in place;
    returns {"deck_hits", "deck_scored"} for the samples event."""
    hits = scored = 0
    for sample, accepted in zip(samples, expectations):
        if accepted is None:
            continue
        hit = contains(sample.get("completion", ""), accepted) == 1.0
        sample["expected"] = list(accepted)
        sample["hit"] = hit
        scored += 1
        hits += hit
    return {"deck_hits": hits, "deck_scored": scored}
