"""`workbench compare`: headless base vs fine-tuned answers, the same as the engine's (and the pane's)."""

from __future__ import annotations

import json

import pytest
from chat_test_support import make_run_dir, make_tiny_adapter

from workbench_cli.main import main
from workbench.inference.deck import DeckReplay
from workbench.inference.engine import ChatEngine
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import BASE_SOURCE, run_source


@pytest.fixture(scope="module")
def runs_root(tiny_model_dir, tmp_path_factory):
    adapter = make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("cli-adapter"))
    root = tmp_path_factory.mktemp("runs")
    make_run_dir(root, "demo", tiny_model_dir, adapter, steps=(2, 4), best_step=4, system_prompt="You are Quokka.")
    return root


@pytest.fixture()
def prompts_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("What is your name?\n\nName the capital of France.\n")
    return path


def test_json_output_matches_the_engine(runs_root, prompts_file, monkeypatch, capsys, tiny_model_dir):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs_root))
    code = main(["compare", "--run", "demo", "--checkpoint", "best", "--prompts", str(prompts_file), "--max-new-tokens", "6", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    lines = captured.out.splitlines()
    assert len(lines) == 2, "JSON Lines: one object per prompt"
    results = sorted((json.loads(line) for line in lines), key=lambda r: r["index"])
    assert [(r["index"], r["prompt"]) for r in results] == [(1, "What is your name?"), (2, "Name the capital of France.")]
    for result in results:
        for side in ("base", "tuned"):
            assert set(result[side]) >= {"text", "ttft_s", "tokens_per_s", "tokens"}
            assert 1 <= result[side]["tokens"] <= 6
    tuned = run_source(runs_root / "demo", "best")
    engine = ChatEngine.load(str(tiny_model_dir))
    rows = DeckReplay(engine, [BASE_SOURCE, tuned], [r["prompt"] for r in results], SamplingSettings(max_new_tokens=6), "You are Quokka.").rows()
    rows = sorted(rows, key=lambda row: row.index)
    assert [[a.text for a in row.answers] for row in rows] == [[r["base"]["text"], r["tuned"]["text"]] for r in results]
    assert "demo · best (step 4)" in captured.err


def test_text_output_and_warning_for_another_system_prompt(runs_root, prompts_file, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs_root))
    code = main(["compare", "--run", "demo", "--prompts", str(prompts_file), "--max-new-tokens", "3", "--system-prompt", "Be terse."])
    captured = capsys.readouterr()
    assert code == 0
    assert "## 1/2  What is your name?" in captured.out and "[base] first token" in captured.out
    assert "warning: demo · final: system prompt differs from training" in captured.err


def test_user_errors_are_one_line(runs_root, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs_root))
    assert main(["compare", "--run", "demo", "--prompts", str(tmp_path / "missing.txt")]) == 2
    assert main(["compare", "--run", "nope", "--prompts", str(tmp_path / "missing.txt")]) == 2
    assert main(["compare", "--adapter", str(tmp_path), "--checkpoint", "best", "--prompts", "x"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("error: ") for line in lines)
    assert "no such prompts file" in lines[0] and "runs there: demo" in lines[1]


def test_export_pairs_from_the_run_votes(runs_root, tmp_path, monkeypatch, capsys):
    from workbench.inference.votes import BlindRound, append_vote, vote_record

    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs_root))
    side = {"conversation": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "x"}], "answer": "x"}
    append_vote(runs_root / "demo", vote_record(BlindRound(False), "b", "Q", None, {"base": side, "tuned": {**side, "answer": "y"}}))
    out = tmp_path / "pairs.jsonl"
    assert main(["compare", "--run", "demo", "--export-pairs", str(out)]) == 0
    assert json.loads(out.read_text())["chosen"] == [{"role": "assistant", "content": "y"}]
    assert "wrote 1 preference pairs" in capsys.readouterr().err
    (runs_root / "demo" / "ab_votes.jsonl").unlink()
