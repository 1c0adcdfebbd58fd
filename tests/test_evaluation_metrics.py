"""Evaluation metrics and intervals against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from workbench.errors import WorkbenchError
from workbench.evaluation.intervals import mean_estimate, paired_difference, pooled_estimate, rate_estimate, wilson_interval
from workbench.evaluation.metrics import (
    bleu,
    chrf,
    contains,
    corpus_bleu,
    exact_match,
    normalize_answer,
    parse_metrics,
    regex_match,
    rouge_l,
    score_answer,
)


def test_normalization_drops_case_punctuation_articles_and_extra_space():
    assert normalize_answer("  The Cat's   HAT!  ") == "cat s hat"
    assert normalize_answer("An apple, a pear.") == "apple pear"
    assert normalize_answer("Ｐａｒｉｓ") == "paris"  # NFKC folds full-width letters


def test_exact_match_compares_whole_normalized_answers():
    assert exact_match("Paris.", ["paris"]) == 1.0
    assert exact_match("The Paris", ["Paris"]) == 1.0
    assert exact_match("It is Paris", ["Paris"]) == 0.0
    assert exact_match("Lyon", ["Paris", "lyon!"]) == 1.0


def test_contains_matches_whole_words_and_cjk_substrings():
    assert contains("I'm Sage, made by Northwind Labs.", ["Sage"]) == 1.0
    assert contains("Sage's answer", ["sage"]) == 1.0
    assert contains("I like sagebrush", ["Sage"]) == 0.0
    assert contains("Built by NORTHWIND labs", ["Northwind Labs"]) == 1.0
    assert contains("我叫小明，很高兴认识你", ["小明"]) == 1.0
    assert contains("anything", ["", "  "]) == 0.0


def test_regex_searches_the_raw_answer_and_reports_bad_patterns():
    assert regex_match("Answer: 42.", r"\b42\b") == 1.0
    assert regex_match("Answer: 420", r"\b42\b") == 0.0
    assert regex_match("SAGE", r"(?i)sage") == 1.0
    with pytest.raises(WorkbenchError, match=r"data.jsonl:3: regex: not a valid regular expression"):
        regex_match("x", "(unclosed", "data.jsonl:3: regex")


def test_rouge_l_is_the_lcs_f_measure():
    # LCS of "the cat sat on the mat" / "the cat was on the mat" = "the cat on the mat": 5 of 6 words each way.
    assert rouge_l("the cat was on the mat", ["the cat sat on the mat"]) == pytest.approx(5 / 6)
    # Recall 3/6, precision 3/3 -> F = 2PR/(P+R) = 2/3.
    assert rouge_l("the cat sat", ["the cat sat on the mat"]) == pytest.approx(2 / 3)
    # Chinese is split per character (rouge-score's own tokenizer would see no words): LCS 我爱 = 2 of 4.
    assert rouge_l("我爱上海", ["我爱北京"]) == pytest.approx(0.5)
    assert rouge_l("the cat", ["dogs bark", "the cat"]) == pytest.approx(1.0)


def test_bleu_precisions_and_brevity_penalty():
    # Identical except the last word: n-gram precisions 4/5, 3/4, 2/3, 1/2; no brevity penalty.
    assert bleu("a b c d e", ["a b c d f"]) == pytest.approx(100 * (0.8 * 0.75 * (2 / 3) * 0.5) ** 0.25, abs=1e-6)
    # Every n-gram matches, the reference is one word longer: BP = exp(1 - 7/6).
    assert bleu("the cat sat on the mat", ["the cat sat on the mat today"]) == pytest.approx(100 * math.exp(1 - 7 / 6), abs=1e-6)
    assert corpus_bleu(["a b c d e"], [["a b c d f"]]) == pytest.approx(100 * 0.2**0.25, abs=1e-6)


def test_chrf_averages_character_ngram_precision_and_recall():
    # "abc" vs "abd": unigrams 2/3 both ways, bigrams 1/2, trigrams 0; orders 4-6 have no n-grams.
    # P = R = (2/3 + 1/2 + 0) / 3 = 7/18, and F-beta of equal P and R is that value.
    assert chrf("abc", ["abd"]) == pytest.approx(100 * 7 / 18, abs=1e-6)
    assert chrf("same words", ["same words"]) == pytest.approx(100.0)


def test_score_answer_computes_what_each_row_supports():
    scores = score_answer(
        "I am Sage.", metrics=("exact", "contains", "regex", "rougeL", "bleu", "chrf", "length"), accepted=["Sage"], answer_tokens=5
    )
    assert scores == {"exact": 0.0, "contains": 1.0, "length": 5.0}
    scores = score_answer("I am Sage.", metrics=("contains", "regex", "rougeL"), references=["I am Sage."], pattern="Sage")
    assert scores == {"contains": 1.0, "regex": 1.0, "rougeL": pytest.approx(1.0)}


def test_metric_names_are_checked():
    assert parse_metrics("rougel, EXACT,loss") == ("exact", "rougeL", "loss")
    assert "chrf" in parse_metrics("all")
    with pytest.raises(WorkbenchError, match="unknown metric wer"):
        parse_metrics("exact,wer")


def test_wilson_interval_matches_the_closed_form():
    # 8 of 10 at z = 1.96: centre (0.8 + 1.92/20) / 1.384, half-width 1.96 * sqrt(0.016 + 0.0096) / 1.384.
    z = 1.959963984540054
    low, high = wilson_interval(8, 10)
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.8 * 0.2 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (low, high) == pytest.approx((centre - half, centre + half))
    estimate = rate_estimate([1, 0, 0, 0])
    assert estimate.value == 0.25 and estimate.method == "wilson" and estimate.low < 0.25 < estimate.high
    assert rate_estimate([0] * 24).low == 0.0 and rate_estimate([0] * 24).high > 0


def test_bootstrap_intervals_cover_the_estimate_and_differences_are_paired():
    estimate = mean_estimate([0.1, 0.4, 0.5, 0.9, 0.3])
    assert estimate.value == pytest.approx(0.44) and estimate.low <= 0.44 <= estimate.high
    assert mean_estimate([0.1, 0.4, 0.5]) == mean_estimate([0.1, 0.4, 0.5])  # seeded: reproducible
    # Pooled: (2 + 6) / (1 + 3) = 2, not the mean of the per-row ratios (2 + 2) / 2 either way here.
    assert pooled_estimate([2.0, 6.0], [1, 3]).value == pytest.approx(2.0)
    # Every row improves by exactly 0.5: the paired interval is that point, however different the rows are.
    difference = paired_difference([0.0, 0.2, 0.4], [0.5, 0.7, 0.9])
    assert (difference.value, difference.low, difference.high) == pytest.approx((0.5, 0.5, 0.5))
    assert paired_difference([], []) is None
