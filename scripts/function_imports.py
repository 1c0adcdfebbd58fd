"""Function-level imports of the project's own modules (workbench, workbench_cli, widgets, screens).

Each one hides a dependency of its module; the few that stay say why on their line (a cycle, or a
module that pulls a heavy library in at import). Prints `path:line: module  # reason` for each and
the count; `--unexplained` lists only those without a comment on the line.

    .venv/bin/python scripts/function_imports.py [--unexplained]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workbench", "workbench_cli", "widgets", "screens")


def _project_module(node: ast.Import | ast.ImportFrom) -> str | None:
    names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level:
        return "." * node.level + (node.module or "")
    for name in names:
        if name.split(".")[0] in PACKAGES:
            return name
    return None


def function_imports(path: Path) -> list[tuple[int, str, str]]:
    """(line, module, the line's comment) for each import of a project module inside a function."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = _project_module(node)
                if module is not None:
                    text = "\n".join(lines[node.lineno - 1: node.end_lineno])
                    comment = text.split("#", 1)[1].splitlines()[0].strip() if "#" in text else ""
                    found.append((node.lineno, module, comment))
    return sorted(set(found))


def main(argv: list[str]) -> int:
    only_unexplained = "--unexplained" in argv
    total = unexplained = 0
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, module, comment in function_imports(path):
                total += 1
                unexplained += not comment
                if comment and only_unexplained:
                    continue
                print(f"{path.relative_to(ROOT)}:{line}: {module}" + (f"  # {comment}" if comment else ""))
    print(f"{total} function-level imports of project modules, {unexplained} without a reason")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
