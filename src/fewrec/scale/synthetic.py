"""Synthetic catalogues of any size, recombined from a real dataset's item vocabulary.

`ItemVocab` counts the pieces of a real catalogue (MovieLens: title words, release years,
genres) with their frequencies; `synthetic_catalogue` draws ``n`` new items from them with a seed:
a title of a real title's length made of real title words (drawn by frequency), a real year and
a set of real genres. Item text uses the dataset's template, e.g.
``"Dead Night of Love (1994). Genres: Comedy, Drama."``
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.data.dataset import DEFAULT_ITEM_TEMPLATE, Dataset
from fewrec.errors import DataError, is_whole_number

_WORD = re.compile(r"\S+")
#: Items drawn per seeded block (see `synthetic_catalogue`).
BLOCK = 10_000


def _dist(counts: Counter) -> tuple[list, np.ndarray]:
    keys = sorted(counts, key=lambda k: (-counts[k], str(k)))
    p = np.array([counts[k] for k in keys], dtype=np.float64)
    return keys, p / p.sum()


@dataclass(frozen=True)
class ItemVocab:
    """The pieces of a real catalogue and how often each occurs.

    Attributes:
        words: distinct title words, most frequent first; ``word_p`` their frequencies.
        lengths: title lengths in words; ``length_p`` how often each occurs.
        years: distinct years; ``year_p`` their frequencies.
        genres: distinct genres; ``genre_p`` their frequencies.
        genre_counts: genres per item; ``genre_count_p`` how often each occurs.
    """

    words: list[str]
    word_p: np.ndarray
    lengths: list[int]
    length_p: np.ndarray
    years: list[str]
    year_p: np.ndarray
    genres: list[str]
    genre_p: np.ndarray
    genre_counts: list[int]
    genre_count_p: np.ndarray

    @classmethod
    def from_dataset(cls, data: Dataset) -> ItemVocab:
        """Count title words, years and genres of a dataset's items (``title`` is required)."""
        info = data.item_info
        if "title" not in info.columns:
            raise DataError("the dataset's items have no 'title' column", fix="use a dataset with titles")
        titles = [_WORD.findall(str(t)) for t in info["title"]]
        titles = [t for t in titles if t]
        if not titles:
            raise DataError("the dataset's item titles are all empty")
        years = [str(y) for y in info["year"]] if "year" in info.columns else ["unknown"]
        genres = data.item_genres()
        words, word_p = _dist(Counter(w for t in titles for w in t))
        lengths, length_p = _dist(Counter(len(t) for t in titles))
        ys, year_p = _dist(Counter(years))
        gs, genre_p = _dist(Counter(g for item in genres for g in item) or Counter({"unknown": 1}))
        counts, count_p = _dist(Counter(min(max(len(g), 1), len(gs)) for g in genres))
        return cls(words, word_p, lengths, length_p, ys, year_p, gs, genre_p, counts, count_p)


@dataclass
class SyntheticCatalogue:
    """``n`` synthetic items as indices into an `ItemVocab`.

    Attributes:
        vocab: the vocabulary the items are drawn from.
        ids: external item ids (``"syn-0000000"``...).
        title_words: (n x n_words) CSR; row i holds the word indices of item i's title in order
            (the column order of each row is the word order; values are 1).
        year: year index per item.
        genres: (n x n_genres) CSR of each item's genres (values 1).
        template: `str.format` template with fields title, year, genres.
    """

    vocab: ItemVocab
    ids: list[str]
    title_words: sp.csr_matrix
    year: np.ndarray
    genres: sp.csr_matrix
    template: str = DEFAULT_ITEM_TEMPLATE

    def __len__(self) -> int:
        return len(self.ids)

    def text(self, i: int) -> str:
        """The text of item ``i``."""
        v = self.vocab
        tw, g = self.title_words, self.genres
        title = " ".join(v.words[j] for j in tw.indices[tw.indptr[i] : tw.indptr[i + 1]])
        genres = ", ".join(sorted(v.genres[j] for j in g.indices[g.indptr[i] : g.indptr[i + 1]]))
        return self.template.format(title=title, year=v.years[self.year[i]], genres=genres)

    def texts(self, rows: np.ndarray | range | None = None) -> list[str]:
        """Texts of the items at ``rows`` (default: all)."""
        rows = range(len(self)) if rows is None else rows
        return [self.text(int(i)) for i in rows]

    def iter_frames(self, chunk: int = 100_000) -> Iterator[pd.DataFrame]:
        """The catalogue as frames with columns ``item`` and ``text``, ``chunk`` rows each."""
        for lo in range(0, len(self), chunk):
            rows = range(lo, min(lo + chunk, len(self)))
            yield pd.DataFrame({"item": self.ids[lo : rows.stop], "text": self.texts(rows)})

    def to_parquet(self, path: str, chunk: int = 100_000) -> None:
        """Write ``item`` and ``text`` columns to one Parquet file (written in row groups)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        writer = None
        try:
            for frame in self.iter_frames(chunk):
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            if writer is None:  # no items: an empty file of the same columns (none was written)
                empty = pa.table({"item": pa.array([], pa.string()), "text": pa.array([], pa.string())})
                pq.write_table(empty, path)
        finally:
            if writer is not None:
                writer.close()


def _row_choice(rng: np.random.Generator, n: int, counts: np.ndarray, p: np.ndarray) -> sp.csr_matrix:
    """CSR with ``counts[i]`` column draws (by ``p``) in row i, repeats allowed, order kept."""
    indptr = np.r_[0, np.cumsum(counts)]
    cols = rng.choice(len(p), size=int(indptr[-1]), p=p)
    return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(len(counts), len(p)))


def _distinct_rows(rng: np.random.Generator, counts: np.ndarray, p: np.ndarray) -> sp.csr_matrix:
    """CSR with ``counts[i]`` distinct columns per row, drawn by ``p`` without replacement.

    Gumbel top-k: the ``c`` largest of ``log p + Gumbel noise`` are a weighted draw of ``c``
    distinct columns.
    """
    n, m = len(counts), len(p)
    keys = np.log(p)[None, :] + rng.gumbel(size=(n, m))
    order = np.argsort(-keys, axis=1)
    mask = np.arange(m)[None, :] < counts[:, None]
    rows = np.broadcast_to(np.arange(n)[:, None], (n, m))[mask]
    cols = order[mask]
    return sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n, m))


def synthetic_catalogue(
    vocab: ItemVocab, n: int, seed: int = 0, *, template: str = DEFAULT_ITEM_TEMPLATE
) -> SyntheticCatalogue:
    """Draw ``n`` items from ``vocab``: title length, words, year and genres by their real
    frequencies. The same ``(vocab, seed)`` always gives the same items, and a smaller catalogue
    is a prefix of a larger one (items are drawn in fixed blocks of `BLOCK`, each with its own
    seeded generator), so the first 10k items of the 1M catalogue are the 10k catalogue."""
    if not is_whole_number(n) or n < 0:  # (1e4 was a raw TypeError)
        raise DataError(f"a catalogue needs a whole number n >= 0 of items, got {n!r}")
    words, years, genres = [], [], []
    for b, lo in enumerate(range(0, n, BLOCK)):
        rng = np.random.default_rng([seed, b])
        lengths = rng.choice(vocab.lengths, size=BLOCK, p=vocab.length_p)
        words.append(_row_choice(rng, BLOCK, lengths, vocab.word_p))
        years.append(rng.choice(len(vocab.years), size=BLOCK, p=vocab.year_p))
        n_genres = rng.choice(vocab.genre_counts, size=BLOCK, p=vocab.genre_count_p)
        genres.append(_distinct_rows(rng, n_genres, vocab.genre_p))
        if lo + BLOCK > n:  # the last block: keep its first items only
            keep = n - lo
            words[-1], years[-1], genres[-1] = words[-1][:keep], years[-1][:keep], genres[-1][:keep]
    empty_w = sp.csr_matrix((0, len(vocab.words)), dtype=np.float32)
    empty_g = sp.csr_matrix((0, len(vocab.genres)), dtype=np.float32)
    return SyntheticCatalogue(
        vocab=vocab,
        ids=[f"syn-{i:07d}" for i in range(n)],
        title_words=sp.vstack(words, format="csr") if words else empty_w,
        year=np.concatenate(years) if years else np.zeros(0, np.int64),
        genres=sp.vstack(genres, format="csr") if genres else empty_g,
        template=template,
    )
