"""PaneScreen: what every top-level pane shares (header, pane tabs, footer, `?` help, the focus model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

from screens.help import HelpScreen
from screens.keys import is_text_entry
from widgets.header import WorkbenchHeader
from widgets.pane_tabs import PaneTab, PaneTabs


@dataclass(frozen=True)
class PaletteEntry:
    """One command palette entry of a pane: its title, the screen action it runs, and a line of help."""

    title: str
    action: str
    help: str = ""


class PaneScreen(Screen):
    """Base for the five panes. Subclasses set PANE_ID / PANE_TITLE and implement compose_body().

    The focus model (screens/keys.py): Escape leaves a text box for `MAIN_FOCUS`.
    """

    PANE_ID: ClassVar[str] = ""
    PANE_TITLE: ClassVar[str] = ""
    MAIN_FOCUS: ClassVar[str] = ""
    """Selector of the widget Escape moves the focus to from a text box ("" for the first other control)."""
    PALETTE: ClassVar[tuple[PaletteEntry, ...] | None] = None
    """The pane's command palette entries; None derives them from the pane's own bindings."""
    BINDINGS = [
        Binding("question_mark", "help", "Help", key_display="?", show=False),
        Binding("escape", "leave_text_box", "Leave box", tooltip="Leave the text box: the pane's keys work again"),
    ]

    def compose(self) -> ComposeResult:
        yield WorkbenchHeader()
        yield PaneTabs(self.PANE_ID)
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.PANE_ID))

    def on_pane_tab_chosen(self, message: PaneTab.Chosen) -> None:
        self.app.switch_mode(message.pane)

    # ---- the focus model -------------------------------------------------------------------------

    @property
    def typing(self) -> bool:
        """Whether a text box has the focus (it takes printable keys as text)."""
        return is_text_entry(self.focused)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # (Bindings on printable keys need no check here: Textual leaves out of the binding chain,
        # and so out of the footer, every key the focused text box consumes.)
        if action == "leave_text_box":
            return self.typing
        return True

    def action_leave_text_box(self) -> None:
        self.focus_main()

    def focus_main(self) -> None:
        """Focus the pane's main widget (or the first control that is not a text box)."""
        target = None
        if self.MAIN_FOCUS:
            target = next(iter(self.query(self.MAIN_FOCUS)), None)
        if target is None or not target.focusable:
            target = next((widget for widget in self.focus_chain if not is_text_entry(widget)), None)
        self.set_focus(target)

    # ---- the command palette ---------------------------------------------------------------------

    @classmethod
    def palette_entries(cls) -> list[PaletteEntry]:
        """The pane's palette entries, each with an action this pane has."""
        if cls.PALETTE is not None:
            entries = list(cls.PALETTE)
        else:
            entries = []
            for binding in cls._merged_bindings.key_to_bindings.values() if cls._merged_bindings else ():
                for item in binding:
                    if item.action in ("help", "leave_text_box") or any(e.action == item.action for e in entries):
                        continue
                    entries.append(PaletteEntry(item.description or item.action, item.action, item.tooltip))
        return [entry for entry in entries if hasattr(cls, "action_" + entry.action.split("(", 1)[0])]

    @classmethod
    def key_for(cls, action: str) -> str:
        """The key bound to `action` in this pane, as the footer shows it ("" when none)."""
        for bindings in cls._merged_bindings.key_to_bindings.values() if cls._merged_bindings else ():
            for item in bindings:
                if item.action == action:
                    return item.key_display or item.key
        return ""
