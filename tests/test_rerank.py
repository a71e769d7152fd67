"""The ensemble's learned re-ranker of its top candidates (fewrec.models.rerank)."""

import copy
import re
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

from fewrec.data import load_interactions
from fewrec.data.splits import cold_user_split
from fewrec.eval.evaluate import evaluate_ranking
from fewrec.models import Query, load_model, make_model
from fewrec.models.base import QueryBatch
from fewrec.models.rerank import ItemTable, UserSchema, top_candidates


def _two_tastes(n_users=320, n_items=60, per_user=12, seed=0):
    """Users of group a mostly pick items of kind 0, group b items of kind 1; within a kind,
    picks follow a popularity skew. Popularity alone, being the same for everyone, cannot tell
    the groups apart; an item's kind and the user's group can."""
    rng = np.random.default_rng(seed)
    kind = np.arange(n_items) % 2
    appeal = 1.0 / (1.0 + np.arange(n_items) / 8.0)
    group = rng.choice(["a", "b"], size=n_users)
    rows = []
    for u in range(n_users):
        w = appeal * np.where(kind == (group[u] == "b"), 0.9, 0.1)
        picks = rng.choice(n_items, size=per_user, replace=False, p=w / w.sum())
        rows += [(f"u{u}", f"i{i}", 4.0, t) for t, i in enumerate(picks)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)], "kind": kind})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(n_users)], "group": group})
    return load_interactions(inter, items, users)


@contextmanager
def _blend_only(model):
    """The fitted ensemble with its re-rankers set aside: the blend alone."""
    rerankers, model.rerankers_ = model.rerankers_, {}
    try:
        yield model
    finally:
        model.rerankers_ = rerankers


@pytest.fixture(scope="module")
def two_tastes():
    data = _two_tastes()
    split = cold_user_split(data, shots=3, seed=0, random_shots=True)
    cfg = {
        "components": {"popularity": {}},
        "shots": [0, 3],
        "reveal": "random",
        "rerank": True,
        "rerank_trees": 60,
    }
    return split, make_model("ensemble", **cfg).fit(split.train)


def test_reranker_learns_what_the_blend_cannot(two_tastes):
    """Real fit on synthetic data: the re-ranker must learn the user-group x item-kind taste
    from the tuning episodes, which the popularity-only blend cannot express."""
    split, model = two_tastes
    assert set(model.rerankers_) == {1}  # K = 3; none for K = 0
    with_rr = evaluate_ranking(model, split.test, split.train)
    with _blend_only(model):
        blend_only = evaluate_ranking(model, split.test, split.train)
    got, base = with_rr.values["ndcg@10"], blend_only.values["ndcg@10"]
    assert got > base + 0.05, (got, base)


def test_reranker_serves_new_users_and_their_text_is_added_after(two_tastes):
    split, model = two_tastes
    plain = make_model("ensemble", **{**model.config.model_dump(), "rerank": False})
    plain.state_, plain.models_ = model.state_, model.models_
    plain.weights_, plain.warm_weights_, plain.rerankers_ = model.weights_, model.warm_weights_, {}
    plain.item_numeric_, plain.user_schema_ = model.item_numeric_, model.user_schema_
    # it reads side info (the popularity component alone does not)
    assert not model.models_[0].side_levels and {("group", "a"), ("group", "b")} <= model.side_levels
    known = Query(user=split.train.users.id(0))
    np.testing.assert_array_equal(model.score(known).to_numpy(), plain.score(known).to_numpy())
    new = Query(items=["i0", "i2", "i4"], user_info={"group": "a"})
    a = model.score(new).to_numpy()
    with pytest.warns(UserWarning, match="does not read user side info"):
        b = plain.score(new).to_numpy()
    assert not np.array_equal(a, b)
    # re-ranking only moves scores between items: the same values, in another order
    np.testing.assert_allclose(np.sort(a), np.sort(b))
    history = model.fitted.train[[1, 1]]  # a history the re-ranker serves, with and without text
    batch = QueryBatch(np.array([-1, -1]), history, texts=["I like kind zero", None])
    np.testing.assert_array_equal(model._reranked_rows(batch), [0, 1])
    # the text is a term of its own after the re-ranker: with text_weight 0 it changes nothing
    # (it used to send the query to the blend, without the re-ranker)
    mute = copy.copy(model)
    mute.config = model.config.model_copy(update={"text_weight": 0.0})
    said = Query(items=["i0", "i2", "i4"], user_info={"group": "a"}, text="I like kind zero")
    with pytest.warns(UserWarning, match="does not read free text"):  # popularity alone
        np.testing.assert_array_equal(mute.score(said).to_numpy(), a)


def test_reranked_batch_scores_equal_single_scores(two_tastes):
    _, model = two_tastes
    queries = [
        Query(items=["i1", "i3"], user_info={"group": "b"}),
        Query(items=["i0", "i2", "i4", "i6", "i8", "i10"], user_info={"group": "a"}),
        Query(items=["i5"]),
    ]
    batch = model.score_many(queries)
    for q, row in zip(queries, batch, strict=True):
        np.testing.assert_array_equal(model.score(q).to_numpy(), row.to_numpy())


def test_one_item_queries_keep_the_blend():
    """No re-ranker below rerank_min_shots (default 2): a query of one item is served by the
    blend, one of three items is re-ranked."""
    split = cold_user_split(_two_tastes(n_users=200), shots=3, seed=0, random_shots=True)
    cfg = {"components": {"popularity": {}}, "shots": [0, 1, 3], "reveal": "random", "rerank_trees": 20}
    model = make_model("ensemble", rerank=True, **cfg).fit(split.train)
    assert set(model.rerankers_) == {2}  # K = 3 only
    one, three = Query(items=["i0"]), Query(items=["i0", "i2", "i4"])
    np.testing.assert_array_equal(model._reranked_rows(model.batch_from_queries([one, three])), [1])
    with _blend_only(model):
        blend_one = model.score(one).to_numpy()
    np.testing.assert_array_equal(model.score(one).to_numpy(), blend_one)
    every = make_model("ensemble", rerank=True, rerank_min_shots=1, **cfg).fit(split.train)
    assert set(every.rerankers_) == {1, 2}


def test_reranker_is_on_by_default_where_it_can_be_learned():
    """On by default; off (not an error) where it cannot be learned unless asked for."""
    from fewrec.errors import ConfigError

    assert make_model("ensemble").config.rerank is True
    assert make_model("ensemble", tune=False).config.rerank is False
    assert make_model("ensemble", shots=[0, 1]).config.rerank is False
    assert make_model("ensemble", shots=[0, 1], rerank_min_shots=1).config.rerank is True
    with pytest.raises(ConfigError, match="leaves no shot count"):
        make_model("ensemble", shots=[0, 1], rerank=True)
    with pytest.raises(ConfigError, match="shots"):
        make_model("ensemble", shots=["a"])


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"rerank": True, "tune": False}, "needs tune=True"),
        ({"rerank": True, "rerank_depth": 5}, "rerank_depth"),
        ({"rerank": True, "rerank_trees": 0}, "rerank_trees"),
        ({"rerank": True, "rerank_min_shots": 0}, "rerank_min_shots"),
        ({"rerank": True, "shots": [0, 1, 3], "rerank_min_shots": 5}, "leaves no shot count"),
        ({"rerank": True, "shots": []}, "shots"),
    ],
)
def test_bad_reranker_settings_are_named(bad, named):
    from fewrec.errors import ConfigError

    with pytest.raises(ConfigError, match=named):
        make_model("ensemble", **bad)


def test_reorder_keeps_untrained_candidates_in_place(two_tastes):
    _, model = two_tastes
    rr = model.rerankers_[1]
    rng = np.random.default_rng(1)
    blended = rng.normal(size=(3, 60))
    top = top_candidates(blended, rr.depth)
    n_feat = rr.booster.num_feature()
    feats = rng.normal(size=(top.size, n_feat)).astype(np.float32)
    trained = np.ones(60, bool)
    trained[[int(top[0, 0]), int(top[1, 5]), 7]] = False
    out = rr.reorder(blended, top, feats, np.tile(trained, (3, 1)))
    np.testing.assert_array_equal(out[:, ~trained], blended[:, ~trained])
    for r in range(3):
        np.testing.assert_allclose(np.sort(out[r]), np.sort(blended[r]))
        pred = rr.booster.predict(feats[r * rr.depth : (r + 1) * rr.depth])
        movable = trained[top[r]]
        by_model = top[r][movable][np.argsort(-pred[movable], kind="stable")]
        assert (np.diff(out[r, by_model]) <= 0).all()


def test_reranking_never_gives_a_history_items_score_to_another_item(two_tastes):
    """The catalogue (60 items) is shorter than the re-ranker's 100 candidates, so a query's own
    items are among them: they moved with the rest, and a history item's high blend score went to
    a weak item (an audit: the list's first pick was the blend's 77th of 95). The re-ranker only
    re-orders the other items' scores."""
    _, model = two_tastes
    q = Query(items=[f"i{i}" for i in range(0, 20, 2)], user_info={"group": "a"})
    own = np.zeros(model.n_items, bool)
    own[model.fitted.items.lookup(list(q.items))] = True
    with _blend_only(model):
        blend = model.score(q).to_numpy()
    reranked = model.score(q).to_numpy()
    assert not np.array_equal(reranked, blend)  # the re-ranker did re-order
    np.testing.assert_array_equal(reranked[own], blend[own])
    np.testing.assert_allclose(np.sort(reranked[~own]), np.sort(blend[~own]))


def test_saved_reranker_scores_the_same(two_tastes, tmp_path):
    _, model = two_tastes
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert set(again.rerankers_) == {1}
    q = Query(items=["i1", "i3", "i5"], user_info={"group": "b"})
    np.testing.assert_array_equal(model.score(q).to_numpy(), again.score(q).to_numpy())


def test_user_schema_encodes_fields_and_tolerates_unknowns():
    info = pd.DataFrame({"age": [20, 30, None], "job": ["x", "y", "x"], "flag": ["1", "0", "1"]})
    schema = UserSchema.learn(info)
    assert schema.numeric == ["age", "flag"] and schema.categorical == ["job"]
    assert schema.levels == [["x", "y"]] and schema.decades == [["20", "30"], ["0", "1"]]  # a 0/1 flag: codes
    assert ("age", "20") in schema.side_levels and ("job", "y") in schema.side_levels
    m = schema.matrix(pd.DataFrame({"age": [40], "job": ["z"]}), 1)
    assert m[0, 0] == 40 and np.isnan(m[0, 1]) and (m[0, 2:] == 0).all()
    assert np.isnan(schema.matrix(None, 2)[:, :2]).all()


def test_item_table_counts_and_shrinks_ratings():
    import scipy.sparse as sp

    train = sp.csr_matrix(np.array([[5.0, 0, 1.0], [5.0, 0, 0]]))
    info = pd.DataFrame({"year": [1990, "n/a", 2000], "genres": [["A"], ["A", "B"], []]})
    t = ItemTable.build(train, info, ["year"])
    np.testing.assert_array_equal(t.trained, [True, False, True])
    mean = 11.0 / 3
    np.testing.assert_allclose(t.values[:, 1], [(10 + 10 * mean) / 12, mean, (1 + 10 * mean) / 11], rtol=1e-6)
    assert t.values[0, 2] == 1990 and np.isnan(t.values[1, 2])
    np.testing.assert_array_equal(t.genres, [[1, 0], [1, 1], [0, 0]])


def test_ensemble_progress_bar_names_its_stages(ml100k, capsys):
    """Fitting an ensemble takes minutes: with ``progress`` a bar counts every component fit
    (each tuning fold, the known-user weights, the final fit), the weights of each shot count
    (2 minutes each on 20,000 items, with the bar standing still) and the re-rankers."""
    from fewrec.models import make_model

    inter = ml100k.interactions
    small = ml100k.with_interactions(inter[inter["user"].to_numpy() < 300])
    cfg = {"components": {"popularity": {}}, "shots": (0, 5), "folds": 2, "rerank_trees": 10}
    make_model("ensemble", **cfg, progress=True).fit(small)
    err = capsys.readouterr().err
    stages = ("tuning fold 2: popularity", "weights for K=5", "known-user weights: popularity", "re-rankers")
    for stage in (*stages, "final fit"):
        assert stage in err
    assert "7/7" in err


def test_the_tuned_weights_are_logged_with_their_components_names(caplog):
    """A CLI audit: training printed "ensemble K=0 weights [4. 0.25 0. 4. 0.]", leaving the
    reader to guess which weight was whose."""
    data = _two_tastes()
    cfg = {"components": {"popularity": {}, "itemknn": {}}, "shots": [3], "reveal": "random", "rerank": False}
    with caplog.at_level("INFO", logger="fewrec"):
        make_model("ensemble", **cfg).fit(data)
    said = [r.getMessage() for r in caplog.records if "weights" in r.getMessage()]
    assert said and re.match(
        r"ensemble K=3 weights: popularity [\d.]+, itemknn [\d.]+ \(held-out", said[0]
    ), said
