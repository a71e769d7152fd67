"""How far can item knowledge lift the TALLRec like-share rule, in a linear mix? Not models.

The strict K-shot TALLRec task (K = 64 samples of 10 labelled history items + a target) gives
a model about 700 labels over 1,682 films. Beyond the like-share rule (AUC ~0.73), the answer
depends on how well-liked the target film is. This script measures what that knowledge is worth
when it is *given*, i.e. estimated from the whole user-disjoint catalogue of other users'
ratings (`TallrecSplit.catalogue_dataset`), which no K-shot model sees:

* ``share + catalogue like-rate``: the rule plus each film's (smoothed) like-rate among the
  catalogue users: what knowing every film's reception is worth;
* ``share + metadata rate``: the rule plus that like-rate as predicted, out of fold over films,
  from what a K-shot model *could* know about a film: its genres and release year (and,
  optionally, its MiniLM text embedding), fitted on all the catalogue's films. A K-shot model
  must learn the same mapping from ~700 labels.

Each mix is z(share) + w * z(item score), w chosen from a grid on the 1,000 validation samples
and reported on the 1,000 test samples. A fixed linear mix is no upper bound: like-clf fitted on
the same catalogue users (`like-clf@catalogue`, `tallrec.md`) reaches 0.782 on test, above the
like-rate mix's 0.771 (until 2026-12-07 these rows were called upper bounds and "oracle").

Usage::

    python benchmarks/tallrec_ceiling.py      # writes benchmarks/tallrec_ceiling.{json,md}
    python benchmarks/tallrec_ceiling.py --output OUT.json --weights 0,0.5,1   # elsewhere, other grid
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.metrics import roc_auc_score

from fewrec.data import load_dataset
from fewrec.data.splits import TallrecSamples, tallrec_split
from fewrec.models.content import TextModelConfig, embed_items

OUT = Path(__file__).with_name("tallrec_ceiling")
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0)


def mix_auc(samples: TallrecSamples, item_score: np.ndarray, w: float) -> float:
    share = samples.history_labels.mean(axis=1)
    q = item_score[samples.items]
    z = (share - share.mean()) / share.std() + w * (q - q.mean()) / (q.std() + 1e-12)
    return float(roc_auc_score(samples.labels, z))


def main(weights: tuple[float, ...] = WEIGHTS, out: Path = OUT) -> None:
    """The table; ``weights``: the grid w is chosen from; ``out``: the path without suffix."""
    data = load_dataset()
    split = tallrec_split(data)
    cat = split.catalogue_dataset()
    n = data.n_items
    items = cat.interactions["item"].to_numpy()
    liked = (cat.interactions["rating"].to_numpy() > 3).astype(float)
    count = np.bincount(items, minlength=n).astype(float)
    rate = (np.bincount(items, weights=liked, minlength=n) + 5 * liked.mean()) / (count + 5)

    year = pd.to_numeric(data.item_info["year"], errors="coerce").fillna(1995).to_numpy()
    genres = sorted({g for gs in data.item_genres() for g in gs})
    onehot = np.array([[g in gs for g in genres] for gs in data.item_genres()], float)
    eras = np.stack(
        [(year < y).astype(float) for y in (1940, 1950, 1960, 1970, 1980, 1990, 1993, 1995, 1997)], 1
    )
    meta = np.c_[onehot, eras]
    emb = embed_items(data, TextModelConfig())
    seen = np.flatnonzero(count > 0)
    fold = np.random.default_rng(0).integers(0, 5, n)

    def out_of_fold(x: np.ndarray, alpha: float) -> np.ndarray:
        pred = np.zeros(n)
        for f in range(5):
            fit_on = seen[fold[seen] != f]
            model = Ridge(alpha=alpha).fit(x[fit_on], rate[fit_on], sample_weight=count[fit_on])
            pred[fold == f] = model.predict(x[fold == f])
        return pred

    candidates = {
        "like-share rule alone": np.zeros(n),
        "share + catalogue like-rate": rate,
        "share + metadata rate (genres, year)": out_of_fold(meta, 10.0),
        "share + metadata + text rate": out_of_fold(np.c_[meta, emb], 100.0),
    }
    rows = []
    for name, score in candidates.items():
        valid = [mix_auc(split.valid, score, w) for w in weights]
        w = weights[int(np.argmax(valid))]
        ok = count > 20
        rho = pd.Series(score[ok]).corr(pd.Series(rate[ok]), method="spearman") if score.any() else 0.0
        rows.append(
            {
                "mix": name,
                "weight": w,
                "valid_auc": max(valid),
                "test_auc": mix_auc(split.test, score, w),
                "spearman_with_like_rate": float(rho),
            }
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    lines = [
        "# TALLRec: what item knowledge is worth on top of the like-share rule (ML-100K)",
        "",
        "Item scores estimated from the user-disjoint catalogue (more than any K-shot model sees).",
        "",
        "| mix | w (valid) | valid AUC | test AUC | Spearman with like-rate (films with > 20 ratings) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mix']} | {r['weight']} | {r['valid_auc']:.4f} | {r['test_auc']:.4f} | "
            f"{r['spearman_with_like_rate']:.3f} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def weight_grid(text: str) -> tuple[float, ...]:
    try:
        grid = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated numbers: {text!r}") from None
    if any(w < 0 for w in grid):
        raise argparse.ArgumentTypeError(f"weights must be >= 0: {text!r}")
    return grid


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights",
        type=weight_grid,
        default=WEIGHTS,
        help="grid of item-score weights w, chosen on validation (default: "
        + ",".join(f"{w:g}" for w in WEIGHTS)
        + ")",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUT.with_suffix(".json"),
        help="JSON written, its .md beside it (default: benchmarks/tallrec_ceiling.json)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(args.weights, args.output.with_suffix(""))
