"""The demo's data story: the messy sample file, what the checks find, and the Data pane's cleaning steps.

The steps are the Data pane's own operations (workbench.data.cleaning), applied in the order the
pane lists them, so the headless demo and the guided tour clean the file the same way. The result
and its recipe are written to the demo's work directory; the sample file is only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from workbench.data.cleaning import CleaningSession, Operation
from workbench.data.cleaning_steps import FIXED_OPERATIONS
from workbench.data.loading import load_conversations
from workbench.data.recipe import export_session
from workbench.data.token_lengths import TokenCounter

if TYPE_CHECKING:
    from workbench.data.checks import QualityReport
    from workbench.data.cleaning import Plan
    from workbench.data.loading import LoadedData
    from workbench.data.recipe import ExportResult

CLEANING_STEPS: tuple[tuple[str, Operation], ...] = tuple(
    (step, FIXED_OPERATIONS[step])
    for step in ("strip_markup", "drop_empty", "dedupe_exact", "dedupe_near", "conflicts_keep_first", "drop_too_long")
)
"""(Data pane step id, operation): text fixes first so duplicates are found on clean text, then drops.
Conflicts keep the first answer: in the sample file the planted contradictions come after the rows they contradict."""

CHECK_WORDS = {
    "exact_duplicates": "exact duplicates",
    "near_duplicates": "near duplicates",
    "conflicts": "conflicting answers",
    "empty_response": "empty answers",
    "too_long": "too long for the model",
    "malformed_turns": "malformed turns",
    "junk": "markup or broken characters",
}
"""The checks in the words the demo prints."""


def cleaned_file_name(source: Path) -> str:
    return f"{source.stem}.clean.jsonl"


@dataclass
class DemoCleaning:
    """The messy file, what the checks found before cleaning, the steps applied and the files written."""

    loaded: "LoadedData"
    session: CleaningSession
    report: "QualityReport"
    steps: list[tuple[Operation, "Plan"]]
    export: Optional["ExportResult"] = None

    def problem_lines(self) -> list[str]:
        """One line per check that found something: '8 rows: exact duplicates'."""
        lines = []
        for check, words in CHECK_WORDS.items():
            count = self.report.count(check)
            if count:
                lines.append(f"{count:>3} {'row ' if count == 1 else 'rows'}  {words}")
        return lines

    def step_lines(self) -> list[str]:
        return [f"{operation.describe()}: {plan.summary()}" for operation, plan in self.steps]


def new_session(
    source: str | Path, tokenizer, *, max_seq_length: int, system_prompt: Optional[str], model_name: str = "default"
) -> tuple["LoadedData", CleaningSession]:
    """Load `source` into a cleaning session that counts tokens the way training will."""
    loaded = load_conversations(Path(source), "auto")
    session = CleaningSession(
        loaded.conversations,
        source_path=loaded.path,
        source_format=loaded.format,
        token_counter=TokenCounter(tokenizer, system_prompt),
        model_name=model_name,
        max_seq_length=max_seq_length,
    )
    return loaded, session


def clean_for_demo(
    source: str | Path,
    work_dir: str | Path,
    tokenizer,
    *,
    max_seq_length: int,
    system_prompt: Optional[str],
    model_name: str = "default",
) -> DemoCleaning:
    """Check the file, apply CLEANING_STEPS, and write `<work_dir>/<stem>.clean.jsonl` plus its recipe."""
    loaded, session = new_session(
        source, tokenizer, max_seq_length=max_seq_length, system_prompt=system_prompt, model_name=model_name
    )
    report = session.report()
    steps = [(operation, session.apply(operation)) for _, operation in CLEANING_STEPS]
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    export = export_session(session, work_dir / cleaned_file_name(loaded.path), "messages")
    return DemoCleaning(loaded, session, report, steps, export)
