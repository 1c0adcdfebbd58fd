"""`workbench data inspect` and `workbench data clean`, end to end through the CLI entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from workbench_cli.main import main

FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture
def messy(tmp_path) -> Path:
    path = tmp_path / "messy.jsonl"
    shutil.copy2(FIXTURES / "messy.jsonl", path)
    return path


def test_inspect_json_has_the_promised_keys(messy, capsys):
    assert main(["data", "inspect", str(messy), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)

    assert {"path", "format", "rows", "token_lengths", "checks"} <= set(result)
    assert (result["format"], result["rows"]) == ("messages", 27)
    assert set(result["token_lengths"]) == {"min", "median", "p95", "max"}
    assert result["token_lengths"]["min"] <= result["token_lengths"]["median"] <= result["token_lengths"]["p95"]
    checks = result["checks"]
    assert checks["exact_duplicates"] == [[0, 1]]
    assert checks["near_duplicates"] == [[2, 3]]
    assert checks["conflicts"] == [[17, 18]]
    assert checks["empty_response"] == [19]
    assert checks["too_long"] == [20]


def test_inspect_max_seq_len_and_format_override(messy, capsys):
    assert main(["data", "inspect", str(messy), "--json", "--max-seq-len", "64", "--format", "messages"]) == 0
    result = json.loads(capsys.readouterr().out)

    assert result["max_seq_length"] == 64
    assert 20 in result["checks"]["too_long"] and len(result["checks"]["too_long"]) > 1


def test_inspect_summary_for_people(messy, capsys):
    assert main(["data", "inspect", str(messy)]) == 0
    out = capsys.readouterr().out

    assert "27 rows, format messages (detected)" in out
    assert "exact duplicates" in out and "0 1" in out


def test_bad_file_exits_2_with_one_line(tmp_path, capsys):
    path = tmp_path / "broken.jsonl"
    shutil.copy2(FIXTURES / "bad" / "broken_line.jsonl", path)
    before = path.read_bytes()

    assert main(["data", "inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "broken.jsonl:2:" in err
    assert path.read_bytes() == before


def test_clean_writes_output_and_recipe_then_replays(messy, tmp_path, capsys):
    out = tmp_path / "clean" / "train.jsonl"
    code = main([
        "data", "clean", str(messy), "-o", str(out), "--dedupe", "near", "--drop-empty", "--drop-too-long",
        "--resolve-conflicts", "keep-first", "--split-validation", "0.2", "--output-format", "sharegpt",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "drop near duplicates (keep the first): 2 rows dropped" in printed
    train = [json.loads(line) for line in out.read_text().splitlines()]
    validation = [json.loads(line) for line in (out.parent / "train.validation.jsonl").read_text().splitlines()]
    assert len(train) + len(validation) == 27 - 2 - 1 - 1 - 1
    assert all("conversations" in row for row in train + validation)

    replayed = tmp_path / "replayed.jsonl"
    assert main(["data", "clean", str(messy), "-o", str(replayed), "--recipe", str(out.parent / "train.recipe.yaml")]) == 0
    assert replayed.read_text() == out.read_text()
    assert (tmp_path / "replayed.validation.jsonl").read_text() == (out.parent / "train.validation.jsonl").read_text()


def test_clean_rejects_recipe_with_step_flags_and_the_source_as_output(messy, tmp_path, capsys):
    recipe = tmp_path / "r.recipe.yaml"
    recipe.write_text("workbench_recipe: 1\noperations: [{op: drop_empty}]\n")
    assert main(["data", "clean", str(messy), "-o", str(tmp_path / "o.jsonl"), "--recipe", str(recipe), "--drop-empty"]) == 2
    assert "--recipe" in capsys.readouterr().err

    before = messy.read_bytes()
    assert main(["data", "clean", str(messy), "-o", str(messy), "--drop-empty"]) == 2
    assert "is the source file" in capsys.readouterr().err
    assert messy.read_bytes() == before


def test_split_fraction_is_validated(messy, tmp_path):
    with pytest.raises(SystemExit) as caught:
        main(["data", "clean", str(messy), "-o", str(tmp_path / "o.jsonl"), "--split-validation", "1.5"])
    assert caught.value.code == 2


def test_data_modules_import_no_heavy_libraries():
    code = (
        "import sys, workbench_cli.commands.data, workbench.data.loading, workbench.data.checks, "
        "workbench.data.cleaning, workbench.data.recipe, workbench.data.templating, workbench.data.token_lengths\n"
        "heavy = {'textual', 'torch', 'transformers', 'datasets', 'pyarrow', 'numpy'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "[]"


def test_default_limits_match_the_run_config():
    from workbench_cli.commands import data as command
    from workbench.config import RunConfig
    from workbench.data.checks import DEFAULT_MAX_SEQ_LENGTH
    from workbench.data.near_duplicates import DEFAULT_THRESHOLD

    assert command.DEFAULT_MAX_SEQ_LENGTH == DEFAULT_MAX_SEQ_LENGTH == RunConfig().data.max_seq_length
    assert command.DEFAULT_NEAR_THRESHOLD == DEFAULT_THRESHOLD
