"""The serving catalogue: display and filter fields of the items a model scores, and the item
vectors behind similar-item search."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fewrec.data.dataset import field_text, label_of
from fewrec.models.base import Recommender
from fewrec.serve.store import ItemRecord

SEARCH_CHARS = 2000
"""How much of an item's text, and of each text field, search reads (bounds its memory)."""
CLOSE_PAIRS = 10_000
"""Comparisons of a filter's unmatched values with the field's values that its notes' close-value
hints may make (difflib, ~10 us each): 64 title values on a 100,000-item catalogue took 45 s of
one request. Values past it, and every value of a field with more values, get no hint."""


def _plain(value: Any) -> Any:
    """A JSON-able copy of a field value (numpy arrays and scalars, NaN -> None)."""
    if isinstance(value, np.ndarray | list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def field_json(value: Any) -> Any:
    """A field value as JSON holds it: numbers and flags as themselves, missing as None, a date
    as its day ("2024-12-01") where it has no time, else ISO 8601, lists of text as lists."""
    if isinstance(value, list | tuple | np.ndarray):
        return [field_json(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | datetime.datetime):
        value = pd.Timestamp(value)
        return (
            value.date().isoformat() if value == value.normalize() and value.tz is None else value.isoformat()
        )
    return _plain(value)


def value_key(value: Any) -> str:
    """How field values compare in filters: case-insensitive text, 1995.0 == 1995 == "1995",
    a date at midnight as its day ("2024-04-08": it read "2024-04-08 00:00:00")."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, pd.Timestamp | datetime.datetime):
        return str(field_json(value)).casefold()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().casefold()


class Catalogue:
    """Display and filter fields of every item the model scores, aligned with its indices.

    Attributes:
        titles, texts, fields: per item.
        source: ``"model"`` (from the model's catalogue) or ``"store"`` (added via the API).
        active: whether each item may be recommended (False once deleted).
    """

    def __init__(self) -> None:
        self.titles: list[str | None] = []
        self.texts: list[str | None] = []
        self.fields: list[dict[str, Any]] = []
        self.source: list[str] = []
        self.active = np.zeros(0, dtype=bool)
        self.field_names: set[str] = set()
        self._inverted: dict[str, dict[str, np.ndarray]] = {}
        self._lower: pd.Series | None = None  # casefolded titles and their `title_key`, for search
        self._other: pd.Series | None = None  # casefolded text and text fields, for search
        self._by_title: dict[str, np.ndarray] | None = None  # title key -> items, for filters

    @classmethod
    def from_model(cls, model: Recommender) -> Catalogue:
        info = model.fitted.item_info
        n = model.n_items
        cat = cls()
        cols = {c: info[c].tolist() for c in info.columns if c not in ("title", "text")}
        cat.titles = [_text_or_none(t) for t in info["title"].tolist()] if "title" in info else [None] * n
        cat.texts = [_text_or_none(t) for t in info["text"].tolist()] if "text" in info else [None] * n
        cat.fields = [{c: field_json(vals[i]) for c, vals in cols.items()} for i in range(n)]
        cat.source = ["model"] * n
        cat.active = np.ones(n, dtype=bool)
        cat.field_names = set(cols)
        return cat

    def __len__(self) -> int:
        return len(self.titles)

    def copy(self) -> Catalogue:
        """A copy that can change without touching this one (O(n) references, no deep copy)."""
        new = Catalogue()
        new.titles, new.texts = list(self.titles), list(self.texts)
        new.fields, new.source = list(self.fields), list(self.source)
        new.active = self.active.copy()
        new.field_names = set(self.field_names)
        # a snapshot first: a request may index a field of this (live) catalogue meanwhile, and
        # iterating the dict itself then failed ("dictionary changed size during iteration")
        new._inverted = {name: dict(inv) for name, inv in dict(self._inverted).items()}
        new._lower, new._other, new._by_title = (
            self._lower,
            self._other,
            self._by_title,
        )  # rebuilt, not changed
        return new

    def append(self, records: Sequence[ItemRecord]) -> None:
        start = len(self)
        for r in records:
            self.titles.append(r.title)
            self.texts.append(r.text)
            self.fields.append(dict(r.fields))
            self.source.append("store")
            self.field_names.update(r.fields)
        self.active = np.r_[self.active, np.ones(len(records), dtype=bool)]
        for name, inv in self._inverted.items():
            groups = self._groups([r.fields for r in records], name, start)
            for key, idx in groups.items():
                inv[key] = np.r_[inv[key], idx] if key in inv else np.asarray(idx, dtype=np.int64)
        self._lower = self._other = self._by_title = None

    def update(self, idx: int, record: ItemRecord) -> None:
        old = self.fields[idx]
        self.titles[idx], self.texts[idx] = record.title, record.text
        self.fields[idx] = dict(record.fields)
        self.field_names.update(record.fields)
        for name, inv in self._inverted.items():  # move the item between its old and new groups
            for key in self._keys(old.get(name)):
                inv[key] = inv[key][inv[key] != idx]
            for key in self._keys(record.fields.get(name)):
                inv[key] = np.r_[inv.get(key, np.zeros(0, np.int64)), idx]
        self._lower = self._other = self._by_title = None

    def index_fields(self) -> None:
        """Build the inverted index of every filter field now (else the first filter on a
        field builds it, which takes a noticeable moment on a large catalogue)."""
        for name in sorted(self.field_names | {"title"}):
            self._inverted_for(name)

    def _groups(self, fields: Sequence[dict[str, Any]], name: str, start: int) -> dict[str, list[int]]:
        """Item indices (from ``start``) by filter key of field ``name``."""
        groups: dict[str, list[int]] = {}
        for i, f in enumerate(fields, start=start):
            for key in self._keys(f.get(name)):
                groups.setdefault(key, []).append(i)
        return groups

    def _inverted_for(self, name: str) -> dict[str, np.ndarray]:
        if name == "title":
            if self._by_title is None:
                groups = self._groups([{"title": t} for t in self.titles], "title", 0)
                self._by_title = {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}
            return self._by_title
        inv = self._inverted.get(name)
        if inv is None:
            groups = self._groups(self.fields, name, 0)
            inv = {k: np.asarray(v, dtype=np.int64) for k, v in groups.items()}
            self._inverted[name] = inv
        return inv

    def record(self, idx: int) -> tuple[str | None, str | None, dict[str, Any]]:
        return self.titles[idx], self.texts[idx], self.fields[idx]

    @staticmethod
    def _keys(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, list):
            return [value_key(v) for v in value]
        return [value_key(value)]

    def mask(self, name: str, value: Any) -> np.ndarray:
        """Items whose field ``name`` equals ``value`` (or contains it; a list: any of)."""
        inv = self._inverted_for(name)
        out = np.zeros(len(self), dtype=bool)
        for key in self._keys(value):
            hits = inv.get(key)
            if hits is not None:
                out[hits] = True
        return out

    def unmatched(self, name: str, value: Any) -> list[str]:
        """Notes on the filter values of field ``name`` that no item has (with close ones)."""
        import difflib

        values = value if isinstance(value, list) else [value]
        known = self._inverted_for(name)
        notes = []
        budget, keys = CLOSE_PAIRS, None
        for v in values:
            if v is not None and value_key(v) not in known:
                close = []
                if len(known) <= budget:  # (the hints' cost is bounded, see CLOSE_PAIRS)
                    budget -= len(known)
                    keys = sorted(known) if keys is None else keys
                    close = difflib.get_close_matches(value_key(v), keys, n=3, cutoff=0.6)
                hint = f" (close: {close})" if close else ""
                notes.append(f"filter {name}={v!r} matches no item{hint}")
        return notes

    def search(self, query: str) -> np.ndarray:
        """Indices of items whose title contains ``query`` (case-insensitive; or, compared as
        `title_key`s, without accents, articles and punctuation: "The Godfather" finds "Godfather,
        The (1972)"), then those whose text or text fields do (a catalogue with only descriptions
        was not searchable)."""
        from fewrec.present import title_key

        q = query.strip().casefold().replace("\n", " ")
        key = title_key(query)
        if self._lower is None:  # the title, a line break, its key: a match cannot span the two
            labels = [  # with the year, as tables label it ("Star Wars 1977" finds "Star Wars")
                label_of(t, f.get("year"), "") if t else ""
                for t, f in zip(self.titles, self.fields, strict=True)
            ]
            self._lower = pd.Series(
                [
                    f"{(t or '').casefold()}\n{title_key(lab)}"
                    for t, lab in zip(self.titles, labels, strict=True)
                ],
                dtype="str",
            )
        if self._other is None:  # one string per item (a fixed-width array took GBs)
            texts = zip(self.texts, self.fields, strict=True)
            other = [_search_text(t, f).casefold() for t, f in texts]
            self._other = pd.Series(other, dtype="str")
        in_title = self._lower.str.contains(q, regex=False).to_numpy(dtype=bool)
        if key:
            in_title = in_title | self._lower.str.contains(key, regex=False).to_numpy(dtype=bool)
        elsewhere = self._other.str.contains(q, regex=False).to_numpy(dtype=bool) & ~in_title
        return np.r_[np.flatnonzero(in_title), np.flatnonzero(elsewhere)]


def _text_or_none(value: Any) -> str | None:
    """A title or text field as text; None when missing (pandas keeps a missing one as NaN,
    which ``str`` made the title "nan")."""
    return field_text(value) or None


def _search_text(text: str | None, fields: dict[str, Any]) -> str:
    """An item's text-valued fields (lists of text too), then the first `SEARCH_CHARS` of its
    free text, for search."""
    parts = []
    for v in fields.values():
        if isinstance(v, str):
            parts.append(v[:SEARCH_CHARS])
        elif isinstance(v, list):
            parts.extend(x[:SEARCH_CHARS] for x in v if isinstance(x, str))
    parts.append((text or "")[:SEARCH_CHARS])
    return "\n".join(parts)
