"""The Eval view's widgets: progress, a chart of the headline metric across checkpoints next to the
eval loss curve, and the rows where base and tuned differ most.

Attributes down (`show_results`, `show_progress`), messages up (`EvalRows.Chosen` when a row is
picked); the screen that hosts them (screens/eval.py) runs the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, ProgressBar, Static

from widgets.train_plots import Curve, CurvePlot
from workbench.evaluation.metrics import METRIC_TITLES
from workbench.evaluation.report import format_value, headline

METRIC_COLOR = (110, 210, 140)
KNOWLEDGE_COLOR = (170, 170, 255)
EVAL_LOSS_COLOR = (255, 150, 50)
ANSWER_WIDTH = 48


def checkpoint_curves(results: Optional[dict[str, Any]], eval_steps=(), eval_losses=()) -> list[Curve]:
    """The headline metric and general-knowledge accuracy per evaluated model (x = its step; the
    base at 0), and the run's eval loss curve, for one chart."""
    curves = []
    if results:
        models = [m for m in results["models"] if m.get("step") is not None]
        models.sort(key=lambda m: m["step"])
        metric = results.get("primary_metric")
        if metric:
            points = [(m["step"], results["metrics"].get(m["key"], {}).get(metric, {}).get("value")) for m in models]
            points = [(s, v) for s, v in points if v is not None]
            curves.append(Curve(METRIC_TITLES[metric], [s for s, _ in points], [v for _, v in points], METRIC_COLOR, markers=True, show_last=True))
        knowledge = results.get("knowledge")
        if knowledge:
            points = [(m["step"], knowledge["models"].get(m["key"], {}).get("accuracy", {}).get("value")) for m in models]
            points = [(s, v) for s, v in points if v is not None]
            curves.append(Curve("general knowledge", [s for s, _ in points], [v for _, v in points], KNOWLEDGE_COLOR, markers=True, show_last=True))
    if eval_steps:
        curves.append(Curve("eval loss", list(eval_steps), list(eval_losses), EVAL_LOSS_COLOR, show_last=True))
    return curves


class EvalRows(DataTable):
    """The rows where base and tuned differ most; Enter (or a click) asks that row in the Chat pane."""

    @dataclass
    class Chosen(Message):
        """A row was picked: its prompt, to ask both models side by side."""

        prompt: str

    prompts: dict[str, str] = {}
    """Row key -> the prompt it asks (filled by `show_rows`)."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("row", "Δ", "prompt", "base", "tuned")

    def show_rows(self, results: Optional[dict[str, Any]]) -> None:
        self.clear()
        self.prompts = {}
        if not results or len(results["models"]) < 2:
            return
        base, tuned = results["models"][0]["key"], results["models"][1]["key"]
        metric = results.get("primary_metric")
        rows = {row["index"]: row for row in results["rows"]}
        for index in results.get("most_different", []):
            row = rows[index]
            answers = [row["answers"].get(key, {}) for key in (base, tuned)]
            scores = [a.get("scores", {}).get(metric) if metric else None for a in answers]
            change = "" if None in scores else format_value(metric, scores[1] - scores[0]).replace("%", "")
            cells = [_flat(a.get("text", ""), ANSWER_WIDTH) for a in answers]
            self.add_row(str(index), change, _flat(row["prompt"], 40), *cells, key=str(index))
            self.prompts[str(index)] = row["prompt"]

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        prompt = self.prompts.get(event.row_key.value)
        if prompt:
            self.post_message(self.Chosen(prompt))


class EvalView(Vertical):
    """Progress line and bar, the checkpoint chart, the headline and the differing rows."""

    DEFAULT_CSS = """
    EvalView { height: 1fr; }
    EvalView #eval-status { height: auto; padding: 0 1; }
    EvalView #eval-progress { height: 1; padding: 0 1; }
    EvalView #eval-chart { height: 1fr; min-height: 8; }
    EvalView #eval-headline { height: auto; padding: 0 1; color: $text; }
    EvalView #eval-rows { height: 1fr; min-height: 5; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-status")
        yield ProgressBar(total=1.0, show_eta=False, id="eval-progress")
        yield CurvePlot("Across checkpoints", id="eval-chart")
        yield Static("", id="eval-headline")
        yield EvalRows(id="eval-rows")

    def show_progress(self, fraction: float, text: str) -> None:
        self.query_one("#eval-progress", ProgressBar).update(progress=fraction)
        self.query_one("#eval-status", Static).update(text)

    def show_results(self, results: Optional[dict[str, Any]], eval_steps=(), eval_losses=()) -> None:
        self.query_one("#eval-chart", CurvePlot).show_curves(checkpoint_curves(results, eval_steps, eval_losses))
        lines = headline(results) if results else []
        text = Text(" · ".join(lines) if lines else "No evaluation yet: press r to evaluate the base, the tuned model and every checkpoint.")
        if results:
            text.append(f"\n{results['data']} · {results['created']}", style="dim")
        self.query_one("#eval-headline", Static).update(text)
        self.query_one(EvalRows).show_rows(results)


def _flat(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
