"""The Chat pane's conversation without a screen: turns, histories, abandoned turns, blind rounds."""

from __future__ import annotations

from workbench.inference.session import ChatSession
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import BASE_SOURCE
from workbench.inference.timing import Answer

SOURCES = [BASE_SOURCE, BASE_SOURCE]


def settings(side: int) -> SamplingSettings:
    return SamplingSettings(max_new_tokens=8 + side)


def test_each_side_keeps_its_own_history_and_the_system_prompt_rule():
    session = ChatSession()
    jobs = session.start_turn("Hi", SOURCES, "", settings)
    assert session.generating and session.is_current(session.generation)
    assert [job.messages for job in jobs] == [[{"role": "system", "content": ""}, {"role": "user", "content": "Hi"}]] * 2
    assert [job.settings.max_new_tokens for job in jobs] == [8, 9]
    session.finish_turn([Answer("Hello."), Answer("Hey!")])
    assert not session.generating
    assert session.histories[1] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey!"}]
    second = session.start_turn("Name?", SOURCES, None, settings)
    assert second[0].messages[:2] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    assert session.last_answers == [None, None], "a new turn has no answers yet"


def test_a_failed_turn_leaves_the_histories_and_a_side_without_answer_adds_nothing():
    session = ChatSession()
    session.start_turn("Hi", SOURCES, None, settings)
    session.finish_turn(None)
    assert session.histories == [[], []] and not session.generating
    session.start_turn("Hi", SOURCES, None, settings)
    session.finish_turn([Answer("Hello."), None])
    assert [len(history) for history in session.histories] == [2, 0]


def test_a_new_conversation_abandons_the_turn_being_answered():
    session = ChatSession()
    session.start_turn("Hi", SOURCES, None, settings)
    started = session.generation
    session.new_conversation()
    assert not session.generating and not session.is_current(started), "its late answers are ignored"
    assert session.histories == [[], []]


def test_a_blind_round_opens_its_vote_once_both_answers_are_in():
    session = ChatSession()
    assert session.needs_new_round(blind=True) and not session.needs_new_round(blind=False)
    session.new_blind_round()
    session.start_turn("Hi", SOURCES, None, settings)
    assert not session.vote_open(blind=True), "still answering"
    session.finish_turn([Answer("A."), Answer("B.")])
    assert session.vote_open(blind=True) and not session.vote_open(blind=False)
    sides = session.vote_sides(SOURCES, settings, ("base", "tuned"))
    assert sides["tuned"]["answer"] == "B." and sides["tuned"]["conversation"][-1] == {"role": "assistant", "content": "B."}
    session.round_voted = True
    assert not session.vote_open(blind=True) and session.needs_new_round(blind=True)
