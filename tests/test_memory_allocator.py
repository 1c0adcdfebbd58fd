"""The trainer's allocator: mimalloc preloaded into the trainer child (launcher) and into `workbench
train` started from a shell (one re-exec), so its peak RSS is the estimate's."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from workbench import allocator
from workbench.allocator import ALLOCATOR_ENV, allocator_environment, mimalloc_library

needs_mimalloc = pytest.mark.skipif(mimalloc_library() is None, reason="cmeel-mimalloc is not installed here")


@needs_mimalloc
def test_a_process_started_with_the_trainer_environment_runs_torch_under_mimalloc():
    code = (
        "import torch\n"
        "from workbench.allocator import tuned_allocator_loaded\n"
        "x = torch.randn(512, 512, requires_grad=True)\n"
        "(x @ x).sum().backward()\n"
        "print(tuned_allocator_loaded(), float(x.grad.abs().sum()) > 0)\n"
    )
    env = {**os.environ, **allocator_environment()}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
    plain = subprocess.run([sys.executable, "-c", "from workbench.allocator import tuned_allocator_loaded as t; "
                            "print(t())"], capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "False"


@needs_mimalloc
def test_the_environment_preloads_mimalloc_once_and_system_opts_out(monkeypatch):
    library = str(mimalloc_library())
    assert allocator_environment({}) == {"LD_PRELOAD": library}
    assert allocator_environment({"LD_PRELOAD": "/opt/other.so"}) == {"LD_PRELOAD": f"{library} /opt/other.so"}
    assert allocator_environment({"LD_PRELOAD": library}) == {}
    monkeypatch.setenv(ALLOCATOR_ENV, "system")
    assert allocator_environment({}) == {}


@needs_mimalloc
def test_workbench_train_from_a_shell_reexecutes_itself_under_mimalloc_and_a_library_caller_never(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator.os, "execve", lambda *args: calls.append(args))
    monkeypatch.setattr(allocator, "tuned_allocator_loaded", lambda: False)
    monkeypatch.setattr(sys, "argv", ["/usr/bin/pytest", "train", "run.yaml"])
    allocator.reexec_with_allocator(["train", "run.yaml"])
    assert calls == []  # not started as `workbench`: a test or another program calling cli.main
    monkeypatch.setattr(sys, "argv", ["/venv/bin/workbench", "train", "run.yaml"])
    allocator.reexec_with_allocator(["train", "run.yaml"])
    (executable, argv, env), = calls
    assert executable == sys.executable and argv == [sys.executable, "-m", "workbench", "train", "run.yaml"]
    assert str(mimalloc_library()) in env["LD_PRELOAD"]


@needs_mimalloc
def test_the_launcher_gives_the_trainer_child_the_allocator(monkeypatch, tmp_path):
    from workbench.runs import launch

    seen = {}

    class FakePopen:
        pid = 12345

        def __init__(self, argv, **options):
            seen.update(options["env"])

        def wait(self):
            return 0

    monkeypatch.setattr(launch.subprocess, "Popen", FakePopen)
    launch._spawn_detached(["train", "x.yaml"], tmp_path)
    assert seen["LD_PRELOAD"].split()[0] == str(mimalloc_library())


@pytest.mark.parametrize(("argv", "reexecuted"), [
    (["eval", "some-run"], True), (["compare", "--run", "r"], True), ([], True), (["data", "inspect", "x.json"], True),
    (["data", "clean", "x.json", "-o", "out.jsonl"], True), (["data", "show", "x.json", "--row", "0"], False),
    (["models"], False),
])
def test_commands_that_answer_with_a_model_or_read_a_whole_file_restart_under_mimalloc_once(monkeypatch, argv, reexecuted):
    """The TUI, eval, compare, the demo, `data inspect` and `data clean` restart under mimalloc;
    one-row and quick commands (and any --help) do not."""
    import workbench_cli.main as cli_main

    restarts = []

    class Stop(Exception):
        pass

    def record(arguments):
        restarts.append(arguments)
        raise Stop  # the real one replaces the process here

    monkeypatch.setattr(cli_main, "reexec_with_allocator", record)
    monkeypatch.setattr(sys, "argv", ["workbench", *argv])
    module = argv[0] if argv else "tui"
    monkeypatch.setattr(f"workbench_cli.commands.{cli_main.COMMANDS[module][0]}.run", lambda args: 0)
    try:
        cli_main.main()
    except Stop:
        pass
    assert restarts == ([argv or ["tui"]] if reexecuted else [])


def test_help_never_restarts():
    from workbench_cli.main import restarts_under_allocator

    assert restarts_under_allocator(["data", "inspect", "x.json"])
    assert not restarts_under_allocator(["data", "inspect", "--help"])
    assert not restarts_under_allocator(["eval", "-h"])
    assert not restarts_under_allocator(["data"])
