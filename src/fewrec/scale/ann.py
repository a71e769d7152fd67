"""Approximate nearest-neighbour retrieval (FAISS IVF and HNSW) behind the vector-index protocol.

Everything here implements `fewrec.serve.index.VectorIndex` (append-only rows ``0..n-1``,
``search(queries, k, allowed) -> (scores, ids)`` by inner product, padded with ``-inf``/``-1``),
so the service and the batch jobs take any of them in place of the exact index:

* `IVFIndex` (the default): a FAISS inverted file over k-means cells. It stays exact until it
  holds enough vectors to train its cells, then trains once on a seeded sample.
* `HNSWIndex`: a FAISS HNSW graph (no training, fast queries, but a slow build at the breadth
  that crowded text embeddings need).
* `build_ann_index`: build one from vectors and tune its search breadth (IVF ``nprobe``, HNSW
  ``efSearch``) to the smallest value reaching `AnnConfig.target_recall` on sample queries.
* `AutoIndex`: exact search while the catalogue is small; once it passes `AnnConfig.threshold`
  rows it builds (and tunes) the approximate index from every row.
* `ann_recall`: recall@k of an index against exact search on the same vectors.

Recall counts ties: a returned item is a hit when its exact score reaches the exact k-th score
(within `TIE_TOL`), since among items of equal score (duplicate texts) exact search itself picks
arbitrarily. ``ties=False`` gives the strict id-overlap recall.

Vectors are expected L2-normalised (inner product = cosine). With more than one FAISS thread,
HNSW construction is not deterministic (threads insert concurrently); IVF is deterministic for a
seed. Use ``threads=1`` where a result must repeat exactly.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

import numpy as np
from pydantic import ConfigDict, Field

from fewrec.errors import ConfigError, FewrecError, Settings
from fewrec.serve.index import ExactIndex, FaissIndex, VectorIndex, faiss_available

if TYPE_CHECKING:
    import faiss

log = logging.getLogger(__name__)

INSTALL_FIX = "pip install 'fewrec[ray]' (or pip install faiss-cpu)"
#: Catalogue size from which `AutoIndex` and `index_for_catalogue` switch from exact search to
#: ANN. Measured on 2 shared cores (benchmarks/scaling.md), one 384-d query, p50: exact (numpy)
#: 0.6 ms at 10k (IVF 0.3 ms), ~10 ms at 100k (IVF ~3 ms), ~110 ms at 1M (IVF 7.6 ms; p99 11).
ANN_THRESHOLD = 50_000
#: Score tolerance within which an item ties with the exact k-th result (see `ann_recall`): above
#: the float32 rounding of a 384-d dot product computed two ways, far below a meaningful gap.
TIE_TOL = 1e-5

_F = TypeVar("_F", bound=FaissIndex)


class AnnConfig(Settings):
    """Settings of the approximate index (validated, JSON round-trippable).

    Attributes:
        kind: ``"ivf"`` (default: fast build) or ``"hnsw"``.
        threshold: catalogue size from which `AutoIndex` uses the approximate index.
        target_recall: recall@10 (exact duplicates interchangeable, see `ann_recall`) that
            tuning aims for on sample queries from the indexed rows; 0.97 leaves a margin so that
            recall on other queries stays at or above 0.95.
        nlist: IVF cells; None: ``round(2 * sqrt(n))`` for the ``n`` rows held at training.
        nprobe: IVF cells visited per query; None: tuned to ``target_recall``.
        train_per_cell: IVF training rows per cell (k-means sample of ``nlist * train_per_cell``).
        hnsw_m: HNSW links per node.
        ef_construction: HNSW build breadth.
        ef_search: HNSW query breadth; None: tuned to ``target_recall``.
        tune_queries: sample queries used for tuning.
        threads: FAISS threads for build and search; None: FAISS's default (all cores).
        seed: seed of the IVF training sample, k-means and tuning queries.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    settings_name = "ANN index config"

    kind: Literal["ivf", "hnsw"] = "ivf"
    threshold: int = Field(ANN_THRESHOLD, ge=0)
    target_recall: float = Field(0.97, gt=0, le=1)
    nlist: int | None = Field(None, ge=1)
    nprobe: int | None = Field(None, ge=1)
    train_per_cell: int = Field(40, ge=39)
    hnsw_m: int = Field(32, ge=4, le=256)
    ef_construction: int = Field(200, ge=8)
    ef_search: int | None = Field(None, ge=1)
    tune_queries: int = Field(200, ge=10)
    threads: int | None = Field(None, ge=1)
    seed: int = Field(0, ge=0)

    @classmethod
    def make(cls, **overrides: Any) -> AnnConfig:
        """A config with overrides (the same as ``AnnConfig(**overrides)``)."""
        return cls(**overrides)


def _faiss():
    if not faiss_available():
        raise FewrecError(f"approximate indexes need faiss, which is not installed. Fix: {INSTALL_FIX}")
    import faiss

    return faiss


@contextlib.contextmanager
def faiss_threads(threads: int | None) -> Iterator[None]:
    """Run a block with ``threads`` FAISS (OpenMP) threads, restoring the previous count."""
    if threads is None:
        yield
        return
    faiss = _faiss()
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _matrix(vectors: np.ndarray, dim: int) -> np.ndarray:
    x = np.ascontiguousarray(np.atleast_2d(np.asarray(vectors, dtype=np.float32)))
    if x.ndim != 2 or x.shape[1] != dim:
        raise ConfigError(f"vectors must be (n, {dim}) float arrays, got shape {x.shape}")
    return x


def _clone(index: _F) -> _F:
    """A copy of one of our FAISS indexes with its own FAISS structure (which owns its parts)."""
    new = copy.copy(index)
    new._index = _faiss().clone_index(index._index)
    new.__dict__.pop("_quantizer", None)  # the cloned IVF index owns its cloned quantizer
    return new


class _ThreadedFaissIndex(FaissIndex):
    """What the ANN indexes share: searches under their own FAISS thread count, independent
    clones, and their serialised size. Subclasses set ``self.threads``."""

    threads: int | None = None

    def clone(self) -> Self:
        """An independent copy (adding to it leaves this index as it is)."""
        return _clone(self)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        with faiss_threads(self.threads):
            return super().search(queries, k, allowed)

    def nbytes(self) -> int:
        """Size of the index's data (vectors and graph or lists), as FAISS serialises it."""
        return int(_faiss().serialize_index(self._index).nbytes)


class HNSWIndex(_ThreadedFaissIndex):
    """FAISS HNSW over inner product: incremental, no training, ~log(n) search.

    Args:
        dim: vector dimension.
        m: links per node.
        ef_construction: build breadth.
        ef_search: query breadth.
        threads: FAISS threads for add and search; None: FAISS's default.
    """

    _index: faiss.IndexHNSWFlat  # (made by `FaissIndex` for kind "hnsw"; FAISS clones keep the class)

    def __init__(
        self,
        dim: int,
        m: int = 32,
        ef_construction: int = 200,
        ef_search: int = 128,
        threads: int | None = None,
    ):
        _faiss()
        super().__init__(dim, "hnsw", hnsw_m=m, ef_search=ef_search)
        self._index.hnsw.efConstruction = int(ef_construction)
        self.m = m
        self.ef_construction = ef_construction
        self.threads = threads

    @property
    def breadth(self) -> int:
        """The search breadth (``efSearch``); may be changed between searches."""
        return int(self._index.hnsw.efSearch)

    @breadth.setter
    def breadth(self, value: int) -> None:
        if value < 1:
            raise ConfigError(f"ef_search must be >= 1, got {value}")
        self._index.hnsw.efSearch = int(value)

    def breadths(self) -> list[int]:
        """Values of `breadth` that tuning tries, smallest first."""
        return [16 * 2**i for i in range(9)]  # 16 .. 4096

    def add(self, vectors: np.ndarray) -> None:
        with faiss_threads(self.threads):
            super().add(vectors)


class IVFIndex(_ThreadedFaissIndex):
    """FAISS IVF-Flat over inner product, trained once on a seeded sample.

    Until it holds ``39 * nlist`` vectors (FAISS's minimum for k-means), rows go to an exact flat
    index; the add that reaches that size trains the cells on a sample of ``train_per_cell *
    nlist`` rows and moves every row into the inverted lists. Later adds are assigned to the
    trained cells: build a new index when the catalogue has grown several-fold.

    Args:
        dim: vector dimension.
        nlist: number of cells; None: ``round(2 * sqrt(n))`` for the ``n`` rows held at training.
        nprobe: cells visited per query.
        train_per_cell: k-means training rows per cell.
        seed: seed of the training sample and of k-means.
        threads: FAISS threads for training, add and search; None: FAISS's default.
    """

    def __init__(
        self,
        dim: int,
        nlist: int | None = None,
        nprobe: int = 32,
        train_per_cell: int = 40,
        seed: int = 0,
        threads: int | None = None,
    ):
        _faiss()
        super().__init__(dim, "flat")
        self.nlist = nlist
        self.nprobe = nprobe
        self.train_per_cell = train_per_cell
        self.seed = seed
        self.threads = threads
        self.trained = False

    @staticmethod
    def auto_nlist(n: int) -> int:
        """Cells for ``n`` vectors: ``round(2 * sqrt(n))``, at least 1."""
        return max(1, round(2 * math.sqrt(n)))

    def _cells_for(self, n: int) -> int:
        return self.nlist if self.nlist is not None else self.auto_nlist(n)

    def add(self, vectors: np.ndarray) -> None:
        x = _matrix(vectors, self.dim)
        with faiss_threads(self.threads):
            if self.trained:
                self._index.add(x)
                return
            n = len(self) + len(x)
            if n < 39 * self._cells_for(n):
                self._index.add(x)
                return
            held = self._index.reconstruct_n(0, len(self)) if len(self) else x[:0]
            self._train(np.concatenate([held, x]))

    def _train(self, x: np.ndarray) -> None:
        faiss = _faiss()
        nlist = self._cells_for(len(x))
        rng = np.random.default_rng(self.seed)
        cap = self.train_per_cell * nlist
        sample = x if len(x) <= cap else x[np.sort(rng.choice(len(x), cap, replace=False))]
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = int(self.seed)
        index.cp.niter = 20
        index.train(sample)
        index.add(x)
        index.nprobe = int(min(self.nprobe, nlist))
        self._quantizer = quantizer  # the IVF index does not own it: keep it alive
        self._index = index
        self.nlist = nlist
        self.trained = True
        log.info("trained IVF index: %d cells on %d of %d vectors", nlist, len(sample), len(x))

    @property
    def breadth(self) -> int:
        """The search breadth (``nprobe``); may be changed between searches."""
        return self.nprobe

    @breadth.setter
    def breadth(self, value: int) -> None:
        if value < 1:
            raise ConfigError(f"nprobe must be >= 1, got {value}")
        self.nprobe = int(value)
        if self.trained:
            import faiss

            ivf = self._index
            if not isinstance(ivf, faiss.IndexIVF):  # (`_train` put an IVF index in place)
                raise TypeError(f"a trained IVFIndex holds an IVF index, not {type(ivf).__name__}")
            ivf.nprobe = int(min(value, ivf.nlist))

    def breadths(self) -> list[int]:
        """Values of `breadth` that tuning tries, smallest first (up to every cell)."""
        if not self.trained:
            return [self.nprobe]
        steps = sorted({m * 2**i for i in range(3, 20) for m in (2, 3)})  # 16, 24, 32, 48, 64...
        return [*(b // 2 for b in steps if b // 2 < self.nlist), self.nlist]


AnnIndex = IVFIndex | HNSWIndex


def make_ann_index(dim: int, config: AnnConfig | None = None) -> AnnIndex:
    """An empty approximate index as ``config`` describes (untuned; see `build_ann_index`)."""
    cfg = config or AnnConfig()
    if cfg.kind == "hnsw":
        return HNSWIndex(dim, cfg.hnsw_m, cfg.ef_construction, cfg.ef_search or 128, cfg.threads)
    return IVFIndex(dim, cfg.nlist, cfg.nprobe or 32, cfg.train_per_cell, cfg.seed, cfg.threads)


# ------------------------------------------------------------------------------------------ recall
@dataclass
class ExactTopK:
    """The exact answer that recall is measured against.

    Attributes:
        ids: (n_queries, k) exact top-k row ids.
        kth: exact k-th best score of each query.
        exclude: the row left out of each query's ranking, or None.
    """

    ids: np.ndarray
    kth: np.ndarray
    exclude: np.ndarray | None = None

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])


def exact_top_k(
    vectors: np.ndarray, queries: np.ndarray, k: int = 10, exclude: np.ndarray | None = None, chunk: int = 128
) -> ExactTopK:
    """Exact inner-product top-``k`` of each query over ``vectors`` (leaving out ``exclude[i]``
    for query i when given), by chunked matrix products."""
    x = np.asarray(vectors, dtype=np.float32)
    q = np.asarray(queries, dtype=np.float32)
    k = min(k, len(x) - (exclude is not None))
    if k < 1 or len(q) == 0:
        raise ConfigError("recall needs at least one query and more vectors than k")
    ids, kth = [], []
    for lo in range(0, len(q), chunk):
        sims = q[lo : lo + chunk] @ x.T
        if exclude is not None:
            sims[np.arange(len(sims)), exclude[lo : lo + chunk]] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        ids.append(top)
        kth.append(np.take_along_axis(sims, top, axis=1).min(axis=1))
    ex = None if exclude is None else np.asarray(exclude)
    return ExactTopK(np.concatenate(ids), np.concatenate(kth), ex)


def recall_against(
    index: VectorIndex, vectors: np.ndarray, queries: np.ndarray, ref: ExactTopK, *, ties: bool = True
) -> float:
    """Recall@k of ``index`` for ``queries`` against a precomputed exact answer (see `ann_recall`)."""
    x = np.asarray(vectors, dtype=np.float32)
    q = np.asarray(queries, dtype=np.float32)
    if len(index) != len(x):
        raise ConfigError(f"the index holds {len(index)} rows but {len(x)} vectors were given")
    k = ref.k
    _, got = index.search(q, k + (ref.exclude is not None))
    if ref.exclude is not None:
        got = np.array([g[g != e][:k] for g, e in zip(got, ref.exclude, strict=True)])
    valid = got >= 0
    if ties:
        scores = np.einsum("qd,qkd->qk", q, x[np.maximum(got, 0)])
        hits = int(np.sum(valid & (scores >= ref.kth[:, None] - TIE_TOL)))
    else:
        hits = sum(len(np.intersect1d(e, g[g >= 0])) for e, g in zip(ref.ids, got, strict=True))
    return hits / (len(q) * k)


def ann_recall(
    index: VectorIndex,
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = 10,
    *,
    exclude: np.ndarray | None = None,
    ties: bool = True,
) -> float:
    """Recall@k of ``index`` against exact inner-product search over ``vectors``.

    The share of the exact top-``k`` that the index returns in its own top-``k``, averaged over
    queries. With ``ties`` a returned item counts when its exact score is at least the exact
    k-th score minus `TIE_TOL` (duplicates are interchangeable); without, only the exact ids count.

    Args:
        index: the index to measure; it must hold ``vectors``, in order.
        vectors: the indexed rows.
        queries: query vectors.
        k: cut-off.
        exclude: one row id per query to leave out of both rankings (the query item itself,
            when queries are indexed rows), or None.
        ties: count tied items as hits.
    """
    ref = exact_top_k(vectors, queries, k, exclude)
    return recall_against(index, vectors, queries, ref, ties=ties)


@dataclass
class TuneResult:
    """The outcome of `tune_breadth`.

    Attributes:
        breadth: the chosen breadth (IVF nprobe or HNSW efSearch).
        recall: recall@k at that breadth on the tuning queries.
        tried: every breadth tried with its recall.
    """

    breadth: int
    recall: float
    tried: dict[int, float]


def tune_breadth(
    index: AnnIndex,
    vectors: np.ndarray,
    *,
    target: float = 0.97,
    k: int = 10,
    n_queries: int = 200,
    seed: int = 0,
    queries: np.ndarray | None = None,
    ties: bool = True,
) -> TuneResult:
    """Set the index's search breadth to the smallest tried value whose recall@k reaches
    ``target`` (or the largest tried). With ``ties`` (default) exact duplicates are
    interchangeable: a catalogue with repeated texts has identical vectors, among which exact
    search itself picks arbitrarily, so strict id-recall cannot reach the target at any breadth
    and tuning would end at brute force.

    Recall is measured on ``queries`` when given (best: held-out items or user profiles), else
    on ``n_queries`` indexed rows, each leaving itself out (the "similar items" query). The
    latter is unbiased for IVF but optimistic for HNSW, whose graph search starts well when the
    query is itself a node: on real MiniLM vectors (benchmarks/scaling.md) HNSW tuned that way
    reached 0.93 on held-out items, IVF 0.98 or more.
    """
    x = np.asarray(vectors, dtype=np.float32)
    if queries is not None:
        q = np.asarray(queries, dtype=np.float32)
        ref = exact_top_k(x, q, k)
    else:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(len(x), min(n_queries, len(x)), replace=False))
        q = x[rows]
        ref = exact_top_k(x, q, k, exclude=rows)
    tried: dict[int, float] = {}
    for breadth in index.breadths():
        index.breadth = breadth
        tried[breadth] = recall_against(index, x, q, ref, ties=ties)
        if tried[breadth] >= target:
            break
    index.breadth = breadth
    return TuneResult(breadth, tried[breadth], tried)


def build_ann_index(
    vectors: np.ndarray, config: AnnConfig | None = None, queries: np.ndarray | None = None
) -> tuple[AnnIndex, TuneResult | None]:
    """An approximate index holding ``vectors``, its breadth tuned to ``config.target_recall``
    (on ``queries`` if given, see `tune_breadth`) unless ``config`` fixes it (``nprobe`` /
    ``ef_search``)."""
    cfg = config or AnnConfig()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    index = make_ann_index(x.shape[1], cfg)
    index.add(x)
    fixed = cfg.nprobe if cfg.kind == "ivf" else cfg.ef_search
    if fixed is not None or len(x) < 2:
        return index, None
    with faiss_threads(cfg.threads):
        tuned = tune_breadth(
            index, x, target=cfg.target_recall, n_queries=cfg.tune_queries, seed=cfg.seed, queries=queries
        )
    log.info("tuned %s breadth to %d (recall@10 %.3f)", type(index).__name__, tuned.breadth, tuned.recall)
    return index, tuned


def index_for_catalogue(vectors: np.ndarray, config: AnnConfig | None = None) -> VectorIndex:
    """An index holding ``vectors``: exact below ``config.threshold`` rows, tuned ANN from there."""
    cfg = config or AnnConfig()
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if len(x) < cfg.threshold:
        index = ExactIndex(x.shape[1])
        index.add(x)
        return index
    return build_ann_index(x, cfg)[0]


class AutoIndex:
    """Exact while small, approximate once large: a `VectorIndex` that switches by itself.

    Rows are searched exactly until the index holds ``config.threshold`` of them; the add that
    crosses it builds and tunes the approximate index from every row (once). Below the threshold
    the rows are kept twice (the exact index and the copy the ANN index is built from): at most
    ``threshold * dim * 4`` bytes, ~77 MB for 50k 384-d vectors.

    Args:
        dim: vector dimension.
        config: ANN settings (kind, threshold, target recall...).
    """

    def __init__(self, dim: int, config: AnnConfig | None = None):
        self.dim = dim
        self.config = config or AnnConfig()
        self._index: VectorIndex = ExactIndex(dim)
        self._rows: list[np.ndarray] | None = []
        self.tuned: TuneResult | None = None

    @property
    def approximate(self) -> bool:
        """Whether the approximate index is in use."""
        return self._rows is None

    @property
    def inner(self) -> VectorIndex:
        """The index searched now (exact or approximate)."""
        return self._index

    def __len__(self) -> int:
        return len(self._index)

    def add(self, vectors: np.ndarray) -> None:
        x = _matrix(vectors, self.dim)
        if self._rows is None:
            self._index.add(x)
            return
        if len(self) + len(x) < self.config.threshold:
            self._index.add(x)
            self._rows.append(x)
            return
        ann, self.tuned = build_ann_index(np.concatenate([*self._rows, x]), self.config)
        log.info("vector index passed %d rows: switched to %s", self.config.threshold, type(ann).__name__)
        self._index, self._rows = ann, None

    def clone(self) -> AutoIndex:
        """An independent copy (adding to it leaves this index as it is)."""
        new = AutoIndex(self.dim, self.config)
        new._index = self._index.clone()
        new._rows = None if self._rows is None else list(self._rows)  # the arrays are never written
        new.tuned = self.tuned
        return new

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._index.search(queries, k, allowed)
