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
