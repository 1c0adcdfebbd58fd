"""The Chat pane driven like a person would: both answers stream, timings show, blind votes log,
errors show in the pane, and the answers equal `workbench compare`'s."""

from __future__ import annotations

import json

import pytest
from chat_test_support import make_run_dir, make_tiny_adapter

from screens.app import ModelStatus, make_app
from widgets.chat_column import ChatColumn
from workbench.devices import inference_placement
from workbench.models import ResolvedModel, load_model, load_tokenizer


@pytest.fixture(scope="module")
def runs_root(tiny_model_dir, tmp_path_factory):
    adapter = make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("pane-adapter"))
    root = tmp_path_factory.mktemp("pane-runs")
    make_run_dir(root, "demo", tiny_model_dir, adapter, steps=(2, 4), best_step=4)
    return root


@pytest.fixture()
def chat_app(tiny_model_dir, runs_root, fixed_devices, monkeypatch, tmp_path):
    """The app on the Chat pane with the tiny model already 'loaded', runs under runs_root."""
    monkeypatch.setenv("WORKBENCH_RUNS_DIR", str(runs_root))
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    app = make_app(load_model=False, device_report=fixed_devices, initial_pane="chat")
    app.tokenizer = load_tokenizer(tiny_model_dir)
    dtype, device = inference_placement()  # as the app's own loader, so answers match the CLI's
    app.base_model = load_model(tiny_model_dir, dtype=dtype, device=device)
    app.resolved_model = ResolvedModel(tiny_model_dir, "tiny-llama", "local")
    app.model_status = ModelStatus("ready", "tiny-llama")
    return app


async def send(pilot, text: str) -> None:
    chat_input = pilot.app.screen.query_one("#chat-input")
    chat_input.value = text
    chat_input.focus()
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def column_text(screen, column_id: str) -> str:
    return screen.query_one(f"#{column_id}", ChatColumn).turns[-1].answer


async def start_an_endless_answer(pilot):
    """Ask for a 5,000-token answer and wait until its first tokens show; returns the screen."""
    from widgets.chat_settings import ChatSettings
    from workbench.inference.settings import SamplingSettings

    screen = pilot.app.screen
    screen.settings = ChatSettings(SamplingSettings(max_new_tokens=5000))
    chat_input = screen.query_one("#chat-input")
    chat_input.value = "Talk forever."
    chat_input.focus()
    await pilot.press("enter")
    while not any(column.turns and column.turns[-1].answer for column in screen.query(ChatColumn)):
        await pilot.pause(0.05)
    return screen


async def test_both_answers_stream_with_timings_and_match_the_cli(chat_app, runs_root, tmp_path, capsys):
    async with chat_app.run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        assert screen.sources[1].label == "demo · final", "defaults to the newest run's final adapter"
        await send(pilot, "What is your name?")
        left, right = column_text(screen, "column-left"), column_text(screen, "column-right")
        assert left and right and left != right
        timing = str(screen.query_one("#column-left .column-timing").render())
        assert "first token" in timing and "tok/s" in timing
        assert [len(history) for history in screen.histories] == [2, 2]
        max_new_tokens = screen.settings.left.max_new_tokens

    from workbench_cli.main import main

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is your name?\n")
    assert main(["compare", "--run", "demo", "--prompts", str(prompts), "--json", "--max-new-tokens", str(max_new_tokens)]) == 0
    [line] = capsys.readouterr().out.splitlines()  # JSON Lines, one object per prompt
    result = json.loads(line)
    assert (result["base"]["text"], result["tuned"]["text"]) == (left, right)


async def test_token_updates_are_coalesced_and_none_are_lost(chat_app, monkeypatch):
    """Repaints are rate-limited (at most one per interval), and the last one holds every token."""
    import time

    import screens.chat
    from screens.chat import ChatScreen
    from widgets.chat_settings import ChatSettings
    from workbench.inference.settings import SamplingSettings

    interval = 0.2
    monkeypatch.setattr(screens.chat, "REPAINT_INTERVAL_S", interval)
    updates = []
    original = ChatScreen.on_chat_screen_stream_update

    def counting(self, message):
        updates.append(message.texts)
        original(self, message)

    monkeypatch.setattr(ChatScreen, "on_chat_screen_stream_update", counting)
    async with chat_app.run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        screen.settings = ChatSettings(SamplingSettings(max_new_tokens=60))
        started = time.monotonic()
        await send(pilot, "Count to twenty.")
        elapsed = time.monotonic() - started
        assert len(updates) <= elapsed / interval + 2
        assert len(updates) < max(answer.tokens for answer in screen.last_answers)
        assert updates[-1] == tuple(answer.text for answer in screen.last_answers)
        assert updates[-1] == tuple(column_text(screen, c) for c in ('column-left', 'column-right'))


async def test_a_generation_error_shows_in_the_pane(chat_app):
    def broken_forward(*args, **kwargs):
        raise RuntimeError("simulated device failure")

    async with chat_app.run_test(size=(80, 24)) as pilot:
        chat_app.base_model.model.forward = broken_forward
        screen = pilot.app.screen
        await send(pilot, "Hello?")
        assert "generation failed: simulated device failure" in column_text(screen, "column-left")
        assert screen.query_one("#column-right", ChatColumn).turns[-1].state == "error"
        assert not screen.generating, "the pane is usable again"
        assert screen.histories == [[], []]


async def test_stop_cancels_mid_answer(chat_app):
    async with chat_app.run_test(size=(80, 24)) as pilot:
        screen = await start_an_endless_answer(pilot)
        await pilot.press("escape")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert not screen.generating
        assert all(answer.finish_reason == "cancelled" and answer.tokens < 5000 for answer in screen.last_answers)
        assert screen.query_one("#column-left", ChatColumn).turns[-1].state == "stopped"


async def test_blind_round_vote_reveal_and_tally(chat_app, runs_root):
    votes_file = runs_root / "demo" / "ab_votes.jsonl"
    votes_file.unlink(missing_ok=True)
    async with chat_app.run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        await pilot.press("ctrl+b")
        assert screen.blind
        assert screen.query_one("#column-left").border_title == "A (hidden)"
        assert screen.query_one("#vote-a").disabled, "no vote before the answers"
        await send(pilot, "Which of you is better?")
        assert not screen.query_one("#vote-a").disabled, "votes open once both answers are done"
        tuned_left = screen.blind_round.tuned_on_left
        await pilot.click("#vote-a")
        await pilot.pause()
        [vote] = [json.loads(line) for line in votes_file.read_text().splitlines()]
        assert vote["winner"] == ("tuned" if tuned_left else "base")
        assert vote["tuned"]["conversation"][-1]["content"] == vote["tuned"]["answer"]
        assert vote["tuned"]["timing"]["tokens"] > 0 and vote["base"]["settings"]["temperature"] == 0
        assert vote["tuned"]["source"]["label"] == "demo · final"
        assert "was" in screen.query_one("#column-left").border_title, "revealed after the vote"
        assert screen.query_one("#vote-a").disabled
        assert ("100%" if tuned_left else "0%") in str(screen.query_one("#vote-tally").render())
        await send(pilot, "Next question")
        assert screen.blind_round is not None and not screen.round_voted, "a new round"
        assert len(screen.histories[0]) == 2, "a new round starts a fresh conversation"
        assert screen.query_one("#chat-input").has_focus
        await pilot.press("f8")  # the keyboard vote, with the prompt box focused (over SSH, no mouse)
        await pilot.pause()
        assert screen.round_voted
        await pilot.press("f6")  # one vote per round
        await pilot.pause()
    votes = [json.loads(line) for line in votes_file.read_text().splitlines()]
    assert [vote["winner"] for vote in votes[1:]] == ["tie"]
    votes_file.unlink()


async def test_settings_dialog_and_training_mismatch_warning(chat_app, runs_root):
    from workbench.config.io import load_config, save_config

    config_path = runs_root / "demo" / "config.yaml"
    original = config_path.read_text()
    config = load_config(config_path)
    config.data.system_prompt = "You are Quokka."
    save_config(config, config_path)
    try:
        async with chat_app.run_test(size=(80, 24)) as pilot:
            screen = pilot.app.screen
            assert screen.settings.system_prompt == "You are Quokka.", "starts with the run's training prompt"
            assert not screen.query_one("#chat-warnings").has_class("-shown")
            await pilot.press("ctrl+o")
            dialog = pilot.app.screen
            dialog.query_one("#system-prompt").value = "You are a pirate."
            dialog.query_one("#left-max_new_tokens").value = "7"
            await pilot.click("#settings-apply")
            await pilot.pause()
            assert screen.settings.system_prompt == "You are a pirate."
            assert screen.settings.for_side(1).max_new_tokens == 7
            warning = str(screen.query_one("#chat-warnings").render())
            assert screen.query_one("#chat-warnings").has_class("-shown")
            assert "system prompt differs from training" in warning
            await send(pilot, "Ahoy?")
            assert all(answer.tokens <= 7 for answer in screen.last_answers)
            assert screen.last_prompts[1][0] == {"role": "system", "content": "You are a pirate."}
    finally:
        config_path.write_text(original)


async def test_bad_settings_are_refused_in_the_dialog(chat_app):
    async with chat_app.run_test(size=(80, 24)) as pilot:
        screen = pilot.app.screen
        await pilot.press("ctrl+o")
        dialog = pilot.app.screen
        dialog.query_one("#left-top_p").value = "2"
        await pilot.click("#settings-apply")
        await pilot.pause()
        assert pilot.app.screen is dialog, "the dialog stays open"
        assert "top_p" in str(dialog.query_one("#settings-error").render())
        await pilot.press("escape")
        assert screen.settings.left.top_p == 1.0


async def test_prompt_deck_replays_against_ticked_models(chat_app):
    from textual.widgets import DataTable, TextArea

    async with chat_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+t")
        deck = pilot.app.screen
        deck.query_one("#deck-prompts", TextArea).text = "First prompt\nSecond prompt"
        await pilot.press("ctrl+t")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        table = deck.query_one("#deck-table", DataTable)
        assert table.row_count == 2
        assert [str(c.label) for c in table.columns.values()] == ["prompt", "base model", "demo · final"]
        assert [len(row.answers) for row in deck.rows] == [2, 2]
        assert "done: 2 prompts" in str(deck.query_one("#deck-status").render())


@pytest.mark.parametrize("width", [60, 80])
async def test_columns_stack_when_narrow_and_sit_side_by_side_from_80(chat_app, width):
    async with chat_app.run_test(size=(width, 24)) as pilot:
        screen = pilot.app.screen
        left, right = screen.query_one("#column-left").region, screen.query_one("#column-right").region
        if width < 72:
            assert screen.has_class("-narrow") and left.y < right.y and left.width == right.width
        else:
            assert not screen.has_class("-narrow") and left.x < right.x and left.width >= 38


async def test_new_chat_mid_answer_drops_the_old_answer(chat_app):
    from widgets.chat_settings import ChatSettings
    from workbench.inference.settings import SamplingSettings

    async with chat_app.run_test(size=(80, 24)) as pilot:
        screen = await start_an_endless_answer(pilot)
        await pilot.press("ctrl+n")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        assert screen.histories == [[], []]
        assert all(column.turns == [] for column in screen.query(ChatColumn))
        screen.settings = ChatSettings(SamplingSettings(max_new_tokens=8))
        await send(pilot, "Fresh start")
        assert [len(history) for history in screen.histories] == [2, 2]
