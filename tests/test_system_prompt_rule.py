"""One system-prompt rule for training and Chat: `data.system_prompt: ""` is an empty system message
in both (None is the template's default in both), and the mismatch warning tells "" from None."""

from __future__ import annotations


import pytest
from chat_test_support import make_run_dir

from workbench.data.conversation import Conversation, Message
from workbench.data.system_prompt import template_with_default_system
from workbench.data.templating import render_training_example
from workbench.inference.prompting import build_messages, render_prompt, training_mismatches
from workbench.inference.sources import run_source


@pytest.mark.parametrize("system_prompt", ["", None, "You are Quokka."])
def test_a_system_prompt_is_trained_and_chatted_the_same_way(default_tokenizer, system_prompt):
    conversation = Conversation((Message("user", "Name?"), Message("assistant", "Quokka.")), 0, "row")
    trained = default_tokenizer.decode(render_training_example(default_tokenizer, conversation, 512, system_prompt=system_prompt).input_ids)
    chatted = render_prompt(default_tokenizer, build_messages(system_prompt, [], "Name?"))
    assert trained.startswith(chatted), f"training and Chat render system_prompt={system_prompt!r} differently"
    assert ("SmolLM" in chatted) == (system_prompt is None), "only None leaves the template's default"


def test_the_mismatch_warning_tells_an_empty_prompt_from_none(tmp_path, tiny_model_dir, fake_adapter):
    empty_run = make_run_dir(tmp_path, "empty", tiny_model_dir, fake_adapter, steps=(2,), best_step=2, system_prompt="")
    empty = run_source(empty_run, "final")
    assert training_mismatches(empty, None, "") == []
    [warning] = training_mismatches(empty, None, None)
    assert "trained with an empty system message" in warning and "chatting with the template's default" in warning

    default_run = make_run_dir(tmp_path, "default", tiny_model_dir, fake_adapter, steps=(2,), best_step=2, system_prompt=None)
    default = run_source(default_run, "final")
    assert training_mismatches(default, None, None) == []
    [warning] = training_mismatches(default, None, "")
    assert "trained with the template's default" in warning and "chatting with an empty system message" in warning


def test_a_saved_template_carrying_the_empty_prompt_matches_the_default(tmp_path, tiny_model_dir, fake_adapter, default_tokenizer):
    run_dir = make_run_dir(tmp_path, "baked", tiny_model_dir, fake_adapter, steps=(2,), best_step=2, system_prompt="")
    (run_dir / "adapter" / "chat_template.jinja").write_text(template_with_default_system(default_tokenizer.chat_template, ""))
    assert training_mismatches(run_source(run_dir, "final"), default_tokenizer, None) == []
