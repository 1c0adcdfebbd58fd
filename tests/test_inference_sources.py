"""Which directory a side answers with: runs (final / best / last / step), adapter and model directories."""

from __future__ import annotations


import pytest
from chat_test_support import make_run_dir

from workbench.errors import WorkbenchError
from workbench.inference.prompting import build_messages, render_prompt, training_mismatches
from workbench.inference.sources import (
    all_run_choices,
    resolve_run_dir,
    run_choices,
    run_source,
    source_from_directory,
    votes_dir,
)


@pytest.fixture()
def runs_root(tmp_path, tiny_model_dir, fake_adapter):
    root = tmp_path / "runs"
    make_run_dir(root, "demo", tiny_model_dir, fake_adapter, steps=(10, 20, 30), best_step=20, system_prompt="You are Quokka.")
    return root


def test_run_checkpoint_choices(runs_root):
    run_dir = resolve_run_dir("demo", runs_root)
    assert run_source(run_dir, "final").path == (run_dir / "adapter").resolve()
    best = run_source(run_dir, "best")
    assert best.path.name == "checkpoint-20" and best.checkpoint == "best" and "step 20" in best.label
    assert run_source(run_dir, "last").path.name == "checkpoint-30"
    assert run_source(run_dir, "10").checkpoint == "step 10"
    assert run_source(run_dir, None).checkpoint == "final"
    labels = [choice.label for choice in run_choices(run_dir)]
    assert labels == ["demo · final", "demo · best (step 20)", "demo · step 30", "demo · step 20", "demo · step 10"]
    assert [c.label for c in all_run_choices(runs_root)] == labels


def test_incomplete_checkpoints_and_missing_runs_are_one_line_errors(runs_root):
    run_dir = runs_root / "demo"
    (run_dir / "checkpoints" / "checkpoint-30" / "COMPLETE").unlink()
    assert run_source(run_dir, "last").path.name == "checkpoint-20"
    with pytest.raises(WorkbenchError, match="no complete checkpoint at that step .have: 10, 20"):
        run_source(run_dir, "30")
    with pytest.raises(WorkbenchError, match="expected best, last, final or a step number"):
        run_source(run_dir, "newest")
    with pytest.raises(WorkbenchError, match="runs there: demo"):
        resolve_run_dir("nope", runs_root)


def test_run_without_adapter_falls_back_to_best_then_says_so(tmp_path, tiny_model_dir, fake_adapter):
    run_dir = make_run_dir(tmp_path, "early", tiny_model_dir, fake_adapter, steps=(5,), best_step=5, final=False)
    assert run_source(run_dir).checkpoint == "best"
    empty = make_run_dir(tmp_path, "empty", tiny_model_dir, fake_adapter, steps=(), best_step=None, final=False)
    with pytest.raises(WorkbenchError, match="has no adapter yet"):
        run_source(empty)


def test_directories_know_their_run_and_kind(runs_root, fake_adapter, tiny_model_dir):
    checkpoint = source_from_directory(runs_root / "demo" / "checkpoints" / "checkpoint-20")
    assert checkpoint.kind == "adapter" and checkpoint.run_dir == (runs_root / "demo").resolve()
    assert checkpoint.checkpoint == "step 20" and votes_dir(checkpoint) == checkpoint.run_dir
    loose = source_from_directory(fake_adapter)
    assert loose.run_dir is None and votes_dir(loose) == fake_adapter.resolve()
    assert source_from_directory(tiny_model_dir).kind == "model"
    with pytest.raises(WorkbenchError, match="neither a PEFT adapter"):
        source_from_directory(runs_root)


def test_rendered_prompt_and_system_prompt_rule(default_tokenizer):
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    with_system = render_prompt(default_tokenizer, build_messages("You are Quokka.", history, "Name?"))
    assert with_system.startswith("<|im_start|>system\nYou are Quokka.<|im_end|>")
    assert with_system.endswith("<|im_start|>user\nName?<|im_end|>\n<|im_start|>assistant\n")
    assert "Hello!" in with_system
    template_default = render_prompt(default_tokenizer, build_messages(None, [], "Name?"))
    assert "SmolLM" in template_default, "no system prompt leaves the template's default"


def test_mismatch_warnings_name_what_differs(runs_root, default_tokenizer):
    best = run_source(runs_root / "demo", "best")
    assert training_mismatches(best, default_tokenizer, "You are Quokka.") == []
    [warning] = training_mismatches(best, default_tokenizer, None)
    assert "system prompt differs" in warning and "'You are Quokka.'" in warning and "template's default" in warning
    # The side answers through the template saved with its adapter (ChatEngine.tokenizer_for), so a
    # saved template unlike the base model's is no longer a mismatch.
    (best.path / "chat_template.jinja").write_text("{{ messages }}")
    assert training_mismatches(best, default_tokenizer, "You are Quokka.") == []
