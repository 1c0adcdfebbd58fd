"""Packing: best-fit bins, and packed rows that train exactly like the same samples one by one."""

from __future__ import annotations

import pytest

from workbench.data.conversation import Conversation, Message
from workbench.data.templating import TrainingExample
from workbench.training.packing import (
    REAL_TOKENS_KEY,
    RowCollator,
    best_fit_decreasing,
    pack_samples,
    single_sample_rows,
)


def test_best_fit_decreasing_places_every_item_once_within_capacity():
    lengths = [6, 2, 5, 3, 4, 4, 1, 8]
    bins = best_fit_decreasing(lengths, max_seq_length=8)
    placed = sorted(index for members in bins for index in members)
    assert placed == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in members) <= 8 for members in bins)
    # 33 tokens need at least 5 bins of 8; best fit reaches that bound here
    assert len(bins) == 5


def test_best_fit_prefers_the_tightest_bin():
    # With bins of 2 and 1 free tokens, the last 1-token item fills the 1-token gap (first fit would
    # put it in the first bin and leave a 1-token hole).
    bins = best_fit_decreasing([8, 6, 3, 1], max_seq_length=10)
    assert sorted(sorted(members) for members in bins) == [[0], [1, 2, 3]]


def test_an_item_longer_than_a_bin_is_refused():
    with pytest.raises(ValueError, match="more than max_seq_length"):
        best_fit_decreasing([3, 9], max_seq_length=8)


def test_collator_masks_sample_starts_padding_and_counts_real_tokens():
    samples = [TrainingExample([5, 6, 7], [5, 6, 7]), TrainingExample([8, 9], [-100, 9])]
    batch = RowCollator(0, packed=True, pad_to_multiple_of=4)([samples, [samples[1]]])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 0, 0, 0], [8, 9, 0, 0, 0, 0, 0, 0]]
    # the first token of every sample is never a target, so no sample predicts across a boundary
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9, -100, -100, -100], [-100, 9] + [-100] * 6]
    assert batch["position_ids"].tolist()[0][:5] == [0, 1, 2, 0, 1]
    assert int(batch[REAL_TOKENS_KEY]) == 7
    mask = batch["attention_mask"][0, 0]
    assert mask.shape == (8, 8)
    assert mask[4, 3] == 0 and mask[4, 2] < -1e30  # second sample sees itself, not the first
    assert mask[1, 2] < -1e30  # causal


def _conversations() -> list[Conversation]:
    texts = [
        ("Name a colour.", "Blue."),
        ("Say something long about rivers and the sea, please.", "Rivers run to the sea, carrying silt and stories."),
        ("Count to three.", "One, two, three."),
        ("Hi", "Hello! How can I help you today?"),
        ("What is 2+2?", "Four."),
    ]
    return [
        Conversation((Message("user", question), Message("assistant", answer)), index, "alpaca")
        for index, (question, answer) in enumerate(texts)
    ]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_loss_equals_token_weighted_unpacked_loss(tiny_model_dir, default_tokenizer, attention):
    import torch

    from workbench.data.templating import render_training_example
    from workbench.models import load_model

    model = load_model(tiny_model_dir, attn_implementation=attention)
    samples = []
    for conversation in _conversations():
        example = render_training_example(default_tokenizer, conversation, 256, system_prompt="")
        samples.append(example)
    rows = pack_samples(samples, 128)
    assert len(rows) < len(samples)  # something really was packed

    collator = RowCollator(default_tokenizer.pad_token_id, packed=True, attn_implementation=attention)
    batch = collator(rows)
    batch.pop(REAL_TOKENS_KEY), batch.pop("token_sample_lengths")
    with torch.no_grad():
        packed_loss = model(**batch).loss.item()
        loss_sum = tokens = 0.0
        for row in single_sample_rows(samples):
            single = RowCollator(default_tokenizer.pad_token_id, packed=False)([row[0:1]])
            single.pop(REAL_TOKENS_KEY), single.pop("token_sample_lengths")
            count = int((single["labels"][:, 1:] != -100).sum())
            loss_sum += model(**single).loss.item() * count
            tokens += count
        # restarting positions alone does not isolate samples: proof that the mask does the work
        leaky = model(input_ids=batch["input_ids"], labels=batch["labels"], position_ids=batch["position_ids"]).loss.item()
    assert packed_loss == pytest.approx(loss_sum / tokens, abs=1e-4)
    assert abs(leaky - loss_sum / tokens) > 1e-4


def test_neftune_noise_scale_follows_each_packed_samples_own_length():
    import torch

    from workbench.training.trainer import neftune_noise_scale

    lengths = torch.tensor([[4, 4, 4, 4, 16, 16, 0, 0]])
    scale = neftune_noise_scale(lengths, hidden_size=64, alpha=5.0)
    assert scale[0, 0].item() == pytest.approx(5.0 / (4 * 64) ** 0.5)
    assert scale[0, 4].item() == pytest.approx(5.0 / (16 * 64) ** 0.5)
    assert scale[0, 6].item() == 0.0


def test_the_trainer_loss_uses_logits_of_trained_positions_only_and_matches_the_model_loss(
    tmp_path, tiny_model_dir, default_tokenizer
):
    import torch
    from transformers import TrainingArguments

    from workbench.data.templating import render_training_example
    from workbench.models import load_model
    from workbench.training.trainer import workbench_trainer_class

    model = load_model(tiny_model_dir)
    samples = []
    for conversation in _conversations():
        example = render_training_example(default_tokenizer, conversation, 256, system_prompt="")
        samples.append(example)
    batch = RowCollator(default_tokenizer.pad_token_id, packed=True)(pack_samples(samples, 128))
    arguments = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = workbench_trainer_class()(model=model, args=arguments, train_dataset=[[samples[0]]])
    expected_inputs = {k: v for k, v in batch.items() if k not in (REAL_TOKENS_KEY, "token_sample_lengths")}
    trained = int((batch["labels"][:, 1:] != -100).sum())
    with torch.no_grad():
        expected = model(**expected_inputs).loss
        loss, outputs = trainer.compute_loss(model, dict(batch), return_outputs=True)
    assert outputs.logits.shape == (trained, model.config.vocab_size)
    assert trained < batch["input_ids"].numel() / 2  # most positions are prompt or padding here
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)


def test_packed_neftune_noise_has_each_samples_unpacked_scale(tmp_path, tiny_model_dir, default_tokenizer):
    """Through the trainer's embedding hook: in a packed row every sample's noise scale is the
    one it gets trained alone, alpha / sqrt(len_i · d), not alpha / sqrt(row length · d) as
    transformers' own NEFTune would use. The uniform draws are replayed from the same seed, so the
    scale is read off exactly (noise = uniform · scale)."""
    import torch
    from transformers import TrainingArguments

    from workbench.data.templating import render_training_example
    from workbench.models import load_model
    from workbench.training.trainer import workbench_trainer_class

    alpha = 5.0
    model = load_model(tiny_model_dir)
    model.train()
    samples = []
    for conversation in _conversations()[:3]:
        example = render_training_example(default_tokenizer, conversation, 256, system_prompt="")
        samples.append(example)
    arguments = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = workbench_trainer_class()(model=model, args=arguments, train_dataset=[samples], neftune_alpha=alpha)
    embeddings = model.get_input_embeddings()
    hidden = embeddings.weight.shape[1]
    seen = []
    embeddings.register_forward_hook(lambda _module, _inputs, output: seen.append(output.detach().clone()))

    def noise_scale(batch):
        """Per-token noise scale the trainer applied to this batch (batch, length)."""
        seen.clear()
        clean = embeddings.weight[batch["input_ids"]].detach()
        torch.manual_seed(1234)
        trainer.compute_loss(model, dict(batch))
        torch.manual_seed(1234)
        uniform = torch.empty_like(clean).uniform_(-1, 1)
        return ((seen[0] - clean) / uniform).mean(dim=-1)

    packed = RowCollator(default_tokenizer.pad_token_id, packed=True, pad_to_multiple_of=1)([samples])
    packed_scale = noise_scale(packed)[0]
    row_length = sum(len(sample) for sample in samples)
    cursor = 0
    for sample in samples:
        alone = RowCollator(default_tokenizer.pad_token_id, packed=False, pad_to_multiple_of=1)([[sample]])
        alone_scale = noise_scale(alone)[0]
        expected = alpha / (len(sample) * hidden) ** 0.5
        span = packed_scale[cursor : cursor + len(sample)]
        assert torch.allclose(span, alone_scale, rtol=1e-3)
        assert torch.allclose(span, torch.full_like(span, expected), rtol=1e-3)
        assert abs(expected - alpha / (row_length * hidden) ** 0.5) > 0.1 * expected
        cursor += len(sample)
