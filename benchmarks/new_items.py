"""New items among known ones: do the text models give them their fair share of a list?

The cold-item protocol's targets are all held-out items, so it rewards a model for putting new
items high, however many. Here the catalogue mixes them, as a shop's does: 20% of the items are
new (no training interaction), and every interaction, of a new item or a known one, is a test
target with the same chance (20%), so an item's share of the targets does not depend on
whether it is new. What a user rated and is not a target is out of the ranking, of the new
items as of the known (until 2026-12-07 a new film the user had rated but not as a target stayed
in and counted as a miss, which held new items down). A model that judged new items as well as
known ones would give them about their share of the targets in its lists and lose no recall for
it; an ID-only model (EASE) shows none of them.

Per model: Recall@20 over all items (denominator: all the user's targets, as in every fewrec
table; it was min(targets, 20) until 2026-12-07), the new items' share of the
top 20 against their share of the targets, and the new items it finds per user; each by the
length of the user's training history (under 50, 50-150, over 150 items).

``--variant`` rescores fewshot's item-item term for the new items (their text neighbours'
mean score): ``unseen`` averages only the neighbours the user has not seen, ``none`` drops the
term for them.

Run: ``python benchmarks/new_items.py --seeds 0 1 --models fewshot ease content ensemble``
(``--split temporal --cut 0.7``: new items arriving over time, `new_items_temporal.md`)
-> benchmarks/new_items.json and .md (the ensemble ~5 minutes a seed, the rest seconds).
``ensemble-text`` is the ensemble with ``untrained_items="text"`` (its rows until 2026-12-07).
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fewrec.data.movielens import load_movielens_100k
from fewrec.data.splits import EvalSet, binary_union, rows_matrix
from fewrec.eval import metrics as M
from fewrec.eval.benchmark import PRESETS
from fewrec.eval.evaluate import score_eval_set
from fewrec.models import MODELS, make_model
from fewrec.models.fewshot import text_neighbours

HERE = Path(__file__).parent
BUCKETS = ((0, 50), (50, 150), (150, None))


def mixed_split(data, seed: int):
    """The training data, the test queries of known users, and the new items' mask."""
    rng = np.random.default_rng(seed)
    inter = data.interactions
    items = np.unique(inter["item"].to_numpy())
    new = np.sort(rng.permutation(items)[: int(round(len(items) * 0.2))])
    is_new = inter["item"].isin(new).to_numpy()
    is_test = rng.random(len(inter)) < 0.2
    train = inter[~is_new & ~is_test]
    targets = inter[is_test]
    users = np.unique(targets["user"].to_numpy())
    hist = rows_matrix(train, users, data.n_items)
    known = np.diff(hist.indptr) > 0
    users, hist = users[known], hist[known]
    # what a user rated of the new items and is not a target is out of the ranking, as the known
    # items of their history are: showing a film the user did rate is no miss
    exclude = binary_union(hist, rows_matrix(inter[is_new & ~is_test], users, data.n_items))
    test = EvalSet(users, np.ones(len(users), bool), hist, exclude, rows_matrix(targets, users, data.n_items))
    mask = np.zeros(data.n_items, bool)
    mask[new] = True
    return data.with_interactions(train), test, mask


def temporal_split(data, quantile: float = 0.7):
    """As `mixed_split`, but forward in time: training is every rating before the timestamp at
    ``quantile`` of the data's, the new items are those first rated after it, and the targets
    are the later ratings of the users who rated before it (``--split temporal``)."""
    inter = data.interactions
    ts = inter["timestamp"].to_numpy()
    cut = np.quantile(ts, quantile)
    train, after = inter[ts < cut], inter[ts >= cut]
    users = np.unique(after["user"].to_numpy())
    hist = rows_matrix(train, users, data.n_items)
    known = np.diff(hist.indptr) > 0
    users, hist = users[known], hist[known]
    targets = rows_matrix(after, users, data.n_items)
    test = EvalSet(users, np.ones(len(users), bool), hist, hist, targets)
    mask = np.zeros(data.n_items, bool)
    mask[np.unique(after["item"].to_numpy())] = True
    mask[np.unique(train["item"].to_numpy())] = False
    return data.with_interactions(train), test, mask


def rescored(model, variant: str):
    """``model`` with fewshot's item-item term for the items untrained at its fit rescored."""
    base = model.score_batch
    known = model.counts_ >= 3
    unknown = np.flatnonzero(~known)
    idx, w = text_neighbours(model.emb_, unknown, known)
    ptr = np.arange(0, idx.size + 1, idx.shape[1])
    mix = sp.csr_matrix((w.ravel(), idx.ravel(), ptr), shape=(len(unknown), model.n_items)).T.toarray()

    def score(batch):
        s = base(batch).astype(np.float64)
        h = batch.implicit_history()
        t = np.asarray(h @ model.item_item_.base)
        beta = model.params_.beta
        s[:, unknown] -= beta * t[:, unknown]
        if variant == "unseen":
            unseen = h.toarray() == 0
            num, den = (t * unseen) @ mix, unseen.astype(np.float64) @ mix
            s[:, unknown] += beta * np.where(den > 1e-9, num / np.maximum(den, 1e-9), 0.0)
        return s.astype(np.float32)

    model.score_batch = score
    return model


def measure(scores: np.ndarray, test: EvalSet, new: np.ndarray) -> dict:
    """Recall@20 and the new items' share of the top 20, each in expectation over the order of
    tied scores, as fewrec's metrics count hits (`fewrec.eval.metrics.tied_hits`)."""
    top = M.top_k_matrix(scores, 20)
    tg = test.targets.tocsr()
    n_hist = np.diff(test.history.indptr)
    every_new = sp.csr_matrix(np.broadcast_to(new, scores.shape).astype(np.float32))
    new_targets = sp.csr_matrix(  # the targets that are new items (copies: dropping the others
        (new[tg.indices].astype(np.float32), tg.indices.copy(), tg.indptr.copy()), shape=tg.shape
    )  # works in place)
    new_targets.eliminate_zeros()
    hits = M.tied_hits(scores, top, tg).expected.sum(axis=1)
    shown_new = M.tied_hits(scores, top, every_new).expected.sum(axis=1)
    new_hits = M.tied_hits(scores, top, new_targets).expected.sum(axis=1)
    n_targets = np.diff(tg.indptr)
    recall = hits / n_targets
    share = shown_new / 20
    share_targets = np.diff(new_targets.indptr) / n_targets
    cols = {"recall@20": recall, "new_share@20": share, "new_share_of_targets": share_targets}
    cols["new_hits_per_user"] = new_hits
    out = {k: float(np.mean(v)) for k, v in cols.items()}
    for lo, hi in BUCKETS:
        b = (n_hist >= lo) & (n_hist < (hi or 10**9))
        name = f"history {lo}-{hi}" if hi else f"history {lo}+"
        out[name] = {k: float(np.mean(np.asarray(v)[b])) for k, v in cols.items()} | {"users": int(b.sum())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--models", nargs="+", default=["fewshot", "ease", "content", "ensemble"])
    ap.add_argument("--variant", nargs="*", default=["unseen", "none"], choices=["unseen", "none"])
    ap.add_argument(
        "--split",
        choices=["mixed", "temporal"],
        default="mixed",
        help="mixed: 20%% of the items new, targets drawn at random; temporal: the ratings after the "
        "--cut quantile of time, new items those first rated then (the seed is unused)",
    )
    ap.add_argument("--cut", type=float, default=0.7, help="temporal: the quantile of time it cuts at")
    ap.add_argument("--out", default=str(HERE / "new_items.json"))
    args = ap.parse_args()
    unknown = [m for m in args.models if m not in MODELS and m not in PRESETS]
    if unknown:  # before the data loads and any model fits
        ap.error(f"unknown model {', '.join(unknown)} (choose from {', '.join(sorted({*MODELS, *PRESETS}))})")
    data = load_movielens_100k()
    runs: dict = {}
    for seed in args.seeds if args.split == "mixed" else args.seeds[:1]:  # (temporal: one split)
        train, test, new = (
            mixed_split(data, seed) if args.split == "mixed" else temporal_split(data, args.cut)
        )
        runs[str(seed)] = {"users": len(test), "new_items": int(new.sum())}
        names = list(args.models) + [f"fewshot/{v}" for v in args.variant]
        fitted: dict = {}
        for name in names:
            t0 = time.perf_counter()
            base, preset = PRESETS.get(name.split("/")[0], (name.split("/")[0], {}))
            if name == "ensemble-text" and "ensemble" in fitted:  # a scoring setting: one fit serves both
                model = copy.copy(fitted["ensemble"])
                model.config = model.config.model_copy(update=preset)
            else:
                model = make_model(base, **preset).fit(train)
            fitted[name] = model
            if "/" in name:
                model = rescored(model, name.split("/")[1])
            runs[str(seed)][name] = measure(score_eval_set(model, test), test, new)
            took = time.perf_counter() - t0
            print(f"seed {seed} {name}: {runs[str(seed)][name]['recall@20']:.4f} ({took:.0f} s)", flush=True)
    if args.split == "temporal":  # one run a cut, whatever the seeds
        runs = {str(args.cut): runs[str(args.seeds[0])]}
    Path(args.out).write_text(json.dumps(runs, indent=1))
    key = "cut" if args.split == "temporal" else "seed"
    Path(args.out).with_suffix(".md").write_text(markdown(runs, key))


def markdown(runs: dict, key: str = "seed", title: str = "New items among known ones (ML-100K)") -> str:
    """The table of a run (or of runs merged: its JSON, read back); ``key`` heads the runs'
    column (``cut`` for the temporal split's)."""
    lines = [
        f"| {key} | model | recall@20 | new items' share of top 20 (of targets) | new hits / user | "
        + " | ".join(
            f"history {lo}-{hi} share (recall)" if hi else f"history {lo}+ share (recall)"
            for lo, hi in BUCKETS
        )
        + " |",
        "|---|---|---|---|---|" + "---|" * len(BUCKETS),
    ]
    for seed, run in runs.items():
        for name, r in run.items():
            if not isinstance(r, dict):
                continue
            cells = [
                f"{r['recall@20']:.4f}",
                f"{r['new_share@20']:.3f} ({r['new_share_of_targets']:.3f})",
                f"{r['new_hits_per_user']:.3f}",
            ]
            for lo, hi in BUCKETS:
                b = r[f"history {lo}-{hi}" if hi else f"history {lo}+"]
                cells.append(f"{b['new_share@20']:.3f} ({b['recall@20']:.4f})")
            lines.append(f"| {seed} | {name} | " + " | ".join(cells) + " |")
    return f"# {title}\n\n" + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
