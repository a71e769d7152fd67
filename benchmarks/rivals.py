"""fewrec against LightFM, the library practitioners reach for in cold start, on the same splits.

LightFM (Kula 2015; the maintained `rectools-lightfm` build) is a hybrid factorisation model: a
user is the sum of embeddings of their features, an item of its features. It is given what our
models get:

* users: an identity feature (for users with interactions) and the side info one-hot (age by
  decade, gender, occupation; fewrec's `side_vocab`);
* items: an identity feature (for items with training interactions), genres and release decade;
  on cold-item, ``lightfm+text`` adds the item's packaged MiniLM text embedding (the vectors
  fewrec's text models use), reduced to its first 32 principal components (all 384 made an
  epoch 90x slower) and min-max scaled to [0, 1], since LightFM wants non-negative features.

LightFM has no fold-in: a new user's K revealed interactions enter through a refit. It is
therefore refitted per K on the training users plus the revealed interactions of the validation
and test users (more than fewrec's models get: they adapt without retraining). With K = 0 a
test user is their side info alone. WARP loss, 2 threads; the number of components and epochs
are chosen on validation users (cold-user K = 5 for each reveal; cold-item validation items),
never on test users. LightFM trains with 2 Hogwild threads, so reruns differ a little, the
validation's choice included (random K5: 0.6469, 0.6453 and 0.6406 in three runs; cold-item with
text 0.072 and 0.070). On cold-item the validation also chooses whether items get identity
features at all: with them, items with interactions always outrank the metadata-only new ones.

Every split is the seed-0 split of the tables in ``benchmarks/`` (cold-user.json: earliest
reveal, cold-user-random.json: random, cold-item.json), so fewrec's rows are read from them and
the paired gain CI uses their stored per-user values.

Usage (needs the ``rivals`` extra: ``make benchmark-rivals`` installs it)::

    python benchmarks/rivals.py                       # writes benchmarks/rivals.{json,md}
    python benchmarks/rivals.py --only cold-item      # reruns one protocol, keeps the others'
    python benchmarks/rivals.py --refresh             # fewrec's rows only: refits no LightFM

``--refresh`` is for after a rerun of the protocol tables: it re-reads fewrec's rows and pairs
their new per-user values with LightFM's recorded ones (same seed-0 splits, same test
users), so LightFM's Hogwild noise does not enter the comparison. The table's ``note`` (kept in
the JSON, written under the header) is kept.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from fewrec.data import load_dataset
from fewrec.data.dataset import Dataset, side_info_levels, side_onehot, side_vocab
from fewrec.data.splits import EvalSet, Split, cold_item_split, cold_user_split
from fewrec.eval import metrics as M
from fewrec.models.content import TextModelConfig, embed_items

HERE = Path(__file__).parent
OUT = HERE / "rivals"
SEED = 0
SHOTS = (0, 1, 5, 20)
COMPONENTS = (64, 128, 256)
EPOCHS = (10, 20, 40, 60, 100, 150)
COLD_ITEM_COMPONENTS = (64, 128)
THREADS = 2
TEXT_DIMS = 32
FEWREC_ROWS = ("popularity", "dlae", "kshot-ridge", "fewshot", "ensemble", "ensemble-blend")
# fewrec's rows paired with each LightFM row (cold-item has no ensemble-blend, cold-user no ensemble-text)
GAIN_ROWS = ("fewshot", "ensemble", "ensemble-blend", "ensemble-text")


def item_features(data: Dataset, with_identity: np.ndarray, text: np.ndarray | None) -> sp.csr_matrix:
    """Identity (rows in ``with_identity``), genres, release decade, and optionally text."""
    n = data.n_items
    ident = sp.diags(with_identity.astype(np.float32)).tocsr()
    genres = data.item_genres()
    g_vocab = sorted({g for gs in genres for g in gs})
    g_pos = {g: j for j, g in enumerate(g_vocab)}
    rows = [i for i, gs in enumerate(genres) for _ in gs]
    cols = [g_pos[g] for gs in genres for g in gs]
    g = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, len(g_vocab)))
    decade = side_info_levels(pd.to_numeric(data.item_info["year"], errors="coerce")).astype(str)
    d_vocab = sorted(set(decade))
    d = sp.csr_matrix(
        (np.ones(n, np.float32), (np.arange(n), [d_vocab.index(v) for v in decade])), shape=(n, len(d_vocab))
    )
    blocks = [ident, g, d]
    if text is not None:
        lo, hi = text.min(axis=0), text.max(axis=0)
        blocks.append(sp.csr_matrix(((text - lo) / np.maximum(hi - lo, 1e-9)).astype(np.float32)))
    return normalize(sp.hstack(blocks).tocsr(), norm="l1")


def user_features(data: Dataset, with_identity: np.ndarray) -> sp.csr_matrix:
    """Identity (rows in ``with_identity``) and the side-info one-hot."""
    ident = sp.diags(with_identity.astype(np.float32)).tocsr()
    side = sp.csr_matrix(side_onehot(data.user_info, side_vocab(data.user_info), data.n_users))
    return normalize(sp.hstack([ident, side]).tocsr(), norm="l1")


def with_revealed(s: Split) -> pd.DataFrame:
    """The (user, item) pairs LightFM is fitted on: the training interactions and the K items
    each validation and test user revealed."""
    frames = [s.train.interactions[["user", "item"]]]
    for es in (s.valid, s.test):
        h = es.history.tocoo()
        frames.append(pd.DataFrame({"user": es.users[h.row], "item": h.col}))
    return pd.concat(frames, ignore_index=True)


class LightFMRun:
    """One LightFM fit, scored after each epoch checkpoint."""

    def __init__(
        self,
        data: Dataset,
        fit_pairs: pd.DataFrame,
        components: int,
        text: np.ndarray | None,
        item_identity: bool = True,
    ):
        from lightfm import LightFM

        n_u, n_i = data.n_users, data.n_items
        u, i = fit_pairs["user"].to_numpy(), fit_pairs["item"].to_numpy()
        self.x = sp.coo_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_u, n_i)).tocsr()
        self.x.data[:] = 1.0
        self.x = self.x.tocoo()
        has_u = np.bincount(u, minlength=n_u) > 0
        has_i = np.bincount(i, minlength=n_i) > 0
        self.uf = user_features(data, has_u)
        self.itf = item_features(data, has_i & item_identity, text)
        self.model = LightFM(no_components=components, loss="warp", learning_rate=0.05, random_state=SEED)
        self.epochs = 0
        self.seconds = 0.0

    def train_to(self, epochs: int) -> None:
        t0 = time.perf_counter()
        self.model.fit_partial(
            self.x,
            user_features=self.uf,
            item_features=self.itf,
            epochs=epochs - self.epochs,
            num_threads=THREADS,
        )
        self.seconds += time.perf_counter() - t0
        self.epochs = epochs

    def scores(self, users: np.ndarray) -> np.ndarray:
        _, u_emb = self.model.get_user_representations(self.uf[users])
        i_bias, i_emb = self.model.get_item_representations(self.itf)
        return (u_emb @ i_emb.T + i_bias[None, :]).astype(np.float64)


def per_user(scores: np.ndarray, es: EvalSet, only_items: np.ndarray | None = None) -> dict[str, np.ndarray]:
    s = scores.copy()
    ex = es.exclude.tocoo()
    s[ex.row, ex.col] = -np.inf
    if only_items is not None:
        keep = np.zeros(s.shape[1], bool)
        keep[only_items] = True
        s[:, ~keep] = -np.inf
    # hits in expectation over the order of tied scores, as fewrec's rows count them (LightFM
    # without item identities ties every item of one genre set and decade)
    hits = M.tied_hits(s, M.top_k_matrix(s, 20), es.targets).expected
    n_t = np.diff(es.targets.indptr)
    return {
        "ndcg@10": M.ndcg_at_k(hits, n_t, 10),
        "recall@10": M.recall_at_k(hits, n_t, 10),
        "recall@20": M.recall_at_k(hits, n_t, 20),
    }


def choose(data, split: Split, fit_pairs, text, metric: str, identity=(True,), components=COMPONENTS) -> dict:
    """The settings (item identity features or not, components, epochs) with the best
    validation ``metric``."""
    best = {"valid": -1.0}
    for ident in identity:
        for comps in components:
            run = LightFMRun(data, fit_pairs, comps, text, ident)
            for ep in EPOCHS:
                run.train_to(ep)
                val = float(per_user(run.scores(split.valid.users), split.valid)[metric].mean())
                print(
                    f"    valid {metric} identity {ident} components {comps} epochs {ep}: {val:.4f}",
                    flush=True,
                )
                if val > best["valid"]:
                    best = {"valid": val, "item_identity": ident, "components": comps, "epochs": ep}
    return best


def fit_chosen(data, fit_pairs, text, cfg: dict) -> LightFMRun:
    run = LightFMRun(data, fit_pairs, cfg["components"], text, cfg.get("item_identity", True))
    run.train_to(cfg["epochs"])
    return run


def paired_gains(ours: dict, key: str, theirs: np.ndarray) -> dict:
    """Each fewrec row of ``GAIN_ROWS`` over LightFM's per-user values ``theirs`` on the same test
    users (``key``: the per-user column of the protocol table): ``ensemble_gain`` and its CI for
    the table's column, every row's under ``gains``; none where LightFM scores 0."""
    if theirs.mean() <= 0:
        return {}
    gains = {}
    for m in GAIN_ROWS:
        if m not in ours:
            continue
        mine = np.asarray(ours[m][key])
        if mine.shape != theirs.shape:
            raise SystemExit(
                f"the protocol table's {m} row has {mine.size} test users, LightFM's {theirs.size}:"
                " not the same split; rerun LightFM (without --refresh)"
            )
        gains[m] = {
            "gain": float(mine.mean() / theirs.mean() - 1),
            "ci": M.bootstrap_gain_ci(mine, theirs, seed=SEED),
        }
    out: dict = {"gains": gains}
    if "ensemble" in gains:
        out |= {"ensemble_gain": gains["ensemble"]["gain"], "ensemble_gain_ci": gains["ensemble"]["ci"]}
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only", choices=["cold-user", "cold-item"], help="rerun one protocol; keep the others' rows"
    )
    ap.add_argument(
        "--refresh",
        action="store_true",
        help="re-read fewrec's rows from the protocol tables and re-pair LightFM's recorded ones; no refit",
    )
    args = ap.parse_args()
    if args.refresh and args.only:
        ap.error("--refresh re-reads every protocol's rows; it takes no --only")
    if args.refresh:
        write(refresh(json.loads(OUT.with_suffix(".json").read_text())))
        return
    only = args.only
    data = load_dataset()
    from sklearn.decomposition import PCA

    text = PCA(TEXT_DIMS, random_state=SEED).fit_transform(embed_items(data, TextModelConfig()))
    doc: dict = {"seed": SEED, "components": COMPONENTS, "epochs": EPOCHS, "protocols": {}}
    if only:  # (the rows of the protocols not rerun, as recorded)
        doc["protocols"] = json.loads(OUT.with_suffix(".json").read_text())["protocols"]

    for reveal, table in (("random", "cold-user-random"), ("earliest", "cold-user")):
        if only == "cold-item":
            break
        ours = json.loads((HERE / f"{table}.json").read_text())["models"]
        splits = {
            k: cold_user_split(data, shots=k, seed=SEED, random_shots=reveal == "random") for k in SHOTS
        }
        rows: dict[str, dict] = {
            m: {f"K{k}/ndcg@10": ours[m][f"K{k}/ndcg@10"] for k in SHOTS} for m in FEWREC_ROWS
        }
        print(f"cold-user {reveal} lightfm", flush=True)
        cfg = choose(data, splits[5], with_revealed(splits[5]), None, "ndcg@10")
        row: dict = {"chosen": cfg}
        for k, s in splits.items():
            run = fit_chosen(data, with_revealed(s), None, cfg)
            vals = per_user(run.scores(s.test.users), s.test)
            row[f"K{k}/ndcg@10"] = float(vals["ndcg@10"].mean())
            row[f"K{k}/train_seconds"] = run.seconds
            if k == 5:
                row.update(paired_gains(ours, "K5/ndcg@10/per_user", vals["ndcg@10"]))
                row["K5/ndcg@10/per_user"] = vals["ndcg@10"].tolist()  # (to pair with a rerun ensemble row)
            print(f"  K{k}: test NDCG@10 {row[f'K{k}/ndcg@10']:.4f} ({run.seconds:.1f} s)", flush=True)
        rows["lightfm"] = row
        doc["protocols"][f"cold-user {reveal}"] = rows

    if only == "cold-user":
        write(doc)
        return
    ours = json.loads((HERE / "cold-item.json").read_text())["models"]
    split = cold_item_split(data, seed=SEED)
    rows = {
        m: {"recall@20": ours[m]["recall@20"], "cold_only/recall@20": ours[m]["cold_only/recall@20"]}
        for m in ("random", "popularity", "fewshot", "ensemble", "ensemble-text")
        if m in ours
    }
    fit_pairs = split.train.interactions[["user", "item"]]
    for name, txt in {"lightfm": None, "lightfm+text": text}.items():
        print(f"cold-item {name}", flush=True)
        cfg = choose(data, split, fit_pairs, txt, "recall@20", (True, False), COLD_ITEM_COMPONENTS)
        run = fit_chosen(data, fit_pairs, txt, cfg)
        scores = run.scores(split.test.users)
        vals, only = per_user(scores, split.test), per_user(scores, split.test, split.cold_items)
        rows[name] = {
            "chosen": cfg,
            "recall@20": float(vals["recall@20"].mean()),
            "cold_only/recall@20": float(only["recall@20"].mean()),
            "train_seconds": run.seconds,
            **paired_gains(ours, "recall@20/per_user", vals["recall@20"]),
            "recall@20/per_user": vals["recall@20"].tolist(),  # (to pair with a rerun ensemble row)
        }
        print(f"  recall@20 {rows[name]['recall@20']:.4f} cold-only {rows[name]['cold_only/recall@20']:.4f}")
    doc["protocols"]["cold-item"] = rows
    write(doc)


def refresh(doc: dict) -> dict:
    """``doc`` with fewrec's rows re-read from the protocol tables and each LightFM row's gain
    re-paired with fewrec's per-user values there; LightFM's own figures are kept."""
    for reveal, table in (("random", "cold-user-random"), ("earliest", "cold-user"), (None, "cold-item")):
        proto = "cold-item" if reveal is None else f"cold-user {reveal}"
        if proto not in doc["protocols"]:
            continue
        ours = json.loads((HERE / f"{table}.json").read_text())["models"]
        rows = doc["protocols"][proto]
        if reveal is None:
            cols, key = ("recall@20", "cold_only/recall@20"), "recall@20/per_user"
        else:
            cols, key = tuple(f"K{k}/ndcg@10" for k in SHOTS), "K5/ndcg@10/per_user"
        for m in [m for m in rows if not m.startswith("lightfm")]:
            if m in ours:
                rows[m] = {c: ours[m][c] for c in cols}
        for m in [m for m in rows if m.startswith("lightfm")]:
            for k in ("ensemble_gain", "ensemble_gain_ci", "gains"):
                rows[m].pop(k, None)
            rows[m].update(paired_gains(ours, key, np.asarray(rows[m][key])))
    return doc


def write(doc: dict) -> None:
    OUT.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=float))
    OUT.with_suffix(".md").write_text(markdown(doc))
    print(markdown(doc))


def markdown(doc: dict) -> str:
    lines = [
        "# fewrec against LightFM (ML-100K, split seed 0, full ranking)",
        "",
        "Generated by `benchmarks/rivals.py` (see its docstring). LightFM's components and epochs were",
        "chosen on validation users; fewrec's rows are those of the protocol tables on the same split.",
        "Gain: fewrec's ensemble over that LightFM row, paired bootstrap 95% CI over the test users.",
    ]
    if doc.get("note"):
        lines += ["", doc["note"]]
    for proto, rows in doc["protocols"].items():
        lines += ["", f"## {proto}", ""]
        if proto == "cold-item":
            cols, metric = ["recall@20", "cold_only/recall@20"], "Recall@20"
        else:
            cols, metric = [f"K{k}/ndcg@10" for k in SHOTS], "K5 NDCG@10"
        head = "ensemble's gain (headline metric)"
        lines += ["| model | " + " | ".join(cols) + f" | chosen | {head} |", "|---" * (len(cols) + 3) + "|"]
        for name, r in rows.items():
            cells = [f"{r[c]:.4f}" for c in cols]
            chosen = ""
            if "chosen" in r:
                c = r["chosen"]
                ids = "" if c["item_identity"] else ", no item ids"
                chosen = f"{c['components']} comp., {c['epochs']} ep.{ids}"
            gain = ""
            if "ensemble_gain" in r:
                lo, hi = r["ensemble_gain_ci"]
                gain = f"{r['ensemble_gain']:+.1%} [{lo:+.1%}, {hi:+.1%}]"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {chosen} | {gain} |")
        for name, r in rows.items():
            if r.get("gains"):
                each = "; ".join(
                    f"{m} {g['gain']:+.1%} [{g['ci'][0]:+.1%}, {g['ci'][1]:+.1%}]"
                    for m, g in r["gains"].items()
                )
                lines += ["", f"Over `{name}` ({metric}, paired): {each}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
