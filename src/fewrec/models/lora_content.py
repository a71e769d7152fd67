"""Content recommender over a LoRA-tuned text encoder (`content-lora`).

Scores exactly like `content` (cosine between a user profile and item embeddings, plus a small
popularity prior), but the item embeddings, and the embedding of the user's free text, come from
the packaged MiniLM with LoRA adapters fitted on the training interactions by a two-tower
contrastive objective (`fewrec.adapt.lora`). Items that nobody interacted with (cold items) are
embedded by the same adapted encoder from their text alone.

A saved model stores the adapter weights and the adapted catalogue embeddings as named arrays;
the adapted encoder is rebuilt lazily (base model + adapter) only when a query has free text or
new items are added, so loading scores identically without retraining.
"""

from __future__ import annotations

import threading
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np
import pandas as pd
from pydantic import field_validator

from fewrec.adapt.lora import LoraEncoder, LoraOptions, torch_threads, train_lora
from fewrec.data.dataset import Dataset
from fewrec.errors import FewrecError, user_stacklevel
from fewrec.models.base import register
from fewrec.models.content import ContentConfig, ContentRecommender, wish_vectors
from fewrec.text.encoder import length_problem

_ADAPTER_PREFIX = "lora."
_TEXT_CACHE_SIZE = 1024


class ContentLoraConfig(ContentConfig, LoraOptions):
    """`content` settings plus the LoRA and training settings of `fewrec.adapt.lora`."""

    @field_validator("encoder")
    @classmethod
    def _minilm_only(cls, value: str) -> str:
        from fewrec.text.encoder import resolve_model

        if resolve_model(value).name != "all-MiniLM-L6-v2":
            raise ValueError("content-lora adapts the packaged all-MiniLM-L6-v2 only")
        return value

    @field_validator("backend")
    @classmethod
    def _torch_only(cls, value: str | None) -> str | None:
        if value not in (None, "torch"):
            raise ValueError("content-lora trains with torch: backend must be 'torch'")
        return value


@register
class LoraContentRecommender(ContentRecommender):
    """`content` with a LoRA-tuned encoder: score(u, i) = cos(profile_u, e'_i) + prior."""

    name = "content-lora"
    reads_ratings = True  # as `content`: a 5-star item weighs more than a 4-star one
    Config = ContentLoraConfig
    config: ContentLoraConfig
    scores_new_items = True

    def _options(self) -> LoraOptions:
        return LoraOptions(**self.config.model_dump(include=set(LoraOptions.model_fields)))

    def _fit(self, data: Dataset) -> None:
        st = self.fitted
        texts = data.item_texts(self.config.template)
        # it reads max_seq_length word pieces of an item (about 3 words for 4 pieces)
        cut = length_problem(texts, self.config.encoder, max_words=self.config.max_seq_length * 3 // 4)
        if cut:
            warnings.warn(f"{cut}, or raise max_seq_length", UserWarning, stacklevel=user_stacklevel())
        result = train_lora(texts, st.train, st.like_rating, self._options(), stars=st.stars)
        self.item_emb_ = result.item_emb
        self.adapter_ = result.encoder.adapter_arrays()
        self.fit_summary_ = result.summary()
        self.losses_: np.ndarray | None = np.asarray(result.losses, dtype=np.float32)
        self._encoder: LoraEncoder | None = result.encoder
        pop = st.popularity
        self.pop_stats_ = np.array([pop.mean(), pop.std() + 1e-9], dtype=np.float32)
        self.pop_z_ = ((pop - self.pop_stats_[0]) / self.pop_stats_[1]).astype(np.float32)
        self._predict_unseen_popularity()

    # ------------------------------------------------------------------ adapted encoder
    def adapted_encoder(self) -> LoraEncoder:
        """The LoRA-adapted encoder (rebuilt from the saved adapter on first use)."""
        lock = self.__dict__.setdefault("_lock", threading.Lock())
        with lock:
            encoder: LoraEncoder | None = getattr(self, "_encoder", None)
            if encoder is None:
                if getattr(self, "adapter_", None) is None:
                    raise FewrecError(f"{self.name} has no adapter: fit it or load a saved model")
                encoder = self._encoder = LoraEncoder(self._options(), self.adapter_)
            return encoder

    def embed_texts(self, texts: list[str | None]) -> np.ndarray:
        """Adapted vectors of free texts, what they ask for minus what they ask to avoid (see
        `fewrec.models.content.wish_vectors`); zero vectors where there is no text."""
        return wish_vectors(texts, self._embed_plain, self.item_emb_.shape[1], self.negation_titles())

    def _embed_plain(self, texts: list[str]) -> np.ndarray:
        """Adapted embeddings of texts, memoised per text."""
        dim = self.item_emb_.shape[1]
        out = np.zeros((len(texts), dim), dtype=np.float32)
        cache: OrderedDict[str, np.ndarray] = self.__dict__.setdefault("text_cache_", OrderedDict())
        todo = sorted({t for t in texts if t and t.strip() and t not in cache})
        if todo:
            with torch_threads(self.config.threads):
                vecs = self.adapted_encoder().encode(todo)
            for t, v in zip(todo, vecs, strict=True):
                cache[t] = v
            while len(cache) > _TEXT_CACHE_SIZE:
                cache.popitem(last=False)
        for i, t in enumerate(texts):
            if t and t.strip():
                out[i] = cache[t] if t in cache else self.adapted_encoder().encode([t])[0]
        return out

    # ------------------------------------------------------------------ new items
    # (`content`'s add and re-read, with the adapted encoder; the adapter stays as it is)
    def _embed_rows(self, info: pd.DataFrame) -> np.ndarray:
        with torch_threads(self.config.threads):
            new = self.adapted_encoder().encode(self.texts_of(info), max_length=self.config.max_seq_length)
        return np.asarray(new, dtype=np.float32)

    def _unseen_popularity(self, start: int) -> float:
        """The z-score of zero popularity under the training statistics (a model saved without
        `text_popularity`'s weights)."""
        return float(-self.pop_stats_[0] / self.pop_stats_[1])

    # ------------------------------------------------------------------ persistence
    def _get_arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, Any] = {"item_emb": self.item_emb_, "pop_z": self.pop_z_, "pop_stats": self.pop_stats_}
        out.update({_ADAPTER_PREFIX + k: v for k, v in self.adapter_.items()})
        if getattr(self, "losses_", None) is not None:
            out["losses"] = self.losses_
        if getattr(self, "pop_from_text_", None) is not None:
            out["pop_from_text"] = self.pop_from_text_
        return out

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_emb_ = arrays["item_emb"]
        self.pop_z_ = arrays["pop_z"]
        self.pop_stats_ = arrays["pop_stats"]
        self.adapter_ = {
            k[len(_ADAPTER_PREFIX) :]: v for k, v in arrays.items() if k.startswith(_ADAPTER_PREFIX)
        }
        self.losses_ = arrays.get("losses")
        self.pop_from_text_ = arrays.get("pop_from_text")
        self._encoder = None
