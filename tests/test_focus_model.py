"""The one focus model (screens/keys.py), driven with the Pilot on every pane: from every text box the
pane keys (Alt+1–5 as terminals send them) and F1 work and nothing is typed; Escape leaves a text box
and then the bare keys work; the footer shows only keys that work where the focus is; data-changing
keys of the Data pane do nothing outside the rows; Tab reaches every control."""

from pathlib import Path

import pytest
from textual.widgets import Button, Checkbox, DataTable, Input, OptionList, Select, TabbedContent, TextArea, Tree

from screens.app import PANE_SCREENS, make_app
from screens.keys import ESCAPE_DIGIT_CHARACTERS, is_text_entry
from widgets.data_table import RowTable

REPO = Path(__file__).resolve().parents[1]
MESSY = "tests/fixtures/data/messy.jsonl"
PANES = list(PANE_SCREENS)
MAX_TAB_WALK = 40
CONTROLS = (Input, TextArea, Select, Button, Checkbox, OptionList, DataTable, RowTable, Tree)


def tab_panes(screen) -> list[tuple[TabbedContent | None, str | None]]:
    """(tabbed content, tab id) for every tab of the pane, or [(None, None)] for an untabbed pane."""
    tabbed = list(screen.query(TabbedContent))
    if not tabbed:
        return [(None, None)]
    return [(tabbed[0], pane.id) for pane in tabbed[0].query("TabPane")]


async def show(pilot, tabbed, tab_id) -> None:
    if tabbed is not None and tabbed.active != tab_id:
        pilot.app.screen.set_focus(None)
        tabbed.active = tab_id
        await pilot.pause()


def text_boxes(screen) -> list:
    return [widget for widget in screen.query("Input, TextArea") if is_text_entry(widget) and widget.focusable]


def visible_controls(screen) -> list:
    return [
        widget for widget in screen.query("*")
        if isinstance(widget, CONTROLS) and widget.focusable and widget.region.area > 0
        and not isinstance(widget.parent, (Select,))  # the Select's own overlay list
    ]


def representative(boxes: list) -> list:
    """Every text box, except in the run-config form: its ~50 rows are one widget class each (a
    config field row's Input or TextArea), and each focus there costs a relayout of the whole form
    (about a second on a loaded 2-core machine), so the first and last of each kind stand for them."""
    rows = [box for box in boxes if "config-editor" in box.classes]
    if len(rows) < 6:
        return boxes
    kept = []
    for kind in (Input, TextArea):
        of_kind = [box for box in rows if type(box) is kind]
        kept += of_kind[:1] + of_kind[-1:]
    return [box for box in boxes if box not in rows] + kept


def box_text(widget) -> str:
    return widget.value if isinstance(widget, Input) else widget.text


@pytest.mark.parametrize("pane", PANES)
async def test_pane_keys_and_help_work_from_every_text_box_and_nothing_is_typed(pane, fixed_devices, tmp_path, monkeypatch):
    """Every text box of the pane (every tab): Alt+N as xterm/tmux send it (a character), Alt+N as
    kitty sends it, and F1 reach the app and type nothing; Escape leaves the box and then `?` and the
    bare digits work. The app's switch and help are recorded here rather than carried out for each
    box (the 50-field form re-lays itself out at every switch); one real switch ends the test."""
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane=pane)
    requested: list[str] = []
    other = "memory" if pane == "data" else "data"
    other_key = ESCAPE_DIGIT_CHARACTERS[PANES.index(other)]  # what Alt+N sends through tmux/xterm
    kitty_key = f"alt+{PANES.index('chat' if pane != 'chat' else 'train') + 1}"
    checked = 0
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        if pane == "chat":
            screen.query_one("#chat-input").disabled = False  # as once the base model has loaded
        real_switch = app.switch_mode
        monkeypatch.setattr(app, "switch_mode", lambda mode: requested.append(f"switch {mode}") or _done())
        monkeypatch.setattr(app, "show_help", lambda which: requested.append(f"help {which}"))
        monkeypatch.setattr(type(screen), "action_help", lambda self: requested.append("pane help"))
        for tabbed, tab_id in tab_panes(screen):
            await show(pilot, tabbed, tab_id)
            for box in representative(text_boxes(screen)):
                if box.region.area == 0:
                    continue  # in a collapsed part of the pane
                box.focus()
                await pilot.pause()
                before = box_text(box)
                requested.clear()
                await pilot.press(other_key, kitty_key, "f1", "escape", "question_mark", "1")
                await pilot.pause()
                assert box_text(box) == before, box
                assert requested[:3] == [f"switch {other}", f"switch {kitty_key and ('chat' if pane != 'chat' else 'train')}", f"help {pane}"], (box, requested)
                assert not is_text_entry(app.focused), (box, app.focused)
                assert requested[3:] == ["pane help"] + ([] if pane == "data" else ["switch data"]), (box, requested)
                checked += 1
        monkeypatch.setattr(app, "switch_mode", real_switch)
        app.screen.query_one(text_boxes(app.screen)[0].__class__).focus() if text_boxes(app.screen) else None
        await pilot.press(other_key)
        await pilot.pause()
        assert app.current_mode == other
    if pane in ("data", "memory", "hyperparameters"):
        assert checked >= 3  # the pane's path, search and form boxes were all tried
    if pane == "chat":
        assert checked == 1  # the message box


async def _done() -> None:
    """What the recorded switch_mode returns (it is awaited)."""


@pytest.mark.parametrize("pane", PANES)
async def test_the_footer_never_shows_a_letter_key_while_a_text_box_has_the_focus(pane, fixed_devices, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane=pane)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        boxes = text_boxes(screen)
        for box in boxes[:3]:
            if box.region.area == 0:
                continue
            box.focus()
            await pilot.pause()
            shown = {key for key, active in screen.active_bindings.items() if active.binding.show}
            assert not [key for key in shown if len(key) == 1], (box, shown)
            assert "f1" in shown and "escape" in shown


async def data_app(fixed_devices, monkeypatch):
    monkeypatch.chdir(REPO)
    return make_app(load_model=False, device_report=fixed_devices, initial_pane="data")


async def open_messy(pilot):
    screen = pilot.app.screen
    screen.open_path(MESSY)
    while screen.report is None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause(0.05)
    await pilot.pause()


async def test_data_changing_keys_do_nothing_outside_the_table(fixed_devices, monkeypatch):
    app = await data_app(fixed_devices, monkeypatch)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_messy(pilot)
        screen = app.screen
        rows = len(screen.session.conversations)
        for target in ("#data-format", "#data-open-button", "#data-flag", "#data-tabs Tabs"):
            screen.query_one(target).focus()
            await pilot.pause()
            await pilot.press("x", "k", "u")
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert len(screen.session.conversations) == rows, target
            assert screen.session.applied == [], target
        screen.show_tab("tab-clean")
        await pilot.pause()
        screen.query_one("#export-format").focus()
        await pilot.press("x", "u")
        await app.workers.wait_for_complete()
        assert len(screen.session.conversations) == rows
        # In the table, x drops the row and says how to undo it.
        screen.show_tab("tab-rows")
        await pilot.pause()
        assert isinstance(app.focused, RowTable)
        app.clear_notifications()
        await pilot.press("x")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(screen.session.conversations) == rows - 1
        said = [notification.message for notification in app._notifications]
        assert any("u undoes" in text and f"{rows - 1:,} rows now" in text for text in said), said
        await pilot.press("u")
        await pilot.pause()
        assert len(screen.session.conversations) == rows


async def test_escape_from_the_data_path_goes_to_the_rows(fixed_devices, monkeypatch):
    app = await data_app(fixed_devices, monkeypatch)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#data-path").focus()
        await pilot.press("escape")
        await pilot.pause()
        assert app.focused is app.screen.query_one("#data-table")


@pytest.mark.parametrize("pane", PANES)
async def test_tab_reaches_every_control(pane, fixed_devices, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(REPO / "tests" / "fixtures" / "runs"))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane=pane)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        if pane == "data":
            await open_messy(pilot)
        reached = set()
        screen.watch(screen, "focused", lambda widget: reached.add(widget), init=False)
        for tabbed, tab_id in tab_panes(screen):
            await show(pilot, tabbed, tab_id)
            if tabbed is not None:
                tabbed.query_one("Tabs").focus()
                await pilot.pause()
            wanted = {widget for widget in visible_controls(screen) if not widget.disabled}
            chain = screen.focus_chain
            assert not wanted - set(chain), (tab_id, sorted(str(widget) for widget in wanted - set(chain)))
            if len(chain) > MAX_TAB_WALK:
                continue  # the form: Tab walks the focus chain (checked above); 100 presses cost minutes here
            reached.clear()
            await pilot.press(*["tab"] * (len(chain) + 1))
            await pilot.pause()
            if tabbed is not None:
                assert tabbed.active == tab_id  # Tab stays in the tab it started in
            missing = wanted - reached
            assert not missing, (tab_id, sorted(str(widget) for widget in missing))
            if pane == "data" and tab_id == "tab-clean":
                assert screen.query_one("#clean-steps") in reached
