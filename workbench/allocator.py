"""mimalloc for the trainer (its peak RSS is then what the estimate says) and for the commands that
answer with a model (batched prefill without glibc's page faults).

With glibc's defaults the trainer's RSS runs far above the memory its tensors hold: glibc raises its
mmap threshold as large blocks are freed (up to 32 MiB), so the activations of the next steps come
from the heap, and freed heap blocks stay resident. Returning freed pages to the kernel at once
fixes the peak but makes every step fault its pages in again. mimalloc keeps freed memory for reuse
by size and hands it back after a second, which holds the peak down at the speed of the default.
Measured on the quick-demo-cpu config (12 steps, 2 evaluations with sample answers, 2 checkpoints;
2-core Xeon with AMX, load 5-12 from other work, so CPU seconds are rough; the estimate, which
counts the whole process, is 1,892 MiB; error = (estimate - measured) / measured):

    allocator                                   peak RSS            error          CPU s (user + sys)
    glibc defaults                              2,390-2,403 MiB     -21%           65-73
    glibc MALLOC_MMAP_THRESHOLD_=1048576        2,226 MiB           -15%           67
    glibc MALLOC_MMAP_THRESHOLD_=262144         1,886 MiB           +0.3%          115 (sys 34 s)
    glibc MALLOC_MMAP_THRESHOLD_=65536          1,796-1,803 MiB     +5%            108-117 (sys 33-36 s)
      + MALLOC_ARENA_MAX=2, glibc.malloc.hugetlb=1 or THP_MEM_ALLOC_ENABLE=1: no change to either
    mimalloc 3.4 (LD_PRELOAD), its defaults     1,992-2,026 MiB     -5% to -7%     64-74
    mimalloc, MIMALLOC_PURGE_DELAY=100          1,969 MiB           -4%            87
    mimalloc, MIMALLOC_PURGE_DELAY=0            1,874 MiB           +1%            94 (sys 32 s)

Returning freed pages at once (small glibc thresholds, mimalloc without purge delay) costs ~30 s of
page faults in a 70 s run; mimalloc's defaults keep the peak within 7% at glibc's speed.

So the trainer child runs under mimalloc (the `cmeel-mimalloc` wheel ships the prebuilt library; no
compiler needed), preloaded through LD_PRELOAD, which only works from the start of a process: the
launcher sets it when it spawns the child, and `workbench train` started from a shell re-executes
itself once with it. Linux only; elsewhere, or with WORKBENCH_ALLOCATOR=system, the system
allocator is kept and the CPU estimate says how far RSS may then run above it.

The commands that answer with a model (the TUI, eval, compare, demo) re-execute the same way: a
batched prefill makes and frees large activations at every layer, and glibc faulted their pages in
afresh each time. A 24-row prefill, half of it through a LoRA adapter (SmolLM2-135M, bf16, 2-core
Xeon with AMX, 2026-12-01): 2.02 s under glibc, 1.57 s under mimalloc (`bench/batched_prefill.py`;
decoding steps unchanged); `bench/eval_speed.py` measures a whole evaluation. `data inspect` and
`data clean` re-execute too: the `tokenizers` library's batch encoder allocates per token on every
core, and under glibc that alone doubled its time (100,000 rendered rows in one `encode_batch_fast`
call: 19.0-22.8 s under glibc, 9.4-9.7 s under mimalloc; `inspect` 24.7-25.9 s against 21.1-22.4 s;
`bench/data_scale.py --floor-pairs 3`, docs/benchmarks.md, fourth session).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Mapping, Optional

ALLOCATOR_ENV = "WORKBENCH_ALLOCATOR"
"""'system' keeps the system allocator for the trainer; anything else (or unset) uses mimalloc."""
_DISTRIBUTION = "cmeel-mimalloc"
_LIBRARY = "cmeel.prefix/lib/libmimalloc.so.3"


@functools.lru_cache(maxsize=1)
def _installed_library() -> Optional[Path]:
    from importlib import metadata

    try:
        path = Path(metadata.distribution(_DISTRIBUTION).locate_file(_LIBRARY))
    except metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def mimalloc_library() -> Optional[Path]:
    """The installed libmimalloc (from the cmeel-mimalloc wheel), or None where it cannot be used."""
    if not sys.platform.startswith("linux") or os.environ.get(ALLOCATOR_ENV, "").lower() == "system":
        return None
    return _installed_library()


def allocator_environment(environment: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables to add to a trainer child's environment (empty when mimalloc is unavailable)."""
    environment = os.environ if environment is None else environment
    library = mimalloc_library()
    if library is None:
        return {}
    preloaded = [part for part in environment.get("LD_PRELOAD", "").replace(":", " ").split() if part]
    if str(library) in preloaded:
        return {}
    return {"LD_PRELOAD": " ".join([str(library), *preloaded])}


def tuned_allocator_loaded() -> bool:
    """Whether this process runs under the trainer's allocator (mimalloc preloaded)."""
    library = mimalloc_library()
    if library is None:
        return False
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            return any(str(library) in line or "libmimalloc" in line for line in maps)
    except OSError:
        return False


def reexec_with_allocator(argv: list[str]) -> None:
    """Restart this process as `python -m workbench <argv>` under mimalloc, when it is installed and
    not loaded yet; returns without doing anything otherwise.

    Only for a process that `workbench` itself started (the console script or `python -m
    workbench`): a library caller (a test calling `cli.main`) is never replaced.
    """
    main = sys.modules.get("__main__")
    started_as_workbench = Path(sys.argv[0]).name == "workbench" or (
        getattr(getattr(main, "__spec__", None), "name", "") in ("workbench.__main__", "workbench_cli.__main__"))
    if started_as_workbench:
        _reexec([sys.executable, "-m", "workbench", *argv])


def reexec_script_with_allocator() -> None:
    """Restart this script (`python SCRIPT ARGS`) under the allocator the workbench's commands run
    with, so a benchmark measures what a user gets; returns when it is loaded or unavailable."""
    _reexec([sys.executable, *sys.argv])


def _reexec(command: list[str]) -> None:
    if tuned_allocator_loaded():
        return
    extra = allocator_environment()
    if not extra:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, {**os.environ, **extra})


def cpu_estimate_note() -> str:
    """What the CPU estimate's note says about the allocator the trainer will run with."""
    if mimalloc_library() is not None:
        return ("the whole training process (Python and libraries included); the trainer runs under mimalloc, "
                "which keeps its peak RSS close to this")
    return ("the whole training process (Python and libraries included); without mimalloc (cmeel-mimalloc, "
            "Linux) glibc keeps freed memory and RSS can run ~25% above this")
