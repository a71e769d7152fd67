"""Probes of the cold-user K = 5 gap: signals and settings tried for the +30% target.

Every figure is NDCG@10 (full ranking) on the VALIDATION users of cold-user split seeds 0-2,
never on test users; each row gives the mean and the three per-seed values. These are one-off
measurements behind design choices, not models of the library:

* ``time``: does *when* a new user arrives help under the earliest reveal? Popularity counted
  over training ratings weighted by exp(-|t - t_user| / window), t_user the time of the user's
  last revealed rating.
* ``ratings``: DLAE fed the revealed ratings (r / 5, or 1 + 0.2 (r - 3.5)) instead of 0/1.
* ``dlae-grid``: one DLAE (L2, dropout) for K = 5 against the default per-history-size models.
* ``kshot-windows``: kshot-ridge's ``windows`` (earliest: consecutive K-blocks; random: draws).
* ``ensemble`` (``--ensemble``, ~15 min): the default ensemble with kshot-ridge at 1 window
  against its best ``windows`` above.
* ``ridge-variants``: kshot-ridge's earliest K5 model given more (the revealed ratings as a
  second block of inputs, the arrival month), more episodes (time ties broken at random),
  other target weights or a reduced rank (fewer parameters for 660 episodes); user-kNN and
  episode-kNN (neighbours by their first K items) for contrast.
* ``transitions``: kshot-ridge's K5 model z-blended with `transitions` (which items users rate
  in the session after an item's), scored from every revealed item or, with the revealed
  interactions' times, from the last revealed session only.
* ``transitions-ensemble`` (~30 min): the default ensemble without and with `transitions` as a
  component (re-ranked, as by default).
* ``learning-curve`` (~8 min): kshot-ridge's K5 model and popularity fitted on a random 25%,
  50%, 75% and all of the training users, and the re-ranked ensemble on 50% (on all of them it
  is the ``transitions-ensemble`` row "ensemble without transitions"): is the earliest-reveal
  gap short of data or of signal?
* ``neighbourhood`` (~20 min): kshot-ridge (K5) with its ``neighbourhood`` input block (the
  revealed items' cosine-similarity rows, unit length, times the setting) at 0, 3, 10 and 30,
  and the default ensemble with kshot-ridge at 10 (without it: the ``transitions-ensemble``
  row "ensemble without transitions").
* ``catalogue-time``: kshot-ridge's K5 scores with items that no training user had rated by
  the last revealed rating (+ 0, 1, 7 or 30 days) pushed down (by 1 or 100 z-units).
* ``zip``: the users' zip codes, which the loader leaves out, as side info of kshot-ridge and
  segmented popularity: the first digit (a US region) or "in Minnesota" (55xxx, where
  MovieLens ran).
* ``ridge-kernels``: kshot-ridge's earliest K5 model (with its neighbourhood block) in its
  dual form with other kernels over the episodes (polynomial, Gaussian), and with more input
  blocks (the revealed items' mean text embedding, the neighbourhood's neighbourhood, squared
  similarities, a cosine over training users' first 20 items only).
* ``blend-ceiling`` (~5 min): fixed z-score blends of kshot-ridge (with its neighbourhood) and
  the other components, the weights chosen on these same validation users: an optimistic
  ceiling on what blending the library's models can reach under the earliest reveal.
* ``movielens-1m`` (~10 min): more users from elsewhere. MovieLens-1M's 6,040 users (a separate
  dataset, fetched once; they joined in 2000, two years after ML-100K ends) mapped onto the
  catalogue by title (`fewrec.data.transfer`): pooled with the training users for popularity
  and kshot-ridge (K5, as by default), and, for kshot-ridge without side info, as a prior its
  weights are shrunk toward (B = B_1M + ridge on the residuals Y - p - Xc B_1M, B_1M fitted on
  ML-1M's episodes alone, the inputs' neighbourhood block from the training users).
* ``router``: can the library default (``reveal="both"``) route each query to the model for
  its kind? A logistic regression over the bag of revealed items tells a training user's first
  K items from K random ones (fitted on the training users, one episode of each kind per user);
  kshot-ridge fitted for the earliest and for the random reveal, mixed by its probability
  (soft: p z_earliest + (1 - p) z_random; hard: the likelier one), against the one fitted on
  both kinds of episodes and the matched one.

Usage::

    python benchmarks/cold_user_probes.py [--ensemble] [--only probe,probe] [--output PATH.json]

It writes benchmarks/cold_user_probes.{json,md} (``--output``: that JSON and the .md beside it);
``--only`` runs just the named probes and replaces their rows there, keeping the others. A
run without ``--ensemble`` leaves out the ``ensemble`` probe (a full run without it drops that
probe's rows from the table; the Makefile passes it).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.data import load_dataset
from fewrec.data.dataset import side_onehot, side_vocab, user_info_rows
from fewrec.data.movielens import NAME_1M
from fewrec.data.splits import EvalSet, cold_user_split
from fewrec.data.transfer import onto_catalogue, pool_users
from fewrec.eval import metrics as M
from fewrec.eval.evaluate import score_eval_set
from fewrec.models.base import MODELS, make_model
from fewrec.models.ease import _binary, cosine_similarity, neighbourhood_block
from fewrec.models.ensemble import DEFAULT_COMPONENTS, standardise

OUT = Path(__file__).with_name("cold_user_probes")
PROBES = (
    "neighbourhood",
    "ridge-kernels",
    "blend-ceiling",
    "learning-curve",
    "catalogue-time",
    "movielens-1m",
    "zip",
    "router",
    "transitions",
    "ridge-variants",
    "transitions-ensemble",
    "time",
    "ratings",
    "dlae-grid",
    "kshot-windows",
    "ensemble",
)
"""Every probe's name, in the order they run (``ensemble`` only with ``--ensemble``)."""
PLAIN_RIDGE = {"neighbourhood": 0.0}
"""kshot-ridge as it was before its neighbourhood block (the default since 2026-12-03), as
every probe but ``neighbourhood`` ran it."""
SEEDS = (0, 1, 2)
DAY = 86_400.0


def ndcg10(scores: np.ndarray, es: EvalSet) -> float:
    s = np.array(scores, dtype=np.float64)
    ex = es.exclude.tocoo()
    s[ex.row, ex.col] = -np.inf
    hits = M.hits_matrix(M.top_k_matrix(s, 10), es.targets)
    return float(M.ndcg_at_k(hits, np.diff(es.targets.indptr), 10).mean())


def revealed(es: EvalSet, data, r: int) -> pd.DataFrame:
    """The interactions (with their times) that query ``r`` of ``es`` reveals."""
    inter = data.interactions
    return inter[
        (inter["user"].to_numpy() == es.users[r]) & inter["item"].isin(es.history[r].indices).to_numpy()
    ]


def time_popularity(split, data, window_days: float) -> np.ndarray:
    """Training ratings counted with weight exp(-|t - t_user| / window) per validation user."""
    es, train = split.valid, split.train.interactions
    inter = data.interactions
    ts, items = train["timestamp"].to_numpy(float), train["item"].to_numpy()
    out = np.empty((len(es), data.n_items))
    for r, u in enumerate(es.users):
        shown = revealed(es, data, r)
        t_user = float(
            shown["timestamp"].max() if len(shown) else inter[inter["user"] == u]["timestamp"].min()
        )
        w = np.exp(-np.abs(ts - t_user) / (window_days * DAY))
        out[r] = np.bincount(items, weights=w, minlength=data.n_items)
    return out


def z_scores(scores: np.ndarray) -> np.ndarray:
    """The ensemble's per-row z-scores; items a model cannot score sink to the bottom."""
    return np.nan_to_num(standardise(scores), nan=-1e6)


def last_session(es: EvalSet, data) -> sp.csr_matrix:
    """Per query, the revealed items rated at the latest revealed timestamp (0/1)."""
    out = np.zeros((len(es), data.n_items), dtype=np.float32)
    for r in range(len(es)):
        mine = revealed(es, data, r)
        out[r, mine["item"][mine["timestamp"] == mine["timestamp"].max()].to_numpy()] = 1.0
    return sp.csr_matrix(out)


def transitions_probe(data, splits, add) -> None:
    """kshot-ridge's K5 model z-blended with `transitions` (scored from every revealed item, or
    from the last revealed session only, which needs the revealed interactions' times)."""
    weights = (0.1, 0.15, 0.2, 0.3)
    for reveal, group in splits.items():
        vals: dict[str, list[float]] = {}
        for seed, s in zip(SEEDS, group, strict=True):
            info = s.train.user_info
            ridge = make_model("kshot-ridge", seed=seed, shots=(5,), reveal=reveal, **PLAIN_RIDGE).fit(
                s.train
            )
            trans = make_model("transitions", seed=seed).fit(s.train)
            zr = z_scores(score_eval_set(ridge, s.valid, info))
            zt = z_scores(score_eval_set(trans, s.valid, info))
            vals.setdefault("transitions alone", []).append(ndcg10(zt, s.valid))
            vals.setdefault("kshot-ridge K5", []).append(ndcg10(zr, s.valid))
            for w in weights:
                vals.setdefault(f"kshot-ridge K5 + {w} transitions", []).append(ndcg10(zr + w * zt, s.valid))
            if reveal == "earliest":
                zl = z_scores(np.asarray((last_session(s.valid, data) @ trans.sim_).todense()))
                for w in weights:
                    vals.setdefault(f"kshot-ridge K5 + {w} transitions, last session", []).append(
                        ndcg10(zr + w * zl, s.valid)
                    )
        for setting, v in vals.items():
            add("transitions", reveal, setting, v)


def ridge_k5(
    split,
    data,
    rating_scale: float = 0.0,
    rating_centre: str = "global",
    month_scale: float = 0.0,
    draws: int = 1,
    target_power: float = 0.0,
    l2: float = 100.0,
    seed: int = 0,
    rank: int = 0,
) -> np.ndarray:
    """kshot-ridge's K = 5 earliest-reveal model (side info on, one window), written out densely
    so that inputs and episodes can be varied; with the defaults it is kshot-ridge exactly.

    ``rating_scale``: a second block of inputs, the revealed ratings minus 3.5 (``"global"``) or
    minus the mean revealed rating (``"user"``); ``month_scale``: an indicator of the 30-day
    period of the first revealed rating; ``draws``: episodes per user, the first drawn with
    ties in time broken by the data's order and the others at random (L2 scaled alike, as the
    episodes repeat); ``target_power``: targets weighted 1 / n_rest ** power; ``rank``:
    reduced-rank ridge (the weights projected on the top ``rank`` right singular vectors of the
    training episodes' fitted values)."""
    k, n = 5, split.train.n_items
    inter = split.train.interactions.sort_values(["user", "timestamp"], kind="stable")
    t0 = float(data.interactions["timestamp"].min())
    vocab = side_vocab(split.train.user_info)
    side = side_onehot(split.train.user_info, vocab, split.train.n_users)
    rng = np.random.default_rng(seed)

    def extra(items: np.ndarray, ratings: np.ndarray, first_time: float) -> np.ndarray:
        blocks = []
        if rating_scale:
            v = np.zeros(n)
            v[items] = ratings - (3.5 if rating_centre == "global" else ratings.mean())
            blocks.append(rating_scale * v)
        if month_scale:
            v = np.zeros(8)
            v[min(int((first_time - t0) // (30 * DAY)), 7)] = month_scale
            blocks.append(v)
        return np.concatenate(blocks) if blocks else np.zeros(0)

    xs, ys = [], []
    items_all, ratings_all, times_all = (inter[c].to_numpy() for c in ("item", "rating", "timestamp"))
    for u, idx in inter.groupby("user", sort=True).indices.items():
        if len(idx) <= k:
            continue
        it, r, t = items_all[idx], ratings_all[idx], times_all[idx]
        for d in range(draws):
            order = np.arange(len(idx)) if d == 0 else np.lexsort((rng.random(len(idx)), t))
            x = np.zeros(n)
            x[it[order[:k]]] = 1.0
            xs.append(np.concatenate([x, side[u], extra(it[order[:k]], r[order[:k]], t[order[0]])]))
            y = np.zeros(n, dtype=np.float32)
            y[it[order[k:]]] = 1.0 / (len(idx) - k) ** target_power
            ys.append(y)
    x, y = np.array(xs), np.array(ys)
    m, p = x.mean(axis=0), y.mean(axis=0)
    gram = (x - m).T @ (x - m)
    gram[np.diag_indices_from(gram)] += l2 * draws
    w = np.linalg.solve(gram, (x - m).T @ (y - p))
    if rank:  # reduced-rank ridge: the fitted values' top ``rank`` directions only
        _, _, vt = np.linalg.svd((x - m) @ w, full_matrices=False)
        w = (w @ vt[:rank].T) @ vt[:rank]
    es = split.valid
    qside = side_onehot(user_info_rows(split.train.user_info, es.users), vocab, len(es))
    qs = []
    for r in range(len(es)):
        h = es.history[r]
        x = np.zeros(n)
        x[h.indices] = 1.0
        first_time = float(revealed(es, data, r)["timestamp"].min())
        qs.append(np.concatenate([x, qside[r], extra(h.indices, h.data, first_time)]))
    return (np.array(qs) - m) @ w + p


def neighbour_probe(split, k: int = 5) -> dict[str, np.ndarray]:
    """User-kNN on full training histories (overlap / n_u ** 0.5, all neighbours) and
    episode-kNN: training users weighted by (overlap of their first K with the query) ** 3,
    their items after the first K averaged, shrunk to the mean with weight 200."""
    x = split.train.matrix(implicit=True).tocsr()
    counts = np.asarray(x.sum(axis=1)).ravel()
    h = (split.valid.history > 0).astype(np.float64)
    sim = (h @ x.T).toarray() / np.maximum(counts, 1) ** 0.5
    sim[:, counts <= k] = 0.0
    inter = split.train.interactions.sort_values(["user", "timestamp"], kind="stable")
    firsts, rests = [], []
    for idx in inter.groupby("user", sort=True).indices.values():
        if len(idx) <= k:
            continue
        it = inter["item"].to_numpy()[idx]
        f, r = np.zeros(split.train.n_items), np.zeros(split.train.n_items)
        f[it[:k]], r[it[k:]] = 1.0, 1.0
        firsts.append(f)
        rests.append(r)
    first, rest = np.array(firsts), np.array(rests)
    w = np.asarray(h @ first.T) ** 3
    episode = (w @ rest + 200.0 * rest.mean(axis=0)) / (w.sum(axis=1, keepdims=True) + 200.0)
    return {"user-knn": sim @ x.toarray(), "episode-knn": episode}


def ridge_variants_probe(data, splits, add) -> None:
    """Inputs, episodes and targets of kshot-ridge's earliest K5 model; kNN alternatives."""
    group = splits["earliest"]
    variants = {
        "as kshot-ridge": {},
        "+ ratings - 3.5, scale 0.5": {"rating_scale": 0.5},
        "+ ratings - 3.5, scale 1": {"rating_scale": 1.0},
        "+ ratings - user mean, scale 1": {"rating_scale": 1.0, "rating_centre": "user"},
        "+ arrival month": {"month_scale": 1.0},
        "+ ratings - 3.5 (0.5) + arrival month": {"rating_scale": 0.5, "month_scale": 1.0},
        "4 draws of time ties": {"draws": 4},
        "8 draws of time ties": {"draws": 8},
        "targets / n_rest ** 0.5": {"target_power": 0.5},
        "targets / n_rest": {"target_power": 1.0},
        "reduced rank 32": {"rank": 32},
        "reduced rank 128": {"rank": 128},
    }
    for label, cfg in variants.items():
        add("ridge-variants", "earliest", label, [ndcg10(ridge_k5(s, data, **cfg), s.valid) for s in group])
    knn = [neighbour_probe(s) for s in group]
    for name in ("user-knn", "episode-knn"):
        add(
            "ridge-variants",
            "earliest",
            name,
            [ndcg10(r[name], s.valid) for r, s in zip(knn, group, strict=True)],
        )


def learning_curve_probe(splits, add, model_row_on) -> None:
    """kshot-ridge (K5) and popularity on a random share of the training users; the ensemble
    on half of them."""
    fractions = (0.25, 0.5, 0.75, 1.0)
    for reveal in ("earliest", "random"):
        vals: dict[str, list[float]] = {}
        for seed, s in zip(SEEDS, splits[reveal], strict=True):
            for frac in fractions:
                sub = subsample_users(s.train, frac, seed)
                ridge = make_model("kshot-ridge", seed=seed, shots=(5,), reveal=reveal, **PLAIN_RIDGE).fit(
                    sub
                )
                pop = make_model("popularity").fit(sub)
                for name, m in (("kshot-ridge", ridge), ("popularity", pop)):
                    vals.setdefault(f"{name}, {frac:.0%} of training users", []).append(
                        ndcg10(score_eval_set(m, s.valid, sub.user_info), s.valid)
                    )
        for name in ("popularity", "kshot-ridge"):
            for frac in fractions:
                setting = f"{name}, {frac:.0%} of training users"
                add("learning-curve", reveal, setting, vals[setting])
    model_row_on("learning-curve", "earliest", "ensemble, 50% of training users", "ensemble", 0.5)


def subsample_users(train, frac: float, seed: int):
    """The training data of a random ``frac`` of its users (drawn with seed 100 + seed)."""
    inter = train.interactions
    users = np.unique(inter["user"].to_numpy())
    keep = np.random.default_rng(100 + seed).permutation(users)[: int(round(frac * len(users)))]
    return train.with_interactions(inter[inter["user"].isin(keep).to_numpy()])


def catalogue_time_probe(data, splits, add) -> None:
    """kshot-ridge's earliest K5 scores, items new to the catalogue after the user's arrival
    pushed down."""
    vals: dict[str, list[float]] = {}
    for seed, s in zip(SEEDS, splits["earliest"], strict=True):
        tr = s.train.interactions
        first = np.full(data.n_items, np.inf)
        np.minimum.at(first, tr["item"].to_numpy(), tr["timestamp"].to_numpy(float))
        es = s.valid
        t_user = np.array([float(revealed(es, data, r)["timestamp"].max()) for r in range(len(es))])
        ridge = make_model("kshot-ridge", seed=seed, shots=(5,), reveal="earliest", **PLAIN_RIDGE).fit(
            s.train
        )
        z = z_scores(score_eval_set(ridge, es, s.train.user_info))
        vals.setdefault("kshot-ridge K5", []).append(ndcg10(z, es))
        for days in (0, 1, 7, 30):
            late = first[None, :] > t_user[:, None] + days * DAY
            for push in (1.0, 100.0):
                vals.setdefault(f"items new after arrival + {days} d pushed down {push:g}", []).append(
                    ndcg10(z - push * late, es)
                )
    for setting, v in vals.items():
        add("catalogue-time", "earliest", setting, v)


def zip_probe(data, add) -> None:
    """kshot-ridge (earliest K5) and segmented popularity with a zip-code field added."""
    from fewrec.data.movielens import data_dir

    raw = pd.read_csv(data_dir() / "movielens-100k" / "ml-100k.user", sep="\t", dtype=str)
    zips = dict(zip(raw.iloc[:, 0], raw.iloc[:, 4].fillna(""), strict=True))
    z = pd.Series([zips.get(str(u), "") for u in data.users.ids])
    region = z.str[:1].where(z.str[:1].str.isdigit(), "other")
    fields = {
        "age, gender, occupation (as loaded)": None,
        "+ zip first digit": region,
        "+ zip in Minnesota (55xxx)": np.where(z.str[:2] == "55", "yes", "no"),
    }
    for label, extra in fields.items():
        d = data if extra is None else replace(data, user_info=data.user_info.assign(zip=np.asarray(extra)))
        ridge_v, pop_v = [], []
        for seed in SEEDS:
            s = cold_user_split(d, shots=5, seed=seed)
            ridge = make_model("kshot-ridge", seed=seed, shots=(5,), reveal="earliest", **PLAIN_RIDGE).fit(
                s.train
            )
            pop = make_model("popularity", segment_by=list(d.user_info.columns)).fit(s.train)
            ridge_v.append(ndcg10(score_eval_set(ridge, s.valid, s.train.user_info), s.valid))
            pop_v.append(ndcg10(score_eval_set(pop, s.valid, s.train.user_info), s.valid))
        add("zip", "earliest", f"kshot-ridge K5, {label}", ridge_v)
        add("zip", "earliest", f"popularity by side info, {label}", pop_v)


def _unit(a: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(norm > 0, norm, 1.0)


def _first_items_cosine(train, first: int = 20) -> np.ndarray:
    """Item cosine over the training users' first ``first`` items only."""
    inter = train.interactions.sort_values(["user", "timestamp"], kind="stable").groupby("user").head(first)
    x = sp.csr_matrix(
        (np.ones(len(inter)), (inter["user"], inter["item"])), shape=(train.n_users, train.n_items)
    )
    co = (x.T @ x).toarray()
    norm = np.sqrt(np.diag(co))
    norm[norm == 0] = 1.0
    sim = co / norm[:, None] / norm[None, :]
    np.fill_diagonal(sim, 0.0)
    return sim


def ridge_kernels_probe(data, splits, add) -> None:
    """kshot-ridge's earliest K5 model (neighbourhood 10) as kernel ridge over the episodes:
    other kernels, and more input blocks; "linear" is kshot-ridge itself."""
    from fewrec.models.content import ContentConfig, embed_items
    from fewrec.models.ease import cosine_similarity

    k, emb = 5, embed_items(data, ContentConfig()).astype(np.float64)
    vals: dict[str, list[float]] = {}
    for s in splits["earliest"]:
        tr, es = s.train, s.valid
        n = tr.n_items
        inter = tr.interactions.sort_values(["user", "timestamp"], kind="stable")
        items, users = inter["item"].to_numpy(), inter["user"].to_numpy()
        eps = [idx for idx in inter.groupby("user", sort=True).indices.values() if len(idx) > k]
        r = np.zeros((len(eps), n))
        y = np.zeros((len(eps), n))
        for e, idx in enumerate(eps):
            r[e, items[idx[:k]]], y[e, items[idx[k:]]] = 1.0, 1.0
        qr = (es.history > 0).astype(np.float64).toarray()
        vocab = side_vocab(tr.user_info)
        side = side_onehot(tr.user_info, vocab, tr.n_users)[[users[idx[0]] for idx in eps]]
        qside = side_onehot(user_info_rows(tr.user_info, es.users), vocab, len(es))
        sim = cosine_similarity(tr).astype(np.float64)
        extras = {  # label: (matrix, scale) of an extra block scale * unit(h @ matrix)
            "": None,
            "+ mean text embedding (3)": (emb, 3.0),
            "+ neighbourhood's neighbourhood (3)": (sim @ sim, 3.0),
            "+ squared similarities (10)": (sim**2, 10.0),
            "+ cosine over first 20 items (3)": (_first_items_cosine(tr), 3.0),
        }
        for label, extra in extras.items():
            blocks = [r, 10 * _unit(r @ sim), side]
            qblocks = [qr, 10 * _unit(qr @ sim), qside]
            if extra is not None:
                blocks.append(extra[1] * _unit(r @ extra[0]))
                qblocks.append(extra[1] * _unit(qr @ extra[0]))
            x, q = np.hstack(blocks), np.hstack(qblocks)
            m, p = x.mean(axis=0), y.mean(axis=0)
            lin, qlin = (x - m) @ (x - m).T, (q - m) @ (x - m).T
            kernels = {"linear": (lin, qlin, 100.0)}
            if not label:
                d, qd = np.diag(lin), ((q - m) ** 2).sum(axis=1)
                dist, qdist = d[:, None] + d[None, :] - 2 * lin, qd[:, None] + d[None, :] - 2 * qlin
                bw = 2.0 * np.median(dist)
                kernels |= {
                    "polynomial (lin + 100)^2 / 100": (
                        (lin + 100) ** 2 / 100,
                        (qlin + 100) ** 2 / 100,
                        100.0,
                    ),
                    "polynomial, l2 300": ((lin + 100) ** 2 / 100, (qlin + 100) ** 2 / 100, 300.0),
                    "Gaussian, 2 x median distance, l2 0.3": (np.exp(-dist / bw), np.exp(-qdist / bw), 0.3),
                }
            for kname, (kxx, kqx, l2) in kernels.items():
                kxx = kxx + l2 * np.eye(len(kxx))
                alpha = np.linalg.solve(kxx, y - p)
                setting = f"{kname} {label}".strip() if label else kname
                vals.setdefault(setting, []).append(ndcg10(kqx @ alpha + p, es))
    for setting, v in vals.items():
        add("ridge-kernels", "earliest", setting, v)


def blend_ceiling_probe(splits, add) -> None:
    """Fixed z-blends of kshot-ridge (neighbourhood 10) and other components, the weights
    chosen on the same validation users (optimistic)."""
    import itertools

    comps = {
        "itemknn": ("itemknn", {"neighbors": 1000}),
        "popularity by side info": ("popularity", {"segment_by": "auto"}),
        "fewshot": ("fewshot", {"reveal": "earliest"}),
        "transitions": ("transitions", {}),
        "plain kshot-ridge": ("kshot-ridge", {"reveal": "earliest", **PLAIN_RIDGE}),
        "dlae": ("dlae", {}),
    }
    z: dict[str, list[np.ndarray]] = {}
    for seed, s in zip(SEEDS, splits["earliest"], strict=True):
        for label, (name, cfg) in {"kshot-ridge": ("kshot-ridge", {"reveal": "earliest"}), **comps}.items():
            m = make_model(name, seed=seed, **cfg).fit(s.train)
            z.setdefault(label, []).append(z_scores(score_eval_set(m, s.valid, s.train.user_info)))

    def score(weights: dict[str, float]) -> list[float]:
        return [
            ndcg10(z["kshot-ridge"][i] + sum(w * z[c][i] for c, w in weights.items() if w), s.valid)
            for i, s in enumerate(splits["earliest"])
        ]

    add("blend-ceiling", "earliest", "kshot-ridge alone", score({}))
    best = max(
        (
            dict(zip(comps, ws, strict=True))
            for ws in itertools.product((0.0, 0.25, 0.5, 1.0), repeat=len(comps))
        ),
        key=lambda w: float(np.mean(score(w))),
    )
    label = ", ".join(f"{w:g} {c}" for c, w in best.items() if w) or "nothing"
    add("blend-ceiling", "earliest", f"best blend on these users: kshot-ridge + {label}", score(best))


def _earliest_episodes(data, k: int, sim: np.ndarray) -> tuple[np.ndarray, sp.csr_matrix]:
    """kshot-ridge's earliest-reveal episodes (no side info): inputs [revealed, neighbourhood]."""
    inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
    items = inter["item"].to_numpy()
    rows_x, cols_x, rows_y, cols_y = [], [], [], []
    for e, idx in enumerate(i for i in inter.groupby("user", sort=True).indices.values() if len(i) > k):
        rows_x.append(np.full(k, e))
        cols_x.append(items[idx[:k]])
        rows_y.append(np.full(len(idx) - k, e))
        cols_y.append(items[idx[k:]])
    n_ep, n = len(rows_x), data.n_items
    revealed, rest = _binary(rows_x, cols_x, n_ep, n), _binary(rows_y, cols_y, n_ep, n)
    return np.hstack([revealed.toarray(), neighbourhood_block(revealed, sim, 10.0)]), rest


def _ridge(x: np.ndarray, y: sp.csr_matrix, l2: float, prior: np.ndarray | None = None):
    """Weights, input means and target means of the ridge (dual form), shrunk toward ``prior``."""
    m, p = x.mean(axis=0), np.asarray(y.mean(axis=0)).ravel()
    xc = x - m
    resid = y.toarray() - p - (0.0 if prior is None else xc @ prior)
    kernel = xc @ xc.T
    kernel[np.diag_indices_from(kernel)] += l2
    w = xc.T @ np.linalg.solve(kernel, resid)
    return (w if prior is None else w + prior), m, p


def movielens_1m_probe(data, splits, add) -> None:
    """MovieLens-1M's users, mapped onto the catalogue, pooled with the training users or as a
    prior (see the module docstring)."""
    ml1m = onto_catalogue(load_dataset(NAME_1M), data)
    for reveal, group in splits.items():
        vals: dict[str, list[float]] = {}
        for seed, s in zip(SEEDS, group, strict=True):
            pooled = pool_users(s.train, ml1m, prefix="ml-1m:")
            for label, train in (("training users", s.train), ("training + ML-1M users", pooled)):
                for name, cfg in (("popularity", {}), ("kshot-ridge K5", {"shots": (5,), "reveal": reveal})):
                    m = make_model(name.split()[0], seed=seed, **cfg).fit(train)
                    vals.setdefault(f"{name}, {label}", []).append(
                        ndcg10(score_eval_set(m, s.valid, train.user_info), s.valid)
                    )
            if reveal != "earliest":
                continue
            # the prior: kshot-ridge K5 (earliest, no side info) with its weights replaced
            sim = cosine_similarity(s.train)
            x, y = _earliest_episodes(s.train, 5, sim)
            x1, y1 = _earliest_episodes(ml1m, 5, sim)
            prior = _ridge(x1, y1, 1000.0)[0]
            model = make_model("kshot-ridge", seed=seed, shots=(5,), reveal="earliest", side_weight=0).fit(
                s.train
            )
            for label, fit in (
                ("kshot-ridge K5 no side info, training users", _ridge(x, y, 100.0)),
                *(
                    (f"kshot-ridge K5 no side info, ML-1M prior, l2 {l2:g}", _ridge(x, y, l2, prior))
                    for l2 in (100.0, 300.0)
                ),
            ):
                w, m, p = fit
                model.weights_, model.intercepts_ = (
                    w[None].astype(np.float32),
                    (p - m @ w)[None].astype(np.float32),
                )
                vals.setdefault(label, []).append(
                    ndcg10(score_eval_set(model, s.valid, s.train.user_info), s.valid)
                )
        for setting, v in vals.items():
            add("movielens-1m", reveal, setting, v)


def router_probe(data, splits, add) -> None:
    """kshot-ridge K5 for the query's reveal chosen by a router over the revealed items (see the
    module docstring), against the model for both reveals and the matched one."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    k = 5
    vals: dict[tuple[str, str], list[float]] = {}
    aucs: list[float] = []
    for seed, early, rand in zip(SEEDS, splits["earliest"], splits["random"], strict=True):
        train = early.train  # (the same held-out users, so the same training users, for both)
        rng = np.random.default_rng(seed)
        firsts, randoms = [], []
        for _, g in train.interactions.groupby("user", sort=False):
            items = g.sort_values("timestamp", kind="stable")["item"].to_numpy()
            if len(items) > k:
                firsts.append(items[:k])
                randoms.append(rng.choice(items, k, replace=False))
        picks = np.asarray(firsts + randoms)
        x = sp.csr_matrix(
            (np.ones(picks.size), (np.repeat(np.arange(len(picks)), k), picks.ravel())),
            shape=(len(picks), data.n_items),
        )
        label = np.r_[np.ones(len(firsts)), np.zeros(len(randoms))]
        router = LogisticRegression(max_iter=3000).fit(x, label)
        ridges = {
            rv: make_model("kshot-ridge", seed=seed, shots=(k,), reveal=rv).fit(train)
            for rv in ("earliest", "random", "both")
        }
        probs = {}
        for reveal, s in (("earliest", early), ("random", rand)):
            shown = s.valid.history.copy()
            shown.data[:] = 1.0
            p = router.predict_proba(shown)[:, 1][:, None]
            probs[reveal] = p.ravel()
            z = {rv: z_scores(score_eval_set(m, s.valid, train.user_info)) for rv, m in ridges.items()}
            rows = {
                f"fitted for {reveal} (matched)": z[reveal],
                "fitted for the other reveal": z["random" if reveal == "earliest" else "earliest"],
                "fitted for both (the default)": z["both"],
                "routed, soft": p * z["earliest"] + (1 - p) * z["random"],
                "routed, hard": np.where(p > 0.5, z["earliest"], z["random"]),
            }
            for setting, sc in rows.items():
                vals.setdefault((reveal, setting), []).append(ndcg10(sc, s.valid))
        truth = np.r_[np.ones(len(probs["earliest"])), np.zeros(len(probs["random"]))]
        aucs.append(float(roc_auc_score(truth, np.r_[probs["earliest"], probs["random"]])))
    for (reveal, setting), v in vals.items():
        add("router", reveal, f"kshot-ridge K5, {setting}", v)
    # the router's AUC on the validation queries of both reveals (not an NDCG)
    add("router", "both", "router AUC, first K vs random K (not NDCG)", aucs)


def main(with_ensemble: bool, only: set[str] | None = None, out: Path = OUT) -> None:
    """All probes (``only``: just these, their rows replacing the same probes' rows on file);
    ``out`` is the tables' path without suffix (.json and .md are written)."""
    data = load_dataset()
    splits = {
        reveal: [cold_user_split(data, shots=5, seed=s, random_shots=reveal == "random") for s in SEEDS]
        for reveal in ("earliest", "random")
    }
    rows: list[dict] = []

    def add(probe: str, reveal: str, setting: str, values: list[float]) -> None:
        rows.append(
            {
                "probe": probe,
                "reveal": reveal,
                "setting": setting,
                "mean": float(np.mean(values)),
                "seeds": [round(v, 4) for v in values],
            }
        )
        print(f"{probe:14s} {reveal:8s} {setting:34s} {np.mean(values):.4f} {rows[-1]['seeds']}", flush=True)

    def model_row(probe: str, reveal: str, setting: str, name: str, **cfg) -> None:
        """A model fitted per seed; one that simulates new users does it the protocol's way."""
        if "reveal" in MODELS[name].Config.model_fields:
            cfg["reveal"] = reveal
        vals = []
        for seed, s in zip(SEEDS, splits[reveal], strict=True):
            m = make_model(name, seed=seed, **cfg).fit(s.train)
            vals.append(ndcg10(score_eval_set(m, s.valid, s.train.user_info), s.valid))
        add(probe, reveal, setting, vals)

    def model_row_on(probe: str, reveal: str, setting: str, name: str, frac: float, **cfg) -> None:
        """As `model_row`, fitted on a random ``frac`` of the training users."""
        if "reveal" in MODELS[name].Config.model_fields:
            cfg["reveal"] = reveal
        vals = []
        for seed, s in zip(SEEDS, splits[reveal], strict=True):
            sub = subsample_users(s.train, frac, seed)
            m = make_model(name, seed=seed, **cfg).fit(sub)
            vals.append(ndcg10(score_eval_set(m, s.valid, sub.user_info), s.valid))
        add(probe, reveal, setting, vals)

    def wanted(probe: str) -> bool:
        assert probe in PROBES, probe
        return only is None or probe in only

    if wanted("neighbourhood"):
        for reveal in ("earliest", "random"):
            for scale in (0.0, 3.0, 10.0, 30.0):
                model_row(
                    "neighbourhood",
                    reveal,
                    f"kshot-ridge K5, neighbourhood {scale:g}",
                    "kshot-ridge",
                    shots=(5,),
                    neighbourhood=scale,
                )
        for reveal in ("earliest", "random"):
            comps = {**DEFAULT_COMPONENTS, "kshot-ridge": {"neighbourhood": 10.0}}
            model_row(
                "neighbourhood",
                reveal,
                "ensemble, kshot-ridge neighbourhood 10",
                "ensemble",
                components=comps,
            )
    if wanted("ridge-kernels"):
        ridge_kernels_probe(data, splits, add)
    if wanted("blend-ceiling"):
        blend_ceiling_probe(splits, add)
    if wanted("learning-curve"):
        learning_curve_probe(splits, add, model_row_on)
    if wanted("catalogue-time"):
        catalogue_time_probe(data, splits, add)
    if wanted("movielens-1m"):
        movielens_1m_probe(data, splits, add)
    if wanted("zip"):
        zip_probe(data, add)
    if wanted("router"):
        router_probe(data, splits, add)
    if wanted("transitions"):
        transitions_probe(data, splits, add)
    if wanted("ridge-variants"):
        ridge_variants_probe(data, splits, add)
    if wanted("transitions-ensemble"):
        base = {k: v for k, v in DEFAULT_COMPONENTS.items() if k != "transitions"}
        for reveal in ("earliest", "random"):
            model_row(
                "transitions-ensemble", reveal, "ensemble without transitions", "ensemble", components=base
            )
            model_row(
                "transitions-ensemble",
                reveal,
                "ensemble with transitions",
                "ensemble",
                components={**base, "transitions": {}},
            )

    # when the user arrives
    if wanted("time"):
        earliest = splits["earliest"]
        add(
            "time",
            "earliest",
            "popularity",
            [
                ndcg10(np.tile(s.train.item_counts().astype(float), (len(s.valid), 1)), s.valid)
                for s in earliest
            ],
        )
        for days in (7, 30, 60):
            add(
                "time",
                "earliest",
                f"popularity, {days}-day window",
                [ndcg10(time_popularity(s, data, days), s.valid) for s in earliest],
            )

    # the revealed ratings as DLAE input
    if wanted("ratings"):
        weightings = {
            "0/1 (default)": lambda r: np.ones_like(r),
            "r / 5": lambda r: r / 5.0,
            "1 + 0.2 (r - 3.5)": lambda r: 1.0 + 0.2 * (r - 3.5),
        }
        for reveal, group in splits.items():
            fitted = [make_model("dlae").fit(s.train) for s in group]
            for label, f in weightings.items():
                vals = []
                for m, s in zip(fitted, group, strict=True):
                    h = s.valid.history.copy()
                    h.data = f(h.data).astype(np.float32)
                    vals.append(ndcg10(h @ m.weights_[int(np.searchsorted(m.shots_, 5))], s.valid))
                add("ratings", reveal, f"dlae input {label}", vals)

    # DLAE's settings for K = 5
    if wanted("dlae-grid"):
        model_row("dlae-grid", "random", "per-history-size (default)", "dlae")
        for l2 in (250.0, 500.0, 1000.0):
            for p in (0.97, 0.98, 0.99):
                model_row("dlae-grid", "random", f"l2 {l2:g}, dropout {p}", "dlae", l2=l2, dropout=p)

    # kshot-ridge: more episodes per training user
    if wanted("kshot-windows"):
        for reveal, windows in (("earliest", (1, 3, 5)), ("random", (1, 8, 16))):
            for w in windows:
                model_row(
                    "kshot-windows",
                    reveal,
                    f"kshot-ridge windows {w}",
                    "kshot-ridge",
                    windows=w,
                    shots=(5,),
                    **PLAIN_RIDGE,
                )

    if with_ensemble and wanted("ensemble"):
        for reveal, w in (("earliest", 3), ("random", 16)):
            for windows in (1, w):
                comps = {**DEFAULT_COMPONENTS, "kshot-ridge": {"windows": windows, **PLAIN_RIDGE}}
                model_row(
                    "ensemble",
                    reveal,
                    f"kshot-ridge windows {windows}",
                    "ensemble",
                    components=comps,
                    shots=(0, 1, 3, 5, 10, 20),
                    rerank=False,  # the blend, as recorded (the re-ranker is on by default now)
                )

    if only is not None and out.with_suffix(".json").exists():
        kept = [r for r in json.loads(out.with_suffix(".json").read_text())["rows"] if r["probe"] not in only]
        rows = kept + rows
    out.with_suffix(".json").write_text(json.dumps({"seeds": SEEDS, "k": 5, "rows": rows}, indent=2))
    lines = [
        "# Cold-user K = 5 probes (validation users, split seeds 0-2)",
        "",
        "NDCG@10, full ranking. Generated by `benchmarks/cold_user_probes.py`; see its docstring.",
        "",
        "| probe | reveal | setting | mean | seeds 0, 1, 2 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['probe']} | {r['reveal']} | {r['setting']} | {r['mean']:.4f} | "
        + ", ".join(f"{v:.4f}" for v in r["seeds"])
        + " |"
        for r in rows
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def probe_names(text: str) -> set[str]:
    """``--only``'s comma-separated probe names, each one of `PROBES`."""
    names = {n.strip() for n in text.split(",") if n.strip()}
    unknown = sorted(names - set(PROBES))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown probe(s) {', '.join(unknown) or repr(text)}; choose from {', '.join(PROBES)}"
        )
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="also run the ensemble probe (~15 min; the Makefile passes it)",
    )
    parser.add_argument(
        "--only",
        type=probe_names,
        default=None,
        metavar="PROBE[,PROBE...]",
        help="run just these probes, replacing their rows in the output and keeping the others; "
        f"choices: {', '.join(PROBES)}",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUT.with_suffix(".json"),
        help="JSON written, its .md beside it (default: benchmarks/cold_user_probes.json)",
    )
    args = parser.parse_args(argv)
    if args.only is not None and "ensemble" in args.only and not args.ensemble:
        parser.error("--only ensemble needs --ensemble (without it that probe does not run)")
    return args


if __name__ == "__main__":
    args = parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    main(args.ensemble, args.only, args.output.with_suffix(""))
