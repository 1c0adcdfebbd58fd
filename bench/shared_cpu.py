"""Training while chatting: one CPU shared by the trainer child and the chat engine (issue 16's budget).

Three scenarios, in interleaved rounds (train alone, chat alone, both; the order rotates each round),
each in fresh processes started the way users start them:

    train    `workbench train` (the CLI, which starts the trainer child) on the quick-demo-cpu preset,
             evaluation, prompt deck and checkpoints off, `--steps` optimizer steps
    chat     a process holding a ChatEngine (what the Chat pane runs: default model in the Chat pane's
             dtype, LoRA r=16 on every linear layer), answering `--answers` times base + tuned to one
             prompt, every answer forced to `--new-tokens` tokens
    both     the training started first; once its first step is logged the chat process starts; both
             run to the end

Figures: chat decode tokens/s (median over answers, the slower side of each pair), the trainer's
tokens/s (train events between the first and last step; in "both", only the steps logged while the
chat answered), and each scenario's wall time. Targets: chat during training >= 0.5x chat alone; the
trainer during chat >= 0.6x the trainer alone; "both" no slower than train alone + chat alone.
Both processes take their threads from the CPU budget (workbench/cpu_budget.py): nothing is set
here beyond what a user's processes get.

    .venv/bin/python bench/shared_cpu.py [--rounds 2] [--steps 16] [--answers 6] [--new-tokens 64]
    .venv/bin/python bench/shared_cpu.py --rounds 1 --steps 3 --answers 1 --new-tokens 8   # does it run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

PROMPT = "Explain what fine-tuning a language model means, with an example."


# -- the chat side, in its own process ------------------------------------------------------------


def chat_side(answers: int, new_tokens: int) -> None:
    from workbench.cpu_budget import prepare_process

    prepare_process()
    import torch
    from peft import LoraConfig, get_peft_model

    from workbench.devices import inference_placement
    from workbench.inference.deck import DeckReplay
    from workbench.inference.engine import ChatEngine
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE, source_from_directory
    from workbench.models import load_model, load_tokenizer, quiet_transformers, resolve_model

    quiet_transformers()
    dtype, device = inference_placement()
    resolved = resolve_model(None)
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        lora = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False, task_type="CAUSAL_LM")
        get_peft_model(load_model(resolved.path), lora).save_pretrained(Path(folder) / "adapter")
        tuned = source_from_directory(Path(folder) / "adapter")
        engine = ChatEngine(load_model(resolved, dtype=dtype, device=device), load_tokenizer(resolved),
                            model_path=resolved.path, model_name=resolved.display_name)
        engine.attach(tuned)
        settings = SamplingSettings(max_new_tokens=new_tokens)
        print("READY", flush=True)
        started = time.time()
        rates = []
        for _ in range(answers):
            for row in DeckReplay(engine, [BASE_SOURCE, tuned], [PROMPT], settings, force_length=True).rows():
                rates.append(min(answer.decode_tokens_per_s or 0.0 for answer in row.answers))
        print("RESULT " + json.dumps({"decode_tokens_per_s": statistics.median(rates), "rates": rates,
                                      "started": started, "ended": time.time(), "dtype": dtype}), flush=True)


# -- scenarios ------------------------------------------------------------------------------------


def write_train_config(folder: Path, steps: int) -> Path:
    from workbench.config.io import save_config
    from workbench.config.presets import QUICK_DEMO

    config = QUICK_DEMO.config()
    config.data.train_file = str(ROOT / "sample_data" / "identity_alpaca.json")
    config.data.validation_split = 0.0
    config.optimization.max_steps = steps
    config.evaluation.save_steps = 100_000
    config.prompts = []
    path = folder / "train.yaml"
    save_config(config, path)
    return path


def start_training(config: Path, run_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "workbench", "train", str(config), "--run-dir", str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def train_marks(run_dir: Path) -> list[tuple[float, int]]:
    from workbench.runs.rundir import read_events

    return [(event["time"], event["tokens_seen"]) for event in read_events(run_dir) if event["event"] == "train"]


def rate(marks: list[tuple[float, int]]) -> float | None:
    if len(marks) < 2:
        return None
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return (n1 - n0) / (t1 - t0)


def start_chat(args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--side", "chat", "--answers", str(args.answers),
                             "--new-tokens", str(args.new_tokens)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def chat_result(process: subprocess.Popen) -> dict:
    output, errors = process.communicate()
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"chat side failed:\n{errors[-3000:]}")


def wait_training(process: subprocess.Popen, run_dir: Path) -> None:
    _, errors = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"training failed ({process.returncode}) in {run_dir}:\n{errors[-3000:]}")


def scenario_train(args, folder: Path, config: Path, number: int) -> dict:
    run_dir = folder / f"train-{number}"
    started = time.time()
    wait_training(start_training(config, run_dir), run_dir)
    return {"wall_s": time.time() - started, "train_tokens_per_s": rate(train_marks(run_dir))}


def scenario_chat(args, folder: Path, config: Path, number: int) -> dict:
    started = time.time()
    result = chat_result(start_chat(args))
    return {"wall_s": time.time() - started, "chat_tokens_per_s": result["decode_tokens_per_s"]}


def scenario_both(args, folder: Path, config: Path, number: int) -> dict:
    run_dir = folder / f"both-{number}"
    started = time.time()
    training = start_training(config, run_dir)
    while not train_marks(run_dir):  # past start-up and the first step's warm-up
        if training.poll() is not None:
            wait_training(training, run_dir)
            raise SystemExit("training ended before its first step")
        time.sleep(0.5)
    chat = start_chat(args)
    result = chat_result(chat)
    wait_training(training, run_dir)
    wall = time.time() - started
    during = [mark for mark in train_marks(run_dir) if result["started"] <= mark[0] <= result["ended"]]
    return {"wall_s": wall, "chat_tokens_per_s": result["decode_tokens_per_s"], "train_tokens_per_s": rate(during),
            "train_steps_during_chat": max(0, len(during) - 1)}


SCENARIOS = {"train": scenario_train, "chat": scenario_chat, "both": scenario_both}


def cpu_model() -> str:
    from workbench.devices import detect_devices

    return detect_devices().cpu.name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=16, help="optimizer steps of each training")
    parser.add_argument("--answers", type=int, default=6, help="base + tuned answers of each chat")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--json", help="also write every measurement here")
    parser.add_argument("--side", choices=("chat",), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side == "chat":
        chat_side(args.answers, args.new_tokens)
        return 0

    record = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpu": cpu_model(),
              "cores": os.cpu_count(), "steps": args.steps, "answers": args.answers, "new_tokens": args.new_tokens,
              "rounds": []}
    print(f"{record['date']} · {record['cpu']} · {record['cores']} cores · load {os.getloadavg()[0]:.2f}", flush=True)
    names = list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="shared-cpu-") as name:
        folder = Path(name)
        config = write_train_config(folder, args.steps)
        for number in range(args.rounds):
            order = names[number % 3:] + names[:number % 3]
            for scenario in order:
                before = os.getloadavg()[0]
                result = SCENARIOS[scenario](args, folder, config, number)
                result.update(scenario=scenario, round=number, load_before=round(before, 2),
                              load_after=round(os.getloadavg()[0], 2))
                record["rounds"].append(result)
                print(json.dumps(result), flush=True)

    def median(scenario: str, key: str) -> float | None:
        values = [r[key] for r in record["rounds"] if r["scenario"] == scenario and r.get(key)]
        return statistics.median(values) if values else None

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a / b

    def shown(value: float | None, digits: int = 2) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"  # n/a: the chat ended within one step

    chat_alone, chat_both = median("chat", "chat_tokens_per_s"), median("both", "chat_tokens_per_s")
    train_alone, train_both = median("train", "train_tokens_per_s"), median("both", "train_tokens_per_s")
    one_after_other = median("train", "wall_s") + median("chat", "wall_s")
    summary = {
        "chat_during_training_over_alone": ratio(chat_both, chat_alone),
        "training_during_chat_over_alone": ratio(train_both, train_alone),
        "both_wall_over_one_after_the_other": ratio(median("both", "wall_s"), one_after_other),
    }
    record["summary"] = summary
    print(f"chat decode: alone {shown(chat_alone, 1)} tok/s, while training {shown(chat_both, 1)} tok/s: "
          f"{shown(summary['chat_during_training_over_alone'])}x (target >= 0.5)")
    print(f"training: alone {shown(train_alone, 1)} tok/s, while chatting {shown(train_both, 1)} tok/s: "
          f"{shown(summary['training_during_chat_over_alone'])}x (target >= 0.6)")
    print(f"both at once {median('both', 'wall_s'):.1f} s against one after the other {one_after_other:.1f} s: "
          f"{shown(summary['both_wall_over_one_after_the_other'])}x (target <= 1)")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
