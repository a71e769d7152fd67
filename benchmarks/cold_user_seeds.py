"""Cold-user (random reveal) NDCG@10 over several split seeds: how much one split's 189 test
users move the gain over popularity.

Each seed draws other test users, other revealed items and other tuning users; every model of a
seed sees the same split. Reports K = 0, 1, 5, 20 per seed, the mean over seeds and the K = 5 gain
over popularity.

Run: ``python benchmarks/cold_user_seeds.py`` -> benchmarks/cold-user-seeds.json and .md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fewrec.eval.benchmark import run_benchmark

HERE = Path(__file__).parent
MODELS = [
    "popularity",
    "popularity-segment",
    "itemknn",
    "rp3beta",
    "ease",
    "dlae",
    "fewshot",
    "fewshot-ranked",
    "ensemble",
]
SHOTS = [0, 1, 5, 20]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    runs = {
        s: run_benchmark("cold-user", models, seed=s, shots=SHOTS, reveal="random", progress=True)["models"]
        for s in seeds
    }
    ndcg = {m: {s: {k: runs[s][m][f"K{k}/ndcg@10"] for k in SHOTS} for s in seeds} for m in models}
    gain = {m: {s: ndcg[m][s][5] / ndcg["popularity"][s][5] - 1 for s in seeds} for m in models}
    out = {"protocol": "cold-user", "reveal": "random", "seeds": seeds, "ndcg@10": ndcg, "k5_gain": gain}
    (HERE / "cold-user-seeds.json").write_text(json.dumps(out, indent=2))
    head = "| model | " + " | ".join(f"seed {s} K0 / K1 / K5 / K20" for s in seeds)
    lines = [
        "# cold-user (random reveal) on movielens-100k: NDCG@10 over split seeds",
        "",
        head + " | mean K5 | K5 gain over popularity (per seed; mean) |",
        "|---|" + "---|" * (len(seeds) + 2),
    ]
    for m in models:
        cells = [" / ".join(f"{ndcg[m][s][k]:.4f}" for k in SHOTS) for s in seeds]
        per = ", ".join(f"{gain[m][s]:+.1%}" for s in seeds)
        mean5 = np.mean([ndcg[m][s][5] for s in seeds])
        mean_gain = np.mean(list(gain[m].values()))
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {mean5:.4f} | {per}; **{mean_gain:+.1%}** |")
    (HERE / "cold-user-seeds.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
