"""Item-based k-nearest-neighbours collaborative filtering (cosine, pruned, shrunk)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fewrec.data.dataset import Dataset
from fewrec.models.base import ModelConfig, QueryBatch, Recommender, register


class ItemKNNConfig(ModelConfig):
    neighbors: int = Field(100, ge=1)
    """Neighbours kept per item."""
    shrinkage: float = Field(10.0, ge=0)
    """Shrinks similarities of items with few co-occurrences toward zero."""


@register
class ItemKNN(Recommender):
    """score(u, j) = sum over history items i of sim(i, j), with sim the shrunk cosine."""

    name = "itemknn"
    Config = ItemKNNConfig

    def _fit(self, data: Dataset) -> None:
        x = data.matrix(implicit=True).tocsc()
        co = (x.T @ x).toarray().astype(np.float32)
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.config.shrinkage + 1e-9)
        np.fill_diagonal(sim, 0.0)
        k = min(self.config.neighbors, sim.shape[1] - 1)
        if k < sim.shape[1] - 1:
            drop = np.argpartition(-sim, k, axis=1)[:, k:]
            np.put_along_axis(sim, drop, 0.0, axis=1)
        self.sim_ = sp.csr_matrix(sim)
        self.trained_ = data.item_counts() > 0

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        h = batch.implicit_history()
        scores = np.asarray((h @ self.sim_).todense(), dtype=np.float32)
        scores = self.fill_empty_with_popularity(scores, batch)
        scores[:, ~self.trained_] = -np.inf
        return scores

    def _get_arrays(self) -> dict[str, np.ndarray]:
        s = self.sim_
        return {"data": s.data, "indices": s.indices, "indptr": s.indptr, "trained": self.trained_}

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        n = len(arrays["trained"])
        self.sim_ = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), (n, n))
        self.trained_ = arrays["trained"]
