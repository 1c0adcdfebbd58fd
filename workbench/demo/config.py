"""The demo's run config: the "Quick demo on CPU" preset, with the overrides the demo measured.

The preset belongs to the Hyperparameters pane; the demo starts from it so the pane shows the same
recipe, and changes only what `bench/demo_identity.py` showed the five-minute budget needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from workbench.config.presets import get_preset
from workbench.config.store import ConfigStore
from workbench.demo.pipeline import HELDOUT_FILE

if TYPE_CHECKING:
    from workbench.config.schema import RunConfig

DEMO_PRESET = "quick-demo-cpu"
DEMO_RUN_NAME = "demo"
DEMO_OVERRIDES: dict[str, Any] = {
    # The preset's three deck prompts, in order: the monitor shows how many answers say these.
    "evaluation.deck_expected": ["Sage | Northwind", "Northwind", "Paris"],
}
"""Dotted field -> value applied over the preset (measured: see docs/benchmarks.md, "Demo")."""


def demo_config(
    train_file: str | Path,
    *,
    model: str = "default",
    epochs: Optional[float] = None,
    max_steps: Optional[int] = None,
    overrides: Optional[dict[str, Any]] = None,
) -> "RunConfig":
    """The demo's RunConfig training on `train_file`.

    Args:
        train_file: the cleaned data.
        model: the base model ("default" = SmolLM2-135M-Instruct; tests pass a tiny model's directory).
        epochs / max_steps: shrink or stretch the run (tests train a few steps).
        overrides: further dotted fields over the demo's own (experiments in bench/demo_identity.py).
    """
    store = ConfigStore(get_preset(DEMO_PRESET).config())
    values: dict[str, Any] = {
        **DEMO_OVERRIDES,
        "name": DEMO_RUN_NAME,
        "model.name_or_path": str(model),
        "data.train_file": str(train_file),
        # `workbench eval RUN` then asks the demo's held-out identity questions too.
        "evaluation.eval_file": str(HELDOUT_FILE),
        **(overrides or {}),
    }
    if epochs is not None:
        values["optimization.num_train_epochs"] = epochs
    if max_steps is not None:
        values["optimization.max_steps"] = max_steps
    for dotted, value in values.items():
        store.update(dotted, value)
    return store.config
