"""Leave-one-out history contributions and short human reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.data.dataset import item_label
from fewrec.models.base import QueryBatch, Recommender

LIKE_SHARE = 0.6
"""A rating counts as "liked" above this share of the model's top rating (3 of 5 stars): what
the service counts as a positive, and what a reason cites as liked (a lower one as rated)."""


@dataclass
class Reason:
    """Why one item was recommended.

    Attributes:
        item: external id of the recommended item.
        because: (history item id, contribution) pairs, largest first; contribution = score
            with the full history minus score without that item.
        attributes: genres the item shares with the cited items.
        text: one short sentence for people.
    """

    item: str
    because: list[tuple[str, float]] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    text: str = ""


def history_contributions(
    model: Recommender, batch: QueryBatch, row: int, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For query ``row`` of ``batch``: its history item indices and a (n_history x len(items))
    matrix of score drops when each history item alone is removed."""
    h = batch.history
    lo, hi = h.indptr[row], h.indptr[row + 1]
    hist, vals = h.indices[lo:hi], h.data[lo:hi]
    if len(hist) == 0:
        return hist, np.zeros((0, len(items)))
    n = len(hist)
    # row 0: the full history; row j+1: without history item j
    rows, cols, data = [], [], []
    for r in range(n + 1):
        keep = np.arange(n) != (r - 1)
        rows.extend([r] * int(keep.sum()))
        cols.extend(hist[keep])
        data.extend(vals[keep])
    loo = sp.csr_matrix((np.asarray(data, np.float32), (rows, cols)), shape=(n + 1, h.shape[1]))
    # the user id is dropped on purpose: a known user's learned vector would hide the history
    users = np.full(n + 1, -1)
    texts = None if batch.texts is None else [batch.texts[row]] * (n + 1)
    info = None
    if batch.user_info is not None:
        info = pd.concat([batch.user_info.iloc[[row]]] * (n + 1), ignore_index=True)
    scores = model.score_batch(QueryBatch(users, loo, texts, info))[:, items].astype(np.float64)
    if (
        n == 1
        and texts is None
        and info is None
        and model.empty_is_popularity
        and not np.array_equal(scores[0], scores[1])  # popularity itself: the item adds nothing
    ):
        # without its one item the query is empty and an ID-only model falls back to
        # popularity, another scale: what the item adds is then its whole score
        scores[1] = 0.0
    return hist, scores[0][None, :] - scores[1:]


def _label(model: Recommender, idx: int) -> str:
    return item_label(model.fitted.item_info, idx, model.fitted.items.id(idx))


def _genres(model: Recommender, idx: int) -> list[str]:
    info = model.fitted.item_info
    if "genres" not in info.columns:
        return []
    g = info["genres"].iloc[idx]
    return [str(x) for x in g] if isinstance(g, list | tuple | np.ndarray) else []


def _reads_side_info(model: Recommender, batch: QueryBatch, row: int) -> bool:
    """Whether query ``row`` gives a side-info field the model reads (a model that reads none
    said "popular with people like you" while its note said the side info was ignored)."""
    info = batch.user_info
    fields = {f for f, _ in model.side_levels}
    if info is None or not fields:
        return False
    values = info.iloc[row]
    return any(f in values.index and np.ndim(values[f]) == 0 and not pd.isna(values[f]) for f in fields)


def explain_recommendations(
    model: Recommender,
    batch: QueryBatch,
    row: int,
    items: np.ndarray,
    *,
    max_items: int = 2,
    min_share: float = 0.3,
    has_text: bool = False,
) -> list[Reason]:
    """Reasons for recommending ``items`` (internal indices) to query ``row`` of ``batch``."""
    hist, contrib = history_contributions(model, batch, row, items)
    st = model.fitted
    lo, hi = batch.history.indptr[row], batch.history.indptr[row + 1]
    rating = dict(zip(batch.history.indices[lo:hi], batch.history.data[lo:hi], strict=True))
    liked_above = LIKE_SHARE * st.like_rating
    has_text = has_text and model.reads_text  # a model that ignores the text cannot match it
    reasons = []
    for j, item in enumerate(items):
        cited: list[tuple[str, float]] = []
        if len(hist):
            order = np.argsort(-contrib[:, j], kind="stable")
            top = contrib[order[0], j]
            # cite items that raised the score, and only those close to the strongest one
            cited = [
                (st.items.id(hist[k]), float(contrib[k, j]))
                for k in order[:max_items]
                if contrib[k, j] > 0 and contrib[k, j] >= min_share * top
            ]
        item_genres = _genres(model, int(item))
        shared = Counter(g for hid, _ in cited for g in _genres(model, int(st.items.lookup([hid])[0])))
        attrs = [g for g in item_genres if shared.get(g)]
        if cited:
            idx = [int(st.items.lookup([hid])[0]) for hid, _ in cited]
            liked = [_label(model, i) for i in idx if rating.get(i, st.like_rating) > liked_above]
            rated = [_label(model, i) for i in idx if rating.get(i, st.like_rating) <= liked_above]
            parts = ([f"liked {' and '.join(liked)}"] if liked else []) + (
                [f"rated {' and '.join(rated)}"] if rated else []
            )
            text = f"Because you {' and '.join(parts)}"
            text += f" ({', '.join(attrs)})." if attrs else "."
        elif has_text:
            text = "Matches what you told us you like" + (
                f" ({', '.join(item_genres[:4])})." if item_genres else "."
            )
        else:
            text = (
                "Popular with people like you."
                if _reads_side_info(model, batch, row)
                else "Popular right now."
            )
        reasons.append(Reason(st.items.id(int(item)), cited, attrs, text))
    return reasons
