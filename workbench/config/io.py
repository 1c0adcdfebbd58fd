"""Read and write run configs as YAML, with one clear line per problem."""

from __future__ import annotations

import difflib
import os
import tempfile
from pathlib import Path
from typing import Any

from workbench.config.schema import RunConfig, Section
from workbench.errors import WorkbenchError


class ConfigError(WorkbenchError):
    """A config with one or more problems; `problems` holds one line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems:\n" + "\n".join(problems))


def _section_fields(path: tuple) -> list[str]:
    """Known field names at a location in the schema, for 'did you mean'."""
    model: type[Section] = RunConfig
    for part in path:
        annotation = model.model_fields.get(str(part))
        if annotation is None or not isinstance(annotation.annotation, type) or not issubclass(annotation.annotation, Section):
            return []
        model = annotation.annotation
    return list(model.model_fields)


def format_validation_errors(error, source: str = "config") -> list[str]:
    """pydantic ValidationError -> ['file: section.field: message', ...]."""
    problems = []
    for item in error.errors():
        location = tuple(item["loc"])
        dotted = ".".join(str(part) for part in location) or "(top level)"
        if item["type"] == "extra_forbidden":
            known = _section_fields(location[:-1])
            close = difflib.get_close_matches(str(location[-1]), known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"{source}: {dotted}: unknown key{hint}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{source}: {dotted}: {message} (got {item.get('input')!r})")
    return problems


def resolve_config_path(value: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> Path:
    """A path named in a config (data.train_file, devices.deepspeed, ...) as a usable Path.

    Relative paths start from `base_dir` when given, else from the directory workbench runs in,
    like paths given to `TrainingArguments`; `~` expands to the home directory.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        return path
    return (Path(base_dir) if base_dir is not None else Path.cwd()) / path


def config_from_dict(data: Any, source: str = "config") -> RunConfig:
    from pydantic import ValidationError

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: expected a mapping of sections at the top level, got {type(data).__name__}"])
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(format_validation_errors(error, source)) from None


def load_config(path: str | os.PathLike) -> RunConfig:
    """Load and validate a YAML run config (schema only; see checks for environment checks)."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}{where}: {problem}"]) from None
    return config_from_dict(data, str(path))


def config_to_yaml(config: RunConfig) -> str:
    import yaml

    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def save_config(config: RunConfig, path: str | os.PathLike) -> Path:
    """Write the config atomically (a temp file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False)
    with handle:
        handle.write(config_to_yaml(config))
    # The temp file is private (0600); a config is an ordinary file, so keep the old mode or use 0644.
    os.chmod(handle.name, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    os.replace(handle.name, path)
    return path
