"""Finding items by title, and printing recommendations and progress for people."""

from __future__ import annotations

import difflib
import json
import logging
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fewrec.data.dataset import Vocabulary, field_text, label_of, record_codes
from fewrec.data.dataset import item_label as label_at
from fewrec.errors import DataError, NoteFormatter
from fewrec.text.encoder import PROGRESS


@dataclass
class TitleMatch:
    """The item a title named, and a note when the match was not exact. ``twins``: other items
    of the same whole record (a catalogue that lists one film twice, as MovieLens-100K does 18
    films): a history that holds one of them must hold them all, or the other came back as the
    top recommendation."""

    item: str
    note: str | None
    twins: tuple[str, ...] = ()


def match_titles(
    item_info: pd.DataFrame,
    items: Vocabulary,
    titles: Sequence[str],
    text_option: str | None = None,
    disliked: bool = False,
) -> list[TitleMatch]:
    """Items for titles: an exact (case-insensitive) match first, then a prefix, then a
    substring match (the first in catalogue order among several). A title
    that is not an exact match gets a note saying which item it picked and how many others
    matched; an unknown or empty title raises, with the titles close to it (`close_titles`),
    or, when none is, saying it is not in the catalogue (and, given ``text_option``, the option
    that takes free text, suggesting to describe it there: "nothing like ..." for ``disliked``
    titles, where "something like" asked for the film the user dislikes)."""
    if isinstance(titles, str):  # (one title was read letter by letter: 'F' taken as Four Rooms)
        raise DataError(f"titles is one string, {titles!r}", fix=f"give a list of titles: [{titles!r}]")
    if "title" not in item_info.columns:  # (a title column named otherwise when it was trained)
        fields = [str(c) for c in item_info.columns if pd.api.types.is_string_dtype(item_info[c])][:5]
        named = f" (its item fields: {', '.join(fields)})" if fields else ""
        raise DataError(
            f"these items have no title field{named}",
            fix="give item ids instead of titles, or train again naming the title column "
            "(CLI: --title-col name; Python: Columns(title='name'))",
        )
    names = [field_text(t) for t in item_info["title"]]  # an untitled item matches nothing
    lower = [_fold(n) for n in names]
    # "Title (year)", as the tables print it, matches too
    years = item_info["year"] if "year" in item_info.columns else [None] * len(names)
    labelled = [_fold(label_of(n, y, "")) for n, y in zip(names, years, strict=True)]
    bare = [(_bare(n), _bare(lab)) for n, lab in zip(lower, labelled, strict=True)]
    codes = record_codes(item_info)  # the same record: copies of one item
    out = []
    for title in titles:
        t = _fold(title.strip())
        if not t:
            raise DataError("an empty title matches every item", fix="give a title, e.g. --title 'Star Wars'")
        exact = [i for i, (n, lab) in enumerate(zip(lower, labelled, strict=True)) if n and t in (n, lab)]
        # "The Godfather" for "Godfather, The", as catalogues file titles ("Les Miserables" too)
        t_bare = _bare(t)
        found = exact or [i for i, b in enumerate(bare) if b[0] and t_bare in b]
        # without punctuation: "Dr Strangelove" for "Dr. Strangelove or: How I Learned ..."
        t_key = title_key(title)
        keys = [(title_key(n), title_key(lab)) for n, lab in zip(names, labelled, strict=True)]
        found = found or [i for i, kk in enumerate(keys) if kk[0] and t_key in kk]
        # a prefix, at a word's end first ("ET" is not "Etz Hadomim Tafus")
        word = re.compile(rf"{re.escape(t)}(?!\w)")
        found = found or [i for i, n in enumerate(lower) if n and n.startswith(t) and word.match(n)]
        found = found or [i for i, kk in enumerate(keys) if t_key and kk[0].startswith(t_key + " ")]
        found = found or [i for i, n in enumerate(lower) if n and n.startswith(t)]
        found = found or [i for i, n in enumerate(lower) if n and t in n]
        if not found:
            close = close_titles(title, names)
            if close:
                raise DataError(
                    f"no item titled {title!r}", fix=f"did you mean {' or '.join(map(repr, close))}?"
                )
            fix = "check the spelling"
            if text_option:
                like = "nothing like " if disliked else "something like "  # (any catalogue)
                example = f"{text_option} {like + title.strip()!r}"
                fix += f", or describe it in words with {text_option}, e.g. {example}"
            raise DataError(
                f"no item titled {title!r}: it is not in the catalogue, and no title is close to it",
                fix=fix,
            )
        idx = found[0]
        item = items.id(idx)
        note = None
        # the same film listed twice (one whole record, not the title and year alone: a shop's
        # two "Blue mug"s, a large and a small one, were both taken): both are the user's
        twins_idx = [i for i in found[1:] if codes[i] == codes[idx]]
        twins = tuple(items.id(i) for i in twins_idx)
        if twins:
            found = [i for i in found if codes[i] != codes[idx] or i == idx]
            exact = [i for i in exact if codes[i] != codes[idx] or i == idx]
        if not exact:
            label = item_label(item_info, items, item)
            note = f"{title!r} taken as {label} (item {item})"
            # titles it begins, which a closer match left unsaid: "Godfather" took "Godfather,
            # The" without a word of "Godfather: Part II, The"
            begins = re.compile(rf"{re.escape(t_bare)}(?!\w)")
            taken = set(found) | set(twins_idx)  # (lists: quadratic for a title most items begin)
            also = found[1:] + [
                i
                for i, (n, b) in enumerate(zip(lower, bare, strict=True))
                if n and i not in taken and (word.match(n) or begins.match(b[0]))
            ]
            if also:
                # with their ids: two items of one title read the same ('Dune', 'Dune')
                others = ", ".join(f"{names[i]!r} (item {items.id(i)})" for i in also[:3])
                more = f" and {len(also) - 3} more" if len(also) > 3 else ""
                note += f"; it also matches {others}{more}: give the full title or the id to pick another"
        elif len(exact) > 1:  # (it named neither the year taken nor the others)
            listed = ", ".join(
                f"{label_at(item_info, i, items.id(i))} (item {items.id(i)})" for i in exact[:4]
            )
            more = f" and {len(exact) - 4} more" if len(exact) > 4 else ""
            other = label_at(item_info, exact[1], items.id(exact[1]))
            # (without years the label is the bare title: "e.g. 'Blue mug'" named the same one)
            pick = (
                f"give the title with its year, e.g. {other!r}, or the id to pick another"
                if _fold(other) != _fold(names[exact[1]])
                else "give the id to pick another"
            )
            note = f"{len(exact)} items are titled {title!r}: {listed}{more}; took the first ({pick})"
        if twins:
            listed = f"{label_at(item_info, idx, item)} is listed {len(twins) + 1} times in the catalogue"
            note = "; ".join(
                [n for n in (note, f"{listed} (items {', '.join([item, *twins])}): each taken") if n]
            )
        out.append(TitleMatch(item, note, twins))
    return out


#: How alike (difflib's ratio, 0-1) a title must be to be suggested for one not found: typos
#: ("Toy Stroy", "Titanik", "Godfater") score 0.85 or more; unrelated titles that share
#: letters ("Interstellar" and "Cinderella" 0.73, "Barbie" and "Babe" 0.8) less.
CLOSE_TITLE = 0.85


def _fold(title: str) -> str:
    """A title lower-cased without accents ("Amelie" finds "Amélie")."""
    decomposed = unicodedata.normalize("NFKD", title.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _bare(title: str) -> str:
    """A title lower-cased, without accents and without a leading or trailing article
    ("Godfather, The", or "Godfather, The (1972)" as tables label it)."""
    t = _fold(title.strip())
    t = re.sub(rf",\s*({_ARTICLES})(\s*\(\d{{4}}\))?$", r"\2", t)
    return re.sub(rf"^(?:({_ARTICLES})\s+|l')", "", t)


#: Leading articles a catalogue files after the title ("Misérables, Les", "Cérémonie, La").
_ARTICLES = "the|a|an|les|la|le|los|las|el|il|lo|gli|die|der|das|den|det"


def title_key(title: str) -> str:
    """A title as a search matches it: lower case, no accents, an article filed after the title
    put back in front, its words alone ("Godfather, The (1972)": "the godfather 1972", which
    "The Godfather" and "godfather" find; "Die Hard" stays "die hard", not "hard")."""
    t = re.sub(rf"^(.*?),\s*({_ARTICLES})(\s*\(\d{{4}}\))?$", r"\2 \1\3", _fold(title.strip()))
    return " ".join(re.findall(r"\w+", t))


def _ratio(a: str, b: str) -> float:
    """difflib's ratio of two strings, 0 when its cheap upper bounds are below `CLOSE_TITLE`."""
    m = difflib.SequenceMatcher(None, a, b)
    if m.real_quick_ratio() < CLOSE_TITLE or m.quick_ratio() < CLOSE_TITLE:
        return 0.0
    return m.ratio()


def close_titles(title: str, names: Sequence[str], n: int = 3) -> list[str]:
    """Up to ``n`` distinct titles of ``names`` close to ``title`` (best first, ratio >=
    `CLOSE_TITLE`), compared without articles, whole or against as many of the title's first
    words ("Star Warz Episode" is close to "Star Wars")."""
    query = _bare(title)
    words = query.split()
    scored: dict[str, float] = {}
    for name in names:
        bare = _bare(name)
        if not bare:
            continue
        width = len(bare.split())
        score = _ratio(query, bare)
        if len(words) > width:
            score = max(score, _ratio(" ".join(words[:width]), bare))
        if score >= CLOSE_TITLE and score > scored.get(name, -1.0):
            scored[name] = score
    return sorted(scored, key=lambda m: -scored[m])[:n]


def item_label(item_info: pd.DataFrame, items: Vocabulary, item_id: str) -> str:
    """A short human label: title (year) when known, else the id."""
    idx = int(items.lookup([item_id])[0])
    return str(item_id) if idx < 0 else label_at(item_info, idx, item_id)


def print_recommendations(
    console: Console,
    recs: pd.DataFrame,
    item_info: pd.DataFrame,
    items: Vocabulary,
    title: str = "Recommendations",
    show_ids: bool = False,
) -> None:
    """A table of rank, (item id,) label, score (and reason when the frame has one): the
    columns of `print_frame` and of `Recommender.recommend`'s frame (the table said "id" for
    the item, "item" for its title and "because" for the reason, so an "item" copied from it
    was no item)."""
    table = Table(title=title)
    table.add_column("#", justify="right")
    if show_ids:
        table.add_column("item")
    table.add_column("label")
    table.add_column("score", justify="right")
    has_reason = "reason" in recs.columns
    if has_reason:
        table.add_column("reason")
    for rank, row in enumerate(recs.itertuples(index=False), start=1):
        cells = [str(rank), *([str(row.item)] if show_ids else []), item_label(item_info, items, row.item)]
        cells.append(f"{row.score:.3f}".replace("-0.000", "0.000"))  # -0.0002 is no negative score
        if has_reason:
            cells.append(str(row.reason))
        table.add_row(*(Text(c) for c in cells))  # plain text: a title like "[REC]" is not markup
    console.print(table)


def print_frame(recs: pd.DataFrame, item_info: pd.DataFrame, items: Vocabulary, fmt: str) -> None:
    """The list on stdout for a program: JSON (a list of objects) or CSV, one row per item with
    its rank, id, label (title and year, or the id) and score, and its reason when it has one."""
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, len(recs) + 1),
            "item": recs["item"].astype(str).to_numpy(),
            "label": [item_label(item_info, items, i) for i in recs["item"]],
            "score": recs["score"].astype(float).to_numpy(),
        }
    )
    if "reason" in recs.columns:
        frame["reason"] = recs["reason"].astype(str).to_numpy()
    if fmt == "json":
        sys.stdout.write(json.dumps(frame.to_dict(orient="records"), ensure_ascii=False, indent=1) + "\n")
    else:
        frame.to_csv(sys.stdout, index=False)
    sys.stdout.flush()


@contextmanager
def progress_lines(console: Console) -> Iterator[None]:
    """fewrec's warnings and progress lines printed on ``console`` while the block runs.

    An LM's prompts and the text encoder's texts log a progress line every 30 s when they show
    no bar of their own (`PROGRESS` in the record), at INFO, which a command's logging at
    WARNING left out: a tallrec task of an LM model took minutes with the benchmark's bar at 0%.
    Printed through ``console``, a bar or status on it is redrawn below them, not torn by a
    stray stderr write. Where the caller's own logging shows INFO already, nothing changes."""
    logger = logging.getLogger("fewrec")
    if logger.isEnabledFor(logging.INFO):
        yield
        return
    level, propagate = logger.level, logger.propagate
    handler = _ConsoleLines(console)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # each line once, here, not again by the root's handler
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


class _ConsoleLines(logging.Handler):
    """Warnings and progress lines (`PROGRESS`) through a rich console: other info is left out."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.setFormatter(NoteFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or getattr(record, PROGRESS, False):
            self.console.print(self.format(record), markup=False, highlight=False)
