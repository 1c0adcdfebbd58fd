"""`workbench config import` and `workbench config export`: write the translated file and print
one line per key (what it became, or why it was dropped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from workbench.config.dialects import KeyLine, Translation, dump_yaml, export_config, import_config
from workbench.config.fields import config_fields, get_value
from workbench.config.io import load_config, save_config
from workbench.errors import WorkbenchError
from workbench.io_checks import check_output_file
from workbench.runs.launch import config_for_run


def _refuse_overwrite(output: Path, force: bool) -> None:
    check_output_file(output, option=f"-o {output}")  # a folder, a read-only place, no space: before any work
    if output.exists() and not force:
        raise WorkbenchError(f"{output}: already exists; choose another name with -o or pass --force to overwrite it")


def import_command(source: str, output: Optional[str], dialect: Optional[str], force: bool) -> int:
    """Import FILE, write the workbench config to OUT and print the report."""
    result = import_config(source, dialect)
    target = Path(output) if output else Path(f"{Path(source).stem}.workbench.yaml")
    _refuse_overwrite(target, force)
    for line in result.report():
        print(line)
    save_config(result.config, target)
    lines = result.translation.lines
    mapped = sum(not line.dropped for line in lines if not line.default)
    dropped = sum(line.dropped for line in lines if not line.default)
    defaults = sum(line.default for line in lines)
    print(f"wrote {target} from {result.translation.tool} config {source}: {mapped} key(s) mapped, {dropped} dropped, "
          f"{defaults} {result.translation.tool} default(s) carried over; next: workbench config check {target}")
    return 0


def export_command(source: str, output: Optional[str], dialect: str, force: bool) -> int:
    """Export CFG for a tool, write it (and LLaMA-Factory's dataset_info.json) and print the report."""
    config = config_for_run(load_config(source))
    target = Path(output) if output else Path(f"{Path(source).stem}.{dialect}.yaml")
    _refuse_overwrite(target, force)
    translation = export_config(config, dialect, target.parent.resolve())
    _report_uncovered(translation, config)
    for line in translation.report():
        print(line)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_yaml(translation.values), encoding="utf-8")
    for name, data in translation.files.items():
        _merge_json(target.parent / name, data)
        print(f"wrote {target.parent / name} ({len(data)} entr{'y' if len(data) == 1 else 'ies'})")
    print(f"wrote {target} for {translation.tool}")
    return 0


def _report_uncovered(translation: Translation, config) -> None:
    """A line for every field set away from its default that no export line mentions."""
    covered = [line.key for line in translation.lines]
    for spec in config_fields():
        if any(key == spec.dotted or key.startswith(f"{spec.dotted}.") or key.startswith(f"{spec.dotted}[") for key in covered):
            continue
        if get_value(config, spec.dotted) != spec.default:
            translation.lines.append(KeyLine(spec.dotted, (), f"{translation.tool} has no equivalent"))


def _merge_json(path: Path, entries: dict) -> None:
    """Add entries to a JSON object file (dataset_info.json), refusing to change an existing entry."""
    existing: dict = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise WorkbenchError(f"{path}: exists but is not JSON; move it away and export again") from None
    for name, entry in entries.items():
        if name in existing and existing[name] != entry:
            raise WorkbenchError(f"{path}: already has a different entry {name!r}; move the file away or rename the source")
    path.write_text(json.dumps({**existing, **entries}, indent=2) + "\n", encoding="utf-8")
