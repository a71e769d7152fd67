"""Ensembles: a score blend of several recommenders behind the same contract.

Each component's scores are standardised per query, then mixed with weights that depend on how
much the query reveals: one weight vector per shot count K. With ``tune`` the weights are
learned on warm users held out of the components' training, by simulating K-shot users
(earliest and random reveals, read as a new user's query is: a revealed rating at or below
`FitState.dislike_at` is a dislike, left out for the components that do not read ratings) and
maximising NDCG@10 by coordinate ascent. A query takes the weights of the shot count nearest
the number of items it reveals. The held-out users
are cross-fitted: every eligible user is held out once, in ``folds`` groups, so the weights rest
on all the training users rather than on a 10% sample (cold-user, ten split seeds, earliest K5:
from -0.8% [-7.0%, +5.4%] over popularity, worst seed -18.6%, to +1.6% [-1.4%, +4.6%], worst
-4.5%; random K5: +35.0% to +35.2%; fitting takes about 2.5x as long). Adding `kshot-ridge` to
the default components then lifted earliest K5 to +19.4% [+16.5%, +22.2%] (random unchanged).
Adding `transitions` (the items rated in the session after an item's) lifted the validation
users of split seeds 0-2 (earliest K5 0.5610 -> 0.5664, random 0.7000 -> 0.7024, re-ranked) but
not the test users of ten earliest-reveal split seeds: +0.0001 [-0.004, +0.004] re-ranked, the
blend alone +0.003 [-0.000, +0.006]; it is not a default component.
Known users (whose history is in the training data) get one more weight vector, tuned the same
way on a held-out share of the training interactions. The components are then refitted on all
the data.

Then (``rerank``, on by default), for new users who reveal K >= 2 items, LambdaRank
re-rankers learned on the same episodes re-order the blend's top 100 items, reading the
components' scores together with item statistics and the user's side info
(`fewrec.models.rerank`: cold-user K5 NDCG@10 over ten split seeds, earliest reveal 0.554 ->
0.561, random 0.689 -> 0.695; fitting takes about 1.3x as long). A query's free text is read
apart from them, its text match added after the re-ranking. Known users and queries of one item
keep the blend.

A component abstains on items it cannot score: a non-finite score or, for an ID-only model, an
item with no training interaction. Each item gets the weighted mean z-score of the components
that score it (or, if no weighted component does, their plain mean), so a text-only item is
ranked by the text models instead of sinking to the bottom. Its score then has the spread of
fewer components (a mean of several correlated z-scores spreads a little less), which favours
new items slightly. Tried and dropped: counting an abstaining component as z = 0 (new items
never reached a top list) and Stouffer's Z (correlated components inflate known items' scores,
so new items rarely reached one). Also tried on the cold-user random-reveal K5 validation
users of split seeds 0-2 (NDCG@10, default z-scores 0.6914): ranks as scores, -log(1 + rank),
0.6699; z-scores against the mean and spread of each query's top 200 scores, 0.6723; a finer
weight grid (12 values from 0 to 8, 3 rounds), 0.6891.

A query that reveals nothing (no history, no free text) is the exception: text models abstain
on untrained items there too, because their score is then a guess of the item's appeal from
its text alone. Without this, on cold-user split seed 2 those guesses topped side-info-only
lists (K = 0 NDCG@10 0.43 against popularity's 0.53; with it 0.555). Ranking untrained items
below all others for every query was tried as well: it dropped cold-item Recall@20 to 0,
because no tuning episode has a new item as its target, so tuning always weighs the text
models out.

Items added after fitting (`add_items`, as the service does on a PUT) are added by the text
components, on copies of them; the ID-only ones keep the items they were fitted on and abstain
on the new.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, NonNegativeFloat, field_validator, model_validator

from fewrec.adapt.distill import MIN_STUDENT_ITEMS
from fewrec.data.dataset import Dataset, Vocabulary, user_info_rows
from fewrec.data.splits import EvalSet, binary_union, rows_matrix
from fewrec.errors import ConfigError, split_fix, user_stacklevel, with_fix
from fewrec.models.base import (
    MODELS,
    REVEAL_MODES,
    FitState,
    ModelConfig,
    Recommender,
    check_shots,
    memory_budget,
    nearest_shot,
    register,
    reserving_memory,
    row_moments,
    standardise,
)
from fewrec.models.query import QueryBatch
from fewrec.models.rerank import (
    ItemTable,
    Reranker,
    UserSchema,
    candidate_features,
    numeric_columns,
    top_candidates,
)

log = logging.getLogger(__name__)

MIN_TUNING_USERS = 8
"""Fewest held-out users the weights are tuned on (tuning needs twice as many eligible users)."""

DEFAULT_COMPONENTS: dict[str, dict] = {
    # its prior for an empty query (fewshot alone takes popularity there, which ranks better
    # on MovieLens): the ensemble weighs popularity itself, per history size, and every figure
    # of it was measured with this prior (fitted before 2026-12-07 (night), when fewshot had no choice)
    "fewshot": {"empty_queries": "prior"},
    "itemknn": {"neighbors": 1000},
    "dlae": {},
    # without its neighbourhood block: in the ensemble, whose item-kNN and DLAE already bring
    # the neighbourhood, it lifted validation users little (earliest K5 0.561 -> 0.562, random
    # 0.700 -> 0.707) and left the test users of ten earliest split seeds level (+0.0013
    # [-0.002, +0.005]; `benchmarks/cold-user-earliest-seeds-with-neighbourhood.md`)
    "kshot-ridge": {"neighbourhood": 0.0},
    "popularity": {"segment_by": "auto"},
}

LARGE_SETTINGS: dict[str, dict] = {"fewshot": {"item_item": False}}
"""What a default component becomes on a catalogue past ``dense_items`` or too large for its
memory (`fitting_components`); one not named here is left out."""


TEXT_WEIGHT = 0.25
"""Default `EnsembleConfig.text_weight`: the largest of 0, 0.1, 0.25, 0.5, 0.75 and 1 whose
validation NDCG@10 (cold-user seed 0, random reveal, mean of K = 0 and 5) is within 2% of the
best, each cold user telling the truth in one sentence ("I love {g1} and {g2} films", their
most over-represented genres; `benchmarks/text_queries.md`, 2026-12-07). Best 0.1 (0.622); 0.25
0.613 (-1.4%; 0.615 without the text), 0.5 0.589 (-5.4%), 1 0.531. A stated genre does not help
predict which films a MovieLens user rates (popular ones, across genres), but users expect to be
heard: at 0.25 a sentence alone ("I love {g} films") puts 32% genre-{g} films in the top 10
(`fewshot` alone 72%, `content` 77%), and "... but no {g} films" 6%. On the test users 0.25 gives
K0 0.575 and K5 0.658 against 0.562 and 0.648 without the text."""


class EnsembleConfig(ModelConfig):
    components: dict[str, dict] = Field(default_factory=lambda: dict(DEFAULT_COMPONENTS))
    """Component model names and their config overrides."""
    tune: bool = True
    """Learn per-K weights on held-out training users (False: equal weights)."""
    shots: tuple[int, ...] = Field((0, 1, 3, 5, 10, 20), min_length=1)
    """Shot counts K (0 to 1,000) that get their own tuned weights (and, from
    ``rerank_min_shots`` up, re-rankers): episodes reveal K of a held-out user's items, at most
    all but one. A query takes the weights of the K nearest its history size on a log(1 + K)
    scale (a known user's, with ``warm``, the known-user weights). Each K adds tuning time and
    memory (see ``tuning_memory``)."""
    reveal: Literal["earliest", "random", "both"] = "both"
    """Which K items the tuning episodes reveal (match how new users arrive: a site's sign-ups
    reveal their first items). "both" serves either kind at a cost: on cold-user split seeds
    0-4 its K5 gain over popularity is 4 points below the matching reveal's (+14.4% against
    +18.2% earliest, +30.6% against +34.7% random; the benchmark tables use the matching one)."""
    holdout: float = Field(0.1, gt=0, lt=0.5)
    """Share of the users (and, for known-user weights, of the interactions) held out to tune on."""
    folds: int = Field(5, ge=1, le=20)
    """Tune the per-K weights on every eligible user, in this many folds (each fold's users are
    scored by components fitted without them); 1: on one ``holdout`` share of the users."""
    grid: tuple[NonNegativeFloat, ...] = Field((0.0, 0.25, 0.5, 1.0, 2.0, 4.0), min_length=1)  # (-1 passed)
    """Values each component's weight may take in the coordinate ascent that tunes the weights
    (per K and for known users), from equal weights of 1; 0 gives a component no say, save on
    items that no weighted component scores (see `blend`)."""
    rounds: int = Field(2, ge=1)
    """Passes of that coordinate ascent over the components. More: more weight vectors tried,
    a slower tuning."""
    warm: bool = True
    """With ``tune``, also learn one weight vector for known users (whose history is in the
    training data) on a random ``holdout`` share of the training interactions; new users keep
    the per-K weights."""
    rerank: bool = True
    """With ``tune``, also learn LambdaRank re-rankers (LightGBM) of the blend's top items for
    new users, on the same episodes (see `fewrec.models.rerank`). It lifts cold-user K5
    NDCG@10 by 0.006-0.007 (ten split seeds of each reveal: earliest up on nine, random on all
    ten) and makes fitting about 1.3x as long (mean fit of the ten seeds on a 2-core AMD EPYC,
    122 -> 164 s earliest, 127 -> 167 s random; with the top 200 items, until 2026-12-06, 1.6-2x);
    False keeps the blend alone (benchmark name ``ensemble-blend``). It is off where it cannot
    be learned (no ``tune``, or no shot count of ``rerank_min_shots`` items), and asking for it
    there is an error."""
    text_weight: float = Field(TEXT_WEIGHT, ge=0)
    """For a query with free text: its text match (the mean of the text-reading components'
    standardised `text_match`), times this and the spread of the query's blended scores, is
    added to the blend. The weights are tuned on episodes without text, where the one text
    component is one voice of five: without this a sentence barely moved the list (see
    `TEXT_WEIGHT`)."""
    dense_items: int = Field(10_000, ge=1)
    """With the default components, on a catalogue of more items than this the components that
    hold dense items x items matrices adapt or are left out (`fitting_components`): their fits
    grow as items cubed (a solve of 6,000 items takes 7 s here, so 20,000 items take about 4
    minutes, and the ensemble fits each component seven times). Any other set of components is
    used as given."""
    tuning_memory: float = Field(6e9, gt=0)
    """Most bytes the tuning episodes' scores may take. A user costs items x components x
    reveals x (4 x shot counts + 5) bytes (1.1 MB on MovieLens-1M, whose 4,832 training users of
    a cold-user split take 5.2 GB; 30,000 users of 20,000 items would take 100 GB). Past it, or
    past a quarter of the machine's memory, the weights and re-rankers are tuned on a random
    sample of the eligible users. The components' memory checks leave this much free."""
    rerank_depth: int = Field(100, ge=10)
    """How many of the blend's best items the re-ranker re-orders (and is trained on, per
    tuning episode). 100 rather than 200 since 2026-12-06: it halves the re-rankers' share of the
    fit and was level on the test users of ten split seeds of each reveal
    (`fewrec.models.rerank`)."""
    rerank_trees: int = Field(300, ge=10)
    """Boosting rounds of the re-ranker."""
    untrained_items: Literal["calibrated", "text"] = "calibrated"
    """How a known user's list places items only some components score (items no one has
    interacted with: the ID-only components abstain). ``"calibrated"``: where a least-squares
    line from those components' blend to the full blend puts them, fitted on the user's fully
    scored items (`calibrate_partial`); ``"text"``: at their text components' blend, which
    averages fewer scores and so reaches further out than the full blend of known items.
    On a catalogue of new and known films where every rating is a target with the same chance
    (`benchmarks/new_items.py`, split seeds 0 and 1), "calibrated" found more in every band of
    history length: Recall@20 0.3146 -> 0.3179 and 0.3121 -> 0.3169, with new films 4.6% and
    3.2% of the top 20 (9.2% and 8.2% with "text") for 20% and 16% of the targets. Where every
    target is a new item (the cold-item protocol) "text" finds more of them
    among all items (Recall@20 0.0936 against 0.0706 on split seed 0; their order among
    themselves is the same): use it to push new items into known users' lists. The line is
    drawn when a list is scored; the weights, known users' too, were tuned with the text blend.
    New users keep the text blend, as the measurements are of known users."""
    progress: bool = False
    """A progress bar over the fitting stages (each component fit, the re-rankers)."""
    rerank_min_shots: int = Field(2, ge=1)
    """Re-rankers only for shot counts of at least this many items; queries whose nearest shot
    count has none keep the blend. At K = 1 the re-ranker did not help on validation users
    (split seeds 0-2, earliest reveal: -0.001 NDCG@10 on average; random: -0.003) and lost
    on the test users of six earliest-reveal split seeds (-0.008)."""

    @model_validator(mode="before")
    @classmethod
    def _default_rerank(cls, data: object) -> object:
        """The re-ranker is on unless it cannot be: without ``tune``, or with no shot count of
        ``rerank_min_shots`` items. Only asking for it then is an error."""
        if not isinstance(data, dict) or "rerank" in data:
            return data
        try:
            shots = data.get("shots")
            few = shots is not None and max(int(k) for k in shots) < int(data.get("rerank_min_shots", 2))
        except (TypeError, ValueError):  # bad or empty shots: the field validation names them
            few = False
        if data.get("tune") is False or few:
            return {**data, "rerank": False}
        return data

    @field_validator("shots")
    @classmethod
    def _shots(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return check_shots(v, once=True)  # (a model saved with a size twice still loads)

    @field_validator("components")
    @classmethod
    def _components_known(cls, v: dict[str, dict]) -> dict[str, dict]:
        """Component names and their settings, checked when the config is made (they failed
        only once fit began, after the data had loaded; none at all crashed inside fit)."""
        if not v:
            raise ValueError("components must name at least one model, e.g. {'fewshot': {}, 'itemknn': {}}")
        if EnsembleRecommender.name in v:
            raise ValueError("an ensemble cannot contain itself")
        unknown = [n for n in v if n not in MODELS]
        if unknown:
            raise ValueError(
                f"unknown component(s) {unknown}; choose from {sorted(set(MODELS) - {'ensemble'})}"
            )
        for name, overrides in v.items():
            if not isinstance(overrides, dict):
                raise ValueError(f"component {name!r} takes a dict of settings, got {overrides!r}")
            MODELS[name].Config(**overrides)  # its ConfigError (a ValueError) names the setting
        if v == {**DEFAULT_COMPONENTS, "fewshot": {}}:
            # the default until 2026-12-07 (night), when fewshot had no empty_queries: a model
            # saved with it, refitted, had its components "as given", and fewshot ranked empty
            # queries by popularity, which the default ensemble's component does not
            return dict(DEFAULT_COMPONENTS)
        return v

    @model_validator(mode="after")
    def _rerank_needs_tuning(self) -> EnsembleConfig:
        if self.rerank and not self.tune:
            raise ValueError("rerank=True learns from the tuning episodes: it needs tune=True")
        if self.rerank and self.rerank_min_shots > max(self.shots):
            raise ValueError(
                f"rerank_min_shots={self.rerank_min_shots} leaves no shot count of "
                f"{tuple(self.shots)} to re-rank"
            )
        return self


def blend(weights: np.ndarray, components: Sequence[np.ndarray | Callable[[], np.ndarray]]) -> np.ndarray:
    """Per item, the weighted mean of the z-scores of the components that score it (NaN: the
    component abstains on that item).

    Where every component scores an item this is the weighted sum over a per-query constant, so
    the ranking is the weighted sum's. An item only some components score is judged by those
    alone; one that no weighted component scores (the tuned weights may leave out every text
    model, when the tuning users' targets are all known items) by the plain mean of the
    components that do. ``weights``: one weight per component, or one row per query. A component
    may be a callable that computes its z-scores: it is called only if needed (weighted, or for
    that fallback). Items no component scores get -inf.
    """
    comps = list(components)
    filled: dict[int, Filled] = {}

    def get(j: int) -> Filled:
        if j not in filled:
            comp = comps[j]
            filled[j] = Filled.of(comp() if callable(comp) else comp)
        return filled[j]

    return _blend_filled(np.asarray(weights, dtype=np.float64), get, len(comps))


#: Fewest fully scored items a query needs before its partly scored ones are calibrated.
MIN_CALIBRATION_ITEMS = 20


def calibrate_partial(
    blended: np.ndarray,
    w: np.ndarray,
    components: Sequence[np.ndarray | Callable[[], np.ndarray]],
    rows: np.ndarray,
) -> None:
    """In ``blended``'s ``rows``, put the items only some weighted components score where a
    least-squares line from those components' blend to the full blend puts them, fitted on the
    row's fully scored items (in place).

    The blend of an item every component scores is a weighted mean of several z-scores, which
    cancel one another in part; an item only the text components score (no one has interacted
    with it) gets the mean of fewer, which spreads wider, so its best reach past the best known
    items on text evidence alone. The line maps the text blend to the full blend it goes with
    (its slope is their correlation times the ratio of their spreads, at least 5% of that
    ratio so that the items keep their order among themselves). Items scored by the same set of
    components share one line, drawn from that set's blend. ``components`` as `blend`'s; only
    the weighted ones are read."""
    w = np.broadcast_to(w if w.ndim == 2 else w[None, :], (len(blended), len(components)))
    read = np.flatnonzero((w[rows] > 0).any(axis=0)).tolist()
    comps = {j: (c() if callable(c) else c) for j, c in enumerate(components) if j in read}
    for r in rows.tolist():
        weighted = w[r] > 0
        ok = np.zeros((len(components), blended.shape[1]), dtype=bool)
        for j in read:
            ok[j] = weighted[j] & np.isfinite(comps[j][r])
        n = ok.sum(axis=0)
        full = (n == weighted.sum()) & np.isfinite(blended[r])
        partial = np.flatnonzero((n > 0) & (n < weighted.sum()))
        if not len(partial) or full.sum() < MIN_CALIBRATION_ITEMS:
            continue
        sets, group = np.unique(ok[:, partial].T, axis=0, return_inverse=True)
        for g, scoring in enumerate(sets):
            subset = np.flatnonzero(scoring).tolist()
            cols = partial[group.ravel() == g]
            part = blend(w[r, subset], [comps[j][r : r + 1] for j in subset])[0]
            x, y = part[full], blended[r, full]
            sx, sy = x.std(), y.std()
            if sx <= 0 or sy <= 0:
                continue
            slope = max(float(np.mean((x - x.mean()) * (y - y.mean()))) / sx**2, 0.05 * sy / sx)
            blended[r, cols] = y.mean() + (part[cols] - x.mean()) * slope


@dataclass
class Filled:
    """A component's z-scores with abstentions as zeros, and where it does score (reused when
    one episode is blended with many weight vectors)."""

    z: np.ndarray
    ok: np.ndarray

    @classmethod
    def of(cls, z: np.ndarray) -> Filled:
        ok = np.isfinite(z)
        return cls(np.where(ok, z, 0.0), ok)


def _blend_filled(w: np.ndarray, get: Callable[[int], Filled], n_comp: int) -> np.ndarray:
    """`blend` of components given by ``get`` (called only for those it needs)."""
    weighted = (w if w.ndim == 2 else w[None, :]).any(axis=0)
    first = get(int(np.argmax(weighted))).z
    w = np.broadcast_to(w if w.ndim == 2 else w[None, :], (len(first), n_comp))
    num = np.zeros(first.shape)
    den = np.zeros(first.shape)
    for j in np.flatnonzero(weighted).tolist():
        c = get(j)
        num += w[:, j : j + 1] * c.z
        np.add(den, w[:, j : j + 1], out=den, where=c.ok)
    out = np.full(first.shape, -np.inf)
    np.divide(num, den, out=out, where=den > 0)
    if (den > 0).all():
        return out
    plain_num = np.zeros(first.shape)
    plain_den = np.zeros(first.shape)
    for j in range(n_comp):
        c = get(j)
        plain_num += c.z
        plain_den += c.ok
    fallback = (den == 0) & (plain_den > 0)
    out[fallback] = plain_num[fallback] / plain_den[fallback]
    return out


@register
class EnsembleRecommender(Recommender):
    """Per-K weighted blend of standardised component scores."""

    name = "ensemble"
    reads_ratings = True  # it passes each component the batch that component reads (`for_model`)
    Config = EnsembleConfig
    config: EnsembleConfig
    scores_new_items = True
    # its scoring rows cost ~1.7 ms on ML-100K (every component, then the re-ranker): the
    # service's reasons for a 118-item history took 215 ms, for the 20 most relevant 53 ms
    explain_history = 20

    @property
    def component_settings(self) -> dict[str, dict]:
        """The components this model is made of and their settings: ``config.components``, or
        after a fit with the default components, those it adapted to (`fitting_components`)."""
        return self.__dict__.get("components_") or self.config.components

    def _components(self, specs: dict[str, dict] | None = None) -> list[Recommender]:
        specs = self.component_settings if specs is None else specs
        unknown = [n for n in specs if n not in MODELS or n == self.name]
        if unknown:
            raise ConfigError(f"unknown ensemble component(s) {unknown}; choose from {sorted(MODELS)}")
        out = []
        for name, cfg in specs.items():
            cfg = {**cfg}
            cfg.setdefault("seed", self.config.seed)
            if "reveal" in MODELS[name].Config.model_fields:
                cfg.setdefault("reveal", self.config.reveal)
            out.append(MODELS[name](**cfg))
        return out

    def _too_large(self, data: Dataset, specs: dict[str, dict]) -> dict[str, str]:
        """The components of ``specs`` whose fit on ``data`` would not fit in memory, each with
        its problem."""
        too_large = {}
        for name, model in zip(specs, self._components(specs), strict=True):
            try:
                model.check_memory(data)
            except ConfigError as exc:
                too_large[name] = str(exc)
        return too_large

    def fitting_components(self, data: Dataset) -> tuple[dict[str, dict], list[str]]:
        """The components a fit on ``data`` uses, and what was changed to get them. The
        default ones (`DEFAULT_COMPONENTS`) adapt to a catalogue of more
        than ``dense_items`` items, or too large for memory: those that hold dense items x items
        matrices take their `LARGE_SETTINGS` (`fewshot` drops its item-item term) or are left
        out (`dlae`, `kshot-ridge`), so the default model still fits, in minutes; what is
        changed is said in a warning. On data with fewer than `MIN_STUDENT_ITEMS` items with
        interactions, too few for its text -> factors student, `fewshot` is left out. Any other
        set of components is used as given."""
        specs = dict(self.config.components)
        if specs != DEFAULT_COMPONENTS:  # as given (a saved default model's config names them too)
            return specs, []
        interacted = int((data.item_counts() > 0).sum())
        if interacted < MIN_STUDENT_ITEMS:  # the student has too few items to learn from
            del specs["fewshot"]
            return specs, ["fewshot left out"]
        many = data.n_items > self.config.dense_items
        # a component is dense if its memory check fails with no memory at all
        reserve = float("inf") if many else self._tuning_bytes(data, len(specs))
        with reserving_memory(reserve):
            too_large = self._too_large(data, specs)
            changes, left_out = [], []
            for name in too_large:
                smaller = {**specs[name], **LARGE_SETTINGS.get(name, {})}
                if smaller != specs[name] and not self._too_large(data, {name: smaller}):
                    specs[name] = smaller
                    settings = ", ".join(f"{k}={v}" for k, v in LARGE_SETTINGS[name].items())
                    changes.append(f"{name} with {settings}")
                else:
                    del specs[name]
                    left_out.append(name)
        if left_out:
            changes.append(f"{' and '.join(left_out)} left out")
        return specs, changes

    def _bytes_per_tuning_user(self, data: Dataset, n_comp: int) -> float:
        """What one tuning user's episode scores take (see ``tuning_memory``)."""
        cfg = self.config
        return float(data.n_items) * n_comp * len(REVEAL_MODES[cfg.reveal]) * (4 * len(cfg.shots) + 5)

    def most_tuning_users(self, data: Dataset, n_comp: int | None = None) -> int:
        """The most eligible users the weights are tuned on (``tuning_memory``)."""
        n_comp = len(self.component_settings) if n_comp is None else n_comp
        budget = min(self.config.tuning_memory, memory_budget() / 4)
        return max(2 * MIN_TUNING_USERS, int(budget / max(self._bytes_per_tuning_user(data, n_comp), 1.0)))

    def _tuning_bytes(self, data: Dataset, n_comp: int) -> float:
        """What the tuning scores will hold beside the components' fits."""
        if not self.config.tune:
            return 0.0
        eligible = int((data.user_counts() >= 5).sum())
        users = min(eligible, self.most_tuning_users(data, n_comp))
        return users * self._bytes_per_tuning_user(data, n_comp)

    def check_memory(self, data: Dataset) -> None:
        """Every component's, before any is fitted (a component too large for memory failed
        only once the components before it had been fitted, minutes in); all of those too large
        are named at once. The default components adapt instead (`fitting_components`)."""
        from fewrec.models.ease import EASE

        specs, _ = self.fitting_components(data)
        with reserving_memory(self._tuning_bytes(data, len(specs))):
            too_large = self._too_large(data, specs)
        if len(too_large) == 1:
            (name, problem), *_ = too_large.items()
            raise ConfigError(f"ensemble component {name}: {problem}; or leave {name} out of the components")
        if too_large:
            kept = [n for n in specs if n not in too_large]
            raise ConfigError(
                with_fix(
                    f"ensemble components {', '.join(too_large)} would not fit in memory: "
                    + "; ".join(split_fix(p)[0] for p in too_large.values()),
                    f"leave them out of the components (keeping {kept})" if kept else EASE.LARGE_FIX,
                )
            )

    def _fit(self, data: Dataset) -> None:
        from tqdm.auto import tqdm

        cfg = self.config
        specs, changes = self.fitting_components(data)
        if changes:
            interacted = int((data.item_counts() > 0).sum())
            if interacted < MIN_STUDENT_ITEMS:
                why = (
                    f"its text -> factors student learns from at least {MIN_STUDENT_ITEMS} items with "
                    f"interactions, and the data has {interacted}"
                )
            else:
                why = "their dense items x items matrices " + (
                    f"take many minutes to fit past dense_items={cfg.dense_items:,} items"
                    if data.n_items > cfg.dense_items
                    else "would not fit in memory"
                )
            warnings.warn(
                f"ensemble on {data.n_items:,} items: {'; '.join(changes)} ({why}); "
                "give components= to choose them yourself",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        self.components_ = specs
        n_comp = len(specs)
        weights = np.ones((len(cfg.shots), n_comp))
        self.warm_weights_ = None
        self.rerankers_: dict[int, Reranker] = {}
        self.item_numeric_ = numeric_columns(data.item_info)
        self.user_schema_ = UserSchema.learn(data.user_info)
        fits = 1 + (cfg.tune * (cfg.folds if cfg.folds > 1 else 1)) + (cfg.tune and cfg.warm)
        steps = fits * n_comp + cfg.tune * len(cfg.shots) + cfg.rerank  # the fits, the weights per K
        with tqdm(total=steps, desc="ensemble", disable=not cfg.progress) as bar:
            self._bar = bar
            try:
                if cfg.tune:
                    weights = self._tune(data)
                    if cfg.warm:
                        self.warm_weights_ = self._tune_warm(data)
                self.weights_ = weights
                self.models_ = self._fitted_components(data, "final fit")
            finally:
                del self._bar

    def _fitted_components(self, data: Dataset, stage: str) -> list[Recommender]:
        """The components fitted on ``data``, one progress step each."""
        out = []
        bar = getattr(self, "_bar", None)
        for name, model in zip(self.component_settings, self._components(), strict=True):
            if bar is not None:
                bar.set_postfix_str(f"{stage}: {name}")
            out.append(model.fit(data))
            if bar is not None:
                bar.update(1)
        return out

    def _tune(self, data: Dataset) -> np.ndarray:
        rng = np.random.default_rng(self.config.seed)
        counts = data.user_counts()
        users = np.flatnonzero(counts >= 5)
        if len(users) < 2 * MIN_TUNING_USERS:
            log.warning(
                "ensemble: %d users with 5+ interactions, too few to tune on (need %d); equal weights",
                len(users),
                2 * MIN_TUNING_USERS,
            )
            return np.ones((len(self.config.shots), len(self.component_settings)))
        most = self.most_tuning_users(data)
        if len(users) > most:  # their scores would not fit in tuning_memory
            log.info("ensemble: tuning on %d of the %d eligible users (tuning_memory)", most, len(users))
            users = np.sort(rng.choice(users, most, replace=False))
        out = np.ones((len(self.config.shots), len(self.component_settings)))
        per_shot: list[list] = [[] for _ in self.config.shots]
        tables: list[list[ItemTable | None]] = [[] for _ in self.config.shots]
        modes = REVEAL_MODES[self.config.reveal]
        for fold, held in enumerate(self._tuning_groups(users, rng), start=1):
            inter = data.interactions
            is_held = inter["user"].isin(held).to_numpy()
            fit_data = data.with_interactions(inter[~is_held])
            models = self._fitted_components(fit_data, f"tuning fold {fold}")
            trained = fit_data.item_counts() > 0
            table = (
                ItemTable.build(fit_data.matrix(), data.item_info, self.item_numeric_)
                if self.config.rerank
                else None
            )
            held_inter = inter[is_held].sort_values(["user", "timestamp"], kind="stable")
            info = data.user_info
            for s_i, k in enumerate(self.config.shots):
                for random in modes:
                    ep = _episodes(held_inter, held, k, random, data.n_items, rng)
                    # read as served: a revealed item rated low is a dislike (`score_batch`)
                    batch = QueryBatch.of_new_users(
                        ep.history, self.fitted.dislike_at, user_info_rows(info, ep.users)
                    )
                    comp = [self._standardised(m, batch, trained).astype(np.float32) for m in models]
                    # the re-ranker's features read the likes; every revealed item stays excluded
                    likes = replace(ep, history=batch.likes_only().history)
                    per_shot[s_i].append((comp, likes))
                    tables[s_i].append(table)
            # this fold's components go before the next fold's are fitted, not after: dlae and
            # kshot-ridge hold 2.4 GB each at 10,000 items
            del models
        bar = getattr(self, "_bar", None)
        for s_i, k in enumerate(self.config.shots):
            if bar is not None:  # minutes on a large catalogue: 2 per K at 20,000 items
                bar.set_postfix_str(f"weights for K={k}")
            out[s_i], best = self._ascend(per_shot[s_i])
            # (named: "weights [4. 0.25 0. 4. 0.]" left the reader to guess whose)
            named = ", ".join(f"{n} {w:g}" for n, w in zip(self.component_settings, out[s_i], strict=True))
            log.info("ensemble K=%d weights: %s (held-out NDCG@10 %.4f)", k, named, best)
            if bar is not None:
                bar.update(1)
        if self.config.rerank:
            if bar is not None:
                bar.set_postfix_str("re-rankers")
            self._fit_reranker(data, out, per_shot, tables)
            if bar is not None:
                bar.update(1)
        return out

    def _fit_reranker(self, data: Dataset, weights: np.ndarray, per_shot: list, tables: list) -> None:
        """One re-ranker per shot count K >= ``rerank_min_shots``, fitted on the tuning episodes
        of that K and of the shot counts next to it (for K = 5 of (0, 1, 3, 5, 10, 20): 3, 5
        and 10)."""
        shots = self.config.shots
        order = sorted((s_i for s_i, k in enumerate(shots) if k >= 1), key=lambda s_i: shots[s_i])
        near = {
            s_i: order[max(pos - 1, 0) : pos + 2]
            for pos, s_i in enumerate(order)
            if shots[s_i] >= self.config.rerank_min_shots
        }
        # a K too small for a re-ranker of its own may still train its neighbours'
        blocks: dict[int, list] = {s_i: [] for s_i in sorted({n for ns in near.values() for n in ns})}
        for s_i, block in blocks.items():
            for (comp, ep), table in zip(per_shot[s_i], tables[s_i], strict=True):
                blended = _masked(blend(weights[s_i], comp), ep.exclude)
                top = top_candidates(blended, self.config.rerank_depth)
                info = user_info_rows(data.user_info, ep.users)
                users = self.user_schema_.matrix(info, len(ep))
                feats = candidate_features(comp, blended, top, ep.history, table, users)
                q = np.repeat(np.arange(len(ep)), top.shape[1])
                labels = (np.asarray(ep.targets[q, top.ravel()]).ravel() != 0).astype(np.float32)
                block.append((feats, labels))
        for s_i, ns in near.items():
            reranker = Reranker(
                min(self.config.rerank_depth, data.n_items), self.config.rerank_trees, self.config.seed
            )
            if reranker.fit([b for n in ns for b in blocks[n]]):
                self.rerankers_[s_i] = reranker

    def _tuning_groups(self, users: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """The held-out user groups the weights are tuned on: with ``folds`` > 1 every eligible
        user, once, in that many groups (each scored by components fitted without it); else one
        random ``holdout`` share."""
        if self.config.folds > 1:
            perm = rng.permutation(users)
            return [np.sort(g) for g in np.array_split(perm, self.config.folds) if len(g)]
        size = max(MIN_TUNING_USERS, int(len(users) * self.config.holdout))
        return [np.sort(rng.choice(users, size=size, replace=False))]

    def _tune_warm(self, data: Dataset) -> np.ndarray:
        """Weights for known users: a random share of the interactions of users with at least 5
        is held out, the components are fitted on the rest, and the held-out items are the
        targets of those (now known) users."""
        rng = np.random.default_rng([self.config.seed, 2])
        inter = data.interactions
        users_col = inter["user"].to_numpy()
        hide = (data.user_counts()[users_col] >= 5) & (rng.random(len(inter)) < self.config.holdout)
        users = np.unique(users_col[hide])
        most = self.most_tuning_users(data)
        if len(users) > most:  # as in `_tune`; a known user's scores cost less than its episodes'
            users = np.sort(rng.choice(users, most, replace=False))
            hide &= np.isin(users_col, users)
        if len(users) < MIN_TUNING_USERS:
            log.warning("ensemble: too few users to tune the known-user weights on; equal weights")
            return np.ones(len(self.component_settings))
        fit_data = data.with_interactions(inter[~hide])
        models = self._fitted_components(fit_data, "known-user weights")
        hist = rows_matrix(inter[~hide], users, data.n_items)
        ep = EvalSet(
            users,
            np.ones(len(users), bool),
            hist,
            binary_union(hist),
            rows_matrix(inter[hide], users, data.n_items),
        )
        batch = QueryBatch(users, hist, user_info=user_info_rows(data.user_info, users))
        trained = fit_data.item_counts() > 0
        w, best = self._ascend([([self._standardised(m, batch, trained) for m in models], ep)])
        log.info("ensemble known-user weights %s (held-out NDCG@10 %.4f)", w, best)
        return w

    def _ascend(self, episodes: list) -> tuple[np.ndarray, float]:
        """Coordinate ascent over the grid from equal weights: the weights and their NDCG@10."""
        n_comp = len(episodes[0][0])
        episodes = [Prepared.of(comp, ep) for comp, ep in episodes]
        w = np.ones(n_comp)
        best = _blend_ndcg(w, episodes)
        # each weight vector is blended once: a trial of a coordinate's current value, or one of
        # round 1 met again, was blended anew (36 blends -> 25 in a test of three components;
        # the same weights, as a vector tried before can no longer beat the best)
        tried = {tuple(w): best}
        for _ in range(self.config.rounds):
            for j in range(n_comp):
                for g in self.config.grid:
                    trial = w.copy()
                    trial[j] = g
                    if not trial.any() or tuple(trial) in tried:
                        continue
                    val = tried[tuple(trial)] = _blend_ndcg(trial, episodes)
                    if val > best + 1e-6:
                        best, w = val, trial
        return w, best

    def _weights_for(self, batch: QueryBatch) -> np.ndarray:
        """One weight row per query: the known-user weights for users the model trained on,
        else the per-K weights of the nearest shot count."""
        w = self.weights_[nearest_shot(batch.history_sizes(), self.config.shots)]
        if self.warm_weights_ is not None:
            w[np.asarray(batch.users) >= 0] = self.warm_weights_
        return w

    def _standardised(
        self,
        model: Recommender,
        batch: QueryBatch,
        trained: np.ndarray | None = None,
        empty: np.ndarray | None = None,
    ) -> np.ndarray:
        """A component's z-scores, NaN where it abstains (see the module doc). ``trained``:
        items with training interactions (default: those of the fitted data); ``empty``: the
        queries that reveal nothing (default: read from ``batch``; the caller passes it when it
        scores the components without the queries' text). A component that knows fewer items
        (an ID-only one after `add_items`) reads the batch's first items and abstains on the
        rest."""
        batch = batch.for_model(model)  # a dislike is no like to it
        n, known = batch.history.shape[1], model.n_items
        emptied = np.zeros(len(batch), dtype=bool)
        if known < n:
            had = np.diff(batch.history.indptr) > 0
            batch = replace(
                batch,
                history=batch.history[:, :known],
                disliked=None if batch.disliked is None else batch.disliked[:, :known],
            )
            # a new user who revealed only added items: to the component an empty query, which
            # it would answer with popularity as if that were what the user told it
            emptied = had & (np.diff(batch.history.indptr) == 0) & (np.asarray(batch.users) < 0)
        z = standardise(model.score_batch(batch))
        if known < n:
            z = np.hstack([z, np.full((len(z), n - known), np.nan, dtype=z.dtype)])
        z[emptied] = np.nan
        untrained = ~(self.fitted.popularity > 0 if trained is None else trained)
        if not model.scores_new_items:
            z[:, untrained] = np.nan
        else:
            # A query that reveals nothing (no history, no text) gives a text model nothing to
            # match an untrained item against: its score there is a guess of the item's
            # appeal from its text alone, and the items with interactions carry evidence.
            empty = _reveals_nothing(batch) if empty is None else empty
            z[np.ix_(empty, untrained)] = np.nan
        return z

    @property
    def reads_text(self) -> bool:
        return any(m.reads_text for m in self.models_)

    def text_unread_note(self) -> str:
        # ("ensemble reads it" would contradict itself here: this one was fitted without a reader)
        names = ", ".join(self.component_settings)
        why = (
            "; fewshot, its text reader by default, was left out when it was trained (the warning "
            "then said why)"
            if self.config.components == DEFAULT_COMPONENTS and "fewshot" not in self.component_settings
            else ""
        )
        return (
            f"this ensemble does not read free text, so the text was ignored: none of its components "
            f"({names}) reads it{why}. content reads text on any data"
        )

    @property
    def adds_items(self) -> bool:
        """Whether a component scores new items from their text (the others abstain on them)."""
        return any(m.adds_items for m in getattr(self, "models_", ()))

    @property
    def rereads_item_text(self) -> bool:
        """Whether every component that reads item text re-reads it (one that cannot would go on
        scoring a changed item from its old text)."""
        readers = [m for m in getattr(self, "models_", ()) if m.reads_item_text]
        return bool(readers) and all(m.rereads_item_text for m in readers)

    @property
    def reads_item_text(self) -> bool:  # type: ignore[override]
        return any(m.reads_item_text for m in getattr(self, "models_", ()))

    def _add_items(self, start: int, info: pd.DataFrame) -> None:
        # the text components add them, on copies (a served model's components stay as they
        # are); the ID-only ones keep their items and abstain on the new (`_standardised`)
        ids = self.fitted.items.ids[start:]
        self.models_ = [self._changed(m, "add_items", ids, info) if m.adds_items else m for m in self.models_]

    def _update_items(self, idx: np.ndarray, info: pd.DataFrame) -> None:
        # ``info``: the items' whole rows, so each text component reads them as the catalogue has them
        ids = [self.fitted.items.id(int(i)) for i in idx]
        self.models_ = [
            self._changed(m, "update_items", ids, info) if m.rereads_item_text else m for m in self.models_
        ]

    @staticmethod
    def _changed(model: Recommender, change: str, ids: list[str], info: pd.DataFrame) -> Recommender:
        """A copy of a component with ``change`` (``"add_items"`` or ``"update_items"``) applied."""
        changed = model.copy_for_update()
        with warnings.catch_warnings():  # the ensemble has warned of stray fields already
            warnings.filterwarnings("ignore", message=r".* fields .* are not among the catalogue")
            getattr(changed, change)(ids, info.reset_index(drop=True))
        return changed

    @property
    def text_encoders(self) -> list[str]:
        return sorted({e for m in self.models_ for e in m.text_encoders})

    @property
    def side_levels(self) -> frozenset[tuple[str, str]]:
        own = self.user_schema_.side_levels if self.rerankers_ else frozenset()
        return own.union(*(m.side_levels for m in self.models_))

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        # the components read the batch they read (`for_model`). The weights and the re-ranker
        # are chosen by the number of items revealed, as in the tuning episodes (which read the
        # revealed dislikes as served); the re-ranker's features read the likes. The blend and
        # the re-ranker are tuned on queries without text and read none: the text is added
        # after them, as its own term (`_with_text`)
        full, batch = batch, replace(batch, texts=None)
        w = self._weights_for(batch)
        # a query with text only reveals something: the text term ranks untrained items for it
        empty = _reveals_nothing(full)
        # each component's z-scores computed once, where read
        comps = [
            functools.cache(functools.partial(self._standardised, m, batch, None, empty))
            for m in self.models_
        ]
        rows = self._reranked_rows(batch)
        blended = blend(w, comps)
        if self.config.untrained_items == "calibrated":  # known users (none is re-ranked)
            calibrate_partial(blended, w, comps, np.flatnonzero(np.asarray(batch.users) >= 0))
        if len(rows):  # the re-ranker reads every component's z-scores
            z = [c() for c in comps]
            blended[rows] = self._rerank(batch.take(rows), blended[rows], [c[rows] for c in z])
        return self._with_text(full, blended).astype(np.float32)

    def _with_text(self, batch: QueryBatch, blended: np.ndarray) -> np.ndarray:
        """The blend plus, for queries with free text, ``text_weight`` times their text match
        scaled to the spread of their blended scores (see `EnsembleConfig.text_weight`)."""
        rows = np.flatnonzero(~batch.without_text())
        if not len(rows) or self.config.text_weight == 0:
            return blended
        sub = batch.take(rows)
        matches = [z for z in (m.text_match(sub) for m in self.models_ if m.reads_text) if z is not None]
        if not matches:
            return blended
        _, spread = row_moments(blended[rows])
        spread = np.where(spread > 0, spread, 1.0)  # no finite score (NaN), or all equal
        blended[rows] += self.config.text_weight * spread * np.mean(matches, axis=0)
        return blended

    def _reranked_rows(self, batch: QueryBatch) -> np.ndarray:
        """Queries the re-ranker serves: new users who reveal items (what it was trained on; a
        query's free text is added after it); known users keep the blend."""
        if not self.rerankers_:
            return np.zeros(0, dtype=np.int64)
        n_hist = np.diff(batch.history.indptr)
        has = np.isin(nearest_shot(batch.history_sizes(), self.config.shots), list(self.rerankers_))
        return np.flatnonzero((np.asarray(batch.users) < 0) & (n_hist > 0) & has)

    def _rerank(self, batch: QueryBatch, blended: np.ndarray, z: list[np.ndarray]) -> np.ndarray:
        """Each query re-ranked by the re-ranker of the shot count nearest the number of items it
        reveals; its features read the likes (the history without the revealed dislikes)."""
        table = self._item_table()
        masked = _masked(blended, batch.history)
        users = self.user_schema_.matrix(batch.user_info, len(batch))
        shot = nearest_shot(batch.history_sizes(), self.config.shots)
        batch = batch.likes_only()
        out = blended.copy()
        for s_i, reranker in self.rerankers_.items():
            rows = np.flatnonzero(shot == s_i)
            if not len(rows):
                continue
            top = top_candidates(masked[rows], reranker.depth)
            feats = candidate_features(
                [c[rows] for c in z], masked[rows], top, batch.history[rows], table, users[rows]
            )
            movable = table.trained & np.isfinite(masked[rows])  # (not the query's own items)
            out[rows] = reranker.reorder(blended[rows], top, feats, movable)
        return out

    def _item_table(self) -> ItemTable:
        """Item features from the fitted data (rebuilt when items or their fields change)."""
        st = self.fitted
        key = (id(st.train), id(st.item_info))
        cached = getattr(self, "table_cache_", None)
        if cached is None or cached[0] != key:
            cached = (key, ItemTable.build(st.train, st.item_info, self.item_numeric_))
            self.table_cache_ = cached
        return cached[1]

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {"weights": self.weights_}
        if self.warm_weights_ is not None:
            out["warm_weights"] = self.warm_weights_
        schema = self.user_schema_
        out["item_numeric"] = np.array(self.item_numeric_, dtype=str)
        out["user_numeric"] = np.array(schema.numeric, dtype=str)
        out["user_categorical"] = np.array(schema.categorical, dtype=str)
        for j, levels in enumerate(schema.levels):
            out[f"user_levels.{j}"] = np.array(levels, dtype=str)
        for j, decades in enumerate(schema.decades):
            out[f"user_decades.{j}"] = np.array(decades, dtype=str)
        for s_i, reranker in self.rerankers_.items():
            out[f"reranker.{s_i}"] = reranker.to_bytes()
        for j, model in enumerate(self.models_):
            out.update({f"c{j}.{k}": v for k, v in model._get_arrays().items()})
        out["component_items"] = np.array([m.n_items for m in self.models_], dtype=np.int64)
        out["components"] = np.array(json.dumps(self.component_settings))
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"]
        self.warm_weights_ = arrays.get("warm_weights")
        self.item_numeric_ = [str(c) for c in arrays.get("item_numeric", [])]
        num = [str(c) for c in arrays.get("user_numeric", [])]
        cat = [str(c) for c in arrays.get("user_categorical", [])]
        self.user_schema_ = UserSchema(
            num,
            cat,
            [[str(v) for v in arrays[f"user_levels.{j}"]] for j in range(len(cat))],
            [[str(v) for v in arrays[f"user_decades.{j}"]] for j in range(len(num))],
        )
        c = self.config
        self.rerankers_ = {
            int(k.split(".")[1]): Reranker.from_bytes(
                v, min(c.rerank_depth, self.n_items), c.rerank_trees, c.seed
            )
            for k, v in arrays.items()
            if k.startswith("reranker.")
        }
        if "components" in arrays:  # (a model saved before 2026-12-05 has its config's)
            self.components_ = json.loads(str(arrays["components"]))
        self.models_ = self._components()
        # each its own state (`add_items` changes the ensemble's), of the items it knows: an
        # ID-only component does not know the items added after fitting
        known = arrays.get("component_items", np.full(len(self.models_), self.n_items))
        for j, model in enumerate(self.models_):
            prefix = f"c{j}."
            model.state_ = _first_items(self.fitted, int(known[j]))
            model._set_arrays({k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)})


def _first_items(state: FitState, n: int) -> FitState:
    """A copy of a fit state with its first ``n`` items (all of them: a shallow copy)."""
    if n == len(state.items):
        return copy.copy(state)
    return replace(
        state,
        items=Vocabulary(state.items.ids[:n]),
        train=state.train[:, :n],
        item_info=state.item_info.iloc[:n],
    )


def _masked(scores: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
    """A copy of ``scores`` with each row's ``exclude`` items (its revealed history) at -inf."""
    out = np.array(scores, dtype=np.float64)
    ex = exclude.tocoo()
    out[ex.row, ex.col] = -np.inf
    return out


def _reveals_nothing(batch: QueryBatch) -> np.ndarray:
    """Queries with no history and no free text."""
    return (np.diff(batch.history.indptr) == 0) & batch.without_text()


def _blend_ndcg(w: np.ndarray, episodes: list[Prepared]) -> float:
    """Mean NDCG@10 of the weighted blend over prepared episodes."""
    from fewrec.eval import metrics as M

    total, n = 0.0, 0
    for p in episodes:
        s = _blend_filled(w, p.filled.__getitem__, len(p.filled))
        s[p.exclude] = -np.inf
        hits = M.hits_matrix(M.top_k_matrix(s, 10), p.targets)
        total += M.ndcg_at_k(hits, p.n_targets, 10).sum()
        n += len(p.n_targets)
    return total / max(n, 1)


@dataclass
class Prepared:
    """A tuning episode ready to be blended with many weight vectors."""

    filled: list[Filled]
    exclude: tuple[np.ndarray, np.ndarray]
    targets: sp.csr_matrix
    n_targets: np.ndarray

    @classmethod
    def of(cls, comp: list[np.ndarray], ep: EvalSet) -> Prepared:
        ex = ep.exclude.tocoo()
        targets = ep.targets.tocsr()
        return cls([Filled.of(z) for z in comp], (ex.row, ex.col), targets, np.diff(targets.indptr))


def _episodes(
    inter: pd.DataFrame,
    users: np.ndarray,
    k: int,
    random: bool,
    n_items: int,
    rng: np.random.Generator,
) -> EvalSet:
    """K-shot episodes of held-out users: K revealed (earliest or random), the rest targets."""
    reveal = np.zeros(len(inter), dtype=bool)
    for _, idx in inter.groupby("user", sort=True).indices.items():
        order = rng.permutation(idx) if random else idx
        reveal[order[: min(k, len(idx) - 1)]] = True
    hist = rows_matrix(inter[reveal], users, n_items)
    targ = rows_matrix(inter[~reveal], users, n_items)
    return EvalSet(users, np.zeros(len(users), bool), hist, binary_union(hist), targ)
