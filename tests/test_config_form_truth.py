"""Forms that never lie: a field's error always matches the text it shows, and Ctrl+R starts from the
values as shown."""

from textual.widgets import Input

import screens.hyperparameters
from screens.app import make_app
from widgets.config_form import ConfigForm

BATCH = "optimization.per_device_train_batch_size"


def pane_app(fixed_devices):
    return make_app(load_model=False, device_report=fixed_devices, initial_pane="hyperparameters")


async def type_into(pilot, dotted: str, *keys: str) -> None:
    row = pilot.app.screen.query_one(ConfigForm).row(dotted)
    row.editor.focus()
    await pilot.pause()
    await pilot.press("ctrl+u", *keys)  # one burst, no pause between the keys
    await pilot.pause()


async def test_an_error_goes_when_the_field_shows_a_good_value_again(fixed_devices):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        row = screen.query_one(ConfigForm).row(BATCH)
        await type_into(pilot, BATCH)  # emptied: refused
        assert BATCH in screen.schema_errors and row.problem is not None
        # Any other change to the run config redraws the form from the store: the emptied field
        # shows the store's value again, so its error must go with the empty text.
        await type_into(pilot, "optimization.learning_rate", *"1e-4")
        assert row.editor_text() == str(app.config_store.config.optimization.per_device_train_batch_size)
        assert BATCH not in screen.schema_errors and row.problem is None


async def test_fast_typing_leaves_no_stale_error(fixed_devices):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        row = screen.query_one(ConfigForm).row(BATCH)
        await type_into(pilot, BATCH, "backspace", "4", "backspace", "backspace", "4")
        assert row.editor_text() == "4"
        assert BATCH not in screen.schema_errors and row.problem is None
        assert app.config_store.config.optimization.per_device_train_batch_size == 4


async def test_ctrl_r_checks_the_values_as_shown(fixed_devices, monkeypatch):
    started = []
    monkeypatch.setattr(screens.hyperparameters.HyperparametersScreen, "start_training", lambda self, config: started.append(config))
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        editor = screen.query_one(ConfigForm).row(BATCH).editor
        # A reason left over from text no longer there must not block the start ...
        screen.schema_errors[BATCH] = "expected a whole number, got ''"
        with editor.prevent(Input.Changed):
            editor.value = "6"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert BATCH not in screen.schema_errors
        assert [config.optimization.per_device_train_batch_size for config in started] == [6]
        # ... and a shown value the schema refuses stops it, naming the field.
        with editor.prevent(Input.Changed):
            editor.value = "x"
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert len(started) == 1
        assert "expected a whole number" in screen.schema_errors[BATCH]
        assert any(BATCH in notification.message for notification in app._notifications)
