"""Waiting that informs: each answer's b and k are kept, the next answer's wait is estimated from
them (b + k·x of this machine), and the Chat pane shows the estimate and a progress bar."""

from __future__ import annotations

import json

from chat_test_support import make_run_dir, make_tiny_adapter  # noqa: F401 - the chat fixtures' helpers
from test_chat_pane import chat_app, runs_root, send  # noqa: F401 - pytest fixtures

from textual.widgets import ProgressBar

from widgets.chat_column import ChatColumn
from workbench.inference.latency import LatencyLog
from workbench.inference.timing import Answer


def answer(ttft: float, per_token: float, tokens: int = 21) -> Answer:
    return Answer(
        "x", token_ids=list(range(tokens)), started_at=0.0, first_token_at=ttft,
        last_token_at=ttft + per_token * (tokens - 1), ended_at=ttft + per_token * (tokens - 1),
    )


def test_the_estimate_is_b_plus_k_x_from_the_recent_answers(tmp_path):
    log = LatencyLog(tmp_path / "latency.jsonl")
    assert log.estimate("m", rows=2, threads=2, prompt_tokens=50, max_new_tokens=100) is None
    for prompt_tokens in (20, 40, 80):  # b grows with the prompt: 0.5 s + 10 ms a token
        log.record("m", 2, 2, prompt_tokens, answer(0.5 + 0.01 * prompt_tokens, 0.1))
    estimate = log.estimate("m", rows=2, threads=2, prompt_tokens=120, max_new_tokens=101)
    assert abs(estimate.first_token_s - 1.7) < 1e-6
    assert abs(estimate.per_token_s - 0.1) < 1e-6
    assert abs(estimate.longest_s - (1.7 + 0.1 * 100)) < 1e-6
    assert estimate.answers == 3
    assert "first token in ≈ 1.7 s" in estimate.words() and "up to 101 tokens in ≤ 12 s" in estimate.words()
    assert "b + k·x of this machine's last 3 answers" in estimate.words()


def test_answers_of_the_same_threads_and_rows_come_first(tmp_path):
    log = LatencyLog(tmp_path / "latency.jsonl")
    log.record("m", 2, 2, 30, answer(0.4, 0.05))  # both cores
    log.record("m", 2, 1, 30, answer(1.0, 0.12))  # one core, while a run trained
    log.record("m", 1, 2, 30, answer(0.2, 0.03))  # one row alone
    log.record("other", 2, 2, 30, answer(9.0, 1.0))
    assert log.estimate("m", rows=2, threads=1, prompt_tokens=30, max_new_tokens=10).per_token_s == 0.12
    assert log.estimate("m", rows=2, threads=2, prompt_tokens=30, max_new_tokens=10).per_token_s == 0.05
    other_split = log.estimate("m", rows=2, threads=4, prompt_tokens=30, max_new_tokens=10)
    assert other_split.measured_threads != 4 and "now 4" in other_split.words()


def test_cancelled_answers_and_broken_lines_teach_nothing(tmp_path):
    path = tmp_path / "latency.jsonl"
    log = LatencyLog(path)
    stopped = answer(0.3, 0.05)
    stopped.finish_reason = "cancelled"
    log.record("m", 2, 2, 30, stopped)
    assert not path.exists() or path.read_text() == ""
    path.write_text('{"model": "m", "rows": 2\n')  # a line cut short
    log.record("m", 2, 2, 30, answer(0.3, 0.05))
    assert len(log.read()) == 1


async def test_the_chat_pane_shows_the_expected_wait_and_keeps_the_timings(chat_app, tmp_path, monkeypatch):  # noqa: F811
    shown_while_waiting = []
    begin_turn = ChatColumn.begin_turn

    def spy(column, user_text, waiting="") -> None:
        begin_turn(column, user_text, waiting)
        shown_while_waiting.append(str(column.query_one(".column-timing").render()))

    monkeypatch.setattr(ChatColumn, "begin_turn", spy)
    async with chat_app.run_test(size=(120, 40)) as pilot:
        screen = pilot.app.screen
        log_path = tmp_path / "cache" / "latency.jsonl"
        await send(pilot, "What is your name?")  # the first answer: nothing measured before it
        assert "no answer measured on this machine yet" in shown_while_waiting[-1]
        assert log_path.is_file() and len(log_path.read_text().splitlines()) == 2  # one line per side
        record = json.loads(log_path.read_text().splitlines()[0])
        assert record["model"] == "tiny-llama" and record["rows"] == 2 and record["prompt_tokens"] > 0
        assert not screen.query_one("#chat-progress", ProgressBar).display  # shown only while answering

        await send(pilot, "And where do you live?")  # the second: estimated from the first before it starts
        waiting = shown_while_waiting[-1]
        assert "first token in ≈" in waiting and "b + k·x of this machine's last 2 answers" in waiting, waiting
        assert len(log_path.read_text().splitlines()) == 4
        assert not screen.query_one("#chat-progress", ProgressBar).display
