"""The field catalogue the form is built from: every field has help, text converts both ways."""

import pytest

from workbench.config.fields import USUAL_RANGES, config_differences, config_fields, field_spec
from workbench.config.presets import get_preset
from workbench.config.schema import RunConfig


def test_every_schema_field_has_help_text_and_every_usual_range_names_a_field():
    specs = config_fields()
    names = {spec.dotted for spec in specs}
    assert {"optimization.learning_rate", "method.target_modules", "devices.gpus", "prompts", "name"} <= names
    for spec in specs:
        assert len(spec.description) > 10, f"{spec.dotted} has no help text"
    assert set(USUAL_RANGES) <= names
    assert "1e-4" in field_spec("optimization.learning_rate").help_text()


@pytest.mark.parametrize(
    "dotted,text,value",
    [
        ("optimization.learning_rate", "2e-4", 2e-4),
        ("optimization.per_device_train_batch_size", "8", 8),
        ("optimization.neftune_noise_alpha", "", None),
        ("optimization.neftune_noise_alpha", "5", 5.0),
        ("method.target_modules", "all-linear", "all-linear"),
        ("method.target_modules", "q_proj, v_proj", ["q_proj", "v_proj"]),
        ("devices.gpus", "0,1", [0, 1]),
        ("devices.gpus", "all", "all"),
        ("data.packing", "off", False),
        ("prompts", "Who are you?\n\nWhat is 2+2?\n", ["Who are you?", "What is 2+2?"]),
        ("method.type", "qlora", "qlora"),
        ("method.target_modules", "", "all-linear"),
        ("evaluation.report_to", "", "none"),
        ("evaluation.report_to", "tensorboard", "tensorboard"),
        ("evaluation.report_to", "tensorboard, wandb", ["tensorboard", "wandb"]),
        ("optimization.extra", "", {}),
        ("optimization.extra", "adam_beta2: 0.95\nadam_epsilon: 1e-8", {"adam_beta2": 0.95, "adam_epsilon": 1e-8}),
    ],
)
def test_text_parses_into_the_schema_value_and_formats_back(dotted, text, value):
    spec = field_spec(dotted)
    assert spec.parse(text) == value
    assert spec.parse(spec.format(value)) == value


@pytest.mark.parametrize(
    "dotted,text,words",
    [
        ("optimization.learning_rate", "fast", "number"),
        ("optimization.per_device_train_batch_size", "2.5", "whole number"),
        ("devices.gpus", "first", "GPU indices"),
        ("method.type", "adapter", "lora, qlora, full"),
    ],
)
def test_unparseable_text_says_what_was_expected(dotted, text, words):
    with pytest.raises(ValueError, match=words):
        field_spec(dotted).parse(text)


def test_differences_list_changed_fields_in_schema_order():
    demo = get_preset("quick-demo-cpu").config()
    tweaked = demo.model_copy(update={"optimization": demo.optimization.model_copy(update={"learning_rate": 1e-4})})
    assert config_differences(tweaked, demo) == [("optimization.learning_rate", 1e-4, 2e-4)]
    fields = [dotted for dotted, _, _ in config_differences(demo, RunConfig())]
    assert fields.index("data.max_seq_length") < fields.index("optimization.num_train_epochs") < fields.index("prompts")
