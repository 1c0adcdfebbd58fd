"""Rows of a JSON or JSON Lines file, with every way the text can be wrong named on one line.

The standard library's json module does the parsing. Around it:

- each row's line is known, for a JSON array too (its elements are decoded one by one with
  `raw_decode`), so errors and warnings name `file:line`;
- nesting deeper than the parser's recursion allows, integers over Python's 4,300-digit limit and
  lone UTF-16 surrogate escapes (`"\\ud800"`, which no UTF-8 text can hold) are errors naming the
  line (and the field, for surrogates), not tracebacks;
- "truncated?" is said only when the error runs to the end of a file that ends mid-line;
- files whose lines end in a bare CR (old Mac style) are read line by line like any other;
- a key repeated inside one object (JSON keeps the last value silently) is a warning.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import WorkbenchError

INT_DIGITS_LIMIT = sys.get_int_max_str_digits() or 4300
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
MAX_WARNINGS = 5
"""Duplicate-key warnings listed per file; more are counted in one line."""


@dataclass
class JsonRows:
    """Rows decoded from JSON text: (value, 1-based line) pairs, and warnings (one line each)."""

    records: list[tuple[Any, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class _TooManyDigits(ValueError):
    def __init__(self, digits: int):
        super().__init__(digits)
        self.digits = digits


def _parse_int(text: str) -> int:
    if len(text) > INT_DIGITS_LIMIT:
        raise _TooManyDigits(len(text.lstrip("-")))
    return int(text)


class _DuplicateKeys:
    """object_pairs_hook that builds the dict and remembers the first repeated key."""

    def __init__(self) -> None:
        self.repeated: str | None = None

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        value = dict(pairs)
        if len(value) != len(pairs) and self.repeated is None:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    self.repeated = key
                    break
                seen.add(key)
        return value


def lone_surrogate_field(value: Any, where: str = "") -> str | None:
    """The dotted path of the first string (key or value) holding a lone surrogate, or None."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return path or "(value)"
        elif isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                name = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and _LONE_SURROGATE.search(key):
                    return name
                stack.append((inner, name))
        elif isinstance(item, list):
            for index in reversed(range(len(item))):
                stack.append((item[index], f"{path}[{index}]"))
    return None


def _surrogate_error(label: str, line: int, value: Any) -> WorkbenchError:
    where = lone_surrogate_field(value) or "(value)"
    return WorkbenchError(
        f"{label}:{line}: {where}: a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair) is not text; "
        "fix or remove it"
    )


def _decode_error(label: str, text: str, error: json.JSONDecodeError, *, line: int, column: int, runs_to_end: bool,
                  suffix: str = "") -> WorkbenchError:
    position = error.pos
    bad = text[position] if 0 <= position < len(text) else ""
    if bad == "\x00":
        what = "a NUL byte (binary content)"
    else:
        what = error.msg
    truncated = "; the file ends mid-row (truncated?)" if runs_to_end else ""
    return WorkbenchError(f"{label}:{line}: invalid JSON at column {column} ({what}){truncated}{suffix}")


def _too_deep(label: str, line: int) -> WorkbenchError:
    return WorkbenchError(
        f"{label}:{line}: nested deeper than the JSON reader allows (about {sys.getrecursionlimit()} levels); "
        "rows of training data need a few levels at most"
    )


def _too_many_digits(label: str, line: int, digits: int) -> WorkbenchError:
    return WorkbenchError(
        f"{label}:{line}: a number with {digits:,} digits, more than the {INT_DIGITS_LIMIT:,} Python reads; "
        "write it as a string"
    )


def split_lines(text: str) -> tuple[list[str], str]:
    """The text's lines and the separator used: \\n, or \\r for a file that has no \\n at all."""
    separator = "\n" if "\n" in text or "\r" not in text else "\r"
    return text.split(separator), separator


def _ends_mid_line(text: str) -> bool:
    return not text.endswith(("\n", "\r"))


def read_json_lines(label: str, text: str) -> JsonRows:
    """One JSON object per line (blank lines skipped)."""
    result = JsonRows()
    lines, _ = split_lines(text)
    may_hold_surrogates = _SURROGATE_ESCAPE.search(text) is not None
    duplicates = _DuplicateKeys()
    repeated_lines = 0
    last_line = max((number for number, line in enumerate(lines, start=1) if line.strip()), default=0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        duplicates.repeated = None
        try:
            value = json.loads(line, object_pairs_hook=duplicates, parse_int=_parse_int)
        except _TooManyDigits as error:
            raise _too_many_digits(label, number, error.digits) from None
        except RecursionError:
            raise _too_deep(label, number) from None
        except json.JSONDecodeError as error:
            runs_to_end = (
                number == last_line
                and _ends_mid_line(text)
                and (error.pos >= len(line.rstrip()) or (error.msg.startswith("Unterminated string") and '"' not in line[error.pos + 1 :]))
            )
            raise _decode_error(
                label, line, error, line=number, column=error.colno, runs_to_end=runs_to_end,
                suffix="; each line must be one JSON object",
            ) from None
        if may_hold_surrogates and _SURROGATE_ESCAPE.search(line) and lone_surrogate_field(value) is not None:
            raise _surrogate_error(label, number, value)
        if duplicates.repeated is not None:
            repeated_lines += 1
            if repeated_lines <= MAX_WARNINGS:
                result.warnings.append(_duplicate_warning(label, number, duplicates.repeated))
        if not isinstance(value, dict):
            hint = "; this looks like a JSON array: name the file .json" if not result.records and isinstance(value, list) else ""
            raise WorkbenchError(f"{label}:{number}: expected a JSON object per line, got {_type_name(value)}{hint}")
        result.records.append((value, number))
    _count_more(result, label, repeated_lines)
    return result


def _duplicate_warning(label: str, line: int, key: str) -> str:
    return f"{label}:{line}: warning: the key {key!r} appears twice in one object; JSON keeps only the last value"


def _count_more(result: JsonRows, label: str, repeated: int) -> None:
    if repeated > MAX_WARNINGS:
        result.warnings.append(f"{label}: warning: {repeated - MAX_WARNINGS:,} more rows repeat a key")


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def read_json_array(label: str, text: str) -> JsonRows | None:
    """The elements of a top-level JSON array, each with the line it starts on; None when the text
    is not an array (the caller reports what it is)."""
    start = _skip_space(text, 0)
    if start >= len(text) or text[start] != "[":
        return None
    result = JsonRows()
    decoder = json.JSONDecoder(object_pairs_hook=(duplicates := _DuplicateKeys()), parse_int=_parse_int)
    may_hold_surrogates = _SURROGATE_ESCAPE.search(text) is not None
    newlines = _NewlineIndex(text)
    repeated_rows = 0
    position = _skip_space(text, start + 1)
    if position < len(text) and text[position] == "]":
        return _after_array(label, text, position + 1, newlines, result)
    while True:
        line = newlines.line_of(position)
        duplicates.repeated = None
        try:
            value, end = decoder.raw_decode(text, position)
        except _TooManyDigits as error:
            raise _too_many_digits(label, line, error.digits) from None
        except RecursionError:
            raise _too_deep(label, line) from None
        except json.JSONDecodeError as error:
            raise _array_error(label, text, error, newlines) from None
        if may_hold_surrogates and _SURROGATE_ESCAPE.search(text, position, end) and lone_surrogate_field(value) is not None:
            raise _surrogate_error(label, line, value)
        if duplicates.repeated is not None:
            repeated_rows += 1
            if repeated_rows <= MAX_WARNINGS:
                result.warnings.append(_duplicate_warning(label, line, duplicates.repeated))
        result.records.append((value, line))
        position = _skip_space(text, end)
        if position < len(text) and text[position] == ",":
            position = _skip_space(text, position + 1)
            continue
        if position < len(text) and text[position] == "]":
            _count_more(result, label, repeated_rows)
            return _after_array(label, text, position + 1, newlines, result)
        at_end = position >= len(text)
        error_line, column = newlines.line_and_column(position)
        if at_end:
            raise WorkbenchError(f"{label}:{error_line}: the JSON array is not closed with ']'; the file ends early (truncated?)")
        raise WorkbenchError(f"{label}:{error_line}: invalid JSON at column {column} (expected ',' or ']' after a row)")


def _after_array(label: str, text: str, position: int, newlines: "_NewlineIndex", result: JsonRows) -> JsonRows:
    position = _skip_space(text, position)
    if position < len(text):
        line, column = newlines.line_and_column(position)
        raise WorkbenchError(f"{label}:{line}: invalid JSON at column {column} (extra data after the closing ']')")
    return result


def _array_error(label: str, text: str, error: json.JSONDecodeError, newlines: "_NewlineIndex") -> WorkbenchError:
    line, column = newlines.line_and_column(error.pos)
    runs_to_end = _ends_mid_line(text) and (
        error.pos >= len(text.rstrip()) or (error.msg.startswith("Unterminated string") and '"' not in text[error.pos + 1 :])
    )
    return _decode_error(label, text, error, line=line, column=column, runs_to_end=runs_to_end)


def parse_json_document(label: str, text: str) -> Any:
    """One whole JSON document (not rows), with the same one-line errors."""
    try:
        return json.loads(text, parse_int=_parse_int)
    except _TooManyDigits as error:
        raise _too_many_digits(label, 1, error.digits) from None
    except RecursionError:
        raise _too_deep(label, 1) from None
    except json.JSONDecodeError as error:
        newlines = _NewlineIndex(text)
        line, column = newlines.line_and_column(error.pos)
        runs_to_end = _ends_mid_line(text) and error.pos >= len(text.rstrip())
        raise _decode_error(label, text, error, line=line, column=column, runs_to_end=runs_to_end) from None


class _NewlineIndex:
    """Line numbers of offsets in a text, by bisecting its newline positions (\\n, or \\r when it has no \\n)."""

    def __init__(self, text: str) -> None:
        separator = split_lines(text)[1] if "\n" not in text else "\n"
        self.offsets = [match.start() for match in re.finditer(re.escape(separator), text)]

    def line_of(self, position: int) -> int:
        import bisect

        return bisect.bisect_left(self.offsets, position) + 1

    def line_and_column(self, position: int) -> tuple[int, int]:
        line = self.line_of(position)
        line_start = self.offsets[line - 2] + 1 if line >= 2 else 0
        return line, position - line_start + 1
