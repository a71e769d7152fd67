"""EASE (Steck, WWW 2019): a closed-form item-item linear autoencoder."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import ClassVar, Literal

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from pydantic import Field, field_validator

from fewrec.data.dataset import Dataset, side_onehot, side_vocab
from fewrec.errors import ConfigError
from fewrec.models.base import (
    REVEAL_MODES,
    ModelConfig,
    Recommender,
    available_memory,
    check_item_pairs,
    check_shots,
    nearest_shot,
    register,
)
from fewrec.models.query import QueryBatch

log = logging.getLogger(__name__)
_SAID: set[str] = set()


class EASEConfig(ModelConfig):
    l2: float = Field(500.0, gt=0)
    """L2 penalty on the item-item weights (tuned on the warm validation split)."""


@register
class EASE(Recommender):
    """B = argmin ||X - XB||^2 + l2 ||B||^2 with diag(B) = 0, solved in closed form."""

    name = "ease"
    reads_item_text = False  # ID-only
    empty_is_popularity = True
    Config = EASEConfig
    config: EASEConfig

    PAIR_BYTES: ClassVar[float] = 32.0
    """Peak bytes per pair of items while fitting: the float64 Gram matrix, its inverse and the
    temporaries of the inversion and of B (measured: 32.2 at 10,000 items)."""
    LARGE_FIX: ClassVar[str] = (
        "keep the most popular items only, or use itemknn, rp3beta or als, which stay sparse"
    )

    def check_memory(self, data: Dataset) -> None:
        check_item_pairs(self.name, data.n_items, self.PAIR_BYTES, self.LARGE_FIX)

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
    """History sizes (0 to 1,000) that get a model of their own when ``dropout`` is None (ignored
    otherwise); a query uses the one nearest its history size on a log(1 + K) scale. Each costs
    an items x items matrix of memory and a solve."""
    scale: float = Field(2.5, gt=0)
    """A user with K items is scored by the model for dropout 1 - K / (scale * mean items per
    training user), clipped to [0.5, 0.995]. 2.5 came from ML-100K's cold-user validation
    users (optimum near 0.99 at K = 1-3, 0.98 at K = 5, 0.95 at K = 10-20)."""
    progress: bool = False
    """A progress bar over the per-history-size models (a minute or more each at 10,000 items)."""

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return check_shots(v, once=True)  # (a model saved with a size twice still loads)


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
    reads_item_text = False  # ID-only
    empty_is_popularity = True
    Config = DLAEConfig
    config: DLAEConfig

    def dropout_for(self, n_items: float, mean_items: float) -> float:
        """The dropout of the model that scores a user with ``n_items`` items."""
        if self.config.dropout is not None:
            return self.config.dropout
        return float(np.clip(1.0 - n_items / (self.config.scale * mean_items), 0.5, 0.995))

    MAX_BYTES: ClassVar[float] = 8e9
    """Refuse to build more item-item weights than this (float32 bytes, one n x n per shot)."""

    def check_memory(self, data: Dataset) -> None:
        n_models = 1 if self.config.dropout is not None else len(self.config.shots)
        n = float(data.n_items)
        fix = EASE.LARGE_FIX
        if n_models > 1 and (4 + self.WORK_BYTES) * n**2 <= min(self.MAX_BYTES, available_memory()):
            fix = f"set dropout (one model) or fewer shots (now {n_models}), or {fix}"  # one fits
        check_item_pairs(
            f"dlae with {n_models} history sizes",
            data.n_items,
            n_models * 4 + self.WORK_BYTES,
            fix,
            self.MAX_BYTES,
        )

    WORK_BYTES: ClassVar[int] = 40
    """Bytes per item pair beside the models (float32 each): the Gram matrix, a solve and their
    copies. Measured peak with 6 models: 60.5 bytes per pair (16 had been assumed, so a fit
    passed the check at 40 and then needed half as much again)."""

    def _fit(self, data: Dataset) -> None:
        x = data.matrix(implicit=True)
        gram = (x.T @ x).toarray().astype(np.float64)
        diag = np.diag(gram).copy()
        counts = data.user_counts()
        mean_items = float(counts[counts > 0].mean())
        shots = (0,) if self.config.dropout is not None else self.config.shots
        weights = []
        for k in _bar(shots, "dlae", self.config.progress):
            p = self.dropout_for(k, mean_items)
            lam = p / (1.0 - p) * diag + self.config.l2
            weights.append(np.linalg.solve(gram + np.diag(lam), gram).astype(np.float32))
        self.weights_ = np.stack(weights)
        self.shots_ = np.asarray(shots, dtype=np.int64)
        self.trained_ = data.item_counts() > 0

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        h = batch.implicit_history()
        scores = np.zeros((len(batch), self.n_items), dtype=np.float32)
        for j, rows in _by_shot(batch.history_sizes(), self.shots_):
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


class KShotRidgeConfig(ModelConfig):
    l2: float = Field(100.0, gt=0)
    """L2 penalty on the weights (ML-100K cold-user validation users, split seeds 0-2: 100 best
    for earliest K5 among 10-300, 30-100 for random K5)."""
    shots: tuple[int, ...] = (0, 1, 3, 5, 10, 20)
    """One model per revealed-history size; a query uses the one nearest its size."""
    side_weight: float = Field(1.0, ge=0)
    """Scale of the user's side info (one indicator per level of each user field, numbers by
    decade) given to the regression beside the revealed items; 0: items only. A field a query
    lacks counts as the training users' average (cold-user earliest reveal, validation users of
    split seeds 0-2, NDCG@10 with side weight 0 -> 1: K0 0.542 -> 0.558, K1 0.537 -> 0.547, K5
    0.545 -> 0.547)."""
    reveal: Literal["earliest", "random", "both"] = "both"
    """Which K items a training episode reveals: a user's first K (how new users arrive), a
    random K, or both kinds of episode per user."""
    windows: int = Field(1, ge=1)
    """Episodes per user and kind: for the earliest reveal, the first K items, the next K, ...
    (``windows`` consecutive blocks, each followed by the rest as targets: more episodes that look
    like a newcomer's); for the random reveal, as many random draws. With ``reveal="earliest"``,
    earliest K5 validation NDCG@10 (split seeds 0-2) goes 0.553 -> 0.564 with 3 windows; with
    ``reveal="random"``, random K5 goes 0.596 -> 0.654 (8 draws) -> 0.661 (16); with "both" the
    random draws cancel the earliest gain (0.547 either way; random K5 0.574 -> 0.584). Inside
    the default ensemble neither gain survives (earliest 0.556 -> 0.558 with 3 windows, random
    0.691 -> 0.696 with 16, seed 0 down), so the default stays 1: `benchmarks/cold_user_probes.md`."""

    neighbourhood: float = Field(10.0, ge=0)
    """Scale of a second block of inputs: the revealed items' neighbourhood, the sum of their
    cosine-similarity rows (item co-occurrence over all training interactions), scaled to unit
    length; 0: off. The one-hot block only knows the items that training episodes revealed;
    through the neighbourhood an episode also teaches the regression about items like its
    items, which matters with few training users (ML-100K has 660 in a cold-user split). On the
    cold-user validation users of split seeds 0-2, K5 NDCG@10 with 0 / 3 / 10 / 30: earliest
    reveal 0.553 / 0.563 / 0.572 / 0.570, random 0.596 / 0.663 / 0.691 / 0.688
    (`benchmarks/cold_user_probes.md`, ``neighbourhood`` rows); on the test users of ten split
    seeds, K5 gain over popularity +16.3% -> +20.4% (earliest) and +15.8% -> +32.4% (random) in
    the tables of 2026-12-03, before that day's evaluation mends; +20.0% and +31.5% with it in the
    current ones (`benchmarks/cold-user-{earliest,random}-seeds.md`; without it not rerun).
    For known users' long histories it does worse (warm NDCG@10 0.205 -> 0.183): set 0 there,
    or use EASE / the ensemble. It doubles the inputs; with fewer episodes than inputs the fit
    takes the dual form, so it stays a few seconds on ML-100K (with more, as on MovieLens-1M,
    ~100 s), and the model stores the n x n similarity."""

    progress: bool = False
    """A progress bar over the per-history-size models (minutes at 10,000 items)."""

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return check_shots(v, sort=True)  # (kshot-ridge has always sorted them)


def cosine_similarity(data: Dataset) -> np.ndarray:
    """Item-item cosine similarity of the implicit interaction matrix, zero diagonal (float32).

    `ItemKNN` computes the same cosine inline, with shrinkage and in float32. They are kept apart
    on purpose: one shared function changes either model's scores in the last bit (8,084 of
    ML-100K's 2.8M pairs differ by one float32 step), and with them recorded benchmark rows that
    took hours to run (the ten-seed ensemble tables)."""
    x = data.matrix(implicit=True).tocsc().astype(np.float64)
    co = (x.T @ x).toarray()
    norm = np.sqrt(np.diag(co))
    norm[norm == 0] = 1.0
    sim = co / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)
    return sim.astype(np.float32)


def neighbourhood_block(history: sp.csr_matrix, sim: np.ndarray, scale: float) -> np.ndarray:
    """Per row, ``scale`` times the unit-length sum of the similarity rows of its items."""
    out = np.asarray(history @ sim, dtype=np.float32)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return scale * out / np.where(norm > 0, norm, 1.0)


@register
class KShotRidge(Recommender):
    """Ridge regression from the K items a user reveals to the items they go on to interact
    with, fitted on K-shot episodes of the training users: B_K = (Xc'Xc + l2 I)^-1 Xc'(Y - p),
    score = p + (h - m) B_K, where X holds each episode's K revealed items and the user's side
    info (column means m, centred Xc), Y the rest and p Y's column means.

    EASE and DLAE learn to reconstruct a user's items from the others, whichever they are. Here
    the input is what a K-shot user actually shows and the target what follows it, so the model
    also learns what a user's first K items say about the rest, and which items new users go on
    to rate (the intercept p): on ML-100K's earliest-reveal cold users, where autoencoders fall
    below popularity, this is the model that beats it.
    """

    name = "kshot-ridge"
    reads_item_text = False  # ID-only
    Config = KShotRidgeConfig
    config: KShotRidgeConfig

    MAX_BYTES: ClassVar[float] = 8e9

    def check_memory(self, data: Dataset) -> None:
        shots = len(self.config.shots)
        blocks = 2 if self.config.neighbourhood > 0 else 1  # item-sized input blocks
        fix = EASE.LARGE_FIX
        if (4 + 24) * float(data.n_items) ** 2 <= min(self.MAX_BYTES, available_memory()):  # one size fits
            fix = f"fewer shots (now {shots}) or neighbourhood=0, or {fix}"
        pair = shots * 4 * blocks + 24 * blocks**2
        check_item_pairs(f"kshot-ridge with {shots} history sizes", data.n_items, pair, fix, self.MAX_BYTES)

    def _fit(self, data: Dataset) -> None:
        n = data.n_items
        shots = self.config.shots
        blocks = 2 if self.config.neighbourhood > 0 else 1  # item-sized input blocks
        inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
        groups = list(inter.groupby("user", sort=True).indices.values())
        items = inter["item"].to_numpy()
        rng = np.random.default_rng(self.config.seed)
        modes = REVEAL_MODES[self.config.reveal]
        self.side_vocab_ = side_vocab(data.user_info) if self.config.side_weight > 0 else []
        side = self.config.side_weight * side_onehot(data.user_info, self.side_vocab_, data.n_users)
        user_of = inter["user"].to_numpy()
        gamma = self.config.neighbourhood
        self.sim_ = cosine_similarity(data) if gamma > 0 else None
        longest = int(np.max(data.user_counts(), initial=0))
        if longest == 0:
            raise ConfigError("kshot-ridge: no training user has an interaction")
        if max(shots) >= longest:  # no episode of that size: a catalogue of short histories
            kept = tuple(k for k in shots if k < longest)
            if not kept:
                raise ConfigError(
                    f"kshot-ridge: no training user has more than {longest} interactions, so no "
                    f"episode reveals {shots[0]} and has items left to predict. Fix: lower shots, "
                    f"e.g. shots={(0, longest - 1) if longest > 1 else (0,)}"
                )
            message = (
                f"kshot-ridge: the longest training history has {longest} interactions, so history "
                f"sizes {[k for k in shots if k >= longest]} are left out; a query uses the nearest "
                f"size kept, of {list(kept)}"
            )
            if message not in _SAID:  # once: the ensemble fits it on each of its folds
                _SAID.add(message)
                log.warning(message)
            shots = kept
        weights, intercepts, side_means = [], [], []
        for k in _bar(shots, "kshot-ridge", self.config.progress):
            rows_x, cols_x, rows_y, cols_y, ep_users = [], [], [], [], []
            n_ep = 0
            for idx in groups:
                if len(idx) <= k:
                    continue
                for random in modes:
                    # earliest: consecutive windows of K; random: as many draws, so that "both"
                    # weighs the two kinds alike
                    for w in range(self.config.windows if k else 1):
                        lo = 0 if random else w * k
                        if len(idx) <= lo + k:
                            break
                        order = rng.permutation(idx) if random else idx
                        rows_x.append(np.full(k, n_ep))
                        cols_x.append(items[order[lo : lo + k]])
                        rows_y.append(np.full(len(idx) - lo - k, n_ep))
                        cols_y.append(items[order[lo + k :]])
                        ep_users.append(user_of[idx[0]])
                        n_ep += 1
            revealed = _binary(rows_x, cols_x, n_ep, n)
            parts = [revealed, sp.csr_matrix(side[ep_users])]
            if self.sim_ is not None:
                parts.insert(1, neighbourhood_block(revealed, self.sim_, gamma).astype(np.float64))
            y = _binary(rows_y, cols_y, n_ep, n)
            p = np.asarray(y.mean(axis=0)).ravel()
            if self.sim_ is not None and n_ep < sum(a.shape[1] for a in parts):
                # a dense block and fewer episodes than inputs: the same ridge in its dual form,
                # B = Xc' (Xc Xc' + l2 I)^-1 (Y - p), an n_ep-sized solve instead of 2n; in float32,
                # the weights' own type: ML-100K's fit 19 -> 11 s, weights within 3e-7 of float64's
                x = sp.hstack([sp.csr_matrix(a) for a in parts]).tocsr()
                m = np.asarray(x.mean(axis=0)).ravel()
                xc = (x.toarray() - m).astype(np.float32)
                kernel = xc @ xc.T
                kernel[np.diag_indices_from(kernel)] += self.config.l2
                alpha = scipy.linalg.solve(kernel, (y.toarray() - p).astype(np.float32), assume_a="pos")
                weights.append((xc.T @ alpha).astype(np.float32))
            else:
                if self.sim_ is not None:  # the dense block multiplied as dense (see _products)
                    m = np.concatenate([np.asarray(a.mean(axis=0)).ravel() for a in parts])
                    gram, cross = _products(parts, y)
                else:
                    x = sp.hstack(parts).tocsr()
                    m = np.asarray(x.mean(axis=0)).ravel()
                    gram, cross = (x.T @ x).toarray(), (x.T @ y).toarray()
                gram -= n_ep * np.outer(m, m)
                cross -= n_ep * np.outer(m, p)
                gram[np.diag_indices_from(gram)] += self.config.l2
                if self.sim_ is not None:  # Cholesky: a quarter less work than LU at ML-1M's size
                    coef = scipy.linalg.solve(gram, cross, assume_a="pos", overwrite_a=True, overwrite_b=True)
                else:
                    coef = np.linalg.solve(gram, cross)
                weights.append(coef.astype(np.float32))
            intercepts.append((p - m @ weights[-1]).astype(np.float32))
            side_means.append(m[blocks * n :])
        self.weights_ = np.stack(weights)
        self.intercepts_ = np.stack(intercepts)
        self.side_means_ = np.stack(side_means).astype(np.float32)
        self.shots_ = np.asarray(shots, dtype=np.int64)
        self.trained_ = data.item_counts() > 0

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        h = batch.implicit_history()
        scores = np.zeros((len(batch), self.n_items), dtype=np.float32)
        side = self._query_side(batch)
        n = self.n_items
        start = n if self.sim_ is None else 2 * n  # where the side-info weights begin
        for j, rows in _by_shot(batch.history_sizes(), self.shots_):
            w = self.weights_[j]
            scores[rows] = np.asarray(h[rows] @ w[:n], dtype=np.float32) + self.intercepts_[j]
            if self.sim_ is not None:
                scores[rows] += (
                    neighbourhood_block(h[rows], self.sim_, self.config.neighbourhood) @ w[n:start]
                )
            if len(self.side_vocab_):
                known = ~np.isnan(side[rows])
                scores[rows] += np.where(known, side[rows], self.side_means_[j]) @ w[start:]
        scores[:, ~self.trained_] = -np.inf
        return scores

    @property
    def side_levels(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.side_vocab_)

    def _query_side(self, batch: QueryBatch) -> np.ndarray:
        """Scaled side-info indicators per query; NaN for a field the query does not give (or
        gives a level never seen in training), so that field counts as the training average."""
        vocab = self.side_vocab_
        out = self.config.side_weight * side_onehot(batch.user_info, vocab, len(batch))
        for col in dict.fromkeys(c for c, _ in vocab):
            block = np.array([c == col for c, _ in vocab])
            missing = ~out[:, block].any(axis=1)
            out[np.ix_(missing, block)] = np.nan
        return out

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "weights": self.weights_,
            "intercepts": self.intercepts_,
            "shots": self.shots_,
            "trained": self.trained_,
            "side_means": self.side_means_,
            "side_cols": np.array([c for c, _ in self.side_vocab_], dtype=str),
            "side_levels": np.array([v for _, v in self.side_vocab_], dtype=str),
            **({} if self.sim_ is None else {"sim": self.sim_}),
        }

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.sim_ = arrays.get("sim")
        self.weights_ = arrays["weights"]
        self.intercepts_ = arrays["intercepts"]
        self.shots_ = arrays["shots"]
        self.trained_ = arrays["trained"]
        self.side_means_ = arrays["side_means"]
        cols, levels = arrays["side_cols"].tolist(), arrays["side_levels"].tolist()
        self.side_vocab_ = list(zip(cols, levels, strict=True))


def _by_shot(sizes: np.ndarray, shots: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(model index, query rows) for each per-history-size model that scores some query: the one
    nearest each query's history size (`QueryBatch.history_sizes`)."""
    pick = nearest_shot(sizes, shots)
    for j in np.unique(pick):
        yield int(j), np.flatnonzero(pick == j)


def _bar(shots: tuple[int, ...], name: str, show: bool) -> Iterator[int]:
    """``shots``, with a progress bar over them when ``show`` and there are several."""
    from tqdm.auto import tqdm

    yield from tqdm(shots, desc=f"{name} history sizes", unit="model", disable=not show or len(shots) < 2)


def _products(parts: list[np.ndarray | sp.csr_matrix], y: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """X'X and X'Y for X made of the column blocks ``parts`` (sparse or dense), each pair of
    blocks multiplied in its own kind, and a dense block's X'Y by BLAS against Y made dense. As
    one sparse matrix, a dense block's products went through scipy's sparse x sparse routine:
    kshot-ridge's fit with more episodes than inputs took 480 s on 6,000 users x 2,000 items (now
    27 s) and over 15 minutes on MovieLens-1M's cold-user training users (now ~100 s, most of it
    the six solves)."""

    def t_dot(a, b) -> np.ndarray:  # a' b as a dense array
        if sp.issparse(a):
            return (a.T @ b).toarray() if sp.issparse(b) else np.asarray(a.T @ b)
        return np.asarray((b.T @ a).T) if sp.issparse(b) else a.T @ b

    edges = np.cumsum([0, *(a.shape[1] for a in parts)])
    gram = np.empty((edges[-1], edges[-1]))
    cross = np.empty((edges[-1], y.shape[1]))
    dense_y = None
    for i, a in enumerate(parts):
        rows = slice(edges[i], edges[i + 1])
        for j in range(i, len(parts)):
            cols = slice(edges[j], edges[j + 1])
            gram[rows, cols] = t_dot(a, parts[j])
            if j != i:
                gram[cols, rows] = gram[rows, cols].T
        if sp.issparse(a):
            cross[rows] = (a.T @ y).toarray()
        else:
            dense_y = y.toarray() if dense_y is None else dense_y
            cross[rows] = a.T @ dense_y
    return gram, cross


def _binary(rows: list[np.ndarray], cols: list[np.ndarray], n_rows: int, n_cols: int) -> sp.csr_matrix:
    """A 0/1 CSR from per-row index lists (duplicates count once)."""
    r, c = np.concatenate(rows), np.concatenate(cols)
    x = sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(n_rows, n_cols))
    x.data[:] = 1.0
    return x
