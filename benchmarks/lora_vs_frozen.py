"""Frozen vs LoRA-tuned text encoder behind the content recommender, on cold-item and cold-user.

Both models score the same way (cosine between a rating-weighted history profile and item
embeddings, plus a small popularity prior); `content-lora` first fits LoRA adapters of the
packaged MiniLM on the training interactions within its time budget (`fewrec.adapt.lora`).
Popularity is shown for reference. Same seeded splits and evaluation as `fewrec benchmark`:

* cold-item: 20% of items held out of training (text only); full ranking over all items, and
  ranking among the cold items only (``cold_only/``);
* cold-user: 20% of users held out; each reveals 5 random interactions (``K5/``).

Usage::

    nice -n 10 python benchmarks/lora_vs_frozen.py [--seed 0] [--max-seconds 120]

Writes benchmarks/lora_vs_frozen.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from fewrec.data.movielens import load_movielens_100k
from fewrec.data.splits import cold_item_split, cold_user_split
from fewrec.eval.evaluate import evaluate_ranking
from fewrec.models.base import Recommender, make_model
from fewrec.models.lora_content import LoraContentRecommender  # noqa: F401  (registers content-lora)

HERE = Path(__file__).parent
MODELS = ("popularity", "content", "content-lora")
COLUMNS = [
    ("cold-item/recall@20", "cold-item R@20"),
    ("cold-item/ndcg@10", "cold-item N@10"),
    ("cold-item/cold_only/recall@20", "cold-only R@20"),
    ("cold-item/cold_only/ndcg@10", "cold-only N@10"),
    ("cold-user/K5/ndcg@10", "cold-user K5 N@10"),
    ("cold-user/K5/recall@20", "cold-user K5 R@20"),
    ("cold-item/train_seconds", "train s (cold-item)"),
    ("cold-user/train_seconds", "train s (cold-user)"),
]


def _fit(name: str, config: dict[str, Any], train) -> tuple[Recommender, float]:
    model = make_model(name, **config)
    t0 = time.perf_counter()
    model.fit(train)
    return model, time.perf_counter() - t0


def run(seed: int, lora_config: dict[str, Any]) -> dict[str, Any]:
    """Fit and evaluate every model on both protocols; the JSON-ready result."""
    data = load_movielens_100k()
    load_before = os.getloadavg()[0]
    rows: dict[str, dict[str, float]] = {m: {} for m in MODELS}
    fits: dict[str, dict[str, Any]] = {}

    cold_item = cold_item_split(data, seed)
    for name in MODELS:
        model, secs = _fit(name, lora_config if name == "content-lora" else {}, cold_item.train)
        full = evaluate_ranking(model, cold_item.test, cold_item.train, seed=seed)
        only = evaluate_ranking(
            model, cold_item.test, cold_item.train, seed=seed, only_items=cold_item.cold_items
        )
        rows[name].update({f"cold-item/{k}": v for k, v in full.as_dict().items()})
        rows[name].update({f"cold-item/cold_only/{k}": v for k, v in only.as_dict().items()})
        rows[name]["cold-item/train_seconds"] = secs
        if name == "content-lora":
            fits["cold-item"] = model.fit_summary_
        print(f"cold-item {name}: {secs:.1f}s R@20(cold only) {only.values['recall@20']:.4f}", flush=True)

    cold_user = cold_user_split(data, shots=5, seed=seed, random_shots=True)
    for name in MODELS:
        model, secs = _fit(name, lora_config if name == "content-lora" else {}, cold_user.train)
        rep = evaluate_ranking(model, cold_user.test, cold_user.train, seed=seed)
        rows[name].update({f"cold-user/K5/{k}": v for k, v in rep.as_dict().items()})
        rows[name]["cold-user/train_seconds"] = secs
        if name == "content-lora":
            fits["cold-user"] = model.fit_summary_
        print(f"cold-user {name}: {secs:.1f}s N@10 {rep.values['ndcg@10']:.4f}", flush=True)

    for row in rows.values():
        row["train_seconds"] = row["cold-item/train_seconds"] + row["cold-user/train_seconds"]
    lora = make_model("content-lora", **lora_config)
    return {
        "protocol": "cold-item+cold-user",
        "dataset": data.name,
        "seed": seed,
        "settings": {
            "cold_item": {
                "n_cold_items": int(len(cold_item.cold_items)),
                "n_test_users": len(cold_item.test),
            },
            "cold_user": {"shots": 5, "reveal": "random", "n_test_users": len(cold_user.test)},
            "content-lora": lora.config.model_dump(mode="json"),
            "lora_fit": fits,
        },
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2),
        },
        "models": rows,
    }


def _cell(row: dict[str, float], key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if key.endswith("seconds"):
        return f"{value:.1f}"
    lo, hi = row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")
    return f"{value:.4f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")


def _num(value: float | None, spec: str) -> str:
    """``value`` formatted, or "n/a" where the fit recorded none."""
    return "n/a" if value is None else format(value, spec)


def _fit_line(protocol: str, fit: dict[str, Any]) -> str:
    """One LoRA fit's summary (`fewrec.adapt.lora.LoraResult.summary`) as a list item."""
    head = f"- {protocol}: "
    if not fit.get("steps"):  # the budget ran out first: no loss, no adapter, the frozen encoder kept
        return (
            f"{head}no training step ran ({fit.get('stop_reason')}, {fit['seconds']:.0f}s; raise "
            "--max-seconds): content-lora scored with the frozen encoder"
        )
    frozen, best = fit.get("valid_frozen") or {}, fit.get("valid_best") or {}
    return (
        f"{head}{fit['steps']} steps ({fit['stop_reason']}), best step {fit['best_step']}, "
        f"{fit['seconds']:.0f}s, {fit['trainable_params']:,} trainable parameters; loss "
        f"{_num(fit['first_loss'], '.3f')} -> {_num(fit['last_loss'], '.3f')}; valid recall "
        f"{_num(frozen.get('recall'), '.4f')} -> {_num(best.get('recall'), '.4f')}, held-out items "
        f"{_num(frozen.get('cold_recall'), '.4f')} -> {_num(best.get('cold_recall'), '.4f')}"
    )


def markdown(result: dict[str, Any]) -> str:
    """The result as a markdown table with 95% bootstrap CIs over test users."""
    lines = [
        f"# Frozen vs LoRA-tuned encoder, {result['dataset']} (seed {result['seed']})",
        "",
        "`content` (frozen all-MiniLM-L6-v2) vs `content-lora` (LoRA adapters fitted on the training",
        "interactions within the time budget; same scoring). Popularity for reference. Full ranking;",
        "`cold-only`: the cold items ranked among themselves. 95% bootstrap CIs over test users.",
        "",
        "| model | " + " | ".join(label for _, label in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for name, row in result["models"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(row, key) for key, _ in COLUMNS) + " |")
    fits = result["settings"]["lora_fit"]
    lines += ["", "LoRA fits (held-out validation inside the training data: recall@20):", ""]
    for protocol, fit in fits.items():
        lines.append(_fit_line(protocol, fit))
    m = result["machine"]
    lines += [
        "",
        f"Machine: {m['cpus']} CPUs shared with other jobs (1-minute load average "
        f"{m['load_average_before']} before, {m['load_average_after']} after); a busier machine "
        "gives LoRA fewer steps in the same budget.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=None, help="LoRA time budget per fit")
    parser.add_argument("--out", type=Path, default=HERE / "lora_vs_frozen.json")
    args = parser.parse_args()
    config: dict[str, Any] = {"seed": args.seed}
    if args.max_seconds is not None:
        config["max_seconds"] = args.max_seconds
    result = run(args.seed, config)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
