"""A training run in this process on the tiny model: events, status, early stopping, best
checkpoint, export, and the ways a run fails or stops."""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time

import pytest

from training_test_support import read_events, run_config, varied_rows, write_alpaca
from workbench.errors import WorkbenchError
from workbench.runs.rundir import CHECKPOINT_COMPLETE_MARKER, complete_checkpoints, read_status


def _overfitting_data(tmp_path):
    """Training rows always answer "yes"; validation rows answer other words, so eval loss climbs
    as soon as the model learns its one answer: the classic overfitting curve, within a few steps."""
    train = write_alpaca(tmp_path / "train.json", [(f"Question {i}?", "yes yes yes yes") for i in range(24)])
    validation = write_alpaca(
        tmp_path / "validation.json", [(f"Question {i}?", answer) for i, (_, answer) in enumerate(varied_rows(6))]
    )
    return train, validation


def test_a_run_evaluates_stops_early_keeps_the_best_and_exports_a_loadable_model(tmp_path, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workbench.runs.export import export_run
    from workbench.training.run import run_training

    train, validation = _overfitting_data(tmp_path)
    config = run_config(
        tiny_model_dir,
        train,
        data={"validation_file": str(validation)},
        optimization={"max_steps": 30, "learning_rate": 0.05},
        evaluation={"early_stopping_patience": 2, "save_total_limit": 1},
        prompts=["Question 99?"],
    )
    run_dir = tmp_path / "run"
    lines: list[str] = []
    assert run_training(config, run_dir, report=lines.append) == 0

    status = read_status(run_dir)
    events = read_events(run_dir)
    kinds = [event["event"] for event in events]
    assert status.state == "completed" and "early stopping" in status.reason
    assert kinds[0] == "start" and kinds[-1] == "end"
    evals = [event for event in events if event["event"] == "eval"]
    best = min(evals, key=lambda event: event["eval_loss"])
    assert status.step < 30 and len(evals) >= 3
    assert status.best_eval_loss == pytest.approx(best["eval_loss"])
    assert status.best_checkpoint == f"checkpoints/checkpoint-{best['step']}"
    assert (run_dir / status.best_checkpoint / CHECKPOINT_COMPLETE_MARKER).is_file()
    # save_total_limit=1 keeps the newest checkpoint, and the best besides it
    assert len(complete_checkpoints(run_dir)) <= 2

    train_events = [event for event in events if event["event"] == "train"]
    assert [event["step"] for event in train_events] == list(range(1, status.step + 1))
    assert all(event["tokens_per_s"] > 0 and event["memory"]["cpu_rss_bytes"] > 0 for event in train_events[1:])
    tokens = [event["tokens_seen"] for event in train_events]
    assert tokens == sorted(tokens) and tokens[0] > 0
    samples = [event for event in events if event["event"] == "samples"]
    assert len(samples) == len(evals) and samples[0]["samples"][0]["prompt"] == "Question 99?"
    assert any(line.startswith("step 1/") for line in lines)

    # the final adapter is the best checkpoint's, in the standard PEFT layout
    assert (run_dir / "adapter" / "adapter_model.safetensors").read_bytes() == (
        run_dir / status.best_checkpoint / "adapter_model.safetensors"
    ).read_bytes()

    exported = export_run(run_dir, tmp_path / "merged", merge=True, report=lines.append)
    merged = AutoModelForCausalLM.from_pretrained(exported)
    tokenizer = AutoTokenizer.from_pretrained(exported)
    assert tokenizer.chat_template
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with_adapter = PeftModel.from_pretrained(base, run_dir / "adapter")
    ids = torch.tensor([tokenizer("Question 3?")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, with_adapter(ids).logits, atol=1e-4)

    adapter_only = export_run(run_dir, tmp_path / "adapter-only", checkpoint="best", report=lines.append)
    assert sorted(p.name for p in adapter_only.iterdir() if p.name.startswith("adapter")) == [
        "adapter_config.json", "adapter_model.safetensors"
    ]
    with pytest.raises(WorkbenchError, match="not empty"):
        export_run(run_dir, tmp_path / "merged", merge=True)


def test_a_nan_loss_fails_the_run_at_that_step_with_the_reason(tmp_path, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from workbench.training.run import run_training

    broken = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    broken.model.norm.weight.data.fill_(float("nan"))
    broken_dir = tmp_path / "broken-model"
    broken.save_pretrained(broken_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tiny_model_dir / name).exists():
            (broken_dir / name).write_bytes((tiny_model_dir / name).read_bytes())

    train = write_alpaca(tmp_path / "train.json", varied_rows(12))
    run_dir = tmp_path / "run"
    assert run_training(run_config(broken_dir, train), run_dir, report=lambda line: None) == 1

    status = read_status(run_dir)
    assert status.state == "failed"
    assert "NaN/inf at step 1" in status.reason
    events = read_events(run_dir)
    assert events[-1]["event"] == "end" and events[-1]["state"] == "failed"
    assert math.isnan([e for e in events if e["event"] == "train"][-1]["loss"])
    assert not complete_checkpoints(run_dir) and not (run_dir / "adapter").exists()


def test_sigterm_stops_gracefully_with_a_checkpoint_at_that_step(tmp_path, tiny_model_dir):
    from workbench.training.failures import EXIT_STOPPED
    from workbench.training.run import run_training

    train = write_alpaca(tmp_path / "train.json", varied_rows(20))
    config = run_config(tiny_model_dir, train, optimization={"max_steps": 200}, evaluation={"save_steps": 100, "eval_steps": 100})
    run_dir = tmp_path / "run"

    def stop_after_second_step():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if sum(event["event"] == "train" for event in read_events(run_dir)) >= 2:
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=stop_after_second_step, daemon=True)
    previous = signal.getsignal(signal.SIGTERM)
    watcher.start()
    assert run_training(config, run_dir, report=lambda line: None) == EXIT_STOPPED  # not 0: the run did not finish
    watcher.join()
    assert signal.getsignal(signal.SIGTERM) is previous  # the handlers go back when the run ends

    status = read_status(run_dir)
    assert status.state == "stopped" and status.step < 200
    assert complete_checkpoints(run_dir)[-1].name == f"checkpoint-{status.step}"
    assert status.last_checkpoint == f"checkpoints/checkpoint-{status.step}"
    state = json.loads((run_dir / status.last_checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == status.step
    assert (run_dir / "adapter" / "adapter_config.json").is_file()


def test_qlora_on_the_cpu_is_refused_in_one_line_before_any_run_directory(tmp_path, tiny_model_dir, capsys):
    from workbench_cli.main import main
    from workbench.config.io import save_config

    train = write_alpaca(tmp_path / "train.json", varied_rows(8))
    config_path = save_config(run_config(tiny_model_dir, train, method={"type": "qlora"}), tmp_path / "qlora.yaml")
    assert main(["train", str(config_path), "--runs-dir", str(tmp_path / "runs")]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith(f"error: {config_path}: method.type: QLoRA needs a CUDA GPU")
    assert not (tmp_path / "runs").exists()


def test_a_launched_run_whose_config_fails_its_checks_reads_failed_not_dead(tmp_path, tiny_model_dir, capsys):
    """start_run's child gets `train CONFIG --run-dir DIR`: a config that cannot train must leave a
    failed run with the reason, not a "starting" one whose process vanished."""
    from workbench_cli.main import main
    from workbench.config.io import save_config

    config = run_config(tiny_model_dir, tmp_path / "missing.json")
    run_dir = tmp_path / "run"
    config_path = save_config(config, run_dir / "config.yaml")
    assert main(["train", str(config_path), "--run-dir", str(run_dir)]) == 2
    assert "data.train_file: no such file" in capsys.readouterr().err
    status = read_status(run_dir)
    assert status.state == "failed" and "no such file" in status.reason
    assert read_events(run_dir)[-1]["event"] == "end"


def test_the_trainer_itself_fails_a_qlora_run_on_the_cpu_with_the_reason(tmp_path, tiny_model_dir):
    """A run started without the CLI's checks (as start_run does) still ends failed, saying why."""
    from workbench.training.run import run_training

    train = write_alpaca(tmp_path / "train.json", varied_rows(8))
    run_dir = tmp_path / "run"
    with pytest.raises(WorkbenchError, match="qlora needs a CUDA GPU"):
        run_training(run_config(tiny_model_dir, train, method={"type": "qlora"}), run_dir, report=lambda line: None)
    status = read_status(run_dir)
    assert status.state == "failed" and status.reason.startswith("method.type: qlora needs a CUDA GPU")
    assert read_events(run_dir)[-1]["event"] == "end"


@pytest.mark.parametrize(
    "sections",
    [
        {"method": {"type": "full"}, "data": {"packing": False}},
        {"optimization": {"gradient_checkpointing": True, "neftune_noise_alpha": 5.0, "max_steps": 2}},
    ],
    ids=["full-padded", "lora-checkpointing-neftune"],
)
def test_training_options_run_to_completion(tmp_path, tiny_model_dir, sections):
    from workbench.training.run import run_training

    train = write_alpaca(tmp_path / "train.json", varied_rows(12))
    config = run_config(tiny_model_dir, train, **{"optimization": {"max_steps": 2}, **sections})
    run_dir = tmp_path / "run"
    assert run_training(config, run_dir, report=lambda line: None) == 0
    status = read_status(run_dir)
    assert status.state == "completed" and status.step == 2
    losses = [event["loss"] for event in read_events(run_dir) if event["event"] == "train"]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    final = run_dir / "adapter"
    expected = "config.json" if config.method.type == "full" else "adapter_config.json"
    assert (final / expected).is_file()


def test_the_run_records_what_the_trainer_got_which_is_what_was_shown(tmp_path, tiny_model_dir, capsys):
    """`workbench train CFG key=value ...`: the overrides and a pass-through key reach the Trainer;
    training_args.json holds its arguments, equal field by field to the display's for that run
    directory; config.yaml keeps the resolved config."""
    from transformers import TrainingArguments

    from workbench_cli.main import main
    from workbench.config.hf_arguments import (
        display_facts,
        json_safe,
        lora_config_kwargs,
        training_arguments_kwargs,
        workbench_trainer_kwargs,
    )
    from workbench.config.io import load_config, save_config

    train = write_alpaca(tmp_path / "train.json", varied_rows(12))
    config_path = save_config(run_config(tiny_model_dir, train, optimization={"max_steps": 2}), tmp_path / "run.yaml")
    overrides = ["optimization.learning_rate=2e-3", "optimization.extra.adam_beta2=0.9", "method.r=2"]
    runs = tmp_path / "runs"
    assert main(["train", str(config_path), "--runs-dir", str(runs), *overrides]) == 0
    capsys.readouterr()
    (run_dir,) = list(runs.iterdir())

    resolved = load_config(run_dir / "config.yaml")
    assert (resolved.optimization.learning_rate, resolved.method.r) == (2e-3, 2)
    assert resolved.optimization.extra == {"adam_beta2": 0.9}
    assert load_config(config_path).optimization.learning_rate == 0.01  # the source file is untouched

    record = json.loads((run_dir / "training_args.json").read_text())
    ran = record["training_arguments"]
    assert (ran["learning_rate"], ran["adam_beta2"]) == (2e-3, 0.9)
    facts = display_facts(resolved, run_dir=run_dir)
    shown = json.loads(json.dumps(json_safe(TrainingArguments(**training_arguments_kwargs(resolved, facts)).to_dict())))
    assert {key: (shown[key], ran.get(key)) for key in shown if shown[key] != ran.get(key)} == {}
    assert record["lora_config"]["r"] == 2 == lora_config_kwargs(resolved)["r"]
    assert record["lora_config"]["lora_alpha"] == resolved.method.lora_alpha
    assert record["workbench_trainer"] == workbench_trainer_kwargs(resolved, facts)
    assert record["from_pretrained"]["dtype"] == "float32" and record["quantization_config"] is None


def test_report_to_tensorboard_writes_event_files_under_the_run_directory(tmp_path, tiny_model_dir):
    pytest.importorskip("tensorboard")
    from workbench.training.run import run_training

    train = write_alpaca(tmp_path / "train.json", varied_rows(12))
    config = run_config(tiny_model_dir, train, optimization={"max_steps": 2}, evaluation={"report_to": "tensorboard"})
    run_dir = tmp_path / "run"
    previous = os.environ.get("TENSORBOARD_LOGGING_DIR")
    assert run_training(config, run_dir, report=lambda line: None) == 0
    events = list((run_dir / "logs").rglob("events.out.tfevents.*"))
    assert events and all(path.stat().st_size > 0 for path in events)
    assert not list((run_dir / "checkpoints").rglob("events.out.tfevents.*"))
    assert os.environ.get("TENSORBOARD_LOGGING_DIR") == previous  # the process's environment is restored

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(events[0].parent))
    accumulator.Reload()
    assert "train/loss" in accumulator.Tags()["scalars"]
