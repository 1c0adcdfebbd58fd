"""An honest placeholder body for a pane whose features have not landed yet."""

from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Markdown


def pending_body(text: str) -> VerticalScroll:
    return VerticalScroll(Markdown(text), classes="pane-body pending-note")
