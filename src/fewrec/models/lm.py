"""Recommenders backed by a small generative LM (see `fewrec.lm`), behind the model contract.

* ``lm-icl``: in-context few-shot scoring, no parameter update. The score of an item is the LM's
  P(Yes) / (P(Yes) + P(No)) for a TALLRec prompt listing the query's liked and disliked items
  (optionally after 1-3 answered demonstration users taken from the training data).
* ``lm-lora``: the same prompts, with a LoRA adapter tuned on TALLRec-style episodes built from the
  training interactions (each interaction is a target, the user's previous ones its history).
* ``lm-rerank``: a fast retriever ranks everything; the LM re-scores only its top-N unseen items per
  query, which move above the rest (the rest keep the retriever's order).
* ``distilled``: a fast linear student over the like-classifier's features and text-embedding
  interactions, fitted to the LM teacher's scores on training episodes; serving needs no LM.

An LM scores one prompt per (query, item), so scoring a whole catalogue is slow: `score_candidates`
scores only given items (what the TALLRec protocol needs), and `score_batch` (and scoring chosen
items through the public API) refuses more than ``max_prompts`` prompts with a pointer to
`lm-rerank`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
import weakref
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field, field_validator, model_validator

from fewrec.data.dataset import Dataset, label_of
from fewrec.errors import ConfigError, DataError, user_stacklevel, with_fix
from fewrec.lm.lora import LoraSettings
from fewrec.lm.model import DEFAULT_LM
from fewrec.models.base import (
    MODELS,
    FitState,
    ModelConfig,
    Recommender,
    make_model,
    model_class,
    query_seed,
    register,
)
from fewrec.models.content import warn_bare_items
from fewrec.models.likeclf import LikeClassifier
from fewrec.models.query import QueryBatch
from fewrec.topk import top_k

#: (history items, their liked flags, target item, target label) of one episode.
EpisodeRows = tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]

log = logging.getLogger(__name__)


class LMConfig(ModelConfig):
    lm: str = DEFAULT_LM
    """Packaged language model (see `fewrec.lm.LM_SPECS`)."""
    noun: str = "movie"
    """What the items are, in the prompt."""
    with_year: bool = False
    """Add the release year to titles ("Heat (1995)"): more tokens, slower prompts."""
    max_history: int = Field(10, ge=1)
    """History items shown per query (a seeded subset when a query has more); at least 1 (with
    0 the LM read no history, and its reasons said "Popular right now.")."""
    like_threshold: float = Field(0.6, gt=0, lt=1)
    """A rating counts as liked above this share of the top training rating (star ratings only:
    on implicit data or counts every interaction is a like, whatever this is)."""
    demos: int = Field(0, ge=0, le=3)
    """Answered demonstration users (from the training data) shown before each question."""
    batch_size: int = Field(8, ge=1)
    """Prompts per LM forward pass when scoring (``lm-lora``'s training uses ``lora.batch_size``).
    Larger: fewer passes, more memory."""
    max_prompts: int = Field(512, ge=1)
    """Most prompts one `score_batch` call, or one `score(query, items)` or `recommend(query,
    candidates=...)`, may need (a prompt costs ~0.2-2 s on 2 CPU cores)."""
    progress: bool = False
    """Progress bars of the LM's scoring (and of ``lm-lora``'s adapter training)."""

    @field_validator("lm")
    @classmethod
    def _packaged_lm(cls, value: str) -> str:
        from fewrec.lm.model import resolve_lm

        resolve_lm(value)  # an unknown name was accepted here and failed only when scoring
        return value

    @field_validator("noun")
    @classmethod
    def _some_noun(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("noun must say what the items are, e.g. 'movie' or 'book'")
        return value


#: How many words of its text stand for an item without a title in a prompt.
PROMPT_TEXT_WORDS = 12


def item_prompt_texts(data: Dataset, with_year: bool = False) -> list[str]:
    """Short item text for prompts: the title (with the year if asked) when the data has titles
    (an untitled item's first words of text), else the item text."""
    info = data.item_info
    if "title" not in info.columns:
        # the item text: its template, or every text field in order (a missing one left out;
        # ``astype(str)`` kept pandas 3's missing text as a float NaN, and ``.strip()`` failed)
        texts = data.item_texts()
        return [" ".join(t.split()) or data.items.id(i) for i, t in enumerate(texts)]
    years = info["year"] if with_year and "year" in info.columns else pd.Series([""] * len(info))
    texts = data.item_texts()
    # as items are labelled everywhere (`label_of`): pandas' missing text had read "<NA>", and
    # a numeric year column with gaps "(1995.0)"; an untitled item reads its text's first words
    # (it read its id, and the warning said it had no text, blurb and genres and all)
    return [
        " ".join(
            label_of(title, year, " ".join(texts[i].split()[:PROMPT_TEXT_WORDS]) or data.items.id(i)).split()
        )
        for i, (title, year) in enumerate(zip(info["title"], years, strict=True))
    ]


def dataset_episodes(
    data: Dataset, like_cut: float, max_history: int = 10, min_history: int = 1
) -> EpisodeRows:
    """TALLRec-style episodes of a dataset: per user in time order, every interaction with at
    least ``min_history`` earlier ones is a target; its history is the previous ``max_history``."""
    inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
    users = inter["user"].to_numpy()
    items = inter["item"].to_numpy()
    liked = (inter["rating"].to_numpy() > like_cut).astype(np.int8)
    hist, hlab, targets, labels = [], [], [], []
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.array([], int)
    ends = np.r_[starts[1:], len(users)]
    for lo, hi in zip(starts, ends, strict=True):
        for j in range(lo + min_history, hi):
            h0 = max(lo, j - max_history)
            hist.append(items[h0:j])
            hlab.append(liked[h0:j])
            targets.append(items[j])
            labels.append(liked[j])
    return hist, hlab, np.asarray(targets, dtype=np.int64), np.asarray(labels, dtype=np.int64)


def episode_users(data: Dataset, min_history: int = 1) -> np.ndarray:
    """The user of each of `dataset_episodes`' episodes, in its order."""
    users = np.sort(data.interactions["user"].to_numpy(), kind="stable")
    ids, counts = np.unique(users, return_counts=True)
    return np.repeat(ids, np.maximum(counts - min_history, 0))


def split_episodes_by_user(
    users: np.ndarray, order: np.ndarray, n_valid: int, n_train: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) episodes: validation takes users' latest episodes (each user's
    last, users in a seeded order; then the ones before, where there are fewer users), whose
    targets no training history of theirs holds; training the first ``n_train`` of ``order``
    left. (Split one episode at a time, a validation target was in its user's next training
    histories, its answer shown: early stopping read labels the adapter had been shown.)
    ``users``: each episode's user, episodes grouped by user in time order (`episode_users`)."""
    n = len(users)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    group = np.cumsum(np.r_[True, users[1:] != users[:-1]]) - 1
    from_end = np.r_[starts[1:], n][group] - 1 - np.arange(n)  # 0: the user's last episode
    priority = np.random.default_rng(seed).permutation(len(starts))[group]
    valid = np.lexsort((priority, from_end))[:n_valid]
    train = order[~np.isin(order, valid)][:n_train]
    return valid, train


def drop_seen_targets(
    rows: EpisodeRows, users: np.ndarray, valid: np.ndarray, train: np.ndarray
) -> np.ndarray:
    """``train`` without the episodes whose history holds a validation target of their user."""
    targets = {(int(users[i]), int(rows[2][i])) for i in valid.tolist()}
    keep = [i for i in train.tolist() if not any((int(users[i]), int(t)) in targets for t in rows[0][i])]
    return np.asarray(keep, dtype=np.int64)


def episode_order(rows: EpisodeRows, seed: int) -> np.ndarray:
    """Episodes longest history first (TALLRec samples have full histories), seeded among ties."""
    perm = np.random.default_rng(seed).permutation(len(rows[3]))
    lengths = np.array([len(rows[0][i]) for i in perm], dtype=np.int64)
    return perm[np.argsort(-lengths, kind="stable")]


def take_episodes(rows: EpisodeRows, idx: np.ndarray) -> EpisodeRows:
    h, hl, t, y = rows
    return [h[i] for i in idx], [hl[i] for i in idx], t[idx], y[idx]


def score_candidates(model: Recommender, batch: QueryBatch, candidates: np.ndarray) -> np.ndarray:
    """Scores of given items per query ((n_queries x m) -> same shape), for any model: models that
    score pairs cheaply (LM models) do so, the others score everything and pick."""
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 2 or cand.shape[0] != len(batch):
        raise DataError(f"candidates must be (n_queries x m), got {cand.shape} for {len(batch)} queries")
    if hasattr(model, "score_candidates"):
        return model.score_candidates(batch, cand)
    out = np.empty(cand.shape, dtype=np.float64)
    for lo in range(0, len(batch), 256):
        hi = min(lo + 256, len(batch))
        s = model.score_batch(batch.rows(lo, hi))
        out[lo:hi] = np.take_along_axis(s, cand[lo:hi], axis=1)
    return out


def tallrec_pair_scores(model: Recommender, samples: Any) -> np.ndarray:
    """Each TALLRec sample's target score (same queries as `tallrec_scores`, one item each)."""
    from fewrec.eval.evaluate import tallrec_batch

    fit = model.fitted
    batch = tallrec_batch(samples, model.n_items, fit.like_rating, fit.dislike_rating).for_model(model)
    return score_candidates(model, batch, np.asarray(samples.items)[:, None])[:, 0]


class _LMRecommender(Recommender):
    """Prompt building and pair scoring shared by ``lm-icl`` and ``lm-lora``."""

    Config: ClassVar[type[ModelConfig]] = LMConfig
    config: LMConfig
    scores_new_items = False
    reads_history_text = True  # the prompt names the history items
    reads_ratings = True  # the prompt says which history items were liked
    explains_candidates_only = True  # a prompt per item: never the whole catalogue per variant
    adapter_: str | None = None
    split_: int | None = None

    # ------------------------------------------------------------------ fit
    def _fit(self, data: Dataset) -> None:
        from fewrec.lm.model import _LOADED, gguf_path

        if self.config.lm not in _LOADED:
            gguf_path(self.config.lm)  # a package not installed: an error now, not when scoring
        self.texts_ = item_prompt_texts(data, self.config.with_year)
        warn_bare_items(data.items.ids, self.texts_, "the language model's prompt")
        if self.config.with_year and "year" not in data.item_info.columns:  # (ignored without a word)
            warnings.warn(
                f"{self.name}: with_year=True, but the items have no year field, so the prompt's "
                "titles have none",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        cfg = self.config
        self.demo_rows_: EpisodeRows = ([], [], np.zeros(0, np.int64), np.zeros(0, np.int64))
        if cfg.demos:
            rows = dataset_episodes(data, self._like_cut(), cfg.max_history, min_history=1)
            self.demo_rows_ = take_episodes(rows, _pick_demos(rows, cfg.demos, cfg.seed))
        self._fit_lm(data)

    def _fit_lm(self, data: Dataset) -> None:
        """Model-specific learning (none for in-context scoring)."""

    def _like_cut(self) -> float:
        return self.fitted.like_cut(self.config.like_threshold)

    @property
    def lm(self) -> Any:
        """The shared language model (loaded on first use)."""
        from fewrec.lm.model import load_lm

        return load_lm(self.config.lm)

    # ------------------------------------------------------------------ prompts
    def episode(self, hist: np.ndarray, liked: np.ndarray, target: int, label: int | None = None) -> Any:
        from fewrec.lm.prompts import Episode

        order = np.argsort(hist, kind="stable")
        hist, liked = np.asarray(hist)[order], np.asarray(liked)[order]
        t = self.texts_
        return Episode(
            tuple(t[i] for i, k in zip(hist, liked, strict=True) if k),
            tuple(t[i] for i, k in zip(hist, liked, strict=True) if not k),
            t[int(target)],
            None if label is None else int(label),
        )

    def prompts(
        self, hists: Sequence[np.ndarray], liked: Sequence[np.ndarray], targets: np.ndarray
    ) -> list[str]:
        """Rendered prompts of episodes (history items, liked flags, target)."""
        from fewrec.lm.prompts import build_messages

        h, hl, t, y = self.demo_rows_
        demos = [self.episode(h[i], hl[i], int(t[i]), int(y[i])) for i in range(len(t))]
        lm = self.lm
        return [
            lm.render(build_messages(self.episode(a, b, int(c)), demos, self.config.noun))
            for a, b, c in zip(hists, liked, targets, strict=True)
        ]

    def score_episodes(
        self, hists: Sequence[np.ndarray], liked: Sequence[np.ndarray], targets: np.ndarray
    ) -> np.ndarray:
        """P(Yes) / (P(Yes) + P(No)) of each episode."""
        texts = self.prompts(hists, liked, targets)
        return self.lm.score(
            texts,
            split=self.split_,
            adapter=self.adapter_,
            batch_size=self.config.batch_size,
            progress=self.config.progress,
        )

    def history_read(self, batch: QueryBatch, row: int) -> np.ndarray | None:
        return self.query_history(batch, row)[0]

    def query_history(self, batch: QueryBatch, row: int) -> tuple[np.ndarray, np.ndarray]:
        """History items of one query and whether each was liked (capped at ``max_history``:
        a random sample, which takes a known user's items new to the query, those outside their
        training history, first; for user 405 the query's own items were 1-5 of 743, and none
        reached the prompt)."""
        h = batch.history
        lo, hi = h.indptr[row], h.indptr[row + 1]
        items, vals = h.indices[lo:hi], h.data[lo:hi]
        cap = self.config.max_history
        if len(items) > cap:
            rng = np.random.default_rng(query_seed(self.config.seed, h, row))
            u, train = int(batch.users[row]), self.fitted.train
            new = np.ones(len(items), dtype=bool)
            if u >= 0:
                new = ~np.isin(items, train.indices[train.indptr[u] : train.indptr[u + 1]])
            if new.all():  # (a new user's query: the sample it always was)
                keep = np.sort(rng.choice(len(items), cap, replace=False))
            else:  # the new ones in random order, then the rest in random order: the first ``cap``
                order = np.r_[rng.permutation(np.flatnonzero(new)), rng.permutation(np.flatnonzero(~new))]
                keep = np.sort(order[:cap])
            items, vals = items[keep], vals[keep]
        return items.astype(np.int64), (vals > self._like_cut()).astype(np.int8)

    # ------------------------------------------------------------------ scoring
    def score_candidates(self, batch: QueryBatch, candidates: np.ndarray) -> np.ndarray:
        """LM scores of the given items per query ((n_queries x m) item indices)."""
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 2 or cand.shape[0] != len(batch):
            raise DataError(f"candidates must be (n_queries x m), got {cand.shape} for {len(batch)} queries")
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_items):
            raise DataError(f"candidate item indices must be in 0..{self.n_items - 1}")
        hists, liked, targets = [], [], []
        for q in range(len(batch)):
            items, lab = self.query_history(batch, q)
            for c in cand[q]:
                hists.append(items)
                liked.append(lab)
                targets.append(c)
        scores = self.score_episodes(hists, liked, np.asarray(targets, dtype=np.int64))
        return scores.reshape(cand.shape)

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        n = len(batch) * self.n_items
        if n > self.config.max_prompts:
            raise ConfigError(
                f"{self.name} would score {n} prompts ({len(batch)} queries x {self.n_items} items), "
                f"over max_prompts={self.config.max_prompts}. Fix: score chosen items (score(query, items), "
                "recommend(query, candidates=...), CLI recommend --candidate ID), re-rank a short list "
                "with lm-rerank, or raise max_prompts"
            )
        cand = np.tile(np.arange(self.n_items), (len(batch), 1))
        return self.score_candidates(batch, cand).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        h, hl, t, y = self.demo_rows_
        width = max([len(x) for x in h], default=0)
        dh = np.full((len(h), width), -1, dtype=np.int64)
        dl = np.zeros((len(h), width), dtype=np.int8)
        for i, (a, b) in enumerate(zip(h, hl, strict=True)):
            dh[i, : len(a)], dl[i, : len(b)] = a, b
        return {
            "texts": np.array(self.texts_, dtype=str),
            "demo_hist": dh,
            "demo_liked": dl,
            "demo_target": t,
            "demo_label": y,
        }

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.texts_ = arrays["texts"].tolist()
        dh, dl = arrays["demo_hist"], arrays["demo_liked"]
        self.demo_rows_ = (
            [r[r >= 0] for r in dh],
            [dl[i][dh[i] >= 0] for i in range(len(dh))],
            arrays["demo_target"].astype(np.int64),
            arrays["demo_label"].astype(np.int64),
        )


def _pick_demos(rows: EpisodeRows, n: int, seed: int) -> np.ndarray:
    """``n`` demonstration episodes with the longest histories, alternating Yes and No."""
    hists, _, _, labels = rows
    if not len(labels):
        raise DataError(
            "the training data has no episode to show as a demonstration",
            fix="train on users with at least two interactions, or set demos=0",
        )
    rng = np.random.default_rng(seed)
    longest = max(len(h) for h in hists)
    full = np.array([i for i, h in enumerate(hists) if len(h) == longest])
    picks: list[int] = []
    for k in range(n):
        want = 1 - k % 2
        pool = [i for i in full[labels[full] == want] if i not in picks] or [
            i for i in full if i not in picks
        ]
        if not pool:
            break
        picks.append(int(rng.choice(pool)))
    return np.asarray(picks, dtype=np.int64)


@register
class LMInContext(_LMRecommender):
    """Few-shot in-context LM scoring (no parameter update)."""

    name = "lm-icl"


class LMLoraConfig(LMConfig):
    lora: LoraSettings = LoraSettings()
    """The adapter and its training (`fewrec.lm.lora.LoraSettings`): rank, alpha, dropout,
    upper_layers, targets, lr, weight_decay, batch_size, max_epochs, warmup_ratio, patience and
    its own seed, which seeds the adapter's start and the batch order (``seed`` picks the
    episodes)."""
    max_episodes: int = Field(64, ge=2)
    """Training episodes, longest histories first (each costs LM forward/backward passes)."""
    min_history: int = Field(3, ge=0)
    """Shortest history of a training episode (0, with a warning, where fewer than 2 episodes
    have it)."""
    valid_fraction: float = Field(0.15, gt=0, lt=1)
    """Share of episodes held out for early stopping (at least 4, at most 48)."""


def _same_training(a: FitState, b: FitState) -> bool:
    """Whether two fits saw the same catalogue, users and interactions."""
    if a.items != b.items or a.users != b.users or a.train.shape != b.train.shape:
        return False
    return a.train.nnz == b.train.nnz and (a.train != b.train).nnz == 0


class AdapterLease:
    """Removes a LoRA adapter from the shared LM once no model holds it: copies made by
    `copy_for_update` share the lease, so dropping a copy leaves the original's adapter (a
    `__del__` on the model removed it with the first copy dropped). Nothing runs at interpreter
    exit, when the LM goes anyway."""

    def __init__(self, lm: str, adapter: str):
        self.finalizer = weakref.finalize(self, _remove_adapter, lm, adapter)
        self.finalizer.atexit = False


def _remove_adapter(lm_name: str, adapter: str) -> None:
    with contextlib.suppress(Exception):
        from fewrec.lm.model import _LOADED

        lm = _LOADED.get(lm_name)
        if lm is not None:
            lm.remove_adapter(adapter)


@register
class LMLora(_LMRecommender):
    """The LM with a LoRA adapter tuned on TALLRec-style episodes of the training data."""

    name = "lm-lora"
    Config = LMLoraConfig
    config: LMLoraConfig

    def _fit_lm(self, data: Dataset) -> None:
        from fewrec.lm.lora import split_for, train_lora
        from fewrec.lm.model import new_adapter_name

        cfg = self.config
        split = split_for(cfg.lora, self.lm)  # upper_layers beyond the LM's layers: an error first
        min_history = cfg.min_history
        rows = dataset_episodes(data, self._like_cut(), cfg.max_history, min_history)
        if len(rows[3]) < 2:
            min_history = 0
            rows = dataset_episodes(data, self._like_cut(), cfg.max_history, min_history)
            if len(rows[3]) >= 2:  # (it fell back without a word)
                warnings.warn(
                    f"{self.name}: fewer than 2 training episodes have min_history={cfg.min_history} "
                    "earlier items, so it trains on episodes of shorter histories too (min_history=0)",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )
        n = len(rows[3])
        if n < 2:
            raise DataError(
                f"{self.name} needs at least 2 training episodes, the data gives {n}",
                fix="train on users with interactions (a few per user)",
            )
        # validation: users' latest episodes; training: the longest-history episodes left
        n_valid = int(np.clip(round(cfg.valid_fraction * min(n, cfg.max_episodes)), 4, 48))
        n_valid = max(1, min(n_valid, n // 2))
        n_train = min(cfg.max_episodes, n - n_valid)
        users = episode_users(data, min_history)
        valid_idx, train_idx = split_episodes_by_user(
            users, episode_order(rows, cfg.seed), n_valid, n_train, cfg.seed
        )
        valid_idx, train_idx = _both_answers(valid_idx, train_idx, np.asarray(rows[3]), self.name)
        train_idx = drop_seen_targets(rows, users, valid_idx, train_idx)
        if not len(train_idx):
            raise DataError(
                f"{self.name}: every training episode shows a validation answer (too few users)",
                fix="train on more users",
            )
        n_train, n_valid = len(train_idx), len(valid_idx)
        valid, train = take_episodes(rows, valid_idx), take_episodes(rows, train_idx)
        self.adapter_ = new_adapter_name(self.name.replace("-", ""))
        self.adapter_lease_ = AdapterLease(cfg.lm, self.adapter_)
        self.split_ = split
        result = train_lora(
            self.lm,
            self.adapter_,
            self.prompts(*train[:3]),
            train[3],
            self.prompts(*valid[:3]),
            valid[3],
            cfg.lora,
            progress=cfg.progress,
        )
        self.lora_weights_ = result.weights
        self.lora_history_ = result.history
        self.lora_best_epoch_ = result.best_epoch
        self.n_train_episodes_, self.n_valid_episodes_ = n_train, n_valid

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = super()._get_arrays()
        out.update({f"lora.{k}": v for k, v in self.lora_weights_.items()})
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        from fewrec.lm.lora import peft_config, split_for
        from fewrec.lm.model import new_adapter_name

        super()._set_arrays(arrays)
        self.lora_weights_ = {k[5:]: v for k, v in arrays.items() if k.startswith("lora.")}
        lm = self.lm
        self.adapter_ = new_adapter_name(self.name.replace("-", ""))
        self.adapter_lease_ = AdapterLease(self.config.lm, self.adapter_)
        self.split_ = split_for(self.config.lora, lm, strict=False)  # (saved before the check)
        lm.add_adapter(self.adapter_, peft_config(self.config.lora, lm, strict=False))
        lm.set_adapter_weights(self.adapter_, self.lora_weights_)


def _both_answers(
    valid: np.ndarray, train: np.ndarray, labels: np.ndarray, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The validation episodes given a Yes and a No where training has both to spare.

    Validation of one answer (4 of a small data's episodes, drawn at random) has no AUC: the
    fit's ``valid_auc`` read nan, and early stopping read the loss of one answer only. One
    training episode of the other answer changes places with the last validation one. Where
    all the episodes give one answer, the adapter can learn nothing but that answer: said."""
    valid, train = valid.copy(), train.copy()
    answers = np.unique(labels[np.concatenate([valid, train])])
    if len(answers) == 1:
        said = "Yes (liked)" if answers[0] else "No (not liked)"
        warnings.warn(
            with_fix(
                f"{name}: every training episode's answer is {said}, so the adapter can only learn to "
                "give that answer",
                "train on data with both likes and dislikes: star ratings, where like_threshold sets "
                "the line (on implicit data or counts every interaction is a like)",
            ),
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    elif len(np.unique(labels[valid])) == 1:
        other = np.flatnonzero(labels[train] != labels[valid[0]])
        if len(other) > 1:  # (training keeps one of that answer at least)
            valid[-1], train[other[0]] = train[other[0]], valid[-1]
    return valid, train


def _part(name: str, config: dict[str, Any], state: Any) -> Recommender:
    """A fitted sub-model rebuilt from its name, config and the parent's fit state."""
    cls = model_class(name)
    model = cls(cls.Config(**config))
    model.state_ = state
    return model


def _lm_model(model: Recommender, role: str) -> _LMRecommender:
    """``model`` as the LM model (lm-icl, lm-lora) that a re-ranker's scorer or a student's
    teacher must be."""
    if not isinstance(model, _LMRecommender):
        raise ConfigError(f"the {role} must be an LM model (lm-icl, lm-lora), got {model.name}")
    return model


def _like_classifier(model: Recommender, name: str) -> LikeClassifier:
    """``model`` as the like-classifier whose features a distilled student reads."""
    if not isinstance(model, LikeClassifier):
        raise ConfigError(f"the base must be a like-classifier (features + text), got {name!r}")
    return model


def _split_arrays(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + ".")}


def _check_part(role: str, name: str, config: dict[str, Any], kinds: tuple[type, ...] | None = None) -> None:
    """A sub-model's name and settings, checked when the config is made (a mistyped scorer
    setting failed after the retriever's minutes of fitting, a wrong base after the teacher's)."""
    from fewrec.models.base import _import_builtin_models

    _import_builtin_models()
    if name not in MODELS:
        raise ValueError(f"unknown {role} {name!r}; choose from {sorted(MODELS)}")
    if kinds is not None and not issubclass(MODELS[name], kinds):
        allowed = sorted(n for n, c in MODELS.items() if issubclass(c, kinds))
        raise ValueError(f"the {role} must be one of {allowed}, got {name!r}")
    if not isinstance(config, dict):
        raise ValueError(f"{role}_config takes a dict of settings, got {config!r}")
    try:
        MODELS[name].Config(**config)
    except ConfigError as exc:
        raise ValueError(f"{role}_config for {name}: {exc.problems or exc}") from None


class RerankConfig(ModelConfig):
    retriever: str = "fewshot"
    """Fast model that ranks the whole catalogue."""
    retriever_config: dict[str, Any] = Field(default_factory=dict)
    """Settings of the retriever (overrides of its defaults), checked when the config is made."""
    scorer: str = "lm-lora"
    """LM model that re-scores the top ``top_n`` (``lm-lora`` or ``lm-icl``)."""
    scorer_config: dict[str, Any] = Field(default_factory=dict)
    """Settings of the scorer (overrides of its defaults), checked when the config is made; its
    ``max_prompts`` caps the prompts of one scoring call."""
    top_n: int = Field(20, ge=1)
    """How many of the retriever's best items (outside the query's history) the LM re-scores
    per query, at most the catalogue; they move above the rest. Larger: one more prompt per
    item and query, refused past the scorer's ``max_prompts``."""

    @model_validator(mode="after")
    def _parts(self) -> RerankConfig:
        _check_part("retriever", self.retriever, self.retriever_config)
        _check_part("scorer", self.scorer, self.scorer_config, (_LMRecommender,))
        return self


def ridge_with_loo(z: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """The ridge's weights over the centred columns ``z`` (``l2`` on them, a free intercept, the
    mean of ``y``), and the R² of each row predicted by the ridge fitted without it, in closed
    form: residual / (1 - leverage), the leverage of ``z`` plus the intercept's 1 / n (left out,
    it read 0.99 where a refit per row gave -0.71)."""
    solved = np.linalg.solve(z.T @ z + l2 * np.eye(z.shape[1]), z.T)  # (Z'Z + l2 I)^-1 Z'
    coef = solved @ (y - y.mean())
    pred = z @ coef + y.mean()
    leverage = np.einsum("ij,ji->i", z, solved) + 1.0 / len(y)
    var = max(float(np.var(y)), 1e-12)
    return coef, float(1 - np.mean(((y - pred) / np.maximum(1 - leverage, 1e-6)) ** 2) / var)


@register
class LMRerank(Recommender):
    """A fast retriever's top-N unseen items re-scored by an LM (the rest keep their order below)."""

    name = "lm-rerank"
    reads_ratings = True
    reads_history_text = True  # its scorer's prompt names the history items
    Config = RerankConfig
    config: RerankConfig
    scorer_: _LMRecommender

    def _fit(self, data: Dataset) -> None:
        cfg = self.config  # (its parts were checked with it: `_check_part`)
        # its seed is its parts' unless their settings give one (it seeded nothing)
        self.retriever_ = make_model(cfg.retriever, **{"seed": cfg.seed, **cfg.retriever_config}).fit(data)
        scorer = make_model(cfg.scorer, **{"seed": cfg.seed, **cfg.scorer_config})
        self.scorer_ = _lm_model(scorer.fit(data), "scorer")

    # what the query reads is what its retriever reads: free text and side info choose the
    # shortlist and order the rest (it warned that it ignored them, and never credited them)
    @property
    def reads_text(self) -> bool:
        return self.retriever_.reads_text if hasattr(self, "retriever_") else False

    def text_match(self, batch: QueryBatch) -> np.ndarray | None:
        return self.retriever_.text_match(batch.for_model(self.retriever_))

    @property
    def text_encoders(self) -> list[str]:
        return self.retriever_.text_encoders if hasattr(self, "retriever_") else []

    @property
    def side_levels(self) -> frozenset[tuple[str, str]]:
        return self.retriever_.side_levels if hasattr(self, "retriever_") else frozenset()

    def history_read(self, batch: QueryBatch, row: int) -> np.ndarray | None:
        """The items its scorer's prompt names (a sample of ``max_history``): reasons leave out
        only those. Each leave-one-out variant of a longer history had its scorer draw another
        sample, and reasons cited films no prompt had shown."""
        return self.scorer_.history_read(batch.for_model(self.scorer_), row)

    @classmethod
    def from_parts(cls, retriever: Recommender, scorer: Recommender, top_n: int = 20) -> LMRerank:
        """A re-ranker from a fitted retriever and a fitted LM model of the same training data."""
        scorer = _lm_model(scorer, "scorer")
        if retriever.fitted.items != scorer.fitted.items:
            raise ConfigError("retriever and scorer were trained on different catalogues")
        model = cls(
            retriever=retriever.name,
            retriever_config=retriever.config.model_dump(mode="json"),
            scorer=scorer.name,
            scorer_config=scorer.config.model_dump(mode="json"),
            top_n=top_n,
        )
        model.state_ = retriever.state_
        model.retriever_, model.scorer_ = retriever, scorer
        return model

    def shortlist(self, batch: QueryBatch) -> tuple[np.ndarray, np.ndarray]:
        """Retriever scores (n x items) and each query's top-N unseen items (n x <=N, -1 padded)."""
        base = np.asarray(self.retriever_.score_batch(batch.for_model(self.retriever_)), dtype=np.float64)
        masked = base.copy()
        h = batch.history.tocoo()
        masked[h.row, h.col] = -np.inf
        n = min(self.config.top_n, self.n_items)
        top = np.full((len(batch), n), -1, dtype=np.int64)
        for q in range(len(batch)):
            best = top_k(masked[q], n)
            best = best[np.isfinite(masked[q, best])]
            top[q, : len(best)] = best
        return base, top

    @staticmethod
    def _below(base: np.ndarray, top: np.ndarray) -> np.ndarray:
        """Retriever scores shifted below 0 (LM scores lie in (0, 1)), order kept."""
        out = base.copy()
        for q in range(len(base)):
            chosen = top[q][top[q] >= 0]
            rest = np.ones(base.shape[1], dtype=bool)
            rest[chosen] = False
            finite = np.isfinite(base[q]) & rest
            if finite.any():
                out[q, finite] = base[q, finite] - base[q, finite].max() - 1.0
        return out

    def _check_prompts(self, n: int, queries: int) -> None:
        """Its scorer's ``max_prompts``, which it had ignored (top_n=5000: 3,364 prompts)."""
        limit = self.scorer_.config.max_prompts
        if n > limit:
            raise ConfigError(
                # (an explanation scores each query again without each history item: "queries"
                # read as the user's own)
                f"{self.name} would score {n} prompts ({queries} queries, or variants of a query an "
                f"explanation scores, x up to top_n={self.config.top_n} items), over the scorer's "
                f"max_prompts={limit}. Fix: a smaller top_n, fewer queries at once, recommend without "
                "explain, or raise scorer_config's max_prompts"
            )

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        base, top = self.shortlist(batch)
        self._check_prompts(int((top >= 0).sum()), len(batch))
        out = self._below(base, top)
        # a shortlist short of top_n (fewer unseen items with a score) is padded with -1: only
        # its items are prompted (the padding had been prompted as item 0, past max_prompts)
        full = (top >= 0).all(axis=1)
        if full.any():
            rows = np.flatnonzero(full)
            lm = self.scorer_.score_candidates(batch.take(rows), top[rows])
            for i, q in enumerate(rows.tolist()):
                out[q, top[q]] = lm[i]
        for q in np.flatnonzero(~full).tolist():
            items = top[q][top[q] >= 0]
            if len(items):
                out[q, items] = self.scorer_.score_candidates(batch.rows(q, q + 1), items[None, :])[0]
        return out.astype(np.float32)

    def score_candidates(self, batch: QueryBatch, candidates: np.ndarray) -> np.ndarray:
        """Exactly the `score_batch` entries of the given items, with LM prompts only for the
        candidates inside a query's top-N."""
        cand = np.asarray(candidates, dtype=np.int64)
        base, top = self.shortlist(batch)
        below = self._below(base, top)
        out = np.take_along_axis(below, cand, axis=1)
        hit = np.array([[c in set(top[q].tolist()) for c in cand[q]] for q in range(len(cand))], dtype=bool)
        self._check_prompts(int(hit.sum()), len(batch))
        for q in np.flatnonzero(hit.any(axis=1)).tolist():
            cols = np.flatnonzero(hit[q])
            out[q, cols] = self.scorer_.score_candidates(batch.rows(q, q + 1), cand[q : q + 1, cols])[0]
        self.last_hit_rate_ = float(hit.mean()) if hit.size else 0.0
        return out

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {f"retriever.{k}": v for k, v in self.retriever_._get_arrays().items()}
        out.update({f"scorer.{k}": v for k, v in self.scorer_._get_arrays().items()})
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        cfg = self.config
        self.retriever_ = _part(cfg.retriever, cfg.retriever_config, self.state_)
        self.retriever_._set_arrays(_split_arrays(arrays, "retriever"))
        self.scorer_ = _lm_model(_part(cfg.scorer, cfg.scorer_config, self.state_), "scorer")
        self.scorer_._set_arrays(_split_arrays(arrays, "scorer"))


class DistilledConfig(ModelConfig):
    teacher: str = "lm-lora"
    """LM model whose scores the student learns (``lm-lora`` or ``lm-icl``)."""
    teacher_config: dict[str, Any] = Field(default_factory=dict)
    """Settings of the teacher (overrides of its defaults), checked when the config is made;
    its ``max_history`` also caps the history of the student's training episodes."""
    base: str = "like-clf"
    """Fast model whose features the student uses."""
    base_config: dict[str, Any] = Field(default_factory=dict)
    """Settings of the base (overrides of its defaults), checked when the config is made; its
    ``like_threshold`` says which history items count as liked."""
    text_dims: int = Field(8, ge=0)
    """PCA dimensions of the text-embedding features."""
    l2: float = Field(1.0, gt=0)
    """Ridge penalty of the student."""
    max_episodes: int = Field(128, ge=4)
    """Training episodes the teacher labels, longest histories first (one LM prompt each)."""
    min_history: int = Field(3, ge=0)
    """Shortest history of a training episode (interactions before the target); when that
    leaves fewer than 4 episodes, every interaction is one, the first with no history."""

    @model_validator(mode="after")
    def _parts(self) -> DistilledConfig:
        _check_part("teacher", self.teacher, self.teacher_config, (_LMRecommender,))
        _check_part("base", self.base, self.base_config, (LikeClassifier,))
        return self


@register
class DistilledLM(Recommender):
    """A linear student of an LM teacher over like-classifier + text features (no LM to serve).

    Features of (history, target): the like classifier's six standardised features, the target's
    text embedding (PCA), and its element-wise product with the liked-minus-disliked history mean.
    The student is a ridge regression of the teacher's logit log(p / (1 - p)).
    """

    name = "distilled"
    reads_ratings = True
    Config = DistilledConfig
    config: DistilledConfig
    scores_new_items = False
    reads_history_text = True  # the history's text embeddings are among its features
    base_: LikeClassifier
    _given_teacher: _LMRecommender  # set by `with_teacher` only (not saved)

    def _fit(self, data: Dataset) -> None:
        cfg = self.config  # (its parts were checked with it: `_check_part`)
        teacher: _LMRecommender | None = getattr(self, "_given_teacher", None)
        if teacher is not None and not _same_training(teacher.fitted, self.fitted):
            raise ConfigError(
                with_fix(
                    "the teacher given to with_teacher was trained on other data than this fit's",
                    "fit the student on the teacher's training data, or make it with "
                    "make_model('distilled', ...) to train its own teacher",
                )
            )
        base = make_model(cfg.base, **cfg.base_config)
        encoder = getattr(base.config, "encoder", None)
        if isinstance(encoder, str):  # the embedding width is known before any (LM) training
            from fewrec.text.encoder import resolve_model

            self._check_text_dims(resolve_model(encoder).dim, f"the base's text encoder {encoder}")
        if teacher is None:
            teacher = _lm_model(make_model(cfg.teacher, **cfg.teacher_config).fit(data), "teacher")
        self.base_ = _like_classifier(base.fit(data), cfg.base)
        self._check_text_dims(np.shape(self.base_.emb_)[1], "the base's text embeddings")
        self._fit_pca()
        like_cut = self.fitted.like_cut(self.base_.config.like_threshold)
        rows = dataset_episodes(data, like_cut, teacher.config.max_history, cfg.min_history)
        if len(rows[3]) < 4:
            rows = dataset_episodes(data, like_cut, teacher.config.max_history, 0)
        if len(rows[3]) < 4:
            raise DataError(
                "distillation needs at least 4 training episodes",
                fix="train on users with a few interactions each",
            )
        rows = take_episodes(rows, episode_order(rows, cfg.seed)[: cfg.max_episodes])
        hists, liked, targets, labels = rows
        t0 = time.perf_counter()
        p = np.clip(teacher.score_episodes(hists, liked, targets), 1e-6, 1 - 1e-6)
        self.teacher_seconds_ = time.perf_counter() - t0
        log.debug("the teacher scored %d episodes in %.1f s", len(targets), self.teacher_seconds_)
        y = np.log(p / (1 - p))
        # leave each episode's own label out of the item statistics (as the base does in training)
        x = np.vstack(
            [
                self._episode_features(h, hl, np.array([t]), loo=float(lab))[0]
                for h, hl, t, lab in zip(hists, liked, targets, labels, strict=True)
            ]
        )
        self.x_mu_, self.x_sd_ = x.mean(axis=0), x.std(axis=0) + 1e-6
        z = (x - self.x_mu_) / self.x_sd_
        self.y_mu_ = float(y.mean())
        # and each episode predicted by the ridge fitted without it: 22 features fit 16
        # episodes' teacher scores closely whatever they are
        self.coef_, self.loo_r2_ = ridge_with_loo(z, y, cfg.l2)
        pred = z @ self.coef_ + self.y_mu_
        var = max(float(np.var(y)), 1e-12)
        self.fit_r2_ = float(1 - np.mean((y - pred) ** 2) / var)
        self.n_episodes_ = len(y)
        if self.loo_r2_ < 0:
            warnings.warn(
                with_fix(
                    f"{self.name}: on an episode left out of its fit, the student predicts the "
                    f"teacher no better than the teacher's mean score (leave-one-out R² "
                    f"{self.loo_r2_:.2f}, fit R² {self.fit_r2_:.2f}; {len(y)} episodes, "
                    f"{z.shape[1]} features): little of the teacher's judgement carries over to new episodes",
                    "train on more users' interactions, raise max_episodes, or lower text_dims",
                ),
                UserWarning,
                stacklevel=user_stacklevel(),
            )

    @classmethod
    def with_teacher(cls, teacher: Recommender, **config: Any) -> DistilledLM:
        """A student that will learn from an already fitted LM teacher (no second LM training)."""
        teacher = _lm_model(teacher, "teacher")
        model = cls(teacher=teacher.name, teacher_config=teacher.config.model_dump(mode="json"), **config)
        model._given_teacher = teacher
        return model

    def _check_text_dims(self, width: int, source: str) -> None:
        """More PCA dimensions than the embeddings have were quietly cut to their width."""
        if self.config.text_dims > width:
            raise ConfigError(
                with_fix(
                    f"text_dims={self.config.text_dims} is more than the {width} dimensions of {source}",
                    f"set text_dims to 0..{width} (default {DistilledConfig().text_dims})",
                )
            )

    def _fit_pca(self) -> None:
        emb = np.asarray(self.base_.emb_, dtype=np.float64)
        mu = emb.mean(axis=0)
        _, _, vt = np.linalg.svd(emb - mu, full_matrices=False)
        self.pca_ = ((emb - mu) @ vt[: self.config.text_dims].T).astype(np.float64)

    def _episode_features(
        self, hist: np.ndarray, liked: np.ndarray, targets: np.ndarray, loo: float | None = None
    ) -> np.ndarray:
        base = self.base_
        hist, liked = np.asarray(hist, np.int64), np.asarray(liked, np.float64)
        f = (base._features(hist, liked, targets, loo=loo) - base.mu_) / base.sd_
        t = self.pca_[targets]
        lk, dk = hist[liked > 0], hist[liked <= 0]
        pref = (self.pca_[lk].mean(axis=0) if len(lk) else 0.0) - (
            self.pca_[dk].mean(axis=0) if len(dk) else 0.0
        )
        return np.c_[f, t, t * pref]

    def _query(self, batch: QueryBatch, q: int) -> tuple[np.ndarray, np.ndarray]:
        h = batch.history
        lo, hi = h.indptr[q], h.indptr[q + 1]
        cut = self.fitted.like_cut(self.base_.config.like_threshold)
        return h.indices[lo:hi].astype(np.int64), (h.data[lo:hi] > cut).astype(np.float64)

    def score_candidates(self, batch: QueryBatch, candidates: np.ndarray) -> np.ndarray:
        """Student scores of the given items per query ((n_queries x m) item indices)."""
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 2 or cand.shape[0] != len(batch):
            raise DataError(f"candidates must be (n_queries x m), got {cand.shape} for {len(batch)} queries")
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_items):  # (-1 had scored the last item)
            raise DataError(f"candidate item indices must be in 0..{self.n_items - 1}")
        out = np.empty(cand.shape, dtype=np.float64)
        for q in range(len(batch)):
            hist, liked = self._query(batch, q)
            z = (self._episode_features(hist, liked, cand[q]) - self.x_mu_) / self.x_sd_
            out[q] = z @ self.coef_ + self.y_mu_
        return out

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        cand = np.tile(np.arange(self.n_items), (len(batch), 1))
        return self.score_candidates(batch, cand).astype(np.float32)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {f"base.{k}": v for k, v in self.base_._get_arrays().items()}
        out.update(
            {
                "pca": self.pca_,
                "x_mu": self.x_mu_,
                "x_sd": self.x_sd_,
                "coef": self.coef_,
                "y_mu": np.array([self.y_mu_]),
            }
        )
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        cfg = self.config
        self.base_ = _like_classifier(_part(cfg.base, cfg.base_config, self.state_), cfg.base)
        self.base_._set_arrays(_split_arrays(arrays, "base"))
        self.pca_, self.x_mu_, self.x_sd_, self.coef_ = (
            arrays["pca"],
            arrays["x_mu"],
            arrays["x_sd"],
            arrays["coef"],
        )
        self.y_mu_ = float(arrays["y_mu"][0])
