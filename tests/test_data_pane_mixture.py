"""The Data pane's mixture summary: with data.sources in the run config, one line per source with
its rows, its share of the training mix and its tokens."""

from __future__ import annotations

import json

from test_data_pane import data_app, settle
from training_test_support import varied_rows, write_alpaca


async def test_the_summary_lists_each_source_of_a_mixture_with_rows_and_tokens(fixed_devices, tmp_path):
    domain = tmp_path / "domain.jsonl"
    domain.write_text("".join(json.dumps({"question": f"Q{i}?", "answer": f"A{i}."}) + "\n" for i in range(10)))
    general = write_alpaca(tmp_path / "general.json", varied_rows(30))
    app = data_app(fixed_devices)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        line = screen.query_one("#data-mixture")
        await settle(pilot, lambda: screen.tokenizer is not None)
        assert not line.display  # no mixture configured

        app.config_store.update("data.validation_split", 0.0)
        app.config_store.update("data.sources", [
            {"path": str(domain), "columns": {"prompt": "question", "response": "answer"}, "weight": 1},
            {"path": str(general), "name": "general", "weight": 3},
        ])
        await settle(pilot, lambda: "tokens," in str(line.render()))

        text = str(line.render())
        assert line.display
        assert "mixture of 2 sources (interleave_under): 40 training rows" in text
        assert "domain: 10 rows (alpaca), 10 train → 10 in the mix (25%)" in text
        assert "general: 30 rows (alpaca), 30 train → 30 in the mix (75%)" in text

        app.config_store.update("data.sources", [])
        await settle(pilot, lambda: not line.display)


def test_the_conversation_view_shows_tools_calls_reasoning_loss_weights_and_raw_text():
    from widgets.data_detail import conversation_text
    from workbench.data.conversation import Conversation, Message, ToolCall

    weather = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    conversation = Conversation(
        (Message("user", "Oslo?"),
         Message("assistant", "", (ToolCall("get_weather", {"city": "Oslo"}),), reasoning="Call the tool.", trained=False),
         Message("tool", "3"), Message("assistant", "3 °C.")),
        0, "llamafactory-v1", tools=(weather,),
    )
    shown = conversation_text(conversation).plain
    assert "tools offered: get_weather" in shown
    assert 'assistant (masked: loss weight 0)\nCall the tool.\n→ get_weather({"city": "Oslo"})' in shown
    assert "(empty)" not in shown  # a turn that only calls a tool is not empty
    raw = conversation_text(Conversation((), 1, "text", text="Plain prose.")).plain
    assert "text (every token trained)\nPlain prose." in raw
