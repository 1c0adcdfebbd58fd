"""Bounds on what a YAML file may expand to, so a few hundred bytes cannot hang the workbench.

YAML aliases (`*name`) share one node, so loading "billion laughs" is cheap; the cost comes later,
when something walks the value (validation, an error message printing it) and visits every alias
again. A run config holds a few hundred values, so anything expanding to more than
MAX_EXPANDED_VALUES, or an alias that contains itself, is refused right after loading. Deep nesting
that exhausts the parser's recursion is refused the same way.
"""

from __future__ import annotations

import re
from typing import Any

from workbench.errors import WorkbenchError

MAX_EXPANDED_VALUES = 100_000
MAX_FLOW_DEPTH = 100
"""Nested [ ] / { } levels allowed; PyYAML's scanner slows down with each open level (5,000 levels
took ~5 s before its composer ran out of recursion)."""
_FLOW_BRACKETS = re.compile(r"[\[\]{}]")


def expanded_value_count(value: Any, limit: int = MAX_EXPANDED_VALUES) -> int:
    """How many values `value` holds with every alias expanded (counting stops past `limit`).

    Raises:
        ValueError: an alias that contains itself (a recursive structure).
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        key = id(node)
        children = list(node.values()) + list(node.keys()) if isinstance(node, dict) else node
        if children_done:
            on_path.discard(key)
            total = 1
            for child in children:
                total += sizes.get(id(child), 1) if isinstance(child, (list, dict)) else 1
                if total > limit:
                    break
            sizes[key] = min(total, limit + 1)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ValueError("an alias that contains itself")
        on_path.add(key)
        stack.append((node, True))
        for child in children:
            if isinstance(child, (list, dict)):
                if id(child) in on_path:
                    raise ValueError("an alias that contains itself")
                if id(child) not in sizes:
                    stack.append((child, False))
    return sizes.get(id(value), 1)


def check_yaml_size(value: Any, label: str) -> Any:
    """`value` unchanged, or a WorkbenchError when its aliases expand past the bound or loop."""
    try:
        count = expanded_value_count(value)
    except ValueError:
        raise WorkbenchError(f"{label}: a YAML alias (*name) refers to a value that contains it; write the value out") from None
    if count > MAX_EXPANDED_VALUES:
        raise WorkbenchError(
            f"{label}: YAML aliases (*name) expand to more than {MAX_EXPANDED_VALUES:,} values; a run config holds a "
            "few hundred, so write the values out instead of nesting aliases"
        )
    return value


def safe_load_bounded(text: str, label: str, loader=None) -> Any:
    """YAML loaded with a SafeLoader (or `loader`), refused when nested too deep or expanding too far.

    yaml.YAMLError still propagates, for callers that report its line.
    """
    import yaml

    _check_flow_depth(text, label)
    try:
        value = yaml.load(text, Loader=loader or yaml.SafeLoader)  # noqa: S506 - SafeLoader or a subclass
    except RecursionError:
        raise WorkbenchError(f"{label}: nested too deeply for the YAML reader; a run config needs a few levels") from None
    return check_yaml_size(value, label)


def _check_flow_depth(text: str, label: str) -> None:
    """Refuse text with more than MAX_FLOW_DEPTH open brackets (quotes are not parsed: a config
    has no reason to hold that many unclosed brackets even inside strings)."""
    depth = 0
    for match in _FLOW_BRACKETS.finditer(text):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_FLOW_DEPTH:
            line = text.count("\n", 0, match.start()) + 1
            raise WorkbenchError(f"{label}:{line}: nested more than {MAX_FLOW_DEPTH} levels deep; a run config needs a few")
