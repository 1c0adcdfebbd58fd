"""The layers hold (import-linter contracts in pyproject.toml), the engine never imports textual,
and importing it (or asking for --help) never imports torch."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("textual", "torch", "transformers", "peft", "datasets", "bitsandbytes")


def modules_after(code: str) -> list[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def test_importing_the_engine_pulls_in_no_ui_and_no_heavy_library():
    loaded = modules_after(
        "import workbench, workbench_cli.main, workbench.config, workbench.config.io, workbench.models, "
        "workbench.devices, workbench.paths, workbench.errors"
    )
    assert not [m for m in HEAVY if m in loaded]


def test_workbench_help_imports_no_heavy_library():
    loaded = modules_after(
        "import contextlib, io\nfrom workbench_cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert "workbench_cli.main" in loaded
    assert not [m for m in HEAVY if m in loaded]


def test_every_engine_module_imports_without_textual():
    """Walk all of workbench/ so a later module cannot sneak textual in."""
    code = (
        "import importlib, pkgutil, workbench\n"
        "for info in pkgutil.walk_packages(workbench.__path__, 'workbench.'):\n"
        "    if info.name != 'workbench.__main__':\n"
        "        importlib.import_module(info.name)"
    )
    loaded = modules_after(code)
    assert "textual" not in loaded


def test_the_tui_paints_before_torch_is_imported(tmp_path):
    report = tmp_path / "startup.json"
    env = {**__import__("os").environ, "WORKBENCH_STARTUP_REPORT": str(report), "TERM": "xterm-256color"}
    script = "from screens.app import make_app\nmake_app().run(headless=True)"
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60, capture_output=True)
    result = json.loads(report.read_text())
    assert result["heavy_modules_at_paint"] == []
    assert result["first_paint_s"] > 0


def test_the_import_layers_hold():
    """The static check: every import, lazy ones inside functions included, follows the contracts
    (CLI > screens > widgets > engine; no Textual in the engine; the trainer child apart from the
    code that watches it, and entered only by `workbench train`)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert {"layers", "engine-without-textual", "trainer-child", "watchers", "trainer-entry"} <= {c["id"] for c in contracts}
    # every engine module but the trainer itself is on the "only `workbench train` enters it" list
    entry = next(c for c in contracts if c["id"] == "trainer-entry")
    engine = {f"workbench.{path.stem if path.suffix else path.name}" for path in (ROOT / "workbench").iterdir()
              if (path.suffix == ".py" or (path / "__init__.py").exists()) and path.stem not in ("__init__", "__main__")}
    assert engine - {"workbench.training"} == set(entry["source_modules"]) - {"screens", "widgets"}
    # In its own process: its command-line entry closes the output streams pytest captures.
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
