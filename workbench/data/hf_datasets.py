"""Rows from the `datasets` library's own storage: a `.arrow` file, a `save_to_disk` directory, and a
dataset id already in the local Hugging Face datasets cache.

A cached id is read with `load_dataset(id)` in offline mode, forced for that call only: `datasets`
then skips the Hub and finds the Arrow files an earlier online `load_dataset(id)` left under
`<cache>/<owner>___<name>/<config>/<version>/<hash>/`. Nothing is ever downloaded; an id that is not
cached gets one line saying so and how to fetch it. `datasets` is imported inside these functions
(about 1 s), so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from workbench.errors import WorkbenchError
from workbench.known_errors import first_line

if TYPE_CHECKING:
    from datasets import Dataset

ROWS_PER_BATCH = 5000
DEFAULT_SPLIT = "train"
_offline_lock = threading.Lock()

Progress = Callable[[str, float | None], None]


def datasets_cache_dir() -> Path:
    """Where `datasets` keeps prepared datasets: $HF_DATASETS_CACHE, else $HF_HOME/datasets, else
    ~/.cache/huggingface/datasets (read now, not when `datasets` was imported)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "datasets"


@contextlib.contextmanager
def _quiet_datasets(offline: bool = False) -> Iterator[None]:
    """No progress bars or info logs (they would draw over the TUI); with `offline`, `datasets` and
    `huggingface_hub` treat the Hub as unreachable for the duration."""
    import datasets
    import huggingface_hub.constants as hub_constants
    from datasets.utils import logging as datasets_logging

    with _offline_lock:
        bars_were_on = datasets.is_progress_bar_enabled()
        verbosity = datasets_logging.get_verbosity()
        saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
        datasets.disable_progress_bars()
        datasets_logging.set_verbosity_error()
        if offline:
            datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
        try:
            yield
        finally:
            datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
            datasets_logging.set_verbosity(verbosity)
            if bars_were_on:
                datasets.enable_progress_bars()


def _pick_split(loaded: Any, split: str | None, where: str) -> "Dataset":
    """One split of a DatasetDict (train by default), or the Dataset itself."""
    from datasets import DatasetDict

    if not isinstance(loaded, DatasetDict):
        if split not in (None, DEFAULT_SPLIT):
            raise WorkbenchError(f"{where}: holds one split, not a set of splits; leave out split {split!r}")
        return loaded
    wanted = split or DEFAULT_SPLIT
    if wanted not in loaded:
        if split is None and len(loaded) == 1:
            return next(iter(loaded.values()))
        raise WorkbenchError(f"{where}: no split {wanted!r}; it has {', '.join(map(repr, loaded))} (set split: NAME)")
    return loaded[wanted]


def open_arrow_file(path: Path) -> "Dataset":
    """A `.arrow` file `datasets` wrote (Arrow stream format), or an Arrow IPC file (Feather v2)."""
    from datasets import Dataset

    with _quiet_datasets():
        try:
            return Dataset.from_file(str(path))
        except Exception as stream_error:  # not a stream: try the IPC file format
            import pyarrow as pa
            import pyarrow.ipc as ipc

            try:
                with pa.memory_map(str(path)) as source:
                    return Dataset(ipc.open_file(source).read_all())
            except Exception:
                raise WorkbenchError(f"{path}: not a readable Arrow file: {first_line(stream_error)}") from None


def open_saved_dataset(path: Path, split: str | None) -> "Dataset":
    """A directory written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    from datasets import load_from_disk

    with _quiet_datasets():
        try:
            loaded = load_from_disk(str(path))
        except Exception as error:
            raise WorkbenchError(f"{path}: not a readable save_to_disk directory: {first_line(error)}") from None
    return _pick_split(loaded, split, str(path))


def open_cached_dataset(dataset_id: str, subset: str | None, split: str | None) -> "Dataset":
    """A Hub dataset id that an earlier `load_dataset(id)` already prepared in the local cache."""
    from datasets import load_dataset

    cache_dir = datasets_cache_dir()
    where = f"{dataset_id}" + (f" ({subset})" if subset else "")
    with _quiet_datasets(offline=True):
        try:
            loaded = load_dataset(dataset_id, subset, cache_dir=str(cache_dir))
        except ConnectionError:
            raise WorkbenchError(
                f"{where}: not in the local Hugging Face datasets cache ({cache_dir}); the workbench never downloads: "
                f"fetch it once online with python -c \"import datasets; datasets.load_dataset('{dataset_id}')\" "
                "or save it to a local file"
            ) from None
        except Exception as error:
            raise WorkbenchError(f"{where}: cannot read it from the local datasets cache: {first_line(error)}") from None
    return _pick_split(loaded, split, where)


def iter_rows(dataset: "Dataset", progress: Progress, stage: str) -> Iterator[dict]:
    """The dataset's rows as dicts, read in batches (progress after each)."""
    total = max(1, dataset.num_rows)
    done = 0
    for batch in dataset.iter(batch_size=ROWS_PER_BATCH):
        columns = list(batch)
        values = [batch[name] for name in columns]
        for row_values in zip(*values):
            yield dict(zip(columns, row_values))
        done += len(values[0]) if values else 0
        progress(stage, done / total)
