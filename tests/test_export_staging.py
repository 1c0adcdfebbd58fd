"""Exports appear whole or not at all: a killed export leaves only a hidden staging folder, which the
next export removes; a non-empty target is refused unless --force; failures leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from export_test_support import build_tiny_model, chatml_tokenizer, make_run
from workbench.errors import WorkbenchError
from workbench.export.options import ExportOptions
from workbench.staging import remove_stale_staging, staged_directory, staging_path

QUIET = dict(report=lambda line: None)


@pytest.fixture
def run_dir(tmp_path, default_tokenizer):
    tokenizer = chatml_tokenizer(tmp_path / "tokenizer", default_tokenizer.chat_template)
    return make_run(tmp_path / "run", build_tiny_model(tmp_path / "model", tokenizer), tokenizer)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_staging_folders_of_gone_processes_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / f".model.partial-{dead_pid()}"
    mine = staging_path(tmp_path / "model")
    parent_owned = tmp_path / f".export.partial-{os.getppid()}"  # a live process older than its folder
    for folder in (dead, mine, parent_owned):
        folder.mkdir()
        (folder / "half.safetensors").write_bytes(b"half")
    newcomer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reused = tmp_path / f".other.partial-{newcomer.pid}"
        reused.mkdir()
        an_hour_ago = time.time() - 3600
        os.utime(reused, (an_hour_ago, an_hour_ago))  # made before that pid's process started: pid reused
        removed = remove_stale_staging(tmp_path)
    finally:
        newcomer.kill()
        newcomer.wait()
    assert sorted(removed) == sorted([dead, reused])
    assert mine.is_dir() and parent_owned.is_dir() and not dead.exists() and not reused.exists()


def test_a_failed_export_leaves_neither_target_nor_staging(run_dir, monkeypatch):
    import workbench.export.hf as hf
    from workbench.runs.export import export

    def broken(model, tokenizer, target, dtype):
        (target / "model.safetensors").write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(hf, "write_hf", broken)
    with pytest.raises(OSError, match="disk full"):
        export(run_dir, ExportOptions(format="hf"), **QUIET)
    assert list((run_dir / "exports").iterdir()) == []


def test_a_non_empty_target_is_refused_unless_forced(run_dir):
    from workbench.runs.export import export

    target = run_dir.parent / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(WorkbenchError, match="not empty; choose a new directory or pass --force"):
        export(run_dir, ExportOptions(format="adapter", output=target), **QUIET)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    export(run_dir, ExportOptions(format="adapter", output=target, force=True), **QUIET)
    assert (target / "adapter_model.safetensors").is_file() and not (target / "notes.txt").exists()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".mine.")]


def test_staged_directory_replaces_the_old_target_only_when_the_new_one_is_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_directory(target, force=True) as staging:
            (staging / "new.txt").write_text("new")
            raise RuntimeError("killed halfway")
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    with staged_directory(target, force=True) as staging:
        (staging / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_killed_export_never_looks_complete_and_the_next_one_cleans_up(run_dir):
    """SIGKILL an export process while it writes (its save is held open), then export again."""
    script = (
        "import sys, time\n"
        "import workbench.export.hf as hf\n"
        "from workbench.export.options import ExportOptions\n"
        "from workbench.runs.export import export\n"
        "original = hf.write_hf\n"
        "def slow(model, tokenizer, target, dtype):\n"
        "    original(model, tokenizer, target, dtype)\n"
        "    time.sleep(120)\n"
        "hf.write_hf = slow\n"
        "export(sys.argv[1], ExportOptions(format='hf'), report=lambda line: None)\n"
    )
    exports = run_dir / "exports"
    child = subprocess.Popen([sys.executable, "-c", script, str(run_dir)], cwd=Path(__file__).parent.parent)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not list(exports.glob(".hf.partial-*/model.safetensors")):
            assert child.poll() is None, "the export process ended before it was killed"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    leftovers = list(exports.glob(".hf.partial-*"))
    assert len(leftovers) == 1 and not (exports / "hf").exists()

    from workbench.runs.export import export

    result = export(run_dir, ExportOptions(format="hf"), **QUIET)
    assert (result.path / "model.safetensors").is_file()
    assert [p.name for p in exports.iterdir()] == ["hf"]
