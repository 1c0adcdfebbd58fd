"""Time `workbench data inspect` (all checks, real token counts) on a 100,000-row file.

Builds an Alpaca-format JSONL file from English prose (sentences of the Python standard library's
docstrings, so the text is real, varied and the same on every machine with Python 3.11), with
defects planted at known rows, then runs the CLI end to end in a subprocess, as a user would:

    .venv/bin/python bench/data_scale.py [--rows 100000] [--keep FILE] [--tui] [--floor-pairs N]

Prints the wall time, the token-length summary, and how many of each planted defect were found.
With --tui it also opens the file in the Data pane (headless, 120x40) and times listing the rows,
paging through them while the checks run and after, and the checks themselves.

With --floor-pairs N it measures the tokenize-only floor against `inspect` in N interleaved rounds
(the order rotates from round to round; the 1-minute load average is printed for each run): the
floor is a process that loads the same tokenizer (the `tokenizers` library alone) and tokenizes
the texts `inspect` counts, every row rendered through the same chat template beforehand, all of
them in one `encode_batch_fast` call on every core. Each round runs the floor under the system
allocator and under mimalloc, inspect as shipped (under mimalloc) and inspect under the system
allocator; the ratios are taken per round.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import resource
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 20.0
REPO = Path(__file__).resolve().parents[1]


def stdlib_sentences() -> list[str]:
    """Sentences from the standard library's docstrings (deduplicated, 30-250 characters)."""
    sentences = set()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)):
                docstring = ast.get_docstring(node) or ""
                for sentence in docstring.replace("\n", " ").split(". "):
                    sentence = " ".join(sentence.split())
                    if 30 <= len(sentence) <= 250 and sentence[0].isalpha():
                        sentences.add(sentence.rstrip(".") + ".")
    return sorted(sentences)


def build_rows(count: int, seed: int = 0) -> tuple[list[dict], dict[str, list[int]]]:
    """Alpaca rows of ~500 characters, with planted defects; returns rows and the planted rows."""
    rng = random.Random(seed)
    sentences = stdlib_sentences()
    verbs = ["Explain", "Summarize", "Describe", "Rewrite", "List", "Give", "Write", "What does", "Why does", "How can I"]
    rows = []
    for _ in range(count):
        verb = rng.choice(verbs)
        topic = rng.choice(sentences)
        instruction = f"{verb} {topic[0].lower()}{topic[1:]} {rng.choice(sentences)}"
        has_input = rng.random() < 0.3
        output = " ".join(rng.choice(sentences) for _ in range(rng.randint(1, 5)))
        rows.append({"instruction": instruction, "input": rng.choice(sentences) if has_input else "", "output": output})

    planted: dict[str, list[int]] = {name: [] for name in ("exact", "near", "conflict", "empty", "too_long", "junk")}
    # Odd rows only, so every source row (the even row before) is itself untouched.
    positions = rng.sample(range(1, count, 2), k=count // 20)
    share = len(positions) // 6
    for name, chunk in zip(planted, (positions[i * share : (i + 1) * share] for i in range(6))):
        for row in chunk:
            source = rows[row - 1]
            if name == "exact":
                rows[row] = {**source, "instruction": "  " + source["instruction"].upper()}
            elif name == "near":
                rows[row] = {**source, "output": source["output"].replace(" the ", " the the ", 1) + " Hope this helps."}
            elif name == "conflict":
                rows[row] = {**source, "output": rng.choice(sentences)}
            elif name == "empty":
                rows[row]["output"] = " "
            elif name == "too_long":
                rows[row]["output"] = " ".join(rng.choice(sentences) for _ in range(200))
            else:
                rows[row]["output"] = f"<div>{rows[row]['output']}</div>"
            planted[name].append(row)
    return rows, {name: sorted(found) for name, found in planted.items()}


async def time_the_pane(path: Path) -> None:
    """Open the file in the Data pane like a user and time what they would wait for."""
    sys.path.insert(0, str(REPO))
    import asyncio

    from textual import events

    from screens.app import make_app
    from widgets.data_table import RowTable
    from workbench.devices import detect_devices

    app = make_app(load_model=False, device_report=detect_devices())
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        table = screen.query_one(RowTable)
        while screen.tokenizer is None:
            await pilot.pause(0.05)
        started = time.perf_counter()
        screen.open_path(str(path))
        while len(table.view) == 0:
            await pilot.pause(0.01)
        listed = time.perf_counter() - started
        table.focus()

        drawn_cursor: list[float] = []
        draw_row = RowTable._row_strip

        def recording_row_strip(self, index, width, highlighted):
            if highlighted:
                drawn_cursor.append(time.perf_counter())
            return draw_row(self, index, width, highlighted)

        RowTable._row_strip = recording_row_strip

        async def page_down_times(count: int) -> list[float]:
            """From the key press to the highlighted row drawn on screen (Pilot's own waits for an
            idle process would count the background checks, so the draw itself is timed)."""
            times = []
            for _ in range(count):
                drawn_cursor.clear()
                pressed = time.perf_counter()
                app.post_message(events.Key("pagedown", None))
                while not drawn_cursor:
                    await asyncio.sleep(0.002)
                times.append(drawn_cursor[0] - pressed)
                await asyncio.sleep(0.05)
            return times

        during = await page_down_times(20)
        while screen.report is None:
            await asyncio.sleep(0.05)
        checked = time.perf_counter() - started
        after = await page_down_times(20)
    median = lambda values: sorted(values)[len(values) // 2]
    print(f"TUI: {len(table.view):,} rows listed {listed:.1f} s after Enter; checks done after {checked:.1f} s")
    print(
        f"TUI: page down (key to the new row drawn) median {median(during) * 1000:.0f} ms while the checks run, "
        f"{median(after) * 1000:.0f} ms after"
    )


FLOOR_PROGRAM = """
import json, sys
from tokenizers import Tokenizer
tokenizer = Tokenizer.from_file(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as handle:
    texts = json.load(handle)
encodings = tokenizer.encode_batch_fast(texts, add_special_tokens=False)
print(sum(len(encoding.ids) for encoding in encodings))
"""


def write_rendered_texts(rows_path: Path, texts_path: Path) -> tuple[Path, int]:
    """Every row as `inspect` renders it (the default model's tokenizer prepared for the chat
    template, the template's own system prompt) into a JSON list; returns the tokenizer.json used
    and the row count."""
    sys.path.insert(0, str(REPO))
    from workbench.data.chat_templates import prepare_tokenizer
    from workbench.data.loading import load_conversations
    from workbench.data.system_prompt import with_system_prompt
    from workbench.data.token_lengths import BATCH_ROWS, _render_batch, load_data_tokenizer
    from workbench.models import resolve_model

    _name, tokenizer = load_data_tokenizer(None)
    tokenizer = prepare_tokenizer(tokenizer, "auto").tokenizer
    conversations = [with_system_prompt(c, None) for c in load_conversations(str(rows_path), "auto").conversations]
    texts = []
    for start in range(0, len(conversations), BATCH_ROWS):
        texts.extend(_render_batch(tokenizer, conversations[start : start + BATCH_ROWS]))
    texts_path.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return Path(resolve_model(None).path) / "tokenizer.json", len(texts)


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the child, the finished process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})})
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), finished


def floor_pairs(path: Path, pairs: int, directory: Path) -> None:
    """inspect against the tokenize-only floor, in interleaved rounds (the order rotates).

    Each round runs the floor under the system allocator and under mimalloc (inspect runs under
    mimalloc, which the `tokenizers` library's own allocations get too, so the fair floor has it as
    well), inspect as shipped, and inspect under the system allocator (WORKBENCH_ALLOCATOR=system)."""
    sys.path.insert(0, str(REPO))
    from workbench.allocator import allocator_environment

    tokenizer_json, count = write_rendered_texts(path, directory / "rendered.json")
    floor = [sys.executable, "-c", FLOOR_PROGRAM, str(tokenizer_json), str(directory / "rendered.json")]
    inspect = [sys.executable, "-m", "workbench", "data", "inspect", str(path), "--json"]
    runs = {
        "floor": (floor, {}),
        "floor-mimalloc": (floor, allocator_environment()),
        "inspect": (inspect, {}),
        "inspect-system": (inspect, {"WORKBENCH_ALLOCATOR": "system"}),
    }
    print(f"floor: {count:,} rendered texts; rounds rotate the order")
    measured: dict[str, list[float]] = {name: [] for name in runs}
    for number in range(pairs):
        names = list(runs)
        for name in names[number % len(names):] + names[: number % len(names)]:
            load = os.getloadavg()[0]
            command, env = runs[name]
            wall, cpu, finished = timed(command, env)
            if finished.returncode != 0:
                raise SystemExit(f"{name} failed: {finished.stderr[-2000:]}")
            measured[name].append(wall)
            print(f"  round {number + 1} {name:>14}: {wall:5.1f} s wall, {cpu:5.1f} s CPU (load {load:.2f})", flush=True)

    def ratios(top: str, bottom: str) -> str:
        values = sorted(a / b for a, b in zip(measured[top], measured[bottom]))
        middle = len(values) // 2
        median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
        per_round = ", ".join(f"{a / b:.2f}" for a, b in zip(measured[top], measured[bottom]))
        return f"{per_round}; median {median:.2f}"

    print(f"inspect / floor per round: {ratios('inspect', 'floor')} (target <= 1.15)")
    print(f"inspect / floor-mimalloc per round: {ratios('inspect', 'floor-mimalloc')}")
    print(f"inspect-system / floor per round: {ratios('inspect-system', 'floor')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", help="also write the generated file here")
    parser.add_argument("--tui", action="store_true", help="also time the Data pane on the same file")
    parser.add_argument("--floor-pairs", type=int, default=0,
                        help="instead: N interleaved rounds of inspect against the tokenize-only floor")
    args = parser.parse_args()

    rows, planted = build_rows(args.rows)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(args.keep) if args.keep else Path(directory) / "bench_rows.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        size_mb = path.stat().st_size / 1e6
        if args.floor_pairs:
            floor_pairs(path, args.floor_pairs, Path(directory))
            return 0
        mean_chars = sum(len(r["instruction"]) + len(r["input"]) + len(r["output"]) for r in rows) / len(rows)
        command = [sys.executable, "-m", "workbench", "data", "inspect", str(path), "--json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ})
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if args.tui and finished.returncode == 0:
            import asyncio

            asyncio.run(time_the_pane(path))
    if finished.returncode != 0:
        print(finished.stderr, file=sys.stderr)
        return finished.returncode
    result = json.loads(finished.stdout)
    checks = result["checks"]
    flagged = {
        "exact": {row for group in checks["exact_duplicates"] for row in group[1:]},
        "near": {row for group in checks["near_duplicates"] for row in group[1:]},
        "conflict": {row for group in checks["conflicts"] for row in group},
        "empty": set(checks["empty_response"]),
        "too_long": set(checks["too_long"]),
        "junk": set(checks["junk"]),
    }
    print(f"rows: {result['rows']:,} ({size_mb:.1f} MB, {mean_chars:.0f} characters per row on average)")
    print(f"token lengths: {result['token_lengths']}")
    for name, rows_planted in planted.items():
        found = len(flagged[name] & set(rows_planted))
        print(f"planted {name:<9} {len(rows_planted):>5}  found {found:>5}  (check lists {len(flagged[name]):,} rows)")
    load = os.getloadavg()[0]
    verdict = "within" if elapsed <= TARGET_SECONDS else "OVER"
    print(f"inspect wall time: {elapsed:.1f} s ({verdict} the {TARGET_SECONDS:.0f} s target; 1-min load {load:.2f})")
    print(f"inspect CPU time (user + system, all threads): {cpu_seconds:.1f} s on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
