"""The Eval view (Train pane, v): evaluation in a worker, the checkpoint chart, differing rows into Chat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chat_test_support import make_run_dir, make_tiny_adapter
from screens.app import ModelStatus, make_app
from widgets.eval_view import EvalRows, EvalView
from widgets.train_plots import CurvePlot
from workbench.config.io import load_config, save_config
from workbench.devices import inference_placement
from workbench.models import ResolvedModel, load_model, load_tokenizer


@pytest.fixture(scope="module")
def runs_root(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-view-runs")
    adapter = make_tiny_adapter(tiny_model_dir, root / "adapter-src", seed=5)
    run_dir = make_run_dir(root, "demo", tiny_model_dir, adapter, steps=(2, 4), best_step=4)
    questions = root / "questions.jsonl"
    questions.write_text("".join(
        json.dumps({"prompt": prompt, "expect_any": ["Sage"], "kind": "identity"}) + "\n"
        for prompt in ("What is your name?", "Who are you?", "Introduce yourself.")
    ))
    config = load_config(run_dir / "config.yaml")
    config.evaluation.eval_file = str(questions)  # what workbench eval RUN asks (no validation split here)
    save_config(config, run_dir / "config.yaml")
    return root


@pytest.fixture()
def eval_app(tiny_model_dir, runs_root, fixed_devices, monkeypatch, tmp_path):
    """The app on the Train pane with the tiny model 'loaded', runs under runs_root."""
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs_root))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="train")
    app.tokenizer = load_tokenizer(tiny_model_dir)
    dtype, device = inference_placement()
    app.base_model = load_model(tiny_model_dir, dtype=dtype, device=device)
    app.resolved_model = ResolvedModel(tiny_model_dir, "tiny-llama", "local")
    app.model_status = ModelStatus("ready", "tiny-llama")
    return app


async def test_eval_runs_in_a_worker_charts_checkpoints_and_opens_a_row_in_chat(eval_app, runs_root, monkeypatch, tmp_path):
    from screens.eval import EvalScreen

    # Three questions instead of the shipped 300 keep the test short; the set is read the same way.
    knowledge = tmp_path / "knowledge.jsonl"
    shipped = (Path(__file__).resolve().parent.parent / "sample_data" / "general_knowledge.jsonl").read_text().splitlines()
    knowledge.write_text("\n".join(shipped[:3]) + "\n")
    monkeypatch.setattr("workbench.evaluation.knowledge.KNOWLEDGE_FILE", knowledge)

    run_dir = runs_root / "demo"
    async with eval_app.run_test(size=(120, 40)) as pilot:
        eval_app.open_run(run_dir, "train")
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        screen = eval_app.screen
        assert isinstance(screen, EvalScreen)
        assert screen.query_one(EvalRows).row_count == 0  # nothing evaluated yet
        await pilot.press("r")
        await pilot.pause()
        await eval_app.workers.wait_for_complete()
        await pilot.pause()

        results = json.loads((run_dir / "eval" / "results.json").read_text())
        assert [m["key"] for m in results["models"]] == ["base", "final", "step-2", "step-4"]
        assert results["knowledge"]["items"] == 3 and results["row_count"] == 3
        curves = {curve.label: curve for curve in screen.query_one("#eval-chart", CurvePlot).curves}
        assert list(curves["contains"].steps) == [0, 2, 4, 4]  # base at 0, the checkpoints, final at the run's step
        assert list(curves["general knowledge"].steps) == [0, 2, 4, 4]
        table = screen.query_one(EvalRows)
        assert table.row_count == len(results["most_different"]) > 0
        headline = str(screen.query_one(EvalView).query_one("#eval-headline").render())
        assert "identity:" in headline and "general knowledge:" in headline

        first = results["rows"][results["most_different"][0]]["prompt"]
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        for _ in range(20):
            await pilot.pause(0.1)
            if eval_app.current_mode == "chat" and eval_app.screen.query("#chat-input"):
                if eval_app.screen.query_one("#chat-input").value == first or eval_app.screen.generating:
                    break
        await eval_app.workers.wait_for_complete()
        await pilot.pause()
        chat = eval_app.screen
        assert eval_app.current_mode == "chat"
        assert [source.label for source in chat.sources] == ["base model", "demo · final"]
        assert chat.pending_user_text == first  # asked to both sides


async def test_a_run_never_evaluated_says_so_and_escape_goes_back(eval_app, runs_root, tiny_model_dir, tmp_path):
    from screens.eval import EvalScreen

    adapter = make_tiny_adapter(tiny_model_dir, tmp_path / "adapter", seed=6)
    fresh = make_run_dir(tmp_path / "runs", "fresh", tiny_model_dir, adapter)
    async with eval_app.run_test(size=(100, 30)) as pilot:
        screen = EvalScreen(fresh)
        await eval_app.push_screen(screen)
        await pilot.pause()
        assert "No evaluation yet" in str(screen.query_one("#eval-headline").render())
        assert screen.query_one(EvalRows).row_count == 0
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(eval_app.screen, EvalScreen)
