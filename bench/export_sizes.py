"""Export times and sizes of one run: hf bf16, gguf f16 and gguf q8_0 (what docs/benchmarks.md records
for the default model).

Each export runs in this process through `workbench.runs.export.export`, into a fresh temporary
folder, timed from the call to the finished (renamed) directory; the size is the weights files'
bytes. Give it a finished run on the default model, e.g. the quick demo's:

    .venv/bin/workbench demo --headless            # prints the run directory
    .venv/bin/python bench/export_sizes.py RUN_DIR [--formats hf-bf16,gguf-f16,gguf-q8_0] [--json OUT]

Loading the base model and merging are part of every export's time (each export is self-contained,
as the CLI runs it); importing torch, transformers and peft is not (done once before the first).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CASES = {
    "hf-bf16": dict(format="hf", dtype="bf16"),
    "hf-fp32": dict(format="hf", dtype="fp32"),
    "adapter": dict(format="adapter"),
    "gguf-f16": dict(format="gguf", quant="f16"),
    "gguf-q8_0": dict(format="gguf", quant="q8_0"),
    "gguf-q4_0": dict(format="gguf", quant="q4_0"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--formats", default="hf-bf16,gguf-f16,gguf-q8_0", help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()

    import peft  # noqa: F401 - imported before timing: a one-time cost of the process, not of an export
    import transformers  # noqa: F401

    from workbench.export.options import ExportOptions
    from workbench.runs.export import export

    rows = []
    with tempfile.TemporaryDirectory(prefix="workbench-export-bench-") as scratch:
        for name in args.formats.split(","):
            options = ExportOptions(**CASES[name], output=Path(scratch) / name)
            started = time.perf_counter()
            result = export(args.run, options, report=lambda line: None)
            seconds = time.perf_counter() - started
            rows.append({"export": name, "seconds": round(seconds, 2), "weights_bytes": result.weights_bytes,
                         "weights_mb": round(result.weights_bytes / 1e6, 1)})
            print(f"{name:10s} {seconds:7.1f} s {result.weights_bytes / 1e6:9.1f} MB", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "cpu_count": os.cpu_count(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
