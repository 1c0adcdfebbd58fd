"""The Hyperparameters pane, driven with the Pilot: edits reach the shared store (and its
subscribers), refused values stay out of it, presets apply, save/load round-trips, checks mark
fields, and "Start training" validates before it hands the config to the runner."""

from pathlib import Path

import pytest

from screens.app import make_app
from widgets.config_form import ConfigForm
from workbench.config.io import load_config
from workbench.config.presets import get_preset

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "identity_alpaca.json"


async def settle(pilot) -> None:
    """Let the debounced environment checks run and their result arrive."""
    await pilot.pause(0.4)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def type_into(pilot, dotted: str, text: str) -> None:
    row = pilot.app.screen.query_one(ConfigForm).row(dotted)
    row.editor.focus()
    await pilot.pause()
    await pilot.press("ctrl+u", *text)
    await pilot.pause()


async def paste_into(pilot, dotted: str, text: str) -> None:
    """Set an Input's text in one change (like a paste), for long paths."""
    row = pilot.app.screen.query_one(ConfigForm).row(dotted)
    row.editor.focus()
    row.editor.value = text
    await pilot.pause()


def pane_app(fixed_devices, **kwargs):
    return make_app(load_model=False, device_report=fixed_devices, initial_pane="hyperparameters", **kwargs)


async def test_editing_a_field_updates_the_store_and_its_subscribers(fixed_devices):
    app = pane_app(fixed_devices)
    seen = []
    app.config_store.subscribe(lambda config: seen.append(config.optimization.learning_rate))
    async with app.run_test(size=(80, 24)) as pilot:
        await type_into(pilot, "optimization.learning_rate", "5e-5")
        assert app.config_store.config.optimization.learning_rate == 5e-5
        assert seen[-1] == 5e-5  # the Memory pane subscribes the same way
        await type_into(pilot, "optimization.per_device_train_batch_size", "8")
        assert app.config_store.config.optimization.per_device_train_batch_size == 8
        assert "effective batch 8" in str(app.screen.query_one("#config-status").render())


@pytest.mark.parametrize(
    "dotted,text,words",
    [
        ("optimization.learning_rate", "0", "greater than 0"),
        ("optimization.learning_rate", "fast", "expected a number"),
        ("optimization.per_device_train_batch_size", "0", "greater than 0"),
    ],
)
async def test_an_invalid_value_shows_an_inline_error_and_leaves_the_store_alone(fixed_devices, dotted, text, words):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        before = app.config_store.config
        await type_into(pilot, dotted, text)
        row = app.screen.query_one(ConfigForm).row(dotted)
        assert row.problem is not None and row.problem[0] == "error" and words in row.problem[1]
        assert row.has_class("-error")
        assert words in str(row.query_one(".config-field-problem").render())
        assert app.config_store.config == before
        assert words in str(app.screen.query_one("#field-help").render())


async def test_a_check_problem_is_shown_beside_its_field(fixed_devices, tmp_path):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        await paste_into(pilot, "data.train_file", str(tmp_path / "missing.json"))
        await settle(pilot)
        row = app.screen.query_one(ConfigForm).row("data.train_file")
        assert row.problem[0] == "error" and "no such file" in row.problem[1]
        await paste_into(pilot, "data.train_file", str(SAMPLE))
        await settle(pilot)
        assert row.problem is None
        assert "✓ ready" in str(app.screen.query_one("#config-status").render())


async def test_applying_a_preset_from_the_presets_tab(fixed_devices):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        await pilot.pause()
        await pilot.press("down", "down", "down")  # Full fine-tune
        await pilot.pause()
        assert "2e-05" in str(app.screen.query_one("#preset-details").render())
        await pilot.press("enter")
        await pilot.pause()
        assert app.config_store.config == get_preset("full-finetune").config()
        assert app.screen.query_one("#hp-tabs").active == "hp-form-tab"
        row = app.screen.query_one(ConfigForm).row("optimization.learning_rate")
        assert row.editor_text() == "2e-05"


async def test_save_then_load_round_trips(fixed_devices, tmp_path):
    app = pane_app(fixed_devices)
    target = tmp_path / "mine.yaml"
    async with app.run_test(size=(80, 24)) as pilot:
        await type_into(pilot, "method.r", "32")
        await pilot.press("ctrl+s")  # no file yet: asks for a path
        await pilot.pause()
        dialog_input = app.screen.query_one("#picker-path")
        dialog_input.value = str(target)
        await pilot.press("enter")
        await pilot.pause()
        assert load_config(target) == app.config_store.config
        assert app.config_store.path == target
        saved = app.config_store.config

        await type_into(pilot, "method.r", "8")
        assert "modified" in str(app.screen.query_one("#config-status").render())
        await pilot.press("ctrl+o")
        await pilot.pause()
        await pilot.press("enter")  # the dialog offers the current file
        await pilot.pause()
        assert app.config_store.config == saved
        assert app.screen.query_one(ConfigForm).row("method.r").editor_text() == "32"


async def test_save_as_writes_a_copy_and_never_overwrites_another_file(fixed_devices, tmp_path):
    original = tmp_path / "a.yaml"
    other = tmp_path / "b.yaml"
    other.write_text("name: keep-me\n")
    from workbench.config.io import save_config
    from workbench.config.schema import RunConfig

    save_config(RunConfig(), original)
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="hyperparameters", config_path=str(original))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        app.screen.query_one("#picker-path").value = str(other)
        await pilot.press("enter")
        await pilot.pause()
        assert other.read_text() == "name: keep-me\n"
        await pilot.press("ctrl+n")
        await pilot.pause()
        await pilot.press("enter")  # the suggested a-copy.yaml
        await pilot.pause()
        assert (tmp_path / "a-copy.yaml").is_file()
        assert app.config_store.path == tmp_path / "a-copy.yaml"


async def test_the_diff_lists_fields_that_differ_from_a_preset(fixed_devices):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        app.config_store.replace(get_preset("quick-demo-cpu").config())
        await type_into(pilot, "optimization.learning_rate", "1e-4")
        await pilot.press("f4")
        await pilot.pause()
        diff = app.screen.query_one("#config-diff")
        diff.query_one("#diff-source").value = "preset:quick-demo-cpu"
        await pilot.pause()
        table = diff.query_one("#diff-table")
        assert table.row_count == 1
        assert str(table.get_row_at(0)[0]) == "optimization.learning_rate"


async def test_the_launch_view_shows_training_arguments_and_the_command(fixed_devices):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        launch = app.screen.query_one("#config-launch")
        assert launch.code.startswith("TrainingArguments(\n    output_dir=")
        app.screen.query_one("#launch-view").value = "command"
        await pilot.pause()
        assert launch.code == "workbench train CONFIG.yaml"


async def test_start_training_refuses_a_config_with_errors(fixed_devices, monkeypatch):
    started = []
    monkeypatch.setattr("screens.hyperparameters.start_run", started.append)
    app = pane_app(fixed_devices)  # the default config has no training data
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert started == []
        assert app.screen.query_one("#hp-tabs").active == "hp-launch-tab"
        assert "data.train_file" in str(app.screen.query_one("#launch-problems").render())


async def test_start_training_hands_a_valid_config_to_the_runner_and_opens_the_run(fixed_devices, monkeypatch, tmp_path):
    started = []

    def fake_start_run(config):
        started.append(config)
        run_dir = tmp_path / "run-1"
        run_dir.mkdir()
        return run_dir

    monkeypatch.setattr("screens.hyperparameters.start_run", fake_start_run)
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        app.config_store.replace(get_preset("quick-demo-cpu").config().model_copy(update={"data": get_preset("quick-demo-cpu").config().data.model_copy(update={"train_file": str(SAMPLE)})}))
        await settle(pilot)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert [config.data.train_file for config in started] == [str(SAMPLE)]
        assert app.selected_run == tmp_path / "run-1"
        assert app.current_mode == "train"


async def test_a_change_from_another_pane_shows_in_the_form(fixed_devices):
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        app.config_store.update("data.max_seq_length", 512)
        await pilot.pause()
        assert app.screen.query_one(ConfigForm).row("data.max_seq_length").editor_text() == "512"


async def test_the_diff_compares_with_a_previous_runs_config(fixed_devices, tmp_path, monkeypatch):
    from workbench.config.io import save_config

    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(tmp_path))
    previous = get_preset("quick-demo-cpu").config()
    (tmp_path / "20261121-120000-quick-demo").mkdir()
    save_config(previous, tmp_path / "20261121-120000-quick-demo" / "config.yaml")
    app = pane_app(fixed_devices)
    async with app.run_test(size=(80, 24)) as pilot:
        app.config_store.replace(previous)
        await type_into(pilot, "method.r", "8")
        await pilot.press("enter")  # confirms and moves to the next field
        await pilot.pause()
        assert app.screen.query_one(ConfigForm).row("method.lora_alpha").editor.has_focus
        await pilot.press("f4")
        await pilot.pause()
        diff = app.screen.query_one("#config-diff")
        diff.query_one("#diff-source").value = f"run:{tmp_path / '20261121-120000-quick-demo'}"
        await pilot.pause()
        table = diff.query_one("#diff-table")
        assert [str(table.get_row_at(i)[0]) for i in range(table.row_count)] == ["method.r"]
        assert "run 20261121-120000-quick-demo" in str(diff.query_one("#diff-summary").render())


async def test_the_memory_pane_estimate_follows_each_edit_here(fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="memory")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        memory = app.screen
        assert memory.last_estimate.inputs.batch_size == 4
        await pilot.press("3")
        await pilot.pause()
        await type_into(pilot, "optimization.per_device_train_batch_size", "16")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert memory.last_estimate.inputs.batch_size == 16
        await type_into(pilot, "data.max_seq_length", "512")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert memory.last_estimate.inputs.seq_len == 512
