"""Item-item neighbourhood models: item-kNN (shrunk cosine) and RP3beta (random walks).

Both score ``score(u, j) = sum over history items i of sim(i, j)`` with a pruned similarity
matrix; they differ in how the similarity is made.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fewrec.data.dataset import Dataset
from fewrec.models.base import ModelConfig, QueryBatch, Recommender, register
from fewrec.topk import top_k_rows


class ItemKNNConfig(ModelConfig):
    neighbors: int = Field(100, ge=1)
    """Neighbours kept per item."""
    shrinkage: float = Field(10.0, ge=0)
    """Shrinks similarities of items with few co-occurrences toward zero."""


class ItemItemModel(Recommender):
    """A model that scores ``score(u, j) = sum over history items i of sim_(i, j)`` with a
    sparse item-item matrix ``sim_`` set by `_fit` (and ``trained_``, the items it can score)."""

    empty_is_popularity = True
    reads_item_text = False  # ID-only
    sim_: sp.csr_matrix
    trained_: np.ndarray

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


@register
class ItemKNN(ItemItemModel):
    """score(u, j) = sum over history items i of sim(i, j), with sim the shrunk cosine."""

    name = "itemknn"
    Config = ItemKNNConfig

    def _fit(self, data: Dataset) -> None:
        x = data.matrix(implicit=True).tocsc()
        co = (x.T @ x).toarray().astype(np.float32)
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.config.shrinkage + 1e-9)
        self._keep(sim, data)

    def _keep(self, sim: np.ndarray, data: Dataset) -> None:
        """Zero the diagonal, keep each row's ``neighbors`` largest entries, store sparse."""
        np.fill_diagonal(sim, 0.0)
        k = min(self.config.neighbors, sim.shape[1] - 1)
        if k < sim.shape[1] - 1:
            keep = np.zeros(sim.shape, dtype=bool)
            np.put_along_axis(keep, top_k_rows(sim, k), True, axis=1)
            sim[~keep] = 0.0
        self.sim_ = sp.csr_matrix(sim)
        self.trained_ = data.item_counts() > 0


class RP3BetaConfig(ItemKNNConfig):
    neighbors: int = Field(200, ge=1)
    alpha: float = Field(1.0, gt=0)
    """Exponent on the transition probabilities."""
    beta: float = Field(0.5, ge=0)
    """Popularity penalty: the similarity to item j is divided by popularity(j) ** beta."""


@register
class RP3Beta(ItemKNN):
    """RP3beta (Paudel et al. 2017): sim(i, j) = P(i -> user -> j), a three-step random walk on
    the user-item graph, divided by popularity(j) ** beta. A strong neighbourhood baseline
    (Dacrema et al. 2019), and popularity-aware where the cosine is not."""

    name = "rp3beta"
    Config = RP3BetaConfig

    def _fit(self, data: Dataset) -> None:
        cfg = self.config
        x = data.matrix(implicit=True).tocsr().astype(np.float64)
        p_ui = sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)) @ x
        xt = x.T.tocsr()
        p_iu = sp.diags(1.0 / np.maximum(np.asarray(xt.sum(axis=1)).ravel(), 1.0)) @ xt
        if cfg.alpha != 1.0:
            p_ui, p_iu = p_ui.power(cfg.alpha), p_iu.power(cfg.alpha)
        sim = (p_iu @ p_ui).toarray()
        pop = np.asarray(x.sum(axis=0)).ravel()
        sim /= np.power(np.maximum(pop, 1.0), cfg.beta)[None, :]
        self._keep(sim.astype(np.float32), data)
        row_sums = np.asarray(self.sim_.sum(axis=1)).ravel()  # rows sum to one
        self.sim_ = sp.diags(1.0 / np.where(row_sums > 0, row_sums, 1.0)).astype(np.float32) @ self.sim_
        self.sim_ = sp.csr_matrix(self.sim_, dtype=np.float32)
