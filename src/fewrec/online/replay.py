"""Offline replay of exploration policies on logged data.

Each simulated user starts with no history (optionally side info or text). At every step the
policy shows ``per_step`` items the user has not been shown yet; the reward is the number of
them the user interacted with in the logged data. Rewarded items join the user's history as
logged: a log of ratings gives each its rating, so a film rated 1 of 5 is a dislike there, as
the service takes it (it had joined as a like); a log of one value (0/1) gives likes. The model
re-adapts (the few-shot head is closed form, so this is one small solve per user and step).
The cumulative reward per step, averaged over users, compares policies.

This is a hit rate against held-out ratings, not Li et al.'s unbiased replay estimator (which
counts only the events where the policy's choice matches a uniformly random log): every item a
user rated counts as a hit, a 1-2 star one too, and every other one as a miss. A rating log is
not random, so the estimate leans toward what the site's users were shown and rated (popular
films), and an unrated item may still have been liked.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.errors import ArgumentError, ConfigError, is_whole_number, not_whole, user_stacklevel
from fewrec.models.base import Recommender
from fewrec.models.query import QueryBatch
from fewrec.online.bandits import Policy, select


@dataclass
class ReplayResult:
    """Rewards of one policy over seeds, users and steps.

    Attributes:
        policy: the policy's description (`Policy.describe`).
        rewards: (n_seeds x n_users x steps) hits per step.
        per_step: items shown per step.
    """

    policy: dict
    rewards: np.ndarray
    per_step: int = 1

    def cumulative(self) -> np.ndarray:
        """Mean (over seeds and users) cumulative reward after each step."""
        return self.rewards.cumsum(axis=2).mean(axis=(0, 1))

    def cumulative_per_seed(self) -> np.ndarray:
        """(n_seeds x steps) mean cumulative reward per seed."""
        return self.rewards.cumsum(axis=2).mean(axis=1)

    def per_user_total(self) -> np.ndarray:
        """(n_users,) total reward per user, averaged over seeds."""
        return self.rewards.sum(axis=2).mean(axis=0)


def replay(
    model: Recommender,
    relevant: sp.csr_matrix,
    policy: Policy,
    *,
    steps: int = 50,
    per_step: int = 1,
    seed: int | None = 0,
    user_info: pd.DataFrame | None = None,
    texts: Sequence[str | None] | None = None,
) -> np.ndarray:
    """Simulate ``policy`` for every user (row) of ``relevant``.

    Args:
        model: a fitted model that scores the catalogue for history-only queries.
        relevant: (n_users x n_items) logged interactions; nonzero = reward 1. Values of more
            than one kind are ratings on the model's scale, which a rewarded item joins the
            history with (one kind, such as 0/1: likes).
        policy: the policy to run.
        steps: recommendation rounds.
        per_step: items shown per round.
        seed: randomness of the policy.
        user_info: optional side info per user (one row per user, as the model was trained on).
        texts: optional free text per user.

    Returns:
        (n_users x steps) hits per round.
    """
    if not isinstance(policy, Policy):
        raise ArgumentError(
            f"policy must be a Policy, got {type(policy).__name__} {policy!r}",
            fix="make_policy('thompson', scale=2) or Thompson(2)",
        )
    if isinstance(relevant, np.ndarray):
        relevant = sp.csr_matrix(relevant)
    if not sp.issparse(relevant):
        raise ArgumentError(
            f"relevant must be a users x items matrix (scipy sparse or numpy), got {type(relevant).__name__}"
        )
    for name, value in (("steps", steps), ("per_step", per_step), ("seed", 0 if seed is None else seed)):
        if not is_whole_number(value):
            raise ArgumentError(not_whole(name, value))
    if seed is not None and seed < 0:
        raise ArgumentError(f"seed must be 0 or more (or None for fresh randomness), got {seed}")
    n_users, n_items = relevant.shape
    if n_users == 0:
        raise ConfigError("relevant has no users (rows) to replay")
    values = relevant.tocsr().data
    if len(values) and not (np.isfinite(values).all() and (values >= 0).all()):
        raise ConfigError("relevant must hold 0 (no reward) or positive numbers (reward 1), not NaN or < 0")
    if user_info is not None and len(user_info) != n_users:
        raise ConfigError(f"user_info has {len(user_info)} rows for {n_users} users; give one row per user")
    if user_info is not None:  # a misspelt field ("Age") was silently no side info at all
        read = {f for f, _ in model.side_levels}
        unread = [str(c) for c in user_info.columns if c not in read]
        if unread:
            warnings.warn(
                f"user_info fields {unread} are not read by {model.name}"
                + (f" (it reads {sorted(read)})" if read else " (it reads no side info)"),
                UserWarning,
                stacklevel=user_stacklevel(),
            )
    if texts is not None and (
        isinstance(texts, str)
        or len(texts) != n_users
        or not all(t is None or isinstance(t, str) for t in texts)  # (a number: "expected string")
    ):
        raise ConfigError(f"texts must be a list of one text (or None) per user, {n_users} in all")
    if n_items != model.n_items:
        raise ConfigError(f"relevant has {n_items} item columns, the model scores {model.n_items}")
    if steps < 1 or per_step < 1 or steps * per_step > n_items:
        raise ConfigError(f"need 1 <= steps * per_step <= {n_items}, got {steps} x {per_step}")
    rng = np.random.default_rng(seed)
    logged = relevant.toarray().astype(np.float32)
    rel = logged != 0
    if len(np.unique(values[values != 0])) <= 1:  # one kind of value: every one a like
        logged[rel] = model.fitted.like_rating
    shown = np.zeros((n_users, n_items), dtype=bool)
    liked: list[list[int]] = [[] for _ in range(n_users)]
    rewards = np.zeros((n_users, steps), dtype=np.float32)
    info = None if user_info is None else user_info.reset_index(drop=True)
    text_list = None if texts is None else list(texts)
    for t in range(steps):
        rows = np.repeat(np.arange(n_users), [len(h) for h in liked])
        cols = np.fromiter((i for h in liked for i in h), dtype=np.int64, count=len(rows))
        history = sp.csr_matrix((logged[rows, cols], (rows, cols)), shape=(n_users, n_items))
        # (a dislike stays shown, so it is never picked again; the model reads it as it may)
        batch = QueryBatch.of_new_users(history, model.fitted.dislike_at, info, text_list)
        picks = select(policy.scores(model, batch, rng), ~shown, per_step)
        for u in range(n_users):
            chosen = picks[u][picks[u] >= 0]
            shown[u, chosen] = True
            hits = chosen[rel[u, chosen]]
            rewards[u, t] = len(hits)
            liked[u].extend(int(i) for i in hits)
    return rewards


def run_policies(
    model: Recommender,
    relevant: sp.csr_matrix,
    policies: Sequence[Policy],
    *,
    seeds: Sequence[int] = (0,),
    steps: int = 50,
    per_step: int = 1,
    user_info: pd.DataFrame | None = None,
    texts: Sequence[str | None] | None = None,
) -> list[ReplayResult]:
    """`replay` each policy over several seeds (deterministic policies run once)."""
    if seeds is None or isinstance(seeds, int | str | np.integer) or not len(seeds):  # (np.int64: no len())
        raise ConfigError(f"seeds must be a list of one or more seeds, got {seeds!r}")
    if (
        isinstance(policies, Policy | str)
        or not len(policies)
        or not all(isinstance(p, Policy) for p in policies)
    ):
        raise ArgumentError(
            f"policies must be a list of one or more Policy objects, got {policies!r}",
            fix="run_policies(model, relevant, [Greedy(), Thompson(2)])",
        )
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds repeat: {list(seeds)}; a repeated seed replays the same draws")
    out = []
    for policy in policies:
        deterministic = policy.deterministic
        runs = [
            replay(
                model,
                relevant,
                policy,
                steps=steps,
                per_step=per_step,
                seed=s,
                user_info=user_info,
                texts=texts,
            )
            for s in (seeds[:1] if deterministic else seeds)
        ]
        out.append(ReplayResult(policy.describe(), np.stack(runs), per_step))
    return out
