"""Another dataset's users on this catalogue: films matched by title and year.

Few-shot data is short of users, and other collections of ratings of the same films exist: the
MovieLens-1M users rated most of MovieLens-100K's films two years later. `onto_catalogue`
puts a source dataset's users, with their ratings of the films the target catalogue also has,
on the target's item vocabulary, so that a model can learn from them (as a prior, a pretraining
set) and serve the target's users.

Films are matched on a normalised title (case, accents, punctuation and a leading or trailing
article such as "Usual Suspects, The" ignored) and the same year; a film left over is matched
when exactly one left-over film of that year shares a name with it, a name being the title
without its parenthesised parts or one of them ("Boat, The (Das Boot)" and "Boot, Das"), or
starting or ending with it ("Star Wars" and "Star Wars: Episode IV - A New Hope"). Each target
film takes at most one source film; a film the target lists twice, its most rated entry.
"""

from __future__ import annotations

import logging
import re
import unicodedata

import numpy as np
import pandas as pd

from fewrec.data.dataset import Dataset, Vocabulary
from fewrec.errors import DataError

log = logging.getLogger(__name__)

_ARTICLES = "the|a|an|les|la|le|l'|il|el|das|der|die|den|det"
_TRAILING = re.compile(rf",\s*({_ARTICLES})$")
_LEADING = re.compile(rf"^({_ARTICLES}) ")
MIN_PARTIAL = 5
"""Shortest normalised title matched by its start or end (shorter ones are too ambiguous)."""


def normalise_title(title: str) -> str:
    """Lower case, accents and punctuation dropped, a leading or trailing article removed."""
    t = unicodedata.normalize("NFKD", str(title)).encode("ascii", "ignore").decode().lower().strip()
    t = _LEADING.sub("", _TRAILING.sub("", t))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", t).split())


def _year(value: object) -> str:
    text = str(value).strip()
    return text[:-2] if text.endswith(".0") else text


def _keys(data: Dataset, role: str) -> list[tuple[str, str]]:
    info = data.item_info
    missing = [c for c in ("title", "year") if c not in info.columns]
    if missing:
        raise DataError(
            f"the {role} dataset {data.name!r} has no item {' or '.join(missing)} to match films by",
            fix="give its items 'title' and 'year' columns",
        )
    return [(normalise_title(t), _year(y)) for t, y in zip(info["title"], info["year"], strict=True)]


def _names(title: str) -> set[str]:
    """A title's normalised names: itself without its parenthesised parts, and each of those
    ("Boat, The (Das Boot)", "Queen Margot (Reine Margot, La)", "a.k.a. ..." aliases)."""
    text = str(title)
    parts = [re.sub(r"\([^)]*\)", " ", text), *re.findall(r"\(([^)]*)\)", text)]
    parts = [re.sub(r"^\s*a\.?k\.?a\.?\s+", "", p) for p in parts]
    return {n for n in map(normalise_title, parts) if n}


def match_items(source: Dataset, target: Dataset) -> np.ndarray:
    """For each source item, the index of the same film in ``target``, or -1."""
    src, tgt = _keys(source, "source"), _keys(target, "target")
    out = np.full(len(src), -1, dtype=np.int64)
    counts = target.item_counts()
    first: dict[tuple[str, str], int] = {}
    for j in np.argsort(-counts, kind="stable"):  # a film listed twice: its most rated entry
        if tgt[j][0]:
            first.setdefault(tgt[j], int(j))
    taken: set[int] = set()
    for i, key in enumerate(src):
        j = first.get(key)
        if j is not None and j not in taken:
            out[i] = j
            taken.add(j)
    left: dict[str, list[int]] = {}
    for i in np.flatnonzero(out < 0):
        left.setdefault(src[i][1], []).append(int(i))
    src_titles, tgt_titles = source.item_info["title"], target.item_info["title"]
    for j, (title, year) in enumerate(tgt):
        if j in taken or first.get((title, year)) != j:
            continue
        names = _names(tgt_titles.iloc[j])
        near = [
            i
            for i in left.get(year, [])
            if out[i] < 0 and any(_same(a, b) for a in _names(src_titles.iloc[i]) for b in names)
        ]
        if len(near) == 1:
            out[near[0]] = j
            taken.add(j)
    return out


def _same(a: str, b: str) -> bool:
    """The same name, or one is the other's first or last whole words (long enough to tell)."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= MIN_PARTIAL and (long.startswith(short + " ") or long.endswith(" " + short))


def onto_catalogue(source: Dataset, target: Dataset) -> Dataset:
    """``source``'s users and their interactions with the films ``target`` also has, over
    ``target``'s item vocabulary and item info (the other films' interactions are dropped; how
    many is logged). The users, their side info and the ratings stay the source's."""
    match = match_items(source, target)
    inter = source.interactions
    mapped = match[inter["item"].to_numpy()]
    keep = mapped >= 0
    if not keep.any():
        raise DataError(
            f"no film of {source.name!r} matches one of {target.name!r} by title and year",
            fix="map the items yourself, or use datasets of the same films",
        )
    log.info(
        "%s onto %s: %d of %d films matched, %d of %d interactions kept",
        source.name,
        target.name,
        int((match >= 0).sum()),
        source.n_items,
        int(keep.sum()),
        len(inter),
    )
    return Dataset(
        interactions=inter[keep].assign(item=mapped[keep]).reset_index(drop=True),
        users=source.users,
        items=target.items,
        item_info=target.item_info,
        user_info=source.user_info,
        name=f"{source.name} onto {target.name}",
        item_template=target.item_template,
    )


def pool_users(first: Dataset, second: Dataset, prefix: str = "other:") -> Dataset:
    """One dataset with both datasets' users (``second``'s ids prefixed) over their common
    catalogue; user side info is concatenated (a field one of them lacks is missing there)."""
    if first.items != second.items:
        raise DataError("pool_users needs datasets over the same items", fix="use onto_catalogue first")
    moved = second.interactions.assign(user=second.interactions["user"].to_numpy() + first.n_users)
    return Dataset(
        interactions=pd.concat([first.interactions, moved], ignore_index=True),
        users=Vocabulary([*first.users.ids, *(prefix + u for u in second.users.ids)]),
        items=first.items,
        item_info=first.item_info,
        user_info=pd.concat([first.user_info, second.user_info], ignore_index=True),
        name=f"{first.name} + {second.name}",
        item_template=first.item_template,
    )
