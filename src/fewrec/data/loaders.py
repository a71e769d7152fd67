"""Load the user's own data from CSV, Parquet or pandas DataFrames with a declared column mapping.

Every problem with the input is reported once, as a `DataError` naming the file, the row or
column, and the fix; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import html
import itertools
import logging
import os
import re
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd
from pydantic import ConfigDict

from fewrec.data.dataset import (
    MISSING_LEVEL,
    Dataset,
    Vocabulary,
    combine_repeats,
    genre_list,
    is_code_field,
    item_texts,
    keep_latest,
    missing_value,
    side_info_levels,
    unix_seconds,
)
from fewrec.errors import ArgumentError, DataError, Settings, user_stacklevel

log = logging.getLogger(__name__)


class Columns(Settings):
    """Which columns of the user's tables hold what.

    ``rating`` and ``timestamp`` are optional: without a rating column every interaction counts
    1.0 (implicit feedback); without a timestamp the row order is the time order. Set them to
    ``None`` (or ``""``) to say so. Only the default names (``"rating"``, ``"timestamp"``,
    ``"genres"``, ``"title"``) may be absent from a table silently; a name you chose that is
    missing is an error.
    ``genres`` names a column of genre lists or of strings split by ``genre_sep``; ``title``
    the column of item titles (``"name"``, say), which is then read as ``title``.

    Ids are text. From CSV/TSV the id columns are read verbatim (``007`` stays ``"007"``, and
    ``NA``/``null`` are ids, not missing values); from DataFrames/Parquet a whole-number float id
    is written without the fraction (``1.0`` -> ``"1"``) so it matches the same id read from text.
    """

    model_config = ConfigDict(extra="forbid")
    settings_name = "column names"

    user: str = "user_id"
    """The interaction table's column of user ids."""
    item: str = "item_id"
    """The interaction table's column of item ids."""
    rating: str | None = "rating"
    timestamp: str | None = "timestamp"
    item_id: str | None = None
    """The item table's column of item ids; None: the one named by ``item``."""
    user_id: str | None = None
    """The user table's column of user ids; None: the one named by ``user``."""
    genres: str | None = "genres"
    genre_sep: str = "|"
    """What separates the genres of a ``genres`` cell given as one string."""
    title: str | None = "title"
    """The item table's column of titles (read as ``title``: how lists and reasons name an item,
    and what ``--title`` matches), e.g. ``"name"``."""
    codes: tuple[str, ...] = ()
    """User side-info columns of numbers that are codes (zip codes, group numbers): each value
    is a level of its own. Other numbers from 0 to 30 are codes and larger ones go by decade
    (age 27 is "20", and zip codes 10001 and 10003 one level, "10000")."""


class ToPandas(Protocol):
    """A table of another library that converts itself (a polars DataFrame, a pyarrow Table)."""

    def to_pandas(self) -> pd.DataFrame: ...


Table: TypeAlias = pd.DataFrame | ToPandas | str | Path


PARQUET_SUFFIXES = (".parquet", ".pq")
TEXT_SUFFIXES = {".csv": ",", ".txt": ",", ".tsv": "\t", ".tab": "\t"}
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zip", ".xz", ".zst")
SEPARATORS = (",", ";", "\t", "|")
# pandas' default missing-value markers, applied to every column except the id columns.
NA_MARKERS = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
]  # fmt: skip


def read_table(
    source: Table,
    *,
    what: str,
    encoding: str = "utf-8",
    sep: str | None = None,
    ids: tuple[str, ...] | list[str] = (),
):
    """Read a CSV/TSV/Parquet file (or pass a DataFrame through: pandas, or any with a
    ``to_pandas()``, such as polars' and pyarrow's Table), with clear errors.

    Supported files: ``.csv``/``.txt`` (comma), ``.tsv``/``.tab`` (tab), each optionally
    compressed (``.gz``, ``.bz2``, ``.zip``, ``.xz``, ``.zst``), and ``.parquet``/``.pq``; a name
    without a suffix is read as CSV. When ``sep`` is None and the header line of a text file
    lacks the suffix's separator but has ``,``, ``;``, tab or ``|``, the most frequent of those is
    used (and logged). The columns named
    in ``ids`` are read from text files as strings, verbatim, with only empty cells missing.

    Returns the frame and a label for error messages.
    """
    if isinstance(source, pd.DataFrame):
        label = f"<{what} DataFrame>"
        frame = source.copy()
        _FRAME_INDEX[label] = source.index
    elif callable(convert := getattr(source, "to_pandas", None)):  # a polars DataFrame, a pyarrow Table
        label = f"<{what} {type(source).__name__}>"
        _FRAME_INDEX.pop(label, None)  # (a polars DataFrame has no index: another frame's was named)
        try:
            frame = convert()
        except Exception as exc:  # noqa: BLE001 (the library's own error, whichever it is)
            raise DataError(
                f"cannot convert it to pandas ({type(exc).__name__}: {exc})", source=label
            ) from None
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"its to_pandas() gave a {type(frame).__name__}, not a DataFrame", source=label)
    elif not isinstance(source, str | os.PathLike):  # a list of rows gave a TypeError of pathlib
        raise DataError(
            f"the {what} table must be a DataFrame (pandas, or one with to_pandas(): polars, a "
            f"pyarrow Table) or the path of a CSV, TSV or Parquet file, not a {type(source).__name__}",
            fix="pd.DataFrame(rows) makes a DataFrame of a list of dicts",
        )
    else:
        path = Path(source).expanduser()  # (pandas writes "~/x.csv" to the home folder)
        label = str(path)
        if not path.exists():
            raise DataError("file not found", source=label, fix="check the path")
        if path.is_dir():  # (a raw IsADirectoryError)
            raise DataError(
                "this is a folder", source=label, fix=f"give the CSV, TSV or Parquet file of {what} rows"
            )
        if path.stat().st_size == 0:
            raise DataError("file is empty", source=label, fix=f"give a file with {what} rows")
        suffixes = [x.lower() for x in path.suffixes]
        compressed = bool(suffixes) and suffixes[-1] in COMPRESSION_SUFFIXES
        suffix = (suffixes[-2] if len(suffixes) > 1 else "") if compressed else path.suffix.lower()
        if suffix not in PARQUET_SUFFIXES and suffix not in TEXT_SUFFIXES and suffix != "":
            supported = ", ".join([*TEXT_SUFFIXES, *PARQUET_SUFFIXES])
            raise DataError(
                f"unsupported format {''.join(path.suffixes)!r}; supported suffixes: {supported} "
                f"(text files may end in {', '.join(COMPRESSION_SUFFIXES)})",
                source=label,
                fix="convert the table to CSV or Parquet (a delimited text file can be renamed "
                "to .csv, with sep=... / CLI --sep for its separator)",
            )
        delim = ","
        if not compressed and suffix not in PARQUET_SUFFIXES:
            _refuse_binary(path, label)
        if not compressed and suffix not in PARQUET_SUFFIXES and (bom := _bom_encoding(path)):
            # a byte-order mark says the encoding: under latin-1 Excel's "CSV UTF-8" header read
            # 'ï»¿user_id', and one encoding given for a cp1252 table beside it read neither
            if bom.removesuffix("-sig") != encoding.lower().replace("_", "-").replace("utf8", "utf-8"):
                log.info("%s: it starts with a %s byte-order mark; reading it as %s", label, bom, bom)
            encoding = bom
        try:
            if suffix in PARQUET_SUFFIXES:
                frame = pd.read_parquet(path)
            else:
                default = TEXT_SUFFIXES.get(suffix, ",")
                found = sep or (None if compressed else _sniff_sep(path, encoding, default))
                if found is None:
                    delim = default
                else:
                    delim = found
                    if not sep:
                        log.info("%s: reading with separator %r, which splits its lines alike", label, delim)
                frame = _read_text(path, delim, encoding, ids, codes=what != "interaction")
                if any("\x00" in str(c) for c in frame.columns):  # (valid UTF-8, a 0 between letters)
                    utf16 = _likely_encoding(path)
                    raise DataError(
                        "its header has a 0 byte between letters: it seems to be UTF-16 text",
                        source=label,
                        fix=f"pass encoding={utf16!r} (CLI: --encoding {utf16}), or save it as UTF-8",
                    )
                if not compressed and len(delim) == 1:  # what the csv module can re-read
                    _TEXT_READ[label] = (delim, encoding)
        except UnicodeDecodeError:
            line, col = _first_undecodable(path, encoding)
            guess = _likely_encoding(path)
            raise DataError(
                f"text is not valid {encoding} at line {line}, byte {col} of that line",
                source=label,
                fix=f"save the file as UTF-8, or pass encoding={guess!r} (CLI: --encoding {guess})",
            ) from None
        except LookupError:
            raise DataError(
                f"unknown text encoding {encoding!r}",
                source=label,
                fix="give a Python codec name such as 'utf-8' or 'latin-1' (CLI: --encoding)",
            ) from None
        except pd.errors.EmptyDataError:
            raise DataError("file has no rows", source=label, fix=f"give {what} rows") from None
        except DataError:
            raise
        except (pd.errors.ParserError, AssertionError) as exc:  # AssertionError: pandas' python engine
            why = " ".join(str(exc).split()) or "its rows do not all have as many fields as the header"
            ragged = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", why)
            if ragged:  # the separator is right; one line has a field too many
                want, where, saw = ragged.groups()
                raise DataError(
                    f"line {where} has {saw} fields, the lines before it {want} (separator {delim!r})",
                    source=label,
                    fix="quote cells that hold the separator, or fix that line (if the file has another "
                    "separator: sep=..., CLI: --sep)",
                ) from None
            raise DataError(
                f"cannot parse with separator {delim!r}: {why}",
                source=label,
                fix="check the separator; pass sep=... (CLI: --sep)",
            ) from None
        except UnicodeError as exc:  # a codec's own check: "UTF-16 stream does not start with BOM"
            guess = "utf-8" if _first_undecodable(path, "utf-8") == (0, 0) else _likely_encoding(path)
            raise DataError(
                f"cannot read it as {encoding}: {exc}",
                source=label,
                fix=f"pass encoding={guess!r} (CLI: --encoding {guess}), or leave the encoding out",
            ) from None
        except (OSError, ValueError) as exc:  # e.g. a corrupt Parquet file
            raise DataError(f"cannot read: {exc}", source=label) from None
        if suffix not in PARQUET_SUFFIXES:
            _check_one_column(frame, delim, label)
    if len(frame) == 0:
        raise DataError("table has no rows", source=label, fix=f"give {what} rows")
    _no_repeated_columns(list(frame.columns), label)
    _decode_bytes(frame, label, encoding)
    return frame, label


def _decode_bytes(frame: pd.DataFrame, label: str, encoding: str) -> None:
    """Text held as bytes decoded, in place: Parquet's BINARY columns without a UTF-8 mark (as
    Hive, Impala and older Spark write them) read as bytes, and ids and titles had become
    "b'sku-1'", so no known user or item could be looked up."""
    for col in frame.columns:
        series = frame[col]
        if series.dtype != object or not any(isinstance(v, bytes | bytearray) for v in series.head(1000)):
            continue
        values = series.to_numpy(dtype=object, copy=True)
        for row in np.flatnonzero([isinstance(v, bytes | bytearray) for v in values]):
            try:
                values[row] = bytes(values[row]).decode(encoding)
            except UnicodeDecodeError:
                raise DataError(
                    f"column {col!r} holds bytes that are not {encoding} text at {_row(label, int(row))}",
                    source=label,
                    fix="write the column as text (a Parquet string column), or pass encoding=... "
                    "(CLI: --encoding) for the bytes' own",
                ) from None
        frame[col] = values


def _no_repeated_columns(names: list, label: str, where: str = "") -> None:
    """A column named twice is an error (in a header pandas renamed the second "rating.1", which
    then went unread; in a DataFrame it failed inside pandas)."""
    twice = sorted({str(c) for c in names if names.count(c) > 1})
    if twice:
        raise DataError(
            f"column(s) {twice} appear more than once{where}", source=label, fix="give each column one name"
        )


#: How each plain text file read was read (its label -> separator, encoding), so that an error
#: can name the file line of a row (`_row`)
_TEXT_READ: dict[str, tuple[str, str]] = {}
_FRAME_INDEX: weakref.WeakValueDictionary[str, pd.Index] = weakref.WeakValueDictionary()
"""The index of the DataFrame last read under each label, while the caller holds it: a row is
named by it (by "row 3", the third, a user read df.loc[3] or df.iloc[3], neither the row)."""


def _row(label: str, row: int) -> str:
    """ "row N" of a table (1-based, the header not counted), with its line in the file when that
    is not line N + 1: pandas skips blank lines, and a quoted cell may hold line breaks."""
    name = f"row {row + 1}"
    index = _FRAME_INDEX.get(label)
    if index is not None and row < len(index):  # a DataFrame's row: its position and index label
        plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        at = index[row].item() if isinstance(index[row], np.generic) else index[row]
        return f"position {row} (df.iloc[{row}])" if plain else f"index {at!r} (position {row})"
    how = _TEXT_READ.get(label)
    if how is None:
        return name
    line = _line_of_row(Path(label), row, *how)
    return name if line in (None, row + 2) else f"{name} (line {line} of the file)"


def _line_of_row(path: Path, row: int, delim: str, encoding: str) -> int | None:
    """The file line on which data row ``row`` (0-based) starts, as pandas reads the file (blank
    and whitespace-only lines are no rows); None if the file cannot be read so."""
    try:
        with open(path, encoding=encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=delim)
            n, header, before = 0, False, 0
            for record in reader:
                start, before = before + 1, reader.line_num
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue
                if not header:
                    header = True
                elif n == row:
                    return start
                else:
                    n += 1
    except (OSError, UnicodeDecodeError, csv.Error, TypeError):
        return None
    return None


def _read_text(path: Path, delim: str, encoding: str, ids, codes: bool = False) -> pd.DataFrame:
    """read_csv with the id columns as verbatim strings (only an empty cell is missing). With
    ``codes`` (item and user tables), a column of text keeps "NA", "None" or "null" as text
    (titles showed their item's id), and a column of numbers written with a leading zero (zip
    "02139", code "007") stays text: read as a number it lost its zeros and, as side info, fell
    into a decade ("2130")."""
    engine = "python" if len(delim) > 1 else "c"  # pandas warns as it falls back to python itself
    # the header's names as written, less spaces around them ("user_id, item_id")
    first = pd.read_csv(
        path,
        sep=delim,
        encoding=encoding,
        nrows=1,
        header=None,
        engine=engine,
        dtype=str,
        keep_default_na=False,
    )
    header = [str(c).strip() for c in first.iloc[0]] if len(first) else []
    _no_repeated_columns(header, str(path), " in the header")
    folded = {str(i).casefold() for i in ids}  # ("User_ID" for user_id is read as one, verbatim)
    ids = [c for c in header if c in ids or c.casefold() in folded]
    na = {c: ([""] if c in ids or codes else NA_MARKERS) for c in header}
    dtype = {c: str for c in (header if codes else ids) if c in header}
    frame = pd.read_csv(
        path,
        sep=delim,
        encoding=encoding,
        dtype=dtype,
        keep_default_na=False,
        na_values=na,
        engine=engine,
        names=header,
        header=0,
    )
    if not isinstance(frame.index, pd.RangeIndex):
        _extra_field(frame, str(path), delim)
    if codes:  # text stays text ("NA", "None" and "null" are titles too); numbers become numbers
        for c in frame.columns:
            if c in ids or not frame[c].notna().any():
                continue
            values = frame[c].where(~frame[c].isin(NA_MARKERS))  # a missing number: "NA", "nan"...
            number = pd.to_numeric(values, errors="coerce")
            text = values.dropna().astype(str).str.strip()
            if number.notna().sum() == values.notna().sum() > 0 and not text.str.match(r"[+-]?0\d").any():
                whole = number.dropna().map(float).map(float.is_integer).all()
                # whole numbers with a gap stay whole (a year 1999, not 1999.0, in item text)
                frame[c] = number.astype("Int64") if whole and number.isna().any() else number
    return frame


def _extra_field(frame: pd.DataFrame, label: str, delim: str) -> None:
    """Rows with one field more than the header: pandas reads the first field of each as a row
    label and shifts every column by one (user ids lost, items read from the timestamps)."""
    names = list(frame.columns)
    trailing = frame[names[-1]].isna().all() if names else False
    if names and str(names[0]).lstrip().startswith(("#", "//")):  # ("# exported 2024" above the header)
        what = f"its first line, {str(names[0])!r}, is a comment, read as the header"
        fix = "remove the lines above the header"
    elif trailing:  # "a,x,5," under "user_id,item_id,rating"
        what = f"its rows end in a separator {delim!r} (an empty last field)"
        fix = "remove the separator at the end of each row"
    else:
        what = f"its rows have {len(names) + 1} fields, one more than the header names ({names})"
        fix = "name every column in the header line"
    raise DataError(what, source=label, fix=fix)


def _sniff_sep(path: Path, encoding: str, default: str) -> str | None:
    """The separator of a text file when it is not ``default``, or None: of the separators
    that split the header and the next lines into one same number of fields (2 or more, quotes
    read as the csv module reads them), the default if it is one, else the one of the most
    fields; when none is consistent, the one splitting the header into the most. (A header cell
    "price, EUR" of a ';' file had made ',' the separator, and a ',' header whose last name
    held '|'s must keep ','.)"""
    with open(path, encoding=encoding, errors="replace", newline="") as fh:
        lines = [line.lstrip("\ufeff").rstrip("\r\n") for line in itertools.islice(fh, 6)]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return None

    def widths(sep: str) -> list[int]:
        try:
            return [len(row) for row in csv.reader(lines, delimiter=sep)]
        except csv.Error:
            return [line.count(sep) + 1 for line in lines]

    seps = list(dict.fromkeys([default, *SEPARATORS]))
    counts = {s: widths(s) for s in seps}
    consistent = [s for s in seps if counts[s][0] > 1 and len(set(counts[s])) == 1]
    if consistent:
        best = default if default in consistent else max(consistent, key=lambda s: counts[s][0])
    else:
        best = max(seps, key=lambda s: counts[s][0])
        if counts[best][0] <= max(counts[default][0], 1):
            best = default
    return None if best == default else best


def _check_one_column(frame: pd.DataFrame, delim: str, label: str) -> None:
    """A single column whose name holds another separator: the file uses that separator."""
    if len(frame.columns) != 1:
        return
    name = str(frame.columns[0])
    found = [s for s in SEPARATORS if s != delim and s in name]
    if found:
        other = max(found, key=name.count)
        cli = "$'\\t'" if other == "\t" else repr(other)
        raise DataError(
            f"read with separator {delim!r} the file has one column {name!r}; it seems to use "
            f"{other!r} as separator",
            source=label,
            fix=f"pass sep={other!r} (CLI: --sep {cli})",
        )


#: The first bytes of files that are no text table, what each is, and how to give it.
BINARY_SIGNATURES = (
    (b"PAR1", "a Parquet file", "rename it to {stem}.parquet"),
    (
        b"PK\x03\x04",
        "a zip archive (an Excel .xlsx workbook is one)",
        "export the sheet as CSV (Excel: Save As, CSV UTF-8), or name a zipped CSV {stem}.csv.zip",
    ),
    (b"\x1f\x8b", "gzip-compressed", "name it {stem}.csv.gz, which is read as it is"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls workbook", "export the sheet as CSV (Excel: Save As, CSV UTF-8)"),
)


def _refuse_binary(path: Path, label: str) -> None:
    """A `DataError` for a file under a text suffix that is no text (a workbook or an archive
    renamed .csv was read as text: "not valid utf-8 ... pass encoding='utf-16-be'", then, with
    that, the same advice again; a Parquet file only once that failed)."""
    with path.open("rb") as fh:
        head = fh.read(8)
        if head.startswith(b"PAR1"):  # (and ends so: a text header may start "PAR1,item_id")
            fh.seek(max(path.stat().st_size - 4, 0))
            if fh.read(4) != b"PAR1":
                return
    for magic, what, fix in BINARY_SIGNATURES:
        if head.startswith(magic):
            stem = path.name.split(".")[0] or path.name
            raise DataError(f"this is {what}, not a text table", source=label, fix=fix.format(stem=stem))


def _bom_encoding(path: Path) -> str | None:
    """The encoding a file's byte-order mark names (UTF-8 or UTF-16), or None."""
    with open(path, "rb") as fh:
        head = fh.read(3)
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return None


def _likely_encoding(path: Path, limit: int = 1 << 26) -> str:
    """The encoding to suggest for a file that is not UTF-8: Windows' cp1252 when it reads the
    file (curly quotes, dashes and the euro sign are bytes 0x80-0x9F there, control characters
    in latin-1, so latin-1 would read them silently wrong), else latin-1 (which reads any bytes)."""
    with open(path, "rb") as fh:
        raw = fh.read(limit)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if raw.count(0) > len(raw) // 4:  # UTF-16 without its mark: every other byte of ASCII is 0
        return "utf-16-le" if raw[1:2] == b"\x00" else "utf-16-be"
    try:
        raw.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int]:
    """(line, byte-in-line), both 1-based, of the first bytes that do not decode."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as exc:
                return number, exc.start + 1
    return 0, 0


_DECLARE = {  # how to name each kind of id column, in Python and on the command line
    "id": "Columns(user='uid', item='iid') (CLI: --user-col/--item-col)",
    "item id": "Columns(item_id='sku') (CLI: --item-id-col), when the item table names it differently",
    "user id": "Columns(user_id='uid') (CLI: --user-id-col), when the user table names it differently",
}


def _require(frame: pd.DataFrame, cols: list[str], label: str, role: str) -> None:
    """The id columns ``cols``, each present or the one column of its name in another case
    ("User_ID" for user_id, renamed in place, as "Rating" is read for rating); else an error."""
    for col in [c for c in cols if c not in frame.columns]:
        same = [c for c in frame.columns if str(c).casefold() == col.casefold()]
        if len(same) == 1:
            log.info("%s: reading column %r as %r", label, same[0], col)
            frame.columns = [col if c == same[0] else c for c in frame.columns]
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        # (a DataFrame indexed by its ids, e.g. after a groupby, holds them in no column)
        indexed = [c for c in missing if c in [n for n in frame.index.names if n is not None]]
        fix = f"rename the columns or declare them, e.g. {_DECLARE[role]}"
        if len(frame.columns) and str(frame.columns[0]).lstrip().startswith(("#", "//")):
            first = str(frame.columns[0])
            fix = f"the first line ({first!r}, ...) is a comment: remove the lines above the header"
        raise DataError(
            f"missing {role} column(s) {missing}; columns present: {list(frame.columns)}"
            + (f" ({indexed} {'is' if len(indexed) == 1 else 'are'} the table's index)" if indexed else ""),
            source=label,
            fix="make the index a column: table.reset_index()" if indexed else fix,
        )


def _check_columns(cols: Columns) -> None:
    """One column cannot be two things (``user == item`` made every user an item of its own);
    genres given as one string need a separator to split it."""
    if not cols.genre_sep:
        raise DataError("genre_sep is empty", fix="genre_sep='|' (CLI: --genre-sep '|')")
    named = [(f, getattr(cols, f)) for f in ("user", "item", "rating", "timestamp") if getattr(cols, f)]
    seen: dict[str, str] = {}
    for field, name in named:
        if name in seen:
            raise DataError(
                f"column {name!r} is named both as the {seen[name]} and the {field} column",
                fix="give each a column of its own",
            )
        seen[name] = field


def _zeros_lost(missing: str, vocab: Vocabulary) -> str:
    """A hint when the table holds ``missing`` with leading zeros ("7" for "007"): a column
    read as numbers loses them."""
    padded = vocab.same_number(missing)
    if not padded:
        return ""
    if "." in padded[0] or "." in missing:  # ("7.0": pandas writes a column with a gap as floats)
        lost = (
            "ids written as decimal numbers do not match whole ones, so write them as whole numbers or text"
        )
        return f"; the table has {padded[0]!r}: {lost}"
    lost = "ids written as numbers lose their leading zeros, so write them as text"
    return f"; the table has {padded[0]!r}: {lost}"


def _no_nulls(frame: pd.DataFrame, col: str, label: str) -> None:
    bad = frame[col].isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {col!r} is empty at {_row(label, row)} ({int(bad.sum())} empty in all)",
            source=label,
            fix=f"fill or drop rows without {col}",
        )


#: A number written with a decimal comma ("4,5"; a thousands comma has three digits after it).
DECIMAL_COMMA = r"\s*[+-]?\d*,\d{1,2}\s*"


def _numeric(frame: pd.DataFrame, col: str, label: str) -> np.ndarray:
    # as floats: a nullable string column gives Int64, which cannot take the 4.5 of a "4,5"
    values = pd.to_numeric(frame[col], errors="coerce").astype(float)
    bad = values.isna().to_numpy() & frame[col].notna().to_numpy()
    comma = frame[col].astype(str).str.fullmatch(DECIMAL_COMMA).to_numpy() & bad
    if comma.any():  # "4,5" in a file saved with ';' by a European spreadsheet
        text = frame[col][comma].astype(str)
        log.info(
            "%s: column %r writes decimals with a comma (%r): read as %s",
            label,
            col,
            text.iloc[0],
            text.iloc[0].strip().replace(",", "."),
        )
        values[comma] = pd.to_numeric(text.str.replace(",", ".", regex=False)).to_numpy()
        bad &= ~comma
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {col!r} must be numeric; {_row(label, row)} has {frame[col].iloc[row]!r}",
            source=label,
            fix=f"make every {col} a number",
        )
    _no_nulls(frame.assign(**{col: values}), col, label)
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(
            f"column {col!r} holds an infinite number at {_row(label, row)} ({int(infinite.sum())} in all)",
            source=label,
            fix=f"make every {col} a finite number",
        )
    return values.to_numpy()


#: An HTML character reference: &amp; &#39; &#x27; (a web shop's export of its titles).
HTML_ENTITY = re.compile(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,30});")


def _unescape_html(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """The item table with HTML character references in its text read as the characters they
    stand for ("Tom &amp; Jerry" showed so in lists and reasons, and --title "Tom & Jerry"
    found nothing), with a warning naming the columns."""
    changed: dict[str, int] = {}
    for col in table.columns:
        if not (pd.api.types.is_object_dtype(table[col]) or pd.api.types.is_string_dtype(table[col])):
            continue
        # each reference alone: html.unescape of a whole cell also read "&region" as "®ion"
        new = [
            HTML_ENTITY.sub(lambda m: html.unescape(m.group(0)), v) if isinstance(v, str) else v
            for v in table[col]
        ]
        has = np.array([n is not v and n != v for n, v in zip(new, table[col], strict=True)], bool)
        if has.any():
            table.loc[has, col] = [n for n, h in zip(new, has, strict=True) if h]
            changed[str(col)] = int(has.sum())
    if changed:
        where = ", ".join(f"{n} {'cell' if n == 1 else 'cells'} of {c!r}" for c, n in changed.items())
        warnings.warn(
            f"{label}: the HTML character references (&amp;, &#39;) in {where} are read as the "
            "characters they stand for",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    return table


def _warn_other_genre_sep(cells: pd.Series, sep: str, label: str) -> None:
    """Warn when genres given as text never hold ``genre_sep`` but often another separator:
    with ``genre_sep=","`` on "Sci-Fi|Drama" cells each was one genre, "Sci-Fi|Drama", in
    the text and the reasons, without a word."""
    text = [c for c in cells if isinstance(c, str) and c.strip() and not c.strip().startswith("[")]
    if not text or any(sep in c for c in text):
        return
    held = {s: sum(s in c for c in text) for s in ("|", ",", ";") if s != sep}  # ("/" is in names)
    other, n = max(held.items(), key=lambda kv: kv[1])
    if n >= max(2, 0.1 * len(text)):
        warnings.warn(
            f"{label}: no genres cell holds the separator {sep!r}, but {n} of {len(text)} hold "
            f"{other!r} (e.g. {next(c for c in text if other in c)!r}), so each is read as one genre: "
            f"is the separator {other!r}? (Python: Columns(genre_sep={other!r}); CLI: --genre-sep '{other}')",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _warn_stray_ratings(values: np.ndarray, col: str, label: str) -> None:
    """Warn of a few ratings far above a small scale (a 50 among 1-5 stars): the top rating sets
    how a query's ratings read (`FitState.dislike_at`), so one typo of 50 made every 1-2 star
    rating a like, without a word."""
    # the scale: the values at least 0.5% of the rows hold, and two rows at least (on 60 rows a
    # typo held 1.7% of them: small data, this library's case, were never checked); only values
    # far above it, and rare, are strays (a rare low rating is a real one: a single 1 star among
    # 3-5 stars; so is a rare top weight: purchases as 5 among views as 1 and carts as 3)
    counts = pd.Series(values).value_counts()
    levels = np.sort(counts.index[counts >= max(2, 0.005 * len(values))].to_numpy(np.float64))
    if len(levels) < 2 or len(levels) > 11:  # counts and scores have no small scale
        return
    top = levels[-1]
    far = np.flatnonzero(values > top + max(top - levels[0], abs(top)))
    if not len(far) or len(far) > max(1, 0.01 * len(values)):  # (a long tail: play counts)
        return
    row = int(far[0])
    rows = "1 row lies" if len(far) == 1 else f"{len(far)} rows lie"
    warnings.warn(
        f"{label}: column {col!r} reads as a scale of {levels[0]:g} to {levels[-1]:g}, but "
        f"{rows} far above it ({_row(label, row)} has {values[row]:g}): typos? The top "
        "rating sets how a query's ratings read (a like above 60% of it; a dislike at or below "
        "40%, on a scale whose top is 10 or less): correct or drop those rows",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


#: Unix seconds beyond this (the year 5138) are milliseconds or smaller units.
MAX_UNIX_SECONDS = 1e11


def _timestamps(frame: pd.DataFrame, col: str, label: str) -> np.ndarray:
    series = frame[col]
    dates = pd.api.types.is_datetime64_any_dtype(series)
    as_number = series if dates else pd.to_numeric(series, errors="coerce")
    if not dates and (pd.api.types.is_numeric_dtype(series) or (as_number.notna() | series.isna()).all()):
        # numbers, or text of numbers (a CSV read as text, a Parquet string column)
        seconds = _numeric(frame.assign(**{col: as_number}), col, label)
        big = np.flatnonzero(np.abs(seconds) > MAX_UNIX_SECONDS)
        if len(big):
            raise DataError(
                f"column {col!r} holds {seconds[big[0]]:.0f} ({_row(label, big[0])}), after the year 5000 "
                "as Unix seconds: milliseconds?",
                source=label,
                fix="give Unix seconds (divide milliseconds by 1000)",
            )
        return seconds.astype(np.int64)
    # ISO 8601 in any of its forms (a date, then a date and time: pandas' default guesses one
    # format from the first row and refuses the rest); else one other format for the whole
    # column. Each value read on its own took 02/01/2024 for 1 February and 13/01/2024 for 13
    # January in one column, and so kept the wrong one of two ratings of an item.
    parsed = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    text = series.astype("string")
    unread = (parsed.isna() & text.str.strip().fillna("").ne("")).to_numpy()  # (blank: missing)
    if unread.any() and parsed.notna().any():  # not another format for the rest: 2024-25-06
        # read as year-day-month put a typo (2024-13-01) and a whole column's early days wrong
        row, iso = int(np.flatnonzero(unread)[0]), series[parsed.notna()].iloc[0]
        value = str(series.iloc[row])
        why = (
            "which is not one (a month above 12, a day past the end of its month?)"
            if re.match(r"\s*\d{4}-", value)
            else "another format: a column is read in one"
        )
        raise DataError(
            f"column {col!r} has ISO dates ({iso!r}), but {_row(label, row)} has {value!r}, {why}",
            source=label,
            fix="correct that date, or write every date in one format (ISO 8601: 2024-06-25)",
        )
    if unread.any():
        parsed = parsed.fillna(_one_date_format(series[parsed.isna()], col, label))
    blank = text.str.strip().fillna("").eq("").to_numpy()
    if blank.any():  # ("must be a number or a date; row 6 has nan")
        _no_nulls(pd.DataFrame({col: pd.Series(series.to_numpy()).where(~blank)}), col, label)
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"column {col!r} must be a number or a date; {_row(label, row)} has {series.iloc[row]!r}",
            source=label,
            fix="use Unix seconds or ISO dates",
        )
    return unix_seconds(parsed)


def _one_date_format(series: pd.Series, col: str, label: str) -> pd.Series:
    """Dates that are not ISO 8601, read with one format for all: the month-first or the
    day-first reading of the first date, whichever reads every one. When both do (02/01/2024
    and 03/04/2024: January or February?) the column is ambiguous: an error, not a guess."""
    from pandas.tseries.api import guess_datetime_format

    first = str(series.dropna().iloc[0]) if series.notna().any() else ""
    with warnings.catch_warnings():  # pandas warns that a guess ignored its dayfirst
        warnings.simplefilter("ignore", UserWarning)
        guesses = [guess_datetime_format(first), guess_datetime_format(first, dayfirst=True)]
    formats = dict.fromkeys(f for f in guesses if f)
    readings = {}
    for fmt in formats:
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format=fmt)
        if parsed.notna().sum() == series.notna().sum():
            readings[fmt] = parsed
    if len(readings) > 1:
        raise DataError(
            f"column {col!r} has dates that read both day-first and month-first ({first!r}: "
            f"{' or '.join(readings)})",
            source=label,
            fix="write dates as ISO 8601 (2024-01-02) or Unix seconds",
        )
    if readings:
        return next(iter(readings.values()))
    return pd.to_datetime(series, errors="coerce", utc=True, format=next(iter(formats), None))


def _id_text(value: object) -> str:
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _check_exact_floats(series: pd.Series, label: str) -> None:
    """Float ids of 2**53 or more (2**24 in float32) are refused: a float keeps no more digits, so
    ids that differ in the last ones (12345678901234567 and ...568) had become one id, said only
    as "repeated (user, item) rows"."""
    values = series.to_numpy()
    # (a float32 keeps 24 bits: 16777217 and 16777216 are one float32)
    bits = 24 if values.dtype == np.float32 else 53
    if values.dtype == object:
        floats = np.array([isinstance(v, float | np.floating) for v in values], dtype=bool)
        big = np.zeros(len(values), dtype=bool)
        if floats.any():
            bits = 24 if all(isinstance(v, np.float32) for v in values[floats]) else 53
            big[floats] = np.abs(values[floats].astype(np.float64)) >= 2.0**bits
    else:
        with np.errstate(invalid="ignore"):
            big = np.abs(values.astype(np.float64)) >= 2.0**bits
    if big.any():
        row = int(np.flatnonzero(big)[0])
        raise DataError(
            f"column {series.name!r} holds the float id {float(values[row]):.0f} at {_row(label, row)}: "
            f"a float{'32' if bits == 24 else ''} of 2**{bits} or more loses an id's last digits, so "
            "ids that differ in them read as one "
            f"({int(big.sum())} such ids in all)",
            source=label,
            fix=f"store ids as text or int64 (e.g. read the table with dtype={{{str(series.name)!r}: str}})",
        )


def _id_strings(series: pd.Series, label: str = "") -> pd.Series:
    """Ids as text: strings as written, integers as written, whole-number floats without ``.0``;
    spaces around an id are dropped, with a warning (" x" from "a, x, 5" was an item of its own)."""
    if isinstance(series.dtype, pd.CategoricalDtype):  # its values' own rules (1.0 was "1.0")
        series = series.astype(series.cat.categories.dtype)
    if series.dtype == object:
        nested = series.map(lambda v: isinstance(v, list | tuple | set | dict | np.ndarray)).to_numpy()
        if nested.any():  # "[1, 2]" was read as an id
            row = int(np.flatnonzero(nested)[0])
            raise DataError(
                f"column {series.name!r} holds a {type(series.iloc[row]).__name__} at {_row(label, row)}, "
                "not one id",
                source=label,
                fix="one row per id (DataFrame.explode splits lists into rows)",
            )
    if pd.api.types.is_float_dtype(series) or series.dtype == object:
        _check_exact_floats(series, label)
        ids = series.map(_id_text).astype(str)
    else:
        ids = series.astype(str)
    stripped = ids.str.strip()
    changed = (stripped != ids).to_numpy()
    if changed.any():
        row = int(np.flatnonzero(changed)[0])
        log.warning(
            "%s: %d ids in column %r have spaces around them (%r at %s); read without them",
            label,
            int(changed.sum()),
            series.name,
            ids.iloc[row],
            _row(label, row),
        )
    blank = np.flatnonzero((stripped == "").to_numpy())
    if len(blank):  # an empty id ("" in a DataFrame) is no id: add_items refuses one too
        kind = "an id of only spaces" if ids.iloc[int(blank[0])] else "an empty id"
        raise DataError(
            f"column {series.name!r} has {kind} at {_row(label, int(blank[0]))}",
            source=label,
            fix=f"fill or drop rows without {series.name}",
        )
    return stripped


def _optional_column(frame: pd.DataFrame, cols: Columns, field: str, label: str, fix: str) -> str | None:
    """The optional column ``cols.<field>``'s name when it is present, else None.

    Absent is fine when it is unset (None/"") or keeps its default name; a name the user chose
    that is not in the table is an error (a misspelling must not train on the wrong data).
    """
    name = getattr(cols, field)
    if not name:
        return None
    if name in frame.columns:
        return name
    if name == Columns.model_fields[field].default:
        # "Rating" or "TIMESTAMP" for the default name: it was left unread (implicit data)
        same = [c for c in frame.columns if str(c).casefold() == name.casefold()]
        if len(same) == 1:
            frame.columns = [name if c == same[0] else c for c in frame.columns]
            return name
        if field in ("rating", "timestamp"):  # said, not silent (an unread "stars" column warns)
            what = (
                "the data are implicit: every interaction 1"
                if field == "rating"
                else "the row order is the time"
            )
            log.info("%s: no %r column, so %s", label, name, what)
        return None
    raise DataError(
        f"{field} column {name!r} is not in the table; columns present: {list(frame.columns)}",
        source=label,
        fix=f"check the spelling, or {fix}",
    )


def _unique_ids(frame: pd.DataFrame, col: str, label: str) -> list[str]:
    _no_nulls(frame, col, label)
    ids = _id_strings(frame[col], label)
    dup = ids.duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"duplicate id {ids.iloc[row]!r} in column {col!r} at {_row(label, row)}",
            source=label,
            fix="give each id one row",
        )
    return ids.tolist()


REPEATS = ("last", "sum", "count")
"""What several rows of one (user, item) make in `load_interactions` (its ``repeats``)."""


def load_interactions(
    interactions: Table,
    items: Table | None = None,
    users: Table | None = None,
    *,
    columns: Columns | Mapping[str, Any] | None = None,
    name: str = "custom",
    encoding: str = "utf-8",
    item_template: str | None = None,
    sep: str | None = None,
    repeats: str = "last",  # one of REPEATS (checked here; the CLI passes its option through)
) -> Dataset:
    """Build a `Dataset` from the user's tables (CSV, TSV, Parquet paths or DataFrames).

    Args:
        interactions: one row per interaction with user and item ids, optional rating/timestamp.
        items: optional item table (id column ``columns.item_id`` or ``columns.item``) whose
            other columns are item text; when given, every interaction must name a known item.
        users: optional user side info table, keyed like items.
        columns: the column mapping: a `Columns`, or a dict of its fields.
        name: a name for reports.
        encoding: text encoding of CSV files.
        sep: separator of text files; None: by suffix (tab for .tsv/.tab, else comma), unless
            the header line lacks that one but has ``,``/``;``/tab/``|`` (see `read_table`).
        item_template: optional `str.format` template over item columns for item text.
        repeats: what several rows of one (user, item) make: ``"last"``, the latest (a rating
            given anew), with a warning; ``"sum"``, their ratings added up (plays or purchases
            logged per day); ``"count"``, their number of rows (a log of one row per play,
            without a rating column). ``"sum"`` and ``"count"`` date the pair by its first row.

    Raises:
        DataError: naming the file, row or column and the fix, for any bad input.
        ConfigError: ``columns`` given as a dict with an unknown key or a value of the wrong type.
        ArgumentError: ``columns`` neither a `Columns` nor a dict.
    """
    if isinstance(columns, Mapping):  # Columns' own errors name a misspelt key
        columns = Columns(**columns)
    elif columns is not None and not isinstance(columns, Columns):
        raise ArgumentError(
            f"columns must be a Columns (or a dict of its fields), not {type(columns).__name__}",
            fix="columns=Columns(user='uid', item='iid')",
        )
    cols = columns or Columns()
    _check_columns(cols)
    if repeats not in REPEATS:
        raise DataError(f"repeats must be one of {', '.join(REPEATS)}, not {repeats!r}")
    inter, ilabel = read_table(
        interactions, what="interaction", encoding=encoding, sep=sep, ids=(cols.user, cols.item)
    )
    _require(inter, [cols.user, cols.item], ilabel, "id")
    rating_col = _optional_column(
        inter, cols, "rating", ilabel, "pass rating=None (CLI: --rating-col '') for implicit data"
    )
    time_col = _optional_column(
        inter, cols, "timestamp", ilabel, "pass timestamp=None (CLI: --time-col '') to use row order"
    )
    has_rating, has_time = rating_col is not None, time_col is not None
    if repeats == "count" and has_rating:  # (its values would be dropped without a word)
        raise DataError(
            f"repeats='count' makes a pair's number of rows its rating, so the rating column "
            f"{rating_col!r} would be ignored",
            fix="repeats='sum' adds that column's values up; or load without a rating column "
            "(rating=None, CLI --rating-col '')",
        )
    _warn_unread(inter, cols, ilabel, has_rating, has_time)
    _no_nulls(inter, cols.user, ilabel)
    _no_nulls(inter, cols.item, ilabel)
    for col, field, flag in ((rating_col, "rating", "--rating-col"), (time_col, "timestamp", "--time-col")):
        if col is not None and len(inter) and inter[col].isna().all():  # ("fill or drop rows" said no more)
            raise DataError(
                f"column {col!r} is empty in every row",
                source=ilabel,
                fix=f"fill it, or read no {field} column: {field}=None (CLI: {flag} '')",
            )
    ratings = (
        _numeric(inter, rating_col, ilabel).astype(np.float32)
        if rating_col is not None
        else np.ones(len(inter), np.float32)
    )
    if rating_col is not None and repeats == "last":  # (summed amounts are no scale: `counts`)
        _warn_stray_ratings(ratings, rating_col, ilabel)
    times = _timestamps(inter, time_col, ilabel) if time_col is not None else np.arange(len(inter))
    user_ext = _id_strings(inter[cols.user], ilabel).to_numpy()
    item_ext = _id_strings(inter[cols.item], ilabel).to_numpy()

    item_info = pd.DataFrame()
    given_template = item_template  # (a renamed title or genre column is renamed in it too)
    if items is not None:
        key = cols.item_id or cols.item
        itab, tlabel = read_table(items, what="item", encoding=encoding, sep=sep, ids=(key,))
        _require(itab, [key], tlabel, "item id")
        item_vocab = Vocabulary(_unique_ids(itab, key, tlabel))
        # genres and title are read under their own names, whatever the table's ("Title", "name");
        # looked for among the other columns (an id column called "Title" stays the id)
        body = itab.drop(columns=[key])
        columns_of: dict[str, str] = {}  # field -> its column (not `name`: that is the dataset's)
        for field in ("genres", "title"):
            chosen = getattr(cols, field)
            flag = "--genres-col" if field == "genres" else "--title-col"
            before = list(body.columns)
            if chosen != key and _optional_column(
                body, cols, field, tlabel, f"pass {field}=None (CLI: {flag} '') for none"
            ):
                # ("Title" for the default name is renamed in the table itself)
                columns_of[field] = next(
                    (b for b, a in zip(before, body.columns, strict=True) if b != a), chosen
                )
        item_info = _unescape_html(body.reset_index(drop=True), tlabel)
        if "title" not in columns_of and cols.title == "title" and len(body.columns):
            log.warning(  # ("name" was read as text, and --title then found no item, unexplained)
                "%s: no 'title' column (columns %s): lists and reasons name items by id, and a "
                "query by title finds none; name the title column with title=... (CLI: --title-col "
                "NAME), or pass title=None (CLI: --title-col '') to silence this",
                tlabel,
                [str(c) for c in body.columns],
            )
        for field, column in columns_of.items():
            if column != field:
                if column in item_info.columns and field in item_info.columns:
                    flag = "--genres-col" if field == "genres" else "--title-col"
                    raise DataError(
                        f"the item table has a {field!r} column beside {column!r}, given as its {field}s",
                        source=tlabel,
                        fix=f"drop or rename one of them (CLI: {flag} {field} reads the {field!r} column)",
                    )
                item_info = item_info.rename(columns={column: field})
                if item_template is not None:  # "{tags}" or "{Title}" names it too
                    item_template = re.sub(
                        r"\{" + re.escape(column) + r"([}!:])", "{" + field + r"\1", item_template
                    )
            if field == "genres":
                _warn_other_genre_sep(item_info["genres"], cols.genre_sep, tlabel)
                item_info["genres"] = item_info["genres"].map(lambda g: genre_list(g, cols.genre_sep))
        _one_type_per_field(item_info, tlabel)
        unknown = item_vocab.lookup(item_ext) < 0
        if unknown.any():
            row = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"{_row(ilabel, row)} names item {item_ext[row]!r}, which is not in the item table "
                f"({int(unknown.sum())} such rows){_zeros_lost(str(item_ext[row]), item_vocab)}",
                source=ilabel,
                fix="add the items to the item table or drop those interactions",
            )
    else:
        item_vocab = Vocabulary(pd.unique(item_ext))

    user_info = pd.DataFrame()
    if users is not None:
        key = cols.user_id or cols.user
        utab, ulabel = read_table(users, what="user", encoding=encoding, sep=sep, ids=(key,))
        _require(utab, [key], ulabel, "user id")
        known_ids = _unique_ids(utab, key, ulabel)
        user_vocab = Vocabulary(known_ids)
        user_info = utab.drop(columns=[key]).reset_index(drop=True)
        _one_type_per_field(user_info, ulabel)
        _read_codes(user_info, cols.codes, ulabel)
        unknown = user_vocab.lookup(user_ext) < 0
        if unknown.all():  # not one id in common: the wrong table, or the wrong id column
            raise DataError(
                f"{_row(ilabel, 0)} names user {user_ext[0]!r}, which is not in the user table, "
                f"and no other user of the interactions is{_zeros_lost(str(user_ext[0]), user_vocab)}",
                source=ilabel,
                fix="check that the user table's id column holds the interactions' user ids "
                "(CLI: --user-id-col)",
            )
        if unknown.any():  # users without a row have no side info, as a missing value has none
            # (an error had asked to drop their interactions: data lost for a side table's gap)
            extra = list(pd.unique(user_ext[unknown]))
            row = int(np.flatnonzero(unknown)[0])
            users_are = (
                "1 user of the interactions is"
                if len(extra) == 1
                else f"{len(extra)} users of the interactions are"
            )
            warnings.warn(
                f"{users_are} not in the user table ({ulabel}), first {user_ext[row]!r} at "
                f"{_row(ilabel, row)}: they have no side info{_zeros_lost(str(user_ext[row]), user_vocab)}",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
            user_vocab = Vocabulary(known_ids + extra)
            user_info = user_info.reindex(range(len(user_vocab)))  # (their rows: missing values)
    else:
        user_vocab = Vocabulary(pd.unique(user_ext))

    if item_template is not None and "{" not in item_template.replace("{{", ""):
        raise DataError(
            f"item text template {item_template!r} names no field, so every item would read the same",
            fix="name item fields in braces, e.g. '{title}. {genres}' (CLI: --item-template), or give none",
        )
    if item_template is not None and items is None:
        raise DataError(
            f"item text template {item_template!r} needs item fields, but no item table was given",
            fix="give the item table (CLI: --items), or no template",
        )
    if item_template is not None:  # a bad template fails here, not at the first item text
        try:
            item_texts(pd.DataFrame([dict.fromkeys(item_info.columns, "x")]), item_template)
        except DataError as exc:  # in the user's own words: "{name}", not the "{title}" it became
            raise DataError(str(exc).replace(repr(item_template), repr(given_template))) from None
    frame = pd.DataFrame(
        {
            "user": user_vocab.lookup(user_ext).astype(np.int32),
            "item": item_vocab.lookup(item_ext).astype(np.int32),
            "rating": ratings,
            "timestamp": times.astype(np.int64),
        }
    )
    return Dataset(
        interactions=keep_latest(frame, ilabel, timed=has_time)
        if repeats == "last"
        else combine_repeats(frame, ilabel, repeats),
        users=user_vocab,
        items=item_vocab,
        item_info=item_info,
        user_info=user_info,
        name=name,
        item_template=item_template,
        timed=has_time,
        counts=repeats in ("sum", "count"),
        genre_sep=cols.genre_sep,  # (new items' genres given as text are split on it too)
    )


def _read_codes(table: pd.DataFrame, codes: Sequence[str], label: str) -> None:
    """The columns ``codes`` as text, a whole number without its ".0" ("10001"); of the other
    number columns, one that decades would merge many values of (zip codes, not ages) is noted."""
    missing = [c for c in codes if c not in table.columns]
    if missing:
        raise DataError(
            f"codes names {missing}, not columns of the user table ({[str(c) for c in table.columns]})",
            source=label,
            fix="name user side-info columns (CLI: --code-col)",
        )
    for col in table.columns:
        values = table[col]
        if col in codes:
            table[col] = values.map(lambda v: v if missing_value(v) else _id_text(v))
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            if is_code_field(values):
                continue
            levels = set(side_info_levels(values)) - {MISSING_LEVEL}
            distinct = values.dropna().nunique()
            lo, hi = float(values.min()), float(values.max())
            years = lo >= 1800 and hi <= 2100
            if distinct > 3 * len(levels) and hi > 200 and not years:  # (not ages, nor years)
                first = values.dropna().iloc[:1]
                warnings.warn(
                    f"{label}: field {col!r} is read by decade ({distinct} values make {len(levels)} "
                    f"levels, e.g. {_id_text(first.iloc[0])} -> {side_info_levels(first)[0]!r}): if its "
                    f"numbers are codes, such as zip codes, name it in codes= (CLI: --code-col {col})",
                    UserWarning,
                    stacklevel=user_stacklevel(),
                )


def _kind(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "true/false"
    if isinstance(value, int | float | np.number):
        return "numbers"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple | np.ndarray):
        return "lists"
    return type(value).__name__


def _one_type_per_field(table: pd.DataFrame, label: str) -> None:
    """A field of a table given as a DataFrame that mixes kinds of values (``[True, "yes"]``,
    ``[3, "L"]``) is read as text, with a warning: it fitted, and the model (or the dataset)
    then could not be saved, a fit of hours lost."""
    for col in table.columns:
        if table[col].dtype != object:
            continue
        values = table[col].dropna()
        kinds = set(values.map(_kind)) if len(values) else set()
        if len(kinds) < 2 or "lists" in kinds:
            continue
        last = {k: v for v, k in zip(values, values.map(_kind), strict=True)}  # a value of each kind
        shown = ", ".join(repr(last[k]) for k in sorted(kinds)[:3])
        table[col] = table[col].map(lambda v: v if v is None or v is pd.NA or v != v else str(v))
        warnings.warn(
            f"{label}: field {col!r} mixes {' and '.join(sorted(kinds))} ({shown}); it is read as text",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def _warn_unread(inter: pd.DataFrame, cols: Columns, label: str, has_rating: bool, has_time: bool) -> None:
    """A warning when a default rating or timestamp column is missing while other columns go
    unread: a rating column under another name ("stars") trained as implicit data, and a time
    column named "date" left the rows' order to stand for time."""
    unread = [c for c in inter.columns if c not in (cols.user, cols.item, cols.rating, cols.timestamp)]
    if not unread:
        return
    fields = Columns.model_fields
    if not has_rating and cols.rating == fields["rating"].default:
        log.warning(
            "%s: no %r column, so every row counts as a like (implicit data); columns not read: "
            "%s. If one holds ratings, name it (CLI: --rating-col NAME)",
            label,
            cols.rating,
            unread,
        )
    if not has_time and cols.timestamp == fields["timestamp"].default:
        log.warning(
            "%s: no %r column, so the rows' order stands for time (a repeated (user, item) keeps "
            "its last row); columns not read: %s. If one holds times, name it (CLI: --time-col NAME)",
            label,
            cols.timestamp,
            unread,
        )
