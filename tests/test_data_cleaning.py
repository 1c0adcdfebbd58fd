"""Cleaning: counts before applying, undo, atomic export in every format, recipes that replay."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from workbench.data.cleaning import CleaningSession, Operation, strip_message
from workbench.data.conversation import Conversation, Message
from workbench.data.loading import load_conversations
from workbench.data.recipe import export_session, read_recipe
from workbench.data.token_lengths import TokenCounter
from workbench.errors import WorkbenchError

FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture
def messy(tmp_path) -> Path:
    path = tmp_path / "messy.jsonl"
    shutil.copy2(FIXTURES / "messy.jsonl", path)
    return path


def session_for(path: Path, tokenizer=None, **settings) -> CleaningSession:
    loaded = load_conversations(path)
    counter = TokenCounter(tokenizer) if tokenizer is not None else None
    return CleaningSession(
        loaded.conversations, source_path=loaded.path, source_format=loaded.format, token_counter=counter, **settings
    )


def rows_of(session: CleaningSession) -> list[int]:
    return [c.source_index for c in session.conversations]


def test_plan_counts_match_what_apply_does_and_undo_restores(messy):
    session = session_for(messy)
    original = session.conversations

    plan = session.plan(Operation("dedupe", {"mode": "near"}))
    assert plan.dropped == (1, 3) and plan.affected == 2
    assert session.conversations == original  # planning changes nothing

    applied = session.apply(Operation("dedupe", {"mode": "near"}))
    assert applied.dropped == (1, 3)
    assert len(session.conversations) == len(original) - 2
    session.apply(Operation("drop_empty"))
    assert 19 not in rows_of(session)

    assert session.undo().operation.name == "drop_empty"
    assert session.undo().operation.name == "dedupe"
    assert session.undo() is None
    assert session.conversations == original


def test_each_operation_reports_its_rows(messy, default_tokenizer):
    session = session_for(messy, default_tokenizer, max_seq_length=2048)

    assert session.plan(Operation("dedupe", {"mode": "exact"})).dropped == (1,)
    assert session.plan(Operation("drop_empty")).dropped == (19,)
    assert session.plan(Operation("drop_too_long")).dropped == (20,)
    assert session.plan(Operation("resolve_conflicts", {"mode": "drop"})).dropped == (17, 18)
    assert session.plan(Operation("resolve_conflicts", {"mode": "keep-first"})).dropped == (18,)
    assert session.plan(Operation("resolve_conflicts", {"mode": "pick", "keep_rows": [18]})).dropped == (17,)
    assert session.plan(Operation("filter", {"query": "HAIKU", "action": "drop"})).dropped == (4, 5, 6, 7, 8)
    assert len(session.plan(Operation("filter", {"query": "haiku", "action": "keep"})).dropped) == 27 - 5
    assert session.plan(Operation("filter", {"query": r"capital of \w+", "regex": True, "action": "drop"})).dropped == (17, 18)
    assert session.plan(Operation("drop_rows", {"rows": [5, 99]})).dropped == (5,)
    assert session.plan(Operation("strip_markup")).changed == (1, 19, 23, 24)
    with pytest.raises(WorkbenchError, match="invalid regular expression"):
        session.plan(Operation("filter", {"query": "(", "regex": True}))


def test_strip_markup_keeps_code_and_markup_topics():
    assert strip_message("<div>The sum is <b>4</b>.</div>&nbsp; ", keep_tags=False) == "The sum is 4."
    assert strip_message("Use `<br>` here.\n\n\n\nNext  line   ", keep_tags=False) == "Use `<br>` here.\n\nNext line"
    assert strip_message("```html\n<p>hi</p>\n```", keep_tags=False) == "```html\n<p>hi</p>\n```"
    assert strip_message("<p>hi</p>", keep_tags=True) == "<p>hi</p>"
    assert strip_message("caf\ufffd", keep_tags=False) == "caf"


def test_truncate_keeps_the_whole_exchanges_that_fit(default_tokenizer):
    long_answer = "word " * 400
    conversations = [
        Conversation(
            (Message("user", "Short question?"), Message("assistant", "Short answer."),
             Message("user", "Now a long one?"), Message("assistant", long_answer)),
            0, "messages",
        ),
        Conversation((Message("user", "Only long"), Message("assistant", long_answer)), 1, "messages"),
        Conversation((Message("user", "Fine"), Message("assistant", "Yes.")), 2, "messages"),
    ]
    session = CleaningSession(conversations, token_counter=TokenCounter(default_tokenizer), max_seq_length=128)

    plan = session.plan(Operation("truncate_too_long"))
    assert plan.changed == (0,) and plan.dropped == (1,)
    session.apply(plan)
    assert [m.content for m in session.conversations[0].messages] == ["Short question?", "Short answer."]
    assert rows_of(session) == [0, 2]


def test_split_is_seeded_and_exported(messy, tmp_path):
    session = session_for(messy)
    first = session.plan(Operation("split_validation", {"fraction": 0.2, "seed": 7})).validation
    again = session.plan(Operation("split_validation", {"fraction": 0.2, "seed": 7})).validation
    other = session.plan(Operation("split_validation", {"fraction": 0.2, "seed": 8})).validation
    assert first == again and first != other and len(first) == round(0.2 * 27)

    session.apply(Operation("split_validation", {"fraction": 0.2, "seed": 7}))
    result = export_session(session, tmp_path / "out" / "clean.jsonl")
    assert (result.train_rows, result.validation_rows) == (27 - len(first), len(first))
    validation = load_conversations(result.validation_path)
    assert [c.messages for c in validation.conversations] == [
        c.messages for c in session.conversations if c.source_index in first
    ]


@pytest.mark.parametrize("output_format", ["messages", "sharegpt", "alpaca", "prompt-completion"])
def test_export_round_trips_through_the_loader(tmp_path, output_format):
    source = FIXTURES / ("sharegpt_tools.json" if output_format in ("messages", "sharegpt") else "alpaca.json")
    session = session_for(source)
    result = export_session(session, tmp_path / "clean.jsonl", output_format)

    reloaded = load_conversations(result.train_path)
    assert reloaded.format == output_format
    assert [c.messages for c in reloaded.conversations] == [c.messages for c in session.conversations]
    assert sorted(os.listdir(tmp_path)) == ["clean.jsonl", "clean.recipe.yaml"]  # no temporary files left


def test_export_refuses_formats_that_cannot_hold_the_rows(tmp_path):
    session = session_for(FIXTURES / "sharegpt_tools.json")

    with pytest.raises(WorkbenchError, match="row 0: cannot be written as alpaca"):
        export_session(session, tmp_path / "clean.jsonl", "alpaca")
    assert not (tmp_path / "clean.jsonl").exists()


def test_export_never_writes_the_source(messy):
    session = session_for(messy)
    before = (messy.read_bytes(), os.stat(messy).st_mtime_ns)

    with pytest.raises(WorkbenchError, match="is the source file"):
        export_session(session, messy)
    assert (messy.read_bytes(), os.stat(messy).st_mtime_ns) == before


def test_recipe_replays_on_the_next_version_of_the_data(messy, tmp_path, default_tokenizer):
    session = session_for(messy, default_tokenizer)
    for operation in (
        Operation("strip_markup"),
        Operation("drop_empty"),
        Operation("dedupe", {"mode": "near"}),
        Operation("resolve_conflicts", {"mode": "keep-first"}),
        Operation("drop_too_long"),
        Operation("split_validation", {"fraction": 0.1, "seed": 3}),
    ):
        session.apply(operation)
    result = export_session(session, tmp_path / "v1" / "clean.jsonl")
    before = messy.read_bytes()

    recipe = read_recipe(result.recipe_path)
    assert [op.name for op in recipe.operations] == [op.name for op in session.operations]
    assert recipe.format == "messages" and recipe.max_seq_length == 1024

    # The next version: the same rows plus a new duplicate.
    next_version = tmp_path / "messy_v2.jsonl"
    lines = messy.read_text().splitlines()
    next_version.write_text("\n".join(lines + [lines[26]]) + "\n")
    replay = session_for(next_version, default_tokenizer)
    for operation in recipe.operations:
        replay.apply(operation)
    assert rows_of(replay) == rows_of(session)  # the new copy (row 27) was dropped as a duplicate
    assert messy.read_bytes() == before


def test_recipe_errors_name_the_step(tmp_path):
    recipe = tmp_path / "bad.recipe.yaml"
    recipe.write_text("workbench_recipe: 1\noperations:\n  - {op: drop_empty}\n  - {op: shuffle}\n")
    with pytest.raises(WorkbenchError, match=r"operations\[1\]: unknown step 'shuffle'"):
        read_recipe(recipe)
    recipe.write_text("just: yaml\n")
    with pytest.raises(WorkbenchError, match="not a workbench recipe"):
        read_recipe(recipe)


def test_exported_rows_are_json_lines(messy, tmp_path):
    result = export_session(session_for(messy), tmp_path / "clean.jsonl", "messages")
    lines = result.train_path.read_text(encoding="utf-8").splitlines()

    assert len(lines) == 27
    assert json.loads(lines[24])["messages"][1]["content"] == "caf\ufffd"


def test_the_demo_cleans_with_the_data_panes_own_steps():
    """One table of steps: every step the demo applies is a step of the pane's list, with its operation."""
    from workbench.data.cleaning_steps import STEP_LABELS, operation_for
    from workbench.demo.cleaning import CLEANING_STEPS

    assert CLEANING_STEPS and all(step in STEP_LABELS and operation == operation_for(step) for step, operation in CLEANING_STEPS)
    assert operation_for("filter_keep") is None and operation_for("filter_drop", query="x").options["action"] == "drop"
    with pytest.raises(KeyError):
        operation_for("no_such_step")


def test_every_format_the_loader_reads_can_be_written():
    from workbench.data.export import CONVERTERS, OUTPUT_FORMATS
    from workbench.data.formats import FORMATS

    assert sorted(OUTPUT_FORMATS) == sorted(FORMATS) == sorted(CONVERTERS) and OUTPUT_FORMATS[0] == "messages"
