"""The Data pane: open a file, browse its rows, read the quality report, clean it, and see any row
exactly as the model will see it in training.

Everything slow runs in thread workers that only post messages: loading and normalizing the file,
loading the tokenizer (no weights), counting tokens and running the checks, planning and applying
cleaning steps, filtering 100,000 rows, exporting. One lock keeps the cleaning session to one
worker at a time; results carry the session they were computed for, so a stale one is dropped.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, ProgressBar, Select, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState, get_current_worker

from screens.base import PaletteEntry, PaneScreen
from widgets.data_clean import CleaningPanel
from widgets.data_detail import RowDetail
from widgets.data_quality import QualityView
from widgets.data_table import RowTable
from widgets.file_picker import FilePicker
from widgets.path_input import PathInput
from workbench.data.browse import ANY_FLAG, RowFilter, SearchIndex
from workbench.data.chat_templates import prepare_tokenizer
from workbench.data.checks import CHECK_FLAGS
from workbench.data.cleaning import CleaningSession, Operation
from workbench.data.cleaning_steps import STEP_LABELS, operation_for
from workbench.data.data_refs import FILE_KINDS, SAVED_DATASET_MARKERS
from workbench.data.export import default_clean_path
from workbench.data.formats import FORMAT_CHOICES
from workbench.data.loading import load_conversations
from workbench.data.mixture import load_mixture
from workbench.data.recipe import export_session
from workbench.data.templating import render_training_example
from workbench.data.token_lengths import TokenCounter, load_data_tokenizer
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workbench.data.checks import QualityReport
    from workbench.data.cleaning import Plan
    from workbench.data.loading import LoadedData

DATA_SUFFIXES = tuple(FILE_KINDS)
FILTER_DELAY_S = 0.25
DETAIL_DELAY_S = 0.05


class Cancelled(Exception):
    """A newer request replaced this worker's job."""


def _is_saved_dataset(folder: Path) -> bool:
    """A `datasets` save_to_disk folder (the file picker opens it as data instead of browsing it)."""
    return any((folder / marker).is_file() for marker in SAVED_DATASET_MARKERS)


class DataScreen(PaneScreen):
    PANE_ID = "data"
    PANE_TITLE = "Data"
    CSS_PATH = "styles/data.tcss"
    AUTO_FOCUS = "#data-table"
    """Not the path input: it would swallow the app's number keys that switch panes."""
    BINDINGS = [
        Binding("o,ctrl+o", "open_file", "Open", tooltip="pick a data file (file picker)"),
        Binding("t", "next_tab", "Tabs", tooltip="Rows, Quality, Clean"),
        Binding("slash", "focus_search", "Search", key_display="/"),
        Binding("m", "toggle_model_view", "Tokens", tooltip="what the model sees / the conversation"),
        Binding("z", "toggle_zoom", "Zoom", tooltip="the selected row over the whole pane"),
        Binding("x", "drop_row", "Drop", tooltip="drop the selected row (undo with u)"),
        Binding("k", "keep_answer", "Keep answer", show=False, tooltip="resolve a conflict: keep this row's answer"),
        Binding("u", "undo", "Undo", tooltip="undo the last cleaning step"),
    ]
    DATA_KEYS_NEED = {"drop_row": ("#data-table",), "keep_answer": ("#data-table",), "undo": ("#data-table", "#clean-steps")}
    """Keys that change the rows act only where the focus is on the rows (or the step list, for undo):
    a key meant for a text box or a button never drops or undoes anything."""
    PALETTE = (
        PaletteEntry("Open a data file…", "open_file", "pick a file with the file picker"),
        PaletteEntry("Type a path to open", "focus_path", "the path box: Tab completes from the typed folder"),
        PaletteEntry("Search rows", "focus_search", "text search over prompts and answers"),
        PaletteEntry("Rows tab", "show_tab('tab-rows')"),
        PaletteEntry("Quality report", "show_tab('tab-quality')", "what the checks found"),
        PaletteEntry("Clean tab", "show_tab('tab-clean')", "the cleaning steps with their counts"),
        *(PaletteEntry(f"Clean: {label}", f"apply_step('{step}')", "applies this cleaning step (undo with u)") for step, label in STEP_LABELS.items()),
        PaletteEntry("Undo the last cleaning step", "undo"),
        PaletteEntry("Export the cleaned rows", "export_rows_now", "writes a new file; the source is never changed"),
        PaletteEntry("Use the export for training", "use_export", "sets data.train_file in the run config"),
        PaletteEntry("Toggle what the model sees", "toggle_model_view", "the tokens, trained ones highlighted"),
        PaletteEntry("Zoom the selected row", "toggle_zoom"),
        PaletteEntry("Drop the selected row", "drop_row", "undo with u"),
        PaletteEntry("Keep this answer (resolve a conflict)", "keep_answer"),
    )

    class ConfigChanged(Message):
        """The shared run config changed (the store may call from any thread)."""

    @dataclass
    class Progress(Message):
        """A worker's stage and fraction (None: unknown)."""

        text: str
        fraction: float | None

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DataScreen.Progress)

    @dataclass
    class Loaded(Message):
        loaded: "LoadedData"

    @dataclass
    class TokenizerReady(Message):
        tokenizer: "PreTrainedTokenizerBase"
        name: str

    @dataclass
    class Analyzed(Message):
        session_id: int
        report: "QualityReport"
        plans: dict[str, str]

    @dataclass
    class Filtered(Message):
        session_id: int
        generation: int
        view: list[int]
        matching: int | None

    @dataclass
    class Applied(Message):
        session_id: int
        plan: "Plan"

    @dataclass
    class Replayed(Message):
        session_id: int

    @dataclass
    class Exported(Message):
        """An export finished: what to say, the files written and their format."""

        text: str
        train_path: Path
        validation_path: Path | None
        output_format: str

    @dataclass
    class MixtureSummarized(Message):
        """Per-source rows and tokens of the config's data.sources, as the summary shows them."""

        text: str

    def __init__(self) -> None:
        super().__init__()
        self.loaded: "LoadedData | None" = None
        self.session: "CleaningSession | None" = None
        self.session_id = 0
        self.report: "QualityReport | None" = None
        self.checks_failed: str | None = None
        """Why the last checks could not finish (shown instead of "checking…" for ever)."""
        self.tokenizer = None
        """The tokenizer prepared for data.chat_template (what counts tokens and draws the token view)."""
        self.model_tokenizer = None
        """The model's own tokenizer, as loaded or shared by the app (never changed here)."""
        self.tokenizer_note = "Loading the model's tokenizer…"
        self.search_index: SearchIndex | None = None
        self.row_filter = RowFilter()
        self.filter_generation = 0
        self.plan_summaries: dict[str, str | None] = {}
        self._session_lock = threading.Lock()
        self._filter_timer = None
        self._detail_timer = None
        self._unsubscribe: Callable[[], None] | None = None
        self._settings = None
        self._tokenizer_requested = False
        self.last_export: DataScreen.Exported | None = None
        self._mixture_key: tuple | None = None

    # ---- layout ----------------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Vertical(id="data-body"):
            with Horizontal(id="data-open"):
                yield PathInput(
                    placeholder="file, folder, owner/name or dataset_info.json#entry · ctrl+o: file picker",
                    id="data-path",
                    suffixes=DATA_SUFFIXES,
                )
                yield Select([(name, name) for name in FORMAT_CHOICES], value="auto", allow_blank=False, id="data-format")
                yield Button("Open", id="data-open-button", variant="primary")
            with Horizontal(id="data-status-row"):
                yield Static("No file open: o picks a file, or type a path and press Enter.", id="data-status")
                yield ProgressBar(id="data-progress", total=1.0, show_eta=False)
            yield Static("", id="data-mixture")
            yield Static("", id="data-error")
            with TabbedContent(id="data-tabs"):
                with TabPane("Rows", id="tab-rows"):
                    with Horizontal(id="data-filters"):
                        yield Input(placeholder="search text  (/)", id="data-search")
                        yield Select(
                            [("all rows", ""), ("any flag", ANY_FLAG)] + [(flag, flag) for flag in CHECK_FLAGS.values()],
                            value="", allow_blank=False, id="data-flag",
                        )
                        yield Input(placeholder="min tokens", id="data-min-tokens", restrict=r"[0-9]*", max_length=7)
                        yield Static("", id="data-matches")
                    yield RowTable(id="data-table")
                    yield RowDetail(id="data-detail")
                with TabPane("Quality", id="tab-quality"):
                    yield QualityView(id="data-quality")
                with TabPane("Clean", id="tab-clean"):
                    yield CleaningPanel(id="data-clean")

    def on_mount(self) -> None:
        store = self.app.config_store
        self._settings = self._current_settings()
        self._unsubscribe = store.subscribe(lambda config: self.post_message(self.ConfigChanged()))
        train_file = store.config.data.train_file
        if train_file:
            self.query_one("#data-path", Input).value = str(train_file)
        self.watch(self.app, "model_status", self._model_status_changed)
        self.call_later(self._refresh_mixture)

    def _model_status_changed(self, status) -> None:
        """Share the app's tokenizer when it loads the model; load one only when it does not.

        Two threads importing transformers at once can break its lazy imports, and the app's
        loader already reads the same tokenizer, so while it is loading this pane waits for it.
        """
        if self.model_tokenizer is not None or status.state == "loading":
            return
        if status.state == "ready" and getattr(self.app, "tokenizer", None) is not None:
            self.post_message(self.TokenizerReady(self.app.tokenizer, status.name))
        elif not self._tokenizer_requested:
            self._tokenizer_requested = True
            self.load_tokenizer(self.app.config_store.config.model.name_or_path)

    def on_unmount(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()

    def _current_settings(self) -> tuple:
        data = self.app.config_store.config.data
        return (
            self.app.config_store.config.model.name_or_path, data.max_seq_length, data.system_prompt,
            data.assistant_only_loss, data.chat_template,
        )

    def on_data_screen_config_changed(self, message: ConfigChanged) -> None:
        settings = self._current_settings()
        if settings == self._settings:
            return
        model_changed = settings[0] != self._settings[0]
        template_changed = settings[4] != self._settings[4]
        self._settings = settings
        if model_changed:
            self.tokenizer = self.model_tokenizer = None
            self.tokenizer_note = "Loading the model's tokenizer…"
            self.load_tokenizer(settings[0])
            return
        if template_changed and self.model_tokenizer is not None:
            self._prepare_tokenizer()
        if self.loaded is not None:
            self._start_session(self.loaded)
        if template_changed:
            self._schedule_detail()

    @property
    def max_seq_length(self) -> int:
        return self.app.config_store.config.data.max_seq_length

    # ---- opening a file --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        allowed = super().check_action(action, parameters)
        needs = self.DATA_KEYS_NEED.get(action)
        if not allowed or needs is None:
            return allowed
        focused = self.focused
        return focused is not None and any(focused.id == selector.lstrip("#") for selector in needs)

    def focus_main(self) -> None:
        """Escape from a text box: the active tab's main widget (the rows, the checks, the steps)."""
        self.query_one(self.TAB_FOCUS[self.query_one(TabbedContent).active]).focus()

    def action_focus_path(self) -> None:
        self.query_one("#data-path", Input).focus()

    def action_open_file(self) -> None:
        """The file picker, starting from the path in the box (or the working directory)."""
        def chosen(path: Path | None) -> None:
            if path is not None:
                self.query_one("#data-path", Input).value = str(path)
                self.open_path(str(path))

        current = self.query_one("#data-path", Input).value.strip()
        self.app.push_screen(
            FilePicker(
                "Open a data file", current, suffixes=DATA_SUFFIXES, accept_directory=_is_saved_dataset,
                hint=f"{', '.join(DATA_SUFFIXES)} files, or a datasets save_to_disk folder",
            ),
            chosen,
        )

    def action_show_tab(self, pane: str) -> None:
        self.show_tab(pane)

    TAB_FOCUS = {"tab-rows": "#data-table", "tab-quality": "#quality-checks", "tab-clean": "#clean-steps"}

    def action_next_tab(self) -> None:
        self.show_tab({"tab-rows": "tab-quality", "tab-quality": "tab-clean"}.get(self.query_one(TabbedContent).active, "tab-rows"))

    def show_tab(self, pane: str) -> None:
        """Switch tabs and focus the tab's main widget (focus left in a hidden tab would switch back)."""
        self.set_focus(None)
        self.query_one(TabbedContent).active = pane
        self.call_after_refresh(lambda: self.query_one(self.TAB_FOCUS[pane]).focus())

    def action_focus_search(self) -> None:
        self.set_focus(None)
        self.query_one(TabbedContent).active = "tab-rows"
        self.call_after_refresh(self.query_one("#data-search", Input).focus)

    @on(Input.Submitted, "#data-path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        self.open_path(event.value)

    @on(Input.Submitted, "#data-search, #data-min-tokens")
    def _filter_submitted(self) -> None:
        self.query_one(RowTable).focus()

    @on(Button.Pressed, "#data-open-button")
    def _open_pressed(self) -> None:
        self.open_path(self.query_one("#data-path", Input).value)

    def open_path(self, text: str) -> None:
        """Load a file (in a worker); its rows replace the current ones once it loads."""
        path = text.strip()
        if not path:
            self._show_error("Type the path of a .json, .jsonl, .csv or .parquet file.")
            return
        self._show_error(None)
        self.query_one("#data-status", Static).update(f"Opening {path}…")
        data_format = str(self.query_one("#data-format", Select).value)
        self.load_file(path, data_format)

    def _progress_reporter(self) -> Callable[[str, float | None], None]:
        """Progress for the calling worker; it may be called from helper threads, and raises
        Cancelled there once a newer request replaced the worker."""
        worker = get_current_worker()

        def report(stage: str, fraction: float | None) -> None:
            if worker.is_cancelled:
                raise Cancelled()
            self.post_message(self.Progress(stage, fraction))

        return report

    @work(thread=True, exclusive=True, group="data-load", exit_on_error=False)
    def load_file(self, path: str, data_format: str) -> None:
        loaded = load_conversations(path, data_format, self._progress_reporter())
        self.post_message(self.Loaded(loaded))

    @work(thread=True, exclusive=True, group="data-tokenizer", exit_on_error=False)
    def load_tokenizer(self, model: str) -> None:
        self.post_message(self.Progress(f"Loading the tokenizer of {model} (no weights)…", None))
        name, tokenizer = load_data_tokenizer(model)
        if not get_current_worker().is_cancelled:  # the model changed again meanwhile
            self.post_message(self.TokenizerReady(tokenizer, name))

    def on_data_screen_progress(self, message: Progress) -> None:
        """A long step's stage, with a real bar while it reports how far it got (reading, tokenizing, checking)."""
        self.query_one("#data-status", Static).update(message.text)
        self._show_progress(message.fraction)

    def _show_progress(self, fraction: float | None) -> None:
        bar = self.query_one("#data-progress", ProgressBar)
        bar.display = fraction is not None
        if fraction is not None:
            bar.update(progress=fraction)

    def on_data_screen_loaded(self, message: Loaded) -> None:
        loaded = message.loaded
        if self.loaded is None or self.loaded.path != loaded.path:
            self._clear_filter()  # a search for the last file's rows means nothing in this one
        self.loaded = loaded
        self.query_one("#data-path", Input).value = str(loaded.path)
        self.app.notify(f"{loaded.rows:,} rows, {loaded.format}", title=loaded.path.name, timeout=3)
        clean = self.query_one(CleaningPanel)
        clean.suggest_export_path(str(default_clean_path(loaded.path)))
        self._start_session(loaded, keep_steps=False)
        self.show_tab("tab-rows")

    def on_data_screen_tokenizer_ready(self, message: TokenizerReady) -> None:
        if self.model_tokenizer is not None:
            return
        self.model_tokenizer = message.tokenizer
        self._prepare_tokenizer()
        if self.loaded is not None:
            self._start_session(self.loaded)
        self._schedule_detail()

    def _prepare_tokenizer(self) -> None:
        """The model's tokenizer with data.chat_template (a copy when it changes anything); a
        choice that cannot be used (auto on a base model) leaves a note instead of a tokenizer."""
        try:
            self.tokenizer = prepare_tokenizer(self.model_tokenizer, self.app.config_store.config.data.chat_template).tokenizer
            self.tokenizer_note = ""
        except WorkbenchError as error:
            self.tokenizer, self.tokenizer_note = None, str(error)

    def _start_session(self, loaded: "LoadedData", keep_steps: bool = True) -> None:
        """A session for the loaded rows with the current model and limits; with `keep_steps`, the
        steps applied to the previous session of the same file are replayed on it (a recipe, in
        effect), so changing the model or max_seq_length keeps the cleaning done so far."""
        previous = self.session
        same_file = previous is not None and previous.source_path == loaded.path
        replay = previous.operations if keep_steps and same_file else []
        data = self.app.config_store.config.data
        counter = TokenCounter(self.tokenizer, data.system_prompt) if self.tokenizer is not None else None
        self.session_id += 1
        self.session = CleaningSession(
            loaded.conversations,
            source_path=loaded.path,
            source_format=loaded.format,
            token_counter=counter,
            model_name=self.app.config_store.config.model.name_or_path,
            max_seq_length=data.max_seq_length,
            near_threshold=previous.near_threshold if previous is not None else 0.8,
        )
        self.report = None
        if replay:
            self.replay_steps(self.session_id, replay)
        else:
            self._rows_changed()

    def _rows_changed(self) -> None:
        """The session's rows changed (a file, a step, an undo): relist, then re-check in a worker."""
        session = self.session
        self.search_index = SearchIndex(session.conversations)
        self.query_one(RowTable).annotate({}, {}, self.max_seq_length)
        self._apply_filter_now()
        self.plan_summaries = {step: None for step in STEP_LABELS}
        self._show_plans()
        self.query_one(CleaningPanel).show_applied(session.applied, len(session.conversations))
        self.checks_failed = None
        self._show_summary()
        clean = self.query_one(CleaningPanel)
        self.analyze(self.session_id, self.row_filter.query, clean.fraction, clean.seed)

    def _show_summary(self) -> None:
        if self.loaded is None or self.session is None:
            return
        rows = len(self.session.conversations)
        text = f"[b]{self.loaded.path.name}[/b] · {self.loaded.format}"
        text += " (detected)" if self.loaded.detected else ""
        text += f" · {rows:,} rows"
        if rows != self.loaded.rows:
            text += f" of {self.loaded.rows:,}"
        if self.report is None and self.checks_failed:
            text += f" · [red]checks failed: {escape(self.checks_failed)}[/red]"
        elif self.report is None:
            text += " · checking…" if self.tokenizer is not None else " · waiting for the tokenizer…"
        else:
            flagged = len(self.report.flags_by_row())
            text += f" · {flagged:,} rows flagged" if flagged else " · no problems found"
        self.query_one("#data-status", Static).update(text)
        self._show_progress(None)

    def _show_error(self, text: str | None) -> None:
        if text is not None:
            self._show_progress(None)
        panel = self.query_one("#data-error", Static)
        panel.set_class(text is not None, "-shown")
        panel.update(f"✗ {text}" if text else "")

    # ---- mixture summary -------------------------------------------------------------------------

    @on(ConfigChanged)
    @on(TokenizerReady)
    def _mixture_inputs_changed(self) -> None:
        # After the pane's own handler for the same message has set the tokenizer.
        self.call_later(self._refresh_mixture)

    def _refresh_mixture(self) -> None:
        """Re-summarize data.sources when they, the split, the seed or the tokenizer changed."""
        config = self.app.config_store.config
        data = config.data
        key = (
            data.model_dump_json(include={"sources", "mix_strategy", "validation_split", "validation_file", "system_prompt"}),
            config.optimization.seed, id(self.tokenizer),
        )
        if key == self._mixture_key:
            return
        self._mixture_key = key
        line = self.query_one("#data-mixture", Static)
        line.display = bool(data.sources)
        if data.sources:
            line.update(f"mixture of {len(data.sources)} sources: reading…")
            self.summarize_mixture(data.model_copy(deep=True), config.optimization.seed, self.tokenizer)

    @work(thread=True, exclusive=True, group="data-mixture", exit_on_error=False)
    def summarize_mixture(self, data, seed: int, tokenizer) -> None:
        try:
            mixture = load_mixture(data, seed)
            tokens = mixture.source_tokens(tokenizer, data.system_prompt) if tokenizer is not None else None
        except WorkbenchError as error:
            self.post_message(self.MixtureSummarized(f"mixture: [red]✗ {error}[/red]"))
            return
        if get_current_worker().is_cancelled:
            return
        heading = (
            f"[b]mixture[/b] of {len(mixture.sources)} sources ({mixture.strategy}): {len(mixture.train):,} training rows"
            + ("" if tokens is not None else " · tokens once the tokenizer is ready")
        )
        lines = [f"  {line}" for line in mixture.describe(tokens).splitlines()]
        self.post_message(self.MixtureSummarized("\n".join([heading, *lines])))

    def on_data_screen_mixture_summarized(self, message: MixtureSummarized) -> None:
        self.query_one("#data-mixture", Static).update(message.text)

    # ---- checks and step previews ----------------------------------------------------------------

    @work(thread=True, exclusive=True, group="data-analysis", exit_on_error=False)
    def analyze(self, session_id: int, query: str, fraction: float, seed: int) -> None:
        progress = self._progress_reporter()
        session = self.session
        with self._session_lock:
            if session is None or session_id != self.session_id:
                return
            report = session.report(progress)
            plans: dict[str, str] = {}
            for step in STEP_LABELS:
                progress("Counting what each cleaning step would touch", None)
                operation = operation_for(step, query=query, fraction=fraction, seed=seed)
                if operation is None or (step in ("drop_too_long", "truncate_too_long") and session.token_counter is None):
                    continue
                plans[step] = session.plan(operation).summary()
        self.post_message(self.Analyzed(session_id, report, plans))

    def on_data_screen_analyzed(self, message: Analyzed) -> None:
        if message.session_id != self.session_id:
            return
        self.report = message.report
        tokens = {}
        if message.report.token_lengths is not None:
            tokens = dict(zip(message.report.source_indices, message.report.token_lengths.total.tolist()))
        self.query_one(RowTable).annotate(tokens, message.report.flags_by_row(), self.max_seq_length)
        self.query_one(QualityView).show(message.report)
        self.plan_summaries = {step: message.plans.get(step) for step in STEP_LABELS if step in message.plans}
        self._show_plans()
        self._show_summary()
        if not self.row_filter.is_empty:
            self._apply_filter_now()
        self._schedule_detail()

    def _show_plans(self) -> None:
        self.query_one(CleaningPanel).show_plans(self.plan_summaries, self.row_filter.query)

    def on_quality_view_check_chosen(self, message: QualityView.CheckChosen) -> None:
        self.query_one("#data-flag", Select).value = CHECK_FLAGS[message.check]
        self.show_tab("tab-rows")

    def on_quality_view_threshold_changed(self, message: QualityView.ThresholdChanged) -> None:
        if self.session is None:
            return
        self.session.near_threshold = message.threshold  # the session caches per threshold
        self.report = None
        self._rows_changed()

    # ---- filtering -------------------------------------------------------------------------------

    @on(Input.Changed, "#data-search, #data-min-tokens")
    @on(Select.Changed, "#data-flag")
    def _filter_changed(self) -> None:
        self._schedule_filter()

    def _read_filter(self) -> RowFilter:
        minimum = self.query_one("#data-min-tokens", Input).value
        flag = self.query_one("#data-flag", Select).value
        return RowFilter(
            query=self.query_one("#data-search", Input).value.strip(),
            flag=str(flag) if flag else None,
            min_tokens=int(minimum) if minimum.isdigit() else None,
        )

    def _clear_filter(self) -> None:
        with self.prevent(Input.Changed, Select.Changed):
            self.query_one("#data-search", Input).value = ""
            self.query_one("#data-min-tokens", Input).value = ""
            self.query_one("#data-flag", Select).value = ""
        self.row_filter = RowFilter()
        self._show_matches(None)

    def _show_matches(self, shown: int | None) -> None:
        """How many rows the filter lets through ("12 of 270"), blank without a filter."""
        total = len(self.session.conversations) if self.session is not None else 0
        text = "" if shown is None else f"{shown:,} of {total:,}" if shown else f"[yellow]0 of {total:,}[/yellow]"
        self.query_one("#data-matches", Static).update(text)

    def _schedule_filter(self) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self._filter_timer = self.set_timer(FILTER_DELAY_S, self._apply_filter_now)

    def _apply_filter_now(self) -> None:
        if self.session is None:
            return
        self.row_filter = self._read_filter()
        self.filter_generation += 1
        conversations = self.session.conversations
        if self.row_filter.is_empty:
            self.query_one(RowTable).show(conversations, range(len(conversations)))
            self._show_filter_plans(None)
            self._show_matches(None)
            return
        table = self.query_one(RowTable)
        self.filter_rows(self.session_id, self.filter_generation, self.row_filter, table.flags, table.tokens)

    @work(thread=True, exclusive=True, group="data-filter", exit_on_error=False)
    def filter_rows(self, session_id: int, generation: int, row_filter: RowFilter, flags, tokens) -> None:
        index = self.search_index
        if index is None:
            return
        view = index.matching(row_filter, flags, tokens)
        matching = len(view) if row_filter == RowFilter(query=row_filter.query) else None
        if matching is None and row_filter.query:
            matching = len(index.matching(RowFilter(query=row_filter.query)))
        self.post_message(self.Filtered(session_id, generation, view, matching))

    def on_data_screen_filtered(self, message: Filtered) -> None:
        if message.session_id != self.session_id or message.generation != self.filter_generation:
            return
        self.query_one(RowTable).show(self.session.conversations, message.view)
        self._show_filter_plans(message.matching)
        self._show_matches(len(message.view))

    def _show_filter_plans(self, matching: int | None) -> None:
        """The two search steps' counts follow the search box (the other steps wait for a re-check)."""
        rows = len(self.session.conversations)
        if matching is None:
            self.plan_summaries.pop("filter_keep", None)
            self.plan_summaries.pop("filter_drop", None)
        else:
            self.plan_summaries["filter_keep"] = f"{rows - matching:,} rows dropped"
            self.plan_summaries["filter_drop"] = f"{matching:,} rows dropped"
        self._show_plans()

    # ---- the selected row ------------------------------------------------------------------------

    def on_row_table_highlighted(self, message: RowTable.Highlighted) -> None:
        self._schedule_detail()

    def _schedule_detail(self) -> None:
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY_S, self._show_detail)

    def _selected(self):
        table = self.query_one(RowTable)
        if not table.view or table.current_row is None:
            return None
        return table.rows[table.view[table.cursor]]

    def _show_detail(self) -> None:
        detail = self.query_one(RowDetail)
        conversation = self._selected()
        if conversation is None:
            detail.show(None)
            return
        reasons = []
        if self.report is not None:
            row = conversation.source_index
            for check, found in self.report.reasons.items():
                if row in found:
                    reasons.append(found[row])
            for check, groups in self.report.groups.items():
                group = next((g for g in groups if row in g), None)
                if group is not None:
                    others = ", ".join(str(r) for r in group if r != row)
                    reasons.append(f"{check.replace('_', ' ')}: also rows {others}")
        example, note = None, self.tokenizer_note
        if detail.mode == "model" and self.tokenizer is not None:
            data = self.app.config_store.config.data
            try:
                example = render_training_example(
                    self.tokenizer, conversation, data.max_seq_length,
                    assistant_only=data.assistant_only_loss, system_prompt=data.system_prompt,
                )
            except WorkbenchError as error:
                note = str(error)
        detail.show(conversation, reasons, example, note)

    def action_toggle_model_view(self) -> None:
        detail = self.query_one(RowDetail)
        detail.mode = "conversation" if detail.mode == "model" else "model"
        self._show_detail()

    def action_toggle_zoom(self) -> None:
        self.toggle_class("-zoom-detail")

    # ---- cleaning --------------------------------------------------------------------------------

    def on_cleaning_panel_step_chosen(self, message: CleaningPanel.StepChosen) -> None:
        self.action_apply_step(message.step)

    def action_apply_step(self, step: str) -> None:
        """Apply one step of the cleaning list (the palette's "Clean: …" entries, Enter in the list)."""
        if self.session is None:
            self.app.notify("Open a file first.", severity="warning")
            return
        clean = self.query_one(CleaningPanel)
        operation = operation_for(step, query=self.row_filter.query, fraction=clean.fraction, seed=clean.seed)
        if operation is None:
            self.app.notify("Type a search in the Rows tab first.", severity="warning")
            return
        self.apply_operation(operation)

    def action_export_rows_now(self) -> None:
        """Export to the path in the Clean tab's box (shown first, so the path can be checked)."""
        self.show_tab("tab-clean")
        self.query_one(CleaningPanel).request_export()

    def action_use_export(self) -> None:
        if self.last_export is None:
            self.app.notify("Export the rows first (Clean tab).", severity="warning")
            return
        self.on_cleaning_panel_use_for_training(CleaningPanel.UseForTraining())

    def action_drop_row(self) -> None:
        conversation = self._selected()
        if conversation is not None and self.session is not None:
            self.apply_operation(Operation("drop_rows", {"rows": [conversation.source_index]}))

    def action_keep_answer(self) -> None:
        """Resolve the selected row's conflict by hand: keep this answer, drop the others."""
        conversation = self._selected()
        if conversation is None or self.report is None:
            return
        row = conversation.source_index
        if not any(row in group for group in self.report.groups["conflicts"]):
            self.app.notify("This row is in no conflict group.", severity="warning")
            return
        self.apply_operation(Operation("resolve_conflicts", {"mode": "pick", "keep_rows": [row]}))

    @work(thread=True, exclusive=False, group="data-apply", exit_on_error=False)
    def apply_operation(self, operation) -> None:
        session_id = self.session_id
        self.post_message(self.Progress(f"Applying: {operation.describe()}…", None))
        with self._session_lock:
            if self.session is None or session_id != self.session_id:
                return
            plan = self.session.apply(operation)
        self.post_message(self.Applied(session_id, plan))

    @work(thread=True, exclusive=True, group="data-apply", exit_on_error=False)
    def replay_steps(self, session_id: int, operations: list) -> None:
        progress = self._progress_reporter()
        with self._session_lock:
            for operation in operations:
                if self.session is None or session_id != self.session_id:
                    return
                progress(f"Replaying: {operation.describe()}", None)
                self.session.apply(operation)
        self.post_message(self.Replayed(session_id))

    def on_data_screen_replayed(self, message: Replayed) -> None:
        if message.session_id == self.session_id:
            self._rows_changed()

    def on_data_screen_applied(self, message: Applied) -> None:
        if message.session_id != self.session_id:
            return
        rows = len(self.session.conversations)
        self.app.notify(
            f"{message.plan.operation.describe()}: {message.plan.summary()} · {rows:,} rows now · u undoes it",
            timeout=5,
        )
        self._rows_changed()

    def action_undo(self) -> None:
        self.query_one(CleaningPanel).post_message(CleaningPanel.UndoRequested())

    def on_cleaning_panel_undo_requested(self, message: CleaningPanel.UndoRequested) -> None:
        if self.session is None:
            return
        with self._session_lock:
            undone = self.session.undo()
        if undone is None:
            self.app.notify("Nothing to undo.")
            return
        self.app.notify(f"Undone: {undone.operation.describe()} · {len(self.session.conversations):,} rows now", timeout=4)
        self._rows_changed()

    def on_cleaning_panel_settings_changed(self, message: CleaningPanel.SettingsChanged) -> None:
        self.plan_summaries.pop("split_validation", None)
        self._show_plans()

    def on_cleaning_panel_export_requested(self, message: CleaningPanel.ExportRequested) -> None:
        if self.session is None:
            self.app.notify("Open a file first.", severity="warning")
            return
        self.export_rows(message.path, message.output_format)

    @work(thread=True, exclusive=True, group="data-export", exit_on_error=False)
    def export_rows(self, path: str, output_format: str) -> None:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)  # the workspace folder, say
        with self._session_lock:
            result = export_session(self.session, path, output_format)
        text = f"Wrote {result.train_path} ({result.train_rows:,} rows, {output_format})"
        if result.validation_path is not None:
            text += f", {result.validation_path.name} ({result.validation_rows:,} rows)"
        text += f" and the recipe {result.recipe_path.name}"
        self.post_message(self.Exported(text, result.train_path, result.validation_path, output_format))

    def on_data_screen_exported(self, message: Exported) -> None:
        self.last_export = message
        self.query_one(CleaningPanel).show_export(message.text, exported=True)
        self.app.notify(message.text, title="Exported", timeout=6)

    def on_cleaning_panel_use_for_training(self, message: CleaningPanel.UseForTraining) -> None:
        """Train on the export: data.train_file, its format, no column mapping (the export writes the
        format's own columns), no mixture, and the export's validation file (else validation_split
        of the new file: a validation file chosen for the old data may be in another format)."""
        exported = self.last_export
        if exported is None:
            return
        validation = str(exported.validation_path) if exported.validation_path is not None else None
        self.app.config_store.update_many({
            "data.train_file": str(exported.train_path),
            "data.format": exported.output_format,
            "data.columns": None,
            "data.sources": [],
            "data.validation_file": validation,
        })
        used = exported.train_path.name + (f" and {exported.validation_path.name}" if exported.validation_path else "")
        self.app.notify(f"The run config now trains on {used} ({exported.output_format}).", title="Data", timeout=5)

    # ---- failures --------------------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR or not (event.worker.group or "").startswith("data-"):
            return
        error = event.worker.error
        if isinstance(error, Cancelled):
            return
        text = first_line(error)
        if not isinstance(error, WorkbenchError):
            text = f"{type(error).__name__}: {text}"
        group = event.worker.group
        if group == "data-load":
            if self.loaded is not None:  # the rows on screen are still the last file's: say which
                self._show_error(f"{text} · still showing {self.loaded.path.name}")
                self._show_summary()
            else:
                self._show_error(text)
                self.query_one("#data-status", Static).update("No file open: the file could not be opened.")
        elif group == "data-tokenizer":
            self.tokenizer_note = f"No tokenizer: {text}"
            self.app.notify(text, title="Tokenizer failed to load", severity="error", timeout=8)
            if self.loaded is not None:
                self._start_session(self.loaded)
        elif group == "data-export":
            self.query_one(CleaningPanel).show_export(f"[red]✗ {text}[/red]")
        elif group == "data-analysis":
            self.checks_failed = text
            self._show_summary()
            self.app.notify(text, title="Data checks failed", severity="error", timeout=8)
        else:
            self.app.notify(text, title="Data", severity="error", timeout=8)
