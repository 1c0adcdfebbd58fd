"""Evaluation: metrics on held-out rows for the base, the tuned model and its checkpoints side by side,
teacher-forced loss on the same rows, and a multiple-choice forgetting check scored by log-likelihood.

Modules: `metrics` (per-answer scores), `intervals` (confidence intervals), `rows` (what is asked),
`loglik` (teacher-forced scoring), `knowledge` (the multiple-choice set), `plan` (models, rows and
options for one evaluation), `runner` (one evaluation end to end), `summary` (aggregates and the rows
that differ most), `report` (results.json, the Markdown report, the text tables), `deck` (the prompt
deck scored during training), `lm_eval_bridge` (the optional lm-evaluation-harness). Cheap to import:
torch and the metric libraries load inside the functions that use them.
"""
