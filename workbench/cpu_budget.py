"""One CPU budget for every workbench process, so a run that trains and a chat that answers share the cores.

Two measured facts set the rules (2-core Intel Xeon; docs/benchmarks.md, "Spinning threads"):

- OpenMP threads that spin while they wait burn the core another process needs: with another
  busy process a torch process without `OMP_WAIT_POLICY=PASSIVE` slowed 4–10× (chat decode ~1
  against ~16 tokens/s; a LoRA step 32–67 s against 11 s). The variable only works when it is set
  before torch (OpenMP) starts, so `prepare_process()` runs first thing in the CLI's `main` (every
  command: the TUI, the trainer child, compare, eval, the demo, export) and in the app factory.
- Two processes that each run one thread per core oversubscribe the CPU. So thread counts come
  from one budget:

      cores   WORKBENCH_CPU_THREADS, else the cores this process may run on
      chat    WORKBENCH_CHAT_THREADS (default 1): chat's share while a run trains on the CPU

  no run training on the CPU           chat (TUI, compare, eval, the demo's answers) uses every core
  a run training, no chat answering    the trainer uses every core (the demo trains with the TUI open)
  a run training, chat answering       chat uses `chat`, the trainer `cores - chat` (at least 1 each)

How the processes agree: each one that computes writes a claim in one directory
(`<cache>/cpu-budget/`, or $WORKBENCH_CPU_BUDGET_DIR): the trainer child `train-<pid>.json` for the
whole of a CPU run, whoever started it (the TUI, `workbench train`, the demo); a chat engine
`chat-<pid>-<n>.json` while one of its generations runs, holding the threads it took. Claims of
processes that are gone are ignored and removed. The trainer re-reads the claims at every step and
a chat generation about once a second, then calls `torch.set_num_threads` in the thread that
computes: OpenMP keeps a thread count per thread, so a count set from another thread would not
reach a generation already running.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from workbench.errors import WorkbenchError
from workbench.paths import cache_dir
from workbench.runs.rundir import pid_is_alive

CPU_THREADS_ENV = "WORKBENCH_CPU_THREADS"
CHAT_THREADS_ENV = "WORKBENCH_CHAT_THREADS"
BUDGET_DIR_ENV = "WORKBENCH_CPU_BUDGET_DIR"
DEFAULT_CHAT_THREADS = 1
PASSIVE_WAIT_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}
"""OpenMP threads sleep instead of spinning while they wait (measured above; a user's own value wins)."""
REFRESH_INTERVAL_S = 1.0
"""How often a running generation or training step re-reads the claims (a directory listing)."""
TRAIN, CHAT = "train", "chat"


def prepare_process() -> None:
    """Passive OpenMP waiting for this process and its children; call before torch is imported."""
    for name, value in PASSIVE_WAIT_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise WorkbenchError(f"${name}: must be a whole number of threads, 1 or more; got {raw!r}")
    return int(raw)


@dataclass(frozen=True)
class CpuBudget:
    """The cores the workbench uses, and what chat takes of them while a run trains."""

    cores: int
    chat_share: int

    @classmethod
    def from_environment(cls) -> "CpuBudget":
        """WORKBENCH_CPU_THREADS (default: usable cores) and WORKBENCH_CHAT_THREADS (default 1).

        Raises:
            WorkbenchError: a variable that is not a positive whole number.
        """
        cores = _positive_int(CPU_THREADS_ENV, usable_cores())
        return cls(cores, min(cores, _positive_int(CHAT_THREADS_ENV, DEFAULT_CHAT_THREADS)))

    def chat_threads(self, training: bool) -> int:
        """A chat generation's threads: its share while a CPU run trains, else every core."""
        return self.chat_share if training else self.cores

    def train_threads(self, chat_threads_in_use: int, processes: int = 1) -> int:
        """Each training process's threads: the cores chat is not using now, split over the processes."""
        return max(1, (self.cores - chat_threads_in_use) // max(1, processes))


@dataclass(frozen=True)
class Claim:
    """One process (or generation) holding threads: read from the budget directory."""

    role: str
    pid: int
    threads: int
    path: Path


@dataclass(frozen=True)
class CpuSplit:
    """Who holds the cores now, for the header."""

    cores: int
    train: int
    chat: int

    def header_text(self) -> Optional[str]:
        """While a CPU run trains, e.g. "CPU 2 cores · train 1 · chat 1"; None when there is nothing to split."""
        if not self.train:
            return None
        chat = f"chat {self.chat}" if self.chat else "chat idle"
        return f"CPU {self.cores} cores · train {self.train} · {chat}"


def budget_dir() -> Path:
    """Where the claims live: $WORKBENCH_CPU_BUDGET_DIR, else `<cache>/cpu-budget`."""
    override = os.environ.get(BUDGET_DIR_ENV)
    return Path(override).expanduser() if override else cache_dir() / "cpu-budget"


def live_claims(directory: Optional[Path] = None) -> list[Claim]:
    """Every claim whose process still runs; the files of processes that are gone are removed."""
    directory = directory or budget_dir()
    claims = []
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError:
        return claims
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            claim = Claim(str(data["role"]), int(data["pid"]), int(data["threads"]), path)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours
        if pid_is_alive(claim.pid):
            claims.append(claim)
        else:
            path.unlink(missing_ok=True)
    return claims


def current_split(budget: Optional[CpuBudget] = None, claims: Optional[list[Claim]] = None) -> CpuSplit:
    """The threads the live claims hold now (training and chat summed over their processes)."""
    budget = budget or CpuBudget.from_environment()
    claims = live_claims() if claims is None else claims
    train = sum(claim.threads for claim in claims if claim.role == TRAIN)
    chat = sum(claim.threads for claim in claims if claim.role == CHAT)
    return CpuSplit(budget.cores, train, chat)


def _write_claim(path: Path, role: str, threads: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"role": role, "pid": os.getpid(), "threads": threads}), encoding="utf-8")
    os.replace(temporary, path)


def _set_torch_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class TrainerShare:
    """The trainer process's share: claimed for the whole run, re-read and applied at each step.

    Call `refresh()` from the thread that trains; `release()` when the run ends.
    """

    def __init__(self, budget: CpuBudget, processes: int = 1, directory: Optional[Path] = None) -> None:
        self.budget = budget
        self.processes = processes
        self.path = (directory or budget_dir()) / f"{TRAIN}-{os.getpid()}.json"
        self.threads = budget.train_threads(0, processes)
        self._checked_at = 0.0
        _write_claim(self.path, TRAIN, self.threads)

    def wanted_threads(self) -> int:
        chat = sum(claim.threads for claim in live_claims(self.path.parent) if claim.role == CHAT)
        return self.budget.train_threads(chat, self.processes)

    def refresh(self, force: bool = False) -> int:
        """Apply the share to torch (at most once per REFRESH_INTERVAL_S unless forced); the threads in use."""
        now = time.monotonic()
        if force or now - self._checked_at >= REFRESH_INTERVAL_S:
            self._checked_at = now
            wanted = self.wanted_threads()
            if wanted != self.threads:
                self.threads = wanted
                _write_claim(self.path, TRAIN, wanted)
            _set_torch_threads(self.threads)
        return self.threads

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


_chat_claims = itertools.count(1)


class ChatShare:
    """One running generation's share: chat's part while a CPU run trains, every core otherwise."""

    def __init__(self, budget: CpuBudget, directory: Optional[Path] = None) -> None:
        self.budget = budget
        self.directory = directory or budget_dir()
        self.path = self.directory / f"{CHAT}-{os.getpid()}-{next(_chat_claims)}.json"
        self.threads = 0
        self._checked_at = 0.0

    def refresh(self, force: bool = False) -> int:
        """Re-read the claims (at most once per REFRESH_INTERVAL_S unless forced), update this
        generation's claim and apply its threads to torch in the calling thread."""
        now = time.monotonic()
        if force or now - self._checked_at >= REFRESH_INTERVAL_S:
            self._checked_at = now
            training = any(claim.role == TRAIN for claim in live_claims(self.directory))
            wanted = self.budget.chat_threads(training)
            if wanted != self.threads:
                self.threads = wanted
                _write_claim(self.path, CHAT, wanted)
            _set_torch_threads(self.threads)
        return self.threads

    def release(self) -> None:
        self.path.unlink(missing_ok=True)


@contextmanager
def chat_share() -> Iterator[ChatShare]:
    """Hold a chat share for one generation in this thread (claimed and applied at once, released after)."""
    share = ChatShare(CpuBudget.from_environment())
    try:
        share.refresh(force=True)
        yield share
    finally:
        share.release()


@contextmanager
def trainer_share(processes: int = 1) -> Iterator[TrainerShare]:
    """Claim this training process's share for the run (released when it ends); `refresh()` it each step."""
    share = TrainerShare(CpuBudget.from_environment(), processes)
    try:
        yield share
    finally:
        share.release()
