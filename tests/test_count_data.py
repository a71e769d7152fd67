"""Counts (plays, purchases) as the rating column: an interaction is a like whatever its size and
only 0 a dislike (`FitState.stars`, `FitState.like_cut`). Findings of an audit with a play-count
log of 0-5,000 plays, where a like was read as more than 60% of the top count."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from fewrec.data.dataset import genre_list
from fewrec.data.loaders import Columns, load_interactions
from fewrec.models import Query, make_model

TAGS = ["jazz saxophone", "heavy metal guitar", "classical piano"]


@pytest.fixture(scope="module")
def plays():
    """40 users x 30 tracks of three kinds; each user plays tracks of one kind, heavy-tailed."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        kind = u % 3
        for t in rng.choice(10, size=6, replace=False):
            rows.append((f"u{u}", f"t{kind * 10 + t}", float(rng.choice([1, 2, 3, 40, 900, 5000]))))
    rows.append(("u0", "t25", 0.0))  # a 0: a dislike
    frame = pd.DataFrame(rows, columns=["user", "track", "plays"])
    items = pd.DataFrame(
        {
            "track": [f"t{i}" for i in range(30)],
            "title": [f"{TAGS[i // 10].split()[0].title()} track {i}" for i in range(30)],
            "tags": [f"{TAGS[i // 10].split()[0]};{TAGS[i // 10].split()[0]}" for i in range(30)],
            "text": [f"A {TAGS[i // 10]} recording, number {i}." for i in range(30)],
        }
    )
    columns = Columns(user="user", item="track", rating="plays", timestamp=None, genres="tags", genre_sep=";")
    return load_interactions(frame, items=items, columns=columns)


def test_counts_are_no_star_scale_and_any_play_is_a_like(plays):
    fit = make_model("popularity").fit(plays).fitted
    assert fit.rating_range == (0.0, 5000.0) and not fit.stars
    assert fit.dislike_at == 0.0 and fit.like_cut() == 0.0 and fit.like_cut(0.9) == 0.0
    five = plays.interactions.assign(rating=np.arange(len(plays.interactions)) % 5 + 1.0)
    stars = make_model("popularity").fit(plays.with_interactions(five)).fitted
    assert stars.stars and stars.like_cut() == 3.0 and stars.dislike_at == 2.0  # as before
    # like-share: the share of the history liked, every play a like (it was 3 of 6 at most)
    share = make_model("like-share").fit(plays)
    got = share.score(Query(items=["t0", "t1", "t2"], ratings=[1, 40, 5000]), ["t3"])
    assert got.iloc[0] == pytest.approx(1.0)


def test_content_weighs_every_play_alike(plays):
    """Five jazz tracks at 2-3 plays and one metal track at 900: the list was metal (weights
    linear in the count); a track given without a count (a click, read as the top count)
    outweighed the whole history the same way."""
    model = make_model("content").fit(plays)
    jazz = ["t0", "t1", "t2", "t3", "t4"]
    recs = model.recommend(Query(items=jazz + ["t10"], ratings=[2, 3, 2, 3, 2, 900]), k=4)
    assert sum(i.startswith("t") and int(i[1:]) < 10 for i in recs["item"]) >= 3, recs
    fit = model.fitted
    from fewrec.models.content import rating_weights

    w = rating_weights(sp.csr_matrix(np.array([[2.0, 900.0, 5000.0, 0.0]])), fit.like_rating, fit.dislike_at)
    assert w.toarray()[0].tolist() == pytest.approx([0.4, 0.4, 0.4, 0.0])


def test_reasons_say_liked_for_plays(plays):
    model = make_model("itemknn").fit(plays)
    recs = model.recommend(Query(items=["t0", "t1"], ratings=[2, 3]), k=3, explain=True)
    cited = " ".join(recs["reason"])
    assert "you liked" in cited and "rated" not in cited, cited


def test_tallrec_labels_on_counts():
    """60% of the top play count made 2 of 1,000 test samples likes; any play is one."""
    from fewrec.data.dataset import Dataset, Vocabulary
    from fewrec.data.splits import tallrec_split

    rng = np.random.default_rng(1)
    n = 600
    inter = pd.DataFrame(
        {
            "user": rng.integers(0, 30, n),
            "item": rng.integers(0, 50, n),
            "rating": rng.choice([0.0, 1.0, 2.0, 5000.0], n),
            "timestamp": np.arange(n, dtype=float),
        }
    ).drop_duplicates(["user", "item"])
    data = Dataset(inter, Vocabulary([str(u) for u in range(30)]), Vocabulary([str(i) for i in range(50)]))
    split = tallrec_split(data, n_samples=200)
    labels = np.concatenate([s.labels for s in (split.train, split.valid, split.test)])
    assert 0.6 < labels.mean() < 0.9  # the plays above 0 (three in four), not the 5,000s alone


def test_lora_positives_on_counts():
    from fewrec.adapt.lora import LoraOptions, _interactions

    r = sp.csr_matrix(np.array([[2.0, 900.0, 5000.0, 0.0]]))
    counts = _interactions(r, 5000.0, LoraOptions(), stars=False)
    assert counts.positives.toarray()[0].tolist() == [1, 1, 1, 0]
    assert counts.weights.toarray()[0].tolist() == [1, 1, 1, 0]  # none pushes
    stars = _interactions(sp.csr_matrix(np.array([[2.0, 4.0, 5.0]])), 5.0, LoraOptions())
    assert stars.positives.toarray()[0].tolist() == [0, 1, 1]


def test_a_genre_named_twice_is_kept_once(plays):
    assert genre_list("country;country;pop", ";") == ["country", "pop"]
    assert genre_list(["a", " ", "a", "b"]) == ["a", "b"]
    assert genre_list("['x', 'x']") == ["x"]
    model = make_model("itemknn").fit(plays)
    recs = model.recommend(Query(items=["t0", "t1"]), k=3, explain=True)
    assert not recs["reason"].str.contains("jazz and jazz").any(), recs["reason"].tolist()


def test_repeated_rows_can_be_added_up_or_counted(tmp_path, caplog):
    """An audit: repeated (user, item) rows kept the last, so a purchase log lost its repeat
    buys (10 + 7 + 20 plays read as 20) and the pair moved to its last time, after an item the
    user met later. `repeats="sum"` and `"count"` keep them, dated by the first row."""
    from fewrec.errors import DataError

    frame = pd.DataFrame(
        {
            "u": ["a", "a", "a", "a", "b"],
            "i": ["x", "y", "x", "x", "x"],
            "plays": [10.0, 3.0, 7.0, 20.0, 1.0],
            "t": [1, 2, 3, 4, 5],
        }
    )
    cols = Columns(user="u", item="i", rating="plays", timestamp="t")

    def pairs(data):
        inter = data.interactions
        return {
            (data.users.id(int(u)), data.items.id(int(i))): (float(r), int(t))
            for u, i, r, t in inter[["user", "item", "rating", "timestamp"]].itertuples(index=False)
        }

    with caplog.at_level("WARNING", logger="fewrec"):
        last = load_interactions(frame, columns=cols)
    assert pairs(last)[("a", "x")] == (20.0, 4) and "repeats='sum' or 'count'" in caplog.text
    summed = load_interactions(frame, columns=cols, repeats="sum")
    assert pairs(summed) == {("a", "x"): (37.0, 1), ("a", "y"): (3.0, 2), ("b", "x"): (1.0, 5)}
    counted = load_interactions(
        frame.drop(columns="plays"), columns=cols.model_copy(update={"rating": None}), repeats="count"
    )
    assert pairs(counted)[("a", "x")] == (3.0, 1)
    with pytest.raises(DataError, match="the rating column 'plays' would be ignored"):
        load_interactions(frame, columns=cols, repeats="count")
    with pytest.raises(DataError, match="repeats must be one of last, sum, count"):
        load_interactions(frame, columns=cols, repeats="mean")
    # the CLI's --repeats
    from cli_helpers import fewrec_here

    path = tmp_path / "plays.csv"
    frame.to_csv(path, index=False)
    args = [
        "--interactions",
        str(path),
        "--user-col",
        "u",
        "--item-col",
        "i",
        "--rating-col",
        "plays",
        "--time-col",
        "t",
    ]
    info = fewrec_here("data", "info", *args, "--repeats", "sum")
    assert info.returncode == 0 and "ratings 1 to 37" in info.stdout, info.stdout + info.stderr
    wrong = fewrec_here("data", "info", *args, "--repeats", "mean")
    assert wrong.returncode == 2 and "repeats must be one of last, sum, count, not 'mean'" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    stray = fewrec_here("data", "info", "--repeats", "sum")
    assert stray.returncode == 2 and "--repeats describe your own interactions" in " ".join(
        stray.stderr.split()
    )


def test_a_count_above_the_trainings_is_no_mistake(plays):
    """The Python API noted a count above the training's top as outside the ratings' range,
    where the service now takes it as a count; a star above the top is still noted."""
    model = make_model("popularity").fit(plays)
    assert not [n for n in model.query_notes(Query(items=["t0"], ratings=[6000])) if "outside" in n]
    five = plays.interactions.assign(rating=np.arange(len(plays.interactions)) % 5 + 1.0)
    stars = make_model("popularity").fit(plays.with_interactions(five))
    assert [n for n in stars.query_notes(Query(items=["t0"], ratings=[7])) if "outside" in n]


def test_small_counts_from_repeats_read_as_counts_not_stars(tmp_path):
    """A CLI audit: a play log of one row per play, loaded with `--repeats count` as the docs
    say, had counts of 1-8, which read as a star scale: tracks played 1-3 times were dislikes
    ("rated Product Omega 14" in a reason), and a note said to load the log as implicit data,
    as it had been. Counts made by `repeats` are amounts: never stars, saved and loaded so."""
    from fewrec.data.dataset import Dataset
    from fewrec.models.base import load_model

    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"t{t}") for u in range(30) for t in rng.choice(12, 4, replace=False)]
    rows += [rows[i] for i in rng.integers(0, len(rows), 200)]  # repeated plays: counts 1-8 or so
    log = pd.DataFrame(rows, columns=["user_id", "item_id"])
    data = load_interactions(log, columns=Columns(rating=None, timestamp=None), repeats="count")
    assert data.counts and 1 < data.interactions["rating"].max() <= 10
    model = make_model("itemknn").fit(data)
    assert not model.fitted.stars and model.fitted.dislike_at == 0
    assert model.query_notes(Query(items=["t1", "t2"], ratings=[1, 8])) == []  # (1 play: no dislike)
    assert not load_model(model.save(tmp_path / "m")).fitted.stars
    assert Dataset.load(data.save(tmp_path / "d")).counts
    assert data.with_interactions(data.interactions).counts
    # summed amounts are no scale: a rare large one is no typo, and scores-out-of-100 talk is for
    # scores (both were said of `repeats="sum"` quantities)
    qty = log.drop_duplicates().assign(qty=1)
    qty.loc[qty.index[:15], "qty"] = 2
    qty.loc[qty.index[15], "qty"] = 8
    import warnings

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        summed = load_interactions(qty, columns=Columns(rating="qty", timestamp=None), repeats="sum")
        make_model("popularity").fit(summed)
    assert summed.counts and not [
        w for w in said if "far above" in str(w.message) or "scale" in str(w.message)
    ]
    # the same ratings given as a column of stars are stars
    stars = log.drop_duplicates().assign(rating=rng.integers(1, 9, len(log.drop_duplicates())))
    assert make_model("itemknn").fit(load_interactions(stars, columns=Columns(timestamp=None))).fitted.stars
