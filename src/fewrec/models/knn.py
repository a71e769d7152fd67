"""Item-item neighbourhood models: item-kNN (shrunk cosine) and RP3beta (random walks).

Both score ``score(u, j) = sum over history items i of sim(i, j)`` with a pruned similarity
matrix; they differ in how the similarity is made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from tqdm.auto import tqdm

from fewrec.data.dataset import Dataset
from fewrec.models.base import ModelConfig, Recommender, register
from fewrec.models.query import QueryBatch
from fewrec.topk import top_k_rows


class NeighbourConfig(ModelConfig):
    neighbors: int = Field(100, ge=1)
    """Neighbours kept per item."""
    progress: bool = False
    """A progress bar over the similarity's blocks of rows, where there are several (a catalogue
    of more than 5,792 items, as a block holds at most `NeighbourModel.BLOCK_ENTRIES` entries: minutes
    of fitting at 100,000)."""


class ItemKNNConfig(NeighbourConfig):
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


class NeighbourModel(ItemItemModel):
    """A model of each item's ``neighbors`` most similar items (`ItemKNN`, `RP3Beta`), made a
    block of rows at a time."""

    Config = NeighbourConfig
    config: NeighbourConfig

    BLOCK_ENTRIES: ClassVar[int] = 2**25
    """Similarity rows are made, pruned and stored a block at a time, each block at most this
    many dense entries (128 MB in float32): memory stays O(items x neighbors), where one dense
    items x items matrix took 40 GB at 100,000 items. Row by row the values are the same."""

    def _keep_blocks(self, rows: Callable[[int, int], np.ndarray], data: Dataset) -> None:
        """``sim_`` from dense similarity rows ``rows(lo, hi)`` (float32, items lo..hi-1 against
        every item), made a block at a time: each row's diagonal entry zeroed, its ``neighbors``
        largest entries kept (ties: the lower index), zeros dropped."""
        n = data.n_items
        k = min(self.config.neighbors, n - 1)
        step = max(1, self.BLOCK_ENTRIES // max(n, 1))
        parts = []
        starts = range(0, n, step)
        bar = tqdm(
            starts,
            desc=f"{self.name} similarity",
            unit="block",
            disable=not self.config.progress or len(starts) < 2,
        )
        for lo in bar:
            hi = min(lo + step, n)
            sim = rows(lo, hi)
            sim[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
            if k < n - 1:
                top = top_k_rows(sim, k)
                values = np.take_along_axis(sim, top, axis=1).ravel()
                indptr = np.arange(0, top.size + 1, k)
                block = sp.csr_matrix((values, top.ravel().astype(np.int32), indptr), shape=sim.shape)
            else:
                block = sp.csr_matrix(sim)
            block.eliminate_zeros()
            block.sort_indices()
            parts.append(block)
        sim_ = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n))
        self.sim_ = sp.csr_matrix(sim_, dtype=np.float32)
        self.trained_ = data.item_counts() > 0


@register
class ItemKNN(NeighbourModel):
    """score(u, j) = sum over history items i of sim(i, j), with sim the shrunk cosine."""

    name = "itemknn"
    Config = ItemKNNConfig
    config: ItemKNNConfig

    def _fit(self, data: Dataset) -> None:
        x = data.matrix(implicit=True).tocsc()
        xt = x.T.tocsr()
        # the Gram diagonal: counts of 0/1 entries, exact in any order
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0), dtype=np.float32).ravel())

        def rows(lo: int, hi: int) -> np.ndarray:
            co = (xt[lo:hi] @ x).toarray().astype(np.float32)
            return co / (np.multiply(norms[lo:hi, None], norms[None, :]) + self.config.shrinkage + 1e-9)

        self._keep_blocks(rows, data)


class RP3BetaConfig(NeighbourConfig):
    retired = {
        "shrinkage": "RP3beta's walk probabilities are not shrunk (taken and ignored until 2026-12-07)"
    }

    neighbors: int = Field(200, ge=1)
    """Neighbours kept per item: the largest entries of its row of walk probabilities (after the
    popularity penalty), which are then rescaled to sum to one. More: a denser, slower model."""
    alpha: float = Field(1.0, gt=0)
    """Exponent on the transition probabilities."""
    beta: float = Field(0.5, ge=0)
    """Popularity penalty: the similarity to item j is divided by popularity(j) ** beta."""


@register
class RP3Beta(NeighbourModel):
    """RP3beta (Paudel et al. 2017): sim(i, j) = P(i -> user -> j), a three-step random walk on
    the user-item graph, divided by popularity(j) ** beta. A strong neighbourhood baseline
    (Dacrema et al. 2019), and popularity-aware where the cosine is not."""

    name = "rp3beta"
    Config = RP3BetaConfig
    config: RP3BetaConfig

    def _fit(self, data: Dataset) -> None:
        cfg = self.config
        x = data.matrix(implicit=True).tocsr().astype(np.float64)
        p_ui = sp.diags(1.0 / np.maximum(np.asarray(x.sum(axis=1)).ravel(), 1.0)) @ x
        xt = x.T.tocsr()
        p_iu = sp.diags(1.0 / np.maximum(np.asarray(xt.sum(axis=1)).ravel(), 1.0)) @ xt
        if cfg.alpha != 1.0:
            p_ui, p_iu = p_ui.power(cfg.alpha), p_iu.power(cfg.alpha)
        pop = np.asarray(x.sum(axis=0)).ravel()
        penalty = np.power(np.maximum(pop, 1.0), cfg.beta)[None, :]

        def rows(lo: int, hi: int) -> np.ndarray:
            sim = (p_iu[lo:hi] @ p_ui).toarray()
            sim /= penalty
            return sim.astype(np.float32)

        self._keep_blocks(rows, data)
        row_sums = np.asarray(self.sim_.sum(axis=1)).ravel()  # rows sum to one
        self.sim_ = sp.diags(1.0 / np.where(row_sums > 0, row_sums, 1.0)).astype(np.float32) @ self.sim_
        self.sim_ = sp.csr_matrix(self.sim_, dtype=np.float32)
