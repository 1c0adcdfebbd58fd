"""The app shell: five panes by key and by mouse, help on each, usable at 80x24."""

import pytest

from pilot_support import wait_until
from screens.app import PANE_SCREENS, make_app

PANES = list(PANE_SCREENS)


@pytest.mark.parametrize("key,pane", [("1", "data"), ("2", "memory"), ("3", "hyperparameters"), ("4", "train"), ("5", "chat")])
async def test_number_keys_open_each_pane(key, pane, fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="chat" if pane == "data" else "data")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(key)
        await pilot.pause()
        assert app.current_mode == pane
        assert app.screen.PANE_ID == pane


@pytest.mark.parametrize("pane", PANES)
async def test_clicking_a_tab_opens_its_pane_and_help_explains_it(pane, fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="data" if pane != "data" else "chat")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.click(f"#tab-{pane}")
        await pilot.pause()
        assert app.current_mode == pane
        app.screen.action_help()
        await pilot.pause()
        from screens.help import HelpScreen, help_text

        assert isinstance(app.screen, HelpScreen)
        assert len(help_text(pane)) > 400
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen.PANE_ID == pane


async def test_question_mark_opens_help(fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"


async def test_every_tab_is_visible_at_80x24(fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for pane in PANES:
            tab = app.screen.query_one(f"#tab-{pane}")
            assert tab.region.right <= 80 and tab.region.width > 0


async def test_header_shows_model_ready_after_loading(tiny_model_dir, fixed_devices):
    app = make_app(model=str(tiny_model_dir), device_report=fixed_devices)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_until(pilot, lambda: app.model_status.state in ("ready", "error"), "the model to load")
        assert app.model_status.state == "ready"
        assert app.base_model is not None and app.tokenizer is not None
        header = str(app.screen.query_one("#header-model").render())
        assert "ready" in header and tiny_model_dir.name in header
        assert "CPU" in str(app.screen.query_one("#header-devices").render())


async def test_a_model_that_fails_to_load_shows_the_error(tmp_path, fixed_devices):
    app = make_app(model=str(tmp_path / "missing"), device_report=fixed_devices)
    async with app.run_test(size=(100, 24)) as pilot:
        await wait_until(pilot, lambda: app.model_status.state in ("ready", "error"), "the load to fail")
        assert app.model_status.state == "error"
        assert "no such directory" in app.model_status.detail


async def test_command_palette_can_switch_panes(fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Go to Memory")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "memory"
