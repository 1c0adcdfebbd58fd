"""Chat template choice: built-in layouts on a base tokenizer, tools through Qwen2.5's template,
loss masks from prefix renders, raw-text rows, and what `config check` says about base models."""

from __future__ import annotations

import json

import pytest

from tokenizer_test_support import QWEN_ADDED_TOKENS, QWEN_SPECIAL_TOKENS, build_tiny_model, build_tokenizer
from workbench.data.chat_templates import BUILTIN_TEMPLATE_NAMES, prepare_tokenizer, resolve_chat_template
from workbench.data.conversation import Conversation, Message, ToolCall
from workbench.data.templating import IGNORE_INDEX, render_training_example, renders_tool_parts
from workbench.errors import WorkbenchError

END_OF_TURN = {
    "chatml": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "qwen2.5": "<|im_end|>",
    "mistral": "<|endoftext|>",  # the tokenizer's own eos
    "gemma": "<end_of_turn>",
    "phi3": "<|end|>",
    "alpaca": "<|endoftext|>",
}
TWO_TURNS = Conversation(
    (Message("user", "Hi there"), Message("assistant", "Hello!"), Message("user", "Bye"), Message("assistant", "Goodbye.")),
    0,
    "messages",
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
GLAIVE_ROW = Conversation(
    (
        Message("user", "What is the weather in Oslo?"),
        Message("assistant", "", tool_calls=(ToolCall("get_weather", {"city": "Oslo"}),)),
        Message("tool", '{"temperature": 4}'),
        Message("assistant", "It is 4 degrees in Oslo."),
    ),
    0,
    "sharegpt",
    tools=(WEATHER_TOOL,),
)


def trained_ids(example) -> list[int]:
    return [token for token, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]


@pytest.fixture(scope="module")
def base_tokenizer(tmp_path_factory):
    """A base model's tokenizer: no chat template, none of ChatML's tokens."""
    return build_tokenizer(tmp_path_factory.mktemp("base-tokenizer"))


@pytest.fixture(scope="module")
def qwen_model_dir(tmp_path_factory):
    """A tiny random Qwen2 model whose tokenizer has Qwen's special and tool-call tokens."""
    directory = tmp_path_factory.mktemp("tiny-qwen2")
    tokenizer = build_tokenizer(directory, special_tokens=QWEN_SPECIAL_TOKENS, added_tokens=QWEN_ADDED_TOKENS)
    return build_tiny_model(directory, tokenizer, architecture="qwen2", tie_word_embeddings=True)


@pytest.mark.parametrize("name", BUILTIN_TEMPLATE_NAMES)
def test_each_builtin_trains_exactly_the_answers_and_their_end_of_turn(base_tokenizer, name):
    prepared = prepare_tokenizer(base_tokenizer, name)
    tokenizer = prepared.tokenizer
    example = render_training_example(tokenizer, TWO_TURNS, 512, system_prompt="Be brief.")

    end = END_OF_TURN[name]
    decoded = tokenizer.decode(trained_ids(example))
    assert decoded.replace(" Hello", "Hello").replace(" Goodbye", "Goodbye") == f"Hello!{end}Goodbye.{end}"
    assert example.eos_trained
    assert tokenizer.eos_token == end  # generation stops where training taught the model to stop
    assert "Be brief." in example.text and "Hi there" in example.text
    for token in prepared.added_tokens:  # every added control token is one token now
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    assert base_tokenizer.chat_template is None and len(base_tokenizer) == 400, "the given tokenizer is untouched"


def test_chatml_adds_its_tokens_to_a_base_tokenizer(base_tokenizer):
    prepared = prepare_tokenizer(base_tokenizer, "chatml")

    assert prepared.added_tokens == ("<|im_start|>", "<|im_end|>")
    assert prepared.new_token_ids == (400, 401)
    assert prepared.eos_changed_from == "<|endoftext|>"
    assert prepared.tokenizer.pad_token == "<|endoftext|>"
    assert any("added 2 special token(s)" in note for note in prepared.notes())


def test_auto_refuses_a_tokenizer_without_a_template_with_the_names(base_tokenizer):
    with pytest.raises(WorkbenchError) as refused:
        prepare_tokenizer(base_tokenizer, "auto")

    message = str(refused.value)
    assert "has no chat template" in message
    for name in BUILTIN_TEMPLATE_NAMES:
        assert name in message


def test_auto_keeps_a_tokenizer_that_has_a_template(default_tokenizer):
    from workbench.data.chat_templates import builtin_template_text, chosen_template_text
    from workbench.data.system_prompt import template_with_default_system

    prepared = prepare_tokenizer(default_tokenizer, "auto")
    assert prepared.tokenizer is default_tokenizer
    assert prepared.added_tokens == () and prepared.eos_changed_from is None
    assert chosen_template_text(default_tokenizer, "auto") == default_tokenizer.chat_template
    assert chosen_template_text(default_tokenizer, "phi3") == builtin_template_text("phi3")

    baked = prepare_tokenizer(default_tokenizer, "auto", system_prompt="You are Sage.")
    assert baked.tokenizer is not default_tokenizer  # the shared tokenizer keeps its own template
    assert baked.tokenizer.chat_template == template_with_default_system(default_tokenizer.chat_template, "You are Sage.")


def test_a_jinja_file_is_read_and_its_control_tokens_added(base_tokenizer, tmp_path):
    path = tmp_path / "mine.jinja"
    path.write_text(
        "{% for m in messages %}<|turn|>{{ m.role }}: {{ m.content }}<|stop|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|turn|>assistant: {% endif %}",
        encoding="utf-8",
    )
    prepared = prepare_tokenizer(base_tokenizer, str(path))
    example = render_training_example(prepared.tokenizer, TWO_TURNS, 256)

    assert prepared.added_tokens == ("<|turn|>", "<|stop|>")
    assert prepared.tokenizer.decode(trained_ids(example)) == "Hello!<|stop|>Goodbye.<|stop|>"
    with pytest.raises(WorkbenchError, match="data.chat_template: .*no such file"):
        resolve_chat_template(str(tmp_path / "missing.jinja"))
    with pytest.raises(WorkbenchError, match="chatml, llama3"):
        resolve_chat_template("vicuna")


def test_qwen25_template_writes_tool_schemas_and_calls_and_trains_the_call(qwen_model_dir):
    from workbench.models import load_tokenizer

    prepared = prepare_tokenizer(load_tokenizer(qwen_model_dir), "qwen2.5")
    tokenizer = prepared.tokenizer
    example = render_training_example(tokenizer, GLAIVE_ROW, 2048)
    text = example.text

    assert prepared.added_tokens == ()  # Qwen's tokenizer has them all
    tools_block = text[text.index("<tools>\n") : text.index("\n</tools>")]
    assert json.loads(tools_block.removeprefix("<tools>\n")) == WEATHER_TOOL
    assert text.index("\n</tools>") < text.index("What is the weather in Oslo?")
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert f"<|im_start|>assistant\n{call}<|im_end|>" in text
    assert tokenizer.decode(trained_ids(example)) == f"{call}<|im_end|>It is 4 degrees in Oslo.<|im_end|>"
    masked = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels) if label == IGNORE_INDEX])
    assert "<tool_response>\n{\"temperature\": 4}\n</tool_response>" in masked
    assert "get_weather" in masked  # the schema in the prompt
    assert renders_tool_parts(tokenizer, GLAIVE_ROW)


def test_a_template_without_tools_is_detected(base_tokenizer):
    assert not renders_tool_parts(prepare_tokenizer(base_tokenizer, "chatml").tokenizer, GLAIVE_ROW)
    assert renders_tool_parts(prepare_tokenizer(base_tokenizer, "llama3").tokenizer, GLAIVE_ROW)


def test_quality_report_says_once_when_the_template_drops_tools(base_tokenizer):
    from workbench.data.checks import run_quality_checks

    rows = [GLAIVE_ROW, GLAIVE_ROW.with_messages(GLAIVE_ROW.messages), TWO_TURNS]
    chatml = run_quality_checks(rows, prepare_tokenizer(base_tokenizer, "chatml").tokenizer)
    qwen = run_quality_checks(rows, prepare_tokenizer(base_tokenizer, "qwen2.5").tokenizer)

    assert len(chatml.notes) == 1 and chatml.notes[0].startswith("2 rows carry tool schemas or tool calls")
    assert qwen.notes == []
    assert chatml.to_json()["notes"] == chatml.notes


def test_quality_report_says_when_the_template_drops_reasoning(base_tokenizer, default_tokenizer):
    from workbench.data.checks import run_quality_checks

    thinking = TWO_TURNS.with_messages((*TWO_TURNS.messages[:3], Message("assistant", "Goodbye.", reasoning="They leave.")))
    smol = run_quality_checks([thinking, TWO_TURNS], default_tokenizer)  # SmolLM2's template has no thinking
    chatml = run_quality_checks([thinking, TWO_TURNS], prepare_tokenizer(base_tokenizer, "chatml").tokenizer)

    assert smol.notes == [
        "1 row carries reasoning that this chat template does not write, so it is not trained; "
        "choose a template that renders thinking (chatml, qwen2.5 write it as <think>…</think>)"
    ]
    assert chatml.notes == []


def test_row_loss_weights_and_reasoning(base_tokenizer):
    tokenizer = prepare_tokenizer(base_tokenizer, "chatml").tokenizer
    row = Conversation(
        (
            Message("user", "Hi there"),
            Message("assistant", "Hello!", trained=False),
            Message("user", "Bye"),
            Message("assistant", "Goodbye.", reasoning="They are leaving."),
        ),
        0,
        "messages",
    )
    example = render_training_example(tokenizer, row, 512)

    assert tokenizer.decode(trained_ids(example)) == "<think>\nThey are leaving.\n</think>\n\nGoodbye.<|im_end|>"


def test_raw_text_rows_train_every_token_and_end_with_eos(base_tokenizer):
    from workbench.data.token_lengths import measure_token_lengths

    tokenizer = prepare_tokenizer(base_tokenizer, "chatml").tokenizer
    row = Conversation((), 0, "text", text="the amber birch")
    example = render_training_example(tokenizer, row, 64)

    assert example.labels == example.input_ids
    assert example.text == "the amber birch" + tokenizer.eos_token
    assert example.eos_trained
    lengths = measure_token_lengths(tokenizer, [row, TWO_TURNS])
    assert lengths.total[0] == example.full_length


def test_fast_counts_match_the_rendering_with_tools(qwen_model_dir):
    from workbench.data.token_lengths import measure_token_lengths
    from workbench.models import load_tokenizer

    tokenizer = prepare_tokenizer(load_tokenizer(qwen_model_dir), "qwen2.5").tokenizer
    rows = [GLAIVE_ROW, TWO_TURNS, GLAIVE_ROW]
    lengths = measure_token_lengths(tokenizer, rows)

    for position, row in enumerate(rows):
        example = render_training_example(tokenizer, row, 4096)
        assert lengths.total[position] == example.full_length
    end_tokens = 2  # each answer's <|im_end|> is trained but is not response text
    assert lengths.response[0] == render_training_example(tokenizer, GLAIVE_ROW, 4096).trained_token_count - end_tokens


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory, base_tokenizer):
    """A tiny random base model: its tokenizer has no chat template and no ChatML tokens."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-base"), base_tokenizer)


def test_config_check_refuses_auto_on_a_base_model_with_names_to_choose_from(base_model_dir, tmp_path, capsys):
    from workbench_cli.main import main
    from workbench.config.io import save_config
    from workbench.config.schema import RunConfig

    data = tmp_path / "train.json"
    data.write_text(json.dumps([{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(8)]))
    config = RunConfig.model_validate({
        "model": {"name_or_path": str(base_model_dir), "precision": "fp32"},
        "data": {"train_file": str(data), "max_seq_length": 128},
        "optimization": {"per_device_train_batch_size": 2},
        "evaluation": {"eval_steps": 2, "save_steps": 2},
    })
    save_config(config, tmp_path / "auto.yaml")
    assert main(["config", "check", str(tmp_path / "auto.yaml")]) == 2
    refusal = capsys.readouterr()
    line = next(line for line in (refusal.out + refusal.err).splitlines() if "data.chat_template" in line)
    assert "has none (a base model)" in line and "chatml, llama3, qwen2.5, mistral, gemma, phi3, alpaca" in line

    config.data.chat_template = "chatml"
    save_config(config, tmp_path / "chatml.yaml")
    assert main(["config", "check", str(tmp_path / "chatml.yaml")]) == 0
    capsys.readouterr()
    config.data.chat_template = "no-such-template"
    save_config(config, tmp_path / "bad.yaml")
    assert main(["config", "check", str(tmp_path / "bad.yaml")]) == 2
    assert "data.chat_template: 'no-such-template': no such file" in "".join(capsys.readouterr())


def test_data_show_marks_the_trained_spans_and_counts(base_model_dir, tmp_path, capsys):
    from workbench_cli.main import main

    data = tmp_path / "chat.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]} for i in range(3)]
    data.write_text("\n".join(json.dumps(row) for row in rows) + "\n")

    assert main(["data", "show", str(data), "--row", "2", "--model", str(base_model_dir), "--chat-template", "chatml",
                 "--system-prompt", "You are Sage."]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{data}:3 (row 2) · messages · {base_model_dir.name} · chat template chatml"
    counts = next(position for position, line in enumerate(out) if line.startswith("tokens "))
    body = "\n".join(out[1 : counts - 1])
    assert body == (
        "<|im_start|>system\nYou are Sage.<|im_end|>\n<|im_start|>user\nquestion 2<|im_end|>\n"
        "<|im_start|>assistant\n[[answer 2<|im_end|>]]\n"
    )
    tokens, trained, masked = (int(part.split()[1]) for part in out[counts].split(" · ")[:3])
    assert tokens == trained + masked and trained >= 2
    assert "truncated no" in out[counts] and "end-of-turn trained yes" in out[counts]
    assert out[counts + 1].startswith("note: chat template chatml: added 2 special token(s) the tokenizer lacked: <|im_start|> <|im_end|>")

    assert main(["data", "show", str(data), "--row", "3", "--model", str(base_model_dir), "--chat-template", "chatml"]) == 2
    assert "--row 3: no such row (the file has 3 rows" in capsys.readouterr().err
    assert main(["data", "show", str(data), "--row", "0", "--model", str(base_model_dir)]) == 2
    assert "has no chat template" in capsys.readouterr().err


async def test_data_pane_token_view_uses_the_chosen_template(fixed_devices, base_model_dir, tmp_path):
    from test_data_pane import open_file, settle

    from screens.app import make_app
    from widgets.data_detail import RowDetail

    data = tmp_path / "chat.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "question"}, {"role": "assistant", "content": "answer"}]}) + "\n")
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="data")
    app.config_store.update("model.name_or_path", str(base_model_dir))
    app.config_store.update("data.chat_template", "chatml")
    async with app.run_test(size=(100, 40)) as pilot:
        await open_file(pilot, data)
        screen = app.screen
        detail = screen.query_one(RowDetail)
        await pilot.press("m")
        await settle(pilot, lambda: detail.example is not None)
        trained = "".join(t for t, label in zip(detail.example.token_texts, detail.example.labels) if label != IGNORE_INDEX)
        assert trained == "answer<|im_end|>"
        assert screen.model_tokenizer.chat_template is None, "the model's own tokenizer is left as it is"

        app.config_store.update("data.chat_template", "auto")
        await settle(pilot, lambda: screen.tokenizer is None)
        assert "has no chat template" in screen.tokenizer_note
