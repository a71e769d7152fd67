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
"""

from __future__ import annotations

import json
from pathlib import Path

from fewrec.data import load_dataset
from fewrec.data.splits import tallrec_split
from fewrec.data.transfer import pool_users
from fewrec.eval.benchmark import _movielens_1m_likes
from fewrec.eval.evaluate import evaluate_tallrec
from fewrec.models.base import make_model

OUT = Path(__file__).with_name("tallrec_movielens_1m")


def main() -> None:
    data = load_dataset()
    split = tallrec_split(data)
    likes = _movielens_1m_likes(data)
    k64 = split.train_dataset(split.shots(64, 0))
    fits = {
        "like-share (K = 64)": ("like-share", k64),
        "like-clf, strict K = 64": ("like-clf", k64),
        "like-clf, ML-100K's other users (@catalogue)": ("like-clf", split.catalogue_dataset()),
        "like-clf, ML-1M users only (K = 0)": ("like-clf", likes),
        "like-clf, ML-1M users + K = 64 (@movielens-1m)": (
            "like-clf",
            pool_users(k64, likes, prefix="movielens-1m:"),
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
    OUT.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    lines = [
        "# TALLRec (ML-100K) with a prior from MovieLens-1M's users",
        "",
        "K-shot draw 0; AUC with its bootstrap 95% CI over users (validation: 14 users, test: 16).",
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
    OUT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
