"""What a data path in a config or on the command line names, resolved before anything is read.

One string names the data:

- a file: .json, .jsonl/.ndjson, .csv, .parquet, or .arrow (a `datasets` Arrow file);
- a directory written by `datasets`' `save_to_disk`;
- `owner/name`, a Hub dataset id already in the local Hugging Face datasets cache (never fetched);
- `path/to/dataset_info.json#entry`: one entry of a LLaMA-Factory dataset_info.json, whose
  `file_name` (relative to that directory) or `hf_hub_url`, `formatting`, `columns`, `tags`,
  `subset` and `split` are taken as given.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from workbench.data.columns import COLUMN_KEYS, ColumnMap
from workbench.data.tool_layouts import RowError
from workbench.errors import WorkbenchError
from workbench.io_checks import MAX_CONFIG_BYTES, input_file_problem, missing_path_problem, read_input_text

FILE_KINDS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}
SAVED_DATASET_MARKERS = ("dataset_dict.json", "state.json")
ENTRY_SEPARATOR = "#"
DATASET_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
EXPECTED = ".json, .jsonl, .csv, .parquet or .arrow file, a save_to_disk directory, a cached dataset id, or dataset_info.json#entry"

# dataset_info.json keys that name data this workbench does not train on.
_MULTIMODAL_COLUMNS = ("images", "videos", "audios")
_PREFERENCE_COLUMNS = ("chosen", "rejected", "kto_tag")
_OTHER_HUBS = ("ms_hub_url", "om_hub_url")


@dataclass(frozen=True)
class DataRef:
    """Resolved data: what to read and how.

    Attributes:
        text: the string as the user wrote it.
        kind: json, jsonl, csv, parquet, arrow (a file), saved (a save_to_disk directory) or cached (a Hub id).
        path: the file or directory (None for a cached id).
        dataset_id: the Hub id of a cached dataset.
        format: the row format ("auto" to detect).
        columns: the column mapping, when the columns have other names.
        split / subset: which split and configuration of a saved or cached dataset.
    """

    text: str
    kind: str
    path: Path | None = None
    dataset_id: str | None = None
    format: str = "auto"
    columns: ColumnMap | None = None
    split: str | None = None
    subset: str | None = None

    @property
    def label(self) -> str:
        """How messages name it: the path, or the id with its split."""
        if self.path is not None:
            return str(self.path)
        return str(self.dataset_id) + (f" [{self.split}]" if self.split else "")

    @property
    def display_path(self) -> Path:
        """A Path for display and for naming files next to it (the id for a cached dataset)."""
        return self.path if self.path is not None else Path(str(self.dataset_id))


def column_map(mapping: Mapping[str, Any] | ColumnMap | None, where: str) -> ColumnMap | None:
    """A ColumnMap from the config's mapping (errors name `where`)."""
    if mapping is None or isinstance(mapping, ColumnMap):
        return mapping
    try:
        return ColumnMap.from_mapping(mapping, where)
    except RowError as error:
        raise WorkbenchError(str(error)) from None


def resolve_data_ref(
    text: str,
    *,
    format: str = "auto",
    columns: ColumnMap | None = None,
    split: str | None = None,
    subset: str | None = None,
    base_dir: str | Path | None = None,
) -> DataRef:
    """Resolve a data path string (see the module docstring); explicit settings win over an entry's.

    Raises:
        WorkbenchError: one line naming the path and what is wrong.
    """
    text = str(text)
    if ENTRY_SEPARATOR in text:
        info_text, entry = text.rsplit(ENTRY_SEPARATOR, 1)
        info_path = _local(info_text, base_dir)
        if info_path.suffix.lower() == ".json" and info_path.is_file():
            ref = _dataset_info_entry(info_path, entry, text)
            return replace(
                ref,
                format=format if format != "auto" else ref.format,
                columns=columns if columns is not None else ref.columns,
                split=split or ref.split,
                subset=subset or ref.subset,
            )
    path = _local(text, base_dir)
    options = {"format": format, "columns": columns, "split": split, "subset": subset}
    if path.is_dir():
        if any((path / marker).is_file() for marker in SAVED_DATASET_MARKERS):
            return DataRef(text, "saved", path=path, **options)
        raise WorkbenchError(
            f"{path}: is a directory but not a `datasets` save_to_disk directory (no state.json or dataset_dict.json); "
            f"name a data file"
        )
    if path.is_file():
        if path.name == "dataset_info.json":
            names = ", ".join(list(_read_info(path))[:8])
            raise WorkbenchError(f"{path}: a LLaMA-Factory dataset_info.json; name one entry as {text}#NAME (entries: {names})")
        kind = FILE_KINDS.get(path.suffix.lower())
        if kind is None:
            raise WorkbenchError(f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; expected a {EXPECTED}")
        return DataRef(text, kind, path=path, **options)
    if os.path.lexists(path):  # a FIFO, a device, a symlink loop or a dangling symlink: never opened
        raise WorkbenchError(f"{path}: {input_file_problem(path) or 'not a regular file'}")
    if DATASET_ID.match(text) and path.suffix.lower() not in FILE_KINDS:
        return DataRef(text, "cached", dataset_id=text, **options)
    raise WorkbenchError(f"{path}: {missing_path_problem(path)}")


def _local(text: str, base_dir: str | Path | None) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


def _read_info(info_path: Path) -> dict[str, Any]:
    text = read_input_text(info_path, max_bytes=MAX_CONFIG_BYTES)
    try:
        info = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise WorkbenchError(f"{info_path}: not a readable dataset_info.json ({getattr(error, 'msg', None) or error})") from None
    if not isinstance(info, dict):
        raise WorkbenchError(f"{info_path}: expected an object of dataset entries, got {type(info).__name__}")
    return info


def _dataset_info_entry(info_path: Path, entry: str, text: str) -> DataRef:
    """The DataRef one dataset_info.json entry describes."""
    info = _read_info(info_path)
    where = f"{info_path}: {entry}"
    if entry not in info:
        close = [name for name in info if entry.lower() in name.lower()][:5] or list(info)[:5]
        raise WorkbenchError(f"{info_path}: no entry {entry!r} (some entries: {', '.join(close)})")
    spec = info[entry]
    if not isinstance(spec, dict):
        raise WorkbenchError(f"{where}: expected an object, got {type(spec).__name__}")
    columns_spec = spec.get("columns") or {}
    tags_spec = spec.get("tags") or {}
    if not isinstance(columns_spec, dict) or not isinstance(tags_spec, dict):
        raise WorkbenchError(f"{where}: columns and tags must be objects")
    if spec.get("ranking") or any(key in columns_spec for key in _PREFERENCE_COLUMNS):
        raise WorkbenchError(f"{where}: a preference (ranking/KTO) dataset; supervised fine-tuning needs one answer per prompt")
    multimodal = [key for key in _MULTIMODAL_COLUMNS if key in columns_spec]
    if multimodal:
        raise WorkbenchError(f"{where}: has {', '.join(multimodal)} columns; multimodal data is not supported (text-only training)")
    unknown = [key for key in columns_spec if key not in COLUMN_KEYS]
    if unknown:
        raise WorkbenchError(f"{where}: columns: unknown key {unknown[0]!r}; expected one of {', '.join(COLUMN_KEYS)}")
    columns = column_map({**columns_spec, **tags_spec}, f"{where}: columns")
    formatting = spec.get("formatting")
    if formatting not in (None, "alpaca", "sharegpt"):
        raise WorkbenchError(f"{where}: formatting {formatting!r}; expected alpaca or sharegpt")
    options = {"format": formatting or "auto", "columns": columns, "split": spec.get("split"), "subset": spec.get("subset")}
    if spec.get("hf_hub_url"):
        return DataRef(text, "cached", dataset_id=str(spec["hf_hub_url"]), **options)
    if spec.get("file_name"):
        if ENTRY_SEPARATOR in str(spec["file_name"]) or Path(str(spec["file_name"])).name == "dataset_info.json":
            raise WorkbenchError(f"{where}: file_name {spec['file_name']!r} names a dataset_info.json entry; name the data file itself")
        data_ref = resolve_data_ref(str(info_path.parent / str(spec["file_name"])))
        return replace(data_ref, text=text, **options)
    hubs = [key for key in _OTHER_HUBS if spec.get(key)]
    if hubs:
        raise WorkbenchError(f"{where}: only on another hub ({hubs[0]}); download it and set file_name")
    raise WorkbenchError(f"{where}: names no data (no file_name or hf_hub_url); script_url and cloud_file_name are not supported")


def absolute_data_path(text: str | None, base_dir: str | Path | None = None) -> str | None:
    """`text` with a relative local path made absolute (from `base_dir`, else the current directory),
    keeping a `#entry` suffix; a cached dataset id (`owner/name`, no such local path) stays as it is."""
    if not text:
        return text
    head, separator, entry = text.rpartition(ENTRY_SEPARATOR) if ENTRY_SEPARATOR in text else (text, "", "")
    path = _local(head, base_dir if base_dir is not None else Path.cwd())
    if not separator and not path.exists() and DATASET_ID.match(head) and Path(head).suffix.lower() not in FILE_KINDS:
        return text
    return str(path.resolve()) + separator + entry
