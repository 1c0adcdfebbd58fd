"""Batched decks: many prompts × models in bounded batches, each row as if it were generated alone."""

from __future__ import annotations

import pytest
from chat_test_support import make_tiny_adapter

from workbench.errors import WorkbenchError
from workbench.inference.deck import DeckAnswer, DeckReplay, DeckText
from workbench.inference.engine import ChatEngine, GenerationJob
from workbench.inference.prompting import build_messages
from workbench.inference.settings import SamplingSettings
from workbench.inference.sources import BASE_SOURCE, source_from_directory
from workbench.inference.streaming import SideFinished, TextDelta

PROMPTS = [
    "Hi",
    "Name three colours of the rainbow, please.",
    "Why?",
    "Write one long sentence about terminals, keyboards and the people who still love them.",
    "Count to five.",
]


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    return make_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("batch-adapter"), seed=5)


@pytest.fixture()
def engine(tiny_model_dir):
    return ChatEngine.load(str(tiny_model_dir), placement=("fp32", "cpu"))


def batch_sizes_seen(engine) -> list[int]:
    """Rows of every prefill forward (the first forward of each generate reads the whole prompt)."""
    seen: list[int] = []

    def record(_module, args, kwargs):
        ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else (args[0] if args else None)
        if ids is not None and ids.shape[1] > 1:
            seen.append(ids.shape[0])

    engine._base.register_forward_pre_hook(record, with_kwargs=True)
    return seen


def test_each_row_of_a_mixed_batch_equals_its_prompt_generated_alone(engine, adapter_dir):
    """Mixed prompt lengths (left padding) and mixed sides (row masks), split into batches of 4 rows."""
    tuned = source_from_directory(adapter_dir)
    settings = SamplingSettings(max_new_tokens=8)
    jobs = [
        GenerationJob(source, build_messages(None, [], prompt), settings) for prompt in PROMPTS for source in (BASE_SOURCE, tuned)
    ]
    seen = batch_sizes_seen(engine)
    batched = engine.generate(jobs, batch_size=4)
    assert seen == [4, 4, 2], "10 rows in batches of at most 4, in job order"
    alone = [engine.generate([job])[0] for job in jobs]
    assert [answer.token_ids for answer in batched] == [answer.token_ids for answer in alone]
    assert batched[0].token_ids != batched[1].token_ids, "the adapter rows really differ from the base rows"


def test_a_finished_row_is_reported_before_its_batch_ends_and_text_streams(engine):
    messages = build_messages(None, [], "Stream please.")
    short, long = SamplingSettings(max_new_tokens=2), SamplingSettings(max_new_tokens=24)
    stream = engine.start([GenerationJob(BASE_SOURCE, messages, short), GenerationJob(BASE_SOURCE, messages, long)], force_length=True)
    events = list(stream)
    short_done = next(i for i, e in enumerate(events) if isinstance(e, SideFinished) and e.side == 0)
    long_deltas = [i for i, e in enumerate(events) if isinstance(e, TextDelta) and e.side == 1]
    assert len(long_deltas) >= 5, "the long row's text arrives token by token"
    assert short_done < long_deltas[-1], "the short row is reported while the long one still decodes"
    assert "".join(events[i].text for i in long_deltas) == stream.answers[1].text


def test_deck_events_name_prompt_and_model_and_rows_hold_every_model(engine, adapter_dir):
    tuned = source_from_directory(adapter_dir)
    replay = DeckReplay(engine, [BASE_SOURCE, tuned], PROMPTS, SamplingSettings(max_new_tokens=6), batch_size=5)
    assert replay.rows_per_batch == 4, "rounded down to whole prompts"
    texts: dict[tuple[int, int], str] = {}
    answers = {}
    for event in replay.events():
        key = (event.prompt_index, event.source_index)
        if isinstance(event, DeckText):
            assert key not in answers, "no text after a row's answer"
            texts[key] = texts.get(key, "") + event.text
        else:
            assert isinstance(event, DeckAnswer)
            answers[key] = event.answer
    assert sorted(answers) == [(p, s) for p in range(len(PROMPTS)) for s in range(2)]
    assert all(texts.get(key, "") == answer.text for key, answer in answers.items())
    alone = engine.generate([GenerationJob(tuned, build_messages(None, [], PROMPTS[3]), SamplingSettings(max_new_tokens=6))])[0]
    assert answers[(3, 1)].token_ids == alone.token_ids

    rows = list(DeckReplay(engine, [BASE_SOURCE, tuned], PROMPTS, SamplingSettings(max_new_tokens=6), batch_size=4).rows())
    assert sorted(row.index for row in rows) == list(range(len(PROMPTS)))
    for row in rows:
        assert row.prompt == PROMPTS[row.index]
        assert [a.token_ids for a in row.answers] == [answers[(row.index, 0)].token_ids, answers[(row.index, 1)].token_ids]


def test_cancel_stops_the_running_batch_and_never_starts_the_next(engine):
    replay = DeckReplay(engine, [BASE_SOURCE], PROMPTS * 2, SamplingSettings(max_new_tokens=400), batch_size=2)
    seen = batch_sizes_seen(engine)
    answers = []
    for event in replay.events():
        if isinstance(event, DeckText):
            replay.cancel()
        elif isinstance(event, DeckAnswer):
            answers.append(event.answer)
    assert len(answers) == len(PROMPTS) * 2, "every row still gets its (cancelled) answer"
    assert all(answer.finish_reason == "cancelled" for answer in answers)
    assert all(answer.tokens < 400 for answer in answers)
    assert seen == [2], "the later batches never ran"
    assert not engine._lock.locked()


def test_a_bad_batch_size_is_refused(engine):
    with pytest.raises(WorkbenchError, match="batch size: must be at least 1"):
        DeckReplay(engine, [BASE_SOURCE], ["x"], SamplingSettings(), batch_size=0)
    with pytest.raises(ValueError):
        engine.start([GenerationJob(BASE_SOURCE, build_messages(None, [], "x"))], batch_size=0)
