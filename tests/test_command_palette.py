"""The command palette lists every pane's actions (open, search, clean, export, start/stop/resume
training, new chat, blind mode, save config, …) and runs each one on its pane."""

import pytest
from textual.command import CommandPalette

from screens.app import PANE_SCREENS, PaneCommands, make_app, pane_screen_class

PANES = list(PANE_SCREENS)


async def palette_hits(app, query: str) -> list:
    provider = PaneCommands(app.screen)
    await provider.startup()
    return sorted([hit async for hit in provider.search(query)], key=lambda hit: -hit.score)


def action_name(action: str) -> str:
    return action.split("(", 1)[0]


@pytest.mark.parametrize("pane", PANES)
async def test_the_palette_runs_each_action_of_the_pane(pane, fixed_devices, monkeypatch, tmp_path):
    """Each entry, found by its title (the first from another pane), switches to its pane and calls its
    action with its arguments (the action itself is recorded, not run: its own tests cover what it does)."""
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path / "runs"))
    screen_class = pane_screen_class(pane)
    entries = screen_class.palette_entries()
    assert entries, pane
    calls = []
    for name in {action_name(entry.action) for entry in entries}:
        monkeypatch.setattr(screen_class, f"action_{name}", lambda self, *args, name=name: calls.append((name, args)))
    start = "chat" if pane != "chat" else "data"
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane=start)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        title = {"data": "Data", "memory": "Memory", "hyperparameters": "Hyperparameters", "train": "Train", "chat": "Chat"}[pane]
        for entry in entries:
            hits = await palette_hits(app, f"{title}: {entry.title}")
            assert hits, entry
            calls.clear()
            await hits[0].command()
            await pilot.pause()
            assert app.current_mode == pane, entry
            from textual.actions import parse

            _, name, args = parse(entry.action)
            assert calls == [(name, args)], (entry, calls)


@pytest.mark.parametrize(
    "query,expected",
    [
        ("clean", "Data: Clean: Drop exact duplicates (keep the first)"),
        ("export", "Data: Export the cleaned rows"),
        ("start training", "Hyperparameters: Start training"),
        ("save config", "Hyperparameters: Save config"),
        ("stop", "Train: Stop the run"),
        ("resume", "Train: Resume the run"),
        ("what-if", "Memory: Apply the what-if to the run config"),
        ("new chat", "Chat: New chat"),
        ("blind", "Chat: Blind A/B mode on or off"),
        ("search", "Data: Search rows"),
        ("open", "Data: Open a data file…"),
    ],
)
async def test_the_words_people_type_find_the_actions(query, expected, fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices)
    async with app.run_test(size=(80, 24)):
        titles = [str(hit.text) for hit in await palette_hits(app, query)]
        assert expected in titles, titles


async def test_typing_in_the_palette_runs_a_clean_step_on_the_data_pane(fixed_devices, monkeypatch):
    """Through the real palette (ctrl+p, type, Enter), from the Train pane."""
    from screens.data import DataScreen

    applied = []
    monkeypatch.setattr(DataScreen, "action_apply_step", lambda self, step: applied.append(step))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Clean: Strip markup")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.current_mode == "data"
        assert applied == ["strip_markup"]
