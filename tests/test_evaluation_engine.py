"""Evaluation on a tiny model: teacher-forced scores against direct forward passes, the run's held-out
rows, and `workbench eval` end to end (JSON Lines, results.json, report.md, one-line errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_test_support import make_run_dir, make_tiny_adapter
from training_test_support import run_config, varied_rows, write_alpaca
from workbench_cli.main import main
from workbench.evaluation.loglik import score_choice_groups, score_sequences
from workbench.evaluation.metrics import score_answer
from workbench.inference.engine import ChatEngine
from workbench.inference.sources import BASE_SOURCE, source_from_directory


def direct_logprob(model, ids, scored_positions) -> float:
    """Sum of log-softmax of the token at each scored position, from one unpadded forward pass."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    logprobs = logits.log_softmax(-1)
    return sum(float(logprobs[t - 1, ids[t]]) for t in scored_positions)


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("eval-adapter"), seed=3)


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return ChatEngine.load(str(tiny_model_dir), placement=("fp32", "cpu"))


def test_sequence_scores_equal_a_direct_forward_pass(engine, default_tokenizer):
    texts = [("What is the capital of France?", "Paris"), ("Hi", "Hello there, how are you today?"), ("2+2?", "4")]
    sequences = []
    for prompt, answer in texts:
        prompt_ids = default_tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = default_tokenizer(" " + answer, add_special_tokens=False)["input_ids"]
        sequences.append((prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids))
    with engine.model_for(BASE_SOURCE) as model:
        scores = score_sequences(model, sequences, pad_token_id=engine.pad_token_id)
        for (ids, labels), score in zip(sequences, scores):
            positions = [t for t in range(1, len(ids)) if labels[t] != -100]
            assert score.tokens == len(positions)
            assert score.logprob == pytest.approx(direct_logprob(model, ids, positions), abs=1e-4)


def test_choice_groups_score_each_choice_as_if_it_followed_the_prompt_alone(engine, adapter_dir, default_tokenizer):
    from peft import PeftModel

    from workbench.models import load_model

    groups = []
    for prompt, choices in (("The capital of France is", [" Paris", " Lyon", " a city in the south"]), ("Two and two make", [" four", " 22"])):
        prompt_ids = default_tokenizer(prompt, add_special_tokens=False)["input_ids"]
        groups.append((prompt_ids, [default_tokenizer(c, add_special_tokens=False)["input_ids"] for c in choices]))
    tuned = source_from_directory(adapter_dir)
    engine.attach(tuned)
    with engine.model_for(tuned) as model:
        through_engine = score_choice_groups(model, groups, pad_token_id=engine.pad_token_id)
    reference = PeftModel.from_pretrained(load_model(engine.model_path), str(adapter_dir)).eval()
    for (prompt, choices), scores in zip(groups, through_engine):
        for choice, score in zip(choices, scores):
            positions = range(len(prompt), len(prompt) + len(choice))
            assert score == pytest.approx(direct_logprob(reference, prompt + choice, positions), abs=1e-4)
    with engine.model_for(BASE_SOURCE) as model:
        base_scores = score_choice_groups(model, groups, pad_token_id=engine.pad_token_id)
    assert base_scores != through_engine  # the adapter is really off for the base


def test_run_validation_rows_are_exactly_the_rows_the_trainer_held_out(tiny_model_dir, tmp_path, default_tokenizer):
    from workbench.data.templating import render_training_example
    from workbench.evaluation.rows import run_validation_rows
    from workbench.training.examples import prepare_data

    data = write_alpaca(tmp_path / "train.json", varied_rows(30, seed=4))
    config = run_config(tiny_model_dir, data, data={"validation_split": 0.2})
    rows = run_validation_rows(tmp_path, config).rows
    prepared = prepare_data(config, default_tokenizer, report=lambda line: None)
    ours = [
        render_training_example(default_tokenizer, row.conversation, config.data.max_seq_length, True, config.data.system_prompt).input_ids
        for row in rows
    ]
    assert len(rows) == 6 and ours == [sample.input_ids for sample in prepared.eval]


@pytest.fixture(scope="module")
def eval_run(tiny_model_dir, adapter_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-runs")
    run_dir = make_run_dir(root, "demo", tiny_model_dir, adapter_dir, system_prompt="You are Quokka.")
    questions = root / "questions.jsonl"
    rows = [
        {"prompt": "What is your name?", "expect_any": ["Sage", "Northwind"], "kind": "identity"},
        {"prompt": "Who made you?", "expect_any": ["Northwind"], "kind": "identity"},
        {"prompt": "Say hello.", "reference": "Hello there, friend.", "regex": "(?i)hello", "kind": "general"},
    ]
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    knowledge = root / "knowledge.jsonl"
    items = [
        {"question": "What is the capital of France?", "choices": ["Lyon", "Paris", "Nice", "Lille"], "answer": 1, "topic": "geography"},
        {"question": "What is 2 plus 2?", "choices": ["3", "4", "5", "22"], "answer": 1, "topic": "arithmetic"},
        {"question": "What colour is the sky?", "choices": ["blue", "green"], "answer": 0, "topic": "everyday"},
    ]
    knowledge.write_text("".join(json.dumps(item) + "\n" for item in items))
    return root, run_dir, questions, knowledge


def test_eval_prints_json_lines_and_writes_results_and_report(eval_run, monkeypatch, capsys):
    root, run_dir, questions, knowledge = eval_run
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    code = main(["eval", "demo", "--data", str(questions), "--knowledge", str(knowledge), "--max-new-tokens", "6",
                 "--checkpoints", "all", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in captured.out.splitlines()]
    rows, summary = [l for l in lines if l["type"] == "row"], lines[-1]
    assert summary["type"] == "summary" and len(rows) == 3 and sorted(r["index"] for r in rows) == [0, 1, 2]
    assert [m["key"] for m in summary["models"]] == ["base", "final", "step-2", "step-4"]
    for row in rows:
        for key, answer in row["answers"].items():
            # Every streamed score is what the metrics give for that answer text.
            expected = score_answer(answer["text"], metrics=("exact", "contains", "regex", "rougeL", "bleu", "chrf", "length"),
                                    references=row["references"], accepted=row["accepted"], pattern=row["pattern"],
                                    answer_tokens=answer["tokens"])
            assert answer["scores"] == pytest.approx(expected)
    results = json.loads((run_dir / "eval" / "results.json").read_text())
    contains_final = [r["answers"]["final"]["scores"]["contains"] for r in results["rows"]]
    assert results["metrics"]["final"]["contains"]["value"] == pytest.approx(sum(contains_final) / 3)
    assert set(results["by_kind"]) == {"identity", "general"}
    assert results["metrics"]["base"]["loss"]["n"] == 1  # only the row with a reference has a loss
    knowledge_figures = results["knowledge"]
    picks = [item["picks"]["final"] == item["answer"] for item in knowledge_figures["items_detail"]]
    assert knowledge_figures["models"]["final"]["accuracy"]["value"] == pytest.approx(sum(picks) / 3)
    assert knowledge_figures["differences"]["final"]["method"] == "paired-bootstrap"
    report = (run_dir / "eval" / "report.md").read_text()
    assert "| contains |" in report and "general knowledge" in report


def test_text_output_names_the_models_and_the_forgetting_check(eval_run, monkeypatch, capsys, tmp_path):
    root, run_dir, questions, knowledge = eval_run
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    code = main(["eval", str(run_dir), "--data", str(questions), "--knowledge", str(knowledge), "--max-new-tokens", "4",
                 "--metrics", "contains,loss", "--lm-eval", "arc_easy", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "lm-eval is not installed" in captured.err  # the optional extra says so in one line and carries on
    assert "general knowledge" in captured.out and "identity · contains" in captured.out
    assert "ROUGE-L" not in captured.out  # only the chosen metrics
    assert (tmp_path / "out" / "results.json").is_file()


def test_bad_input_is_one_line_with_exit_code_2(eval_run, monkeypatch, capsys, tiny_model_dir, tmp_path):
    root, run_dir, questions, knowledge = eval_run
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(root))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "hi", "expect_any": "x"}) + "\n" + json.dumps({"prompt": "", "regex": "x"}) + "\n")
    cases = [
        (["eval", "demo", "--data", str(bad)], f"{bad}:2 (row 1): prompt: expected non-empty text"),
        (["eval", str(tiny_model_dir)], "--data: required"),
        (["eval", "demo", "--data", str(questions), "--regex", "(oops"], "--regex: not a valid regular expression"),
        (["eval", "demo", "--data", str(questions), "--knowledge", str(questions)], "question: expected non-empty text"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_each_batch_of_prompts_is_asked_to_every_model_in_one_generate(engine, adapter_dir, tmp_path):
    """Base and tuned share each generate (one copy of the weights, rows routed by masks): 30 prompts
    × 2 models decode as one batch of BATCH_PROMPTS × 2 rows, then one of the rest."""
    from workbench.evaluation.rows import load_eval_file
    from workbench.evaluation.runner import BATCH_PROMPTS, EvalModel, EvalPlan, run_evaluation
    from workbench.inference.settings import SamplingSettings

    prompts = 30
    assert BATCH_PROMPTS < prompts
    questions = tmp_path / "questions.jsonl"
    lines = (json.dumps({"prompt": f"Question number {i}?", "expect_any": ["yes"]}) for i in range(prompts))
    questions.write_text("\n".join(lines) + "\n")
    tuned = source_from_directory(adapter_dir)
    plan = EvalPlan(
        models=[EvalModel("base", BASE_SOURCE, "base", 0), EvalModel("tuned", tuned, "tuned")],
        rows=load_eval_file(questions).rows, description="questions", metrics=("exact",),
        settings=SamplingSettings(temperature=0.0, max_new_tokens=2),
    )
    rows_per_pass: list[int] = []
    with engine.model_for(BASE_SOURCE) as model:
        output_layer = model.get_output_embeddings()
    handle = output_layer.register_forward_pre_hook(lambda _m, args: rows_per_pass.append(args[0].shape[0]))
    try:
        results = run_evaluation(engine, plan)
    finally:
        handle.remove()
    batches = [rows for index, rows in enumerate(rows_per_pass) if index == 0 or rows != rows_per_pass[index - 1]]
    assert batches == [2 * BATCH_PROMPTS, 2 * (prompts - BATCH_PROMPTS)]
    assert all(set(row["answers"]) == {"base", "tuned"} for row in results["rows"])
