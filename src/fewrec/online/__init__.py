"""Online learning: exploration policies for new users and their offline replay."""

from fewrec.online.bandits import (
    POLICIES,
    UCB,
    Greedy,
    Policy,
    Posterior,
    RandomPolicy,
    Thompson,
    explore,
    has_posterior,
    make_policy,
    posterior,
    select,
)
from fewrec.online.replay import ReplayResult, replay, run_policies

__all__ = [
    "POLICIES",
    "UCB",
    "Greedy",
    "Policy",
    "Posterior",
    "RandomPolicy",
    "ReplayResult",
    "Thompson",
    "explore",
    "has_posterior",
    "make_policy",
    "posterior",
    "replay",
    "run_policies",
    "select",
]
