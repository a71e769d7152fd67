"""Top-k selection with a fixed tie rule: equal scores go to the lower index.

`numpy.argpartition` picks an arbitrary subset of the items tied at the k-th score, and which one
depends on the CPU's SIMD kernels (AVX2 and AVX-512 builds choose differently). Every top-k in
fewrec (rankings, evaluation, neighbour lists, candidate sets) goes through here, so results do
not depend on the machine they ran on.
"""

from __future__ import annotations

import numpy as np


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the ``k`` best scores, best first; ties go to the lower index and NaN
    counts as -inf."""
    s = np.asarray(scores)
    if s.ndim != 2:
        raise ValueError(f"top_k_rows needs a 2-d array, got shape {s.shape}")
    n, m = s.shape
    k = max(0, min(int(k), m))
    if k == 0 or n == 0:
        return np.zeros((n, k), dtype=np.int64)
    if np.isnan(s).any():
        s = np.where(np.isnan(s), -np.inf, s)
    if k == m:
        return np.argsort(-s, axis=1, kind="stable")
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(s, part, axis=1).min(axis=1)
    # rows where more items tie at the k-th score than the top k has room for: take the lowest
    tied = (s == kth[:, None]).sum(axis=1)
    room = k - (np.take_along_axis(s, part, axis=1) > kth[:, None]).sum(axis=1)
    for r in np.flatnonzero(tied > room):
        above = np.flatnonzero(s[r] > kth[r])
        part[r] = np.concatenate([above, np.flatnonzero(s[r] == kth[r])[: room[r]]])
    vals = np.take_along_axis(s, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest entries of a 1-d array, best first (ties: lower index)."""
    return top_k_rows(np.asarray(scores)[None, :], k)[0]


def top_k_by(scores: np.ndarray, k: int, prior: np.ndarray) -> np.ndarray:
    """`top_k` of a 1-d array where equal scores go to the higher ``prior`` (e.g. popularity),
    then the lower index: a model that scores many items alike (an empty query on a model with
    no prior) lists its most popular items, not the first ones in the file. O(n), as `top_k`:
    only the items tied at the k-th score are ranked by the prior, with `top_k` again. Ranks
    scored -inf (fewer than k items scored) keep `top_k`'s order."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.where(np.isnan(s), -np.inf, s)  # NaN counts as -inf, as in `top_k_rows`
    top = top_k(s, k)
    if len(top) == 0:
        return top
    prior = np.asarray(prior, dtype=np.float64)
    edge = s[top[-1]]
    if edge == -np.inf:  # fewer than k items scored: -inf ranks hold no recommendation
        scored = top[s[top] > -np.inf]
        return np.r_[scored[np.lexsort((scored, -prior[scored], -s[scored]))], top[len(scored) :]]
    above = np.flatnonzero(s > edge)  # fewer than k: all of them are in
    tied = np.flatnonzero(s == edge)  # ascending: `top_k` on their prior keeps the lower index
    chosen = np.r_[above, tied[top_k(prior[tied], len(top) - len(above))]]
    return chosen[np.lexsort((chosen, -prior[chosen], -s[chosen]))]
