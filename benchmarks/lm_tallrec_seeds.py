"""Mean and spread of the small-LM tallrec rows over K-shot draws.

Reads the results of ``lm_tallrec.py`` run with ``--seed 0`` (benchmarks/lm_tallrec.json),
``--seed 1`` and ``--seed 2`` (lm_tallrec_seed1.json, lm_tallrec_seed2.json); each seed draws
other K training samples. Writes benchmarks/lm_tallrec_seeds.md.

Run: ``python benchmarks/lm_tallrec_seeds.py``
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
FILES = ["lm_tallrec.json", "lm_tallrec_seed1.json", "lm_tallrec_seed2.json"]


def main() -> None:
    runs = [json.loads((HERE / f).read_text()) for f in FILES if (HERE / f).exists()]
    if not runs:
        raise SystemExit(f"none of {FILES} in {HERE}: run lm_tallrec.py first")
    shots = runs[0]["settings"]["shots"]
    seeds = [r["seed"] for r in runs]
    lines = [
        f"# tallrec (LM rows) on movielens-100k: AUC over K-shot draws (seeds {seeds})",
        "",
        "All 1,000 test samples per run. Mean ± standard deviation over the seeds; each seed's "
        "value in brackets.",
        "",
        "| model | " + " | ".join(f"K={k}" for k in shots) + " |",
        "|---|" + "---|" * len(shots),
    ]
    for name in runs[0]["models"]:
        cells = []
        for k in shots:
            vals = [r["models"][name][f"K{k}/auc"] for r in runs]
            each = ", ".join(f"{v:.3f}" for v in vals)
            cells.append(f"{np.mean(vals):.3f} ± {np.std(vals):.3f} ({each})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    published = next(iter(runs[0]["published"].values()))
    lines.append(
        "| TALLRec (LLaMA-7B + LoRA), published | "
        + " | ".join(f"{published[f'K{k}/auc']:.4f}" for k in shots)
        + " |"
    )
    (HERE / "lm_tallrec_seeds.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
