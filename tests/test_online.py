"""Exploration policies over the few-shot posterior, and the offline replay."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from serve_helpers import FAST_FEWSHOT, saved_model

from fewrec.errors import ArgumentError, ConfigError
from fewrec.models import load_model, make_model
from fewrec.models.base import QueryBatch
from fewrec.online import (
    UCB,
    Greedy,
    RandomPolicy,
    Thompson,
    has_posterior,
    make_policy,
    posterior,
    replay,
    run_policies,
    select,
)


@pytest.fixture(scope="module")
def model(cold_user):
    return load_model(saved_model("fewshot", cold_user.train, **FAST_FEWSHOT))


def empty_batch(model, n: int = 1, items: list[list[str]] | None = None) -> QueryBatch:
    rows, cols = [], []
    for r, its in enumerate(items or [[] for _ in range(n)]):
        idx = model.fitted.items.index(its)
        rows += [r] * len(idx)
        cols += list(idx)
    hist = sp.csr_matrix((np.full(len(rows), 5.0, np.float32), (rows, cols)), shape=(n, model.n_items))
    return QueryBatch(np.full(n, -1), hist)


def top(scores: np.ndarray, k: int = 10) -> tuple[int, ...]:
    return tuple(np.argsort(-scores[0], kind="stable")[:k])


def test_thompson_explores_and_greedy_does_not(model):
    batch = empty_batch(model)
    greedy = {top(Greedy().scores(model, batch, np.random.default_rng(s))) for s in range(8)}
    ts = {top(Thompson(1.0).scores(model, batch, np.random.default_rng(s))) for s in range(8)}
    assert len(greedy) == 1
    assert len(ts) >= 6
    # same seed, same draw; scale 0 is greedy
    a = Thompson(1.0).scores(model, batch, np.random.default_rng(3))
    b = Thompson(1.0).scores(model, batch, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        Thompson(0.0).scores(model, batch, np.random.default_rng(0)), model.score_batch(batch)
    )


def test_ucb_adds_a_positive_width_that_shrinks_with_history(model):
    empty = empty_batch(model)
    some = empty_batch(model, 1, [["50", "172", "181", "1", "98"]])
    mean = model.score_batch(empty).astype(np.float64)
    bonus = UCB(1.0).scores(model, empty, np.random.default_rng(0)) - mean
    assert (bonus > 0).all()
    assert top(bonus + mean) != top(mean)
    l_empty, l_some = posterior(model, empty).chol[0], posterior(model, some).chol[0]
    # more evidence: a larger posterior precision (a smaller covariance)
    assert np.trace(np.linalg.inv(l_some @ l_some.T)) > np.trace(np.linalg.inv(l_empty @ l_empty.T))
    width_some = UCB(1.0).scores(model, some, None) - model.score_batch(some)
    assert width_some.mean() < bonus.mean()


def test_select_respects_the_mask():
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    allowed = np.array([[False, True, True, False], [True, False, False, False]])
    np.testing.assert_array_equal(select(scores, allowed, 2), [[1, 2], [0, -1]])
    # +inf is the best score there is, not a missing one (it came back as -1)
    np.testing.assert_array_equal(select(np.array([[np.inf, 2.0, 1.0]]), np.ones((1, 3), bool), 2), [[0, 1]])
    with pytest.raises(ArgumentError, match="2-D array"):  # (an IndexError)
        select(np.array([1.0, 2.0]), np.array([True, True]), 1)


def test_policies_read_a_dislike_as_the_model_does(model):
    """An audit: a policy scored a query's dislike as a like (Return of the Jedi first after
    Star Wars was disliked), where `recommend` leaves it out of a history it cannot rate."""
    from fewrec.models.base import Query

    disliked = model.batch_from_queries([Query(items=["50"], ratings=[1])])
    nothing = model.batch_from_queries([Query()])
    liked = model.batch_from_queries([Query(items=["50"], ratings=[5])])
    rng = np.random.default_rng(0)
    for policy in (Greedy(), UCB(1.0)):
        got = policy.scores(model, disliked, rng)
        np.testing.assert_allclose(got, policy.scores(model, nothing, rng), rtol=1e-6)
        assert not np.allclose(got, policy.scores(model, liked, rng))
    np.testing.assert_allclose(posterior(model, disliked).heads, posterior(model, nothing).heads)


def test_replay_takes_a_logged_dislike_as_a_dislike(model):
    """An audit: a replayed hit joined the history as a like whatever its logged rating, so a
    film rated 1 of 5 pulled its look-alikes up (16.5% of the cold users' rated films are 1-2)."""
    from fewrec.models.base import Query

    rng, allowed = np.random.default_rng(0), np.ones((1, model.n_items), bool)
    first = int(select(Greedy().scores(model, empty_batch(model), rng), allowed, 1)[0, 0])
    allowed[0, first] = False
    alone = set(select(Greedy().scores(model, empty_batch(model), rng), allowed, 30)[0].tolist())
    after_a_like = model.batch_from_queries([Query(items=[model.fitted.items.ids[first]])])
    liked = set(select(Greedy().scores(model, after_a_like, rng), allowed, 30)[0].tolist())
    assert liked - alone  # (else the test could not tell the two readings apart)
    log = sp.lil_matrix((1, model.n_items), dtype=np.float32)
    log[0, first] = 1.0  # rated 1 of 5
    for i in liked - alone:  # rated 5: hits only where the 1 was read as a like
        log[0, i] = 5.0
    rewards = replay(model, log.tocsr(), Greedy(), steps=31)[0]
    assert rewards[0] == 1 and rewards[1:].sum() == 0


def test_policies_need_a_posterior(cold_user):
    ease = make_model("ease").fit(cold_user.train)
    assert not has_posterior(ease)
    batch = QueryBatch(np.array([-1]), sp.csr_matrix((1, ease.n_items), dtype=np.float32))
    # (the fix said "serve a few-shot model" to Python users)
    with pytest.raises(
        ConfigError, match=r"posterior.*Fix: use a few-shot model \(fewshot, fewshot-nometa\)"
    ):
        Thompson().scores(ease, batch, np.random.default_rng(0))
    assert Greedy().scores(ease, batch, None).shape == (1, ease.n_items)
    with pytest.raises(ConfigError):
        make_policy("softmax")
    with pytest.raises(ConfigError):
        Thompson(-1)
    assert make_policy("ucb", c=2).describe() == {"policy": "ucb", "c": 2.0}


def test_replay_on_a_small_subset(model, cold_user, ml100k, monkeypatch):
    rows = np.arange(25)
    relevant = (cold_user.test.history + cold_user.test.targets)[rows]
    info = ml100k.user_info.iloc[cold_user.test.users[rows]].reset_index(drop=True)
    results = run_policies(
        model,
        relevant,
        [RandomPolicy(), Greedy(), Thompson(1.0), UCB(1.0)],
        seeds=(0, 1),
        steps=12,
        user_info=info,
    )
    by_name = {r.policy["policy"]: r for r in results}
    assert by_name["greedy"].rewards.shape == by_name["ucb"].rewards.shape == (1, 25, 12)  # no draws
    assert by_name["thompson"].rewards.shape == (2, 25, 12)
    for r in results:
        cum = r.cumulative()
        assert len(cum) == 12 and (np.diff(cum) >= 0).all()
    assert by_name["greedy"].cumulative()[-1] > 2 * by_name["random"].cumulative()[-1]
    assert by_name["thompson"].cumulative()[-1] > 2 * by_name["random"].cumulative()[-1]
    # never shows an item twice: every item picked for a user over the rounds is a new one
    shown: list[np.ndarray] = []

    def recording_select(*args, **kwargs):
        picks = select(*args, **kwargs)
        shown.append(picks)
        return picks

    # (the module, not the function `fewrec.online` exports under its name)
    monkeypatch.setattr(importlib.import_module("fewrec.online.replay"), "select", recording_select)
    hits = replay(model, relevant, Greedy(), steps=5, per_step=4, user_info=info)
    assert len(shown) == 5 and hits.sum() > 0
    for u in range(25):
        picked = np.concatenate([p[u][p[u] >= 0] for p in shown])
        assert len(picked) == 20 and len(set(picked.tolist())) == 20, f"user {u} was shown {sorted(picked)}"
    with pytest.raises(ConfigError):
        replay(model, relevant, Greedy(), steps=0)


def test_replay_without_side_info(model):
    relevant = sp.csr_matrix(np.eye(3, model.n_items, dtype=np.float32))
    out = replay(model, relevant, RandomPolicy(), steps=3, user_info=pd.DataFrame(index=range(3)))
    assert out.shape == (3, 3)


def test_online_user_mistakes_are_one_clear_error(model, cold_user):
    """Wrong types and misaligned inputs to the policies and the replay are named, not numpy or
    attribute errors, and never silently misread (one side-info row for many users, -1 as a
    reward)."""
    from fewrec.errors import ArgumentError, NotFittedError

    batch = empty_batch(model)
    for bad in ("2", None, float("nan")):
        with pytest.raises(ConfigError, match="thompson scale must be a finite number"):
            Thompson(bad)
    with pytest.raises(ConfigError, match="between 0 and 1000"):
        UCB(1e300)
    with pytest.raises(ArgumentError, match="numpy Generator"):
        Thompson(1.0).scores(model, batch, 0)
    with pytest.raises(NotFittedError):
        Greedy().scores(make_model("fewshot"), batch, None)
    with pytest.raises(ArgumentError, match="k must be an int, got the float 2.5"):
        select(np.zeros((1, 4)), np.ones((1, 4), dtype=bool), 2.5)
    relevant = sp.csr_matrix(np.eye(3, model.n_items, dtype=np.float32))
    dense = replay(model, np.eye(3, model.n_items), Greedy(), steps=2)  # numpy is taken as is
    np.testing.assert_array_equal(dense, replay(model, relevant, Greedy(), steps=2))
    with pytest.raises(ArgumentError, match="steps must be an int, got the float 2.5"):
        replay(model, relevant, Greedy(), steps=2.5)
    with pytest.raises(
        ArgumentError, match="steps must be an int, got the float 2.0"
    ):  # (was "not a whole number")
        replay(model, relevant, Greedy(), steps=2.0)
    with pytest.raises(ConfigError, match="no users"):
        replay(model, relevant[:0], Greedy())
    with pytest.raises(ConfigError, match="not NaN or < 0"):
        replay(model, -relevant, Greedy(), steps=2)
    with pytest.raises(ConfigError, match="1 rows for 3 users"):
        replay(model, relevant, Greedy(), steps=2, user_info=pd.DataFrame({"age": [30]}))
    with pytest.raises(ConfigError, match="one text"):
        replay(model, relevant, Greedy(), steps=2, texts=["sci-fi"])
    for seeds in ((), np.int64(3), None):  # (the last two: "has no len()")
        with pytest.raises(ConfigError, match="seeds must be"):
            run_policies(model, relevant, [Greedy()], seeds=seeds)
    with pytest.raises(ConfigError, match="one text"):  # ("expected string")
        replay(model, relevant, Greedy(), steps=2, texts=[1, 2, 3])
    # an audit: a negative seed was numpy's ValueError, a repeated one replayed the same draws,
    # NaN scores came back as no items at all, a misspelt side-info field was silently no side info
    with pytest.raises(ArgumentError, match="seed must be 0 or more"):
        replay(model, relevant, Thompson(1.0), steps=2, seed=-1)
    with pytest.raises(ConfigError, match="seeds repeat"):
        run_policies(model, relevant, [Thompson(1.0)], seeds=(0, 0), steps=2)
    with pytest.raises(ArgumentError, match="scores hold NaN"):
        select(np.array([[0.5, np.nan, 0.1]]), np.ones((1, 3), dtype=bool), 2)
    with pytest.warns(UserWarning, match=r"fields \['Age'\] are not read by fewshot"):
        replay(model, relevant, Greedy(), steps=2, user_info=pd.DataFrame({"Age": [30, 40, 50]}))


def test_policies_given_wrongly_are_named(model):
    """An audit: a setting of another policy was ignored (make_policy('greedy', scale=2)) or a
    raw TypeError, a policy name where a Policy goes an AttributeError, a misshapen mask a numpy
    error; run_policies also takes the users' texts, as replay does."""
    from fewrec.errors import ArgumentError

    with pytest.raises(ConfigError, match="unknown policy"):
        make_policy(["ucb"])  # was a TypeError (unhashable list)
    with pytest.raises(ArgumentError, match="greedy policy takes no settings, not scale"):
        make_policy("greedy", scale=2)
    with pytest.raises(ArgumentError, match="ucb policy takes c, not scale"):
        make_policy("ucb", scale=2)
    assert make_policy("thompson", scale=2).scale == 2 and make_policy("ucb", c=3).c == 3
    relevant = sp.csr_matrix(np.eye(3, model.n_items, dtype=np.float32))
    with pytest.raises(ArgumentError, match="policy must be a Policy, got str 'thompson'"):
        replay(model, relevant, "thompson", steps=2)
    for bad in (Greedy(), ["greedy"], []):
        with pytest.raises(ArgumentError, match="policies must be a list of one or more Policy"):
            run_policies(model, relevant, bad, steps=2)
    with pytest.raises(ArgumentError, match=r"allowed has shape \(1, 3\), scores \(1, 4\)"):
        select(np.zeros((1, 4)), np.ones((1, 3), dtype=bool), 2)
    texts = ["space adventure", None, "romantic comedy"]
    by_text = run_policies(model, relevant, [Greedy()], steps=2, texts=texts)[0]
    np.testing.assert_array_equal(by_text.rewards[0], replay(model, relevant, Greedy(), steps=2, texts=texts))


def test_explore_gives_ids_and_says_which_picks_explored(model):
    """An audit: Python had no documented way to an explored top-k of item ids (the batch, the
    mask of seen and disliked items, `select` and the ids were the user's to put together)."""
    from fewrec.models.base import Query
    from fewrec.online import explore

    query = Query(items=["50", "181"], ratings=[5, 1])
    greedy = explore(model, query, k=10, policy="greedy")
    best = model.recommend(query, k=10)
    assert greedy["item"].tolist() == best["item"].tolist() and not greedy["explored"].any()
    wide = explore(model, query, k=10, policy="ucb", c=4)
    assert wide["explored"].any() and not {"50", "181"} & set(wide["item"])
    assert wide["explored"].tolist() == [i not in set(best["item"]) for i in wide["item"]]
    a, b = (explore(model, query, policy="thompson", scale=1, seed=3) for _ in range(2))
    assert a["item"].tolist() == b["item"].tolist()  # a seed repeats the draw
    with pytest.raises(ArgumentError, match="for a policy given by name"):
        explore(model, query, policy=UCB(1.0), c=2)
    with pytest.raises(ArgumentError, match="k must be >= 1, got 0"):
        explore(model, query, k=0)
    with pytest.raises(ConfigError, match="unknown policy 'softmax'"):
        explore(model, query, policy="softmax")
    with pytest.raises(ArgumentError, match="the ucb policy takes c, not scale"):
        explore(model, query, policy="ucb", scale=2)


def test_explore_leaves_out_what_recommend_does_and_checks_as_it_does(model, cold_user):
    """An audit: `explore` left out only the history and dislikes, so its greedy list held the
    catalogue's other copy of a seen film ("268" for "246") and the film a text names as known
    (Star Wars for "films like Star Wars"), where `recommend` and the service leave them out; a
    dict for a query was an AttributeError, a seed of -1 numpy's ValueError, and text a model
    does not read went without a word."""
    import warnings

    from fewrec.models.base import Query
    from fewrec.online import explore

    twins = model._per_catalogue("twins_", model._twins)
    seen = int(model.fitted.items.index(["246"])[0])
    assert model.fitted.items.id(int(twins[seen].indices[0])) == "268"  # ML-100K lists it twice
    for query, out in ((Query(items=["246"]), {"246", "268"}), (Query(text="films like Star Wars"), {"50"})):
        greedy = explore(model, query, k=30, policy="greedy")
        assert greedy["item"].tolist() == model.recommend(query, k=30)["item"].tolist()
        wide = explore(model, query, k=300, policy="ucb", c=1000)
        assert wide["explored"].any() and not out & {*greedy["item"], *wide["item"]}
    with pytest.raises(ArgumentError, match="expected a Query, got dict"):
        explore(model, {"items": ["50"]})
    for seed in (-1, 1.5, "a"):
        with pytest.raises(ArgumentError, match="seed must be a whole number >= 0, or None"):
            explore(model, Query(items=["50"]), policy="thompson", seed=seed)
    popularity = make_model("popularity").fit(cold_user.train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ConfigError):  # (no posterior: said after the query's notes)
            explore(popularity, Query(items=["50"], text="space"))
    assert any("does not read free text" in str(w.message) for w in caught), [str(w.message) for w in caught]


def test_explore_leaves_out_a_known_users_low_ratings_a_filtered_fit_left_out(ml100k):
    """An audit: a model fitted on data filtered by keep_ratings keeps a known user's dropped
    ratings apart (not in the history), and explore() brought back 55 of user 1's 109 such
    items, 1-star films among them; recommend and the service did not."""
    from fewrec.models.base import Query
    from fewrec.online import explore

    model = make_model("popularity").fit(ml100k.keep_ratings(4))
    mine = ml100k.interactions[ml100k.interactions["user"] == int(ml100k.users.lookup(["1"])[0])]
    low = set(ml100k.items.to_external(mine.loc[mine["rating"] < 4, "item"].to_numpy()))
    assert low
    picks = explore(model, Query(user="1"), k=300, policy="greedy")
    assert not low & set(picks["item"]), sorted(low & set(picks["item"]))[:5]
    assert not low & set(model.recommend(Query(user="1"), k=300)["item"])
