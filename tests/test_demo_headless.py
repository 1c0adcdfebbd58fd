"""`workbench demo --headless` end to end on the tiny model and a slice of the messy sample file:
clean -> train (a real child process) -> base vs tuned answers and held-out scores."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from workbench_cli.main import main

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def messy_slice(tmp_path) -> tuple[Path, int]:
    """The first 60 rows of the messy file plus its planted exact duplicate of row 49 (row 57) and the
    contradiction of row 33 (row 138), so the slice holds problems the cleaning must remove."""
    rows = (SAMPLE / "messy_identity.jsonl").read_text(encoding="utf-8").splitlines()
    chosen = rows[:60] + [rows[138]]
    path = tmp_path / "messy.jsonl"
    path.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return path, len(chosen)


def test_headless_demo_cleans_trains_and_compares(tmp_path, tiny_model_dir, messy_slice, capsys):
    data, row_count = messy_slice
    prompts = tmp_path / "deck.txt"
    prompts.write_text("Who made you?\nWhat is 2 plus 2?\n", encoding="utf-8")
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text(
        json.dumps({"prompt": "What is your name?", "expect_any": ["Sage"], "kind": "identity"}) + "\n"
        + json.dumps({"prompt": "What is 5 plus 3?", "expect_any": ["8"], "kind": "general"}) + "\n",
        encoding="utf-8",
    )
    before = _digest(data)
    runs = tmp_path / "runs"

    code = main([
        "demo", "--headless", "--model", str(tiny_model_dir), "--data", str(data), "--prompts", str(prompts),
        "--heldout", str(heldout), "--max-steps", "2", "--max-new-tokens", "4", "--runs-dir", str(runs),
    ])
    out = capsys.readouterr().out

    assert code == 0, out
    assert _digest(data) == before  # the source is only read
    cleaned = runs / "demo-data" / "messy.clean.jsonl"
    assert (runs / "demo-data" / "messy.clean.recipe.yaml").is_file()
    cleaned_rows = cleaned.read_text(encoding="utf-8").splitlines()
    assert 0 < len(cleaned_rows) < row_count  # duplicates and the contradiction are gone
    assert "exact duplicates" in out and "conflicting answers" in out

    run_dirs = [p for p in runs.iterdir() if p.name != "demo-data"]
    assert len(run_dirs) == 1
    run_dir = run_dirs[0]
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "completed" and status["step"] == 2
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    assert f"Run directory: {run_dir}" in out

    for prompt in ("Who made you?", "What is 2 plus 2?"):
        assert prompt in out
    assert out.count("[base]") == 2 and out.count("[tuned]") == 2
    assert "identity questions" in out and "general questions" in out


def test_headless_demo_reports_a_missing_file_in_one_line(tmp_path, capsys):
    code = main(["demo", "--headless", "--data", str(tmp_path / "nope.jsonl"), "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().count("\n") == 0 and "nope.jsonl: no such file" in err
