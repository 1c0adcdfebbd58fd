"""Read data into Conversations, or fail with one line naming the file, row/line and field.

JSON and JSON Lines are parsed with the standard library's json module, one line at a time for
JSONL so a broken line is reported by number; CSV and Parquet are read with pyarrow; Arrow files,
save_to_disk directories and cached Hub datasets with `datasets` (workbench.data.hf_datasets).
What a path names is resolved first (workbench.data.data_refs). Data is only ever opened for reading.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from workbench.data import hf_datasets
from workbench.data.columns import ColumnMap
from workbench.data.conversation import Conversation
from workbench.data.data_refs import FILE_KINDS, DataRef, column_map, resolve_data_ref
from workbench.data.formats import (
    FORMATS,
    PREFERENCE_COLUMNS,
    RowError,
    describe_expected_keys,
    detect_format,
    make_conversation,
)
from workbench.data.json_rows import JsonRows, parse_json_document, read_json_array, read_json_lines, split_lines
from workbench.errors import WorkbenchError
from workbench.known_errors import first_line
from workbench.io_checks import MAX_DATA_FILE_BYTES, check_input_file, decode_utf8_text, read_input_bytes

SUFFIX_KINDS = {suffix: kind for suffix, kind in FILE_KINDS.items() if kind != "arrow"}
"""Text and Parquet files read without `datasets` (`.arrow` goes through it)."""
PROGRESS_EVERY_ROWS = 5000

Progress = Callable[[str, float | None], None]


@dataclass
class LoadedData:
    """Data read into conversations.

    Attributes:
        path: the file or directory that was read (a cached dataset's id as a Path).
        format: the row format (one of FORMATS).
        detected: True when the format was auto-detected, False when the caller named it.
        conversations: one per row, in file order (`source_index` is the 0-based row).
        ref: what was read, resolved (kind, columns, split).
        warnings: one line each for things that load but are probably wrong (a key repeated in a row).
    """

    path: Path
    format: str
    detected: bool
    conversations: list[Conversation]
    ref: DataRef | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.conversations)


@dataclass(frozen=True)
class _Record:
    row: Any
    line: int | None


def _no_progress(stage: str, fraction: float | None) -> None:
    pass


def _file_kind(path: Path) -> str:
    kind = SUFFIX_KINDS.get(path.suffix.lower())
    if kind is None:
        raise WorkbenchError(
            f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; "
            "expected .json, .jsonl, .csv or .parquet"
        )
    return kind


def _decode_text(path: Path, raw: bytes) -> str:
    """UTF-8 text of the file, or an error naming the encoding or the line of the first bad byte."""
    if not raw.strip():
        raise WorkbenchError(f"{path}: the file is empty; expected rows of training data")
    return decode_utf8_text(raw, str(path))


def _records_of(rows: JsonRows, warnings: list[str] | None) -> list[_Record]:
    if warnings is not None:
        warnings.extend(rows.warnings)
    return [_Record(row, line) for row, line in rows.records]


def _read_jsonl(path: Path, text: str, warnings: list[str] | None = None) -> list[_Record]:
    return _records_of(read_json_lines(str(path), text), warnings)


def _read_json(path: Path, text: str, warnings: list[str] | None = None) -> list[_Record]:
    rows = read_json_array(str(path), text)
    if rows is not None:
        # rows of a JSON array are named by index (`file: row N`), as everywhere else in the workbench
        return [_Record(record.row, None) for record in _records_of(rows, warnings)]
    try:
        value = parse_json_document(str(path), text)
    except WorkbenchError as error:
        if "(Extra data)" in str(error) and text.lstrip().startswith("{"):
            # `datasets`' to_json() writes JSON Lines even into files named .json.
            return _read_jsonl(path, text, warnings)
        raise
    if isinstance(value, dict):
        lists = [key for key, item in value.items() if isinstance(item, list)]
        hint = f" (its list-valued keys: {', '.join(map(repr, lists[:5]))})" if lists else ""
        raise WorkbenchError(
            f"{path}: the top-level JSON value is an object{hint}; expected a list of rows, "
            "or one object per line in a .jsonl file"
        )
    raise WorkbenchError(f"{path}: the top-level JSON value is {type(value).__name__}; expected a list of rows")


def _read_csv(path: Path, raw: bytes, text: str) -> list[_Record]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(newlines_in_values=True)  # answers span lines in quoted cells
    try:
        header = pacsv.open_csv(pa.BufferReader(raw), parse_options=parse).schema.names
        repeated = sorted({name for name in header if header.count(name) > 1})
        if repeated:  # a row would keep only one of the columns, silently
            raise WorkbenchError(f"{path}:1: the header names the column {repeated[0]!r} twice; rename one of them")
        # Read every column as text: a CSV cell "007" is the answer "007", not the number 7.
        table = pacsv.read_csv(
            pa.BufferReader(raw),
            parse_options=parse,
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError) as error:
        raise WorkbenchError(f"{_csv_error_where(path, raw, text)}: invalid CSV: {_csv_problem(error)}") from None
    lines = _csv_record_lines(text, table.num_rows)
    return [_Record(row, line) for row, line in zip(table.to_pylist(), lines)]


def _csv_problem(error: Exception) -> str:
    return first_line(error).removeprefix("CSV parse error: ")


def _csv_error_where(path: Path, raw: bytes, text: str) -> str:
    """`path:LINE` of the first row the CSV parser refuses (re-read on one thread, which numbers rows)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list = []

    def remember(row) -> str:
        bad.append(row)
        return "error"

    try:
        pacsv.read_csv(
            pa.BufferReader(raw),
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=remember),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        pass
    if not bad:
        return str(path)
    row_text = bad[0].text.split("\n", 1)[0]
    lines, _ = split_lines(text)
    for number, line in enumerate(lines, start=1):
        if line.rstrip("\r") == row_text:
            return f"{path}:{number}"
    return f"{path}: row {bad[0].number}" if bad[0].number else str(path)


def _csv_record_lines(text: str, rows: int) -> list[int | None]:
    """The line each data row starts on (quoted cells may span lines), None when it cannot tell."""
    lines, _ = split_lines(text)
    starts: list[int | None] = []
    inside_quotes = False
    for number, line in enumerate(lines, start=1):
        if not inside_quotes and number > 1 and line.strip():
            starts.append(number)
        if line.count('"') % 2:
            inside_quotes = not inside_quotes
    return starts[:rows] if len(starts) >= rows else [None] * rows


def _read_parquet(path: Path) -> list[_Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as error:
        raise WorkbenchError(f"{path}: not a readable Parquet file: {first_line(error)}") from None
    return [_Record(row, None) for row in table.to_pylist()]


TOO_LARGE_HINT = "; split it, or convert it to Parquet (read without loading it whole)"


def read_records(path: Path, warnings: list[str] | None = None) -> list[_Record]:
    """The file's rows as Python objects, with line numbers for JSON and JSON Lines.

    The file is checked first (a regular, readable file within MAX_DATA_FILE_BYTES for text
    formats); `warnings` collects one line per suspicious thing (a key repeated in a row).
    """
    kind = _file_kind(path)
    if kind == "parquet":
        return _read_parquet(check_input_file(path))
    raw = read_input_bytes(path, max_bytes=MAX_DATA_FILE_BYTES, hint=TOO_LARGE_HINT)
    text = _decode_text(path, raw)
    if kind == "csv":
        return _read_csv(path, raw, text)
    if kind == "jsonl":
        return _read_jsonl(path, text, warnings)
    return _read_json(path, text, warnings)


def _where(label: str, index: int, line: int | None) -> str:
    return f"{label}:{line} (row {index})" if line is not None else f"{label}: row {index}"


def _dataset_records(ref: DataRef, progress: Progress) -> list[_Record]:
    dataset = _open_dataset(ref)
    stage = f"Reading {ref.display_path.name}"
    return [_Record(row, None) for row in hf_datasets.iter_rows(dataset, progress, stage)]


def _open_dataset(ref: DataRef):
    if ref.kind == "arrow":
        return hf_datasets.open_arrow_file(ref.path)
    if ref.kind == "saved":
        return hf_datasets.open_saved_dataset(ref.path, ref.split)
    return hf_datasets.open_cached_dataset(ref.dataset_id, ref.subset, ref.split)


def read_ref_records(ref: DataRef, progress: Progress | None = None, warnings: list[str] | None = None) -> list[_Record]:
    """The rows `ref` names, as Python objects (with line numbers for JSON Lines)."""
    progress = progress or _no_progress
    progress(f"Reading {ref.display_path.name}", None)
    if ref.kind in SUFFIX_KINDS.values():
        return read_records(ref.path, warnings)
    return _dataset_records(ref, progress)


def count_data_rows(ref: DataRef) -> int:
    """How many rows `ref` holds (Arrow-backed data is counted without reading its rows)."""
    if ref.kind in SUFFIX_KINDS.values():
        return len(read_records(ref.path))
    return _open_dataset(ref).num_rows


def load_conversations(
    path: str | os.PathLike,
    format: str = "auto",
    progress: Progress | None = None,
    *,
    columns: ColumnMap | dict | None = None,
    split: str | None = None,
    subset: str | None = None,
    source_name: str | None = None,
    base_dir: str | os.PathLike | None = None,
) -> LoadedData:
    """Load data and normalize every row to a Conversation.

    Args:
        path: a data file, a save_to_disk directory, a cached Hub dataset id or dataset_info.json#entry
            (workbench.data.data_refs).
        format: "auto" to detect from the first row, or one of FORMATS.
        progress: called with a stage and a fraction while rows are read and normalized.
        columns: a column mapping (the config's `data.columns`), when the columns have other names.
        split / subset: the split and configuration of a save_to_disk directory or cached dataset.
        source_name: the mixture source the rows belong to (Conversation.source).
        base_dir: where relative paths start (default: the current directory).

    Raises:
        WorkbenchError: one line naming the file, the row or line and the field.
    """
    if format != "auto" and format not in FORMATS:
        raise WorkbenchError(f"--format: unknown format {format!r}; expected auto or one of {', '.join(FORMATS)}")
    ref = resolve_data_ref(
        os.fspath(path) if not isinstance(path, str) else path,
        format=format,
        columns=column_map(columns, "data.columns"),
        split=split,
        subset=subset,
        base_dir=base_dir,
    )
    return load_data_ref(ref, progress, source_name=source_name)


def load_data_ref(ref: DataRef, progress: Progress | None = None, *, source_name: str | None = None) -> LoadedData:
    """Load what a resolved DataRef names (see load_conversations)."""
    progress = progress or _no_progress
    warnings: list[str] = []
    records = read_ref_records(ref, progress, warnings)
    label = ref.label
    if not records:
        raise WorkbenchError(f"{label}: no rows; the file holds no training examples")

    first = records[0]
    if not isinstance(first.row, dict):
        raise WorkbenchError(f"{_where(label, 0, first.line)}: expected an object, got {type(first.row).__name__}")
    chosen = ref.format
    if chosen == "auto":
        columns = ref.columns
        if columns is None:
            chosen = detect_format(first.row)
        else:  # the mapped keys say the format even when the first row misses a column
            chosen = detect_format(columns.apply(first.row, "auto")) or columns.target_format("auto")
        if chosen is None:
            keys = ", ".join(sorted(map(str, first.row))[:8]) or "none"
            hint = "" if any(key in first.row for key in PREFERENCE_COLUMNS) else "; map the columns with data.columns or pass --format"
            raise WorkbenchError(
                f"{_where(label, 0, first.line)}: unknown schema (keys: {keys}); {describe_expected_keys(first.row)}{hint}"
            )

    conversations = []
    total = len(records)
    for index, record in enumerate(records):
        if not isinstance(record.row, dict):
            raise WorkbenchError(f"{_where(label, index, record.line)}: expected an object, got {type(record.row).__name__}")
        try:
            conversations.append(make_conversation(record.row, chosen, index, record.line, ref.columns, source_name))
        except RowError as error:
            raise WorkbenchError(f"{_where(label, index, record.line)}: {error}") from None
        if index % PROGRESS_EVERY_ROWS == 0:
            progress(f"Normalizing rows ({chosen})", index / total)
    progress(f"Loaded {total:,} rows", 1.0)
    return LoadedData(ref.display_path, chosen, ref.format == "auto", conversations, ref, warnings)
