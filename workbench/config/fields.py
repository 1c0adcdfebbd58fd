"""The run config as a flat list of editable fields: kind, help text with the usual range, and
text <-> value conversion. The Hyperparameters form and `workbench config` read this, so a field
added to the schema appears in both without further code.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, Mapping, Union

from workbench.config.io import load_yaml
from workbench.config.schema import RunConfig, Section

FieldKind = Literal["choice", "bool", "int", "float", "text", "names", "gpus", "lines", "yaml"]

# The usual range of a field, from common SFT practice, shown next to its description.
USUAL_RANGES: dict[str, str] = {
    "data.max_seq_length": "cover most samples (check the Data pane's length histogram); 512–4096 is common",
    "data.validation_split": "0.05–0.1; a few hundred rows is enough to see overfitting",
    "method.r": "8–64; 16 is a good start, higher only for large or very different data",
    "method.lora_alpha": "usually 2 × r (scale 2), or equal to r",
    "method.lora_dropout": (
        "0 (off, the default) unless the run overfits, then 0.05–0.1; on the CPU 0.05 makes each step "
        "~13% slower (one mask per input shared by the adapters that read it; PEFT's own mask per adapter "
        "cost ~45%, measured on the quick-demo config)"
    ),
    "optimization.torch_compile": (
        "off for short runs; on for runs of several hundred steps: the layers compile once (on 2 cores "
        "~1.5 min the first time on a machine, ~10–20 s once its compile cache holds them) and each step "
        "then runs 1.1–1.4× faster (measured on the quick-demo config)"
    ),
    "method.target_modules": "all-linear adapts attention and MLP layers and usually learns best",
    "optimization.learning_rate": "LoRA/QLoRA 1e-4–2e-4; full fine-tuning 1e-5–5e-5",
    "optimization.num_train_epochs": "1–3; fewer for large datasets, more risks memorising the data",
    "optimization.per_device_train_batch_size": "as large as memory allows; raise gradient_accumulation_steps instead",
    "optimization.gradient_accumulation_steps": "choose so batch × accumulation × processes ≈ 16–64",
    "optimization.warmup_ratio": "0.03–0.1 (3–10% of the steps)",
    "optimization.warmup_steps": "0 (use warmup_ratio), or a few tens to hundreds of steps",
    "optimization.weight_decay": "0–0.1; small, 0.01 is common for full fine-tuning",
    "optimization.max_grad_norm": "1.0",
    "optimization.neftune_noise_alpha": "5–15 when used; leave empty to turn off",
    "evaluation.eval_steps": "10–20 evaluations over the run",
    "evaluation.early_stopping_patience": "2–5 evaluations",
    "evaluation.save_total_limit": "1–3 (each checkpoint costs disk)",
}

# What an empty box means, or an example, shown greyed in the empty editor.
PLACEHOLDERS: dict[str, str] = {
    "data.train_file": "e.g. sample_data/identity_alpaca.json",
    "data.validation_file": "empty = hold out validation_split of train_file",
    "data.system_prompt": "empty = the chat template's own default",
    "optimization.neftune_noise_alpha": "empty = off",
    "evaluation.early_stopping_patience": "empty = off",
    "devices.deepspeed": "empty = off; zero2, zero3 or the path of a DeepSpeed JSON",
    "devices.accelerate_config": "empty = one machine (an accelerate config file for several)",
    "devices.fsdp": "empty = off",
}


@dataclass(frozen=True)
class FieldSpec:
    """One editable field of the run config."""

    dotted: str
    """Where it lives, e.g. "optimization.learning_rate" ("prompts" at the top level)."""
    kind: FieldKind
    description: str
    default: Any
    choices: tuple[str, ...] = ()
    optional: bool = False
    """Empty text means None (the field is off)."""

    @property
    def section(self) -> str:
        return self.dotted.split(".")[0] if "." in self.dotted else "run"

    @property
    def name(self) -> str:
        return self.dotted.rsplit(".", 1)[-1]

    @property
    def placeholder(self) -> str:
        return PLACEHOLDERS.get(self.dotted, "empty = off" if self.optional else "")

    @property
    def usual(self) -> str | None:
        return USUAL_RANGES.get(self.dotted)

    def help_text(self) -> str:
        usual = f" Usual: {self.usual}." if self.usual else ""
        return f"{self.description}.{usual}"

    def format(self, value: Any) -> str:
        """The value as the form shows it."""
        if value is None:
            return ""
        if self.kind in ("names", "gpus") and isinstance(value, list):
            return ", ".join(str(item) for item in value)
        if self.kind == "lines":
            return "\n".join(value)
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "yaml":
            return _yaml_text(value)
        return str(value)

    def parse(self, text: str) -> Any:
        """Text from the form -> a value for the schema; ValueError says what is wrong."""
        text = text.strip() if self.kind != "lines" else text
        if self.optional and text == "":
            return None
        if self.kind == "int":
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {text!r}") from None
        if self.kind == "float":
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"expected a number such as 2e-4, got {text!r}") from None
        if self.kind == "bool":
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if self.kind == "names":
            if text == "":
                return self.default if isinstance(self.default, str) else []
            if text in self.choices:  # a name the field takes on its own (all-linear, none)
                return text
            return [part.strip() for part in text.split(",") if part.strip()]
        if self.kind == "gpus":
            if text in ("", "all"):
                return "all"
            try:
                return [int(part) for part in text.split(",") if part.strip()]
            except ValueError:
                raise ValueError(f"expected 'all' or GPU indices like 0,1, got {text!r}") from None
        if self.kind == "lines":
            return [line.strip() for line in text.splitlines() if line.strip()]
        if self.kind == "yaml":
            return _yaml_value(text, {} if isinstance(self.default, dict) else [])
        if self.kind == "choice" and text not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {text!r}")
        return text


def _is_optional(annotation: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) < len(typing.get_args(annotation)):
            return True, args[0] if len(args) == 1 else Union[tuple(args)]
    return False, annotation


def _is_structured(annotation: Any) -> bool:
    """A section, a list of sections (data.columns, data.sources) or a free mapping
    (optimization.extra): edited as YAML text."""
    if typing.get_origin(annotation) is dict:
        return True
    if typing.get_origin(annotation) is list:
        annotation = typing.get_args(annotation)[0]
    return isinstance(annotation, type) and issubclass(annotation, Section)


def _yaml_text(value: Any) -> str:
    import yaml

    if isinstance(value, dict):
        plain: Any = value
    elif isinstance(value, list):
        plain = [item.model_dump(mode="json", exclude_none=True) for item in value]
    else:
        plain = value.model_dump(mode="json", exclude_none=True)
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True).strip() if plain else ""


def _yaml_value(text: str, empty: Any) -> Any:
    import yaml

    try:
        value = load_yaml(text) if text.strip() else empty
    except yaml.YAMLError as error:
        raise ValueError(f"expected YAML: {str(error).splitlines()[0]}") from None
    return value


def _kind_of(annotation: Any) -> tuple[FieldKind, tuple[str, ...]]:
    origin = typing.get_origin(annotation)
    if _is_structured(annotation):
        return "yaml", ()
    if origin is Literal:
        return "choice", tuple(str(arg) for arg in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        args = typing.get_args(annotation)
        lists = [arg for arg in args if typing.get_origin(arg) is list]
        if lists and typing.get_args(lists[0]) == (int,):
            return "gpus", ()
        if lists:
            single = [str(name) for arg in args if typing.get_origin(arg) is Literal for name in typing.get_args(arg)]
            return "names", tuple(single)
    if origin is list:
        return "lines", ()
    if annotation is bool:
        return "bool", ()
    if annotation is int:
        return "int", ()
    if annotation is float:
        return "float", ()
    return "text", ()


def _specs_of(model: type[Section], prefix: str) -> list[FieldSpec]:
    specs = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, Section):
            specs.extend(_specs_of(annotation, f"{prefix}{name}."))
            continue
        optional, inner = _is_optional(annotation)
        kind, choices = _kind_of(inner)
        default = info.get_default(call_default_factory=True)
        specs.append(FieldSpec(f"{prefix}{name}", kind, info.description or "", default, choices, optional))
    return specs


def config_fields() -> list[FieldSpec]:
    """Every editable field in schema order; the top-level ones (name, prompts) are in section "run"."""
    return _specs_of(RunConfig, "")


def field_spec(dotted: str) -> FieldSpec:
    for spec in config_fields():
        if spec.dotted == dotted:
            return spec
    raise KeyError(f"unknown config field {dotted!r}")


def get_value(config: RunConfig, dotted: str) -> Any:
    """The value of a dotted field, e.g. get_value(config, "optimization.learning_rate")."""
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def with_values(config: RunConfig, values: Mapping[str, Any]) -> RunConfig:
    """A new `config` with dotted fields set, validated together by the schema (pydantic's
    ValidationError for a refused value or combination; KeyError for an unknown field)."""
    data = config.model_dump()
    for dotted, value in values.items():
        *sections, name = dotted.split(".")
        target = data
        for section in sections:
            target = target[section]
        if name not in target:
            raise KeyError(f"unknown config field {dotted!r}")
        target[name] = value
    return RunConfig.model_validate(data)


def config_differences(ours: RunConfig, theirs: RunConfig) -> list[tuple[str, Any, Any]]:
    """(field, our value, their value) for every field that differs, in schema order."""
    return [
        (spec.dotted, get_value(ours, spec.dotted), get_value(theirs, spec.dotted))
        for spec in config_fields()
        if get_value(ours, spec.dotted) != get_value(theirs, spec.dotted)
    ]
