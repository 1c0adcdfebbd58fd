"""Duplicate, near-duplicate and conflict checks count the tool list as part of the prompt, and tool
calls as part of the answer; raw-text rows are checked as text."""

from __future__ import annotations

from workbench.data.checks import run_quality_checks
from workbench.data.cleaning import CleaningSession, Operation
from workbench.data.conversation import Conversation, Message, ToolCall


def tool(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": f"{name} tool", "parameters": {"type": "object"}}}


def row(index: int, answer: str, tools=None, calls=()) -> Conversation:
    messages = (Message("user", "What is the weather in Oslo right now?"), Message("assistant", answer, tuple(calls)))
    return Conversation(messages, index, "sharegpt", tools=tuple(tools) if tools else None)


WEATHER, SEARCH = tool("get_weather"), tool("web_search")


def test_same_question_with_other_tools_is_neither_a_conflict_nor_a_duplicate():
    rows = [
        row(0, "I cannot check live weather.", tools=None),
        row(1, "", tools=[WEATHER], calls=[ToolCall("get_weather", {"city": "Oslo"})]),
        row(2, "", tools=[SEARCH], calls=[ToolCall("web_search", {"query": "Oslo weather"})]),
        row(3, "I cannot check live weather.", tools=[WEATHER, SEARCH]),
    ]
    report = run_quality_checks(rows)
    assert report.groups["conflicts"] == []
    assert report.groups["exact_duplicates"] == []
    assert report.groups["near_duplicates"] == []
    assert report.flagged["empty_response"] == []  # a turn that only calls a tool is not an empty answer


def test_same_question_and_tools_with_other_answers_or_calls_still_conflict():
    rows = [
        row(0, "", tools=[WEATHER, SEARCH], calls=[ToolCall("get_weather", {"city": "Oslo"})]),
        row(1, "", tools=[SEARCH, WEATHER], calls=[ToolCall("web_search", {"query": "Oslo weather"})]),  # same set, other order
        row(2, "Sunny.", tools=[WEATHER]),
        row(3, "Sunny.", tools=[WEATHER]),
    ]
    report = run_quality_checks(rows)
    assert report.groups["conflicts"] == [[0, 1]]
    assert report.groups["exact_duplicates"] == [[2, 3]]


def test_cleaning_dedupe_keeps_rows_that_differ_only_by_tools_and_strip_keeps_calls():
    rows = [
        row(0, "Sunny, 21 degrees.", tools=[WEATHER]),
        row(1, "Sunny, 21 degrees!", tools=[SEARCH]),
        row(2, "Sunny, 21 degrees!!", tools=[WEATHER]),
        row(3, "<b>Done</b>", tools=[WEATHER], calls=[ToolCall("get_weather", {"city": "Oslo"})]),
    ]
    session = CleaningSession(rows)
    plan = session.apply(Operation("dedupe", {"mode": "near"}))
    assert plan.dropped == (2,)
    session.apply(Operation("strip_markup"))
    stripped = next(c for c in session.conversations if c.source_index == 3)
    assert stripped.messages[1].content == "Done"
    assert stripped.messages[1].tool_calls == (ToolCall("get_weather", {"city": "Oslo"}),)


def test_raw_text_rows_are_checked_as_text():
    rows = [Conversation((), 0, "text", text="Plain prose about rivers."),
            Conversation((), 1, "text", text="Plain prose about rivers."),
            Conversation((), 2, "text", text="   "),
            Conversation((), 3, "text", text="Broken caf\ufffd text.")]
    report = run_quality_checks(rows)
    assert report.groups["exact_duplicates"] == [[0, 1]]
    assert report.flagged["empty_response"] == [2]
    assert report.flagged["malformed_turns"] == []
    assert report.flagged["junk"] == [3]
