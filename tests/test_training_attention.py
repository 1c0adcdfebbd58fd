"""How packed rows reach each attention kernel: the selection, and batches that train exactly like
the samples one by one. The GPU kernels themselves (flash-attn, flex attention) cannot run here;
what is checked on the CPU is the choice, the batch layout each kernel reads, and that transformers
keeps the samples apart given exactly those inputs."""

from __future__ import annotations

import pytest

from training_test_support import run_config, varied_rows, write_alpaca
from workbench.config.attention import GROUPED_HEADS_SWITCH, cpu_training_environment, loaded_attention, packed_rows_mode
from workbench.data.templating import TrainingExample
from workbench.training.packing import REAL_TOKENS_KEY, SAMPLE_LENGTHS_KEY, RowCollator, pack_samples


@pytest.mark.parametrize(
    ("requested", "on_gpu", "packing", "loaded", "mode"),
    [
        ("sdpa", True, True, "flex_attention", "document-mask"),
        ("sdpa", False, True, "sdpa", "dense-mask"),
        ("sdpa", True, False, "sdpa", "dense-mask"),
        ("eager", True, True, "eager", "dense-mask"),
        ("flash_attention_2", True, True, "flash_attention_2", "varlen"),
    ],
)
def test_the_kernel_a_run_loads_and_how_its_packed_rows_mark_samples(requested, on_gpu, packing, loaded, mode):
    assert loaded_attention(requested, on_gpu=on_gpu, packing=packing) == loaded
    assert packed_rows_mode(loaded) == mode


def test_from_pretrained_gets_flex_attention_for_a_packed_gpu_run_and_sdpa_on_the_cpu(tmp_path, tiny_model_dir):
    from workbench.config.hf_arguments import from_pretrained_kwargs, run_facts

    config = run_config(tiny_model_dir, write_alpaca(tmp_path / "rows.json", varied_rows(4)))
    cpu = run_facts(config, tmp_path, on_gpu=False, world_size=1, has_eval=False)
    gpu = run_facts(config, tmp_path, on_gpu=True, world_size=1, has_eval=False)
    assert from_pretrained_kwargs(config, cpu)["attn_implementation"] == "sdpa"
    assert from_pretrained_kwargs(config, gpu)["attn_implementation"] == "flex_attention"
    config.data.packing = False
    assert from_pretrained_kwargs(config, gpu)["attn_implementation"] == "sdpa"


def test_a_cpu_run_hands_sdpa_its_grouped_heads_and_leaves_the_environment_as_it_was(tmp_path, tiny_model_dir, monkeypatch):
    import os

    import torch

    from workbench.training.run import run_training

    monkeypatch.delenv(GROUPED_HEADS_SWITCH, raising=False)
    heads = []  # (query heads, key heads, enable_gqa) of every attention call
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, *args, **kwargs):
        heads.append((query.shape[1], key.shape[1], kwargs.get("enable_gqa", False)))
        return real(query, key, value, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    config = run_config(tiny_model_dir, write_alpaca(tmp_path / "rows.json", varied_rows(12)),
                        optimization={"max_steps": 2}, evaluation={"eval_steps": 100, "save_steps": 100})
    assert run_training(config, tmp_path / "run", report=lambda line: None) == 0
    assert heads and set(heads) == {(4, 2, True)}  # the tiny model's 4 query heads share 2 key/value heads
    assert GROUPED_HEADS_SWITCH not in os.environ


def test_the_grouped_heads_switch_is_the_users_when_they_set_it(monkeypatch):
    monkeypatch.setenv(GROUPED_HEADS_SWITCH, "0")
    assert cpu_training_environment() == {}
    monkeypatch.delenv(GROUPED_HEADS_SWITCH)
    assert cpu_training_environment() == {GROUPED_HEADS_SWITCH: "1"}


SAMPLES = [
    TrainingExample([5, 6, 7], [5, 6, 7]),
    TrainingExample([8, 9], [-100, 9]),
    TrainingExample([10, 11, 12, 13], [-100, -100, 12, 13]),
]


def test_flash_attention_batches_are_one_flattened_row_with_the_samples_cumulative_lengths():
    batch = RowCollator(0, packed=True, attn_implementation="flash_attention_2")([SAMPLES[:2], SAMPLES[2:]])
    assert "attention_mask" not in batch
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 11, 12, 13]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9, -100, -100, 12, 13]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]]
    assert batch["cu_seq_lens_q"].tolist() == batch["cu_seq_lens_k"].tolist() == [0, 3, 5, 9]
    assert batch["max_length_q"] == batch["max_length_k"] == 4
    assert int(batch[REAL_TOKENS_KEY]) == 9
    assert batch[SAMPLE_LENGTHS_KEY].tolist() == [[3, 3, 3, 2, 2, 4, 4, 4, 4]]


def test_flex_attention_batches_carry_restarted_positions_and_no_dense_mask():
    batch = RowCollator(0, packed=True, attn_implementation="flex_attention", pad_to_multiple_of=4)([SAMPLES[:2]])
    assert "attention_mask" not in batch
    # padding continues as its own sequence, so it forms a document of its own
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2]]
    dense = RowCollator(0, packed=True, attn_implementation="sdpa", pad_to_multiple_of=4)([SAMPLES[:2]])
    assert dense["attention_mask"].shape == (1, 1, 8, 8)


def _tokenized(default_tokenizer):
    from workbench.data.conversation import Conversation, Message
    from workbench.data.templating import render_training_example

    texts = [("Name a colour.", "Blue."), ("Say something about rivers.", "Rivers run to the sea, carrying silt."),
             ("Count to three.", "One, two, three."), ("Hi", "Hello! How can I help you today?")]
    samples = []
    for index, (question, answer) in enumerate(texts):
        conversation = Conversation((Message("user", question), Message("assistant", answer)), index, "alpaca")
        example = render_training_example(default_tokenizer, conversation, 256, system_prompt="")
        samples.append(example)
    return samples


@pytest.mark.parametrize("kernel", ["flex_attention", "flash_attention_2"])
def test_mask_free_packed_batches_give_the_unpacked_loss(tiny_model_dir, default_tokenizer, kernel):
    """The batches the GPU kernels get, run here through sdpa with the KV cache off as the trainer
    runs: transformers reads the sample boundaries from the restarted positions alone (the same
    detection that gives flex attention its document mask), and the loss is the unpacked one."""
    import torch

    from workbench.models import load_model

    model = load_model(tiny_model_dir)
    model.config.use_cache = False
    samples = _tokenized(default_tokenizer)
    rows = pack_samples(samples, 96)
    assert len(rows) < len(samples)
    batch = RowCollator(default_tokenizer.pad_token_id, packed=True, attn_implementation=kernel)(rows)
    assert "attention_mask" not in batch
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "labels", "position_ids")}
    with torch.no_grad():
        packed = model(**inputs).loss.item()
        loss_sum = count_sum = 0.0
        for sample in samples:
            alone = RowCollator(default_tokenizer.pad_token_id, packed=False, pad_to_multiple_of=1)([[sample]])
            count = int((alone["labels"][:, 1:] != -100).sum())
            loss_sum += model(input_ids=alone["input_ids"], labels=alone["labels"]).loss.item() * count
            count_sum += count
    assert packed == pytest.approx(loss_sum / count_sum, abs=1e-4)
