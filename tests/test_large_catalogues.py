"""Catalogues too large for a dense items x items matrix: models that need none stay within
memory, and models that need one refuse before allocating it, saying how much and what to do."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from fewrec.data.loaders import Columns, load_interactions
from fewrec.errors import ConfigError
from fewrec.models import Query, make_model


def long_tail(n_users: int, n_items: int, per_user: int, seed: int = 0):
    """Implicit data with a long-tailed item popularity."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    items = rng.choice(n_items, size=(n_users, per_user), p=p / p.sum())
    frame = pd.DataFrame(
        {
            "user": np.repeat([f"u{u}" for u in range(n_users)], per_user),
            "item": [f"i{i}" for i in items.ravel()],
        }
    ).drop_duplicates()
    # every item in the catalogue, as an item table gives it
    catalogue = pd.DataFrame(
        {"item": [f"i{i}" for i in range(n_items)], "title": [f"t{i}" for i in range(n_items)]}
    )
    cols = Columns(user="user", item="item", rating=None, timestamp=None, genres=None)
    return load_interactions(frame, catalogue, columns=cols)


@pytest.mark.parametrize("name", ["itemknn", "rp3beta"])
def test_neighbourhood_models_never_hold_a_dense_item_item_matrix(name, monkeypatch):
    """Item-kNN and RP3beta built a dense items x items matrix (40 GB in float32 at 100,000
    items, a MemoryError), though only ``neighbors`` entries per item are kept; they are made a
    block of rows at a time, with the same values as in one block."""
    data = long_tail(400, 2500, 12)
    n = data.n_items
    model = type(make_model(name))
    whole = make_model(name, neighbors=20).fit(data).sim_
    monkeypatch.setattr(model, "BLOCK_ENTRIES", 40 * n, raising=False)
    tracemalloc.start()
    try:
        blocks = make_model(name, neighbors=20).fit(data).sim_
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * n * 4 / 4, f"peak {peak / 1e6:.1f} MB for {n} items"
    for a, b in [(whole.data, blocks.data), (whole.indices, blocks.indices), (whole.indptr, blocks.indptr)]:
        assert np.array_equal(a, b)
    assert blocks.nnz <= 20 * n


def test_a_similarity_of_several_blocks_shows_a_progress_bar(monkeypatch, capsys):
    """itemknn and rp3beta fit for minutes on 100,000 items behind the CLI's spinner alone."""
    from fewrec.models.knn import NeighbourModel

    data = long_tail(200, 600, 8)
    make_model("itemknn", progress=True).fit(data)  # one block: no bar
    assert "similarity" not in capsys.readouterr().err
    monkeypatch.setattr(NeighbourModel, "BLOCK_ENTRIES", 100 * data.n_items)
    make_model("itemknn").fit(data)  # not asked for
    assert "similarity" not in capsys.readouterr().err
    make_model("rp3beta", progress=True).fit(data)
    assert "rp3beta similarity" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dlae", "kshot-ridge"])
def test_models_of_several_history_sizes_show_a_progress_bar(name, capsys):
    """dlae and kshot-ridge fit one model per history size, a minute or more each on 10,000
    items, behind the CLI's spinner alone."""
    data = long_tail(200, 300, 8)
    make_model(name).fit(data)  # not asked for
    assert "history sizes" not in capsys.readouterr().err
    make_model(name, progress=True).fit(data)
    assert f"{name} history sizes" in capsys.readouterr().err
    make_model(name, progress=True, shots=[5]).fit(data)  # one model: no bar
    assert "history sizes" not in capsys.readouterr().err


def small_memory(monkeypatch, budget: float) -> None:
    """Pretend the machine has ``budget`` bytes of memory."""
    import fewrec.models.base as base

    monkeypatch.setattr(base, "memory_budget", lambda: budget, raising=False)


def test_ease_refuses_a_catalogue_too_large_for_memory_before_allocating(monkeypatch):
    """EASE inverted a dense items x items Gram matrix whatever its size: at 100,000 items
    "MemoryError: Unable to allocate 37.3 GiB" (or the OOM killer) after the data had loaded.
    It now says what it would need, how many items fit, and what to do, before allocating."""
    data = long_tail(300, 2000, 10)
    small_memory(monkeypatch, 32 * 1000**2)
    tracemalloc.start()
    try:
        with pytest.raises(
            ConfigError, match=r"ease would need 0 GB .* 2,000 items .* at most 1,000 items"
        ) as err:
            make_model("ease").fit(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "Fix: keep the most popular items" in str(err.value) and "itemknn" in str(err.value)
    assert peak < 2000**2 * 4 / 2  # not even one float32 items x items matrix
    small_memory(monkeypatch, 32 * 2000**2)  # enough
    assert make_model("ease").fit(data).weights_.shape == (2000, 2000)


def test_fewshot_and_the_ensemble_refuse_before_encoding_the_items(monkeypatch):
    """fewshot's item-item term is EASE: on a catalogue too large for it, it failed with a
    MemoryError only after encoding every item's text (6 minutes for 100,000 titles); the ensemble
    failed once the components before the first too large one were fitted. Both now refuse at
    once, and the ensemble names every component that would not fit."""
    import fewrec.models.content as content

    def encoded(*args, **kwargs):
        raise AssertionError("the items were encoded before the size check")

    monkeypatch.setattr(content, "embed_items", encoded)
    monkeypatch.setattr("fewrec.models.fewshot.embed_items", encoded)
    data = long_tail(300, 2000, 10)
    small_memory(monkeypatch, 32 * 1000**2)
    with pytest.raises(ConfigError, match="fewshot's item-item term .* Fix: set item_item=false"):
        make_model("fewshot").fit(data)
    components = {"fewshot": {}, "itemknn": {}, "dlae": {}, "kshot-ridge": {}, "popularity": {}}
    with pytest.raises(
        ConfigError, match=r"ensemble components fewshot, dlae, kshot-ridge would not fit"
    ) as err:
        make_model("ensemble", components=components).fit(data)
    assert "Fix: leave them out of the components (keeping ['itemknn', 'popularity'])" in str(err.value)


def test_the_default_ensemble_adapts_to_a_catalogue_too_large_for_its_dense_components(monkeypatch, tmp_path):
    """The default model refused every catalogue above about 11,000 items (its fewshot, dlae and
    kshot-ridge hold dense items x items matrices), and the fix it named meant spelling out the
    components. The default components now adapt, saying so: fewshot without its item-item term,
    dlae and kshot-ridge left out. Other components are still used as given."""
    from fewrec.models import load_model

    data = long_tail(200, 400, 10)
    small_memory(monkeypatch, 1e6)  # 400 items: EASE-like terms need 5 MB or more
    model = make_model("ensemble", folds=2, warm=False, shots=(0, 3), rerank_trees=20)
    with pytest.warns(UserWarning, match="fewshot with item_item=False; dlae and kshot-ridge left out"):
        model.fit(data)
    assert list(model.component_settings) == ["fewshot", "itemknn", "popularity"]
    assert model.component_settings["fewshot"]["item_item"] is False
    assert [m.name for m in model.models_] == ["fewshot", "itemknn", "popularity"]
    assert model.config.components == make_model("ensemble").config.components  # as asked
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.component_settings == model.component_settings
    query = Query(items=["i0", "i3", "i7"])
    assert loaded.recommend(query, k=10).equals(model.recommend(query, k=10))
    # a saved default model (whose config names its components) adapts too when refitted
    assert loaded.fitting_components(data) == model.fitting_components(data)
    monkeypatch.undo()  # memory enough again: a refit uses the default components
    assert model.fitting_components(data) == (model.config.components, [])


def test_dlae_and_kshot_ridge_suggest_smaller_settings_only_where_they_fit(warm, monkeypatch):
    """Their size errors said "set dropout (one model)" and "fewer shots" even where one model
    or one history size would not fit either."""
    from fewrec.models.ease import DLAE, KShotRidge

    monkeypatch.setattr(DLAE, "MAX_BYTES", 1e6)
    with pytest.raises(ConfigError, match="dlae with 6 history sizes would need") as err:
        make_model("dlae").fit(warm.train)
    assert "set dropout" not in str(err.value) and "Fix: keep the most popular items" in str(err.value)
    # six models peaked at 60.5 bytes per item pair (measured): a budget of that is too little
    monkeypatch.setattr(DLAE, "MAX_BYTES", 60.5 * warm.train.n_items**2)
    with pytest.raises(ConfigError, match="dlae with 6 history sizes would need"):
        make_model("dlae").fit(warm.train)
    monkeypatch.setattr(DLAE, "MAX_BYTES", 50 * warm.train.n_items**2)  # one model fits (44)
    with pytest.raises(ConfigError, match=r"Fix: set dropout \(one model\) or fewer shots \(now 6\)"):
        make_model("dlae").fit(warm.train)
    monkeypatch.setattr(KShotRidge, "MAX_BYTES", 1e6)
    with pytest.raises(ConfigError, match="kshot-ridge with 6 history sizes would need") as err:
        make_model("kshot-ridge").fit(warm.train)
    assert "fewer shots" not in str(err.value)
    monkeypatch.setattr(KShotRidge, "MAX_BYTES", 30 * warm.train.n_items**2)
    with pytest.raises(ConfigError, match=r"Fix: fewer shots \(now 6\) or neighbourhood=0"):
        make_model("kshot-ridge").fit(warm.train)


def test_evaluation_scores_a_block_of_queries_at_a_time(monkeypatch):
    """evaluate_ranking held every query's scores over the whole catalogue at once, and the tie
    counting two float64 copies more: `fewrec benchmark --protocol warm` on 50,000 users x
    100,000 items died with "MemoryError: Unable to allocate 18.6 GiB for an array with shape
    (50000, 100000)", cold-user K5 (9,957 test users) with 3.71 GiB. Blocks of queries give
    the same report."""
    import fewrec.eval.evaluate as ev
    from fewrec.data.splits import warm_split

    split = warm_split(long_tail(2500, 3000, 14), 0)
    n = split.train.n_items
    model = make_model("itemknn", neighbors=20).fit(split.train)
    assert len(split.test) > 1024  # three blocks below

    def evaluate(entries: int):
        monkeypatch.setattr(ev, "EVAL_BLOCK_ENTRIES", entries, raising=False)
        tracemalloc.start()
        try:
            return ev.evaluate_ranking(model, split.test, split.train), tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    whole, whole_peak = evaluate(len(split.test) * n)
    blocks, peak = evaluate(512 * n)
    assert peak < whole_peak / 2, f"peak {peak / 1e6:.0f} MB, {whole_peak / 1e6:.0f} MB in one block"
    whole.values.pop("score_seconds"), blocks.values.pop("score_seconds")
    assert whole.values == blocks.values and whole.ci == blocks.ci
    for key, values in whole.per_user.items():
        assert np.array_equal(values, blocks.per_user[key], equal_nan=True), key


def test_tie_counting_reads_each_row_once_not_once_per_rank():
    """tied_hits compared a whole row of scores with each tie group of the top k: 20 passes over
    the catalogue per list for a model without ties, 31 s for 2,048 lists of 100,000 items
    (the warm benchmark of popularity on 50,000 users: ~9 minutes). Only the last group can go
    on past the top k, so only it is counted in the full row; top 20 now costs what top 1 does."""
    import time

    import scipy.sparse as sp

    from fewrec.eval import metrics as M

    n, m = 400, 20000
    rng = np.random.default_rng(0)
    scores = np.tile(rng.permutation(m).astype(np.float32), (n, 1))  # no ties
    targets = sp.csr_matrix((np.ones(n), (np.arange(n), rng.integers(0, m, n))), shape=(n, m))
    top = M.top_k_matrix(scores, 20)

    def seconds(k: int) -> float:
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            M.tied_hits(scores, top[:, :k], targets)
            runs.append(time.perf_counter() - t0)
        return min(runs)

    assert seconds(20) < 3 * seconds(1)  # it was 7x
    tied = M.tied_hits(scores, top, targets)
    assert (tied.size == 1).all() and np.array_equal(tied.start, np.tile(np.arange(20), (n, 1)))


def test_benchmark_names_a_model_too_large_for_memory_before_anything_trains(monkeypatch):
    """`fewrec benchmark --models popularity,itemknn,...,ease` on 20,000 items trained the models
    before EASE, then stopped at its size error and kept none of their results. A model asked
    for is now refused before anything trains; a default one is left out, saying why."""
    from fewrec.eval.benchmark import DEFAULT_MODELS, fit_to_data, run_benchmark
    from fewrec.models.baselines import PopularityRecommender

    data = long_tail(300, 2000, 10)
    small_memory(monkeypatch, 32 * 1000**2)

    def trained(self, data):
        raise AssertionError("popularity trained before the size check")

    monkeypatch.setattr(PopularityRecommender, "_fit", trained)
    with pytest.raises(ConfigError, match="ease would need"):
        run_benchmark("warm", ["popularity", "ease"], dataset=data, progress=False)
    kept, left_out = fit_to_data(DEFAULT_MODELS["warm"], data, {}, defaults=True)
    too_large = ["ease", "dlae", "kshot-ridge", "fewshot-nometa", "fewshot", "fewshot-ranked"]
    assert sorted(left_out) == sorted(too_large) and "would need" in left_out["ease"]
    # the default ensemble adapts its components (see the tests below)
    assert {"popularity", "itemknn", "rp3beta", "als", "content", "ensemble"} <= set(kept)
    with pytest.raises(ConfigError, match="dlae with 6 history sizes"):  # set: asked for
        fit_to_data(DEFAULT_MODELS["warm"], data, {"dlae": {"l2": 100.0}}, defaults=True)


def test_content_scores_a_query_without_copying_the_item_vectors(monkeypatch):
    """content's float64 profile made numpy copy every item vector to float64 for each query:
    357 ms per query on 100,000 items (5 ms in float32), and 300 MB allocated each time."""
    import fewrec.models.content as content
    from fewrec.models import Query

    n = 3000
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(n, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    monkeypatch.setattr(content, "embed_items", lambda data, config: vectors)
    model = make_model("content").fit(long_tail(300, n, 10))
    query = Query(items=["i1", "i2", "i3"])
    model.score(query, ["i5"])
    tracemalloc.start()
    try:
        model.recommend(query, k=10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * 384 * 8 / 2, f"peak {peak / 1e6:.1f} MB"


def test_the_ensemble_tunes_on_a_sample_of_users_when_their_scores_would_not_fit(monkeypatch):
    """The tuning episodes' scores of every eligible user were held at once (users x items x
    components x shot counts x reveals): a default fit of 30,000 users x 20,000 items grew past
    the machine's 24 GB and was killed. Past ``tuning_memory`` a random sample is tuned on."""
    from fewrec.models.ensemble import EnsembleRecommender

    seen = []
    ascend = EnsembleRecommender._ascend

    def counting(self, episodes):
        seen.append(sum(len(ep.users) for _, ep in episodes))
        return ascend(self, episodes)

    monkeypatch.setattr(EnsembleRecommender, "_ascend", counting)
    data = long_tail(200, 400, 10)
    settings = {"components": {"itemknn": {}, "popularity": {}}, "folds": 2, "rerank": False}
    per_user = 400 * 2 * 2 * (4 * 6 + 5)  # items x components x reveals x (4 x shots + 5)
    make_model("ensemble", **settings).fit(data)
    assert seen[:6] == [400] * 6 and seen[6] > 100, seen  # every user, in both reveals, then known users
    seen.clear()
    model = make_model("ensemble", **settings, tuning_memory=50 * per_user).fit(data)
    assert model.most_tuning_users(data) == 50
    assert seen == [100] * 6 + [50]


def test_components_leave_room_for_the_tuning_scores(monkeypatch):
    """A component's memory check counted the whole machine, though the ensemble holds its tuning
    scores beside it: fewshot's item-item term passed, and the fit then ran out of memory."""
    data = long_tail(200, 400, 10)
    small_memory(monkeypatch, 6e6)  # fewshot's EASE term needs 5.1 MB; 16 tuning users 1.9 MB
    specs, changes = make_model("ensemble").fitting_components(data)
    assert specs["fewshot"] == {"empty_queries": "prior", "item_item": False}
    assert changes == ["fewshot with item_item=False", "dlae and kshot-ridge left out"]
    specs, changes = make_model("ensemble", tune=False).fitting_components(data)
    assert specs["fewshot"] == {"empty_queries": "prior"} and changes == ["dlae and kshot-ridge left out"]


def test_the_default_ensemble_leaves_dense_terms_out_past_dense_items():
    """Memory allowing, the default ensemble fitted fewshot's EASE term, dlae's six solves and
    kshot-ridge at any size: on 20,000 items about 4 minutes a solve, seven fits of each, so a
    default fit was still tuning after 25 minutes. Past ``dense_items`` they adapt as when
    memory is short; asked-for components are kept."""
    data = long_tail(200, 400, 10)
    specs, changes = make_model("ensemble", dense_items=400).fitting_components(data)
    assert list(specs) == list(make_model("ensemble").config.components) and not changes
    specs, changes = make_model("ensemble", dense_items=399).fitting_components(data)
    assert list(specs) == ["fewshot", "itemknn", "popularity"] and specs["fewshot"] == {
        "empty_queries": "prior",
        "item_item": False,
    }
    asked = {"dlae": {}, "popularity": {}}
    assert make_model("ensemble", components=asked, dense_items=10).fitting_components(data) == (asked, [])


def test_a_tuning_fold_lets_the_last_folds_components_go_before_fitting_its_own(monkeypatch):
    """Each tuning fold's components lived until the next fold's were all fitted, so two folds'
    dense models were held at once (dlae and kshot-ridge take 2.4 GB each at 10,000 items; the
    peak traced memory of a default fit on MovieLens-100K falls from 918 to 751 MB)."""
    import gc
    import weakref

    from fewrec.models.ensemble import EnsembleRecommender

    fitted = EnsembleRecommender._fitted_components
    earlier: list[weakref.ref] = []
    alive_at_start = []

    def watching(self, data, stage):
        gc.collect()
        alive_at_start.append(sum(r() is not None for r in earlier))
        models = fitted(self, data, stage)
        earlier.extend(weakref.ref(m) for m in models)
        return models

    monkeypatch.setattr(EnsembleRecommender, "_fitted_components", watching)
    data = long_tail(200, 400, 10)
    settings = {"components": {"itemknn": {}, "popularity": {}}, "folds": 3, "rerank": False, "warm": False}
    make_model("ensemble", **settings).fit(data)
    assert alive_at_start == [0, 0, 0, 0]  # three folds, then the final fit


@pytest.mark.parametrize(
    ("field", "bad"),
    [("tuning_memory", 0), ("tuning_memory", -1e9), ("dense_items", 0), ("dense_items", "many")],
)
def test_the_ensembles_memory_settings_refuse_bad_values_naming_the_field(field, bad):
    """A tuning budget of no bytes would tune on no users, and a catalogue threshold of no items
    would drop the dense components of every default fit: both are refused when the model is made."""
    with pytest.raises(ConfigError, match=field):
        make_model("ensemble", **{field: bad})
