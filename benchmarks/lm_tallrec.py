"""TALLRec K-shot benchmark of the small-LM rows (issue 4), on CPU.

Rows: like-share (trivial rule), like-clf (fast model), lm-icl (in-context, no update), lm-lora
(LoRA-tuned), lm-rerank (like-clf's top-N re-scored by the LoRA LM), distilled (linear student of
the LoRA LM; serves without an LM). One K-shot draw per K: ``--seed`` picks which K samples
are drawn (and the bootstrap); the models keep their own default seed (LoRA initialisation 0).

By default every row is scored on all 1,000 test samples and LoRA trains on every episode the
K samples give (``--n-test`` and ``--lora-episodes`` cut both down for a quick look; a cut
subset is seeded and the same for every row). The JSON has the shape of
`fewrec.eval.benchmark.run_benchmark` plus ``speed`` and ``published``. About 50 minutes on
2 cores (LoRA at K=256: ~11 minutes)::

    nice -n 10 .venv/bin/python benchmarks/lm_tallrec.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import fewrec.models  # noqa: F401  (registers the built-in models)
import fewrec.models.lm as lmm
from fewrec.data.movielens import load_dataset
from fewrec.data.splits import tallrec_split
from fewrec.eval import metrics as M
from fewrec.eval.benchmark import machine_info
from fewrec.lm.model import load_lm
from fewrec.models.base import make_model

HERE = Path(__file__).parent
PUBLISHED = {"K16/auc": 0.6724, "K64/auc": 0.6748, "K256/auc": 0.7198}
ROWS = ["like-share", "like-clf", "lm-icl", "lm-lora", "lm-rerank", "distilled"]


def auc_ci(labels: np.ndarray, scores: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """AUC and a 95% bootstrap interval over samples."""
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(500):
        idx = rng.integers(0, len(labels), len(labels))
        if 0 < labels[idx].sum() < len(idx):
            boots.append(M.auc(labels[idx], scores[idx]))
    return M.auc(labels, scores), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def timed_scores(model: Any, samples: Any) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    s = lmm.tallrec_pair_scores(model, samples)
    return np.nan_to_num(s, nan=-1e9, neginf=-1e9, posinf=1e9), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-test", type=int, default=1000, help="test samples scored (all: 1000)")
    ap.add_argument("--shots", type=int, nargs="+", default=[16, 64, 256])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--lora-episodes", type=int, default=100_000, help="cap on LoRA training episodes (default: all)"
    )
    ap.add_argument("--distil-episodes", type=int, default=128)
    ap.add_argument("--top-n", type=int, default=50)
    ap.add_argument("--lm", default="smollm2-135m", help="packaged LM (fewrec.lm.model.LM_SPECS)")
    ap.add_argument(
        "--output",
        type=Path,
        default=HERE / "lm_tallrec.json",
        help="JSON written, its .md beside it (default: benchmarks/lm_tallrec.json, next to this script)",
    )
    args = ap.parse_args()

    data = load_dataset("movielens-100k")
    split = tallrec_split(data)
    rng = np.random.default_rng(args.seed)
    sub_idx = np.sort(rng.choice(len(split.test), size=min(args.n_test, len(split.test)), replace=False))
    sub = split.test.take(sub_idx)
    lm = load_lm(args.lm)
    models: dict[str, dict[str, float]] = {r: {} for r in ROWS}
    lora_logs: dict[str, Any] = {}
    speed: dict[str, Any] = {}
    settings = {
        "shots": args.shots,
        "seeds": [args.seed],
        "n_test": len(sub),
        "test_subset": f"all {len(sub):,} test samples"
        if len(sub) == len(split.test)
        else f"{len(sub)} of {len(split.test)} test samples, seeded rng({args.seed}).choice, "
        "the same for every row; fast rows also on all 1,000 (K*/auc_full)",
        "lm": lm.name,
        "lora": lmm.LMLoraConfig(lm=args.lm, max_episodes=args.lora_episodes).model_dump(mode="json"),
        "distil_episodes": args.distil_episodes,
        "rerank": {"retriever": "like-clf", "top_n": args.top_n, "scorer": "lm-lora"},
    }
    out_path = args.output
    out_path.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        result = {
            "protocol": "tallrec",
            "dataset": data.name,
            "seed": args.seed,
            "settings": {**settings, "lora_training": lora_logs},
            "machine": machine_info(),
            "models": models,
            "speed": speed,
            "published": {"TALLRec (LLaMA-7B + LoRA)": PUBLISHED},
        }
        out_path.write_text(json.dumps(result, indent=2))
        out_path.with_suffix(".md").write_text(markdown(result))

    for k in args.shots:
        train = split.train_dataset(split.shots(k, args.seed))
        fitted: dict[str, Any] = {}
        for name in ("like-share", "like-clf", "lm-icl", "lm-lora"):
            cfg = {"max_episodes": args.lora_episodes, "progress": True} if name == "lm-lora" else {}
            if name.startswith("lm-"):
                cfg["lm"] = args.lm
            t0 = time.perf_counter()
            fitted[name] = make_model(name, **cfg).fit(train)
            models[name][f"K{k}/train_seconds"] = time.perf_counter() - t0
        lora = fitted["lm-lora"]
        lora_logs[f"K{k}"] = {
            "history": lora.lora_history_,
            "best_epoch": lora.lora_best_epoch_,
            "train_episodes": lora.n_train_episodes_,
            "valid_episodes": lora.n_valid_episodes_,
        }
        fitted["lm-rerank"] = lmm.LMRerank.from_parts(fitted["like-clf"], lora, top_n=args.top_n)
        t0 = time.perf_counter()
        fitted["distilled"] = lmm.DistilledLM.with_teacher(lora, max_episodes=args.distil_episodes).fit(train)
        models["distilled"][f"K{k}/train_seconds"] = time.perf_counter() - t0
        models["distilled"][f"K{k}/fit_r2"] = fitted["distilled"].fit_r2_
        models["distilled"][f"K{k}/loo_r2"] = fitted["distilled"].loo_r2_  # (runs from 2026-12-06 on)
        for name in ROWS:
            scores, secs = timed_scores(fitted[name], sub)
            auc, lo, hi = auc_ci(sub.labels, scores, args.seed)
            row = models[name]
            row.update({f"K{k}/auc": auc, f"K{k}/auc_ci_low": lo, f"K{k}/auc_ci_high": hi})
            row[f"K{k}/score_seconds"] = secs
            if name == "lm-rerank":
                row[f"K{k}/lm_share"] = fitted[name].last_hit_rate_
            if name in ("like-share", "like-clf", "distilled"):
                full, _ = timed_scores(fitted[name], split.test)
                row[f"K{k}/auc_full"] = M.auc(split.test.labels, full)
            print(f"K={k} {name}: AUC {auc:.4f} [{lo:.3f}, {hi:.3f}] ({secs:.1f} s)", flush=True)
        fast, lm_auc, stu = (models[n][f"K{k}/auc"] for n in ("like-clf", "lm-lora", "distilled"))
        gain = lm_auc - fast
        models["distilled"][f"K{k}/gain_kept"] = (stu - fast) / gain if gain > 0 else float("nan")
        # speed: LM prompts/s (uncached full forward with the adapter) vs the student
        probe = lora.prompts(
            [np.asarray(h) for h in sub.history[:32]], list(sub.history_labels[:32]), sub.items[:32]
        )
        pps = lm.throughput(probe, adapter=lora.adapter_)
        _, stu_secs = timed_scores(fitted["distilled"], sub)
        _, clf_secs = timed_scores(fitted["like-clf"], sub)
        speed[f"K{k}"] = {
            "lm_prompts_per_second": pps,
            "lm_tokens_per_prompt": float(np.mean([lm.n_tokens(p) for p in probe])),
            "student_pairs_per_second": len(sub) / stu_secs,
            "like_clf_pairs_per_second": len(sub) / clf_secs,
            "student_speedup_vs_lm": (len(sub) / stu_secs) / pps,
        }
        print(f"K={k} speed: {speed[f'K{k}']}", flush=True)
        write()
    write()


def markdown(result: dict[str, Any]) -> str:
    ks = result["settings"]["shots"]
    head = "| model | " + " | ".join(f"K={k} AUC" for k in ks) + " |"
    lines = [
        f"# tallrec (LM rows) on {result['dataset']}, seed {result['seed']}",
        "",
        f"AUC on {result['settings']['test_subset']}. 95% bootstrap interval in brackets.",
        "",
        head,
        "|---|" + "---|" * len(ks),
    ]
    for name, row in result["models"].items():
        cells = []
        for k in ks:
            v = row.get(f"K{k}/auc")
            cells.append(
                ""
                if v is None
                else f"{v:.4f} [{row[f'K{k}/auc_ci_low']:.3f}, {row[f'K{k}/auc_ci_high']:.3f}]"
            )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, row in result["published"].items():
        lines.append(
            f"| {name}, published, all 1,000 | " + " | ".join(f"{row[f'K{k}/auc']:.4f}" for k in ks) + " |"
        )
    lines += [
        "",
        "Fast rows on all 1,000 test samples:",
        "",
        "| model | " + " | ".join(f"K={k}" for k in ks) + " |",
    ]
    lines.append("|---|" + "---|" * len(ks))
    for name, row in result["models"].items():
        if any(f"K{k}/auc_full" in row for k in ks):
            lines.append(
                f"| {name} | "
                + " | ".join(f"{row.get(f'K{k}/auc_full', float('nan')):.4f}" for k in ks)
                + " |"
            )
    lines += [
        "",
        "| K | LM prompts/s | tokens/prompt | student pairs/s | speed-up | gain kept | re-ranked share |",
    ]
    lines.append("|---|---|---|---|---|---|---|")
    for k in ks:
        s = result["speed"].get(f"K{k}")
        if not s:
            continue
        kept = result["models"]["distilled"].get(f"K{k}/gain_kept", float("nan"))
        share = result["models"]["lm-rerank"].get(f"K{k}/lm_share", float("nan"))
        lines.append(
            f"| {k} | {s['lm_prompts_per_second']:.2f} | {s['lm_tokens_per_prompt']:.0f} | "
            f"{s['student_pairs_per_second']:.0f} | {s['student_speedup_vs_lm']:.0f}x | "
            f"{'n/a (LM not above like-clf)' if np.isnan(kept) else f'{kept:.0%}'} | {share:.1%} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
