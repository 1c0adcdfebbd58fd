"""Read and write run configs as YAML, with one clear line per problem."""

from __future__ import annotations

import copy
import difflib
import functools
import os
import re
import tempfile
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from workbench.config.schema import RunConfig, Section
from workbench.data.chat_templates import is_template_name
from workbench.data.data_refs import DATASET_ID, ENTRY_SEPARATOR, FILE_KINDS
from workbench.errors import WorkbenchError
from workbench.io_checks import MAX_CONFIG_BYTES, read_input_text


class ConfigError(WorkbenchError):
    """A config with one or more problems; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(problems))


def _schema_sections() -> dict[tuple[str, ...], list[str]]:
    """Every section of the schema (by its path of field names, list positions left out) -> its
    field names, for "did you mean" across all sections."""
    sections: dict[tuple[str, ...], list[str]] = {}

    def sections_in(annotation: Any) -> list[type[Section]]:
        if isinstance(annotation, type) and issubclass(annotation, Section):
            return [annotation]
        return [found for argument in typing.get_args(annotation) for found in sections_in(argument)]

    def walk(model: type[Section], path: tuple[str, ...]) -> None:
        sections[path] = list(model.model_fields)
        for name, info in model.model_fields.items():
            for inner in sections_in(info.annotation):
                walk(inner, (*path, name))

    walk(RunConfig, ())
    return sections


def unknown_key_hint(location: tuple) -> str:
    """What to say after "unknown key" at `location`: where a key of that name belongs (searched in
    every section), a close spelling, or that it is a TrainingArguments field for optimization.extra."""
    key = str(location[-1])
    here = tuple(str(part) for part in location[:-1] if not isinstance(part, int))
    sections = _schema_sections()
    homes = [path for path, names in sections.items() if key in names and path != here]
    if homes:
        home = ".".join(homes[0]) or "the top level"
        return f"; {key} belongs under {home} ({'.'.join((*homes[0], key))})"
    close = difflib.get_close_matches(key, sections.get(here, []), n=1)
    if close:
        return f"; did you mean '{close[0]}'?"
    dotted_names = {".".join((*path, name)): name for path, names in sections.items() for name in names}
    close = difflib.get_close_matches(key, list(dotted_names.values()), n=1)
    if close:
        dotted = next(dotted for dotted, name in dotted_names.items() if name == close[0])
        return f"; did you mean '{dotted}'?"
    return _training_arguments_hint(key)


def _training_arguments_hint(key: str) -> str:
    from workbench.config.hf_arguments import CONFIG_FIELDS, TRAINER_NEEDS, training_argument_fields  # cycle: config.hf_arguments -> config.distributed -> config.io

    if key not in training_argument_fields():
        return ""
    if key in CONFIG_FIELDS:
        return f"; TrainingArguments.{key} comes from {CONFIG_FIELDS[key]}"
    if key in TRAINER_NEEDS:
        return f"; TrainingArguments.{key} is set by the workbench ({TRAINER_NEEDS[key]})"
    return f"; it is a TrainingArguments field: set it under optimization.extra ({key}: ...)"


def _override_for(location: tuple, overrides: Sequence[Override]) -> Override | None:
    """The override that produced the value at `location` (the last one wins, as it did in the config)."""
    path = tuple(str(part) for part in location)
    for override in reversed(overrides):
        parts = tuple(override.dotted.split("."))
        if path[: len(parts)] == parts or parts[: len(path)] == path:
            return override
    return None


def format_validation_errors(error, source: str = "config", overrides: Sequence[Override] = ()) -> list[str]:
    """pydantic ValidationError -> ['file: section.field: message', ...]; a problem an override
    caused names the override instead of the file."""
    problems = []
    for item in error.errors():
        location = tuple(item["loc"])
        dotted = ".".join(str(part) for part in location) or "(top level)"
        override = _override_for(location, overrides)
        where = f"override {override.text}" if override is not None else source
        if item["type"] == "extra_forbidden":
            problems.append(f"{where}: {dotted}: unknown key{unknown_key_hint(location)}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {dotted}: {message} (got {item.get('input')!r})")
    return problems


@dataclass(frozen=True)
class Override:
    """One `section.field=value` from the command line; the value is read as YAML (1e-5, true,
    [q_proj, v_proj], {adam_beta2: 0.95})."""

    text: str
    dotted: str
    value: Any


def parse_override(text: str) -> Override:
    """`optimization.learning_rate=1e-5` -> Override; a ConfigError when it has no `=` or no field."""
    dotted, equals, raw = text.partition("=")
    dotted = dotted.strip()
    if not equals or not dotted or not all(part.strip() for part in dotted.split(".")):
        raise ConfigError([f"override {text}: expected section.field=value, e.g. optimization.learning_rate=1e-5"])
    import yaml

    try:
        value = load_yaml(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        raise ConfigError([f"override {text}: not a YAML value ({getattr(error, 'problem', None) or 'invalid YAML'})"]) from None
    return Override(text, dotted, value)


def apply_overrides(data: dict, overrides: Sequence[Override]) -> dict:
    """A copy of the config mapping with each override's value set (sections created as needed)."""
    data = copy.deepcopy(data)
    for override in overrides:
        *sections, name = override.dotted.split(".")
        target = data
        for depth, part in enumerate(sections, start=1):
            node = target.get(part)
            if node is None:
                node = target[part] = {}
            elif not isinstance(node, dict):
                section = ".".join(sections[:depth])
                raise ConfigError([f"override {override.text}: {section} holds a value, not fields"])
            target = node
        target[name] = override.value
    return data


@functools.cache
def _config_loader():
    import yaml

    class ConfigLoader(yaml.SafeLoader):
        """YAML 1.1 reads a number with an exponent but no dot (1e-5, 2e-4) as a string; configs
        write learning rates that way, and pass-through values reach TrainingArguments unconverted."""

    ConfigLoader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )
    return ConfigLoader


def load_yaml(text: str, label: str = "config") -> Any:
    """YAML as configs are read: safe, with 1e-5 a number, bounded in depth and alias expansion."""
    from workbench.config.yaml_limits import safe_load_bounded  # cycle: config.yaml_limits -> config -> config.store -> config.fields -> config.io

    return safe_load_bounded(text, label, _config_loader())


def resolve_config_path(value: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> Path:
    """A path named in a config (data.train_file, devices.deepspeed, ...) as a usable Path.

    Relative paths start from `base_dir` when given, else from the directory workbench runs in,
    like paths given to `TrainingArguments`; `~` expands to the home directory.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    return (Path(base_dir) if base_dir is not None else Path.cwd()) / path


PATH_FIELDS = {
    "data.train_file": "data",
    "data.validation_file": "data",
    "data.chat_template": "template",
    "model.name_or_path": "model",
    "evaluation.eval_file": "file",
    "devices.accelerate_config": "file",
    "devices.deepspeed": "deepspeed",
}
"""Fields that may hold a path (besides each data.sources entry's path and validation_file), by
kind: "data" (a data path, `#entry` suffix allowed; or a cached dataset id), "file", "model" (a
local model directory, or a Hub id / "default"), "template" (a built-in name, or a .jinja file),
"deepspeed" (a shipped preset name, or a JSON file). The form completes these as paths."""
SOURCE_PATH_FIELDS = {"path": "data", "validation_file": "data"}


def _path_fields(config: RunConfig) -> list[tuple[Any, str, str]]:
    """(section object, attribute, kind) of every field of `config` that may hold a path."""
    fields = []
    for dotted, kind in PATH_FIELDS.items():
        section, attribute = dotted.split(".")
        fields.append((getattr(config, section), attribute, kind))
    for source in config.data.sources:
        fields += [(source, attribute, kind) for attribute, kind in SOURCE_PATH_FIELDS.items()]
    return fields


def _section_name(config: RunConfig, owner: Any) -> str:
    """The dotted section of `owner` in `config` ("data", "data.sources", "model", ...)."""
    if owner in config.data.sources:
        return "data.sources"
    return next(name for name in ("data", "model", "evaluation", "devices") if getattr(config, name) is owner)


def _rebased(value: str | None, kind: str, from_dir: Path, to_dir: Path, keep_if_found_in_to: bool) -> str | None:
    """`value`, a path relative to `from_dir`, as a path relative to `to_dir` (None, names, ids, absolute
    and `~` paths unchanged). With `keep_if_found_in_to`, a relative path that names nothing from
    `from_dir` but something from `to_dir` is kept: a config written before paths followed their file."""
    from workbench.config.distributed import DEEPSPEED_PRESETS  # cycle: config.distributed -> config.io

    if not value:
        return value
    if (kind == "template" and is_template_name(value)) or (kind == "deepspeed" and value in DEEPSPEED_PRESETS):
        return value
    if kind == "model" and value == "default":
        return value
    head, separator, entry = value.rpartition(ENTRY_SEPARATOR) if kind == "data" and ENTRY_SEPARATOR in value else (value, "", "")
    if value.startswith("~") or Path(head).is_absolute():
        return value
    if not (from_dir / head).exists():
        if kind == "model":
            return value  # a Hub id
        if kind == "data" and DATASET_ID.match(head) and Path(head).suffix.lower() not in FILE_KINDS:
            return value  # a cached dataset id
        if keep_if_found_in_to and (to_dir / head).exists():
            return value
    return os.path.relpath(from_dir / head, to_dir) + separator + entry


def rebase_paths(
    config: RunConfig,
    from_dir: str | os.PathLike,
    to_dir: str | os.PathLike,
    *,
    keep_if_found_in_to: bool = False,
    leave: Sequence[str] = (),
) -> RunConfig:
    """A copy of `config` whose relative paths, meant from `from_dir`, are written from `to_dir`.

    Configs keep their paths relative to the YAML file that holds them (`save_config` writes them
    so, `load_config` reads them so), while the workbench works with paths from the current
    directory; so a config saved anywhere checks and trains from its own folder. Absolute paths stay
    absolute; names (built-in templates, DeepSpeed presets, Hub and dataset ids) stay as they are.

    Args:
        leave: dotted fields (or sections) to leave as they are: those a command-line override set.
    """
    source, target = Path(from_dir).resolve(), Path(to_dir).resolve()
    if source == target:
        return config
    moved = config.model_copy(deep=True)
    for owner, attribute, kind in _path_fields(moved):
        dotted = f"{_section_name(moved, owner)}.{attribute}"
        if any(dotted == name or dotted.startswith(f"{name}.") for name in leave):
            continue
        setattr(owner, attribute, _rebased(getattr(owner, attribute), kind, source, target, keep_if_found_in_to))
    return moved


def config_from_dict(data: Any, source: str = "config", overrides: Sequence[str | Override] = ()) -> RunConfig:
    """Validate a config mapping, with command-line overrides applied first.

    Raises:
        ConfigError: one line per problem, naming `source` or the override that caused it.
    """
    from pydantic import ValidationError

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping of sections at the top level, got {type(data).__name__}"])
    parsed = [item if isinstance(item, Override) else parse_override(item) for item in overrides]
    data = apply_overrides(data, parsed)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_errors(error, source, parsed)) from None


def load_config(path: str | os.PathLike, overrides: Sequence[str | Override] = ()) -> RunConfig:
    """Load and validate a YAML run config (schema only; see checks for environment checks).

    Relative paths in the file are read from the file's folder and returned relative to the current
    directory (`rebase_paths`); a path that names nothing from the file's folder but something from
    the current directory, as a file saved before paths followed their file may hold, is kept.

    Args:
        overrides: `section.field=value` settings applied over the file (`workbench train CFG
            optimization.learning_rate=1e-5`), validated like the file's own; paths in them are
            read from the current directory, as typed on a command line.
    """
    import yaml

    path = Path(path)
    try:
        text = read_input_text(path, max_bytes=MAX_CONFIG_BYTES)
        data = load_yaml(text, str(path))
    except ConfigError:
        raise
    except WorkbenchError as error:
        raise ConfigError([str(error)]) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}{where}: {problem}"]) from None
    parsed = [item if isinstance(item, Override) else parse_override(item) for item in overrides]
    config = config_from_dict(data, str(path), parsed)
    return rebase_paths(config, path.parent, Path.cwd(), keep_if_found_in_to=True, leave=[item.dotted for item in parsed])


def config_to_yaml(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_config(config: RunConfig, path: str | os.PathLike) -> Path:
    """Write the config atomically (a temp file renamed into place), its relative paths written from
    the file's folder (`rebase_paths`), so `load_config`, and `workbench config check` run from that
    folder, find them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            handle.write(config_to_yaml(rebase_paths(config, Path.cwd(), path.parent)))
        # The temp file is private (0600); a config is an ordinary file, so keep the old mode or use 0644.
        os.chmod(handle.name, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(handle.name, path)
    except BaseException:  # a full disk: no temp file is left behind
        Path(handle.name).unlink(missing_ok=True)
        raise
    return path
