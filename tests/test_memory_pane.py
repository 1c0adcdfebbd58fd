"""The Memory pane driven like a person would: edits recompute, share the config, and what-ifs stay local."""

from __future__ import annotations

import json

from textual.widgets import Input, Select, Static

from screens.app import make_app


def _memory_app(fixed_devices):
    return make_app(load_model=False, device_report=fixed_devices, initial_pane="memory")


async def _type_into(pilot, selector: str, text: str) -> None:
    editor = pilot.app.screen.query_one(selector, Input)
    editor.focus()
    await pilot.press("end", *["backspace"] * len(editor.value), *text)
    await pilot.pause()


def _report_text(screen) -> str:
    return "\n".join(str(widget.render()) for widget in screen.query("#memory-report Static"))


async def test_typing_a_batch_size_recomputes_and_writes_the_shared_config(fixed_devices):
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        before = screen.last_estimate
        assert before.inputs.batch_size == app.config_store.config.optimization.per_device_train_batch_size == 4
        await _type_into(pilot, "#mem-optimization-per-device-train-batch-size", "8")
        assert app.config_store.config.optimization.per_device_train_batch_size == 8
        after = screen.last_estimate
        assert after.inputs.batch_size == 8
        assert after.activations > 1.9 * before.activations
        assert after.total_bytes > before.total_bytes


async def test_a_change_made_elsewhere_in_the_store_shows_up_here(fixed_devices):
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        lora = app.screen.last_estimate
        app.config_store.update("method.type", "full")  # as the Hyperparameters pane would
        await pilot.pause()
        full = app.screen.last_estimate
        assert full.inputs.method == "full"
        assert full.trainable_params == full.spec.total_params > 20 * lora.trainable_params
        assert full.optimizer_state > 20 * lora.optimizer_state
        assert app.screen.query_one("#mem-method-type", Select).value == "full"


async def test_invalid_value_is_refused_and_marked(fixed_devices):
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await _type_into(pilot, "#mem-method-r", "0")  # passes through "1" while backspacing "16"
        assert app.config_store.config.method.r == 1  # the last valid value; the schema refuses 0
        assert app.screen.query_one("#mem-method-r", Input).has_class("-invalid")
        await _type_into(pilot, "#mem-method-r", "8")
        assert app.config_store.config.method.r == 8
        assert not app.screen.query_one("#mem-method-r", Input).has_class("-invalid")


async def test_qlora_7b_on_a_24_gib_card_what_if_leaves_the_config_alone(fixed_devices):
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.query_one("#mem-whatif-model", Select).value = "Qwen2.5-7B"
        screen.query_one("#mem-method-type", Select).value = "qlora"
        await pilot.pause()
        await _type_into(pilot, "#mem-optimization-per-device-train-batch-size", "1")
        await _type_into(pilot, "#mem-data-max-seq-length", "2048")
        await _type_into(pilot, "#mem-whatif-gpu-memory", "24")
        estimate = screen.last_estimate
        assert estimate.spec.name == "Qwen2.5-7B"
        assert (estimate.inputs.device, estimate.inputs.method, estimate.inputs.seq_len) == ("cuda", "qlora", 2048)
        assert app.config_store.config.model.name_or_path == "default"
        text = _report_text(screen)
        assert "24 GiB GPU" in text and "what-if" in text
        assert "gradient checkpointing" in text  # the way to make it fit comfortably


async def test_measured_peak_of_the_selected_run_is_shown_beside_the_estimate(fixed_devices, tmp_path):
    status = {"state": "completed", "measured_peak_bytes": 3 * 2**30, "estimated_peak_bytes": 2 * 2**30}
    (tmp_path / "status.json").write_text(json.dumps(status))
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        measured = app.screen.query_one("#mem-measured", Static)
        assert not measured.display
        app.selected_run = tmp_path
        await pilot.pause()
        text = str(measured.render())
        assert measured.display and tmp_path.name in text
        assert "measured 3.0 GiB" in text and "estimate at start 2.0 GiB" in text
        assert app.screen.query_one("MemoryBar").measured == 3 * 2**30


async def test_a_local_model_directory_is_counted_in_a_worker(fixed_devices, tiny_model_dir):
    app = make_app(model=str(tiny_model_dir), load_model=False, device_report=fixed_devices, initial_pane="memory")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        estimate = app.screen.last_estimate
        assert estimate is not None and estimate.spec.source == str(tiny_model_dir.resolve())
        assert estimate.spec.num_layers == 2


def test_bar_cells_are_proportional_and_fill_the_share_of_the_scale():
    from widgets.memory_bar import bar_cells

    cells = dict(bar_cells({"weights": 300, "activations": 600, "logits": 100, "gradients": 0}, 1000, 50))
    assert cells == {"weights": 15, "activations": 30, "logits": 5}
    half = dict(bar_cells({"weights": 250, "activations": 250}, 1000, 40))  # a budget twice the total
    assert sum(half.values()) == 20
    tiny = dict(bar_cells({"weights": 990, "framework overhead": 13}, 1000, 40))  # 0.52 of a cell
    assert tiny["framework overhead"] == 1 and sum(tiny.values()) == 40


async def test_the_estimate_shows_when_the_pane_is_first_opened_from_another_pane(fixed_devices):
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="data")
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        assert app.current_mode == "memory"
        assert app.screen.last_estimate is not None
        assert "trainable" in _report_text(app.screen)
