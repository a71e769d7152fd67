"""Matrix factorisation with the `implicit` library: ALS and BPR.

Users unseen in training (cold users) are folded in from their query history over the learned
item factors, so no retraining is needed: by ALS's closed form (Hu et al. 2008) for ALS, by the
user's part of its own gradient steps for BPR. A known user's learned vector moves by what their
query changes in that fold-in.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
from pydantic import Field
from threadpoolctl import threadpool_limits

from fewrec.data.dataset import Dataset
from fewrec.models.base import ModelConfig, Recommender, register
from fewrec.models.query import QueryBatch

log = logging.getLogger(__name__)


class MFConfig(ModelConfig):
    """Defaults tuned on the warm validation split of MovieLens-100K."""

    factors: int = Field(32, ge=1)
    """Length of the user and item factor vectors. More: a finer fit, slower and larger."""
    regularization: float = Field(0.1, ge=0)
    """L2 penalty on the factors, in training and in the fold-in of users scored from their
    query. Larger: factors held closer to zero."""
    iterations: int = Field(15, ge=1)
    """ALS sweeps over the interactions (each solves all user factors, then all item factors)."""
    progress: bool = False
    """The `implicit` library's progress bar over the training iterations (``show_progress``,
    its name until 2026-12-07 and the only one of its kind, is read too: saved models have it)."""

    renamed = {"show_progress": "progress"}


class ALSConfig(MFConfig):
    alpha: float = Field(1.0, gt=0)
    """Confidence weight of an observed interaction, in training and in the fold-in of users
    scored from their query."""


class BPRConfig(MFConfig):
    retired = {
        "alpha": "it is ALS's confidence weight, which BPR has none of (taken and ignored until 2026-12-07)"
    }

    factors: int = Field(64, ge=1)
    """Length of the user and item factor vectors, plus one entry `implicit`'s BPR adds: an item
    bias, whose user entry is 1. More: a finer fit, slower and larger."""
    learning_rate: float = Field(0.01, gt=0)
    """Step size of BPR's stochastic gradient descent."""
    regularization: float = Field(0.01, ge=0)
    """L2 penalty on the factors in BPR's updates; the fold-in of users scored from their query
    uses it too."""
    iterations: int = Field(100, ge=1)
    """Epochs of BPR's stochastic gradient descent over the interactions."""


class _MFBase(Recommender):
    """Shared scoring: user vector (learned, or folded in) dot item factors."""

    config: MFConfig
    empty_is_popularity = True
    reads_item_text = False  # ID-only

    def _train_implicit(self, make, data: Dataset) -> None:
        """Build (``make()``) and fit an implicit model with BLAS on one thread: implicit's
        constructor warns when OpenBLAS may use more ("RuntimeWarning: OpenBLAS is configured to
        use N threads"), so it is built inside the limit, not before it."""
        x = data.matrix(implicit=True)
        with threadpool_limits(1, "blas"):
            model = make()
            model.fit(x, show_progress=self.config.progress)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        self.trained_ = data.item_counts() > 0
        self._derive()

    def _derive(self) -> None:
        """What queries read besides the learned arrays, made once per fit or load: the mean
        learned user (BPR's fold-in starts there) and, filled per known user as queries come,
        their training history's fold-in (`_moved`)."""
        self._mean_user_ = self.user_factors_.mean(axis=0)
        self._trained_fold_: dict[int, np.ndarray] = {}

    def _fold_in(self, items: np.ndarray) -> np.ndarray:
        """The user vector of a new user's ``items`` (each model's own way)."""
        raise NotImplementedError

    def _moved(self, user: int, items: np.ndarray, trained: np.ndarray) -> np.ndarray:
        """A known user's vector once their query changed their history from ``trained`` to
        ``items`` (items added, or some disliked): the learned vector, moved by what the change
        does to the fold-in. (Folded in from scratch, one added like replaced up to 9 of a BPR
        user's top 10; before that, the query's items were ignored until retraining.)"""
        if user not in self._trained_fold_:  # (fixed for the user; BPR's runs 100 epochs)
            self._trained_fold_[user] = self._fold_in(trained)
        return self.user_factors_[user] + self._fold_in(items) - self._trained_fold_[user]

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        """A new user is folded in from their query's items (`_fold_in`); a known user is scored
        by the vector learned for them, or where the query changes their history by `_moved`."""
        f = self.item_factors_.shape[1]
        users = np.zeros((len(batch), f), dtype=np.float32)
        h, train = batch.history, self.fitted.train
        for i, u in enumerate(batch.users):
            items = h.indices[h.indptr[i] : h.indptr[i + 1]]
            if not len(items):
                continue  # (all of it disliked: popularity, as for an empty query)
            if u < 0:
                users[i] = self._fold_in(items)
                continue
            trained = train.indices[train.indptr[u] : train.indptr[u + 1]]
            same = np.array_equal(np.sort(items), np.sort(trained))
            users[i] = self.user_factors_[u] if same else self._moved(u, items, trained)
        scores = self.fill_empty_with_popularity(users @ self.item_factors_.T, batch)
        scores[:, ~self.trained_] = -np.inf
        return scores

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "trained": self.trained_,
        }

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"]
        self.item_factors_ = arrays["item_factors"]
        self.trained_ = arrays["trained"]
        self._derive()


@register
class ALS(_MFBase):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) via `implicit`."""

    name = "als"
    Config = ALSConfig
    config: ALSConfig

    def _fit(self, data: Dataset) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        make = partial(
            AlternatingLeastSquares,
            factors=self.config.factors,
            regularization=self.config.regularization,
            alpha=self.config.alpha,
            iterations=self.config.iterations,
            random_state=self.config.seed,
            num_threads=1,
        )
        self._train_implicit(make, data)

    def _fold_in(self, items: np.ndarray) -> np.ndarray:
        """The user vector of ``items`` by the least-squares step ALS trains users with, at
        `implicit`'s confidence ``alpha`` per interaction (1 + alpha before 2026-12-07: folded-in
        users were half again as long as the learned ones, and scored on another scale)."""
        y = self.item_factors_.astype(np.float64)
        f = y.shape[1]
        yi = y[items]
        alpha = self.config.alpha
        a = y.T @ y + (alpha - 1.0) * (yi.T @ yi) + self.config.regularization * np.eye(f)
        return np.linalg.solve(a, alpha * yi.sum(axis=0)).astype(np.float32)


@register
class BPR(_MFBase):
    """Bayesian personalised ranking (Rendle et al. 2009) via `implicit`, single-threaded so
    that a seed gives the same model (implicit's multi-threaded SGD is not deterministic)."""

    name = "bpr"
    Config = BPRConfig
    config: BPRConfig

    def _fit(self, data: Dataset) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        make = partial(
            BayesianPersonalizedRanking,
            factors=self.config.factors,
            learning_rate=self.config.learning_rate,
            regularization=self.config.regularization,
            iterations=self.config.iterations,
            random_state=self.config.seed,
            num_threads=1,
        )
        self._train_implicit(make, data)

    def _fold_in(self, items: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
        """A user's vector for ``items`` by the user's part of BPR's own training: ``iterations``
        epochs of its gradient steps (``learning_rate``, ``regularization``; a step per item, summed
        over the items), each item against an item drawn from the trained ones the user has not,
        with the item factors fixed; from ``start``, or the mean learned user. Seeded by the
        items, so a query gives one list.
        (The least-squares fold-in of ALS, over factors that BPR did not fit that way, scored new
        users far below popularity: K = 5 NDCG@10 0.397 against 0.647 now on seed 0's random
        reveal, 0.320 against 0.421 on the earliest, where popularity scores 0.523 and 0.473.)"""
        cfg = self.config
        y = self.item_factors_  # (rows taken as float64: the matrix is not copied per query)
        u = (self._mean_user_ if start is None else start).astype(np.float64)
        others = np.flatnonzero(self.trained_ & ~np.isin(np.arange(len(y)), items))
        if not len(others):
            return u.astype(np.float32)
        items = np.sort(items)  # (the query's order draws nothing else)
        rng = np.random.default_rng([cfg.seed, *items.tolist()])
        liked = y[items].astype(np.float64)
        for _ in range(cfg.iterations):
            diff = liked - y[others[rng.integers(len(others), size=len(items))]].astype(np.float64)
            grad = diff.T @ (1.0 / (1.0 + np.exp(diff @ u))) - len(items) * cfg.regularization * u
            grad[-1] = 0.0  # the item bias's user entry stays 1, as in training
            u += cfg.learning_rate * grad
        return u.astype(np.float32)
