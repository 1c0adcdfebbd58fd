"""The Chat pane's conversation as an engine object: both sides' histories, the turn being answered
and the blind round, with the transitions the pane goes through. The screen renders it; the tests
drive it without a screen."""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from workbench.inference.engine import GenerationJob
from workbench.inference.prompting import build_messages
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import ModelSource
from workbench.inference.votes import BlindRound

Messages = list[dict[str, str]]


class ChatSession:
    """Two sides answering the same user turns, each with its own history.

    Attributes:
        histories: per side, the finished user/assistant turns.
        last_prompts: per side, the messages of the latest turn (what the model was asked).
        last_answers: per side, the latest turn's answer (None until it finishes, or when it failed).
        pending_user_text: the latest user turn.
        generation: counts the turns started; a finished turn of an older count is ignored.
        generating: a turn is being answered.
        blind_round: the open blind A/B round (None outside blind mode or before the first turn).
        round_voted: the round's vote is in.
    """

    def __init__(self) -> None:
        self.histories: list[Messages] = [[], []]
        self.last_prompts: list[Optional[Messages]] = [None, None]
        self.last_answers: list[Any] = [None, None]
        self.pending_user_text = ""
        self.generation = 0
        self.generating = False
        self.blind_round: Optional[BlindRound] = None
        self.round_voted = False

    def start_turn(
        self,
        text: str,
        sources: Sequence[ModelSource],
        system_prompt: Optional[str],
        settings_for_side: Callable[[int], SamplingSettings],
    ) -> list[GenerationJob]:
        """Ask both sides `text` after their own histories; returns the two generation jobs."""
        jobs = []
        for side in (0, 1):
            messages = build_messages(system_prompt, self.histories[side], text)
            self.last_prompts[side] = messages
            jobs.append(GenerationJob(sources[side], messages, settings_for_side(side)))
        self.pending_user_text = text
        self.last_answers = [None, None]
        self.generation += 1
        self.generating = True
        return jobs

    def is_current(self, generation: int) -> bool:
        """Whether `generation` is the turn being answered now (not an abandoned one)."""
        return generation == self.generation

    def finish_turn(self, answers: Optional[Sequence[Any]]) -> None:
        """The turn ended: with each side's answer (None for a side without one), or None when it failed.
        Each answered side's history gains the user turn and its answer."""
        self.generating = False
        if answers is None:
            return
        self.last_answers = list(answers)
        for side, answer in enumerate(answers):
            if answer is not None:
                self.histories[side].extend(
                    [{"role": "user", "content": self.pending_user_text}, {"role": "assistant", "content": answer.text}]
                )

    def new_conversation(self) -> None:
        """Forget both histories and the round; a turn still being answered is abandoned."""
        if self.generating:
            self.generation += 1  # its late messages belong to the old conversation
            self.generating = False
        self.histories = [[], []]
        self.last_answers = [None, None]
        self.blind_round = None
        self.round_voted = False

    def new_blind_round(self) -> BlindRound:
        """A fresh conversation with the sides drawn anew."""
        self.new_conversation()
        self.blind_round = BlindRound.draw()
        return self.blind_round

    def vote_open(self, blind: bool) -> bool:
        """Whether a vote can be cast now: blind mode, both answers in, not voted yet."""
        return blind and not self.round_voted and None not in self.last_answers and not self.generating

    def needs_new_round(self, blind: bool) -> bool:
        """In blind mode, whether the next turn starts a new round (none yet, or this one is voted)."""
        return blind and (self.blind_round is None or self.round_voted)

    def vote_sides(self, sources: Sequence[ModelSource], settings_for_side: Callable[[int], SamplingSettings], names: Sequence[str]) -> dict[str, dict]:
        """Per side name, what a vote record keeps of it: source, conversation, answer, settings, timing."""
        sides = {}
        for side, name in enumerate(names):
            answer = self.last_answers[side]
            sides[name] = {
                "source": sources[side].to_dict(),
                "conversation": [*self.last_prompts[side], {"role": "assistant", "content": answer.text}],
                "answer": answer.text,
                "settings": settings_for_side(side).to_dict(),
                "timing": answer.timing_dict(),
            }
        return sides
