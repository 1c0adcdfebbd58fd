"""`workbench estimate`: human and JSON output, user errors, and no torch for catalog models."""

from __future__ import annotations

import json
import subprocess
import sys

from workbench.cli import main


def test_json_output_has_total_trainable_and_breakdown(capsys):
    assert main(["estimate", "--model", "llama-3.1-8b", "--method", "lora", "--lora-r", "16",
                 "--gpu-memory", "80", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trainable_params"] == 41_943_040
    assert set(result["breakdown"]) >= {"weights", "gradients", "optimizer state", "activations", "logits"}
    assert sum(result["at_peak"].values()) == result["total_bytes"]
    assert result["verdict"]["budget_bytes"] == 80 * 2**30


def test_the_24_gib_qlora_question_gets_a_breakdown_verdict_and_suggestion(capsys):
    assert main(["estimate", "--model", "qwen2.5-7b", "--method", "qlora", "--seq-len", "2048",
                 "--gpu-memory", "24"]) == 0
    out = capsys.readouterr().out
    assert "Qwen2.5-7B" in out and "activations" in out and "logits" in out
    assert any(word in out for word in ("Fits", "Tight", "Does not fit"))
    assert "gradient checkpointing" in out
    assert "Rule of thumb" in out


def test_flags_change_the_estimate(capsys):
    def total(*flags):
        main(["estimate", "--model", "smollm2-360m", "--gpu-memory", "24", "--json", *flags])
        return json.loads(capsys.readouterr().out)["total_bytes"]

    assert total("--method", "full") > total("--method", "lora") > total("--method", "qlora")
    assert total("--gradient-checkpointing") < total()
    assert total("--batch-size", "8") > total("--batch-size", "2")
    assert total("--method", "full", "--optimizer", "adamw8bit") < total("--method", "full")


def test_unknown_model_and_target_are_one_line_errors(capsys):
    assert main(["estimate", "--model", "qwen-7b"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["estimate", "--model", "phi-3-mini", "--lora-targets", "q_proj"]) == 2
    err = capsys.readouterr().err
    assert "qkv_proj" in err and len(err.strip().splitlines()) == 1


def test_estimating_a_catalog_model_never_imports_torch():
    code = (
        "import sys, io, contextlib\n"
        "from workbench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['estimate', '--model', 'qwen2.5-7b', '--method', 'qlora', '--gpu-memory', '24'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'textual') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
