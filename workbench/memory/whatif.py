"""A what-if: run-config edits tried in the Memory pane without touching the run config.

The pane shows the run config with these edits on top and estimates that; only an explicit
"apply to run config" writes them to the ConfigStore. Edits equal to the run config's own value
are dropped, so a what-if always lists exactly what differs.
"""

from __future__ import annotations

from typing import Any

from workbench.config.fields import get_value, with_values
from workbench.config.schema import RunConfig


class WhatIf:
    """Edits (dotted config field -> value) over a run config that keeps changing underneath."""

    def __init__(self) -> None:
        self.edits: dict[str, Any] = {}

    def config(self, base: RunConfig) -> RunConfig:
        """The run config with the what-if's edits on top."""
        return with_values(base, self.edits) if self.edits else base

    def set(self, base: RunConfig, changes: dict[str, Any]) -> RunConfig:
        """Try `changes` on top of the current edits; raises (and keeps the old edits) when the schema
        refuses them. Returns the what-if config."""
        edits = {**self.edits, **changes}
        config = with_values(base, edits)
        self.edits = {dotted: value for dotted, value in edits.items() if get_value(base, dotted) != value}
        return config

    def differences(self, base: RunConfig) -> list[tuple[str, Any, Any]]:
        """(field, run-config value, what-if value) for every edit that still differs from `base`."""
        self.edits = {dotted: value for dotted, value in self.edits.items() if get_value(base, dotted) != value}
        return [(dotted, get_value(base, dotted), value) for dotted, value in self.edits.items()]

    def clear(self) -> None:
        self.edits = {}
