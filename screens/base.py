"""PaneScreen: what every top-level pane shares (header, pane tabs, footer, `?` help)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from widgets.header import WorkbenchHeader
from widgets.pane_tabs import PaneTab, PaneTabs


class PaneScreen(Screen):
    """Base for the five panes. Subclasses set PANE_ID / PANE_TITLE and implement compose_body()."""

    PANE_ID: ClassVar[str] = ""
    PANE_TITLE: ClassVar[str] = ""
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("f1", "help", "Help", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield WorkbenchHeader()
        yield PaneTabs(self.PANE_ID)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def action_help(self) -> None:
        from screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self.PANE_ID))

    def on_pane_tab_chosen(self, message: PaneTab.Chosen) -> None:
        self.app.switch_mode(message.pane)
