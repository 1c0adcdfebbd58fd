"""Quality checks: each planted defect is found, and nothing else is flagged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from workbench.data.checks import (
    conflict_groups,
    exact_duplicate_groups,
    junk_reason,
    label_balance,
    leading_words,
    malformed_turns_reason,
    run_quality_checks,
)
from workbench.data.conversation import Conversation, Message
from workbench.data.loading import load_conversations
from workbench.data.near_duplicates import NUM_PERM, minhash_signatures, near_duplicate_groups

FIXTURES = Path(__file__).parent / "fixtures" / "data"


def rows(*pairs: tuple[str, str]) -> list[Conversation]:
    return [
        Conversation((Message("user", prompt), Message("assistant", answer)), index, "messages")
        for index, (prompt, answer) in enumerate(pairs)
    ]


def test_messy_file_every_planted_defect_and_nothing_else(default_tokenizer):
    loaded = load_conversations(FIXTURES / "messy.jsonl")
    report = run_quality_checks(loaded.conversations, default_tokenizer, max_seq_length=2048)

    assert report.groups["exact_duplicates"] == [[0, 1]]
    assert report.groups["near_duplicates"] == [[2, 3]]  # the templated haiku rows 4-8 are not
    assert report.groups["conflicts"] == [[17, 18]]
    assert report.flagged["empty_response"] == [19]
    assert report.flagged["too_long"] == [20]
    assert report.flagged["malformed_turns"] == [21, 22]
    assert report.flagged["junk"] == [23, 24]  # row 25 asks for HTML, so its tag is not junk
    assert "the answer is cut" in report.reasons["too_long"][20]
    assert report.flags_by_row()[0] == ("dup",)
    assert report.turns == {1: 27}


def test_sample_data_messy_file_matches_its_planted_manifest(default_tokenizer):
    """The shipped messy sample: every planted defect found, templated rows never called duplicates."""
    repo = Path(__file__).resolve().parents[1]
    manifest = json.loads((repo / "sample_data" / "messy_identity.planted.json").read_text())
    loaded = load_conversations(repo / "sample_data" / "messy_identity.jsonl")
    report = run_quality_checks(loaded.conversations, default_tokenizer, max_seq_length=2048)
    planted = manifest["defects"]

    later_copies = lambda check: sorted(row for group in report.groups[check] for row in group[1:])
    assert later_copies("exact_duplicates") == planted["exact_duplicate"]
    assert later_copies("near_duplicates") == planted["near_duplicate"]
    assert sorted(max(group) for group in report.groups["conflicts"]) == planted["contradiction"]
    assert report.flagged["empty_response"] == planted["empty_output"]
    assert report.flagged["too_long"] == planted["over_long"]
    assert report.flagged["junk"] == planted["markup"]
    near_rows = set(report.rows_in("near_duplicates"))
    for family, members in manifest["template_families"].items():
        assert not near_rows & set(members), family


def test_token_lengths_are_real_template_tokens(default_tokenizer):
    from workbench.data.templating import render_training_example

    loaded = load_conversations(FIXTURES / "messy.jsonl")
    report = run_quality_checks(loaded.conversations, default_tokenizer, max_seq_length=2048)
    long_row = loaded.conversations[20]
    real = render_training_example(default_tokenizer, long_row, 8192).full_length

    assert report.token_lengths.total[20] == real
    assert report.token_summary()["max"] == real
    just_enough = run_quality_checks(loaded.conversations[20:21], default_tokenizer, max_seq_length=real)
    one_short = run_quality_checks(loaded.conversations[20:21], default_tokenizer, max_seq_length=real - 1)
    assert just_enough.flagged["too_long"] == [] and one_short.flagged["too_long"] == [20]


def test_exact_duplicates_ignore_case_and_whitespace_only():
    data = rows(("Hello  there", "Hi!"), ("hello there", "hi!"), ("hello there", "Hi."), ("Hello there", "Hi!"))

    assert exact_duplicate_groups(data) == [[0, 1, 3]]


TEMPLATE = (
    "You are writing for a friendly gardening newsletter read by beginners. Write a short practical paragraph "
    "about growing {} at home. Mention how much sun it needs, how often to water it, which soil works best, and "
    "one common mistake to avoid. Keep the tone warm and encouraging, avoid jargon, and end with a single "
    "sentence of encouragement for the reader."
)


def test_templated_rows_that_differ_in_topic_are_not_near_duplicates():
    texts = [TEMPLATE.format(topic) for topic in ("basil", "tomatoes", "mint", "chili peppers")]
    signatures, _ = minhash_signatures(texts)
    similarity = [(signatures[0] == signatures[i]).mean() for i in range(1, 4)]

    assert min(similarity) >= 0.8  # MinHash alone would call them duplicates...
    assert near_duplicate_groups(texts) == []  # ...the word-level check does not


def test_near_duplicates_find_small_edits():
    base = TEMPLATE.format("basil")
    edited = base.replace("beginners.", "beginners!") + " Thanks"
    typo = base.replace("encouraging", "encuoraging")
    texts = [base, TEMPLATE.format("mint"), edited, typo]

    assert near_duplicate_groups(texts) == [[0, 2, 3]]


def test_near_duplicate_threshold_is_adjustable():
    sentence = "the quick brown fox jumps over the lazy dog near the quiet river bank at dawn"
    longer = sentence + " while the farmer watches from the old wooden fence"

    assert near_duplicate_groups([sentence, longer], threshold=0.9) == []
    assert near_duplicate_groups([sentence, longer], threshold=0.4) == [[0, 1]]
    with pytest.raises(ValueError):
        near_duplicate_groups([sentence], threshold=0)


def test_signatures_equal_datasketch_minhash_of_the_same_shingles():
    from datasketch import MinHash

    from workbench.data.near_duplicates import _shingle_hashes

    texts = ["One two three four five.", "Six seven", "", "naïve café résumé über straße, again and again"]
    signatures, has_words = minhash_signatures(texts)
    shingles, owners = _shingle_hashes(texts)

    assert list(has_words) == [True, True, False, True]
    for row in (0, 1, 3):
        reference = MinHash(num_perm=NUM_PERM, scheme="affine32", hashfunc=lambda value: value)
        reference.update_batch(int(value) for value in shingles[owners == row])
        assert np.array_equal(signatures[row], reference.hashvalues)


def test_conflicts_need_materially_different_answers():
    data = rows(
        ("Capital of Australia?", "Canberra."),
        ("capital of  australia?", "Sydney."),
        ("Is water wet?", "Yes, water is wet."),
        ("Is water wet?", "Yes, water is wet!"),
        ("Is water wet?", "Yes water is wet, of course."),
        ("What is the capital of Norway?", "The capital of Norway is Oslo."),
        ("What is the capital of Norway?", "Bergen is the capital of Norway."),
    )

    assert conflict_groups(data) == [[0, 1], [5, 6]]


def test_malformed_and_junk_reasons():
    ends_with_user = Conversation((Message("user", "a"), Message("assistant", "b"), Message("user", "c")), 0, "messages")
    assert "ends with a user turn" in malformed_turns_reason(ends_with_user)
    only_user = Conversation((Message("user", "a"),), 1, "messages")
    assert "no assistant turn" in malformed_turns_reason(only_user)

    def junk(prompt: str, answer: str, tokens=()) -> str | None:
        return junk_reason(rows((prompt, answer))[0], tokens)

    assert "HTML tag" in junk("Sum?", "<p>4</p>")
    assert "HTML entity '&nbsp;'" in junk("Sum?", "4&nbsp;apples")
    assert "U+FFFD" in junk("Coffee in French?", "caf\ufffd")
    assert "mojibake" in junk("Say it", "It\u00e2\u20ac\u2122s fine")
    assert "control token <|im_end|>" in junk("x", "done<|im_end|>", ["<|im_end|>"])
    assert junk("Write an HTML paragraph.", "<p>Hello</p>") is None
    assert junk("Show a tag in code", "Use `<br>` for a line break.") is None
    assert junk("Compare", "Is 3 < 4 and 5 > 2? Yes, a <b and c> d.") is None
    assert junk("Describe <a statement> syntax", "A <a statement> is a placeholder.") is None


def test_label_balance_only_for_short_categorical_answers():
    labels = rows(*[(f"Review {i}: text", "positive" if i % 3 else "negative") for i in range(12)])
    free_form = rows(*[(f"Question {i}", f"A long and different answer number {i} with details") for i in range(12)])

    assert label_balance(labels) == [("positive", 8), ("negative", 4)]
    assert label_balance(free_form) is None


def test_leading_words_and_phrases():
    data = rows(("Write a poem", "x"), ("write a story", "x"), ("Explain gravity", "x"), ("  Write code", "x"))
    words, phrases = leading_words(data)

    assert words[0] == ("write", 3)
    assert phrases[0] == ("write a", 2)


def test_report_json_has_every_check_and_lists_rows():
    report = run_quality_checks(rows(("a b c", "same"), ("a b c", "same"), ("x", " ")))
    data = report.to_json()

    assert set(data["checks"]) == {
        "exact_duplicates", "near_duplicates", "conflicts", "empty_response", "too_long", "malformed_turns", "junk",
    }
    assert data["checks"]["exact_duplicates"] == [[0, 1]]
    assert data["checks"]["empty_response"] == [2]
    assert data["reasons"]["empty_response"] == {"2": "empty answer"}
    assert report.token_lengths is None and data["checks"]["too_long"] == []
