"""Evaluation protocols: seeded, deterministic splits shared by every model in a table.

- ``warm``: per-user random 80/10/10 of interactions (RecBole's default on ML-100K).
- ``cold-user``: 20% of users held out; each reveals K interactions, the rest are targets.
- ``cold-item``: 20% of items held out of training; they are ranked among all items.
- ``tallrec``: the TALLRec few-shot binary protocol (Bao et al., RecSys 2023), rebuilt exactly.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.data.dataset import Dataset, Vocabulary
from fewrec.errors import ConfigError, DataError, is_whole_number, with_fix

log = logging.getLogger(__name__)

PROTOCOLS = ("warm", "cold-user", "cold-item", "tallrec")
COLD_USER_SHOTS = (0, 1, 3, 5, 10, 20)
TALLREC_SHOTS = (16, 64, 256)


@dataclass
class EvalSet:
    """Ranking queries with their answers, all over the dataset's internal indices.

    Attributes:
        users: internal user index of each query (for bookkeeping, and for models when known).
        known: whether the model may use the user id (False: a new user, only `history` counts).
        history: (n_queries x n_items) ratings the query reveals to the model.
        exclude: (n_queries x n_items) items removed from the ranking (already seen).
        targets: (n_queries x n_items) held-out items to find (values: ratings).
    """

    users: np.ndarray
    known: np.ndarray
    history: sp.csr_matrix
    exclude: sp.csr_matrix
    targets: sp.csr_matrix

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> EvalSet:
        return EvalSet(
            self.users[rows],
            self.known[rows],
            self.history[rows],
            self.exclude[rows],
            self.targets[rows],
        )


def split_fingerprint(*parts: EvalSet | np.ndarray | None) -> str:
    """A short hash of eval sets (their users, history, exclusions and targets) and of arrays
    such as the cold items: two runs of a benchmark were on the same split when it is equal."""
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            h.update(b"none")
            continue
        arrays: list[np.ndarray] = [part] if isinstance(part, np.ndarray) else [part.users, part.known]
        if isinstance(part, EvalSet):
            for m in (part.history, part.exclude, part.targets):
                m = sp.csr_matrix(m, copy=True)
                m.sum_duplicates()  # (sorted indices: one matrix, one hash)
                arrays += [m.indptr, m.indices, m.data]
        for a in map(np.asarray, arrays):  # in one dtype per kind, whatever the index width
            kind = "|b1" if a.dtype == bool else "<i8" if a.dtype.kind in "iu" else "<f8"
            h.update(f"{kind}{a.shape}".encode() + np.ascontiguousarray(a, dtype=kind).tobytes())
    return h.hexdigest()[:16]


@dataclass
class Split:
    """A training dataset and the evaluation queries of one protocol."""

    protocol: str
    train: Dataset
    test: EvalSet
    valid: EvalSet | None = None
    seed: int = 0
    shots: int | None = None
    cold_items: np.ndarray | None = None


def rows_matrix(frame: pd.DataFrame, rows: np.ndarray, n_items: int) -> sp.csr_matrix:
    """CSR of the interactions of each query user (rows: user index per query)."""
    pos = {int(u): i for i, u in enumerate(rows)}
    keep = frame["user"].isin(pos.keys()).to_numpy()
    sub = frame[keep]
    r = np.fromiter((pos[int(u)] for u in sub["user"]), dtype=np.int64, count=len(sub))
    m = sp.csr_matrix(
        (sub["rating"].to_numpy(np.float32), (r, sub["item"].to_numpy())),
        shape=(len(rows), n_items),
    )
    m.sum_duplicates()
    return m


def binary_union(*mats: sp.csr_matrix) -> sp.csr_matrix:
    """1 wherever any of ``mats`` holds an entry, a stored rating of 0 included (summing the
    ratings dropped those, so items rated 0 in training were ranked again)."""
    ones = []
    for m in mats:
        m = sp.csr_matrix(m, copy=True)
        m.data = np.ones_like(m.data, dtype=np.float32)
        ones.append(m)
    out = ones[0]
    for m in ones[1:]:
        out = out + m
    out.data[:] = 1.0
    return out.tocsr()


def _check_seed(seed: Any) -> None:
    if not is_whole_number(seed) or seed < 0:
        raise ConfigError(f"a split seed must be a whole number >= 0, got {seed!r}")


def _check_fraction(test_fraction: Any) -> None:
    """The test share of users or items; validation takes half as many again, so < 2/3."""
    ok = isinstance(test_fraction, int | float | np.number) and not isinstance(test_fraction, bool)
    if not ok or not 0 < test_fraction < 2 / 3:
        raise ConfigError(
            f"test_fraction must be a number between 0 and 2/3 (validation takes half as many "
            f"again), got {test_fraction!r}"
        )


def _check_sizes(n_train: int, n_test: int, what: str, n_total: int, test_fraction: float) -> None:
    if n_test == 0:
        # the fewest whose held-out share rounds to one (Python rounds 0.5 to 0: 2 users at 0.25
        # were "not enough" where the message had said 2 were)
        need = math.floor(0.5 / test_fraction) + 1
        while need > 1 and round((need - 1) * test_fraction) >= 1:
            need -= 1
        while round(need * test_fraction) < 1:
            need += 1
        raise ConfigError(
            f"the split holds out no {what}: {test_fraction:.0%} of the data's {n_total} {what} is none; "
            f"it needs at least {need} {what} with interactions"
        )
    if n_train == 0:
        raise ConfigError(
            f"the split leaves no training interactions: all {n_total} {what} are held out; "
            "add data (or lower test_fraction)"
        )


def _canonical(indices: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    """``indices`` in the order of their external ids: whole numbers by value, then text (for
    MovieLens, whose ids are 1, 2, 3 ..., the internal order). A split drawn over this order
    holds out the same users or items however the data's rows, or its item table, were ordered
    (with --items and without it, two tables' models had been tested on different splits)."""
    ids = vocab.to_external(indices)

    def key(j: int) -> tuple[int, int, str]:
        s = str(ids[j])
        return (0, int(s), s) if s.isascii() and s.isdigit() else (1, 0, s)  # ("²" is a digit)

    return np.asarray(indices)[sorted(range(len(indices)), key=key)]


def warm_split(data: Dataset, seed: int = 0, ratios=(0.8, 0.1, 0.1)) -> Split:
    """Per-user random split of each user's interactions into train/valid/test (RecBole RS)."""
    _check_seed(seed)
    r = np.asarray(ratios, dtype=np.float64) if isinstance(ratios, list | tuple) else np.zeros(0)
    if r.shape != (3,) or (r < 0).any() or r[0] <= 0 or r[2] <= 0 or abs(r.sum() - 1) > 1e-6:
        raise ConfigError(
            "ratios must be (train, valid, test) shares >= 0 summing to 1, train and test > 0, "
            f"got {ratios!r}"
        )
    rng = np.random.default_rng(seed)
    inter = data.interactions
    part = np.zeros(len(inter), dtype=np.int8)
    too_few = 0
    for _, idx in inter.groupby("user", sort=True).indices.items():
        idx = rng.permutation(idx)
        n = len(idx)
        n_train = int(np.floor(n * ratios[0]))
        if n_train == 0:  # no history to be warm with: a cold user among the warm ones (all train)
            too_few += 1
            continue
        n_valid = int(np.floor(n * ratios[1]))
        part[idx[n_train : n_train + n_valid]] = 1
        part[idx[n_train + n_valid :]] = 2
    if too_few:
        log.info("warm split: %d users with too few interactions for a training one are not tested", too_few)
    train = inter[part == 0]
    valid, test = inter[part == 1], inter[part == 2]
    if len(test) == 0 or len(train) == 0:
        sizes = range(1, 100_000)
        least = next((n for n in sizes if 1 <= np.floor(n * r[0]) < n - np.floor(n * r[1])), "many")
        raise ConfigError(
            f"the warm split has {len(train)} training and {len(test)} test interactions: a user needs at "
            f"least {least} interactions to be tested with these ratios ({r[0]:g}, {r[1]:g}, {r[2]:g})"
        )
    users = np.unique(inter["user"].to_numpy())
    n_items = data.n_items
    tr = rows_matrix(train, users, n_items)
    va = rows_matrix(valid, users, n_items)
    te = rows_matrix(test, users, n_items)
    known = np.ones(len(users), dtype=bool)
    valid_set = EvalSet(users, known, tr, binary_union(tr), va)
    test_set = EvalSet(users, known, tr, binary_union(tr, va), te)
    keep_v = np.diff(va.indptr) > 0
    keep_t = np.diff(te.indptr) > 0
    return Split(
        "warm",
        data.with_interactions(train, data.name),
        test_set.subset(np.flatnonzero(keep_t)),
        valid_set.subset(np.flatnonzero(keep_v)),
        seed,
    )


def too_few_to_reveal(shots: int, most: int) -> ConfigError:
    """The error of a cold-user K that leaves no test user an interaction to find: ``most`` is
    the most interactions any test user has (`cold_user_split`, the benchmark)."""
    return ConfigError(
        with_fix(
            f"no test user has an interaction left after revealing K = {shots}; "
            f"the most any test user has is {most} (K must be below it)",
            f"reveal fewer: shots={max(most - 1, 0)} or less (CLI: --shots {max(most - 1, 0)})",
        )
    )


def cold_user_split(
    data: Dataset,
    shots: int = 5,
    seed: int = 0,
    test_fraction: float = 0.2,
    random_shots: bool = False,
) -> Split:
    """Hold out users; each test user reveals ``shots`` interactions, the rest are targets.

    The revealed ones are the earliest by time (or, with ``random_shots``, a seeded random pick).
    Interactions of the same time keep their order in the data (for ML-100K, ``u.data``'s row
    order): at K = 5 the fifth and sixth earliest share a second for 419 of its 943 users, so
    the same interactions in another row order reveal other items to some users.
    Test users with no interaction left after revealing are dropped (none on ML-100K for K<=19);
    a K that leaves no test user is a `ConfigError` naming the most interactions a test user
    has (the split came back empty without a word, and `evaluate_ranking` refused it later).
    The held-out users (``test_fraction`` of all users) are the same for every K with the same
    seed. A further ``test_fraction / 2`` of all users (10% at the default 0.2) form a validation
    set built the same way (they stay out of training too).
    """
    split, most = _cold_user_split(data, shots, seed, test_fraction, random_shots)
    if not len(split.test):
        raise too_few_to_reveal(int(shots), most)
    return split


def _cold_user_split(
    data: Dataset, shots: int = 5, seed: int = 0, test_fraction: float = 0.2, random_shots: bool = False
) -> tuple[Split, int]:
    """`cold_user_split`, whose test set may be empty (the benchmark leaves such a K out), and
    the most interactions of a test user."""
    if not is_whole_number(shots) or shots < 0:
        raise ConfigError(f"shots must be a whole number >= 0, got {shots!r}")
    _check_seed(seed)
    _check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    inter = data.interactions
    users = _canonical(np.unique(inter["user"].to_numpy()), data.users)
    perm = rng.permutation(users)
    n_test = int(round(len(users) * test_fraction))
    n_valid = int(round(len(users) * test_fraction / 2))
    test_users = np.sort(perm[:n_test])
    valid_users = np.sort(perm[n_test : n_test + n_valid])
    held = np.concatenate([test_users, valid_users])
    train = inter[~inter["user"].isin(held).to_numpy()]
    _check_sizes(len(train), n_test, "users", len(users), test_fraction)

    def build(group: np.ndarray, offset: int) -> EvalSet:
        sub = inter[inter["user"].isin(group).to_numpy()]
        srt = sub.sort_values(["user", "timestamp"], kind="stable")
        reveal = np.zeros(len(srt), dtype=bool)
        pick_rng = np.random.default_rng(seed + offset)
        groups = srt.groupby("user", sort=True).indices
        for user in _canonical(np.fromiter(groups, dtype=np.int64, count=len(groups)), data.users):
            idx = groups[user]  # (users in their ids' order: the draws do not follow the rows')
            if random_shots:
                reveal[pick_rng.permutation(idx)[:shots]] = True
            else:
                reveal[idx[:shots]] = True
        hist = rows_matrix(srt[reveal], group, data.n_items)
        targ = rows_matrix(srt[~reveal], group, data.n_items)
        es = EvalSet(group, np.zeros(len(group), bool), hist, binary_union(hist), targ)
        return es.subset(np.flatnonzero(np.diff(targ.indptr) > 0))

    counts = inter["user"][inter["user"].isin(test_users).to_numpy()].value_counts()
    split = Split(
        "cold-user",
        data.with_interactions(train),
        build(test_users, 1),
        build(valid_users, 2),
        seed,
        int(shots),
    )
    return split, int(counts.max()) if len(counts) else 0


def cold_item_split(data: Dataset, seed: int = 0, test_fraction: float = 0.2) -> Split:
    """Hold 20% of items (among those with interactions) out of training entirely.

    Test queries: every user with an interaction on a held-out item; targets are those
    interactions, history is the user's training interactions, and ranking is over ALL items.
    A validation set is built the same way from a further 10% of items, also out of training.
    """
    _check_seed(seed)
    _check_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    inter = data.interactions
    items = _canonical(np.unique(inter["item"].to_numpy()), data.items)
    perm = rng.permutation(items)
    n_test = int(round(len(items) * test_fraction))
    n_valid = int(round(len(items) * test_fraction / 2))
    cold, cold_valid = np.sort(perm[:n_test]), np.sort(perm[n_test : n_test + n_valid])
    held = np.concatenate([cold, cold_valid])
    is_held = inter["item"].isin(held).to_numpy()
    train = inter[~is_held]
    _check_sizes(len(train), n_test, "items", len(items), test_fraction)

    def build(group: np.ndarray) -> EvalSet:
        tgt = inter[inter["item"].isin(group).to_numpy()]
        users = np.unique(tgt["user"].to_numpy())
        hist = rows_matrix(train, users, data.n_items)
        # Exclude what the user saw in training and the other held-out group's items they saw.
        others = inter[is_held & ~inter["item"].isin(group).to_numpy()]
        seen = binary_union(hist, rows_matrix(others, users, data.n_items))
        # known: with a training history (a user whose every item is held out is a new user)
        known = np.diff(hist.indptr) > 0
        return EvalSet(users, known, hist, seen, rows_matrix(tgt, users, data.n_items))

    return Split(
        "cold-item",
        data.with_interactions(train),
        build(cold),
        build(cold_valid),
        seed,
        cold_items=cold,
    )


# ---------------------------------------------------------------------------------- TALLRec


@dataclass
class TallrecSamples:
    """Binary "will the user like the target?" samples of the TALLRec protocol.

    Attributes:
        users: internal user index per sample.
        history: (n, 10) internal item indices of the previous 10 interactions, oldest first.
        history_labels: (n, 10) 1 = liked (rating above 60% of the top rating: > 3 of 5 stars),
            0 = not.
        items: target item per sample.
        labels: target label per sample.
        timestamps: target time per sample.
    """

    users: np.ndarray
    history: np.ndarray
    history_labels: np.ndarray
    items: np.ndarray
    labels: np.ndarray
    timestamps: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    def take(self, rows: np.ndarray) -> TallrecSamples:
        return TallrecSamples(
            self.users[rows],
            self.history[rows],
            self.history_labels[rows],
            self.items[rows],
            self.labels[rows],
            self.timestamps[rows],
        )

    def history_matrix(self, n_items: int) -> sp.csr_matrix:
        """(n x n_items) with label + 1 at each history item (2 = liked, 1 = not liked)."""
        n, h = self.history.shape
        rows = np.repeat(np.arange(n), h)
        m = sp.csr_matrix(
            ((self.history_labels.ravel() + 1).astype(np.float32), (rows, self.history.ravel())),
            shape=(n, n_items),
        )
        m.sum_duplicates()
        return m

    def as_interactions(self) -> pd.DataFrame:
        """Every (user, item, label) these samples reveal, history and target, deduplicated.

        Only the target's time is kept, so a sample's history items carry it too, and an item
        in several samples of a user the latest one's: a model that reads a user's order sees
        it only roughly (at K = 256, about half the users' rows out of order). Measured on
        like-clf's strict K-shot AUC at K = 256, true times move it by under 0.001."""
        n, h = self.history.shape
        frame = pd.DataFrame(
            {
                "user": np.concatenate([np.repeat(self.users, h), self.users]).astype(np.int32),
                "item": np.concatenate([self.history.ravel(), self.items]).astype(np.int32),
                "rating": np.concatenate([self.history_labels.ravel(), self.labels]).astype(np.float32),
                "timestamp": np.concatenate([np.repeat(self.timestamps, h), self.timestamps]),
            }
        )
        return frame.drop_duplicates(["user", "item"], keep="last").reset_index(drop=True)


@dataclass
class TallrecSplit:
    """The TALLRec train/valid/test samples (8:1:1 by position) over one dataset."""

    data: Dataset
    train: TallrecSamples
    valid: TallrecSamples
    test: TallrecSamples

    def shots(self, k: int, seed: int) -> TallrecSamples:
        """K training samples drawn from the train part with a fixed seed."""
        if not 0 < k <= len(self.train):
            raise ConfigError(f"K must be in 1..{len(self.train)}, got {k}")
        rng = np.random.default_rng(seed)
        return self.train.take(np.sort(rng.choice(len(self.train), size=k, replace=False)))

    def catalogue_dataset(self) -> Dataset:
        """All interactions of the users that appear in neither the valid nor the test
        samples: a warm catalogue for models that learn from other users (user-disjoint from
        the test)."""
        held = np.union1d(self.valid.users, self.test.users)
        inter = self.data.interactions
        return self.data.with_interactions(inter[~inter["user"].isin(held).to_numpy()])

    def train_dataset(self, samples: TallrecSamples) -> Dataset:
        """What a model may learn from: the interactions the K samples reveal (labels as
        ratings: 1.0 liked, 0.0 not) plus the item catalogue text."""
        return self.data.with_interactions(samples.as_interactions(), self.data.name)


def tallrec_split(data: Dataset, seq_len: int = 10, n_samples: int = 10_000) -> TallrecSplit:
    """Rebuild the TALLRec movie samples exactly (their ``preprocess_movie.py``).

    Users are taken in order of first appearance in the rating file; each user's interactions
    are sorted by time (stable); a sample is the previous ``seq_len`` interactions plus the
    target; the LAST ``n_samples`` samples are kept and split 8:1:1 by position. A rating is a
    like above `LIKE_SHARE` (60%) of the data's top rating on a star scale, as models read a
    like (`FitState.like_cut`): TALLRec's "more than 3 stars" on a 1-5 scale, more than 6 on
    1-10 (where "> 3" took 4 of 10 for one); on counts any above 0 (60% of the top play count
    made 2 of 1,000 test samples likes).
    """
    from fewrec.models.base import LIKE_SHARE, star_scale

    inter = data.interactions
    lo, hi = data.rating_range
    like_above = LIKE_SHARE * hi if star_scale(lo, hi) and not data.counts else 0.0
    order = pd.unique(inter["user"].to_numpy())
    rank = np.empty(data.n_users, dtype=np.int64)
    rank[order] = np.arange(len(order))
    frame = inter.assign(_rank=rank[inter["user"].to_numpy()], _pos=np.arange(len(inter)))
    frame = frame.sort_values(["_rank", "timestamp", "_pos"], kind="stable")
    users_l, hist_l, hlab_l, item_l, lab_l, ts_l = [], [], [], [], [], []
    for u, idx in frame.groupby("_rank", sort=True).indices.items():
        sub = frame.iloc[idx]
        items = sub["item"].to_numpy()
        likes = (sub["rating"].to_numpy() > like_above).astype(np.int8)
        ts = sub["timestamp"].to_numpy()
        for i in range(seq_len, len(items)):
            users_l.append(order[u])
            hist_l.append(items[i - seq_len : i])
            hlab_l.append(likes[i - seq_len : i])
            item_l.append(items[i])
            lab_l.append(likes[i])
            ts_l.append(ts[i])
    samples = TallrecSamples(
        np.asarray(users_l),
        np.asarray(hist_l),
        np.asarray(hlab_l),
        np.asarray(item_l),
        np.asarray(lab_l),
        np.asarray(ts_l),
    )
    samples = samples.take(np.arange(max(0, len(samples) - n_samples), len(samples)))
    n = len(samples)
    _check_tallrec_labels(samples, n)
    a, b = int(n * 0.8), int(n * 0.9)
    return TallrecSplit(
        data,
        samples.take(np.arange(a)),
        samples.take(np.arange(a, b)),
        samples.take(np.arange(b, n)),
    )


def _check_tallrec_labels(samples: TallrecSamples, n: int) -> None:
    """Refuse, before any model is trained, data on which the test AUC cannot be computed."""
    test = samples.labels[int(n * 0.9) :]
    if n == 0 or test.min(initial=1) == test.max(initial=0):
        liked = int(samples.labels.sum())
        raise DataError(
            f"the tallrec protocol needs liked and disliked targets in its test samples; this data "
            f"has {n} samples ({liked} liked), test targets all "
            f"{'absent' if len(test) == 0 else ('liked' if test[0] else 'disliked')}",
            fix="use explicit ratings, where a like is above 60% of the top rating (above 3 of 5 stars), "
            "and users with more than 10 interactions; implicit data (every rating 1) has no dislikes",
        )


def make_split(data: Dataset, protocol: str, seed: int = 0, shots: int = 5) -> Split:
    """The ranking split of a protocol (``tallrec`` has its own: `tallrec_split`)."""
    if protocol == "warm":
        return warm_split(data, seed)
    if protocol == "cold-user":
        return cold_user_split(data, shots=shots, seed=seed)
    if protocol == "cold-item":
        return cold_item_split(data, seed)
    if protocol == "tallrec":
        raise ConfigError("the tallrec protocol has samples, not a ranking split: use tallrec_split")
    raise ConfigError(f"unknown ranking protocol {protocol!r}; use one of {PROTOCOLS}")
