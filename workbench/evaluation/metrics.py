"""Per-answer metrics: exact match and contains (normalized), regex, ROUGE-L, BLEU, chrF, length.

Normalization (for exact and contains) follows the SQuAD evaluation script's rule with one change:
Unicode NFKC, lower case, punctuation and symbols -> spaces, English articles (a, an, the) dropped,
whitespace collapsed. Punctuation becomes a space instead of vanishing so "Sage's" still contains
the word "sage". Contains matches whole words ("sage" is not in "sagebrush"), except for expected
text in a script written without spaces (Chinese, Japanese), where it is a plain substring.

ROUGE-L comes from `rouge-score` (F-measure, 0-1) with a Unicode word tokenizer (its own keeps only
a-z and 0-9, which turns Chinese text into nothing); BLEU and chrF from `sacrebleu` (0-100, its
defaults: BLEU with exponential smoothing, 13a tokenization, or "zh" when the reference holds CJK
characters). With several accepted answers a row scores its best one.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Optional, Sequence

from workbench.errors import WorkbenchError

METRICS = ("exact", "contains", "regex", "rougeL", "bleu", "chrf", "length")
"""Every answer metric, in report order ("loss" is teacher-forced, see loglik.py)."""
BINARY_METRICS = frozenset({"exact", "contains", "regex"})
"""0/1 per row: their intervals are Wilson score intervals; the others' are bootstrap intervals."""
METRIC_TITLES = {
    "exact": "exact match",
    "contains": "contains",
    "regex": "regex",
    "rougeL": "ROUGE-L",
    "bleu": "BLEU",
    "chrf": "chrF",
    "length": "answer tokens",
    "loss": "loss",
    "perplexity": "perplexity",
}

ARTICLES = frozenset({"a", "an", "the"})
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def normalize_answer(text: str) -> str:
    """The text as exact match and contains compare it (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    return " ".join(word for word in kept.split() if word not in ARTICLES)


def has_cjk(text: str) -> bool:
    """Whether the text holds characters of a script written without spaces between words."""
    return bool(_CJK.search(text))


def exact_match(answer: str, accepted: Sequence[str]) -> float:
    """1.0 when the normalized answer equals one normalized accepted answer."""
    normalized = normalize_answer(answer)
    return float(any(normalized == normalize_answer(option) for option in accepted))


def contains(answer: str, accepted: Sequence[str]) -> float:
    """1.0 when the normalized answer contains one normalized accepted answer as whole words."""
    padded = f" {normalize_answer(answer)} "
    for option in accepted:
        expected = normalize_answer(option)
        if not expected:
            continue
        if (expected in padded) if has_cjk(expected) else (f" {expected} " in padded):
            return 1.0
    return 0.0


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str, where: str = "--regex") -> "re.Pattern[str]":
    """The compiled pattern; a bad one is a one-line error naming where it came from."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise WorkbenchError(f"{where}: not a valid regular expression ({error}): {pattern!r}") from None


def regex_match(answer: str, pattern: str, where: str = "--regex") -> float:
    """1.0 when `pattern` (Python `re` syntax, searched anywhere; write (?i) to ignore case) matches the raw answer."""
    return float(compile_pattern(pattern, where).search(answer) is not None)


class _UnicodeWords:
    """Tokenizer for rouge-score: lower-cased Unicode words, each CJK character a word of its own."""

    _pattern = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]|[^\W_]+")

    def tokenize(self, text: str) -> list[str]:
        return self._pattern.findall(unicodedata.normalize("NFKC", text).casefold())


@functools.cache
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_UnicodeWords())


def rouge_l(answer: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure (0-1), the best over the references."""
    scorer = _rouge_scorer()
    return float(max(scorer.score(reference, answer)["rougeL"].fmeasure for reference in references))


def _bleu_tokenizer(references: Sequence[str]) -> str:
    return "zh" if any(has_cjk(reference) for reference in references) else "13a"


def bleu(answer: str, references: Sequence[str]) -> float:
    """Sentence BLEU (0-100) against all references (sacrebleu, exponential smoothing)."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(answer, list(references), tokenize=_bleu_tokenizer(references)).score)


def chrf(answer: str, references: Sequence[str]) -> float:
    """Sentence chrF (0-100) against all references (sacrebleu)."""
    import sacrebleu

    return float(sacrebleu.sentence_chrf(answer, list(references)).score)


def corpus_bleu(answers: Sequence[str], references: Sequence[Sequence[str]]) -> Optional[float]:
    """Corpus BLEU (0-100) over rows with one reference each (the first); None without rows."""
    import sacrebleu

    if not answers:
        return None
    firsts = [refs[0] for refs in references]
    return float(sacrebleu.corpus_bleu(list(answers), [firsts], tokenize=_bleu_tokenizer(firsts)).score)


def corpus_chrf(answers: Sequence[str], references: Sequence[Sequence[str]]) -> Optional[float]:
    """Corpus chrF (0-100) over rows with one reference each (the first); None without rows."""
    import sacrebleu

    if not answers:
        return None
    return float(sacrebleu.corpus_chrf(list(answers), [[refs[0] for refs in references]]).score)


def parse_metrics(text: str) -> tuple[str, ...]:
    """`--metrics` text ("exact,rougeL,loss" or "all") -> metric names in report order."""
    known = (*METRICS, "loss")
    if text.strip().lower() == "all":
        return known
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    lowered = {name.lower(): name for name in known}
    unknown = [name for name in chosen if name.lower() not in lowered]
    if unknown or not chosen:
        raise WorkbenchError(f"--metrics: unknown metric {', '.join(unknown) or '(none)'}; choose from {', '.join(known)} or all")
    picked = {lowered[name.lower()] for name in chosen}
    return tuple(name for name in known if name in picked)


def score_answer(
    answer: str,
    *,
    metrics: Sequence[str],
    references: Sequence[str] = (),
    accepted: Sequence[str] = (),
    pattern: Optional[str] = None,
    pattern_where: str = "--regex",
    answer_tokens: Optional[int] = None,
) -> dict[str, float]:
    """The metrics that apply to one answer.

    Args:
        answer: the generated text.
        metrics: which to compute (names from METRICS; others are ignored).
        references: full reference answers (ROUGE-L, BLEU and chrF need one; exact and contains
            use them when `accepted` is empty).
        accepted: short accepted answers for exact and contains (a row's `expect_any`).
        pattern: a regular expression for the regex metric (the row's own, or --regex).
        answer_tokens: generated tokens, for the length metric (else words are counted).

    Returns:
        metric name -> score; a metric without what it needs (no reference, no pattern) is absent.
    """
    scores: dict[str, float] = {}
    targets = list(accepted) or list(references)
    if "exact" in metrics and targets:
        scores["exact"] = exact_match(answer, targets)
    if "contains" in metrics and targets:
        scores["contains"] = contains(answer, targets)
    if "regex" in metrics and pattern:
        scores["regex"] = regex_match(answer, pattern, pattern_where)
    if references:
        if "rougeL" in metrics:
            scores["rougeL"] = rouge_l(answer, references)
        if "bleu" in metrics:
            scores["bleu"] = bleu(answer, references)
        if "chrf" in metrics:
            scores["chrf"] = chrf(answer, references)
    if "length" in metrics:
        scores["length"] = float(answer_tokens if answer_tokens is not None else len(answer.split()))
    return scores
