"""The Data pane."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import PaneScreen
from screens.pending import pending_body


class DataScreen(PaneScreen):
    PANE_ID = "data"
    PANE_TITLE = "Data"

    def compose_body(self) -> ComposeResult:
        yield pending_body(
            "## Data\n\n"
            "Not built yet. This pane will load Alpaca, ShareGPT and OpenAI-messages files, list their rows, find duplicates, contradictions and empty or over-long answers, clean them without touching the source file, and show each sample as the model sees it. "
            "Press **?** to read what this step of fine-tuning is about."
        )
