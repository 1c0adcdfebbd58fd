"""ChatEngine on the tiny model: batched base + adapter rows, streaming, cancel, errors, limits."""

from __future__ import annotations

import threading

import pytest
from chat_test_support import make_tiny_adapter

from workbench.errors import WorkbenchError
from workbench.inference.engine import ChatEngine, GenerationJob, engine_for
from workbench.inference.prompting import build_messages
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import BASE_SOURCE, source_from_directory
from workbench.inference.streaming import SideFinished, TextDelta

GREEDY_8 = SamplingSettings(max_new_tokens=8)


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter-a"), seed=1)


@pytest.fixture(scope="module")
def second_adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter-b"), seed=2)


@pytest.fixture(scope="module")
def dora_adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter-dora"), seed=3, use_dora=True)


@pytest.fixture(scope="module")
def saved_modules_adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter-lm-head"), seed=4, modules_to_save=["lm_head"])


@pytest.fixture(scope="module")
def biased_model_dir(tmp_path_factory, default_tokenizer):
    from conftest import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-biased"), default_tokenizer, attention_bias=True)


@pytest.fixture()
def engine(tiny_model_dir):
    return ChatEngine.load(str(tiny_model_dir), placement=("fp32", "cpu"))  # the references below are fp32


def reference_greedy(model_dir, adapter_dir, messages, max_new_tokens, force_length=True):
    """Plain transformers/PEFT generate on a fresh copy of the model: the answer to match."""
    import torch
    from peft import PeftModel

    from workbench.inference.prompting import encode_prompt
    from workbench.models import load_model, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir)).eval()
    ids = torch.tensor([encode_prompt(tokenizer, messages)])
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            min_new_tokens=max_new_tokens if force_length else None,
            pad_token_id=tokenizer.pad_token_id,
        )
    return out[0, ids.shape[1] :].tolist()


@pytest.mark.parametrize("adapter", ["adapter_dir", "dora_adapter_dir", "saved_modules_adapter_dir"])
def test_base_and_adapter_rows_in_one_batch_match_each_model_alone(engine, tiny_model_dir, adapter, request):
    """Plain LoRA shares the batch through row masks; DoRA (which neither masks nor PEFT can mix)
    and an adapter with fully trained module copies (modules_to_save, which masks cannot route)
    run their side after the base's: either way each side answers as its model alone."""
    adapter_dir = request.getfixturevalue(adapter)
    tuned = source_from_directory(adapter_dir)
    messages = build_messages(None, [], "Say something.")
    base_answer, tuned_answer = engine.generate(
        [GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(tuned, messages, GREEDY_8)], force_length=True
    )
    assert base_answer.token_ids == reference_greedy(tiny_model_dir, None, messages, 8)
    assert tuned_answer.token_ids == reference_greedy(tiny_model_dir, adapter_dir, messages, 8)
    assert base_answer.token_ids != tuned_answer.token_ids, "the adapter must change the answer"
    assert engine._peft is not None and len(engine._peft.peft_config) == 1, "one copy of the weights, one adapter"


def test_rows_of_different_length_are_left_padded_and_still_match(engine, tiny_model_dir, adapter_dir):
    tuned = source_from_directory(adapter_dir)
    short = build_messages("Be brief.", [], "Hi")
    long = build_messages(None, [{"role": "user", "content": "Earlier question?"}, {"role": "assistant", "content": "Earlier answer."}], "And now a longer follow-up question, please?")
    base_answer, tuned_answer = engine.generate(
        [GenerationJob(BASE_SOURCE, short, GREEDY_8), GenerationJob(tuned, long, GREEDY_8)], force_length=True
    )
    assert base_answer.token_ids == reference_greedy(tiny_model_dir, None, short, 8)
    assert tuned_answer.token_ids == reference_greedy(tiny_model_dir, adapter_dir, long, 8)


def test_two_adapters_compare_in_one_batch(engine, tiny_model_dir, adapter_dir, second_adapter_dir):
    first, second = source_from_directory(adapter_dir), source_from_directory(second_adapter_dir)
    messages = build_messages(None, [], "Compare us.")
    answers = engine.generate([GenerationJob(first, messages, GREEDY_8), GenerationJob(second, messages, GREEDY_8)], force_length=True)
    assert answers[0].token_ids == reference_greedy(tiny_model_dir, adapter_dir, messages, 8)
    assert answers[1].token_ids == reference_greedy(tiny_model_dir, second_adapter_dir, messages, 8)


def test_plain_lora_rows_are_routed_by_mask_and_the_masks_are_removed_after(engine, tiny_model_dir, adapter_dir, monkeypatch):
    import peft.tuners.lora.layer as lora_layer

    mixed_calls = []
    original = lora_layer.Linear._mixed_batch_forward
    monkeypatch.setattr(
        lora_layer.Linear, "_mixed_batch_forward", lambda self, *a, **k: mixed_calls.append(1) or original(self, *a, **k)
    )
    tuned = source_from_directory(adapter_dir)
    messages = build_messages(None, [], "Say something.")
    engine.generate([GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(tuned, messages, GREEDY_8)], force_length=True)
    assert not mixed_calls, "plain LoRA adapters take the row-mask route"
    lora_outputs = [m for m in engine._peft.modules() if isinstance(m, lora_layer.Linear)]
    assert lora_outputs and not any(m.lora_B[name]._forward_hooks for m in lora_outputs for name in m.lora_B)
    # The adapter state after a masked batch still answers each side alone correctly.
    (alone,) = engine.generate([GenerationJob(tuned, messages, GREEDY_8)], force_length=True)
    assert alone.token_ids == reference_greedy(tiny_model_dir, adapter_dir, messages, 8)
    (base_alone,) = engine.generate([GenerationJob(BASE_SOURCE, messages, GREEDY_8)], force_length=True)
    assert base_alone.token_ids == reference_greedy(tiny_model_dir, None, messages, 8)


def test_an_adapter_is_switched_off_once_its_rows_are_done_and_the_rest_still_match(engine, tiny_model_dir, adapter_dir):
    """A tuned row that ends after 2 tokens beside a base row of 8: the adapter runs for the 2
    forward passes its row needs, not the batch's 8, and every answer is still its model's own."""
    import peft.tuners.lora.layer as lora_layer

    tuned = source_from_directory(adapter_dir)
    messages = build_messages(None, [], "Say something.")
    short = SamplingSettings(max_new_tokens=2)
    engine.generate([GenerationJob(tuned, messages, short)])  # attach before counting
    counted = next(m.lora_B[name] for m in engine._peft.modules() if isinstance(m, lora_layer.Linear) for name in m.lora_B)
    calls = []
    handle = counted.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    try:
        base_answer, tuned_answer = engine.generate(
            [GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(tuned, messages, short)], force_length=True
        )
        assert calls == [2, 2], "the adapter ran for the prefill and the tuned row's second token only"
        assert base_answer.token_ids == reference_greedy(tiny_model_dir, None, messages, 8)
        assert tuned_answer.token_ids == reference_greedy(tiny_model_dir, adapter_dir, messages, 2)
        calls.clear()
        (alone,) = engine.generate([GenerationJob(tuned, messages, GREEDY_8)], force_length=True)
    finally:
        handle.remove()
    assert len(calls) == 8, "the adapter is on again for the next batch"
    assert alone.token_ids == reference_greedy(tiny_model_dir, adapter_dir, messages, 8)


def test_with_two_adapters_the_one_done_first_is_switched_off_and_the_other_stays_on(
    engine, tiny_model_dir, adapter_dir, second_adapter_dir
):
    first, second = source_from_directory(adapter_dir), source_from_directory(second_adapter_dir)
    messages = build_messages(None, [], "Compare us.")
    short = SamplingSettings(max_new_tokens=2)
    base_answer, first_answer, second_answer = engine.generate(
        [GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(first, messages, short), GenerationJob(second, messages, GREEDY_8)],
        force_length=True,
    )
    assert base_answer.token_ids == reference_greedy(tiny_model_dir, None, messages, 8)
    assert first_answer.token_ids == reference_greedy(tiny_model_dir, adapter_dir, messages, 2)
    assert second_answer.token_ids == reference_greedy(tiny_model_dir, second_adapter_dir, messages, 8)


def test_an_adapter_that_trained_the_base_biases_leaves_the_base_side_its_own(biased_model_dir, tmp_path):
    """PEFT's bias="all" saves the base layers' biases with the adapter and loads them into the
    base model itself; such an adapter answers from its own merged copy, so the base side stays the base."""
    engine = ChatEngine.load(str(biased_model_dir), placement=("fp32", "cpu"))
    adapter_dir = make_tiny_adapter(biased_model_dir, tmp_path / "bias-adapter", seed=5, bias="all")
    tuned = source_from_directory(adapter_dir)
    messages = build_messages(None, [], "Say something.")
    base_answer, tuned_answer = engine.generate(
        [GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(tuned, messages, GREEDY_8)], force_length=True
    )
    assert base_answer.token_ids == reference_greedy(biased_model_dir, None, messages, 8)
    assert tuned_answer.token_ids == reference_greedy(biased_model_dir, adapter_dir, messages, 8)
    assert base_answer.token_ids != tuned_answer.token_ids
    (base_again,) = engine.generate([GenerationJob(BASE_SOURCE, messages, GREEDY_8)], force_length=True)
    assert base_again.token_ids == base_answer.token_ids


def test_merged_model_runs_as_a_second_model_and_matches_its_adapter(engine, tiny_model_dir, adapter_dir, tmp_path):
    from peft import PeftModel

    from workbench.models import load_model, load_tokenizer

    merged_dir = tmp_path / "merged"
    merged = PeftModel.from_pretrained(load_model(tiny_model_dir), str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(merged_dir, safe_serialization=True)
    load_tokenizer(tiny_model_dir).save_pretrained(merged_dir)
    source = source_from_directory(merged_dir)
    assert source.kind == "model"
    messages = build_messages(None, [], "Merged?")
    base_answer, merged_answer = engine.generate(
        [GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(source, messages, GREEDY_8)], force_length=True
    )
    assert base_answer.token_ids == reference_greedy(tiny_model_dir, None, messages, 8)
    assert merged_answer.token_ids == reference_greedy(tiny_model_dir, adapter_dir, messages, 8)


def test_stream_deltas_add_up_to_the_answers_with_timings(engine, adapter_dir):
    tuned = source_from_directory(adapter_dir)
    messages = build_messages(None, [], "Stream please.")
    stream = engine.start([GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(tuned, messages, GREEDY_8)], force_length=True)
    texts = {0: "", 1: ""}
    finished = []
    for event in stream:
        if isinstance(event, TextDelta):
            assert event.side not in finished, "no text after a side finished"
            texts[event.side] += event.text
        else:
            assert isinstance(event, SideFinished)
            finished.append(event.side)
    assert sorted(finished) == [0, 1]
    for side, answer in enumerate(stream.answers):
        assert answer.text == texts[side]
        assert answer.tokens == 8 and answer.finish_reason == "length"
        assert 0 < answer.ttft_s <= answer.total_s
        assert answer.decode_tokens_per_s > 0
        assert "b + k·x" in answer.latency_words()


def test_each_side_stops_at_its_own_max_new_tokens(engine, adapter_dir):
    tuned = source_from_directory(adapter_dir)
    messages = build_messages(None, [], "Lengths.")
    answers = engine.generate(
        [
            GenerationJob(BASE_SOURCE, messages, SamplingSettings(max_new_tokens=3)),
            GenerationJob(tuned, messages, SamplingSettings(max_new_tokens=7)),
        ],
        force_length=True,
    )
    assert [answer.tokens for answer in answers] == [3, 7]


def test_cancel_stops_every_side_mid_generation(engine, adapter_dir):
    tuned = source_from_directory(adapter_dir)
    messages = build_messages(None, [], "Long answer please.")
    long = SamplingSettings(max_new_tokens=400)
    stream = engine.start([GenerationJob(BASE_SOURCE, messages, long), GenerationJob(tuned, messages, long)], force_length=True)
    for event in stream:
        if isinstance(event, TextDelta):
            stream.cancel()
    assert all(answer.finish_reason == "cancelled" for answer in stream.answers)
    assert all(answer.tokens < 400 for answer in stream.answers)


def test_an_error_inside_generate_reaches_the_consumer_instead_of_hanging(engine, adapter_dir):
    tuned = source_from_directory(adapter_dir)
    engine.attach(tuned)

    def broken_forward(*args, **kwargs):
        raise RuntimeError("simulated out of memory")

    engine._base.model.forward = broken_forward
    messages = build_messages(None, [], "Fail.")
    outcome = {}

    def consume():
        try:
            list(engine.start([GenerationJob(BASE_SOURCE, messages, GREEDY_8), GenerationJob(tuned, messages, GREEDY_8)]))
        except RuntimeError as error:
            outcome["error"] = str(error)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the consumer hung"
    assert outcome == {"error": "simulated out of memory"}
    assert not engine._lock.locked(), "the lock is released after a failure"


def test_sides_with_different_sampling_share_one_batch(engine):
    messages = build_messages(None, [], "Sample me.")
    greedy_alone = engine.generate([GenerationJob(BASE_SOURCE, messages, GREEDY_8)], force_length=True)[0]
    sampled = SamplingSettings(temperature=1.5, top_k=50, top_p=0.95, max_new_tokens=8, seed=7)
    first = engine.generate([GenerationJob(BASE_SOURCE, messages, sampled), GenerationJob(BASE_SOURCE, messages, GREEDY_8)], force_length=True)
    again = engine.generate([GenerationJob(BASE_SOURCE, messages, sampled), GenerationJob(BASE_SOURCE, messages, GREEDY_8)], force_length=True)
    assert first[1].token_ids == greedy_alone.token_ids, "the greedy row stays greedy next to a sampled row"
    assert first[0].token_ids == again[0].token_ids, "the same seed gives the same sampled answer"
    assert first[0].token_ids != greedy_alone.token_ids


def test_per_row_sampling_applies_each_rows_settings():
    import torch

    from workbench.inference.streaming import PerRowSampling

    scores = torch.randn(3, 100)
    processed = PerRowSampling(
        [SamplingSettings(), SamplingSettings(temperature=1.0, top_k=5), SamplingSettings(temperature=2.0)]
    )(torch.zeros(3, 1, dtype=torch.long), scores.clone())
    finite = torch.isfinite(processed).sum(dim=1).tolist()
    assert finite == [1, 5, 100]
    assert processed[0].argmax() == scores[0].argmax()
    assert torch.allclose(processed[2], scores[2] / 2.0)


def test_attaching_an_adapter_for_another_model_is_a_one_line_error(engine, tmp_path, default_tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    wider = tmp_path / "wider-model"
    config = LlamaConfig(
        vocab_size=len(default_tokenizer), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(wider, safe_serialization=True)
    default_tokenizer.save_pretrained(wider)
    wrong = make_tiny_adapter(wider, tmp_path / "wrong-adapter")
    with pytest.raises(WorkbenchError) as raised:
        engine.attach(source_from_directory(wrong))
    assert "\n" not in str(raised.value)
    assert "does not fit" in str(raised.value)
    assert not any("lora" in name for name, _ in engine._base.named_modules()), "the base model is untouched"


def test_one_engine_per_loaded_model(tiny_model_dir):
    from workbench.models import load_model, load_tokenizer

    model, tokenizer = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    assert engine_for(model, tokenizer) is engine_for(model, tokenizer)


def test_least_used_adapters_are_detached_but_never_ones_in_use(engine, adapter_dir, second_adapter_dir, monkeypatch, tmp_path):
    import shutil

    import workbench.inference.engine as engine_module

    monkeypatch.setattr(engine_module, "MAX_ATTACHED_ADAPTERS", 2)
    copies = []
    for index in range(3):
        copy = tmp_path / f"copy-{index}"
        shutil.copytree(adapter_dir if index % 2 == 0 else second_adapter_dir, copy)
        copies.append(source_from_directory(copy))
    messages = build_messages(None, [], "Deck.")
    answers = engine.generate([GenerationJob(BASE_SOURCE, messages, GREEDY_8), *(GenerationJob(c, messages, GREEDY_8) for c in copies)])
    assert len(answers) == 4, "a request may hold more adapters than the cap while it runs"
    engine.attach(copies[0])
    assert len(engine._peft.peft_config) == 2, "afterwards the least used ones are detached"
    assert answers[1].token_ids == answers[3].token_ids, "the same adapter weights give the same answer"
