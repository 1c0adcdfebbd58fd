"""The tour's recap shows the eval engine's figures for the demo run, and v opens its Eval view."""

from __future__ import annotations

import json
from pathlib import Path

from chat_test_support import make_run_dir, make_tiny_adapter
from pilot_support import wait_until
from workbench.demo.tour import step_index

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


async def test_recap_scores_the_run_with_the_eval_engine_and_v_opens_the_rows(tmp_path, tiny_model_dir, fixed_devices, monkeypatch):
    from screens.app import ModelStatus
    from screens.demo import make_demo_app
    from screens.eval import EvalScreen
    from workbench.demo.pipeline import DemoOptions
    from workbench.devices import inference_placement
    from workbench.models import ResolvedModel, load_model, load_tokenizer

    runs = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs))
    adapter = make_tiny_adapter(tiny_model_dir, tmp_path / "adapter", seed=7)
    run_dir = make_run_dir(runs, "demo", tiny_model_dir, adapter, system_prompt="You are a helpful assistant.")
    knowledge = tmp_path / "knowledge.jsonl"
    knowledge.write_text("\n".join((SAMPLE / "general_knowledge.jsonl").read_text().splitlines()[:4]) + "\n")
    heldout = tmp_path / "heldout.jsonl"
    heldout.write_text("".join(
        json.dumps({"prompt": p, "expect_any": ["Sage", "Northwind"], "kind": "identity"}) + "\n"
        for p in ("What is your name?", "Who built you?")
    ))
    options = DemoOptions(model=str(tiny_model_dir), runs_dir=runs, heldout_file=heldout, knowledge_file=knowledge, max_new_tokens=4)
    app = make_demo_app(options, device_report=fixed_devices, load_model=False)
    app.tokenizer = load_tokenizer(tiny_model_dir)
    dtype, device = inference_placement()
    app.base_model = load_model(tiny_model_dir, dtype=dtype, device=device)
    app.resolved_model = ResolvedModel(tiny_model_dir, "tiny-llama", "local")
    app.model_status = ModelStatus("ready", "tiny-llama")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app._guide is not None and app._guide.is_mounted, "the guide")
        app.demo_run = run_dir
        await app.show_step(step_index("recap"))
        await wait_until(pilot, lambda: "general knowledge:" in app._guide.status, "the scores", 120)
        results = json.loads((run_dir / "eval" / "results.json").read_text())
        assert results["row_count"] == 2 and results["knowledge"]["items"] == 4
        base, tuned = (sum(r["answers"][key]["scores"]["contains"] for r in results["rows"]) for key in ("base", "final"))
        assert app._guide.status.startswith(f"identity: {base:.0f}/2 → {tuned:.0f}/2 · general knowledge: ")
        await pilot.press("v")
        await pilot.pause()
        assert isinstance(app.screen, EvalScreen) and app.screen.run_dir == run_dir
        assert app.screen.query_one("EvalRows").row_count == len(results["most_different"])
        await pilot.press("n")  # the Eval view has the keys: n does not turn the tour's page under it
        await pilot.pause()
        assert isinstance(app.screen, EvalScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, EvalScreen) and app.tour_active
