"""Synthetic catalogue items made from the real MovieLens vocabulary (for load tests).

Each synthetic item borrows 2-4 title words, a release year and 1-3 genres drawn from the real
catalogue's distributions, so its text looks like a movie's and the text encoder sees realistic
inputs. Generation is seeded and the n-th item is the same for every ``n`` (prefixes agree), so
the 10k and 100k catalogues share their first items and the embedding cache.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")


def title_vocabulary(item_info: pd.DataFrame) -> list[str]:
    """Distinct words of the real titles (case kept, short words dropped), sorted."""
    words: set[str] = set()
    for title in item_info["title"].astype(str):
        words.update(w for w in _WORD.findall(title) if len(w) > 2)
    return sorted(words)


def synthetic_items(item_info: pd.DataFrame, n: int, seed: int = 0, prefix: str = "syn") -> pd.DataFrame:
    """``n`` synthetic items with columns id, title, year, genres (ids ``{prefix}{i}``).

    Args:
        item_info: the real catalogue (needs ``title``, ``year`` and ``genres`` columns).
        n: how many items.
        seed: generation seed; item ``i`` depends only on ``seed`` and ``i``.
        prefix: id prefix.
    """
    vocab = np.array(title_vocabulary(item_info))
    years = item_info["year"].astype(str).to_numpy()
    genre_lists = [list(g) for g in item_info["genres"] if len(g)]
    genres = np.array(sorted({g for gs in genre_lists for g in gs if g != "unknown"}))
    rows = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        words = rng.choice(vocab, size=int(rng.integers(2, 5)), replace=False)
        k = int(rng.integers(1, 4))
        rows.append(
            {
                "id": f"{prefix}{i}",
                "title": " ".join(words),
                "year": str(years[int(rng.integers(len(years)))]),
                "genres": sorted(rng.choice(genres, size=k, replace=False).tolist()),
            }
        )
    return pd.DataFrame(rows)
