"""Run configs in the field's dialects: import a LLaMA-Factory or axolotl training YAML into a
workbench config, and export a workbench config back, with one line per key saying what it became.

Each dialect is a table (`llamafactory.py`, `axolotl.py`): a source key -> a rule that maps its
value onto workbench fields (or drops it, saying why), then a `finish` step for what the file leaves
to the tool's own defaults (LLaMA-Factory's lora_alpha = 2 × lora_rank, axolotl's 3% warm-up, …),
so the imported run trains with the same numbers, not with the workbench's defaults.
A key with no workbench field of its own that TrainingArguments knows goes to optimization.extra.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from workbench.config.hf_arguments import CONFIG_FIELDS, TRAINER_NEEDS, pass_through_problems, training_argument_fields
from workbench.config.schema import RunConfig
from workbench.config.yaml_limits import safe_load_bounded
from workbench.errors import WorkbenchError
from workbench.io_checks import MAX_CONFIG_BYTES, read_input_text

DIALECTS = ("llamafactory", "axolotl")


def format_value(value: Any) -> str:
    """A value as the report shows it (strings bare, the rest as JSON)."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


@dataclass(frozen=True)
class KeyLine:
    """What became of one key: the workbench fields it set, or why it was dropped.

    Attributes:
        key: the key as the source file (or config) names it.
        fields: (target field, value) pairs it set; empty when it was dropped.
        why: for a dropped key the reason; for a mapped one an optional note.
        default: the line is a default of the source tool that the file leaves implicit.
    """

    key: str
    fields: tuple[tuple[str, Any], ...] = ()
    why: str = ""
    default: bool = False

    @property
    def dropped(self) -> bool:
        return not self.fields

    def text(self, tool: str = "") -> str:
        if self.fields:
            body = "mapped to " + ", ".join(f"{target} = {format_value(value)}" for target, value in self.fields)
            if self.why:
                body += f" ({self.why})"
        else:
            body = f"dropped: {self.why}"
        label = f"{self.key} (not in the file: {tool} default)" if self.default else self.key
        return f"{label}: {body}"


class Translation:
    """One import or export under way: the source, the values set so far and a line per key."""

    def __init__(self, tool: str, data: Mapping[str, Any], source: Optional[Path] = None):
        self.tool = tool
        self.data = data
        self.source = source
        self.values: dict[str, Any] = {}
        self.lines: list[KeyLine] = []
        self.files: dict[str, Any] = {}
        """Export only: further files to write beside the output (file name -> JSON data)."""

    def has(self, key: str) -> bool:
        """The source sets `key` to something other than empty."""
        return not is_empty(self.data.get(key))

    def get(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if is_empty(value) else value

    def map(self, key: str, fields: Mapping[str, Any], why: str = "", *, default: bool = False) -> None:
        """`key` sets these target fields (dotted workbench fields on import, keys on export)."""
        self.values.update(fields)
        self.lines.append(KeyLine(key, tuple(fields.items()), why, default))

    def drop(self, key: str, why: str) -> None:
        self.lines.append(KeyLine(key, (), why))

    def default(self, key: str, fields: Mapping[str, Any], why: str = "") -> None:
        """A default of the source tool the file does not state, set so the run trains the same way."""
        self.map(key, fields, why, default=True)

    def report(self) -> list[str]:
        return [line.text(self.tool) for line in self.lines]


Rule = Callable[[Translation, str, Any], None]


def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def to(target: str, convert: Callable[[Any], Any] | None = None, why: str = "") -> Rule:
    """A rule: the key's value (converted) goes to one target field."""

    def rule(translation: Translation, key: str, value: Any) -> None:
        try:
            converted = convert(value) if convert else value
        except (TypeError, ValueError) as error:
            translation.drop(key, f"cannot read {format_value(value)}: {error}")
            return
        translation.map(key, {target: converted}, why)

    return rule


def dropped(why: str) -> Rule:
    """A rule: the key has no workbench equivalent (or needs none), for this reason."""

    def rule(translation: Translation, key: str, value: Any) -> None:
        translation.drop(key, why)

    return rule


def as_float(value: Any) -> float:
    return float(value)  # YAML reads 1e-4 (no dot) as a string


def as_int(value: Any) -> int:
    number = float(value)
    if number != int(number):
        raise ValueError("expected a whole number")
    return int(number)


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("expected true or false")


@dataclass
class Dialect:
    """A tool's config vocabulary: its keys' rules, what finishes an import, and how to tell its files."""

    name: str
    title: str
    rules: dict[str, Rule]
    finish: Callable[[Translation], None]
    markers: tuple[str, ...]
    export: Callable[["RunConfig", Path], Translation]


def _dialect(name: str) -> Dialect:
    if name == "llamafactory":
        from workbench.config.dialects.llamafactory import DIALECT  # cycle: config.dialects.llamafactory -> config.dialects
    elif name == "axolotl":
        from workbench.config.dialects.axolotl import DIALECT  # cycle: config.dialects.axolotl -> config.dialects
    else:
        raise WorkbenchError(f"unknown dialect {name!r}; expected one of {', '.join(DIALECTS)}")
    return DIALECT


def detect_dialect(data: Mapping[str, Any], source: str) -> str:
    """llamafactory or axolotl, from the keys only one of them uses."""
    scores = {name: sum(key in data for key in _dialect(name).markers) for name in DIALECTS}
    best = max(scores, key=scores.get)
    if scores[best] == 0 or list(scores.values()).count(scores[best]) > 1:
        raise WorkbenchError(
            f"{source}: cannot tell whether this is a LLaMA-Factory or an axolotl config (no keys only one of them "
            "uses, such as model_name_or_path / base_model); name it with --from llamafactory|axolotl"
        )
    return best


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping, or one WorkbenchError line."""
    import yaml

    text = read_input_text(path, max_bytes=MAX_CONFIG_BYTES)
    try:
        data = safe_load_bounded(text, str(path))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise WorkbenchError(f"{path}{where}: {getattr(error, 'problem', None) or 'invalid YAML'}") from None
    if not isinstance(data, dict):
        raise WorkbenchError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


@dataclass
class ImportResult:
    """An imported config and the report of every key."""

    config: "RunConfig"
    dialect: str
    translation: Translation

    def report(self) -> list[str]:
        return self.translation.report()


def import_config(path: str | Path, dialect: Optional[str] = None) -> ImportResult:
    """Read a LLaMA-Factory or axolotl YAML (detected unless `dialect` names it) as a RunConfig.

    Every top-level key of the file gets one line; the tool's implicit defaults that differ from
    the workbench's get lines of their own. Values a workbench field refuses are dropped with the
    field's message, so the result always validates.
    """
    path = Path(path)
    data = read_yaml_mapping(path)
    name = dialect or detect_dialect(data, str(path))
    chosen = _dialect(name)
    translation = Translation(chosen.title, data, path)
    for key, value in data.items():
        _apply_rule(chosen, translation, str(key), value)
    chosen.finish(translation)
    return ImportResult(_build_config(translation), name, translation)


def _apply_rule(dialect: Dialect, translation: Translation, key: str, value: Any) -> None:
    if is_empty(value):
        translation.drop(key, "empty in the file: nothing to set")
        return
    rule = dialect.rules.get(key)
    if rule is not None:
        rule(translation, key, value)
        return
    pass_through(translation, key, value)


def pass_through(translation: Translation, key: str, value: Any) -> None:
    """A key no rule names: TrainingArguments' own fields go to optimization.extra, the rest is dropped."""
    if key == "push_to_hub" or key.startswith("hub_"):
        translation.drop(key, "nothing is uploaded; `workbench export` writes the adapter or the merged model")
    elif key in CONFIG_FIELDS:
        translation.drop(key, f"the workbench sets it from {CONFIG_FIELDS[key]}")
    elif key in TRAINER_NEEDS:
        translation.drop(key, f"nothing to set: {TRAINER_NEEDS[key]}")
    elif key in training_argument_fields():
        translation.map(key, {f"optimization.extra.{key}": value}, "a TrainingArguments field, passed through")
    else:
        translation.drop(key, f"not a {translation.tool} setting the workbench has an equivalent for")


def _build_config(translation: Translation) -> "RunConfig":
    """The RunConfig the lines describe; a value a field refuses turns its line into a dropped one."""
    from pydantic import ValidationError

    config = RunConfig()
    extra: dict[str, Any] = {}
    for index, line in enumerate(translation.lines):
        problem = None
        for target, value in line.fields:
            if target.startswith("optimization.extra."):
                extra[target.removeprefix("optimization.extra.")] = value
                continue
            try:
                _assign(config, target, value)
            except ValidationError as error:
                problem = f"{target}: {error.errors()[0]['msg'].removeprefix('Value error, ')} (got {format_value(value)})"
                break
        if problem:
            translation.lines[index] = KeyLine(line.key, (), problem, line.default)
    if extra:
        config.optimization.extra = extra
        refused = dict(pass_through_problems(config, construct=False))
        if refused:
            config.optimization.extra = {key: value for key, value in extra.items() if f"optimization.extra.{key}" not in refused}
            for index, line in enumerate(translation.lines):
                messages = [refused[target] for target, _ in line.fields if target in refused]
                if messages:
                    translation.lines[index] = KeyLine(line.key, (), messages[0], line.default)
    return config


def _assign(config: "RunConfig", target: str, value: Any) -> None:
    *sections, name = target.split(".")
    holder: Any = config
    for section in sections:
        holder = getattr(holder, section)
    setattr(holder, name, value)


def export_config(config: "RunConfig", dialect: str, destination: Path) -> Translation:
    """The config in a tool's own keys (`translation.values`), with one line per workbench field;
    `destination` is the folder the output goes to (LLaMA-Factory's dataset_info.json goes there too)."""
    return _dialect(dialect).export(config, destination)


def dump_yaml(values: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(values), sort_keys=False, allow_unicode=True)
