"""The Memory pane driven like a person would: edits are a what-if that recomputes at once and leaves
the run config alone until "apply to run config"; store changes made elsewhere show up here; the
advice it shows is what `workbench estimate` gives for the same changes."""

from __future__ import annotations

import json

from textual.widgets import Button, Input, OptionList, Select, Static

from screens.app import make_app
from workbench_cli.main import main
from workbench.devices import CpuInfo, DeviceReport

GIB = 2**30


def _memory_app(devices):
    return make_app(load_model=False, device_report=devices, initial_pane="memory")


async def _type_into(pilot, selector: str, text: str) -> None:
    editor = pilot.app.screen.query_one(selector, Input)
    editor.focus()
    await pilot.press("end", *["backspace"] * len(editor.value), *text)
    await pilot.pause()


def _report_text(screen) -> str:
    return "\n".join(str(widget.render()) for widget in screen.query("#memory-report Static"))


async def test_typing_a_batch_size_recomputes_a_whatif_and_leaves_the_run_config_alone(fixed_devices):
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        before = screen.last_estimate
        assert before.inputs.batch_size == app.config_store.config.optimization.per_device_train_batch_size == 4
        await _type_into(pilot, "#mem-optimization-per-device-train-batch-size", "8")
        after = screen.last_estimate
        assert after.inputs.batch_size == 8
        assert after.activations > 1.9 * before.activations
        assert after.total_bytes > before.total_bytes
        assert app.config_store.config.optimization.per_device_train_batch_size == 4  # not written
        row = screen.query_one("#mem-optimization-per-device-train-batch-size").parent
        assert row.has_class("-whatif")
        assert "batch size 4 → 8" in str(screen.query_one("#mem-whatif-text", Static).render())
        assert not screen.query_one("#mem-apply", Button).disabled


async def test_apply_writes_the_whatif_into_the_run_config_and_reset_drops_it(fixed_devices):
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        await _type_into(pilot, "#mem-optimization-per-device-train-batch-size", "8")
        await pilot.click("#mem-apply")
        await pilot.pause()
        assert app.config_store.config.optimization.per_device_train_batch_size == 8
        assert screen.whatif.edits == {} and screen.query_one("#mem-apply", Button).disabled
        screen.query_one("#mem-optimization-gradient-checkpointing").value = True
        await pilot.pause()
        assert screen.last_estimate.inputs.gradient_checkpointing
        assert not app.config_store.config.optimization.gradient_checkpointing
        screen.query_one(OptionList).focus()
        await pilot.press("ctrl+l")  # reset
        await pilot.pause()
        assert screen.whatif.edits == {} and not screen.last_estimate.inputs.gradient_checkpointing
        screen.query_one("#mem-optimization-gradient-checkpointing").value = True
        await pilot.pause()
        await pilot.press("ctrl+y")  # apply, from the keyboard
        await pilot.pause()
        assert app.config_store.config.optimization.gradient_checkpointing


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
        assert app.screen.last_estimate.inputs.lora_r == 1  # the last valid value; the schema refuses 0
        assert app.screen.query_one("#mem-method-r", Input).has_class("-invalid")
        await _type_into(pilot, "#mem-method-r", "8")
        assert app.screen.last_estimate.inputs.lora_r == 8
        assert not app.screen.query_one("#mem-method-r", Input).has_class("-invalid")
        assert app.config_store.config.method.r == 16  # what-ifs only


async def test_a_length_past_the_context_warns_and_an_absurd_one_is_refused_with_its_reason(fixed_devices):
    app = _memory_app(fixed_devices)  # the default model: 8,192 positions
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        await _type_into(pilot, "#mem-data-max-seq-length", "16384")
        assert screen.last_estimate.inputs.seq_len == 16384
        assert "context length of 8,192" in _report_text(screen)
        await _type_into(pilot, "#mem-data-max-seq-length", "10244096")
        editor = screen.query_one("#mem-data-max-seq-length", Input)
        assert editor.has_class("-invalid") and "max_position_embeddings" in str(editor.tooltip)
        strip = str(screen.query_one("#mem-whatif-text", Static).render())
        assert "refused" in strip and "context length of 8,192" in strip
        assert screen.last_estimate.inputs.seq_len < 8 * 8192  # the refused value was never estimated


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
        config = app.config_store.config
        assert config.model.name_or_path == "default" and config.method.type == "lora"
        text = _report_text(screen)
        assert "24 GiB GPU" in text and "what-if" in text and "fit line" in text
        assert "gradient checkpointing" in str(screen.query_one(OptionList).get_option_at_index(0).prompt)


async def test_enter_on_a_suggestion_tries_it_in_the_whatif(fixed_devices):
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        await _type_into(pilot, "#mem-data-max-seq-length", "4096")
        await _type_into(pilot, "#mem-optimization-per-device-train-batch-size", "16")
        verdict = screen.last_verdict
        assert verdict.status != "fits" and verdict.suggestions
        top = verdict.suggestions[0]
        screen.query_one(OptionList).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert screen.last_estimate.total_bytes == top.total_bytes <= screen.last_verdict.fit_line_bytes
        assert screen.last_verdict.status == "fits"
        assert app.config_store.config.optimization.per_device_train_batch_size == 4


def _cli_estimate(command: str, capsys) -> dict:
    argv = command.split()
    assert argv[:2] == ["workbench", "estimate"]
    capsys.readouterr()
    assert main([*argv[1:], "--json"]) == 0
    return json.loads(capsys.readouterr().out)


async def _llama_advice(devices, gpu_gib: str | None):
    """The pane's top suggestion and the CLI line it shows, for Llama-3.1-8B LoRA at batch 1 x 2048."""
    app = _memory_app(devices)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.query_one("#mem-whatif-model", Select).value = "Llama-3.1-8B"
        await pilot.pause()
        await _type_into(pilot, "#mem-optimization-per-device-train-batch-size", "1")
        await _type_into(pilot, "#mem-data-max-seq-length", "2048")
        if gpu_gib:
            await _type_into(pilot, "#mem-whatif-gpu-memory", gpu_gib)
        estimate, verdict = screen.last_estimate, screen.last_verdict
        assert (estimate.spec.name, estimate.inputs.method, estimate.inputs.batch_size, estimate.inputs.seq_len) == (
            "Llama-3.1-8B", "lora", 1, 2048)
        assert verdict.status != "fits" and verdict.suggestions
        command = str(screen.query_one("#mem-command", Static).render()).removeprefix("same on the CLI: ")
        return verdict, command


async def test_llama_8b_lora_advice_fits_a_24_gib_gpu_and_the_cli_gives_the_same_estimate(fixed_devices, capsys):
    verdict, command = await _llama_advice(fixed_devices, "24")
    top = verdict.suggestions[0]
    assert verdict.budget.bytes == 24 * GIB and top.fits and top.total_bytes <= verdict.fit_line_bytes
    assert "--gpu-memory 24" in command
    result = _cli_estimate(command, capsys)
    assert result["total_bytes"] == top.total_bytes
    assert result["verdict"]["status"] == "fits"


async def test_llama_8b_lora_advice_fits_21_gib_of_ram_and_the_cli_gives_the_same_estimate(capsys):
    amx_cpu = DeviceReport(cpu=CpuInfo("AMX CPU", 2, 24 * GIB, 21 * GIB, frozenset({"amx_bf16"})))
    verdict, command = await _llama_advice(amx_cpu, None)
    top = verdict.suggestions[0]
    assert verdict.budget.bytes == 21 * GIB and top.fits and top.total_bytes <= verdict.fit_line_bytes
    assert "--ram 21" in command
    result = _cli_estimate(command, capsys)
    assert result["total_bytes"] == top.total_bytes
    assert result["verdict"]["status"] == "fits"


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
        assert "measured 3.00 GiB" in text and "estimate at start 2.00 GiB" in text
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


async def test_the_choice_lists_are_the_schemas(fixed_devices):
    from workbench.config.fields import field_spec

    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        for dotted in ("method.type", "model.precision", "optimization.optim"):
            select = app.screen.query_one("#mem-" + dotted.replace(".", "-").replace("_", "-"), Select)
            assert tuple(value for _, value in select._options) == field_spec(dotted).choices


async def test_two_choices_in_quick_succession_settle_after_one_estimate_each(fixed_devices, monkeypatch):
    # Showing the what-if in the form used to post the editors' Changed back: with a model and a
    # method chosen back to back, the two values were re-applied in turn hundreds of times.
    app = _memory_app(fixed_devices)
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        estimates = []
        recompute = type(screen).recompute
        monkeypatch.setattr(type(screen), "recompute", lambda self: (estimates.append(1), recompute(self)))
        screen.query_one("#mem-whatif-model", Select).value = "Qwen2.5-7B"
        screen.query_one("#mem-method-type", Select).value = "qlora"
        await pilot.pause()
        await pilot.pause()
        assert screen.whatif.edits == {"method.type": "qlora"}
        assert screen.query_one("#mem-method-type", Select).value == "qlora"
        assert screen.last_estimate.spec.name == "Qwen2.5-7B" and screen.last_estimate.inputs.method == "qlora"
        assert len(estimates) <= 3
