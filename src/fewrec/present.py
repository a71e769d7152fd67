"""Finding items by title and printing recommendations for people."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import pandas as pd
from rich.console import Console
from rich.table import Table

from fewrec.data.dataset import Vocabulary
from fewrec.errors import DataError


def find_titles(item_info: pd.DataFrame, items: Vocabulary, titles: Sequence[str]) -> list[str]:
    """External item ids for titles: an exact (case-insensitive) match first, then a prefix,
    then a substring match; an unknown title raises with close suggestions."""
    if "title" not in item_info.columns:
        raise DataError("these items have no title field", fix="give item ids instead of titles")
    names = item_info["title"].astype(str).tolist()
    lower = [n.lower() for n in names]
    out = []
    for title in titles:
        t = title.strip().lower()
        idx = next((i for i, n in enumerate(lower) if n == t), None)
        if idx is None:
            idx = next((i for i, n in enumerate(lower) if n.startswith(t)), None)
        if idx is None:
            idx = next((i for i, n in enumerate(lower) if t in n), None)
        if idx is None:
            close = difflib.get_close_matches(title, names, n=3, cutoff=0.5)
            raise DataError(
                f"no item titled {title!r}",
                fix=f"did you mean {close}?" if close else "check the spelling",
            )
        out.append(items.id(idx))
    return out


def item_label(item_info: pd.DataFrame, items: Vocabulary, item_id: str) -> str:
    """A short human label: title (year) when known, else the id."""
    idx = int(items.lookup([item_id])[0])
    if idx < 0 or "title" not in item_info.columns:
        return str(item_id)
    row = item_info.iloc[idx]
    year = f" ({row['year']})" if "year" in item_info.columns else ""
    return f"{row['title']}{year}"


def print_recommendations(
    console: Console,
    recs: pd.DataFrame,
    item_info: pd.DataFrame,
    items: Vocabulary,
    title: str = "Recommendations",
) -> None:
    """A table of rank, item, score (and reason when the frame has one)."""
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("item")
    table.add_column("score", justify="right")
    has_reason = "reason" in recs.columns
    if has_reason:
        table.add_column("because")
    for rank, row in enumerate(recs.itertuples(index=False), start=1):
        cells = [str(rank), item_label(item_info, items, row.item), f"{row.score:.3f}"]
        if has_reason:
            cells.append(str(row.reason))
        table.add_row(*cells)
    console.print(table)
