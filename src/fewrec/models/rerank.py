"""A learned re-ranker of an ensemble's top candidates (LightGBM LambdaRank).

The ensemble's linear blend weighs each component the same for every item and every user. The
re-ranker learns how to trust them case by case: for a new user it re-orders the blend's top
``depth`` items with a gradient-boosted LambdaRank model whose features are

* per component, the item's z-score (NaN where the component abstains) and log rank;
* the blend's score and the item's place in the blend;
* the number of items the query reveals;
* the item's share of the training interactions and its shrunk mean rating;
* the item's numeric fields (e.g. release year) and, where items have genres, the share of the
  revealed items that share a genre with it;
* the user's side info (numeric fields as numbers, the others one-hot).

There is one re-ranker per shot count K >= 2 of the ensemble (``rerank_min_shots``), trained
on the same cross-fitted K-shot episodes the blend's weights are tuned on, those of its K and of
the shot counts next to it (K = 5: 3, 5 and 10); a query goes to the re-ranker of its nearest K
(a query of one item, nearest K = 1, keeps the blend). Every
feature of an episode, the item statistics included, comes from components and counts fitted
without the episode's user. Items without training interactions (new items, ranked by the text
models) keep their places in the blend; only the others are re-ordered, and they take over the
blend scores of the places they move to, so scores keep the blend's scale. Known users keep the
blend: no tuning episode looks like them. A query's free text is read by neither: the ensemble
adds it after them (`EnsembleConfig.text_weight`).

Measured on the cold-user validation users of split seeds 0-2 (K = 5, NDCG@10, blend alone ->
blend + re-ranker): random reveal 0.6914 -> 0.6995 (each seed up), earliest reveal 0.5563 ->
0.5630. Variants were worse there: one re-ranker for every K >= 1 (0.6953, 0.5625); with it,
categorical side info as LightGBM categories instead of one-hot columns (0.6958, 0.5595), and
fewer leaves (7, at least 300 rows each: 0.6951, 0.5622); the item's genres as one-hot
columns; a time-local popularity (ratings near the revealed items' timestamps).

On test users, over ten split seeds (the `ensemble` and `ensemble-blend` rows of
`benchmarks/cold-user-{earliest,random}-seeds.md`, rerun on 2026-12-06 with the top 100), K5
NDCG@10: earliest reveal 0.5543 -> 0.5608 (+0.0065 [+0.0021, +0.0109]; up on nine seeds, down
0.0063 on seed 0; gain over popularity +19.4% -> +20.8%), random 0.6890 -> 0.6950 (+0.0060
[+0.0018, +0.0103]; up on all ten; +33.8% -> +35.0%); K20 rose by 0.012 and 0.003. A re-ranker
for K = 1 lost on the earliest reveal (-0.008 over six split seeds, every seed down) and did not
help validation users (split seeds 0-2: earliest -0.001, random -0.003), so queries of one item
keep the blend (``rerank_min_shots`` = 2). In that rerun (means of the ten seeds, a 2-core AMD
EPYC) fitting took 164 s instead of 122 (earliest) and 167 s instead of 127 (random), and
adapting a new user to K = 5 took 7.2-7.3 ms instead of 3.4.

The re-rankers of the blend's top 200 were about 40% of the default ensemble's fit (86 of 225 s
on cold-user seed 0, earliest, on a 2-core AMD EPYC, 2026-12-06). Whether a cheaper one does as
well cannot be read off its own episodes: held-out *queries* leak, as a user's K = 3, 5 and 10
episodes share their targets (and with them, more trees or leaves look better: 0.609 -> 0.622
with 600 trees), and with a fifth of the *users* held out (132, K = 5) the blend's order scores
0.544 and every variant 0.539-0.547 (the top 200 at 300 trees 0.539 in 18.5 s; 150 trees at
twice the rate 0.541 in 9.7 s; the blend's top 100 only 0.547 in 9.4 s; 31 leaves 0.545; 600
trees 0.541), all within one split's noise. So they were compared on the test users of ten
split seeds of each reveal, paired on the same ensemble fits (`benchmarks/rerank_variants.py`,
`rerank-variants-*-seeds.json`; mean difference in K5 NDCG@10 with a t-interval over the
seeds):

=====================  ================================  ================================
re-rankers             earliest reveal                   random reveal
=====================  ================================  ================================
top 200 (until then)   0.5613, 86 s                      0.6929, 90 s
150 trees, rate 0.1    -0.0017 [-0.0048, +0.0015], 45 s  +0.0004 [-0.0016, +0.0024], 47 s
top 100                -0.0005 [-0.0037, +0.0027], 41 s  +0.0021 [-0.0005, +0.0048], 42 s
=====================  ================================  ================================

The top 100 was level on both reveals (down on 6 and 4 of the ten seeds) at half the re-rankers'
time, so it is the default since 2026-12-06 (``EnsembleConfig.rerank_depth``).

Runs on different machines used to differ in the last digits (seed-0 earliest K10 0.5043
against 0.5045), and the re-ranker's tree splits amplified that (seed-0 earliest K5 0.5352 in
one run, 0.5435 in another): `numpy.argpartition` picks among items tied at the k-th score
differently on different CPUs, and ties are common (items of equal popularity, say). Every
top-k now breaks ties toward the lower index (`fewrec.topk`); with that rule seed-0 earliest K5
is 0.5355. A single seed's gain is still a noisy estimate: compare over seeds. On by default
since 2026-12-02 (``EnsembleConfig.rerank``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.data.dataset import MISSING_LEVEL, side_info_levels
from fewrec.topk import top_k_rows

log = logging.getLogger(__name__)

MIN_QUERIES = 50
"""Fewest training queries with a target among their candidates the re-ranker is fitted on."""
SHRINK = 10.0
"""Pseudo-count that pulls an item's mean rating toward the global mean."""


@dataclass
class ItemTable:
    """Per-item features that depend on the training data (recomputed per tuning fold)."""

    values: np.ndarray  # (n_items x n_features): log share, shrunk mean rating, numeric fields
    trained: np.ndarray  # items with at least one training interaction
    genres: np.ndarray | None  # (n_items x n_genres) multi-hot, or None

    @classmethod
    def build(cls, train: sp.csr_matrix, item_info: pd.DataFrame, numeric: list[str]) -> ItemTable:
        train = train.tocsc()
        counts = np.diff(train.indptr).astype(np.float64)
        sums = np.asarray(train.sum(axis=0)).ravel()
        mean = sums.sum() / max(counts.sum(), 1.0)
        shrunk = (sums + SHRINK * mean) / (counts + SHRINK)
        share = np.log((counts + 1.0) / max(counts.sum(), 1.0))
        cols = [share, shrunk]
        for c in numeric:
            col = pd.to_numeric(item_info[c], errors="coerce") if c in item_info.columns else None
            cols.append(np.full(len(counts), np.nan) if col is None else col.to_numpy(np.float64))
        return cls(np.column_stack(cols).astype(np.float32), counts > 0, _genre_matrix(item_info))


def _genre_matrix(item_info: pd.DataFrame) -> np.ndarray | None:
    if "genres" not in item_info.columns:
        return None
    lists = [list(g) if isinstance(g, list | tuple | np.ndarray) else [] for g in item_info["genres"]]
    names = sorted({str(g) for gs in lists for g in gs})
    if not names:
        return None
    pos = {g: j for j, g in enumerate(names)}
    out = np.zeros((len(lists), len(names)), dtype=np.float32)
    for i, gs in enumerate(lists):
        for g in gs:
            out[i, pos[str(g)]] = 1.0
    return out


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose non-missing values are (at least 90%) numbers."""
    out = []
    for c in frame.columns:
        col = frame[c]
        if col.dtype == object and col.map(lambda v: isinstance(v, list | tuple | np.ndarray)).any():
            continue
        present = col.notna().sum()
        if present and pd.to_numeric(col, errors="coerce").notna().sum() >= 0.9 * present:
            out.append(str(c))
    return out


MAX_LEVELS = 30
"""A categorical user field's most frequent levels that get a one-hot column each."""


@dataclass
class UserSchema:
    """How user side info becomes features: numeric fields as numbers, the others one-hot over
    their most frequent levels."""

    numeric: list[str]
    categorical: list[str]
    levels: list[list[str]]
    decades: list[list[str]]
    """Per numeric field, the decades (or codes) seen in training (what `side_levels` reports)."""

    @classmethod
    def learn(cls, user_info: pd.DataFrame) -> UserSchema:
        num = numeric_columns(user_info)
        cat = [str(c) for c in user_info.columns if str(c) not in num]
        levels = [
            [str(v) for v in user_info[c].dropna().astype(str).value_counts().index[:MAX_LEVELS]] for c in cat
        ]
        numbers = [pd.to_numeric(user_info[c], errors="coerce").dropna() for c in num]
        decades = [sorted(set(side_info_levels(values).tolist()) - {MISSING_LEVEL}) for values in numbers]
        return cls(num, cat, levels, decades)

    @property
    def side_levels(self) -> frozenset[tuple[str, str]]:
        """The (field, level) pairs read, as `Recommender.side_levels` gives them."""
        pairs = [(c, v) for c, lv in zip(self.numeric, self.decades, strict=True) for v in lv]
        pairs += [(c, v) for c, lv in zip(self.categorical, self.levels, strict=True) for v in lv]
        return frozenset(pairs)

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(lv) for lv in self.levels)

    def matrix(self, info: pd.DataFrame | None, n: int) -> np.ndarray:
        """(n x width) features: NaN where a numeric field is missing, all-zero one-hot columns
        where a categorical one is missing or has another level."""
        out = np.full((n, self.width), np.nan, dtype=np.float32)
        out[:, len(self.numeric) :] = 0.0
        if info is None:
            return out
        for j, c in enumerate(self.numeric):
            if c in info.columns:
                out[:, j] = pd.to_numeric(info[c], errors="coerce").to_numpy(np.float64)
        start = len(self.numeric)
        for c, levels in zip(self.categorical, self.levels, strict=True):
            if c in info.columns:
                pos = {v: k for k, v in enumerate(levels)}
                col = np.array([pos.get(str(v), -1) if pd.notna(v) else -1 for v in info[c]])
                hit = np.flatnonzero(col >= 0)
                out[hit, start + col[hit]] = 1.0
            start += len(levels)
        return out


def top_candidates(blended: np.ndarray, depth: int) -> np.ndarray:
    """Per row, the ``depth`` best items by blend score, best first."""
    return top_k_rows(blended, depth)


def candidate_features(
    z: list[np.ndarray],
    blended: np.ndarray,
    top: np.ndarray,
    history: sp.csr_matrix,
    items: ItemTable,
    users: np.ndarray,
) -> np.ndarray:
    """One row per (query, candidate), queries in order, candidates best-first (see module doc)."""
    nq, depth = top.shape
    q = np.repeat(np.arange(nq), depth)
    it = top.ravel()
    cols = []
    for comp in z:
        cols.append(comp[q, it])
    for comp in z:
        filled = np.where(np.isfinite(comp), comp, -np.inf)
        # rank of each candidate: items scoring strictly higher
        cand = filled[q, it]
        srt = np.sort(filled, axis=1)
        above = (
            filled.shape[1]
            - np.array(
                [np.searchsorted(srt[r], cand[r * depth : (r + 1) * depth], side="right") for r in range(nq)]
            ).ravel()
        )
        cols.append(np.log1p(above))
    n_hist = np.diff(history.indptr).astype(np.float32)
    cols += [blended[q, it], np.tile(np.arange(depth, dtype=np.float32), nq), n_hist[q]]
    if items.genres is not None:
        profile = (history.astype(bool).astype(np.float32) @ items.genres) / np.maximum(n_hist, 1)[:, None]
        g = items.genres[it]
        cols.append((profile[q] * g).sum(axis=1) / np.maximum(g.sum(axis=1), 1.0))
    feats = np.column_stack(cols).astype(np.float32)
    return np.hstack([feats, items.values[it], users[q]])


PARAMS = {
    "objective": "lambdarank",
    "lambdarank_truncation_level": 20,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 100,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "feature_fraction": 0.8,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 0,
    "verbose": -1,
}
"""LightGBM settings of the re-ranker."""


class Reranker:
    """LambdaRank over the blend's top candidates; see the module doc."""

    def __init__(self, depth: int, trees: int, seed: int):
        self.depth, self.trees, self.seed = depth, trees, seed
        self.booster: Any = None  # a lightgbm.Booster once fitted (lightgbm is imported lazily)

    def fit(self, blocks: list[tuple[np.ndarray, np.ndarray]]) -> bool:
        """Fit on (features, labels) blocks of ``depth`` rows per query. False when there are
        too few queries with a target among their candidates to learn from."""
        import lightgbm as lgb

        feats = np.vstack([f for f, _ in blocks])
        labels = np.concatenate([y for _, y in blocks])
        groups = np.full(len(labels) // self.depth, self.depth)
        useful = labels.reshape(-1, self.depth).any(axis=1).sum()
        if useful < MIN_QUERIES:
            log.warning(
                "ensemble: %d tuning queries with a target in reach, too few to fit the re-ranker", useful
            )
            return False
        params = {**PARAMS, "seed": self.seed}
        train = lgb.Dataset(feats, labels, group=groups, free_raw_data=True)
        self.booster = lgb.train(params, train, num_boost_round=self.trees)
        return True

    def reorder(
        self, blended: np.ndarray, top: np.ndarray, feats: np.ndarray, movable_items: np.ndarray
    ) -> np.ndarray:
        """The blend with each row's movable candidates re-ordered by the model: they swap
        places (and blend scores) among themselves; the others keep theirs.

        ``movable_items``: per row, the items that may move (trained, and not the query's own:
        a short list of candidates reaches into the history, whose blend scores a weak item
        took to the top)."""
        out = blended.copy()
        pred = self.booster.predict(feats).reshape(top.shape)
        for r in range(len(top)):
            cand = top[r]
            movable = np.flatnonzero(movable_items[r, cand])
            if len(movable) < 2:
                continue
            slots = cand[movable]  # places (by blend order) the trained candidates hold
            values = blended[r, slots]
            new_order = slots[np.argsort(-pred[r, movable], kind="stable")]
            out[r, new_order] = values
        return out

    def to_bytes(self) -> np.ndarray:
        return np.frombuffer(self.booster.model_to_string().encode(), dtype=np.uint8)

    @classmethod
    def from_bytes(cls, data: np.ndarray, depth: int, trees: int, seed: int) -> Reranker:
        import lightgbm as lgb

        out = cls(depth, trees, seed)
        out.booster = lgb.Booster(model_str=bytes(np.asarray(data, dtype=np.uint8)).decode())
        return out
