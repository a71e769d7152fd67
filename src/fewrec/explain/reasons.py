"""Leave-one-out history contributions and short human reasons."""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewrec.data.dataset import field_levels, item_label, side_info_levels
from fewrec.errors import ConfigError, user_stacklevel
from fewrec.models.base import LIKE_SHARE, Recommender
from fewrec.models.query import QueryBatch
from fewrec.text.wishes import Titles, has_words, split_wishes

EXPLAIN_MAX_HISTORY = 10
EXPLAIN_MAX_CELLS = 200_000
"""History items times catalogue items that reasons may re-score (leave-one-out re-scores the
catalogue once per history item): a history of up to ``EXPLAIN_MAX_CELLS // n_items`` items
(118 on MovieLens-100K, 20 at 10,000 items, 10 at 100,000; never fewer than
`EXPLAIN_MAX_HISTORY`) is explained whole, a longer one through its most relevant items
(`explained_batch`). At a million cells the load test's 10,000-item p99 with reasons went from
9 to 41 ms (one client) and 52 to 177 ms (four); a user of 737 ratings took 8-18 s to explain
in the Python API before it was capped there too."""


def item_vectors(model: Recommender) -> np.ndarray | None:
    """Unit-norm item vectors of a model (for similar-item search, and the history items an
    explanation reads), or None if it has none.

    Few-shot models: their item representation (collaborative factors + text), without the
    constant column; content models: text embeddings; matrix factorisation: item factors.
    """
    x = getattr(model, "x_", None)
    if x is not None:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1] > 1 and np.allclose(x[:, -1], x[0, -1]):
            x = x[:, :-1]
    else:
        for attr in ("item_emb_", "item_factors_"):
            x = getattr(model, attr, None)
            if x is not None:
                break
    if x is None or np.asarray(x).shape[0] != model.n_items:
        return None
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def _co_rated(model: Recommender, items: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Per item of ``items``: its highest cosine, over the training users who rated them, with
    an item of ``top`` (0 for an item added since the fit)."""
    st = model.fitted
    by_item = getattr(st, "_by_item", None)  # items x users, built once per fit
    if by_item is None or by_item.shape[1] != st.train.shape[0]:
        by_item = st.train.T.tocsr().astype(np.float32)
        by_item.data[:] = 1.0
        setattr(st, "_by_item", by_item)  # noqa: B010  (a cache on the fit state, no field of it)
    n = by_item.shape[0]

    def rows(idx: np.ndarray) -> sp.csr_matrix:
        return by_item[np.minimum(idx, n - 1)].multiply((idx < n)[:, None]).tocsr()

    a, b = rows(items), rows(top)
    norms = np.sqrt(np.asarray(a.sum(axis=1)).ravel())[:, None] * np.sqrt(np.asarray(b.sum(axis=1)).ravel())
    shared = (a @ b.T).toarray()
    return np.divide(shared, norms, out=np.zeros_like(shared), where=norms > 0).max(axis=1)


def explained_batch(
    model: Recommender,
    batch: QueryBatch,
    row: int,
    top: np.ndarray,
    *,
    recent: Sequence[int] = (),
    vectors: np.ndarray | Callable[[], np.ndarray | None] | None = None,
    max_history: int | None = None,
    max_cells: int | None = None,
) -> QueryBatch:
    """Query ``row`` of ``batch`` as the one-query batch its reasons are worked out on: itself,
    or, for a history longer than ``max_history``, ``max_cells`` and the model's
    ``explain_history`` allow, one that keeps only the history items closest (in the item
    ``vectors``, by default `item_vectors`; or a function that gives them, called only for such
    a history) to the recommended ``top``, or else the ``recent``
    items (indices, latest first) and then the rest. Leave-one-out re-scores the catalogue
    once per history item: this bounds its cost, and a reason cites at most two items anyway.
    ``max_history`` and ``max_cells`` default to `EXPLAIN_MAX_HISTORY` and `EXPLAIN_MAX_CELLS`."""
    max_history = EXPLAIN_MAX_HISTORY if max_history is None else max_history
    max_cells = EXPLAIN_MAX_CELLS if max_cells is None else max_cells
    one = batch.rows(row, row + 1)
    h = one.history
    hist, vals = h.indices[: h.indptr[1]], h.data[: h.indptr[1]]
    cap = max(max_history, max_cells // max(h.shape[1], 1))
    if model.explain_history is not None:  # a model of slow scoring rows (the ensemble)
        cap = min(cap, max(max_history, model.explain_history))
    if len(hist) <= cap:
        return one
    # the recent items first (ties keep this order): only those in the history, as a dislike is
    # not there for a model that does not read ratings, and keeping one gave a KeyError (HTTP 500)
    in_hist = set(hist.tolist())
    latest = list(dict.fromkeys(int(i) for i in recent if int(i) in in_hist))
    chosen = set(latest)
    order = np.array(latest + [int(i) for i in hist if int(i) not in chosen], dtype=np.int64)
    if vectors is None:
        vectors = item_vectors(model)
    elif callable(vectors):
        vectors = vectors()
    if not len(top):
        keep = order[:cap]
    elif vectors is not None:
        relevance = (vectors[order] @ vectors[top].T).max(axis=1)
        keep = order[np.argsort(-relevance, kind="stable")[:cap]]
    else:  # (EASE, item-kNN): the items its users share most with the list's, by cosine
        keep = order[np.argsort(-_co_rated(model, order, top), kind="stable")[:cap]]
    pos = {int(i): v for i, v in zip(hist, vals, strict=True)}
    zeros = np.zeros(len(keep), int)
    sub = sp.csr_matrix((np.array([pos[int(i)] for i in keep], np.float32), (zeros, keep)), shape=h.shape)
    disliked = None
    if one.disliked is not None:  # those kept stay dislikes
        kept = sp.csr_matrix((np.ones(len(keep), np.float32), (zeros, keep)), shape=h.shape)
        disliked = one.disliked.multiply(kept).tocsr()
    return QueryBatch(np.full(1, -1), sub, one.texts, one.user_info, disliked)


@dataclass
class Reason:
    """Why one item was recommended.

    Attributes:
        item: external id of the recommended item.
        because: (history item id, contribution) pairs, largest first; contribution = score
            with the full history minus score without that item, less that history item's
            median drop over the catalogue (how much more it raised this item than items in
            general; not centred when only a model's candidates were scored).
        attributes: genres the item shares with the cited items.
        text: one short sentence for people.
    """

    item: str
    because: list[tuple[str, float]] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    text: str = ""


def history_contributions(
    model: Recommender, batch: QueryBatch, row: int, items: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For query ``row`` of ``batch``: its history item indices and a (n_history x len(items))
    matrix of score drops when each history item alone is removed."""
    found = _contributions(model, batch, row, items)
    return found.hist, found.drops


@dataclass
class _Found:
    """What `_contributions` measured for a query's items."""

    hist: np.ndarray
    """The history item indices."""
    drops: np.ndarray
    """(n_history x items) score drops when each history item alone is removed (centred when
    asked)."""
    raw: np.ndarray
    """The same drops, never centred."""
    whole: np.ndarray | None
    """Per item, what the whole history adds to its score (centred when asked); None without
    a history."""
    whole_raw: np.ndarray | None
    """The same, never centred."""
    gain: np.ndarray | None
    """Per item, what the free text adds (None when the model does not read it or there is none)."""
    gain_top: float
    """The largest gain the text gives any item of the catalogue (0 without text)."""


def _explained_query(
    model: Recommender, batch: QueryBatch, row: int
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The history items (and their values) whose removal `_contributions` tries, one at a
    time, and the free text it tries without (None: none the model scores apart)."""
    h = batch.history
    lo, hi = h.indptr[row], h.indptr[row + 1]
    hist, vals = h.indices[lo:hi], h.data[lo:hi]
    read = model.history_read(batch, row)
    if read is not None:  # the items it reads (an LM's sample): each variant leaves one of them out
        keep = np.isin(hist, read)
        hist, vals = hist[keep], vals[keep]
    text = batch.texts[row] if batch.texts is not None else None
    text = text if text and text.strip() and model.reads_text and model.scores_text_apart else None
    return hist, vals, text


def _variants(n: int, has_text: bool) -> list[np.ndarray]:
    """The history items each scored variant of a query keeps: row 0 the full query, row j+1
    without history item j, then (with text) without the text, then (with a history) without
    the history, text and side info kept."""
    variants = [np.arange(n) != (r - 1) for r in range(n + 1)] if n else [np.ones(0, bool)]
    if has_text:
        variants.append(np.ones(n, dtype=bool))
    if n:
        variants.append(np.zeros(n, dtype=bool))
    return variants


def _refuse_prompts(model: Recommender, n_columns: int, n: int, variants: int) -> None:
    limit = getattr(model.config, "max_prompts", None)
    if limit is not None and variants * n_columns > limit:
        raise ConfigError(
            f"explaining {n_columns} candidates over a history of {n} items takes "
            f"{variants * n_columns} prompts, over max_prompts={limit}. Fix: fewer candidates, "
            "recommend without explain, or raise max_prompts"
        )


def check_explain_prompts(model: Recommender, batch: QueryBatch, n_columns: int) -> None:
    """`ConfigError` when explaining ``n_columns`` candidates for a query of ``batch`` would take
    more prompts than the model's ``max_prompts`` (an LM model). `recommend` asks before it
    scores anything: it refused only after scoring the candidates, ~1 minute for 100 of them
    on CPU."""
    if getattr(model.config, "max_prompts", None) is None:
        return
    for row in range(len(batch)):
        hist, _, text = _explained_query(model, batch, row)
        if len(hist) or text is not None:  # (else nothing is scored: no reason to find)
            _refuse_prompts(model, n_columns, len(hist), len(_variants(len(hist), text is not None)))


def _contributions(
    model: Recommender,
    batch: QueryBatch,
    row: int,
    items: np.ndarray,
    *,
    centred: bool = False,
    columns: np.ndarray | None = None,
) -> _Found:
    """`history_contributions`, what the whole history adds, the score each item gains from
    the query's free text, and the largest gain the text gives any item of the catalogue: one
    `score_batch` call for all.

    ``centred``: each history item's (and the text's) drops less its median drop over the
    catalogue, i.e. how much more it raised this item than it raised items in general. A liked
    film whose vector shares what every item text shares (the "Title (year). Genres:" template)
    raises every item a little: with ``centred`` it is not cited for a horror film that the text
    asked for.

    ``columns``: score only these items (with ``items`` among them) by ``score_candidates``, as
    `recommend` does with candidates on a model that has it (an LM model cannot score a whole
    catalogue once per history item); medians are then over these items."""
    hist, vals, text = _explained_query(model, batch, row)
    if columns is not None:  # a few candidates have no median to centre on
        centred = False
    info = None if batch.user_info is None else batch.user_info.iloc[[row]]
    if not len(hist) and text is None:
        none = np.zeros((0, len(items)))
        return _Found(hist, none, none, None, None, None, 0.0)
    n = len(hist)
    variants = _variants(n, text is not None)
    rows, cols, data = [], [], []
    for r, keep in enumerate(variants):
        rows.extend([r] * int(keep.sum()))
        cols.extend(hist[keep])
        data.extend(vals[keep])
    m = len(variants)
    loo = sp.csr_matrix((np.asarray(data, np.float32), (rows, cols)), shape=(m, batch.history.shape[1]))
    disliked = None  # carried along, so a model's components still read a dislike as one
    if batch.disliked is not None:
        present = loo.copy()
        present.data[:] = 1.0  # (a rating of 0 is an entry too)
        disliked = present.multiply(sp.vstack([batch.disliked[row]] * m)).tocsr()
    # the user id is dropped on purpose: a known user's learned vector would hide the history
    users = np.full(m, -1)
    texts = None
    if text is not None:  # the row without the text is the one after the leave-one-out rows
        texts = [None if r == n + 1 else text for r in range(m)]
    infos = None if info is None else pd.concat([info] * m, ignore_index=True)
    variants_batch = QueryBatch(users, loo, texts, infos, disliked).for_model(model)
    if n:  # the leave-one-out rows keep the full query's size: a model with a part per history
        # size (the ensemble's K = 3 weights and re-ranker for 3 items of 4) had switched parts,
        # and the switch, not the item, made the score's change
        sizes = np.diff(variants_batch.history.indptr)
        sizes[1 : n + 1] = sizes[0]
        liked = None  # and for its components that read likes only, the full query's likes
        if variants_batch.disliked is not None:
            liked = np.diff(variants_batch.likes_only().history.indptr)
            liked[1 : n + 1] = liked[0]
        variants_batch = dataclasses.replace(variants_batch, sizes=sizes, liked_sizes=liked)
    if columns is None:
        full = model.score_batch(variants_batch).astype(np.float64)
    else:  # the others read as excluded (-inf in every row): left out of every median
        _refuse_prompts(model, len(columns), n, m)
        full = model._scores_of(variants_batch, columns)
    # an item the full query scores but a variant cannot (an ensemble's added item, once the
    # history that its text components read is gone) would rank last: its lowest finite score,
    # so that what raised it is a finite amount, not inf
    lost = np.isfinite(full[0])[None, :] & ~np.isfinite(full)
    if lost.any():
        finite = np.where(np.isfinite(full), full, np.inf)
        floor = finite.min(axis=1, keepdims=True)
        full = np.where(lost & np.isfinite(floor), floor, full)
    unscored_without_text = lost[n + 1] if text is not None else None
    empty_row = full[-1] if n else None
    if n:
        full = full[:-1]
    scores = full[:, items]
    gain = scores[0] - scores[-1] if text is not None else None
    if text is not None:
        scores = scores[:-1]
    # without its history the query is empty (whatever text or side info a model that does
    # not read them was given) and an ID-only model falls back to popularity, another scale:
    # what the history adds is then its whole score
    # (a model that falls back reads no side info there: fewshot's prior, which does, is not
    # what it falls back to, and a history's gain over popularity mixed the two scales)
    falls_back = text is None and model.empty_is_popularity
    whole_all = whole_raw = None
    if n:
        with np.errstate(invalid="ignore"):  # -inf - -inf: NaN, never "as a whole"
            whole_raw = full[0] - (0.0 if falls_back else empty_row)
            whole_all = whole_raw - _median_drop(whole_raw[None, :])[0] if centred else whole_raw
    if n == 1 and falls_back and not np.array_equal(scores[0], scores[1]):  # (popularity itself:
        scores[1] = 0.0  # the item adds nothing)
        centred = False
    with np.errstate(invalid="ignore"):  # inf - inf (an item scored +inf): NaN, no reason from it
        drops = scores[0][None, :] - scores[1:]
    raw = drops.copy()
    gain_top = 0.0
    if gain is not None:
        with np.errstate(invalid="ignore"):  # -inf - -inf (an excluded item): left out as NaN
            gains = full[0] - full[-1]
            if centred:
                shift = _median_drop(gains[None, :])[0]
                gain, gains = gain - shift, gains - shift
        ok = np.isfinite(gains)
        if unscored_without_text is not None:
            ok &= ~unscored_without_text
        finite = gains[ok]
        gain_top = float(finite.max()) if len(finite) else 0.0
    if centred:
        with np.errstate(invalid="ignore"):
            drops -= _median_drop(full[0][None, :] - full[1 : n + 1])[:, None]
    whole = None if whole_all is None else whole_all[items]
    return _Found(hist, drops, raw, whole, None if whole_raw is None else whole_raw[items], gain, gain_top)


def _median_drop(drops: np.ndarray) -> np.ndarray:
    """Each row's median over its finite entries (0 where none is finite)."""
    finite = np.where(np.isfinite(drops), drops, np.nan)
    out = np.zeros(len(drops))
    ok = np.isfinite(finite).any(axis=1)
    out[ok] = np.nanmedian(finite[ok], axis=1)
    return out


def label_of(model: Recommender, idx: int) -> str:
    return reading_order(item_label(model.fitted.item_info, idx, model.fitted.items.id(idx)))


#: Articles a catalogue's titles put last for sorting ("Godfather, The"; MovieLens' "Postino, Il").
_ARTICLES = "The|A|An|Il|La|Le|Les|L'|El|Los|Las|Das|Der|Die|Het"
_INVERTED = re.compile(rf"^(?P<title>.+?), (?P<article>{_ARTICLES})(?P<rest>(?: \([^()]*\))*)$")


def and_words(words: list[str]) -> str:
    """ "A", "A and B", "A, B and C"."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def or_words(words: list[str]) -> str:
    """ "A", "A or B", "A, B or C"."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def reading_order(label: str) -> str:
    """A label as it is read in a sentence: "Godfather, The (1972)" as "The Godfather (1972)",
    "Boat, The (Das Boot) (1981)" as "The Boat (Das Boot) (1981)"."""
    found = _INVERTED.match(label)
    if found is None:
        return label
    article = found["article"]
    joint = "" if article.endswith("'") else " "
    return f"{article}{joint}{found['title']}{found['rest']}"


def _genres(model: Recommender, idx: int) -> list[str]:
    info = model.fitted.item_info
    if "genres" not in info.columns:
        return []
    g = info["genres"].iloc[idx]
    return [str(x) for x in g] if isinstance(g, list | tuple | np.ndarray) else []


def _reads_side_info(model: Recommender, batch: QueryBatch, row: int) -> bool:
    """Whether query ``row`` gives a side-info field the model reads (a model that reads none
    said "popular with people like you" while its note said the side info was ignored)."""
    info = batch.user_info
    known = field_levels(model.side_levels)
    if info is None or not known:
        return False
    if model.empty_is_popularity and model.empty_rows(batch.rows(row, row + 1))[0]:
        return False  # (fewshot ranks such a query by popularity, whatever its side info)
    values = info.iloc[row]
    for f, levels in known.items():
        if f not in values.index or np.ndim(values[f]) != 0 or pd.isna(values[f]):
            continue
        # a value the model never saw ("age": "old") is read as unknown: no people like you
        if side_info_levels(pd.Series([values[f]]), known=levels)[0] in levels:
            return True
    return False


def explain_recommendations(
    model: Recommender,
    batch: QueryBatch,
    row: int,
    items: np.ndarray,
    *,
    max_items: int = 2,
    min_share: float = 0.3,
    has_text: bool | None = None,
    columns: np.ndarray | None = None,
) -> list[Reason]:
    """Reasons for recommending ``items`` (internal indices) to query ``row`` of ``batch``.

    A reason cites the history items whose removal lowers the item's score most (those within
    ``min_share`` of the strongest), and the free text when it raised the score as much; an item
    nothing in the query raised is "popular" (what the model ranks without the query; "the
    language model's pick" for an LM), and "fits your history as a whole" needs a liked item.
    ``has_text``: deprecated and ignored (whether the query has text is read from the batch);
    passing it warns.
    ``columns``: the items scored (the candidates of `recommend`), see `_contributions`.
    """
    if has_text is not None:
        warnings.warn(
            "explain_recommendations(has_text=...) is ignored (the batch says whether the query has "
            "text) and will be removed. Fix: leave it out.",
            DeprecationWarning,
            stacklevel=user_stacklevel(),
        )
    st = model.fitted
    if model.fixed_reason is not None:  # a baseline whose ranking does not follow the query
        return [Reason(st.items.id(int(i)), [], [], model.fixed_reason) for i in items]
    found = _contributions(model, batch, row, items, centred=True, columns=columns)
    hist, contrib, text_gain, text_top = found.hist, found.drops, found.gain, found.gain_top
    lo, hi = batch.history.indptr[row], batch.history.indptr[row + 1]
    rating = dict(zip(batch.history.indices[lo:hi], batch.history.data[lo:hi], strict=True))
    # the model's own line where it has one (an LM told a 4 of 5 was "Unpreference" at 0.9)
    liked_above = st.like_cut(getattr(model.config, "like_threshold", LIKE_SHARE))
    text = batch.texts[row] if batch.texts is not None else None
    worded = has_words(text) and model.reads_text and not _unreadable(model, text)
    # a text that only says what to avoid ("no horror") asked for nothing an item could match
    titles = model.negation_titles() if worded else None
    asks = worded and has_words(split_wishes(text or "", titles).wants)
    text_part = "matches what you told us you like" if asks else "avoids what you told us you dislike"
    # the catalogue's genres the text asks for: an item of none of them is near the text, it does
    # not match it ("animated movies for kids" -> Star Wars had "Matches what you told us you like")
    asked_genres: list[str] = []
    if asks:  # (a film the text names, "I loved True Romance", asks for no genre)
        named_film = _genre_titles(model).hide(text or "")[0]
        asked_genres = _genres_named(_catalogue_genres(model), named_film, titles)
    popular = "Popular with people like you." if _reads_side_info(model, batch, row) else "Popular right now."
    popular = model.unraised_reason or popular
    popular_at = _popular_at(st.popularity)
    if model.explains_candidates_only and len(hist):  # an LM ranks by no popularity
        popular = "The language model's pick for you; no one item of your history raised it."
    # never a disliked item: a known user's low training ratings stay in the history of models
    # that do not read ratings, and "Because you disliked X" is no reason to recommend anything
    citable = np.array([rating.get(h, st.like_rating) > st.dislike_at for h in hist], dtype=bool)
    # "fits your history as a whole" needs a history of more than dislikes (one of only dislikes,
    # which a model that reads ratings still scores, is no history the user would recognise)
    liked_any = bool(citable.any())
    reasons = []
    for j, item in enumerate(items):
        if int(item) in rating:  # (exclude_seen=False) its own rating, not another item's
            kind = "liked" if rating[int(item)] > liked_above else "rated"
            reasons.append(Reason(st.items.id(int(item)), [], [], f"You {kind} it before."))
            continue
        cited: list[tuple[str, float]] = []
        top = 0.0
        if len(hist):
            # cite citable items that raised the score (more than they raised items in general,
            # and at all), and only those close to the strongest one
            order = np.argsort(-contrib[:, j], kind="stable")
            order = order[citable[order] & (hist[order] != item)]  # (exclude_seen=False: not itself)
            top = contrib[order[0], j] if len(order) else 0.0
            cited = [
                (st.items.id(hist[k]), float(contrib[k, j]))
                for k in order[:max_items]
                if contrib[k, j] > 0 and found.raw[k, j] > 0 and contrib[k, j] >= min_share * top
            ]
        if text_gain is not None:  # the text raised it as much as its history did, and it is
            # among what the text raises most (an item the list holds for its popularity is not)
            told = worded and text_gain[j] > 0 and text_gain[j] >= min_share * max(top, 0.0, text_top)
        else:  # what the text adds cannot be measured apart (the ensemble): only if nothing else
            told = worded and not cited
        if cited and told and text_gain is not None and text_gain[j] > top:  # the text did more
            cited = [c for c in cited if c[1] >= min_share * text_gain[j]]
        item_genres = _genres(model, int(item))
        idx = [int(st.items.lookup([hid])[0]) for hid, _ in cited]
        # the genres the item shares with every film cited, else with the strongest one, named:
        # pooled, "Because you liked Star Wars and Toy Story; it is Sci-Fi and War too" gave Toy
        # Story Star Wars' genres
        of_each = [set(_genres(model, i)) for i in idx]
        attrs = [g for g in item_genres if of_each and all(g in gs for gs in of_each)]
        like_first = ""
        for i, gs in zip(idx, of_each, strict=True) if not attrs and len(idx) > 1 else ():
            attrs = [g for g in item_genres if g in gs]
            if attrs:  # (the strongest film that shares one)
                like_first = f", like {label_of(model, i)}"
                break
        if cited:
            # (a disliked item is never cited); the strongest one's kind first, as `because` has it
            # ("liked X and rated Y" where the rated Y had done more)
            said: dict[str, list[str]] = {}
            for i in idx:
                kind = "liked" if rating.get(i, st.like_rating) > liked_above else "rated"
                said.setdefault(kind, []).append(label_of(model, i))
            parts = [f"{kind} {' and '.join(labels)}" for kind, labels in said.items()]
            sentence = f"Because you {' and '.join(parts)}"
            # the genres the item shares with them (a bracket after the year's read as a second title)
            if attrs:
                sentence += f"; it is {and_words(attrs)}{like_first or ' too'}"
            # (an item without genres is not known to lack them: no "close to")
            near = (
                asks and bool(asked_genres) and bool(item_genres) and not set(item_genres) & set(asked_genres)
            )
            told_part = "is close to what you told us you like" if near else text_part
            sentence += f", and it {told_part}." if told else "."
        elif told and asks:
            named = [g for g in item_genres if g in asked_genres]
            if named:
                sentence = f"Matches what you told us you like ({', '.join(named)})."
            elif asked_genres and item_genres:  # (without genres it is not known to lack them)
                sentence = f"Close to what you told us you like, though not {or_words(asked_genres)}."
            else:
                sentence = "Matches what you told us you like."
        elif told:
            sentence = "Avoids what you told us you dislike."
        elif (
            liked_any
            and found.whole is not None
            and found.whole_raw is not None  # (None together with whole: without a history)
            and found.whole[j] > 0
            and found.whole_raw[j] > 0
        ):
            sentence = "Fits your history as a whole."
        elif st.popularity[int(item)] == 0 and not model.explains_candidates_only:
            # no one has interacted with it: no "Popular" (a text model gives such an item the
            # popularity its text predicts, which can bring it up for a query of nothing)
            sentence = NEW_ITEM_TEXT if model.reads_item_text else NEW_ITEM
        elif popular.startswith("Popular") and st.popularity[int(item)] < popular_at:
            # (a film of 2 ratings, among a few candidates or far down a long list, was
            # "Popular right now")
            sentence = UNRAISED
        else:
            sentence = popular
        reasons.append(Reason(st.items.id(int(item)), cited, attrs, sentence))
    return reasons


def _unreadable(model: Recommender, text: str | None) -> bool:
    """Whether every text encoder of ``model`` reads English only and ``text`` is largely in
    another script: the query's note says the encoder says little of it, and reasons then do
    not credit it ("Matches what you told us you like" for a Chinese sentence)."""
    from fewrec.text.encoder import non_latin, resolve_model

    encoders = [resolve_model(e) for e in model.text_encoders]
    return bool(text) and bool(encoders) and all(s.english_only for s in encoders) and non_latin(text or "")


#: The share of the catalogue's items with interactions that "Popular" may be said of.
POPULAR_SHARE = 0.1
#: The reason for an item nothing in the query raised that is not among the most popular.
UNRAISED = "Nothing you told us points to it in particular; it ranks here among the rest."


def _popular_at(popularity: np.ndarray) -> float:
    """The least popularity of the `POPULAR_SHARE` most popular items with interactions."""
    some = np.asarray(popularity)[np.asarray(popularity) > 0]
    return float(np.quantile(some, 1 - POPULAR_SHARE)) if len(some) else np.inf


#: The reason for an item no one has interacted with that nothing in the query raised.
NEW_ITEM = "New here: no one has tried it yet."
NEW_ITEM_TEXT = "New here: no one has tried it yet, and it reads like the items people choose most."

#: Other words people use for a genre (keyed as `_key` writes genre names), beyond its name and
#: plural: "comedies" names Comedy, "cartoons" Animation, "science fiction" Sci-Fi.
GENRE_WORDS = {
    "scifi": ("science fiction", "sf"),
    "animation": ("animated", "cartoon", "cartoons", "anime"),
    "childrens": ("kids", "kid", "children", "child", "family"),
    "romance": ("romantic",),
    "horror": ("scary",),
    "filmnoir": ("noir",),
    "comedy": ("funny",),
    "western": ("cowboy", "cowboys"),
}
#: Genres whose plural is not how people name them: "Star Wars" does not name War.
NO_PLURAL = frozenset({"war"})


def _key(word: str) -> str:
    return re.sub(r"[^0-9a-z]", "", word.casefold())


def _catalogue_genres(model: Recommender) -> list[str]:
    """Every genre of the catalogue's items, in order of first appearance (kept until the
    catalogue changes)."""

    def build() -> list[str]:
        info = model.fitted.item_info
        found: dict[str, None] = {}
        for g in info["genres"] if "genres" in info.columns else ():
            if isinstance(g, list | tuple | np.ndarray):
                found.update(dict.fromkeys(str(x) for x in g))
        return list(found)

    return model._per_catalogue("catalogue_genres_", build)


def _genre_forms(genre: str) -> set[str]:
    """The keys (`_key`) of the words that name ``genre``: its name, plurals, other words."""
    k = _key(genre)
    out = {k, *(_key(w) for w in GENRE_WORDS.get(k, ()))}
    if k not in NO_PLURAL:
        out |= {k + "s", k + "es", k[:-1] + "ies" if k.endswith("y") else k + "s"}
    return out


def _said(text: str) -> set[str]:
    """The keys of ``text``'s words and of its pairs of words ("science fiction")."""
    words = [w for w in (_key(w) for w in re.split(r"[\s,;.!?/()-]+", text)) if w]
    return set(words) | {a + b for a, b in zip(words, words[1:], strict=False)}


def _genres_named(genres: list[str], text: str, titles: Titles | None = None) -> list[str]:
    """The genres ``text`` asks for in words ("sci-fi films" and "science fiction" name Sci-Fi,
    "popular" names no Pop, "no horror" names no Horror, "Star Wars" no War): only those may be
    said to match what the user told us."""
    said = _said(split_wishes(text, titles).wants)
    return [g for g in genres if _key(g) and _genre_forms(g) & said]


def _names_a_genre(form: str, keys: frozenset[str]) -> bool:
    """Whether the title ``form`` holds a word naming one of the genres (``keys``)."""
    return bool(_said(form) & keys)


def _genre_titles(model: Recommender) -> Titles:
    """The catalogue's titles that hold a word naming a genre ("Children of the Corn", "True
    Romance", "Little Shop of Horrors"): a text that names such a film asks for no genre (the
    horror film's reason was "though not Children's")."""

    def build() -> Titles:
        keys = frozenset().union(*(_genre_forms(g) for g in _catalogue_genres(model) if _key(g)))
        # (a partial, not a lambda: the model keeps it, and a model must pickle, for Ray too)
        return Titles(
            model.fitted.item_info.get("title", ()), keep=functools.partial(_names_a_genre, keys=keys)
        )

    return model._per_catalogue("genre_titles_", build)
