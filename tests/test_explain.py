"""Explanations are faithful: removing a cited history item lowers the item's score."""

import numpy as np
import pytest
import scipy.sparse as sp

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
    # a 1-star item is not a like for a model that does not read ratings: it does not move the
    # list (a Star Wars fan who disliked Return of the Jedi got more of it) and is not cited
    low = ease.recommend(Query(items=["50", "181"], ratings=[5, 1]), k=5, explain=True)
    alone = ease.recommend(Query(items=["50"]), k=6, explain=True)
    assert low["item"].tolist() == [i for i in alone["item"] if i != "181"][:5]
    assert not any("Return of the Jedi" in r for r in low["reason"])
    np.testing.assert_array_equal(
        ease.score(Query(items=["50", "181"], ratings=[5, 1])), ease.score(Query(items=["50"]))
    )
    pop = fit_cached("warm", warm, "popularity")  # Star Wars (50) is its first item
    assert pop.recommend(Query(items=["50"]), k=1, exclude_seen=False)["item"].tolist() == ["50"]
    back = pop.recommend(Query(items=["50", "181"], ratings=[1, 5]), k=5, exclude_seen=False)
    assert "50" not in back["item"].tolist()  # a dislike never comes back


def test_tied_scores_list_the_most_popular_items_first(warm, fit_cached, monkeypatch):
    """A model that scores every item alike (few-shot with a zero prior mean, on a small data
    set) listed the first items of the file as "Popular right now"; ties go to popularity."""
    import numpy as np

    model = fit_cached("warm", warm, "ease")
    monkeypatch.setattr(type(model), "score_batch", lambda self, batch: np.zeros((len(batch), self.n_items)))
    recs = model.recommend(Query(), k=3)
    popular = np.argsort(-model.fitted.popularity, kind="stable")[:3]
    assert recs["item"].tolist() == model.fitted.items.to_external(popular)


@pytest.mark.filterwarnings("ignore:.*does not read:UserWarning")
def test_reasons_credit_the_text_and_the_items_that_drove_the_list(warm, fit_cached):
    """From a user audit: items the free text raised were credited to a history item alone; an
    ID-only model given text next to its one item said "Popular right now" (and so did the
    same query in a batch with a text query); blank text "matched"; the genres in brackets were
    the item's own, named or not; random picks were explained by the history."""
    fewshot = fit_cached("warm", warm, "fewshot", meta_steps=100)
    both = fewshot.recommend(Query(items=["50"], text="gritty crime thrillers"), k=10, explain=True)
    assert any("told us" in r for r in both["reason"])  # was: only "Because you liked Star Wars"
    blank = fewshot.recommend(Query(text="   "), k=3, explain=True)
    assert not any("told us" in r for r in blank["reason"])
    # an item of none of the genres the text names is close to it, not a match ("animated movies
    # for kids" -> Star Wars: "Matches what you told us you like")
    scifi = fewshot.recommend(Query(text="I love sci-fi films like Interstellar"), k=30, explain=True)
    near = 0
    for reason, item in zip(scifi["reason"], scifi["item"], strict=True):
        genres = fewshot.fitted.item_info["genres"].iloc[int(fewshot.fitted.items.lookup([item])[0])]
        if "Sci-Fi" in list(genres):
            assert reason == "Matches what you told us you like (Sci-Fi).", reason
        elif "told us" in reason:
            assert reason == "Close to what you told us you like, though not Sci-Fi.", reason
            near += 1
    assert near >= 1
    tom = fewshot.recommend(Query(text="something with Tom Hanks"), k=3, explain=True)  # names no genre
    assert set(tom["reason"]) == {"Matches what you told us you like."}
    ease = fit_cached("warm", warm, "ease")
    one = ease.recommend(Query(items=["1"], text="anything"), k=3, explain=True)
    assert all(r.startswith("Because you liked Toy Story (1995)") for r in one["reason"])
    alone, _ = ease.recommend_many(
        [Query(items=["1"]), Query(text="x", user_info={"age": 30})], k=3, explain=True
    )
    assert (
        alone["reason"].tolist() == ease.recommend(Query(items=["1"]), k=3, explain=True)["reason"].tolist()
    )
    rnd = make_model("random").fit(warm.train)
    picks = rnd.recommend(Query(items=["1", "2"]), k=3, explain=True)
    assert set(picks["reason"]) == {"Picked at random (a baseline)."} and not any(picks["because"])


def test_only_the_query_own_low_ratings_are_dislikes(warm, fit_cached):
    """A known user's training history is scored whole, as the evaluation scores it (109 of
    user 1's 272 items were dropped as "dislikes"); on counts or implicit data nothing but a 0
    is a dislike (play counts of 1-39 under a top of 100 were all dropped)."""
    from fewrec.data.dataset import Vocabulary
    from fewrec.models.base import FitState, QueryBatch

    ease = fit_cached("warm", warm, "ease")
    st = ease.fitted
    u = int(st.users.lookup(["1"])[0])
    whole = ease.score_batch(QueryBatch(np.array([u]), st.train[u]))[0]
    np.testing.assert_allclose(ease.score(Query(user="1")).to_numpy(), whole, rtol=1e-6)
    assert st.dislike_at == pytest.approx(2.0)  # 1-5 stars: 2 or less (a 3 of 5 is no dislike)
    users, items = Vocabulary(["a"]), Vocabulary(["x", "y"])
    counts = sp.csr_matrix(np.array([[3.0, 100.0]], dtype=np.float32))
    assert FitState(users, items, counts, like_rating=100.0).dislike_at == 0.0
    ones = sp.csr_matrix(np.array([[1.0, 1.0]], dtype=np.float32))
    assert FitState(users, items, ones, like_rating=1.0).dislike_at == 0.0


def test_a_three_of_five_is_no_dislike(warm, fit_cached):
    """A 3-star rating stays in the history of a model that does not read ratings (it was left
    out as a dislike, with 1-3 stars); a 1-2 star one is left out. Content weighs a 3 (or a 2.5,
    between a dislike and a like) nothing, never less: a negative weight pushes look-alikes down."""
    from fewrec.models.content import rating_weights

    knn = fit_cached("warm", warm, "itemknn")
    alone = knn.score(Query(items=["50"])).to_numpy()
    np.testing.assert_allclose(knn.score(Query(items=["50", "181"], ratings=[5, 2])).to_numpy(), alone)
    three = knn.score(Query(items=["50", "181"], ratings=[5, 3])).to_numpy()
    assert np.nanmax(np.abs(three - alone)) > 1e-3
    w = rating_weights(sp.csr_matrix(np.array([[5.0, 4.0, 3.0, 2.5, 2.0]])), 5.0, 2.0).toarray()[0]
    np.testing.assert_allclose(w, [0.4, 0.2, 0.0, 0.0, 0.0], atol=1e-6)


def test_an_item_of_the_history_is_never_its_own_reason(warm, fit_cached):
    """An audit: with exclude_seen=False, Star Wars came back "Because you liked Star Wars" (an
    item left out of its own history lowers its score the most, so it was cited first)."""
    for name, config in (("content", {}), ("fewshot", {"meta_steps": 100})):
        model = fit_cached("warm", warm, name, **config)
        got = model.recommend(Query(items=["50", "181"]), k=20, exclude_seen=False, explain=True)
        seen = got[got["item"].isin(["50", "181"])]
        assert len(seen), name
        for item, because in zip(seen["item"], seen["because"], strict=True):
            assert item not in because, (name, item, because)
        assert (got["because"].map(len) > 0).any(), name  # the others still cite the history
        # its own rating is its reason (it was "Fits your history as a whole", or another item)
        assert set(seen["reason"]) == {"You liked it before."}, (name, seen["reason"].tolist())
        assert (seen["because"].map(len) == 0).all()
    rated = model.recommend(
        Query(items=["50", "181"], ratings=[3, 5]), k=20, exclude_seen=False, explain=True
    )
    assert rated.set_index("item").loc["50", "reason"] == "You rated it before."


def test_content_says_when_no_rated_item_shapes_its_list(warm, fit_cached):
    """An audit: content gave a history of three 3-star films popularity's list, each "Popular
    right now.", without a word (it weighs a 3 of 5 nothing); fewshot and ease read it."""
    content = fit_cached("warm", warm, "content")
    items = ["50", "181", "172"]
    note = "content builds a taste only from items rated above 3 of 5, and none of the history is"
    with pytest.warns(UserWarning, match=note):
        content.recommend(Query(items=items, ratings=[3, 3, 3]), k=5)
    assert content.query_notes(Query(items=items, ratings=[5, 3, 3])) == []
    assert content.query_notes(Query(items=items, ratings=[3, 3, 3], text="space adventures")) == []


def test_an_ensemble_neither_counts_nor_cites_a_dislike(warm):
    """The ensemble reads ratings by passing each component what it reads; its explanations
    rebuilt batches without the dislikes, so its components read the 1-star item as a like
    there and 5 of 10 reasons cited it."""
    ens = make_model("ensemble", components={"itemknn": {}, "popularity": {}}, tune=False).fit(warm.train)
    mixed = Query(items=["50", "181"], ratings=[5, 1])
    np.testing.assert_allclose(ens.score(mixed).to_numpy(), ens.score(Query(items=["50"])).to_numpy())
    recs = ens.recommend(mixed, k=10, explain=True)
    assert "181" not in recs["item"].tolist()
    assert not any("181" in b for b in recs["because"]) and not any("Jedi" in r for r in recs["reason"])


def test_reasons_never_cite_a_known_users_low_ratings_and_as_a_whole_means_raised(warm, fit_cached):
    """An audit: item-kNN scores a known user's whole training history, low ratings too, and
    6 of user 196's 10 reasons said "Because you disliked Princess Bride"; "Fits your history
    as a whole" was said of items the history lowered."""
    knn = fit_cached("warm", warm, "itemknn")
    st = knn.fitted
    lows = {
        str(uid)
        for uid in st.users.ids
        if (st.train[int(st.users.lookup([uid])[0])].data <= st.dislike_at).any()
    }
    for user in sorted(lows)[:15]:
        recs = knn.recommend(Query(user=user), k=10, explain=True)
        u = int(st.users.lookup([user])[0])
        row = st.train[u]
        low = {st.items.id(i) for i, r in zip(row.indices, row.data, strict=True) if r <= st.dislike_at}
        assert not any("disliked" in r for r in recs["reason"]), (user, list(recs["reason"]))
        assert not any(set(b) & low for b in recs["because"]), user
    ease = fit_cached("warm", warm, "ease")  # items one film lowers a little (less than most)
    scores = ease.score(Query(items=["50"]))
    lowered = scores[scores < 0].sort_values().index[-5:].tolist()
    recs = ease.recommend(Query(items=["50"]), k=5, candidates=lowered, explain=True)
    assert len(recs) == 5 and "Fits your history as a whole." not in recs["reason"].tolist()
    kshot = fit_cached("warm", warm, "kshot-ridge")
    for items in (["1"], ["267"], ["50", "181"]):
        recs = kshot.recommend(Query(items=items), k=20, explain=True)
        with_history = kshot.score(Query(items=items))
        empty = kshot.score(Query())
        for row in recs.itertuples():
            if row.reason == "Fits your history as a whole.":
                assert with_history[row.item] > empty[row.item], (items, row.item)


def test_an_ensembles_added_item_gets_finite_contributions(warm):
    """An item added to an ensemble is scored only by its text components, which read the
    history: left out of a one-item history, it became unscorable and its contribution inf."""
    import pandas as pd

    from fewrec.explain.reasons import explain_recommendations

    ens = make_model("ensemble", components={"content": {}, "itemknn": {}}, tune=False).fit(warm.train)
    ens.add_items(["dune"], pd.DataFrame({"title": ["Dune"], "year": [2021], "genres": [["Sci-Fi"]]}))
    batch = ens.batch_from_queries([Query(items=["50"])]).for_model(ens)  # Star Wars
    (reason,) = explain_recommendations(ens, batch, 0, ens.fitted.items.lookup(["dune"]))
    assert [i for i, _ in reason.because] == ["50"] and "Star Wars" in reason.text
    assert all(np.isfinite(c) and c > 0 for _, c in reason.because), reason.because


def test_generated_reason_takes_a_list_of_titles_and_never_ends_mid_clause(monkeypatch):
    """A lone title was read character by character ('The user enjoyed "S" ...'), and a single
    sentence cut by the token budget came back as a fragment that did not read as cut."""
    from fewrec.errors import ArgumentError
    from fewrec.lm import explain

    def no_lm(name):
        raise AssertionError("the arguments are checked before the LM loads")

    monkeypatch.setattr(explain, "load_lm", no_lm)
    with pytest.raises(ArgumentError, match=r"liked_titles must be a list of titles, got 'Star Wars'.*Fix"):
        explain.generate_reason("Star Wars", "Alien")
    with pytest.raises(ArgumentError, match="liked_titles must be a list"):
        explain.reason_messages(5, "Alien")
    assert '"Star Wars"' in explain.reason_messages(("Star Wars",), "Alien")[1]["content"]

    trim = explain.trim_reason
    assert trim("A fine film.  It has a") == "A fine film."  # whole sentences, as before
    assert trim('They will like "Alien" too."') == 'They will like "Alien" too."'
    cut = 'The user might enjoy "Alien" because it is tense, dark and has a'
    assert trim(cut) == 'The user might enjoy "Alien" because it is tense…'
    assert trim('The user might enjoy "Alien" because it is a classic with a') == (
        'The user might enjoy "Alien" because it is a classic with…'
    )
    # a ". " in a title or after an abbreviation or initial ends no sentence (an audit: reasons
    # were cut to 'The user might enjoy "Mr.' and 'the movie "L.A.')
    mr = 'The user might enjoy "Mr. Smith Goes to Washington" because it is a classic film about a man in the'
    assert trim(mr, ["Mr. Smith Goes to Washington (1939)"]) == mr.removesuffix(" the") + "…"
    la = 'The user might enjoy the movie "L.A. Confidential" because it is a high-'
    assert trim(la, ["L.A. Confidential (1997)"]) == la.removesuffix(" high-") + "…"
    assert trim("You liked Heat. So you may like Sgt. Bilko and") == "You liked Heat."
    # ... and a text that ends with such a title, or with a word, is whole (a review of the mend)
    titles = ["Mars Attacks! (1996)", "Shall We Dance? (1996)", "Sunset Blvd. (1950)"]
    for whole in ("You may enjoy Mars Attacks!", "You may enjoy Shall We Dance?", "Try Sunset Blvd.", "No."):
        assert trim(whole, titles) == whole
    assert trim("Would they like it? I'd say no. It has a") == "Would they like it? I'd say no."
    assert trim("It is set in the U.S. It has a dark") == "It is set in the U.S."


def test_a_history_of_only_dislikes_is_not_a_history_as_a_whole(warm):
    """A user whose feedback was only dislikes (history size 0) got "Fits your history as a
    whole." for every item from the served ensemble, which reads ratings and weighs a query of
    three items apart from an empty one. A model that reads ratings and lifts popular items
    more the longer the history stands in for it here."""
    from fewrec.models.base import Recommender

    class LongerLiftsPopular(Recommender):
        name = "longer-lifts-popular-test"
        reads_ratings = True

        def _fit(self, data):
            pass

        def score_batch(self, batch):
            n = np.diff(batch.history.indptr)[:, None]
            return (self.fitted.popularity[None, :] * (1 + n)).astype(np.float32)

    model = LongerLiftsPopular().fit(warm.train)
    recs = model.recommend(Query(items=["1", "174", "50"], ratings=[1, 1, 1]), k=10, explain=True)
    assert not any("as a whole" in r for r in recs["reason"]), list(recs["reason"])
    assert not any(recs["because"])
    liked = model.recommend(Query(items=["1", "174", "50"]), k=10, explain=True)  # as likes: cited
    assert all(r.startswith("Because you liked") for r in liked["reason"]), list(liked["reason"])


def test_side_info_the_model_never_saw_is_no_people_like_you(warm):
    """{"age": "old"} got a note that the value counts as unknown, and reasons that said
    "Popular with people like you"."""
    model = make_model("popularity", segment_by="auto").fit(warm.train)
    unseen = model.recommend(Query(user_info={"age": "old"}), k=3, explain=True)
    assert set(unseen["reason"]) == {"Popular right now."}
    seen = model.recommend(Query(user_info={"age": 31}), k=3, explain=True)
    assert set(seen["reason"]) == {"Popular with people like you."}


def test_the_ignored_has_text_argument_warns_and_changes_nothing(warm):
    """explain_recommendations took ``has_text`` and silently ignored it (the batch says)."""
    from fewrec.explain.reasons import explain_recommendations

    model = make_model("itemknn").fit(warm.train)
    batch = model.batch_from_queries([Query(items=["50", "181"])]).for_model(model)
    items = model.fitted.items.lookup(["172", "1"])
    plain = explain_recommendations(model, batch, 0, items)
    with pytest.warns(DeprecationWarning, match="has_text"):
        told = explain_recommendations(model, batch, 0, items, has_text=False)
    assert [r.text for r in told] == [r.text for r in plain] and plain[0].because


def test_the_python_api_explains_a_long_history_through_its_nearest_items(ml100k, monkeypatch):
    """An audit: the service explained a long history through its items nearest the list, the
    Python API and the CLI re-scored the catalogue once per rating (user 405's 737: 8-18 s on
    fewshot, 1 s on EASE). Both read the same items now, so their reasons agree."""
    from fewrec.explain import reasons as reasons_module
    from fewrec.models import Query, make_model

    model = make_model("ease").fit(ml100k)
    explained: list[int] = []
    explain = reasons_module.explain_recommendations

    def recorded(model, batch, row, *args, **kwargs):
        explained.append(int(batch.history[row].nnz))
        return explain(model, batch, row, *args, **kwargs)

    monkeypatch.setattr(reasons_module, "explain_recommendations", recorded)
    out = model.recommend(Query(user="405"), k=10, explain=True)
    n_history = int(ml100k.user_counts()[ml100k.users.index(["405"])[0]])
    cap = max(reasons_module.EXPLAIN_MAX_HISTORY, reasons_module.EXPLAIN_MAX_CELLS // ml100k.n_items)
    assert n_history > 700 and explained == [cap]
    assert all(out["reason"]) and all(len(b) >= 1 for b in out["because"])
    kept = set(out["because"].sum())
    assert kept <= set(ml100k.items.to_external(ml100k.matrix()[ml100k.users.index(["405"])[0]].indices))
    monkeypatch.setattr(reasons_module, "EXPLAIN_MAX_CELLS", 10**9)  # whole: the same list
    whole = model.recommend(Query(user="405"), k=10, explain=True)
    assert whole["item"].tolist() == out["item"].tolist() and explained[-1] == n_history


def test_explaining_many_long_histories_works_out_the_item_vectors_once(ml100k, monkeypatch):
    """`recommend_many` normalised the catalogue's vectors again for each long history it
    explained; short histories need none."""
    from fewrec.explain import reasons as reasons_module
    from fewrec.models import Query, make_model

    model = make_model("content").fit(ml100k)
    calls = []
    item_vectors = reasons_module.item_vectors
    monkeypatch.setattr(reasons_module, "item_vectors", lambda m: calls.append(1) or item_vectors(m))
    lists = model.recommend_many([Query(user="405"), Query(user="655"), Query(user="13")], k=5, explain=True)
    assert len(calls) == 1 and all(all(frame["reason"]) for frame in lists)
    model.recommend_many([Query(items=["50", "181"])], k=5, explain=True)
    assert len(calls) == 1


def test_a_reason_names_its_items_in_the_order_of_because(ml100k):
    """An audit: "Because you liked X and rated Y" put the liked item first even where the
    rated one had raised the score more (and came first in ``because``)."""
    from fewrec.explain.reasons import label_of
    from fewrec.models import Query, make_model

    model = make_model("ease").fit(ml100k)
    out = model.recommend(Query(user="196"), k=30, explain=True)
    mixed = 0
    for reason, because in zip(out["reason"], out["because"], strict=True):
        labels = [label_of(model, int(model.fitted.items.lookup([b])[0])) for b in because]
        positions = [reason.index(label) for label in labels]
        assert positions == sorted(positions), (reason, because)
        mixed += "liked" in reason and "rated" in reason
    assert mixed >= 3  # the order was wrong only where a reason had both kinds


def test_reasons_read_titles_in_reading_order_and_name_shared_genres_in_words(ml100k):
    """An audit: reasons kept MovieLens' sorting order ("Empire Strikes Back, The (1980)") and
    put the shared genres in a second bracket after the year ("(1972) (Action, Crime, Drama)")."""
    from fewrec.explain.reasons import reading_order
    from fewrec.models import Query, make_model

    assert reading_order("Godfather, The (1972)") == "The Godfather (1972)"
    assert reading_order("Boat, The (Das Boot) (1981)") == "The Boat (Das Boot) (1981)"
    assert reading_order("Postino, Il (1994)") == "Il Postino (1994)"
    assert reading_order("Hello, Dolly! (1969)") == "Hello, Dolly! (1969)"
    model = make_model("ease").fit(ml100k)
    reasons = model.recommend(Query(items=["172", "50"]), k=10, explain=True)["reason"].tolist()
    assert any("The Empire Strikes Back (1980)" in r for r in reasons)
    assert not any(", The (" in r or ") (" in r for r in reasons), reasons
    assert any(r.endswith(" and Adventure too.") for r in reasons), reasons


def test_leave_one_out_rows_keep_the_full_querys_part(warm, fit_cached):
    """An audit: the ensemble explains an item by leaving each history item out and scoring
    again; with 4 items it uses its K = 5 weights and re-ranker, without one its K = 3 ones, so
    the switch, not the item, made the change ("Because you liked The Lion King" for The Empire
    Strikes Back, of Star Wars, Return of the Jedi, The Lion King and Toy Story). The rows now
    keep the full query's size (`QueryBatch.sizes`): with it, what an item adds to dlae (linear
    in the history within a part) is the same in any history of that size."""
    import scipy.sparse as sp

    from fewrec.models.base import QueryBatch, nearest_shot

    model = fit_cached("warm", warm, "dlae")
    shots = model.shots_
    items = warm.train.items.index([str(i) for i in (50, 181, 172, 1, 71, 95, 98, 174)])
    assert nearest_shot(np.array([8]), shots)[0] != nearest_shot(np.array([7]), shots)[0]

    def scores(idx, size=None):
        h = sp.csr_matrix(
            (np.full(len(idx), 5.0, np.float32), (np.zeros(len(idx)), idx)), shape=(1, model.n_items)
        )
        sizes = None if size is None else np.array([size])
        return model.score_batch(QueryBatch(np.array([-1]), h, sizes=sizes))[0].astype(np.float64)

    added = scores(items, 8) - scores(items[1:], 8)  # what Star Wars adds to all 8
    few = scores(items[:3], 8) - scores(items[1:3], 8)  # ... and to 3 of them, scored as 8
    np.testing.assert_allclose(added, few, atol=1e-4)
    switched = scores(items) - scores(items[1:])  # 7 items: another part
    assert not np.allclose(switched, added, atol=1e-3)
    # a view without the dislikes counts them out of the sizes too
    h = sp.csr_matrix(np.array([[5.0, 1.0, 4.0] + [0.0] * (model.n_items - 3)], np.float32))
    low = sp.csr_matrix(np.array([[0.0, 1.0, 0.0] + [0.0] * (model.n_items - 3)], np.float32))
    batch = QueryBatch(np.array([-1]), h, disliked=low, sizes=np.array([8]))
    assert batch.likes_only().history_sizes().tolist() == [7] and batch.rows(0, 1).sizes.tolist() == [8]


def test_leave_one_out_rows_of_a_dislike_keep_the_full_querys_likes(warm, fit_cached):
    """The leave-one-out rows keep the full query's size; a component that reads likes only, in
    an ensemble that reads ratings, took the row's dislikes off that size, so the row that left
    a dislike out counted one like too many (and could use another part)."""
    from fewrec.explain.reasons import history_contributions

    ens = make_model("ensemble", components={"dlae": {}, "popularity": {}}, tune=False).fit(warm.train)
    dlae = next(m for m in ens.models_ if m.name == "dlae")
    seen = []
    score_batch = dlae.score_batch

    def spy(batch):
        seen.append(batch.history_sizes().tolist())
        return score_batch(batch)

    dlae.score_batch = spy
    q = Query(items=["50", "181", "172", "1", "200"], ratings=[5, 5, 5, 4, 1])  # one dislike
    batch = ens.batch_from_queries([q])
    assert batch.disliked is not None and batch.disliked.nnz == 1
    hist, _ = history_contributions(ens, batch, 0, np.arange(10))
    assert len(hist) == 5
    assert seen and all(sizes == [4] * 6 + [0] for sizes in seen), seen  # (last: no history)


def test_an_item_without_genres_is_not_said_to_lack_the_genre_asked_for():
    """An audit: a poetry anthology whose genres were not given was "Close to what you told us
    you like, though not Poetry" for the text "poetry": a missing genre is unknown, not absent."""
    import pandas as pd

    from fewrec.data.loaders import load_interactions

    items = pd.DataFrame(
        {
            "item_id": ["p1", "p2", "c1", "c2"],
            "title": ["Sea poems", "A poetry anthology", "Quick dinners", "Baking bread"],
            "genres": ["Poetry", None, "Cooking", "Cooking"],
        }
    )
    inter = pd.DataFrame(
        {"user_id": ["u1", "u1", "u2", "u2", "u3"], "item_id": ["p1", "p2", "c1", "c2", "p2"]}
    )
    data = load_interactions(inter, items, columns={"rating": None, "timestamp": None})
    model = make_model("content").fit(data)
    recs = model.recommend(Query(text="poetry"), k=4, explain=True).set_index("item")["reason"]
    assert recs["p1"] == "Matches what you told us you like (Poetry)."
    assert "though not" not in recs["p2"] and "told us" in recs["p2"], recs["p2"]


def test_popular_is_said_only_of_popular_items(warm, fit_cached):
    """An audit: among a few candidates that nothing in the query raised, Santa with Muscles
    (2 ratings) was "Popular right now."; so were films far down long lists."""
    model = fit_cached("warm", warm, "itemknn")
    counts = model.fitted.popularity
    candidates = ["181", "172", "1", "100", "288", "200", "94", "71", "95", "1500", "1000", "56", "98"]
    recs = model.recommend(Query(items=["1", "95", "71"]), k=10, explain=True, candidates=candidates)
    rows = model.fitted.items.lookup(recs["item"])
    popular = recs["reason"].str.startswith("Popular").to_numpy()
    assert popular.any() and (~popular).any()
    top_decile = np.quantile(counts[counts > 0], 0.9)
    assert (counts[rows[popular]] >= top_decile).all()
    said = set(recs["reason"].to_numpy()[counts[rows] < top_decile])
    assert "Nothing you told us points to it in particular; it ranks here among the rest." in said


def test_a_film_named_in_the_text_asks_for_no_genre(warm, fit_cached):
    """An audit: "I loved Children of the Corn" made reasons say the user asked for Children's
    films ("Matches what you told us you like (Children's)" for Willy Wonka; the horror sequel
    "though not Children's"); so did True Romance (Romance) and Priscilla (Adventure)."""
    model = fit_cached("warm", warm, "content")
    for text, genre in [
        ("I loved Children of the Corn", "Children's"),
        ("I loved True Romance", "Romance"),
        ("I loved The Adventures of Priscilla, Queen of the Desert", "Adventure"),
    ]:
        reasons = model.recommend(Query(text=text), k=10, explain=True)["reason"]
        assert not any(genre in r for r in reasons), (text, reasons.tolist())
    # a genre asked for in words beside a film's name still is
    both = model.recommend(Query(text="I loved True Romance, give me horror films"), k=10, explain=True)
    assert any("(Horror)" in r for r in both["reason"]), both["reason"].tolist()


def test_side_info_a_model_does_not_read_is_named_in_words(warm, fit_cached):
    """The note read "so ['age', 'occupation'] was ignored", a Python list, on the web page too."""
    model = fit_cached("warm", warm, "itemknn")
    notes = model.query_notes(Query(items=["50"], user_info={"occupation": "writer", "age": 30}))
    assert notes == ["itemknn does not read user side info, so age and occupation were ignored"]


def test_a_reason_citing_several_films_names_only_the_genres_they_have(warm, fit_cached):
    """A first-run audit: "Because you liked Star Wars (1977) and Toy Story (1995); it is Action,
    Adventure, Romance, Sci-Fi and War too" pooled the cited films' genres, giving Toy Story
    Star Wars' ones. A genre named is now every cited film's, or one named film's ("like ...")."""
    import re

    knn = fit_cached("warm", warm, "itemknn")
    info = warm.train.item_info
    genres_of = {warm.train.items.id(i): set(g) for i, g in enumerate(warm.train.item_genres())}
    recs = knn.recommend(Query(items=["50", "1", "100"]), k=20, explain=True)
    several = 0
    for reason, because in zip(recs["reason"], recs["because"], strict=True):
        said = re.search(r"; it is (.+?)(?:, like (.+?))?(?: too)?\.$", reason)
        if len(because) < 2 or not said:
            continue
        several += 1
        named = set(re.split(r", | and ", said[1]))
        if said[2]:  # one film, named
            film = next(
                b
                for b in because
                if said[2].startswith(str(info["title"].iloc[warm.train.items.lookup([b])[0]]))
            )
            assert named <= genres_of[film], reason
        else:
            assert all(named <= genres_of[b] for b in because), reason
    assert several >= 3


def test_a_text_the_encoder_cannot_read_is_not_credited(warm, fit_cached):
    """A first-run audit: the note said the English-only encoder says little of a Chinese
    sentence, and every reason said "Matches what you told us you like"."""
    content = fit_cached("warm", warm, "content")
    with pytest.warns(UserWarning, match="reads English only"):
        recs = content.recommend(Query(text="我喜欢太空冒险电影"), k=5, explain=True)
    assert not any("what you told us" in r for r in recs["reason"]), list(recs["reason"])
    english = content.recommend(Query(text="space adventure films"), k=5, explain=True)
    assert any("Matches what you told us" in r for r in english["reason"])
