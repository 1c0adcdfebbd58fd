"""Blind A/B: seating, the vote log, the Wilson tally and DPO preference pairs."""

from __future__ import annotations

import json
import random

import pytest

from workbench.inference.votes import (
    BlindRound,
    VoteTally,
    append_vote,
    export_preference_pairs,
    read_votes,
    vote_record,
    votes_between,
    wilson_interval,
)


def sides(base_answer="base says", tuned_answer="tuned says", tuned_path="/runs/demo/adapter"):
    def side(answer, path):
        return {
            "source": {"kind": "adapter" if path else "base", "path": path},
            "conversation": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": answer}],
            "answer": answer,
            "settings": {"temperature": 0.0},
            "timing": {"ttft_s": 0.1, "tokens_per_s": 10.0, "tokens": 5},
        }

    return {"base": side(base_answer, None), "tuned": side(tuned_answer, tuned_path)}


def test_seating_is_random_and_votes_map_back_to_the_models():
    rng = random.Random(0)
    seatings = [BlindRound.draw(rng).tuned_on_left for _ in range(200)]
    assert 70 < sum(seatings) < 130
    left_tuned, right_tuned = BlindRound(True), BlindRound(False)
    assert left_tuned.winner("a") == "tuned" and left_tuned.winner("b") == "base"
    assert right_tuned.winner("a") == "base" and right_tuned.winner("b") == "tuned"
    assert right_tuned.winner("tie") == "tie" and right_tuned.winner("both_bad") == "both_bad"
    with pytest.raises(ValueError):
        left_tuned.winner("c")


def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0.4 < high < 0.45


def test_votes_append_read_and_tally(tmp_path):
    votes = [("a", True), ("a", False), ("b", False), ("tie", True), ("both_bad", False)]
    for vote, tuned_left in votes:
        append_vote(tmp_path, vote_record(BlindRound(tuned_left), vote, "Q?", None, sides()))
    (tmp_path / "ab_votes.jsonl").open("a").write('{"cut off')
    logged = read_votes(tmp_path)
    assert [v["winner"] for v in logged] == ["tuned", "base", "tuned", "tie", "both_bad"]
    assert logged[0]["tuned"]["timing"]["tokens"] == 5 and logged[0]["left"] == "tuned"
    tally = VoteTally.of(logged)
    assert (tally.tuned_wins, tally.base_wins, tally.ties, tally.both_bad) == (2, 1, 1, 1)
    assert tally.win_rate == pytest.approx(2.5 / 4)
    assert tally.interval == pytest.approx(wilson_interval(2.5, 4))
    low, high = tally.interval
    assert tally.summary() == (
        f"fine-tuned wins 62% (95% CI {low * 100:.0f}–{high * 100:.0f}%) · won 2 · lost 1 · tie 1 · both bad 1"
    )
    assert votes_between(logged, None, "/runs/demo/adapter") == logged
    assert votes_between(logged, None, "/elsewhere") == []


def test_preference_pairs_for_dpo(tmp_path):
    append_vote(tmp_path, vote_record(BlindRound(True), "a", "Q?", None, sides("meh", "great")))
    append_vote(tmp_path, vote_record(BlindRound(True), "b", "Q?", None, sides("right", "wrong")))
    append_vote(tmp_path, vote_record(BlindRound(True), "tie", "Q?", None, sides()))
    count = export_preference_pairs(read_votes(tmp_path), tmp_path / "pairs.jsonl")
    assert count == 2
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert pairs[0] == {
        "prompt": [{"role": "user", "content": "Q?"}],
        "chosen": [{"role": "assistant", "content": "great"}],
        "rejected": [{"role": "assistant", "content": "meh"}],
    }
    assert pairs[1]["chosen"][0]["content"] == "right"
