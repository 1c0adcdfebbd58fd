"""The app's one focus model: which keys work where, in one place.

- Pane switching and help work from any widget: F1 and Alt+1–5 are App-level priority bindings, so a
  text box cannot swallow them. Bare `1`–`5` and `?` work wherever no text box has the focus.
- Escape leaves a text box; the focus goes to the pane's main widget, where the pane's letter keys work.
- A binding on a printable key does nothing (and is out of the footer) while a text box has the focus:
  Textual leaves out of the binding chain every key the focused widget consumes.

What terminals send, checked with a key logger under tmux 3 (xterm keys): F1 arrives as `f1`; Alt+1
arrives as ESC 1, which Textual reads as the character `¡` (its table also maps macOS Option+1 to
`¡`), Alt+2 as `™`, Alt+3 as `£`, Alt+4 as `¢`, Alt+5 as `∞`; terminals with the kitty keyboard
protocol send `alt+1` and `ctrl+1`; tmux sends nothing for Ctrl+1. So the pane keys bind all three
names, and those five characters cannot be typed into a text box.
"""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Input, TextArea

from widgets.pane_tabs import PANES

ESCAPE_DIGIT_CHARACTERS = ("¡", "™", "£", "¢", "∞")
"""What Textual reads for Alt+1..Alt+5 when a terminal sends Alt as an ESC prefix (xterm, tmux)."""
ESCAPE_DIGIT_KEYS = ("inverted_exclamation_mark", "trade_mark_sign", "pound_sign", "cent_sign", "infinity")
"""The same characters as Textual names their keys (what a binding matches)."""

def pane_keys(position: int) -> str:
    """The priority keys that switch to the pane at `position` (0-based) from anywhere."""
    digit = str(position + 1)
    return f"alt+{digit},ctrl+{digit}"


PANE_KEY_BINDINGS = tuple((pane, pane_keys(position)) for position, (pane, _label) in enumerate(PANES))
PANE_BY_ESCAPE_DIGIT_KEY = {key: pane for key, (pane, _label) in zip(ESCAPE_DIGIT_KEYS, PANES)}
"""Alt+1..5 as xterm and tmux send them: printable characters, which a focused text box would take
before any binding (Textual leaves keys a widget consumes out of the binding chain), so the app
reads them from its key events first (WorkbenchApp.on_event)."""


def is_text_entry(widget: Widget | None) -> bool:
    """Whether `widget` takes printable keys as text (an editable Input or TextArea)."""
    if isinstance(widget, Input):
        return not widget.disabled
    if isinstance(widget, TextArea):
        return not widget.read_only and not widget.disabled
    return False


GLOBAL_KEYS_HELP = (
    "**Keys everywhere:** `F1` help and `Alt+1`–`Alt+5` switch panes from any widget, even a text box "
    "(`Ctrl+1`–`5` too where the terminal sends them); `1`–`5` and `?` do the same when no text box has "
    "the focus · `Esc` leaves a text box (the pane's keys then work; the footer shows the keys that work "
    "where the focus is) · `Tab` / `Shift+Tab` reach every control · `ctrl+p` command palette: every "
    "action of every pane · `ctrl+q` quit."
)
"""Appended to every pane's help page (screens/help.py), so the pages cannot disagree."""
