"""The guided tour in the TUI, driven with the Pilot: every step lands on its pane and sets it up,
with the tiny model, a slice of the messy sample file and a two-step training run."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilot_support import wait_until
from workbench.demo.tour import TOUR, step_index

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture
def demo_options(tmp_path, tiny_model_dir, monkeypatch):
    from workbench.demo.pipeline import DemoOptions

    rows = (SAMPLE / "messy_identity.jsonl").read_text(encoding="utf-8").splitlines()
    data = tmp_path / "messy.jsonl"
    data.write_text("\n".join(rows[:60] + [rows[138]]) + "\n", encoding="utf-8")
    prompts = tmp_path / "deck.txt"
    prompts.write_text("Who made you?\nWhat is 2 plus 2?\nWho should I thank for you?\n", encoding="utf-8")
    runs = tmp_path / "runs"
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs))
    return DemoOptions(
        data_file=data, prompts_file=prompts, heldout_file=None, model=str(tiny_model_dir), max_steps=2,
        runs_dir=runs, max_new_tokens=4,
    )


def guide_title(app) -> str:
    from widgets.demo_guide import GuidePanel

    panels = list(app.screen.query(GuidePanel))
    assert len(panels) == 1, "exactly one guide panel, on the pane showing"
    return panels[0].step.title


async def test_the_tour_walks_every_pane_and_sets_each_step_up(demo_options, fixed_devices):
    from textual.widgets import TabbedContent

    from screens.demo import make_demo_app
    from widgets.data_detail import RowDetail

    app = make_demo_app(demo_options, device_report=fixed_devices)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app._guide is not None and app._guide.is_mounted, "the guide")
        assert app.current_mode == "data" and guide_title(app) == TOUR[0].title

        visited = []
        for index in range(1, len(TOUR)):
            await pilot.press("n")
            await pilot.pause()
            step = TOUR[index]
            if step.key == "problems":
                await wait_until(pilot, lambda: app.screen.query_one(TabbedContent).active == "tab-quality", "the Quality tab")
                assert app.screen.report.count("exact_duplicates") > 0
            elif step.key == "clean":
                cleaned = demo_options.runs_dir / "demo-data" / "messy.clean.jsonl"
                await wait_until(pilot, lambda: app.config_store.config.data.train_file == str(cleaned), "the cleaned file")
                assert len(app.screen.session.applied) == 6
                assert 0 < len(cleaned.read_text().splitlines()) < 61
                toasts = [note for note in app._notifications if note.severity == "information"]
                assert not toasts, "routine toasts would cover the guide's text"
            elif step.key == "memory":
                await wait_until(pilot, lambda: app.screen.last_estimate is not None, "the memory estimate")
                assert "trainable" in str(app.screen.query_one("#mem-title").render())
            elif step.key == "masking":
                await wait_until(pilot, lambda: app.screen.query_one(RowDetail).mode == "model", "the model view")
                assert "Sage" in (app.screen.query_one(RowDetail).conversation.final_response or "")
            elif step.key == "loss":
                await wait_until(pilot, lambda: app.demo_run is not None, "the training run")
                assert app.selected_run == app.demo_run
            elif step.key == "compare":
                await wait_until(
                    pilot, lambda: app.current_mode == "chat" and app.screen.pending_user_text == "Who made you?",
                    "the question in Chat", 240,
                )
                assert app.screen.sources[1].run_dir == app.demo_run.resolve()
                assert app.screen.settings.for_side(1).max_new_tokens == 4
                await wait_until(pilot, lambda: not app.screen.generating, "both answers")
                assert all(answer is not None for answer in app.screen.last_answers)
            elif step.key == "vote":
                await wait_until(pilot, lambda: app.screen.pending_user_text == "Who should I thank for you?", "a blind round")
                assert app.screen.blind and app.screen.blind_round is not None
                await wait_until(pilot, lambda: not app.screen.generating, "both blind answers")
                vote_a = app.screen.query_one("#vote-a")
                assert not vote_a.disabled, "the room can vote once both answers are in"
            assert app.current_mode == step.pane, step.key
            assert guide_title(app) == step.title
            visited.append(app.current_mode)
        assert set(visited) == {"data", "memory", "hyperparameters", "train", "chat"}

        await pilot.press("n")  # past the last step: the tour ends, the workbench stays
        await pilot.pause()
        assert not app.tour_active and app._guide is None


async def test_back_key_and_typing_in_a_text_box(demo_options, fixed_devices):
    from textual.widgets import Input

    from screens.demo import make_demo_app

    app = make_demo_app(demo_options, device_report=fixed_devices, load_model=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app._guide is not None, "the guide")
        await app.show_step(step_index("memory"))
        await pilot.pause()
        assert app.current_mode == "memory"
        await pilot.press("b")
        await pilot.pause()
        assert app.tour_index == step_index("masking") and app.current_mode == "data"

        from screens.demo import AUTO_FOCUS_WINDOW_S

        await pilot.pause(AUTO_FOCUS_WINDOW_S)  # a person clicks into a box later than a pane focuses one
        app.screen.query_one("#data-search", Input).focus()
        await pilot.pause()
        await pilot.press("n", "b", "q")
        await pilot.pause()
        assert app.tour_index == step_index("masking"), "keys typed into a text box stay there"
        assert app.screen.query_one("#data-search", Input).value == "nbq"
        await pilot.press("pagedown")  # a presentation clicker turns the page even while typing
        await pilot.pause()
        assert app.tour_index == step_index("memory") and app.current_mode == "memory"
        await pilot.press("pageup")
        await pilot.pause()
        assert app.tour_index == step_index("masking")

        app.set_focus(None)
        await pilot.press("q")
        await pilot.pause()
        assert not app.tour_active
