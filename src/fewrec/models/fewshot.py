"""The few-shot recommender: text + collaborative item representations, a closed-form user
head shrunk toward a meta-learned prior, and distilled factors for items with text only.

Item representation ``x_i = [v_i, t_i, p_i, 1]`` (each column standardised):

* ``v_i``: collaborative factors. Teacher = ALS on the training interactions; student = an MLP
  from the item's text embedding (`fewrec.adapt.distill`). Warm items blend both by their
  interaction count n_i (``n_i / (n_i + blend_count)`` teacher), cold items use the student.
* ``t_i``: the text embedding reduced by PCA.
* ``p_i``: log-popularity (the student predicts it for cold items).

The user head comes from `fewrec.adapt.fewshot.adapt_heads`; its prior mean depends on the
user's side info (learned). Free text the user wrote adds a standardised text-similarity term.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, field_validator, model_validator

from fewrec.adapt.distill import apply_student, train_student
from fewrec.adapt.fewshot import HeadParams, adapt_heads, meta_learn_head
from fewrec.data.dataset import Dataset, missing_value, side_onehot, side_vocab
from fewrec.errors import ConfigError, with_fix
from fewrec.models.base import Recommender, check_item_pairs, check_shots, register
from fewrec.models.content import (
    TextModelConfig,
    check_saved_width,
    embed_items,
    embed_texts,
    encode_item_texts,
)
from fewrec.models.query import Query, QueryBatch
from fewrec.topk import top_k_rows

log = logging.getLogger(__name__)


class FewShotConfig(TextModelConfig):
    factors: int = Field(16, ge=1)
    """ALS teacher factors."""
    text_dims: int = Field(8, ge=1)
    """PCA dimensions of the text embedding in the item representation."""

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return check_shots(v)

    @model_validator(mode="after")
    def _text_dims_fit(self) -> FewShotConfig:
        from fewrec.text.encoder import resolve_model

        width = resolve_model(self.encoder).dim
        if self.text_dims > width:  # it had silently used the encoder's width
            raise ValueError(
                f"text_dims={self.text_dims} is more than the {width} dimensions of the encoder "
                f"{self.encoder}. Fix: set text_dims to 1..{width} (default 8)"
            )
        return self

    meta_learn: bool = True
    """Learn the prior and step sizes over K-shot episodes (False: a plain ridge head)."""
    meta_steps: int = Field(400, ge=1)
    """Most Adam steps of meta-learning; every 25 steps the held-out users' episode loss is
    checked, and 4 checks without improvement stop it early. Unused with ``meta_learn=False``."""
    meta_batch: int = Field(64, ge=1)
    """Simulated K-shot users (episodes) per meta-learning step. Larger: a steadier but slower
    step. Unused with ``meta_learn=False``."""
    meta_lr: float = Field(0.05, gt=0)
    """Adam learning rate of meta-learning. Unused with ``meta_learn=False``."""
    shots: tuple[int, ...] = (0, 1, 3, 5, 10, 20)
    """History sizes K (0 to 1,000) that meta-learning episodes reveal: each episode draws one
    from this list (a value listed twice, twice as often), capped at the user's items minus one;
    0: nothing revealed, the prior and side info alone. Unused with ``meta_learn=False``."""
    reveal: Literal["earliest", "random", "both"] = "both"
    """How meta-learning episodes pick the K revealed items (match how new users arrive).
    Unused with ``meta_learn=False``."""
    l2: float = Field(10.0, gt=0, le=1e30)
    """Prior precision of the plain head (and the meta-learning start)."""
    alpha: float = Field(20.0, gt=0, le=1e30)
    """Confidence of an observed item in the plain head (and the meta-learning start)."""
    blend_count: float = Field(5.0, ge=0)
    """Hybrid: a warm item with n interactions uses n / (n + blend_count) teacher factors."""
    text_weight: float = Field(1.0, ge=0)
    """Weight of the match to the user's free text, relative to the history/prior scores."""
    item_item: bool = True
    """Add an EASE item-item term (weight meta-learned) to the head's scores."""
    item_item_l2: float = Field(3000.0, gt=0)
    """L2 of that EASE term (few-shot histories want a stronger penalty than warm ones)."""
    item_item_weight: float = 1.0
    """Weight of the item-item term in the plain head (and the meta-learning start)."""
    rank_item_item: bool = False
    """After meta-learning, rescale the item-item weight for NDCG@10 on held-out episodes. The
    likelihood settles on a small weight; ranking known items wants ~30x more (cold-user random
    K5 NDCG@10 0.561 -> 0.612, warm 0.295 -> 0.312; seed 0), but then text-only items, whose item-item
    columns are borrowed from text neighbours, rarely reach a top list (cold-item Recall@20
    0.081 -> 0.014). Off by default for that reason."""
    side_info: bool = True
    """Use user side info (age, gender, occupation...) in the prior mean: its offsets are
    meta-learned, so with ``meta_learn=False`` side info is not read."""
    empty_queries: Literal["auto", "prior", "popularity"] = "auto"
    """How a query with nothing to adapt to (no liked item, no text it reads, no trained user)
    is ranked: by the head its prior gives (side info moves the prior's mean), by popularity
    (side info unread), or "auto": whichever ranked the items of meta-learning's held-out users
    better (NDCG@10 with nothing revealed, over at most 256 of them), decided at the fit;
    without meta-learning, whose prior is zero, popularity. Both sides of that check have seen
    the held-out users' interactions (popularity counts them, and the prior's item
    representations were fitted on them). On MovieLens-100K the prior, learned for every K at
    once, ranked them below popularity (cold-user split seed 0's test users: K0 0.406 against
    0.545), and "auto" chooses popularity there."""
    distill_epochs: int = Field(300, ge=1)
    """Most training epochs of the text -> factors student (mini-batches of 256 items); it
    stops early after 30 epochs without a lower loss on its 10% of held-out items."""
    progress: bool = False
    """Progress bars of the ALS teacher's fit and of meta-learning."""


def text_neighbours(
    emb: np.ndarray, targets: np.ndarray, known: np.ndarray, neighbours: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """For each target item, its ``neighbours`` most text-similar ``known`` items and their
    weights (cosine clipped at 0, normalised to sum to 1): two (n_targets, k) arrays."""
    known_idx = np.flatnonzero(known)
    sims = emb[targets] @ emb[known_idx].T
    k = min(neighbours, len(known_idx))
    top = top_k_rows(sims, k)
    w = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0)
    return known_idx[top], w / (w.sum(axis=1, keepdims=True) + 1e-9)


def text_neighbour_columns(
    weights: np.ndarray, emb: np.ndarray, known: np.ndarray, neighbours: int = 10
) -> np.ndarray:
    """A copy of ``weights`` whose columns of unknown items are the similarity-weighted mean
    column of their ``neighbours`` most text-similar known items."""
    unknown = np.flatnonzero(~known)
    if not len(unknown) or not known.any():
        return weights
    idx, w = text_neighbours(emb, unknown, known, neighbours)
    out = weights.copy()
    for row, j in enumerate(unknown):
        out[:, j] = weights[:, idx[row]] @ w[row]
    return out


def _student_items(counts: np.ndarray) -> np.ndarray:
    """The items the text -> factors student learns from (and is calibrated over): those with 3
    or more interactions, or on tiny data (a K-shot set, fewer than 50 such items) every item
    with an interaction."""
    reliable = counts >= 3
    return reliable if reliable.sum() >= 50 else counts > 0


class _TextCache:
    """A small thread-safe LRU of per-text item scores (most recent ``size`` texts) over the item
    embeddings ``emb``: scores made from other embeddings (a query that read them before
    `add_items` replaced them) have no place in it."""

    def __init__(self, emb: np.ndarray, size: int = 128):
        self.emb = emb
        self.size = size
        self._lock = threading.Lock()
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()

    def __reduce__(self):
        """Copied or pickled empty, over the (copied) embeddings: a lock cannot be copied, and a
        model that had answered a text query failed `copy.deepcopy` and pickling."""
        return type(self), (self.emb, self.size)

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: np.ndarray) -> np.ndarray:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value


@dataclass(frozen=True)
class ItemItem:
    """Item-item weights W that stay O(n) in memory as the catalogue grows.

    ``base`` is dense over the fitted catalogue (n0 items). An item added later has no column
    of its own: its column is a mix of fitted items' columns (``mix`` row j holds its text
    neighbours' weights, so ``W[:n0, n0 + j] = base @ mix[j]``) and its row mirrors that column;
    added items do not pull on each other. Adding an item costs O(n0), never O(n^2).

    A fitted item whose column was borrowed from its text neighbours at the fit (fewer than 3
    interactions) and whose text changed since has its new neighbours' mix in ``over`` (row r for
    fitted item ``over_cols[r]``), in place of its column of ``base``, which stays shared.
    """

    base: np.ndarray
    mix: sp.csr_matrix
    over_cols: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    over: sp.csr_matrix | None = None

    @classmethod
    def dense(cls, base: np.ndarray) -> ItemItem:
        return cls(base, sp.csr_matrix((0, base.shape[0]), dtype=base.dtype))

    @property
    def n_items(self) -> int:
        return self.base.shape[0] + self.mix.shape[0]

    @functools.cached_property
    def base_t(self) -> np.ndarray:
        """``base.T`` in C order (a sparse @ dense product would copy a transposed view)."""
        return np.ascontiguousarray(self.base.T)

    def _mix_rows(self, idx: np.ndarray, w: np.ndarray) -> sp.csr_matrix:
        """Rows of ``mix``: row r has weights ``w[r]`` at fitted items ``idx[r]``."""
        return sp.csr_matrix(
            (w.ravel(), idx.ravel(), np.arange(0, idx.size + 1, idx.shape[1])),
            shape=(len(idx), self.base.shape[0]),
            dtype=self.base.dtype,
        )

    def extend(self, idx: np.ndarray, w: np.ndarray) -> ItemItem:
        """A new instance with added items whose neighbours are ``idx`` weighted ``w``."""
        return dataclasses.replace(self, mix=sp.vstack([self.mix, self._mix_rows(idx, w)], format="csr"))

    def with_columns(self, cols: np.ndarray, idx: np.ndarray, w: np.ndarray) -> ItemItem:
        """A new instance where fitted items ``cols`` have the columns of their text neighbours
        ``idx`` weighted ``w``, as `text_neighbour_columns` gives them at a fit (``base`` is
        shared, not copied: 1.6 GB at 20,000 items)."""
        keep = ~np.isin(self.over_cols, cols)
        rows = self._mix_rows(idx, w)
        over = rows if self.over is None else sp.vstack([self.over[keep], rows], format="csr")
        return dataclasses.replace(
            self, over_cols=np.r_[self.over_cols[keep], cols].astype(np.int64), over=over
        )

    def _with_overrides(self, t: np.ndarray) -> np.ndarray:
        """``t`` (queries x fitted items) with the columns of ``over_cols`` mixed from their
        neighbours' (which are never among them: they have >= 3 interactions)."""
        if self.over is not None and len(self.over_cols):
            t[:, self.over_cols] = np.asarray(self.over @ np.ascontiguousarray(t.T)).T
        return t

    def replace(self, rows: np.ndarray, idx: np.ndarray, w: np.ndarray) -> ItemItem:
        """A new instance where added items ``rows`` (0 = the first added) have new neighbours."""
        n_extra, n0 = self.mix.shape
        keep = np.ones(n_extra, dtype=self.mix.dtype)
        keep[rows] = 0
        new = self._mix_rows(idx, w)
        place = sp.csr_matrix((np.ones(len(rows)), (rows, np.arange(len(rows)))), shape=(n_extra, len(rows)))
        mix = sp.diags(keep) @ self.mix + place @ new
        return dataclasses.replace(self, mix=sp.csr_matrix(mix, dtype=self.base.dtype))

    def apply(self, h: sp.csr_matrix) -> np.ndarray:
        """``h @ W`` for a (queries x n_items) sparse history matrix."""
        n0 = self.base.shape[0]
        h = sp.csr_matrix(h)
        t = np.asarray(h[:, :n0] @ self.base)
        if not self.mix.shape[0]:
            return self._with_overrides(t)
        extra = h[:, n0:]
        # added items in a history pull on fitted items through their mixed rows; the added
        # items' own mix reads no overridden column (their neighbours have >= 3 interactions)
        t_own = self._with_overrides(t + np.asarray((extra @ self.mix) @ self.base_t) if extra.nnz else t)
        return np.c_[t_own, np.asarray(self.mix @ np.ascontiguousarray(t.T)).T]

    def as_arrays(self) -> dict[str, np.ndarray]:
        m = self.mix
        out = {
            "item_item": self.base,
            "item_item.mix_data": m.data,
            "item_item.mix_indices": m.indices,
            "item_item.mix_indptr": m.indptr,
        }
        if self.over is not None and len(self.over_cols):
            o = self.over
            out |= {
                "item_item.over_cols": self.over_cols,
                "item_item.over_data": o.data,
                "item_item.over_indices": o.indices,
                "item_item.over_indptr": o.indptr,
            }
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ItemItem | None:
        base = arrays.get("item_item")
        if base is None:
            return None
        if "item_item.mix_indptr" not in arrays:
            return cls.dense(base)
        indptr = arrays["item_item.mix_indptr"]
        mix = sp.csr_matrix(
            (arrays["item_item.mix_data"], arrays["item_item.mix_indices"], indptr),
            shape=(len(indptr) - 1, base.shape[0]),
        )
        if "item_item.over_indptr" not in arrays:
            return cls(base, mix)
        optr = arrays["item_item.over_indptr"]
        over = sp.csr_matrix(
            (arrays["item_item.over_data"], arrays["item_item.over_indices"], optr),
            shape=(len(optr) - 1, base.shape[0]),
        )
        return cls(base, mix, np.asarray(arrays["item_item.over_cols"], np.int64), over)


@register
class FewShotRecommender(Recommender):
    """A new user's model in closed form: a Bayesian head over item representations made of
    collaborative factors distilled from text, the text itself and popularity, fitted to the
    user's few items and shrunk toward a meta-learned prior (side info moves its mean), plus an
    item-item term; its posterior serves exploration."""

    name = "fewshot"
    Config = FewShotConfig
    config: FewShotConfig
    text_cache_: _TextCache | None
    scores_new_items = True

    @property
    def reads_text(self) -> bool:
        return self.config.text_weight > 0

    @property
    def side_levels(self) -> frozenset[tuple[str, str]]:
        # side info moves the prior mean only where meta-learning gave it weight (not in
        # fewshot-nometa, whose side offsets stay 0)
        side = np.asarray(self.params_.side)
        return frozenset(lev for lev, row in zip(self.side_vocab_, side, strict=True) if np.any(row != 0))

    @property
    def learns_side_info(self) -> bool:
        return bool(self.side_vocab_)

    @property
    def empty_is_popularity(self) -> bool:  # type: ignore[override]  # (decided at the fit)
        """Whether an empty query is ranked by popularity (`FewShotConfig.empty_queries`,
        decided at the fit)."""
        return bool(self.__dict__.get("empty_popularity_", False))

    def ignored_in(self, query: Query) -> list[str]:
        notes = super().ignored_in(query)
        info = [k for k, v in (query.user_info or {}).items() if not missing_value(v)]
        # (side info given no weight at all has its own note)
        if not (info and self.empty_is_popularity and self.side_levels):
            return notes
        # empty as scoring reads it: an unknown user id and dislikes alone are empty too (they
        # had no note)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (recommend says what of the query it cannot use)
            batch = self.batch_from_queries([query]).for_model(self)
        if self.empty_rows(batch)[0]:
            # (its list was popularity's, "Popular with people like you", without a word)
            why = (
                ", which ranked its held-out users' items better than its prior from side info did"
                if self.config.empty_queries == "auto" and self.config.meta_learn
                else f" (empty_queries={self.config.empty_queries!r})"
            )
            notes.append(
                f"{self.name} ranks a query with no liked items and no text by popularity{why}, so "
                f"{', '.join(map(str, sorted(info)))} went unused; add items or a text to personalise"
            )
        return notes

    # ------------------------------------------------------------------ fit
    def check_memory(self, data: Dataset) -> None:
        """The item-item term is EASE over the whole catalogue: checked before the item texts
        are encoded (minutes on a large catalogue), not after."""
        if self.config.item_item:
            from fewrec.models.ease import EASE

            fix = f"set item_item=false (no EASE term; fewshot then stays O(items)), or {EASE.LARGE_FIX}"
            check_item_pairs("fewshot's item-item term (EASE)", data.n_items, EASE.PAIR_BYTES, fix)

    def _fit(self, data: Dataset) -> None:
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        cfg = self.config
        emb = embed_items(data, cfg)
        counts = data.item_counts().astype(np.float32)
        # teacher (built inside the limit too: implicit's constructor warns about BLAS threads)
        with threadpool_limits(1, "blas"):
            als = AlternatingLeastSquares(
                factors=cfg.factors,
                regularization=0.1,
                alpha=1.0,
                iterations=15,
                random_state=cfg.seed,
                num_threads=1,
            )
            als.fit(data.matrix(implicit=True), show_progress=cfg.progress)
        teacher = np.c_[np.asarray(als.item_factors), np.log1p(counts)].astype(np.float32)
        # student: text -> [factors, log-popularity], trained on items with >= 3 interactions
        # (on tiny data, such as a K-shot set, on every item with an interaction)
        t0 = time.perf_counter()
        reliable = _student_items(counts)
        self.student_, self.student_r2_ = train_student(
            emb, teacher, reliable, epochs=cfg.distill_epochs, seed=cfg.seed
        )
        self.distill_seconds_ = time.perf_counter() - t0
        log.debug(  # (a diagnostic: as a CLI note it read as a warning)
            "distilled item factors from text in %.1f s (held-out R^2 %.2f)",
            self.distill_seconds_,
            self.student_r2_,
        )
        # PCA of text embeddings
        mu = emb.mean(axis=0)
        _, _, vt = np.linalg.svd(emb - mu, full_matrices=False)
        self.pca_mean_, self.pca_ = mu.astype(np.float32), vt[: cfg.text_dims].astype(np.float32)
        self.teacher_, self.counts_, self.emb_ = teacher, counts, emb
        self.n_fitted_ = len(emb)
        self.calibration_: tuple[np.ndarray, ...] | None = None
        raw = self._raw_representation()
        self.x_mu_, self.x_sd_ = raw.mean(axis=0), raw.std(axis=0) + 1e-6
        self._set_representation(raw)
        # side info
        self.side_vocab_ = side_vocab(data.user_info) if cfg.side_info else []
        s = len(self.side_vocab_)
        d = self.x_.shape[1]
        beta = cfg.item_item_weight if cfg.item_item else 0.0
        params = HeadParams.plain(d, s, cfg.l2, cfg.alpha, beta)
        self.item_item_ = ItemItem.dense(self._fit_item_item(data)) if cfg.item_item else None
        self.meta_log_: dict[str, float] = {}
        if cfg.meta_learn:
            inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
            groups = inter.groupby("user", sort=True)["item"]
            user_ids = np.array(list(groups.groups.keys()))
            user_items = [g.to_numpy().copy() for _, g in groups]
            onehot = side_onehot(data.user_info.iloc[user_ids], self.side_vocab_, len(user_ids))
            t0 = time.perf_counter()
            params, self.meta_log_ = meta_learn_head(
                self.x_,
                user_items,
                onehot,
                params,
                None if self.item_item_ is None else self.item_item_.base,
                shots=cfg.shots,
                reveal=cfg.reveal,
                steps=cfg.meta_steps,
                batch=cfg.meta_batch,
                lr=cfg.meta_lr,
                rank_item_item=cfg.rank_item_item,
                seed=cfg.seed,
                progress=cfg.progress,
                empty_baseline=np.log1p(counts) if cfg.empty_queries == "auto" else None,
            )
            self.meta_log_["seconds"] = time.perf_counter() - t0
        self.params_ = params
        # (no meta-learning, no learned prior to weigh: popularity, as fewshot-nometa's)
        # ("popularity" without meta-learning had been ignored: ties of a zero prior)
        won = self.meta_log_.get("empty_ndcg_baseline", -1.0) > self.meta_log_.get("empty_ndcg_prior", -1.0)
        self.empty_popularity_ = cfg.empty_queries == "popularity" or (
            cfg.empty_queries == "auto" and (won or not cfg.meta_learn)
        )

    def _fit_item_item(self, data: Dataset) -> np.ndarray:
        """EASE weights; columns of items with < 3 interactions are borrowed from their
        text neighbours (the item-item side of distillation)."""
        from fewrec.models.ease import EASE

        weights = EASE(l2=self.config.item_item_l2).fit(data).weights_
        return text_neighbour_columns(weights, self.emb_, self.counts_ >= 3)

    def _calibrated_student(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """Student outputs rescaled so that, over the items it was trained on, each dimension
        has the teacher's mean and spread. A regression shrinks toward the mean; without this,
        text-only items would sit in the middle of every ranking and never reach a top list.
        The rescaling is computed once, on the fitted catalogue, and reused for new items."""
        if self.calibration_ is None:
            student = apply_student(self.student_, self.emb_)
            # the items the student trained on (on a K-shot set, where few items reach 3, it
            # trained on ~150 and was calibrated on the 2-3 with 3 ratings: a zero spread in a
            # dimension gave every text-only item one value there)
            fit = _student_items(self.counts_)
            s_mu, s_sd = student[fit].mean(axis=0), student[fit].std(axis=0) + 1e-6
            t_mu, t_sd = self.teacher_[fit].mean(axis=0), self.teacher_[fit].std(axis=0)
            self.calibration_ = (s_mu, s_sd, t_mu, t_sd)
        s_mu, s_sd, t_mu, t_sd = self.calibration_
        student = apply_student(self.student_, self.emb_[rows])
        return (student - s_mu) / s_sd * t_sd + t_mu

    def _raw_representation(self, rows: slice | np.ndarray = slice(None)) -> np.ndarray:
        """[blended factors and log-pop, PCA text] of items ``rows``, before standardisation."""
        student = self._calibrated_student(rows)
        counts = self.counts_[rows]
        share = (counts / (counts + self.config.blend_count + 1e-9))[:, None]
        cf = share * self.teacher_[rows] + (1.0 - share) * student
        text = (self.emb_[rows] - self.pca_mean_) @ self.pca_.T
        return np.c_[cf, text].astype(np.float64)

    def _standardise(self, raw: np.ndarray) -> np.ndarray:
        x = (raw - self.x_mu_) / self.x_sd_
        return np.c_[x, np.ones(len(x))].astype(np.float32)

    def _set_representation(self, raw: np.ndarray) -> None:
        """x = standardised raw representation + a constant column; the Gram matrix of the
        fitted catalogue's rows (the heads' weak negatives, which the meta-learned prior and step
        were learned with: items added later left it, and reordered every user's list)."""
        self.x_ = self._standardise(raw)
        fitted = self.x_[: self.n_fitted_].astype(np.float64)
        self.gram_ = fitted.T @ fitted

    # ------------------------------------------------------------------ score
    def prior_means(self, batch: QueryBatch) -> np.ndarray:
        """Per query prior mean: the global mean plus the learned side-info offset."""
        p = self.params_
        prior = np.repeat(p.mean[None, :].astype(np.float64), len(batch), axis=0)
        if self.side_vocab_ and batch.user_info is not None:
            prior += side_onehot(batch.user_info, self.side_vocab_, len(batch)) @ p.side
        return prior

    def text_scores(self, batch: QueryBatch, scores: np.ndarray) -> np.ndarray:
        """Add the free-text match: cosine of the user's text to each item's text, standardised
        and scaled to each row's score spread, times ``text_weight``."""
        if batch.texts is None or self.config.text_weight == 0:
            return scores
        t = embed_texts(batch.texts, self.config, self.emb_.shape[1], self.negation_titles())
        norms = np.linalg.norm(t, axis=1)
        for q, text in enumerate(batch.texts):
            if text is None or norms[q] == 0:
                continue
            z = self._text_match(text, t[q])
            spread = scores[q].std() if scores[q].std() > 0 else 1.0
            scores[q] = scores[q] + self.config.text_weight * spread * z
        return scores

    def text_match(self, batch: QueryBatch) -> np.ndarray | None:
        if not self.reads_text:
            return None
        out = np.zeros((len(batch), len(self.emb_)), dtype=np.float32)
        if batch.texts is not None:
            t = embed_texts(batch.texts, self.config, self.emb_.shape[1], self.negation_titles())
            norms = np.linalg.norm(t, axis=1)
            for q, text in enumerate(batch.texts):
                if text is not None and norms[q] > 0:
                    out[q] = self._text_match(text, t[q])
        return out

    def _text_match(self, text: str, vector: np.ndarray) -> np.ndarray:
        """Standardised cosine of ``text`` to every item, memoised per text (a pass over every
        item's embedding is the costliest step of a text query on a large catalogue, and the
        explanation pass repeats it)."""
        emb = self.emb_
        cache = self.__dict__.get("text_cache_")
        if cache is None or cache.emb is not emb:
            cache = self.text_cache_ = _TextCache(emb)
        z = cache.get(text)
        if z is None:
            cos = emb @ vector
            z = cache.put(text, ((cos - cos.mean()) / (cos.std() + 1e-9)).astype(np.float32))
        return z

    def heads(self, batch: QueryBatch, return_cov: bool = False):
        """Adapted user heads (and posterior covariances) for a batch of queries."""
        h = batch.history
        items = [h.indices[h.indptr[i] : h.indptr[i + 1]] for i in range(len(batch))]
        return adapt_heads(
            self.x_, self.gram_, items, self.prior_means(batch), self.params_, return_cov=return_cov
        )

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        scores = self.heads(batch) @ self.x_.T
        if self.item_item_ is not None and self.params_.beta != 0.0:
            h = batch.implicit_history()
            scores = scores + self.params_.beta * self.item_item_.apply(h)
        if self.empty_popularity_:  # (fewshot-nometa, whose prior is zero, too)
            scores = self._empty_by_popularity(scores, batch)
        return self.text_scores(batch, scores).astype(np.float32)

    def _empty_by_popularity(self, scores: np.ndarray, batch: QueryBatch) -> np.ndarray:
        """Queries with no history, no text and no known user ranked by popularity, on the
        scale of the prior's scores (their mean and spread): an exploration policy adds the
        head's uncertainty to them, in the head's units."""
        empty = self.empty_rows(batch)
        if empty.any():
            pop = self.fitted.popularity.astype(np.float64)
            z = (pop - pop.mean()) / (pop.std() + 1e-12)
            rows = scores[empty]
            spread = rows.std(axis=1, keepdims=True)  # (a prior of zeros: popularity's own spread)
            scores[empty] = rows.mean(axis=1, keepdims=True) + np.where(spread > 0, spread, 1.0) * z
        return scores

    # ------------------------------------------------------------------ new items
    def _add_items(self, start: int, info: pd.DataFrame) -> None:
        """Text-only items: embed, distil factors, borrow item-item columns from text
        neighbours; the user heads and the prior stay as they are."""

        new_emb = encode_item_texts(self.texts_of(info), self.config)
        n_new = len(new_emb)
        self.text_cache_ = None  # a new instance: the served copy keeps its own
        self.emb_ = np.concatenate([self.emb_, np.asarray(new_emb, dtype=self.emb_.dtype)])
        self.counts_ = np.r_[self.counts_, np.zeros(n_new, np.float32)]
        self.teacher_ = np.r_[self.teacher_, np.zeros((n_new, self.teacher_.shape[1]), np.float32)]
        if self.item_item_ is not None:
            self.item_item_ = self.item_item_.extend(
                *self._added_item_neighbours(np.arange(start, start + n_new), self.item_item_.base.shape[0])
            )
        # only the new rows of x are computed; the Gram matrix stays the fitted catalogue's
        x_new = self._standardise(self._raw_representation(slice(start, None)))
        self.x_ = np.r_[self.x_, x_new]

    def _update_items(self, idx: np.ndarray, info: pd.DataFrame) -> None:
        """Changed text: re-embed, recompute the items' representation rows (their teacher
        factors, learned from interactions, stay) and the item-item columns borrowed from text
        neighbours (added items, and fitted ones with < 3 interactions)."""

        emb = self.emb_.copy()  # copy-on-write: the served model keeps its arrays
        emb[idx] = encode_item_texts(self.texts_of(info), self.config)
        self.emb_ = emb
        self.text_cache_ = None
        x_new = self._standardise(self._raw_representation(idx))
        x = self.x_.copy()
        fitted = idx < self.n_fitted_  # (rows of the Gram matrix)
        old = x[idx[fitted]].astype(np.float64)
        x[idx] = x_new
        self.x_ = x
        new = x_new[fitted].astype(np.float64)
        self.gram_ = self.gram_ - old.T @ old + new.T @ new
        if self.item_item_ is not None:
            n0 = self.item_item_.base.shape[0]
            known = self._neighbour_pool(n0)
            # fitted items with < 3 interactions have their text neighbours' columns (the fit's
            # `text_neighbour_columns`): their new text has other neighbours
            borrowed = idx[(idx < n0) & ~known[idx]]
            if len(borrowed) and known.any():
                self.item_item_ = self.item_item_.with_columns(
                    borrowed, *text_neighbours(self.emb_, borrowed, known)
                )
            added = idx[idx >= n0]
            if len(added):
                self.item_item_ = self.item_item_.replace(added - n0, *self._added_item_neighbours(added, n0))

    def _neighbour_pool(self, n0: int) -> np.ndarray:
        """The items whose item-item columns others borrow: the fitted ones (the first ``n0``)
        with >= 3 interactions."""
        return np.r_[self.counts_[:n0] >= 3, np.zeros(len(self.counts_) - n0, bool)]

    def _added_item_neighbours(self, items: np.ndarray, n0: int) -> tuple[np.ndarray, np.ndarray]:
        """Item-item mix of items added after fitting (the item-item term was fitted on the first
        ``n0``): their text neighbours among `_neighbour_pool` (none at all: zero weights, no
        item-item term)."""
        known = self._neighbour_pool(n0)
        if not known.any():
            return np.zeros((len(items), 1), np.int64), np.zeros((len(items), 1))
        return text_neighbours(self.emb_, items, known)

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {
            "emb": self.emb_,
            "teacher": self.teacher_,
            "counts": self.counts_,
            "pca_mean": self.pca_mean_,
            "pca": self.pca_,
            "x_mu": self.x_mu_,
            "x_sd": self.x_sd_,
            "side_cols": np.array([c for c, _ in self.side_vocab_], dtype=str),
            "side_levels": np.array([v for _, v in self.side_vocab_], dtype=str),
            "n_fitted": np.array(self.n_fitted_),
            "empty_popularity": np.array(self.empty_popularity_),
        }
        if self.item_item_ is not None:
            out.update(self.item_item_.as_arrays())
        out.update({f"student.{k}": v for k, v in self.student_.items()})
        out.update({f"head.{k}": v for k, v in self.params_.as_arrays().items()})
        if self.calibration_ is not None:  # fit-time: recomputed on load, it moved with update_items
            out.update(zip(CALIBRATION, self.calibration_, strict=True))
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        check_saved_width(arrays["emb"], self.config)
        self.emb_, self.teacher_, self.counts_ = arrays["emb"], arrays["teacher"], arrays["counts"]
        # (a model saved before it was kept: its added items' rows stay in the Gram matrix)
        self.n_fitted_ = int(arrays["n_fitted"]) if "n_fitted" in arrays else len(self.emb_)
        # (a model saved before 2026-12-07 (night) ranked every empty query by its prior)
        self.empty_popularity_ = bool(arrays["empty_popularity"]) if "empty_popularity" in arrays else False
        self.pca_mean_, self.pca_ = arrays["pca_mean"], arrays["pca"]
        self.item_item_ = ItemItem.from_arrays(arrays)
        self.x_mu_, self.x_sd_ = arrays["x_mu"], arrays["x_sd"]
        self.side_vocab_ = list(
            zip(arrays["side_cols"].tolist(), arrays["side_levels"].tolist(), strict=True)
        )
        self.student_ = {k[8:]: v for k, v in arrays.items() if k.startswith("student.")}
        self.params_ = HeadParams.from_arrays({k[5:]: v for k, v in arrays.items() if k.startswith("head.")})
        saved = [arrays[k] for k in CALIBRATION if k in arrays]
        self.calibration_ = tuple(saved) if len(saved) == len(CALIBRATION) else None
        self.text_cache_ = None
        self._set_representation(self._raw_representation())


CALIBRATION = ("calibration.s_mu", "calibration.s_sd", "calibration.t_mu", "calibration.t_sd")
"""Saved names of the student's calibration (`FewShotRecommender._calibrated_student`)."""


@register
class FewShotNoMeta(FewShotRecommender):
    """`fewshot` without meta-learning: a plain ridge prior of zero (the ablation), so side
    info goes unread and an empty query is ranked by popularity."""

    name = "fewshot-nometa"
    # an empty query (no items, text or known user) meets a prior of zeros, which scores every
    # item 0: `recommend` broke the ties by popularity while the benchmark counted them at
    # random (K0 NDCG@10 0.057, as `random`), two behaviours of one model
    empty_is_popularity = True

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        scores = super().score_batch(batch)
        alike = np.ptp(scores, axis=1) == 0  # (text, where given, tells items apart)
        return self.fill_empty_with_popularity(scores, batch, rows=alike)

    def __init__(self, config: FewShotConfig | None = None, **overrides):
        # (only a meta_learn asked for: a FewShotConfig's default is True)
        asked = config is not None and "meta_learn" in config.model_fields_set and config.meta_learn
        if overrides.get("meta_learn") or (asked and "meta_learn" not in overrides):
            # (it made a meta-learned model under the ablation's name)
            raise ConfigError(
                with_fix(
                    "fewshot-nometa is few-shot without meta-learning: meta_learn=True makes it fewshot",
                    "use fewshot for the meta-learned model",
                )
            )
        overrides["meta_learn"] = False
        super().__init__(config, **overrides)
