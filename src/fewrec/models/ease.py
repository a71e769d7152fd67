"""EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from fewrec.data.dataset import Dataset
from fewrec.models.base import ModelConfig, QueryBatch, Recommender, register


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
