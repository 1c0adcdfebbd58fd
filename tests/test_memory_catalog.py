"""The built-in catalog: values that reproduce the published parameter counts, and name lookup."""

from __future__ import annotations

import pytest

from workbench.errors import WorkbenchError
from workbench.memory.catalog import CATALOG, find_catalog_name
from workbench.memory.spec import catalog_spec

# Parameter counts the model publishers state (model cards / safetensors index totals).
PUBLISHED_TOTALS = {
    "SmolLM2-135M": 134_515_008,
    "Qwen2.5-7B": 7_615_616_512,
    "Qwen2.5-72B": 72_706_203_648,
    "Qwen3-0.6B": 596_049_920,
    "Llama-3.2-1B": 1_235_814_400,
    "Llama-3.1-8B": 8_030_261_248,
    "Llama-3.1-70B": 70_553_706_496,
    "Mistral-7B-v0.3": 7_248_023_552,
    "Gemma-2-2B": 2_614_341_888,
    "Gemma-3-1B": 999_885_952,
    "Gemma-3-27B": 27_432_406_640,
    "Phi-3-mini": 3_821_079_552,
}

# The smallest model of each architecture layout, built for real on the meta device.
ONE_PER_LAYOUT = ["SmolLM2-135M", "Qwen2.5-0.5B", "Qwen3-0.6B", "Mistral-7B-v0.3", "Gemma-2-2B", "Gemma-3-1B",
                  "Gemma-3-4B", "Phi-3-mini", "Phi-4-mini"]

_SIGLIP_GEMMA3 = dict(model_type="siglip_vision_model", hidden_size=1152, intermediate_size=4304,
                      num_hidden_layers=27, num_attention_heads=16, image_size=896, patch_size=14,
                      vision_use_head=False)


@pytest.mark.parametrize("name", sorted(PUBLISHED_TOTALS))
def test_catalog_reproduces_published_parameter_counts(name):
    assert catalog_spec(name).total_params == PUBLISHED_TOTALS[name]


@pytest.mark.parametrize("name", ONE_PER_LAYOUT)
def test_formula_count_equals_the_meta_device_model(name):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = {k: v for k, v in CATALOG[name].items() if k not in ("model_type", "vision_params")}
    model_type = CATALOG[name]["model_type"]
    if model_type == "gemma3":
        config = AutoConfig.for_model("gemma3", text_config={**values, "model_type": "gemma3_text"},
                                      vision_config=_SIGLIP_GEMMA3, tie_word_embeddings=True)
    else:
        config = AutoConfig.for_model(model_type, **values)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    spec = catalog_spec(name)
    assert spec.total_params == sum(p.numel() for p in model.parameters())
    decoder_linears = {}
    for module_name, module in model.get_decoder().named_modules():
        if isinstance(module, torch.nn.Linear) and "vision" not in module_name:
            key = (module_name.rsplit(".", 1)[-1], module.in_features, module.out_features)
            decoder_linears[key] = decoder_linears.get(key, 0) + 1
    assert decoder_linears == {(s.name, s.in_features, s.out_features): s.count for s in spec.linears}


def test_every_catalog_entry_builds_a_consistent_spec():
    for name in CATALOG:
        spec = catalog_spec(name)
        assert spec.total_params > spec.linear_weight_params > 0
        assert spec.num_heads % spec.num_kv_heads == 0


def test_lookup_is_forgiving_about_case_owner_and_instruct_suffix():
    assert find_catalog_name("qwen2.5-7b") == "Qwen2.5-7B"
    assert find_catalog_name("Qwen/Qwen2.5-7B-Instruct") == "Qwen2.5-7B"
    assert find_catalog_name("google/gemma-2-9b-it") == "Gemma-2-9B"
    assert find_catalog_name("meta-llama/Llama-3.3-70B-Instruct") == "Llama-3.1-70B"
    assert find_catalog_name("HuggingFaceTB/SmolLM2-135M-Instruct") == "SmolLM2-135M"
    assert find_catalog_name("gpt-5") is None


def test_unknown_name_suggests_close_matches():
    with pytest.raises(WorkbenchError, match="did you mean.*qwen2.5-7b"):
        catalog_spec("qwen2.5-7")
