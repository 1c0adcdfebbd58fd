"""Time `workbench data inspect` (all checks, real token counts) on a 100,000-row file.

Builds an Alpaca-format JSONL file from English prose (sentences of the Python standard library's
docstrings, so the text is real, varied and the same on every machine with Python 3.11), with
defects planted at known rows, then runs the CLI end to end in a subprocess, as a user would:

    .venv/bin/python bench/data_scale.py [--rows 100000] [--keep FILE] [--tui]

Prints the wall time, the token-length summary, and how many of each planted defect were found.
With --tui it also opens the file in the Data pane (headless, 120x40) and times listing the rows,
paging through them while the checks run and after, and the checks themselves.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keep", help="also write the generated file here")
    parser.add_argument("--tui", action="store_true", help="also time the Data pane on the same file")
    args = parser.parse_args()

    rows, planted = build_rows(args.rows)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(args.keep) if args.keep else Path(directory) / "bench_rows.jsonl"
        with open(path, "w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        size_mb = path.stat().st_size / 1e6
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
