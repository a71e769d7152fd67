"""Mean and spread of the small-LM tallrec rows over K-shot draws.

Reads the results of ``lm_tallrec.py`` run with ``--seed 0`` (benchmarks/lm_tallrec.json),
``--seed 1`` and ``--seed 2`` (lm_tallrec_seed1.json, lm_tallrec_seed2.json); each seed draws
other K training samples. Writes benchmarks/lm_tallrec_seeds.md.

Run: ``python benchmarks/lm_tallrec_seeds.py`` (``--inputs`` and ``--output`` to read and
write other files).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
FILES = ["lm_tallrec.json", "lm_tallrec_seed1.json", "lm_tallrec_seed2.json"]


def main(inputs: list[Path] | None = None, output: Path = HERE / "lm_tallrec_seeds.md") -> None:
    inputs = inputs or [HERE / f for f in FILES]
    runs = [json.loads(f.read_text()) for f in inputs if f.exists()]
    if not runs:
        raise SystemExit(f"none of {', '.join(map(str, inputs))} exists: run lm_tallrec.py first")
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
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--inputs",
        type=Path,
        nargs="+",
        default=[HERE / f for f in FILES],
        metavar="JSON",
        help="lm_tallrec.py results, one per seed; missing ones are skipped "
        f"(default: {', '.join(FILES)} in benchmarks/)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=HERE / "lm_tallrec_seeds.md",
        help="markdown table written (default: benchmarks/lm_tallrec_seeds.md)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    main(args.inputs, args.output)
