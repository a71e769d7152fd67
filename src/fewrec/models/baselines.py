"""Simple reference recommenders: random and popularity."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from fewrec.data.dataset import MISSING_LEVEL, Dataset, field_levels, side_info_levels
from fewrec.errors import ConfigError, one_name_as_tuple, with_fix
from fewrec.models.base import ModelConfig, Recommender, query_seed, register
from fewrec.models.query import QueryBatch


@register
class RandomRecommender(Recommender):
    """Uniform random scores: the floor every model must beat.

    Scores are seeded per query (from its history), so a query scores the same alone or in a
    batch. It can rank items never seen in training (at random).
    """

    name = "random"
    reads_item_text = False  # ID-only
    fixed_reason = "Picked at random (a baseline)."
    scores_new_items = True

    def _fit(self, data: Dataset) -> None:
        pass

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        out = np.empty((len(batch), self.n_items), dtype=np.float32)
        for i in range(len(batch)):
            rng = np.random.default_rng(query_seed(self.config.seed, batch.history, i))
            out[i] = rng.random(self.n_items)
        return out


class PopularityConfig(ModelConfig):
    min_rating: float | None = None
    """Count only interactions with at least this rating (None: all)."""
    segment_by: tuple[str, ...] | Literal["auto"] = ()
    """User side-info columns (e.g. age, gender, occupation): popularity among similar users;
    "auto": every side-info column the data has."""
    segment_prior: float = Field(50.0, ge=0)
    """Pseudo-users of global popularity mixed into each segment's counts."""

    _one_field = field_validator("segment_by", mode="before")(one_name_as_tuple)


@register
class PopularityRecommender(Recommender):
    """Items ranked by how many users interacted with them in training.

    With ``segment_by``, a query that carries side info gets the popularity among training
    users who share each field (numbers by decade, codes as themselves), smoothed toward the
    global popularity and averaged over the fields in log space.
    """

    name = "popularity"
    reads_item_text = False  # ID-only
    Config = PopularityConfig
    config: PopularityConfig

    def _fit(self, data: Dataset) -> None:
        inter = data.interactions
        if self.config.min_rating is not None:
            inter = inter[inter["rating"] >= self.config.min_rating]
            if not len(inter) and len(data.interactions):  # (an empty model, without a word)
                lo, hi = data.rating_range
                raise ConfigError(
                    with_fix(
                        f"popularity min_rating={self.config.min_rating:g} keeps no interaction: the "
                        f"ratings run from {lo:g} to {hi:g}",
                        f"give a min_rating of {hi:g} or less, or none",
                    )
                )
        n = data.n_items
        self.counts_ = np.bincount(inter["item"].to_numpy(), minlength=n).astype(np.float32)
        self.seg_keys_: list[tuple[str, str]] = []
        rows, sizes = [], []
        users = inter["user"].to_numpy()
        # only users with training interactions: held-out users' side info must not move it
        trained = np.bincount(users, minlength=data.n_users)[: data.n_users] > 0
        seg_cols = self.config.segment_by
        self.seg_cols_ = list(data.user_info.columns) if seg_cols == "auto" else list(seg_cols)
        for col in self.seg_cols_:
            if col not in data.user_info.columns:
                fields = list(data.user_info.columns)
                raise ConfigError(
                    with_fix(
                        f"popularity segment_by names {col!r}, not a user field ({fields})",
                        f"segment by one of {fields}"
                        if fields
                        else "give the data a user table: load_interactions(..., users=table) (CLI: --users)",
                    )
                )
            values = side_info_levels(data.user_info[col])
            per_inter = values[users]
            for level in sorted(set(values[trained]) - {MISSING_LEVEL}):
                mask = per_inter == level
                rows.append(np.bincount(inter["item"].to_numpy()[mask], minlength=n))
                sizes.append(float((values[trained] == level).sum()))
                self.seg_keys_.append((col, level))
        self.seg_counts_ = np.asarray(rows, np.float32).reshape(len(rows), n)
        self.seg_sizes_ = np.asarray(sizes, np.float32)
        self.n_users_ = float(trained.sum())

    def _fit_notes(self, data: Dataset) -> list[str]:
        notes = super()._fit_notes(data)
        if self.config.segment_by == "auto" and not self.seg_cols_:  # (it said nothing)
            notes.append(
                "popularity segment_by='auto' found no user fields (the data has no user table), so "
                "it is plain popularity; give load_interactions(..., users=table) to segment it"
            )
        return notes

    @property
    def side_levels(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.seg_keys_)

    def _global(self) -> np.ndarray:
        return np.where(self.counts_ > 0, np.log1p(self.counts_), -np.inf).astype(np.float32)

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        base = self._global()
        out = np.repeat(base[None, :], len(batch), axis=0)
        if not self.seg_keys_ or batch.user_info is None:
            return out
        index = {key: j for j, key in enumerate(self.seg_keys_)}
        share = self.counts_ / max(self.n_users_, 1.0)
        m = self.config.segment_prior
        known = field_levels(self.seg_keys_)
        levels = {
            col: side_info_levels(batch.user_info[col], known.get(col, ()))
            for col in self.seg_cols_
            if col in batch.user_info.columns
        }
        # the segments each query belongs to; queries with the same segments share one row
        groups: dict[tuple[int, ...], list[int]] = {}
        for q in range(len(batch)):
            segs = tuple(j for col, vals in levels.items() if (j := index.get((col, vals[q]))) is not None)
            if segs:
                groups.setdefault(segs, []).append(q)
        for segs, queries in groups.items():
            logs = [
                np.log1p((self.seg_counts_[j] + m * share) / (self.seg_sizes_[j] + m) * self.n_users_)
                for j in segs
            ]
            out[queries] = np.where(self.counts_ > 0, np.mean(logs, axis=0), -np.inf)
        return out

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "counts": self.counts_,
            "seg_counts": self.seg_counts_,
            "seg_sizes": self.seg_sizes_,
            "seg_cols": np.array([c for c, _ in self.seg_keys_], dtype=str),
            "seg_levels": np.array([v for _, v in self.seg_keys_], dtype=str),
            "n_users": np.array(self.n_users_),
        }

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.counts_ = arrays["counts"]
        self.seg_counts_ = arrays["seg_counts"]
        self.seg_sizes_ = arrays["seg_sizes"]
        cols, levels = arrays["seg_cols"].tolist(), arrays["seg_levels"].tolist()
        self.seg_keys_ = list(zip(cols, levels, strict=True))
        self.seg_cols_ = list(dict.fromkeys(cols))
        self.n_users_ = float(arrays["n_users"])


@register
class LikeShare(Recommender):
    """The trivial rule of the TALLRec protocol: the share of liked items in the history.

    It ignores the target item, so it only makes sense for "will this user like X?" (AUC), not
    for ranking. A history rating counts as liked when it is above 60% of the highest training
    rating: above 3 on a 1-5 scale (MovieLens' "like"), 1.0 liked / 0.0 not on TALLRec data.
    """

    name = "like-share"
    reads_item_text = False  # ID-only
    fixed_reason = "A baseline that scores every item alike: the share of your history you liked."
    reads_ratings = True
    scores_new_items = True

    def _fit(self, data: Dataset) -> None:
        pass

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        h = batch.history
        like = self.fitted.like_cut()
        share = np.zeros(len(batch), dtype=np.float32)
        for i in range(len(batch)):
            r = h.data[h.indptr[i] : h.indptr[i + 1]]
            share[i] = np.mean(r > like) if len(r) else 0.5
        return np.repeat(share[:, None], self.n_items, axis=1)
