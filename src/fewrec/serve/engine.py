"""The serving engine: a model, its live catalogue, the store, exploration and hot swap.

The served model is any `Recommender`. Its state (model, catalogue, vector index) lives in one
`ModelState` object that is never changed once published: every change (items added, updated
or deleted, a model hot-swapped) builds a new state off to the side, copy-on-write, and then
replaces the reference in one assignment. Requests already running finish on the old state,
new ones see the new one, and no request ever waits for a write.

Items, users and feedback live in the `Store` (durable SQLite); every recommendation reads the
user's feedback from it, so an acknowledged like changes the next recommendation at once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import zlib
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import ConfigDict, Field

from fewrec.data.dataset import genre_list
from fewrec.errors import DataError, FewrecError, Settings, split_fix
from fewrec.explain.reasons import (
    EXPLAIN_MAX_CELLS,
    EXPLAIN_MAX_HISTORY,
    and_words,
    explained_batch,
    item_vectors,
    label_of,
    or_words,
)
from fewrec.models.base import COUNT_SCALE_FROM, DISLIKE_SHARE, Recommender, _stored_info
from fewrec.models.query import Query, QueryBatch, like_catalogue
from fewrec.models.saving import check_model_dir, is_saved_model, load_model
from fewrec.online.bandits import (
    MAX_WIDTH,
    UCB,
    Greedy,
    Policy,
    Thompson,
    explored_top,
    has_posterior,
    left_out,
)
from fewrec.serve import schemas as S
from fewrec.serve.catalogue import Catalogue, field_json, value_key
from fewrec.serve.errors import ForbiddenError, InvalidError, NotFoundError, StoreFullError, UnavailableError
from fewrec.serve.index import VectorIndex, make_index
from fewrec.serve.store import TASTE_KINDS, FeedbackRecord, ItemRecord, Store, UserRecord
from fewrec.topk import top_k_by

log = logging.getLogger(__name__)
FUTURE_SLACK = 86_400.0
"""How far past the server's clock a feedback timestamp may be (seconds)."""

EXACT_BELOW = 0.5
"""Similar items are scored exactly, not through the vector index, when exclusions (deleted
items, `exclude`) leave fewer than this share of the catalogue, or any filter is given (an
approximate index misses allowed items far from the query)."""


class ExplorationConfig(Settings):
    """How new users are explored, with defaults tuned for lists of 10 on validation users
    (``benchmarks/bandit_replay_k10.md``: five lists of 10 for cold users).

    Thompson sampling at scale 0.25 found the most (validation 22.6 items rated of 50 shown; UCB's
    best 21.8, at c = 0.25); on the test users it found more than the best guess (20.7 against
    19.7, paired 95% CI +0.6 to +1.5), though fewer in the first list (5.0 against 5.25), where
    UCB only matched the best guess (19.7). With one item per round (``bandit_replay.md``)
    Thompson at scale 1 was tuned best (20.7 against 19.96, CI +0.3 to +1.2): use
    ``scale=1`` for one item at a time. (Replays of 2026-12-07, night: a new user with no liked
    item is ranked by popularity, as `fewshot` does since then; until then UCB at c = 1 was the
    default, tuned best for lists of 10 by the replays of 2026-12-06.) Thompson's draw is fresh
    on every request unless the request gives a ``seed``. The width is widest for the most-rated
    films (Spearman 0.81 with their popularity for a new user, on the 2026-12-07 model), so the
    wider picks are mostly popular titles.

    Attributes:
        policy: ``ucb``, ``thompson`` or ``off`` (always greedy).
        scale: Thompson sampling's multiplier of the posterior standard deviation (tuned best:
            0.25 for lists of 10, 1 for one item at a time).
        c: UCB's width multiplier.
        until: explore while a user has fewer history items than this (likes and ratings that
            are no dislike: what the model adapts to).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    settings_name = "exploration settings"

    policy: Literal["thompson", "ucb", "off"] = "thompson"
    scale: float = Field(0.25, ge=0, le=MAX_WIDTH, allow_inf_nan=False)
    c: float = Field(1.0, ge=0, le=MAX_WIDTH, allow_inf_nan=False)
    until: int = Field(20, ge=0)


EXPLORED = "A wider pick, to learn your taste: your feedback on it tells us the most."
"""The reason of an item the exploration draw put in a list that the model's best guess would not
hold (its own reasons explain the best guess, not the draw)."""


def _draw_seed(req: S.RecommendRequest) -> list[int] | None:
    """The exploration draw's seed: the request's seed with the user (or the session's items and
    text), so one seed gives each user their own draw, the same on every call. The seed alone
    gave every user nearly the same list (the same draw of the shared prior)."""
    if req.seed is None:
        return None
    if req.user is not None:
        who = req.user
    else:  # the session's items as a set (the same likes in another order drew another list)
        values = [str(r) for r in req.ratings] if req.ratings else [""] * len(req.items)
        rated = sorted(zip(map(str, req.items), values, strict=False))
        who = json.dumps([rated, req.text], ensure_ascii=False)
    return [req.seed, zlib.crc32(who.encode())]


def _megabytes(n_bytes: float) -> str:
    """Bytes as megabytes: three digits below 100 MB (a 0.01 MB limit read "0.0 MB"), whole
    ones above (".3g" wrote 1000 MB as "1e+03")."""
    mb = n_bytes / 1e6
    return f"{mb:.3g}" if mb < 100 else f"{mb:,.0f}"


@dataclass
class ModelState:
    """Everything a request reads; replaced whole on hot swap."""

    model: Recommender
    source: str
    version: int
    loaded_at: float
    catalogue: Catalogue
    vectors: np.ndarray | None = None
    index: VectorIndex | None = None
    pending: dict[str, ItemRecord] = field(default_factory=dict)
    store_seq: int = 0

    def fork(self, *, model: bool, index: bool | None = None) -> ModelState:
        """A private copy to change and then publish; ``model``: copy the model too (adding
        items changes it), else share it (updates and deletes only touch the catalogue);
        ``index``: copy the similar-items index (default: with the model; a relabel of an ID-only
        model's items moves no vector)."""
        index = model if index is None else index
        return ModelState(
            self.model.copy_for_update() if model else self.model,
            self.source,
            self.version,
            self.loaded_at,
            self.catalogue.copy(),
            self.vectors,
            None if self.index is None else self.index.clone() if index else self.index,
            dict(self.pending),
            self.store_seq,
        )


# ------------------------------------------------------------------------------------ engine
class Engine:
    """The service's logic, independent of HTTP (the FastAPI app is a thin layer on it).

    Args:
        store: the durable store.
        model: a fitted `Recommender`, or a saved model directory.
        exploration: how new users are explored.
        index: vector index kind for similar items (see `fewrec.serve.index.make_index`).
        model_root: hot swap only loads directories inside this folder (default: the parent of
            the first model directory; None with an in-memory model: any directory).
        explain_max_history: explain with at most this many history items (see `_explain_batch`).
        max_store_bytes: refuse writes (HTTP 507) once the store holds this many bytes on disk;
            None: no limit. Reads and deletes go on.
    """

    def __init__(
        self,
        store: Store,
        model: Recommender | str | Path,
        *,
        exploration: ExplorationConfig | None = None,
        index: str = "auto",
        model_root: str | Path | None = None,
        explain_max_history: int = EXPLAIN_MAX_HISTORY,
        max_store_bytes: int | None = None,
    ):
        self.store = store
        self.explain_max_history = explain_max_history
        self.max_store_bytes = max_store_bytes
        self.exploration = exploration or ExplorationConfig()
        self.index_kind = index
        if model_root is None and not isinstance(model, Recommender):
            model_root = Path(model).expanduser().resolve().parent
        self.model_root = Path(model_root).expanduser().resolve() if model_root is not None else None
        self._swap_lock = threading.Lock()
        self._items_lock = threading.Lock()
        self.warm = False
        self._state = self._build_state(model, version=1)

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> ModelState:
        """What requests read now (the model, its catalogue and index); replaced on hot swap."""
        return self._state

    def _build_state(self, model: Recommender | str | Path, version: int) -> ModelState:
        if isinstance(model, Recommender):
            source = "in-memory"
        else:
            source = str(Path(model).expanduser().resolve())
            model = load_model(source)
        model.fitted  # noqa: B018  (raises NotFittedError for an unfitted model)
        if self.exploration.policy != "off" and not has_posterior(model):
            log.warning(
                "%s has no posterior to explore with, so new users get its best guess (%s "
                "exploration applies to the few-shot models)",
                model.name,
                self.exploration.policy,
            )
        st = ModelState(model, source, version, time.time(), Catalogue.from_model(model))
        vectors = item_vectors(model)
        if vectors is not None:
            st.vectors = vectors
            st.index = make_index(vectors.shape[1], self.index_kind)
            st.index.add(vectors)
        seq = self.store.item_seq()
        try:
            st = self._apply_items(
                st, self._stored_typed(st.model, self.store.items(since_seq=0)), private=True
            )
        except UnavailableError as exc:  # serve what the model has; the items stay pending
            log.warning("%s", exc)
        st.store_seq = max(st.store_seq, seq)
        return st

    def swap(self, path: str | Path) -> S.ModelInfo:
        """Load a saved model directory and serve it from now on, without downtime."""
        given = Path(path).expanduser()
        target = given.resolve()
        if self.model_root is not None and not given.is_absolute():
            # relative to the model folder, as /admin/model's `source` is given (the server's own
            # folder was read, so "ease" beside the served model was "outside the model folder");
            # a path from the server's folder still works
            inside = (self.model_root / given).resolve()
            target = inside if is_saved_model(inside) or not is_saved_model(target) else target
        if self.model_root is not None and not target.is_relative_to(self.model_root):
            raise ForbiddenError(
                f"{target} is outside the model folder {self.model_root}",
                field="path",
                fix=f"save the model under {self.model_root}",
            )
        if target.is_file() and is_saved_model(target.parent):
            raise NotFoundError(
                f"{target} is a file of a saved model", field="path", fix=f"give its folder, {target.parent}"
            )
        if not is_saved_model(target):
            try:  # what it is: a save cut short names the folders to rename (it said only "no config.json")
                check_model_dir(target)
            except FewrecError as exc:
                what, fix = split_fix(str(exc))
                raise NotFoundError(what, field="path", fix=fix) from None
            raise NotFoundError(f"{target} is not a saved fewrec model (no config.json)", field="path")
        with self._swap_lock:
            try:
                st = self._build_state(target, self._state.version + 1)
            except FewrecError as exc:
                raise InvalidError(f"cannot load {target}: {exc}", field="path") from exc
            self._warm_up(st)
            with self._items_lock:  # items written meanwhile: replay them, then switch
                stored = self._stored_typed(st.model, self.store.items(since_seq=st.store_seq))
                st = self._apply_items(st, stored, private=True)
                self._state = st
        log.info("now serving %s (version %d)", st.source, st.version)
        return self.info(st)  # (the state read after the lock could be a later swap's)

    def info(self, st: ModelState | None = None) -> S.ModelInfo:
        """The served model (or the state ``st``): its name, source (its folder inside
        `model_root`), version, item and user counts, exploration."""
        st = self._state if st is None else st
        source = st.source  # not the server's absolute paths to anyone who may read
        if self.model_root is not None and Path(source).is_relative_to(self.model_root):
            source = Path(source).relative_to(self.model_root).as_posix()
        return S.ModelInfo(
            model=st.model.name,
            source=source,
            version=st.version,
            loaded_at=st.loaded_at,
            items=len(st.catalogue) + len(st.pending),
            recommendable=int(st.catalogue.active.sum()),
            users=len(st.model.fitted.users),
            exploration={**self.exploration.model_dump(), "available": has_posterior(st.model)},
            index=None if st.index is None else type(st.index).__name__,
            reads_text=st.model.reads_text,
            side_fields=sorted({c for c, _ in st.model.side_levels}),
            side_values=_side_values(st.model.side_levels),
            like_rating=st.model.fitted.like_rating,
            dislike_rating=st.model.fitted.dislike_rating,
        )

    def warm_up(self) -> None:
        """Run one text query and one history query so the first request is not slow."""
        self._warm_up(self._state)
        self.warm = True

    def _warm_up(self, st: ModelState) -> None:
        model = st.model
        st.catalogue.index_fields()
        queries = [Query(items=[model.fitted.items.id(0)])] if model.n_items else []
        if model.reads_text:
            queries.insert(0, Query(text="warm up"))
        # the encoders themselves: a text found in the embedding cache (the warm-up's own) loads
        # none, and the first new text or item took 3.2-3.6 s after the service said ready
        from fewrec.text.encoder import get_encoder

        for name in model.text_encoders:
            try:
                get_encoder(name, getattr(model.config, "backend", None)).load()
            except FewrecError as exc:
                log.debug("warm-up of encoder %s skipped: %s", name, exc)
        for q in queries:
            try:
                model.recommend(q, 1, explain=True)
            except FewrecError as exc:  # e.g. a model without text support
                log.debug("warm-up query skipped: %s", exc)

    # ------------------------------------------------------------------ items
    def _apply_items(
        self, st: ModelState, records: Sequence[ItemRecord], *, private: bool = False
    ) -> ModelState:
        """The state with stored item records applied. ``st`` itself is left as it is unless
        ``private`` (a state not yet published); otherwise a fork is changed and returned."""
        if not records:
            return st
        vocab = st.model.fitted.items
        idx = vocab.lookup([r.id for r in records])
        new = [r for r, i in zip(records, idx, strict=True) if i < 0 and not r.deleted]
        changed = [
            r
            for r, i in zip(records, idx, strict=True)
            if i >= 0 and not r.deleted and st.catalogue.record(int(i)) != (r.title, r.text, r.fields)
        ]
        grow = bool(new) and st.model.adds_items
        reread = bool(changed) and st.model.updates_items
        if not private:
            try:
                st = st.fork(model=grow or reread, index=grow or (reread and st.model.rereads_item_text))
            except Exception as exc:  # a model that cannot be copied: its new items wait
                log.exception("could not copy the model to add items")
                grow = reread = False
                st = st.fork(model=False)
                st.pending.update({r.id: r for r in new})
                raise UnavailableError(
                    f"the items were stored but the model could not take them now ({exc})",
                    field="id",
                    fix="they are added on the next restart or model swap",
                ) from exc
        for rec, i in zip(records, idx, strict=True):
            if i >= 0:
                st.catalogue.active[i] = not rec.deleted
                if not rec.deleted:
                    st.catalogue.update(int(i), rec)
            elif rec.deleted:
                st.pending.pop(rec.id, None)
            st.store_seq = max(st.store_seq, rec.seq)
        if reread:
            try:
                self._reread_in_model(st, changed)
            except UnavailableError as exc:  # at a start or swap, the new items still go in
                if not private:
                    raise
                log.warning("%s", exc)
        if new and not grow:
            st.pending.update({r.id: r for r in new})
        elif new:
            try:
                self._add_to_model(st, new)
            except UnavailableError:
                if not private:  # stored and waiting: served so (feedback on it said "created by
                    self._state = st  # another service process")
                raise
        return st

    def _reread_in_model(self, st: ModelState, records: Sequence[ItemRecord]) -> None:
        """Re-embed items whose text changed, in a private state's model (then its index)."""
        _vocabulary_first(st.model)
        try:
            st.model.update_items([r.id for r in records], _info_frame(st.model, records))
        except Exception as exc:
            log.exception("could not re-read the text of %d items", len(records))
            raise UnavailableError(
                f"the items were stored but the model could not re-read their text ({exc})",
                field="text",
                fix="they are re-read on the next restart or model swap",
            ) from exc
        self._label_titles(st.model, st.model.fitted.items.lookup([r.id for r in records]), records)
        # a model that reads no item text only relabels: its vectors stay where they were
        self._extend_index(st, st.model.n_items, moved=st.model.rereads_item_text)

    @staticmethod
    def _label_titles(
        model: Recommender, idx: Sequence[int] | np.ndarray, records: Sequence[ItemRecord]
    ) -> None:
        """Reasons name an item without a title by its text, or else by its id."""
        info = model.fitted.item_info
        if "title" in info.columns:
            col = info.columns.get_loc("title")
            info.iloc[np.asarray(idx), col] = [r.title or r.text or r.id for r in records]

    def _add_to_model(self, st: ModelState, records: Sequence[ItemRecord]) -> None:
        """Add text items to a private state's model (then its catalogue and index)."""
        model = st.model
        n_old = model.n_items
        _vocabulary_first(model)
        try:
            model.add_items([r.id for r in records], _info_frame(model, records))
        except DataError as exc:  # an item's fields: the others are added, it waits
            if len(records) == 1:
                st.pending[records[0].id] = records[0]
                log.warning("item %r is stored but the model cannot add it: %s", records[0].id, exc)
                raise UnavailableError(
                    f"the item was stored but the model could not add it ({exc})", field="fields"
                ) from exc
            # (at a start or a swap, one bad item kept every stored one out): the items whose
            # fields the model cannot take wait; the rest are added together (one at a time, 3,000
            # took 50 s against 1 s)
            bad = [records[pos] for pos, _ in self._typed_each(model, records)[1]]
            if not bad:
                bad = list(records)  # (the batch failed on something else: each is tried alone)
            for r in bad:
                with suppress(UnavailableError):
                    self._add_to_model(st, [r])
            good = [r for r in records if r not in bad]
            if good:
                self._add_to_model(st, good)
            return
        except Exception as exc:
            log.exception("could not add %d items to the model", len(records))
            st.pending.update({r.id: r for r in records})
            raise UnavailableError(
                f"the items were stored but the model could not add them ({exc})",
                field="text",
                fix="check the text encoder is installed (pip install 'fewrec[text]'); "
                "the items are added on the next restart or model swap",
            ) from exc
        self._label_titles(model, range(n_old, n_old + len(records)), records)
        st.catalogue.append(records)
        for r in records:
            st.pending.pop(r.id, None)
        self._extend_index(st, n_old)

    def _extend_index(self, st: ModelState, n_old: int, *, moved: bool = False) -> None:
        """Index the vectors of items ``n_old..``; rebuild if existing items ``moved``."""
        vectors = item_vectors(st.model)
        if vectors is None or st.index is None or st.vectors is None:
            return
        old = st.vectors
        if (
            not moved
            and len(old) == n_old
            and np.allclose(vectors[: n_old : max(1, n_old // 64)], old[:: max(1, n_old // 64)])
        ):
            if len(vectors) > n_old:  # (a relabel adds none, and shares the published index)
                st.index.add(vectors[n_old:])
        else:  # the model moved existing items: rebuild
            st.index = make_index(vectors.shape[1], self.index_kind)
            st.index.add(vectors)
        st.vectors = vectors

    def _check_room(self) -> None:
        """Refuse a write once the store has reached ``max_store_bytes`` (a client with a key
        could otherwise fill the disk with users, items and feedback)."""
        limit = self.max_store_bytes
        if limit is not None and (size := self.store.used_bytes()) >= limit:
            raise StoreFullError(
                f"the store is full: {_megabytes(size)} MB of the {_megabytes(limit)} MB it may hold",
                # (deleting an item only marks it; a user's events free pages once whole ones empty)
                fix="delete users no longer needed, or restart the service with a larger --max-store-mb",
            )

    def put_items(self, items: Sequence[tuple[str, S.ItemIn]]) -> list[S.ItemOut]:
        """Create or replace items; text items become recommendable before this returns."""
        self._check_room()
        ids = [i for i, _ in items]
        if len(set(ids)) != len(ids):
            second = next(n for n, i in enumerate(ids) if i in ids[:n])  # (field "id" named no entry)
            raise InvalidError(f"item {ids[second]!r} appears twice in one request", field=f"[{second}].id")
        records = [ItemRecord(i, it.title, it.text, dict(it.fields)) for i, it in items]
        records = self._checked(self._state.model, records)
        with self._items_lock:
            stored = self.store.upsert_items(records)
            st = self._state = self._apply_items(self._state, stored)
        out = [self._item_out(st, r.id) for r in stored]
        if not st.model.updates_items:  # like-clf, the LM models: their item text is fixed at fit
            trained = st.model.fitted.items.lookup([r.id for r in stored]) >= 0
            for item in (o for o, t in zip(out, trained, strict=True) if t):
                item.notes.append(
                    f"{st.model.name} cannot re-read an item's text without retraining: its scores "
                    "and reasons keep this item's trained text until it is retrained (or a model "
                    "that can, such as fewshot, content or ensemble, is swapped in)"
                )
        if st.model.reads_text:  # fields the item text leaves out are stored, for filters only
            read = set(st.model.fitted.item_info.columns)
            for item, rec in zip(out, stored, strict=True):
                unread = sorted(set(rec.fields) - read)
                if unread:
                    fields = sorted(read - {"text"}) or ["title", "text"]
                    item.notes.append(
                        f"fields {unread} are stored (filters and search use them), but "
                        f"{st.model.name} makes item text from {fields} only, so they do not shape "
                        "its recommendations; put such words in text"
                    )
        return out

    @staticmethod
    def _checked(model: Recommender, records: Sequence[ItemRecord]) -> list[ItemRecord]:
        """The records with the fields the model's catalogue has in its types, as the model will
        hold them (GET showed "price": "9.99" and filters matched "yes" but not true, where the
        model had 9.99 and True; a date is its day, "2024-12-01", where it has no time). Items
        whose fields the model could not take (a price of "cheap") are refused before they are
        stored: stored, they waited for a restart that failed too."""
        out, bad = Engine._typed_each(model, records)
        if bad and (model.adds_items or model.updates_items):
            pos, exc = bad[0]
            where = f"items[{pos}]." if len(records) > 1 else ""
            raise InvalidError(f"item {records[pos].id!r}: {exc}", field=f"{where}fields")
        return out  # (a model that takes no items' fields: those it cannot take wait as sent)

    @staticmethod
    def _typed_each(
        model: Recommender, records: Sequence[ItemRecord]
    ) -> tuple[list[ItemRecord], list[tuple[int, DataError]]]:
        """`_typed` of ``records``, those the model cannot take as they are, and their positions
        and errors, in order. All at once where it can (one at a time, 1,000 items took 3.2 s
        against 7 ms); the bad ones are found by halves (one at a time, a store of 100,000
        items with one bad took minutes at every start)."""
        out: list[ItemRecord] = []
        bad: list[tuple[int, DataError]] = []

        def typed(start: int, stop: int) -> None:
            try:
                out.extend(Engine._typed(model, records[start:stop]))
            except DataError as exc:
                if stop - start == 1:
                    out.append(records[start])
                    bad.append((start, exc))
                    return
                half = (start + stop) // 2
                typed(start, half)
                typed(half, stop)

        if records:
            typed(0, len(records))
        return out, bad

    @staticmethod
    def _typed(model: Recommender, records: Sequence[ItemRecord]) -> list[ItemRecord]:
        """``records`` with their fields of the model's catalogue in its types; a `DataError`
        when the model cannot take them."""
        typed = like_catalogue(_info_frame(model, records), model.fitted.item_info, model.fitted.genre_sep)
        columns = model.fitted.item_info.columns
        out = []
        for row, r in enumerate(records):
            given = {c: field_json(typed[c].iloc[row]) for c in r.fields if c in columns}
            out.append(dataclasses.replace(r, fields={**r.fields, **given}) if given else r)
        return out

    @staticmethod
    def _stored_typed(model: Recommender, records: Sequence[ItemRecord]) -> list[ItemRecord]:
        """Stored records with their fields of the model's catalogue in its types, as a PUT
        stores them now. Items stored before fields were typed (an upgrade), or under a model of
        another catalogue, had kept them as sent: GET showed "in_stock": "yes" and a filter of
        true missed them. A record the model cannot take keeps its fields as stored."""
        it = iter(Engine._typed_each(model, [r for r in records if not r.deleted])[0])
        return [r if r.deleted else next(it) for r in records]

    def delete_item(self, item_id: str) -> None:
        """Tombstone an item: it stays known but is never recommended. `NotFoundError` for an
        item that is unknown or already deleted."""
        with self._items_lock:  # (checked outside it, two deletes of one item both answered 204)
            st = self._state
            known = int(st.model.fitted.items.lookup([item_id])[0]) >= 0 or item_id in st.pending
            rec = self.store.get_item(item_id)
            if rec is not None and rec.deleted:  # (it said "no item", where GET says "was deleted")
                raise NotFoundError(f"item {item_id!r} was already deleted", field="item_id")
            if not known:
                raise NotFoundError(f"no item {item_id!r}", field="item_id")
            stored = self.store.delete_item(item_id)
            self._state = self._apply_items(self._state, [stored])

    def get_item(self, item_id: str) -> S.ItemOut:
        """One item, with whether the model can recommend it yet; `NotFoundError` for an item
        that is unknown or deleted."""
        return self._item_out(self._state, item_id)

    def _item_out(self, st: ModelState, item_id: str) -> S.ItemOut:
        idx = int(st.model.fitted.items.lookup([item_id])[0])
        if idx >= 0:
            if not st.catalogue.active[idx]:
                raise NotFoundError(f"item {item_id!r} was deleted", field="item_id")
            title, text, fields = st.catalogue.record(idx)
            source = st.catalogue.source[idx]
            return S.ItemOut(
                id=item_id, title=title, text=text, fields=fields, recommendable=True, source=source
            )
        rec = st.pending.get(item_id)
        if rec is None:
            raise NotFoundError(f"no item {item_id!r}", field="item_id")
        return S.ItemOut(
            id=item_id, title=rec.title, text=rec.text, fields=rec.fields, recommendable=False, source="store"
        )

    def list_items(self, offset: int, limit: int, query: str | None) -> S.ItemList:
        """A page of recommendable items (then items the model cannot score yet); ``query``
        keeps those with that id, then those whose title contains it, then their text."""
        st = self._state
        cat = st.catalogue
        idx = cat.search(query) if query else np.arange(len(cat))
        if query:  # an exact id first
            exact = st.model.fitted.items.lookup([query.strip()])
            idx = np.r_[exact[exact >= 0], idx[idx != exact[0]]]
        idx = idx[cat.active[idx]]
        ids = st.model.fitted.items.to_external(idx[offset : offset + limit])
        items = [self._item_out(st, i) for i in ids]
        q = (query or "").strip().casefold()
        pending = [
            r.id
            for r in st.pending.values()
            if q in (r.title or "").casefold() or q in (r.text or "").casefold() or q == r.id.casefold()
        ]
        start = max(0, offset - len(idx))
        items += [self._item_out(st, i) for i in pending[start : start + limit - len(items)]]
        return S.ItemList(items=items, total=len(idx) + len(pending))

    # ------------------------------------------------------------------ users and feedback
    def put_user(self, user_id: str, body: S.UserIn) -> S.UserOut:
        """Create or replace a user's free text and side info."""
        self._check_room()
        self.store.upsert_user(UserRecord(user_id, body.text, dict(body.info)))
        return self.get_user(user_id)

    def _known_to_model(self, st: ModelState, user_id: str) -> bool:
        fit = st.model.fitted
        u = int(fit.users.lookup([user_id])[0])
        return (
            u >= 0 and fit.train.indptr[u + 1] > fit.train.indptr[u] and not self.store.is_forgotten(user_id)
        )

    def get_user(self, user_id: str) -> S.UserOut:
        """A user's stored text and side info, whether the model trained on them, and how many
        feedback events they have; `NotFoundError` for a user neither the store nor the model
        knows."""
        st = self._state
        rec = self.store.get_user(user_id)
        known = self._known_to_model(st, user_id)
        if rec is None and not known:
            raise NotFoundError(f"no user {user_id!r}", field="user_id")
        n_feedback = self.store.count_feedback(user_id)
        return S.UserOut(
            id=user_id,
            text=rec.text if rec else None,
            info=rec.info if rec else {},
            training_info=self._training_info(st, user_id) if known else {},
            known_to_model=known,
            feedback=n_feedback,
        )

    @staticmethod
    def _training_info(st: ModelState, user_id: str) -> dict[str, Any]:
        """A known user's side info in the training data, which the model reads beside what
        the store holds (`GET /users/{id}` showed only the store's: `{}` for MovieLens' user 1,
        whose list was "popular with people like you")."""
        fit = st.model.fitted
        stored = _stored_info(fit.user_info, int(fit.users.lookup([user_id])[0]))  # (as queries read it)
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in stored.items()}  # (JSON numbers)

    def delete_user(self, user_id: str) -> S.UserDeleted:
        """Delete a user's record and feedback, and stop using their training history
        (`Store.delete_user`); `NotFoundError` for a user there was nothing of."""
        known = self._known_to_model(self._state, user_id)
        existed, n = self.store.delete_user(user_id, known=known)
        if not (existed or known or n):
            raise NotFoundError(f"no user {user_id!r}", field="user_id")
        return S.UserDeleted(id=user_id, deleted=True, feedback_deleted=n)

    def user_feedback(self, user_id: str, limit: int) -> list[S.FeedbackOut]:
        """A user's latest ``limit`` feedback events, in the order they arrived, not by timestamp
        (`NotFoundError` as `get_user`)."""
        self.get_user(user_id)
        return [_feedback_out(e) for e in self.store.feedback(user_id, limit=limit)]

    @staticmethod
    def _top_rating(st: ModelState) -> float:
        """The top of the model's rating scale, as a rating's ``scale`` is stored (5 for
        stars, 1 on implicit data, the top count on counts). Amounts made by ``repeats``
        (`Dataset.counts`) whose top is 10 or less are given a top past `COUNT_SCALE_FROM`, so
        a stored one reads as a count after a hot swap: as a share of a top of 8, 2 plays were a
        1-star dislike to a star model."""
        fit = st.model.fitted
        like = fit.like_rating
        if like <= 1:
            return 1.0
        return max(like, COUNT_SCALE_FROM + 1.0) if fit.counts else max(like, 5.0)

    @classmethod
    def _rating_limit(cls, st: ModelState) -> float:
        """The highest rating a request or event may give (ratings run from 0): the top of a
        star scale; none on counts, where a count above the training's is no mistake (a count
        of 6,000 plays was a 422 where the Python API takes it)."""
        fit = st.model.fitted
        return np.inf if fit.like_rating > 1 and not fit.stars else cls._top_rating(st)

    @classmethod
    def _stored_rating(cls, st: ModelState, value: float, scale: float | None) -> float:
        """A stored `rating` on this model's scale. One given under a model of another scale (a
        hot swap) is read as it was meant:

        - a count (given on a scale whose top is above 10) is a count: kept on counts, a like
          on stars, and only 0 a dislike. Read as a share of its top count, 120 plays became a
          dislike after a retrain moved the top from 5,000 to 4,000;
        - a star rating (or an implicit 1) is read as a share of its own scale: at or below
          `DISLIKE_SHARE` a dislike (the bottom of this scale, as a `dislike` event), so a 1 of
          5 stays one where 1 is the top, and a top 1 there is a 5 here.
        """
        fit = st.model.fitted
        top = cls._top_rating(st)
        # given on this scale (or before scales were kept); under a model of counts made by
        # `repeats`, also a count stored with its real top before such tops were raised
        if not scale or scale == top or (fit.counts and scale == fit.like_rating):
            return value
        if scale > COUNT_SCALE_FROM:  # a count
            if value <= 0:
                return fit.dislike_rating
            return value if top > COUNT_SCALE_FROM else fit.like_rating
        share = value / scale
        if share <= DISLIKE_SHARE:
            return fit.dislike_rating
        return share * top

    def add_feedback(self, events: Sequence[S.FeedbackIn]) -> S.FeedbackAck:
        """Validate and durably store events (unknown users are created on their first event)."""
        self._check_room()
        st = self._state
        vocab = st.model.fitted.items
        top = self._rating_limit(st)
        for pos, ev in enumerate(events):
            where = f"events[{pos}]." if len(events) > 1 else ""
            i = int(vocab.lookup([ev.item])[0])
            record = None
            if i < 0 and ev.item not in st.pending:
                record = self.store.get_item(ev.item)
                if record is not None and not record.deleted:
                    # stored, not served: a PUT of this process may be adding it now (it holds
                    # the items' lock until the item is served; its feedback was told to restart)
                    with self._items_lock:
                        st = self._state
                    vocab, top = st.model.fitted.items, self._rating_limit(st)  # (a swap meanwhile)
                    i = int(vocab.lookup([ev.item])[0])
            if i < 0 and ev.item not in st.pending:
                if record is not None and not record.deleted:  # written by another process
                    raise NotFoundError(
                        f"item {ev.item!r} was created by another service process on this store; "
                        "this one reads new items only when it starts",
                        field=f"{where}item",
                        fix="restart this process, or run one process per store file",
                    )
                raise NotFoundError(f"no item {ev.item!r}", field=f"{where}item", fix="create the item first")
            if i >= 0 and not st.catalogue.active[i]:
                raise NotFoundError(f"item {ev.item!r} was deleted", field=f"{where}item")
            if ev.timestamp is not None and ev.timestamp > time.time() + FUTURE_SLACK:
                raise InvalidError(
                    f"timestamp {ev.timestamp:g} is more than a day in the future: the newest event per "
                    "item decides, so it would outweigh every later one",
                    field=f"{where}timestamp",
                    fix="send Unix seconds from a correct clock, or no timestamp (the server's time)",
                )
            if ev.kind == "rating" and not 0 <= float(ev.value or 0) <= top:
                raise InvalidError(
                    f"a rating must be between 0 and {top:g}, got {ev.value}", field=f"{where}value"
                )
        now = time.time()
        records = [
            FeedbackRecord(
                e.user,
                e.item,
                e.kind,
                e.value if e.kind == "rating" else None,
                # a clock ahead by minutes is stored as now: its like outweighed a later dislike
                # sent without a timestamp (the server's time) for as long as it was ahead; one
                # without is this now too (the store's, read later, made an earlier event in the
                # batch the newer one), so a tie goes to the later event
                min(e.timestamp, now) if e.timestamp else now,
                scale=self._top_rating(st)
                if e.kind == "rating"
                else None,  # a later model may rate on another scale
            )
            for e in events
        ]
        stored, deciding = self.store.add_feedback_deciding(records)
        return S.FeedbackAck(
            accepted=len(stored),
            events=[_feedback_out(e) for e in stored],
            notes=self._outdated(stored, deciding),
        )

    @staticmethod
    def _outdated(
        stored: Sequence[FeedbackRecord], deciding: dict[tuple[str, str], FeedbackRecord]
    ) -> list[str]:
        """Notes on stored taste events (like, click, dislike, rating) that an event of the same
        user on the same item with a later timestamp outweighed when they were written (``deciding``,
        `Store.add_feedback_deciding`): stored, but they change nothing."""
        notes = []
        for pos, e in enumerate(stored):
            newest = deciding.get((e.user, e.item))
            if e.kind in TASTE_KINDS and newest is not None and newest.seq != e.seq:
                where = f"events[{pos}]: " if len(stored) > 1 else ""
                when = datetime.fromtimestamp(newest.ts, tz=UTC).isoformat(timespec="seconds")
                notes.append(
                    f"{where}user {e.user!r} has a newer {newest.kind} of item {e.item!r} (at {when}), "
                    f"which decides how they liked it, so this {e.kind} was stored but changes nothing"
                )
        return notes

    # ------------------------------------------------------------------ recommend
    def _policy(self, st: ModelState, explore: bool | None, history_size: int) -> Policy:
        cfg = self.exploration
        on = cfg.policy != "off" and has_posterior(st.model)
        use = (history_size < cfg.until) if explore is None else explore
        width = cfg.scale if cfg.policy == "thompson" else cfg.c
        if not (on and use) or width == 0:  # a width of 0 is the best guess: say "greedy"
            return Greedy()
        return Thompson(cfg.scale) if cfg.policy == "thompson" else UCB(cfg.c)

    def _deleted(self, st: ModelState, items: Sequence[str], idx: np.ndarray | None = None) -> set[str]:
        """Those of ``items`` (at catalogue indices ``idx``, looked up when not given) that were
        deleted: catalogue items marked so, or (once a restart or swap has left them out of the
        model) stored items' tombstones. One lookup for all."""
        if idx is None:
            idx = st.model.fitted.items.lookup(list(items)) if len(items) else np.zeros(0, np.int64)
        out = set()
        for item, i in zip(items, idx, strict=True):
            if i >= 0:
                if not st.catalogue.active[i]:
                    out.add(item)
            elif item not in st.pending:
                record = self.store.get_item(item)
                if record is not None and record.deleted:
                    out.add(item)
        return out

    def _query(self, st: ModelState, req: S.RecommendRequest) -> tuple[Query, set[str], list[str]]:
        """The model query of a request, the items the user has already seen, and notes on
        request items the model cannot use."""
        fit = st.model.fitted
        like = fit.like_rating
        items: dict[str, float] = {}
        seen: set[str] = set()
        text_parts, info, user = [], {}, None
        gone: list[str] = []
        if req.user is not None:
            rec = self.store.get_user(req.user)
            known = self._known_to_model(st, req.user)
            seen_items, events = self.store.user_state(req.user)
            if rec is None and not known and not seen_items:
                raise NotFoundError(
                    f"no user {req.user!r}", field="user", fix="create it with PUT /users/{id}"
                )
            user = req.user if known else None
            if rec is not None:
                text_parts.append(rec.text or "")
                info.update(rec.info)
            seen.update(seen_items)  # (every event's item: one read gives both)
            deleted = self._deleted(st, [ev.item for ev in events])
            for ev in events:
                if ev.item in deleted:  # seen only: never history, never cited
                    gone.append(ev.item)
                elif ev.kind in ("like", "click"):
                    items[ev.item] = like
                elif ev.kind == "rating" and ev.value is not None:
                    items[ev.item] = self._stored_rating(st, ev.value, ev.scale)
                elif ev.kind == "dislike":  # the bottom of the model's scale (0 on implicit data)
                    items[ev.item] = fit.dislike_rating
        ratings = req.ratings if req.ratings is not None else [like] * len(req.items)
        # implicit data: any rating above 0 reads as a like (noted where they differ: `ignored_in`), 0
        # as a dislike
        top = self._rating_limit(st) if like > 1 else np.inf
        for pos, r in enumerate(ratings):
            if not 0 <= r <= top:
                message = f"a rating must be between 0 and {top:g}, got {r:g}"
                raise InvalidError(message, field=f"ratings[{pos}]")
        vocab = fit.items
        idx = vocab.lookup(req.items)
        notes = []
        deleted = self._deleted(st, req.items, idx)
        for pos, (item, r, i) in enumerate(zip(req.items, ratings, idx, strict=True)):
            if item in deleted:  # (as feedback on it is refused)
                raise NotFoundError(f"item {item!r} was deleted", field=f"items[{pos}]")
            if i < 0 and item not in st.pending:
                raise NotFoundError(f"no item {item!r}", field=f"items[{pos}]")
            if i < 0:  # stored, but this model cannot score it (an ID-only model, a new item)
                notes.append(
                    f"item {item!r} is stored but this model cannot use it yet (not recommendable), "
                    "so it only counts as seen"
                )
            items[item] = float(r)
            seen.add(item)
        scorable = dict(zip(items, vocab.lookup(list(items)) >= 0, strict=True))  # one lookup
        if gone:
            notes.append(
                f"{len(gone)} of the user's items were deleted, so they only count as seen: {gone[:5]}"
            )
        if req.user is not None:  # e.g. after a hot swap to a model of another catalogue
            asked = set(req.items)
            stored = [i for i, r in items.items() if r > fit.dislike_at and i not in asked]
            unknown = [i for i in stored if not scorable[i]]
            if unknown:
                notes.append(
                    f"{len(unknown)} of the user's stored items (likes and ratings) are not in this model's "
                    f"catalogue, so they only count as seen: {unknown[:5]}"
                )
        if req.text:
            text_parts.append(req.text)
        if req.user_info:
            info.update(req.user_info)
        # every rated item the model can score, dislikes too: a model that reads ratings weighs
        # them (content gives a dislike no weight), the others are scored without them
        # (`QueryBatch.for_model`: a disliked training item no longer counts either)
        positive = {i: r for i, r in items.items() if scorable[i]}
        text = ". ".join(t for t in text_parts if t) or None
        query = Query(
            user=user,
            items=list(positive),
            ratings=list(positive.values()),
            text=text,
            user_info=info or None,
        )
        return query, seen, notes

    def recommend(self, req: S.RecommendRequest) -> S.RecommendResponse:
        """Top-k for a known user and/or a session, with exploration and reasons."""
        st = self._state
        query, seen, notes = self._query(st, req)
        model = st.model
        full, deleted = _without_items(model.batch_from_queries([query]), ~st.catalogue.active)
        if len(deleted):  # a known user's training items deleted since (stored ones: in `_query`)
            ids = list(model.fitted.items.to_external(deleted))
            notes = [
                *notes,
                f"{len(ids)} items of the user's training history were deleted, so they no longer "
                f"shape the list: {ids[:5]}",
            ]
        batch = full.for_model(model)  # without the dislikes, for a model that does not read ratings
        mean = model._scores(batch).astype(np.float64)
        # a known user's training ratings at or below the dislike line are dislikes too (they had
        # counted here, and come back with exclude_seen=False, where the same rating sent as
        # feedback never did)
        low = full.history.indices[full.history.data <= model.fitted.dislike_at]
        history_size = int(full.history.nnz - len(low))
        policy = self._policy(st, req.explore, history_size)
        if req.explore and isinstance(policy, Greedy):
            cfg = self.exploration
            if cfg.policy == "off":
                why = "exploration is off in this service"
            elif not has_posterior(model):
                why = f"{model.name} has no posterior to explore with (the few-shot models have one)"
            else:  # a width of 0
                why = "this service explores with a width of 0 (--explore-width 0)"
            notes = [*notes, f"explore was asked for, but {why}: this is the model's best guess"]
        if req.seed is not None and isinstance(policy, UCB):  # (a client's seed went unremarked)
            notes = [*notes, "seed changes nothing here: UCB exploration draws nothing at random"]
        rng = np.random.default_rng(_draw_seed(req))
        scores = mean if isinstance(policy, Greedy) else policy.scores(model, batch, rng, mean)
        allowed, filter_notes = self._allowed(st, req)
        # as `recommend` and `explore` leave them out; a known user's low training ratings never
        # come back, seen items allowed or not, and the items they have feedback on are seen
        more = [low]
        if req.exclude_seen:
            seen_idx = model.fitted.items.lookup(seen)
            more.append(seen_idx[seen_idx >= 0])
        allowed[left_out(model, full, query.text, seen=req.exclude_seen, more=more)] = False
        # ties: the more popular item first; explored: there by the draw, not the best guess
        top, explored = explored_top(scores[0], mean[0], allowed, req.k, model.fitted.popularity)
        reasons = self._reasons(st, batch, query, top) if req.explain else None
        if reasons:  # (the best guess explores nothing)
            reasons = [(EXPLORED, []) if e else r for e, r in zip(explored, reasons, strict=True)]
        items = self._items(st, top, scores[0], mean[0], reasons, explored)
        if len(top) < req.k:  # (2 items, or none, for k=10 came back without a word)
            causes = ["seen" if req.exclude_seen and (seen or full.history.nnz) else None]
            causes += ["disliked" if len(low) else None]
            causes += ["excluded" if req.exclude else None, "filtered out" if req.filters else None]
            named = [c for c in causes if c]
            active = int(st.catalogue.active.sum())
            got = f"{len(top)} item" + ("s" if len(top) != 1 else "")  # ("1 items, not 3")
            notes = [  # (k past the catalogue, nothing seen: or_words of nothing was a 500)
                *notes,
                f"{got}, not {req.k}: the rest of the catalogue's {active:,} items are {or_words(named)}"
                if named
                else f"{got}, not {req.k}: the catalogue has {active:,}",
            ]
        return S.RecommendResponse(
            user=req.user,
            policy=policy.name,
            model_version=st.version,
            history_size=history_size,
            items=items,
            notes=notes + filter_notes + model.ignored_in(query) + model.text_hints(query),
        )

    def _allowed(self, st: ModelState, opts: S.RecommendOptions) -> tuple[np.ndarray, list[str]]:
        """The items the options allow, and notes on filter values no item has (a typo would
        otherwise just give an empty list)."""
        cat = st.catalogue
        allowed = cat.active.copy()
        notes: list[str] = []
        for name, value in opts.filters.items():
            if name != "title" and name not in cat.field_names:
                raise InvalidError(
                    f"unknown filter field {name!r}",
                    field=f"filters.{name}",
                    fix=f"filter on one of {sorted(cat.field_names | {'title'})}",
                )
            if isinstance(value, list) and not value:
                raise InvalidError("an empty list matches nothing", field=f"filters.{name}")
            allowed &= cat.mask(name, value)
            notes += cat.unmatched(name, value)
        if opts.exclude:
            idx = st.model.fitted.items.lookup(opts.exclude)
            allowed[idx[idx >= 0]] = False
            unknown = [str(i) for i, j in zip(opts.exclude, idx, strict=True) if j < 0]
            if unknown:  # (a typo excluded nothing, without a word: the same one in items is a 404)
                shown = ", ".join(map(repr, unknown[:3])) + (" ..." if len(unknown) > 3 else "")
                notes.append(f"exclude names no item of the catalogue: {shown}; nothing was left out for it")
        return allowed, notes

    def _explain_batch(self, st: ModelState, batch: QueryBatch, query: Query, top: np.ndarray) -> QueryBatch:
        """The batch reasons are computed on (`explained_batch`): the query's own, or one of
        the history items nearest the recommended ones (the query's latest items without item
        vectors), past ``explain_max_history`` and `EXPLAIN_MAX_CELLS`."""
        recent = st.model.fitted.items.lookup(list(query.items)[::-1])
        return explained_batch(
            st.model,
            batch,
            0,
            top,
            recent=[int(i) for i in recent if i >= 0],
            vectors=st.vectors,
            max_history=self.explain_max_history,
            max_cells=EXPLAIN_MAX_CELLS,
        )

    def _reasons(
        self, st: ModelState, batch: QueryBatch, query: Query, top: np.ndarray
    ) -> list[tuple[str, list[str]]]:
        from fewrec.explain.reasons import explain_recommendations

        if not len(top):
            return []
        found = explain_recommendations(st.model, self._explain_batch(st, batch, query, top), 0, top)
        return [(r.text, [i for i, _ in r.because]) for r in found]

    def _items(
        self,
        st: ModelState,
        top: np.ndarray,
        scores: np.ndarray,
        mean: np.ndarray,
        reasons: list[tuple[str, list[str]]] | None,
        explored: np.ndarray,
    ) -> list[S.RecommendedItem]:
        out = []
        ids = st.model.fitted.items.to_external(top)
        for pos, (i, item) in enumerate(zip(top, ids, strict=True)):
            title, _, fields = st.catalogue.record(int(i))
            reason, because = reasons[pos] if reasons else (None, [])
            out.append(
                S.RecommendedItem(
                    item=item,
                    title=title,
                    fields=fields,
                    score=float(scores[i]),
                    mean_score=float(mean[i]),
                    reason=reason,
                    because=because,
                    explored=bool(explored[pos]),
                )
            )
        return out

    def similar(self, item_id: str, opts: S.RecommendOptions) -> S.RecommendResponse:
        """Items most similar to one item (vector index, or the model's one-item session)."""
        st = self._state
        idx = int(st.model.fitted.items.lookup([item_id])[0])
        if idx < 0 and item_id in st.pending:  # (stored, GET /items/{id} shows it: "no item" misled)
            raise NotFoundError(
                f"item {item_id!r} is stored, but {st.model.name} cannot score it yet (it learns an item "
                "from interactions, so the item joins when the model is trained again)",
                field="item_id",
                fix="serve a model that reads item text (content, fewshot, ensemble) for similar ones now",
            )
        if idx < 0 or not st.catalogue.active[idx]:
            raise NotFoundError(f"no recommendable item {item_id!r}", field="item_id")
        allowed, notes = self._allowed(st, opts)
        allowed[idx] = False
        unlike: str | None = None  # the reason when the model's list does not follow the item
        if st.index is not None and st.vectors is not None and (opts.filters or allowed.mean() < EXACT_BELOW):
            # a filter, or exclusions of half the items: an approximate index (IVF, HNSW)
            # searches only the cells near the item, and misses the allowed items beyond them (a
            # filter keeping 55% gave recall@10 0.34 from an item of an excluded kind), so score
            # the allowed items exactly
            # (one float32 product over the catalogue, masked: a copy of the allowed rows in
            # float64 took 2.8 s and ~3 GB a request on 200,000 items)
            scores = (st.vectors @ st.vectors[idx]).astype(np.float64)
            scores[~allowed[: len(scores)]] = -np.inf
            best = top_k_by(scores, opts.k, st.model.fitted.popularity)
            best = best[scores[best] > -np.inf]  # (+inf, the best, was left out)
            hits, sims = best, scores[best]
        elif st.index is not None and st.vectors is not None:
            sims, hits = st.index.search(st.vectors[idx : idx + 1], opts.k, allowed)
            keep = hits[0] >= 0
            hits, sims = hits[0][keep], sims[0][keep].astype(np.float64)
        else:
            batch = st.model.batch_from_queries([Query(items=[item_id]), Query()])
            both = st.model._scores(batch).astype(np.float64)
            scores = both[0]
            # a model that reads no history (random draws by the history, and like-share scores
            # every item alike, so their rows differ: they were "Similar to" lists)
            if st.model.fixed_reason is not None or np.array_equal(scores, both[1], equal_nan=True):
                unlike = st.model.fixed_reason or "Popular right now."
                notes.append(
                    f"{st.model.name} ranks items without reading one (as for anyone), so these are "
                    "not similar items; a model that reads histories finds them"
                )
            ranked = np.where(allowed, scores, -np.inf)
            hits = top_k_by(ranked, opts.k, st.model.fitted.popularity)  # ties: the more popular first
            hits = hits[ranked[hits] > -np.inf]  # (NaN counts as -inf; +inf, the best, was left out)
            sims = ranked[hits]
        title, _, fields = st.catalogue.record(idx)
        # as lists' reasons name it ("Similar to Godfather, The (Action)" read the genre as part
        # of the title, and the year was lost)
        label = label_of(st.model, idx) if title else item_id
        items = []
        for j, s in zip(hits, sims, strict=True):
            t, _, f = st.catalogue.record(int(j))
            shared = _shared_values(fields, f)
            reason = unlike or f"Similar to {label}" + (f"; both are {and_words(shared)}." if shared else ".")
            items.append(
                S.RecommendedItem(
                    item=st.model.fitted.items.id(int(j)),
                    title=t,
                    fields=f,
                    score=float(s),
                    mean_score=float(s),
                    reason=reason if opts.explain else None,
                    # (it cited the item under "Popular right now." and with explain=false)
                    because=[item_id] if opts.explain and not unlike else [],
                )
            )
        return S.RecommendResponse(
            user=None, policy="similar", model_version=st.version, history_size=0, items=items, notes=notes
        )


# ------------------------------------------------------------------------------------ helpers
def _feedback_out(e: FeedbackRecord) -> S.FeedbackOut:
    return S.FeedbackOut(user=e.user, item=e.item, kind=e.kind, value=e.value, timestamp=e.ts, seq=e.seq)


def _shared_values(a: dict[str, Any], b: dict[str, Any], limit: int = 3) -> list[str]:
    """Values of list fields (e.g. genres) two items share."""
    out: list[str] = []
    for name, va in a.items():
        vb = b.get(name)
        if isinstance(va, list) and isinstance(vb, list):
            keys = {value_key(v) for v in vb}
            out.extend(str(v) for v in va if value_key(v) in keys)
    return out[:limit]


def _is_list_column(series: pd.Series) -> bool:
    first = next((v for v in series if v is not None and not (isinstance(v, float) and np.isnan(v))), None)
    return isinstance(first, list | tuple | np.ndarray)


def _vocabulary_first(model: Recommender) -> None:
    """Work out the model's text vocabulary before it reads items written here, so that their
    words (title and text, as the model reads them) join it: worked out afterwards, from the
    catalogue's titles alone (`_label_titles`), a name in an item's text got a note saying no
    item mentioned it."""
    if model.text_encoders:
        model.text_vocabulary()


def _info_frame(model: Recommender, records: Sequence[ItemRecord]) -> pd.DataFrame:
    """Item info rows in the model's own columns (what its text template reads).

    Fields the model has no column for are left out. A free ``text`` gets its own column, as
    ``model.add_items(ids, pd.DataFrame({"title": ..., "text": ...}))`` gives it in Python, so
    an item written here is read as the same text: after the template when the template does not
    name it (`item_texts`). Without a template a model reads every text column, so the title gets
    a column of its own when its items had none (trained on data with, say, only a
    ``description``, it dropped them).
    """
    fit = model.fitted
    cols = list(fit.item_info.columns)
    template = model.item_text_template()
    if template is None or not cols:
        cols += [c for c in ("title",) if c not in cols]
    if "text" not in cols and any(r.text for r in records):
        cols.append("text")
    list_cols = {c for c in cols if c in fit.item_info.columns and _is_list_column(fit.item_info[c])}
    rows = []
    for r in records:
        row: dict[str, Any] = {}
        for c in cols:
            v = r.title if c == "title" else r.text if c == "text" else r.fields.get(c)
            if v is None:
                v = [] if c in list_cols else ""
            elif c in list_cols:  # ("A|B" was one genre named "A|B")
                v = [str(x) for x in v] if isinstance(v, list) else genre_list(v, fit.genre_sep)
            else:
                v = ", ".join(map(str, v)) if isinstance(v, list) else str(v)
            row[c] = v
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _without_items(batch: QueryBatch, gone: np.ndarray) -> tuple[QueryBatch, np.ndarray]:
    """``batch`` without the history entries of the items ``gone`` marks, and those items (a
    known user's training row holds items deleted from the catalogue since: they had shaped the
    list and been cited, "Because you rated" an item the service answers 404 for)."""
    h = batch.history.tocoo()
    drop = gone[h.col]
    if not drop.any():
        return batch, np.zeros(0, dtype=np.int64)
    keep = ~drop
    history = sp.csr_matrix((h.data[keep], (h.row[keep], h.col[keep])), shape=h.shape)
    return dataclasses.replace(batch, history=history), np.unique(h.col[drop])


def _side_values(levels: frozenset[tuple[str, str]], most: int = 200) -> dict[str, list[str]]:
    """The learned levels of each side-info field of words (a field of numbers, such as age in
    decades, is left out: any number is read), for a form to suggest; none past ``most`` levels.
    (The page's "female" met "never seen in training ... it saw 'F', 'M'" after the request.)"""
    fields: dict[str, list[str]] = {}
    for name, level in sorted(levels):
        fields.setdefault(name, []).append(level)
    return {
        f: values
        for f, values in fields.items()
        if len(values) <= most and not all(_is_number(v) for v in values)
    }


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
