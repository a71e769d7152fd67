"""A small vector-index protocol with an exact numpy index and FAISS indexes.

Indexes hold unit-norm (or raw) float32 vectors addressed by their row number ``0..n-1`` (the
model's internal item index) and return the highest inner products. Rows are only appended;
items that must not be returned (deleted, the query item itself...) are filtered by the caller
through ``allowed``.
"""

from __future__ import annotations

import importlib.util
from typing import Protocol, runtime_checkable

import numpy as np

from fewrec.errors import ConfigError
from fewrec.topk import top_k

INDEX_KINDS = ("auto", "exact", "faiss-flat", "faiss-hnsw", "faiss-ivf")


@runtime_checkable
class VectorIndex(Protocol):
    """What the service needs from a vector index."""

    dim: int

    def __len__(self) -> int: ...

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (their ids continue from ``len(self)``)."""
        ...

    def clone(self) -> VectorIndex:
        """An independent copy (adding to it leaves this index as it is)."""
        ...

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` inner products per query row: (scores, ids), best first.

        Rows with fewer than ``k`` allowed results are padded with score ``-inf`` and id ``-1``.
        ``allowed`` is a boolean mask over the index rows.
        """
        ...


def _as_matrix(vectors: np.ndarray, dim: int | None = None) -> np.ndarray:
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise ConfigError(f"vectors must be (n, {dim}) float arrays, got shape {x.shape}")
    return x


def _pad(scores: list[np.ndarray], ids: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    out_s = np.full((len(scores), k), -np.inf, dtype=np.float32)
    out_i = np.full((len(scores), k), -1, dtype=np.int64)
    for r, (s, i) in enumerate(zip(scores, ids, strict=True)):
        out_s[r, : len(s)] = s
        out_i[r, : len(i)] = i
    return out_s, out_i


class ExactIndex:
    """Brute-force inner product with numpy (one matrix product; exact)."""

    def __init__(self, dim: int):
        self.dim = dim
        self._x = np.zeros((0, dim), dtype=np.float32)

    def __len__(self) -> int:
        return len(self._x)

    def add(self, vectors: np.ndarray) -> None:
        self._x = np.concatenate([self._x, _as_matrix(vectors, self.dim)])

    def clone(self) -> ExactIndex:
        new = ExactIndex(self.dim)
        new._x = self._x  # `add` replaces the array, never writes into it
        return new

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = _as_matrix(queries, self.dim)
        sims = q @ self._x.T
        if allowed is not None:
            sims[:, ~allowed[: len(self._x)]] = -np.inf
        k_eff = min(k, sims.shape[1])
        all_s, all_i = [], []
        for row in sims:
            if k_eff == 0:
                all_s.append(np.zeros(0, np.float32))
                all_i.append(np.zeros(0, np.int64))
                continue
            part = top_k(row, k_eff)
            part = part[np.isfinite(row[part])]
            all_s.append(row[part])
            all_i.append(part)
        return _pad(all_s, all_i, k)


class FaissIndex:
    """A FAISS inner-product index: ``flat`` (exact) or ``hnsw`` (approximate, sub-linear).

    Args:
        dim: vector dimension.
        kind: ``"flat"`` or ``"hnsw"``.
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (higher: more exact, slower).
    """

    def __init__(self, dim: int, kind: str = "flat", hnsw_m: int = 32, ef_search: int = 128):
        import faiss

        self.dim = dim
        self.kind = kind
        self._index: faiss.Index
        if kind == "flat":
            self._index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            graph = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            graph.hnsw.efSearch = ef_search
            self._index = graph
        else:
            raise ConfigError(f"unknown FAISS index kind {kind!r}; use 'flat' or 'hnsw'")

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, vectors: np.ndarray) -> None:
        self._index.add(_as_matrix(vectors, self.dim))

    def clone(self) -> FaissIndex:
        import faiss

        new = FaissIndex.__new__(FaissIndex)
        new.dim, new.kind = self.dim, self.kind
        new._index = faiss.clone_index(self._index)
        return new

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        q = _as_matrix(queries, self.dim)
        n = len(self)
        if n == 0 or k <= 0:
            return _pad([np.zeros(0)] * len(q), [np.zeros(0, np.int64)] * len(q), max(k, 0))
        # FAISS cannot take a mask cheaply for every index type: over-fetch, filter, widen.
        fetch = min(n, k if allowed is None else max(2 * k, k + 16))
        while True:
            scores, ids = self._index.search(q, fetch)
            all_s, all_i, short = [], [], False
            for s, i in zip(scores, ids, strict=True):
                keep = i >= 0
                if allowed is not None:
                    keep &= allowed[np.maximum(i, 0)]
                all_s.append(s[keep][:k])
                all_i.append(i[keep][:k])
                short |= len(all_i[-1]) < k
            if not short or fetch >= n:
                return _pad(all_s, all_i, k)
            fetch = min(n, fetch * 4)


def faiss_available() -> bool:
    """Whether faiss (``faiss-cpu``) can be imported."""
    return importlib.util.find_spec("faiss") is not None


def make_index(dim: int, kind: str = "auto", threshold: int | None = None) -> VectorIndex:
    """An index by kind: ``exact`` (numpy), ``faiss-flat`` (exact, faster), ``faiss-hnsw``,
    ``faiss-ivf`` (exact search until the catalogue passes ``threshold`` items, default
    `fewrec.scale.ann.ANN_THRESHOLD` = 50,000, then a FAISS IVF index whose search breadth is
    tuned for recall@10: `AutoIndex`), or ``auto`` (FAISS flat when installed, else exact)."""
    if kind not in INDEX_KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; choose from {INDEX_KINDS}")
    if kind == "auto":
        kind = "faiss-flat" if faiss_available() else "exact"
    if kind == "exact":
        return ExactIndex(dim)
    if kind == "faiss-ivf" and faiss_available():
        from fewrec.scale.ann import AnnConfig, AutoIndex

        return AutoIndex(dim, AnnConfig() if threshold is None else AnnConfig(threshold=threshold))
    if not faiss_available():
        raise ConfigError(f"index {kind!r} needs faiss. Fix: pip install faiss-cpu, or use index 'exact'")
    return FaissIndex(dim, kind.removeprefix("faiss-"))
