"""Prompt decks: the prompts file, the saved deck, and replay against several models."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.inference.deck import STARTER_DECK, DeckReplay, load_saved_deck, read_prompt_file, save_deck
from workbench.inference.engine import ChatEngine
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import BASE_SOURCE


def test_prompt_file_one_per_line(tmp_path):
    path = tmp_path / "deck.txt"
    path.write_text("  first  \n\nsecond\n")
    assert read_prompt_file(path) == ["first", "second"]
    path.write_text("\n \n")
    with pytest.raises(WorkbenchError, match="holds no prompts"):
        read_prompt_file(path)
    with pytest.raises(WorkbenchError, match="no such prompts file"):
        read_prompt_file(tmp_path / "missing.txt")


def test_saved_deck_wins_over_run_prompts_then_starter(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    assert load_saved_deck() == list(STARTER_DECK)
    assert load_saved_deck(["from the run"]) == ["from the run"]
    save_deck(["mine", " ", "also mine"])
    assert load_saved_deck(["from the run"]) == ["mine", "also mine"]


def test_replay_gives_one_answer_per_model_and_stops_when_cancelled(tiny_model_dir):
    engine = ChatEngine.load(str(tiny_model_dir))
    replay = DeckReplay(engine, [BASE_SOURCE, BASE_SOURCE], ["one", "two", "three"], SamplingSettings(max_new_tokens=4))
    rows = []
    for row in replay.rows():
        rows.append(row)
        if len(rows) == 2:
            replay.cancel()
    assert [row.prompt for row in rows] == ["one", "two"]
    assert all(len(row.answers) == 2 and row.answers[0].token_ids == row.answers[1].token_ids for row in rows)
