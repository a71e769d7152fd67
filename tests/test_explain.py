"""Explanations are faithful: removing a cited history item lowers the item's score."""

import pytest

from fewrec.models import Query, make_model


@pytest.mark.parametrize(
    ("name", "config"), [("ease", {}), ("itemknn", {}), ("fewshot", {"meta_steps": 100})]
)
def test_cited_items_are_faithful(name, config, warm, fit_cached):
    model = fit_cached("warm", warm, name, **config)
    history = ["50", "172", "1", "100", "127"]
    recs = model.recommend(Query(items=history), k=5, explain=True)
    assert len(recs) == 5
    cited_any = False
    for row in recs.itertuples():
        assert row.reason
        for cited in row.because:
            cited_any = True
            assert cited in history
            without = [h for h in history if h != cited]
            full = model.score(Query(items=history), items=[row.item])[row.item]
            less = model.score(Query(items=without), items=[row.item])[row.item]
            assert less < full, (row.item, cited, full, less)
    assert cited_any


def test_reasons_for_users_without_history(warm, fit_cached):
    model = fit_cached("warm", warm, "fewshot", meta_steps=100)
    recs = model.recommend(Query(text="gritty crime thrillers"), k=3, explain=True)
    assert all("told us" in r for r in recs["reason"])
    recs = model.recommend(Query(), k=3, explain=True)
    assert all("Popular" in r for r in recs["reason"])


@pytest.mark.filterwarnings("ignore:.*does not read free text:UserWarning")
def test_reasons_say_only_what_is_true(warm, fit_cached):
    """An ID-only model that ignored the text does not claim to match it; a list driven by one
    history item cites it (its leave-one-out query is empty, which falls back to popularity,
    another scale); popularity, which no history moves, cites nothing; a low-rated item that
    drives a list is cited as rated, not liked."""
    ease = fit_cached("warm", warm, "ease")
    text = ease.recommend(Query(text="funny animated films for kids"), k=3, explain=True)
    assert all(r == "Popular right now." for r in text["reason"])
    # side info a model does not read is not "people like you" (its note says it was ignored)
    side = Query(user_info={"age": 25, "occupation": "student"})
    assert all(r == "Popular right now." for r in ease.recommend(side, k=3, explain=True)["reason"])
    seg = make_model("popularity", segment_by=["age"]).fit(warm.train)
    assert all(r == "Popular with people like you." for r in seg.recommend(side, k=3, explain=True)["reason"])
    one = ease.recommend(Query(items=["1"]), k=3, explain=True)
    assert all(r.startswith("Because you liked Toy Story (1995)") for r in one["reason"])
    assert all(b == ["1"] for b in one["because"])
    pop = fit_cached("warm", warm, "popularity")
    assert all(
        r == "Popular right now." for r in pop.recommend(Query(items=["1"]), k=3, explain=True)["reason"]
    )
    low = ease.recommend(Query(items=["50", "181"], ratings=[5, 1]), k=5, explain=True)
    cited_low = [r for r, b in zip(low["reason"], low["because"], strict=True) if "181" in b]
    assert cited_low and all("rated Return of the Jedi (1983)" in r for r in cited_low)
    assert not any("liked Return of the Jedi" in r for r in low["reason"])


def test_tied_scores_list_the_most_popular_items_first(warm, fit_cached, monkeypatch):
    """A model that scores every item alike (few-shot with a zero prior mean, on a small data
    set) listed the first items of the file as "Popular right now"; ties go to popularity."""
    import numpy as np

    model = fit_cached("warm", warm, "ease")
    monkeypatch.setattr(type(model), "score_batch", lambda self, batch: np.zeros((len(batch), self.n_items)))
    recs = model.recommend(Query(), k=3)
    popular = np.argsort(-model.fitted.popularity, kind="stable")[:3]
    assert recs["item"].tolist() == model.fitted.items.to_external(popular)
