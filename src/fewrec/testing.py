"""Conformance checks every model passes, shipped for models of your own (LensKit's ScorerTests
in spirit): `check_model` fits one on MovieLens-100K and runs them all; each ``check_*``
function is one of them. They need pytest (``pip install pytest``), which they use to expect
errors and warnings.

    from fewrec.testing import check_model
    check_model("shrunk-mean", {"shrink": 20})      # raises AssertionError on a failed check

The built-in models run the same checks (tests/test_models.py parametrizes them over `Case`s).
They use MovieLens-100K's ids (items "50", "181", users "1", "7"), so they need a model fitted
on it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

try:
    import pytest
except ImportError as exc:  # a runtime install has no pytest
    raise ImportError("fewrec.testing needs pytest (it expects errors with it): pip install pytest") from exc

from fewrec.errors import ConfigError, DataError
from fewrec.eval.evaluate import evaluate_ranking
from fewrec.models.base import MODELS
from fewrec.models.query import Query, QueryBatch
from fewrec.models.saving import load_model


@dataclass
class Case:
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    min_ndcg: float | None = None  # warm NDCG@10 on ML-100K a working model must reach
    max_ndcg: float | None = None  # and one it must stay under (random: above it is leakage)
    ranks: bool = True  # False for scorers that ignore the target item (like-share)


@contextmanager
def _expecting(case: Case, what: str, check: AbstractContextManager[Any]) -> Iterator[Any]:
    """``pytest.raises`` or ``pytest.warns`` whose failure is an AssertionError naming the model
    and what it was expected to do (it was pytest's bare "DID NOT RAISE")."""
    try:
        with check as caught:
            yield caught
    except pytest.fail.Exception as exc:
        raise AssertionError(f"{case.name}: {what}: {exc}") from None


def check_config_round_trip(case: Case) -> None:
    cls = MODELS[case.name]
    model = cls(**case.config)
    dumped = model.config.model_dump(mode="json")
    assert cls.Config(**dumped) == model.config, (
        f"{case.name}: its config dumped to JSON ({dumped}) and read back is another config"
    )
    with _expecting(case, "an unknown setting must be a ConfigError", pytest.raises(ConfigError)):
        cls(no_such_option=1)


def check_save_load_equal_scores(case: Case, model, tmp_path, ml100k) -> None:
    q = [Query(user="1"), Query(items=["50", "181"]), Query(items=["1"], ratings=[2.0])]
    before = model.score_many(q)
    model.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert type(back) is type(model), f"{case.name}: saved and loaded, it is a {type(back).__name__}"
    assert back.config == model.config, (
        f"{case.name}: its config loaded is {back.config!r}, not {model.config!r}"
    )
    for query, a, b in zip(q, before, model.score_many(q), strict=True):
        try:
            pd.testing.assert_series_equal(a, b)
        except AssertionError as exc:
            raise AssertionError(f"{case.name}: saving changed its scores of {query}: {exc}") from None
    for query, a, b in zip(q, before, back.score_many(q), strict=True):
        try:
            pd.testing.assert_series_equal(a, b, rtol=1e-5)
        except AssertionError as exc:
            raise AssertionError(f"{case.name}: loaded, it scores {query} otherwise: {exc}") from None


def check_unknown_user_and_item(case: Case, model) -> None:
    # an unknown user is a new user: it still gets k recommendations (with a warning, as a
    # query of nothing but an unknown id may be a typo)
    what = "an unknown user must warn that it has no history"
    with _expecting(case, what, pytest.warns(UserWarning, match="'no-such-user' has no history")):
        recs = model.recommend(Query(user="no-such-user"), k=5)
    assert len(recs) == 5, f"{case.name}: an unknown user got {len(recs)} recommendations, not k=5"
    # an unknown history item is a user mistake: a clear error naming it
    what = "an unknown history item must be a DataError naming it"
    with _expecting(case, what, pytest.raises(DataError, match="no-such-item")):
        model.recommend(Query(items=["no-such-item"]))
    # an unknown candidate item scores NaN, with a warning; known ones stay finite
    what = "scoring an unknown item must warn"
    with _expecting(
        case, what, pytest.warns(UserWarning, match="1 of 3 items are not in this model's catalogue")
    ):
        s = model.score(Query(items=["50"]), items=["no-such-item", "50", "100"])
    assert np.isnan(s["no-such-item"]), f"{case.name}: an unknown item scored {s['no-such-item']}, not NaN"
    assert list(s.index) == ["no-such-item", "50", "100"], (
        f"{case.name}: scores of items in another order: {list(s.index)}"
    )
    what = "a query of 2 items and 1 rating must be a DataError"
    with _expecting(case, what, pytest.raises(DataError)):
        model.score(Query(items=["50", "1"], ratings=[5.0]))


def check_empty_candidates(case: Case, model) -> None:
    recs = model.recommend(Query(items=["50"]), k=10, candidates=[])
    assert len(recs) == 0, f"{case.name}: no candidates gave {len(recs)} recommendations"
    columns = list(recs.columns)
    assert columns == ["item", "label", "score"], f"{case.name}: no candidates gave the columns {columns}"
    scored = len(model.score(Query(items=["50"]), items=[]))
    assert scored == 0, f"{case.name}: scoring no items gave {scored} scores"
    recs = model.recommend(Query(items=["50"]), k=10, candidates=["1", "2", "3"])
    others = set(recs["item"]) - {"1", "2", "3"}
    assert not others, f"{case.name}: candidates 1, 2, 3 gave other items: {sorted(others)}"
    with _expecting(case, "k=0 must be a ConfigError", pytest.raises(ConfigError)):
        model.recommend(Query(), k=0)


def check_batch_equals_single(case: Case, model) -> None:
    queries = [Query(user="1"), Query(items=["50", "172", "181"]), Query(), Query(user="7")]
    batch = model.recommend_many(queries, k=10)
    for q, b in zip(queries, batch, strict=True):
        single = model.recommend(q, k=10)
        alone, together = single["item"].tolist(), b["item"].tolist()
        assert alone == together, f"{case.name}: {q} alone got {alone}, in a batch {together}"
        # float32 sums in another order (BLAS blocks by batch size): a score near 0 that sums
        # larger terms differs by ~1e-7 absolute, so the tolerance scales with the list's scores
        scores = b["score"].to_numpy()
        scale = float(np.abs(scores[np.isfinite(scores)]).max(initial=1.0))
        np.testing.assert_allclose(
            single["score"],
            b["score"],
            rtol=1e-5,
            atol=1e-5 * scale,
            err_msg=f"{case.name}: {q} scores otherwise alone and in a batch",
        )


def check_history_only_query(case: Case, model) -> None:
    star_wars = ["50", "172", "181"]  # Star Wars, Empire Strikes Back, Return of the Jedi
    recs = model.recommend(Query(items=star_wars), k=20)
    assert len(recs) == 20, f"{case.name}: a query of 3 liked items got {len(recs)} recommendations, not k=20"
    seen = sorted(set(recs["item"]) & set(star_wars))
    assert not seen, f"{case.name}: recommended the query's own items back: {seen}"
    with_seen = model.recommend(Query(items=star_wars), k=1682, exclude_seen=False)
    least = 1682 - (model.fitted.popularity == 0).sum()
    assert len(with_seen) >= least, (
        f"{case.name}: with exclude_seen=False it ranked {len(with_seen)} items, fewer than the {least} "
        "trained ones: the rest scored -inf or NaN"
    )


def check_empty_query_flag(case: Case, model) -> None:
    """``empty_is_popularity`` (which explanations read) says what an empty query scores."""
    n = len(model.fitted.popularity)
    empty = QueryBatch(np.full(1, -1), sp.csr_matrix((1, n), dtype=np.float32))
    scores = model.score_batch(empty)[0]
    trained = model.fitted.popularity > 0
    popularity = model.fitted.popularity[trained]
    is_popularity = np.array_equal(scores[trained], popularity)
    if model.empty_is_popularity:
        # (or on a scale of its own: fewshot's matches its prior's scores)
        assert is_popularity or (
            np.ptp(scores[trained]) > 0
            and np.corrcoef(scores[trained].astype(np.float64), popularity)[0, 1] > 1 - 1e-6
        ), f"{case.name} sets empty_is_popularity but does not rank an empty query by popularity"
    elif case.name != "popularity":  # popularity is what it scores, not a fallback
        assert not is_popularity, f"{case.name} falls back to popularity: set empty_is_popularity"


def check_min_ndcg(case: Case, model, warm) -> None:
    if case.min_ndcg is None and case.max_ndcg is None:
        return
    ndcg = evaluate_ranking(model, warm.test, warm.train).values["ndcg@10"]
    if case.min_ndcg is not None:
        assert ndcg >= case.min_ndcg, f"{case.name}: NDCG@10 {ndcg:.4f} < {case.min_ndcg}"
    if case.max_ndcg is not None:
        assert ndcg <= case.max_ndcg, f"{case.name}: NDCG@10 {ndcg:.4f} > {case.max_ndcg}"


def check_model(
    name: str, config: dict[str, Any] | None = None, *, min_ndcg: float | None = None, **settings: Any
) -> None:
    """Fit model ``name`` (registered, with ``config`` and/or ``settings`` by name, as
    `make_model` takes them) on MovieLens-100K's warm split and run every conformance check on
    it; ``min_ndcg``: the warm NDCG@10 it must reach, if any.
    Raises AssertionError (or the unexpected error) at the first check that fails."""
    from fewrec.data.movielens import load_movielens_100k
    from fewrec.data.splits import warm_split

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}: register it first (fewrec.models.register)")
    case = Case(name, {**(config or {}), **settings}, min_ndcg=min_ndcg)
    data = load_movielens_100k()
    warm = warm_split(data, seed=0)
    model = MODELS[name](**case.config).fit(warm.train)
    check_config_round_trip(case)
    with tempfile.TemporaryDirectory() as tmp:
        check_save_load_equal_scores(case, model, Path(tmp), data)
    check_unknown_user_and_item(case, model)
    check_empty_candidates(case, model)
    check_batch_equals_single(case, model)
    check_history_only_query(case, model)
    check_empty_query_flag(case, model)
    check_min_ndcg(case, model, warm)
