"""Score a fitted model on an evaluation set and compute every metric, with per-user CIs."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fewrec.data.dataset import Dataset, user_info_rows
from fewrec.data.splits import EvalSet, TallrecSamples, binary_union
from fewrec.errors import ArgumentError, DataError, is_whole_number, not_whole, user_stacklevel
from fewrec.eval import metrics as M
from fewrec.models.base import Recommender
from fewrec.models.query import QueryBatch, dislike_mask

DEFAULT_KS = (10, 20)


@dataclass
class Report:
    """Metric means, their bootstrap 95% CIs, timings, and (ranking) the per-query values."""

    values: dict[str, float] = field(default_factory=dict)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    per_user: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    """The per-query values behind each mean (ranking metrics), for paired comparisons."""

    def as_dict(self, with_ci: bool = True) -> dict[str, float]:
        out = dict(self.values)
        if with_ci:
            for key, (lo, hi) in self.ci.items():
                out[f"{key}_ci_low"] = lo
                out[f"{key}_ci_high"] = hi
        return out


def genre_vectors(data: Dataset) -> np.ndarray:
    """Multi-hot genre vectors per item (for intra-list diversity)."""
    genres = data.item_genres()
    vocab = sorted({g for gs in genres for g in gs})
    pos = {g: i for i, g in enumerate(vocab)}
    out = np.zeros((data.n_items, max(1, len(vocab))), dtype=np.float32)
    for i, gs in enumerate(genres):
        for g in gs:
            out[i, pos[g]] = 1.0
    return out


def score_eval_set(
    model: Recommender, evalset: EvalSet, user_info: pd.DataFrame | None = None, chunk: int = 512
) -> np.ndarray:
    """Scores for every query of an eval set (excluded items set to -inf).

    ``user_info`` (rows of the dataset's user side info) is passed to the model with each query:
    side info is part of what a new user may tell us. The scores are float32, as the built-in
    models give them, or float64 where the model gives float64 (as `recommend` ranks them: scores
    of ``1e8 + popularity`` were ties in float32, NDCG 0.157 where recommend ranked as popularity).
    """
    out = np.empty((len(evalset), model.n_items), dtype=np.float32)
    users = np.where(evalset.known, evalset.users, -1)
    info = None if user_info is None else user_info_rows(user_info, evalset.users)
    cut = model.fitted.dislike_at
    for lo in range(0, len(evalset), chunk):
        hi = min(lo + chunk, len(evalset))
        rows = None if info is None else info.iloc[lo:hi].reset_index(drop=True)
        history = evalset.history[lo:hi].tocsr()
        # a new user's revealed items rated low are dislikes, as when the model serves them
        # (`Recommender.batch_from_queries`); a known user's training history is kept whole
        low = dislike_mask(history, cut, np.flatnonzero(users[lo:hi] < 0))
        batch = QueryBatch(users[lo:hi], history, user_info=rows, disliked=low)
        # checked as recommend checks it (one row was broadcast to every query, silently)
        scores = model._check_scores(model.score_batch(batch.for_model(model)), hi - lo)
        if not np.can_cast(scores.dtype, out.dtype):  # float64 (or int64) kept as precise
            out = out.astype(np.float64)
        out[lo:hi] = scores
    ex = evalset.exclude.tocoo()
    out[ex.row, ex.col] = -np.inf
    return out


EVAL_BLOCK_ENTRIES = 2**26
"""Most scores (queries x items) `evaluate_ranking` holds at once: 256 MB of float32, ~1.3 GB
with the tie counting's float64 copies."""


def _query_blocks(n_queries: int, n_items: int) -> list[np.ndarray]:
    """Query rows in blocks of at most `EVAL_BLOCK_ENTRIES` scores; a whole number of
    `score_eval_set`'s 512-query chunks where that allows, so that every model sees the same
    batches as when one block held every query (all of ML-100K's test users fit in one)."""
    step = max(1, EVAL_BLOCK_ENTRIES // max(n_items, 1))
    if step >= 512:
        step -= step % 512
    return [np.arange(lo, min(lo + step, n_queries)) for lo in range(0, max(n_queries, 1), step)]


def check_not_trained_on(model: Recommender, evalset: EvalSet) -> None:
    """Refuse to evaluate a model whose training data hold the queries' targets (a model fitted
    on another split, or on the whole data; or duplicated interaction rows)."""
    fit = model.fitted.train
    targets = evalset.targets.tocsr()
    users = np.asarray(evalset.users)
    if fit.shape[1] != targets.shape[1] or (len(users) and users.max() >= fit.shape[0]):
        raise DataError(
            f"the model was fitted on other data ({fit.shape[0]} users x {fit.shape[1]} items) than "
            f"this evaluation's ({targets.shape[1]} items)",
            fix="fit the model on the split's train data",
        )
    # stored entries, not values: an interaction rated 0 is an interaction
    leaked = int(binary_union(fit[users]).multiply(binary_union(targets)).sum()) if len(users) else 0
    if leaked:
        raise DataError(
            f"the model was trained on {leaked} of the interactions this evaluation holds out as "
            "targets, so its scores would be inflated",
            fix="fit the model on the split's train data (and remove duplicate user-item rows)",
        )


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    if isinstance(ks, np.ndarray | pd.Series | pd.Index) and ks.ndim == 1:  # (refused: "not a list")
        ks = ks.tolist()
    if isinstance(ks, str) or not isinstance(ks, Sequence) or not ks:
        raise ArgumentError(f"ks must be a non-empty list of cut-offs, got {ks!r}", fix="ks=(10, 20)")
    for k in ks:  # ("each of ks must be ..., Fix: each of ks=10" read badly)
        if not is_whole_number(k):
            raise ArgumentError(not_whole("each cut-off in ks", k), fix="ks=(10, 20)")
        if k < 1:
            raise ArgumentError(f"each cut-off in ks must be >= 1, got {k!r}", fix="ks=(10, 20)")
    return tuple(int(k) for k in ks)


def _check_arguments(model: Any, evalset: Any, train: Any, item_vectors: Any, seed: Any) -> None:
    """The objects `evaluate_ranking` is given, each of its kind (a Split for its test set was
    a raw "object of type 'Split' has no len()")."""
    if not isinstance(model, Recommender):
        raise ArgumentError(f"model must be a fitted Recommender, got {type(model).__name__}")
    for name, value, kind, fix in (
        ("evalset", evalset, EvalSet, "give split.test (or split.valid)"),
        ("train", train, Dataset, "give split.train, the data the model was fitted on"),
    ):
        if not isinstance(value, kind):
            raise ArgumentError(
                f"{name} must be {'an' if name == 'evalset' else 'a'} {kind.__name__}, "
                f"got {type(value).__name__}",
                fix=fix,
            )
    if item_vectors is not None and np.shape(item_vectors)[:1] != (model.n_items,):
        raise ArgumentError(
            f"item_vectors must have one row per item of the model ({model.n_items}), got shape "
            f"{np.shape(item_vectors)}"
        )
    if not is_whole_number(seed) or seed < 0:
        raise ArgumentError(f"seed must be a whole number >= 0, got {seed!r}")


def _only_items(only_items: Any, n_items: int) -> np.ndarray:
    """``only_items`` as sorted unique item indices: a boolean mask over the items or their
    indices (a mask was read as the indices 0 and 1: coverage@10 of 81.5)."""
    a = np.asarray(only_items)
    if a.dtype == bool and a.shape == (n_items,):
        a = np.flatnonzero(a)
    if a.ndim != 1 or not len(a) or not np.issubdtype(a.dtype, np.integer):
        raise ArgumentError(
            "only_items must be item indices (whole numbers) or a mask over the items, at least one",
            fix="give split.cold_items, or model.fitted.items.index(ids) for external ids",
        )
    if a.min() < 0 or a.max() >= n_items:
        bad = a[(a < 0) | (a >= n_items)][0]
        raise ArgumentError(f"only_items holds {bad}, not an item index (0 to {n_items - 1})")
    return np.unique(a)


def evaluate_ranking(
    model: Recommender,
    evalset: EvalSet,
    train: Dataset,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    item_vectors: np.ndarray | None = None,
    seed: int = 0,
    only_items: np.ndarray | None = None,
) -> Report:
    """Full-ranking accuracy (NDCG, Recall, Precision, HR @k; MRR) and beyond-accuracy metrics
    (coverage, intra-list diversity, novelty @ the smallest k). The accuracy metrics are
    expected values over the order of tied scores, with per-user bootstrap CIs; the
    beyond-accuracy ones are means, of the lists with tied scores in item order.

    ``only_items`` restricts the ranking to those items (e.g. the cold items of cold-item).
    """
    _check_arguments(model, evalset, train, item_vectors, seed)
    ks = _check_ks(ks)
    if not len(evalset):  # every metric would be the mean of nothing (NaN)
        raise DataError(
            "the evaluation set has no queries", fix="check the split: it held out no users or items"
        )
    n_targets = np.diff(evalset.targets.indptr)
    if (n_targets == 0).any():  # every metric would count them as misses
        raise DataError(
            f"{int((n_targets == 0).sum())} of the {len(evalset)} queries have no target items",
            fix="leave them out: evalset.subset(np.flatnonzero(np.diff(evalset.targets.indptr)))",
        )
    check_not_trained_on(model, evalset)
    fitted = model.fitted.train.nnz
    if train.n_interactions != fitted:  # (the whole data moved novelty, without a word)
        warnings.warn(
            f"train holds {train.n_interactions:,} interactions, the model was fitted on {fitted:,}: "
            "novelty and the queries' side info are read from train, so give the data the model "
            "was fitted on (split.train)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    kmax = max(ks)
    keep = None
    if only_items is not None:
        only_items = _only_items(only_items, model.n_items)
        keep = np.zeros(model.n_items, dtype=bool)
        keep[only_items] = True
    score_seconds = 0.0
    blocks: list[dict[str, np.ndarray]] = []
    tops, shows = [], []
    # a block of queries at a time: the scores are queries x items, and the tie counting below
    # holds two float64 copies of them (warm on 50,000 users x 100,000 items: 20 GB of scores)
    for rows in _query_blocks(len(evalset), model.n_items):
        part = evalset.subset(rows)
        t0 = time.perf_counter()
        scores = score_eval_set(model, part, train.user_info)
        score_seconds += time.perf_counter() - t0
        if keep is not None:
            scores[:, ~keep] = -np.inf
        top = M.top_k_matrix(scores, kmax)
        # a rank whose score is -inf (excluded, outside ``only_items``, or an item the model
        # cannot score) holds no recommendation, only the tie order of the rest: never a hit
        ranked = np.take_along_axis(scores, top, axis=1)
        shows.append(~(np.isnan(ranked) | (ranked == -np.inf)))
        tops.append(top)
        # hits in expectation over the order of tied scores (`tied_hits`): ties break by item
        # index, and low indices are often the popular items
        tied = M.tied_hits(scores, top, part.targets)
        block: dict[str, np.ndarray] = {}
        for k in ks:
            block[f"ndcg@{k}"] = M.ndcg_at_k(tied.expected, n_targets[rows], k)
            block[f"recall@{k}"] = M.recall_at_k(tied.expected, n_targets[rows], k)
            block[f"precision@{k}"] = M.precision_at_k(tied.expected, k)
            block[f"hr@{k}"] = M.tied_hit_rate(tied, k)
        block["mrr"] = M.reciprocal_rank(scores, part.targets, part.exclude)
        blocks.append(block)
        del scores, tied
    per_user = {key: np.concatenate([b[key] for b in blocks]) for key in blocks[0]}
    top, shown = np.concatenate(tops), np.concatenate(shows)
    k0 = min(ks)
    vecs = item_vectors if item_vectors is not None else genre_vectors(train)
    # beyond-accuracy metrics describe the lists shown: -inf ranks are not recommendations; a
    # list with nothing shown (an ID-only model on cold items) has no diversity or novelty
    top0, shown0 = top[:, :k0], shown[:, :k0]
    per_user[f"diversity@{k0}"] = M.intra_list_diversity(top0, vecs, shown0)
    trained_users = int((train.user_counts() > 0).sum())  # not the held-out users of cold-user
    per_user[f"novelty@{k0}"] = M.novelty(top0, train.item_counts(), trained_users, shown0)
    report = Report(per_user=per_user)
    for key, vals in per_user.items():
        if key.startswith(("diversity", "novelty")):
            if not np.isnan(vals).all():  # left out when no list had anything to measure
                report.values[key] = float(np.nanmean(vals))
            continue
        report.values[key] = float(np.mean(vals))
        report.ci[key] = M.bootstrap_ci(vals, seed=seed)
    eligible = model.n_items if only_items is None else len(only_items)
    report.values[f"coverage@{k0}"] = M.catalogue_coverage(top0, eligible, shown0)
    report.values["n_queries"] = float(len(evalset))
    report.values["score_seconds"] = score_seconds
    return report


def tallrec_batch(
    samples: TallrecSamples, n_items: int, like_rating: float, dislike_rating: float | None = None
) -> QueryBatch:
    """The queries of TALLRec samples (history ratings: 2 liked, 1 not liked), as new users of
    unknown id. Labels in the model's own rating scale: liked = ``like_rating`` (its top rating),
    not liked = ``dislike_rating`` (`FitState.dislike_rating`: 1 of 5 stars, 0 on counts), a
    dislike as when the model serves a new user (`score_eval_set`), so `QueryBatch.for_model`
    leaves it out for a model that does not read ratings (it had taken it for a like). It was 20%
    of the top rating: on play counts, 1,000 of 5,000 plays, a like."""
    hist = samples.history_matrix(n_items)
    liked = hist.data > 1.5
    disliked = hist.copy()
    disliked.data = (~liked).astype(np.float32)
    disliked.eliminate_zeros()
    low = 0.2 * like_rating if dislike_rating is None else dislike_rating  # (its value until 2026-12-07)
    hist.data = np.where(liked, like_rating, low).astype(np.float32)
    users = np.full(len(samples), -1, dtype=np.int64)
    return QueryBatch(users, hist, disliked=disliked if disliked.nnz else None)


def tallrec_scores(model: Recommender, samples: TallrecSamples) -> np.ndarray:
    """Each sample's target score given its 10-item history (`tallrec_batch`)."""
    fit = model.fitted
    queries = tallrec_batch(samples, model.n_items, fit.like_rating, fit.dislike_rating)
    out = np.empty(len(samples), dtype=np.float64)
    chunk = 256

    def batch(lo: int, hi: int) -> QueryBatch:
        return queries.rows(lo, hi).for_model(model)

    if hasattr(model, "score_candidates"):  # slow scorers (LMs) score only the targets
        for lo in range(0, len(samples), chunk):
            hi = min(lo + chunk, len(samples))
            out[lo:hi] = model.score_candidates(batch(lo, hi), samples.items[lo:hi, None])[:, 0]
        return out
    for lo in range(0, len(samples), chunk):
        hi = min(lo + chunk, len(samples))
        s = model._check_scores(model.score_batch(batch(lo, hi)), hi - lo)
        out[lo:hi] = s[np.arange(hi - lo), samples.items[lo:hi]]
    return out


def evaluate_tallrec(model: Recommender, samples: TallrecSamples, seed: int = 0) -> Report:
    """AUC of the like/dislike prediction, with a bootstrap CI over users (`M.auc_ci`: one
    user's samples are not independent; ML-100K's 1,000 test samples come from 16 users)."""
    t0 = time.perf_counter()
    scores = tallrec_scores(model, samples)
    seconds = time.perf_counter() - t0
    scores = np.nan_to_num(scores, nan=-1e9, neginf=-1e9, posinf=1e9)
    report = Report()
    report.values["auc"] = M.auc(samples.labels, scores)
    report.ci["auc"] = M.auc_ci(samples.labels, scores, samples.users, seed=seed)
    report.values["score_seconds"] = seconds
    report.per_user["scores"] = scores  # per sample: an interval over several fits (`run_benchmark`)
    return report
