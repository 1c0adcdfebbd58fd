"""Shared fixtures: a tiny random Llama model that loads through the same resolver as real ones."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# The CPU budget's claims (workbench/cpu_budget.py) of this test session only: the machine's own
# trainers and chats must not change the tests' thread counts or headers, nor the tests theirs.
# Under pytest-xdist each worker gets its own (workers inherit the controller's environment).
if "PYTEST_XDIST_WORKER" in os.environ or "WORKBENCH_CPU_BUDGET_DIR" not in os.environ:
    os.environ["WORKBENCH_CPU_BUDGET_DIR"] = tempfile.mkdtemp(prefix="workbench-test-cpu-budget-")


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The real default model (converted once into the user's cache)."""
    from workbench.models import resolve_model

    return resolve_model(None).path


@pytest.fixture(scope="session")
def default_tokenizer(default_model_dir):
    from workbench.models import load_tokenizer

    return load_tokenizer(default_model_dir)


def build_tiny_llama(directory: Path, tokenizer, *, seed: int = 0, attention_bias: bool = False) -> Path:
    """A 2-layer random Llama with the default model's tokenizer and chat template, saved as safetensors
    (`attention_bias`: q/k/v/o with biases, as in Qwen2-style models)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attention_bias=attention_bias,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def write_weightless_model(directory: Path, config: dict | None = None, width: int = 64) -> Path:
    """A model folder as `config check` reads it, with no real weights: config.json and a small
    safetensors file whose header names one attention and one MLP layer (`width` wide)."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config or {"model_type": "llama", "max_position_embeddings": 512}))
    layers = ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.0.mlp.down_proj")
    save_file({f"{name}.weight": np.zeros((width, width), dtype=np.float16) for name in layers}, str(directory / "model.safetensors"))
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, default_tokenizer) -> Path:
    """A tiny random Llama (hidden 32, 2 layers) saved to a temp dir; loads via workbench.models in well under a second."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), default_tokenizer)


@pytest.fixture()
def fake_adapter(tmp_path):
    """An adapter folder as the inference sources see it (they only look at files): a config and an
    empty weights file."""
    import json

    directory = tmp_path / "fake-adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    (directory / "adapter_model.safetensors").write_bytes(b"")
    return directory


@pytest.fixture
def fixed_devices():
    """A fixed CPU-only device report, so snapshots don't depend on the machine."""
    from workbench.devices import CpuInfo, DeviceReport

    return DeviceReport(cpu=CpuInfo("Test CPU", 2, 24 * 2**30, 20 * 2**30, frozenset()))
