"""The one recommender contract every model follows.

A model is configured by a typed, serialisable `ModelConfig`, learns with `fit(dataset)`, and
scores with `score_batch(QueryBatch) -> (n_queries x n_items)` over internal indices. The public
methods `score` and `recommend` take a `Query` with external ids only: a known user id, and/or
history items, and/or free text (cold start is part of the query, as in LensKit's `RecQuery`).
Top-k, filtering and re-ranking are separate steps on top of scores.

`Query` and `QueryBatch` are in `fewrec.models.query`, saving and loading in
`fewrec.models.saving`; the names other modules imported from here before they moved
(`Query`, `QueryBatch`, `load_model`, `is_saved_model`, ...) still can be.

A model of your own subclasses `Recommender`: a ``name``, a ``Config`` (a `ModelConfig`
subclass with defaults), `_fit` (``self.fitted`` is set before it runs) and `score_batch`;
decorate it with `register`. The attributes `_fit` sets whose names end in ``_`` are what a
refit clears and (numpy arrays and numbers) what `save` keeps; override `_get_arrays` and
`_set_arrays` for others. The class flags (`scores_new_items`, `reads_ratings`,
`reads_item_text`, `empty_is_popularity`, `fixed_reason`) say what it reads and how to explain
it. `fewrec.testing.check_model` runs the conformance checks on it.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import difflib
import functools
import logging
import os
import re
import sys
import unicodedata
import warnings
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NoReturn, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import ConfigDict, Field, model_validator

from fewrec.data.dataset import (
    Dataset,
    Vocabulary,
    _query_number,
    field_levels,
    item_texts,
    label_of,
    record_codes,
    side_info_levels,
)
from fewrec.errors import (
    ArgumentError,
    ConfigError,
    DataError,
    FewrecError,
    NotFittedError,
    Settings,
    user_stacklevel,
    with_fix,
)
from fewrec.models.presets import PRESETS
from fewrec.models.query import (
    Query,
    QueryBatch,
    _all_blank,
    _binned,
    _blank_like,
    _check_k,
    _check_queries,
    _id_list,
    _missing,
    _warn_stray_fields,
    dislike_mask,
    like_catalogue,
)
from fewrec.text.wishes import Titles, has_words, title_forms, unknown_names, words_of
from fewrec.topk import top_k_by

LONG_TEXT_WORDS = 150
"""A query text longer than this many words gets a note: it is read as one whole."""

MAX_SHOTS = 1000
"""The largest history size a model's ``shots`` may name (they are few-shot sizes: 10**6 had
a meta-learner allocate gigabytes)."""


REVEAL_MODES: dict[str, tuple[bool, ...]] = {"earliest": (False,), "random": (True,), "both": (False, True)}
"""The training episodes a ``reveal`` setting draws, each revealing a user's earliest K items
(False) or K at random (True)."""


#: True while a saved model's config is read back (`fewrec.models.saving`): a check added since
#: it was saved may let a saved value pass (DLAE's shots given twice, whose arrays follow them).
#: (pydantic's validation context does not reach validators of a class with its own __init__.)
LOADING_SAVED: contextvars.ContextVar[bool] = contextvars.ContextVar("fewrec_loading_saved", default=False)


def check_shots(value: tuple[int, ...], *, sort: bool = False, once: bool = False) -> tuple[int, ...]:
    """A config's ``shots``: one or more history sizes from 0 to `MAX_SHOTS` (an empty tuple
    crashed inside fit; a negative one took every query, as log1p(-3) is NaN); with ``sort``,
    sorted and each once; with ``once``, a size given twice is refused (DLAE built a model for
    each copy). (Without ``sort`` the order is kept: a saved model's per-shot weights follow it.)"""
    if not value or min(value) < 0 or max(value) > MAX_SHOTS:
        raise ValueError(f"shots must be one or more history sizes from 0 to {MAX_SHOTS}")
    if once and len(set(value)) < len(value) and not LOADING_SAVED.get():
        twice = sorted({k for k in value if list(value).count(k) > 1})
        raise ValueError(f"names {', '.join(map(str, twice))} more than once: give each history size once")
    return tuple(sorted(set(value))) if sort else tuple(value)


#: Words before a title that make it a film the user knows (`Recommender.referenced_items`); a
#: "like" or "love" after "would", "'d" or "wd" is a wish, not a known item ("I'd like Blue hose
#: for my garden" left the hose out as one the user knows).
WISH = "".join(
    rf"(?<!{would}\s{adverb})"
    for would in (r"\bwould", "'d", r"\bwd", r"\bid")  # ("Id like", the apostrophe left out)
    # ("I would really like Blue hose" still named the hose as known; Python's lookbehinds are
    # of one width each, so each adverb is its own)
    for adverb in ("", r"really\s", r"also\s", r"just\s", r"so\s", r"still\s", r"very\smuch\s", r"truly\s")
)
REFERENCE_CUE = (
    rf"(?:{WISH}like|liked|{WISH}love|loved|enjoyed|seen|watched|similar to|such as|as good as|fan of)"
)
#: An article between a cue and a title: "films like the Godfather" names "Godfather, The" too.
ARTICLE = r"(?:(?:the|a|an)\s+)?"
#: Most catalogue items whose titles a text is searched for (one pattern of them all).
MAX_TITLE_SEARCH = 20_000

WARN_NEAR_IDS = 20_000
"""Most catalogue ids a warning looks through for the id meant ("did you mean '050'?", ~25 ms
at this size): `score`'s and `recommend`'s candidates are warned of, not refused, and a loop
may meet the warning on every call."""

MAX_TWINS = 3
"""Most items of one whole record read as copies of one film (`Recommender._twins`): more are
a catalogue too thin to tell its items apart (a name and nothing else), not one film listed."""

LIKE_SHARE = 0.6
"""A rating counts as "liked" above this share of the model's top rating (4 and 5 of 5 stars):
what a reason cites as liked (a lower one that is no dislike as rated) and what `content`
weighs above nothing."""

DISLIKE_SHARE = 0.4
"""A query's rating at or below this share of the model's top rating (1 and 2 of 5 stars) is a
dislike: a model that does not read ratings leaves it out of the history (it only counts as
seen). A 3 of 5 is no dislike: on new MovieLens users who reveal five films, reading 3-star
ones as dislikes too found fewer of the films they went on to rate and of those they went on
to like (cold-user validation users, split seeds 0-2, the ensemble's NDCG@10 with 1-3 against
1-2 stars read as dislikes: films rated 0.520 against 0.539 and liked 0.358 against 0.372 for
the earliest five, 0.641 against 0.661 and 0.468 against 0.482 for five random ones;
`benchmarks/dislike_threshold.md`)."""


def row_moments(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and standard deviation over its finite entries, as (n, 1) float64
    columns; NaN for a row with no finite entry."""
    s = np.where(np.isfinite(scores), scores, np.nan).astype(np.float64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a row with no finite entry: all NaN
        return np.nanmean(s, axis=1, keepdims=True), np.nanstd(s, axis=1, keepdims=True)


def memory_budget() -> float:
    """Bytes a fit may hold at once: the machine's physical memory, or less where a container's
    cgroup or an address-space limit (``ulimit -v``) allows less."""
    limits = [float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))]
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            limits.append(float(Path(path).read_text().strip()))  # "max": no limit
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(float(soft))
    return min(limits)


_RESERVED = contextvars.ContextVar("fewrec_reserved_memory", default=0.0)


@contextlib.contextmanager
def reserving_memory(nbytes: float) -> Iterator[None]:
    """Within it, `available_memory` is ``nbytes`` less: what a caller will hold while the fits
    it checks run (the ensemble's tuning scores beside a component's items x items matrices)."""
    token = _RESERVED.set(_RESERVED.get() + max(float(nbytes), 0.0))
    try:
        yield
    finally:
        _RESERVED.reset(token)


def available_memory() -> float:
    """`memory_budget` less what the callers of `reserving_memory` hold."""
    return max(memory_budget() - _RESERVED.get(), 0.0)


SLOW_DENSE_ITEMS = 10_000
"""Past this many items a dense items x items solve takes many minutes (`check_item_pairs`
warns), as the ensemble's ``dense_items`` says."""


def check_item_pairs(
    model: str, n_items: int, bytes_per_pair: float, fix: str, limit: float | None = None
) -> None:
    """Refuse, before anything is allocated, a fit that holds dense items x items matrices
    (``bytes_per_pair`` bytes per pair of items at its peak) larger than ``limit`` bytes (default:
    `available_memory`): a `ConfigError` naming the memory needed, the most items that fit, and
    ``fix``, instead of a MemoryError or the kernel's OOM killer once the allocation is made."""
    budget = available_memory() if limit is None else min(limit, available_memory())
    need = bytes_per_pair * float(n_items) ** 2
    if need <= budget:
        if n_items > SLOW_DENSE_ITEMS:  # it fits, but silently took 10 minutes and 13 GB at 20,000
            logging.getLogger("fewrec").warning(
                "%s on %s items: dense items x items matrices of ~%.1f GB and a cubic solve, many "
                "minutes on a small CPU (EASE: ~10 minutes and 13 GB at 20,000 items on 2 cores). "
                "Fix to save them: %s",
                model,
                f"{n_items:,}",
                need / 1e9,
                fix,
            )
        return
    most = int((budget / bytes_per_pair) ** 0.5)
    raise ConfigError(
        with_fix(
            f"{model} would need {need / 1e9:,.0f} GB of memory for {n_items:,} items (dense items x "
            f"items matrices, {bytes_per_pair:g} bytes per pair of items); {budget / 1e9:,.0f} GB "
            f"allows at most {most:,} items",
            fix,
        )
    )


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per-row z-scores over finite entries; non-finite entries stay NaN (a component abstains)
    and a constant row becomes 0."""
    mu, sd = row_moments(scores)
    s = np.where(np.isfinite(scores), scores, np.nan).astype(np.float64)
    return (s - mu) / np.where(sd > 0, sd, 1.0)


class ModelConfig(Settings):
    """Base of every model's config: validated, JSON round-trippable, unknown keys rejected."""

    # None: the class name (a model config mixing in LoraOptions is no "LoRA options")
    settings_name: ClassVar[str | None] = None
    settings_fix = "see `fewrec models` for each model's settings and defaults"

    # attribute docstrings are the fields' descriptions (`fewrec models NAME`, help(), the JSON
    # schema): they had been read by the source alone
    # validate_default: a default of the wrong type (`shrink: float = "ten"`) is an error when the
    # model is made (it was taken as given, and the saved model refused to load "as saved by
    # another version")
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
        validate_default=True,
    )

    #: Settings' former names -> their names now: read as them, also from saved models (where
    #: the old and the new name are both given, the old one wins: it is an override of a config
    #: that has the new one).
    renamed: ClassVar[dict[str, str]] = {}
    #: Settings taken out because they had no effect -> why: a saved model's are dropped as it
    #: loads (`fewrec.models.saving`), and one given now is refused with the reason.
    retired: ClassVar[dict[str, str]] = {}

    seed: int = Field(0, ge=0)
    """Seed of the model's random draws, where it makes any (initial weights, sampled episodes)."""

    @model_validator(mode="before")
    @classmethod
    def _former_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and (gone := sorted(cls.retired.keys() & data.keys())):
            raise ValueError(f"{gone[0]} is no setting of this model: {cls.retired[gone[0]]}")
        if isinstance(data, dict) and cls.renamed.keys() & data.keys():
            data = dict(data)
            for old, new in cls.renamed.items():
                if old in data:
                    data[new] = data.pop(old)
        return data


MODELS: dict[str, type[Recommender]] = {}

BASE_ATTRIBUTES = frozenset(
    {
        "state_",
        "text_vocabulary_",
        "negation_titles_",
        "labels_",
        "catalogue_genres_",
        "genre_titles_",
        "twins_",
        "title_pattern_",
    }
)
"""Attributes ending in ``_`` that the base class keeps (the fit state and its caches per
catalogue: words, titles, labels, the explanations' genres): not a model's learned arrays."""


def register(cls: type[Recommender] | None = None, *, replace: bool = False) -> Any:
    """Class decorator: make a model available by its `name` (CLI, benchmark, load).

    A name another model holds is an error (registering a class named ``popularity`` silently
    replaced the built-in, benchmark baseline included) unless ``replace=True``
    (``@register(replace=True)``); a class defined again under its own name (a notebook cell
    run twice) replaces its former self."""
    if cls is None:
        return lambda c: register(c, replace=replace)
    if not isinstance(cls, type) or not issubclass(cls, Recommender):
        raise ConfigError(
            with_fix(
                f"register takes a Recommender subclass, got {getattr(cls, '__name__', cls)!r}",
                "subclass fewrec.models.Recommender",
            )
        )
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            with_fix(
                f"{cls.__name__} has no name to register it by",
                f"give the class a name attribute: name = {cls.__name__.lower()!r}",
            )
        )
    if not isinstance(cls.Config, type) or not issubclass(cls.Config, ModelConfig):  # (a saved
        # model then failed to load with a bare "AttributeError: renamed")
        raise ConfigError(
            with_fix(
                f"{name}'s Config is {getattr(cls.Config, '__name__', cls.Config)!r}, not a ModelConfig",
                f"subclass fewrec.models.ModelConfig: class {cls.__name__}Config(ModelConfig): ...",
            )
        )
    if name in PRESETS:  # (the preset silently won in `fewrec benchmark --models`)
        raise ConfigError(
            with_fix(
                f"the model name {name!r} is a benchmark preset ({PRESETS[name][0]} with {PRESETS[name][1]})",
                f"give {cls.__qualname__} another name",
            )
        )
    # (`--models` splits at commas, a variant at @, `--set MODEL.key=value` at the first dot)
    if re.search(r"[,@.\s]", name):
        like = re.sub(r"[,@.\s]+", "-", name.strip())
        raise ConfigError(
            with_fix(
                f"the model name {name!r} holds a comma, an @, a dot or a space, so `--models` or "
                "`--set` cannot name it",
                f"give {cls.__qualname__} a name without them, e.g. {like!r}",
            )
        )
    held = MODELS.get(name)
    same = held is not None and (held.__module__, held.__qualname__) == (cls.__module__, cls.__qualname__)
    if held is not None and not same and not replace:
        raise ConfigError(
            with_fix(
                f"the model name {name!r} is taken by {held.__module__}.{held.__qualname__}",
                f"give {cls.__qualname__} another name, or register it with register(replace=True)",
            )
        )
    MODELS[name] = cls
    return cls


COUNT_SCALE_FROM = 10
"""Ratings whose top is above this read as counts (plays, purchases) or other scores, not stars."""


UNIX_TIMES_FROM = 1e8
"""Ratings all above this (Unix seconds of March 1973) read as times: the rating and time
columns swapped."""


def star_scale(lo: float, hi: float) -> bool:
    """Whether ratings from ``lo`` to ``hi`` read as a star scale: more than one value, the top
    `COUNT_SCALE_FROM` or less. Implicit data, counts (plays, purchases) and other scores (top
    above it) do not: there an interaction is a like, whatever its size, and only 0 a dislike."""
    return lo < hi <= COUNT_SCALE_FROM


def zero_rated(ratings: pd.Series) -> str:
    """ "N interactions are rated 0" where a like/dislike log (1/0, or +1/-1) has no's, else ""."""
    nos = int((ratings <= 0).sum()) if len(ratings) else 0
    return f"{nos} interactions are rated {'0' if ratings.min() == 0 else '0 or less'}" if nos else ""


def rating_scale_notes(data: Dataset) -> list[str]:
    """How ``data``'s ratings read where a user may not expect it (`Recommender._fit_notes`,
    `fewrec benchmark`): scores on a scale above the star range (0-100: most of them high, as
    scores are, where plays are mostly low) read as counts, every interaction a like, a 10 of 100
    too; an unusual small scale reads as stars. Amounts made by ``repeats`` (`Dataset.counts`)
    are counts, said of neither."""
    ratings = data.interactions["rating"]
    if data.counts or not len(ratings):
        return []
    lo, hi = float(ratings.min()), float(ratings.max())
    if lo > UNIX_TIMES_FROM:  # (read as counts, with advice to divide them by 10)
        return [
            f"ratings {lo:.10g}-{hi:.10g} look like Unix times; did you swap the rating and time columns "
            "(--rating-col / --time-col; in Python Columns(rating=..., timestamp=...))? As they are, "
            "they read as counts: every interaction a like"
        ]
    if hi > COUNT_SCALE_FROM and lo >= 0 and float(ratings.median()) >= 0.25 * hi:
        return [
            f"ratings {lo:g}-{hi:g} read as counts (a top above {COUNT_SCALE_FROM}): every interaction is "
            "a like, a low one too, and only 0 a dislike. If they are scores on a scale, divide them to "
            "0-10 (e.g. rating / 10) so that low ones read as dislikes"
        ]
    if star_scale(lo, hi) and hi not in (1, 5, 10):
        return [
            f"ratings {lo:g}-{hi:g} read as a star scale: {DISLIKE_SHARE * hi:g} or less is a dislike "
            "in a query and never a reason. If they are counts (plays, purchases), load them as "
            "implicit data: load_interactions(..., columns=Columns(rating=None)) (CLI: --rating-col '')"
        ]
    return []


@dataclass
class FitState:
    """What every fitted model keeps: vocabularies, the training history matrix, and the
    log(1 + count) popularity derived from it."""

    users: Vocabulary
    items: Vocabulary
    train: sp.csr_matrix
    like_rating: float = 1.0
    item_info: pd.DataFrame = field(default_factory=pd.DataFrame)
    item_template: str | None = None
    user_info: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The training users' side info (a row per user of ``users``; no columns without any):
    a query naming a known user gets it, as the benchmarks give it to known users."""
    left_out: sp.csr_matrix | None = None
    """Users x items the model was not trained on but the users had (`Dataset.left_out`: rated
    below a minimum): never recommended back to them."""
    popularity: np.ndarray = field(init=False, repr=False)
    counts: bool = False
    """The ratings are amounts (`Dataset.counts`): never a star scale."""
    genre_sep: str = "|"
    """The data's genre separator (`Dataset.genre_sep`): new items' genres given as text are
    split on it (`add_items`, `update_items`)."""
    rating_range: tuple[float, float] = field(init=False, repr=False)
    """The lowest and highest training rating (equal for implicit data)."""

    @property
    def stars(self) -> bool:
        """Whether the ratings read as a star scale (`star_scale`; amounts never do)."""
        return star_scale(*self.rating_range) and not self.counts

    @property
    def dislike_at(self) -> float:
        """The highest query rating that reads as a dislike: `DISLIKE_SHARE` of the top rating
        on a star scale (2 of 5 stars); on implicit data, counts or other scores (top above 10)
        only 0, the rating of an explicit "no". Ratings whose top is 10 or less read as stars:
        small counts made by ``repeats`` (`Dataset.counts`) do not."""
        return DISLIKE_SHARE * self.like_rating if self.stars else 0.0

    def like_cut(self, share: float = LIKE_SHARE) -> float:
        """The rating above which an item counts as liked: ``share`` of the top rating on a star
        scale (above 3 of 5 stars at 0.6); on implicit data, counts or other scores any rating
        above 0. Read as a share of the top, on play counts of up to 5,000 an item was liked only
        past 3,000 plays: a like-share rule saw 59 likes among 39,281 plays."""
        return share * self.like_rating if self.stars else self.dislike_at

    @property
    def dislike_rating(self) -> float:
        """The rating a said dislike is given at: the bottom of the training scale, no higher
        than `dislike_at` (0 on implicit data)."""
        return min(self.dislike_at, self.rating_range[0])

    def __post_init__(self) -> None:
        counts = np.bincount(self.train.indices, minlength=len(self.items)).astype(np.float32)
        self.popularity = np.log1p(counts)
        data = self.train.data
        self.rating_range = (float(data.min()), float(data.max())) if len(data) else (1.0, 1.0)


class _class_only(classmethod):  # noqa: N801  (a decorator, named as classmethod is)
    """A classmethod that refuses a call on an instance: ``model.load(path)`` returned a new
    model and left ``model`` as it was, without a word (its next recommend answered from the
    old one, or, unfitted, said "call fit(dataset), or load_model(path)")."""

    def __get__(self, instance: object, owner: type | None = None):  # type: ignore[override]
        bound = super().__get__(instance, owner)
        if instance is None:
            return bound
        name, cls = self.__func__.__name__, type(instance).__name__

        def refuse(*args: object, **kwargs: object) -> NoReturn:
            raise ArgumentError(
                with_fix(
                    f"{name} makes a new model from a saved one and leaves this {cls} as it is",
                    f"model = {cls}.{name}(path), or fewrec.load_model(path)",
                )
            )

        return refuse


class Recommender(ABC):
    """Base class of all recommenders (see the module docstring for the contract).

    What a user calls: `fit`, `recommend` and `recommend_many`, `score` and `score_many`,
    `query_notes`, `add_items` and `update_items` (models that read item text), `save` and
    `load` (or `fewrec.load_model`), `copy_for_update`. A model of your own implements `_fit`
    and `score_batch` (and `_get_arrays`/`_set_arrays` for what `save` cannot find itself). The
    other public methods are hooks the models, explanations and the service share.
    """

    name: ClassVar[str]
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    #: Whether the model can score items it never saw in training (e.g. from text).
    scores_new_items: ClassVar[bool] = False
    #: Whether the model reads the text of a query's items (LM prompts, the distilled student),
    #: so that items it has no interactions with still shape its list.
    reads_history_text: ClassVar[bool] = False
    #: Whether the model reads item text (titles, fields) at all; those that do not (ID-only
    #: models, which set it False) keep changed item fields for labels and reasons only
    #: (`updates_items`). True by default: a model that reads text and cannot re-read it refuses.
    reads_item_text: ClassVar[bool] = True
    #: Whether a query with no history and no known user gets plain popularity scores (set by
    #: models that call `fill_empty_with_popularity`); explanations read it.
    empty_is_popularity: ClassVar[bool] = False
    #: The reason every recommendation of a baseline whose ranking does not follow the query
    #: (random picks, one score for all) gets; None: reasons are worked out from the query.
    fixed_reason: ClassVar[str | None] = None
    #: The reason of an item nothing in the query raised much, for a model whose ranking without
    #: the query is not popularity; None: "Popular right now." (or "with people like you").
    unraised_reason: ClassVar[str | None] = None
    #: Whether the model reads the ratings of a query's items (a low one as a dislike). Models
    #: that do not would count a 1-star item as a like: they are scored on
    #: `QueryBatch.for_model`, without the query's disliked items (still never recommended).
    reads_ratings: ClassVar[bool] = False
    #: At most this many of a long history's items are read for the service's reasons (each one
    #: left out costs a scoring row of the catalogue); None: as many as the catalogue's size allows
    #: (`fewrec.serve.engine.EXPLAIN_MAX_CELLS`). Set by models whose scoring rows are slow.
    explain_history: ClassVar[int | None] = None
    #: Whether reasons for `recommend` with candidates score only the candidates (a model that
    #: cannot score the catalogue once per history item left out: the LM models); their drops
    #: are then not centred, as a few candidates give no median to centre on.
    explains_candidates_only: ClassVar[bool] = False

    def history_read(self, batch: QueryBatch, row: int) -> np.ndarray | None:
        """The history items (indices) the model reads of query ``row``, when it reads only some
        (an LM reads a sample of ``max_history``); None: all. Reasons leave out only those: each
        leave-one-out variant of a longer history would draw another sample."""
        return None

    def __init__(self, config: ModelConfig | None = None, **overrides: Any):
        given = config is not None and not overrides
        if config is None:
            try:
                config = self.Config(**overrides)
            except ConfigError as exc:
                problems = exc.problems or str(exc)
                fix = None if "Fix:" in problems else "see `fewrec models` for its settings and defaults"
                raise ConfigError(with_fix(f"invalid config for {self.name}: {problems}", fix)) from None
        elif not isinstance(config, self.Config):
            raise ConfigError(f"{self.name} needs a {self.Config.__name__}, got {type(config)}")
        elif overrides:  # checked as the config's own fields are (a copy took "abc" as a number, and typos)
            try:
                config = self.Config(**{**config.model_dump(exclude_unset=True), **overrides})
            except ConfigError as exc:
                problems = exc.problems or str(exc)
                raise ConfigError(f"invalid config for {self.name}: {problems}") from None
        if given:  # (checked again as an assigned one is: model_copy(update=...) checks nothing)
            self.config = config
        else:  # made and checked just now (the setter made and checked it a second time)
            self.__dict__["config"] = config
        self.state_: FitState | None = None

    @property
    def config(self) -> ModelConfig:
        """The model's settings (its `Config`). Assigning one checks it as the model's own: a
        config of another model, a dict, or a value pydantic's ``model_copy(update=...)`` let
        through is refused here (they failed at `fit` with a raw AttributeError or scipy's
        ValueError)."""
        return self.__dict__["config"]

    @config.setter
    def config(self, value: ModelConfig) -> None:
        cls = type(self).Config
        if not isinstance(value, cls):
            an = "an" if cls.__name__[0] in "AEIOU" else "a"
            raise ArgumentError(
                f"{self.name}'s config must be {an} {cls.__name__}, got {type(value).__name__}",
                fix="assign one of the model's own config class: model.config.model_copy(update={'setting': "
                "value}) changes one setting (checked as it is assigned)",
            )
        try:
            checked = cls(**value.model_dump())
        except ConfigError as exc:
            problems = exc.problems or str(exc)
            raise ConfigError(f"invalid config for {self.name}: {problems}") from None
        object.__setattr__(checked, "__pydantic_fields_set__", set(value.model_fields_set))
        self.__dict__["config"] = checked

    def __repr__(self) -> str:
        """The class, its settings and what it was fitted on ("ItemKNN(seed=0, neighbors=100, ...;
        fitted on 943 users x 1,682 items)"): a fitted model's read as the unfitted one's."""
        config = self.__dict__.get("config")
        settings = ", ".join(f"{k}={v!r}" for k, v in config) if config is not None else ""
        state = self.__dict__.get("state_")
        if state is not None:
            settings += f"; fitted on {len(state.users):,} users x {len(state.items):,} items"
        return f"{type(self).__name__}({settings})"

    # ------------------------------------------------------------------ to implement
    @abstractmethod
    def _fit(self, data: Dataset) -> None:
        """Learn from the dataset (the base class has already recorded vocab and history)."""

    @abstractmethod
    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        """Scores (n_queries x n_items), higher is better; -inf for items it cannot score."""

    def _get_arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays to save (names -> numeric or text arrays; no Python objects).

        By default: the attributes `_fit` set whose names end in ``_`` (numpy arrays and
        numbers). Override it, and `_set_arrays`, for anything else (a sparse matrix, a
        sub-model); an attribute the default cannot save is an error at `save`, not a missing
        attribute at the first `recommend` after a load."""
        out = {}
        for name, value in vars(self).items():
            if not name.endswith("_") or name in BASE_ATTRIBUTES:
                continue
            if isinstance(value, np.ndarray | np.number | np.bool_ | int | float | bool):
                out[name] = np.asarray(value)
            else:
                raise ConfigError(
                    with_fix(
                        f"{self.name} cannot save its attribute {name!r} ({type(value).__name__}): by "
                        "default a model saves the numpy arrays and numbers it learned",
                        "override _get_arrays and _set_arrays to save it as arrays",
                    )
                )
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore learned arrays saved by `_get_arrays` (by default, each as the attribute of
        its name; numbers as numbers)."""
        for name, value in arrays.items():
            if not (name.isidentifier() and name.endswith("_")) or name in BASE_ATTRIBUTES:
                raise DataError(f"a saved array named {name!r} is none of {self.name}'s learned attributes")
            setattr(self, name, value.item() if value.ndim == 0 and value.dtype.kind in "iufb" else value)

    # ------------------------------------------------------------------ fit
    def fit(self, data: Dataset) -> Self:
        """Train on a dataset; returns self. A refit is a fresh fit, and a fit that fails leaves
        the model as it was.

        Raises:
            ArgumentError: ``data`` is no `Dataset` (`fewrec.load_interactions` builds one).
            DataError: a dataset without interactions, for a model that needs them.
            ConfigError: the model's matrices would not fit in memory (said before fitting).
        """
        if not isinstance(data, Dataset):
            raise ArgumentError(
                f"fit takes a fewrec Dataset, got {type(data).__name__}",
                fix="fewrec.data.load_interactions(frame_or_path, items, users) builds one from your "
                "DataFrame or file; load_movielens_100k() gives the built-in data",
            )
        if data.n_interactions == 0 and not self.scores_new_items:
            raise DataError(f"{self.name} needs interactions to train on; the dataset has none")
        self.check_memory(data)
        train = data.matrix()
        ratings = data.interactions["rating"]
        like = float(ratings.max()) if len(ratings) else 1.0
        before = dict(self.__dict__)
        # A refit starts from what construction set (the config, a given teacher): the last
        # fit's state and every cache built on it (attributes ending in "_") go. A fit that
        # fails leaves the model as it was.
        for name in [n for n in self.__dict__ if n.endswith("_")]:
            del self.__dict__[name]
        start = set(self.__dict__)
        try:
            self.state_ = FitState(
                data.users,
                data.items,
                train,
                like,
                data.item_info,
                data.item_template,
                data.user_info,
                data.left_out.tocsr() if data.left_out is not None and data.left_out.nnz else None,
                data.counts,
                data.genre_sep,
            )
            self._fit(data)
            self._check_fitted_attributes(set(self.__dict__) - start - {"state_"})
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        if user_stacklevel() == 2:  # fitted by the user's own code (not by the CLI or an ensemble)
            for note in self._fit_notes(data):
                warnings.warn(note, UserWarning, stacklevel=2)
        return self

    def _check_fitted_attributes(self, names: set[str]) -> None:
        """Refuse what `_fit` set that a save would lose or the base class overwrites: a public
        name not ending in ``_`` (saved without it, a loaded model had no such attribute) and a
        name of the base class's own caches (`BASE_ATTRIBUTES`: ``labels_`` became the base's
        labels at the second `recommend`)."""
        clash = sorted(names & BASE_ATTRIBUTES)
        if clash:
            raise ConfigError(
                with_fix(
                    f"{self.name}'s fit set {', '.join(clash)}, the name(s) of the base class's own "
                    "caches, which it overwrites",
                    "give the attribute another name ending in '_'",
                )
            )
        lost = sorted(n for n in names if not n.startswith("_") and not n.endswith("_"))
        if lost:
            raise ConfigError(
                with_fix(
                    f"{self.name}'s fit set {', '.join(lost)}: only attributes ending in '_' are the "
                    "learned state that save keeps (a loaded model would have no "
                    f"{lost[0]!r})",
                    f"name it {lost[0]}_ (or _{lost[0]}, private, if a loaded model rebuilds it)",
                )
            )
        if type(self)._get_arrays is Recommender._get_arrays:
            try:  # (a dict or a sparse matrix was found at save, after the whole fit)
                self._get_arrays()
            except ConfigError as exc:
                warnings.warn(f"{exc} (said at the fit: a save would fail)", UserWarning, stacklevel=3)

    def _fit_notes(self, data: Dataset) -> list[str]:
        """What a user who fitted this model should know of how it read ``data`` (warned where
        the user's code fits it; `fewrec train` prints them): here, a like/dislike log's 0s
        taken as interest by a model that reads no ratings, scores out of 100 read as counts,
        and an unusual small scale read as stars. Models add theirs."""
        notes = []
        if not self.reads_ratings and (nos := zero_rated(data.interactions["rating"])):
            notes.append(
                f"{nos}, a dislike in a query, yet {self.name} trains on them as signs of interest; "
                "data.keep_ratings(1) leaves them out (CLI: --min-rating 1)"
            )
        return notes + rating_scale_notes(data)

    def check_memory(self, data: Dataset) -> None:
        """Raise a `ConfigError` when fitting on ``data`` would need more memory than there is
        (`check_item_pairs`), before anything is allocated or encoded; `fit` calls it first, and
        the ensemble calls its components' before it fits any. The base class checks nothing."""

    @property
    def fitted(self) -> FitState:
        """What `fit` recorded for every model (`FitState`: the id vocabularies, the training
        matrix, item fields, user side info); NotFittedError before a fit or a load."""
        state = getattr(self, "state_", None)  # (a model of one's own without it: AttributeError)
        if state is None:
            cls = type(self).__qualname__
            if "state_" not in self.__dict__:  # never set up: its __init__ skipped the base's
                message = f"{self.name} is not fitted (its __init__ did not call super().__init__)"
                fix = f"call super().__init__(config, **overrides) in {cls}.__init__"
            elif type(self).fit is not Recommender.fit:  # fit replaced: nothing records a fit
                message = f"{self.name} is not fitted (a model implements _fit, not fit)"
                fix = (
                    f"rename {cls}.fit to _fit, or have it call super().fit(data): Recommender.fit "
                    "records what the fit needs and calls _fit"
                )
            else:
                message = f"{self.name} is not fitted"
                fix = "call fit(dataset), or load_model(path) for a saved model"
            raise NotFittedError(with_fix(message, fix))
        return state

    @property
    def n_items(self) -> int:
        """Number of catalogue items the model scores (items added since the fit included)."""
        return len(self.fitted.items)

    @property
    def reads_text(self) -> bool:
        """Whether the model reads a query's free text (`Query.text`)."""
        return False

    def text_match(self, batch: QueryBatch) -> np.ndarray | None:
        """How well each item matches each query's free text, standardised per query (rows of
        zeros for queries without text); None for a model that does not read text. The ensemble
        adds it for queries with text (`fewrec.models.ensemble.EnsembleConfig.text_weight`)."""
        return None

    @property
    def text_encoders(self) -> list[str]:
        """The packaged text encoders (`fewrec.text.encoder`) that read a query's free text."""
        encoder = getattr(self.config, "encoder", None)
        return [encoder] if encoder and self.reads_text else []

    @property
    def scores_text_apart(self) -> bool:
        """Whether a query scored without its text is scored the same way otherwise, so the
        difference is what the text adds (explanations read it; the ensemble re-ranks queries
        without text with another model, so for it the difference says nothing)."""
        return True

    @property
    def side_levels(self) -> frozenset[tuple[str, str]]:
        """The (field, level) pairs of user side info the model reads (numbers by decade or as
        codes, as `side_info_levels` gives them); empty when it reads none."""
        return frozenset()

    @property
    def learns_side_info(self) -> bool:
        """Whether the fit learned from user side info, though it may have given it no weight
        (`side_levels` empty): the notes then say "gives no weight to", not "does not read"."""
        return bool(self.side_levels)

    def query_notes(self, query: Query) -> list[str]:
        """What in ``query`` this model cannot use, in words; empty when it uses all of it.

        A user without training history is a new user (often meant, but a typo looks the same);
        free text and side info the model does not read are ignored (`ignored_in`)."""
        notes = []
        if query.user is not None:
            st = self.fitted
            u = int(st.users.lookup([query.user])[0])
            if u < 0 or st.train.indptr[u + 1] == st.train.indptr[u]:
                # an id written otherwise ("C0" for "c0", "007" for "7") names the known one; not
                # every close id (a new user "1966" is no typo of "196")
                meant = st.users.written_otherwise(str(query.user)) if u < 0 else []
                notes.append(
                    f"user {str(query.user)!r} has no history in this model's training data, "
                    "so they count as a new user" + (f"; did you mean {meant[0]!r}?" if meant else "")
                )
        return notes + self.ignored_in(query) + self.text_hints(query)

    def text_hints(self, query: Query) -> list[str]:
        """What the user may want to know of how their text is read, though all of it is read:
        films it names as known ones (left out of the list), names that no item's text holds.
        Shown beside the list (CLI, HTTP), never warned."""
        from fewrec.text.encoder import latin_language

        hints = []
        if known := self.referenced_items(query.text):
            labels = self._per_catalogue("labels_", self._item_labels)
            named = ", ".join(dict.fromkeys(str(labels[i]) for i in known[:3]))
            # what the items are where the model is told (an LM's noun); else a word for any
            # catalogue ("as a film you know" on a shop's garden hose)
            noun = getattr(self.config, "noun", None)
            noun = noun.strip() if isinstance(noun, str) else ""
            what = f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}" if noun else "one"
            hints.append(
                f"the text names {named} as {what} you know, so the list leaves it out "
                "(exclude_seen=False keeps it)"
            )
        if not (query.text and self.text_encoders and has_words(query.text)):
            return hints
        if latin_language(query.text) == "German":  # its nouns are capitalised: no names this way
            return hints
        names = unknown_names(query.text, self.text_vocabulary())
        if not names:
            return hints
        quoted = [f"'{n}'" for n in names[:3]] + (["..."] if len(names) > 3 else [])
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        return [
            *hints,
            f"no item's text here mentions {listed}, so the text encoder matches it only by what it "
            "knows of the word. To match names (a film's director, a book's author, a brand), give "
            "the items fields that hold them",
        ]

    def referenced_items(self, text: str | None) -> list[int]:
        """The items a text names, by their title as written, after words that make them ones
        the user knows: "films like Star Wars", "I loved Alien", "something similar to The
        Shining" (the named film came first in its own list). None past `MAX_TITLE_SEARCH`
        items (one pattern of every title)."""
        if not text or not has_words(text):
            return []
        pattern, items_of = self._per_catalogue("title_pattern_", self._title_pattern)
        if pattern is None:
            return []
        # (runs of spaces as one: the cue's lookbehinds are of one width, and "I would  like X"
        # named X as known)
        text = " ".join(text.replace("\u2019", "'").split())
        found = [i for m in pattern.finditer(text) for i in items_of[m["title"]]]
        return list(dict.fromkeys(found))

    def _title_pattern(self) -> tuple[re.Pattern[str] | None, dict[str, list[int]]]:
        """A pattern of a reference cue and a title (`REFERENCE_CUE`), and each title form's items:
        "Godfather, The (1972)" is written "The Godfather" or "Godfather"; the cue in any case,
        the title with its capitals."""
        info = self.fitted.item_info
        if "title" not in info.columns or len(info) > MAX_TITLE_SEARCH:
            return None, {}
        items_of: dict[str, list[int]] = {}
        for i, title in enumerate(info["title"]):
            for form in title_forms(" ".join(title.split())) if isinstance(title, str) else ():
                if len(form) >= 3 and form[:1].isupper():
                    items_of.setdefault(form, []).append(i)
        if not items_of:
            return None, {}
        # a title that is also a genre's name ("War, The": "I love War films") names the genre
        cells = info["genres"] if "genres" in info.columns else ()
        genres = {str(g).casefold() for gs in cells if isinstance(gs, list | tuple) for g in gs}
        items_of = {f: i for f, i in items_of.items() if f.casefold() not in genres}
        if not items_of:
            return None, {}
        titles = "|".join(re.escape(f) for f in sorted(items_of, key=lambda f: (-len(f), f)))
        # (and a kind, not a title, is what "films" follows: "I love War films")
        kind = r"(?!\s+(?:films?|movies?|shows?|books?|series|stuff|ones)\b)"
        # (an article the title does not hold may come between: the pattern takes the title
        # with its own article first, "like The Usual Suspects", and each form names its item)
        cue = rf"(?i:\b{REFERENCE_CUE}\s+{ARTICLE})"
        return re.compile(rf"{cue}(?P<title>{titles})(?!\w){kind}"), items_of

    def text_unread_note(self) -> str:
        """Why a query's free text is ignored, in words (only asked where `reads_text` is false)."""
        if getattr(self.config, "text_weight", None) == 0:  # (it said the model reads no text, and
            # then that it does)
            return (
                f"this {self.name} was trained with text_weight=0, so the text was ignored (train it "
                "with text_weight above 0 to read text)"
            )
        return (
            f"{self.name} does not read free text, so the text was ignored "
            "(content, content-lora, fewshot and ensemble read it)"
        )

    def ignored_in(self, query: Query) -> list[str]:
        """The parts of ``query`` this model does not read (free text, side-info fields or
        levels), in words. `recommend` and `score` warn about each."""
        self.fitted  # noqa: B018 (not fitted: the clear error, before any model attribute)
        notes = []
        if query.text and query.text.strip() and not self.reads_text:
            note = self.text_unread_note()
            if self.referenced_items(query.text):  # (it said ignored, and left them out)
                note += "; only the items it names as ones you know are read (left out of lists, as seen)"
            notes.append(note)
        elif query.text and query.text.strip() and not has_words(query.text):
            notes.append("the text has no words (only symbols or emoji), so it was ignored")
        elif query.text and self.text_encoders:
            notes += self._text_notes(query.text)
        if len(query.items) and not (self.scores_new_items or self.reads_history_text):
            st = self.fitted
            idx = st.items.lookup([str(i) for i in query.items])
            untrained = [
                str(i) for i, j in zip(query.items, idx, strict=True) if j >= 0 and st.popularity[j] == 0
            ]
            if untrained:  # an ID-only model knows an item only from its interactions
                shown = untrained[:3] + (["..."] if len(untrained) > 3 else [])
                notes.append(
                    f"{self.name} has no training interactions with item(s) {shown}, so they do not "
                    "shape the list (models that read item text do: content, fewshot, ensemble)"
                )
        lo, hi = self.fitted.rating_range
        if query.ratings is not None and lo < hi:  # explicit ratings (implicit data: all alike)
            # one below the range is a dislike like any other (a 0 of 5 said "not this" too)
            low = self.fitted.dislike_at
            # (a 0.9 of a 0-1 scale, below a 1-5 range, was a dislike without a word)
            # (on counts a count above the training's top is no mistake: the service takes it too)
            above = hi if self.fitted.stars else np.inf
            outside = [
                r
                for r in query.ratings
                if r > above or r < min(lo, 0) or low < r < lo or (r < lo and not float(r).is_integer())
            ]
            if outside:
                notes.append(
                    f"ratings {outside} are outside the training ratings' range {lo:g} to {hi:g}, "
                    f"and read as they are (a dislike is {low:g} or less)"
                )
        elif query.ratings is not None and len({float(r) for r in query.ratings if r > 0}) > 1:
            # implicit training data: a 1 and a 5 star were both likes, without a word (a lone 5
            # is a like either way: no note)
            notes.append(
                f"this model was trained on interactions without ratings (each one {hi:g}), so a "
                "query's ratings above 0 are all likes, whatever their size; 0 is a dislike"
            )
        only_dislikes = (
            query.user is None
            and len(query.items) > 0
            and query.ratings is not None
            and not (query.text or "").strip()
            and all(float(r) <= self.fitted.dislike_at for r in query.ratings)
        )
        if only_dislikes and self.empty_is_popularity:
            # (an ID-only model's list was popularity's without a word; content said so; thumbs,
            # ratings=[1, 0], on a 1-5 model read as two dislikes without saying why)
            scale = (  # (a star scale; on counts or implicit data any rating above 0 is a like)
                f" (ratings here run {lo:g} to {hi:g}, the model's scale, so {hi:g} is a like; or leave "
                "ratings out)"
                if lo < hi and self.fitted.stars
                else " (any rating above 0 is a like here)"
                if not self.fitted.stars
                else ""
            )
            notes.append(
                "every item of the query is a dislike, which keeps it out of the list but says "
                f"nothing of what you like, so the list is by popularity{scale}"
            )
        info = {k: v for k, v in (query.user_info or {}).items() if not _missing(v)}
        if not info:
            return notes
        known = self.side_levels
        by_field = field_levels(known)
        fields = sorted(by_field)
        if not known:
            # (a fewshot whose meta-learning gave side info no weight reads none either)
            why = "gives no weight to" if self.learns_side_info else "does not read"
            names = sorted(map(str, info))  # (it read "['age'] was ignored" on the web page too)
            listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
            were = "were" if len(names) > 1 else "was"
            notes.append(f"{self.name} {why} user side info, so {listed} {were} ignored")
            return notes
        for key, value in info.items():
            if key not in fields:
                notes.append(f"{self.name} does not read the side-info field {key!r} (only {fields})")
            elif (key, level := str(side_info_levels(pd.Series([value]), by_field[key])[0])) not in known:
                # an age of 99 is read by decade: it is "90", not 99, that training never saw
                read = f" (read as the decade {level}s)" if _binned(value, level) else ""
                levels = sorted(by_field[key] - {"<NA>"})
                numbers = [int(v) for v in levels if v.lstrip("-").isascii() and v.lstrip("-").isdigit()]
                decades = len(numbers) == len(levels) > 0 and all(v % 10 == 0 for v in numbers)
                if decades and _query_number(value, ()) is None:  # ("abc" for an age was "never seen")
                    notes.append(
                        f"{key}={value!r} is no number, and {key} is read as numbers (by decade), so "
                        "it counts as unknown"
                    )
                    continue
                # a typo of a level ("artsit") names the level it may have meant; a number's
                # nearest spelling is no help (an age of 200: "did you mean '20'?")
                near = (
                    []
                    if read or decades or _query_number(value, ()) is not None
                    else difflib.get_close_matches(level, levels, n=1, cutoff=0.75)
                )
                if near:
                    meant = f"; did you mean {near[0]!r}?"
                elif decades:  # (what it saw: the user could not find out)
                    meant = f"; it saw the {min(numbers)}s to the {max(numbers)}s"
                elif len(levels) <= 12:
                    meant = f"; it saw {', '.join(map(repr, levels))}"
                else:
                    meant = ""
                notes.append(
                    f"{key}={value!r}{read} was never seen in training, so it counts as unknown{meant}"
                )
        return notes

    def _text_notes(self, text: str) -> list[str]:
        """What this model's text encoders cannot read of ``text``: another script, or its end."""
        from fewrec.text.encoder import MULTILINGUAL_FIX, latin_language, non_latin, resolve_model

        specs = [resolve_model(e) for e in self.text_encoders]
        notes = []
        english = [s.name for s in specs if s.english_only]
        if english and non_latin(text):
            notes.append(
                f"the text is largely in a non-Latin script, but {self.name}'s text encoder "
                f"({english[0]}) reads English only, so it says little. Fix: {MULTILINGUAL_FIX}"
            )
        elif english and (language := latin_language(text)):  # (it matched French horror to History)
            notes.append(
                f"the text looks {language}, but {self.name}'s text encoder ({english[0]}) reads "
                f"English only, so it may match little of it. Fix: {MULTILINGUAL_FIX}"
            )
        # words, or ~6 characters a word where few spaces part them (a 100,000-letter string, a
        # list joined by commas: one "word" each, and no note, though the encoder reads the start)
        n_words = max(len(text.split()), len(text) // 6)
        if n_words > LONG_TEXT_WORDS:
            cut = [s for s in specs if s.max_words and n_words > s.max_words]
            read = f"; {cut[0].name} reads only about its first {cut[0].max_words} words" if cut else ""
            notes.append(
                f"the text is long ({n_words} words): it is read as one whole, so one wish in it "
                f"counts for little{read}; a sentence or two on what you want, the most important "
                "first, works best"  # (no "Fix:": it is for the one writing, the web page shows it)
            )
        return notes

    def item_text_template(self) -> str | None:
        """The template that makes an item's text: the model's own (text models' ``template``),
        else the catalogue's; None: every text field, joined."""
        return getattr(self.config, "template", None) or self.fitted.item_template

    def texts_of(self, rows: pd.DataFrame, ids: Sequence[str] | None = None) -> list[str]:
        """The texts of item rows (item info) as this model makes them (`item_text_template`).
        An item with no text gets its id: ``ids``, else the catalogue id of each row's index
        (rows of `FitState.item_info`, as `add_items` and `update_items` hand them over)."""
        if ids is None and len(rows) and pd.api.types.is_integer_dtype(rows.index):
            catalogue = self.fitted.items.ids
            if rows.index.min() >= 0 and rows.index.max() < len(catalogue):
                ids = [catalogue[i] for i in rows.index]
        # without a template the catalogue decides which fields make the text, not these rows
        # alone (a new item's "no" in a column of brands would have left it out for that item)
        return item_texts(rows, self.item_text_template(), ids, catalogue=self.fitted.item_info)

    def text_vocabulary(self) -> frozenset[str]:
        """The words of the catalogue's item texts (`fewrec.text.wishes.words_of`)."""
        st = self.fitted
        build = lambda: frozenset(words_of(" ".join(self.texts_of(st.item_info, st.items.ids))))  # noqa: E731
        return self._per_catalogue("text_vocabulary_", build)

    def negation_titles(self) -> Titles:
        """The catalogue's titles that hold a negation, which `split_wishes` reads as titles."""
        info = self.fitted.item_info
        return self._per_catalogue("negation_titles_", lambda: Titles(info.get("title", ())))

    def _per_catalogue(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()``, kept under ``name`` until the catalogue's items change (added, updated)."""
        info = self.fitted.item_info
        cached = self.__dict__.get(name)
        if cached is None or cached[0] is not info:
            cached = (info, build())
            setattr(self, name, cached)
        return cached[1]

    def _item_labels(self) -> np.ndarray:
        """Every item's label ("Title (year)", or its id), as lists and reasons name it."""
        st = self.fitted
        info, n = st.item_info, len(st.items)
        titles = info["title"].to_numpy() if "title" in info.columns else np.full(n, None)
        years = info["year"].to_numpy() if "year" in info.columns else np.full(n, None)
        return np.array(
            [label_of(t, y, i) for t, y, i in zip(titles, years, st.items.ids, strict=True)], dtype=object
        )

    def _twins(self) -> sp.csr_matrix | None:
        """Items x items, 1 between two items of one whole record apart from the id
        (`record_codes`: every field, not the title and year alone, which made a shop's two
        "Blue mug"s, a large and a small one, copies of one item): a film the catalogue lists
        twice or thrice (ML-100K lists 18 so), whose copy came back to a user who liked it,
        "Because you liked Chasing Amy (1997)"; None when there is none. Groups of more than
        `MAX_TWINS` are no copies of one film (a thin catalogue's many items of one name)."""
        st = self.fitted
        if "title" not in st.item_info.columns:
            return None
        codes = record_codes(st.item_info)
        _, inverse, sizes = np.unique(codes, return_inverse=True, return_counts=True)
        copies = np.flatnonzero((sizes[inverse] > 1) & (sizes[inverse] <= MAX_TWINS))
        rows: list[int] = []
        cols: list[int] = []
        # (one pass over the copies, grouped by code: a scan of the catalogue per group took
        # groups x items)
        order = copies[np.argsort(codes[copies], kind="stable")]
        for members in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1) if len(order) else []:
            for a in members:
                rows += [int(a)] * (len(members) - 1)
                cols += [int(b) for b in members if b != a]
        if not rows:
            return None
        n = len(st.items)
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))

    def _warn_ignored(self, queries: Sequence[Query]) -> None:
        """Warn about what each query's model ignores, and about a user id the model does not
        know when the query has nothing else (a typo would silently give popular items)."""
        notes = []
        for q in queries:
            only_user = q.user is not None and not len(q.items) and not (q.text or "").strip()
            notes += self.query_notes(q) if only_user else self.ignored_in(q)
        for note in dict.fromkeys(notes):
            warnings.warn(note, UserWarning, stacklevel=user_stacklevel())

    def empty_rows(self, batch: QueryBatch) -> np.ndarray:
        """Queries with nothing to adapt to: no history, no trained user and no text the model
        reads (fewshot's popularity for an empty query, and the reasons, read it as scoring does:
        with ``text_weight=0`` a text had counted)."""
        no_text = batch.without_text() | (not self.reads_text)
        return (np.diff(batch.history.indptr) == 0) & (batch.users < 0) & no_text

    def fill_empty_with_popularity(
        self, scores: np.ndarray, batch: QueryBatch, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """Rows of queries with no history and no known user get popularity scores: an ID-only
        model has nothing else to go on, and ties broken by item index are worse. A model that
        calls this sets ``empty_is_popularity = True``.

        ``rows``: a boolean mask over the batch's queries (one entry per query, True where the
        query may be filled; fewshot-nometa passes the rows that score every item alike), or
        None for every query (indices, or a mask of another length, were numpy's error)."""
        empty = self.empty_rows(batch)
        if rows is not None:
            rows = np.asarray(rows)
            if rows.dtype != bool or rows.shape != empty.shape:
                raise ArgumentError(
                    f"{self.name}: fill_empty_with_popularity's rows must be a boolean mask over the "
                    f"batch's {len(empty)} queries, got {rows.dtype} of shape {rows.shape}",
                    fix="rows=np.isin(np.arange(len(batch)), indices) for query indices",
                )
            empty &= rows
        if empty.any():
            scores[empty] = self.fitted.popularity[None, :]
        return scores

    # ------------------------------------------------------------------ queries
    def batch_from_queries(self, queries: Sequence[Query]) -> QueryBatch:
        """Turn external-id queries into a `QueryBatch` (unknown history items are an error)."""
        st = self.fitted
        n_train = np.diff(st.train.indptr)
        users = np.full(len(queries), -1, dtype=np.int64)
        rows, cols, vals = [], [], []
        # the query's own dislikes (not the training history's), and a known user's items left
        # out of training (`FitState.left_out`): never recommended back
        low_rows, low_cols = [], []
        info: list[dict] = [{} for _ in queries]  # a known user's stored side info, then the query's
        for q_i, q in enumerate(queries):
            if q.user is not None:
                u = int(st.users.lookup([q.user])[0])
                info[q_i] = _stored_info(st.user_info, u)
                if u >= 0 and n_train[u] > 0:
                    users[q_i] = u
                    lo, hi = st.train.indptr[u], st.train.indptr[u + 1]
                    cols.extend(st.train.indices[lo:hi])
                    vals.extend(st.train.data[lo:hi])
                    rows.extend([q_i] * (hi - lo))
                if u >= 0 and st.left_out is not None:  # (a query item rated anew is its history)
                    asked = set(st.items.lookup(list(q.items)).tolist()) if len(q.items) else set()
                    out = st.left_out.indices[st.left_out.indptr[u] : st.left_out.indptr[u + 1]]
                    out = [int(i) for i in out if int(i) not in asked]
                    low_cols.extend(out)
                    low_rows.extend([q_i] * len(out))
            if len(q.items):
                idx = st.items.index(q.items, what="history item")
                if q.ratings is not None:
                    if len(q.ratings) != len(q.items):
                        raise DataError(
                            f"query has {len(q.items)} items but {len(q.ratings)} ratings",
                            fix="give one rating per item, or none",
                        )
                    r = [float(x) for x in q.ratings]
                else:
                    r = [st.like_rating] * len(idx)
                cols.extend(idx)
                vals.extend(r)
                rows.extend([q_i] * len(idx))
                own = _dedupe_keep_last([0] * len(idx), list(idx), r, 1, len(st.items))  # last wins
                low = own.indices[own.data <= st.dislike_at]
                low_cols.extend(low)
                low_rows.extend([q_i] * len(low))
        # A query item already in the training history overrides it (latest wins).
        hist = _dedupe_keep_last(rows, cols, vals, len(queries), len(st.items))
        disliked = None
        if low_rows:
            ones = np.ones(len(low_rows), dtype=np.float32)
            disliked = sp.csr_matrix((ones, (low_rows, low_cols)), shape=hist.shape)
            disliked.sum_duplicates()
            disliked.data[:] = 1.0  # a mark (a left-out item disliked again summed to 2)
        texts = [q.text for q in queries]
        info = [{**stored, **(q.user_info or {})} for stored, q in zip(info, queries, strict=True)]
        return QueryBatch(
            users,
            hist.tocsr(),
            texts if any(t for t in texts) else None,
            pd.DataFrame(info) if any(info) else None,
            disliked,
        )

    def score(self, query: Query, items: Sequence[str | int] | None = None) -> pd.Series:
        """Scores of ``items`` (default: all) for one query, indexed by external item id.

        Items unknown to the model get NaN.

        Raises:
            ArgumentError: a mistyped query or ``items`` (a string where a list belongs).
            DataError: a history item the model does not know.
            NotFittedError: the model was neither fitted nor loaded.
        """
        return self.score_many([query], items)[0]

    def _check_scores(self, scores: Any, n_queries: int) -> np.ndarray:
        """``scores``, a `score_batch` output for ``n_queries`` queries, if it is a numpy array of
        numbers of one row per query and one column per item (recommend, score and evaluation
        refuse the same; evaluation broadcast one row to every query, silently)."""
        want = (n_queries, self.n_items)
        if type(scores) is not np.ndarray or scores.shape != want or scores.dtype.kind not in "iuf":
            got = f"{type(scores).__name__} of shape {getattr(scores, 'shape', None)}"
            raise FewrecError(
                f"{self.name}.score_batch gave {got} (dtype {getattr(scores, 'dtype', None)}); it must "
                f"give a numpy array of numbers, one row per query and one column per item: {want}"
            )
        # (min is NaN where any score is: no array of flags on the common path)
        if scores.dtype.kind == "f" and scores.size and np.isnan(scores.min()):
            nan = np.isnan(scores)
            # (one message whatever the counts, so a run of batches warns once; a NaN in some
            # items' scores, a division by zero say, left them out of every list without a word)
            every = nan.all(axis=1).any()
            which = "every item of a query, so it gets" if every else "some items, so they get"
            warnings.warn(
                f"{self.name}.score_batch gave NaN for {which} no recommendations "
                "(-inf marks an item a model cannot score)",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return scores

    def _scores(self, batch: QueryBatch) -> np.ndarray:
        """`score_batch`, its output checked (a model of one's own that gives another shape, or
        a list, failed deep inside `recommend` with numpy's error)."""
        return self._check_scores(self.score_batch(batch), len(batch))

    def score_many(
        self, queries: Sequence[Query], items: Sequence[str | int] | None = None
    ) -> list[pd.Series]:
        """`score` for each query of a list: one series per query, in order."""
        queries = _check_queries(queries)
        if items is not None:
            items = _id_list(items, "items", "score(query, items=['50', '181'])")
        st = self.fitted
        self._warn_ignored(queries)
        if items is not None:  # NaN, as documented, but a typo said nothing (recommend warns)
            names = [str(i) for i in items]
            unknown = [i for i, j in zip(names, st.items.lookup(names), strict=True) if j < 0]
            if unknown:
                warnings.warn(
                    f"{len(unknown)} of {len(items)} items are not in this model's catalogue and "
                    f"score NaN: {unknown[:5]}" + st.items._near(unknown[0], most=WARN_NEAR_IDS),
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
        batch = self.batch_from_queries(queries).for_model(self)
        if items is not None and hasattr(self, "score_candidates"):  # only these (LM prompts)
            return self._score_chosen(batch, [str(i) for i in items])
        scores = self._scores(batch)
        if items is None:
            ids = st.items.ids
            return [pd.Series(row, index=ids, name="score", dtype=np.float64) for row in scores]
        ids = [str(i) for i in items]
        idx = st.items.lookup(ids)
        out = []
        for row in scores:
            vals = np.where(idx >= 0, row[np.maximum(idx, 0)], np.nan)
            out.append(pd.Series(vals, index=ids, name="score", dtype=np.float64))
        return out

    def _score_chosen(self, batch: QueryBatch, ids: list[str]) -> list[pd.Series]:
        """Scores of the items ``ids`` only, from a model's ``score_candidates`` (an LM model
        refused `score(query, items)` of two items: it scored the whole catalogue's prompts)."""
        idx = self.fitted.items.lookup(ids)
        known = np.flatnonzero(idx >= 0)
        vals = np.full((len(batch), len(ids)), np.nan)
        vals[:, known] = self._scores_of(batch, np.unique(idx[known]))[:, idx[known]]
        return [pd.Series(row, index=ids, name="score", dtype=np.float64) for row in vals]

    def _scores_of(self, batch: QueryBatch, columns: np.ndarray) -> np.ndarray:
        """(queries x catalogue) scores with only the items ``columns`` scored, by the model's
        ``score_candidates`` (float32, as `score_batch` gives them: the same values as scoring
        everything and picking), and -inf (not scored) elsewhere. An LM model refuses more pairs
        than its ``max_prompts`` before any runs (100 took about a minute of CPU)."""
        limit = getattr(self.config, "max_prompts", None)  # an LM model: a prompt per pair
        if limit is not None and len(batch) * len(columns) > limit:
            raise ConfigError(
                f"{self.name} would score {len(batch) * len(columns)} prompts ({len(batch)} queries x "
                f"{len(columns)} chosen items), over max_prompts={limit}. Fix: choose fewer items, "
                "re-rank a short list with lm-rerank, or raise max_prompts"
            )
        if not hasattr(self, "score_candidates"):  # (its callers ask first)
            raise TypeError(f"{self.name} does not score chosen items (it has no score_candidates)")
        out = np.full((len(batch), self.n_items), -np.inf)
        if len(columns) and len(batch):
            cand = np.ascontiguousarray(np.broadcast_to(columns, (len(batch), len(columns))))
            out[:, columns] = np.asarray(self.score_candidates(batch, cand), np.float32)
        return out

    def recommend(
        self,
        query: Query,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[str | int] | None = None,
        explain: bool = False,
    ) -> pd.DataFrame:
        """Top-``k`` items for one query, best first.

        Args:
            query: who to recommend for (`Query`: a user id, liked or rated items, free text,
                side info; any of them, or none for the popular items).
            k: how many items, a whole number >= 1; fewer, with a warning, when fewer are left.
            exclude_seen: leave out the query's items and a known user's training items.
                Disliked items (rated at or below the dislike line) never come back either way.
            candidates: rank only these item ids (ids the model does not know are skipped,
                with a warning); the LM models score only these.
            explain: add ``reason`` (a sentence) and ``because`` (the cited history item ids).

        Returns:
            A frame with columns ``item`` (external id), ``label`` (its title and year, as lists
            and reasons name it; the id where it has no title) and ``score`` (the model's own
            scale: not comparable between models), and with ``explain`` ``reason`` and ``because``.

        Raises:
            ArgumentError: an argument of the wrong type (``Query(items="12")``, ``k=2.5``).
            ConfigError: ``k`` below 1.
            DataError: a history item the model does not know.
            NotFittedError: the model was neither fitted nor loaded.
        """
        return self.recommend_many(
            [query], k, exclude_seen=exclude_seen, candidates=candidates, explain=explain
        )[0]

    def recommend_many(
        self,
        queries: Sequence[Query],
        k: int = 10,
        *,
        exclude_seen: bool = True,
        candidates: Sequence[str | int] | None = None,
        explain: bool = False,
    ) -> list[pd.DataFrame]:
        """Top-``k`` for each query: the same as calling `recommend` on each (see it for the
        arguments and errors), in one batch."""
        k = _check_k(k)
        for name, flag in (("exclude_seen", exclude_seen), ("explain", explain)):
            if not isinstance(flag, bool | np.bool_):  # "no" read as True
                raise ArgumentError(f"{name} must be True or False, got {flag!r}")
        queries = _check_queries(queries)
        if candidates is not None:
            candidates = _id_list(candidates, "candidates", "candidates=['50', '181']")
        st = self.fitted
        self._warn_ignored(queries)
        full = self.batch_from_queries(queries)
        batch = full.for_model(self)
        allowed = np.ones(len(st.items), dtype=bool)
        cidx = st.items.lookup(candidates) if candidates is not None else None
        chosen = None
        if cidx is not None and hasattr(self, "score_candidates"):  # only the candidates' prompts
            chosen = np.unique(cidx[cidx >= 0])
            # not those no query may get back (seen, disliked): an LM spent seconds on each
            parts = ([full.history] if exclude_seen else []) + [d for d in [full.disliked] if d is not None]
            if parts and len(chosen):
                gone = sp.csr_matrix(sum(parts))
                gone.data[:] = 1.0  # (a rating of 0 is an entry too)
                everyone = np.asarray(gone[:, chosen].sum(axis=0)).ravel() == len(queries)
                chosen = chosen[~everyone]
            if explain and self.explains_candidates_only:  # too many prompts: said before any runs
                from fewrec.explain.reasons import check_explain_prompts

                # only the k shown are explained
                check_explain_prompts(self, batch, min(k, len(chosen)))
            scores = self._scores_of(batch, chosen)
        else:
            scores = self._scores(batch).astype(np.float64, copy=True)
        if candidates is not None and cidx is not None:  # (both or neither)
            allowed[:] = False
            allowed[cidx[cidx >= 0]] = True
            unknown = [c for c, i in zip(candidates, cidx, strict=True) if i < 0]
            if unknown:
                warnings.warn(
                    f"{len(unknown)} of {len(candidates)} candidates are not in this model's catalogue "
                    f"and were skipped: {unknown[:5]}" + st.items._near(str(unknown[0]), most=WARN_NEAR_IDS),
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
        scores[:, ~allowed] = -np.inf
        twins = self._per_catalogue("twins_", self._twins)
        copied = np.zeros(len(queries), dtype=bool)  # a list that lost an item as a copy of one left out

        def leave_out(mask: sp.spmatrix) -> None:  # the items, and their copies in the catalogue
            m = sp.csr_matrix(mask)
            for part in (m, m @ twins) if twins is not None else (m,):
                d = part.tocoo()
                if part is not m:
                    copied[d.row[scores[d.row, d.col] > -np.inf]] = True
                scores[d.row, d.col] = -np.inf

        if exclude_seen:  # the full history: disliked items too
            leave_out(full.history)
            # and the films a text names as known ones ("films like Star Wars" came first)
            named = [(r, i) for r, q in enumerate(queries) for i in self.referenced_items(q.text)]
            if named:
                rows, cols = zip(*named, strict=True)
                shape = (len(queries), len(st.items))
                leave_out(sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape))
        if full.disliked is not None:  # never recommended back, seen items allowed or not
            leave_out(full.disliked)
        if not exclude_seen and (known := np.flatnonzero(full.users >= 0)).size:
            # a known user's low training ratings too (their 1-star film came back, "Because you
            # liked ..."); the history keeps them, as the models read it
            low = dislike_mask(full.history, st.dislike_at, rows=known)
            if low is not None:
                leave_out(low)
        out = []
        if explain:
            from fewrec.explain import reasons as explaining

            # the item vectors a long history is read through, worked out once for all queries
            vectors = functools.cache(functools.partial(explaining.item_vectors, self))
        labels = self._per_catalogue("labels_", self._item_labels)  # (per call: +20-50% at k 10-100)
        for q, row in enumerate(scores):
            top = top_k_by(row, k, st.popularity)  # ties: the more popular item first
            top = top[row[top] > -np.inf]  # (NaN counts as -inf; +inf, the best, was left out)
            # (typed: an empty list's columns were float64, so a concat of lists changed types)
            ids = st.items.to_external(top)
            frame = pd.DataFrame(
                {
                    "item": pd.Series(ids, dtype="str"),
                    # as lists and reasons name an item: "Title (year)", or its id (the frame had
                    # ids only, and a user looked titles up by hand)
                    "label": pd.Series(labels[top], dtype="str"),
                    "score": pd.Series(row[top], dtype=np.float64),
                }
            )
            if explain:
                only = top if self.explains_candidates_only else None  # (the k shown)
                # a long history is read through its items nearest the list, as the service does
                # (a user of 737 ratings took 8-18 s to explain, re-scoring once per rating)
                asked = queries[q].items
                recent = st.items.lookup(list(asked)[::-1]) if len(asked) else np.zeros(0, np.int64)
                one = explaining.explained_batch(
                    self, batch, q, top, recent=[int(i) for i in recent if i >= 0], vectors=vectors
                )
                reasons = explaining.explain_recommendations(self, one, 0, top, columns=only)
                frame["reason"] = pd.Series([r.text for r in reasons], dtype="str")
                frame["because"] = pd.Series([[i for i, _ in r.because] for r in reasons], dtype=object)
            out.append(frame)
        # k of all there are asks for all not seen, disliked or unscored: fewer is no news, unless
        # none is left of the candidates named (an empty frame came back without a word)
        pool = len(np.unique(cidx[cidx >= 0])) if cidx is not None else len(st.items)
        shorts = [len(f) < k if k < pool else len(f) == 0 < pool for f in out]
        if short := sum(shorts):  # (a list of 2 for k=10 came back without a word)
            which = "the query's list is" if len(out) == 1 else f"{short} of the {len(out)} lists are"
            what = f"{pool} known candidates" if cidx is not None else f"catalogue's {pool:,} items"
            why = f"shorter than k={k}: the rest of the {what}" if k < pool else f"empty: all the {what}"
            # (an item the catalogue lists twice, left out with its copy, went unsaid)
            by_copy = copied[np.array(shorts)].any()
            copies = ", copies of those (one record under another id)" if by_copy else ""
            warnings.warn(
                f"{which} {why} are in the history, disliked{copies} or not scored by {self.name}",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return out

    # ------------------------------------------------------------------ incremental updates
    def copy_for_update(self) -> Self:
        """A copy that `add_items` can change while this model keeps serving.

        Cheap: learned arrays are shared, because updates replace arrays instead of writing
        into them; only the containers (the model object and its fit state) are copied.
        """
        new = copy.copy(self)
        if self.state_ is not None:
            new.state_ = copy.copy(self.state_)
        return new

    @property
    def adds_items(self) -> bool:
        """Whether `add_items` can add catalogue items from their text without retraining."""
        return self.scores_new_items and type(self)._add_items is not Recommender._add_items

    def add_items(self, ids: Sequence[str | int], info: pd.DataFrame | None = None) -> None:
        """Add new catalogue items (with their text fields in ``info``) without retraining.

        ``info``'s rows pair with ``ids`` by position (its index is not read); its columns are
        the catalogue's fields (title, genres, ...), a field the items lack left blank. Raises a
        `ConfigError` for a model that cannot add items (`adds_items`) and a `DataError` for an
        id given twice or already in the catalogue.

        Only models that score items from text support it (`adds_items`). A call that fails
        leaves the model as it was. It replaces the model's arrays one after another, so do not
        call it while other threads recommend from the same model: add to a copy
        (`copy_for_update`) and swap it in when done, as ``fewrec serve`` does.
        """
        if not self.adds_items:
            raise ConfigError(
                with_fix(
                    f"{self.name} cannot add items without retraining",
                    "retrain on data with the new items, or use a model that reads item text "
                    "(content, fewshot, content-lora; `model.adds_items` says)",
                )
            )
        st = self.fitted
        new_ids = [str(i) for i in _id_list(ids, "add_items ids", "add_items(['new-1'], info)")]
        if any(not i.strip() for i in new_ids):
            raise DataError("an item id is empty", fix="give every new item a non-empty id")
        dup = [i for i in new_ids if i in st.items]
        # (one id in two Unicode forms is one id, as the catalogue matches either: both were added)
        if dup or len({unicodedata.normalize("NFC", i) for i in new_ids}) != len(new_ids):
            raise DataError(
                f"items already in the catalogue or repeated: {dup[:5] or new_ids[:5]}",
                fix="give new items new ids; update_items re-reads the text of existing ones",
            )
        if info is not None and not isinstance(info, pd.DataFrame):
            raise ArgumentError(
                f"add_items info must be a DataFrame, one row per new item, got {type(info).__name__}",
                fix="pd.DataFrame({'title': ['Dune'], 'genres': [['Sci-Fi']]})",
            )
        info = pd.DataFrame(index=range(len(new_ids))) if info is None else info.reset_index(drop=True)
        if len(info) != len(new_ids):
            raise DataError(f"{len(new_ids)} new items but {len(info)} rows of item info")
        _warn_stray_fields(info, st.item_info, "new item")
        if self.reads_item_text and self.scores_new_items:  # (the service refuses a blank title)
            blank = [str(i) for i, (_, row) in zip(new_ids, info.iterrows(), strict=True) if _all_blank(row)]
            if blank:
                warnings.warn(
                    f"{len(blank)} new items have no text (every field blank): {blank[:5]}; "
                    f"{self.name} reads each as its id, which says nothing of what it is",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
        info = like_catalogue(info, st.item_info, st.genre_sep)
        n_old = len(st.items)
        saved = (st.items, st.train, st.item_info, st.popularity)
        attributes = dict(self.__dict__)  # _add_items replaces arrays; it does not write into them
        try:
            st.items = Vocabulary(st.items.ids + new_ids)
            st.train = sp.csr_matrix(
                (st.train.data, st.train.indices, st.train.indptr), shape=(len(st.users), len(st.items))
            )
            st.item_info = pd.concat([st.item_info, info], ignore_index=True)
            st.popularity = np.r_[st.popularity, np.zeros(len(new_ids), np.float32)]
            info.index = pd.RangeIndex(n_old, n_old + len(new_ids))  # their rows: `texts_of` finds their ids
            self._add_items(n_old, info)
        except BaseException:  # leave the model as it was
            st.items, st.train, st.item_info, st.popularity = saved
            self.__dict__.clear()
            self.__dict__.update(attributes)
            raise
        self._extend_text_caches(st.item_info.iloc[n_old:])

    def _extend_text_caches(self, rows: pd.DataFrame) -> None:
        """Carry the text vocabulary and the negation titles, when worked out, over to the
        changed catalogue with the words and titles of its new or re-read ``rows`` (rebuilding
        them over a large catalogue took seconds, inside the next request). A re-read item's
        old words stay: a name no longer in it may go without a note."""
        st = self.fitted
        vocabulary = self.__dict__.get("text_vocabulary_")
        if vocabulary is not None:
            words = words_of(" ".join(self.texts_of(rows)))
            self.text_vocabulary_ = (st.item_info, vocabulary[1] | words)
        titles = self.__dict__.get("negation_titles_")
        if titles is not None:
            self.negation_titles_ = (st.item_info, titles[1].adding(rows.get("title", ())))

    def _add_items(self, start: int, info: pd.DataFrame) -> None:
        """Extend learned item arrays for items ``start..`` (text models override this)."""

    @property
    def rereads_item_text(self) -> bool:
        """Whether `update_items` can re-read changed item text without retraining."""
        return type(self)._update_items is not Recommender._update_items

    @property
    def updates_items(self) -> bool:
        """Whether `update_items` can take changed item fields without retraining: text models
        that re-read them, and models that read no item text (they keep the fields for labels
        and reasons)."""
        return self.rereads_item_text or not self.reads_item_text

    def update_items(self, ids: Sequence[str | int], info: pd.DataFrame) -> None:
        """Re-read the text fields of catalogue items (rows of ``info``, in ``ids`` order)
        without retraining: text models re-embed them; models that read no item text keep the
        fields for labels and reasons. What was learned from interactions stays.
        """
        if not self.updates_items:
            raise ConfigError(f"{self.name} cannot re-read item text without retraining")
        st = self.fitted
        ids = [str(i) for i in _id_list(ids, "update_items ids", "update_items(['50'], info)")]
        if not isinstance(info, pd.DataFrame):
            raise ArgumentError(
                f"update_items info must be a DataFrame, one row per item, got {type(info).__name__}",
                fix="pd.DataFrame({'title': ['Star Wars IV']})",
            )
        idx = st.items.lookup(ids)
        if (idx < 0).any():
            missing = [i for i, j in zip(ids, idx, strict=True) if j < 0]
            raise DataError(f"items not in the catalogue: {missing[:5]}", fix="add them with add_items")
        if len(set(ids)) != len(ids):
            raise DataError("an item appears twice in one update")
        info = info.reset_index(drop=True)
        if len(info) != len(ids):
            raise DataError(f"{len(ids)} items but {len(info)} rows of item info")
        _warn_stray_fields(info, st.item_info, "updated item")
        # in the catalogue's types, as `add_items` gives them (genres "A|B" as a list: a string
        # among lists left the model unsaveable); only the fields given, the others keep theirs
        known = st.item_info[[c for c in st.item_info.columns if c in info.columns]]
        info = like_catalogue(info, known, st.genre_sep)
        item_info = st.item_info.copy()
        for col in info.columns:
            if col not in item_info.columns:  # a field the catalogue had not: empty elsewhere
                item_info[col] = pd.Series([None] * len(item_info), index=item_info.index, dtype=object)
            values = item_info[col].tolist()
            for row, i in enumerate(idx):
                values[i] = info[col].iloc[row]
            dtype = item_info[col].dtype
            if any(_missing(v) for v in info[col]):  # (a yes/no column of numpy bools holds no NA)
                dtype = _blank_like(item_info[col], 0).dtype
            item_info[col] = pd.Series(values, index=item_info.index, dtype=dtype)
        # the items' whole rows: the fields not given keep their values, and the text is re-read
        # from all of them (it was built from the given fields alone)
        rows = item_info.iloc[np.asarray(idx, dtype=np.int64)]  # indexed by row: `texts_of` finds ids
        self._update_items(np.asarray(idx, dtype=np.int64), rows)
        st.item_info = item_info  # after: a failed re-read leaves the model as it was
        self._extend_text_caches(rows)

    def _update_items(self, idx: np.ndarray, info: pd.DataFrame) -> None:
        """Recompute learned arrays of items ``idx`` from their new ``info`` (text models)."""

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save as a directory and return ``path``: config.json, vocab.json, state.npz (no
        pickle), and items.parquet and users.parquet when there are item fields and user side
        info.

        The files are written into a sibling folder and then swapped in, so a model that cannot
        be saved (say, item fields of mixed types), or a save cut short, leaves a model saved
        there before as it was."""
        from fewrec.models.saving import save_model

        return save_model(self, path)

    @classmethod  # (refused on an instance: `_class_only`, set below the class)
    def load(cls, path: str | Path) -> Self:
        """Load a saved model directory: any registered model when called on `Recommender`, a
        model of this class (or a subclass) when called on one (`EASE.load` of a folder holding
        another model is an error, not that other model)."""
        from fewrec.models.saving import _load_model

        model = _load_model(path, None if cls is Recommender else cls)
        if not isinstance(model, cls):  # (a model of another class was refused before its files were read)
            raise FewrecError(f"{path} holds the model {model.name!r}, not a {cls.__name__}")
        return model


# (set here, where type checkers still read `load` as the classmethod it is)
setattr(Recommender, "load", _class_only(Recommender.__dict__["load"].__func__))  # noqa: B010


def _import_builtin_models() -> None:
    """Register the built-in models and those of the modules ``$FEWREC_IMPORT`` names
    (comma-separated: models of your own, for the CLI and the service)."""
    import importlib

    import fewrec.models  # noqa: F401  (registers the built-in models)

    modules = [m.strip() for m in os.environ.get("FEWREC_IMPORT", "").split(",") if m.strip()]
    if not modules:
        return
    # the current folder is searched last, while these modules are imported (as `python -c` has
    # it first): `fewrec`, a console script, had not found the README's mymodels.py beside the user
    try:
        here = os.getcwd()
    except OSError:  # a folder deleted under the process
        here = None
    added = here if here is not None and "" not in sys.path and here not in sys.path else None
    if added is not None:
        sys.path.append(added)
    try:
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                # the module's own import of another one failed (it said to put the module on
                # PYTHONPATH, where it was)
                other = exc.name
                if other and other != module and not module.startswith(other + "."):
                    missing = isinstance(exc, ModuleNotFoundError)
                    raise FewrecError(
                        with_fix(
                            f"$FEWREC_IMPORT names {module!r}, which imports {other!r}, "
                            + (f"which is not installed ({exc})" if missing else f"and that fails ({exc})"),
                            f"install the package that provides {other!r} where fewrec runs"
                            if missing
                            else f"fix the import of {other!r} in {module!r}",
                        )
                    ) from None
                raise FewrecError(
                    with_fix(
                        f"$FEWREC_IMPORT names {module!r}, which cannot be imported ({exc})",
                        "put the module in the current folder or on PYTHONPATH (or install it), or fix "
                        "the name",
                    )
                ) from None
    finally:
        if added is not None:
            sys.path.remove(added)


def make_model(name: str, **config: Any) -> Recommender:
    """An unfitted model by its registered name (`fewrec models` lists them), its settings
    given by name: ``make_model("itemknn", neighbors=50)``; each is a field of the model's
    ``Config`` (``type(model).Config``), checked here.

    Raises:
        ConfigError: an unknown model name, an unknown setting or a value out of its range.
    """
    return model_class(name)(**config)


def model_class(name: str) -> type[Recommender]:
    """The model class registered as ``name`` (the built-in models and ``$FEWREC_IMPORT``'s
    imported first), or a ConfigError that lists the names there are."""
    _import_builtin_models()
    if not isinstance(name, str):  # (make_model(ItemKNN): a TypeError of difflib's)
        if isinstance(name, type) and issubclass(name, Recommender):
            fix = f"{name.__name__}() makes one; make_model takes its name, {name.name!r}"
            raise ArgumentError(
                f"a model is made by its registered name, got the class {name.__name__}", fix=fix
            )
        raise ArgumentError(
            f"a model is made by its registered name, got {type(name).__name__} {name!r}",
            fix="make_model('itemknn'); `fewrec models` lists the names",
        )
    if name not in MODELS:
        meant = next((m for m in MODELS if m.casefold() == name.casefold()), None)
        if meant is not None:  # ("ItemKNN": no hint, too far for the nearest spelling)
            raise ConfigError(with_fix(f"unknown model {name!r}", f"names are lower case: {meant!r}"))
        raise ConfigError(with_fix(f"unknown model {name!r}", models_fix([name])))
    return MODELS[name]


def models_fix(unknown: list[str], presets: list[str] | None = None) -> str:
    """The fix for unknown model names: the nearest known name of each (a typo's), then every
    name there is (and the ``presets``, where they are taken too)."""
    names = [*MODELS, *(presets or [])]
    near = [m for u in unknown for m in difflib.get_close_matches(u, names, n=1, cutoff=0.6)]
    guess = f"did you mean {' and '.join(map(repr, dict.fromkeys(near)))}? Or choose" if near else "choose"
    also = f" (or a preset: {', '.join(presets)})" if presets else ""
    return f"{guess} from {', '.join(sorted(MODELS))}{also}"


def nearest_shot(n_hist: np.ndarray, shots) -> np.ndarray:
    """Per query, the index of the shot count nearest its history size (on a log(1 + K) scale,
    so 3 items are nearer 5 than 1, and 40 nearer 50 than 20)."""
    shots = np.asarray(shots, dtype=np.float64)
    return np.abs(np.log1p(n_hist)[:, None] - np.log1p(shots)[None, :]).argmin(axis=1)


def query_seed(seed: int, history: sp.csr_matrix, row: int) -> int:
    """A deterministic per-query seed from the query's history (so batch == single)."""
    lo, hi = history.indptr[row], history.indptr[row + 1]
    key = np.sort(history.indices[lo:hi]).astype(np.int64).tobytes()
    return zlib.crc32(key, seed & 0xFFFFFFFF)


def _stored_info(user_info: pd.DataFrame, u: int) -> dict:
    """User ``u``'s stored side info without its missing fields ({} for an unknown user)."""
    if u < 0 or not len(user_info.columns):
        return {}
    row = user_info.iloc[u]
    return {str(k): v for k, v in row.items() if not _missing(v)}


def _dedupe_keep_last(rows, cols, vals, n_rows: int, n_cols: int) -> sp.csr_matrix:
    frame = pd.DataFrame({"r": rows, "c": cols, "v": vals}).drop_duplicates(["r", "c"], keep="last")
    return sp.csr_matrix(
        (frame["v"].to_numpy(np.float32), (frame["r"].to_numpy(), frame["c"].to_numpy())),
        shape=(n_rows, n_cols),
    )


# Saving and loading live in `fewrec.models.saving`, which imports this module, so they come
# last: importable from here as before.
from fewrec.models.saving import (  # noqa: E402, F401
    STALE_SAVE_SECONDS,
    check_model_dir,
    check_save_path,
    is_saved_model,
    load_model,
)
