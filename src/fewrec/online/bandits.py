"""Exploration policies for new users: Thompson sampling and UCB over the few-shot model's
posterior, with greedy and random policies to compare against.

A model "has a posterior" when it exposes ``heads(batch, return_cov=True)`` (posterior means
and covariances of linear user heads) and the item representations ``x_`` those heads score
(`fewrec.models.fewshot.FewShotRecommender`). The mean score of every item is the model's own
``score_batch`` (so any non-linear part, such as the few-shot model's item-item term, stays in
the mean); the uncertainty is that of the head:

* Thompson sampling draws ``w ~ N(mean, scale^2 * cov)`` and ranks by
  ``mean_score + (w - mean) . x_i``.
* UCB ranks by ``mean_score + c * sqrt(x_i^T cov x_i)``.

``scale`` and ``c`` are exploration temperatures: the head's covariance comes from a model fit
with implicit zeros on every item, so it is tight, and the replay simulation
(`fewrec.online.replay`) picks them on validation users.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from fewrec.errors import ArgumentError, ConfigError, is_whole_number, not_whole
from fewrec.models.base import Recommender
from fewrec.models.query import Query, QueryBatch, _check_queries
from fewrec.topk import top_k_by, top_k_rows

POLICIES = ("greedy", "random", "thompson", "ucb")


def has_posterior(model: Recommender) -> bool:
    """Whether ``model`` exposes posterior heads and item representations."""
    return callable(getattr(model, "heads", None)) and getattr(model, "x_", None) is not None


@dataclass
class Posterior:
    """The linear part of a model's user posterior for a batch of queries.

    Attributes:
        heads: posterior means (n_queries x d).
        chol: Cholesky factors of the posterior covariances (n_queries x d x d).
        x: item representations (n_items x d).
    """

    heads: np.ndarray
    chol: np.ndarray
    x: np.ndarray

    def spread(self, directions: np.ndarray) -> np.ndarray:
        """Score offsets ``directions @ x.T`` (n_queries x n_items), in float32 for speed."""
        return np.asarray(directions, dtype=np.float32) @ self.x.T


MAX_WIDTH = 1000.0
"""Largest exploration width: posterior standard deviations beyond it only overflow scores."""


def _setting(name: str, value: Any) -> float:
    """A policy's width setting: a finite number from 0 to `MAX_WIDTH`."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not np.isfinite(value):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    if not 0 <= value <= MAX_WIDTH:
        raise ConfigError(f"{name} must be between 0 and {MAX_WIDTH:g}, got {value}")
    return float(value)


def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator | np.random.RandomState):
        raise ArgumentError(
            f"a policy needs a numpy Generator for its randomness, got {rng!r}",
            fix="np.random.default_rng(seed)",
        )


def posterior(model: Recommender, batch: QueryBatch) -> Posterior:
    """The head posterior of ``batch`` under ``model`` (see `has_posterior`)."""
    model.fitted  # noqa: B018 (not fitted: the clear error)
    if not has_posterior(model):
        raise ConfigError(
            f"model {model.name!r} has no posterior to explore with. "
            "Fix: use a few-shot model (fewshot, fewshot-nometa), or the greedy or random policy."
        )
    batch = batch.for_model(model)  # a dislike in the history is no like (`QueryBatch.for_model`)
    heads, covs = model.heads(batch, return_cov=True)  # type: ignore[attr-defined]
    covs = np.asarray(covs, dtype=np.float64)
    covs = 0.5 * (covs + np.swapaxes(covs, 1, 2))
    d = covs.shape[-1]
    chol = np.linalg.cholesky(covs + 1e-12 * np.eye(d)[None])
    x = np.asarray(model.x_, dtype=np.float32)  # type: ignore[attr-defined]
    return Posterior(np.asarray(heads, np.float64), chol, x)


class Policy(ABC):
    """Turns a model and a batch of queries into ranking scores (n_queries x n_items)."""

    name: ClassVar[str]
    #: Whether its scores ignore the random generator (a replay over several seeds runs it once).
    deterministic: ClassVar[bool] = False

    @abstractmethod
    def scores(
        self,
        model: Recommender,
        batch: QueryBatch,
        rng: np.random.Generator,
        mean: np.ndarray | None = None,
    ) -> np.ndarray:
        """Ranking scores; ``mean`` is ``model.score_batch(batch)`` when the caller has it."""

    def describe(self) -> dict[str, Any]:
        """Name and settings (for reports)."""
        return {"policy": self.name}


def _mean(model: Recommender, batch: QueryBatch, mean: np.ndarray | None) -> np.ndarray:
    if mean is None:
        model.fitted  # noqa: B018 (not fitted: the clear error, not a missing attribute)
    # a model that does not read ratings took a dislike in the history for a like
    out = model.score_batch(batch.for_model(model)) if mean is None else mean
    return np.asarray(out, dtype=np.float64).reshape(len(batch), -1)


class Greedy(Policy):
    """Exploit only: the model's mean scores."""

    name = "greedy"
    deterministic = True

    def scores(self, model, batch, rng, mean=None):
        return _mean(model, batch, mean)


class RandomPolicy(Policy):
    """Uniformly random rankings (the floor)."""

    name = "random"

    def scores(self, model, batch, rng, mean=None):
        _check_rng(rng)
        return rng.random((len(batch), model.n_items))


class Thompson(Policy):
    """Thompson sampling: one posterior draw of the head per query.

    Args:
        scale: multiplies the posterior standard deviation (1 = the model's own posterior).
    """

    name = "thompson"

    def __init__(self, scale: float = 1.0):
        self.scale = _setting("thompson scale", scale)

    def scores(self, model, batch, rng, mean=None):
        _check_rng(rng)
        base = _mean(model, batch, mean)
        if self.scale == 0:
            return base
        post = posterior(model, batch)
        z = rng.standard_normal(post.heads.shape)
        delta = self.scale * np.einsum("qde,qe->qd", post.chol, z)
        return base + post.spread(delta)

    def describe(self):
        return {"policy": self.name, "scale": self.scale}


class UCB(Policy):
    """Upper confidence bound: mean score plus ``c`` posterior standard deviations.

    Args:
        c: width multiplier.
    """

    name = "ucb"
    deterministic = True

    def __init__(self, c: float = 1.0):
        self.c = _setting("ucb c", c)

    def scores(self, model, batch, rng, mean=None):
        base = _mean(model, batch, mean)
        if self.c == 0:
            return base
        post = posterior(model, batch)
        width = np.empty_like(base)
        for q in range(len(batch)):
            xl = post.spread(post.chol[q].T)  # row i of xl.T is L^T x_i; x_i^T cov x_i = |L^T x_i|^2
            width[q] = np.sqrt(np.einsum("di,di->i", xl, xl))
        return base + self.c * width

    def describe(self):
        return {"policy": self.name, "c": self.c}


def make_policy(name: str, **settings: float) -> Policy:
    """A policy by name: greedy, random, thompson (``scale``) or ucb (``c``)."""
    takes = {"greedy": (), "random": (), "thompson": ("scale",), "ucb": ("c",)}
    if not isinstance(name, str) or name not in takes:
        raise ConfigError(f"unknown policy {name!r}; choose from {POLICIES}")
    stray = sorted(set(settings) - set(takes[name]))
    if stray:  # a setting of another policy was ignored, or a raw TypeError
        raise ArgumentError(
            f"the {name} policy takes {', '.join(takes[name]) or 'no settings'}, not {', '.join(stray)}",
            fix="make_policy('thompson', scale=2) or make_policy('ucb', c=4)",
        )
    return {"greedy": Greedy, "random": RandomPolicy, "thompson": Thompson, "ucb": UCB}[name](**settings)


def select(scores: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best allowed items per row (n_queries x k; -1 where fewer are allowed).

    Args:
        scores: (n_queries x n_items) ranking scores.
        allowed: boolean mask of the same shape.
        k: items per query.
    """
    if not is_whole_number(k):
        raise ArgumentError(not_whole("k", k), fix="k=10")
    if k < 1:
        raise ArgumentError(f"k must be >= 1, got {k!r}", fix="k=10")
    if np.ndim(scores) != 2:  # (one query's 1-D scores: an IndexError deep in top_k_rows)
        raise ArgumentError(
            f"scores must be a 2-D array (queries x items), got shape {np.shape(scores)}",
            fix="one query's scores as a row: scores[None, :]",
        )
    if np.shape(allowed) != np.shape(scores):
        raise ArgumentError(
            f"allowed has shape {np.shape(allowed)}, scores {np.shape(scores)}: give one mask entry per score"
        )
    masked = np.where(allowed, scores, -np.inf)
    if np.isnan(masked).any():  # NaN ranks nowhere: the rows would silently come back empty
        raise ArgumentError(
            "scores hold NaN; a policy's scores must be numbers (or -inf to leave an item out)"
        )
    k = min(k, masked.shape[1])
    top = top_k_rows(masked, k)
    # -inf is left out; +inf is the best there is (it came back as -1)
    return np.where(np.take_along_axis(masked, top, axis=1) > -np.inf, top, -1)


def explore(
    model: Recommender,
    query: Query,
    k: int = 10,
    policy: Policy | str = "ucb",
    *,
    seed: int | None = None,
    **settings: float,
) -> pd.DataFrame:
    """Top-``k`` for one query with exploration, as the service serves it under the same policy:
    the policy's scores over the items the query may get (not seen, not disliked, not a copy of
    one, not a film its text names as known: greedy gives `recommend`'s list), ties to the more
    popular item. A ``seed`` makes the draw repeat; the service also mixes the user or session
    into it, so that each gets their own draw, where here one seed gives every query the same.

    Returns the columns ``item``, ``score`` (the policy's) and ``explored``: True where the
    exploration, not the model's best guess, put the item in the list. ``policy`` is a `Policy`
    or a name with its settings (``explore(model, q, policy="thompson", scale=0.25, seed=0)``, the
    service's default since 2026-12-07; this function's default stays UCB at c = 1).
    """
    if isinstance(policy, str):
        policy = make_policy(policy, **settings)
    elif settings:
        raise ArgumentError(
            f"settings {sorted(settings)} are for a policy given by name",
            fix="explore(model, query, policy='ucb', c=2)",
        )
    if not isinstance(policy, Policy):
        raise ArgumentError(f"policy must be a Policy or a name of {POLICIES}, got {policy!r}")
    if not is_whole_number(k):
        raise ArgumentError(not_whole("k", k), fix="k=10")
    if k < 1:
        raise ArgumentError(f"k must be >= 1, got {k!r}", fix="k=10")
    if seed is not None and (not is_whole_number(seed) or seed < 0):  # (numpy's own errors)
        raise ArgumentError(f"seed must be a whole number >= 0, or None, got {seed!r}", fix="seed=0")
    # checked and warned of as `recommend` does (a dict was an AttributeError; text or side info
    # the model does not read went without a word)
    (query,) = _check_queries([query])
    model._warn_ignored([query])
    full = model.batch_from_queries([query])
    batch = full.for_model(model)
    mean = np.asarray(model._scores(batch), dtype=np.float64)
    scores = policy.scores(model, batch, np.random.default_rng(None if seed is None else int(seed)), mean)[0]
    allowed = np.ones(model.n_items, dtype=bool)
    allowed[left_out(model, full, query.text)] = False
    top, explored = explored_top(scores, mean[0], allowed, int(k), model.fitted.popularity)
    items = model.fitted.items.to_external(top)
    return pd.DataFrame(  # (typed: an empty list's columns were float64)
        {
            "item": pd.Series(items, dtype="str"),
            "score": pd.Series(scores[top], dtype=np.float64),
            "explored": pd.Series(explored, dtype=bool),
        }
    )


def left_out(
    model: Recommender,
    full: QueryBatch,
    text: str | None,
    *,
    seen: bool = True,
    more: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """The item indices one query (``full``, a batch of it with its dislikes) may not get, as
    `recommend` leaves them out: with ``seen``, its history and the films its ``text`` names as
    known ones; its dislikes (a known user's low ratings a --min-rating fit left out); ``more``;
    and the catalogue's copies of each. `explore` and the service's lists share it."""
    parts = [*more, np.zeros(0, np.int64)]
    if seen:  # (the history holds the dislikes too)
        parts += [full.history.indices, np.asarray(model.referenced_items(text), dtype=np.int64)]
    if full.disliked is not None:
        parts.append(full.disliked.indices)
    out = np.unique(np.concatenate(parts)).astype(np.int64)
    twins = model._per_catalogue("twins_", model._twins)
    if twins is not None and len(out):  # a film's copy in the catalogue too
        out = np.union1d(out, twins[out].indices)
    return out


def explored_top(
    scores: np.ndarray, mean: np.ndarray, allowed: np.ndarray, k: int, prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best ``allowed`` items by a policy's ``scores`` (one query's; ties to the higher
    ``prior``, e.g. popularity; unscored items left out), and for each whether exploration put
    it there: it is not among the ``k`` best by the model's ``mean`` (`explore`, the service)."""
    ranked = np.where(allowed, scores, -np.inf)
    top = top_k_by(ranked, k, prior)
    top = top[ranked[top] > -np.inf]  # (NaN counts as -inf; +inf, the best, was left out)
    return top, ~np.isin(top, top_k_by(np.where(allowed, mean, -np.inf), k, prior))
