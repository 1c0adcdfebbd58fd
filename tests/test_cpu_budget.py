"""The CPU budget: passive OpenMP waiting before torch in every entry point, one thread budget
shared by the trainer and chat through claim files, applied where the work runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench import cpu_budget
from workbench.cpu_budget import CpuBudget, CpuSplit, TrainerShare, current_split, live_claims
from workbench.errors import WorkbenchError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def budget_dir(tmp_path, monkeypatch):
    directory = tmp_path / "cpu-budget"
    monkeypatch.setenv(cpu_budget.BUDGET_DIR_ENV, str(directory))
    monkeypatch.setenv(cpu_budget.CPU_THREADS_ENV, "4")
    monkeypatch.delenv(cpu_budget.CHAT_THREADS_ENV, raising=False)
    monkeypatch.setattr(cpu_budget, "REFRESH_INTERVAL_S", 0.0)
    return directory


@pytest.fixture()
def keep_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def other_process():
    """A live process that is not this one, to hold a claim."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


def write_claim(directory: Path, role: str, pid: int, threads: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{role}-{pid}.json"
    path.write_text(json.dumps({"role": role, "pid": pid, "threads": threads}))
    return path


def test_the_budget_splits_as_documented(monkeypatch):
    budget = CpuBudget(cores=4, chat_share=1)
    assert budget.chat_threads(training=False) == 4, "no run training: chat takes every core"
    assert budget.chat_threads(training=True) == 1
    assert budget.train_threads(0) == 4, "nobody chatting: the trainer takes every core"
    assert budget.train_threads(1) == 3
    assert budget.train_threads(1, processes=2) == 1, "split over the training processes"
    assert CpuBudget(cores=1, chat_share=1).train_threads(1) == 1, "never below one thread"

    monkeypatch.setenv(cpu_budget.CPU_THREADS_ENV, "6")
    monkeypatch.setenv(cpu_budget.CHAT_THREADS_ENV, "2")
    assert CpuBudget.from_environment() == CpuBudget(6, 2)
    monkeypatch.setenv(cpu_budget.CHAT_THREADS_ENV, "9")
    assert CpuBudget.from_environment() == CpuBudget(6, 6), "chat's share never exceeds the cores"
    monkeypatch.delenv(cpu_budget.CPU_THREADS_ENV)
    monkeypatch.delenv(cpu_budget.CHAT_THREADS_ENV)
    assert CpuBudget.from_environment() == CpuBudget(cpu_budget.usable_cores(), 1)
    monkeypatch.setenv(cpu_budget.CHAT_THREADS_ENV, "two")
    with pytest.raises(WorkbenchError, match=r"\$WORKBENCH_CHAT_THREADS: must be a whole number.*'two'"):
        CpuBudget.from_environment()


def test_header_text_of_a_split():
    assert CpuSplit(2, train=1, chat=1).header_text() == "CPU 2 cores · train 1 · chat 1"
    assert CpuSplit(2, train=2, chat=0).header_text() == "CPU 2 cores · train 2 · chat idle"
    assert CpuSplit(2, train=0, chat=2).header_text() is None, "nothing to split without a run"


def test_trainer_and_chat_agree_through_their_claims(budget_dir, keep_torch_threads, other_process):
    import torch

    trainer = TrainerShare(CpuBudget.from_environment())
    assert trainer.refresh() == 4 and torch.get_num_threads() == 4, "alone, the trainer takes every core"
    chat = write_claim(budget_dir, "chat", other_process, 1)
    assert trainer.refresh() == 3 and torch.get_num_threads() == 3, "a chat answering takes its share"
    assert current_split() == CpuSplit(4, train=3, chat=1)
    chat.unlink()
    assert trainer.refresh() == 4, "and gives it back when it is done"

    with cpu_budget.chat_share() as share:
        assert share.threads == 1, "while a run trains, chat takes its share"
        assert torch.get_num_threads() == 1
    trainer.release()
    assert live_claims() == []
    with cpu_budget.chat_share() as share:
        assert share.threads == 4, "no run: chat takes every core"


def test_claims_of_finished_processes_are_ignored_and_removed(budget_dir):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = write_claim(budget_dir, "train", int(finished.stdout), 3)
    assert current_split().train == 0
    assert not stale.exists()


def test_a_generation_holds_its_share_in_its_own_thread_and_follows_a_run_that_starts(
    budget_dir, keep_torch_threads, other_process, tiny_model_dir
):
    import threading

    import torch

    from workbench.inference.engine import ChatEngine, GenerationJob
    from workbench.inference.prompting import build_messages
    from workbench.inference.settings import SamplingSettings
    from workbench.inference.sources import BASE_SOURCE

    engine = ChatEngine.load(str(tiny_model_dir), placement=("fp32", "cpu"))
    seen: list[tuple[str, int, list]] = []

    def record(*_):
        claims = [(claim.role, claim.threads) for claim in live_claims()]
        seen.append((threading.current_thread().name, torch.get_num_threads(), claims))
        if len(seen) == 3:
            write_claim(budget_dir, "train", other_process, 3)  # a run starts mid-answer

    engine._base.register_forward_pre_hook(record)
    job = GenerationJob(BASE_SOURCE, build_messages(None, [], "Hi"), SamplingSettings(max_new_tokens=8))
    engine.generate([job], force_length=True)
    assert {name for name, _, _ in seen} == {"workbench-generate"}
    assert seen[0][1:] == (4, [("chat", 4)]), "no run: every core, claimed while it answers"
    assert seen[-1][1:] == (1, [("chat", 1), ("train", 3)]), "re-applied in generate's thread once the run started"
    assert [claim.role for claim in live_claims()] == ["train"], "the chat claim ends with the answer"


WATCH_TORCH = """
import importlib.abc, json, os, sys
class StopAtTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            with open({out!r}, "w") as handle:
                json.dump({{"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}}, handle)
            os._exit(0)
        return None
sys.meta_path.insert(0, StopAtTorch())
sys.path.insert(0, {root!r})
"""


def environment_at_torch_import(tmp_path: Path, code: str, args: list[str] = ()) -> dict:
    """Run `code` in a fresh interpreter that stops the moment anything imports torch and
    reports the environment then (nothing is inherited: OMP_WAIT_POLICY is removed first)."""
    out = tmp_path / "at_torch.json"
    script = WATCH_TORCH.format(out=str(out), root=str(ROOT)) + textwrap.dedent(code)
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    env.update(TERM="xterm-256color", WORKBENCH_RUNS_DIR=str(tmp_path / "runs"))
    subprocess.run([sys.executable, "-c", script, *args], env=env, cwd=tmp_path, timeout=120, capture_output=True)
    assert out.is_file(), "the entry point never imported torch"
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def entry_inputs(tiny_model_dir, tmp_path_factory):
    """A prompts file, an adapter, a run directory and a run config on the tiny model."""
    from chat_test_support import make_run_dir, make_tiny_adapter
    from training_test_support import run_config, varied_rows, write_alpaca

    from workbench.config.io import save_config

    root = tmp_path_factory.mktemp("entry")
    prompts = root / "prompts.txt"
    prompts.write_text("Hi\n")
    adapter = make_tiny_adapter(tiny_model_dir, root / "adapter")
    run_dir = make_run_dir(root / "runs", "done", tiny_model_dir, adapter)
    config = root / "config.yaml"
    save_config(run_config(tiny_model_dir, write_alpaca(root / "rows.json", varied_rows(8))), config)
    return {"prompts": prompts, "adapter": adapter, "run": run_dir, "config": config, "model": tiny_model_dir}


CLI_ENTRIES = {
    "compare": ["compare", "--adapter", "{adapter}", "--prompts", "{prompts}", "--max-new-tokens", "2"],
    "train": ["train", "{config}"],
    "export": ["export", "{run}", "--format", "hf", "-o", "{tmp}/export"],
    "demo": ["demo", "--headless", "--model", "{model}", "--max-steps", "1", "--runs-dir", "{tmp}/demo-runs"],
    "eval": ["eval", "{run}", "--data", "{root}/sample_data/identity_heldout.jsonl"],
}


@pytest.mark.parametrize("command", sorted(CLI_ENTRIES))
def test_every_cli_command_sets_passive_waiting_before_torch(command, entry_inputs, tmp_path):
    """`python -m workbench COMMAND`: how the trainer child starts too (workbench/runs/launch.py)."""
    args = [arg.format(tmp=tmp_path, root=ROOT, **entry_inputs) for arg in CLI_ENTRIES[command]]
    seen = environment_at_torch_import(tmp_path, "import runpy\nrunpy.run_module('workbench', run_name='__main__')", args)
    assert seen == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_the_tui_sets_passive_waiting_before_its_model_loads(tmp_path, entry_inputs):
    """`workbench` (the TUI, headless here) and make_app, the factory other launchers and tests use."""
    code = f"""
    from textual.app import App
    run = App.run
    App.run = lambda self, **kwargs: run(self, headless=True)
    from workbench_cli.main import main
    main(["tui", "--model", {str(entry_inputs["model"])!r}])
    """
    assert environment_at_torch_import(tmp_path, code) == {"OMP_WAIT_POLICY": "PASSIVE"}
    code = f"""
    from screens.app import make_app
    make_app(model={str(entry_inputs["model"])!r}).run(headless=True)
    """
    assert environment_at_torch_import(tmp_path, code) == {"OMP_WAIT_POLICY": "PASSIVE"}


async def test_the_header_shows_the_split_while_a_run_trains(budget_dir, other_process, fixed_devices):
    from screens.app import make_app

    app = make_app(load_model=False, device_report=fixed_devices)
    async with app.run_test(size=(100, 24)) as pilot:
        devices = app.screen.query_one("#header-devices")
        assert "24 GiB RAM" in str(devices.render()), "no run: the devices, nothing to split"
        train = write_claim(budget_dir, "train", other_process, 4)
        app.refresh_cpu_split()
        await pilot.pause()
        assert str(devices.render()) == "CPU 4 cores · train 4 · chat idle"
        write_claim(budget_dir, "chat", os.getpid(), 1)
        train.write_text(json.dumps({"role": "train", "pid": other_process, "threads": 3}))
        app.refresh_cpu_split()
        await pilot.pause()
        assert str(devices.render()) == "CPU 4 cores · train 3 · chat 1"
        train.unlink()
        app.refresh_cpu_split()
        await pilot.pause()
        assert "24 GiB RAM" in str(devices.render()), "the run ended: back to the devices"


def test_the_trainer_claims_its_share_for_the_run_and_yields_to_a_chat_at_its_steps(
    budget_dir, keep_torch_threads, other_process, tiny_model_dir, tmp_path, monkeypatch
):
    from training_test_support import run_config, varied_rows, write_alpaca

    from workbench.training.run import run_training

    applied: list[tuple[int, list]] = []
    real_set = cpu_budget._set_torch_threads

    def record(threads):
        applied.append((threads, sorted((claim.role, claim.threads) for claim in live_claims())))
        if len(applied) == 2:
            write_claim(budget_dir, "chat", other_process, 1)  # a chat starts answering mid-run
        real_set(threads)

    monkeypatch.setattr(cpu_budget, "_set_torch_threads", record)
    config = run_config(tiny_model_dir, write_alpaca(tmp_path / "rows.json", varied_rows(12)), optimization={"max_steps": 3},
                        evaluation={"eval_steps": 100, "save_steps": 100})
    assert run_training(config, tmp_path / "run", report=lambda line: None) == 0
    assert applied[0] == (4, [("train", 4)]), "alone: every core, claimed for the run"
    assert applied[-1] == (3, [("chat", 1), ("train", 3)]), "the next steps give chat its share"
    assert [claim.role for claim in live_claims()] == ["chat"], "the train claim ends with the run"
