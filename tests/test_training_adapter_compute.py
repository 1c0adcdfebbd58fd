"""LoRA adapters compute on autocast's activations and share one dropout mask per input (CPU)."""

from __future__ import annotations

import pytest

from training_test_support import run_config, varied_rows, write_alpaca


def _training_model(tiny_model_dir, tmp_path, **method):
    from workbench.config.hf_arguments import run_facts
    from workbench.models import resolve_model
    from workbench.training.model_setup import build_training_model

    precision = method.pop("precision", "fp32")
    config = run_config(
        tiny_model_dir, write_alpaca(tmp_path / "rows.json", varied_rows(8)), method=method, model={"precision": precision}
    )
    facts = run_facts(config, tmp_path / "run", on_gpu=False, world_size=1, has_eval=False)
    return build_training_model(config, resolve_model(str(tiny_model_dir)), facts)


def test_the_keep_mask_drops_the_requested_share_and_repeats_under_one_seed():
    import torch

    from workbench.training.adapter_compute import dropout_keep_mask, quantized_rate

    torch.manual_seed(7)
    first = dropout_keep_mask(torch.Size([64, 1000]), 0.25)
    torch.manual_seed(7)
    again = dropout_keep_mask(torch.Size([64, 1000]), 0.25)
    assert first.shape == (64, 1000) and first.dtype == torch.bool
    assert torch.equal(first, again)
    assert (~first).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert quantized_rate(0.05) == pytest.approx(0.05, abs=1 / 65536)
    # a different draw, not a repeated pattern
    assert not torch.equal(first, dropout_keep_mask(torch.Size([64, 1000]), 0.25))


def test_adapters_reading_one_input_share_one_dropout_mask(tiny_model_dir, tmp_path, default_tokenizer):
    """q, k and v read one input and get one dropped tensor; o a mask of its own; gate and up share
    theirs; so a layer draws 4 masks, not 7. In eval mode nothing is dropped."""
    import torch

    from workbench.training.adapter_compute import lora_layers

    model = _training_model(tiny_model_dir, tmp_path, lora_dropout=0.5)
    outputs: dict[str, torch.Tensor] = {}
    for layer in lora_layers(model):
        name = next(n for n, m in model.named_modules() if m is layer)
        dropout = layer.lora_dropout["default"]
        assert type(dropout).__name__ == "SharedInputDropout"
        dropout.register_forward_hook(lambda _m, args, out, name=name: outputs.__setitem__(name, (args[0], out)))
    ids = torch.tensor([default_tokenizer.encode("Packing keeps the cores busy with real tokens.")])
    model.train()
    model(input_ids=ids)
    layer0 = {name.rsplit(".", 1)[-1]: pair for name, pair in outputs.items() if ".layers.0." in name}
    q_in, q_out = layer0["q_proj"]
    assert layer0["k_proj"][1] is q_out and layer0["v_proj"][1] is q_out
    assert layer0["up_proj"][1] is layer0["gate_proj"][1]
    assert layer0["o_proj"][1] is not q_out and layer0["down_proj"][1] is not layer0["gate_proj"][1]
    distinct = {id(out) for _, out in layer0.values()}
    assert len(distinct) == 4
    dropped = q_out == 0
    assert 0.3 < dropped.float().mean().item() < 0.7
    assert torch.allclose(q_out[~dropped], q_in[~dropped] * 2.0, rtol=1e-6)

    outputs.clear()
    model.eval()
    model(input_ids=ids)
    q_in, q_out = next(pair for name, pair in outputs.items() if name.endswith("layers.0.self_attn.q_proj"))
    assert q_out is q_in


def test_mixed_precision_adapters_read_the_half_activations_and_compute_as_with_peft_casting(
    tiny_model_dir, tmp_path, default_tokenizer
):
    """Under autocast the adapters take the bf16 activations as they are (no fp32 copy per adapter),
    and loss and adapter gradients are exactly those of PEFT's cast-then-autocast path."""
    import torch

    from workbench.training.adapter_compute import lora_layers

    model = _training_model(tiny_model_dir, tmp_path, precision="mixed-bf16")
    layers = lora_layers(model)
    assert layers and all(layer.cast_input_dtype_enabled is False for layer in layers)
    seen = []
    layers[0].lora_A["default"].register_forward_pre_hook(lambda _m, args: seen.append(args[0].dtype))
    ids = torch.tensor([default_tokenizer.encode("Adapters in the compute dtype.")])
    for layer in lora_layers(model):  # B starts at zero: give it values so the adapters change the output
        torch.nn.init.normal_(layer.lora_B["default"].weight, std=0.02)

    def loss_and_grads(cast: bool):
        for layer in layers:
            layer.cast_input_dtype_enabled = cast
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        return loss.item(), grads

    ours, our_grads = loss_and_grads(cast=False)
    assert seen[-1] == torch.bfloat16
    peft, peft_grads = loss_and_grads(cast=True)
    assert seen[-1] == torch.float32
    assert ours == peft
    assert all(torch.equal(a, b) for a, b in zip(our_grads, peft_grads))


def test_fp32_runs_keep_peft_casting_and_dora_keeps_its_own(tiny_model_dir, tmp_path):
    from workbench.training.adapter_compute import lora_layers

    assert all(layer.cast_input_dtype_enabled for layer in lora_layers(_training_model(tiny_model_dir, tmp_path)))
    dora = _training_model(tiny_model_dir, tmp_path, precision="mixed-bf16", use_dora=True)
    assert all(layer.cast_input_dtype_enabled for layer in lora_layers(dora))
