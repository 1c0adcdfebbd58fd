"""Every row layout and storage the peers load, on files each test builds: LLaMA-Factory v1 parts,
OpenAI content parts and tool calls, glaive-style ShareGPT tools, TRL text and prompt/completion,
`datasets` Arrow files, save_to_disk directories and cached Hub ids, column mappings and
dataset_info.json entries; and export writing each layout back."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from workbench.data.conversation import ToolCall
from workbench.data.export import write_jsonl
from workbench.data.loading import load_conversations
from workbench.errors import WorkbenchError

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def write_jsonl_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def roles(conversation) -> list[str]:
    return [message.role for message in conversation.messages]


def part(kind: str, value: str) -> dict:
    return {"type": kind, "value": value}


# ---- LLaMA-Factory v1 ----------------------------------------------------------------------------


def test_llamafactory_v1_parts_loss_weight_reasoning_and_tool_calls(tmp_path):
    call = json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})
    rows = [
        {
            "messages": [
                {"role": "system", "content": [part("text", "Use the tools.")], "loss_weight": 0.0},
                {"role": "user", "content": [part("text", "Weather in "), part("text", "Oslo?")], "loss_weight": 0.0},
                {"role": "assistant", "content": [part("reasoning", "I should call the tool."), part("tool_call", call)], "loss_weight": 1.0},
                {"role": "tool", "content": [part("text", '{"temp": 3}')]},
                {"role": "assistant", "content": [part("text", "It is 3 °C.")], "loss_weight": 0},
            ],
            "tools": json.dumps([{"type": "function", "function": WEATHER_TOOL}]),
        },
        {"messages": [{"role": "user", "content": [part("text", "hi")], "loss_weight": 0.0},
                      {"role": "assistant", "content": [part("text", "Hello!")], "loss_weight": 1.0}]},
    ]
    loaded = load_conversations(write_jsonl_rows(tmp_path / "v1.jsonl", rows))

    assert (loaded.format, loaded.rows, loaded.detected) == ("llamafactory-v1", 2, True)
    first = loaded.conversations[0]
    assert roles(first) == ["system", "user", "assistant", "tool", "assistant"]
    assert first.messages[1].content == "Weather in Oslo?"  # text parts joined in order
    assert first.messages[2].reasoning == "I should call the tool."
    assert first.messages[2].content == ""
    assert first.messages[2].tool_calls == (ToolCall("get_weather", {"city": "Oslo"}),)
    assert [m.trained for m in first.messages] == [False, False, True, None, False]
    assert first.tools == ({"type": "function", "function": WEATHER_TOOL},)
    assert loaded.conversations[1].tools is None


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"role": "user", "content": [part("text", "Look:"), {"type": "image_url", "value": "a.jpg"}]},
         r"v1\.jsonl:1 \(row 0\): messages\[0\]\.content\[1\]\.type: 'image_url' parts are not supported"),
        ({"role": "user", "content": [part("text", "hi")], "loss_weight": 0.5},
         r"messages\[0\]\.loss_weight: expected 0 \(masked\) or 1 \(trained\), got 0\.5"),
    ],
)
def test_llamafactory_v1_refusals_name_the_part(tmp_path, message, expected):
    rows = [{"messages": [message, {"role": "assistant", "content": [part("text", "ok")], "loss_weight": 1}]}]
    with pytest.raises(WorkbenchError, match=expected):
        load_conversations(write_jsonl_rows(tmp_path / "v1.jsonl", rows))


# ---- OpenAI ----------------------------------------------------------------------------------------


def test_openai_text_parts_are_joined_and_an_image_part_is_refused_by_row_and_part(tmp_path):
    good = {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Name the "}, {"type": "text", "text": "capital."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Paris."}]},
    ]}
    with_image = {"messages": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "x.png"}}]},
        {"role": "assistant", "content": "A cat."},
    ]}
    loaded = load_conversations(write_jsonl_rows(tmp_path / "parts.jsonl", [good]))
    assert loaded.conversations[0].messages[0].content == "Name the capital."

    with pytest.raises(WorkbenchError) as caught:
        load_conversations(write_jsonl_rows(tmp_path / "image.jsonl", [good, with_image]))
    assert str(caught.value).startswith(
        f"{tmp_path / 'image.jsonl'}:2 (row 1): messages[2].content[1].type: 'image_url' parts are not supported"
    )


def test_openai_tool_calls_legacy_function_call_and_reasoning_are_structured(tmp_path):
    rows = [
        {"messages": [
            {"role": "user", "content": "Weather in Oslo and Rome?"},
            {"role": "assistant", "content": None, "reasoning_content": "Two cities, two calls.", "tool_calls": [
                {"id": "a1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
                {"id": "a2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
            ]},
            {"role": "tool", "tool_call_id": "a1", "content": "3"},
            {"role": "tool", "tool_call_id": "a2", "content": "21"},
            {"role": "assistant", "content": "Oslo 3 °C, Rome 21 °C.", "weight": 0},
        ], "tools": [{"type": "function", "function": WEATHER_TOOL}]},
        {"messages": [
            {"role": "user", "content": "Oslo?"},
            {"role": "assistant", "content": None, "function_call": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"role": "function", "name": "get_weather", "content": "3"},
            {"role": "assistant", "content": "3 °C."},
        ]},
    ]
    loaded = load_conversations(write_jsonl_rows(tmp_path / "tools.jsonl", rows))

    first, legacy = loaded.conversations
    assert first.messages[1].tool_calls == (
        ToolCall("get_weather", {"city": "Oslo"}, "a1"), ToolCall("get_weather", {"city": "Rome"}, "a2"))
    assert first.messages[1].content == "" and first.messages[1].reasoning == "Two cities, two calls."
    assert [m.name for m in first.messages[2:4]] == ["get_weather", "get_weather"]
    assert first.messages[4].trained is False
    assert legacy.messages[1].tool_calls == (ToolCall("get_weather", {"city": "Oslo"}),)
    assert roles(legacy) == ["user", "assistant", "tool", "assistant"] and legacy.messages[2].name == "get_weather"


# ---- ShareGPT with tools (glaive / LLaMA-Factory) -------------------------------------------------


def test_glaive_sharegpt_tools_are_wrapped_and_calls_parsed(tmp_path):
    rows = [
        {"conversations": [
            {"from": "human", "value": "Weather in Oslo and Rome?"},
            {"from": "function_call", "value": json.dumps([
                {"name": "get_weather", "arguments": {"city": "Oslo"}},
                {"name": "get_weather", "arguments": '{"city": "Rome"}'},
            ])},
            {"from": "observation", "value": "[3, 21]"},
            {"from": "gpt", "value": "Oslo 3 °C, Rome 21 °C."},
        ], "tools": json.dumps([WEATHER_TOOL])},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}],
         "tools": [{"type": "function", "function": WEATHER_TOOL}]},
        {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}], "tools": ""},
    ]
    loaded = load_conversations(write_jsonl_rows(tmp_path / "glaive.jsonl", rows))

    first, listed, empty = loaded.conversations
    assert roles(first) == ["user", "assistant", "tool", "assistant"]
    assert first.messages[1].tool_calls == (
        ToolCall("get_weather", {"city": "Oslo"}), ToolCall("get_weather", {"city": "Rome"}))
    assert first.tools == ({"type": "function", "function": WEATHER_TOOL},) == listed.tools
    assert empty.tools is None


def test_a_broken_function_call_value_names_the_turn(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": "Hi"}, {"from": "function_call", "value": "{not json"},
                               {"from": "observation", "value": "1"}, {"from": "gpt", "value": "ok"}]}]
    with pytest.raises(WorkbenchError, match=r"row 0\): conversations\[1\]\.value: not valid JSON"):
        load_conversations(write_jsonl_rows(tmp_path / "broken.jsonl", rows))


# ---- TRL ---------------------------------------------------------------------------------------------


def test_trl_text_rows_and_conversational_prompt_completion(tmp_path):
    text = load_conversations(write_jsonl_rows(tmp_path / "pretrain.jsonl", [{"text": "The sky is blue."}, {"text": "Water is wet."}]))
    assert (text.format, text.rows) == ("text", 2)
    assert text.conversations[1].text == "Water is wet." and text.conversations[1].messages == ()

    rows = [{
        "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Oslo?"}],
        "completion": [{"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]}],
        "tools": [{"type": "function", "function": WEATHER_TOOL}],
    }]
    loaded = load_conversations(write_jsonl_rows(tmp_path / "pc.jsonl", rows))
    conversation = loaded.conversations[0]
    assert loaded.format == "prompt-completion"
    assert roles(conversation) == ["system", "user", "assistant"]
    assert conversation.messages[2].tool_calls == (ToolCall("get_weather", {"city": "Oslo"}),)
    assert conversation.tools[0]["function"]["name"] == "get_weather"


# ---- datasets storage ----------------------------------------------------------------------------------


ALPACA_ROWS = {"instruction": ["Say hi", "Say bye", "Count to two"], "output": ["Hi!", "Bye!", "1, 2"]}


def test_save_to_disk_directory_and_its_splits(tmp_path):
    from datasets import Dataset, DatasetDict

    Dataset.from_dict(ALPACA_ROWS).save_to_disk(str(tmp_path / "single"))
    loaded = load_conversations(tmp_path / "single")
    assert (loaded.format, loaded.rows) == ("alpaca", 3)
    assert loaded.conversations[2].final_response == "1, 2"

    DatasetDict({"train": Dataset.from_dict(ALPACA_ROWS), "test": Dataset.from_dict({k: v[:1] for k, v in ALPACA_ROWS.items()})}).save_to_disk(
        str(tmp_path / "splits"))
    assert load_conversations(tmp_path / "splits").rows == 3  # train by default
    assert load_conversations(tmp_path / "splits", split="test").rows == 1
    with pytest.raises(WorkbenchError, match=r"splits: no split 'dev'; it has 'train', 'test'"):
        load_conversations(tmp_path / "splits", split="dev")
    (tmp_path / "plain").mkdir()
    with pytest.raises(WorkbenchError, match="not a `datasets` save_to_disk directory"):
        load_conversations(tmp_path / "plain")


def test_arrow_files_from_datasets_and_arrow_ipc(tmp_path):
    import pyarrow as pa
    import pyarrow.feather as feather
    from datasets import Dataset

    Dataset.from_dict(ALPACA_ROWS).save_to_disk(str(tmp_path / "saved"))
    shard = next((tmp_path / "saved").glob("*.arrow"))
    loaded = load_conversations(shard)
    assert (loaded.format, loaded.rows, loaded.conversations[0].first_prompt) == ("alpaca", 3, "Say hi")

    feather.write_feather(pa.table({"text": ["one", "two"]}), str(tmp_path / "ipc.arrow"))
    assert load_conversations(tmp_path / "ipc.arrow").format == "text"

    (tmp_path / "junk.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(WorkbenchError, match=r"junk\.arrow: not a readable Arrow file"):
        load_conversations(tmp_path / "junk.arrow")


def build_cached_hub_dataset(cache_dir: Path, dataset_id: str, rows: list[dict], tmp_path: Path) -> None:
    """Leave in `cache_dir` what an online `load_dataset(dataset_id)` leaves: the Arrow files under
    `<owner>___<name>/default/0.0.0/<hash>/` (prepared here by `datasets`' own JSON builder from a
    local file, then laid out under the Hub id's name)."""
    from datasets.packaged_modules.json.json import Json

    owner, name = dataset_id.split("/")
    source = write_jsonl_rows(tmp_path / "hub_rows.jsonl", rows)
    builder = Json(cache_dir=str(tmp_path / "build"), dataset_name=name, data_files={"train": [str(source)]}, hash="0123abcd")
    builder.download_and_prepare()
    (config_dir,) = (tmp_path / "build" / name).iterdir()
    shutil.move(str(config_dir), str(cache_dir / f"{owner}___{name}" / "default"))


def test_a_dataset_id_in_the_local_hf_cache_loads_offline_and_an_uncached_one_says_how_to_get_it(tmp_path, monkeypatch):
    cache = tmp_path / "hf_datasets"
    (cache / "northwind___faq").mkdir(parents=True)
    build_cached_hub_dataset(cache, "northwind/faq", [{"instruction": "Who are you?", "output": "Sage."}] * 2, tmp_path)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # offline is forced for the call, whatever the environment

    loaded = load_conversations("northwind/faq")
    assert (loaded.format, loaded.rows, loaded.conversations[0].final_response) == ("alpaca", 2, "Sage.")

    with pytest.raises(WorkbenchError) as caught:
        load_conversations("northwind/missing")
    message = str(caught.value)
    assert message.startswith(f"northwind/missing: not in the local Hugging Face datasets cache ({cache})")
    assert "load_dataset('northwind/missing')" in message and "\n" not in message


# ---- column mapping and dataset_info.json ----------------------------------------------------------------


def test_column_mapping_for_alpaca_and_sharegpt_tags_with_errors_in_the_files_names(tmp_path):
    qa = write_jsonl_rows(tmp_path / "qa.jsonl", [{"question": "2+2?", "answer": "4", "context": "math"}])
    loaded = load_conversations(qa, columns={"prompt": "question", "query": "context", "response": "answer"})
    assert loaded.format == "alpaca"
    assert [m.content for m in loaded.conversations[0].messages] == ["2+2?\nmath", "4"]

    dialog = [{"dialog": [{"speaker": "customer", "text": "My order?"}, {"speaker": "agent", "text": "On its way."}]}]
    tags = {"messages": "dialog", "role_tag": "speaker", "content_tag": "text", "user_tag": "customer", "assistant_tag": "agent"}
    loaded = load_conversations(write_jsonl_rows(tmp_path / "dialog.jsonl", dialog), columns=tags)
    assert loaded.format == "sharegpt"
    assert roles(loaded.conversations[0]) == ["user", "assistant"]
    assert loaded.conversations[0].final_response == "On its way."

    bad = [{"dialog": [{"speaker": "customer", "text": "Hi"}, {"speaker": "bot", "text": "Hello"}]}]
    with pytest.raises(WorkbenchError, match=r"dialog\.jsonl:1 \(row 0\): dialog\[1\]\.speaker: unknown role 'bot'"):
        load_conversations(write_jsonl_rows(tmp_path / "dialog.jsonl", bad), columns=tags)
    with pytest.raises(WorkbenchError, match=r"row 0\): answer: missing"):
        load_conversations(write_jsonl_rows(tmp_path / "qa2.jsonl", [{"question": "2+2?"}]),
                           columns={"prompt": "question", "response": "answer"})
    with pytest.raises(WorkbenchError, match=r"data\.columns\.promt: unknown key"):
        load_conversations(qa, columns={"promt": "question"})


def test_dataset_info_entries_are_read_as_llamafactory_describes_them(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_jsonl_rows(data_dir / "support.jsonl", [
        {"dialog": [{"role": "user", "content": "Refund?"}, {"role": "assistant", "content": "Within 30 days."}],
         "schemas": json.dumps([WEATHER_TOOL]), "sys": "You are support."},
    ])
    (data_dir / "dataset_info.json").write_text(json.dumps({
        "support": {"file_name": "support.jsonl", "formatting": "sharegpt",
                    "columns": {"messages": "dialog", "tools": "schemas", "system": "sys"},
                    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
        "prefs": {"file_name": "support.jsonl", "ranking": True, "columns": {"chosen": "a", "rejected": "b"}},
        "pictures": {"file_name": "support.jsonl", "formatting": "sharegpt", "columns": {"messages": "dialog", "images": "img"}},
    }))
    loaded = load_conversations(f"{data_dir}/dataset_info.json#support")
    conversation = loaded.conversations[0]
    assert (loaded.format, loaded.path) == ("sharegpt", data_dir / "support.jsonl")
    assert roles(conversation) == ["system", "user", "assistant"] and conversation.system == "You are support."
    assert conversation.tools[0]["function"]["name"] == "get_weather"

    for entry, reason in (("prefs", "preference"), ("pictures", "multimodal"), ("nothing", "no entry 'nothing'")):
        with pytest.raises(WorkbenchError, match=reason):
            load_conversations(f"{data_dir}/dataset_info.json#{entry}")
    with pytest.raises(WorkbenchError, match=r"name one entry as .*dataset_info\.json#NAME \(entries: support, prefs, pictures\)"):
        load_conversations(data_dir / "dataset_info.json")


# ---- export keeps each layout ----------------------------------------------------------------------------


def test_export_writes_tools_and_calls_in_each_layouts_own_spelling(tmp_path):
    rows = [{"messages": [
        {"role": "user", "content": "Weather in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "3"},
        {"role": "assistant", "content": "3 °C."},
    ], "tools": [{"type": "function", "function": WEATHER_TOOL}]}]
    source = write_jsonl_rows(tmp_path / "openai.jsonl", rows)
    before = (source.read_bytes(), os.stat(source).st_mtime_ns)
    loaded = load_conversations(source)

    write_jsonl(tmp_path / "again.jsonl", loaded.conversations, "messages")
    assert json.loads((tmp_path / "again.jsonl").read_text()) == rows[0]  # OpenAI in, the same OpenAI out

    write_jsonl(tmp_path / "glaive.jsonl", loaded.conversations, "sharegpt")
    sharegpt = json.loads((tmp_path / "glaive.jsonl").read_text())
    assert json.loads(sharegpt["tools"]) == [WEATHER_TOOL]  # LLaMA-Factory's JSON text of bare schemas
    assert sharegpt["conversations"][1] == {"from": "function_call", "value": '{"name": "get_weather", "arguments": {"city": "Oslo"}}'}
    assert sharegpt["conversations"][2]["from"] == "observation"

    for output_format in ("sharegpt", "llamafactory-v1", "prompt-completion"):
        write_jsonl(tmp_path / f"out.{output_format}.jsonl", loaded.conversations, output_format)
        back = load_conversations(tmp_path / f"out.{output_format}.jsonl").conversations[0]
        assert back.tools == loaded.conversations[0].tools
        call = back.messages[1].tool_calls[0]
        assert (call.name, call.arguments) == ("get_weather", {"city": "Oslo"})
    assert (source.read_bytes(), os.stat(source).st_mtime_ns) == before
