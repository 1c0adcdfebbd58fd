"""Mixtures: several training sources, each with its own format and columns, sampled by weight into
one training mix; per-source counts in the run's start event; and a tiny run through the trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training_test_support import read_events, run_config, varied_rows, write_alpaca
from workbench.config.io import ConfigError, config_from_dict
from workbench.config.schema import DataSection
from workbench.data.mixture import load_mixture, mix_counts


def write_qa(path: Path, count: int) -> Path:
    """Rows with their own column names (question/answer), read through data.columns."""
    rows = [{"question": f"Domain question {i}?", "answer": f"domain answer {i}"} for i in range(count)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_weights_are_shares_of_the_mix_under_and_over():
    assert mix_counts([91, 1000], [0.3, 0.7], "interleave_under") == [91, 212]  # no row repeats
    assert mix_counts([91, 1000], [3, 7], "interleave_under") == [91, 212]  # weights are normalized
    assert mix_counts([91, 1000], [0.3, 0.7], "interleave_over") == [429, 1000]  # every row at least once
    assert mix_counts([10, 10, 10], [1, 1, 1], "interleave_under") == [10, 10, 10]


def test_a_two_file_mixture_samples_each_source_by_weight(tmp_path):
    domain = write_qa(tmp_path / "domain.jsonl", 20)
    general = write_alpaca(tmp_path / "general.json", varied_rows(60))
    data = DataSection.model_validate({
        "validation_split": 0.1,
        "sources": [
            {"path": str(domain), "columns": {"prompt": "question", "response": "answer"}, "weight": 0.4},
            {"path": str(general), "name": "general", "weight": 0.6},
        ],
    })
    mixture = load_mixture(data, seed=3)

    domain_rows, general_rows = mixture.sources
    assert (domain_rows.loaded.format, general_rows.loaded.format) == ("alpaca", "alpaca")
    assert (len(domain_rows.train), len(domain_rows.eval)) == (18, 2)  # each source splits on its own
    assert (len(general_rows.train), len(general_rows.eval)) == (54, 6)
    assert (domain_rows.sampled, general_rows.sampled) == (18, 27)  # 18 / 0.4 = 45 rows: 40% and 60%
    names = [row.source for row in mixture.train]
    assert (names.count("domain"), names.count("general")) == (18, 27)
    assert len({row.source_index for row in mixture.train if row.source == "general"}) == 27  # no repeats
    assert {row.source for row in mixture.eval} == {"domain", "general"} and len(mixture.eval) == 8
    assert [row.source_index for row in load_mixture(data, seed=3).train] == [row.source_index for row in mixture.train]
    assert "domain: 20 rows (alpaca), 18 train → 18 in the mix (40%), 2 validation" in mixture.describe()


def test_without_weights_every_row_of_every_source_trains_once(tmp_path):
    data = DataSection.model_validate({"validation_split": 0.0, "sources": [
        {"path": str(write_qa(tmp_path / "a.jsonl", 5)), "columns": {"prompt": "question", "response": "answer"}},
        {"path": str(write_alpaca(tmp_path / "b.json", varied_rows(7)))},
    ]})
    mixture = load_mixture(data, seed=0)
    assert mixture.strategy == "concat" and len(mixture.train) == 12
    assert [source.sampled for source in mixture.sources] == [5, 7]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"train_file": "a.json", "sources": [{"path": "b.json"}]}, "set data.train_file or data.sources, not both"),
        ({"sources": [{"path": "a.json", "weight": 1}, {"path": "b.json"}]}, r"set a weight on every source or on none; sources\[1\] has none"),
        ({"sources": [{"path": "x/a.json"}, {"path": "y/a.jsonl"}]}, "sources share the name 'a'"),
        ({"sources": [{"path": "a.json", "weight": 0}]}, r"data\.sources\.0\.weight"),
    ],
)
def test_mixture_configs_that_cannot_work_are_refused_in_one_line(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": data})


def test_a_weighted_mixture_trains_and_its_start_event_counts_each_source(tmp_path, tiny_model_dir):
    from workbench.training.run import run_training

    domain = write_qa(tmp_path / "domain.jsonl", 10)
    general = write_alpaca(tmp_path / "general.json", varied_rows(20))
    config = run_config(
        tiny_model_dir, general,
        data={"train_file": None, "validation_split": 0.2, "sources": [
            {"path": str(domain), "columns": {"prompt": "question", "response": "answer"}, "weight": 1},
            {"path": str(general), "weight": 1},
        ]},
        optimization={"max_steps": 2},
        evaluation={"eval_steps": 2, "save_steps": 2},
    )
    run_dir = tmp_path / "run"
    lines: list[str] = []
    assert run_training(config, run_dir, report=lines.append) == 0

    events = read_events(run_dir)
    start = next(event for event in events if event["event"] == "start")
    domain_counts, general_counts = start["data_sources"]
    assert (domain_counts["name"], domain_counts["rows"], domain_counts["train_rows"], domain_counts["sampled_rows"]) == ("domain", 10, 8, 8)
    assert (general_counts["name"], general_counts["rows"], general_counts["train_rows"], general_counts["sampled_rows"]) == ("general", 20, 16, 8)
    assert domain_counts["share"] == general_counts["share"] == 0.5
    assert domain_counts["train_samples"] + general_counts["train_samples"] == start["num_train_samples"] == 16
    assert domain_counts["train_tokens"] + general_counts["train_tokens"] == start["train_tokens_per_epoch"]
    assert start["num_eval_samples"] == 2 + 4
    assert [event["step"] for event in events if event["event"] == "train"] == [1, 2]
    assert any("data: per source: domain 8 samples" in line for line in lines)


def test_config_check_reads_every_source_and_names_the_one_that_fails(tmp_path, tiny_model_dir):
    from datasets import Dataset

    from workbench.config.checks import check_config

    saved = tmp_path / "saved"
    Dataset.from_dict({"instruction": [f"Q{i}" for i in range(12)], "output": [f"A{i}" for i in range(12)]}).save_to_disk(str(saved))
    general = write_alpaca(tmp_path / "general.json", varied_rows(30))
    sources = [{"path": str(saved), "weight": 1}, {"path": str(general), "weight": 1}]
    config = run_config(tiny_model_dir, general, data={"train_file": None, "sources": sources})
    assert [problem for problem in check_config(config) if problem.is_error] == []

    # 12 + 30 rows, 20% held out of each: 9 and 24 train; equal weights under-sample to 9 + 9.
    config = run_config(tiny_model_dir, general, data={"train_file": None, "sources": sources},
                        optimization={"per_device_train_batch_size": 19, "max_steps": -1})
    assert any("larger than the 18 training rows" in problem.message for problem in check_config(config))

    missing = [sources[0], {"path": str(tmp_path / "nowhere.jsonl"), "weight": 1}]
    config = run_config(tiny_model_dir, general, data={"train_file": None, "sources": missing})
    errors = [problem for problem in check_config(config) if problem.is_error]
    assert [problem.field for problem in errors] == ["data.sources[1].path"]
    assert "no such file" in errors[0].message
