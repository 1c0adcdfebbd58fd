"""What workbench eval asks: data files with per-row fields, questions files, a run's default rows."""

from __future__ import annotations

import json

import pytest

from training_test_support import run_config, varied_rows, write_alpaca
from workbench.errors import WorkbenchError
from workbench.evaluation.rows import VALIDATION_KIND, load_eval_file, run_eval_rows


def test_a_data_file_row_gives_its_prompt_reference_and_own_fields(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"instruction": "Name the capital of France.", "input": "", "output": "Paris.", "regex": "(?i)paris", "kind": "geo"}) + "\n")
    (row,) = load_eval_file(path).rows
    assert (row.prompt, row.references, row.pattern, row.kind, row.accepted) == ("Name the capital of France.", ("Paris.",), "(?i)paris", "geo", ())
    assert row.prompt_messages("You are terse.") == [
        {"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name the capital of France."},
    ]


def test_multi_turn_rows_are_asked_with_their_history_and_scored_on_the_last_answer(tmp_path):
    path = tmp_path / "chat.jsonl"
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    path.write_text(json.dumps({"messages": turns, "expect_any": ["4", "four"]}) + "\n")
    (row,) = load_eval_file(path).rows
    assert row.references == ("4",) and row.accepted == ("4", "four") and row.prompt == "2+2?"
    assert [m["content"] for m in row.prompt_messages(None)] == ["Hi", "Hello!", "2+2?"]


def test_questions_files_and_their_errors(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"prompt": "Who are you?", "expect_any": ["Sage"], "kind": "identity"}) + "\n"
                    + json.dumps({"prompt": "Say hi", "reference": "Hi!"}) + "\n")
    first, second = load_eval_file(path).rows
    assert first.accepted == ("Sage",) and not first.has_reference and first.kind == "identity"
    assert second.references == ("Hi!",) and second.conversation.final_response == "Hi!"
    path.write_text(json.dumps({"prompt": "Who?", "expect_any": 3}) + "\n")
    with pytest.raises(WorkbenchError, match=r"q\.jsonl:1 \(row 0\): expect_any: expected a string or a list of strings"):
        load_eval_file(path)


def test_a_run_asks_its_eval_file_and_its_validation_rows(tmp_path, tiny_model_dir):
    train = write_alpaca(tmp_path / "train.json", varied_rows(20, seed=1))
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"prompt": "Who are you?", "expect_any": ["Sage"], "kind": "identity"}) + "\n")
    config = run_config(tiny_model_dir, train, data={"validation_split": 0.2}, evaluation={"eval_file": str(questions)})
    rows = run_eval_rows(tmp_path, config).rows
    assert [row.index for row in rows] == list(range(5))
    assert rows[0].kind == "identity" and {row.kind for row in rows[1:]} == {VALIDATION_KIND}
    config = run_config(tiny_model_dir, train, data={"validation_split": 0.0})
    with pytest.raises(WorkbenchError, match="held out no rows; pass the held-out rows with --data FILE"):
        run_eval_rows(tmp_path, config)
