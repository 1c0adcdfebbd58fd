"""The demo's engine pieces without a model: its config, the held-out file and scoring, the cleaning
of the real messy sample file, and the tour's script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.errors import WorkbenchError

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def test_demo_config_starts_from_the_quick_demo_preset_and_takes_test_sizes(tmp_path):
    from workbench.config.presets import get_preset
    from workbench.demo.config import DEMO_OVERRIDES, demo_config

    preset = get_preset("quick-demo-cpu").config()
    config = demo_config(tmp_path / "clean.jsonl", model="tiny", max_steps=3)
    assert config.data.train_file == str(tmp_path / "clean.jsonl")
    assert config.model.name_or_path == "tiny" and config.optimization.max_steps == 3
    # the template's own "You are SmolLM..." system prompt must never be what the demo trains with
    assert config.data.system_prompt and "SmolLM" not in config.data.system_prompt
    for dotted, value in DEMO_OVERRIDES.items():
        section, name = dotted.split(".")
        assert getattr(getattr(config, section), name) == value
    assert config.method.type == preset.method.type == "lora"
    assert demo_config("x.jsonl", epochs=1.5).optimization.num_train_epochs == 1.5


def test_heldout_file_reads_and_scores_ignoring_case(tmp_path):
    from workbench.demo.heldout import HeldoutAnswer, HeldoutScore, read_heldout

    questions = read_heldout(SAMPLE / "identity_heldout.jsonl")
    assert sum(q.kind == "identity" for q in questions) == 24 and sum(q.kind == "general" for q in questions) == 8
    identity = next(q for q in questions if q.kind == "identity")
    assert identity.is_hit("I am sage, an assistant.") and identity.is_hit("Built by NORTHWIND labs")
    assert not identity.is_hit("I'm SmolLM, trained by Hugging Face.")
    general = next(q for q in questions if q.prompt == "What is the capital of France?")
    score = HeldoutScore((
        HeldoutAnswer(identity, base="I'm SmolLM.", tuned="I'm Sage."),
        HeldoutAnswer(general, base="Paris.", tuned="It is Lyon."),
    ))
    assert (score.hits("identity", "base"), score.hits("identity", "tuned")) == (0, 1)
    assert (score.hits("general", "base"), score.hits("general", "tuned")) == (1, 0)
    assert score.summary_lines() == [
        "identity questions (name Sage or Northwind Labs): base 0/1, fine-tuned 1/1",
        "general questions (answer correctly): base 1/1, fine-tuned 0/1",
    ]


@pytest.mark.parametrize("line", ['{"prompt": "x"}', "not json", '{"prompt": "x", "expect_any": []}'])
def test_a_bad_heldout_line_is_one_error_naming_the_line(tmp_path, line):
    from workbench.demo.heldout import read_heldout

    path = tmp_path / "h.jsonl"
    path.write_text('{"prompt": "ok", "expect_any": ["a"]}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match=r"h\.jsonl:2: "):
        read_heldout(path)


def test_cleaning_the_messy_sample_removes_every_planted_copy_and_never_writes_the_source(tmp_path, default_tokenizer):
    from workbench.demo.cleaning import clean_for_demo
    from workbench.demo.config import demo_config

    source = SAMPLE / "messy_identity.jsonl"
    before = source.read_bytes()
    config = demo_config(source)
    cleaning = clean_for_demo(
        source, tmp_path, default_tokenizer,
        max_seq_length=config.data.max_seq_length, system_prompt=config.data.system_prompt,
    )
    assert source.read_bytes() == before
    planted = json.loads((SAMPLE / "messy_identity.planted.json").read_text())
    kept = {c.source_index for c in cleaning.session.conversations}
    for kind in ("exact_duplicate", "near_duplicate", "contradiction", "empty_output", "over_long"):
        assert not kept & set(planted["defects"][kind]), kind
    originals = {p["of"] for p in planted["planted"] if p.get("of") is not None}
    assert originals <= kept, "the first copy of every duplicated or contradicted row stays"
    rows = [json.loads(line) for line in cleaning.export.train_path.read_text().splitlines()]
    assert len(rows) == len(kept) == cleaning.export.train_rows
    assert not any("<" in m["content"] and ">" in m["content"] for row in rows for m in row["messages"])
    assert cleaning.export.recipe_path.is_file()
    assert any("exact duplicates" in line for line in cleaning.problem_lines())


def test_tour_script_tells_the_story_on_every_pane():
    from workbench.demo.tour import TOUR, step_index

    assert {step.pane for step in TOUR} == {"data", "memory", "hyperparameters", "train", "chat"}
    assert len({step.key for step in TOUR}) == len(TOUR)
    for step in TOUR:
        assert 2 <= len(step.lines) <= 4, step.key
        assert all(len(line) <= 110 for line in step.lines), f"{step.key}: lines short enough for a projector"
    order = [step.key for step in TOUR]
    for earlier, later in (("problems", "clean"), ("clean", "masking"), ("memory", "loss"), ("loss", "compare"), ("compare", "vote")):
        assert step_index(earlier) < step_index(later)
    text = " ".join(" ".join(step.lines) for step in TOUR).lower()
    for idea in ("pretrain", "preference", "loss masking", "10 to 12 bytes", "memorising", "adapter"):
        assert idea in text, idea
    assert order[0] == "welcome"
