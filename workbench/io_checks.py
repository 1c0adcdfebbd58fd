"""Every path the user names is checked before it is read or written, with one line saying what is wrong.

Input files (data, configs, prompt files, eval data, recipes, templates) must be regular files,
readable, and no larger than a stated bound; anything else (a FIFO that would block for ever,
/dev/zero that would fill the memory, a directory, a symlink loop, a dangling symlink) gets its
own name in the message. Text is decoded as UTF-8 with the line and column of the first bad byte,
and UTF-16 / UTF-32 files are named as such.

Output paths (a cleaned file, a run directory, an export folder, a new config) are checked before
any work starts: a directory where a file is expected (or the reverse), a parent that cannot be
written, and a file system without space are refused in one line.

Everything here raises `WorkbenchError` (the CLI prints it and exits 2).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.paths import RUNS_DIR_ENV, runs_dir
from workbench.units import GIB, MIB, format_bytes

MAX_DATA_FILE_BYTES = 4 * GIB
"""Text data (.json/.jsonl/.csv) is read into memory whole; Python objects take ~5-10x the file, so
larger files are refused with a hint (Parquet and Arrow files are memory-mapped and not bounded)."""
MAX_CONFIG_BYTES = 4 * MIB
"""Run configs, recipes, accelerate/DeepSpeed configs: a few kB in practice."""
MAX_PROMPTS_BYTES = 64 * MIB
"""Prompt decks and question files."""
MAX_TEMPLATE_BYTES = 4 * MIB
MIN_FREE_BYTES = 1 * MIB
"""An output whose file system has less free space than this is refused before work starts."""

BYTE_ORDER_MARKS = (
    # UTF-32 first: its little-endian mark starts with UTF-16's.
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def _kind_of(mode: int) -> str:
    """What a file is, in words ("a file" for a regular file)."""
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def missing_path_problem(path: Path) -> str:
    """Why `path` cannot be found, in words: a symlink loop, a dangling symlink, or no such file."""
    path = Path(path)
    try:
        os.stat(path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "a symlink loop (the link points back at itself)"
        if error.errno == errno.EACCES:
            return "cannot be reached (permission denied on a folder above it)"
        if error.errno == errno.ENOTDIR:
            return "no such file (a part of the path is a file, not a folder)"
        if os.path.islink(path):
            return f"a symlink to {os.readlink(path)}, which does not exist"
        return "no such file"
    return ""


def input_file_problem(path: Path, *, max_bytes: int | None = None, allow_dir: bool = False) -> str | None:
    """Why `path` cannot be read as an input file (None when it can)."""
    try:
        info = os.stat(path)
    except OSError:
        return missing_path_problem(path)
    kind = _kind_of(info.st_mode)
    if kind == "a directory":
        return None if allow_dir else "is a directory; name a file"
    if kind != "a file":
        waits = "; reading it would wait for a writer" if kind.startswith("a FIFO") else ""
        return f"is {kind}, not a regular file{waits}"
    if not os.access(path, os.R_OK):
        return "not readable (permission denied)"
    if max_bytes is not None and info.st_size > max_bytes:
        return f"is {format_bytes(info.st_size)}, above the {format_bytes(max_bytes)} this reads"
    return None


def check_input_file(path: str | os.PathLike, *, label: str | None = None, max_bytes: int | None = None,
                     allow_dir: bool = False, hint: str = "") -> Path:
    """`path` as a Path, or a WorkbenchError naming it (as `label`, default the path) and what is wrong.

    Args:
        max_bytes: refuse a larger file (the message states the bound).
        allow_dir: a directory is acceptable (the caller reads its files).
        hint: appended to the message when the file is too large (what to do instead).
    """
    path = Path(path)
    problem = input_file_problem(path, max_bytes=max_bytes, allow_dir=allow_dir)
    if problem:
        suffix = hint if hint and "above the" in problem else ""
        raise WorkbenchError(f"{label or path}: {problem}{suffix}")
    return path


def read_input_bytes(path: str | os.PathLike, *, label: str | None = None, max_bytes: int | None = None,
                     hint: str = "") -> bytes:
    """The bytes of an input file, checked first (a file that grows while read is cut at the bound)."""
    path = check_input_file(path, label=label, max_bytes=max_bytes, hint=hint)
    try:
        with open(path, "rb") as handle:
            data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
    except OSError as error:
        raise WorkbenchError(f"{label or path}: cannot be read ({error.strerror or error})") from None
    if max_bytes is not None and len(data) > max_bytes:
        raise WorkbenchError(f"{label or path}: grew above the {format_bytes(max_bytes)} this reads while it was read")
    return data


def wide_encoding(raw: bytes) -> str | None:
    """"UTF-16" or "UTF-32" when the bytes start with that byte-order mark or look like it
    (ASCII text in UTF-16/32 has a NUL beside every letter); else None."""
    for mark, name in BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            return name
    head = raw[:4096]
    if len(head) >= 8:
        if head[1::4].count(0) == head[2::4].count(0) == head[3::4].count(0) == len(head[1::4]) and head[0::4].count(0) == 0:
            return "UTF-32"
        if head[1::2].count(0) >= len(head[1::2]) * 0.9 and head[0::2].count(0) == 0:
            return "UTF-16"
        if head[0::2].count(0) >= len(head[0::2]) * 0.9 and head[1::2].count(0) == 0:
            return "UTF-16"
    return None


def line_and_column(raw: bytes | str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of `offset`; lines end at \\n, or at \\r in a file that has no \\n."""
    newline = b"\n" if isinstance(raw, bytes) else "\n"
    if newline not in raw[:offset] and (b"\r" if isinstance(raw, bytes) else "\r") in raw:
        newline = b"\r" if isinstance(raw, bytes) else "\r"
    line = raw.count(newline, 0, offset) + 1
    column = offset - (raw.rfind(newline, 0, offset) + 1) + 1
    return line, column


def decode_utf8_text(raw: bytes, label: str) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is dropped), or one line naming the encoding problem:
    UTF-16/UTF-32 by name, a NUL byte (binary content) or the first byte that is not UTF-8, with
    its line and column."""
    wide = wide_encoding(raw)
    if wide is not None:
        raise WorkbenchError(f"{label}: the file is {wide} encoded; re-save it as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, _ = line_and_column(raw, nul)
        raise WorkbenchError(f"{label}:{line}: binary content (a NUL byte at offset {nul}); expected a UTF-8 text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line, column = line_and_column(raw, error.start)
        raise WorkbenchError(
            f"{label}:{line}: not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {column}); re-save the file as UTF-8"
        ) from None


def read_input_text(path: str | os.PathLike, *, label: str | None = None, max_bytes: int | None = None,
                    hint: str = "") -> str:
    """An input file's UTF-8 text, checked and decoded (see `read_input_bytes`, `decode_utf8_text`)."""
    raw = read_input_bytes(path, label=label, max_bytes=max_bytes, hint=hint)
    return decode_utf8_text(raw, label or str(path))


# -- outputs ---------------------------------------------------------------------------------------


def _nearest_existing(path: Path) -> Path:
    current = path
    while not os.path.lexists(current) and current != current.parent:
        current = current.parent
    return current


def _writable_parent_problem(path: Path) -> str | None:
    """Why `path` (which does not exist yet) cannot be created, or None."""
    existing = _nearest_existing(path.parent if path.parent != path else path)
    if not existing.exists():  # a dangling symlink or a loop on the way
        return f"cannot be created: {existing} is {missing_path_problem(existing)}"
    if not existing.is_dir():
        return f"cannot be created: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot be created: {existing} is not writable"
    return space_problem(existing)


def space_problem(folder: Path, needed_bytes: int = MIN_FREE_BYTES) -> str | None:
    """"no space left on <folder>" when its file system has less than `needed_bytes` free (None otherwise)."""
    try:
        info = os.statvfs(folder)
    except OSError:
        return None
    if info.f_blocks == 0:
        return None  # a pseudo file system (/proc, /sys) reports no blocks at all
    if info.f_flag & os.ST_RDONLY:
        return f"cannot be written: {folder} is on a read-only file system"
    free = info.f_bavail * info.f_frsize
    if free < needed_bytes:
        return f"no space left on {folder} ({format_bytes(free)} free)"
    return None


def check_output_file(path: str | os.PathLike, *, option: str) -> Path:
    """A file about to be written: not a directory, its folder writable (or creatable), space left.

    Args:
        option: how the user named it, for the message (e.g. "-o out.jsonl").
    """
    path = Path(path)
    if os.path.lexists(path):
        try:
            info = os.stat(path)
        except OSError:
            raise WorkbenchError(f"{option}: {missing_path_problem(path)}") from None
        kind = _kind_of(info.st_mode)
        if kind == "a directory":
            raise WorkbenchError(f"{option}: is a directory; name a file to write")
        if kind != "a file":
            raise WorkbenchError(f"{option}: is {kind}, not a regular file")
        if not os.access(path, os.W_OK):
            raise WorkbenchError(f"{option}: cannot be written (permission denied)")
        problem = space_problem(path.parent)
        if problem is None and not os.access(path.parent, os.W_OK | os.X_OK):
            # files are written to a temporary sibling and renamed into place
            problem = f"cannot be written: {path.parent} is not writable"
    else:
        problem = _writable_parent_problem(path)
    if problem:
        raise WorkbenchError(f"{option}: {problem}")
    return path


def check_output_dir(path: str | os.PathLike, *, option: str, needed_bytes: int = MIN_FREE_BYTES) -> Path:
    """A directory about to be created or written into: not a file, writable, space left."""
    path = Path(path)
    if os.path.lexists(path):
        try:
            info = os.stat(path)
        except OSError:
            raise WorkbenchError(f"{option}: {missing_path_problem(path)}") from None
        if not stat.S_ISDIR(info.st_mode):
            raise WorkbenchError(f"{option}: is {_kind_of(info.st_mode)}; name a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise WorkbenchError(f"{option}: cannot be written (permission denied)")
        problem = space_problem(path, needed_bytes)
    else:
        problem = _writable_parent_problem(path)
    if problem:
        raise WorkbenchError(f"{option}: {problem}")
    return path


def runs_root_option(override: str | os.PathLike | None) -> str:
    """How the user named the runs directory, for messages: --runs-dir, $WORKBENCH_RUNS_DIR or ./runs."""
    if override:
        return f"--runs-dir {override}"
    if os.environ.get(RUNS_DIR_ENV):
        return f"{RUNS_DIR_ENV}={os.environ[RUNS_DIR_ENV]}"
    return f"the runs directory {runs_dir()}"


def is_no_space(error: BaseException) -> bool:
    """The error is a full disk (or quota), however the library wrapped it (torch, safetensors)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(current)
        if "No space left on device" in text or "StorageFull" in text or "Disk quota exceeded" in text:
            return True
        current = current.__cause__ or current.__context__
    return False
