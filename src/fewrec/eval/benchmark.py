"""The benchmark runner: every chosen model trained and evaluated on the SAME seeded split.

Results are a JSON document::

    {"protocol": P, "dataset": ..., "seed": ..., "models": {NAME: {METRIC: value, ...,
     "train_seconds": s, "score_seconds": s}}}

and a markdown table. Protocols with several K (cold-user shots, tallrec K-shot) prefix the
metric with the K: ``"K5/ndcg@10"``.

One split's test users give one estimate; another seed draws other test users and can move a
model's score by more than the per-user bootstrap CI suggests. `run_seeds` repeats the benchmark
over several split seeds and reports each metric's mean with a 95% t-interval over seeds, and
each model's relative gain over a baseline model, paired by seed.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from rich.console import Console
from rich.progress import Progress

from fewrec.data.dataset import Dataset
from fewrec.data.movielens import NAME, NAME_1M, load_dataset
from fewrec.data.splits import (
    COLD_USER_SHOTS,
    PROTOCOLS,
    TALLREC_SHOTS,
    _cold_user_split,
    cold_item_split,
    split_fingerprint,
    tallrec_split,
    too_few_to_reveal,
    warm_split,
)
from fewrec.data.transfer import onto_catalogue, pool_users
from fewrec.errors import ConfigError, file_in_the_way, is_whole_number, with_fix
from fewrec.eval import metrics as M
from fewrec.eval.evaluate import Report, evaluate_ranking, evaluate_tallrec
from fewrec.models.base import MODELS, Recommender, _import_builtin_models, make_model, models_fix
from fewrec.models.presets import PRESETS
from fewrec.present import progress_lines

log = logging.getLogger(__name__)

#: One model's results: metric values, and the per-query values of the headline metric.
ResultRow: TypeAlias = dict[str, float | list[float]]

ID_BASELINES = ["random", "popularity", "itemknn", "rp3beta", "ease", "dlae", "transitions", "als", "bpr"]
OUR_MODELS = ["kshot-ridge", "content", "fewshot-nometa", "fewshot", "fewshot-ranked", "ensemble"]
DEFAULT_MODELS = {
    "warm": ID_BASELINES + OUR_MODELS,
    # the blend alone beside the default (re-ranked) ensemble: what the re-ranker adds
    "cold-user": ID_BASELINES + ["popularity-segment"] + OUR_MODELS + ["ensemble-blend"],
    "cold-item": ID_BASELINES + OUR_MODELS,
    "tallrec": [
        "random",
        "popularity",
        "like-share",
        "itemknn",
        "ease",
        "als",
        "fewshot",
        "like-clf",
        "like-clf@catalogue",
        "like-clf@movielens-1m",
    ],
}
#: tallrec model variants, ``NAME@VARIANT``: trained on the user-disjoint catalogue of the
#: protocol's data instead of the K samples, or on the K samples pooled with MovieLens-1M's users
#: (a separate dataset, fetched once) mapped onto the catalogue by title.
TALLREC_VARIANTS = ("catalogue", "movielens-1m")
#: The table's columns; cold-user and tallrec show one per K the run evaluated (`table_metrics`).
TABLE_METRICS = {
    "warm": ["ndcg@10", "recall@10", "mrr", "hr@10", "coverage@10", "train_seconds"],
    "cold-user": [
        "K0/ndcg@10",
        "K1/ndcg@10",
        "K5/ndcg@10",
        "K5/recall@10",
        "K20/ndcg@10",
        "adapt_ms_k5",
        "train_seconds",
    ],
    "cold-item": ["recall@20", "ndcg@10", "cold_only/recall@20", "cold_only/ndcg@10", "train_seconds"],
    "tallrec": ["K16/auc", "K64/auc", "K256/auc", "train_seconds"],
}
TALLREC_SEEDS = (0, 1, 2)
"""tallrec's draws of K training samples, offset by the run's seed (seed 1: draws 1, 2, 3); its
split (the last 10,000 samples) is the same for every seed."""
#: The metric a multi-seed summary compares models on (their gain over the baseline).
HEADLINE = {"warm": "ndcg@10", "cold-user": "K5/ndcg@10", "cold-item": "recall@20"}

ModelFactory = Callable[[], Recommender]


def _factory(name: str, configs: dict[str, dict[str, Any]], reveal: str | None = None) -> ModelFactory:
    """A model maker. ``reveal`` (cold-user) is passed to models that simulate new users in
    training, so their episodes reveal K items the way the protocol's test users do."""
    base, preset = PRESETS.get(name, (name, {}))
    cfg = {**preset, **configs.get(name, {})}
    if reveal is not None and "reveal" in MODELS[base].Config.model_fields:
        cfg.setdefault("reveal", reveal)
    return lambda: make_model(base, **cfg)


def _missing_user_fields(name: str, configs: dict[str, dict[str, Any]], data: Dataset) -> list[str]:
    """The user fields that model ``name`` (with its preset and overrides) segments users by and
    ``data`` lacks (popularity-segment: age)."""
    name = name.partition("@")[0]  # a tallrec variant is its model's settings
    base, preset = PRESETS.get(name, (name, {}))
    if base not in MODELS or "segment_by" not in MODELS[base].Config.model_fields:
        return []
    fields = {**preset, **configs.get(name, {})}.get("segment_by", ())
    if isinstance(fields, str):  # "auto": whatever fields the data has
        return []
    return [f for f in fields if f not in data.user_info.columns]


def fit_to_data(
    models: Sequence[str], data: Dataset, configs: dict[str, dict[str, Any]], defaults: bool
) -> tuple[list[str], dict[str, str]]:
    """The models that can run on ``data``, and why each of the others was left out.

    A default model (not asked for, no ``--set`` of its own) that segments users by fields the
    data lacks (popularity-segment: age), that would need more memory than there is
    (`Recommender.check_memory`: EASE on 100,000 items), or that learns from MovieLens-1M on
    data other than MovieLens-100K, is left out; one asked for is an error,
    before anything trains (it failed after the models before it had trained)."""
    fields = list(data.user_info.columns)
    left_out: dict[str, str] = {}
    for m in models:
        if defaults and m.endswith("@movielens-1m") and data.name != NAME:
            # (also in the Ray fan-out, whose tasks each name their model, so none is a default)
            left_out[m] = with_fix(
                f"{m} learns its prior from MovieLens-1M's ratings of films, for {NAME}",
                "to run it on this data of films, name it in --models",
            )
            continue
        missing = _missing_user_fields(m, configs, data)
        if not missing:
            continue
        why = f"{m} segments users by {missing}, not a user field of the data ({fields})"
        if fields:
            run = (
                f"segment by the data's user fields, e.g. --set '{m}.segment_by=[\"{fields[0]}\"]' "
                f"(or {m}.segment_by=auto for all of them)"
            )
        else:
            run = f"give --users a table with the field {missing[0]!r}"
        if defaults and m.partition("@")[0] not in configs:
            left_out[m] = with_fix(why, f"to run it, name it in --models and {run}")
            continue
        raise ConfigError(with_fix(why, f"{run}, or leave {m} out"))
    for m in models:  # a model too large for memory: named before anything trains
        name = m.partition("@")[0]
        if m in left_out or name not in MODELS and name not in PRESETS:
            continue
        try:
            _factory(name, configs)().check_memory(data)
        except ConfigError as exc:
            if not defaults or name in configs:
                raise
            left_out[m] = str(exc)
    return [m for m in models if m not in left_out], left_out


def _movielens_1m_likes(data: Dataset) -> Dataset:
    """MovieLens-1M's users on ``data``'s films (by title and year), each rating read as the
    TALLRec samples' labels are: 1 (liked) above 3 stars, else 0."""
    ml1m = load_dataset(NAME_1M)
    if data.name == NAME_1M or data.items == ml1m.items:
        raise ConfigError(
            "NAME@movielens-1m on MovieLens-1M itself would train on the test users' own ratings. "
            "Fix: use it on another dataset of films (MovieLens-100K), or NAME@catalogue"
        )
    mapped = onto_catalogue(ml1m, data)
    liked = (mapped.interactions["rating"].to_numpy() > 3).astype(np.float32)
    return mapped.with_interactions(mapped.interactions.assign(rating=liked))


def _timed_fit(factory: ModelFactory, data: Dataset) -> tuple[Recommender, float]:
    model = factory()
    t0 = time.perf_counter()
    model.fit(data)
    return model, time.perf_counter() - t0


def check_request(
    protocol: str,
    models: Sequence[str] | None,
    configs: dict[str, dict[str, Any]] | None,
    shots: Sequence[int] | None,
    reveal: str,
    baseline: str | None,
) -> list[str]:
    """The model names a benchmark runs, once its arguments are checked (all of them, and
    every model's settings, before anything trains: `run_benchmark` and its Ray fan-out)."""
    if reveal not in ("earliest", "random"):
        raise ConfigError(f"reveal must be 'earliest' or 'random', got {reveal!r}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")
    _import_builtin_models()  # and those $FEWREC_IMPORT names

    models = _model_list(models, protocol)
    twice = sorted({m for m in models if models.count(m) > 1})
    if twice:  # (trained twice, shown once)
        raise ConfigError(f"models names {', '.join(map(repr, twice))} twice: give each model once")
    unknown = [m for m in models if m.partition("@")[0] not in MODELS and m not in PRESETS]
    bad_variant = [m for m in models if m.partition("@")[2] not in ("", *TALLREC_VARIANTS)]
    if bad_variant or (protocol != "tallrec" and any("@" in m for m in models)):
        raise ConfigError(
            f"model variants {bad_variant or [m for m in models if '@' in m]}: only "
            f"{', '.join('NAME@' + v for v in TALLREC_VARIANTS)}, on the tallrec protocol"
        )
    if unknown:
        # (as `fewrec models NAME` says it: this printed the Python lists)
        names = (
            f"unknown model {unknown[0]!r}"
            if len(unknown) == 1
            else f"unknown models {', '.join(map(repr, unknown))}"
        )
        raise ConfigError(with_fix(names, models_fix(unknown, list(PRESETS))))
    check_baseline(baseline, models)
    configs = configs or {}
    stray = sorted(set(configs) - set(models) - {m.partition("@")[0] for m in models})
    if stray:
        raise ConfigError(f"config overrides for {stray}, which are not among the models {models}")
    if shots is not None and protocol not in ("cold-user", "tallrec"):
        raise ConfigError(f"shots apply to the cold-user and tallrec protocols, not {protocol}")
    if shots is not None and (isinstance(shots, str) or not isinstance(shots, Sequence | np.ndarray)):
        # (an int was a TypeError, "10" was read as the K 1 and 0)
        raise ConfigError(f"shots must be a list of K, e.g. [5], got {shots!r}")
    for k in shots or ():  # here, not in each Ray task (whose error came wrapped in Ray's traceback)
        if isinstance(k, bool) or not is_whole_number(k) or k < 0:
            raise ConfigError(f"shots must be whole numbers >= 0, got {k!r}")
    if shots is not None and len(set(shots)) < len(shots):  # (columns twice; tallrec's draws run twice)
        raise ConfigError(f"shots names a K twice: {list(shots)}")
    if reveal != "earliest" and protocol != "cold-user":
        raise ConfigError(f"reveal applies to the cold-user protocol, not {protocol}")
    for m in models:  # every model's settings, before the first one trains
        _factory(m.partition("@")[0], configs)()
    return models


def run_benchmark(
    protocol: str,
    models: Sequence[str] | None = None,
    *,
    dataset: str | Dataset = "movielens-100k",
    seed: int = 0,
    shots: Sequence[int] | None = None,
    reveal: str = "earliest",
    configs: dict[str, dict[str, Any]] | None = None,
    baseline: str | None = "popularity",
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate models on one protocol; returns the JSON-ready result document.

    ``reveal`` (cold-user): which K interactions a test user reveals, "earliest" by time or
    "random". Without ``shots``, cold-user runs the default K (0, 1, 3, 5, 10, 20) that leave
    some test user an interaction to predict; those left out are listed in
    ``settings["shots_left_out"]`` (a K asked for that no test user reaches is an error).
    Without ``models``, a default model the data cannot run (popularity-segment without an
    ``age`` user field) is left out, and why is in ``settings["models_left_out"]``.
    Ranking protocols keep each model's per-query values of the headline metric
    (``"<headline>/per_user"``) and, when ``baseline`` is among the models, add each model's
    gain over it with a paired bootstrap CI (`add_gains`).
    """
    defaults = models is None
    models = check_request(protocol, models, configs, shots, reveal, baseline)
    configs = configs or {}
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    models, models_left_out = fit_to_data(models, data, configs, defaults)
    results: dict[str, ResultRow] = {m: {} for m in models}
    settings: dict[str, Any] = {}
    tasks: list[tuple[str, int, int]] = []  # tallrec: (model, K, seed) of each run

    if protocol == "tallrec":
        ks = list(shots or TALLREC_SHOTS)
        tallrec = tallrec_split(data)
        n_train = len(tallrec.train)
        # every K checked before anything trains (K = 256 failed after K = 16 and 64 had trained)
        too_many = [k for k in ks if not 0 < k <= n_train]
        draws = [seed + s for s in TALLREC_SEEDS]  # the K samples' draws (the split is fixed)
        settings = {
            "seeds": draws,
            "n_test": len(tallrec.test),
            "n_test_users": len(np.unique(tallrec.test.users)),
            "n_train": n_train,
            "split_fingerprint": split_fingerprint(
                *(np.asarray(v) for part in (tallrec.train, tallrec.test) for v in vars(part).values())
            ),
        }
        if too_many and not shots and len(too_many) < len(ks):
            # small data: the default K it has too few samples for are left out (and recorded)
            ks = [k for k in ks if k not in too_many]
            settings["shots_left_out"] = too_many
        elif too_many:
            raise ConfigError(
                with_fix(
                    f"K = {too_many[0]}: tallrec draws K of the {n_train} training samples this "
                    "data gives (80% of its last 10,000 samples; a sample is an interaction after "
                    "a user's first 10)",
                    f"choose K from 1 to {n_train} with --shots (shots= in Python)",
                )
            )
        settings = {"shots": ks, **settings}
        ml1m_likes = None
        if any(m.endswith("@movielens-1m") for m in models):  # before any model trains: fail early
            ml1m_likes = _movielens_1m_likes(data)
            settings["movielens_1m_interactions"] = ml1m_likes.n_interactions
            settings["movielens_1m_fingerprint"] = ml1m_likes.fingerprint()
        tasks = [(m, k, s) for m in models for k in ks for s in draws]
    elif protocol == "cold-user":
        ks = list(shots if shots is not None else COLD_USER_SHOTS)
        settings = {"shots": ks, "reveal": reveal}
        if reveal == "earliest" and not data.timed:  # (the rows' order stood for time, without a word)
            settings["reveal_note"] = (
                "the data has no timestamps, so 'earliest' reveals each test user's first rows as "
                "written; --reveal random draws them at random"
            )

    # on stderr: stdout carries the table alone (a transient bar leaves a blank line there)
    with (
        Progress(disable=not progress, transient=True, console=Console(stderr=True)) as bar,
        progress_lines(bar.console) if progress else nullcontext(),
    ):
        job = bar.add_task(
            f"benchmark {protocol}", total=len(tasks) if protocol == "tallrec" else len(models)
        )
        quiet_bar = progress and not bar.console.is_terminal  # a log shows no bar: a line a task

        def stage(what: str) -> None:
            bar.update(job, description=what)
            if quiet_bar:  # (a cold-user benchmark into a log was 8 minutes of nothing)
                bar.console.print(f"{what} ...", markup=False, highlight=False)

        if protocol == "warm":
            split = warm_split(data, seed)
            settings["n_test_users"] = len(split.test)
            settings["test_train_ratio"] = split.test.targets.nnz / max(split.train.n_interactions, 1)
            settings["split_fingerprint"] = split_fingerprint(split.test)
            settings["train_fingerprint"] = train_fingerprint(split.train)
            for m in models:
                stage(f"{protocol}: {m}")
                model, secs = _timed_fit(_factory(m, configs), split.train)
                rep = evaluate_ranking(model, split.test, split.train, seed=seed)
                results[m] = {**rep.as_dict(), "train_seconds": secs, **_per_user(protocol, rep)}
                bar.advance(job)
        elif protocol == "cold-item":
            split = cold_item_split(data, seed)
            cold_items = split.cold_items
            if cold_items is None:  # (`cold_item_split` always names them)
                raise ValueError("a cold-item split without its cold items")
            settings = {"n_cold_items": int(len(cold_items)), "n_test_users": len(split.test)}
            trained_items = int((split.train.item_counts() > 0).sum())
            settings["test_train_ratio"] = len(cold_items) / max(trained_items, 1)
            settings["split_fingerprint"] = split_fingerprint(split.test, cold_items)
            settings["train_fingerprint"] = train_fingerprint(split.train)
            for m in models:
                stage(f"{protocol}: {m}")
                model, secs = _timed_fit(_factory(m, configs), split.train)
                rep = evaluate_ranking(model, split.test, split.train, seed=seed)
                only = evaluate_ranking(model, split.test, split.train, seed=seed, only_items=cold_items)
                results[m] = {
                    **rep.as_dict(),
                    **{f"cold_only/{k}": v for k, v in only.as_dict(with_ci=False).items()},
                    "train_seconds": secs,
                    **_per_user(protocol, rep),
                }
                bar.advance(job)
        elif protocol == "cold-user":
            rnd = reveal == "random"
            # (empty ones too: a default K no test user reaches is left out below)
            made = {k: _cold_user_split(data, shots=k, seed=seed, random_shots=rnd) for k in ks}
            splits = {k: split for k, (split, _) in made.items()}
            empty = [k for k, s in splits.items() if not len(s.test)]
            # the most interactions of a test user (held-out ones; it quoted every user's, so
            # a K it allowed could find no test user), as the split counts it (where every K
            # left none, it quoted the smallest K as the most: "--shots 900: the most is 900")
            most = max(m for _, m in made.values())
            settings["most_test_user_interactions"] = most
            if empty and shots is None and len(empty) < len(ks):
                # small data (e.g. users with 3-12 interactions): the default K no test user
                # reaches are left out (and recorded); K values asked for are an error
                splits = {k: s for k, s in splits.items() if k not in empty}
                ks = settings["shots"] = list(splits)
                settings["shots_left_out"] = empty
                empty = []
            first = splits[ks[0]]
            settings["n_test_users"] = {f"K{k}": len(s.test) for k, s in splits.items()}
            trained_users = int((first.train.user_counts() > 0).sum())
            settings["test_train_ratio"] = len(first.test) / max(trained_users, 1)
            # one per K: runs of other --shots share the K they both have
            settings["split_fingerprint"] = {f"K{k}": split_fingerprint(s.test) for k, s in splits.items()}
            # (one training set for every K of a seed: the held-out users are the same)
            settings["train_fingerprint"] = train_fingerprint(first.train)
            if empty:
                raise too_few_to_reveal(empty[0], most)
            for m in models:
                stage(f"{protocol}: {m}")
                # The training users are the same for every K: fit once, evaluate each K.
                model, secs = _timed_fit(_factory(m, configs, reveal), first.train)
                row: ResultRow = {"train_seconds": secs}
                for k, k_split in splits.items():
                    rep = evaluate_ranking(model, k_split.test, k_split.train, seed=seed)
                    row.update({f"K{k}/{key}": v for key, v in rep.as_dict().items()})
                    row.update(_per_user(protocol, rep, k))
                row["adapt_ms_k5"] = adapt_latency_ms(model, first.test, 5)
                results[m] = row
                bar.advance(job)
        else:
            acc: dict[tuple[str, int], list[dict[str, float]]] = {}
            train_seconds: dict[str, float] = {}  # per model, over its fits
            catalogue = tallrec.catalogue_dataset()
            settings["catalogue_interactions"] = catalogue.n_interactions
            cached: dict[str, tuple[Report, float]] = {}
            scores: dict[tuple[str, int], list[np.ndarray]] = {}
            for m, k, s in tasks:
                stage(f"{protocol}: {m} K={k} seed={s}")
                base, _, variant = m.partition("@")
                if variant == "catalogue":
                    # trained on other users' interactions only: the K samples add nothing
                    if m not in cached:
                        model, secs = _timed_fit(_factory(base, configs), catalogue)
                        cached[m] = (evaluate_tallrec(model, tallrec.test, seed=seed), secs)
                    else:  # fitted once: its seconds count once in the total
                        cached[m] = (cached[m][0], 0.0)
                    report, secs = cached[m]
                else:
                    train = tallrec.train_dataset(tallrec.shots(k, s))
                    if variant == "movielens-1m":
                        if ml1m_likes is None:  # (loaded above whenever a model asks for it)
                            raise ValueError(f"{m}: the MovieLens-1M likes were not loaded")
                        train = pool_users(train, ml1m_likes, prefix="movielens-1m:")
                    model, secs = _timed_fit(_factory(base, configs), train)
                    report = evaluate_tallrec(model, tallrec.test, seed=seed)
                acc.setdefault((m, k), []).append({**report.values, "train_seconds": secs})
                scores.setdefault((m, k), []).append(report.per_user["scores"])
                bar.advance(job)
            for (m, k), runs in acc.items():
                aucs = np.array([r["auc"] for r in runs])
                results[m][f"K{k}/auc"] = float(aucs.mean())
                results[m][f"K{k}/auc_std"] = float(aucs.std())
                # over the test users (ML-100K's 1,000 samples come from 16), of the draws' mean
                t = tallrec.test
                lo, hi = M.auc_ci(t.labels, np.stack(scores[(m, k)]), t.users, seed=seed)
                results[m][f"K{k}/auc_ci_low"], results[m][f"K{k}/auc_ci_high"] = lo, hi
                results[m][f"K{k}/score_seconds"] = float(np.mean([r["score_seconds"] for r in runs]))
                # a total over its fits (K and draws); a model fitted once counts once
                train_seconds[m] = train_seconds.get(m, 0.0) + float(sum(r["train_seconds"] for r in runs))
                results[m]["train_seconds"] = train_seconds[m]

    if models_left_out:
        settings["models_left_out"] = models_left_out
    doc = {
        "protocol": protocol,
        "dataset": data.name,
        "data_fingerprint": data.fingerprint(),
        "fields_fingerprint": data.fields_fingerprint(),
        "seed": seed,
        "settings": settings,
        "machine": machine_info(),
        "models": results,
    }
    if configs:
        doc["configs"] = configs
    return add_gains(doc, baseline)


def check_baseline(baseline: str | None, models: Sequence[str]) -> None:
    """A baseline other than the default, popularity (whose gain column is simply left out when
    it is not run), must be among the models: a misspelt one would silently drop the gains."""
    if baseline not in (None, "popularity") and baseline not in models:
        raise ConfigError(
            f"baseline {baseline!r} is not among the models {list(models)}; add it or pass None"
        )


def _per_user(protocol: str, report, k: int | None = None) -> dict[str, list[float]]:
    """``{"<headline>/per_user": values}`` when this report (of history size ``k``) holds the
    protocol's headline metric, else nothing."""
    head = HEADLINE.get(protocol)
    if head is None:
        return {}
    want, _, metric = head.rpartition("/")
    if want != ("" if k is None else f"K{k}") or metric not in report.per_user:
        return {}
    return {f"{head}/per_user": [round(float(v), 6) for v in report.per_user[metric]]}


def add_gains(result: dict[str, Any], baseline: str | None = "popularity") -> dict[str, Any]:
    """Each model's relative gain over ``baseline`` on the headline metric of this one split,
    with a 95% CI from a paired bootstrap over the test queries (the same resampled users score
    both models), added in place as ``"<headline>_gain"`` and its ``_ci_low`` / ``_ci_high``.

    One split's test users are few (189 on ML-100K cold-user), so this CI is wide; `run_seeds`
    measures the same gain over split seeds. Nothing is added without the baseline's per-query
    values.
    """
    head = HEADLINE.get(result["protocol"])
    key = f"{head}/per_user"
    rows = result["models"]
    result.pop("no_gains", None)  # (of the rows before, where rows were replaced)
    if baseline is None or head is None or baseline not in rows:
        return result
    if head not in rows[baseline]:  # cold-user without K = 5: the column vanished without a word
        result["no_gains"] = _no_gains(result["protocol"], baseline, head, scores_zero=False)
        return result
    if key not in rows[baseline]:  # (a result written before the per-query values were kept)
        return result
    base = np.asarray(rows[baseline][key])
    if base.mean() <= 0:  # (the gain column vanished without a word)
        result["no_gains"] = _no_gains(result["protocol"], baseline, head, scores_zero=True)
        return result
    for row in rows.values():
        if key in row:
            values = np.asarray(row[key])
            lo, hi = M.bootstrap_gain_ci(values, base, seed=result["seed"])
            row[f"{head}_gain"] = float(values.mean() / base.mean() - 1.0)
            # None: no interval (the baseline scores 0 in too many resamples of few users)
            ci = (lo, hi) if np.isfinite([lo, hi]).all() else (None, None)
            row[f"{head}_gain_ci_low"], row[f"{head}_gain_ci_high"] = ci
    result["baseline"], result["headline"] = baseline, head
    return result


def _no_gains(protocol: str, baseline: str, head: str, *, scores_zero: bool, seeds: bool = False) -> str:
    """Why a table has no gain column over ``baseline``, and what to do."""
    if not scores_zero:
        return f"no gains over {baseline}: its headline metric {head} needs K = 5 among the shots (--shots)"
    why = " (an ID-only model cannot rank cold items)" if protocol == "cold-item" else ""
    where = " on some split seed" if seeds else " here"
    return (
        f"no gains over {baseline}: it scores 0 on {head}{where}{why}; choose another baseline (--baseline)"
    )


def _mean_ci(
    values: Sequence[float], level: float = 0.95, test_train_ratio: float | None = None
) -> dict[str, Any]:
    """Mean, sample sd and the t-interval of the mean (None with one value).

    With ``test_train_ratio`` (test over training set size), the interval has Nadeau and
    Bengio's correction for resampled splits (Machine Learning, 2003): the splits of different
    seeds share most of their training data, so their results are not independent, and the
    plain interval is too narrow; the variance of the mean is ``sd² (1/n + ratio)``, not
    ``sd² / n``."""
    from scipy.stats import t

    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "sd": None, "ci": None}
    sd = float(v.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, len(v) - 1)) * sd / np.sqrt(len(v))
    if test_train_ratio:
        half *= float(np.sqrt(1 + len(v) * test_train_ratio))
    return {"mean": mean, "sd": sd, "ci": [mean - half, mean + half]}


def _model_list(models: Sequence[str] | None, protocol: str) -> list[str]:
    """The model names to run (the protocol's defaults when none are given)."""
    if isinstance(models, str):
        raise ConfigError(f"models must be a list of model names, got {models!r}; e.g. [{models!r}]")
    return list(models or DEFAULT_MODELS.get(protocol, []))


def run_seeds(
    protocol: str,
    models: Sequence[str] | None = None,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    baseline: str | None = "popularity",
    **options: Any,
) -> dict[str, Any]:
    """`run_benchmark` once per split seed; returns every run and a summary over seeds.

    The summary holds, per model and metric, the mean over seeds with its sd and 95% t-interval
    (``"summary"``), and each model's relative gain over ``baseline`` on the protocol's headline
    metric: per seed, then its mean and t-interval (``"gain"``; paired by seed, so split-to-split
    swings that move every model alike cancel), and that interval corrected for splits that
    share most of their training data (``"ci_corrected"``, `_mean_ci`). tallrec has one fixed
    split and already averages over K-shot draws, so it is refused here.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose from {list(PROTOCOLS)}")
    if protocol == "tallrec":
        raise ConfigError(
            "tallrec has one fixed split and already averages over K-shot draws "
            f"{list(TALLREC_SEEDS)}; --seeds applies to warm, cold-user and cold-item"
        )
    if (
        isinstance(seeds, str | bytes)
        or not hasattr(seeds, "__iter__")
        or not all(is_whole_number(s) for s in seeds)
    ):
        raise ConfigError(f"seeds must be a list of whole numbers, got {seeds!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds must be distinct and at least one, got {seeds}")
    chosen = _model_list(models, protocol)
    check_baseline(baseline, chosen)
    if baseline not in chosen:  # the default, popularity, not run: no gains, as in one run
        baseline = None
    # the defaults stay defaults: those the data cannot run are left out, as in one run
    runs = [run_benchmark(protocol, models or None, seed=s, baseline=baseline, **options) for s in seeds]
    return combine_seeds(runs, baseline)


def combine_seeds(runs: Sequence[dict[str, Any]], baseline: str | None = "popularity") -> dict[str, Any]:
    """One-split results (`run_benchmark` documents) of distinct split seeds -> the `run_seeds`
    document: per model and metric the mean over seeds with its sd and 95% t-interval, and each
    model's gain over ``baseline`` on the headline metric, paired by seed.

    The runs must share protocol, dataset, reveal and config overrides. Models and metrics that
    some run lacks (e.g. a K only one run evaluated) are left out; a ``baseline`` not in every
    run, or scoring 0 on the headline metric in some run, gives no gains.
    """
    if not runs:
        raise ConfigError("no runs to combine")
    first = runs[0]
    for r in runs:
        if "models" not in r or "seed" not in r:
            raise ConfigError("combine_seeds takes one-split results (one seed each)")
        if r["protocol"] != first["protocol"]:
            raise ConfigError(f"runs differ in protocol: {first['protocol']!r} vs {r['protocol']!r}")
        check_same_data(first, r)
        reveals = first["settings"].get("reveal"), r["settings"].get("reveal")
        if reveals[0] != reveals[1]:
            raise ConfigError(f"runs differ in reveal: {reveals[0]!r} vs {reveals[1]!r}")
        if r.get("configs", {}) != first.get("configs", {}):
            raise ConfigError(
                f"runs differ in config overrides: {first.get('configs', {})} vs {r.get('configs', {})}"
            )
    if first["protocol"] == "tallrec":
        raise ConfigError("tallrec has one fixed split: there are no split seeds to combine")
    seeds = [int(r["seed"]) for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"each split seed may appear once, got {seeds}")
    models = [m for m in first["models"] if all(m in r["models"] for r in runs)]
    if not models:
        raise ConfigError("the runs have no model in common")
    missing = sorted({m for r in runs for m in r["models"]} - set(models))
    if missing:  # (they were dropped without a word)
        log.warning("left out of the combined table, not run on every seed: %s", ", ".join(missing))
    check_baseline(baseline, models)
    if baseline not in models:
        baseline = None
    summary: dict[str, dict[str, Any]] = {}
    for m in models:
        metrics = [k for k, v in first["models"][m].items() if isinstance(v, int | float)]
        summary[m] = {  # a value written as null (no value: NaN) in some run is left out
            k: _mean_ci([r["models"][m][k] for r in runs])
            for k in metrics
            if all(isinstance(r["models"][m].get(k), int | float) for r in runs)
        }
    gain: dict[str, Any] = {}
    ratios = [r["settings"].get("test_train_ratio") for r in runs]
    ratio = float(np.mean(ratios)) if all(x is not None for x in ratios) else None
    head = HEADLINE.get(first["protocol"])
    no_gains = None
    if head not in summary[models[0]]:  # e.g. cold-user without K = 5 among the shots
        if baseline and head:
            no_gains = _no_gains(first["protocol"], baseline, head, scores_zero=False)
        head = None
    base = np.array([r["models"][baseline][head] for r in runs]) if baseline and head else None
    # no gain where the baseline scores 0 on some seed (popularity on cold-item), as in `add_gains`
    if base is not None and not bool(np.all(base > 0)):
        no_gains = _no_gains(first["protocol"], str(baseline), str(head), scores_zero=True, seeds=True)
    clipped: list[str] = []
    if base is not None and bool(np.all(base > 0)):
        for m in models:
            per = np.array([r["models"][m][head] for r in runs]) / base - 1.0
            gain[m] = {"per_seed": per.tolist(), **_mean_ci(per)}
            if ratio is not None:
                gain[m]["ci_corrected"] = _mean_ci(per, test_train_ratio=ratio)["ci"]
            for key in ("ci", "ci_corrected"):  # no gain is below -100% (a score below 0)
                if gain[m].get(key) is not None and gain[m][key][0] < -1.0:
                    gain[m][key] = [-1.0, gain[m][key][1]]
                    clipped.append(m)
    settings = dict(first["settings"])
    if missing:
        settings["models_left_out_of_some_runs"] = missing
    if ratio is not None:
        settings["test_train_ratio"] = ratio
    if "shots" in settings:
        settings["shots"] = [k for k in settings["shots"] if all(k in r["settings"]["shots"] for r in runs)]
    left_out = sorted({k for r in runs for k in r["settings"].get("shots_left_out", [])})
    if left_out:
        settings["shots_left_out"] = left_out
    tops = [r["settings"].get("most_test_user_interactions") for r in runs]
    if all(isinstance(t, int) for t in tops):  # (of the seed whose test users had the fewest)
        settings["most_test_user_interactions"] = min(tops)
    for key in PER_SEED_SETTINGS:  # other splits, other users
        values = {str(r["seed"]): r["settings"].get(key) for r in runs}
        if any(v != settings.get(key) for v in values.values()):
            settings.pop(key, None)
            if all(v is not None for v in values.values()):
                settings[f"{key}_per_seed"] = values
            elif key in FINGERPRINTS and any(v is not None for v in values.values()):
                # (runs recorded before runs had one: the others keep theirs)
                settings[f"{key}_per_seed"] = {s: v for s, v in values.items() if v is not None}
    doc: dict[str, Any] = {
        "protocol": first["protocol"],
        "dataset": first["dataset"],
        **{k: first[k] for k in ("data_fingerprint", "fields_fingerprint") if k in first},
        "seeds": seeds,
        "settings": settings,
        "machine": first["machine"],
        "baseline": baseline,
        "headline": head,
        "summary": summary,
        "gain": gain,
        "runs": {str(r["seed"]): {m: r["models"][m] for m in models} for r in runs},
    }
    if first.get("configs"):
        doc["configs"] = first["configs"]
    if no_gains:
        doc["no_gains"] = no_gains
    if clipped:
        doc["gain_clipped"] = (
            f"a gain interval of {', '.join(dict.fromkeys(clipped))} reached below -100% (a score "
            "below 0, which no model has: the seeds' gains are too few or too spread for a t-interval) "
            "and is shown from -100%"
        )
    return doc


def check_same_data(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two results must come from the same data: same dataset name and, where both record one
    (results written before it was recorded have none), the same data fingerprint."""
    if a["dataset"] != b["dataset"]:
        raise ConfigError(f"runs differ in dataset: {a['dataset']!r} vs {b['dataset']!r}")
    fa, fb = a.get("data_fingerprint"), b.get("data_fingerprint")
    if fa is not None and fb is not None and fa != fb:
        raise ConfigError(
            f"runs were made on different data under the name {a['dataset']!r} "
            f"(data fingerprints {fa} vs {fb})"
        )
    fa, fb = a.get("fields_fingerprint"), b.get("fields_fingerprint")
    if fa is not None and fb is not None and fa != fb:  # other item text or user side info
        raise ConfigError(
            f"runs were made with different item or user fields under the name {a['dataset']!r} "
            f"(fields fingerprints {fa} vs {fb})"
        )


PER_SEED_SETTINGS = ("n_test_users", "split_fingerprint", "train_fingerprint")
FINGERPRINTS = ("split_fingerprint", "train_fingerprint")
"""A run's hashes of its split: the test side (what is asked and answered) and the training
interactions (which the validation draw shapes too: the test side alone vouched for a split
whose training set had changed)."""
"""Settings a split seed may change: a `run_seeds` document keeps them per seed where they differ."""


def train_fingerprint(train: Dataset) -> str:
    """A short hash of a split's training interactions (users, items, ratings, in order)."""
    inter = train.interactions
    return split_fingerprint(*(inter[c].to_numpy() for c in ("user", "item", "rating")))


def split_runs(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A benchmark document as its one-split runs: itself, or each seed of a `run_seeds` one."""
    need = ("protocol", "dataset", "settings", "machine")
    if (
        not isinstance(result, dict)
        or any(k not in result for k in need)
        or not ({"runs", "models"} & set(result))
    ):
        raise ConfigError("not a fewrec benchmark result (protocol, dataset, settings and runs expected)")
    if "runs" not in result:
        return [result]
    common = {k: result[k] for k in (*need, "data_fingerprint", "fields_fingerprint") if k in result}
    if result.get("configs"):
        common["configs"] = result["configs"]
    settings = result["settings"]
    per_seed = {k: settings[f"{k}_per_seed"] for k in PER_SEED_SETTINGS if f"{k}_per_seed" in settings}
    plain = {k: v for k, v in settings.items() if k.removesuffix("_per_seed") not in per_seed}
    return [
        {
            **common,
            "settings": {**plain, **{k: v[s] for k, v in per_seed.items() if s in v}},
            "seed": int(s),
            "models": models,
        }
        for s, models in result["runs"].items()
    ]


def machine_info() -> dict[str, Any]:
    """Where a benchmark ran: its timings depend on the CPU and on what else ran (the load), and
    the last digits of its scores on the CPU's BLAS kernels, and a near-tie of tuned weights may
    fall the other way (the seed-0 cold-user ensemble, same code: K5 NDCG@10 0.5328 recorded on
    an earlier machine, 0.5342 on an AMD EPYC)."""
    cpu = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu or platform.processor() or "unknown",
        "cpus": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def adapt_latency_ms(model: Recommender, evalset, k: int, repeats: int = 50) -> float:
    """Median milliseconds to turn one new user's K interactions, each a like, into scores over
    the whole catalogue (one query at a time, no retraining)."""
    from fewrec.models.query import QueryBatch

    # K interactions of the first test user (from their targets if the split revealed fewer), at
    # the data's like rating: a rating of 1 on a 1-5 scale is a dislike, and the models that read
    # ratings were timed on an empty profile
    items = np.r_[evalset.history[:1].indices, evalset.targets[:1].indices][:k]
    like = np.full(len(items), model.fitted.like_rating, np.float32)
    one = sp.csr_matrix((like, (np.zeros(len(items), int), items)), shape=(1, model.n_items))
    batch = QueryBatch(np.array([-1]), one)
    model.score_batch(batch)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.score_batch(batch)
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def table_metrics(result: dict[str, Any]) -> list[str]:
    """The table's columns: `TABLE_METRICS`, and on the protocols with several K one headline
    column per K the run evaluated (``settings["shots"]``): fixed K columns hid the K asked for
    (``--shots 3,10`` gave no accuracy column at all)."""
    protocol, shots = result["protocol"], result.get("settings", {}).get("shots")
    if not shots or protocol not in ("cold-user", "tallrec"):
        return list(TABLE_METRICS.get(protocol, []))
    if protocol == "tallrec":
        return [f"K{k}/auc" for k in shots] + ["train_seconds"]
    cols = []
    for k in shots:
        cols.append(f"K{k}/ndcg@10")
        if f"K{k}/ndcg@10" == HEADLINE["cold-user"]:
            cols.append(f"K{k}/recall@10")
    return [*cols, "adapt_ms_k5", "train_seconds"]


def markdown_table(result: dict[str, Any], metrics: Sequence[str] | None = None) -> str:
    """A markdown table of the chosen metrics (default: the protocol's headline metrics)."""
    metrics = list(metrics or table_metrics(result))
    if "summary" in result:
        return _seeds_table(result, metrics)
    rows = result["models"]
    available = [m for m in metrics if any(m in r for r in rows.values())]
    head = result.get("headline")
    gain = f"{head}_gain"
    has_gain = any(gain in r for r in rows.values())
    gain_col = [f"{head} gain over {result['baseline']} [95% CI]"] if has_gain else []
    lines = [
        "| model | " + " | ".join(available + gain_col) + " |",
        "|---|" + "---|" * (len(available) + len(gain_col)),
    ]
    for name, r in rows.items():
        cells = []
        for m in available:
            v = r.get(m)
            cell = "" if v is None else (f"{v:.2f}" if m.endswith("seconds") else f"{v:.4f}")
            lo, hi = r.get(f"{m}_ci_low"), r.get(f"{m}_ci_high")
            if m.endswith("/auc") and v is not None and lo is not None and hi is not None:
                cell += f" [{lo:.3f}, {hi:.3f}]"  # tallrec: over the test users
            cells.append(cell)
        if has_gain:
            lo, hi = r.get(gain + "_ci_low"), r.get(gain + "_ci_high")
            no_ci = lo is None or hi is None or not np.isfinite([lo, hi]).all()
            ci = "[no CI]" if no_ci else f"[{lo:+.1%}, {hi:+.1%}]"
            cells.append(f"{r[gain]:+.1%} {ci}" if gain in r else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + _counts_footer(result, available) + _notes(result)


#: Fewer test users than this behind a number: the table says its estimates are rough.
FEW_TEST_USERS = 20


def _test_counts(result: dict[str, Any], metrics: Sequence[str]) -> dict[str, list[int]]:
    """How many test users (tallrec: samples) each shown column rests on, per split seed:
    ``{"": [n]}`` (one set of users), or ``{"K0": [n, ...], ...}`` (cold-user, per K)."""
    settings = result.get("settings", {})
    if result["protocol"] == "tallrec":
        return {"": [settings["n_test"]]} if "n_test" in settings else {}
    per_seed = settings.get("n_test_users_per_seed")
    runs = list(per_seed.values()) if per_seed else [settings.get("n_test_users")]
    if any(n is None for n in runs):  # results written before the counts were recorded
        return {}
    if not isinstance(runs[0], dict):
        return {"": [int(n) for n in runs]}
    shown = {m.partition("/")[0] for m in metrics}
    return {k: [int(n[k]) for n in runs] for k in runs[0] if k in shown and all(k in n for n in runs)}


def _counts_footer(result: dict[str, Any], metrics: Sequence[str]) -> str:
    """A line of how many test users each column rests on, a note where they are few, and one
    that the K columns differ (the n was only in the JSON's settings)."""
    counts = _test_counts(result, metrics)
    if not counts:
        return ""
    what = "test samples" if result["protocol"] == "tallrec" else "test users"
    seeds = " (per split seed)" if any(len(set(v)) > 1 for v in counts.values()) else ""

    def n(values: list[int]) -> str:
        return str(values[0]) if len(set(values)) == 1 else f"{min(values)}-{max(values)}"

    lines = [f"{what}{seeds}: " + ", ".join(f"{k} {n(v)}".strip() for k, v in counts.items())]
    fewest = min(min(v) for v in counts.values())
    users = result.get("settings", {}).get("n_test_users")
    if result["protocol"] == "tallrec" and isinstance(users, int):  # the samples are not independent
        lines[0] += f", from {users} users (an AUC's [95% CI] resamples the users)"
        fewest, what = users, "test users"
    if fewest < FEW_TEST_USERS:
        what = what.removesuffix("s") if fewest == 1 else what  # ("1 test users")
        intervals = "there is no interval" if fewest == 1 else "they and their intervals are rough"
        lines.append(
            f"Note: {fewest} {what} behind some numbers (under {FEW_TEST_USERS}): {intervals}; a "
            "few more or fewer can move them a lot."
        )
    # each K scores a user's items left after the K revealed: the columns' targets differ even
    # where their users do not (popularity, which reads no history, fell from K0 to K5)
    if len(counts) > 1:
        users = (
            "test users (revealing K needs users with more than K interactions) and "
            if len({tuple(v) for v in counts.values()}) > 1
            else ""
        )
        lines.append(
            f"Note: the K columns differ in their {users}targets (a user's items left after the K "
            "revealed): compare models within a column, not one model across columns."
        )
    return "\n\n" + "\n".join(lines)


def _seeds_table(result: dict[str, Any], metrics: Sequence[str]) -> str:
    """Mean over seeds, then the 95% t-interval's half-width; a gain column when there is one."""
    rows = result["summary"]
    available = [m for m in metrics if any(m in r for r in rows.values())]
    gain, head = result.get("gain") or {}, result.get("headline")
    corrected = any(g.get("ci_corrected") for g in gain.values())
    what = "mean [95% CI]; corrected: for overlapping splits" if corrected else "mean [95% CI]"
    gain_col = [f"{head} gain over {result['baseline']} (per seed; {what})"] if gain else []
    lines = [
        "| model | " + " | ".join(available + gain_col) + " |",
        "|---|" + "---|" * (len(available) + len(gain_col)),
    ]
    for name, r in rows.items():
        cells = []
        for m in available:
            v = r.get(m)
            fmt = "{:.2f}" if m.endswith("seconds") else "{:.4f}"
            if v is None:
                cells.append("")
            elif v["ci"] is None:
                cells.append(fmt.format(v["mean"]))
            else:
                half = (v["ci"][1] - v["ci"][0]) / 2
                cells.append(f"{fmt.format(v['mean'])} ± {fmt.format(half)}")
        if gain:
            g = gain[name]
            per = ", ".join(f"{x:+.1%}" for x in g["per_seed"])
            ci = "" if g["ci"] is None else f" [{g['ci'][0]:+.1%}, {g['ci'][1]:+.1%}]"
            fixed = g.get("ci_corrected")
            ci += "" if fixed is None else f"; corrected [{fixed[0]:+.1%}, {fixed[1]:+.1%}]"
            cells.append(f"{per}; **{g['mean']:+.1%}**{ci}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    cells_are = (
        "\n\nCells: mean ± the half-width of the 95% t-interval over the split seeds, not corrected "
        "for overlapping splits" + ("; the gain column's corrected interval is" if corrected else "") + "."
    )
    return "\n".join(lines) + cells_are + _counts_footer(result, available) + _notes(result)


def _notes(result: dict[str, Any]) -> str:
    """The table's closing notes: why there is no gain column (or where its interval is cut), how
    the K were revealed."""
    reveal = result.get("settings", {}).get("reveal_note")
    notes = [result.get("no_gains"), result.get("gain_clipped"), reveal]
    return "".join(f"\n\nNote: {n}" for n in notes if n)


def check_result_path(path: str | Path) -> Path:
    """``path`` as a `Path`, refused if it ends in .md (its own table would overwrite the JSON)
    or cannot be written (`check_writable`, for the JSON and its table); the CLI calls this
    before a run, so that a long run is not lost at the end."""
    path = Path(path).expanduser()
    if path.suffix.lower() == ".md":
        raise ConfigError(
            f"{path}: give the JSON path ({path.with_suffix('.json')}); the .md table is written "
            "beside it, and would overwrite it"
        )
    for target in (path, path.with_suffix(".md")):
        if target.is_dir():  # found only when the run was done, as a traceback
            raise ConfigError(
                f"{target} is a folder; give a file path for the result, e.g. {target / 'result.json'}"
            )
    if (above := file_in_the_way(path)) is not None:  # (a raw FileExistsError once the run was done)
        raise ConfigError(f"{path}: {above} is a file, not a folder; give a result path in a folder")
    # --output /dev/stdout: a pipe or a terminal failed once the run was done, and a file took the
    # JSON in place of the table, with the table written to /dev/stdout.md
    stream = re.fullmatch(r"/dev/(stdout|stderr|fd/\d+)|/proc/[^/]+/fd/\d+", path.absolute().as_posix())
    if stream or (path.exists() and not path.is_file()):
        raise ConfigError(
            f"{path} is not a file: the result is a JSON file with its .md table beside it (the "
            "table is printed on stdout too). Fix: give a path in a folder you can write to, or "
            "leave the output path out to have the table alone"
        )
    # a file already there is overwritten only where it is a result of ours (--output data.csv
    # replaced the interactions being benchmarked with the JSON, and notes.json a notes.md)
    table = path.with_suffix(".md")
    for target, ours in ((path, _is_result(path)), (table, _is_result(path) or _is_table(table))):
        if target.is_file() and not ours:
            raise ConfigError(
                f"{target} is there and is no benchmark result of fewrec's: writing the result "
                f"(a JSON file, and its table {table.name} beside it) would overwrite it. Fix: give "
                "a new path, e.g. results/run.json, or remove the file"
            )
    for target in (path, table):
        check_writable(target, "the result to")
    return path


def _is_result(path: Path) -> bool:
    """Whether ``path`` holds a benchmark result's JSON (`write_result`'s)."""
    try:
        with path.open("rb") as f:
            if f.read(1) != b"{":
                return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "protocol" in data


def _is_table(path: Path) -> bool:
    """Whether ``path`` holds a result's markdown table (its first line is `write_result`'s title)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            first = f.readline(500)
    except OSError:
        return False
    return re.match(r"# \S+ on \S+ \(", first) is not None


def check_writable(path: Path, what: str = "--output") -> None:
    """That a file can be written at ``path``, or a ConfigError "cannot write WHAT PATH (why)":
    it makes the folder and opens the file for appending, then removes what was not there (the
    file, and the folders made for it: a run refused for another argument left them behind),
    before a job of minutes or hours writes it at its end. (os.access said yes to root in any
    folder, and in /proc.)"""
    made = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        with open(path, "ab"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        above = file_in_the_way(path)  # ("File exists" for cmp.py/r.csv)
        why = f"{above} is a file, not a folder" if above is not None else exc.strerror or str(exc)
        raise ConfigError(
            f"cannot write {what} {path} ({why}). Fix: give a file in a folder you can write to"
        ) from None
    finally:
        for folder in made:  # innermost first; the writer makes them again
            with suppress(OSError):
                folder.rmdir()


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite number (nested in dicts and lists) as None."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def write_result(result: dict[str, Any], path: str | Path) -> Path:
    """Write the JSON result (and a markdown table beside it, with the suffix .md)."""
    path = check_result_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the folder of {path} ({exc.strerror or exc})") from None
    # strict JSON: NaN and infinities (no value) as null; bare NaN is not JSON to most readers
    text = json.dumps(_json_safe(result), indent=2, sort_keys=False, allow_nan=False)
    # cold-user names its reveal (item-kNN's K5 gain was +19.5% on one table, -10.1% on another,
    # with nothing to say why)
    reveal = result["settings"].get("reveal") if result["protocol"] == "cold-user" else None
    revealed = f", {reveal} reveal" if reveal else ""
    if "seeds" in result:
        seeds = ", ".join(str(s) for s in result["seeds"])
        what = f"split seeds {seeds}{revealed}: mean ± 95% CI half-width"
        title = f"# {result['protocol']} on {result['dataset']} ({what})"
    else:
        draws = result["settings"].get("seeds") if result["protocol"] == "tallrec" else None
        of_draws = f": mean over K-shot draws {', '.join(map(str, draws))}" if draws else ""
        title = f"# {result['protocol']} on {result['dataset']} (seed {result['seed']}{revealed}{of_draws})"
    table = title + "\n\n" + markdown_table(result) + "\n"
    try:
        _replace_text(path, text)
        _replace_text(path.with_suffix(".md"), table)
    except OSError as exc:  # no room left, a folder made read-only meanwhile
        raise ConfigError(f"cannot write the result to {path} ({exc.strerror or exc})") from None
    return path


def _replace_text(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a run killed while writing had truncated the result
    it was replacing (hours of benchmark)."""
    path = path.resolve() if path.is_symlink() else path  # (a link to the result stays a link)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
