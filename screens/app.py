"""The workbench app: five panes as Textual MODES, the shared run config, and the base model."""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen
from textual.message import Message
from textual.reactive import reactive
from textual.worker import Worker, WorkerState

import workbench.devices
from screens.help import HelpScreen
from screens.keys import PANE_BY_ESCAPE_DIGIT_KEY, PANE_KEY_BINDINGS
from widgets.pane_tabs import PANES
from workbench.config import ConfigStore
from workbench.config.io import load_config
from workbench.cpu_budget import current_split, prepare_process
from workbench.devices import inference_placement
from workbench.errors import WorkbenchError
from workbench.models import DEFAULT_MODEL_NAME, load_model, load_tokenizer, resolve_model
from workbench.startup import seconds_since_process_start

if TYPE_CHECKING:
    from workbench.models import ResolvedModel

PANE_SCREENS = {
    "data": ("screens.data", "DataScreen"),
    "memory": ("screens.memory", "MemoryScreen"),
    "hyperparameters": ("screens.hyperparameters", "HyperparametersScreen"),
    "train": ("screens.train", "TrainScreen"),
    "chat": ("screens.chat", "ChatScreen"),
}
STARTUP_REPORT_ENV = "WORKBENCH_STARTUP_REPORT"
CPU_SPLIT_REFRESH_S = 2.0
"""How often the header re-reads the CPU budget's claims (a directory listing)."""


def _pane_factory(pane: str) -> Callable[[], Any]:
    """Panes import on first visit, so start-up pays only for the first one."""

    def build():
        return pane_screen_class(pane)()

    return build


@dataclass(frozen=True)
class ModelStatus:
    """Where the base model is: loading (with progress), ready, or failed."""

    state: str  # "loading" | "ready" | "error" | "idle"
    name: str
    detail: str = ""
    fraction: float | None = None

    def header_text(self) -> str:
        if self.state == "ready":
            return f"[b]{self.name}[/b] [green]● ready[/green]"
        if self.state == "error":
            return f"[b]{self.name}[/b] [red]✗ {self.detail}[/red]"
        if self.state == "idle":
            return f"[b]{self.name}[/b] [dim]{self.detail}[/dim]"
        percent = f" {self.fraction * 100:.0f}%" if self.fraction is not None else ""
        return f"[b]{self.name}[/b] [yellow]◌ {self.detail or 'loading'}{percent}[/yellow]"


class PaneCommands(Provider):
    """Command palette entries: go to a pane, open its help, and every pane's own actions
    (`PaneScreen.palette_entries`: open, search, clean, export, start/stop/resume training, new chat, …),
    each run on its pane (switched to first)."""

    async def startup(self) -> None:
        self.entries = []
        for pane, label in PANES:
            title = label.split(" ", 1)[1]
            self.entries.append((f"Go to {title}", f"switch to the {title} pane ({label.split(' ', 1)[0]})", pane, None))
            self.entries.append((f"Help: {title}", f"what the {title} pane is for, and its keys", pane, "help"))
            screen_class = pane_screen_class(pane)
            for entry in screen_class.palette_entries():
                key = screen_class.key_for(entry.action)
                help_text = " · ".join(part for part in (entry.help, f"key {key}" if key else "") if part)
                self.entries.append((f"{title}: {entry.title}", help_text, pane, entry.action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, pane, action in self.entries:
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(self.app.run_pane_action, pane, action), help=help_text)

    async def discover(self) -> Hits:
        current = getattr(self.app.screen, "PANE_ID", None)
        for text, help_text, pane, action in self.entries:
            if pane == current and action not in (None, "help"):
                yield DiscoveryHit(text, partial(self.app.run_pane_action, pane, action), help=help_text)


def pane_screen_class(pane: str) -> type:
    """The screen class of a pane (imported on first use, like the pane itself)."""
    module_name, class_name = PANE_SCREENS[pane]
    return getattr(importlib.import_module(module_name), class_name)


class WorkbenchApp(App):
    """The SFT Workbench TUI."""

    TITLE = "SFT Workbench"
    CSS_PATH = "styles/app.tcss"
    COMMANDS = App.COMMANDS | {PaneCommands}
    MODES = {pane: _pane_factory(pane) for pane in PANE_SCREENS}
    BINDINGS = [
        # Bare digits: where no text box has the focus (a text box types them).
        *(Binding(str(position + 1), f"switch_pane('{pane}')", label.split(" ", 1)[1], show=False) for position, (pane, label) in enumerate(PANES)),
        # From anywhere, text boxes included (screens/keys.py says what terminals send).
        *(Binding(keys, f"switch_pane('{pane}')", pane, show=False, priority=True) for pane, keys in PANE_KEY_BINDINGS),
        Binding("f1", "help", "Help", key_display="F1", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    model_status: reactive[ModelStatus] = reactive(ModelStatus("loading", "model", "starting"))
    device_summary: reactive[str] = reactive("detecting devices…")
    cpu_split: reactive[str | None] = reactive(None)
    """While a run trains on the CPU: who holds the cores ("CPU 2 cores · train 1 · chat 1"), else None."""
    selected_run: reactive[Path | None] = reactive(None)
    """The run the Train and Chat panes show; set when a run starts or is picked."""

    @dataclass
    class ModelProgress(Message):
        status: ModelStatus

    def __init__(
        self,
        model: str | None = None,
        config_store: ConfigStore | None = None,
        initial_pane: str = "data",
        load_model: bool = True,
        device_report=None,
    ) -> None:
        super().__init__()
        self.config_store = config_store or ConfigStore()
        if model is not None:
            self.config_store.update("model.name_or_path", model)
        self.initial_pane = initial_pane if initial_pane in PANE_SCREENS else "data"
        self.should_load_model = load_model
        self.resolved_model: ResolvedModel | None = None
        self.tokenizer = None
        self.base_model = None
        self.devices = device_report
        requested = self.config_store.config.model.name_or_path
        self.model_status = ModelStatus(
            "loading" if load_model else "idle", _display_name(requested), "starting" if load_model else "not loaded"
        )
        if device_report is not None:
            self.device_summary = device_report.summary()

    def on_mount(self) -> None:
        self.switch_mode(self.initial_pane)
        self.call_after_refresh(self._after_first_paint)

    def _after_first_paint(self) -> None:
        report_path = os.environ.get(STARTUP_REPORT_ENV)
        if report_path:
            import sys

            heavy = sorted(m for m in ("torch", "transformers", "peft", "datasets") if m in sys.modules)
            Path(report_path).write_text(
                json.dumps({"first_paint_s": seconds_since_process_start(), "heavy_modules_at_paint": heavy})
            )
            self.exit()
            return
        if self.devices is None:
            self.detect_devices()
        self.refresh_cpu_split()
        self.set_interval(CPU_SPLIT_REFRESH_S, self.refresh_cpu_split)
        if self.should_load_model:
            self.load_base_model()

    def refresh_cpu_split(self) -> None:
        """Re-read the CPU budget (workbench/cpu_budget.py): the trainer's and the chat's threads now."""
        try:
            self.cpu_split = current_split().header_text()
        except WorkbenchError as error:  # a bad WORKBENCH_*_THREADS value: say it once
            if self.cpu_split != "CPU budget: invalid":
                self.notify(str(error), title="CPU budget", severity="error", timeout=10)
            self.cpu_split = "CPU budget: invalid"

    def open_run(self, run_dir: Path, pane: str = "train") -> None:
        """Show a run in a pane (Train after starting it, Chat to talk to its adapter)."""
        self.selected_run = Path(run_dir)
        self.switch_mode(pane)

    def show_help(self, pane: str) -> None:
        self.push_screen(HelpScreen(pane))

    async def on_event(self, event: events.Event) -> None:
        # Alt+1..5 from xterm/tmux arrive as characters (screens/keys.py): read them before a text box can.
        if isinstance(event, events.Key) and event.key in PANE_BY_ESCAPE_DIGIT_KEY and not self._dialog_open():
            event.stop()
            await self.action_switch_pane(PANE_BY_ESCAPE_DIGIT_KEY[event.key])
            return
        await super().on_event(event)

    def _dialog_open(self) -> bool:
        return isinstance(self.screen, ModalScreen)

    async def action_switch_pane(self, pane: str) -> None:
        """Switch panes from anywhere; a help page closes first, another dialog stays (Esc closes it)."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        elif self._dialog_open():
            self.notify("Close this dialog first (Esc).", severity="warning", timeout=3)
            return
        if self.current_mode != pane:
            await self.switch_mode(pane)

    def action_help(self) -> None:
        """F1: the current pane's help, or close it when it is showing."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
        elif not self._dialog_open():
            self.show_help(getattr(self.screen, "PANE_ID", "") or self.current_mode)

    async def run_pane_action(self, pane: str, action: str | None) -> None:
        """A command palette entry: switch to its pane, then run its action there (None: only switch).

        The action method is called directly, not through `check_action`: the guards there keep
        stray keys from changing data (Data's x outside the rows), and a palette entry is no stray key.
        """
        import inspect

        from textual.actions import parse

        if self.current_mode != pane:
            await self.switch_mode(pane)
        if action == "help":
            self.show_help(pane)
        elif action is not None:
            _namespace, name, parameters = parse(action)
            result = getattr(self.screen, f"action_{name}")(*parameters)
            if inspect.isawaitable(result):
                await result

    @work(thread=True, exclusive=True, group="devices", exit_on_error=False)
    def detect_devices(self):
        report = workbench.devices.detect_devices()
        self.call_from_thread(self._set_devices, report)

    def _set_devices(self, report) -> None:
        self.devices = report
        self.device_summary = report.summary()

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def load_base_model(self):
        """Resolve (converting the default GGUF once), then load tokenizer and weights."""
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

        requested = self.config_store.config.model.name_or_path
        name = _display_name(requested)

        def progress(stage: str, fraction: float | None) -> None:
            self.post_message(self.ModelProgress(ModelStatus("loading", name, stage, fraction)))

        # tqdm bars from transformers would scribble over the TUI.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        progress("resolving", None)
        resolved = resolve_model(requested, progress=progress)
        progress("loading tokenizer", None)
        tokenizer = load_tokenizer(resolved, trust_remote_code=self.config_store.config.model.trust_remote_code)
        progress("loading weights", None)

        dtype, device = inference_placement()
        model = load_model(
            resolved, dtype=dtype, device=device, trust_remote_code=self.config_store.config.model.trust_remote_code
        )
        self.resolved_model, self.tokenizer, self.base_model = resolved, tokenizer, model
        self.post_message(self.ModelProgress(ModelStatus("ready", resolved.display_name)))
        return resolved

    def on_workbench_app_model_progress(self, message: ModelProgress) -> None:
        self.model_status = message.status

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "model" and event.state == WorkerState.ERROR:
            error = event.worker.error
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            self.model_status = ModelStatus("error", self.model_status.name, detail)
            self.notify(detail, title="Model failed to load", severity="error", timeout=10)


def _display_name(requested: str) -> str:
    if requested in ("default", "", None):
        return DEFAULT_MODEL_NAME
    return Path(requested).name or requested


def make_app(
    model: str | None = None,
    config_path: str | None = None,
    initial_pane: str = "data",
    load_model: bool = True,
    device_report=None,
) -> WorkbenchApp:
    """The one factory for the CLI and the tests."""
    prepare_process()  # before the model worker imports torch (the CLI's main has done it already)
    store = ConfigStore()
    if config_path:
        store = ConfigStore(load_config(config_path), Path(config_path))
    return WorkbenchApp(
        model=model, config_store=store, initial_pane=initial_pane, load_model=load_model, device_report=device_report
    )
