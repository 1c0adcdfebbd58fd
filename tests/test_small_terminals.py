"""80×24 is a supported size: no footer is cut (in every pane, with a text box focused, with a blind
vote open), and the demo's tokens step shows the green (trained) tokens it talks about."""

from pathlib import Path

import pytest

from screens.app import PANE_SCREENS, make_app

REPO = Path(__file__).resolve().parents[1]


def assert_footer_fits(screen, width: int = 80) -> None:
    keys = list(screen.query("Footer FooterKey"))
    palette = [key for key in keys if key.key == "ctrl+p"]
    others = [key for key in keys if key.key != "ctrl+p"]
    assert others, "no keys in the footer"
    right = max(key.region.right for key in others)
    limit = palette[0].region.x if palette else width
    assert right <= limit, [(key.key, key.region) for key in others]
    assert all(key.region.width >= len(key.description) + 1 for key in others), "a key's label is cut"


@pytest.mark.parametrize("pane", list(PANE_SCREENS))
async def test_no_footer_is_cut_at_80x24(pane, fixed_devices, monkeypatch):
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(REPO / "tests" / "fixtures" / "runs"))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane=pane)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert_footer_fits(app.screen)
        boxes = [box for box in app.screen.query("Input") if box.focusable and box.region.area]
        if boxes:
            boxes[0].focus()
            await pilot.pause()
            assert_footer_fits(app.screen)


async def test_the_chat_footer_fits_while_a_blind_vote_is_open(fixed_devices, monkeypatch):
    from workbench.inference.timing import Answer

    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(REPO / "tests" / "fixtures" / "runs"))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="chat")
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.blind, screen.round_voted = True, False
        screen.last_answers = [Answer("a"), Answer("b")]
        screen.refresh_bindings()
        await pilot.pause()
        assert screen.check_action("vote", ("a",))  # the vote is open: F6-F9 work
        assert_footer_fits(screen)


async def test_the_demo_tokens_step_shows_trained_tokens_at_80x24(fixed_devices, monkeypatch, tmp_path):
    """Step 4 ("What the model actually sees") zooms the row over the table on a short terminal and
    scrolls its tokens so the first trained (green) one is in view, under the guide."""
    from screens.demo import make_demo_app
    from widgets.data_detail import RowDetail
    from workbench.demo.pipeline import DemoOptions
    from workbench.demo.tour import step_index

    monkeypatch.chdir(REPO)
    app = make_demo_app(
        DemoOptions(data_file=Path("sample_data/messy_identity.jsonl"), heldout_file=None, runs_dir=tmp_path / "runs"),
        device_report=fixed_devices, load_model=False,
    )
    async with app.run_test(size=(80, 24)) as pilot:
        while app._guide is None or not app._guide.children:
            await pilot.pause(0.05)
        await app.show_step(step_index("masking"))
        for _ in range(600):
            await pilot.pause(0.05)
            if app._step_timer is None:
                break
        await pilot.pause(0.3)
        data = app.screen
        assert data.has_class("-zoom-detail")
        detail = data.query_one(RowDetail)
        example = detail.example
        assert example is not None and example.trained_token_count > 0
        scroll = detail.query_one("#detail-scroll")
        line = detail.first_trained_line()
        assert line is not None
        assert scroll.scroll_y <= line < scroll.scroll_y + scroll.scrollable_content_region.height
        assert scroll.scrollable_content_region.height >= 4  # more than the two lines it had under the table
        await app.show_step(step_index("memory"))
        await pilot.pause()
        assert not data.has_class("-zoom-detail")  # the next step gives the table back
