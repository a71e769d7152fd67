"""Catalogues too large for a dense items x items matrix: models that need none stay within
memory, and models that need one refuse before allocating it, saying how much and what to do."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from fewrec.data.loaders import Columns, load_interactions
from fewrec.models import make_model


def long_tail(n_users: int, n_items: int, per_user: int, seed: int = 0):
    """Implicit data with a long-tailed item popularity."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1)
    items = rng.choice(n_items, size=(n_users, per_user), p=p / p.sum())
    frame = pd.DataFrame(
        {
            "user": np.repeat([f"u{u}" for u in range(n_users)], per_user),
            "item": [f"i{i}" for i in items.ravel()],
        }
    ).drop_duplicates()
    # every item in the catalogue, as an item table gives it
    catalogue = pd.DataFrame(
        {"item": [f"i{i}" for i in range(n_items)], "title": [f"t{i}" for i in range(n_items)]}
    )
    cols = Columns(user="user", item="item", rating=None, timestamp=None, genres=None)
    return load_interactions(frame, catalogue, columns=cols)


@pytest.mark.parametrize("name", ["itemknn", "rp3beta"])
def test_neighbourhood_models_never_hold_a_dense_item_item_matrix(name, monkeypatch):
    """Item-kNN and RP3beta built a dense items x items matrix (40 GB in float32 at 100,000
    items, a MemoryError), though only ``neighbors`` entries per item are kept; they are made a
    block of rows at a time, with the same values as in one block."""
    data = long_tail(400, 2500, 12)
    n = data.n_items
    model = type(make_model(name))
    whole = make_model(name, neighbors=20).fit(data).sim_
    monkeypatch.setattr(model, "BLOCK_ENTRIES", 40 * n, raising=False)
    tracemalloc.start()
    try:
        blocks = make_model(name, neighbors=20).fit(data).sim_
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n * n * 4 / 4, f"peak {peak / 1e6:.1f} MB for {n} items"
    for a, b in [(whole.data, blocks.data), (whole.indices, blocks.indices), (whole.indptr, blocks.indptr)]:
        assert np.array_equal(a, b)
    assert blocks.nnz <= 20 * n
