"""Loss masks through the real default tokenizer's chat template (SmolLM2: ChatML with <|im_end|>)."""

from __future__ import annotations

import copy

import pytest

from workbench.data.conversation import Conversation, Message
from workbench.data.templating import IGNORE_INDEX, render_training_example
from workbench.data.token_lengths import TokenCounter, measure_token_lengths


def conversation(*turns: tuple[str, str]) -> Conversation:
    return Conversation(tuple(Message(role, content) for role, content in turns), 0, "messages")


def trained_text(example) -> str:
    return "".join(text for text, label in zip(example.token_texts, example.labels) if label != IGNORE_INDEX)


def masked_text(example) -> str:
    return "".join(text for text, label in zip(example.token_texts, example.labels) if label == IGNORE_INDEX)


MULTI_TURN = conversation(
    ("user", "What is the capital of Portugal?"),
    ("assistant", "Lisbon."),
    ("user", "And its population?"),
    ("assistant", "About half a million in the city itself."),
)


def test_multi_turn_trains_every_answer_and_its_end_token_only(default_tokenizer):
    example = render_training_example(default_tokenizer, MULTI_TURN, max_seq_length=512)

    assert trained_text(example) == "Lisbon.<|im_end|>About half a million in the city itself.<|im_end|>"
    masked = masked_text(example)
    for masked_piece in ("What is the capital of Portugal?", "And its population?", "<|im_start|>assistant\n", "SmolLM"):
        assert masked_piece in masked
    assert example.eos_trained is True
    assert example.truncated is False


def test_input_ids_match_apply_chat_template(default_tokenizer):
    example = render_training_example(default_tokenizer, MULTI_TURN, max_seq_length=512)
    expected = default_tokenizer.apply_chat_template(MULTI_TURN.to_chat(), tokenize=True, return_dict=True)["input_ids"]

    assert example.input_ids == list(expected)
    assert example.full_length == len(expected)
    assert "".join(example.token_texts) == example.text


def test_end_of_turn_tokens_after_user_turns_are_masked(default_tokenizer):
    example = render_training_example(default_tokenizer, MULTI_TURN, max_seq_length=512)
    end_id = default_tokenizer.convert_tokens_to_ids("<|im_end|>")
    end_positions = [i for i, token in enumerate(example.input_ids) if token == end_id]
    trained_ends = [i for i in end_positions if example.labels[i] != IGNORE_INDEX]

    assert len(end_positions) == 5  # system, user, assistant, user, assistant
    assert len(trained_ends) == 2
    assert all(example.token_texts[i - 1] != "\n" for i in trained_ends)


def test_truncation_cuts_the_answer_and_reports_the_untrained_end(default_tokenizer):
    full = render_training_example(default_tokenizer, MULTI_TURN, max_seq_length=512)
    cut = render_training_example(default_tokenizer, MULTI_TURN, max_seq_length=full.full_length - 3)

    assert cut.truncated is True
    assert len(cut.input_ids) == len(cut.labels) == full.full_length - 3
    assert cut.input_ids == full.input_ids[: full.full_length - 3]
    assert cut.eos_trained is False
    assert cut.full_length == full.full_length


def test_system_prompt_none_keeps_the_templates_default(default_tokenizer):
    plain = conversation(("user", "Hi"), ("assistant", "Hello."))

    default = render_training_example(default_tokenizer, plain, 256)
    custom = render_training_example(default_tokenizer, plain, 256, system_prompt="You are Ada.")
    empty = render_training_example(default_tokenizer, plain, 256, system_prompt="")

    assert "named SmolLM" in default.text
    assert "You are Ada." in custom.text and "SmolLM" not in custom.text
    assert empty.text.startswith("<|im_start|>system\n<|im_end|>") and "SmolLM" not in empty.text
    assert empty.full_length < default.full_length
    own_system = conversation(("system", "Be terse."), ("user", "Hi"), ("assistant", "Hello."))
    kept = render_training_example(default_tokenizer, own_system, 256, system_prompt="ignored")
    assert "Be terse." in kept.text and "ignored" not in kept.text


def test_training_on_everything(default_tokenizer):
    example = render_training_example(default_tokenizer, MULTI_TURN, 512, assistant_only=False)

    assert example.labels == example.input_ids


def test_tool_results_are_masked_and_function_calls_trained(default_tokenizer):
    call = '{"name": "get_weather", "arguments": {"city": "Oslo"}}'
    tool_use = conversation(
        ("user", "Weather in Oslo?"),
        ("assistant", call),
        ("tool", '{"temperature": 4}'),
        ("assistant", "It is 4 degrees in Oslo."),
    )
    example = render_training_example(default_tokenizer, tool_use, 512)

    assert trained_text(example) == f"{call}<|im_end|>It is 4 degrees in Oslo.<|im_end|>"
    assert '{"temperature": 4}' in masked_text(example)
    assert example.eos_trained


def test_no_answer_means_no_trained_end(default_tokenizer):
    example = render_training_example(default_tokenizer, conversation(("user", "Hello?")), 128)

    assert example.trained_token_count == 0
    assert example.eos_trained is False


@pytest.fixture
def tokenizer_copy(default_tokenizer):
    return copy.deepcopy(default_tokenizer)


def test_template_without_end_token_is_reported(tokenizer_copy):
    tokenizer_copy.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    example = render_training_example(tokenizer_copy, conversation(("user", "Hi"), ("assistant", "Hello there.")), 64)

    assert trained_text(example).strip() == "Hello there."
    assert example.eos_trained is False


def test_template_that_rewrites_earlier_turns_falls_back_to_searching(tokenizer_copy):
    # Only the last message gets no end marker: prefixes of the conversation render differently.
    tokenizer_copy.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "{% if not loop.last %}<|im_end|>\n{% endif %}{% endfor %}"
    )
    example = render_training_example(tokenizer_copy, MULTI_TURN, 512)

    assert trained_text(example) == "Lisbon.<|im_end|>About half a million in the city itself."
    assert example.eos_trained is False


def test_batch_token_counts_equal_single_rendering(default_tokenizer):
    rows = [
        MULTI_TURN,
        conversation(("system", "Be brief."), ("user", "2+2?"), ("assistant", "4")),
        conversation(("user", "Say nothing."), ("assistant", "")),
        conversation(("user", " leading space and\n\nnewlines "), ("assistant", "\nStarts with a newline.")),
    ]
    lengths = measure_token_lengths(default_tokenizer, rows)

    for position, row in enumerate(rows):
        example = render_training_example(default_tokenizer, row, 4096)
        assert lengths.total[position] == example.full_length
        content_tokens = sum(
            len(default_tokenizer(m.content.strip(), add_special_tokens=False)["input_ids"])
            for m in row.messages
            if m.role == "assistant" and m.content.strip()
        )
        assert lengths.response[position] == content_tokens
    assert lengths.response[2] == 0


def test_token_counter_reuses_counts(default_tokenizer):
    counter = TokenCounter(default_tokenizer)
    first = counter.lengths([MULTI_TURN])
    counter.tokenizer = None  # a second count of the same object must not touch the tokenizer
    again = counter.lengths([MULTI_TURN, MULTI_TURN])

    assert list(again.total) == [first.total[0], first.total[0]]


def test_counting_by_pieces_equals_counting_whole_texts(default_tokenizer):
    from workbench.data import token_lengths

    rows = [
        MULTI_TURN,
        conversation(("user", "x"), ("assistant", "uses <|im_end|> literally, then more")),
        conversation(("system", ""), ("user", "\n\n  spaced  "), ("assistant", "  ok  ")),
        conversation(("user", "Only a question")),
    ]
    texts = token_lengths._render_batch(default_tokenizer, rows)
    splitter = token_lengths._control_token_splitter(default_tokenizer)
    backend = default_tokenizer.backend_tokenizer
    assert splitter is not None

    def count(counter):
        split = counter.split(rows, texts)
        return counter.count(rows, texts, split, counter.encode(split))

    by_pieces = count(token_lengths._PieceCounter(backend, splitter))
    whole = count(token_lengths._WholeTextCounter(backend))
    assert by_pieces[0] == whole[0]
    assert by_pieces[1][0] == whole[1][0] and by_pieces[1][2:] == whole[1][2:]
    assert by_pieces[1][1] < whole[1][1]  # an answer holding a control token is counted up to it


TRICKY_STARTS = ["'s fine", "42 is it", "...well", "¿Qué?", "日本語です", "\u200bhidden", "- item", "`code`", "Émile", "'ll do"]


def test_answers_counted_from_ids_match_offsets_on_varied_text(default_tokenizer, monkeypatch):
    """The header shortcut and the offsets give the same trained-token counts, also when the
    shortcut has to fall back (the header's ids not at the start of the piece)."""
    import random

    from workbench.data import token_lengths

    rng = random.Random(3)
    rows = []
    for index in range(120):
        words = rng.choices(["alpha", "beta,", "γ", "12", "\n", "end."], k=rng.randint(0, 12))
        answer = rng.choice(TRICKY_STARTS) + " " + " ".join(words)
        turns = [("user", f"question {index}?"), ("assistant", answer)]
        if index % 3 == 0:
            turns += [("user", "and then?"), ("assistant", rng.choice(TRICKY_STARTS))]
        rows.append(conversation(*turns))
    texts = token_lengths._render_batch(default_tokenizer, rows)
    splitter = token_lengths._control_token_splitter(default_tokenizer)
    backend = default_tokenizer.backend_tokenizer

    def count(counter):
        split = counter.split(rows, texts)
        return counter.count(rows, texts, split, counter.encode(split))

    whole = count(token_lengths._WholeTextCounter(backend))
    pieces = token_lengths._PieceCounter(backend, splitter)
    assert count(pieces) == whole
    assert any(header is not None for header in pieces.split(rows, texts)[2].values()), "the shortcut is taken"

    encode = token_lengths._PieceCounter.encode

    def wrong_headers(self, split):
        encodings, header_ids = encode(self, split)
        return encodings, {header: [0, *ids] for header, ids in header_ids.items()}

    monkeypatch.setattr(token_lengths._PieceCounter, "encode", wrong_headers)
    assert count(token_lengths._PieceCounter(backend, splitter)) == whole


def test_data_tokenizer_matches_the_workbench_tokenizer(default_model_dir, default_tokenizer):
    from workbench.data.token_lengths import load_data_tokenizer

    name, tokenizer = load_data_tokenizer(str(default_model_dir))
    text = default_tokenizer.apply_chat_template(MULTI_TURN.to_chat(), tokenize=False)

    assert type(tokenizer) is type(default_tokenizer)
    assert tokenizer.apply_chat_template(MULTI_TURN.to_chat(), tokenize=False) == text
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == default_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert (tokenizer.eos_token, tokenizer.pad_token) == (default_tokenizer.eos_token, default_tokenizer.pad_token)
