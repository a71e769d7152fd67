"""The text models: content, few-shot heads with meta-learning, distillation, new items."""

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fewrec.data.loaders import Columns, load_interactions
from fewrec.data.splits import cold_item_split
from fewrec.errors import ConfigError, DataError
from fewrec.eval.evaluate import evaluate_ranking
from fewrec.models import Query, load_model, make_model
from fewrec.models.fewshot import ItemItem
from fewrec.models.query import QueryBatch


@pytest.fixture(scope="module")
def fewshot_pair(cold_user):
    meta = make_model("fewshot").fit(cold_user.train)
    plain = make_model("fewshot-nometa").fit(cold_user.train)
    return meta, plain


def test_meta_learning_beats_the_same_model_without_it(fewshot_pair, cold_user):
    meta, plain = fewshot_pair
    assert meta.meta_log_["val_loss_best"] < meta.meta_log_["val_loss_start"]
    m = evaluate_ranking(meta, cold_user.test, cold_user.train).values["ndcg@10"]
    p = evaluate_ranking(plain, cold_user.test, cold_user.train).values["ndcg@10"]
    assert m > p + 0.015, (m, p)  # 0.391 against 0.357 on 2026-12-07 (any gain had passed)


def test_an_empty_query_is_ranked_by_what_ranked_held_out_users_better(fewshot_pair, ml100k, tmp_path):
    """fewshot's prior, learned for every K at once, ranked a query with nothing in it below
    popularity (cold-user seed 0's test users: K0 NDCG@10 0.406 against 0.545); the fit now sets
    the two against each other on meta-learning's held-out users and keeps the better ("auto")."""
    from fewrec.data.splits import cold_user_split

    meta, _ = fewshot_pair
    log = meta.meta_log_
    assert log["empty_ndcg_baseline"] > log["empty_ndcg_prior"]  # 0.466 against 0.454 (2026-12-07)
    assert meta.empty_is_popularity
    k0 = cold_user_split(ml100k, shots=0, seed=0)  # (the same training users as fewshot_pair's)

    def ndcg(model):
        return evaluate_ranking(model, k0.test, k0.train).values["ndcg@10"]

    popularity = ndcg(make_model("popularity").fit(k0.train))
    assert ndcg(meta) == pytest.approx(popularity)
    prior = copy.copy(meta)
    prior.empty_popularity_ = False
    assert ndcg(prior) < popularity - 0.05  # (the prior's own ranking, as before)
    # side info alone: popularity's list, said so, and no "people like you"
    with pytest.warns(UserWarning, match="no liked items and no text by popularity.*age, gender went unused"):
        recs = meta.recommend(Query(user_info={"age": 25, "gender": "F"}), k=5, explain=True)
    assert set(recs["reason"]) == {"Popular right now."}
    assert list(recs["item"]) == list(make_model("popularity").fit(k0.train).recommend(Query(), k=5)["item"])
    # items or a text: the head, as before
    assert (
        meta.recommend(Query(items=["50"]), k=5)["score"].tolist()
        == prior.recommend(Query(items=["50"]), k=5)["score"].tolist()
    )
    meta.save(tmp_path / "m")
    assert load_model(tmp_path / "m").empty_is_popularity


def test_empty_queries_can_be_set(ml100k):
    """``empty_queries="prior"`` keeps the prior (as the ensemble's component does), and
    "popularity" takes popularity without the check."""
    from fewrec.models.ensemble import DEFAULT_COMPONENTS

    small = ml100k.with_interactions(ml100k.interactions[ml100k.interactions["user"] < 200])
    empty = sp.csr_matrix((1, ml100k.n_items), dtype=np.float32)
    for setting, falls_back in (("prior", False), ("popularity", True)):
        model = make_model("fewshot", empty_queries=setting, meta_steps=25).fit(small)
        assert "empty_ndcg_prior" not in model.meta_log_  # (no check asked for)
        assert model.empty_is_popularity is falls_back
        scores = model.score_batch(QueryBatch(np.full(1, -1), empty))[0]
        rho = np.corrcoef(scores, model.fitted.popularity)[0, 1]
        assert bool(rho > 0.999999) == falls_back, rho
    assert DEFAULT_COMPONENTS["fewshot"] == {"empty_queries": "prior"}
    with pytest.raises(ConfigError, match="empty_queries"):
        make_model("fewshot", empty_queries="popular")


def test_what_counts_as_an_empty_query_is_what_the_model_reads(ml100k):
    """A review of the empty-query choice: with ``text_weight=0`` a text counted, so side info
    moved the list ("Popular with people like you"); an unknown user id got no note; an explicit
    "popularity" without meta-learning was ignored (ties of a zero prior); an ensemble saved with
    the old default components, refitted, had fewshot rank empty queries by popularity."""
    from fewrec.models.ensemble import DEFAULT_COMPONENTS

    small = ml100k.with_interactions(ml100k.interactions[ml100k.interactions["user"] < 200])
    info = {"age": 25, "gender": "F"}
    deaf = make_model("fewshot", text_weight=0, empty_queries="popularity", meta_steps=25).fit(small)
    popular = list(make_model("popularity").fit(small).recommend(Query(), k=5)["item"])
    for query in (Query(text="I love science fiction", user_info=info), Query(user="nobody", user_info=info)):
        with pytest.warns(
            UserWarning, match="by popularity \\(empty_queries='popularity'\\), so age, gender went"
        ):
            recs = deaf.recommend(query, k=5, explain=True)
        assert list(recs["item"]) == popular and set(recs["reason"]) == {"Popular right now."}
    plain = make_model("fewshot", meta_learn=False, empty_queries="popularity", meta_steps=25).fit(small)
    empty = plain.score_batch(
        QueryBatch(np.full(1, -1), sp.csr_matrix((1, ml100k.n_items), dtype=np.float32))
    )
    assert np.corrcoef(empty[0], plain.fitted.popularity)[0, 1] > 0.999999  # (it was all 0)
    old = make_model("ensemble", components={**DEFAULT_COMPONENTS, "fewshot": {}})
    assert old.config.components == DEFAULT_COMPONENTS  # (the default it was saved as)


def test_the_empty_query_check_scores_held_out_users_in_blocks(fewshot_pair):
    """The check scored every held-out user over the catalogue at once (GBs on a large one); in
    blocks of users it gives the same figures."""
    from fewrec.adapt.fewshot import _empty_ndcg

    meta, _ = fewshot_pair
    data = meta.fitted.train
    items = [data[u].indices for u in range(40)]
    side = np.zeros((40, meta.params_.side.shape[0]))
    args = (meta.x_, items, side, np.arange(40), meta.params_, meta.fitted.popularity)
    whole, blocks = _empty_ndcg(*args, chunk=40), _empty_ndcg(*args, chunk=7)
    assert whole == pytest.approx(blocks) and whole["empty_ndcg_prior"] != whole["empty_ndcg_baseline"]


def test_zero_shot_free_text_is_personalised(fewshot_pair, ml100k):
    meta, _ = fewshot_pair
    scifi = meta.recommend(Query(text="I love science fiction space adventures"), k=20)
    romance = meta.recommend(Query(text="romantic comedies about love and weddings"), k=20)
    assert set(scifi["item"]) != set(romance["item"])
    genres = ml100k.item_info["genres"]

    def share(recs, genre):
        idx = ml100k.items.index(recs["item"])
        return np.mean([genre in genres.iloc[i] for i in idx])

    assert share(scifi, "Sci-Fi") > share(romance, "Sci-Fi")
    assert share(romance, "Romance") > share(scifi, "Romance")


def test_adapting_a_new_user_is_fast(fewshot_pair, cold_user):
    """The issue's target, as the benchmark measures it (`adapt_ms_k5`: the median of 50 K = 5
    scorings of the catalogue for a new user), under 20 ms; 0.08 ms recorded. (This checked a mean
    of `score` under 200 ms: a thousandfold slowdown passed.)"""
    from fewrec.eval.benchmark import adapt_latency_ms

    meta, _ = fewshot_pair
    assert adapt_latency_ms(meta, cold_user.test, 5) < 20.0
    # and a bound that catches a slowdown well short of the target: 0.08-0.2 ms measured, so
    # under 5 ms (a 15 ms sleep in score_batch passed the target's bound)
    assert adapt_latency_ms(meta, cold_user.test, 5) < 5.0


def test_the_adaptation_timing_scores_a_query_of_likes(fewshot_pair, cold_user, monkeypatch):
    """`adapt_ms_k5` timed a query whose five ratings were all 1, a 1-star dislike on
    MovieLens' scale: the models that read ratings (content, like-clf, the ensemble) were timed
    on an empty profile. The query's ratings are the data's like rating now."""
    from fewrec.eval.benchmark import adapt_latency_ms
    from fewrec.models.content import rating_weights

    meta, _ = fewshot_pair
    seen = []
    monkeypatch.setattr(meta, "score_batch", lambda batch: seen.append(batch) or np.zeros((1, meta.n_items)))
    adapt_latency_ms(meta, cold_user.test, 5, repeats=1)
    history = seen[-1].history
    weights = rating_weights(history, meta.fitted.like_rating, meta.fitted.dislike_at)
    assert history.nnz == 5 and weights.nnz == 5, history.data


def test_meta_learning_checks_each_held_out_user_once(fewshot_pair, cold_user):
    """Meta-learning's early stopping and its item-item rescaling are judged on the held-out
    users' episodes. 256 were asked of a pool of 66 users, and the pool was drawn with
    replacement, as many as it has: 41 of the 66 were checked, some twice."""
    meta, _ = fewshot_pair
    n_users = int((np.diff(cold_user.train.matrix().indptr) >= 2).sum())
    held_out = min(max(8, n_users // 10), n_users // 2)
    assert held_out < 256
    log = meta.meta_log_
    assert log["val_episodes"] == log["val_users"] == held_out, log


def test_posterior_covariance_is_symmetric_and_shrinks_with_data(fewshot_pair):
    meta, _ = fewshot_pair
    b = meta.batch_from_queries([Query(items=["50"]), Query(items=["50", "172", "181", "1", "100"])])
    _, covs = meta.heads(b, return_cov=True)
    np.testing.assert_allclose(covs[0], covs[0].T, atol=1e-8)
    assert np.trace(covs[1]) < np.trace(covs[0])


def test_cold_items_ranked_from_text_alone(ml100k):
    split = cold_item_split(ml100k, seed=0)
    model = make_model("fewshot", meta_steps=100).fit(split.train)
    rnd = make_model("random").fit(split.train)
    cold = split.cold_items
    r = evaluate_ranking(model, split.test, split.train, only_items=cold).values["recall@20"]
    base = evaluate_ranking(rnd, split.test, split.train, only_items=cold).values["recall@20"]
    assert r > 3 * base, (r, base)
    assert 0.0 < model.student_r2_ < 1.0


def test_ensemble_ranks_cold_items_by_its_text_models(ml100k):
    split = cold_item_split(ml100k, seed=0)
    components = {"fewshot": {"meta_steps": 50}, "itemknn": {}, "popularity": {}}
    model = make_model("ensemble", components=components, tune=False).fit(split.train)
    rnd = make_model("random").fit(split.train)
    # ranked among ALL items: ID-only components abstain on the cold items instead of sinking them
    r = evaluate_ranking(model, split.test, split.train).values["recall@20"]
    base = evaluate_ranking(rnd, split.test, split.train).values["recall@20"]
    assert r > 2 * base, (r, base)
    # a query that reveals nothing gets items with interactions first; free text lets the text
    # models bring untrained items back
    cold = set(split.train.items.id(i) for i in np.flatnonzero(split.train.item_counts() == 0))
    blind = model.score(Query()).sort_values(ascending=False)
    assert not cold & set(blind.index[:100]) and np.isneginf(blind[list(cold)]).all()
    told = model.score(Query(text="a documentary about jazz musicians in New Orleans"))
    assert np.isfinite(told[list(cold)]).all()
    # an audit: the text lifts an untrained item from unscored (-inf), and counted from the
    # lowest score that was a gain dwarfing every real match: on a shop's data with new books,
    # the whole list read "Popular right now.", its text match first among them
    from fewrec.explain.reasons import _contributions

    space = Query(text="space adventure films with aliens")
    found = _contributions(model, model.batch_from_queries([space]), 0, np.arange(3))
    with_text, without = model.score(space).to_numpy(), model.score(Query()).to_numpy()
    both = np.isfinite(without)
    assert found.gain_top == pytest.approx((with_text - without)[both].max(), rel=1e-4)


def test_blend_weighs_only_the_components_that_score_an_item():
    from fewrec.models.ensemble import blend

    nan = np.nan
    text = np.array([[1.0, 2.0, 3.0, nan]])  # scores every item but the last
    ids = np.array([[3.0, 1.0, nan, nan]])  # never saw items 2 and 3
    out = blend(np.array([1.0, 3.0]), [text, ids])
    np.testing.assert_allclose(out[0, :3], [(1 + 9) / 4, (2 + 3) / 4, 3.0])  # item 2: text alone
    assert out[0, 3] == -np.inf  # nobody scores it
    # a text model weighted 0 still ranks the items only it knows (plain mean), not -inf
    fallback = blend(np.array([0.0, 1.0]), [text, ids])
    np.testing.assert_allclose(fallback[0, :3], [3.0, 1.0, 3.0])


def test_tuning_ndcg_is_that_of_the_blend(cold_user):
    """The coordinate ascent's objective (episodes filled once, blended for many weights) equals
    NDCG@10 of `blend` on the same episodes, abstentions and excluded items included."""
    from fewrec.eval import metrics as M
    from fewrec.models.ensemble import Prepared, _blend_ndcg, _masked, blend

    rng = np.random.default_rng(0)
    ep = cold_user.test
    n, m = ep.targets.shape
    comps = [rng.standard_normal((n, m)).astype(np.float32) for _ in range(3)]
    comps[1][:, : m // 3] = np.nan  # abstains on a third of the items
    comps[2][rng.random((n, m)) < 0.2] = np.nan
    for w in ([1.0, 1.0, 1.0], [0.0, 2.0, 0.25], [0.0, 1.0, 0.0]):
        s = _masked(blend(np.array(w), comps), ep.exclude)
        hits = M.hits_matrix(M.top_k_matrix(s, 10), ep.targets)
        want = M.ndcg_at_k(hits, np.diff(ep.targets.indptr), 10).mean()
        assert _blend_ndcg(np.array(w), [Prepared.of(comps, ep)]) == pytest.approx(want, abs=1e-12)


def test_the_weight_search_blends_each_weight_vector_once(cold_user, monkeypatch):
    """The coordinate ascent blended a coordinate's current value again, and round 2 the vectors
    of round 1 (36 blends, 25 of them distinct, here; ~90 s per K at 20,000 items). Each is
    blended once now, and the weights found are those of trying every one."""
    import fewrec.models.ensemble as ens

    rng = np.random.default_rng(1)
    ep = cold_user.test
    n, m = ep.targets.shape
    comps = [rng.standard_normal((n, m)).astype(np.float32) for _ in range(3)]
    blended = []
    ndcg = ens._blend_ndcg

    def counting(w, episodes):
        blended.append(tuple(w))
        return ndcg(w, episodes)

    monkeypatch.setattr(ens, "_blend_ndcg", counting)
    model = ens.EnsembleRecommender(components={"popularity": {}, "itemknn": {}, "dlae": {}})
    w, best = model._ascend([(comps, ep)])
    assert len(blended) == len(set(blended))
    # every trial, as before: the same weights and NDCG
    tried = [np.ones(3)]
    want_w, want = np.ones(3), ndcg(np.ones(3), [ens.Prepared.of(comps, ep)])
    for _ in range(model.config.rounds):
        for j in range(3):
            for g in model.config.grid:
                trial = want_w.copy()
                trial[j] = g
                if trial.any():
                    val = ndcg(trial, [ens.Prepared.of(comps, ep)])
                    tried.append(trial)
                    if val > want + 1e-6:
                        want, want_w = val, trial
    assert len(blended) < len(tried)
    np.testing.assert_array_equal(w, want_w)
    assert best == want


def test_new_item_is_recommendable_at_once(fewshot_pair):
    meta, _ = fewshot_pair
    n_before = meta.n_items
    info = pd.DataFrame(
        {
            "title": ["Star Wars: Return of the Sith Lords"],
            "year": ["1998"],
            "genres": [["Action", "Adventure", "Sci-Fi", "War"]],
        }
    )
    meta.add_items(["new-1"], info)
    assert meta.n_items == n_before + 1
    s = meta.score(Query(items=["50", "172", "181"]), items=["new-1"])
    assert np.isfinite(s["new-1"])
    rank = (meta.score(Query(items=["50", "172", "181"])) > s["new-1"]).sum()
    assert rank < meta.n_items / 4  # a Star Wars-like item ranks high for a Star Wars fan
    with pytest.raises(DataError, match="already"):
        meta.add_items(["new-1"], info)


def test_update_items_rereads_text_on_a_copy(fewshot_pair, warm, fit_cached):
    meta, _ = fewshot_pair
    model = meta.copy_for_update()
    q = Query(items=["50", "172", "181"])  # Star Wars fans
    item = "1"  # Toy Story
    before = model.score(q, items=[item])[item]
    info = pd.DataFrame({"title": ["Star Battle"], "year": ["1980"], "genres": [["Sci-Fi", "War"]]})
    model.update_items([item], info)
    assert model.score(q, items=[item])[item] > before
    assert meta.score(q, items=[item])[item] == before  # the served model is untouched
    row = int(model.fitted.items.lookup([item])[0])
    assert model.fitted.item_info["title"].iloc[row] == "Star Battle"
    assert meta.fitted.item_info["title"].iloc[row] != "Star Battle"
    with pytest.raises(DataError, match="not in the catalogue"):
        model.update_items(["no-such-item"], info)
    # an ID-only model keeps the new fields for labels and reasons; its scores stay
    ease = fit_cached("warm", warm, "ease")
    relabelled = ease.copy_for_update()
    relabelled.update_items([item], info)
    assert relabelled.fitted.item_info["title"].iloc[row] == "Star Battle"
    assert ease.fitted.item_info["title"].iloc[row] != "Star Battle"
    np.testing.assert_array_equal(relabelled.score(q), ease.score(q))
    # a model that reads item text but cannot re-read it says so
    clf = fit_cached("warm", warm, "like-clf", max_episodes=3000)
    with pytest.raises(ConfigError, match="cannot re-read"):
        clf.copy_for_update().update_items([item], info)
    # so does an ensemble with such a component: it would score the item from its old text
    readers = {"content": {}, "like-clf": {"max_episodes": 3000}}
    ens = make_model("ensemble", components=readers, tune=False).fit(warm.train)
    with pytest.raises(ConfigError, match="cannot re-read"):
        ens.copy_for_update().update_items([item], info)


def test_update_items_gives_a_rarely_rated_item_its_new_texts_neighbours(fewshot_pair, cold_user, tmp_path):
    """An audit: a fitted item with fewer than 3 ratings has its text neighbours' item-item column,
    and `update_items` kept the old text's neighbours: a film renamed into a Star Wars sequel was
    scored for Star Wars fans by the item-item term as the film it had been. The column is now
    the one a fit with the new text gives."""
    meta, _ = fewshot_pair
    train = cold_user.train
    counts = np.bincount(train.interactions["item"], minlength=train.n_items)
    j = int(np.flatnonzero((counts > 0) & (counts < 3))[0])
    item = train.items.id(j)
    info = pd.DataFrame({"title": ["Star Wars: Return of the Empire"], "year": ["1983"]})
    info["genres"] = [["Action", "Adventure", "Romance", "Sci-Fi", "War"]]
    model = meta.copy_for_update()
    model.update_items([item], info)
    renamed = train.item_info.copy()
    renamed.loc[j, ["title", "year"]] = info.loc[0, ["title", "year"]]
    renamed.at[j, "genres"] = info.at[0, "genres"]
    data = dataclasses.replace(train, item_info=renamed)
    fresh = make_model("fewshot", meta_steps=1).fit(data)
    histories = model.batch_from_queries([Query(user=u) for u in train.users.ids[:40]]).implicit_history()
    updated, refit = model.item_item_.apply(histories), fresh.item_item_.apply(histories)
    np.testing.assert_allclose(updated[:, j], refit[:, j], rtol=1e-4, atol=1e-5)
    assert not np.allclose(meta.item_item_.apply(histories)[:, j], refit[:, j])
    others = np.delete(np.arange(train.n_items), j)
    np.testing.assert_array_equal(updated[:, others], meta.item_item_.apply(histories)[:, others])
    assert model.item_item_.base is meta.item_item_.base  # shared, not copied (n x n floats)
    fans = model.batch_from_queries([Query(items=["50", "172", "181"])]).implicit_history()
    assert model.item_item_.apply(fans)[0, j] > meta.item_item_.apply(fans)[0, j]
    model.save(tmp_path / "m")
    np.testing.assert_allclose(load_model(tmp_path / "m").item_item_.apply(histories), updated, rtol=1e-6)


def test_update_items_checks_its_arguments_and_keeps_the_fields_not_given(fewshot_pair):
    """A string of ids was read one character per id ("12": items 1 and 2 renamed); a dict as
    info was an AttributeError; the fields not given were left out of the re-read text (and
    MovieLens' template refused an update without its year)."""
    from fewrec.errors import ArgumentError

    meta, _ = fewshot_pair
    model = meta.copy_for_update()
    q = Query(items=["172", "181"])
    with pytest.raises(ArgumentError, match="must be a list of ids"):
        model.update_items("12", pd.DataFrame({"title": ["A", "B"]}))
    with pytest.raises(ArgumentError, match="must be a DataFrame"):
        model.update_items(["3"], {"title": ["X"]})
    row = int(model.fitted.items.lookup(["50"])[0])
    whole = model.fitted.item_info.iloc[[row]].reset_index(drop=True).assign(title="Star Wars IV")
    full = model.copy_for_update()
    full.update_items(["50"], whole)
    model.update_items(["50"], pd.DataFrame({"title": ["Star Wars IV"]}))
    assert model.fitted.item_info["year"].iloc[row] == meta.fitted.item_info["year"].iloc[row]
    np.testing.assert_allclose(model.score(q, items=["50"]), full.score(q, items=["50"]), rtol=1e-5)
    assert model.score(q, items=["50"])["50"] != meta.score(q, items=["50"])["50"]


def test_content_gives_items_without_interactions_the_popularity_their_text_predicts(ml100k, tmp_path):
    """With the popularity of a count of 0, `content` ranked no held-out film of the cold-item
    split into any user's top 20 of the whole catalogue (recall@20 0.000, random's 0.013): each
    came behind every film of a like text match that someone had rated."""
    from scipy.stats import spearmanr

    split = cold_item_split(ml100k, seed=0)
    content = make_model("content").fit(split.train)
    unseen = content.fitted.popularity == 0
    counts = np.bincount(ml100k.interactions["item"].to_numpy(), minlength=ml100k.n_items)
    # the held-out films' predicted popularity follows how often they were in fact rated
    assert spearmanr(content.pop_z_[unseen], counts[unseen]).statistic > 0.3
    report = evaluate_ranking(content, split.test, split.train, ks=(20,))
    assert report.values["recall@20"] > 2 * 20 / content.n_items  # twice a random order's, at least
    # such an item can come up for a query of nothing, and is not said to be popular
    from fewrec.explain.reasons import NEW_ITEM_TEXT

    anyone = content.recommend(Query(), k=40, explain=True)
    new = unseen[content.fitted.items.lookup(anyone["item"].tolist())]
    assert new.any() and set(anyone["reason"][new]) == {NEW_ITEM_TEXT}
    assert set(anyone["reason"][~new]) == {"Popular right now."}
    # kept by a save: an item added after a load gets the popularity it gets before
    content.save(tmp_path / "content")
    loaded = load_model(tmp_path / "content")
    dune = pd.DataFrame({"title": ["Dune"], "genres": [["Sci-Fi"]]})
    for model in (content, loaded):
        model.add_items(["dune"], dune)
    assert loaded.pop_z_[-1] == content.pop_z_[-1] != loaded.pop_z_[np.flatnonzero(unseen)[0]]


def test_id_models_cannot_add_items(warm, fit_cached):
    ease = fit_cached("warm", warm, "ease")
    with pytest.raises(ConfigError):
        ease.add_items(["x"])


def test_content_adds_items_from_their_text(warm):
    """`content` scored text-only items but said it could not add any without retraining."""
    content = make_model("content").fit(warm.train)
    assert content.adds_items and content.rereads_item_text
    content.add_items(["dune"], pd.DataFrame({"title": ["Dune"], "year": [2021], "genres": [["Sci-Fi"]]}))
    recs = content.recommend(Query(text="Dune, a science fiction epic"), k=3)["item"].tolist()
    assert "dune" in recs
    content.update_items(["dune"], pd.DataFrame({"title": ["Mamma Mia"], "genres": [["Musical"]]}))
    assert "dune" not in content.recommend(Query(text="Dune, a science fiction epic"), k=3)["item"].tolist()
    # no interactions: the popularity its text predicts (it was the lowest), here and after a save
    from fewrec.models.content import predicted_popularity

    expected = predicted_popularity(content.pop_from_text_, content.item_emb_[-1:], content.pop_z_[:-1])
    np.testing.assert_allclose(content.pop_z_[-1:], expected, rtol=1e-5)
    # a field of the template the new items lack is blank (MovieLens' template names the year:
    # an item without one was refused, with a fix naming the model's own template)
    content.add_items(["dune-2"], pd.DataFrame({"title": ["Dune Part Two"], "genres": [["Sci-Fi"]]}))
    with pytest.warns(UserWarning, match=r"1 new items have no text \(every field blank\): \['bare'\]"):
        content.add_items(["bare"])  # no info at all: its text is its id (it was its row number, "0")
    st = content.fitted
    assert content.texts_of(st.item_info.iloc[-2:]) == ["Dune Part Two (). Genres: Sci-Fi.", "bare"]
    from fewrec.text.encoder import get_encoder

    bare = get_encoder(content.config.encoder).encode(["bare"])[0]
    np.testing.assert_allclose(content.item_emb_[-1], bare, atol=1e-5)
    # a free `text` is read though MovieLens' template does not name it (it was dropped)
    opera = "a space opera: rebels fight an evil galactic empire"
    content.add_items(["desc"], pd.DataFrame({"title": ["Untitled"], "text": [opera]}))
    assert content.texts_of(content.fitted.item_info.iloc[[-1]])[0].endswith(opera)
    wish = Query(text="space opera rebels against an empire")
    assert "desc" in content.recommend(wish, k=5)["item"].tolist()


def test_a_failed_add_leaves_the_model_as_it_was_and_fields_keep_their_types(
    fewshot_pair, tmp_path, monkeypatch
):
    """An add that fails part way (here: the model's own step, as an encoder failure would)
    changes nothing; mistyped ids and info are ArgumentErrors; a year given as a number and
    genres as one "|"-joined string take the catalogue's types, so the model still saves."""
    from fewrec.errors import ArgumentError

    meta, _ = fewshot_pair
    model = meta.copy_for_update()
    n, q = model.n_items, Query(items=["50", "181"])
    before = model.score(q)

    def broken(start, info):
        raise DataError("the encoder failed")

    with monkeypatch.context() as patch:
        patch.setattr(model, "_add_items", broken)
        with pytest.raises(DataError, match="encoder failed"):
            model.add_items(["bad-1"], pd.DataFrame({"title": ["X"], "genres": [["Drama"]]}))
    assert model.n_items == n and len(model.fitted.item_info) == n and len(model.fitted.popularity) == n
    np.testing.assert_array_equal(model.score(q), before)
    with pytest.raises(ArgumentError, match="must be a list of ids"):
        model.add_items("abc", pd.DataFrame({"title": list("abc")}))
    with pytest.raises(ArgumentError, match="must be a DataFrame"):
        model.add_items(["z"], {"title": "Z"})
    with pytest.raises(DataError, match="empty"):
        model.add_items([" "], pd.DataFrame({"title": ["Z"], "year": ["1999"], "genres": [["Drama"]]}))
    model.add_items(
        ["bad-1"], pd.DataFrame({"title": ["Dune"], "year": [2021], "genres": ["Sci-Fi|Adventure"]})
    )
    row = model.fitted.item_info.iloc[-1]
    assert row["year"] == "2021" and list(row["genres"]) == ["Sci-Fi", "Adventure"]
    with pytest.warns(UserWarning, match="'titel' \\(did you mean 'title'\\?\\)"):
        model.add_items(["typo"], pd.DataFrame({"titel": ["Dune"], "title": ["Dune"], "year": ["2021"]}))
    # an item given without genres gets none (an empty list): NaN there saved, then failed to load
    model.add_items(["no-genres"], pd.DataFrame({"title": ["Shovel"], "year": ["2001"]}))
    assert list(model.fitted.item_info["genres"].iloc[-1]) == []
    loaded = load_model(model.save(tmp_path / "m"))
    assert loaded.fitted.item_info["title"].iloc[-3] == "Dune"
    assert list(loaded.fitted.item_info["genres"].iloc[-1]) == []


def test_a_save_that_fails_keeps_the_model_saved_there_before(warm, fit_cached, tmp_path):
    """Item fields that cannot be written raise a DataError before any file is replaced."""
    model = fit_cached("warm", warm, "popularity")
    path = model.save(tmp_path / "m")
    broken = load_model(path)
    info = broken.fitted.item_info.copy()
    info["title"] = [1 if i == 0 else t for i, t in enumerate(info["title"])]  # int among text
    broken.fitted.item_info = info
    files = {f.name: f.read_bytes() for f in path.iterdir()}
    with pytest.raises(DataError, match="cannot be saved"):
        broken.save(path)
    assert {f.name: f.read_bytes() for f in path.iterdir()} == files
    assert load_model(path).fitted.item_info["title"].iloc[0] == model.fitted.item_info["title"].iloc[0]


def test_item_item_of_added_items_equals_the_dense_matrix_it_stands_for():
    rng = np.random.default_rng(0)
    n0, n_new = 30, 7
    base = rng.normal(size=(n0, n0)).astype(np.float32)
    idx = np.stack([rng.choice(n0, 3, replace=False) for _ in range(n_new)])
    w = rng.random((n_new, 3))
    ii = ItemItem.dense(base).extend(idx[:4], w[:4]).extend(idx[4:], w[4:])
    mix = np.zeros((n_new, n0))
    for j in range(n_new):
        mix[j, idx[j]] = w[j]
    dense = np.zeros((n0 + n_new, n0 + n_new))
    dense[:n0, :n0] = base
    dense[:n0, n0:] = base @ mix.T  # an added item's column mixes its neighbours' columns
    dense[n0:, :n0] = dense[:n0, n0:].T  # and its row mirrors its column
    h = sp.random(5, n0 + n_new, density=0.3, random_state=1, format="csr")
    np.testing.assert_allclose(ii.apply(h), h @ dense, rtol=1e-5, atol=1e-5)
    again = ItemItem.from_arrays(ii.as_arrays())
    np.testing.assert_allclose(again.apply(h), ii.apply(h), rtol=1e-6)


def test_added_items_survive_save_and_load(fewshot_pair, tmp_path):
    meta, _ = fewshot_pair
    model = meta.copy_for_update()
    info = pd.DataFrame(
        {
            "title": ["Alien Harbour", "Quiet Meadows"],
            "year": ["1990", "1991"],
            "genres": [["Sci-Fi"], ["Drama"]],
        }
    )
    model.add_items(["saved-1", "saved-2"], info)
    q = Query(items=["50", "saved-1"])
    before = model.score(q)
    loaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.score(q), before, rtol=1e-5, atol=1e-6)
    assert "saved-1" not in meta.fitted.items  # the served copy is untouched
    # re-read items save as they score: a load recomputed the student's calibration from the
    # re-read texts (scores moved by up to 0.015 and 15 of 200 users' top 10 changed)
    model.update_items(["50", "181", "1"], pd.DataFrame({"title": ["Space Opera", "Jedi", "Toys"]}))
    users = [Query(items=[i, "saved-2"]) for i in ("50", "100", "181", "7", "222")]
    again = load_model(model.save(tmp_path / "m2"))
    np.testing.assert_allclose(again.score_many(users), model.score_many(users), rtol=1e-5, atol=1e-5)


def test_a_refit_is_a_fresh_fit_and_a_failed_one_changes_nothing(ml100k):
    """An audit: a second fit kept the first fit's text-query cache (a refit answered text
    queries with the old catalogue's scores), and a fit that failed inside the model left the
    new ids beside the old weights (wrong items, or a raw numpy error)."""
    from fewrec.data import load_interactions

    small = dict(meta_steps=20, distill_epochs=20)
    model = make_model("fewshot", **small).fit(ml100k)
    text = Query(text="space adventure sci-fi")
    model.recommend(text, k=5)  # fills its text cache
    # the same films under other ids, in another order
    order = np.random.default_rng(0).permutation(ml100k.n_items)
    other = load_interactions(
        pd.DataFrame(
            {
                "user_id": ml100k.interactions["user"],
                "item_id": [f"m{i}" for i in ml100k.interactions["item"]],
                "rating": ml100k.interactions["rating"],
                "timestamp": ml100k.interactions["timestamp"],
            }
        ),
        ml100k.item_info.iloc[order].assign(item_id=[f"m{i}" for i in order]),
        item_template=ml100k.item_template,
    )
    model.fit(other)
    fresh = make_model("fewshot", **small).fit(other)
    np.testing.assert_allclose(model.score(text).to_numpy(), fresh.score(text).to_numpy(), atol=1e-5)
    ridge = make_model("kshot-ridge", shots=(5,), neighbourhood=0.0).fit(ml100k)
    before = ridge.recommend(Query(items=["50", "181"]), k=5)
    tiny = load_interactions(pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "z"]}))
    with pytest.raises(ConfigError):
        ridge.fit(tiny)  # histories too short for K = 5
    assert ridge.n_items == ml100k.n_items
    pd.testing.assert_frame_equal(ridge.recommend(Query(items=["50", "181"]), k=5), before)


def test_dlae_trained_for_few_items_beats_it_trained_for_many(ml100k):
    """Real run: K = 5 random-reveal validation users (never trained on). Dropout matched to
    the history size must beat the same closed form trained with little dropout."""
    from fewrec.data.splits import cold_user_split

    split = cold_user_split(ml100k, shots=5, seed=0, random_shots=True)
    matched = make_model("dlae").fit(split.train)
    fixed = make_model("dlae", dropout=0.5).fit(split.train)
    got = {
        n: evaluate_ranking(m, split.valid, split.train).values["ndcg@10"]
        for n, m in (("matched", matched), ("fixed", fixed))
    }
    assert got["matched"] > got["fixed"] + 0.03, got
    # one model per history size: a 1-item user is scored by the matrix trained for K = 1
    assert matched.weights_.shape[0] == len(matched.config.shots) and fixed.weights_.shape[0] == 1
    counts = split.train.user_counts()
    mean = counts[counts > 0].mean()
    rates = [matched.dropout_for(k, mean) for k in matched.config.shots]
    assert rates == sorted(rates, reverse=True) and rates[0] > 0.98
    s = matched.score(Query(items=["50"])).to_numpy()
    want = matched.weights_[0][ml100k.items.index(["50"])[0]]
    ok = np.isfinite(s)
    assert ok.sum() > 1000
    np.testing.assert_allclose(s[ok], want[ok], rtol=1e-5, atol=1e-7)


def test_ensemble_weights_for_known_users_are_tuned_on_known_users(warm):
    """Real run on the warm split's validation interactions: weights tuned on held-out
    interactions of training users beat the cold-start weights for known users."""
    cfg = {
        "components": {"itemknn": {}, "ease": {"l2": 500.0}},  # warm 0.256 vs cold 0.225
        "shots": [0, 5, 20],
        "rounds": 1,
        "folds": 2,
        "grid": [0.0, 1.0, 2.0],
        "rerank": False,  # it serves new users only; the blends are what is compared here
    }
    models = {w: make_model("ensemble", warm=w, **cfg).fit(warm.train) for w in (True, False)}
    assert models[False].warm_weights_ is None and models[True].warm_weights_.shape == (2,)
    got = {w: evaluate_ranking(m, warm.valid, warm.train).values["ndcg@10"] for w, m in models.items()}
    assert got[True] > got[False] + 0.01, got
    # new users (no user id) still get the per-K weights
    q = Query(items=["50", "172", "181"])
    np.testing.assert_array_equal(models[True].score(q).to_numpy(), models[False].score(q).to_numpy())


@pytest.mark.parametrize("bad", [{"dropout": 1.0}, {"dropout": -0.1}, {"scale": 0}, {"l2": 0}])
def test_dlae_rejects_bad_settings_by_name(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        make_model("dlae", **bad)


def test_dlae_refuses_a_catalogue_too_large_for_memory(warm, monkeypatch):
    from fewrec.models.ease import DLAE

    monkeypatch.setattr(DLAE, "MAX_BYTES", 1e6)
    with pytest.raises(
        ConfigError, match="dlae with 6 history sizes would need .* Fix: keep the most popular"
    ):
        make_model("dlae").fit(warm.train)


def test_ranking_the_item_item_weight_lifts_cold_users(ml100k):
    """Real run: cold-user random K = 5, validation users. Rescaling the meta-learned item-item
    weight for NDCG@10 on held-out episodes must raise the weight and the validation NDCG."""
    from fewrec.data.splits import cold_user_split

    split = cold_user_split(ml100k, shots=5, seed=0, random_shots=True)
    cfg = {"reveal": "random", "meta_steps": 150, "distill_epochs": 10}  # (distillation: cold items)
    plain = make_model("fewshot", **cfg).fit(split.train)
    ranked = make_model("fewshot", rank_item_item=True, **cfg).fit(split.train)
    assert ranked.params_.beta >= 4 * plain.params_.beta, (plain.params_.beta, ranked.params_.beta)
    assert ranked.meta_log_["beta_scale"] >= 4 and "beta_scale" not in plain.meta_log_
    got = {
        n: evaluate_ranking(m, split.valid, split.train).values["ndcg@10"]
        for n, m in (("plain", plain), ("ranked", ranked))
    }
    assert got["ranked"] > got["plain"] + 0.02, got


def test_ensemble_on_too_few_users_falls_back_to_equal_weights(caplog):
    from fewrec.data import load_interactions

    inter = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 3, 3, 3, 4],
            "item_id": ["a", "b", "a", "c", "b", "c", "d", "a"],
            "rating": [5, 4, 3, 5, 4, 4, 2, 5],
            "timestamp": range(8),
        }
    )
    cfg = {"components": {"itemknn": {}, "dlae": {}, "popularity": {}}, "shots": [0, 1]}
    with caplog.at_level("WARNING", logger="fewrec.models.ensemble"):
        model = make_model("ensemble", **cfg).fit(load_interactions(inter))
    assert "too few to tune" in caplog.text
    assert (model.weights_ == 1).all() and (model.warm_weights_ == 1).all()
    assert list(model.recommend(Query(user="1"), k=2)["item"]) == ["c", "d"]


def test_ensemble_tunes_on_every_eligible_user_once_across_folds():
    """folds > 1: the tuning groups partition the eligible users (each scored by components
    fitted without it); folds = 1: one random holdout share, as before."""
    users = np.arange(103)
    rng = np.random.default_rng(0)
    groups = make_model("ensemble", folds=5)._tuning_groups(users, rng)
    assert len(groups) == 5 and all(len(g) in (20, 21) for g in groups)
    np.testing.assert_array_equal(np.sort(np.concatenate(groups)), users)
    one = make_model("ensemble", folds=1, holdout=0.1)._tuning_groups(users, rng)
    assert len(one) == 1 and len(one[0]) == 10 and len(np.unique(one[0])) == 10
    with pytest.raises(ConfigError, match="folds"):
        make_model("ensemble", folds=0)


def test_ensemble_tunes_on_new_users_read_as_served(cold_user, monkeypatch):
    """The tuning episodes read a revealed low rating as served (a dislike, left out for a
    component that does not read ratings); they read it as a like, so the weights and the
    re-ranker were tuned on histories no new user's query gives."""
    from fewrec.models.knn import ItemKNN

    seen = []
    original = ItemKNN.score_batch

    def spy(self, batch):
        if (np.asarray(batch.users) < 0).all():
            seen.append(batch.history.data.min(initial=np.inf))
        return original(self, batch)

    monkeypatch.setattr(ItemKNN, "score_batch", spy)
    cfg = {"components": {"itemknn": {}, "popularity": {}}, "shots": [3, 5], "folds": 2, "warm": False}
    model = make_model("ensemble", rerank=False, **cfg).fit(cold_user.train)
    assert len(seen) == 2 * 2 * 2  # folds x shot counts x reveals
    assert min(seen) > model.fitted.dislike_at, seen


def test_ensemble_weighs_a_query_by_the_items_it_reveals(warm):
    """The weights (and re-ranker) of a new user go by the number of items revealed, as in the
    tuning episodes; a query revealing five items, two of them dislikes, took the weights of
    three."""
    ens = make_model("ensemble", components={"itemknn": {}, "popularity": {}}, tune=False, shots=[3, 5])
    ens.fit(warm.train)
    ens.weights_ = np.array([[1.0, 0.0], [0.0, 1.0]])  # K = 3: item-kNN alone; K = 5: popularity
    query = Query(items=["50", "181", "100", "1", "258"], ratings=[5, 5, 5, 1, 2])
    got = ens.recommend(query, k=10)["item"].tolist()
    assert got == make_model("popularity").fit(warm.train).recommend(query, k=10)["item"].tolist()


#: The training data of the cold-user split of seed 0, the same for both reveals (the reveals
#: differ in what the held-out users show): their fits are shared.
COLD_USER_TRAIN = "cold-user seed 0"


def test_kshot_ridge_beats_popularity_on_first_items_where_autoencoders_fall_below_it(cold_user, fit_cached):
    """Real run: cold-user K = 5 earliest reveal, validation users (never trained on). A new
    user's first ratings predict the rest poorly for models that reconstruct a user from any of
    their items (DLAE falls below popularity); the ridge fitted on first-K episodes beats both."""
    # the per-history-size models up to 5 only: a query of 5 items or fewer uses no other, so
    # the scores are the default's (0.5542 and 0.4362 either way), in two thirds of the time
    upto5 = {"popularity": {}, "dlae": {"shots": (1, 3, 5)}, "kshot-ridge": {"shots": (0, 1, 3, 5)}}
    got = {
        n: evaluate_ranking(
            fit_cached(COLD_USER_TRAIN, cold_user, n, **c), cold_user.valid, cold_user.train
        ).values["ndcg@10"]
        for n, c in upto5.items()
    }
    assert got["kshot-ridge"] > got["popularity"] + 0.03 > got["dlae"] + 0.03, got


def test_kshot_ridge_neighbourhood_block_lifts_random_reveals(ml100k, cold_user, fit_cached):
    """Its neighbourhood block (on by default) lets 660 training users teach it about items
    like the ones a user reveals: on validation users revealing five random items (the
    earliest five, scored as served, with dislikes left out, are level: 0.5218 against 0.5219)."""
    from fewrec.data.splits import cold_user_split

    split = cold_user_split(ml100k, shots=5, seed=0, random_shots=True)
    assert split.train.interactions.equals(cold_user.train.interactions)  # what COLD_USER_TRAIN says
    got = {
        block: evaluate_ranking(
            # models up to 5 revealed items only, as the validation queries use (the default's scores)
            fit_cached(COLD_USER_TRAIN, split, "kshot-ridge", neighbourhood=block, shots=(0, 1, 3, 5)),
            split.valid,
            split.train,
        ).values["ndcg@10"]
        for block in (0.0, 10.0)
    }
    assert got[10.0] > got[0.0] + 0.02, got


@pytest.mark.parametrize(
    ("side_weight", "neighbourhood", "n_items", "dual"),
    [(0.0, 0.0, 40, False), (2.0, 0.0, 40, False), (2.0, 3.0, 40, True), (0.0, 3.0, 12, False)],
)
def test_kshot_ridge_is_the_ridge_fit_of_its_episodes(ml100k, side_weight, neighbourhood, n_items, dual):
    """The closed form equals scikit-learn's Ridge (unpenalised intercept) fitted on the
    episodes built by hand: each user's first K items (their neighbourhood: the unit-length sum
    of their cosine-similarity rows, times the setting; and scaled side-info indicators) -> the
    rest. With the neighbourhood block, fewer episodes than inputs take the dual form and more
    take the normal equations, made a block at a time (``dual``: which one each case checks)."""
    from sklearn.linear_model import Ridge

    from fewrec.data.dataset import side_onehot, side_vocab

    inter = ml100k.interactions
    primal = neighbourhood and not dual
    users = np.unique(inter["user"].to_numpy())[: 400 if primal else 60]
    keep = inter["user"].isin(users) & (inter["item"] < n_items)
    small = ml100k.with_interactions(inter[keep.to_numpy()])
    if primal:  # a catalogue of only these items, so that episodes outnumber inputs
        cols = Columns(user="user", item="item", rating="rating", timestamp="timestamp", genres=None)
        small = load_interactions(small.interactions.astype({"user": str, "item": str}), columns=cols)
    cfg = {"shots": [2, 3], "reveal": "earliest", "l2": 7.0, "side_weight": side_weight}
    model = make_model("kshot-ridge", **cfg, neighbourhood=neighbourhood).fit(small)
    side = side_weight * side_onehot(small.user_info, side_vocab(small.user_info), small.n_users)
    x = small.matrix(implicit=True).toarray()
    co = x.T @ x
    norm = np.sqrt(np.diag(co))
    norm[norm == 0] = 1.0
    cos = co / np.outer(norm, norm)
    np.fill_diagonal(cos, 0.0)

    def around(row):
        v = row.astype(float) @ cos
        return neighbourhood * v / (np.linalg.norm(v) or 1.0)

    assert len(model.side_vocab_) == (side.shape[1] if side_weight else 0)
    srt = small.interactions.sort_values(["user", "timestamp"], kind="stable")
    for j, k in enumerate((2, 3)):
        xs, ys = [], []
        for u, g in srt.groupby("user", sort=True):
            it = g["item"].to_numpy()
            if len(it) > k:
                row = np.bincount(it[:k], minlength=small.n_items) > 0
                block = [around(row)] if neighbourhood else []
                xs.append(np.concatenate([row, *block, side[u]] if side_weight else [row, *block]))
                ys.append(np.bincount(it[k:], minlength=small.n_items) > 0)
        if neighbourhood:
            assert (len(xs) < len(xs[0])) == dual, (len(xs), len(xs[0]))
        ref = Ridge(alpha=7.0).fit(np.array(xs, float), np.array(ys, float))
        np.testing.assert_allclose(model.weights_[j], ref.coef_.T, atol=1e-5)
        np.testing.assert_allclose(model.intercepts_[j], ref.intercept_, atol=1e-5)
    # a 3-item query without side info is scored by the K = 3 model: intercept + the sum of its
    # items' rows, each side field at the training users' average
    items = small.items.to_external(srt["item"].to_numpy()[:3])
    s = model.score(Query(items=items)).to_numpy()
    idx = small.items.index(items)
    w, n = model.weights_[1], small.n_items
    start = 2 * n if neighbourhood else n
    want = model.intercepts_[1] + w[idx].sum(axis=0) + model.side_means_[1] @ w[start:]
    if neighbourhood:
        want += around(np.bincount(idx, minlength=n) > 0) @ w[n:start]
    ok = np.isfinite(s)
    np.testing.assert_allclose(s[ok], want[ok], rtol=1e-4, atol=1e-5)


def test_kshot_ridge_leaves_out_history_sizes_the_data_cannot_teach(ml100k, caplog):
    """A catalogue of short histories (no user past 14 items) was refused for its K = 20 model,
    and the default ensemble with it; the sizes no episode can have are left out, with a word."""
    inter = ml100k.interactions.sort_values(["user", "timestamp"]).groupby("user").head(14)
    short = ml100k.with_interactions(inter[inter["user"] < 60])
    model = make_model("kshot-ridge", shots=[0, 5, 20]).fit(short)
    assert model.shots_.tolist() == [0, 5] and "history sizes [20] are left out" in caplog.text
    assert np.isfinite(model.score(Query(items=["50", "181"])).to_numpy()).any()
    with pytest.raises(ConfigError, match="no training user has more than 14 interactions"):
        make_model("kshot-ridge", shots=[20]).fit(short)


def test_kshot_ridge_reads_the_side_info_a_new_user_gives(cold_user):
    model = make_model("kshot-ridge", shots=[0, 5], neighbourhood=0.0).fit(cold_user.train)
    assert {c for c, _ in model.side_vocab_} == {"age", "gender", "occupation"}
    young = model.score(Query(user_info={"age": 18, "gender": "M", "occupation": "student"})).to_numpy()
    old = model.score(Query(user_info={"age": 65, "gender": "F", "occupation": "retired"})).to_numpy()
    blank = model.score(Query()).to_numpy()
    part = model.score(Query(user_info={"age": 18})).to_numpy()
    ok = np.isfinite(blank)
    assert np.corrcoef(young[ok], old[ok])[0, 1] < 0.98
    # a field not given counts as the average: only age moves a partial query's scores
    w, mean = model.weights_[0][model.n_items :], model.side_means_[0]
    age18 = np.array([c == "age" and lvl == "10" for c, lvl in model.side_vocab_], float)
    is_age = np.array([c == "age" for c, _ in model.side_vocab_])
    moved = np.where(is_age, age18, mean)
    np.testing.assert_allclose(part[ok] - blank[ok], ((moved - mean) @ w)[ok], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "bad", [{"l2": 0}, {"shots": [-1, 5]}, {"shots": []}, {"reveal": "latest"}, {"windows": 0}]
)
def test_kshot_ridge_rejects_bad_settings_by_name(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        make_model("kshot-ridge", **bad)


def test_kshot_ridge_says_what_to_do_when_no_user_has_enough_items(ml100k, warm, monkeypatch):
    from fewrec.models.ease import KShotRidge

    inter = ml100k.interactions
    one_each = ml100k.with_interactions(inter.drop_duplicates("user"))
    with pytest.raises(ConfigError, match="lower shots"):
        make_model("kshot-ridge", shots=[1]).fit(one_each)
    monkeypatch.setattr(KShotRidge, "MAX_BYTES", 1e6)
    with pytest.raises(
        ConfigError, match="kshot-ridge with 6 history sizes would need .* Fix: keep the most"
    ):
        make_model("kshot-ridge").fit(warm.train)


def test_kshot_ridge_windows_add_the_next_blocks_of_k_as_earliest_episodes(ml100k):
    """windows=2: each user's first K items -> the rest, and the next K -> the rest after them."""
    from sklearn.linear_model import Ridge

    inter = ml100k.interactions
    users = np.unique(inter["user"].to_numpy())[:60]
    keep = inter["user"].isin(users) & (inter["item"] < 40)
    small = ml100k.with_interactions(inter[keep.to_numpy()])
    cfg = {
        "shots": [2],
        "reveal": "earliest",
        "l2": 3.0,
        "side_weight": 0.0,
        "windows": 2,
        "neighbourhood": 0.0,
    }
    model = make_model("kshot-ridge", **cfg).fit(small)
    xs, ys = [], []
    for _, g in small.interactions.sort_values(["user", "timestamp"], kind="stable").groupby("user"):
        it = g["item"].to_numpy()
        for lo in (0, 2):
            if len(it) > lo + 2:
                xs.append(np.bincount(it[lo : lo + 2], minlength=small.n_items) > 0)
                ys.append(np.bincount(it[lo + 2 :], minlength=small.n_items) > 0)
    ref = Ridge(alpha=3.0).fit(np.array(xs, float), np.array(ys, float))
    np.testing.assert_allclose(model.weights_[0], ref.coef_.T, atol=1e-5)
    np.testing.assert_allclose(model.intercepts_[0], ref.intercept_, atol=1e-5)


def test_adding_items_keeps_the_catalogues_text_and_types():
    """Filling a field the new items lacked with NaN turned a whole-number year column into
    floats: every old item's text read 'Alpha (1995.0)' after the add."""
    from fewrec.data import load_interactions

    items = pd.DataFrame(
        {"item_id": ["a", "b", "c"], "title": ["Alpha", "Beta", "Gamma"], "year": [1995, 1996, 1997]}
    )
    inter = pd.DataFrame({"user_id": [1, 1, 2, 2], "item_id": ["a", "b", "b", "c"]})
    model = make_model("content").fit(load_interactions(inter, items, item_template="{title} ({year})"))
    model.add_items(["d"], pd.DataFrame({"title": ["Delta"]}))
    model.add_items(["e"], pd.DataFrame({"title": ["Epsilon"], "year": [2001.0]}))
    st = model.fitted
    assert model.texts_of(st.item_info) == [
        "Alpha (1995)",
        "Beta (1996)",
        "Gamma (1997)",
        "Delta ()",
        "Epsilon (2001)",
    ]


def test_text_scores_of_replaced_item_embeddings_are_not_reused(warm, fit_cached):
    """fewshot memoises a text's scores over every item. `add_items` empties that memo and then
    replaces the item embeddings: a text query on another thread in between stored scores of the
    old catalogue in the new memo, and later queries with that text read them (too short by the
    added items). The memo now belongs to the embeddings it was made from."""
    import copy

    model = copy.deepcopy(fit_cached("warm", warm, "fewshot", meta_steps=100))
    vector = np.random.default_rng(0).standard_normal(model.emb_.shape[1]).astype(np.float32)
    before = model._text_match("space adventure", vector)
    model.emb_ = np.concatenate([model.emb_, -model.emb_[:3]])  # as add_items goes on to do
    after = model._text_match("space adventure", vector)
    assert len(before) == len(model.emb_) - 3
    assert len(after) == len(model.emb_)
    cos = model.emb_ @ vector
    np.testing.assert_allclose(after, (cos - cos.mean()) / (cos.std() + 1e-9), rtol=1e-4, atol=1e-5)


def test_a_model_that_answered_a_text_query_can_be_copied_and_pickled(warm, fit_cached):
    """The memo of text scores holds a lock: copy.deepcopy and pickle of such a model failed.
    So did pickle once a text query was explained: the titles that name a genre were kept with
    a lambda (found when another test had explained one on this cached model first)."""
    import copy
    import pickle

    model = fit_cached("warm", warm, "fewshot", meta_steps=100)
    model.recommend(Query(text="I love horror films"), k=3, explain=True)
    assert "genre_titles_" in vars(model)  # (what the explanation kept)
    want = model.recommend(Query(text="a funny animated film for children"), k=5)
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert twin.text_cache_.emb is twin.emb_ and not twin.text_cache_._data
        got = twin.recommend(Query(text="a funny animated film for children"), k=5)
        assert got["item"].tolist() == want["item"].tolist()


def test_tiny_data_says_what_the_few_shot_models_could_not_learn():
    """An audit on tiny data: fewshot meta-learned with every user held out (8 of 8), so its
    prior came back unchanged, and with fewer steps than its check interval it never kept a
    step; the student's error named "distillation" and asked for more interactions; transitions
    scored everything 0 on equal times; all without a word."""
    from fewrec.data.loaders import load_interactions
    from fewrec.errors import DataError

    rng = np.random.default_rng(1)
    rows = [(f"u{u}", f"i{i}") for u in range(200) for i in rng.choice(10, 4, replace=False)]
    # two tastes (even users pick among items 0-4, odd ones among 5-9): something to learn, where
    # on the uniform rows a step's gain on the held-out users is chance (each is checked once)
    tastes = [(f"u{u}", f"i{i + 5 * (u % 2)}") for u in range(200) for i in rng.choice(5, 4, replace=False)]
    data = load_interactions(
        pd.DataFrame(tastes, columns=["user_id", "item_id"]), columns={"rating": None, "timestamp": None}
    )
    model = make_model("fewshot", meta_steps=20).fit(data)  # fewer than the check interval of 25
    assert model.meta_log_["val_loss_best"] < model.meta_log_["val_loss_start"]
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(8)], "gender": ["F", "M"] * 4})
    few = load_interactions(
        pd.DataFrame(rows[:32], columns=["user_id", "item_id"]),
        users=users,
        columns={"rating": None, "timestamp": None},
    )
    plain = make_model("fewshot", meta_steps=25).fit(few)  # side info given no weight: not "does not read"
    assert plain.query_notes(Query(user_info={"gender": "F"})) == [
        "fewshot gives no weight to user side info, so gender was ignored"
    ]
    one = load_interactions(
        pd.DataFrame([("u1", "a"), ("u1", "b"), ("u2", "c"), ("u3", "d")], columns=["user_id", "item_id"]),
        columns={"rating": None, "timestamp": None},
    )
    with pytest.raises(DataError, match="needs at least 4 items with interactions.*use `content`"):
        make_model("fewshot").fit(
            load_interactions(
                pd.DataFrame([("u1", "a"), ("u2", "b")], columns=["user_id", "item_id"]),
                columns={"rating": None, "timestamp": None},
            )
        )
    with pytest.warns(UserWarning, match="meta-learning needs users with 2 or more items.*has 1"):
        make_model("fewshot").fit(one)
    same = pd.DataFrame(
        {"user_id": ["u1", "u1", "u2", "u2"], "item_id": ["a", "b", "b", "c"], "timestamp": [100] * 4}
    )
    with pytest.warns(UserWarning, match="transitions learned nothing.*times are all the same"):
        make_model("transitions").fit(load_interactions(same, columns={"rating": None}))


def test_the_default_ensemble_leaves_fewshot_out_on_too_few_items():
    """On data with fewer than 4 items with interactions the default ensemble failed on its
    fewshot component's text -> factors student; it now leaves fewshot out, says why, and fits
    the rest. Components asked for by name are kept, and fail as they would alone."""
    rows = [(f"u{u}", f"i{i}") for u in range(30) for i in range(3) if (u + i) % 4]
    data = load_interactions(
        pd.DataFrame(rows, columns=["user_id", "item_id"]), columns={"rating": None, "timestamp": None}
    )
    with pytest.warns(UserWarning, match=r"fewshot left out \(its text -> factors student.*data has 3\)"):
        model = make_model("ensemble", progress=False).fit(data)
    assert "fewshot" not in model.components_ and "itemknn" in model.components_
    got = model.recommend(Query(items=["i0"]), k=5)
    assert sorted(got["item"]) == ["i1", "i2"] and np.isfinite(got["score"]).all()
    # its free text is ignored, and the note says why (it said "ensemble reads it")
    (note,) = model.ignored_in(Query(items=["i0"], text="space films"))
    assert note.startswith("this ensemble does not read free text") and "fewshot" in note
    assert "ensemble read" not in note and "left out when it was trained" in note
    with pytest.raises(DataError, match="needs at least 4 items"):
        make_model("ensemble", components={"fewshot": {}, "popularity": {}}, progress=False).fit(data)


def test_added_items_leave_the_fitted_items_order_alone(warm, fit_cached, tmp_path):
    """An audit: `add_items` put the new items' rows into the Gram matrix every user's head is
    solved with, so 300 unrelated new dramas reordered every user's top 10 among the films
    already there (5-7 of 10 kept); the docstring said the heads stay as they are."""
    import copy

    model = copy.deepcopy(fit_cached("warm", warm, "fewshot", meta_steps=100))
    users = [str(u) for u in warm.train.users.ids[:4]]
    queries = [Query(user=u) for u in users] + [Query(items=["50", "181", "172"])]
    before = [model.recommend(q, k=10)["item"].tolist() for q in queries]
    ids = [f"new-{i}" for i in range(300)]
    info = pd.DataFrame({"title": [f"Film number {i}" for i in range(300)], "genres": [["Drama"]] * 300})
    model.add_items(ids, info)
    old = warm.train.items.ids
    for q, want in zip(queries, before, strict=True):
        got = model.recommend(q, k=10, candidates=list(old))["item"].tolist()
        assert got == want, (q, got, want)
    loaded = load_model(model.save(tmp_path / "m"))  # the same after a save
    for q, want in zip(queries, before, strict=True):
        assert loaded.recommend(q, k=10, candidates=list(old))["item"].tolist() == want


def test_the_student_is_calibrated_over_the_items_it_trained_on(ml100k):
    """On a K-shot set few items reach 3 interactions: the student trained on every item with
    one (~150 at K = 16) but was calibrated over the 2-3 with three, so a dimension constant
    over those (their log-popularity) gave every text-only item the same value there. Over the
    items it trained on, the calibrated student has the teacher's mean and spread."""
    from fewrec.data.splits import tallrec_split
    from fewrec.models import make_model

    split = tallrec_split(ml100k)
    model = make_model("fewshot", meta_learn=False).fit(split.train_dataset(split.shots(16, 0)))
    trained = model.counts_ > 0
    assert (model.counts_ >= 3).sum() < 50 < trained.sum()  # the tiny-data case
    cal = model._calibrated_student()[trained]
    np.testing.assert_allclose(cal.std(axis=0), model.teacher_[trained].std(axis=0), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(cal.mean(axis=0), model.teacher_[trained].mean(axis=0), atol=1e-4)
