"""The `Dataset`: interactions, item text, user side info and id vocabularies.

External ids (whatever the user's data calls a user or an item) live only at the edges; inside,
users and items are dense integer indices `0..n-1` given by a `Vocabulary`. External ids are kept
as strings, so ``242`` and ``"242"`` name the same item, and one written with other Unicode code
points for the same letters (``"café"`` typed on one system, decomposed on another) finds it.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import io
import json
import logging
import re
import unicodedata
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.errors import DataError

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")

log = logging.getLogger(__name__)

DEFAULT_ITEM_TEMPLATE = "{title} ({year}). Genres: {genres}."


class Vocabulary:
    """A bijection between external ids (strings) and internal indices ``0..n-1``."""

    def __init__(self, ids: Iterable[Any]):
        self._ids: list[str] = [str(i) for i in ids]
        self._index: dict[str, int] = {}
        for pos, key in enumerate(self._ids):
            if key in self._index:
                raise DataError(
                    f"duplicate id {key!r} at positions {self._index[key]} and {pos}",
                    fix="make ids unique before building a vocabulary",
                )
            self._index[key] = pos
        self._nfc: dict[str, int] | None = None

    def _equivalent(self, key: str) -> int:
        """The index of the one id canonically equivalent to ``key`` (the same text in Unicode
        normal form C: ``"cafe\u0301"`` is ``"caf\u00e9"``), or -1 (none, or several)."""
        if key.isascii():  # the only form of an ASCII id
            return -1
        if self._nfc is None:
            nfc: dict[str, int] = {}
            for pos, known in enumerate(self._ids):
                if not known.isascii():
                    form = unicodedata.normalize("NFC", known)
                    nfc[form] = -1 if form in nfc else pos
            self._nfc = nfc
        return self._nfc.get(unicodedata.normalize("NFC", key), -1)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, key: object) -> bool:
        key = str(key)
        return key in self._index or self._equivalent(key) >= 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._ids == other._ids

    def __hash__(self) -> int:
        return hash(tuple(self._ids))

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} ids)"

    @property
    def ids(self) -> list[str]:
        """External ids in index order."""
        return list(self._ids)

    def id(self, index: int) -> str:
        """External id of one internal index."""
        return self._ids[int(index)]

    def lookup(self, ids: Iterable[Any]) -> np.ndarray:
        """Internal indices of external ids; ``-1`` for ids not in the vocabulary. An id the
        vocabulary lacks finds the one it has in another Unicode form, if any."""
        keys = [str(i) for i in ids]
        out = np.fromiter((self._index.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
        for j in np.flatnonzero(out < 0):
            out[j] = self._equivalent(keys[j])
        return out

    def index(self, ids: Iterable[Any], *, what: str = "id") -> np.ndarray:
        """Internal indices of external ids; raises `DataError` naming the first unknown id."""
        ids = list(ids)
        idx = self.lookup(ids)
        if (idx < 0).any():
            bad = ids[int(np.flatnonzero(idx < 0)[0])]
            raise DataError(
                f"unknown {what} {bad!r} ({int((idx < 0).sum())} unknown in all)" + self._near(str(bad)),
                fix=f"use {what}s that exist in the data ({len(self)} known)",
            )
        return idx

    def same_number(self, key: str) -> list[str]:
        """Known ids other than ``key`` that write the same whole number with other leading
        zeros ("007" for "7": an id column read as numbers lost them) or as a decimal ("7.0":
        a column with a gap, written by pandas)."""
        number = _whole_number(key)
        if number is None:
            return []
        return [k for k in self._ids if k != key and k[:1].isdigit() and _whole_number(k) == number]

    def written_otherwise(self, key: str) -> list[str]:
        """Known ids that are ``key`` written otherwise: in another case or spacing, or with
        other leading zeros; none past 200,000 ids (a scan of every id)."""
        if len(self) > 200_000:  # (0.3-0.5 s a query on a million users)
            return []
        folded = {k.casefold().strip(): k for k in reversed(self._ids)}
        near = [folded[key.casefold().strip()]] if key.casefold().strip() in folded else []
        return near + [k for k in self.same_number(key) if k not in near][:3]

    def _near(self, key: str, most: int = 200_000) -> str:
        """ "; did you mean ...?" naming up to three known ids close to ``key`` (ids that differ
        in case or spacing, by leading zeros, or by a typo), or "" past ``most`` ids: it scans
        every id (~0.25 s on 200,000), so a warning a loop may meet on every call asks for it on
        small catalogues only, and an error up to the default."""
        if len(self) > most:
            return ""
        near = self.written_otherwise(key)
        near += [k for k in difflib.get_close_matches(key, self._ids, n=3, cutoff=0.8) if k not in near]
        return f"; did you mean {', '.join(map(repr, near[:3]))}?" if near else ""

    def to_external(self, indices: Iterable[int]) -> list[str]:
        """External ids of internal indices."""
        return [self._ids[int(i)] for i in indices]

    def to_json(self) -> list[str]:
        """The external ids in index order, for JSON (`from_json` reads them back)."""
        return list(self._ids)

    @classmethod
    def from_json(cls, data: Sequence[str]) -> Vocabulary:
        """The vocabulary of ids written by `to_json`."""
        return cls(data)


@dataclass
class Dataset:
    """Interactions plus item and user side information over shared id vocabularies.

    Attributes:
        interactions: columns ``user``, ``item`` (internal indices), ``rating`` (float; 1.0 for
            implicit data) and ``timestamp`` (int64; the row order when the data has no time).
        users: user vocabulary (all users known to the dataset, with or without interactions).
        items: item vocabulary (the whole catalogue, with or without interactions).
        item_info: one row per item in index order; text columns such as title, year, genres.
        user_info: one row per user in index order (may have no columns).
        name: a short name for reports.
        item_template: the `str.format` template that turns an item row into text.
        left_out: users x items, the interactions `keep_ratings` left out (rated below its
            minimum): a model fitted on the data never recommends them back to those users.
            `save` and `load` keep it; other views of the data (`with_interactions`, the
            splits) do not.
        timed: whether the timestamps are times; False: the rows' order stands for time (data
            loaded without a time column), so "earliest" means "first written".
        counts: whether the ratings are amounts (plays, purchases: rows combined by
            ``repeats="sum"`` or ``"count"``), which never read as a star scale, however small
            their top: a pair played twice is no 2-star dislike.
        genre_sep: the separator the genres were split on when loaded (`Columns.genre_sep`):
            new or updated items' genres given as text are split on it too (they were split on
            "|" whatever the data's, "garden;kitchen" one genre).
    """

    interactions: pd.DataFrame
    users: Vocabulary
    items: Vocabulary
    item_info: pd.DataFrame = field(default_factory=pd.DataFrame)
    user_info: pd.DataFrame = field(default_factory=pd.DataFrame)
    name: str = "custom"
    item_template: str | None = None
    left_out: sp.csr_matrix | None = None
    timed: bool = True
    counts: bool = False
    genre_sep: str = "|"

    def __post_init__(self) -> None:
        missing = [c for c in INTERACTION_COLUMNS if c not in self.interactions.columns]
        if missing:
            raise DataError(f"interactions lack columns {missing}")
        if self.item_info.empty and len(self.item_info.columns) == 0:
            self.item_info = pd.DataFrame(index=pd.RangeIndex(len(self.items)))
        if self.user_info.empty and len(self.user_info.columns) == 0:
            self.user_info = pd.DataFrame(index=pd.RangeIndex(len(self.users)))
        if len(self.item_info) != len(self.items):
            raise DataError(f"item_info has {len(self.item_info)} rows for {len(self.items)} items")
        if len(self.user_info) != len(self.users):
            raise DataError(f"user_info has {len(self.user_info)} rows for {len(self.users)} users")
        _check_indices(self.interactions["user"], len(self.users), "user")
        _check_indices(self.interactions["item"], len(self.items), "item")
        ratings = self.interactions["rating"]
        if len(ratings) and (
            not pd.api.types.is_numeric_dtype(ratings) or not np.isfinite(ratings.to_numpy(float)).all()
        ):
            raise DataError(
                f"{self.name}: the interactions' ratings must be finite numbers (none missing or infinite)",
                fix="drop or fill the missing ones, and replace infinite ones",
            )
        times = self.interactions["timestamp"]
        if pd.api.types.is_datetime64_any_dtype(times):  # compared with Unix seconds elsewhere
            self.interactions = self.interactions.assign(timestamp=unix_seconds(times))
        elif len(times) and (not pd.api.types.is_numeric_dtype(times) or pd.api.types.is_bool_dtype(times)):
            raise DataError(
                f"{self.name}: the interactions' timestamps must be numbers (Unix seconds) or datetimes, "
                f"not {times.dtype}",
                fix="load_interactions reads times written as text",
            )
        self.interactions = keep_latest(self.interactions, self.name)

    # ------------------------------------------------------------------ sizes and views
    @property
    def n_users(self) -> int:
        """Number of users in the user vocabulary (with or without interactions)."""
        return len(self.users)

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue (with or without interactions)."""
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        """Number of interaction rows (one per (user, item))."""
        return len(self.interactions)

    @property
    def rating_range(self) -> tuple[float, float]:
        """The lowest and highest rating ((0, 0) without interactions)."""
        r = self.interactions["rating"]
        return (float(r.min()), float(r.max())) if len(r) else (0.0, 0.0)

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}: {self.n_users} users, {self.n_items} items, "
            f"{self.n_interactions} interactions)"
        )

    def matrix(self, *, implicit: bool = False) -> sp.csr_matrix:
        """User x item CSR matrix of ratings (or of ones when ``implicit``)."""
        inter = self.interactions
        values = np.ones(len(inter), dtype=np.float32) if implicit else inter["rating"].to_numpy(np.float32)
        m = sp.csr_matrix(
            (values, (inter["user"].to_numpy(), inter["item"].to_numpy())),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        return m

    def fingerprint(self) -> str:
        """A short hash of the interactions and id vocabularies: results on different data differ."""
        h = hashlib.sha256()
        for col in INTERACTION_COLUMNS:
            h.update(np.ascontiguousarray(self.interactions[col].to_numpy()).tobytes())
        h.update(json.dumps([self.users.to_json(), self.items.to_json()]).encode())
        return h.hexdigest()[:16]

    def fields_fingerprint(self) -> str:
        """A short hash of the item and user fields and the item template (`fingerprint` covers
        the interactions): text and side-info models read them, so results on other fields differ."""
        h = hashlib.sha256()
        for frame in (self.item_info, self.user_info):
            h.update(frame.to_json(orient="split", default_handler=str, date_format="iso").encode())
        h.update(str(self.item_template).encode())
        return h.hexdigest()[:16]

    def item_counts(self) -> np.ndarray:
        """Number of interactions of each item."""
        return np.bincount(self.interactions["item"].to_numpy(), minlength=self.n_items)

    def user_counts(self) -> np.ndarray:
        """Number of interactions of each user."""
        return np.bincount(self.interactions["user"].to_numpy(), minlength=self.n_users)

    def with_interactions(self, interactions: pd.DataFrame, name: str | None = None) -> Dataset:
        """The same catalogue and users with other interactions (used by splits): a frame of
        `interactions`' columns, whose ``user`` and ``item`` are positions, not ids
        (``self.users.index(ids)``, ``self.items.index(ids)`` give them)."""
        return Dataset(
            interactions=interactions.reset_index(drop=True),
            users=self.users,
            items=self.items,
            item_info=self.item_info,
            user_info=self.user_info,
            name=name or self.name,
            item_template=self.item_template,
            timed=self.timed,
            counts=self.counts,
            genre_sep=self.genre_sep,
        )

    def keep_ratings(self, at_least: float) -> Dataset:
        """Only the interactions rated ``at_least`` or more: a like/dislike log (1/0) becomes
        likes only, which ID-only models need (they count every interaction as a sign of
        interest, a 0 too). The catalogue and users stay."""
        if isinstance(at_least, bool) or not isinstance(at_least, int | float | np.number):
            raise DataError(f"keep_ratings takes a number, not {at_least!r}", fix="e.g. keep_ratings(4)")
        if np.isnan(at_least):  # ("no interaction is rated nan or more")
            raise DataError(
                "the minimum rating is NaN, which no rating reaches",
                fix="give a number, e.g. keep_ratings(4) (CLI: --min-rating 4)",
            )
        keep = self.interactions["rating"].to_numpy() >= at_least
        kept = self.interactions[keep]
        if kept.empty:
            lo, hi = self.rating_range
            if lo == hi:
                raise DataError(
                    f"every interaction is rated {lo:g}: the data are implicit, with no ratings to keep "
                    "some of",
                    fix="leave out the minimum rating (CLI: --min-rating), or load the rating column",
                )
            raise DataError(
                f"no interaction is rated {at_least:g} or more (ratings run {lo:g} to {hi:g})",
                fix="give a lower minimum rating",
            )
        out = self.with_interactions(kept)
        dropped = self.interactions[~keep]
        out.left_out = sp.csr_matrix(
            (np.ones(len(dropped), np.float32), (dropped["user"].to_numpy(), dropped["item"].to_numpy())),
            shape=(self.n_users, self.n_items),
        )
        return out

    # ------------------------------------------------------------------ text
    def item_texts(self, template: str | None = None) -> list[str]:
        """One text per item, made from its fields by ``template`` (or a sensible default)."""
        return item_texts(self.item_info, template or self.item_template, self.items.ids)

    def item_genres(self) -> list[list[str]]:
        """Genre list per item ([] when the data has no ``genres`` column)."""
        if "genres" not in self.item_info.columns:
            return [[] for _ in range(self.n_items)]
        return [list(g) if isinstance(g, list | tuple) else [] for g in self.item_info["genres"]]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save as a directory of Parquet + JSON files (no pickle), ``left_out`` as a sparse
        ``.npz``; returns the directory. As a model's save (`Recommender.save`), the files are
        written whole into a sibling folder and swapped in: written one by one, a save that
        failed midway over an older one left a folder that loaded as a mix of the two."""
        from fewrec.models.saving import _check_save_folder, _model_path, _parquet_bytes, write_folder

        path = _model_path(path, what="dataset")
        _check_save_folder(path, what="dataset", marker="dataset.json", saved=DATASET_FILES)
        fix = "give each field one type for all {} (text, numbers, or lists of text)"
        files: dict[str, bytes | None] = {
            "interactions.parquet": _parquet_bytes(self.interactions, "interactions", "check the ratings"),
            # None: no file (a frame without columns keeps no rows either); `item_fields` says so
            "items.parquet": _parquet_bytes(self.item_info, "item fields", fix.format("items")),
            "users.parquet": _parquet_bytes(self.user_info, "user side info", fix.format("users")),
            "left_out.npz": None,
        }
        if self.left_out is not None:  # (it was dropped: a loaded dataset recommended them back)
            buf = io.BytesIO()
            sp.save_npz(buf, self.left_out.tocsr())
            files["left_out.npz"] = buf.getvalue()
        meta = {
            "name": self.name,
            "item_template": self.item_template,
            "timed": self.timed,
            "counts": self.counts,
            "genre_sep": self.genre_sep,
            "users": self.users.to_json(),
            "items": self.items.to_json(),
            "item_fields": [str(c) for c in self.item_info.columns],
            "user_fields": [str(c) for c in self.user_info.columns],
        }
        files["dataset.json"] = json.dumps(meta).encode()
        write_folder(path, files, what="dataset")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        """Load a dataset saved with `save`; a `DataError` when ``path`` holds no
        ``dataset.json``, or a file of it is damaged or missing."""
        from fewrec.models.saving import _folder_lock, _model_path

        path = _model_path(path, what="dataset")
        if not (path / "dataset.json").exists():
            raise DataError("not a saved fewrec dataset (no dataset.json)", source=str(path))
        part = "dataset.json"
        try:  # under the lock a save's swap takes: all files of one save
            with _folder_lock(path.resolve().parent, exclusive=False):
                meta = json.loads((path / part).read_text())
                frames = {}
                for part, fields in (("items.parquet", "item_fields"), ("users.parquet", "user_fields")):
                    # a save before 2026-12-07 (evening) wrote both files always, and no field lists
                    if meta.get(fields, True) or (path / part).exists():
                        frames[part] = pd.read_parquet(path / part)
                    else:
                        frames[part] = pd.DataFrame()
                part = "interactions.parquet"
                interactions = pd.read_parquet(path / part)
                part = "left_out.npz"
                left_out = sp.load_npz(path / part).tocsr() if (path / part).exists() else None
            part = "dataset.json"
            users, items = Vocabulary(meta["users"]), Vocabulary(meta["items"])
            name, template = meta["name"], meta["item_template"]
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise DataError(
                f"the saved dataset is damaged or incomplete ({part}: {type(exc).__name__}: {detail})",
                source=str(path),
                fix="save the dataset again",
            ) from None
        item_info = frames["items.parquet"]
        if "genres" in item_info.columns:
            item_info["genres"] = item_info["genres"].map(list)
        shape = (len(users), len(items))
        if left_out is not None and left_out.shape != shape:  # (another dataset's file)
            raise DataError(
                f"left_out.npz is {left_out.shape[0]} x {left_out.shape[1]}, not users x items {shape}",
                source=str(path),
                fix="save the dataset again",
            )
        return cls(
            interactions=interactions,
            users=users,
            items=items,
            item_info=item_info,
            user_info=frames["users.parquet"],
            name=name,
            item_template=template,
            timed=bool(meta.get("timed", True)),
            counts=bool(meta.get("counts", False)),
            genre_sep=str(meta.get("genre_sep") or "|"),  # (saved before 2026-12-07: none kept)
            left_out=left_out,
        )


#: The files of a saved dataset (`Dataset.save`).
DATASET_FILES = ("dataset.json", "interactions.parquet", "items.parquet", "users.parquet", "left_out.npz")


def _whole_number(key: str) -> str | None:
    """The digits of a whole number written with leading zeros or a zero decimal part ("007",
    "7.0" -> "7"), or None for an id that is not one."""
    match = re.fullmatch(r"\s*0*(\d+?)(?:\.0+)?\s*", key)
    return match[1] if match else None


def _check_indices(column: pd.Series, n: int, what: str) -> None:
    """Interactions hold internal indices ``0..n-1`` of the vocabulary, not external ids."""
    values = column.to_numpy()
    if len(values) and (not pd.api.types.is_integer_dtype(column) or values.min() < 0 or values.max() >= n):
        raise DataError(
            f"interactions' {what} column must hold indices 0..{n - 1} of the {what} vocabulary",
            fix=f"map external ids with `{what}s.index(ids)`, or build the dataset with load_interactions",
        )


def keep_latest(frame: pd.DataFrame, label: str, timed: bool = True) -> pd.DataFrame:
    """``frame`` with one row per (user, item): the latest by timestamp, with a warning
    (``timed=False``: the timestamps are the rows' order, so it is the last row).

    Repeated rows would otherwise be summed into one cell of `Dataset.matrix` (two 4-star
    ratings read as an 8) and could sit on both sides of a split.
    """
    dup = frame.duplicated(["user", "item"], keep="last")
    if not dup.any():
        return frame
    latest = frame.sort_values("timestamp", kind="stable")
    dup = latest.duplicated(["user", "item"], keep="last")
    which = "the latest" if timed else "the last row"
    log.warning(
        "%s: %d repeated (user, item) rows; keeping %s of each (to add their ratings up, as plays "
        "or purchases, or count the rows: load_interactions(repeats='sum' or 'count'), CLI --repeats)",
        label,
        int(dup.sum()),
        which,
    )
    return latest[~dup.to_numpy()].sort_index().reset_index(drop=True)


def combine_repeats(frame: pd.DataFrame, label: str, how: str) -> pd.DataFrame:
    """``frame`` with one row per (user, item), in the order of their first rows: the sum of the
    pair's ratings (``how="sum"``) or its number of rows (``"count"``), at its first time (when
    the user met the item: what the earliest reveal orders by)."""
    groups = frame.groupby(["user", "item"], sort=False)
    out = groups.agg(
        rating=("rating", "sum" if how == "sum" else "size"), timestamp=("timestamp", "min")
    ).reset_index()
    if len(out) < len(frame):
        log.info(
            "%s: %d repeated (user, item) rows; %s",
            label,
            len(frame) - len(out),
            "their ratings added up" if how == "sum" else "each pair's rows counted, as its rating",
        )
    return out.astype({"user": frame["user"].dtype, "item": frame["item"].dtype, "rating": np.float32})


MAX_CODE = 30
"""Side-info fields of whole numbers from 0 to this are codes (occupation 1..21, a bracket 1..7,
children 0..5): each value is its own level. Larger numbers (ages) go by decade."""


def is_code_field(series: pd.Series) -> bool:
    """Whether a numeric side-info column holds codes rather than amounts: whole numbers from 0
    to `MAX_CODE` (occupation 1..21 are; ML-100K's ages 7..73, or years, go by decade)."""
    values = pd.to_numeric(series, errors="coerce").astype(float)
    values = values[np.isfinite(values)]
    whole = bool((values == np.round(values)).all())
    return bool(len(values)) and whole and 0 <= values.min() <= values.max() <= MAX_CODE


def _whole_text(value: float) -> str:
    return str(int(value)) if value == np.round(value) else str(value)


def _codes_known(known: Collection[str]) -> bool:
    """Whether numbers in a field with these known levels are read as themselves: a decade
    field's levels are all multiples of 10 ("<NA>" aside); a field of codes or of text (zip
    "02139" given as the number 2139 at query time) has others."""
    for level in known:
        if level == "<NA>":
            continue
        try:
            if float(level) % 10:
                return True
        except ValueError:
            return True
    return False


MISSING_LEVEL = ""
"""The level of a missing (or infinite) side-info value: no level, so it matches no segment or
one-hot column (a learned "<NA>" segment caught queries that left the field out)."""


def missing_value(value: Any) -> bool:
    """None, pandas' NA or a float NaN (a field given without a value)."""
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _query_number(value: Any, known: Collection[str]) -> float | None:
    """A side-info value of a query read as a number where it is one: a number (a bool is not)
    in a column that other queries' text made text, or the text of a number that is no known
    level itself ("25" from a web form, where ages were learned by decade); else None."""
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.number):
        return float(value)
    if isinstance(value, str) and value not in known:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _known_spelling(text: str, known: Collection[str]) -> str:
    """A query's text level as the model learned it where only case or blanks differ
    ("Engineer " for "engineer": a web form's value was "never seen in training")."""
    if text in known:
        return text
    folded = " ".join(text.split()).casefold()
    same = [level for level in known if " ".join(level.split()).casefold() == folded]
    return same[0] if len(same) == 1 else text


def side_info_levels(series: pd.Series, known: Collection[str] | None = None) -> np.ndarray:
    """Side-info values as category labels: text as it is, numbers by decade ("20"), or each
    whole number as itself ("3") in a field of codes (`is_code_field`); `MISSING_LEVEL` for a
    missing value.

    ``known``: the levels a model learned for this field, given at query time, when one value
    alone cannot tell codes from amounts (occupation 3 is code "3", age 3 is decade "0"). With
    it, a number is read as one wherever it stands (`_query_number`): in a batch whose other
    query's text made the column text, and given as text that is no known level; and text that
    differs from a known level only in case or blanks is that level (`_known_spelling`)."""
    out = np.full(len(series), MISSING_LEVEL, dtype=object)
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        numbers = np.full(len(series), np.nan)
        for i, value in enumerate(series):
            if missing_value(value):
                continue
            number = None if known is None else _query_number(value, known)
            if number is None:
                out[i] = str(value) if known is None else _known_spelling(str(value), known)
            else:
                numbers[i] = number
        given = np.flatnonzero(~np.isnan(numbers))
        if len(given):  # (a batch whose other query gave text read every age as text)
            out[given] = side_info_levels(pd.Series(numbers[given]), known)
        return out
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(numbers)
    codes = is_code_field(series) if known is None else _codes_known(known)
    if codes:
        out[finite] = [_whole_text(v) for v in numbers[finite]]
    else:
        out[finite] = [str(int(v // 10 * 10)) for v in numbers[finite]]
    return out


def field_levels(levels: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Known (field, level) pairs grouped by field, for `side_info_levels`' ``known``."""
    out: dict[str, set[str]] = {}
    for col, level in levels:
        out.setdefault(col, set()).add(level)
    return out


def side_vocab(info: pd.DataFrame, max_levels: int = 30) -> list[tuple[str, str]]:
    """(column, level) pairs of a one-hot encoding of user side info (numbers by decade, or as
    codes: `side_info_levels`)."""
    levels: list[tuple[str, str]] = []
    for col in info.columns:
        values = pd.Series(side_info_levels(info[col]))
        top = values[values != MISSING_LEVEL].value_counts().index[:max_levels]
        levels.extend((col, str(v)) for v in sorted(map(str, top)))
    return levels


def side_onehot(info: pd.DataFrame | None, vocab: list[tuple[str, str]], n: int) -> np.ndarray:
    """One-hot side info per row; unknown columns/levels give zeros."""
    out = np.zeros((n, len(vocab)), dtype=np.float32)
    if info is None or not len(vocab):
        return out
    pos = {key: j for j, key in enumerate(vocab)}
    for col, known in field_levels(vocab).items():
        if col not in info.columns:
            continue
        vals = side_info_levels(info[col], known)
        for row, v in enumerate(vals):
            j = pos.get((col, str(v)))
            if j is not None and row < n:
                out[row, j] = 1.0
    return out


def user_info_rows(user_info: pd.DataFrame, users: np.ndarray) -> pd.DataFrame | None:
    """The side-info rows of ``users`` (renumbered from 0), or None when there is none."""
    if not len(user_info.columns):
        return None
    return user_info.iloc[users].reset_index(drop=True)


def _no_value(value: Any) -> bool:
    """None, pandas' NA, a float NaN or blank text: no genre."""
    return (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and np.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def genre_list(value: Any, sep: str = "|") -> list[str]:
    """A genres cell as a list of names: a list (its missing or blank entries left out: they were
    genres named "None" and "nan"), a list as pandas' ``to_csv`` writes it, or text split on
    ``sep``. A genre named twice is kept once, where it first comes ("country;country" had
    made a reason say "it is country and country too")."""
    if isinstance(value, list | tuple | np.ndarray):
        names = (str(v).strip() for v in value if not _no_value(v))
        return list(dict.fromkeys(n for n in names if n))
    if _no_value(value):
        return []
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):  # a list as pandas' to_csv writes it
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, list):
            return genre_list(parsed)
    return list(dict.fromkeys(g.strip() for g in text.split(sep) if g.strip()))


def item_texts(
    info: pd.DataFrame,
    template: str | None = None,
    ids: Sequence[str] | None = None,
    catalogue: pd.DataFrame | None = None,
) -> list[str]:
    """One text per row of ``info`` (item fields), made by ``template`` (`str.format` over the
    fields) or, without one, by joining the text fields (`text_columns` of the ``catalogue``
    the rows belong to, so that an item's text does not hang on its neighbours in ``info``;
    fields the catalogue lacks, of ``info``); an item with no text field at all gets its id
    (``ids``; default: its row number)."""
    names = [str(i) for i in ids] if ids is not None else [str(i) for i in range(len(info))]
    if template is None:
        cols = text_columns(info)
        if catalogue is not None:  # its fields as it reads them; a field new with these rows as they do
            decided = set(text_columns(catalogue))
            cols = [c for c in info.columns if c in decided or (c in cols and c not in catalogue.columns)]
        if not cols:
            return names
        joined = (_sentences(field_text(row[c]) for c in cols) for row in info.to_dict("records"))
        return [text or name for text, name in zip(joined, names, strict=True)]  # all blank: its id
    rows = [{k: field_text(v) for k, v in r.items()} for r in info.to_dict("records")]
    # a free `text` the template does not name is read after it: "title and text are understood
    # by every model" (an item added with a description had it dropped by MovieLens' template)
    extra = "text" in info.columns and "text" not in _template_fields(template)
    try:  # an item with every field blank (added without info) gets its id, not bare punctuation
        made = [template.format(**r) if any(r.values()) else n for r, n in zip(rows, names, strict=True)]
        if extra:
            made = [f"{m} {r['text']}" if r["text"] else m for m, r in zip(made, rows, strict=True)]
        return made
    except KeyError as exc:
        raise DataError(
            f"item text template {template!r} names field {exc} which items lack",
            fix=f"use fields among {list(info.columns)}",
        ) from None
    except (IndexError, ValueError, AttributeError) as exc:  # "{0}", "{title", "{title.x}"
        raise DataError(
            f"item text template {template!r} cannot be filled in: {exc}",
            fix="name item fields in braces, e.g. '{title}. {genres}' (double a brace to write one)",
        ) from None


def text_columns(info: pd.DataFrame) -> list[str]:
    """The item fields the default item text joins: title, year and the text columns, but not
    those of only yes/no flags or dates, which say nothing without their names. Text columns
    are of object (lists, mixed) or pandas' string dtype, which pandas 3 gives every column of
    text read from a file (a `description` was dropped for it)."""
    text = [c for c in info.columns if info[c].dtype == object or pd.api.types.is_string_dtype(info[c])]
    return [c for c in info.columns if c in ("title", "year") or (c in text and not _flags_or_dates(info[c]))]


#: Text values that say nothing without their field's name: yes/no flags and dates.
_FLAG_WORDS = frozenset({"true", "false", "yes", "no", "y", "n", "t", "f"})
_DATE = r"\d{4}-\d{1,2}-\d{1,2}([ T][\d:.]+(Z|[+-][\d:]+)?)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}"


def _flags_or_dates(column: pd.Series) -> bool:
    """Whether a text column holds only yes/no flags or dates (blanks aside): "Red shoe. true.
    2024-01-05" read like words of the item's description in the default item text. Name them
    in a template to read them ("{title}. In stock: {in_stock}")."""
    values = column.dropna()
    values = values[values.map(lambda v: isinstance(v, str) and bool(v.strip()))].str.strip()
    if values.empty:
        return False
    return bool(values.str.lower().isin(_FLAG_WORDS).all() or values.str.fullmatch(_DATE).all())


def _template_fields(template: str) -> set[str]:
    """The field names a `str.format` template fills in (none where it cannot be parsed)."""
    import string

    try:
        return {f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(template) if f}
    except ValueError:
        return set()


def _sentences(parts: Iterable[str]) -> str:
    """Non-blank fields joined as sentences: ". " between them, or a space after one that ends
    a sentence itself ("quests. Fantasy", not "quests.. Fantasy")."""
    out = ""
    for part in parts:
        if part:
            out += ("" if not out else " " if out.rstrip().endswith((".", "!", "?")) else ". ") + part
    return out


def unix_seconds(times: pd.Series) -> np.ndarray:
    """Datetimes as whole Unix seconds (a zone-aware time from its UTC instant, a naive one read
    as UTC), whatever the unit pandas keeps (ns, us from text in pandas 3, ms or s from Parquet):
    ``astype(int64) // 10**9`` read microsecond dates as 1/1000 of their seconds."""
    utc = times.dt.tz_localize("UTC") if getattr(times.dt, "tz", None) is None else times.dt.tz_convert("UTC")
    if utc.isna().any():
        raise DataError("an interaction's timestamp is missing (NaT)", fix="fill or drop those rows")
    return ((utc - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def field_text(value: Any) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        return ", ".join(str(v) for v in value)
    if value is None or value is pd.NA or (isinstance(value, float | np.floating) and np.isnan(value)):
        return ""
    if isinstance(value, float | np.floating) and float(value).is_integer():  # a year of 2000 in a
        return str(int(value))  # float column (one item had none) read "2000.0" in the item's text
    return str(value)


def item_label(item_info: pd.DataFrame, idx: int, item_id: str) -> str:
    """A short human label of item ``idx``: "title (year)" when it has a title, else its id
    (an item without a title read "nan" in tables and explanations)."""
    title = item_info["title"].iloc[idx] if "title" in item_info.columns else None
    year = item_info["year"].iloc[idx] if "year" in item_info.columns else None
    return label_of(title, year, item_id)


def label_of(title: Any, year: Any, item_id: str) -> str:
    """`item_label` from the field values themselves (for a loop over whole columns)."""
    title = field_text(title).strip()
    if not title:
        return str(item_id)
    year = field_text(year).strip()  # (a numeric column with gaps: 1995.0 reads "1995")
    return f"{title} ({year})" if year else title


def record_codes(item_info: pd.DataFrame) -> np.ndarray:
    """A code per item: two items share one when their whole records are the same apart from
    the id (every field: title, year, genres, description, ...), as a catalogue that lists one
    film twice does; an item without a title has a code of its own. (Items were copies by
    title and year alone: a shop's two "Blue mug"s, a large and a small one, were one.)"""
    n = len(item_info)
    if "title" not in item_info.columns or not n:
        return np.arange(n)

    def key(value: Any) -> str:  # a list's values apart ("a, b" is no two genres)
        if isinstance(value, list | tuple | np.ndarray):
            return "\x1f".join(field_text(v) for v in value)
        return field_text(value)

    # only items whose title another item has can be copies: their whole records are compared,
    # every other item is its own (mapping every field of every item took 4.7 s on 1M items,
    # after each add_items)
    try:
        shared = item_info["title"].duplicated(keep=False).to_numpy()
    except TypeError:  # (a title that is a list: compare every record)
        shared = np.ones(n, dtype=bool)
    codes = np.arange(n)
    if not shared.any():
        return codes
    rows = np.flatnonzero(shared)
    sub = item_info.iloc[rows]
    fields = pd.DataFrame({str(j): sub[c].map(key) for j, c in enumerate(sub.columns)})
    groups = fields.groupby(list(fields.columns), sort=False).ngroup().to_numpy()
    untitled = (fields[str(list(sub.columns).index("title"))].str.strip() == "").to_numpy()
    codes[rows] = np.where(untitled, rows, n + groups)  # (an item without a title: its own)
    return codes
