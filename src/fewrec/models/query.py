"""Queries: what a recommender is asked, and the checks of what its methods are given.

A `Query` is what we know of the user we recommend for, in external ids (a known user, history
items and their ratings, free text, side info); a `QueryBatch` is queries in internal form, as
`Recommender.score_batch` reads them. `like_catalogue` puts new or changed items' fields in the
catalogue's types (`Recommender.add_items`, `Recommender.update_items`).
"""

from __future__ import annotations

import dataclasses
import difflib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.data.dataset import field_text, genre_list
from fewrec.data.dataset import missing_value as _missing
from fewrec.errors import (
    ArgumentError,
    ConfigError,
    DataError,
    is_whole_number,
    not_whole,
    split_fix,
    user_stacklevel,
)
from fewrec.text.wishes import has_words

if TYPE_CHECKING:
    from fewrec.models.base import Recommender


@dataclass(kw_only=True)  # (Query("50") was user 50's list, for one who meant item 50)
class Query:
    """What we know about the user we recommend for; any part may be missing. Every part is
    given by name: ``Query(items=["50"])``, ``Query(user="196")``.

    Attributes:
        user: external user id; a user unknown to the model is a new (cold) user.
        items: external ids of items the user interacted with (beyond any training history).
        ratings: one rating per item in `items`; default: "liked" (the highest training rating).
            A rating at or below 40% of the top rating (1-2 of 5 stars; 0 on implicit data) is a
            dislike: never recommended back, and read as such by models that read ratings.
        text: free text the user wrote, e.g. "I love sci-fi films like Interstellar".
        user_info: side info such as {"age": 25, "occupation": "student"}, or a row of the
            users table (a pandas Series, read as its dict; its missing values left out).
    """

    user: str | int | None = None
    items: Sequence[str | int] = ()
    ratings: Sequence[float] | None = None
    text: str | None = None
    user_info: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        """Type checks: a mistyped query is an error that says so, never a silent misreading
        (a string of items would otherwise be read character by character)."""
        if self.user is not None and (
            not isinstance(self.user, str | int | np.integer) or isinstance(self.user, bool | np.bool_)
        ):  # True was the user "True"
            raise ArgumentError(f"Query.user must be a user id (str or int), got {type(self.user).__name__}")
        unordered = isinstance(self.items, set | frozenset)
        self.items = _id_list(self.items, "Query.items", "Query(items=['50', '181'])")
        if self.ratings is not None and unordered:  # (paired by position with an order that varies)
            raise ArgumentError(
                "Query.items is a set, whose order differs from one run to the next, so its ratings "
                "cannot be paired with its items",
                fix="a list in the ratings' order: Query(items=['50', '181'], ratings=[5, 1])",
            )
        if self.ratings is not None:
            if isinstance(self.ratings, pd.Series | pd.Index):  # Query(items=df.item, ratings=df.rating)
                self.ratings = self.ratings.tolist()
            if isinstance(self.ratings, str | bytes) or not isinstance(self.ratings, Sequence | np.ndarray):
                raise ArgumentError(
                    f"Query.ratings must be a list of numbers, one per item, got {self.ratings!r}",
                    fix="Query(items=['50'], ratings=[5])",
                )
            if any(isinstance(r, bool | np.bool_) for r in self.ratings):  # True read as a 1-star rating
                raise ArgumentError(
                    f"Query.ratings must be numbers, not True or False, got {list(self.ratings)!r}",
                    fix="ratings=[5, 3]",
                )
            try:
                self.ratings = [float(r) for r in self.ratings]
            except (TypeError, ValueError):
                raise ArgumentError(
                    f"Query.ratings must be numbers, got {list(self.ratings)!r}", fix="ratings=[5, 3]"
                ) from None
            if not all(np.isfinite(self.ratings)):
                raise ArgumentError(
                    f"Query.ratings must be finite numbers, got {self.ratings!r}",
                    fix="give each item's rating, or leave out items without one",
                )
            if len(self.ratings) != len(self.items):
                raise DataError(
                    f"query has {len(self.items)} items but {len(self.ratings)} ratings",
                    fix="give one rating per item, or none",
                )
            given: dict[str, float] = {}
            for item, rating in zip(self.items, self.ratings, strict=True):
                if given.setdefault(str(item), rating) != rating:  # the last one is read
                    warnings.warn(
                        f"item {item!r} is in the query twice, rated {given[str(item)]:g} and "
                        f"{rating:g}; the last rating is used",
                        UserWarning,
                        stacklevel=user_stacklevel(),
                    )
                    given[str(item)] = rating
        if self.text is not None and not isinstance(self.text, str):
            raise ArgumentError(f"Query.text must be a string, got {type(self.text).__name__}")
        if self.text is not None:  # (in a batch, the error named a position among its parts)
            try:
                self.text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ArgumentError(
                    f"Query.text is not valid Unicode ({self.text!r:.60}): character {exc.start} is a "
                    "lone surrogate, as bytes that are not UTF-8 read with errors='surrogateescape' give",
                    fix="give the text as UTF-8: drop the character, or decode its source with "
                    "errors='replace'",
                ) from None
        if isinstance(self.user_info, pd.Series):  # a row of the users table: users.iloc[0]
            self.user_info = {
                str(k): v
                for k, v in self.user_info.items()
                if not (pd.api.types.is_scalar(v) and pd.isna(v))  # (a blank cell is missing)
            }
        if self.user_info is not None and not isinstance(self.user_info, dict):
            raise ArgumentError(
                f"Query.user_info must be a dict of side-info fields, got {self.user_info!r}",
                fix="user_info={'age': 25, 'occupation': 'student'}",
            )
        object.__setattr__(self, "_checked", True)

    def __setattr__(self, name: str, value: Any) -> None:
        """A part set after the query was made is checked as one given to it (``q.items = "12"``
        was read as the items "1" and "2", and ``q.text = 5`` failed deep inside recommend); a
        part refused leaves the query as it was."""
        if not self.__dict__.get("_checked") or name not in _PARTS:
            object.__setattr__(self, name, value)
            return
        before = dict(self.__dict__)
        object.__setattr__(self, "_checked", False)
        object.__setattr__(self, name, value)
        try:
            self.__post_init__()
        except Exception as exc:
            self.__dict__.clear()
            self.__dict__.update(before)
            if name in ("items", "ratings") and isinstance(exc, DataError) and " ratings" in str(exc):
                # (one part at a time cannot change how many there are)
                raise DataError(
                    split_fix(str(exc))[0],
                    fix="set both at once: query = dataclasses.replace(query, items=[...], ratings=[...])",
                ) from None
            raise


_PARTS = frozenset({"user", "items", "ratings", "text", "user_info"})


def _binned(value: Any, level: str) -> bool:
    """Whether a side-info number was read as another level (its decade: 99 as "90")."""
    try:
        return float(level) != float(value)
    except (TypeError, ValueError):
        return False


def _blank_like(column: pd.Series, n: int) -> pd.Series:
    """``n`` missing values of ``column``'s kind, so that appending them keeps its type (whole
    numbers stay whole, dates stay dates): a year of 1995 read "1995.0" beside a float NaN."""
    if pd.api.types.is_bool_dtype(column):
        return pd.Series([pd.NA] * n, dtype="boolean")
    if pd.api.types.is_integer_dtype(column):
        return pd.Series([pd.NA] * n, dtype="Int64")
    try:
        return pd.Series([None] * n, dtype=column.dtype)
    except (TypeError, ValueError):
        return pd.Series([None] * n, dtype=object)


def like_catalogue(info: pd.DataFrame, catalogue: pd.DataFrame, genre_sep: str = "|") -> pd.DataFrame:
    """New items' fields in the catalogue's types, so that the two still save as one table:
    genres as lists (a string is split on ``genre_sep``, the data's `Dataset.genre_sep`: it was
    split on "|" whatever the data's), other text fields as text (a year of 2021 as "2021"
    where years are text)."""
    info = info.copy()
    for col in catalogue.columns:
        known = catalogue[col].dropna().head(100)  # a sample: this runs on every add
        listy = known.map(lambda v: isinstance(v, list | tuple | np.ndarray)).any()
        if col not in info.columns:  # a field the new items lack is blank (their text too)
            if listy or col == "genres":  # an empty list, not NaN: a list column saves as lists
                info[col] = [[] for _ in range(len(info))]
            else:
                info[col] = _blank_like(catalogue[col], len(info))
            continue
        if listy or col == "genres":
            info[col] = info[col].map(lambda v: genre_list(v, genre_sep))
            continue
        dates = pd.api.types.is_datetime64_any_dtype(catalogue[col])
        if not pd.api.types.is_numeric_dtype(catalogue[col]) and not dates:
            info[col] = info[col].map(lambda v: None if _missing(v) else str(v)).astype(object)
            continue
        # a blank field of a number, date or yes/no column is a missing one (the service fills a
        # field a new item lacks with "")
        given = info[col].map(lambda v: None if isinstance(v, str) and not v.strip() else v)
        if dates:  # as text, the table could not save
            info[col] = _like_dates(given, catalogue[col], col)
        elif pd.api.types.is_bool_dtype(catalogue[col]):  # ("True" was no number)
            info[col] = _like_flags(given, col)
        else:
            numbers = pd.to_numeric(given, errors="coerce")
            bad = numbers.isna() & given.notna()
            if bad.any():
                raise DataError(
                    f"field {col!r} of the new items must be a number, got {info[col][bad].iloc[0]!r}",
                    fix=f"give {col} as a number, or leave it empty",
                )
            whole = numbers.dropna()
            if pd.api.types.is_integer_dtype(catalogue[col]):  # whole numbers stay whole: "1995"
                # (a year of 2003.5 made the column floats; an update of it failed at the cast)
                odd = (whole != np.round(whole)) | (whole.abs() >= 2**63)
                if odd.any():
                    raise DataError(
                        f"field {col!r} of the new items must be a whole number, got {whole[odd].iloc[0]!r}",
                        fix=f"give {col} as a whole number, or leave it empty",
                    )
                numbers = numbers.astype("Int64")
            info[col] = numbers
    return info


FLAG_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
"""Yes/no values as text (the service sends a JSON true as "True")."""


def _like_flags(values: pd.Series, col: str) -> pd.Series:
    """New items' values of a yes/no field as pandas' nullable booleans (NA where missing)."""

    def flag(v: Any) -> Any:
        if _missing(v):
            return pd.NA
        if isinstance(v, bool | np.bool_) or (is_whole_number(v) and v in (0, 1)):
            return bool(v)
        word = FLAG_WORDS.get(str(v).strip().lower())
        if word is None:
            raise DataError(
                f"field {col!r} of the new items must be yes or no, got {v!r}",
                fix=f"give {col} as true or false, or leave it empty",
            )
        return word

    return pd.Series([flag(v) for v in values], index=values.index, dtype="boolean")


def _like_dates(values: pd.Series, catalogue: pd.Series, col: str) -> pd.Series:
    """New items' values of a date field as the catalogue's dates (its time zone, if any)."""
    tz = getattr(catalogue.dt, "tz", None)
    try:
        dates = pd.to_datetime(values, errors="coerce", utc=tz is not None, format="mixed")
    except (TypeError, ValueError):  # a mix of zone-aware and naive times
        dates = pd.Series(pd.NaT, index=values.index)
    bad = dates.isna() & values.map(lambda v: not _missing(v))
    if bad.any():
        raise DataError(
            f"field {col!r} of the new items must be a date, got {values[bad].iloc[0]!r}",
            fix=f"give {col} as a date such as '2021-10-22', or leave it empty",
        )
    if tz is not None:
        return dates.dt.tz_convert(tz)
    if getattr(dates.dt, "tz", None) is not None:  # a zone given to a column without (a 500)
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates.astype(catalogue.dtype)


def _warn_stray_fields(info: pd.DataFrame, catalogue: pd.DataFrame, what: str) -> None:
    """Warn about fields the catalogue does not have: a misspelt one would leave the item
    without its title or text (title and text themselves are understood by every model)."""
    known = [str(c) for c in catalogue.columns]
    stray = [str(c) for c in info.columns if str(c) not in known and c not in ("title", "text")]
    if known and stray:
        close = {c: difflib.get_close_matches(c, known, n=1) for c in stray}
        if "genres" in known and "genres" not in info.columns:  # (trained with --genres-col tags)
            genres = catalogue["genres"]
            close = {c: m or ["genres"] * _reads_as_genres(info[c], genres) for c, m in close.items()}
        if "title" in known and "title" not in info.columns:  # (trained with --title-col name: the
            # new items' 'name' went without a hint, and without a title)
            texts = [c for c, m in close.items() if not m and _reads_as_text(info[c])]
            close.update({c: ["title"] for c in texts[:1]})
        hints = [f"{c!r} (did you mean {m[0]!r}?)" if m else repr(c) for c, m in close.items()]
        warnings.warn(
            f"{what} fields {', '.join(hints)} are not among the catalogue's {known}: they are kept, "
            "and read only by models that read every text field",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _reads_as_text(column: pd.Series) -> bool:
    """Whether a field holds words (not numbers, dates or lists), as a title does."""
    values = [v for v in column if not _missing(v)]
    words = bool(values) and all(isinstance(v, str) for v in values)  # (a year "1995" is text too)
    return words and bool(pd.to_numeric(pd.Series(values), errors="coerce").isna().any())


def _reads_as_genres(column: pd.Series, genres: pd.Series) -> bool:
    """Whether a field holds the catalogue's genres under the name the user's own data gave
    them (the catalogue calls its genre column "genres", whatever its source called it)."""
    known = {g.casefold() for v in genres for g in genre_list(v)}
    return any(g.casefold() in known for v in column for g in genre_list(v))


def _all_blank(row: pd.Series) -> bool:
    """Whether every field of an item's row is missing, empty or whitespace."""
    return all(not field_text(v).strip() for v in row.to_numpy())


def _id_list(ids: Any, what: str, example: str) -> list[str | int]:
    """``ids`` as a list of ids; a lone string or number is an error (it is not a list)."""
    if isinstance(ids, str | bytes | int | float | np.number) or not isinstance(
        ids, Sequence | np.ndarray | pd.Index | pd.Series | set | frozenset
    ):
        raise ArgumentError(f"{what} must be a list of ids, got {ids!r}", fix=example)
    out = list(ids)
    bad = [i for i in out if not isinstance(i, str | int | np.integer)]
    if bad:
        raise ArgumentError(f"{what} must hold ids (str or int), got {bad[0]!r}", fix=example)
    return out


def _check_k(k: Any) -> int:
    if not is_whole_number(k):
        raise ArgumentError(not_whole("k", k), fix="k=10")
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    return int(k)


def _check_queries(queries: Any) -> list[Query]:
    if isinstance(queries, Query):
        raise ArgumentError(
            "recommend_many/score_many take a list of queries", fix="[Query(...)] or recommend(query)"
        )
    if isinstance(queries, pd.Series | np.ndarray) and queries.ndim == 1:  # df.apply(make_query, axis=1)
        queries = queries.tolist()
    if isinstance(queries, str | bytes | dict) or not isinstance(queries, Sequence):
        raise ArgumentError(f"expected a list of Query objects, got {type(queries).__name__}")
    for q in queries:
        if not isinstance(q, Query):
            raise ArgumentError(
                f"expected a Query, got {type(q).__name__} {q!r}",
                fix="Query(user='196') or Query(items=['50', '181'], text='...')",
            )
    return list(queries)


@dataclass
class QueryBatch:
    """Queries in internal form: what `score_batch` consumes.

    Attributes:
        users: internal user index per query, or -1 for users the model did not train on.
        history: (n x n_items) CSR of ratings of the items each query reveals (training history
            of known users included).
        texts: optional free text per query.
        user_info: optional side info per query (one row per query).
        disliked: optional (n x n_items) 0/1 CSR of the query's own items rated as dislikes
            (at or below `FitState.dislike_at`); they are in ``history`` with their ratings, and
            `for_model` takes them out for a model that does not read ratings.
        sizes: optional history size per query by which models with a part per history size
            (the ensemble's weights and re-rankers, kshot-ridge, dlae) choose it, in place of
            the items the query reveals (`history_sizes`): an explanation's leave-one-out rows
            keep the full query's, so that what an item adds is not the switch to another part.
        liked_sizes: with ``sizes``, the size per query once its dislikes are out, for a model
            that reads only likes (`likes_only`); without it, ``sizes`` less the dislikes the
            row holds (a leave-one-out row that left a dislike out would count one too many).
    """

    users: np.ndarray
    history: sp.csr_matrix
    texts: list[str | None] | None = None
    user_info: pd.DataFrame | None = None
    disliked: sp.csr_matrix | None = None
    sizes: np.ndarray | None = None
    liked_sizes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.users)

    def history_sizes(self) -> np.ndarray:
        """The history size each query's per-size parts are chosen by: ``sizes`` where given,
        else the number of items it reveals."""
        return np.diff(self.history.indptr) if self.sizes is None else np.asarray(self.sizes)

    @classmethod
    def of_new_users(
        cls,
        history: sp.csr_matrix,
        dislike_at: float,
        user_info: pd.DataFrame | None = None,
        texts: list[str | None] | None = None,
    ) -> QueryBatch:
        """Queries of new users revealing ``history``, read as `Recommender.batch_from_queries`
        reads a query's ratings: items rated at or below ``dislike_at`` are its dislikes."""
        history = sp.csr_matrix(history)
        return cls(
            np.full(history.shape[0], -1, dtype=np.int64),
            history,
            texts,
            user_info,
            dislike_mask(history, dislike_at),
        )

    def implicit_history(self) -> sp.csr_matrix:
        """The history with every rating replaced by 1 (what interaction-only models read)."""
        h = self.history.copy()
        h.data[:] = 1.0
        return h

    def without_text(self) -> np.ndarray:
        """Queries without free text (none, or no word in it: blank, symbols, emoji)."""
        if self.texts is None:
            return np.ones(len(self), dtype=bool)
        return np.array([not has_words(t) for t in self.texts], dtype=bool)

    def rows(self, start: int, stop: int) -> QueryBatch:
        """The queries ``start..stop-1`` as a batch of their own."""
        return self.take(np.arange(start, min(stop, len(self))))

    def take(self, rows: np.ndarray) -> QueryBatch:
        """The queries ``rows`` as a batch of their own (``disliked`` None where they have no
        dislike, as `dislike_mask` gives it)."""
        low = None if self.disliked is None else self.disliked[rows]

        def part(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.asarray(a)[rows]

        return QueryBatch(
            np.asarray(self.users)[rows],
            self.history[rows],
            None if self.texts is None else [self.texts[r] for r in rows],
            None if self.user_info is None else self.user_info.iloc[rows].reset_index(drop=True),
            low if low is not None and low.nnz else None,
            part(self.sizes),
            part(self.liked_sizes),
        )

    def for_model(self, model: Recommender) -> QueryBatch:
        """The batch as ``model`` reads it: a model that does not read ratings would take a
        disliked item for a like, so its history leaves them out (they stay seen: `recommend`
        excludes the full history). The training history of a known user is kept whole."""
        return self if model.reads_ratings else self.likes_only()

    def likes_only(self) -> QueryBatch:
        """The batch without the query's disliked items in its history."""
        if self.disliked is None:  # (rows of a batch whose dislikes are in other rows: likes' sizes)
            return (
                self
                if self.liked_sizes is None
                else dataclasses.replace(self, sizes=self.liked_sizes, liked_sizes=None)
            )
        history = self.history - self.history.multiply(self.disliked)
        history.eliminate_zeros()
        history = history.tocsr()
        sizes = self.liked_sizes
        if self.sizes is not None and sizes is None:  # less the dislikes taken out of each row
            sizes = np.asarray(self.sizes) - (np.diff(self.history.indptr) - np.diff(history.indptr))
        return dataclasses.replace(self, history=history, disliked=None, sizes=sizes, liked_sizes=None)


def dislike_mask(
    history: sp.csr_matrix, dislike_at: float, rows: np.ndarray | None = None
) -> sp.csr_matrix | None:
    """0/1 CSR of the entries of ``history`` rated at or below ``dislike_at`` (only in the
    ``rows`` given, when given: a known user's training history is no query's dislike); None
    when there are none."""
    low = sp.csr_matrix(history, copy=True)
    low.data = (low.data <= dislike_at).astype(np.float32)
    if rows is not None:
        keep = np.zeros(low.shape[0], dtype=np.float32)
        keep[rows] = 1.0
        low = sp.diags(keep) @ low
    low.eliminate_zeros()
    return low.tocsr() if low.nnz else None
