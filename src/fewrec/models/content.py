"""Content (text) recommender: items ranked by similarity to the user's history and/or text.

Items are embedded once from their text (title, year, genres...) with the packaged sentence
encoder. A user profile is the rating-weighted mean of the history's item vectors (disliked
items left out: `rating_weights`) plus the embedding of whatever the user wrote, so a user with zero
interactions but one sentence ("I love space adventure films like Interstellar") gets
personalised results, and items nobody interacted with rank like any other.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field, model_validator

from fewrec.data.dataset import Dataset
from fewrec.errors import ConfigError, DataError, user_stacklevel
from fewrec.models.base import LIKE_SHARE, ModelConfig, Recommender, register, standardise
from fewrec.models.query import Query, QueryBatch
from fewrec.text.wishes import Titles, has_words, split_wishes


class TextModelConfig(ModelConfig):
    encoder: str = "all-MiniLM-L6-v2"
    """Packaged sentence encoder (see `fewrec.text.encoder`): ``"all-MiniLM-L6-v2"`` (English) or
    ``"multilingual"`` (16 languages; texts in different languages match)."""
    backend: str | None = None
    """The encoder's backend; None: the model's own (see `fewrec.text.encoder.TextEncoder`)."""
    template: str | None = None
    """`str.format` template over item fields; None: the dataset's own template."""

    @model_validator(mode="after")
    def _known_encoder(self) -> TextModelConfig:
        from fewrec.text.encoder import resolve

        try:
            resolve(self.encoder, self.backend)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


def check_saved_width(emb: np.ndarray, config: TextModelConfig) -> None:
    """That saved item vectors are as wide as ``config``'s encoder gives, or a DataError: with the
    encoder's name edited in config.json, a model loaded and then failed on its first text query
    with a raw shape error."""
    from fewrec.text.encoder import resolve_model

    dim = resolve_model(config.encoder).dim
    if emb.ndim != 2 or emb.shape[1] != dim:
        raise DataError(
            f"the saved item vectors have {emb.shape[-1]} dimensions, and the encoder config.json names, "
            f"{config.encoder}, gives {dim}: the encoder was changed after the model was saved",
            fix="put back the encoder it was trained with, or train it again with this one",
        )


class ContentConfig(TextModelConfig):
    text_weight: float = Field(1.0, ge=0)
    """Weight of the user's free text against the mean history vector."""
    popularity_weight: float = Field(0.05, ge=0)
    """Small popularity prior that breaks near-ties among similar items. An item no one has
    interacted with gets the popularity its text predicts (`text_popularity`)."""


def warn_bare_items(ids: Sequence[str], texts: Sequence[str], reader: str) -> None:
    """Warn when items have no text but their ids (``texts[i] == ids[i]``), which ``reader``
    (a text model, an LM's prompts) then reads as if it were their text."""
    bare = [i for i, t in zip(ids, texts, strict=True) if t == str(i)]
    if texts and len(bare) == len(texts):
        warnings.warn(
            f"the items have no text (no item table, or no text field in it), so {reader} reads "
            "their ids; give item text (Python: load_interactions(items=...); CLI: --items)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    elif bare:  # half a catalogue read as ids had passed without a word
        warnings.warn(
            f"{len(bare)} of {len(texts)} items have no text (every text field blank, or no row in "
            f"the item table), so {reader} reads their ids: {bare[:3]}; fill their text fields",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def embed_items(data: Dataset, config: TextModelConfig) -> np.ndarray:
    """Unit-norm text embeddings of every catalogue item (cached on disk by the encoder); a
    warning when the encoder cannot read the texts' script, or reads only the start of many."""

    texts = data.item_texts(config.template)
    warn_bare_items(data.items.ids, texts, "a text model")
    return encode_item_texts(texts, config)


def encode_item_texts(texts: list[str], config: TextModelConfig) -> np.ndarray:
    """The encoder's vectors of item texts, with a warning when it cannot read their script or
    reads only the start of many of them (items added later too: a 1.2M-character text was
    taken without a word)."""
    from fewrec.text.encoder import get_encoder, length_problem, script_problem

    for problem in (script_problem(texts, config.encoder), length_problem(texts, config.encoder)):
        if problem:
            warnings.warn(problem, UserWarning, stacklevel=user_stacklevel())
    return get_encoder(config.encoder, config.backend).encode(texts)


def embed_texts(
    texts: list[str | None], config: TextModelConfig, dim: int, titles: Titles | None = None
) -> np.ndarray:
    """Vectors of user texts, what they ask for minus what they ask to avoid (`wish_vectors`);
    zero vectors where a query has no text. New texts go to the disk cache unless
    `fewrec.text.encoder.keep_query_texts` is off (as in the service)."""
    from fewrec.text.encoder import get_encoder, keep_query_texts

    encoder, keep = get_encoder(config.encoder, config.backend), keep_query_texts()
    return wish_vectors(texts, lambda plain: encoder.encode(plain, keep=keep), dim, titles)


def wish_vectors(
    texts: Sequence[str | None],
    embed: Callable[[list[str]], np.ndarray],
    dim: int,
    titles: Titles | None = None,
) -> np.ndarray:
    """One vector per text: the embedding of what it asks for minus that of what it asks to
    avoid (`fewrec.text.wishes`: "comedies but no romance" pushes romances down instead of
    matching them); a text without a negation is embedded whole, as it is. Zero vectors where
    there is no text, or no word in it (only symbols or emoji). ``embed`` embeds a list of plain
    texts; ``titles``: the catalogue's titles that hold a negation (`Recommender.negation_titles`)."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    wishes = {i: split_wishes(t, titles) for i, t in enumerate(texts) if has_words(t)}
    parts = [(i, w.wants, 1.0) for i, w in wishes.items() if w.wants.strip()]
    parts += [(i, w.avoids, -1.0) for i, w in wishes.items() if w.avoids.strip()]
    if parts:
        vectors = embed([text for _, text, _ in parts])
        for (i, _, sign), v in zip(parts, vectors, strict=True):
            out[i] += sign * v
    return out


def rating_weights(history: sp.csr_matrix, like_rating: float, dislike_at: float) -> sp.csr_matrix:
    """Weights of a profile's history items. On a star scale r / like - 0.6, so a 5-star item
    weighs twice a 4-star one (0.4 against 0.2) and a 3-star one (or a 2.5) nothing; on
    implicit or count data (``dislike_at`` 0, `FitState.stars` false) every item above 0 weighs
    0.4, whatever its count. Weighed by its count (0.4 r / top), one 200-play metal track
    outweighed five 20-play jazz ones (9 metal films in the top 10, no jazz), an item given
    without a count (a click, read as the top count) the whole history, and on a log of play
    counts `content`'s warm NDCG@10 was 0.178 against 0.251 read as implicit data. A
    dislike (a rating at or below ``dislike_at``, `FitState.dislike_at`: 2 of 5 stars) weighs
    nothing and is left out. It used to weigh less than nothing, pushing its look-alikes down:
    for new users with a 1-2 star film among ten, that found a fifth fewer of the films they went
    on to like (NDCG@10 of 4-5 star films 0.191 against 0.235; `benchmarks/dislikes.md`)."""
    h = history.copy().astype(np.float32)
    like = max(like_rating, 1e-9)
    if dislike_at > 0:
        # a rating between a dislike and a like (2.5 of 5) weighs nothing either, never less
        weight = np.maximum(h.data / like - LIKE_SHARE, 0.0)
        h.data = np.where(h.data > dislike_at, weight, 0.0).astype(np.float32)
    else:
        h.data = np.where(h.data > 0, 1 - LIKE_SHARE, 0.0).astype(np.float32)
    h.eliminate_zeros()
    return h


#: Items with interactions that `text_popularity` needs to learn from (fewer: no prediction),
#: and the most it reads (a random sample of a larger catalogue: 384 weights need no more).
TEXT_POPULARITY_MIN_ITEMS, TEXT_POPULARITY_MAX_ITEMS = 20, 5_000


def text_popularity(item_emb: np.ndarray, pop_z: np.ndarray, seen: np.ndarray) -> np.ndarray | None:
    """Weights (the last one the intercept) of a ridge regression from an item's text vector to
    its popularity z-score, fitted on the ``seen`` items (those with interactions), its penalty
    chosen by leave-one-out on them; None when fewer than `TEXT_POPULARITY_MIN_ITEMS` were seen
    or all were equally popular. An item nobody has interacted with is not known to be the least
    popular: it is new, or its rows are not yet in. With the popularity of a count of 0, a new
    item came last behind every item with the same text match (MovieLens-100K cold-item split,
    full ranking: content's recall@20 of the held-out films 0.000 against random's 0.013; with
    the popularity their text predicts 0.034, and 0.151 -> 0.205 among the held-out films;
    `benchmarks/cold-item.md`). Warm and cold-user rankings moved by under 0.001."""
    from sklearn.linear_model import RidgeCV

    rows = np.flatnonzero(seen)
    if len(rows) < TEXT_POPULARITY_MIN_ITEMS or np.ptp(pop_z[rows]) < 1e-6:
        return None
    if len(rows) > TEXT_POPULARITY_MAX_ITEMS:
        rows = np.sort(np.random.default_rng(0).choice(rows, TEXT_POPULARITY_MAX_ITEMS, replace=False))
    fit = RidgeCV(alphas=np.logspace(-1, 3, 5)).fit(item_emb[rows], pop_z[rows])
    return np.r_[fit.coef_, fit.intercept_].astype(np.float32)


def predicted_popularity(weights: np.ndarray, vectors: np.ndarray, pop_z: np.ndarray) -> np.ndarray:
    """The popularity z-scores `text_popularity`'s ``weights`` give ``vectors``, kept within
    the range of the catalogue's ``pop_z``."""
    z = np.asarray(vectors, dtype=np.float32) @ weights[:-1] + weights[-1]
    return np.clip(z, pop_z.min(), pop_z.max()).astype(np.float32)


@register
class ContentRecommender(Recommender):
    """score(u, i) = cos(profile_u, e_i) + popularity_weight * z-score of log-popularity; an
    item no one has interacted with gets the z-score its text predicts (`text_popularity`)."""

    name = "content"
    reads_ratings = True  # a 5-star item weighs more than a 4-star one (`rating_weights`)
    Config = ContentConfig
    config: ContentConfig
    scores_new_items = True

    @property
    def reads_text(self) -> bool:
        return self.config.text_weight > 0

    def _fit(self, data: Dataset) -> None:
        self.item_emb_ = embed_items(data, self.config)
        pop = self.fitted.popularity
        self.pop_z_ = ((pop - pop.mean()) / (pop.std() + 1e-9)).astype(np.float32)
        self._predict_unseen_popularity()

    def _predict_unseen_popularity(self) -> None:
        """Learn `text_popularity` and give the items no one has interacted with its z-score."""
        unseen = self.fitted.popularity == 0
        weights = self.pop_from_text_ = text_popularity(self.item_emb_, self.pop_z_, ~unseen)
        if weights is not None and unseen.any():
            self.pop_z_[unseen] = predicted_popularity(weights, self.item_emb_[unseen], self.pop_z_)

    def ignored_in(self, query: Query) -> list[str]:
        """Also: a rated history of which no item weighs anything (all rated 3 of 5 or less,
        `rating_weights`), where the list is popularity's without a word (fewshot and ease read
        the same query)."""
        notes = super().ignored_in(query)
        if query.ratings is None or not len(query.items) or (query.text and query.text.strip()):
            return notes
        history = self.batch_from_queries([query]).for_model(self).history
        if history.nnz and not rating_weights(history, self.fitted.like_rating, self.fitted.dislike_at).nnz:
            top, cut = self.fitted.like_rating, self.fitted.like_cut()
            scale = f" of {top:g}" if self.fitted.stars else ""
            notes.append(
                f"{self.name} builds a taste only from items rated above {cut:g}{scale}, "
                "and none of the history is, so the list is by popularity"
            )
        return notes

    def profiles(self, batch: QueryBatch) -> np.ndarray:
        """Unit-norm user profiles from history (rating-weighted) and free text."""
        w = rating_weights(batch.history, self.fitted.like_rating, self.fitted.dislike_at)
        counts = np.maximum(np.diff(w.indptr), 1)[:, None]
        prof = np.asarray(w @ self.item_emb_) / counts
        if batch.texts is not None:
            prof = prof + self.config.text_weight * self.embed_texts(batch.texts)
        norms = np.linalg.norm(prof, axis=1, keepdims=True)
        return np.divide(prof, norms, out=np.zeros_like(prof), where=norms > 0)

    def embed_texts(self, texts: list[str | None]) -> np.ndarray:
        """Vectors of free texts (`embed_texts`); zero vectors where there is no text."""
        return embed_texts(texts, self.config, self.item_emb_.shape[1], self.negation_titles())

    def text_match(self, batch: QueryBatch) -> np.ndarray | None:
        if not self.reads_text:
            return None
        if batch.texts is None:
            return np.zeros((len(batch), self.n_items), np.float32)
        # a query without text has a zero vector, a constant row: 0 everywhere
        return standardise(self.embed_texts(batch.texts) @ self.item_emb_.T).astype(np.float32)

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        # in float32, as the item vectors are: a float64 profile made numpy copy every item
        # vector to float64 for each call (100,000 items: 357 ms a query instead of 5)
        scores = self.profiles(batch).astype(np.float32) @ self.item_emb_.T
        return (scores + self.config.popularity_weight * self.pop_z_[None, :]).astype(np.float32)

    # ------------------------------------------------------------------ new items
    def _embed_rows(self, info: pd.DataFrame) -> np.ndarray:
        """Item vectors of item rows (new or re-read items)."""
        return encode_item_texts(self.texts_of(info), self.config).astype(np.float32)

    def _unseen_popularity(self, start: int) -> float:
        """The popularity z-score of an item no one has interacted with (items ``:start`` are
        the catalogue before an add): that of such an item, else of a count of 0."""
        pop = self.fitted.popularity[:start]
        unseen = self.pop_z_[:start][pop == 0]
        if len(unseen):
            return float(unseen[0])
        # every item equally popular (the z-scores all 0): an unseen one a spread below them,
        # not -mean / 1e-9 (-5e7, last behind everything whatever its text)
        return float(-pop.mean() / pop.std()) if pop.std() > 1e-6 else -1.0

    def _new_popularity(self, vectors: np.ndarray, start: int) -> np.ndarray:
        """Popularity z-scores of items no one has interacted with, from their text vectors:
        `text_popularity`'s, or (a model saved without it, or fitted on too few items) that
        of a count of 0."""
        weights = getattr(self, "pop_from_text_", None)
        if weights is not None:
            return predicted_popularity(weights, vectors, self.pop_z_[:start])
        return np.full(len(vectors), self._unseen_popularity(start), np.float32)

    def _add_items(self, start: int, info: pd.DataFrame) -> None:
        """New items from their text alone: embedded, with the popularity their text predicts
        (it said it could not add items without retraining)."""
        new = self._embed_rows(info)
        self.pop_z_ = np.r_[self.pop_z_, self._new_popularity(new, start)]
        self.item_emb_ = np.r_[self.item_emb_, new]

    def _update_items(self, idx: np.ndarray, info: pd.DataFrame) -> None:
        """Changed text: re-embed those items, and re-predict the popularity of those no one
        has interacted with."""
        emb = self.item_emb_.copy()
        emb[idx] = self._embed_rows(info)
        unseen = idx[self.fitted.popularity[idx] == 0]
        if len(unseen) and getattr(self, "pop_from_text_", None) is not None:
            pop_z = self.pop_z_.copy()
            pop_z[unseen] = self._new_popularity(emb[unseen], len(pop_z))
            self.pop_z_ = pop_z
        self.item_emb_ = emb

    def _get_arrays(self) -> dict[str, np.ndarray]:
        out = {"item_emb": self.item_emb_, "pop_z": self.pop_z_}
        if getattr(self, "pop_from_text_", None) is not None:
            out["pop_from_text"] = self.pop_from_text_
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        check_saved_width(arrays["item_emb"], self.config)
        self.item_emb_ = arrays["item_emb"]
        self.pop_z_ = arrays["pop_z"]
        self.pop_from_text_ = arrays.get("pop_from_text")
