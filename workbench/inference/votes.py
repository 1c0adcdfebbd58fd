"""Blind A/B votes: who sits left each round, the vote log, the tally and DPO preference pairs.

Follows the Chatbot Arena convention: the two sides are shuffled every round and named only after
the vote; the choices are "A better", "B better", "tie" and "both bad".

The tally counts a tie as half a win for each side and leaves "both bad" out of the win rate
(it says nothing about which side is better; it is reported next to it).
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

from workbench.errors import WorkbenchError

VOTES_FILE = "ab_votes.jsonl"
PAIRS_FILE = "ab_preference_pairs.jsonl"
VOTE_CHOICES = {"a": "A better", "b": "B better", "tie": "Tie", "both_bad": "Both bad"}
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class BlindRound:
    """One blind round's seating: whether the fine-tuned side is shown as A (left)."""

    tuned_on_left: bool

    @classmethod
    def draw(cls, rng: Optional[random.Random] = None) -> "BlindRound":
        return cls(tuned_on_left=(rng or random).random() < 0.5)

    @property
    def left(self) -> str:
        return "tuned" if self.tuned_on_left else "base"

    @property
    def right(self) -> str:
        return "base" if self.tuned_on_left else "tuned"

    def winner(self, vote: str) -> str:
        """"tuned", "base", "tie" or "both_bad" for a vote on A (left) / B (right)."""
        if vote not in VOTE_CHOICES:
            raise ValueError(f"vote must be one of {sorted(VOTE_CHOICES)}, got {vote!r}")
        if vote == "a":
            return self.left
        if vote == "b":
            return self.right
        return vote


def vote_record(
    blind_round: BlindRound,
    vote: str,
    prompt: str,
    system_prompt: Optional[str],
    sides: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The JSON line logged for a vote.

    Args:
        sides: "base" and "tuned", each {"source": ModelSource.to_dict(), "conversation": messages
            including this round's answer, "answer": text, "settings": dict, "timing": dict}.
    """
    return {
        "time": time.time(),
        "vote": vote,
        "winner": blind_round.winner(vote),
        "left": blind_round.left,
        "prompt": prompt,
        "system_prompt": system_prompt,
        "base": sides["base"],
        "tuned": sides["tuned"],
    }


def append_vote(directory: Path, record: dict[str, Any]) -> Path:
    """Append one vote as one line (a single O_APPEND write, so concurrent writers never interleave)."""
    path = Path(directory) / VOTES_FILE
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def read_votes(directory: Path) -> list[dict[str, Any]]:
    """Every vote logged in `directory` (lines that are not complete JSON objects are skipped)."""
    path = Path(directory) / VOTES_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    votes = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("winner") in ("tuned", "base", "tie", "both_bad"):
            votes.append(record)
    return votes


def votes_between(votes: Iterable[dict[str, Any]], base_path: Optional[str], tuned_path: Optional[str]) -> list[dict]:
    """The votes of one pairing (the same two model directories; None is the base model)."""
    return [
        vote
        for vote in votes
        if (vote.get("base", {}).get("source") or {}).get("path") == base_path
        and (vote.get("tuned", {}).get("source") or {}).get("path") == tuned_path
    ]


def wilson_interval(successes: float, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion (stays inside [0, 1] and behaves with few votes)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class VoteTally:
    tuned_wins: int = 0
    base_wins: int = 0
    ties: int = 0
    both_bad: int = 0

    @classmethod
    def of(cls, votes: Iterable[dict[str, Any]]) -> "VoteTally":
        winners = [vote["winner"] for vote in votes]
        return cls(winners.count("tuned"), winners.count("base"), winners.count("tie"), winners.count("both_bad"))

    @property
    def total(self) -> int:
        return self.tuned_wins + self.base_wins + self.ties + self.both_bad

    @property
    def decided(self) -> int:
        """Votes that count in the win rate (both bad is left out)."""
        return self.tuned_wins + self.base_wins + self.ties

    @property
    def win_rate(self) -> Optional[float]:
        """The fine-tuned side's win rate, a tie counting as half a win."""
        return (self.tuned_wins + 0.5 * self.ties) / self.decided if self.decided else None

    @property
    def interval(self) -> Optional[tuple[float, float]]:
        return wilson_interval(self.tuned_wins + 0.5 * self.ties, self.decided) if self.decided else None

    def summary(self) -> str:
        """"fine-tuned wins 62% (95% CI 31–86%) · won 2 · lost 1 · tie 1 · both bad 1"."""
        if not self.total:
            return "no votes yet"
        counts = f"won {self.tuned_wins} · lost {self.base_wins} · tie {self.ties} · both bad {self.both_bad}"
        if self.win_rate is None:
            return f"fine-tuned: {counts}"
        low, high = self.interval
        return f"fine-tuned wins {self.win_rate:.0%} (95% CI {low * 100:.0f}–{high:.0%}) · {counts}"


def preference_pairs(votes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Votes with a winner as DPO preference pairs in TRL's conversational format.

    `prompt` is the winning side's conversation up to this round's user message (system prompt and
    its earlier turns included; on the first turn both sides share it); `chosen` / `rejected` are
    the two answers as one assistant message each. Ties and "both bad" give no pair.
    """
    pairs = []
    for vote in votes:
        winner = vote.get("winner")
        if winner not in ("tuned", "base"):
            continue
        loser = "base" if winner == "tuned" else "tuned"
        conversation = vote[winner].get("conversation") or []
        prompt = [dict(message) for message in conversation[:-1]]
        pairs.append(
            {
                "prompt": prompt,
                "chosen": [{"role": "assistant", "content": vote[winner]["answer"]}],
                "rejected": [{"role": "assistant", "content": vote[loser]["answer"]}],
            }
        )
    return pairs


def export_preference_pairs(votes: Iterable[dict[str, Any]], destination: Path) -> int:
    """Write preference pairs as JSONL (written to a temp file, then renamed); returns how many."""
    pairs = preference_pairs(votes)
    destination = Path(destination)
    if destination.is_dir():
        raise WorkbenchError(f"{destination}: is a directory; give a .jsonl file name for the preference pairs")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = destination.with_name(f".{destination.name}.partial")
    with open(staging, "w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair, ensure_ascii=False) + "\n")
    os.replace(staging, destination)
    return len(pairs)
