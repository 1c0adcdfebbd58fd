"""The committed sample data: reproducible, well-formed, and honest about its planted defects.

The similarity helpers are re-implemented here on purpose, so the generator's own definitions are
checked rather than trusted.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_data"
SCRIPT = REPO / "scripts" / "make_sample_data.py"
MARKUP = re.compile(r"</?[a-zA-Z][^>]*>|&[a-zA-Z]+;|&#\d+;|\ufffd")


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def trigrams(text: str) -> frozenset:
    tokens = words(text)
    if len(tokens) < 3:
        return frozenset([tuple(tokens)]) if tokens else frozenset()
    return frozenset(zip(tokens, tokens[1:], tokens[2:]))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def squashed(text: str) -> str:
    return " ".join(text.lower().split())


def prompt_of(row: dict) -> str:
    return row["instruction"] + ("\n\n" + row["input"] if row["input"] else "")


def text_of(row: dict) -> str:
    return prompt_of(row) + "\n" + row["output"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def identity() -> list[dict]:
    return json.loads((SAMPLE / "identity_alpaca.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shop() -> list[dict]:
    return json.loads((SAMPLE / "bikeshop_sharegpt.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def messy() -> list[dict]:
    return read_jsonl(SAMPLE / "messy_identity.jsonl")


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads((SAMPLE / "messy_identity.planted.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def heldout() -> list[dict]:
    return read_jsonl(SAMPLE / "identity_heldout.jsonl")


@pytest.fixture(scope="module")
def knowledge() -> list[dict]:
    return read_jsonl(SAMPLE / "general_knowledge.jsonl")


@pytest.fixture(scope="module")
def deck() -> list[str]:
    return (SAMPLE / "demo_prompts.txt").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def training_prompts(identity, messy, shop) -> list[str]:
    prompts = []
    for row in identity + messy:
        prompts += [row["instruction"], prompt_of(row)] + ([row["input"]] if row["input"] else [])
    for record in shop:
        prompts += [m["value"] for m in record["conversations"] if m["from"] == "human"]
    return prompts


def test_script_regenerates_the_committed_files_byte_for_byte(tmp_path):
    # A different hash seed than the committing run: output must not depend on set order.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], check=True, env=env, capture_output=True)
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(p.name for p in SAMPLE.iterdir())
    for name in written:
        assert (tmp_path / name).read_bytes() == (SAMPLE / name).read_bytes(), f"{name} differs from a fresh run"


def test_identity_set_is_alpaca_with_short_consistent_answers(identity):
    assert 250 <= len(identity) <= 350
    for row in identity:
        assert list(row) == ["instruction", "input", "output"]
        assert all(isinstance(value, str) for value in row.values())
        assert row["instruction"].strip() and row["output"].strip()
        assert len(row["output"].split()) <= 40, row
        assert "OpenAI" not in row["output"] and "SmolLM" not in row["output"]
    about_identity = [r for r in identity if "Sage" in r["output"] or "Northwind" in r["output"]]
    # Every identity answer names both the assistant and its maker, so the facts never drift.
    assert all("Sage" in r["output"] and "Northwind Labs" in r["output"] for r in about_identity)
    general_share = 1 - len(about_identity) / len(identity)
    assert 0.30 <= general_share <= 0.40
    assert sum(1 for r in identity if r["input"]) >= 10


def test_identity_set_has_no_duplicates_or_near_duplicates(identity):
    prompts = [" ".join(words(prompt_of(r))) for r in identity]
    assert len(set(prompts)) == len(prompts)
    shingles = [trigrams(text_of(r)) for r in identity]
    worst = max(jaccard(a, b) for a, b in itertools.combinations(shingles, 2))
    assert worst < 0.5


def test_shop_set_is_sharegpt_with_alternating_roles(shop):
    assert 120 <= len(shop) <= 200
    for record in shop:
        assert list(record) == ["conversations"]
        roles = [m["from"] for m in record["conversations"]]
        assert all(list(m) == ["from", "value"] and m["value"].strip() for m in record["conversations"])
        exchanges = roles[1:] if roles[0] == "system" else roles
        assert exchanges and len(exchanges) % 2 == 0
        assert exchanges == ["human", "gpt"] * (len(exchanges) // 2), roles
    multi_turn = [r for r in shop if sum(m["from"] == "human" for m in r["conversations"]) >= 2]
    with_system = [r for r in shop if r["conversations"][0]["from"] == "system"]
    assert len(multi_turn) >= 20 and len(with_system) >= 20
    assert any(sum(m["from"] == "human" for m in r["conversations"]) == 3 for r in multi_turn)


def test_shop_set_teaches_the_rules_and_mixes_in_general_requests(shop):
    answers = [" ".join(m["value"] for m in r["conversations"] if m["from"] == "gpt") for r in shop]
    joined = "\n".join(answers)
    for rule in ("30 days", "2 years", "6 months", "$75", "$8.95", "$65", "$45", "$70", "11 am to 4 pm", "10% off"):
        assert rule in joined, rule
    shop_words = re.compile(r"\$|Juniper|bike|warrant|rent|return|shop|open|discount|gift card|Harbor|ship|receipt|helmet", re.I)
    general = [
        r for r in shop if not shop_words.search(" ".join(m["value"] for m in r["conversations"] if m["from"] != "system"))
    ]
    assert 0.18 <= len(general) / len(shop) <= 0.35


def test_manifest_lists_every_planted_row_by_kind(manifest, messy):
    assert manifest["rows"] == len(messy)
    by_kind: dict[str, list[int]] = {}
    for entry in manifest["planted"]:
        by_kind.setdefault(entry["kind"], []).append(entry["row"])
    assert {kind: sorted(rows) for kind, rows in by_kind.items()} == manifest["defects"]
    assert set(manifest["defects"]) == {"exact_duplicate", "near_duplicate", "contradiction", "empty_output", "over_long", "markup"}
    assert all(len(rows) >= 3 for rows in manifest["defects"].values())
    rows = [entry["row"] for entry in manifest["planted"]]
    assert len(rows) == len(set(rows))


def test_planted_rows_really_have_their_defect(manifest, messy):
    planted_rows = {entry["row"] for entry in manifest["planted"]}
    for entry in manifest["planted"]:
        row = messy[entry["row"]]
        kind = entry["kind"]
        if "of" in entry:
            original = messy[entry["of"]]
            assert entry["of"] < entry["row"] and entry["of"] not in planted_rows
        if kind == "exact_duplicate":
            assert [squashed(row[k]) for k in row] == [squashed(original[k]) for k in original]
        elif kind == "near_duplicate":
            assert words(prompt_of(row)) != words(prompt_of(original))
            assert jaccard(trigrams(text_of(row)), trigrams(text_of(original))) >= 0.8
        elif kind == "contradiction":
            assert squashed(prompt_of(row)) == squashed(prompt_of(original))
            assert jaccard(trigrams(row["output"]), trigrams(original["output"])) < 0.5
        elif kind == "empty_output":
            assert row["output"].strip() == ""
        elif kind == "over_long":
            # Each word is at least one token, so this is over 2,500 tokens for any tokenizer.
            assert len(row["output"].split()) > 2600
        elif kind == "markup":
            assert MARKUP.search(row["instruction"] + row["output"]), row
    identity_contradictions = [e for e in manifest["planted"] if e["kind"] == "contradiction" and "Sage" in messy[e["of"]]["output"]]
    assert identity_contradictions and all("Northwind Labs" not in messy[e["row"]]["output"] for e in identity_contradictions)


def test_no_defect_is_left_unlisted(manifest, messy):
    defects = manifest["defects"]
    assert [i for i, r in enumerate(messy) if not r["output"].strip()] == defects["empty_output"]
    assert [i for i, r in enumerate(messy) if MARKUP.search(r["instruction"] + r["output"])] == defects["markup"]
    assert [i for i, r in enumerate(messy) if len(r["output"].split()) > 200] == defects["over_long"]
    planted_pairs = {(e["of"], e["row"]) for e in manifest["planted"] if "of" in e}
    shingles = [trigrams(text_of(r)) for r in messy]
    same_prompt: dict[str, int] = {}
    for i, row in enumerate(messy):
        first = same_prompt.setdefault(squashed(prompt_of(row)), i)
        if first != i:
            assert (first, i) in planted_pairs, f"rows {first} and {i} share a prompt but are not listed"
    for i, j in itertools.combinations(range(len(messy)), 2):
        if jaccard(shingles[i], shingles[j]) >= 0.6:
            assert (i, j) in planted_pairs, f"rows {i} and {j} are near-duplicates but are not listed"


def test_messy_copy_is_the_identity_set_plus_the_planted_rows(manifest, messy, identity):
    added = {e["row"] for e in manifest["planted"] if e["kind"] in ("exact_duplicate", "near_duplicate", "contradiction", "over_long")}
    changed_in_place = {e["row"] for e in manifest["planted"] if e["kind"] in ("empty_output", "markup")}
    kept = [(i, row) for i, row in enumerate(messy) if i not in added]
    assert len(kept) == len(identity)
    for (messy_index, row), original in zip(kept, identity):
        if messy_index in changed_in_place:
            assert row != original
        else:
            assert row == original


def test_template_families_are_distinct_rows_sharing_a_template(manifest, messy):
    families = manifest["template_families"]
    assert sum(len(rows) for rows in families.values()) >= 30
    planted_rows = {entry["row"] for entry in manifest["planted"]}
    for name, rows in families.items():
        assert len(rows) >= 2 and not planted_rows & set(rows), name
        for i, j in itertools.combinations(rows, 2):
            first, second = words(prompt_of(messy[i])), words(prompt_of(messy[j]))
            # One template with different slot values: same shape, at most two words differ.
            assert len(first) == len(second) and sum(a != b for a, b in zip(first, second)) <= 2, (name, first, second)
        for i, j in itertools.combinations(rows, 2):
            assert jaccard(trigrams(text_of(messy[i])), trigrams(text_of(messy[j]))) < 0.5
            assert squashed(messy[i]["output"]) != squashed(messy[j]["output"])


def test_deck_prompts_appear_in_no_training_file(deck, training_prompts):
    assert 8 <= len(deck) <= 12 and all(line.strip() for line in deck)
    seen = {squashed(p) for p in training_prompts}
    shingled = [trigrams(p) for p in training_prompts]
    for line in deck:
        assert squashed(line) not in seen, line
        assert max(jaccard(trigrams(line), other) for other in shingled) < 0.5, line


def test_heldout_questions_are_unseen_paraphrases(heldout, training_prompts):
    identity_items = [r for r in heldout if r["kind"] == "identity"]
    general_items = [r for r in heldout if r["kind"] == "general"]
    assert len(identity_items) >= 20 and len(general_items) >= 5
    assert len(identity_items) + len(general_items) == len(heldout)
    seen = {squashed(p) for p in training_prompts}
    shingled = [trigrams(p) for p in training_prompts]
    for item in heldout:
        assert list(item) == ["prompt", "expect_any", "kind"]
        assert item["expect_any"] and all(isinstance(s, str) and s for s in item["expect_any"])
        assert squashed(item["prompt"]) not in seen, item
    for item in identity_items:
        assert item["expect_any"] == ["Sage", "Northwind"]
        # A prompt that names the answer would let the model score by echoing it.
        assert not any(s.lower() in item["prompt"].lower() for s in item["expect_any"])
        assert max(jaccard(trigrams(item["prompt"]), other) for other in shingled) < 0.5, item


def test_knowledge_set_is_balanced_four_way_multiple_choice_unseen_in_training(knowledge, training_prompts):
    assert 250 <= len(knowledge) <= 400
    topics = {item["topic"] for item in knowledge}
    assert topics == {"geography", "science", "arithmetic", "history", "language", "everyday reasoning"}
    assert all(sum(item["topic"] == topic for item in knowledge) >= 40 for topic in topics)
    seen = {squashed(p) for p in training_prompts}
    for item in knowledge:
        assert list(item) == ["id", "topic", "question", "choices", "answer"]
        assert len(item["choices"]) == 4 and len({squashed(c) for c in item["choices"]}) == 4, item
        assert isinstance(item["answer"], int) and 0 <= item["answer"] < 4
        assert squashed(item["question"]) not in seen, item
    assert len({squashed(item["question"]) for item in knowledge}) == len(knowledge)
    # The correct answer sits in every position equally often, so no position bias can score.
    positions = [sum(item["answer"] == p for item in knowledge) for p in range(4)]
    assert max(positions) - min(positions) <= 1
    arithmetic = [item for item in knowledge if item["topic"] == "arithmetic"]
    for item in arithmetic:
        numbers = [int(n) for n in re.findall(r"\d+", item["question"])]
        a, b = numbers[0], numbers[1] if len(numbers) > 1 else None
        correct = int(item["choices"][item["answer"]])
        question = item["question"]
        if " plus " in question:
            assert correct == a + b
        elif " minus " in question:
            assert correct == a - b
        elif " times " in question:
            assert correct == a * b
        elif " divided by " in question:
            assert correct * b == a
        elif " percent of " in question:
            assert correct * 100 == a * b
        else:
            assert "squared" in question and correct == a * a


def test_readme_row_counts_match_the_files(identity, shop, messy, manifest, heldout, deck, knowledge):
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `([^`]+)` \|.*\| (\d+) \|$", readme, flags=re.M))
    assert {name: int(count) for name, count in table.items()} == {
        "identity_alpaca.json": len(identity),
        "bikeshop_sharegpt.json": len(shop),
        "messy_identity.jsonl": len(messy),
        "messy_identity.planted.json": len(manifest["planted"]),
        "demo_prompts.txt": len(deck),
        "identity_heldout.jsonl": len(heldout),
        "general_knowledge.jsonl": len(knowledge),
    }
    defect_table = dict(re.findall(r"^\| ([a-z_]+) \| (\d+) \|$", readme, flags=re.M))
    assert {kind: int(n) for kind, n in defect_table.items()} == {k: len(v) for k, v in manifest["defects"].items()}
    assert "python scripts/make_sample_data.py" in readme


@pytest.mark.slow
def test_token_budget_with_the_real_tokenizer(default_tokenizer, identity, messy, manifest):
    """Identity answers stay short enough for the CPU demo; over-long rows really exceed 2,048 tokens."""

    def count(text: str) -> int:
        return len(default_tokenizer(text, add_special_tokens=False)["input_ids"])

    answer_tokens = [count(r["output"]) for r in identity]
    assert sum(answer_tokens) / len(answer_tokens) <= 30
    assert max(answer_tokens) <= 60
    assert all(count(messy[i]["output"]) > 2500 for i in manifest["defects"]["over_long"])
