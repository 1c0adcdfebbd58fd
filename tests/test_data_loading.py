"""Loading real-world-shaped files in the four formats, and one-line errors for every bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from workbench.data.conversation import ToolCall
from workbench.data.loading import load_conversations
from workbench.errors import WorkbenchError

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def roles(conversation) -> list[str]:
    return [message.role for message in conversation.messages]


def test_alpaca_json_array_with_input_system_and_history():
    loaded = load_conversations(FIXTURES / "alpaca.json")

    assert (loaded.format, loaded.rows, loaded.detected) == ("alpaca", 4, True)
    translated = loaded.conversations[1]
    assert translated.messages[0].content == "Translate the sentence into French.\nThe library opens at nine."
    assert translated.final_response == "La bibliothèque ouvre à neuf heures."
    with_history = loaded.conversations[3]
    assert roles(with_history) == ["system", "user", "assistant", "user", "assistant"]
    assert with_history.system == "Answer briefly."
    assert with_history.messages[1].content == "Are you a chemistry tutor?"
    assert [c.source_index for c in loaded.conversations] == [0, 1, 2, 3]


def test_json_file_holding_json_lines_as_datasets_writes_it():
    loaded = load_conversations(FIXTURES / "alpaca_datasets_export.json")

    assert (loaded.format, loaded.rows) == ("alpaca", 3)
    assert loaded.conversations[2].source_line == 3
    assert loaded.conversations[2].messages[0].content == "Classify the animal.\nPenguin"


def test_sharegpt_with_function_calls_and_observations():
    loaded = load_conversations(FIXTURES / "sharegpt_tools.json")

    assert (loaded.format, loaded.rows) == ("sharegpt", 3)
    weather = loaded.conversations[0]
    assert roles(weather) == ["user", "assistant", "tool", "assistant"]
    # The call is structured (never JSON pasted into the content) and the glaive-style bare tool
    # schema is wrapped in the chat-template shape.
    assert weather.messages[1].content == ""
    assert weather.messages[1].tool_calls == (ToolCall("get_current_weather", {"city": "Lisbon", "unit": "celsius"}),)
    assert weather.messages[2].content == '{"temperature": 21, "condition": "sunny"}'
    assert weather.tools[0]["type"] == "function"
    assert weather.tools[0]["function"]["name"] == "get_current_weather"
    assert weather.tools[0]["function"]["parameters"]["required"] == ["city"]
    assert roles(loaded.conversations[1]) == ["user", "assistant", "tool", "assistant"] * 2
    assert loaded.conversations[2].tools is None  # "[]" carries no tools


def test_sharegpt_jsonl_multi_turn_with_system_turn():
    loaded = load_conversations(FIXTURES / "sharegpt_multiturn.jsonl")

    assert (loaded.format, loaded.rows) == ("sharegpt", 2)
    assert roles(loaded.conversations[0]) == ["system", "user", "assistant", "user", "assistant"]
    assert loaded.conversations[1].final_response.count("\n") == 2


def test_openai_messages_with_text_parts_and_tool_calls():
    loaded = load_conversations(FIXTURES / "openai_messages.jsonl")

    assert (loaded.format, loaded.rows) == ("messages", 3)
    parts = loaded.conversations[1]
    assert parts.system == "Marv is a factual chatbot that is also sarcastic."
    assert parts.messages[1].content == "Who wrote 'Romeo and Juliet'?"
    tool_use = loaded.conversations[2]
    assert roles(tool_use) == ["user", "assistant", "tool", "assistant"]
    # arguments arrive as JSON text and become a dict; the result names the call it answers.
    assert tool_use.messages[1].tool_calls == (ToolCall("get_current_weather", {"location": "Boston, MA"}, "call_1"),)
    assert tool_use.messages[2].name == "get_current_weather"
    assert tool_use.tools[0]["function"]["name"] == "get_current_weather"
    assert parts.messages[2].trained is True  # OpenAI's per-message weight 1


def test_prompt_completion_as_text_and_as_messages():
    loaded = load_conversations(FIXTURES / "prompt_completion.jsonl")

    assert (loaded.format, loaded.rows) == ("prompt-completion", 2)
    assert [m.content for m in loaded.conversations[0].messages] == ["Complete the proverb: Actions speak", " louder than words."]
    assert roles(loaded.conversations[1]) == ["user", "assistant"]


def test_csv_cells_stay_text():
    loaded = load_conversations(FIXTURES / "alpaca.csv")

    assert (loaded.format, loaded.rows) == ("alpaca", 3)
    assert loaded.conversations[1].messages[0].content == "Write a greeting, politely."
    assert loaded.conversations[2].final_response == "007"


def test_parquet_with_nested_messages(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [json.loads(line) for line in (FIXTURES / "sharegpt_multiturn.jsonl").read_text().splitlines()]
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)

    loaded = load_conversations(path)
    assert (loaded.format, loaded.rows) == ("sharegpt", 2)
    assert roles(loaded.conversations[0]) == ["system", "user", "assistant", "user", "assistant"]


def test_format_override_is_checked_per_row():
    with pytest.raises(WorkbenchError, match=r"alpaca\.json: row 0: messages: missing"):
        load_conversations(FIXTURES / "alpaca.json", format="messages")
    assert load_conversations(FIXTURES / "alpaca.json", format="alpaca").detected is False


def write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


BAD_FIXTURES = [
    ("truncated.json", r"truncated\.json:3: invalid JSON .*truncated"),
    ("broken_line.jsonl", r"broken_line\.jsonl:2: invalid JSON at column 61 \(Unterminated string"),
    ("top_level_object.json", r"top_level_object\.json: the top-level JSON value is an object \(its list-valued keys: 'data'\)"),
    ("unknown_schema.jsonl", r"unknown_schema\.jsonl:1 \(row 0\): unknown schema \(keys: answer, question\)"),
    ("wrong_type.jsonl", r"wrong_type\.jsonl:2 \(row 1\): output: expected a string, got a int"),
    ("roles_out_of_order.jsonl", r"roles_out_of_order\.jsonl:2 \(row 1\): messages\[1\]\.role: 'user' after 'user'"),
    ("empty.jsonl", r"empty\.jsonl: the file is empty"),
]


@pytest.mark.parametrize(("name", "expected"), BAD_FIXTURES)
def test_bad_inputs_give_one_line_and_leave_the_file_alone(tmp_path, name, expected):
    path = tmp_path / name
    shutil.copy2(FIXTURES / "bad" / name, path)
    before = (path.read_bytes(), os.stat(path).st_mtime_ns)

    with pytest.raises(WorkbenchError, match=expected) as caught:
        load_conversations(path)

    assert "\n" not in str(caught.value)
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == before


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("binary.jsonl", b'{"a": 1}\n\x00\x01\x02\xff', r"binary\.jsonl:2: binary content \(a NUL byte at offset 9\)"),
        ("latin1.jsonl", '{"instruction": "ok", "output": "ok"}\n{"instruction": "café", "output": "x"}\n'.encode("latin-1"),
         r"latin1\.jsonl:2: not valid UTF-8 \(byte 0xe9 at column 21\)"),
        ("utf16.json", '[{"instruction": "a", "output": "b"}]'.encode("utf-16"), r"utf16\.json: the file is UTF-16"),
        ("spaces.json", b"  \n\n ", r"spaces\.json: the file is empty"),
        ("empty_list.json", b"[]", r"empty_list\.json: no rows"),
        ("number.json", b"42", r"number\.json: the top-level JSON value is int"),
        ("strings.json", b'["a", "b"]', r"strings\.json: row 0: expected an object, got str"),
        ("array.jsonl", b'[{"instruction": "a", "output": "b"}]\n', r"array\.jsonl:1: expected a JSON object per line, got list; this looks like a JSON array"),
        ("bad_part.jsonl", b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}\n',
         r"bad_part\.jsonl:1 \(row 0\): messages\[0\]\.content\[0\]\.type: 'image_url' parts are not supported"),
        ("bad_role.jsonl", b'{"conversations": [{"from": "narrator", "value": "x"}]}\n',
         r"bad_role\.jsonl:1 \(row 0\): conversations\[0\]\.from: unknown role 'narrator'"),
        ("gpt_first.jsonl", b'{"conversations": [{"from": "gpt", "value": "x"}]}\n',
         r"gpt_first\.jsonl:1 \(row 0\): conversations\[0\]\.from: 'assistant' as the first turn"),
        ("history.json", b'[{"instruction": "a", "output": "b", "history": [["only one"]]}]',
         r"history\.json: row 0: history\[0\]: expected a \[question, answer\] pair"),
        ("data.txt", b"hello", r"data\.txt: unsupported file type '\.txt'"),
        ("not.parquet", b"PAR1 this is not parquet", r"not\.parquet: not a readable Parquet file"),
        ("ragged.csv", b"instruction,output\na,b\nc,d,e\n", r"ragged\.csv:3: invalid CSV"),  # the line of the bad row
    ],
)
def test_generated_bad_inputs(tmp_path, name, data, expected):
    path = write_bytes(tmp_path, name, data)
    before = os.stat(path).st_mtime_ns

    with pytest.raises(WorkbenchError, match=expected) as caught:
        load_conversations(path)

    assert "\n" not in str(caught.value)
    assert path.read_bytes() == data and os.stat(path).st_mtime_ns == before


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(WorkbenchError, match="no such file"):
        load_conversations(tmp_path / "nope.jsonl")
    with pytest.raises(WorkbenchError, match="is a directory"):
        load_conversations(tmp_path)
    with pytest.raises(WorkbenchError, match="--format: unknown format 'chatml'"):
        load_conversations(FIXTURES / "alpaca.json", format="chatml")
