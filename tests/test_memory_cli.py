"""`workbench estimate`: human and JSON output, user errors, and no torch for catalog models."""

from __future__ import annotations

import json
import subprocess
import sys

from workbench_cli.main import main


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
    assert total("--method", "full", "--optimizer", "adamw_8bit") < total("--method", "full")


def test_unknown_model_and_target_are_one_line_errors(capsys):
    assert main(["estimate", "--model", "qwen-7b"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["estimate", "--model", "phi-3-mini", "--lora-targets", "q_proj"]) == 2
    err = capsys.readouterr().err
    assert "qkv_proj" in err and len(err.strip().splitlines()) == 1


def test_estimating_a_catalog_model_never_imports_torch():
    code = (
        "import sys, io, contextlib\n"
        "from workbench_cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['estimate', '--model', 'qwen2.5-7b', '--method', 'qlora', '--gpu-memory', '24'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'textual') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_advice_prints_the_cheapest_changes_with_command_lines_that_reproduce_their_figures(capsys):
    assert main(["estimate", "--model", "llama-3.1-8b", "--seq-len", "2048", "--gpu-memory", "24", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    verdict = result["verdict"]
    assert verdict["status"] == "does not fit" and verdict["fit_line_bytes"] == int(24 * 2**30 * 0.9)
    assert verdict["suggestions"] and verdict["suggestions"][0]["changes"] == {"gradient_checkpointing": True}
    for suggestion in verdict["suggestions"]:
        assert main(["estimate", *suggestion["argv"], "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["total_bytes"] == suggestion["total_bytes"] and again["verdict"]["status"] == "fits"
    assert main(["estimate", "--model", "llama-3.1-8b", "--seq-len", "2048", "--gpu-memory", "24"]) == 0
    text = capsys.readouterr().out
    assert "Cheapest changes that fit:" in text and "fit line 21.6 GiB = 90% of 24.0 GiB" in text
    assert "workbench estimate --model llama-3.1-8b" in text and "--gradient-checkpointing" in text


def test_advise_shows_room_to_grow_only_when_asked_and_ram_and_headroom_flags_set_the_budget(capsys):
    flags = ["estimate", "--model", "default", "--seq-len", "256", "--batch-size", "2", "--precision", "fp32"]
    assert main([*flags, "--ram", "16"]) == 0
    assert "Room to grow" not in capsys.readouterr().out
    assert main([*flags, "--ram", "16", "--advise"]) == 0
    assert "Room to grow:" in capsys.readouterr().out
    assert main([*flags, "--ram", "16", "--headroom", "20", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)["verdict"]
    assert verdict["budget_bytes"] == 16 * 2**30 and verdict["fit_line_bytes"] == int(16 * 2**30 * 0.8)


def test_a_sequence_far_past_the_context_length_is_refused_in_one_line(capsys):
    assert main(["estimate", "--model", "llama-3.1-8b", "--seq-len", "10244096", "--gpu-memory", "24"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "context length of 131,072" in err
    assert main(["estimate", "--model", "llama-3.1-8b", "--seq-len", "200000", "--gpu-memory", "80"]) == 0
    assert "warning: 200,000 tokens is past Llama-3.1-8B's context length" in capsys.readouterr().out
