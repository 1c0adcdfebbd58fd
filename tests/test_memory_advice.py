"""Memory advice: the cheapest combination of changes that fits, ranked by its stated cost, each with
the estimator's own figure; a visible fit line; inputs bounded by the model's context length."""

from __future__ import annotations

import pytest

from workbench.config.schema import RunConfig
from workbench.devices import CpuInfo, DeviceReport, GpuInfo
from workbench.errors import WorkbenchError
from workbench.memory import MemoryInputs, catalog_spec, check_fit, estimate_training_memory, memory_inputs_from_config
from workbench.memory.advice import Machine, advise
from workbench.memory.from_config import config_changes
from workbench.memory.verdict import HEADROOM, Budget
from workbench.memory.whatif import WhatIf

GIB = 2**30
CPU_WITHOUT_BNB = Machine(gpus=1, bitsandbytes=False, native_bf16=True)


@pytest.fixture(scope="module")
def llama8b():
    return catalog_spec("Llama-3.1-8B")


def _llama_lora(**changes) -> MemoryInputs:
    values = dict(method="lora", precision="mixed-bf16", batch_size=1, seq_len=2048, lora_dropout=0.05)
    return MemoryInputs(**{**values, **changes})


def test_llama_8b_lora_on_a_24_gib_gpu_is_told_to_checkpoint_not_to_shorten_sequences(llama8b):
    inputs = _llama_lora(device="cuda")
    verdict = check_fit(estimate_training_memory(llama8b, inputs), Budget(24 * GIB, "a 24 GiB GPU"))
    assert verdict.status == "does not fit"
    top = verdict.suggestions[0]
    assert top.changes == {"gradient_checkpointing": True} and top.fits
    assert top.total_bytes == estimate_training_memory(llama8b, inputs.with_changes(**top.changes)).total_bytes
    assert top.total_bytes <= verdict.fit_line_bytes
    assert not any(suggestion.cuts_data for suggestion in verdict.suggestions)
    assert "~50% slower" in top.cost_text


def test_suggestions_are_cheapest_first_and_each_figure_is_the_estimate_of_its_changes(llama8b):
    inputs = MemoryInputs(method="full", precision="mixed-bf16", batch_size=8, seq_len=2048, device="cuda")
    advice = advise(llama8b, inputs, int(0.9 * 80 * GIB), machine=Machine(gpus=8))
    assert 1 <= len(advice.suggestions) <= 3
    costs = [suggestion.cost for suggestion in advice.suggestions]
    assert costs == sorted(costs)
    for suggestion in advice.suggestions:
        assert suggestion.fits
        changed = estimate_training_memory(llama8b, inputs.with_changes(**suggestion.changes))
        assert changed.total_bytes == suggestion.total_bytes <= 0.9 * 80 * GIB


def test_changes_are_combined_when_no_single_one_fits(llama8b):
    # fp32 LoRA of an 8B model under a 20 GiB fit line on a CPU with native bf16: neither
    # checkpointing nor mixed bf16 alone fits, both together do
    inputs = _llama_lora(device="cpu", precision="fp32")
    line = 20 * GIB
    for single in ({"gradient_checkpointing": True}, {"precision": "mixed-bf16"}):
        assert estimate_training_memory(llama8b, inputs.with_changes(**single)).total_bytes > line
    advice = advise(llama8b, inputs, line, machine=CPU_WITHOUT_BNB)
    assert advice.suggestions[0].changes == {"gradient_checkpointing": True, "precision": "mixed-bf16"}
    assert " + " in advice.suggestions[0].text
    # no bitsandbytes changes on the CPU
    assert not any(s.changes.get("method") == "qlora" or "optimizer" in s.changes for s in advice.suggestions)


def test_shorter_sequences_come_only_when_nothing_else_fits_and_the_advice_says_so(llama8b):
    inputs = _llama_lora(device="cpu")
    budget = Budget(20 * GIB, "20 GiB of RAM")  # fit line 18 GiB; checkpointing alone needs 19.5
    verdict = check_fit(estimate_training_memory(llama8b, inputs), budget, machine=CPU_WITHOUT_BNB)
    assert "shorten the sequences" in verdict.advice_note
    *shortened, tight = verdict.suggestions
    assert shortened
    for suggestion in shortened:
        assert suggestion.fits and suggestion.cuts_data and 64 <= suggestion.changes["seq_len"] < 2048
        assert suggestion.total_bytes <= verdict.fit_line_bytes
        assert "loses data" in suggestion.cost_text
    # beside them, the cheapest way that keeps the data but only fits the budget, marked tight
    assert tight.changes == {"gradient_checkpointing": True} and not tight.fits and not tight.cuts_data
    assert verdict.fit_line_bytes < tight.total_bytes <= budget.bytes


def test_a_smaller_batch_keeps_the_effective_batch_through_accumulation():
    spec = catalog_spec("SmolLM2-135M")
    inputs = MemoryInputs(method="lora", precision="fp32", batch_size=16, seq_len=1024, device="cpu")
    current = estimate_training_memory(spec, inputs).total_bytes
    advice = advise(spec, inputs, int(current * 0.6), machine=Machine(bitsandbytes=False, native_bf16=False),
                    gradient_accumulation=2)
    batch = [s for s in advice.suggestions if "batch_size" in s.changes]
    assert batch
    for suggestion in batch:
        assert suggestion.changes["batch_size"] * suggestion.gradient_accumulation == 16 * 2
        edits = config_changes(suggestion.changes, suggestion.gradient_accumulation)
        assert edits["optimization.gradient_accumulation_steps"] == suggestion.gradient_accumulation


def test_gpu_only_levers_say_when_bitsandbytes_is_missing_and_zero_needs_more_gpus(llama8b):
    inputs = MemoryInputs(method="full", precision="mixed-bf16", batch_size=1, seq_len=1024, device="cuda")
    line = int(0.9 * 40 * GIB)
    lone = advise(llama8b, inputs, line, machine=Machine(gpus=1, bitsandbytes=False))
    assert any("needs bitsandbytes" in s.text for s in lone.suggestions)
    assert not any("sharding" in s.changes for s in lone.suggestions)
    eight = advise(llama8b, inputs, line, machine=Machine(gpus=8))
    zero = [s for s in eight.suggestions if "sharding" in s.changes]
    assert zero and all(s.changes["gpus"] == 8 for s in zero)


def test_a_run_that_fits_with_checkpointing_on_is_told_it_can_turn_it_off():
    spec = catalog_spec("SmolLM2-135M")
    inputs = MemoryInputs(method="lora", batch_size=2, seq_len=256, gradient_checkpointing=True, device="cuda")
    verdict = check_fit(estimate_training_memory(spec, inputs), Budget(80 * GIB, "80 GiB"))
    assert verdict.status == "fits"
    off = [s for s in verdict.suggestions if s.changes == {"gradient_checkpointing": False}]
    assert off and "faster" in off[0].cost_text


def test_the_fit_line_is_named_shown_and_under_the_budget_means_tight_not_failed(llama8b):
    inputs = _llama_lora(device="cuda", gradient_checkpointing=True)
    total = estimate_training_memory(llama8b, inputs).total_bytes  # 19.4 GiB
    budget = Budget(int(total / 0.955), "a 20.3 GiB GPU")  # 95.5% used: over the 90% fit line, under the budget
    verdict = check_fit(estimate_training_memory(llama8b, inputs), budget)
    assert verdict.status == "tight" and verdict.headroom == HEADROOM["cuda"] == 0.10
    assert "headroom" in verdict.headline and "fragmentation" in verdict.fit_line_text
    assert verdict.fit_line_text.startswith("fit line") and "90% of" in verdict.fit_line_text
    relaxed = check_fit(estimate_training_memory(llama8b, inputs), budget, headroom=0.02)
    assert relaxed.status == "fits" and relaxed.fit_line_bytes == int(budget.bytes * 0.98)


def test_sequences_past_the_context_length_warn_and_absurd_ones_are_refused_in_one_line(llama8b):
    past = estimate_training_memory(llama8b, _llama_lora(seq_len=200_000))
    assert past.warnings and "131,072" in past.warnings[0]
    assert not estimate_training_memory(llama8b, _llama_lora()).warnings
    with pytest.raises(WorkbenchError, match="max_position_embeddings") as refused:
        estimate_training_memory(llama8b, _llama_lora(seq_len=10_244_096))
    assert "\n" not in str(refused.value)
    with pytest.raises(WorkbenchError, match="batch_size"):
        estimate_training_memory(llama8b, _llama_lora(batch_size=100_000))
    assert catalog_spec("Phi-3-mini").context_length == 4096
    assert catalog_spec("SmolLM2-135M").context_length == 8192


def test_config_changes_make_the_config_estimate_as_the_suggestion_says():
    devices = DeviceReport(cpu=CpuInfo("cpu", 2, 64 * GIB, 60 * GIB),
                           gpus=tuple(GpuInfo(i, "GPU", 80 * GIB, 80 * GIB, (9, 0)) for i in range(4)))
    config = RunConfig()
    _, inputs = memory_inputs_from_config(config, devices)
    changes = {"gradient_checkpointing": True, "batch_size": 1, "optimizer": "adamw_8bit", "method": "qlora",
               "gpus": 4, "sharding": "zero3", "seq_len": 512, "precision": "mixed-bf16"}
    whatif = WhatIf()
    changed_config = whatif.set(config, config_changes(changes, gradient_accumulation=16))
    _, changed = memory_inputs_from_config(changed_config, devices)
    assert changed == inputs.with_changes(**changes)
    assert changed_config.optimization.gradient_accumulation_steps == 16
    assert config.optimization.per_device_train_batch_size == 4  # the base is never modified


def test_a_whatif_keeps_only_what_differs_and_refuses_what_the_schema_refuses():
    from pydantic import ValidationError

    base = RunConfig()
    whatif = WhatIf()
    whatif.set(base, {"optimization.per_device_train_batch_size": 8, "method.r": base.method.r})
    assert whatif.edits == {"optimization.per_device_train_batch_size": 8}
    with pytest.raises(ValidationError):
        whatif.set(base, {"method.r": 0})
    assert whatif.edits == {"optimization.per_device_train_batch_size": 8}
    moved = base.model_copy(deep=True)
    moved.optimization.per_device_train_batch_size = 8  # the run config caught up with the what-if
    assert whatif.differences(moved) == [] and whatif.edits == {}
