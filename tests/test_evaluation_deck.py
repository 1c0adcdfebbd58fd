"""The prompt deck scored against expected answers at each evaluation during training."""

from __future__ import annotations

import pytest

from training_test_support import read_events, run_config, varied_rows, write_alpaca
from workbench.errors import WorkbenchError
from workbench.evaluation.deck import deck_expectations, score_deck
from workbench.evaluation.metrics import contains
from workbench.runs.monitor import RunView


def test_expected_lines_follow_the_deck_order_and_dash_skips_a_prompt():
    prompts = ["Who are you?", "Capital of France?", "Tell a joke", "2+2?"]
    assert deck_expectations(prompts, ["Sage | Northwind", "-", " Paris "]) == [("Sage", "Northwind"), None, ("Paris",), None]
    with pytest.raises(WorkbenchError, match=r"evaluation.deck_expected: 3 lines for 2 deck prompts"):
        deck_expectations(prompts[:2], ["a", "b", "c"])


def test_deck_score_marks_each_scored_sample():
    samples = [{"prompt": "a", "completion": "I am Sage."}, {"prompt": "b", "completion": "Lyon"}, {"prompt": "c", "completion": "x"}]
    assert score_deck(samples, [("sage",), ("Paris",), None]) == {"deck_hits": 1, "deck_scored": 2}
    assert samples[0]["hit"] is True and samples[1]["hit"] is False and "hit" not in samples[2]
    assert samples[1]["expected"] == ["Paris"]


def test_training_writes_the_deck_hit_rate_with_each_evaluation(tmp_path, tiny_model_dir):
    from workbench.training.run import run_training

    train = write_alpaca(tmp_path / "train.json", varied_rows(20, seed=2))
    config = run_config(
        tiny_model_dir,
        train,
        optimization={"max_steps": 4},
        evaluation={"eval_steps": 2, "save_steps": 2, "deck_expected": ["amber | birch", "-"]},
        prompts=["Item 1: repeat amber", "Item 2: repeat birch"],
    )
    assert run_training(config, tmp_path / "run", report=lambda line: None) == 0
    samples = [event for event in read_events(tmp_path / "run") if event["event"] == "samples"]
    assert len(samples) >= 2
    for event in samples:
        first, second = event["samples"]
        assert event["deck_scored"] == 1 and "hit" not in second
        assert first["hit"] == (contains(first["completion"], ["amber", "birch"]) == 1.0)
        assert event["deck_hits"] == int(first["hit"])
    view = RunView.load(tmp_path / "run")
    assert view.deck_hit_rate.steps == [event["step"] for event in samples]
    assert view.deck_hit_rate.values == [event["deck_hits"] / 1 for event in samples]
