"""Explanations are faithful: removing a cited history item lowers the item's score."""

import pytest

from fewrec.models import Query


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
