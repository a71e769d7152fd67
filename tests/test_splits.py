"""Protocols: seeded, deterministic, leak-free."""

import numpy as np
import pandas as pd
import pytest

from fewrec.data.splits import cold_item_split, cold_user_split, tallrec_split, warm_split
from fewrec.errors import ConfigError, DataError


def _pairs(m):
    c = m.tocoo()
    return set(zip(c.row.tolist(), c.col.tolist(), strict=True))


def test_warm_split_is_80_10_10_disjoint_and_deterministic(ml100k):
    a, b = warm_split(ml100k, seed=0), warm_split(ml100k, seed=0)
    assert a.train.interactions.equals(b.train.interactions)
    other = warm_split(ml100k, seed=1)
    assert not a.train.interactions.equals(other.train.interactions)
    n_train, n_valid, n_test = a.train.n_interactions, a.valid.targets.nnz, a.test.targets.nnz
    assert n_train + n_valid + n_test == ml100k.n_interactions
    assert 0.78 < n_train / ml100k.n_interactions < 0.81
    # ... and the rest in halves (a split of 79.6 / 19.4 / 1.0% passed the lines above)
    assert 0.09 < n_valid / ml100k.n_interactions < 0.115 and 0.09 < n_test / ml100k.n_interactions < 0.115
    # the test targets never appear in the history given to the model, nor in training
    assert not (_pairs(a.test.targets) & _pairs(a.test.history))
    assert not (_pairs(a.test.targets) & _pairs(a.test.exclude))
    train_pairs = set(zip(a.train.interactions["user"], a.train.interactions["item"], strict=True))
    test_pairs = {(int(a.test.users[r]), c) for r, c in _pairs(a.test.targets)}
    assert not (train_pairs & test_pairs)


def test_cold_user_users_never_in_training_and_reveal_earliest(ml100k):
    s = cold_user_split(ml100k, shots=3, seed=0)
    train_users = set(s.train.interactions["user"])
    assert not (set(s.test.users.tolist()) & train_users)
    assert not (set(s.valid.users.tolist()) & train_users)
    assert 180 <= len(s.test) <= 190
    assert (np.diff(s.test.history.indptr) == 3).all()
    inter = ml100k.interactions
    u = int(s.test.users[0])
    rows = inter[inter["user"] == u].sort_values("timestamp", kind="stable")
    revealed = set(s.test.history[0].indices.tolist())
    assert revealed == set(rows["item"].iloc[:3].tolist())
    assert not (revealed & set(s.test.targets[0].indices.tolist()))
    # the same test users for every K with one seed
    s5 = cold_user_split(ml100k, shots=5, seed=0)
    assert s5.test.users.tolist() == s.test.users.tolist()
    assert s5.train.interactions.equals(s.train.interactions)
    rnd = cold_user_split(ml100k, shots=3, seed=0, random_shots=True)
    assert rnd.test.history.nnz == s.test.history.nnz
    assert (rnd.test.history != s.test.history).nnz > 0
    with pytest.raises(ConfigError):
        cold_user_split(ml100k, shots=-1)


def test_a_cold_user_k_no_test_user_reaches_is_an_error_up_front():
    """An audit: ``cold_user_split(ds, shots=50)`` on data where no user has 50 interactions
    came back empty without a word; the error came later, from evaluate_ranking."""
    from fewrec.data import load_interactions

    rows = [(f"u{u}", f"i{i}") for u in range(30) for i in range(3 + u % 10)]  # 3 to 12 each
    data = load_interactions(pd.DataFrame(rows, columns=["user_id", "item_id"]))
    split = cold_user_split(data, shots=2, seed=0)
    most = int(max((np.diff(split.test.history.indptr) + np.diff(split.test.targets.indptr)).max(), 0))
    with pytest.raises(ConfigError) as caught:
        cold_user_split(data, shots=50, seed=0)
    said = str(caught.value)
    assert said.startswith("no test user has an interaction left after revealing K = 50"), said
    assert f"the most any test user has is {most} (K must be below it)" in said and "Fix: " in said, said


def test_cold_user_zero_shots_targets_everything(ml100k):
    s = cold_user_split(ml100k, shots=0, seed=0)
    assert s.test.history.nnz == 0
    counts = ml100k.user_counts()
    assert s.test.targets.nnz == counts[s.test.users].sum()


def test_cold_items_are_absent_from_training_and_are_the_only_targets(ml100k):
    s = cold_item_split(ml100k, seed=0)
    assert len(s.cold_items) == round(0.2 * 1682)
    assert not set(s.train.interactions["item"]) & set(s.cold_items.tolist())
    assert set(s.test.targets.indices.tolist()) <= set(s.cold_items.tolist())
    # every interaction with a test cold item is a target (a quarter of them passed the above),
    # and the validation cold items are out of training too
    assert s.test.targets.nnz == ml100k.interactions["item"].isin(s.cold_items).sum()
    valid_cold = np.unique(s.valid.targets.indices)
    assert len(valid_cold) and not set(s.train.interactions["item"]) & set(valid_cold.tolist())
    assert s.train.n_items == ml100k.n_items  # cold items stay in the catalogue with their text
    # a test user is known when they have a training history (all of ML-100K's have one); one
    # whose every item is held out had been "known", with an untrained user row
    assert s.test.known.all()


def test_a_cold_item_user_with_no_training_history_is_a_new_user():
    from fewrec.data.loaders import load_interactions

    rows = [(f"u{u}", f"i{i}") for u in range(30) for i in range(20) if (u + i) % 3]
    rows.append(("lonely", "i0"))
    data = load_interactions(pd.DataFrame(rows, columns=["user_id", "item_id"]), columns={"rating": None})
    for seed in range(20):  # a seed whose cold items hold i0
        s = cold_item_split(data, seed=seed)
        if int(data.items.index(["i0"])[0]) in s.cold_items:
            break
    lonely = int(data.users.index(["lonely"])[0])
    row = np.flatnonzero(s.test.users == lonely)[0]
    assert not s.test.known[row] and s.test.known.sum() == len(s.test.users) - 1


def test_tallrec_protocol_matches_the_paper_recipe(ml100k):
    t = tallrec_split(ml100k)
    assert (len(t.train), len(t.valid), len(t.test)) == (8000, 1000, 1000)
    # history is the previous 10 interactions of the same user, in time order
    inter = ml100k.interactions
    s = t.test.take(np.array([0]))
    u = int(s.users[0])
    rows = inter[inter["user"] == u].reset_index()
    rows = rows.sort_values(["timestamp", "index"], kind="stable")
    items = rows["item"].tolist()
    pos = items.index(int(s.items[0]))
    assert items[pos - 10 : pos] == s.history[0].tolist()
    assert s.labels[0] == int(rows["rating"].iloc[pos] > 3)
    assert t.shots(64, 0).items.tolist() == t.shots(64, 0).items.tolist()
    assert t.shots(64, 0).items.tolist() != t.shots(64, 1).items.tolist()
    assert 0.4 < t.test.labels.mean() < 0.65
    with pytest.raises(ConfigError):
        t.shots(0, 0)


def test_tallrec_refuses_data_without_dislikes_before_training(ml100k):
    # implicit data (every rating 1) has no dislikes: the test AUC cannot be computed, which
    # used to surface only after every model had been trained
    implicit = ml100k.interactions.assign(rating=1.0)
    with pytest.raises(DataError, match="liked and disliked targets.*test targets all liked"):
        tallrec_split(ml100k.with_interactions(implicit))


def test_tallrec_likes_follow_the_rating_scale(ml100k):
    """A like is above 60% of the top rating: on a 1-10 scale "> 3" made 4 of 10 a like (77% of
    the samples liked, against 39% of the same ratings in stars)."""
    stars = tallrec_split(ml100k)
    tens = tallrec_split(
        ml100k.with_interactions(ml100k.interactions.assign(rating=lambda f: 2 * f["rating"]))
    )
    np.testing.assert_array_equal(tens.train.labels, stars.train.labels)
    np.testing.assert_array_equal(tens.test.history_labels, stars.test.history_labels)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: cold_user_split(d, 5, 0, test_fraction=-0.2), "test_fraction must be"),  # took 80%
        (lambda d: cold_user_split(d, 5, 0, test_fraction=1.0), "test_fraction must be"),
        (lambda d: cold_user_split(d, 5, 0, test_fraction="0.2"), "test_fraction must be"),
        (lambda d: cold_user_split(d, 5.0, 0), "shots must be a whole number"),
        (lambda d: cold_user_split(d, 5, -1), "seed must be a whole number"),
        (lambda d: cold_item_split(d, 0, test_fraction=-0.5), "test_fraction must be"),
        (lambda d: cold_item_split(d, "1"), "seed must be a whole number"),
        (lambda d: warm_split(d, 0, ratios=(0.9, 0.3, 0)), "ratios must be"),
        (lambda d: warm_split(d, 0, ratios=(0.8, 0.2)), "ratios must be"),
    ],
)
def test_bad_split_settings_are_config_errors(ml100k, make, message):
    """Out-of-range shares and mistyped seeds or shots are refused, not sliced into odd splits."""
    with pytest.raises(ConfigError, match=message):
        make(ml100k)


def test_splits_too_small_to_hold_anything_out(ml100k):
    one_item = ml100k.with_interactions(ml100k.interactions[ml100k.interactions["item"] == 0])
    with pytest.raises(ConfigError, match="holds out no items"):
        cold_item_split(one_item, 0)


def test_warm_split_tests_only_users_with_a_training_history():
    """An audit: a user with one interaction went whole into the warm split's test set, a cold
    user with an empty history among the warm ones; data of such users only was refused with
    "users need more interactions", saying not how many."""
    import pandas as pd

    from fewrec.data import load_interactions

    rows = [(f"u{u}", f"i{(u + j) % 12}") for u in range(20) for j in range(6)]
    rows += [(f"solo{u}", f"i{u}") for u in range(10)]
    data = load_interactions(pd.DataFrame(rows, columns=["user_id", "item_id"]))
    split = warm_split(data, seed=0)
    solo = data.users.lookup([f"solo{u}" for u in range(10)])
    assert not set(split.test.users.tolist()) & set(solo.tolist())
    assert np.diff(split.test.history.indptr).min() > 0
    assert set(split.train.interactions["user"]) >= set(solo.tolist())  # kept, in training
    alone = load_interactions(pd.DataFrame(rows[-10:], columns=["user_id", "item_id"]))
    with pytest.raises(ConfigError, match=r"a user needs at least 2 interactions to be tested"):
        warm_split(alone, seed=0)


def test_held_out_users_and_items_do_not_follow_the_rows_order_or_the_item_table():
    """An evaluation audit: the held-out users and items were drawn over internal indices,
    which follow the rows' order and the item table's, so the same interactions shuffled, or
    loaded with --items and without, were different splits (two models of one table compared
    on two). On MovieLens, whose ids are 1, 2, 3 ..., the draws are as before."""
    from fewrec.data import load_interactions

    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{j}", int(rng.integers(1, 6)), u * 100 + j)
        for u in range(40)
        for j in rng.choice(30, 8, replace=False)
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {"item_id": [f"i{j}" for j in range(29, -1, -1)], "title": [f"T{j}" for j in range(30)]}
    )
    a = load_interactions(frame)
    b = load_interactions(frame.sample(frac=1.0, random_state=1), items=items)
    for seed in (0, 1):
        for random_shots in (False, True):
            sa, sb = (cold_user_split(d, 3, seed, random_shots=random_shots) for d in (a, b))
            assert sorted(a.users.to_external(sa.test.users)) == sorted(b.users.to_external(sb.test.users))
        ca, cb = cold_item_split(a, seed), cold_item_split(b, seed)
        held_a = set(a.items.to_external(np.flatnonzero(a.item_counts() > ca.train.item_counts())))
        held_b = set(b.items.to_external(np.flatnonzero(b.item_counts() > cb.train.item_counts())))
        assert held_a == held_b


def test_a_too_small_split_names_the_users_it_needs():
    """An evaluation audit: 2 users at test_fraction 0.25 were refused as needing "at least 2"
    (Python rounds 0.5 to 0)."""
    from fewrec.data import load_interactions

    data = load_interactions(pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": ["x", "y", "x", "y"]}))
    with pytest.raises(ConfigError, match="at least 3 users"):
        cold_user_split(data, 1, 0, test_fraction=0.25)
