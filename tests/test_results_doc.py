"""The headline figures of docs/results.md against the recorded tables they come from.

Each row of the doc's table names its tables in ``benchmarks/``; every figure checked here is read
out of the doc's text (the pattern below finds it in its row, once) and compared, at the
precision the doc prints it, with the value in the JSON beside the table that row names. A rerun
that moves a table, or an edit of the doc, that leaves the two apart fails here.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results.md"

_NUM = r"([+-]?\d+(?:\.\d+)?%?)"  # a figure as the doc prints it: 0.350, +28.3%, -1.3%, 7.8


def claim(row: str, pattern: str, *sources):
    """A claim: in the row whose protocol cell holds ``row``, ``pattern`` (``{}`` for each
    figure) matches once, and its figures are the JSON values at ``sources``: (table stem, keys
    ...), or ("/", source, source) for a ratio of two."""
    return pytest.param(row, pattern, sources, id=f"{row}: {pattern}")


WARM = "warm ("
RANDOM = "cold-user, K=5 random"
EARLIEST = "cold-user, K=5 earliest"
ML1M = "on MovieLens-1M"
K0 = "cold-user, K=0 + side info"
ITEM = "cold-item ("


def m(stem: str, model: str, key: str) -> tuple:
    return (stem, "models", model, key)


def gain(stem: str, model: str, *key) -> tuple:
    return (stem, "gain", model, *key)


def paired(stem: str, model: str) -> tuple:
    """A one-seed table's K5 gain over popularity and its paired interval."""
    return tuple(m(stem, model, f"K5/ndcg@10_gain{end}") for end in ("", "_ci_low", "_ci_high"))


def over_seeds(stem: str, model: str) -> tuple:
    """A seeds table's mean gain, its interval corrected for the splits' overlap, and uncorrected."""
    keys = [("mean",), ("ci_corrected", 0), ("ci_corrected", 1), ("ci", 0), ("ci", 1)]
    return tuple(gain(stem, model, *k) for k in keys)


TEMPORAL = "new items arriving over time"


def t(cut: str, model: str) -> tuple:
    return ("new_items_temporal", cut, model, "recall@20")


CLAIMS = [
    claim(TEMPORAL, "fewshot **{}**/{}", t("0.7", "fewshot"), t("0.8", "fewshot")),
    claim(TEMPORAL, "ensemble {}/{} (", t("0.7", "ensemble"), t("0.8", "ensemble")),
    claim(TEMPORAL, '`untrained_items="text"` {}/{}', t("0.7", "ensemble-text"), t("0.8", "ensemble-text")),
    claim(TEMPORAL, "EASE {}/{}", t("0.7", "ease"), t("0.8", "ease")),
    claim(TEMPORAL, "popularity {}/{}", t("0.7", "popularity"), t("0.8", "popularity")),
    # warm: NDCG@10 of known users
    claim(WARM, "EASE NDCG@10 **{}**", m("warm", "ease", "ndcg@10")),
    claim(WARM, "ensemble {},", m("warm", "ensemble", "ndcg@10")),
    claim(WARM, "DLAE {},", m("warm", "dlae", "ndcg@10")),
    claim(WARM, "ALS {},", m("warm", "als", "ndcg@10")),
    claim(WARM, "RP3beta {},", m("warm", "rp3beta", "ndcg@10")),
    claim(WARM, "few-shot {},", m("warm", "fewshot", "ndcg@10")),
    claim(WARM, "BPR {},", m("warm", "bpr", "ndcg@10")),
    claim(WARM, ", popularity {}", m("warm", "popularity", "ndcg@10")),
    # cold-user, random reveal: seed 0, then the ten split seeds
    claim(
        RANDOM,
        "ensemble **{}** (the blend alone {}) and DLAE {}, kshot-ridge {} vs popularity {} (",
        *(
            m("cold-user-random", n, "K5/ndcg@10")
            for n in ("ensemble", "ensemble-blend", "dlae", "kshot-ridge", "popularity")
        ),
    ),
    claim(
        RANDOM,
        "(the ensemble {}, paired 95% CI over its 189 test users {} to {};",
        *paired("cold-user-random", "ensemble"),
    ),
    claim(
        RANDOM,
        "kshot-ridge {} [{}, {}])",
        *paired("cold-user-random", "kshot-ridge"),
    ),
    claim(
        RANDOM,
        "RP3beta {}, item-kNN {}; over",
        m("cold-user-random", "rp3beta", "K5/ndcg@10"),
        m("cold-user-random", "itemknn", "K5/ndcg@10"),
    ),
    claim(
        RANDOM,
        "the ensemble gains **{}** [95% CI corrected for the splits' overlap {}, {}; uncorrected {}, {}]",
        *over_seeds("cold-user-random-seeds", "ensemble"),
    ),
    claim(
        RANDOM,
        "(the blend alone {}) and DLAE {}, kshot-ridge {}, RP3beta {}, item-kNN {} (",
        *(
            gain("cold-user-random-seeds", n, "mean")
            for n in ("ensemble-blend", "dlae", "kshot-ridge", "rp3beta", "itemknn")
        ),
    ),
    claim(RANDOM, "{} ms (ensemble", m("cold-user-random", "ensemble", "adapt_ms_k5")),
    claim(
        RANDOM,
        "{} ms over the ten seeds, the blend alone {})",
        ("cold-user-random-seeds", "summary", "ensemble", "adapt_ms_k5", "mean"),
        ("cold-user-random-seeds", "summary", "ensemble-blend", "adapt_ms_k5", "mean"),
    ),
    # cold-user, earliest reveal
    claim(
        EARLIEST,
        "ensemble **{}** (the blend alone {}) and kshot-ridge {} vs popularity {} (",
        *(
            m("cold-user", n, "K5/ndcg@10")
            for n in ("ensemble", "ensemble-blend", "kshot-ridge", "popularity")
        ),
    ),
    claim(
        EARLIEST,
        "(the ensemble {}, paired 95% CI {} to {})",
        *paired("cold-user", "ensemble"),
    ),
    claim(
        EARLIEST,
        "item-kNN {}, DLAE {};",
        m("cold-user", "itemknn", "K5/ndcg@10"),
        m("cold-user", "dlae", "K5/ndcg@10"),
    ),
    claim(
        EARLIEST,
        "the ensemble gains **{}** [95% CI corrected for the splits' overlap {}, {}; uncorrected {}, {}]",
        *over_seeds("cold-user-earliest-seeds", "ensemble"),
    ),
    claim(
        EARLIEST,
        "the blend alone {}) and kshot-ridge {} [corrected {}, {}]",
        gain("cold-user-earliest-seeds", "ensemble-blend", "mean"),
        gain("cold-user-earliest-seeds", "kshot-ridge", "mean"),
        gain("cold-user-earliest-seeds", "kshot-ridge", "ci_corrected", 0),
        gain("cold-user-earliest-seeds", "kshot-ridge", "ci_corrected", 1),
    ),
    claim(
        EARLIEST,
        "segment popularity gains {}",
        gain("cold-user-earliest-seeds", "popularity-segment", "mean"),
    ),
    claim(
        EARLIEST,
        "item-kNN ({}), DLAE ({}) and few-shot ({}) lose",
        *(gain("cold-user-earliest-seeds", n, "mean") for n in ("itemknn", "dlae", "fewshot")),
    ),
    # MovieLens-1M, seed 0
    claim(
        ML1M,
        "random: ensemble **{}**, kshot-ridge {} vs popularity {} ({} [{}, {}], {});",
        *(m("cold-user-ml1m-random", n, "K5/ndcg@10") for n in ("ensemble", "kshot-ridge", "popularity")),
        *(m("cold-user-ml1m-random", "ensemble", f"K5/ndcg@10_gain{s}") for s in ("", "_ci_low", "_ci_high")),
        m("cold-user-ml1m-random", "kshot-ridge", "K5/ndcg@10_gain"),
    ),
    claim(
        ML1M,
        "earliest: ensemble {}, kshot-ridge {} vs popularity {} ({} [{}, {}], {})",
        *(m("cold-user-ml1m-earliest", n, "K5/ndcg@10") for n in ("ensemble", "kshot-ridge", "popularity")),
        *(
            m("cold-user-ml1m-earliest", "ensemble", f"K5/ndcg@10_gain{s}")
            for s in ("", "_ci_low", "_ci_high")
        ),
        m("cold-user-ml1m-earliest", "kshot-ridge", "K5/ndcg@10_gain"),
    ),
    # K = 0 with side info: seed 0 (earliest), then the ten earliest-reveal seeds
    claim(
        K0,
        "kshot-ridge **{}**, ensemble {} and popularity by age (`popularity-segment`) {} vs popularity {};",
        *(
            m("cold-user", n, "K0/ndcg@10")
            for n in ("kshot-ridge", "ensemble", "popularity-segment", "popularity")
        ),
    ),
    claim(
        K0,
        "over split seeds 0-9: {}, {} and {} vs {}",
        *(
            ("cold-user-earliest-seeds", "summary", n, "K0/ndcg@10", "mean")
            for n in ("kshot-ridge", "ensemble", "popularity-segment", "popularity")
        ),
    ),
    # cold-item: Recall@20, and its ratio to random's
    claim(
        ITEM,
        "few-shot (distilled factors) Recall@20 **{}** vs random {} ({}x)",
        m("cold-item", "fewshot", "recall@20"),
        m("cold-item", "random", "recall@20"),
        ("/", m("cold-item", "fewshot", "recall@20"), m("cold-item", "random", "recall@20")),
    ),
    claim(
        ITEM,
        'ensemble {} ({}x; {}, {}x, with `untrained_items="text"`',
        m("cold-item", "ensemble", "recall@20"),
        ("/", m("cold-item", "ensemble", "recall@20"), m("cold-item", "random", "recall@20")),
        m("cold-item", "ensemble-text", "recall@20"),
        ("/", m("cold-item", "ensemble-text", "recall@20"), m("cold-item", "random", "recall@20")),
    ),
    claim(
        ITEM,
        "among cold items only {} vs {} ({}x",
        m("cold-item", "ensemble", "cold_only/recall@20"),
        m("cold-item", "random", "cold_only/recall@20"),
        (
            "/",
            m("cold-item", "ensemble", "cold_only/recall@20"),
            m("cold-item", "random", "cold_only/recall@20"),
        ),
    ),
    claim(
        ITEM,
        "`content` {} ({}x; among cold items {})",
        m("cold-item", "content", "recall@20"),
        ("/", m("cold-item", "content", "recall@20"), m("cold-item", "random", "recall@20")),
        m("cold-item", "content", "cold_only/recall@20"),
    ),
]


@cache
def _rows() -> dict[str, tuple[str, str]]:
    """The doc's table: each row's protocol cell -> (protocol cell, headline cell)."""
    rows = {}
    for line in RESULTS.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| ") else []
        if len(cells) == 2 and cells[0] != "protocol":
            rows[cells[0]] = (cells[0], cells[1])
    return rows


def _row(label: str) -> tuple[str, str]:
    found = [cells for cell, cells in _rows().items() if label in cell]
    assert len(found) == 1, f"{len(found)} rows of {RESULTS.name} have {label!r} in their protocol cell"
    return found[0]


def _tables_named(text: str) -> set[str]:
    """The benchmark tables a row names (``cold-user-ml1m-{random,earliest}.md`` is two)."""
    names = set()
    for quoted in re.findall(r"`([^`]*\.md)`", text):
        base = quoted.rsplit("/", 1)[-1]
        braces = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", base)
        names |= {f"{braces[1]}{o}{braces[3]}" for o in braces[2].split(",")} if braces else {base}
    return names


@cache
def _table(stem: str) -> dict:
    return json.loads((ROOT / "benchmarks" / f"{stem}.json").read_text(encoding="utf-8"))


def _value(source: tuple) -> float:
    if source[0] == "/":
        return _value(source[1]) / _value(source[2])
    node = _table(source[0])
    for key in source[1:]:
        node = node[key]
    return float(node)


def _stems(source: tuple) -> list[str]:
    return [s for part in source[1:] for s in _stems(part)] if source[0] == "/" else [source[0]]


def _agrees(printed: str, value: float) -> bool:
    """Whether ``value`` prints as ``printed`` (a percentage for ``%``, a multiple for ``x``)."""
    scale = 100.0 if printed.endswith("%") else 1.0
    digits = printed.rstrip("%")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return abs(value * scale - float(digits)) <= 0.5 * 10**-decimals + 1e-9


@pytest.mark.parametrize(("row", "pattern", "sources"), CLAIMS)
def test_a_results_figure_is_its_recorded_tables(row, pattern, sources):
    protocol, headline = _row(row)
    regex = re.escape(pattern).replace(r"\{\}", _NUM)
    hits = re.findall(regex, headline)
    assert len(hits) == 1, f"{pattern!r} is {len(hits)} times in the row {protocol!r}, not once"
    printed = hits[0] if isinstance(hits[0], tuple) else (hits[0],)
    named = _tables_named(protocol + headline)
    for text, source in zip(printed, sources, strict=True):
        for stem in _stems(source):  # the row says where its figure comes from
            assert f"{stem}.md" in named, f"the row {protocol!r} names no {stem}.md"
        value = _value(source)
        assert _agrees(text, value), (
            f"{RESULTS.name} prints {text} for {source}, whose table holds {value:.5g}"
        )


def test_the_results_claims_about_seeds_are_the_tables():
    """What the doc says of the seeds as a whole: random's seed 0 is the lowest of the ten
    (ensemble's gain), and with the earliest reveal every seed gains that much or more."""
    _, random_row = _row(RANDOM)
    assert "(seed 0 is the lowest of the ten;" in random_row
    per_seed = _table("cold-user-random-seeds")["gain"]["ensemble"]["per_seed"]
    assert len(per_seed) == 10 and per_seed[0] == min(per_seed)
    _, earliest_row = _row(EARLIEST)
    (least,) = re.findall(r"\(every seed \+(\d+)% or more;", earliest_row)
    assert min(_table("cold-user-earliest-seeds")["gain"]["ensemble"]["per_seed"]) >= int(least) / 100
