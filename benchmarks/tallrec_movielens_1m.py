"""TALLRec with a prior from MovieLens-1M: validation and test AUC, with CIs over users.

`fewrec benchmark --protocol tallrec` gives each model's test AUC, the mean of three K-shot
draws. This script adds what that table leaves out for the `like-clf@movielens-1m` claim: the
validation samples (1,000, from 14 users) beside the test samples (1,000, from 16 users), each
AUC's bootstrap 95% CI over those users, and like-clf fitted on MovieLens-1M's users alone
(K = 0) against the same with the K = 64 samples of draw 0 pooled in, the strict K-shot fit
and the like-share rule. MovieLens-1M's users joined in 2000, after ML-100K ends: none is an
ML-100K user.

Usage::

    python benchmarks/tallrec_movielens_1m.py   # writes benchmarks/tallrec_movielens_1m.{json,md}

``--shots`` and ``--draw`` pick another K and K-shot draw, ``--output`` another file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fewrec.data import load_dataset
from fewrec.data.splits import tallrec_split
from fewrec.data.transfer import pool_users
from fewrec.eval.benchmark import _movielens_1m_likes
from fewrec.eval.evaluate import evaluate_tallrec
from fewrec.models.base import make_model

OUT = Path(__file__).with_name("tallrec_movielens_1m")


def main(shots: int = 64, draw: int = 0, out: Path = OUT) -> None:
    """The table for K = ``shots`` samples of K-shot draw ``draw``; ``out``: the path without suffix."""
    data = load_dataset()
    split = tallrec_split(data)
    likes = _movielens_1m_likes(data)
    kshot = split.train_dataset(split.shots(shots, draw))
    fits = {
        f"like-share (K = {shots})": ("like-share", kshot),
        f"like-clf, strict K = {shots}": ("like-clf", kshot),
        "like-clf, ML-100K's other users (@catalogue)": ("like-clf", split.catalogue_dataset()),
        "like-clf, ML-1M users only (K = 0)": ("like-clf", likes),
        f"like-clf, ML-1M users + K = {shots} (@movielens-1m)": (
            "like-clf",
            pool_users(kshot, likes, prefix="movielens-1m:"),
        ),
    }
    rows = []
    for label, (name, train) in fits.items():
        model = make_model(name).fit(train)
        row = {"model": label}
        for part, samples in (("valid", split.valid), ("test", split.test)):
            rep = evaluate_tallrec(model, samples)
            row[f"{part}_auc"] = rep.values["auc"]
            row[f"{part}_ci"] = list(rep.ci["auc"])
        rows.append(row)
        print(row, flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    lines = [
        "# TALLRec (ML-100K) with a prior from MovieLens-1M's users",
        "",
        f"K-shot draw {draw}; AUC with its bootstrap 95% CI over users (validation: 14 users, test: 16).",
        "",
        "| model | valid AUC [95% CI] | test AUC [95% CI] |",
        "|---|---|---|",
    ]
    for r in rows:
        v, t = r["valid_ci"], r["test_ci"]
        lines.append(
            f"| {r['model']} | {r['valid_auc']:.4f} [{v[0]:.3f}, {v[1]:.3f}] | "
            f"{r['test_auc']:.4f} [{t[0]:.3f}, {t[1]:.3f}] |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shots", type=int, default=64, help="K: labelled samples of the K-shot fits (default 64)"
    )
    parser.add_argument("--draw", type=int, default=0, help="which K-shot draw (its seed; default 0)")
    parser.add_argument(
        "--output",
        type=Path,
        default=OUT.with_suffix(".json"),
        help="JSON written, its .md beside it (default: benchmarks/tallrec_movielens_1m.json)",
    )
    args = parser.parse_args(argv)
    if args.shots < 1 or args.draw < 0:
        parser.error("--shots must be >= 1 and --draw >= 0")
    return args


if __name__ == "__main__":
    args = parse_args()
    main(args.shots, args.draw, args.output.with_suffix(""))
