"""Cheaper re-rankers against the former default, paired on the same ensemble fits (cold-user, K = 5).

Each split seed's default `ensemble` is fitted once; its re-rankers are then refitted from the
same tuning episodes with each variant's settings, and the test users are scored with each set.
"default" is the setting these runs compared against, the blend's top 200 (the default until
2026-12-06, when the top 100, variant "depth100", became it).
Results in `rerank-variants-earliest-seeds.json` (2026-12-06, 2-core AMD EPYC; summary in
`fewrec.models.rerank`'s module doc).

    .venv/bin/python benchmarks/rerank_variants.py 0 10 benchmarks/rerank-variants-earliest-seeds.json
    .venv/bin/python benchmarks/rerank_variants.py 0 10 OUT.json random   # the random reveal

Split seeds FIRST to LAST - 1 (LAST excluded); without arguments: seeds 0-9, the earliest
reveal, written to benchmarks/rerank-variants-{reveal}-seeds.json (the file is rewritten after
every seed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fewrec.data.movielens import load_dataset
from fewrec.data.splits import cold_user_split
from fewrec.eval.evaluate import evaluate_ranking
from fewrec.models import ensemble, make_model, rerank

HERE = Path(__file__).parent
FIT_RERANKERS = ensemble.EnsembleRecommender._fit_reranker
INIT = rerank.Reranker.__init__
BASE = dict(rerank.PARAMS)
DEPTH = 200  # the "default" re-rankers' candidates
#: name: (LightGBM settings over the defaults, boosting rounds, candidates re-ordered)
VARIANTS = {"trees150_lr0.1": ({"learning_rate": 0.1}, 150, None), "depth100": ({}, None, 100)}


def fit_variants(self, data, weights, per_shot, tables) -> None:
    t = time.perf_counter()
    FIT_RERANKERS(self, data, weights, per_shot, tables)
    self.sets_ = {"default": (self.rerankers_, time.perf_counter() - t)}
    cfg = self.config
    for name, (params, trees, depth) in VARIANTS.items():
        rerank.PARAMS = {**BASE, **params}
        if trees:
            rerank.Reranker.__init__ = lambda s, d, _tr, sd, _t=trees: INIT(s, d, _t, sd)
        if depth:  # (the config is frozen; put back below)
            object.__setattr__(cfg, "rerank_depth", depth)
        t = time.perf_counter()
        self.rerankers_ = {}
        try:
            FIT_RERANKERS(self, data, weights, per_shot, tables)
        finally:
            rerank.PARAMS, rerank.Reranker.__init__ = dict(BASE), INIT
            object.__setattr__(cfg, "rerank_depth", DEPTH)
        self.sets_[name] = (self.rerankers_, time.perf_counter() - t)
    self.rerankers_ = self.sets_["default"][0]


def main(first: int, last: int, path: str | Path, reveal: str = "earliest") -> None:
    ensemble.EnsembleRecommender._fit_reranker = fit_variants
    data = load_dataset()
    out = {}
    for seed in range(first, last):
        split = cold_user_split(data, shots=5, seed=seed, random_shots=reveal == "random")
        model = make_model("ensemble", reveal=reveal, rerank_depth=DEPTH)
        t = time.perf_counter()
        model.fit(split.train)
        row: dict = {"fit_seconds": time.perf_counter() - t}
        for name, (rerankers, secs) in model.sets_.items():
            model.rerankers_ = rerankers  # each re-ranker keeps its own depth
            rep = evaluate_ranking(model, split.test, split.train, seed=seed)
            row[name] = {"ndcg@10": rep.as_dict(with_ci=False)["ndcg@10"], "rerank_seconds": secs}
        out[seed] = row
        print(seed, json.dumps(row), flush=True)
        with open(path, "w") as fh:
            json.dump(out, fh, indent=1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Positional, as before: FIRST LAST OUTPUT REVEAL (each optional, in that order).",
    )
    parser.add_argument("first", type=int, nargs="?", default=0, help="first split seed (default 0)")
    parser.add_argument(
        "last", type=int, nargs="?", default=10, help="seed to stop before, excluded (default 10: seeds 0-9)"
    )
    parser.add_argument(
        "output",
        type=Path,
        nargs="?",
        default=None,
        help="JSON written after every seed (default: benchmarks/rerank-variants-{reveal}-seeds.json)",
    )
    parser.add_argument(
        "reveal",
        nargs="?",
        default="earliest",
        choices=("earliest", "random"),
        metavar="reveal",
        help="earliest or random (default: earliest)",
    )
    args = parser.parse_args(argv)
    if args.last <= args.first:
        parser.error(f"LAST ({args.last}) must be above FIRST ({args.first}): seeds FIRST to LAST - 1 run")
    if args.output is None:
        args.output = HERE / f"rerank-variants-{args.reveal}-seeds.json"
    return args


if __name__ == "__main__":
    args = parse_args()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    main(args.first, args.last, args.output, args.reveal)
