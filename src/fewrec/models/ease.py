"""EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from fewrec.data.dataset import Dataset
from fewrec.errors import ConfigError
from fewrec.models.base import ModelConfig, QueryBatch, Recommender, nearest_shot, register


class EASEConfig(ModelConfig):
    l2: float = Field(500.0, gt=0)
    """L2 penalty on the item-item weights (tuned on the warm validation split)."""


@register
class EASE(Recommender):
    """B = argmin ||X - XB||^2 + l2 ||B||^2 with diag(B) = 0, solved in closed form."""

    name = "ease"
    Config = EASEConfig

    def _fit(self, data: Dataset) -> None:
        x = data.matrix(implicit=True)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.config.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        self.weights_ = b.astype(np.float32)
        self.trained_ = data.item_counts() > 0

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        h = batch.implicit_history()
        scores = np.asarray(h @ self.weights_, dtype=np.float32)
        scores = self.fill_empty_with_popularity(scores, batch)
        scores[:, ~self.trained_] = -np.inf
        return scores

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "trained": self.trained_}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"]
        self.trained_ = arrays["trained"]


class DLAEConfig(ModelConfig):
    l2: float = Field(500.0, gt=0)
    """L2 penalty on the item-item weights."""
    dropout: float | None = Field(None, ge=0, lt=1)
    """The share of a user's items the model learns to do without; None: one model per history
    size in ``shots``, each trained for the share that history size leaves out (see ``scale``)."""
    shots: tuple[int, ...] = (1, 3, 5, 10, 20, 50)
    scale: float = Field(2.5, gt=0)
    """A user with K items is scored by the model for dropout 1 - K / (scale * mean items per
    training user), clipped to [0.5, 0.995]. 2.5 came from ML-100K's cold-user validation
    users (optimum near 0.99 at K = 1-3, 0.98 at K = 5, 0.95 at K = 10-20)."""


@register
class DLAE(Recommender):
    """Denoising linear autoencoder (Steck, NeurIPS 2020: "Autoencoders that don't overfit
    towards the identity"): B = (G + L)^-1 G, L = p / (1 - p) diag(G) + l2 I, the closed form of
    reconstructing every item of a user from a random (1 - p) share of them.

    That is the few-shot problem itself: a user who reveals K of their items is a training row
    with most items dropped. One B is kept per history size, trained for the dropout that size
    implies, so a 1-item user is scored by a model that learned to guess from one item and a
    warm user by one close to EASE.
    """

    name = "dlae"
    Config = DLAEConfig

    def dropout_for(self, n_items: float, mean_items: float) -> float:
        """The dropout of the model that scores a user with ``n_items`` items."""
        if self.config.dropout is not None:
            return self.config.dropout
        return float(np.clip(1.0 - n_items / (self.config.scale * mean_items), 0.5, 0.995))

    MAX_BYTES: ClassVar[float] = 8e9
    """Refuse to build more item-item weights than this (float32 bytes, one n x n per shot)."""

    def _fit(self, data: Dataset) -> None:
        n_models = 1 if self.config.dropout is not None else len(self.config.shots)
        need = (n_models * 4 + 16) * float(data.n_items) ** 2  # the models, the Gram and a solve
        if need > self.MAX_BYTES:
            raise ConfigError(
                f"dlae would need {need / 1e9:.0f} GB for {data.n_items} items and {n_models} history "
                "sizes. Fix: set dropout (one model), fewer shots, or use itemknn / rp3beta for large "
                "catalogues."
            )
        x = data.matrix(implicit=True)
        gram = (x.T @ x).toarray().astype(np.float64)
        diag = np.diag(gram).copy()
        counts = data.user_counts()
        mean_items = float(counts[counts > 0].mean())
        shots = (0,) if self.config.dropout is not None else self.config.shots
        weights = []
        for k in shots:
            p = self.dropout_for(k, mean_items)
            lam = p / (1.0 - p) * diag + self.config.l2
            weights.append(np.linalg.solve(gram + np.diag(lam), gram).astype(np.float32))
        self.weights_ = np.stack(weights)
        self.shots_ = np.asarray(shots, dtype=np.int64)
        self.trained_ = data.item_counts() > 0

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        h = batch.implicit_history()
        pick = nearest_shot(np.diff(h.indptr), self.shots_)
        scores = np.zeros((len(batch), self.n_items), dtype=np.float32)
        for j in np.unique(pick):
            rows = np.flatnonzero(pick == j)
            scores[rows] = np.asarray(h[rows] @ self.weights_[j], dtype=np.float32)
        scores = self.fill_empty_with_popularity(scores, batch)
        scores[:, ~self.trained_] = -np.inf
        return scores

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "shots": self.shots_, "trained": self.trained_}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"]
        self.shots_ = arrays["shots"]
        self.trained_ = arrays["trained"]
