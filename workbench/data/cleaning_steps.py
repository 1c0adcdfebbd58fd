"""The Data pane's cleaning steps: one table of step id -> label and operation, which the pane's
step list, its command palette and the demo's cleaning (headless and the guided tour) all read."""

from __future__ import annotations

from workbench.data.cleaning import Operation

STEP_LABELS = {
    "strip_markup": "Strip markup, broken characters, stray spaces",
    "drop_empty": "Drop rows with an empty answer",
    "dedupe_exact": "Drop exact duplicates (keep the first)",
    "dedupe_near": "Drop near duplicates (keep the first)",
    "conflicts_keep_first": "Conflicts: keep the first answer",
    "conflicts_drop": "Conflicts: drop every conflicting row",
    "drop_too_long": "Drop rows longer than max_seq_length",
    "truncate_too_long": "Cut long rows to the exchanges that fit",
    "filter_keep": "Keep only rows matching the search",
    "filter_drop": "Drop rows matching the search",
    "split_validation": "Hold out a validation share",
}
"""Step id -> the label the step list shows, in the list's order."""

FIXED_OPERATIONS = {
    "strip_markup": Operation("strip_markup"),
    "drop_empty": Operation("drop_empty"),
    "dedupe_exact": Operation("dedupe", {"mode": "exact"}),
    "dedupe_near": Operation("dedupe", {"mode": "near"}),
    "conflicts_keep_first": Operation("resolve_conflicts", {"mode": "keep-first"}),
    "conflicts_drop": Operation("resolve_conflicts", {"mode": "drop"}),
    "drop_too_long": Operation("drop_too_long"),
    "truncate_too_long": Operation("truncate_too_long"),
}
"""The steps that take no setting from the pane (the filters take the search, the split its share and seed)."""


def operation_for(step: str, *, query: str = "", fraction: float = 0.1, seed: int = 0) -> Operation | None:
    """The Operation behind a step of the list (None when it needs a search and there is none)."""
    if step in FIXED_OPERATIONS:
        return FIXED_OPERATIONS[step]
    if step == "split_validation":
        return Operation("split_validation", {"fraction": fraction, "seed": seed})
    if step not in ("filter_keep", "filter_drop"):
        raise KeyError(f"unknown cleaning step {step!r}")
    if not query:
        return None
    return Operation("filter", {"query": query, "action": "keep" if step == "filter_keep" else "drop"})
