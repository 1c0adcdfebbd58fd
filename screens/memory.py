"""The Memory pane: a live, explained estimate of training memory for the shared run config.

Everything edited here is a what-if (`workbench.memory.whatif.WhatIf`): the pane estimates the run
config with those edits on top and never changes the run config until "Apply to run config"
(button, ctrl+y) writes them to `app.config_store`; "Reset" (ctrl+l) drops them. Changes made to the
store elsewhere (the Hyperparameters pane) show up at once. The cheapest changes that fit
(`workbench.memory.advice`) are listed; enter on one tries it in the what-if.

Estimating is pure arithmetic (well under a millisecond; the advice search a few more). Sizing a
local model directory builds it on the meta device, which imports torch, so that runs in a worker;
catalog models and the default model are instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

from pydantic import ValidationError
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, OptionList
from textual.worker import Worker, WorkerState

import workbench.devices
from screens.base import PaletteEntry, PaneScreen
from widgets.memory_inputs import CONFIG_MODEL, FIELDS, WHATIF_GPU, WHATIF_MODEL, MemoryInputsForm
from widgets.memory_report import MemoryReport
from workbench.config.fields import get_value
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line
from workbench.memory import (
    check_fit,
    estimate_training_memory,
    memory_budget,
    memory_inputs_from_config,
    read_run_memory,
)
from workbench.memory.command_line import estimate_command
from workbench.memory.from_config import config_changes
from workbench.memory.spec import needs_counting, resolve_model_spec
from workbench.memory.verdict import machine_for
from workbench.memory.whatif import WhatIf
from workbench.precision import resolve_training_precision

if TYPE_CHECKING:
    from workbench.config import RunConfig
    from workbench.memory import FitVerdict, MemoryEstimate, ModelSpec


class MemoryScreen(PaneScreen):
    PANE_ID = "memory"
    PANE_TITLE = "Memory"
    CSS_PATH = "styles/memory.tcss"
    BINDINGS = [
        Binding("ctrl+y", "apply_whatif", "Apply", tooltip="write the what-if's changes into the run config"),
        Binding("ctrl+l", "reset_whatif", "Reset", tooltip="drop the what-if's changes"),
    ]
    PALETTE = (
        PaletteEntry("Apply the what-if to the run config", "apply_whatif", "writes the what-if's changes into the run config"),
        PaletteEntry("Reset the what-if", "reset_whatif", "drops the what-if's changes"),
    )

    @dataclass
    class ConfigChanged(Message):
        """The shared config changed (posted from the store's callback, which may run on any thread)."""

    @dataclass
    class SpecReady(Message):
        source: str
        spec: "ModelSpec"

    def __init__(self) -> None:
        super().__init__()
        self.whatif = WhatIf()
        """Run-config edits tried here; only "apply" writes them to the store."""
        self.whatif_model: Optional[str] = None
        """A catalog model to estimate instead of the config's model (never applied)."""
        self.whatif_gpu_gib: Optional[float] = None
        """Check against a GPU of this many GiB instead of this machine's devices (never applied)."""
        self.spec: Optional["ModelSpec"] = None
        self.spec_source: Optional[str] = None
        self.last_estimate: Optional["MemoryEstimate"] = None
        """The estimate on screen (tests and the measured-peak line read it)."""
        self.last_verdict: Optional["FitVerdict"] = None
        """Its verdict, with the suggestions listed."""
        self.refused: Optional[str] = None
        """The one-line reason the last what-if edit was refused (shown until the next accepted edit)."""
        self._unsubscribe: Optional[Callable[[], None]] = None

    @property
    def store(self):
        return self.app.config_store

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="memory-body"):
            yield MemoryInputsForm(id="memory-inputs")
            yield MemoryReport(id="memory-report")

    def on_mount(self) -> None:
        self._unsubscribe = self.store.subscribe(lambda config: self.post_message(self.ConfigChanged()))
        self.watch(self.app, "device_summary", lambda _: self.recompute(), init=False)
        self.watch(self.app, "selected_run", lambda _: self.recompute(), init=False)
        # After mounting completes: recompute() draws nothing on a screen that is not mounted yet.
        self.call_after_refresh(self.refresh_from_config)

    def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()

    def on_memory_screen_config_changed(self, message: ConfigChanged) -> None:
        self.refresh_from_config()

    # ---- what-if edits ---------------------------------------------------------------------------

    @on(MemoryInputsForm.Changed)
    def _edited(self, message: MemoryInputsForm.Changed) -> None:
        if message.key == WHATIF_MODEL:
            chosen = None if message.value == CONFIG_MODEL else message.value
            if chosen != self.whatif_model:
                self.whatif_model = chosen
                self.refresh_from_config()
            return
        if message.key == WHATIF_GPU:
            if message.value != self.whatif_gpu_gib:
                self.whatif_gpu_gib = message.value if message.value and message.value > 0 else None
                self.recompute()
            return
        if self._current_value(message.key) == message.value:
            return  # the editor showing the what-if's own value
        self.try_edits({message.key: message.value}, field=message.key)

    def _current_value(self, dotted: str) -> Any:
        return get_value(self.whatif.config(self.store.config), dotted)

    def try_edits(self, edits: dict[str, Any], field: str | None = None) -> bool:
        """Put `edits` into the what-if when the schema and the estimator accept them; otherwise mark
        `field` with the one-line reason and keep the previous what-if."""
        form = self.query_one(MemoryInputsForm)
        before = dict(self.whatif.edits)
        try:
            self.whatif.set(self.store.config, edits)
            if self.spec is not None:
                self._estimate_inputs()  # refuses absurd values (e.g. far past the context length)
        except ValidationError as error:
            self.whatif.edits = before
            if field:
                form.mark_invalid(field, error.errors()[0]["msg"].replace("Input should be", "must be"))
            return False
        except WorkbenchError as error:
            self.whatif.edits = before
            if field:
                form.mark_invalid(field, str(error))
            self.refused = f"{field or 'change'} refused: {error}"
            self._show_whatif()
            return False
        if field:
            form.mark_invalid(field, None)
        self.refused = None
        self.refresh_from_config()
        return True

    def action_apply_whatif(self) -> None:
        """Write the what-if's edits into the run config (the one place this pane changes it)."""
        differences = self.whatif.differences(self.store.config)
        if not differences:
            self.notify("The what-if equals the run config: nothing to apply.", timeout=4)
            return
        self.store.replace(self.whatif.config(self.store.config))
        self.whatif.clear()
        names = ", ".join(dotted for dotted, _, _ in differences)
        self.notify(f"Applied to the run config: {names}.", timeout=5)
        self.refresh_from_config()

    def action_reset_whatif(self) -> None:
        """Drop the what-if's edits (and the model what-if): show the run config again."""
        self.whatif.clear()
        self.whatif_model = None
        self.refresh_from_config()

    @on(Button.Pressed, "#mem-apply")
    def _apply_pressed(self) -> None:
        self.action_apply_whatif()

    @on(Button.Pressed, "#mem-reset")
    def _reset_pressed(self) -> None:
        self.action_reset_whatif()

    @on(OptionList.OptionSelected, "#mem-suggestions")
    def _suggestion_chosen(self, event: OptionList.OptionSelected) -> None:
        """Enter on a suggestion tries it in the what-if (the run config is not touched)."""
        if self.last_verdict is None or not 0 <= event.option_index < len(self.last_verdict.suggestions):
            return
        suggestion = self.last_verdict.suggestions[event.option_index]
        self.try_edits(config_changes(suggestion.changes, suggestion.gradient_accumulation))

    # ---- what-if -> estimate ---------------------------------------------------------------------

    def refresh_from_config(self) -> None:
        config = self.whatif.config(self.store.config)
        differences = self.whatif.differences(self.store.config)
        self.query_one(MemoryInputsForm).show(self._form_values(config),
                                              frozenset(dotted for dotted, _, _ in differences))
        self._show_whatif(differences)
        source = self.whatif_model or config.model.name_or_path
        if source != self.spec_source:
            self.spec, self.spec_source = None, source
            self._resolve_spec(source)
        else:
            self.recompute()

    def _show_whatif(self, differences: list | None = None) -> None:
        if differences is None:
            differences = self.whatif.differences(self.store.config)
        self.query_one(MemoryReport).show_whatif(differences, self.whatif_model, self.refused)

    def _form_values(self, config: "RunConfig") -> dict[str, Any]:
        values = {field.key: get_value(config, field.key) for field in FIELDS
                  if field.key not in (WHATIF_MODEL, WHATIF_GPU)}
        values[WHATIF_MODEL] = self.whatif_model or CONFIG_MODEL
        values[WHATIF_GPU] = self.whatif_gpu_gib
        return values

    def _resolve_spec(self, source: str) -> None:
        if needs_counting(source):
            self.query_one(MemoryReport).show_message(f"Counting the parameters of {source} …")
            self.count_model(source)
            return
        try:
            self.spec = resolve_model_spec(source)
        except WorkbenchError as error:
            self.query_one(MemoryReport).show_message(f"[red]{error}[/red]")
            return
        self.recompute()

    @work(thread=True, exclusive=True, group="memory-spec", exit_on_error=False)
    def count_model(self, source: str) -> None:
        trust = self.store.config.model.trust_remote_code
        self.post_message(self.SpecReady(source, resolve_model_spec(source, trust_remote_code=trust)))

    def on_memory_screen_spec_ready(self, message: SpecReady) -> None:
        if message.source == self.spec_source:
            self.spec = message.spec
            self.recompute()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "memory-spec" and event.state == WorkerState.ERROR:
            error = event.worker.error
            text = first_line(error)
            self.query_one(MemoryReport).show_message(f"[red]Cannot size {self.spec_source}: {text}[/red]")

    def _devices(self):
        return self.app.devices or workbench.devices.detect_devices()

    def _estimate_inputs(self):
        """(MemoryInputs, estimate) for the what-if config on this machine or the what-if GPU."""
        config = self.whatif.config(self.store.config)
        devices = self._devices()
        _, inputs = memory_inputs_from_config(config, devices)
        if self.whatif_gpu_gib is not None and inputs.device != "cuda":
            precision = resolve_training_precision(config.model.precision, devices, True, config.method.type).label
            inputs = inputs.with_changes(device="cuda", precision=precision, gpus=config.devices.num_processes)
        return inputs, estimate_training_memory(self.spec, inputs)

    def recompute(self) -> None:
        """Estimate the what-if config (plus the model and GPU what-ifs) and show it with its advice."""
        if self.spec is None or not self.is_mounted:
            return

        report = self.query_one(MemoryReport)
        try:
            inputs, estimate = self._estimate_inputs()
        except WorkbenchError as error:
            report.show_message(f"[red]{error}[/red]")
            return
        devices = self._devices()
        config = self.whatif.config(self.store.config)
        accumulation = config.optimization.gradient_accumulation_steps
        budget = memory_budget(inputs, devices, self.whatif_gpu_gib)
        verdict = check_fit(estimate, budget, gradient_accumulation=accumulation,
                            machine=machine_for(inputs, devices, whatif_gpu=self.whatif_gpu_gib is not None))
        self.last_estimate, self.last_verdict = estimate, verdict
        model = self.spec.name if self.spec.source == "catalog" else self.spec_source
        budget_flags = {"gpu_memory_gib": self.whatif_gpu_gib,
                        "ram_bytes": budget.bytes if inputs.device == "cpu" else None}
        commands = [estimate_command(model, inputs.with_changes(**suggestion.changes),
                                     gradient_accumulation=suggestion.gradient_accumulation or accumulation,
                                     **budget_flags)
                    for suggestion in verdict.suggestions]
        report.show(estimate, verdict, self._run_memory(), self.whatif_model is not None, commands)

    def _run_memory(self):
        run = getattr(self.app, "selected_run", None)
        if run is None:
            return None

        return read_run_memory(run)
