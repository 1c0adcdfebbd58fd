"""Clickable pane tabs: the mouse way between the five panes (keys 1-5 are the keyboard way)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static

PANES = (
    ("data", "1 Data"),
    ("memory", "2 Memory"),
    ("hyperparameters", "3 Hyperparameters"),
    ("train", "4 Train"),
    ("chat", "5 Chat"),
)


class PaneTab(Static):
    @dataclass
    class Chosen(Message):
        pane: str

    def __init__(self, pane: str, label: str, active: bool) -> None:
        super().__init__(label, id=f"tab-{pane}", classes="pane-tab -active" if active else "pane-tab")
        self.pane = pane

    def on_click(self) -> None:
        self.post_message(self.Chosen(self.pane))


class PaneTabs(Horizontal):
    def __init__(self, active: str) -> None:
        super().__init__(id="pane-tabs")
        self.active = active

    def compose(self) -> ComposeResult:
        for pane, label in PANES:
            yield PaneTab(pane, label, pane == self.active)
