"""The run-config form: one collapsible group per config section, one row per field."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Collapsible

from widgets.config_field import ConfigFieldRow
from workbench.config.fields import FieldSpec, config_fields, get_value
from workbench.config.schema import RunConfig

SECTION_TITLES = {
    "run": "Run",
    "model": "Model",
    "data": "Data",
    "method": "Method: LoRA, QLoRA or full",
    "optimization": "Optimization",
    "evaluation": "Evaluation and saving",
    "devices": "Devices",
    "prompts": "Prompt deck (generated at each evaluation)",
}


def _group(spec: FieldSpec) -> str:
    return "prompts" if spec.dotted == "prompts" else spec.section


class ConfigForm(VerticalScroll, can_focus=False):
    """Every field of a RunConfig, grouped by section. Rows send their own messages; the form only
    lays them out and finds them (`row(dotted)`, `show_config`, `show_problems`).

    Not focusable itself: Tab goes straight to the fields, and focusing a field scrolls it into view.
    """

    def __init__(self, config: RunConfig, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = config

    def compose(self) -> ComposeResult:
        groups: dict[str, list[FieldSpec]] = {}
        for spec in config_fields():
            groups.setdefault(_group(spec), []).append(spec)
        for group, specs in groups.items():
            with Collapsible(title=SECTION_TITLES.get(group, group.title()), collapsed=False, id=f"section-{group}"):
                for spec in specs:
                    yield ConfigFieldRow(spec, get_value(self._initial, spec.dotted))

    def rows(self) -> Iterable[ConfigFieldRow]:
        return self.query(ConfigFieldRow)

    def row(self, dotted: str) -> ConfigFieldRow:
        return self.query_one(f"#field-{dotted.replace('.', '-')}", ConfigFieldRow)

    def show_config(self, config: RunConfig) -> None:
        for row in self.rows():
            row.show_value(get_value(config, row.spec.dotted))

    def show_problems(self, problems: dict[str, tuple[str, str]]) -> None:
        """dotted field -> (severity, message); fields not named are cleared."""
        for row in self.rows():
            row.show_problem(problems.get(row.spec.dotted))
