"""A corpus of bad inputs, built by the tests: every one gets exit code 2 and ONE line on stderr naming
the file (and the line or field where there is one), within seconds, with no traceback and the source
bytes unchanged.

Most cases run in-process through `workbench_cli.main.main`, under a watchdog that ends the test run with a
traceback if one hangs (a FIFO, YAML aliases used to); /dev/zero and one FIFO run as real commands in a
subprocess with a timeout (reading /dev/zero in-process would exhaust the memory before any watchdog).
"""

from __future__ import annotations

import faulthandler
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from chat_test_support import make_run_dir, make_tiny_adapter
from training_test_support import run_config, varied_rows, write_alpaca

from workbench_cli.main import main

CASE_TIMEOUT_S = 30
GOOD_ROW = '{"instruction": "hi", "output": "there"}\n'


@dataclass(frozen=True)
class Corpus:
    root: Path
    model: Path
    runs: Path
    train: Path
    good_config: Path
    run_dir: Path
    adapter: Path
    prompts: Path


def _write(root: Path, name: str, data: bytes | str) -> Path:
    path = root / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _model_variant(root: Path, name: str, tiny: Path, change: Callable[[Path], None]) -> Path:
    folder = root / name
    folder.mkdir()
    for item in tiny.iterdir():
        if item.is_file():
            (folder / item.name).write_bytes(item.read_bytes())
    change(folder)
    return folder


def _config(root: Path, name: str, model: Path, train: Path, **sections) -> Path:
    from workbench.config.io import save_config

    path = root / name
    save_config(run_config(model, train, **sections), path)
    return path


def _yaml_with(good: Path, root: Path, name: str, old: str, new: str) -> Path:
    text = good.read_text()
    assert old in text, old
    return _write(root, name, text.replace(old, new))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_model_dir) -> Corpus:
    root = tmp_path_factory.mktemp("bad-inputs")
    train = write_alpaca(root / "train.json", varied_rows(20))
    good = _config(root, "good.yaml", tiny_model_dir, train)
    runs = root / "runs"
    adapter = make_tiny_adapter(tiny_model_dir, root / "adapter")
    run_dir = make_run_dir(root / "finished", "done", tiny_model_dir, adapter, steps=(2,), best_step=2)
    prompts = _write(root, "prompts.txt", "What is your name?\n")

    # data files
    os.mkfifo(root / "fifo.jsonl")
    os.symlink("/dev/zero", root / "zero.jsonl")
    os.symlink("/proc/self/mem", root / "unreadable.jsonl")  # a regular file whose read fails (EIO), even as root
    (root / "folder.jsonl").mkdir()
    os.symlink("loop-b.jsonl", root / "loop-a.jsonl")
    os.symlink("loop-a.jsonl", root / "loop-b.jsonl")
    os.symlink("missing.jsonl", root / "dangling.jsonl")
    _write(root, "surrogate.jsonl", GOOD_ROW + '{"instruction": "a\\ud800b", "output": "x"}\n')
    _write(root, "surrogate.json", '[{"instruction": "ok", "output": "x"},\n {"instruction": "x", "output": "b\\udc00"}]')
    _write(root, "deep.json", "[" * 10_000 + "]" * 10_000)
    _write(root, "deep.jsonl", '{"instruction": "a", "output": "b", "x": ' + "[" * 10_000 + "]" * 10_000 + "}\n")
    _write(root, "bigint.jsonl", GOOD_ROW + '{"instruction": "a", "output": "b", "n": ' + "9" * 5000 + "}\n")
    _write(root, "late-nul.jsonl", GOOD_ROW * 3000 + '{"instruction": "a\x00", "output": "b"}\n')
    _write(root, "utf32.jsonl", "\ufeff".encode("utf-32-le") + (GOOD_ROW * 2).encode("utf-32-le"))
    _write(root, "utf16.jsonl", b"\xff\xfe" + (GOOD_ROW * 2).encode("utf-16-le"))
    _write(root, "latin1.jsonl", '{"instruction": "café", "output": "b"}\n'.encode("latin-1"))
    _write(root, "broken.csv", 'instruction,output\n"a","b"\n"c","d"\n"e,"f\n')
    _write(root, "empty.jsonl", "")
    _write(root, "truncated.jsonl", GOOD_ROW * 2 + '{"instruction": "a", "out')
    _write(root, "middle.jsonl", GOOD_ROW + '{"instruction": "a" "output": "b"}\n' + GOOD_ROW)
    _write(root, "null-row.jsonl", "null\n")
    _write(root, "number.json", "42")
    _write(root, "bad-content.jsonl", '{"messages": [{"role": "user", "content": {"a": 1}}]}\n')
    _write(root, "no-extension", GOOD_ROW)
    _write(root, "dataset_info.json", json.dumps({"alpaca": {"file_name": "train.json"}}))

    # run configs
    os.mkfifo(root / "fifo.yaml")
    _write(root, "aliases.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)) + "name: *i\n")
    _write(root, "deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n")
    _write(root, "binary.yaml", b"\x00\x01\x02")
    _yaml_with(good, root, "seed-negative.yaml", "seed: 42", "seed: -1")
    _yaml_with(good, root, "seed-huge.yaml", "seed: 42", "seed: 99999999999999999999")
    _yaml_with(good, root, "epochs-inf.yaml", "num_train_epochs: 3.0", "num_train_epochs: .inf")
    _yaml_with(good, root, "lr-nan.yaml", "learning_rate: 0.01", "learning_rate: .nan")
    _yaml_with(good, root, "targets.yaml", "target_modules: all-linear", "target_modules: [no_such_proj]")
    _yaml_with(good, root, "rank-huge.yaml", "  r: 4\n", "  r: 100000\n")
    _yaml_with(good, root, "train-surrogate.yaml", str(train), str(root / "surrogate.jsonl"))
    _yaml_with(good, root, "train-fifo.yaml", str(train), str(root / "fifo.jsonl"))
    _write(root, "broken.jinja", "{% for message in messages %}{{ message.content }")
    _yaml_with(good, root, "bad-jinja.yaml", "chat_template: auto", f"chat_template: {root / 'broken.jinja'}")

    def truncate_weights(folder: Path) -> None:
        weights = folder / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])

    def remote_code(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        config.update(model_type="mycustomlm", auto_map={"AutoModelForCausalLM": "modeling_my.MyLM"})
        (folder / "config.json").write_text(json.dumps(config))
        (folder / "modeling_my.py").write_text("raise SystemExit('remote code ran')\n")

    for name, change in (
        ("model-truncated", truncate_weights),
        ("model-no-weights", lambda folder: (folder / "model.safetensors").unlink()),
        ("model-remote-code", remote_code),
    ):
        _config(root, f"{name}.yaml", _model_variant(root, name, tiny_model_dir, change), train)

    # other inputs
    os.mkfifo(root / "fifo.txt")
    _write(root, "prompts-binary.txt", b"hello\x00world\n")
    _write(root, "prompt-1mb.txt", "word " * 200_000 + "\n")
    _write(root, "prompts-250.txt", "".join(f"Question {index}?\n" for index in range(250)))
    os.mkfifo(root / "fifo.recipe.yaml")
    _write(root, "a-file", "not a directory\n")
    (root / "out-dir.jsonl").mkdir()
    return Corpus(root, tiny_model_dir, runs, train, good, run_dir, adapter, prompts)


def _fingerprint(path: Path) -> str:
    """The bytes of a regular file (hashed), or the kind and size of anything else (never opened)."""
    try:
        info = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(info.st_mode) or path.resolve().is_relative_to("/proc"):
        return f"{stat.S_IFMT(info.st_mode)}:{info.st_size}"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inspect(name: str) -> Callable[[Corpus], list[str]]:
    return lambda c: ["data", "inspect", str(c.root / name), "--model", str(c.model)]


def _train(name: str) -> Callable[[Corpus], list[str]]:
    return lambda c: ["train", str(c.root / name), "--runs-dir", str(c.runs)]


# (id, argv, the one stderr line must match this, the file it must name, run in a subprocess)
CASES: list[tuple[str, Callable[[Corpus], list[str]], str, str, bool]] = [
    ("fifo-data", _inspect("fifo.jsonl"), r"fifo\.jsonl: is a FIFO \(named pipe\), not a regular file", "fifo.jsonl", True),
    ("dev-zero-data", _inspect("zero.jsonl"), r"zero\.jsonl: is a character device, not a regular file", "zero.jsonl", True),
    ("unreadable-data", _inspect("unreadable.jsonl"), r"unreadable\.jsonl: cannot be read", "unreadable.jsonl", False),
    ("directory-data", _inspect("folder.jsonl"), r"folder\.jsonl: is a directory", "folder.jsonl", False),
    ("symlink-loop", _inspect("loop-a.jsonl"), r"loop-a\.jsonl: a symlink loop", "loop-a.jsonl", False),
    ("dangling-symlink", _inspect("dangling.jsonl"), r"dangling\.jsonl: a symlink to missing\.jsonl, which does not exist", "dangling.jsonl", False),
    ("lone-surrogate-jsonl", _inspect("surrogate.jsonl"), r"surrogate\.jsonl:2: instruction: a lone UTF-16 surrogate", "surrogate.jsonl", False),
    ("lone-surrogate-json", _inspect("surrogate.json"), r"surrogate\.json:2: output: a lone UTF-16 surrogate", "surrogate.json", False),
    ("deep-nesting-json", _inspect("deep.json"), r"deep\.json:1: nested deeper than the JSON reader allows", "deep.json", False),
    ("deep-nesting-jsonl", _inspect("deep.jsonl"), r"deep\.jsonl:1: nested deeper", "deep.jsonl", False),
    ("huge-integer", _inspect("bigint.jsonl"), r"bigint\.jsonl:2: a number with 5,000 digits", "bigint.jsonl", False),
    ("late-nul-byte", _inspect("late-nul.jsonl"), r"late-nul\.jsonl:3001: binary content \(a NUL byte", "late-nul.jsonl", False),
    ("utf32", _inspect("utf32.jsonl"), r"utf32\.jsonl: the file is UTF-32 encoded", "utf32.jsonl", False),
    ("utf16", _inspect("utf16.jsonl"), r"utf16\.jsonl: the file is UTF-16 encoded", "utf16.jsonl", False),
    ("latin1", _inspect("latin1.jsonl"), r"latin1\.jsonl:1: not valid UTF-8 \(byte 0xe9", "latin1.jsonl", False),
    ("csv-line-number", _inspect("broken.csv"), r"broken\.csv:4: invalid CSV", "broken.csv", False),
    ("empty-file", _inspect("empty.jsonl"), r"empty\.jsonl: the file is empty", "empty.jsonl", False),
    ("truncated-file", _inspect("truncated.jsonl"), r"truncated\.jsonl:3: invalid JSON .*\(truncated\?\)", "truncated.jsonl", False),
    ("null-row", _inspect("null-row.jsonl"), r"null-row\.jsonl:1: expected a JSON object per line, got null", "null-row.jsonl", False),
    ("top-level-number", _inspect("number.json"), r"number\.json: the top-level JSON value is int", "number.json", False),
    ("bad-field", _inspect("bad-content.jsonl"), r"bad-content\.jsonl:1 \(row 0\): messages\[0\]\.content", "bad-content.jsonl", False),
    ("no-extension", _inspect("no-extension"), r"no-extension: unsupported file type", "no-extension", False),
    ("missing-entry", lambda c: ["data", "inspect", f"{c.root / 'dataset_info.json'}#nope", "--model", str(c.model)],
     r"dataset_info\.json: no entry 'nope'", "dataset_info.json", False),
    ("clean-surrogate", lambda c: ["data", "clean", str(c.root / "surrogate.jsonl"), "-o", str(c.root / "cleaned.jsonl")],
     r"surrogate\.jsonl:2: instruction: a lone UTF-16 surrogate", "surrogate.jsonl", False),
    ("show-deep", lambda c: ["data", "show", str(c.root / "deep.jsonl"), "--row", "0", "--model", str(c.model)],
     r"deep\.jsonl:1: nested deeper", "deep.jsonl", False),
    # run configs (train refuses them before any run directory exists)
    ("fifo-config", _train("fifo.yaml"), r"fifo\.yaml: is a FIFO", "fifo.yaml", False),
    ("yaml-billion-laughs", _train("aliases.yaml"), r"aliases\.yaml: YAML aliases \(\*name\) expand to more than 100,000 values", "aliases.yaml", False),
    ("yaml-deep", _train("deep.yaml"), r"deep\.yaml:1: nested more than 100 levels", "deep.yaml", False),
    ("yaml-binary", _train("binary.yaml"), r"binary\.yaml:1: binary content", "binary.yaml", False),
    ("seed-negative", _train("seed-negative.yaml"), r"seed-negative\.yaml: optimization\.seed: .*greater than or equal to 0", "seed-negative.yaml", False),
    ("seed-huge", _train("seed-huge.yaml"), r"seed-huge\.yaml: optimization\.seed: .*less than or equal to 4294967295", "seed-huge.yaml", False),
    ("epochs-infinite", _train("epochs-inf.yaml"), r"epochs-inf\.yaml: optimization\.num_train_epochs: .*finite", "epochs-inf.yaml", False),
    ("lr-nan", _train("lr-nan.yaml"), r"lr-nan\.yaml: optimization\.learning_rate: .*finite", "lr-nan.yaml", False),
    ("missing-targets", _train("targets.yaml"), r"targets\.yaml: method\.target_modules: the model has no layer named no_such_proj", "targets.yaml", False),
    ("rank-huge", _train("rank-huge.yaml"), r"rank-huge\.yaml: method\.r: 100000 is wider than every adapted layer", "rank-huge.yaml", False),
    ("truncated-safetensors", _train("model-truncated.yaml"), r"model-truncated\.yaml: model\.name_or_path: .*model\.safetensors holds .* bytes its header lists", "model-truncated.yaml", False),
    ("no-safetensors", _train("model-no-weights.yaml"), r"model-no-weights\.yaml: model\.name_or_path: .*no weights", "model-no-weights.yaml", False),
    ("remote-code", _train("model-remote-code.yaml"), r"model-remote-code\.yaml: model\.trust_remote_code: .*ships its own Python code", "model-remote-code.yaml", False),
    ("train-file-surrogate", _train("train-surrogate.yaml"), r"train-surrogate\.yaml: data\.train_file: .*surrogate\.jsonl:2: instruction: a lone", "train-surrogate.yaml", False),
    ("train-file-fifo", _train("train-fifo.yaml"), r"train-fifo\.yaml: data\.train_file: .*fifo\.jsonl: is a FIFO", "train-fifo.yaml", False),
    ("bad-jinja-template", _train("bad-jinja.yaml"), r"bad-jinja\.yaml: data\.chat_template: .*broken\.jinja: not a valid Jinja template \(line 1", "bad-jinja.yaml", False),
    # output paths, checked before any work
    ("clean-output-is-a-directory", lambda c: ["data", "clean", str(c.train), "-o", str(c.root / "out-dir.jsonl")],
     r"-o .*out-dir\.jsonl: is a directory", "out-dir.jsonl", False),
    ("clean-output-under-a-file", lambda c: ["data", "clean", str(c.train), "-o", str(c.root / "a-file" / "out.jsonl")],
     r"-o .*a-file/out\.jsonl: cannot be created: .*a-file is a file", "a-file", False),
    ("run-dir-is-a-file", lambda c: ["train", str(c.good_config), "--run-dir", str(c.root / "a-file")],
     r"--run-dir .*a-file: is a file; name a directory", "a-file", False),
    ("runs-dir-is-a-file", lambda c: ["train", str(c.good_config), "--runs-dir", str(c.root / "a-file")],
     r"--runs-dir .*a-file: is a file; name a directory", "a-file", False),
    ("export-output-is-a-file", lambda c: ["export", str(c.run_dir), "-o", str(c.root / "a-file")],
     r"-o .*a-file: is a file; name a directory", "a-file", False),
    ("config-new-output-is-a-directory", lambda c: ["config", "new", "-o", str(c.root / "out-dir.jsonl"), "--force"],
     r"-o .*out-dir\.jsonl: is a directory", "out-dir.jsonl", False),
    ("recipe-is-a-fifo", lambda c: ["data", "clean", str(c.train), "-o", str(c.root / "c.jsonl"), "--recipe", str(c.root / "fifo.recipe.yaml")],
     r"fifo\.recipe\.yaml: is a FIFO", "fifo.recipe.yaml", False),
    ("prompts-is-a-fifo", lambda c: ["compare", "--adapter", str(c.adapter), "--model", str(c.model), "--prompts", str(c.root / "fifo.txt")],
     r"fifo\.txt: is a FIFO", "fifo.txt", False),
    ("prompts-binary", lambda c: ["compare", "--adapter", str(c.adapter), "--model", str(c.model), "--prompts", str(c.root / "prompts-binary.txt")],
     r"prompts-binary\.txt:1: binary content", "prompts-binary.txt", False),
    ("temperature-nan", lambda c: ["compare", "--adapter", str(c.adapter), "--model", str(c.model), "--prompts", str(c.prompts), "--temperature", "nan"],
     r"temperature: must be a finite number", "temperature", False),
    ("prompt-1mb", lambda c: ["compare", "--adapter", str(c.adapter), "--model", str(c.model), "--prompts", str(c.root / "prompt-1mb.txt")],
     r"prompt-1mb\.txt:1: the prompt is 999,999 bytes, far more than the model's context", "prompt-1mb.txt", False),
    ("huge-deck-needs-yes", lambda c: ["compare", "--adapter", str(c.adapter), "--model", str(c.model), "--prompts", str(c.root / "prompts-250.txt")],
     r"prompts-250\.txt: 250 prompts × 2 models .* pass --yes", "prompts-250.txt", False),
    ("eval-data-surrogate", lambda c: ["eval", str(c.run_dir), "--data", str(c.root / "surrogate.jsonl"), "--knowledge", "none"],
     r"surrogate\.jsonl:2: instruction: a lone UTF-16 surrogate", "surrogate.jsonl", False),
]


def _run_in_subprocess(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "workbench", *argv], capture_output=True, text=True, timeout=CASE_TIMEOUT_S,
        stdin=subprocess.DEVNULL, env={**os.environ, **env},
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_bad_input_gets_one_line_and_exit_2(case, corpus, capsys, monkeypatch):
    _, argv_for, pattern, named, in_subprocess = case
    argv = argv_for(corpus)
    files = sorted(p for p in corpus.root.iterdir() if p.name != "runs")
    before = {path: _fingerprint(path) for path in files}
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(corpus.runs))
    started = time.monotonic()
    if in_subprocess:
        code, out, err = _run_in_subprocess(argv, {"WORKBENCH_RUNS_DIR": str(corpus.runs)})
    else:
        monkeypatch.setattr(sys, "stdin", open(os.devnull))  # no terminal: a confirmation is refused, not asked
        faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True, file=sys.__stderr__)  # a hang fails loudly
        try:
            code = main(argv)
        finally:
            faulthandler.cancel_dump_traceback_later()
        out, err = capsys.readouterr()
    elapsed = time.monotonic() - started

    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1, err
    assert re.search(pattern, lines[0]), lines[0]
    assert named in lines[0]
    assert elapsed < CASE_TIMEOUT_S
    assert {path: _fingerprint(path) for path in files} == before, "a source file changed"
    assert not corpus.runs.exists() or not any(corpus.runs.iterdir()), "a refused run left a run directory"


def test_quiet_wrongs_are_named_rightly(corpus, capsys):
    """CR-only line endings load (not "truncated"); an invalid middle row is not called truncated;
    a key repeated in a row is a warning naming its line; clean writing 0 rows fails."""
    from workbench.data.loading import load_conversations

    crlf = _write(corpus.root, "cr-only.jsonl", GOOD_ROW.replace("\n", "\r") * 3)
    assert load_conversations(crlf).rows == 3
    with pytest.raises(Exception, match=r"middle\.jsonl:2: invalid JSON") as caught:
        load_conversations(corpus.root / "middle.jsonl")
    assert "truncated" not in str(caught.value)

    repeated = _write(corpus.root, "repeated-key.jsonl", GOOD_ROW + '{"instruction": "a", "instruction": "b", "output": "c"}\n')
    loaded = load_conversations(repeated)
    assert loaded.rows == 2 and len(loaded.warnings) == 1
    assert "repeated-key.jsonl:2: warning: the key 'instruction' appears twice" in loaded.warnings[0]

    output = corpus.root / "nothing-left.jsonl"
    code = main(["data", "clean", str(corpus.train), "-o", str(output), "--keep-matching", "no row holds this"])
    err = capsys.readouterr().err
    assert code == 2 and "no rows left to train on" in err and not output.exists()


def test_one_damaged_status_file_does_not_break_workbench_runs(tmp_path, capsys):
    for name, status in (("array", "[1, 2]"), ("types", '{"name": 5, "state": 7, "step": "x", "started_at": "yesterday", "pid": "abc"}'),
                         ("cut", '{"name": "c", "state": "runn'), ("good", '{"name": "good", "state": "completed", "step": 3}')):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(f"name: {name}\n")
        (tmp_path / name / "status.json").write_text(status)
    assert main(["runs", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "completed" in out and len(out.splitlines()) == 5


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nothing may be written into: a read-only tmpfs as root, else a chmod 555 folder."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() == 0:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip("cannot mount a read-only tmpfs here")
        yield folder
        subprocess.run(["umount", str(folder)], capture_output=True)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


def test_outputs_in_a_read_only_place_are_refused_before_work(read_only_dir, corpus, capsys):
    code = main(["data", "clean", str(corpus.train), "-o", str(read_only_dir / "out.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"error: -o {read_only_dir / 'out.jsonl'}: ") and ("read-only" in err or "not writable" in err)
    code = main(["train", str(corpus.good_config), "--run-dir", str(read_only_dir / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--run-dir" in err and ("read-only" in err or "not writable" in err)


def test_a_runs_dir_from_the_environment_is_checked_by_name(corpus, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(corpus.root / "a-file"))
    assert main(["train", str(corpus.good_config)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: WORKBENCH_RUNS_DIR={corpus.root / 'a-file'}: is a file; name a directory"


def test_thousands_of_turns_render_only_what_max_seq_len_keeps(tiny_model_dir):
    """Each trained turn's loss span costs a render of its whole prefix: 10,000 turns used to hang
    `data show` and training. Only the turns inside max_seq_length are worked out, with the same result."""
    from workbench.data import templating
    from workbench.data.conversation import Conversation, Message
    from workbench.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)

    def conversation(turns: int) -> Conversation:
        roles = ("user", "assistant")
        return Conversation(tuple(Message(roles[i % 2], f"turn {i} says hello") for i in range(turns)), 0, "messages")

    bounded = templating.render_training_example(tokenizer, conversation(300), 256)
    every_turn = templating.trained_character_spans(tokenizer, conversation(300).messages, bounded.text)
    labels = [templating.IGNORE_INDEX] * len(bounded.input_ids)
    encoded = tokenizer(bounded.text, add_special_tokens=False, return_offsets_mapping=True)
    for index, (start, end) in enumerate(encoded["offset_mapping"][: len(labels)]):
        if any(end > span_start and start < span_end for span_start, span_end, _ in every_turn):
            labels[index] = encoded["input_ids"][index]
    assert bounded.truncated and bounded.labels == labels and not bounded.eos_trained

    faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True, file=sys.__stderr__)
    try:
        long = templating.render_training_example(tokenizer, conversation(10_000), 256)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert long.truncated and len(long.input_ids) == 256 and any(label != templating.IGNORE_INDEX for label in long.labels)


def test_an_enormous_row_is_counted_on_a_bounded_part(tiny_model_dir):
    """A row past ROW_COUNT_MAX_CHARS is tokenized on a bounded part and its count estimated
    (within a few percent here), flagged too long with the estimate said as such; near-duplicates
    read a bounded prefix. A row of one 600,000-letter word no longer stalls the tokenizer."""
    import random

    from workbench.data.checks import run_quality_checks
    from workbench.data.conversation import Conversation, Message
    from workbench.data.row_bounds import ROW_COUNT_MAX_CHARS
    from workbench.data.templating import render_conversation_text
    from workbench.data.token_lengths import measure_token_lengths
    from workbench.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    words = "amber birch cobalt dune ember fjord grove harbor indigo juniper kestrel lagoon".split()
    answer = " ".join(random.Random(0).choice(words) for _ in range(60_000))
    assert len(answer) > ROW_COUNT_MAX_CHARS
    rows = [Conversation((Message("user", "Summarize."), Message("assistant", answer)), 0, "messages"),
            Conversation((Message("user", "Spell it."), Message("assistant", "b" * 600_000)), 1, "messages")]
    faulthandler.dump_traceback_later(CASE_TIMEOUT_S, exit=True, file=sys.__stderr__)
    try:
        lengths = measure_token_lengths(tokenizer, rows)
        report = run_quality_checks(rows, tokenizer, max_seq_length=1024)
    finally:
        faulthandler.cancel_dump_traceback_later()
    exact = len(tokenizer(render_conversation_text(tokenizer, rows[0]), add_special_tokens=False)["input_ids"])
    assert abs(int(lengths.total[0]) - exact) < 0.05 * exact
    assert report.flagged["too_long"] == [0, 1]
    assert report.reasons["too_long"][0].startswith(f"about {int(lengths.total[0]):,} tokens (estimated from")
