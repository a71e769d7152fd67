"""Load the user's own data from CSV, Parquet or pandas DataFrames with a declared column mapping.

Every problem with the input is reported once, as a `DataError` naming the file, the row or
column, and the fix; nothing is dropped silently.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fewrec.data.dataset import Dataset, Vocabulary
from fewrec.errors import DataError

log = logging.getLogger(__name__)


class Columns(BaseModel):
    """Which columns of the user's tables hold what.

    ``rating`` and ``timestamp`` are optional: without a rating column every interaction counts
    1.0 (implicit feedback); without a timestamp the row order is the time order.
    ``genres`` names a column of genre lists or of strings split by ``genre_sep``.
    """

    model_config = ConfigDict(extra="forbid")

    user: str = "user_id"
    item: str = "item_id"
    rating: str | None = "rating"
    timestamp: str | None = "timestamp"
    item_id: str | None = None
    user_id: str | None = None
    genres: str | None = "genres"
    genre_sep: str = "|"


Table = pd.DataFrame | str | Path


def read_table(source: Table, *, what: str, encoding: str = "utf-8", sep: str | None = None):
    """Read a CSV/TSV/Parquet file (or pass a DataFrame through), with clear errors.

    Returns the frame and a label for error messages.
    """
    if isinstance(source, pd.DataFrame):
        label = f"<{what} DataFrame>"
        frame = source.copy()
    else:
        path = Path(source)
        label = str(path)
        if not path.exists():
            raise DataError("file not found", source=label, fix="check the path")
        if path.stat().st_size == 0:
            raise DataError("file is empty", source=label, fix=f"give a file with {what} rows")
        suffix = path.suffix.lower()
        try:
            if suffix in (".parquet", ".pq"):
                frame = pd.read_parquet(path)
            else:
                delim = sep or ("\t" if suffix in (".tsv", ".tab") else ",")
                frame = pd.read_csv(path, sep=delim, encoding=encoding)
        except UnicodeDecodeError:
            line, col = _first_undecodable(path, encoding)
            raise DataError(
                f"text is not valid {encoding} at line {line}, byte {col} of that line",
                source=label,
                fix="save the file as UTF-8, or pass encoding='latin-1' (CLI: --encoding)",
            ) from None
        except pd.errors.EmptyDataError:
            raise DataError("file has no rows", source=label, fix=f"give {what} rows") from None
        except pd.errors.ParserError as exc:
            raise DataError(f"cannot parse: {exc}", source=label, fix="check the delimiter") from None
        except (OSError, ValueError) as exc:  # e.g. a corrupt Parquet file
            raise DataError(f"cannot read: {exc}", source=label) from None
    if len(frame) == 0:
        raise DataError("table has no rows", source=label, fix=f"give {what} rows")
    return frame, label


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int]:
    """(line, byte-in-line), both 1-based, of the first bytes that do not decode."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                return number, exc.start + 1
    return 0, 0


def _require(frame: pd.DataFrame, cols: list[str], label: str, role: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing {role} column(s) {missing}; columns present: {list(frame.columns)}",
            source=label,
            fix="rename the columns or declare them, e.g. Columns(user='uid', item='iid') "
            "(CLI: --user-col/--item-col)",
        )


def _no_nulls(frame: pd.DataFrame, col: str, label: str) -> None:
    bad = frame[col].isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {col!r} is empty at row {row + 1} ({int(bad.sum())} empty in all)",
            source=label,
            fix=f"fill or drop rows without {col}",
        )


def _numeric(frame: pd.DataFrame, col: str, label: str) -> np.ndarray:
    values = pd.to_numeric(frame[col], errors="coerce")
    bad = values.isna().to_numpy() & frame[col].notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {col!r} must be numeric; row {row + 1} has {frame[col].iloc[row]!r}",
            source=label,
            fix=f"make every {col} a number",
        )
    _no_nulls(frame.assign(**{col: values}), col, label)
    return values.to_numpy()


def _timestamps(frame: pd.DataFrame, col: str, label: str) -> np.ndarray:
    series = frame[col]
    if pd.api.types.is_numeric_dtype(series):
        return _numeric(frame, col, label).astype(np.int64)
    parsed = pd.to_datetime(series, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {col!r} must be a number or a date; row {row + 1} has {series.iloc[row]!r}",
            source=label,
            fix="use Unix seconds or ISO dates",
        )
    return (parsed.astype("int64") // 10**9).to_numpy()


def _unique_ids(frame: pd.DataFrame, col: str, label: str) -> list[str]:
    _no_nulls(frame, col, label)
    ids = frame[col].astype(str)
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"duplicate id {ids.iloc[row]!r} in column {col!r} at row {row + 1}",
            source=label,
            fix="give each id one row",
        )
    return ids.tolist()


def load_interactions(
    interactions: Table,
    items: Table | None = None,
    users: Table | None = None,
    *,
    columns: Columns | None = None,
    name: str = "custom",
    encoding: str = "utf-8",
    item_template: str | None = None,
) -> Dataset:
    """Build a `Dataset` from the user's tables (CSV, TSV, Parquet paths or DataFrames).

    Args:
        interactions: one row per interaction with user and item ids, optional rating/timestamp.
        items: optional item table (id column ``columns.item_id`` or ``columns.item``) whose
            other columns are item text; when given, every interaction must name a known item.
        users: optional user side info table, keyed like items.
        columns: the column mapping.
        name: a name for reports.
        encoding: text encoding of CSV files.
        item_template: optional `str.format` template over item columns for item text.

    Raises:
        DataError: naming the file, row or column and the fix, for any bad input.
    """
    cols = columns or Columns()
    inter, ilabel = read_table(interactions, what="interaction", encoding=encoding)
    _require(inter, [cols.user, cols.item], ilabel, "id")
    has_rating = cols.rating is not None and cols.rating in inter.columns
    has_time = cols.timestamp is not None and cols.timestamp in inter.columns
    _no_nulls(inter, cols.user, ilabel)
    _no_nulls(inter, cols.item, ilabel)
    ratings = (
        _numeric(inter, cols.rating, ilabel).astype(np.float32)
        if has_rating
        else np.ones(len(inter), np.float32)
    )
    times = _timestamps(inter, cols.timestamp, ilabel) if has_time else np.arange(len(inter))
    user_ext = inter[cols.user].astype(str).to_numpy()
    item_ext = inter[cols.item].astype(str).to_numpy()

    item_info = pd.DataFrame()
    if items is not None:
        itab, tlabel = read_table(items, what="item", encoding=encoding)
        key = cols.item_id or cols.item
        _require(itab, [key], tlabel, "item id")
        item_vocab = Vocabulary(_unique_ids(itab, key, tlabel))
        item_info = itab.drop(columns=[key]).reset_index(drop=True)
        if cols.genres and cols.genres in item_info.columns:
            item_info = item_info.rename(columns={cols.genres: "genres"})
            item_info["genres"] = item_info["genres"].map(lambda g: _genre_list(g, cols.genre_sep))
        unknown = item_vocab.lookup(item_ext) < 0
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"row {row + 1} names item {item_ext[row]!r}, which is not in the item table "
                f"({int(unknown.sum())} such rows)",
                source=ilabel,
                fix="add the items to the item table or drop those interactions",
            )
    else:
        item_vocab = Vocabulary(pd.unique(item_ext))

    user_info = pd.DataFrame()
    if users is not None:
        utab, ulabel = read_table(users, what="user", encoding=encoding)
        key = cols.user_id or cols.user
        _require(utab, [key], ulabel, "user id")
        user_vocab = Vocabulary(_unique_ids(utab, key, ulabel))
        user_info = utab.drop(columns=[key]).reset_index(drop=True)
        unknown = user_vocab.lookup(user_ext) < 0
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"row {row + 1} names user {user_ext[row]!r}, which is not in the user table "
                f"({int(unknown.sum())} such rows)",
                source=ilabel,
                fix="add the users to the user table or drop those interactions",
            )
    else:
        user_vocab = Vocabulary(pd.unique(user_ext))

    frame = pd.DataFrame(
        {
            "user": user_vocab.lookup(user_ext).astype(np.int32),
            "item": item_vocab.lookup(item_ext).astype(np.int32),
            "rating": ratings,
            "timestamp": times.astype(np.int64),
        }
    )
    dup = frame.duplicated(["user", "item"], keep="last")
    if dup.any():
        # Repeated (user, item) events: keep the latest one, and say so (never silently).
        frame = frame.sort_values("timestamp", kind="stable")
        dup = frame.duplicated(["user", "item"], keep="last")
        log.warning("%s: %d repeated (user, item) rows; keeping the latest of each", ilabel, int(dup.sum()))
        frame = frame[~dup.to_numpy()].sort_index()
    return Dataset(
        interactions=frame.reset_index(drop=True),
        users=user_vocab,
        items=item_vocab,
        item_info=item_info,
        user_info=user_info,
        name=name,
        item_template=item_template,
    )


def _genre_list(value: object, sep: str) -> list[str]:
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    return [g.strip() for g in str(value).split(sep) if g.strip()]
