import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench import models
from workbench.errors import WorkbenchError
from workbench.paths import cache_dir


def test_cache_dir_respects_xdg_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("WORKBENCH_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "sft-workbench"
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "env"))
    assert cache_dir() == tmp_path / "env"
    assert cache_dir(tmp_path / "flag") == tmp_path / "flag"
    assert models.default_model_cache(tmp_path / "flag") == tmp_path / "flag" / "models" / "SmolLM2-135M-Instruct"


def test_tiny_local_model_resolves_and_loads(tiny_model_dir):
    resolved = models.resolve_model(str(tiny_model_dir))
    assert resolved.source == "local" and resolved.path == tiny_model_dir.resolve()
    model = models.load_model(resolved)
    tokenizer = models.load_tokenizer(resolved)
    assert model.config.num_hidden_layers == 2
    assert tokenizer.chat_template


def test_default_model_resolves_to_a_complete_safetensors_cache(default_model_dir):
    assert (default_model_dir / "model.safetensors").is_file()
    marker = json.loads((default_model_dir / models.CACHE_MARKER).read_text())
    assert marker["format_version"] == models.CACHE_FORMAT_VERSION
    start = time.perf_counter()
    again = models.resolve_model("default")
    assert again.path == default_model_dir
    assert time.perf_counter() - start < 1.0  # cached: no second conversion


def test_a_cache_without_its_marker_is_not_trusted(tmp_path):
    gguf = models.default_gguf_path()
    half = tmp_path / "models" / "SmolLM2-135M-Instruct"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    (half / "model.safetensors").write_bytes(b"partial")
    assert not models._cache_is_complete(half, gguf)


def test_killed_conversion_leaves_nothing_trusted(tmp_path):
    """kill -9 in the middle of a conversion: no complete cache appears, so the next run converts again."""
    env = {**os.environ, "WORKBENCH_CACHE_DIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "workbench", "models", "default"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    models_dir = tmp_path / "models"
    deadline = time.monotonic() + 60
    # The staging folder appears when the weights start being written; on a CPU with AMX the whole
    # save takes under a second, so kill at once rather than after a pause that may outlast it.
    while time.monotonic() < deadline and not (models_dir.exists() and any(models_dir.glob(".*partial*"))):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not models.is_default_model_cached(tmp_path)
    assert not (models_dir / "SmolLM2-135M-Instruct" / models.CACHE_MARKER).exists()


def test_two_processes_on_a_fresh_cache_convert_once(monkeypatch, tmp_path):
    """Two resolvers at once (the TUI and a CLI command on a fresh machine): the second waits for the
    first's conversion and reuses it instead of replacing the directory the first is loading."""
    import threading

    conversions = []
    first_is_converting = threading.Event()

    def slow_convert(target, gguf, progress):
        conversions.append(threading.current_thread().name)
        first_is_converting.set()
        time.sleep(0.5)
        target.mkdir(parents=True)
        (target / models.CACHE_MARKER).write_text("done")

    monkeypatch.setattr(models, "convert_default_model", slow_convert)
    monkeypatch.setattr(models, "_cache_is_complete", lambda directory, gguf: (directory / models.CACHE_MARKER).is_file())
    waits = []
    first = threading.Thread(target=models.resolve_default_model, args=(tmp_path,), name="first")
    first.start()
    first_is_converting.wait(10)
    second = models.resolve_default_model(tmp_path, progress=lambda text, share: waits.append(text))
    first.join(10)
    assert conversions == ["first"]
    assert second.path == models.default_model_cache(tmp_path)
    assert any("Waiting for another process" in text for text in waits)


def test_uncached_hub_id_offline_fails_fast_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(WorkbenchError) as error:
        models.resolve_model("nobody-here/no-such-model-xyz", allow_download=True)
    assert time.perf_counter() - start < 5
    assert "nobody-here/no-such-model-xyz" in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["./does/not/exist", "not a model"])
def test_unknown_names_get_a_clear_error(name):
    with pytest.raises(WorkbenchError, match="no such directory"):
        models.resolve_model(name)


def test_directory_without_config_and_pickle_only_weights_are_refused(tmp_path, tiny_model_dir):
    with pytest.raises(WorkbenchError, match="no config.json"):
        models.resolve_model(str(tmp_path))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.suffix != ".safetensors":
            (pickled / item.name).write_bytes(item.read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(WorkbenchError, match="no .safetensors"):
        models.load_model(str(pickled))


def test_cli_models_prints_the_resolved_directory(tiny_model_dir):
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "models", str(tiny_model_dir)], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert str(tiny_model_dir.resolve()) in result.stdout


def test_cli_bad_model_is_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "models", "/no/such/model"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.slow
def test_default_model_answers_paris(default_model_dir):
    """The real default model, from the converted cache, knows the capital of France."""
    model = models.load_model(default_model_dir)
    tokenizer = models.load_tokenizer(default_model_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    output = model.generate(**prompt, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(output[0, prompt["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_generation_hands_the_output_layer_a_contiguous_input_with_frozen_weights(tiny_model_dir):
    # generate() asks for the last position's logits (a strided slice of the batch); with frozen
    # weights torch.matmul turns that into a batched multiply that copies the whole output matrix
    # once per row (workbench/models.py). The output layer must see a contiguous input, same logits.
    import torch

    def contiguity_seen(model):
        seen = []
        model.get_output_embeddings().register_forward_pre_hook(lambda _m, args: seen.append(args[0].is_contiguous()))
        model.requires_grad_(False)
        prompt = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
        with torch.inference_mode():
            output = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=2, do_sample=False)
        return seen, output

    seen, answer = contiguity_seen(models.load_model(tiny_model_dir))
    assert seen and all(seen)
    from transformers import AutoModelForCausalLM

    plain_seen, plain_answer = contiguity_seen(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval())
    assert not all(plain_seen)  # the slice the fix is for
    assert torch.equal(answer, plain_answer)
