"""The Hyperparameters pane."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import PaneScreen
from screens.pending import pending_body


class HyperparametersScreen(PaneScreen):
    PANE_ID = "hyperparameters"
    PANE_TITLE = "Hyperparameters"

    def compose_body(self) -> ComposeResult:
        yield pending_body(
            "## Hyperparameters\n\n"
            "Not built yet. This pane will edit the run config: model, data, LoRA/QLoRA/full, learning rate, batch size, evaluation, with presets and validation. "
            "Press **?** to read what this step of fine-tuning is about."
        )
