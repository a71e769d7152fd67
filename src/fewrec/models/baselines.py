"""Simple reference recommenders: random and popularity."""

from __future__ import annotations

import numpy as np

from fewrec.data.dataset import Dataset
from fewrec.models.base import ModelConfig, QueryBatch, Recommender, query_seed, register


@register
class RandomRecommender(Recommender):
    """Uniform random scores: the floor every model must beat.

    Scores are seeded per query (from its history), so a query scores the same alone or in a
    batch. It can rank items never seen in training (at random).
    """

    name = "random"
    scores_new_items = True

    def _fit(self, data: Dataset) -> None:
        pass

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        out = np.empty((len(batch), self.n_items), dtype=np.float32)
        for i in range(len(batch)):
            rng = np.random.default_rng(query_seed(self.config.seed, batch.history, i))
            out[i] = rng.random(self.n_items)
        return out


class PopularityConfig(ModelConfig):
    min_rating: float | None = None
    """Count only interactions with at least this rating (None: all)."""


@register
class PopularityRecommender(Recommender):
    """Items ranked by how many users interacted with them in training."""

    name = "popularity"
    Config = PopularityConfig

    def _fit(self, data: Dataset) -> None:
        inter = data.interactions
        if self.config.min_rating is not None:
            inter = inter[inter["rating"] >= self.config.min_rating]
        counts = np.bincount(inter["item"].to_numpy(), minlength=data.n_items).astype(np.float32)
        self.counts_ = counts

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        scores = np.log1p(self.counts_)
        scores = np.where(self.counts_ > 0, scores, -np.inf).astype(np.float32)
        return np.repeat(scores[None, :], len(batch), axis=0)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"counts": self.counts_}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts_ = arrays["counts"]


@register
class LikeShare(Recommender):
    """The trivial rule of the TALLRec protocol: the share of liked items in the history.

    It ignores the target item, so it only makes sense for "will this user like X?" (AUC), not
    for ranking. A history rating counts as liked when it is above 60% of the highest training
    rating: above 3 on a 1-5 scale (MovieLens' "like"), 1.0 liked / 0.0 not on TALLRec data.
    """

    name = "like-share"
    scores_new_items = True

    def _fit(self, data: Dataset) -> None:
        pass

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        h = batch.history
        like = self.fitted.like_rating
        share = np.zeros(len(batch), dtype=np.float32)
        for i in range(len(batch)):
            r = h.data[h.indptr[i] : h.indptr[i + 1]]
            share[i] = np.mean(r > 0.6 * like) if len(r) else 0.5
        return np.repeat(share[:, None], self.n_items, axis=1)
