"""Another dataset's users on this catalogue: films matched by title and year.

Few-shot data is short of users, and other collections of ratings of the same films exist: the
MovieLens-1M users rated most of MovieLens-100K's films two years later. `onto_catalogue`
puts a source dataset's users, with their ratings of the films the target catalogue also has,
on the target's item vocabulary, so that a model can learn from them (as a prior, a pretraining
set) and serve the target's users.

Films are matched in rounds, each on films the earlier rounds left, and a pair is taken only
when neither film has another candidate in that round: (1) the same title and year; (2) the
same normalised title (case, accents, punctuation, spaces and an article such as "Usual
Suspects, The" ignored) and year; (3) the same year and a shared name, a name being the title
without its parenthesised parts or one of them ("Boat, The (Das Boot)" and "Boot, Das"), or
one name the other's first or last words ("Star Wars" and "Star Wars: Episode IV - A New
Hope"); (4) the same normalised title a year apart. A film the target lists twice takes the
match on its most rated entry; one the source lists twice maps both entries to it (round 1);
a film without a title or year is never matched.
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

_TRAILING = re.compile(r",\s*(the|a|an|les|la|le|l'|il|el|los|las|das|der|die|den|det)$")
_LEADING = re.compile(r"^(the|a|an) ")
_FOREIGN = re.compile(r"^(les|la|le|l|il|el|los|las|das|der|die|den|det) ")
MIN_PARTIAL = 5
"""Shortest normalised name matched by its first or last words (shorter ones are too ambiguous)."""


def normalise_title(title: object) -> str:
    """Lower case, accents, apostrophes and other punctuation dropped, an English leading or a
    trailing article ("Blechtrommel, Die") removed; "" for a missing title."""
    if title is None or (isinstance(title, float) and np.isnan(title)):
        return ""
    t = unicodedata.normalize("NFKD", str(title)).encode("ascii", "ignore").decode().lower().strip()
    t = _LEADING.sub("", _TRAILING.sub("", t)).replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", t).split())


def _year(value: object) -> int | None:
    try:
        return int(float(str(value).strip()))
    except (ValueError, OverflowError):
        return None


def _films(data: Dataset, role: str) -> pd.DataFrame:
    """Per item: its raw title, normalised title, year (None when unknown) and names."""
    info = data.item_info
    missing = [c for c in ("title", "year") if c not in info.columns]
    if missing:
        raise DataError(
            f"the {role} dataset {data.name!r} has no item {' or '.join(missing)} to match films by",
            fix="give its items 'title' and 'year' columns",
        )
    norm = [normalise_title(t) for t in info["title"]]
    raw = [str(t).strip().lower() if n else "" for t, n in zip(info["title"], norm, strict=True)]
    return pd.DataFrame(
        {
            "raw": raw,
            "norm": [n.replace(" ", "") for n in norm],
            "year": pd.Series([_year(y) for y in info["year"]], dtype=object),  # None stays None
            "names": [_names(t) if r else set() for t, r in zip(info["title"], raw, strict=True)],
        }
    )


def _names(title: object) -> set[str]:
    """A title's normalised names: itself without its parenthesised parts, and each of those
    ("Boat, The (Das Boot)", "Queen Margot (Reine Margot, La)", "a.k.a. ..." aliases)."""
    text = str(title)
    parts = [re.sub(r"\([^)]*\)", " ", text), *re.findall(r"\(([^)]*)\)", text)]
    parts = [re.sub(r"^\s*a\.?k\.?a\.?\s+", "", p) for p in parts]
    names = {n for n in map(normalise_title, parts) if n}
    return names | {_FOREIGN.sub("", n) for n in names}  # "Das Boot" is also "Boot, Das"


def _shares_a_name(a: set[str], b: set[str]) -> bool:
    """Some name of one is a name of the other, or its first or last words (long enough)."""
    for x in a:
        for y in b:
            short, long = sorted((x, y), key=len)
            if short == long or (
                len(short) >= MIN_PARTIAL and (long.startswith(short + " ") or long.endswith(" " + short))
            ):
                return True
    return False


def match_items(source: Dataset, target: Dataset) -> np.ndarray:
    """For each source item, the index of the same film in ``target``, or -1 (see the module)."""
    src, tgt = _films(source, "source"), _films(target, "target")
    # a film the target lists twice (the same title and year): only its most rated entry
    order = np.argsort(-target.item_counts(), kind="stable")
    entry = ~tgt.iloc[order].duplicated(["raw", "year"]).to_numpy()
    open_t = {int(j) for j in order[entry] if tgt.at[j, "raw"] and tgt.at[j, "year"] is not None}
    open_s = {i for i in range(len(src)) if src.at[i, "raw"] and src.at[i, "year"] is not None}
    out = np.full(len(src), -1, dtype=np.int64)

    def by_key(key, source_keys=None, listed_twice: bool = False) -> None:  # equal keys
        pairs: dict = {}
        for side, films, pool, keys in ((0, src, open_s, source_keys or key), (1, tgt, open_t, key)):
            for i in pool:
                for k in keys(films.iloc[i]):
                    pairs.setdefault(k, ([], []))[side].append(i)
        ok = [(s, t[0]) for s, t in pairs.values() if len(t) == 1 and (len(s) == 1 or listed_twice)]
        take([(i, j) for s, j in ok for i in s], listed_twice)

    def take(pairs: list[tuple[int, int]], listed_twice: bool = False) -> None:
        """Match the pairs whose films have no other pair (a target film may take several
        source entries of itself when ``listed_twice``)."""
        n_s = pd.Series([i for i, _ in pairs]).value_counts()
        n_t = pd.Series([j for _, j in pairs]).value_counts()
        for i, j in pairs:
            if n_s[i] == 1 and (n_t[j] == 1 or listed_twice) and i in open_s and j in open_t:
                out[i] = j
                open_s.discard(i)
        open_t.difference_update(out[out >= 0].tolist())

    by_key(lambda f: [(f.raw, f.year)], listed_twice=True)  # a film the source lists twice: both
    by_key(lambda f: [(f.norm, f.year)])
    years: dict[int, list[int]] = {}
    for i in open_s:
        years.setdefault(src.at[i, "year"], []).append(i)
    take(
        [
            (i, j)
            for j in sorted(open_t)
            for i in years.get(tgt.at[j, "year"], [])
            if _shares_a_name(src.at[i, "names"], tgt.at[j, "names"])
        ]
    )
    by_key(lambda f: [(f.norm, f.year)], lambda f: [(f.norm, f.year - 1), (f.norm, f.year + 1)])
    return out


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
        interactions=inter[keep].assign(item=mapped[keep].astype(inter["item"].dtype)).reset_index(drop=True),
        users=source.users,
        items=target.items,
        item_info=target.item_info,
        user_info=source.user_info,
        name=f"{source.name} onto {target.name}",
        item_template=target.item_template,
        timed=source.timed,
        counts=source.counts,
        genre_sep=target.genre_sep,
    )


def pool_users(
    first: Dataset, second: Dataset, prefix: str = "other:", *, side_info: bool = False
) -> Dataset:
    """One dataset with both datasets' users (``second``'s ids prefixed) over their common
    catalogue. ``second``'s users come without side info unless ``side_info``: two datasets
    seldom code a field alike (MovieLens-1M's ages are bands, its occupations other names)."""
    if first.items != second.items:
        raise DataError("pool_users needs datasets over the same items", fix="use onto_catalogue first")
    ids = [prefix + u for u in second.users.ids]
    if not set(ids).isdisjoint(first.users.ids):
        raise DataError(
            f"user ids of the two datasets clash with prefix {prefix!r}", fix="use another prefix"
        )
    other = second.user_info if side_info else first.user_info.iloc[:0].reindex(range(second.n_users))
    moved = second.interactions.assign(user=second.interactions["user"].to_numpy() + first.n_users)
    return Dataset(
        interactions=pd.concat([first.interactions, moved], ignore_index=True),
        users=Vocabulary([*first.users.ids, *ids]),
        items=first.items,
        item_info=first.item_info,
        user_info=pd.concat([first.user_info, other], ignore_index=True),
        name=f"{first.name} + {second.name}",
        item_template=first.item_template,
        timed=first.timed and second.timed,
        counts=first.counts or second.counts,
        genre_sep=first.genre_sep,
    )
