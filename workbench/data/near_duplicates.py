"""Near-duplicate rows: MinHash signatures over word 3-grams, LSH banding, then a precision check.

Signatures use datasketch's "affine32" MinHash scheme (its permutations and MurmurHash3
pre-mix) and its LSH parameter optimizer, but are computed for all rows at once with numpy:
a straightforward per-row datasketch pipeline spends about half of its 24 s per 100,000 rows
building shingle sets in Python (PEERS.md), and that loop is what this module vectorizes.

Candidates whose estimated Jaccard similarity reaches the threshold are then compared word by
word. Rows are near-duplicates only when they differ by words added on one side, punctuation,
case, whitespace or typos; a substituted content word ("cats" -> "dogs", "3" -> "4") makes
them different rows, which keeps templated rows that differ in their topic apart.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    import numpy as np

NUM_PERM = 64
SHINGLE_WORDS = 3
CHUNK_ROWS = 2000
PERMUTE_BLOCK = 2048
DEFAULT_THRESHOLD = 0.8
TYPO_SIMILARITY = 0.8
STOPWORDS = frozenset(
    "a an the this that these those is are was were be been of to in on at for with by from and or "
    "but it its as so if then than there their they them he she his her we our you your i me my".split()
)
WORD_PATTERN = re.compile(r"\w+")


def normalized_words(text: str) -> list[str]:
    """Lower-cased word characters only, as the shingles see them."""
    return WORD_PATTERN.findall(text.casefold())


@lru_cache(maxsize=1)
def _permutations() -> tuple["np.ndarray", "np.ndarray"]:
    from datasketch import MinHash

    a, b = MinHash(num_perm=NUM_PERM, scheme="affine32").permutations
    return a, b


@lru_cache(maxsize=16)
def lsh_bands(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) for the threshold, from datasketch's optimizer, weighted towards recall
    (candidates are verified afterwards, so a false positive costs only time)."""
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, NUM_PERM, 0.2, 0.8)


def _fmix32(values: "np.ndarray") -> "np.ndarray":
    from datasketch.minhash import _fmix

    return _fmix(values.astype("uint32", copy=False), 32)


def _fmix64(values: "np.ndarray") -> "np.ndarray":
    from datasketch.minhash import _fmix

    return _fmix(values, 64)


@lru_cache(maxsize=1)
def _word_byte_table() -> "np.ndarray":
    """Which bytes belong to words: ASCII letters, digits, underscore, and every non-ASCII byte."""
    import numpy as np

    return np.array([code >= 128 or chr(code).isalnum() or chr(code) == "_" for code in range(256)], dtype=bool)


_WORD_HASH_BASE = 0x100000001B3  # odd, so it has an inverse modulo 2**64


_powers_cache: dict[int, "np.ndarray"] = {}


def _powers(base: int, count: int) -> "np.ndarray":
    """base**0 .. base**(count-1) modulo 2**64 (numpy's uint64 arithmetic wraps); grown and cached."""
    import numpy as np

    cached = _powers_cache.get(base)
    if cached is None or len(cached) < count:
        size = max(count, 2 * len(cached) if cached is not None else 1 << 20)
        cached = np.empty(size, dtype=np.uint64)
        cached[0] = 1
        cached[1:] = np.uint64(base)
        cached = np.cumprod(cached)
        _powers_cache[base] = cached
    return cached[:count]


def _inverse_mod_2_64(value: int) -> int:
    inverse = 1
    for _ in range(7):  # Newton's iteration doubles the correct low bits each step
        inverse = inverse * (2 - value * inverse) % (1 << 64)
    return inverse


def minhash_signatures(texts: Sequence[str]) -> tuple["np.ndarray", "np.ndarray"]:
    """MinHash signatures (rows x NUM_PERM, uint32) of each text's set of word 3-grams.

    Texts with fewer than three words use their whole word sequence as their one shingle; texts
    with no words keep an all-max signature and `has_words` False.

    Returns:
        (signatures, has_words)
    """
    import numpy as np

    signatures = np.full((len(texts), NUM_PERM), np.iinfo(np.uint32).max, dtype=np.uint32)
    has_words = np.zeros(len(texts), dtype=bool)
    a, b = _permutations()
    buffer = np.empty((PERMUTE_BLOCK, NUM_PERM), dtype=np.uint32)
    for start in range(0, len(texts), CHUNK_ROWS):
        shingles, owners = _shingle_hashes(texts[start : start + CHUNK_ROWS])
        if len(shingles) == 0:
            continue
        premixed = _fmix32(shingles)
        row_starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        # Permute in blocks of whole rows that fit in cache: one big (shingles x 64) array is
        # ~30x slower here, bound by memory traffic.
        block_first = 0
        while block_first < len(row_starts):
            first_shingle = row_starts[block_first]
            block_last = max(block_first + 1, int(np.searchsorted(row_starts, first_shingle + PERMUTE_BLOCK)))
            last_shingle = row_starts[block_last] if block_last < len(row_starts) else len(shingles)
            count = last_shingle - first_shingle
            if count > len(buffer):
                buffer = np.empty((count, NUM_PERM), dtype=np.uint32)
            view = buffer[:count]
            np.multiply(premixed[first_shingle:last_shingle, None], a[None, :], out=view)
            np.add(view, b[None, :], out=view)
            local_starts = row_starts[block_first:block_last] - first_shingle
            rows = owners[row_starts[block_first:block_last]] + start
            signatures[rows] = np.minimum.reduceat(view, local_starts, axis=0)
            has_words[rows] = True
            block_first = block_last
    return signatures, has_words


def _shingle_hashes(texts: Sequence[str]) -> tuple["np.ndarray", "np.ndarray"]:
    """32-bit hashes of every word 3-gram of every text, grouped by text, with the owning text.

    Word hashes come from one prefix sum over the bytes: with P[i] = sum(byte[j] * B**j, j < i),
    the word at [s, e) hashes to (P[e] - P[s]) * B**-s, the same value wherever the word occurs.
    """
    import numpy as np

    encoded = [text.casefold().encode("utf-8") for text in texts]
    text_ends = np.cumsum(np.fromiter((len(item) + 1 for item in encoded), dtype=np.int64, count=len(encoded)))
    data = np.frombuffer(b"\n".join(encoded) + b"\n", dtype=np.uint8)
    is_word = _word_byte_table()[data]
    edges = np.diff(is_word.view(np.int8), prepend=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if len(starts) == 0:
        return np.zeros(0, dtype=np.uint32), np.zeros(0, dtype=np.int64)
    prefix = np.zeros(len(data) + 1, dtype=np.uint64)
    np.cumsum(data * _powers(_WORD_HASH_BASE, len(data)), out=prefix[1:])
    inverse_powers = _powers(_inverse_mod_2_64(_WORD_HASH_BASE), len(data))
    word_hashes = _fmix64((prefix[ends] - prefix[starts]) * inverse_powers[starts])
    word_owner = np.searchsorted(text_ends, starts, side="right")

    # 3-grams of consecutive words of the same text.
    if len(word_owner) >= SHINGLE_WORDS:
        positions = np.flatnonzero(word_owner[2:] == word_owner[:-2])
    else:
        positions = np.zeros(0, dtype=np.int64)
    grams = (
        word_hashes[positions] * np.uint64(0x9E3779B97F4A7C15)
        + word_hashes[positions + 1] * np.uint64(0xC2B2AE3D27D4EB4F)
        + word_hashes[positions + 2]
    )
    gram_owner = word_owner[positions]

    # Texts with one or two words: one shingle of all their words.
    words_per_text = np.bincount(word_owner, minlength=len(texts))
    short = np.flatnonzero((words_per_text > 0) & (words_per_text < SHINGLE_WORDS))
    if len(short):
        first_word = np.searchsorted(word_owner, short)
        combined = word_hashes[first_word].copy()
        two = words_per_text[short] == 2
        combined[two] = combined[two] * np.uint64(0x9E3779B97F4A7C15) + word_hashes[first_word[two] + 1]
        grams = np.concatenate([grams, combined])
        gram_owner = np.concatenate([gram_owner, short])
        order = np.argsort(gram_owner, kind="stable")
        grams, gram_owner = grams[order], gram_owner[order]
    folded = _fmix64(grams)
    return (folded ^ (folded >> np.uint64(32))).astype(np.uint32), gram_owner


def _is_typo(word: str, other: str) -> bool:
    """Close spellings of the same word: letters only, four or more, similarity >= TYPO_SIMILARITY.
    The cheap length test and difflib's upper bounds reject most pairs before the full ratio."""
    if len(word) < 4 or len(other) < 4 or not (word.isalpha() and other.isalpha()):
        return False
    if min(len(word), len(other)) * 2 < TYPO_SIMILARITY * (len(word) + len(other)):
        return False
    matcher = SequenceMatcher(None, word, other, autojunk=False)
    return matcher.quick_ratio() >= TYPO_SIMILARITY and matcher.ratio() >= TYPO_SIMILARITY


def _has_own_word(words: set[str], others: set[str]) -> bool:
    """Some word of `words` is neither in `others` nor a typo of one of them."""
    return any(word not in others and not any(_is_typo(word, other) for other in others) for word in words)


def differ_only_in_small_edits(left_words: list[str], right_words: list[str]) -> bool:
    """True unless both sides have content words the other lacks.

    Words added on one side only (a greeting, "please", an extra sentence), stop words, and typo
    fixes are small edits; a word swapped for another ("cats" -> "dogs", "Bergen" -> "Oslo", "3" ->
    "4") leaves each side with a word of its own, which makes the rows say different things.
    """
    left, right = set(left_words), set(right_words)
    left_only = left - right - STOPWORDS
    right_only = right - left - STOPWORDS
    if not left_only or not right_only:
        return True
    return not (_has_own_word(left_only, right_only) and _has_own_word(right_only, left_only))


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, left: int, right: int) -> None:
        left_root, right_root = self.find(left), self.find(right)
        if left_root != right_root:
            self.parent[max(left_root, right_root)] = min(left_root, right_root)


def near_duplicate_groups(
    texts: Sequence[str],
    threshold: float = DEFAULT_THRESHOLD,
    progress: Callable[[float], None] | None = None,
) -> list[list[int]]:
    """Groups of positions (into `texts`) whose texts are near-duplicates, each group sorted,
    groups ordered by their first member.

    Args:
        texts: one text per row (prompt and response together).
        threshold: minimum estimated Jaccard similarity of word 3-gram sets (0..1).
        progress: called with fractions while signatures are computed.
    """
    import numpy as np

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    signatures, has_words = minhash_signatures(texts)
    if progress is not None:
        progress(0.8)
    bands, rows_per_band = lsh_bands(threshold)
    candidates = np.flatnonzero(has_words)
    union = _UnionFind(len(texts))
    words_cache: dict[int, list[str]] = {}

    def words(position: int) -> list[str]:
        if position not in words_cache:
            words_cache[position] = normalized_words(texts[position])
        return words_cache[position]

    checked: set[tuple[int, int]] = set()
    for band in range(bands):
        block = signatures[candidates, band * rows_per_band : (band + 1) * rows_per_band].astype(np.uint64)
        keys = np.zeros(len(candidates), dtype=np.uint64)
        for column in range(block.shape[1]):
            keys = keys * np.uint64(0x100000001B3) + block[:, column]
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        bucket_starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        bucket_sizes = np.diff(np.r_[bucket_starts, len(sorted_keys)])
        for bucket_start, size in zip(bucket_starts[bucket_sizes > 1], bucket_sizes[bucket_sizes > 1]):
            members = candidates[order[bucket_start : bucket_start + size]]
            # Compare with the bucket's first row only: linear in the bucket size.
            first = int(members[0])
            for other in members[1:]:
                other = int(other)
                pair = (first, other)
                if pair in checked or union.find(first) == union.find(other):
                    continue
                checked.add(pair)
                estimate = float(np.count_nonzero(signatures[first] == signatures[other])) / NUM_PERM
                if estimate >= threshold and differ_only_in_small_edits(words(first), words(other)):
                    union.union(first, other)
    groups: dict[int, list[int]] = {}
    for position in range(len(texts)):
        groups.setdefault(union.find(position), []).append(position)
    result = [members for members in groups.values() if len(members) > 1]
    return sorted(result, key=lambda group: group[0])
