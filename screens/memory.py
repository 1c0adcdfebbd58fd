"""The Memory pane: a live, explained estimate of training memory for the shared run config.

Edits here go through `app.config_store.update(...)` (the same config the Hyperparameters pane
edits), and any change to the store, from either pane, recomputes the estimate (pure arithmetic,
well under a millisecond). Sizing a local model directory builds it on the meta device, which
imports torch, so that runs in a worker; catalog models and the default model are instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from pydantic import ValidationError
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.worker import Worker, WorkerState

from screens.base import PaneScreen
from widgets.memory_inputs import CONFIG_MODEL, WHATIF_GPU, WHATIF_MODEL, MemoryInputsForm
from widgets.memory_report import MemoryReport
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.config import RunConfig
    from workbench.memory import ModelSpec


class MemoryScreen(PaneScreen):
    PANE_ID = "memory"
    PANE_TITLE = "Memory"
    CSS_PATH = "styles/memory.tcss"

    class ConfigChanged(Message):
        """The shared config changed (posted from the store's callback, which may run on any thread)."""

    class SpecReady(Message):
        def __init__(self, source: str, spec: "ModelSpec") -> None:
            super().__init__()
            self.source = source
            self.spec = spec

    def __init__(self) -> None:
        super().__init__()
        self.whatif_model: Optional[str] = None
        """A catalog model to estimate instead of the config's model (the config is not changed)."""
        self.whatif_gpu_gib: Optional[float] = None
        """Check against a GPU of this many GiB instead of this machine's devices."""
        self.spec: Optional["ModelSpec"] = None
        self.spec_source: Optional[str] = None
        self.last_estimate = None
        """The estimate on screen (tests and the measured-peak line read it)."""
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

    # ---- inputs -> store -----------------------------------------------------------------------

    def on_memory_inputs_form_changed(self, message: MemoryInputsForm.Changed) -> None:
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
        if self.store.get(message.key) == message.value:
            return  # the editor showing the store's own value
        form = self.query_one(MemoryInputsForm)
        try:
            self.store.update(message.key, message.value)
        except ValidationError as error:
            form.mark_invalid(message.key, error.errors()[0]["msg"].replace("Input should be", "must be"))
            return
        form.mark_invalid(message.key, None)

    # ---- store -> estimate ---------------------------------------------------------------------

    def refresh_from_config(self) -> None:
        config = self.store.config
        self.query_one(MemoryInputsForm).show(self._form_values(config))
        source = self.whatif_model or config.model.name_or_path
        if source != self.spec_source:
            self.spec, self.spec_source = None, source
            self._resolve_spec(source)
        else:
            self.recompute()

    def _form_values(self, config: "RunConfig") -> dict[str, Any]:
        return {
            WHATIF_MODEL: self.whatif_model or CONFIG_MODEL,
            "method.type": config.method.type,
            "model.precision": config.model.precision,
            "optimization.optim": config.optimization.optim,
            "optimization.per_device_train_batch_size": config.optimization.per_device_train_batch_size,
            "data.max_seq_length": config.data.max_seq_length,
            "method.r": config.method.r,
            "optimization.gradient_checkpointing": config.optimization.gradient_checkpointing,
            "devices.num_processes": config.devices.num_processes,
            WHATIF_GPU: self.whatif_gpu_gib,
        }

    def _resolve_spec(self, source: str) -> None:
        from workbench.memory.spec import needs_counting, resolve_model_spec

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
        from workbench.memory import resolve_model_spec

        trust = self.store.config.model.trust_remote_code
        self.post_message(self.SpecReady(source, resolve_model_spec(source, trust_remote_code=trust)))

    def on_memory_screen_spec_ready(self, message: SpecReady) -> None:
        if message.source == self.spec_source:
            self.spec = message.spec
            self.recompute()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "memory-spec" and event.state == WorkerState.ERROR:
            error = event.worker.error
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.query_one(MemoryReport).show_message(f"[red]Cannot size {self.spec_source}: {text}[/red]")

    def recompute(self) -> None:
        """Estimate the current config (plus what-ifs) and show it."""
        if self.spec is None or not self.is_mounted:
            return
        from workbench.devices import detect_devices
        from workbench.memory import check_fit, estimate_training_memory, memory_budget, memory_inputs_from_config
        from workbench.precision import resolve_training_precision

        devices = self.app.devices or detect_devices()
        _, inputs = memory_inputs_from_config(self.store.config, devices)
        if self.whatif_gpu_gib is not None and inputs.device != "cuda":
            config = self.store.config
            precision = resolve_training_precision(config.model.precision, devices, True, config.method.type).label
            inputs = inputs.with_changes(device="cuda", precision=precision, gpus=config.devices.num_processes)
        try:
            estimate = estimate_training_memory(self.spec, inputs)
        except WorkbenchError as error:
            self.query_one(MemoryReport).show_message(f"[red]{error}[/red]")
            return
        verdict = check_fit(estimate, memory_budget(inputs, devices, self.whatif_gpu_gib))
        self.last_estimate = estimate
        self.query_one(MemoryReport).show(estimate, verdict, self._run_memory(), self.whatif_model is not None)

    def _run_memory(self):
        run = getattr(self.app, "selected_run", None)
        if run is None:
            return None
        from workbench.memory import read_run_memory

        return read_run_memory(run)
