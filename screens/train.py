"""The Train pane."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import PaneScreen
from screens.pending import pending_body


class TrainScreen(PaneScreen):
    PANE_ID = "train"
    PANE_TITLE = "Train"

    def compose_body(self) -> ComposeResult:
        yield pending_body(
            "## Train\n\n"
            "Not built yet. This pane will start training in its own process and show the loss curves, speed, memory and time left. "
            "Press **?** to read what this step of fine-tuning is about."
        )
