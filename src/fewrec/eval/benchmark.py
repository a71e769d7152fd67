"""The benchmark runner: every chosen model trained and evaluated on the SAME seeded split.

Results are a JSON document::

    {"protocol": P, "dataset": ..., "seed": ..., "models": {NAME: {METRIC: value, ...,
     "train_seconds": s, "score_seconds": s}}}

and a markdown table. Protocols with several K (cold-user shots, tallrec K-shot) prefix the
metric with the K: ``"K5/ndcg@10"``.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from fewrec.data.dataset import Dataset
from fewrec.data.movielens import load_dataset
from fewrec.data.splits import (
    COLD_USER_SHOTS,
    PROTOCOLS,
    TALLREC_SHOTS,
    cold_item_split,
    cold_user_split,
    tallrec_split,
    warm_split,
)
from fewrec.errors import ConfigError
from fewrec.eval.evaluate import evaluate_ranking, evaluate_tallrec
from fewrec.models.base import MODELS, Recommender, make_model

DEFAULT_MODELS = {
    "warm": ["random", "popularity", "itemknn", "ease", "als", "bpr"],
    "cold-user": ["random", "popularity", "itemknn", "ease", "als", "bpr"],
    "cold-item": ["random", "popularity", "itemknn", "ease", "als", "bpr"],
    "tallrec": ["random", "popularity", "like-share", "itemknn", "ease", "als"],
}
TABLE_METRICS = {
    "warm": ["ndcg@10", "recall@10", "mrr", "hr@10", "coverage@10", "train_seconds"],
    "cold-user": ["K0/ndcg@10", "K1/ndcg@10", "K5/ndcg@10", "K5/recall@10", "K20/ndcg@10", "train_seconds"],
    "cold-item": ["recall@20", "ndcg@10", "recall@10", "train_seconds"],
    "tallrec": ["K16/auc", "K64/auc", "K256/auc", "train_seconds"],
}
TALLREC_SEEDS = (0, 1, 2)

ModelFactory = Callable[[], Recommender]


def _factory(name: str, configs: dict[str, dict[str, Any]]) -> ModelFactory:
    cfg = configs.get(name, {})
    return lambda: make_model(name, **cfg)


def _timed_fit(factory: ModelFactory, data: Dataset) -> tuple[Recommender, float]:
    model = factory()
    t0 = time.perf_counter()
    model.fit(data)
    return model, time.perf_counter() - t0


def run_benchmark(
    protocol: str,
    models: Sequence[str] | None = None,
    *,
    dataset: str | Dataset = "movielens-100k",
    seed: int = 0,
    shots: Sequence[int] | None = None,
    configs: dict[str, dict[str, Any]] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate models on one protocol; returns the JSON-ready result document."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")
    import fewrec.models  # noqa: F401  (registers the built-in models)

    models = list(models or DEFAULT_MODELS[protocol])
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ConfigError(f"unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    configs = configs or {}
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    results: dict[str, dict[str, float]] = {m: {} for m in models}
    settings: dict[str, Any] = {}

    if protocol == "tallrec":
        ks = list(shots or TALLREC_SHOTS)
        split = tallrec_split(data)
        settings = {"shots": ks, "seeds": list(TALLREC_SEEDS), "n_test": len(split.test)}
        tasks = [(m, k, s) for m in models for k in ks for s in TALLREC_SEEDS]
    elif protocol == "cold-user":
        ks = list(shots if shots is not None else COLD_USER_SHOTS)
        settings = {"shots": ks, "reveal": "earliest"}
        tasks = [(m, None, None) for m in models]
    else:
        tasks = [(m, None, None) for m in models]

    with Progress(disable=not progress, transient=True) as bar:
        job = bar.add_task(f"benchmark {protocol}", total=len(tasks))
        if protocol == "warm":
            split = warm_split(data, seed)
            for m in models:
                bar.update(job, description=f"{protocol}: {m}")
                model, secs = _timed_fit(_factory(m, configs), split.train)
                rep = evaluate_ranking(model, split.test, split.train, seed=seed)
                results[m] = {**rep.as_dict(), "train_seconds": secs}
                bar.advance(job)
        elif protocol == "cold-item":
            split = cold_item_split(data, seed)
            settings = {"n_cold_items": int(len(split.cold_items)), "n_test_users": len(split.test)}
            for m in models:
                bar.update(job, description=f"{protocol}: {m}")
                model, secs = _timed_fit(_factory(m, configs), split.train)
                rep = evaluate_ranking(model, split.test, split.train, seed=seed)
                results[m] = {**rep.as_dict(), "train_seconds": secs}
                bar.advance(job)
        elif protocol == "cold-user":
            splits = {k: cold_user_split(data, shots=k, seed=seed) for k in ks}
            first = splits[ks[0]]
            settings["n_test_users"] = {f"K{k}": len(s.test) for k, s in splits.items()}
            for m in models:
                bar.update(job, description=f"{protocol}: {m}")
                # The training users are the same for every K: fit once, evaluate each K.
                model, secs = _timed_fit(_factory(m, configs), first.train)
                row: dict[str, float] = {"train_seconds": secs}
                for k, s in splits.items():
                    rep = evaluate_ranking(model, s.test, s.train, seed=seed)
                    row.update({f"K{k}/{key}": v for key, v in rep.as_dict().items()})
                results[m] = row
                bar.advance(job)
        else:
            acc: dict[tuple[str, int], list[dict[str, float]]] = {}
            for m, k, s in tasks:
                bar.update(job, description=f"{protocol}: {m} K={k} seed={s}")
                train = split.train_dataset(split.shots(k, s))
                model, secs = _timed_fit(_factory(m, configs), train)
                rep = evaluate_tallrec(model, split.test, seed=seed)
                acc.setdefault((m, k), []).append({**rep.values, "train_seconds": secs})
                bar.advance(job)
            for (m, k), runs in acc.items():
                aucs = np.array([r["auc"] for r in runs])
                results[m][f"K{k}/auc"] = float(aucs.mean())
                results[m][f"K{k}/auc_std"] = float(aucs.std())
                results[m][f"K{k}/score_seconds"] = float(np.mean([r["score_seconds"] for r in runs]))
                results[m].setdefault("train_seconds", 0.0)
                results[m]["train_seconds"] += float(sum(r["train_seconds"] for r in runs))

    return {
        "protocol": protocol,
        "dataset": data.name,
        "seed": seed,
        "settings": settings,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "models": results,
    }


def markdown_table(result: dict[str, Any], metrics: Sequence[str] | None = None) -> str:
    """A markdown table of the chosen metrics (default: the protocol's headline metrics)."""
    metrics = list(metrics or TABLE_METRICS.get(result["protocol"], []))
    rows = result["models"]
    available = [m for m in metrics if any(m in r for r in rows.values())]
    lines = [
        "| model | " + " | ".join(available) + " |",
        "|---|" + "---|" * len(available),
    ]
    for name, r in rows.items():
        cells = []
        for m in available:
            v = r.get(m)
            cells.append("" if v is None else (f"{v:.2f}" if m.endswith("seconds") else f"{v:.4f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_result(result: dict[str, Any], path: str | Path) -> Path:
    """Write the JSON result (and a markdown table beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False))
    path.with_suffix(".md").write_text(
        f"# {result['protocol']} on {result['dataset']} (seed {result['seed']})\n\n"
        + markdown_table(result)
        + "\n"
    )
    return path
