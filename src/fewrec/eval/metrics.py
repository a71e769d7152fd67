"""Evaluation metrics. Ranking metrics use the FULL item ranking (seen items excluded).

Per-query functions return one value per query so that confidence intervals can be drawn by
bootstrapping users (`bootstrap_ci`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fewrec.errors import ArgumentError, DataError, is_whole_number, not_whole
from fewrec.topk import top_k_rows


def top_k_matrix(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the k best scores, best first; ties go to the lower index."""
    return top_k_rows(scores, k)


def check_k(k: object, name: str = "k") -> int:
    """A cut-off must be an int >= 1 (k = 0 gave NaN precision and zero everything); the
    message reads as `not_whole`'s elsewhere ("k must be an int, got the float 2.0")."""
    if not is_whole_number(k):
        raise ArgumentError(not_whole(name, k), fix=f"{name}=10")
    if k < 1:
        raise ArgumentError(f"{name} must be >= 1, got {k!r}", fix=f"{name}=10")
    return int(k)


def hits_matrix(top: np.ndarray, targets: sp.csr_matrix) -> np.ndarray:
    """Boolean (n_queries x k): whether the item at each rank is a target."""
    t = targets.tocsr()
    if t.shape[0] != top.shape[0]:  # fewer target rows read as queries without targets
        raise DataError(f"{top.shape[0]} ranked lists but {t.shape[0]} rows of targets")
    n_items = max(t.shape[1], int(top.max(initial=-1)) + 1)
    # one sorted key per (query, target item); look every (query, ranked item) up in it
    rows = np.repeat(np.arange(t.shape[0], dtype=np.int64), np.diff(t.indptr))
    keys = np.sort(rows * n_items + t.indices)
    if len(keys) == 0:
        return np.zeros(top.shape, dtype=bool)
    wanted = np.arange(top.shape[0], dtype=np.int64)[:, None] * n_items + top
    pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return keys[pos] == wanted


@dataclass
class TiedHits:
    """What each rank of a top-k list holds, in expectation over the order of tied scores.

    Ties in a top list are broken by item index (`top_k_matrix`), and low indices are often the
    popular items: counting those hits as they fall rewards a model for ties (every item scored
    the same gave NDCG@10 0.23 on cold users against 0.06 in expectation). Here a rank inside a
    group of tied scores holds ``targets / size`` of a hit, where the group counts every item of
    that score in the full ranking, so a model is scored as if its ties were broken at random
    (the rule `reciprocal_rank` follows). Without ties this is the plain hit matrix.

    Attributes:
        expected: (n x k) expected hit at each rank (0 where the score is -inf or NaN: no item
            is recommended there).
        start: (n x k) first rank of the tie group holding each rank.
        size, targets: (n x k) items and targets of that score in the full ranking.
    """

    expected: np.ndarray
    start: np.ndarray
    size: np.ndarray
    targets: np.ndarray


def tied_hits(scores: np.ndarray, top: np.ndarray, targets: sp.csr_matrix) -> TiedHits:
    """`TiedHits` of the top lists ``top`` (`top_k_matrix`) of ``scores`` (excluded items
    -inf) against ``targets``."""
    t = targets.tocsr()
    if t.shape[0] != top.shape[0]:
        raise DataError(f"{top.shape[0]} ranked lists but {t.shape[0]} rows of targets")
    n, k = top.shape
    clean = np.asarray(scores, dtype=np.float64)
    clean = np.where(np.isnan(clean), -np.inf, clean)
    ranked = np.take_along_axis(clean, top, axis=1)
    new_group = np.ones((n, k), dtype=bool)
    new_group[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    start = np.maximum.accumulate(np.where(new_group, np.arange(k), 0), axis=1)
    # the rank after each tie group: a group that ends before the last rank holds every item of
    # its score (any item past the top k scores no more than the next group), so its size is
    # its length; only the last group, which may go on past rank k, is counted in the full row
    # (one pass over the catalogue per list, where it was one per group)
    firsts = np.where(new_group, np.arange(k), k)
    after = np.c_[np.minimum.accumulate(firsts[:, ::-1], axis=1)[:, ::-1][:, 1:], np.full(n, k)]
    last = start[:, -1] if k else np.zeros(n, dtype=int)
    # every tie group's size and targets in the full ranking: the items of its score
    rows = np.repeat(np.arange(n), np.diff(t.indptr))
    target_scores = clean[rows, t.indices]
    size = np.zeros((n, k), dtype=np.float64)
    n_targets = np.zeros((n, k), dtype=np.float64)
    for r in np.unique(start):  # one pass per rank where some list starts a tie group
        q = np.flatnonzero(start[:, r] == r)
        if not len(q):
            continue
        value = np.full(n, np.nan)
        value[q] = ranked[q, r]
        whole = q[last[q] == r]
        inside = q[last[q] != r]
        size[whole, r] = (clean[whole] == value[whole, None]).sum(axis=1)
        size[inside, r] = after[inside, r] - r
        hit = target_scores == value[rows]
        n_targets[q, r] = np.bincount(rows[hit], minlength=n)[q]
    size = np.take_along_axis(size, start, axis=1)
    n_targets = np.take_along_axis(n_targets, start, axis=1)
    expected = np.divide(n_targets, size, out=np.zeros_like(size), where=size > 0)
    expected[ranked == -np.inf] = 0.0
    return TiedHits(expected, start, size, n_targets)


def tied_hit_rate(tied: TiedHits, k: int) -> np.ndarray:
    """`hit_rate_at_k` in expectation over the order of tied scores: 1 when a target is in a
    tie group wholly inside the top k, else the chance that the ranks the last group gets
    there draw at least one of its targets (hypergeometric)."""
    k = check_k(k)
    k = min(k, tied.expected.shape[1])
    last = k - 1
    a = tied.start[:, last]
    # expected hits in the groups wholly before the last one (all of them inside the top k)
    upto = np.c_[np.zeros(len(a)), np.cumsum(tied.expected, axis=1)]
    before = upto[np.arange(len(a)), a]
    out = np.ones(len(a))
    for i in np.flatnonzero(before <= 0):
        g, tg, m = tied.size[i, last], tied.targets[i, last], k - a[i]
        if tied.expected[i, last] <= 0 or tg <= 0:
            out[i] = 0.0
            continue
        miss = 1.0
        for j in range(int(m)):
            miss *= max(g - tg - j, 0.0) / (g - j)
        out[i] = 1.0 - miss
    return out


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def _check_hits(hits: np.ndarray, n_targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hits (queries x ranks, each 0..1) and one target count per query, consistent: a query
    with more hits than targets gave an NDCG above 1."""
    hits, n_targets = np.asarray(hits), np.asarray(n_targets)
    if hits.ndim != 2 or n_targets.shape != (hits.shape[0],):
        raise DataError(
            f"hits must be (queries x ranks) and n_targets one count per query, got {hits.shape} "
            f"and {n_targets.shape}"
        )
    if (hits.sum(axis=1) > n_targets + 1e-6).any():
        raise DataError("a query has more hits than targets", fix="give each query's number of target items")
    return hits, n_targets


def ndcg_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Binary-relevance NDCG@k per query; the ideal DCG uses min(n_targets, k) hits."""
    k = check_k(k)
    hits, n_targets = _check_hits(hits, n_targets)
    # no rank past the list or the most targets counts (k = 10**9 built 7 GB of discounts)
    disc = _discounts(min(k, max(hits.shape[1], int(n_targets.max(initial=0)))))
    dcg = (hits[:, :k] * disc[: hits[:, :k].shape[1]]).sum(axis=1)
    ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal_cum[np.minimum(n_targets, k)]
    return np.divide(dcg, idcg, out=np.zeros_like(dcg), where=idcg > 0)


def recall_at_k(hits: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Share of a query's targets found in its top k."""
    k = check_k(k)
    hits, n_targets = _check_hits(hits, n_targets)
    h = hits[:, :k].sum(axis=1).astype(np.float64)
    return np.divide(h, n_targets, out=np.zeros_like(h), where=n_targets > 0)


def precision_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """Share of the top k that are targets."""
    k = check_k(k)
    return hits[:, :k].sum(axis=1) / float(k)


def hit_rate_at_k(hits: np.ndarray, k: int) -> np.ndarray:
    """1 if any target is in the top k, else 0."""
    k = check_k(k)
    return np.asarray(hits[:, :k].any(axis=1), dtype=np.float64)


def reciprocal_rank(
    scores: np.ndarray, targets: sp.csr_matrix, excluded: sp.csr_matrix | None = None
) -> np.ndarray:
    """1 / rank of the best-ranked target in the full ranking of non-excluded items.

    Ties count in expectation (random tie-breaking, `expected_reciprocal_rank`): a model that
    gives every item the same score gets E[1 / rank], not a lucky first place. A query whose
    targets are all scored -inf (or NaN) gets 0, as such ranks are never hits in the top-k
    lists: the model does not recommend those items (an ID-only model and a cold item).
    """
    scores = np.asarray(scores)
    t = targets.tocsr()
    ex = excluded.tocsr() if excluded is not None else None
    for what, m in (("targets", t), ("excluded", ex)):
        if m is not None and (scores.ndim != 2 or m.shape != scores.shape):
            raise DataError(f"scores {scores.shape} and {what} {m.shape} differ in shape (queries x items)")
    out = np.zeros(len(scores))
    for i in range(len(scores)):
        tgt = t.indices[t.indptr[i] : t.indptr[i + 1]]
        if len(tgt) == 0:
            continue
        row = np.nan_to_num(
            np.asarray(scores[i], dtype=np.float64), nan=-np.inf, posinf=np.inf, neginf=-np.inf
        )
        valid = np.ones(len(row), dtype=bool)
        if ex is not None:
            valid[ex.indices[ex.indptr[i] : ex.indptr[i + 1]]] = False
        valid[tgt] = True
        cand = row[valid]
        best = row[tgt].max()
        if best == -np.inf:
            continue
        greater = int(np.sum(cand > best))
        tied = int(np.sum(cand == best))
        out[i] = expected_reciprocal_rank(greater, tied, int(np.sum(row[tgt] == best)))
    return out


def expected_reciprocal_rank(above: int, tied: int, tied_targets: int) -> float:
    """E[1 / rank] of the first of ``tied_targets`` targets in a group of ``tied`` items that
    share a score, below ``above`` items, the group in random order: the first target is the
    group's j-th item with probability C(tied - j, tied_targets - 1) / C(tied, tied_targets).
    (1 / E[rank], used until 2026-12-04, is lower whenever the group is larger than one.)"""
    from scipy.special import gammaln

    if tied_targets >= tied:
        return 1.0 / (above + 1.0)
    j = np.arange(1, tied - tied_targets + 2, dtype=np.float64)

    def log_choose(n, r):
        return gammaln(n + 1) - gammaln(r + 1) - gammaln(n - r + 1)

    p = np.exp(log_choose(tied - j, tied_targets - 1) - log_choose(tied, tied_targets))
    return float(np.sum(p / (above + j)))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties count one half); ``labels`` are booleans
    or 0/1."""
    labels = _binary(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape:
        raise DataError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    if np.isnan(scores).any():
        raise DataError(f"{int(np.isnan(scores).sum())} scores are NaN", fix="score every sample")
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        raise DataError("AUC needs both positive and negative labels")
    from scipy.stats import rankdata  # scipy.stats takes ~0.5 s to import: only the AUC needs it

    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _binary(labels: np.ndarray) -> np.ndarray:
    """Labels as booleans; only booleans and the numbers 0 and 1 are labels ("no" read as True)."""
    values = np.asarray(labels)
    if values.dtype != bool:
        numeric = np.issubdtype(values.dtype, np.number)
        if not numeric or not np.isin(values, (0, 1)).all():
            shown = np.unique(values)[:5].tolist() if values.size else []
            raise DataError(f"labels must be booleans or 0/1, got values such as {shown}")
    return values.astype(bool)


def auc_ci(
    labels: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 500,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC that resamples ``groups`` (users) with all their
    samples: the samples of one user share their taste and history, so resampling samples
    alone gives too narrow a CI. Draws with one label only are skipped (NaN if all are).

    ``scores`` may be (runs x samples), e.g. models fitted on different draws of training
    samples: the interval is then of their mean AUC, each resample scoring every run."""
    labels, scores, groups = np.asarray(labels), np.asarray(scores, dtype=np.float64), np.asarray(groups)
    runs = scores.reshape(-1, scores.shape[-1]) if scores.ndim else scores
    if not labels.shape == runs.shape[1:] == groups.shape or scores.ndim > 2:
        raise DataError(
            f"labels {labels.shape}, scores {scores.shape} and groups {groups.shape} differ in shape"
        )
    _, group = np.unique(groups, return_inverse=True)
    order = np.argsort(group, kind="stable")
    members = np.split(order, np.flatnonzero(np.diff(group[order])) + 1)  # each group's samples

    def aucs(idx: np.ndarray) -> np.ndarray:
        out = np.full(len(idx), np.nan)
        for b, picked in enumerate(idx):
            rows = np.concatenate([members[g] for g in picked])
            if 0 < labels[rows].sum() < len(rows):
                out[b] = np.mean([auc(labels[rows], run[rows]) for run in runs])
        return out

    return _percentile_bootstrap(aucs, len(members), n_boot, level, seed, skip_nan=True)


def _paired(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both as float arrays of one shape (numpy would broadcast (n,) against (n, 1) silently)."""
    t, p = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise DataError(f"true values {t.shape} and predictions {p.shape} differ in shape")
    if not t.size:
        raise DataError("no values to compare (an error of nothing is undefined)")
    return t, p


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error."""
    t, p = _paired(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error."""
    t, p = _paired(y_true, y_pred)
    return float(np.sqrt(np.mean((t - p) ** 2)))


def catalogue_coverage(top: np.ndarray, n_items: int, shown: np.ndarray | None = None) -> float:
    """Share of the ``n_items`` eligible items that appears in at least one top-k list.

    ``shown`` (same shape as ``top``) marks the ranks that hold a recommendation; the others
    (e.g. -inf-scored ranks, only the tie order of items a model cannot score) are left out.
    """
    if not is_whole_number(n_items) or n_items < 1:
        raise ArgumentError(f"n_items must be a whole number >= 1, got {n_items!r}")
    return len(np.unique(top if shown is None else top[shown])) / float(n_items)


def intra_list_diversity(
    top: np.ndarray, item_vectors: np.ndarray, shown: np.ndarray | None = None
) -> np.ndarray:
    """Per list: mean pairwise cosine distance (1 - cos) of its items' vectors.

    ``item_vectors`` can be text embeddings or multi-hot genres; an item whose vector is zero
    (no genres) is left out of its list: counted as orthogonal to everything, it had made the
    diversity of data without genres 1.0 for every model. With ``shown`` (see
    `catalogue_coverage`) a list is its shown items only. A list with fewer than two
    measurable items is NaN (a list of one item has no pairs: it read 0, most alike).
    """
    v = np.asarray(item_vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    has = norms[:, 0] > 0
    out = np.full(len(top), np.nan)
    for i, row in enumerate(top):
        if shown is not None:
            row = row[shown[i]]
        row = row[has[row]]
        if len(row) >= 2:
            sims = v[row] @ v[row].T
            out[i] = np.mean(1.0 - sims[np.triu_indices(len(row), 1)])
    return out


def novelty(
    top: np.ndarray, item_counts: np.ndarray, n_users: int, shown: np.ndarray | None = None
) -> np.ndarray:
    """Per list: mean self-information -log2 p(i), p(i) = (users of i + 1) / (n_users + 1).

    With ``shown`` (see `catalogue_coverage`) only shown items count; an empty list is NaN.
    """
    p = (np.asarray(item_counts, dtype=np.float64) + 1.0) / (n_users + 1.0)
    info = (-np.log2(p))[top]
    if shown is None:
        return info.mean(axis=1)
    n = shown.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (info * shown).sum(axis=1) / n, np.nan)


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-user values (users resampled)."""
    values = np.asarray(values, dtype=np.float64)
    return _percentile_bootstrap(lambda idx: values[idx].mean(axis=1), len(values), n_boot, level, seed)


def bootstrap_gain_ci(
    values: np.ndarray, baseline: np.ndarray, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the relative gain mean(values) / mean(baseline) - 1, where both
    are per-user values of the same users: each resample draws users, and both models are scored
    on that draw (paired, so users who are easy or hard for every model do not widen the CI).

    A draw whose baseline mean is 0 has no gain, and is left out; when more than ``1 - level`` of
    the draws are (few test users, the baseline scoring on a handful), there is no interval:
    (NaN, NaN). Those draws gave 0/0, and the whole interval was NaN, even the baseline's own.
    """
    v = np.asarray(values, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if v.shape != b.shape:
        raise ValueError(f"paired values need the same users: {v.shape} vs {b.shape}")

    def gains(idx: np.ndarray) -> np.ndarray:
        base = b[idx].mean(axis=1)
        out = np.full(len(idx), np.nan)
        defined = base > 0
        out[defined] = v[idx[defined]].mean(axis=1) / base[defined] - 1.0
        return out

    return _percentile_bootstrap(gains, len(v), n_boot, level, seed, skip_nan=True, max_skipped=1 - level)


def _percentile_bootstrap(
    statistic,
    n: int,
    n_boot: int,
    level: float,
    seed: int,
    skip_nan: bool = False,
    max_skipped: float = 1.0,
) -> tuple[float, float]:
    """Percentile CI of ``statistic(idx)``, idx: (n_boot x n) users drawn with replacement;
    with ``skip_nan`` the draws whose statistic is undefined (NaN) are left out, and when more
    than the share ``max_skipped`` of them are, the CI is (NaN, NaN)."""
    ok = isinstance(level, float | int | np.floating) and not isinstance(level, bool)
    if not ok or not 0 < level < 1:
        raise ArgumentError(f"level must be a share between 0 and 1, got {level!r}", fix="level=0.95")
    if not is_whole_number(n_boot) or n_boot < 1:
        raise ArgumentError(f"n_boot must be a whole number >= 1, got {n_boot!r}", fix="n_boot=1000")
    n_boot = int(n_boot)
    if n < 2:  # (one user: every resample is that user, and the "interval" a point)
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    stats = statistic(idx)
    if skip_nan:
        stats = stats[~np.isnan(stats)]
        if not len(stats) or len(stats) < (1 - max_skipped) * n_boot:
            return (float("nan"), float("nan"))
    alpha = (1 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1 - alpha))
