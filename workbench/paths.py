"""Where the workbench keeps its files."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_DIR_ENV = "WORKBENCH_CACHE_DIR"
RUNS_DIR_ENV = "WORKBENCH_RUNS_DIR"
WORKSPACE_DIR_ENV = "WORKBENCH_WORKSPACE_DIR"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The workbench cache: an explicit override, else $WORKBENCH_CACHE_DIR, else $XDG_CACHE_HOME/sft-workbench."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "sft-workbench"


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    """Where training runs go: an explicit override, else $WORKBENCH_RUNS_DIR, else ./runs."""
    if override:
        return Path(override).expanduser()
    return Path(os.environ.get(RUNS_DIR_ENV) or "runs").expanduser()


def workspace_dir() -> Path:
    """Where files the workbench makes go when their natural folder cannot be written (a cleaned copy
    of a read-only data file): $WORKBENCH_WORKSPACE_DIR, else ./workspace, else <cache>/workspace when
    the working directory is read-only too."""
    if os.environ.get(WORKSPACE_DIR_ENV):
        return Path(os.environ[WORKSPACE_DIR_ENV]).expanduser()
    if os.access(Path.cwd(), os.W_OK):
        return Path("workspace")
    return cache_dir() / "workspace"
