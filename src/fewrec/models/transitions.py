"""Session transitions: which items users go on to rate in the session after an item's.

A user's interactions are cut into sessions (interactions at most ``gap`` seconds after the one
before; with ``gap`` = 0, those sharing a timestamp, as a page of ratings submitted at once
does). The model counts, over the training users, how often item j is in one of the ``hops``
sessions that follow a session holding item i (the h-th next weighted ``decay ** (h - 1)``),
normalises the counts by sqrt(n_i n_j) (n: the sessions holding each item) and scores a query
by summing the rows of the items it reveals: a first-order Markov chain between sessions
(Rendle et al., WWW 2010, FPMC's sequential part) over item sets.

Item-item models of co-occurrence (item-kNN, EASE) ask which items share a user; this one asks
which come *next*, which is what a new user's first interactions are followed by. On ML-100K's
cold-user earliest reveal (validation users of split seeds 0-2, K = 5, NDCG@10), kshot-ridge
alone scores 0.5528; adding this model's z-scores with weight 0.15 gives 0.5647 (each seed up),
while it scores 0.30 on its own (`benchmarks/cold_user_probes.md`). Queries carry no times, so a
query's revealed items all count alike; scoring from the last revealed session alone did a
little better there (0.5670 with weight 0.2) but needs the revealed interactions' times.
As a component of the ensemble it lifted those validation users (re-ranked, earliest 0.5610 ->
0.5664, random 0.7000 -> 0.7024) but not the test users of ten earliest-reveal split seeds
(+0.0001 [-0.004, +0.004]; the blend alone +0.003), so it is not a default component.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from fewrec.data.dataset import Dataset
from fewrec.errors import ConfigError, user_stacklevel
from fewrec.models.base import ModelConfig, register
from fewrec.models.knn import ItemItemModel


class TransitionsConfig(ModelConfig):
    hops: int = Field(1, ge=1, le=50)
    """How many following sessions count as "next" (1: only the session right after)."""
    decay: float = Field(0.7, gt=0, le=1)
    """Weight of the h-th following session: decay ** (h - 1)."""
    gap: float = Field(0.0, ge=0)
    """Seconds between a user's consecutive interactions that still keep them in one session
    (0: only equal timestamps; data without times gives one session per interaction)."""


MAX_PAIRS = 3e8
"""Most (session item, next-session item) pairs counted per hop: each takes ~16 bytes while the
counts are summed, so this bounds memory to a few GB."""


def sessions(interactions: pd.DataFrame, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Session id per interaction (numbered in time order within users) and the user of each
    session; ``interactions`` must be sorted by user, then time."""
    users = interactions["user"].to_numpy()
    ts = interactions["timestamp"].to_numpy().astype(np.float64)
    new = np.ones(len(users), dtype=bool)
    if len(users) > 1:
        new[1:] = (users[1:] != users[:-1]) | (np.diff(ts) > gap)
    sid = np.cumsum(new) - 1
    return sid, users[new]


def transition_matrix(
    interactions: pd.DataFrame, n_items: int, hops: int, decay: float, gap: float
) -> sp.csr_matrix:
    """Counts of item i's session being followed (within ``hops`` sessions) by one with item j,
    each normalised by sqrt(n_i n_j) (n: the sessions holding each item), as an (n_items x
    n_items) CSR with an empty diagonal."""
    inter = interactions.sort_values(["user", "timestamp"], kind="stable")
    sid, owner = sessions(inter, gap)
    n_sess = len(owner)
    g = sp.csr_matrix(
        (np.ones(len(sid), dtype=np.float64), (sid, inter["item"].to_numpy())), shape=(n_sess, n_items)
    )
    g.data[:] = 1.0  # an item twice in one session counts once
    sizes = np.diff(g.indptr).astype(np.float64)  # products of int32 sizes could overflow
    total = sp.csr_matrix((n_items, n_items), dtype=np.float64)
    for h in range(1, hops + 1):
        src = np.arange(n_sess - h)
        same = owner[src] == owner[src + h]
        if not same.any():
            break
        src = src[same]
        pairs = float(np.sum(sizes[src] * sizes[src + h]))
        if pairs > MAX_PAIRS:
            raise ConfigError(
                f"transitions would count {pairs:.2g} item pairs between sessions {h} apart (at most "
                f"{MAX_PAIRS:.0g}): the sessions are too long. Fix: a smaller gap (now {gap:g} s) or "
                "hops, or timestamps finer than whole days."
            )
        step = sp.csr_matrix((np.ones(len(src)), (src, src + h)), shape=(n_sess, n_sess))
        total = total + decay ** (h - 1) * (g.T @ step @ g)
    n = np.asarray(g.sum(axis=0)).ravel()
    inv = 1.0 / np.sqrt(np.maximum(n, 1.0))
    total = (sp.diags(inv) @ total @ sp.diags(inv)).tocoo()
    off = total.row != total.col  # an item repeated in the next session is no transition
    return sp.csr_matrix(
        (total.data[off].astype(np.float32), (total.row[off], total.col[off])), shape=(n_items, n_items)
    )


@register
class Transitions(ItemItemModel):
    """score(u, j) = sum over revealed items i of T(i, j), T (``sim_``) the normalised count of j
    in the rating sessions that follow a session with i: what users go on to rate next."""

    name = "transitions"
    Config = TransitionsConfig
    config: TransitionsConfig

    def _fit(self, data: Dataset) -> None:
        c = self.config
        self.sim_ = transition_matrix(data.interactions, data.n_items, c.hops, c.decay, c.gap)
        self.trained_ = data.item_counts() > 0
        if not self.sim_.nnz:  # (every score 0, without a word)
            same = data.interactions["timestamp"].nunique() <= 1
            warnings.warn(
                "transitions learned nothing: no user has a session after another (a session is "
                f"their interactions at most {c.gap:g} s apart"
                + (", and the data's times are all the same" if same else "")
                + "), so every score is 0. Fix: give the interactions their real times"
                + (", or a smaller gap" if c.gap > 0 else ""),
                UserWarning,
                stacklevel=user_stacklevel(),
            )
