"""One line for the library and system errors a user can act on, instead of their tracebacks.

transformers refuses a model that needs its own code with a four-line ValueError; safetensors
reports a cut-short file as `SafetensorError: ... MetadataIncompleteBuffer`; the operating system
reports a full disk, a read-only folder or a directory where a file belongs as OSError. The CLI
(workbench_cli/main.py) and the trainer (workbench/training/failures.py) turn these into one line;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
from typing import Optional

from workbench.errors import WorkbenchError

ACTIONABLE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "is a directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ENOENT: "no such file or directory",
    errno.ELOOP: "a symlink loop",
    errno.EMFILE: "too many open files",
    errno.ENAMETOOLONG: "file name too long",
}


def remote_code_line(error: BaseException) -> Optional[str]:
    """transformers' refusal to run a model's own code, as one line."""
    text = str(error)
    if isinstance(error, (ValueError, OSError)) and "trust_remote_code" in text:
        where = text.split("The repository ", 1)[-1].split(" contains custom code", 1)[0] if "The repository " in text else "the model"
        return (
            f"{where} ships its own Python code, which runs only with trust_remote_code (model.trust_remote_code: "
            "true in a run config); allow it only if you trust the model's author"
        )
    return None


def truncated_weights_line(error: BaseException) -> Optional[str]:
    """safetensors' error for a file cut short, as one line."""
    text = str(error)
    if type(error).__name__ == "SafetensorError" or "MetadataIncompleteBuffer" in text or "incomplete metadata" in text.lower():
        first = (text.strip().splitlines() or [type(error).__name__])[0]
        return f"the safetensors weights cannot be read ({first}); download or save them again"
    return None


def os_error_line(error: BaseException) -> Optional[str]:
    """An OSError the user can act on (full disk, permissions, a folder where a file belongs), as one line."""
    if not isinstance(error, OSError) or error.errno not in ACTIONABLE_ERRNOS:
        return None
    where = error.filename if error.filename is not None else "a file"
    return f"{where}: {ACTIONABLE_ERRNOS[error.errno]}"


def describe_library_error(error: BaseException) -> Optional[str]:
    """One line for an error the user can fix, or None for one that deserves its traceback."""
    return remote_code_line(error) or truncated_weights_line(error) or os_error_line(error)


def first_line(error: BaseException) -> str:
    """The error's first line (with the next one when the first only introduces it, ending in ':')."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()] or [type(error).__name__]
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def model_file_error(path, what: str, error: BaseException):
    """The WorkbenchError for a model's file that transformers or tokenizers could not load (a
    damaged tokenizer.json, a config.json value of the wrong type, remote code): one line."""
    return WorkbenchError(f"model {path}: {what} cannot be loaded: {remote_code_line(error) or first_line(error)}")
