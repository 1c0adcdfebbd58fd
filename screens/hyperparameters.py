"""The Hyperparameters pane: edit the one live run config, with presets, checks and a launch.

Every edit goes through `app.config_store.update(...)`, so the Memory pane (subscribed to the same
store) follows each change. A value the schema rejects stays in the editor with its error beside it
and never reaches the store. The environment checks (model limits, hardware, files, data size) run
in a worker shortly after the last edit and mark the fields they concern.
"""

from __future__ import annotations

from dataclasses import dataclass

from pathlib import Path
from typing import Callable, Optional

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Button, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from screens.base import PaletteEntry, PaneScreen
from widgets.config_diff import ConfigDiff
from widgets.config_field import ConfigFieldRow
from widgets.config_form import ConfigForm
from widgets.config_launch import ConfigLaunch
from widgets.config_presets import PresetPicker
from widgets.file_picker import FilePicker
from workbench.config.checks import Problem, check_config
from workbench.config.fields import config_differences
from workbench.config.io import ConfigError, load_config, save_config
from workbench.config.presets import PRESETS
from workbench.config.schema import RunConfig
from workbench.config.translate import render
from workbench.errors import WorkbenchError
from workbench.paths import runs_dir
from workbench.runs.launch import start_run
from workbench.runs.rundir import CONFIG_FILE

CONFIG_SUFFIXES = (".yaml", ".yml")
CHECK_DELAY_S = 0.3
"""Environment checks wait for typing to pause (they may read the data file)."""


def _plain_message(pydantic_message: str) -> str:
    """pydantic's "Input should be greater than 0" as "must be greater than 0"."""
    return pydantic_message.removeprefix("Value error, ").replace("Input should be", "must be")


class HyperparametersScreen(PaneScreen):
    PANE_ID = "hyperparameters"
    PANE_TITLE = "Hyperparameters"
    CSS_PATH = "styles/hyperparameters.tcss"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", tooltip="Save the config to its file (asks for a path the first time)"),
        Binding("ctrl+o", "open", "Open", tooltip="Load a config file"),
        Binding("ctrl+n", "save_as", "Save as", tooltip="Save a copy under a new name and keep editing the copy"),
        Binding("ctrl+r", "start_training", "Train", tooltip="Check the config and start a training run"),
        Binding("f2", "show_tab('hp-form-tab')", "Form", show=False),
        Binding("f3", "show_tab('hp-presets-tab')", "Presets", show=False),
        Binding("f4", "show_tab('hp-compare-tab')", "Compare", show=False),
        Binding("f5", "show_tab('hp-launch-tab')", "Launch", show=False),
    ]
    MAIN_FOCUS = "#hp-tabs Tabs"
    """Escape from a field goes to the tab strip (←→ switch tabs there; Tab goes back into the form)."""
    PALETTE = (
        PaletteEntry("Start training", "start_training", "checks the values as shown, then starts a run"),
        PaletteEntry("Save config", "save", "to its file (asks for a path the first time)"),
        PaletteEntry("Save config as…", "save_as", "a copy under a new name; you keep editing the copy"),
        PaletteEntry("Open config…", "open", "a YAML run config (file picker)"),
        PaletteEntry("Form tab", "show_tab('hp-form-tab')"),
        PaletteEntry("Presets tab", "show_tab('hp-presets-tab')", "start from a recipe, with its reasons"),
        PaletteEntry("Compare tab", "show_tab('hp-compare-tab')", "what differs from a preset, the saved file or a run"),
        PaletteEntry("Launch tab", "show_tab('hp-launch-tab')", "the command and the Hugging Face arguments that run"),
    )
    TAB_FOCUS = {
        "hp-form-tab": "#field-name .config-editor",
        "hp-presets-tab": "#preset-list",
        "hp-compare-tab": "#diff-source",
        "hp-launch-tab": "#launch-view",
    }

    @dataclass
    class ChecksDone(Message):
        config: RunConfig
        problems: list[Problem]

    def __init__(self) -> None:
        super().__init__()
        self.schema_errors: dict[str, str] = {}
        """dotted field -> why the text in its editor was refused (the store keeps the last good value)."""
        self.problems: list[Problem] = []
        """The latest environment checks of the store's config."""
        self.saved_config: Optional[RunConfig] = None
        self._unsubscribe: Optional[Callable[[], None]] = None
        self._check_timer = None
        self._checking = False
        self._status_text = ""

    @property
    def store(self):
        return self.app.config_store

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="hp-tabs", initial="hp-form-tab"):
            with TabPane("F2 Form", id="hp-form-tab"):
                yield ConfigForm(self.store.config, id="config-form")
                yield Static("", id="field-help")
            with TabPane("F3 Presets", id="hp-presets-tab"):
                yield PresetPicker(id="preset-picker")
            with TabPane("F4 Compare", id="hp-compare-tab"):
                yield ConfigDiff(id="config-diff")
            with TabPane("F5 Launch", id="hp-launch-tab"):
                yield ConfigLaunch(id="config-launch")
        yield Static("", id="config-status")

    def on_mount(self) -> None:
        self.saved_config = self.store.config if self.store.path else None
        self._unsubscribe = self.store.subscribe(self._config_changed)
        self.query_one("#field-help", Static).update(
            "[dim]Tab / shift+tab move between fields · Enter opens a choice · Esc leaves a field · "
            "F2–F5 switch tabs · F3 Presets: start from a recipe, with the reasons for each value[/dim]"
        )
        self._refresh_views()
        self.run_checks()

    def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()

    # ---- the store -> the form -----------------------------------------------------------------

    def _config_changed(self, config: RunConfig) -> None:
        form = self.query_one(ConfigForm)
        form.show_config(config)
        # show_config rewrites a refused text with the store's value: its error must go with it.
        for dotted in list(self.schema_errors):
            self._take_text(form.row(dotted), form.row(dotted).editor_text())
        self._refresh_views()
        self._schedule_checks()

    def _refresh_views(self) -> None:
        """Status always; the Compare and Launch tabs only while shown (each edit would otherwise
        re-render them unseen), and again when their tab opens."""
        self._show_status()
        active = self.query_one("#hp-tabs", TabbedContent).active
        if active == "hp-launch-tab":
            self._show_launch()
        elif active == "hp-compare-tab":
            self._refresh_diff()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._refresh_views()

    def _schedule_checks(self) -> None:
        if self._check_timer is not None:
            self._check_timer.stop()
        self._checking = True
        self._check_timer = self.set_timer(CHECK_DELAY_S, self.run_checks)

    @work(thread=True, exclusive=True, group="config-checks", exit_on_error=False)
    def run_checks(self) -> None:
        config = self.store.config
        problems = check_config(config, devices=self.app.devices)
        self.post_message(self.ChecksDone(config, problems))

    def on_hyperparameters_screen_checks_done(self, message: ChecksDone) -> None:
        if message.config is not self.store.config:
            return  # a newer edit has its own check on the way
        self.problems = message.problems
        self._checking = False
        self._show_problems()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        error = event.worker.error
        if event.worker.group == "config-checks":
            self.notify(f"Could not check the config: {error}", severity="error")
        elif event.worker.group == "start-training":
            detail = str(error) if isinstance(error, WorkbenchError) else f"{type(error).__name__}: {error}"
            self.notify(detail, title="Training did not start", severity="error", timeout=10)

    def _show_problems(self) -> None:
        marks: dict[str, tuple[str, str]] = {}
        for problem in self.problems:
            marks.setdefault(problem.field, (problem.severity, problem.message))
        for dotted, message in self.schema_errors.items():
            marks[dotted] = ("error", message)
        self.query_one(ConfigForm).show_problems(marks)
        self._refresh_views()

    def _show_status(self) -> None:
        store = self.store
        name = str(store.path) if store.path else "unsaved config"
        dirty = " [yellow]● modified[/yellow]" if store.path and store.config != self.saved_config else ""
        errors = sum(p.is_error for p in self.problems) + len(self.schema_errors)
        warnings = sum(not p.is_error for p in self.problems)
        verdict = "[green]✓ ready[/green]" if not errors else f"[red]✗ {errors} error(s)[/red]"
        if warnings:
            verdict += f" [yellow]⚠ {warnings} warning(s)[/yellow]"
        if self._checking:
            verdict += " [dim]checking…[/dim]"
        batch = store.config.effective_batch_size
        text = f"{name}{dirty} · {verdict} · effective batch {batch}"
        if text != self._status_text:
            self._status_text = text
            self.query_one("#config-status", Static).update(text)

    # ---- the form -> the store -----------------------------------------------------------------

    def on_config_field_row_edited(self, message: ConfigFieldRow.Edited) -> None:
        row = message.row
        # The text the row shows now, not the one the message carried: a burst of keys queues
        # several messages, and the field's error must match what is on screen.
        self._take_text(row, row.editor_text())
        self._show_problems()
        if row.has_focus_within:
            self._show_help(row)

    def _take_text(self, row: ConfigFieldRow, text: str) -> None:
        """Validate a field's text: a good value goes to the store, a refused one keeps its reason."""
        from pydantic import ValidationError

        dotted = row.spec.dotted
        try:
            value = row.spec.parse(text)
            self.schema_errors.pop(dotted, None)  # before the update: its subscribers re-check the rest
            if value != self.store.get(dotted):
                self.store.update(dotted, value)
        except ValidationError as error:
            self.schema_errors[dotted] = _plain_message(error.errors()[0]["msg"])
        except ValueError as error:
            self.schema_errors[dotted] = str(error)

    def check_shown_values(self) -> None:
        """Take every field's text as it is shown now (what Ctrl+R starts)."""
        for row in self.query_one(ConfigForm).rows():
            self._take_text(row, row.editor_text())
        self._show_problems()

    def on_config_field_row_focused(self, message: ConfigFieldRow.Focused) -> None:
        self._show_help(message.row)

    def _show_help(self, row: ConfigFieldRow) -> None:
        from rich.markup import escape

        text = f"[b]{escape(row.spec.dotted)}[/b] — {escape(row.spec.help_text())}"
        if row.problem:
            color = "red" if row.problem[0] == "error" else "yellow"
            text += f"\n[{color}]{escape(row.problem[1])}[/{color}]"
        self.query_one("#field-help", Static).update(text)

    # ---- presets, diff, launch view ------------------------------------------------------------

    def on_preset_picker_applied(self, message: PresetPicker.Applied) -> None:
        preset = PRESETS[message.preset_name]
        self.schema_errors.clear()
        self.store.replace(preset.config(self.store.config))
        self._show_form()
        self.notify(f"Applied “{preset.title}”. Its reasons stay on the Presets tab.", title="Preset")

    def _diff_sources(self) -> list[tuple[str, str]]:
        sources = [(f"Preset: {preset.title}", f"preset:{name}") for name, preset in PRESETS.items()]
        if self.store.path and self.store.path.is_file():
            sources.append((f"Saved file: {self.store.path.name}", "file"))
        root = runs_dir()
        if root.is_dir():
            runs = sorted((path for path in root.iterdir() if (path / CONFIG_FILE).is_file()), reverse=True)
            sources += [(f"Run: {path.name}", f"run:{path}") for path in runs[:20]]
        return sources

    def _comparison(self, key: str) -> tuple[str, RunConfig]:
        if key.startswith("preset:"):
            preset = PRESETS[key.removeprefix("preset:")]
            return f"preset “{preset.title}”", preset.config(self.store.config)
        if key == "file":
            return f"the saved {self.store.path.name}", load_config(self.store.path)
        run = Path(key.removeprefix("run:"))
        return f"run {run.name}", load_config(run / CONFIG_FILE)

    def _refresh_diff(self) -> None:
        diff = self.query_one(ConfigDiff)
        diff.set_sources(self._diff_sources())
        if diff.source:
            self._show_diff(diff.source)

    def _show_diff(self, key: str) -> None:
        try:
            label, other = self._comparison(key)
        except WorkbenchError as error:
            self.notify(str(error), title="Cannot compare", severity="error")
            return
        self.query_one(ConfigDiff).show_differences(label, config_differences(self.store.config, other))

    def on_config_diff_source_chosen(self, message: ConfigDiff.SourceChosen) -> None:
        self._show_diff(message.key)

    def on_config_launch_view_chosen(self, message: ConfigLaunch.ViewChosen) -> None:
        self._show_launch()

    def _show_launch(self) -> None:
        launch = self.query_one(ConfigLaunch)
        view = launch.view
        launch.show_code(view, render(self.store.config, view, config_path=self.store.path, devices=self.app.devices))
        errors = [f"{field}: {message}" for field, message in self.schema_errors.items()]
        errors += [f"{p.field}: {p.message}" for p in self.problems if p.is_error]
        launch.show_blockers(errors)

    # ---- save, open, save as -------------------------------------------------------------------

    def action_save(self) -> None:
        if self.store.path is None:
            self.action_save_as()
            return
        self._write(self.store.path)

    def action_save_as(self) -> None:
        if self.store.path:
            suggestion = str(self.store.path.with_name(f"{self.store.path.stem}-copy{self.store.path.suffix}"))
            dialog = FilePicker("Save a copy as", suggestion, suffixes=CONFIG_SUFFIXES, save=True,
                                hint="a new YAML file; you keep editing the copy (paths in it are kept relative to its folder)")
        else:
            dialog = FilePicker("Save the config", f"configs/{self.store.config.name}.yaml", suffixes=CONFIG_SUFFIXES, save=True,
                                hint="a new YAML file (paths in it are kept relative to its folder)")
        self.app.push_screen(dialog, self._save_as_chosen)

    def _save_as_chosen(self, path: Path | None) -> None:
        if not path:
            return
        target = Path(path).expanduser()
        if target.exists() and target != self.store.path:
            self.notify(f"{target} already exists; choose another name", title="Not saved", severity="error")
            return
        self._write(target)

    def _write(self, path: Path) -> None:
        try:
            save_config(self.store.config, path)
        except OSError as error:
            self.notify(f"{path}: {error.strerror or error}", title="Not saved", severity="error")
            return
        self.saved_config = self.store.config
        self.store.replace(self.store.config, path)
        self.notify(f"Saved {path}", title="Config")

    def action_open(self) -> None:
        self.app.push_screen(
            FilePicker("Open a config", str(self.store.path or ""), suffixes=CONFIG_SUFFIXES, hint="a YAML run config"),
            self._open_chosen,
        )

    def _open_chosen(self, path: Path | None) -> None:
        if not path:
            return
        target = Path(path).expanduser()
        try:
            config = load_config(target)
        except ConfigError as error:
            self.notify("\n".join(error.problems[:6]), title=f"Cannot open {target.name}", severity="error", timeout=10)
            return
        self.schema_errors.clear()
        self.saved_config = config
        self.store.replace(config, target)
        self.notify(f"Loaded {target}", title="Config")

    # ---- start training ------------------------------------------------------------------------

    @on(Button.Pressed, "#start-training")
    def _start_training_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start_training()

    def action_start_training(self) -> None:
        self.check_shown_values()
        if self.schema_errors:
            fields = ", ".join(f"{dotted} ({why})" for dotted, why in list(self.schema_errors.items())[:3])
            self.notify(f"Refused values: {fields}. Fix them first.", title="Not started", severity="error", timeout=8)
            self._open_launch_tab()
            return
        self.start_training(self.store.config)

    def action_show_tab(self, tab_id: str) -> None:
        """Open a tab with its first control focused (focus inside a pane decides the active tab)."""
        self.query_one("#hp-tabs", TabbedContent).active = tab_id
        self.query_one(self.TAB_FOCUS[tab_id]).focus()

    def _show_form(self) -> None:
        self.action_show_tab("hp-form-tab")

    def _open_launch_tab(self) -> None:
        self.action_show_tab("hp-launch-tab")

    @work(thread=True, exclusive=True, group="start-training", exit_on_error=False)
    def start_training(self, config: RunConfig) -> None:
        # Re-check now, not from the last debounce: the files or devices may have changed.
        problems = check_config(config, devices=self.app.devices)
        self.post_message(self.ChecksDone(config, problems))
        errors = [problem for problem in problems if problem.is_error]
        if errors:
            self.app.call_from_thread(self._refuse_start, errors)
            return
        run_dir = start_run(config)
        self.app.call_from_thread(self.app.open_run, Path(run_dir), "train")

    def _refuse_start(self, errors: list[Problem]) -> None:
        self._open_launch_tab()
        lines = "\n".join(problem.line() for problem in errors[:5])
        self.notify(lines, title=f"Not started: {len(errors)} error(s)", severity="error", timeout=10)
