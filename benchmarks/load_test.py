"""Bounded load test of the HTTP service on loopback: recommend throughput and latency.

For each catalogue size (default 10k and 100k items) it builds (once, cached) a few-shot model
fit on MovieLens-100K whose catalogue is topped up with synthetic items (text from the real
MovieLens vocabulary, `fewrec.serve.synthetic`) through ``add_items``, starts the real server
(``python -m fewrec.serve``) on 127.0.0.1, and sends top-10 recommend requests from a few client
threads for a bounded time (``--duration`` seconds, at most 60, and at most ``--max-requests``).
Only loopback traffic; the script stops by itself.

Request mix (seeded): anonymous sessions that liked 1-20 items; sessions with free text and a
few items; new users with side info only; known MovieLens users (their training history).
Every response carries explanations (``explain=true``) and new users get Thompson sampling.
It also times the real-time path at each size: a new item until it is recommendable, and a
like until the user's next recommendations change.

Usage::

    python benchmarks/load_test.py                    # writes benchmarks/load_test.{json,md}
    python benchmarks/load_test.py --sizes 10000 --duration 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import httpx
import numpy as np

from fewrec.data.movielens import data_dir, load_movielens_100k
from fewrec.models import make_model
from fewrec.serve.synthetic import synthetic_items

HERE = Path(__file__).parent
KEY = "load-test"
TEXTS = [
    "space adventures with aliens",
    "funny romantic comedies",
    "dark crime thrillers",
    "animated films for children",
    "war dramas based on true stories",
    "scary horror movies",
    "musicals with great songs",
    "westerns with gunfights",
    "film noir detective stories",
    "documentaries about nature",
]


def build_model(size: int, cache: Path) -> tuple[Path, dict[str, Any]]:
    """A saved few-shot model with ``size`` items (cached)."""
    path = cache / f"load-{size}"
    meta = path / "build.json"
    if meta.exists():
        return path, json.loads(meta.read_text())
    data = load_movielens_100k()
    t0 = time.perf_counter()
    model = make_model("fewshot").fit(data)
    fit_s = time.perf_counter() - t0
    syn = synthetic_items(data.item_info, size - data.n_items)
    t0 = time.perf_counter()
    model.add_items(syn["id"].tolist(), syn[["title", "year", "genres"]])
    add_s = time.perf_counter() - t0
    model.save(path)
    info = {
        "items": model.n_items,
        "fit_seconds": fit_s,
        "add_items_seconds": add_s,
        "synthetic_items": len(syn),
    }
    meta.write_text(json.dumps(info))
    return path, info


def requests_for(
    size: int, n: int, seed: int, known_users: list[str], explain: bool = True
) -> list[tuple[str, str, Any]]:
    """A seeded mix of (scenario, path, JSON body or None) recommend requests."""
    rng = np.random.default_rng(seed)
    real = [str(i) for i in range(1, 1683)]
    syn = [f"syn{i}" for i in range(size - 1682)]
    out = []
    for _ in range(n):
        u = rng.random()
        pool = real if (rng.random() < 0.7 or not syn) else syn

        def items(lo: int, hi: int, pool: list[str] = pool) -> list[str]:
            return [str(x) for x in rng.choice(pool, size=int(rng.integers(lo, hi + 1)), replace=False)]

        if u < 0.5:
            out.append(("session", "/recommend", {"items": items(1, 20), "k": 10}))
        elif u < 0.7:
            body = {"text": str(rng.choice(TEXTS)), "items": items(0, 5), "k": 10}
            out.append(("text", "/recommend", body))
        elif u < 0.8:
            info = {"age": int(rng.integers(15, 70)), "gender": str(rng.choice(["M", "F"]))}
            out.append(("side-info", "/recommend", {"user_info": info, "k": 10}))
        else:
            out.append(("known-user", f"/users/{rng.choice(known_users)}/recommend?k=10", None))
    if not explain:
        out = [
            (name, path + "&explain=false", None)
            if body is None
            else (name, path, {**body, "explain": False})
            for name, path, body in out
        ]
    return out


def start_server(model_dir: Path, store: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fewrec.serve", str(model_dir), "--store", str(store)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--api-key", KEY, "--log-level", "warning"]
    return subprocess.Popen(cmd, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 600.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/health/ready", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise TimeoutError("server not ready")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def realtime_checks(base: str) -> dict[str, Any]:
    """Seconds until a new item is recommendable, and until a like changes the next list; and
    the recommend latency seen by another client while the item is being added."""
    auth = {"X-API-Key": KEY}
    out: dict[str, Any] = {}
    during: list[float] = []
    adding = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=base, timeout=60.0) as c:
            while adding.is_set():
                t0 = time.perf_counter()
                c.post("/recommend", json={"items": ["50", "100"], "explain": False})
                during.append(time.perf_counter() - t0)

    with httpx.Client(base_url=base, timeout=600.0) as client:
        adding.set()
        watcher = threading.Thread(target=reader)
        watcher.start()
        t0 = time.perf_counter()
        try:
            r = client.put(
                "/items/load-new-item",
                json={
                    "title": "Nebula Run",
                    "text": "A heist on a space station",
                    "fields": {"genres": ["Heist-Test"]},
                },
                headers=auth,
            )
            rec = client.post("/recommend", json={"items": ["50"], "filters": {"genres": "heist-test"}})
            out["new_item_recommendable_seconds"] = time.perf_counter() - t0
            out["new_item_found"] = r.status_code == 200 and [i["item"] for i in rec.json()["items"]] == [
                "load-new-item"
            ]
        finally:
            adding.clear()
            watcher.join()
        out["recommend_during_add_max_ms"] = 1000 * max(during, default=0.0)
        out["recommend_during_add_requests"] = len(during)
        before = client.get("/users/load-user/recommend", params={"explore": False})
        ids_before = [i["item"] for i in before.json()["items"]] if before.status_code == 200 else []
        t0 = time.perf_counter()
        client.post("/feedback", json={"user": "load-user", "item": "50", "kind": "like"}, headers=auth)
        after = client.get("/users/load-user/recommend", params={"explore": False})
        out["like_to_changed_recommendations_seconds"] = time.perf_counter() - t0
        out["recommendations_changed"] = [i["item"] for i in after.json()["items"]] != ids_before
    return out


def run_load(base: str, reqs: list, duration: float, concurrency: int, max_requests: int) -> dict[str, Any]:
    lat: list[tuple[str, float, int]] = []
    lock = threading.Lock()
    cursor = [0]
    stop_at = time.perf_counter() + duration

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=30.0) as client:
            while time.perf_counter() < stop_at:
                with lock:
                    i = cursor[0]
                    cursor[0] += 1
                if i >= max_requests:
                    return
                scenario, path, body = reqs[i % len(reqs)]
                t0 = time.perf_counter()
                try:
                    r = client.get(path) if body is None else client.post(path, json=body)
                    status = r.status_code
                except httpx.HTTPError:
                    status = 599
                dt = time.perf_counter() - t0
                with lock:
                    lat.append((scenario, dt, status))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return summarise(lat, wall)


def summarise(lat: list[tuple[str, float, int]], wall: float) -> dict[str, Any]:
    def stats(rows: list[tuple[str, float, int]]) -> dict[str, Any]:
        ms = np.array([r[1] for r in rows]) * 1000
        return {
            "requests": len(rows),
            "errors": int(sum(r[2] != 200 for r in rows)),
            "p50_ms": float(np.percentile(ms, 50)),
            "p90_ms": float(np.percentile(ms, 90)),
            "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()),
            "mean_ms": float(ms.mean()),
        }

    out = {"wall_seconds": wall, "throughput_rps": len(lat) / wall, **stats(lat), "by_scenario": {}}
    for name in sorted({r[0] for r in lat}):
        out["by_scenario"][name] = stats([r for r in lat if r[0] == name])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per run (<= 60)")
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["1:explain", "4:explain", "1:plain"],
        help="client threads and explanations per run, e.g. 4:explain or 1:plain",
    )
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--cache", type=Path, default=data_dir() / "bench-models")
    parser.add_argument("--output", type=Path, default=HERE / "load_test.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    duration = min(args.duration, 60.0)
    data = load_movielens_100k()
    counts = data.user_counts()
    known = [data.users.id(u) for u in np.flatnonzero(counts > 0)]
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    for size in args.sizes:
        model_dir, build = build_model(size, args.cache)
        store = Path(os.environ.get("TMPDIR", "/tmp")) / f"fewrec-load-{os.getpid()}-{size}.db"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(model_dir, store, port)
        try:
            ready_s = wait_ready(base, proc)
            runs = {}
            for spec in args.runs:
                threads, mode = spec.split(":")
                reqs = requests_for(size, 5_000, args.seed, known, explain=mode == "explain")
                run_load(base, reqs[-200:], 3.0, int(threads), 100)  # warm-up, not measured
                runs[spec] = run_load(base, reqs, duration, int(threads), args.max_requests)
                r = runs[spec]
                print(
                    f"{size} items, {spec}: {r['throughput_rps']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, "
                    f"p99 {r['p99_ms']:.1f} ms, errors {r['errors']}",
                    flush=True,
                )
            realtime = realtime_checks(base)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            for suffix in ("", "-wal", "-shm"):
                Path(str(store) + suffix).unlink(missing_ok=True)
        results[str(size)] = {
            "items": build["items"],
            "build": build,
            "ready_seconds": ready_s,
            "runs": runs,
            "realtime": realtime,
        }
    out = {
        "benchmark": "load_test",
        "endpoint": "top-10 recommend (POST /recommend, GET /users/{id}/recommend)",
        "settings": {"duration_s": duration, "runs": args.runs, "seed": args.seed},
        "target": {"p99_ms_at_100k": 50.0},
        "results": results,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "note": "client and server share this machine's 2 cores (and other jobs running on it)",
    }
    args.output.write_text(json.dumps(out, indent=2))
    args.output.with_suffix(".md").write_text(markdown(out))
    print(markdown(out))
    return 0


def markdown(out: dict[str, Any]) -> str:
    s = out["settings"]
    lines = [
        "# Load test: top-10 recommendations over loopback",
        "",
        f"{out['endpoint']}. Each run sends a seeded request mix for {s['duration_s']:g} s from N client "
        f"threads (`N:explain` with reasons, `N:plain` without), on the same {out['machine']['cpus']}-core "
        f"machine as the server; {out['note']}; 1-minute load average before/after: "
        f"{out['machine']['load_average_before'][0]} / {out['machine']['load_average_after'][0]}.",
        "",
        "| items | run | req/s | p50 ms | p90 ms | p99 ms | max ms | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in out["results"].values():
        for spec, run in r["runs"].items():
            lines.append(
                f"| {r['items']:,} | {spec} | {run['throughput_rps']:.0f} | {run['p50_ms']:.1f} | "
                f"{run['p90_ms']:.1f} | {run['p99_ms']:.1f} | {run['max_ms']:.0f} | {run['errors']} |"
            )
    first = next(iter(out["results"].values()))
    spec0 = next(iter(first["runs"]))
    names = sorted(first["runs"][spec0]["by_scenario"])
    lines += ["", f"By scenario, run `{spec0}` (p50 / p99 ms):", "", "| items | " + " | ".join(names) + " |"]
    lines.append("|---:|" + "---:|" * len(names))
    for r in out["results"].values():
        scen = r["runs"][spec0]["by_scenario"]
        lines.append(
            f"| {r['items']:,} | "
            + " | ".join(f"{scen[n]['p50_ms']:.1f} / {scen[n]['p99_ms']:.1f}" for n in names)
            + " |"
        )
    lines += [
        "",
        "Real time (one request each, after the load; another client keeps asking for "
        "recommendations while the item is added):",
        "",
        "| items | new item recommendable | slowest recommend meanwhile | like -> changed list |",
        "|---:|---:|---:|---:|",
    ]
    for r in out["results"].values():
        rt = r["realtime"]
        lines.append(
            f"| {r['items']:,} | {rt['new_item_recommendable_seconds'] * 1000:.0f} ms "
            f"({'found' if rt['new_item_found'] else 'NOT found'}) | "
            f"{rt['recommend_during_add_max_ms']:.0f} ms ({rt['recommend_during_add_requests']} requests) | "
            f"{rt['like_to_changed_recommendations_seconds'] * 1000:.0f} ms "
            f"({'changed' if rt['recommendations_changed'] else 'unchanged'}) |"
        )
    lines += [
        "",
        "Models: few-shot (meta-learned) fit on MovieLens-100K; the catalogue is topped up with synthetic "
        "items through `add_items` (no retraining), item-item term included (added items borrow "
        "their text neighbours' columns, O(n) memory). Adding an item embeds its text, appends its "
        "rows and indexes its vector; the service adds items copy-on-write, so requests keep being "
        "answered "
        "from the previous catalogue meanwhile.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
