"""The Train pane's text panels: run figures, the overfitting banner and the prompt-deck generations."""

from __future__ import annotations

from typing import Optional

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from widgets.train_runs import state_text
from workbench.runs.monitor import RunView
from workbench.runs.rundir import ACTIVE_STATES, LOGS_DIR, RunStatus
from workbench.units import format_bytes, format_duration


def _memory_rows(view: RunView, status: Optional[RunStatus]) -> list[tuple[str, Text]]:
    memory = view.memory or {}
    rows: list[tuple[str, Text]] = []
    for gpu in memory.get("gpus") or []:
        used = f"{format_bytes(gpu.get('allocated_bytes'))} used / {format_bytes(gpu.get('reserved_bytes'))} held"
        if gpu.get("utilization") is not None:
            used += f" · {gpu['utilization']:.0f}% busy"
        rows.append((f"GPU {gpu.get('index', len(rows))}", Text(used)))
    if not rows and memory.get("cpu_rss_bytes") is not None:
        rows.append(("Memory", Text(f"{format_bytes(memory['cpu_rss_bytes'])} RAM (process)")))
    estimated = (view.start or {}).get("estimated_peak_bytes") or (status.estimated_peak_bytes if status else None)
    measured = (view.end or {}).get("measured_peak_bytes") or (status.measured_peak_bytes if status else None)
    if measured:
        versus = f" (est. {format_bytes(estimated)})" if estimated else ""
        rows.append(("Peak", Text(f"{format_bytes(measured)}{versus}")))
    elif estimated:
        rows.append(("Peak est.", Text(format_bytes(estimated))))
    return rows


class RunStats(VerticalScroll):
    """State, progress, speed, time left, memory and the best evaluation of the shown run (scrolls when short)."""

    def compose(self):
        yield Static(id="train-stats-text")

    def update(self, renderable) -> None:
        self.query_one("#train-stats-text", Static).update(renderable)

    def show(self, view: Optional[RunView], status: Optional[RunStatus], loading: bool = False) -> None:
        if loading:
            self.update(Text("Reading the run's log…", style="dim"))
            return
        if view is None:
            self.update(Text("No run selected. Start one from the Hyperparameters pane or with `workbench train CONFIG.yaml`.", style="dim"))
            return
        state = status.state if status else ("completed" if view.end else "unknown")
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_row("State", state_text(state))
        reason = (status.reason if status else None) or (view.end or {}).get("reason")
        if reason and state not in ACTIVE_STATES:
            grid.add_row("Why", Text(reason, style="dim"))
        max_steps = view.max_steps or (status.max_steps if status else None)
        if max_steps:
            done = min(view.step, max_steps)
            progress = Table.grid(padding=(0, 1), expand=True)
            progress.add_column(no_wrap=True)
            progress.add_column(ratio=1)
            progress.add_row(f"{view.step}/{max_steps}", ProgressBar(total=max_steps, completed=done, complete_style="green", finished_style="cyan"))
            grid.add_row("Step", progress)
        else:
            grid.add_row("Step", Text(str(view.step)))
        if view.epoch is not None:
            total = view.total_epochs
            grid.add_row("Epoch", Text(f"{view.epoch:.2f}" + (f" of {total:.3g}" if total else "")))
        speed = view.latest_tokens_per_s
        grid.add_row("Speed", Text(f"{speed:,.0f} tokens/s" if speed is not None else "—"))
        if state in ("starting", "running"):
            grid.add_row("ETA", Text(format_duration(view.eta_s)))
        else:
            grid.add_row("ETA", Text("—", style="dim"))
        best = view.best_eval
        if best is not None:
            checkpoint = view.best_checkpoint or (status.best_checkpoint if status else None)
            where = checkpoint.rsplit("/", 1)[-1] if checkpoint else f"step {int(best[0])}"
            grid.add_row("Best eval", Text(f"{best[1]:.3f} · {where}", style="green"))
        for label, value in _memory_rows(view, status):
            grid.add_row(label, value)
        logs = view.run_dir / LOGS_DIR
        if logs.is_dir():  # evaluation.report_to sent the logs to a tracker too
            grid.add_row("Logs", Text(str(logs), style="dim", overflow="fold"))
        self.update(Group(grid))


class OverfittingBanner(Static):
    """The plain-language overfitting warning; hidden while there is nothing to warn about."""

    def show(self, message: Optional[str]) -> None:
        self.display = message is not None
        if message is not None:
            self.update(Text.assemble(("⚠ Overfitting. ", "bold"), message))


class SamplesPanel(VerticalScroll):
    """The latest generations for the prompt deck, with the first evaluation's answer beneath for contrast."""

    def compose(self):
        yield Static(id="train-samples-text")

    def show(self, view: Optional[RunView]) -> None:
        latest = view.latest_samples if view else None
        text = Text()
        if latest is None:
            self.border_title = "Generations"
            text.append("No generations yet: the trainer writes them at each evaluation.", style="dim")
        else:
            step = latest.get("step", 0)
            scored = latest.get("deck_scored")
            deck = f" · deck {latest.get('deck_hits', 0)}/{scored} as expected" if scored else ""
            self.border_title = f"Generations at step {step}{deck}"
            for sample in latest.get("samples", []):
                prompt = sample.get("prompt", "")
                mark = {True: ("✓ ", "green"), False: ("✗ ", "red")}.get(sample.get("hit"), ("", ""))
                text.append(mark[0], style=mark[1])
                text.append(f"› {prompt}\n", style="bold cyan")
                text.append(f"  {sample.get('completion', '').strip()}\n")
                first = view.first_completion(prompt)
                if first is not None and first[0] != step:
                    text.append(f"  step {first[0]}: {first[1].strip()}\n", style="dim")
        text.rstrip()
        self.query_one("#train-samples-text", Static).update(text)
