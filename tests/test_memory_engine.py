"""The memory estimator's arithmetic: known facts, the peak formula, and how inputs move the estimate."""

from __future__ import annotations

import time

import pytest

from workbench.errors import WorkbenchError
from workbench.memory import (
    MemoryInputs,
    catalog_spec,
    check_fit,
    estimate_training_memory,
    lora_trainable_params,
    memory_budget,
    plain_explanation,
    rule_of_thumb,
)
from workbench.memory.estimator import COMPONENTS, quantized_bits_per_weight
from workbench.memory.verdict import Budget

GIB = 2**30


@pytest.fixture(scope="module")
def llama8b():
    return catalog_spec("Llama-3.1-8B")


def test_lora_all_linear_on_llama_3_1_8b_at_rank_16_trains_41943040_parameters(llama8b):
    assert lora_trainable_params(llama8b, 16, ("all-linear",)) == 41_943_040
    estimate = estimate_training_memory(llama8b, MemoryInputs(method="lora", lora_r=16))
    assert estimate.trainable_params == 41_943_040


def test_lora_on_named_targets_counts_only_those_layers(llama8b):
    # q_proj 4096->4096 and v_proj 4096->1024, 32 layers, r=8
    expected = 8 * ((4096 + 4096) + (4096 + 1024)) * 32
    assert lora_trainable_params(llama8b, 8, ("q_proj", "v_proj")) == expected
    with pytest.raises(WorkbenchError, match="qkv"):
        lora_trainable_params(llama8b, 8, ("qkv",))


def test_dora_adds_one_magnitude_per_output_row(llama8b):
    plain = lora_trainable_params(llama8b, 16, ("all-linear",))
    rows = sum(shape.out_features * shape.count for shape in llama8b.linears)
    assert lora_trainable_params(llama8b, 16, ("all-linear",), dora=True) == plain + rows


def test_nf4_double_quant_costs_4_127_bits_and_leaves_embeddings_and_head_unquantized(llama8b):
    assert round(quantized_bits_per_weight(True), 3) == 4.127
    assert quantized_bits_per_weight(False) == 4.5
    inputs = MemoryInputs(method="qlora", precision="mixed-bf16", double_quant=True)
    estimate = estimate_training_memory(llama8b, inputs)
    adapters = estimate.trainable_params * 4
    embeddings_and_head = 2 * llama8b.vocab_size * llama8b.hidden_size
    norms = llama8b.total_params - llama8b.linear_weight_params - embeddings_and_head
    base = estimate.weights - adapters
    # not quantized: bitsandbytes stores them in 16 bits and PEFT's k-bit preparation upcasts them to fp32
    unquantized_bytes = 4 * (embeddings_and_head + norms)
    quantized_bits = (base - unquantized_bytes) * 8 / llama8b.linear_weight_params
    assert quantized_bits == pytest.approx(4.127, abs=0.001)
    no_double = estimate_training_memory(llama8b, inputs.with_changes(double_quant=False))
    assert (no_double.weights - estimate.weights) * 8 / llama8b.linear_weight_params == pytest.approx(4.5 - 4.127, abs=0.001)


def test_adamw_keeps_8_bytes_of_state_per_trainable_fp32_parameter(llama8b):
    for method, precision in (("lora", "mixed-bf16"), ("full", "fp32"), ("full", "mixed-bf16")):
        estimate = estimate_training_memory(llama8b, MemoryInputs(method=method, precision=precision))
        assert estimate.optimizer_state == 8 * estimate.trainable_params
    eight_bit = estimate_training_memory(llama8b, MemoryInputs(method="lora", optimizer="adamw_8bit"))
    assert eight_bit.optimizer_state == 2 * eight_bit.trainable_params
    sgd = estimate_training_memory(llama8b, MemoryInputs(method="lora", optimizer="sgd"))
    assert sgd.optimizer_state == 0


def test_bytes_per_parameter_match_the_known_regimes(llama8b):
    def per_param(precision):
        estimate = estimate_training_memory(llama8b, MemoryInputs(method="full", precision=precision))
        return estimate.persistent_bytes_per_param

    assert per_param("fp32") == pytest.approx(16, abs=0.01)
    assert per_param("bf16") == pytest.approx(8, abs=0.01)
    assert 16 <= per_param("mixed-bf16") <= 18


def test_peak_is_weights_plus_optimizer_plus_the_larger_phase(llama8b):
    for inputs in (
        MemoryInputs(method="full", batch_size=1, seq_len=128, gradient_checkpointing=True),
        MemoryInputs(method="lora", batch_size=8, seq_len=2048),
    ):
        e = estimate_training_memory(llama8b, inputs)
        expected = e.weights + e.optimizer_state + e.framework_overhead + max(
            e.activations + e.logits, e.gradients
        )
        assert e.total_bytes == expected
        assert sum(e.at_peak().values()) == e.total_bytes
        assert list(e.breakdown()) == list(COMPONENTS)
    assert estimate_training_memory(llama8b, MemoryInputs(method="full", seq_len=128, gradient_checkpointing=True)
                                    ).peak_phase == "optimizer step"
    assert estimate_training_memory(llama8b, MemoryInputs(method="lora", seq_len=2048)).peak_phase == "backward"


def test_logits_grow_with_tokens_and_vocabulary():
    small_vocab = catalog_spec("Mistral-7B-v0.3")  # 32k vocabulary
    big_vocab = catalog_spec("Llama-3.1-8B")  # 128k vocabulary, similar layers
    inputs = MemoryInputs(method="lora", batch_size=2, seq_len=1024)
    assert estimate_training_memory(big_vocab, inputs).logits > 3.5 * estimate_training_memory(small_vocab, inputs).logits
    doubled = estimate_training_memory(big_vocab, inputs.with_changes(batch_size=4))
    assert doubled.logits == 2 * estimate_training_memory(big_vocab, inputs).logits


def test_inputs_move_the_estimate_the_right_way(llama8b):
    base = MemoryInputs(method="lora", batch_size=2, seq_len=2048)
    e = estimate_training_memory(llama8b, base)
    assert estimate_training_memory(llama8b, base.with_changes(batch_size=4)).activations > 1.9 * e.activations
    assert estimate_training_memory(llama8b, base.with_changes(gradient_checkpointing=True)).activations < e.activations / 5
    # embeddings and lm_head (1.05B of the 8B parameters) are not quantized, and fp32 after k-bit preparation
    assert estimate_training_memory(llama8b, base.with_changes(method="qlora")).weights < e.weights / 2
    # full fine-tuning adds 16 bytes per parameter (fp32 gradients and Adam moments; 128 GB at 8B) to the same activations
    assert estimate_training_memory(llama8b, base.with_changes(method="full")).total_bytes > 2.5 * e.total_bytes
    assert estimate_training_memory(llama8b, base.with_changes(lora_dropout=0.1)).activations > e.activations
    eager = estimate_training_memory(llama8b, base.with_changes(attention="eager"))
    # eager keeps batch x heads x seq x seq softmax probabilities per layer
    assert eager.activations - e.activations > 2 * 32 * 2048 * 2048 * 4 * llama8b.num_layers


def test_sharding_divides_per_gpu_memory(llama8b):
    one = estimate_training_memory(llama8b, MemoryInputs(method="full"))
    zero2 = estimate_training_memory(llama8b, MemoryInputs(method="full", gpus=4, sharding="zero2"))
    zero3 = estimate_training_memory(llama8b, MemoryInputs(method="full", gpus=4, sharding="zero3"))
    ddp = estimate_training_memory(llama8b, MemoryInputs(method="full", gpus=4, sharding="ddp"))
    assert zero2.optimizer_state == one.optimizer_state // 4 and zero2.weights == one.weights
    assert zero3.weights < one.weights / 3
    assert ddp.total_bytes > one.total_bytes  # DDP's gradient buckets come on top
    assert zero3.total_bytes < zero2.total_bytes < one.total_bytes


def test_invalid_inputs_are_user_errors():
    with pytest.raises(WorkbenchError, match="method"):
        MemoryInputs(method="prefix-tuning")
    with pytest.raises(WorkbenchError, match="batch_size"):
        MemoryInputs(batch_size=0)


def test_estimate_and_verdict_take_well_under_50_ms(llama8b):
    inputs = MemoryInputs(method="qlora", seq_len=2048)
    start = time.perf_counter()
    estimate = estimate_training_memory(llama8b, inputs)
    verdict = check_fit(estimate, Budget(24 * GIB, "a 24 GiB GPU"))
    rule_of_thumb(estimate), plain_explanation(estimate)
    assert time.perf_counter() - start < 0.05
    assert verdict.status in ("fits", "tight", "does not fit")


def test_qlora_7b_on_a_24_gib_card_gets_an_answer_and_a_way_to_fit():
    spec = catalog_spec("qwen2.5-7b")
    inputs = MemoryInputs(method="qlora", batch_size=1, seq_len=2048)
    estimate = estimate_training_memory(spec, inputs)
    verdict = check_fit(estimate, memory_budget(inputs, gpu_memory_gib=24))
    assert verdict.budget.bytes == 24 * GIB
    assert "24 GiB" in verdict.headline
    fitting = [s for s in verdict.suggestions if s.fits]
    assert fitting, verdict
    for suggestion in fitting:
        changed = estimate_training_memory(spec, inputs.with_changes(**suggestion.changes))
        assert changed.total_bytes == suggestion.total_bytes <= 0.9 * 24 * GIB


def test_a_run_that_fits_is_told_how_large_a_batch_would_still_fit():
    spec = catalog_spec("SmolLM2-135M")
    inputs = MemoryInputs(method="lora", batch_size=1, seq_len=512)
    verdict = check_fit(estimate_training_memory(spec, inputs), Budget(80 * GIB, "80 GiB"))
    assert verdict.status == "fits"
    batch = [s for s in verdict.suggestions if "batch_size" in s.changes]
    assert batch and batch[0].changes["batch_size"] > 1
    bigger = batch[0].changes["batch_size"] + 1
    assert estimate_training_memory(spec, inputs.with_changes(batch_size=bigger)).total_bytes > 0.9 * 80 * GIB


def test_unknown_budget_still_reports_the_need():
    spec = catalog_spec("SmolLM2-135M")
    verdict = check_fit(estimate_training_memory(spec, MemoryInputs()), Budget(None, "no GPU detected"))
    assert verdict.status == "unknown" and "no GPU detected" in verdict.headline


def test_explanation_names_the_regime_and_the_rule_of_thumb():
    spec = catalog_spec("Qwen2.5-7B")
    full = estimate_training_memory(spec, MemoryInputs(method="full", precision="bf16"))
    thumb = rule_of_thumb(full)
    assert thumb.low_bytes == 10 * spec.total_params and thumb.high_bytes == 12 * spec.total_params
    assert "8 bytes" in thumb.text
    lora = plain_explanation(estimate_training_memory(spec, MemoryInputs(method="lora")))
    assert any("freezes" in line for line in lora)
