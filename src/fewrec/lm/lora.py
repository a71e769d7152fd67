"""LoRA instruction tuning (peft) of a packaged LM on a few Yes/No episodes, on CPU.

As in TALLRec, the model learns to answer "Yes"/"No" (cross-entropy on the answer token over the
whole vocabulary). Adapters sit on the top ``upper_layers`` transformer layers only: the frozen
lower layers then run once per prompt (`LanguageModel.lower_states` caches them), so an epoch
costs a fraction of a full forward + backward pass. That, a linear warm-up, early stopping on a
held-out validation subset (the untouched model, epoch 0, is a candidate too) and fixed seeds
make K = 16..256 shots trainable on two CPU cores in minutes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ConfigDict, Field, field_validator

from fewrec.errors import ConfigError, DataError, Settings, one_name_as_tuple
from fewrec.lm.model import DEFAULT_UPPER_LAYERS, LanguageModel, _bar

if TYPE_CHECKING:
    import torch

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoraSettings(Settings):
    """LoRA and optimisation settings."""

    # (infinity was taken for alpha and weight_decay, and the fields' docstrings went unread)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, use_attribute_docstrings=True)
    settings_name = "LoRA settings"

    rank: int = Field(8, ge=1)
    """Rank of each adapter's two low-rank matrices. More: a closer fit, more weights to learn."""
    alpha: float = Field(16.0, gt=0)
    """LoRA's scale: an adapter's update is multiplied by alpha / rank."""
    dropout: float = Field(0.05, ge=0, lt=1)
    """Dropout on the adapters' inputs while training."""
    upper_layers: int = Field(DEFAULT_UPPER_LAYERS, ge=1)
    """Adapted (top) layers; the others are frozen and their outputs cached."""
    targets: tuple[str, ...] = ALL_LINEAR
    """Linear modules that get adapters."""
    lr: float = Field(2e-3, gt=0)
    """AdamW's peak learning rate (reached after the warm-up, then decaying linearly to 5% of it)."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW's weight decay on the adapters."""
    batch_size: int = Field(8, ge=1)
    """Training prompts per step."""
    max_epochs: int = Field(4, ge=1)
    """Most passes over the training prompts (early stopping may end it sooner)."""
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    """Share of the training steps over which the learning rate rises from 0 to ``lr``."""
    patience: int = Field(2, ge=1)
    """Epochs without a lower validation loss before stopping."""
    seed: int = Field(0, ge=0)
    """Seed of the adapters' initial weights and the prompts' order."""

    # one module named alone (`--set lora.targets=q_proj`) was "Input should be a valid tuple"
    _one_target = field_validator("targets", mode="before")(one_name_as_tuple)

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [t for t in value if t not in ALL_LINEAR]
        if bad or not value:
            unknown = f" ({', '.join(map(repr, bad))} unknown)" if bad else ""
            raise ValueError(f"targets must be a non-empty subset of {ALL_LINEAR}{unknown}")
        return tuple(dict.fromkeys(value))


@dataclass
class LoraResult:
    """What training produced: the best adapter's weights and the learning curve."""

    weights: dict[str, np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def peft_config(settings: LoraSettings, lm: LanguageModel, *, strict: bool = True) -> Any:
    """The `peft.LoraConfig` of these settings on this LM (adapters on the top layers only;
    ``strict``: see `split_for`)."""
    from peft import LoraConfig

    split = split_for(settings, lm, strict=strict)
    return LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,  # type: ignore[arg-type]  # peft annotates int; used as a float scale
        lora_dropout=settings.dropout,
        target_modules=list(settings.targets),
        layers_to_transform=list(range(split, lm.n_layers)),
        bias="none",
    )


def split_for(settings: LoraSettings, lm: LanguageModel, *, strict: bool = True) -> int:
    """First adapted layer; more ``upper_layers`` than the LM has is a `ConfigError` (it was
    quietly cut to all layers, which makes training several times slower than asked for).
    ``strict=False`` (loading a model saved before that check) cuts it to all layers, as its
    adapter was trained."""
    if settings.upper_layers > lm.n_layers:
        if not strict:
            return 0
        raise ConfigError(
            f"LoRA upper_layers={settings.upper_layers} but the language model {lm.name!r} has "
            f"{lm.n_layers} layers. Fix: adapt 1..{lm.n_layers} upper layers "
            f"(default {DEFAULT_UPPER_LAYERS}; fewer train faster)"
        )
    return lm.n_layers - settings.upper_layers


def answer_targets(lm: LanguageModel, labels: Sequence[int] | np.ndarray) -> torch.Tensor:
    """Token ids of the right answers ("Yes" for 1, "No" for 0)."""
    import torch

    lab = np.asarray(labels)
    if lab.ndim != 1 or not np.isin(lab, (0, 1)).all():
        raise DataError("labels must be a 1-d sequence of 0/1", fix="label liked 1, not liked 0")
    return torch.tensor(np.where(lab == 1, lm.yes_id, lm.no_id), dtype=torch.long)


def answer_loss(
    lm: LanguageModel, states: Sequence[torch.Tensor], targets: torch.Tensor, split: int
) -> torch.Tensor:
    """Mean cross-entropy of the right answer token (graph kept for backward)."""
    import torch

    return torch.nn.functional.cross_entropy(lm.upper_logits(states, split), targets)


def evaluate_adapter(
    lm: LanguageModel,
    adapter: str | None,
    states: Sequence[torch.Tensor],
    labels: np.ndarray,
    split: int,
    batch_size: int = 16,
) -> dict[str, float]:
    """Answer loss and AUC (of P(Yes) vs P(No)) on labelled episodes."""
    import torch

    from fewrec.eval.metrics import auc

    targets = answer_targets(lm, labels)
    losses, scores = [], []
    with torch.inference_mode(), lm.adapter(adapter):
        for lo in range(0, len(states), batch_size):
            logits = lm.upper_logits(states[lo : lo + batch_size], split).double()
            losses.append(
                torch.nn.functional.cross_entropy(
                    logits, targets[lo : lo + batch_size], reduction="sum"
                ).item()
            )
            logp = torch.log_softmax(logits, -1)
            scores.append((logp[:, lm.yes_id] - logp[:, lm.no_id]).numpy())
    s = np.concatenate(scores) if scores else np.zeros(0)
    both = 0 < labels.sum() < len(labels)
    return {"loss": float(sum(losses) / max(len(states), 1)), "auc": auc(labels, s) if both else float("nan")}


def train_lora(
    lm: LanguageModel,
    adapter: str,
    prompts: Sequence[str],
    labels: Sequence[int] | np.ndarray,
    valid_prompts: Sequence[str],
    valid_labels: Sequence[int] | np.ndarray,
    settings: LoraSettings | None = None,
    *,
    progress: bool = False,
) -> LoraResult:
    """Train a fresh LoRA adapter named ``adapter`` on rendered prompts and 0/1 labels.

    The adapter left on the model (and returned) is the one with the lowest validation loss,
    which may be the untouched one (epoch 0) when training does not help.
    """
    import torch

    from fewrec.train import seed_everything

    settings = settings or LoraSettings()
    labels, valid_labels = np.asarray(labels, dtype=np.int64), np.asarray(valid_labels, dtype=np.int64)
    if len(prompts) == 0 or len(prompts) != len(labels):
        raise DataError(f"{len(prompts)} prompts and {len(labels)} labels", fix="give one label per prompt")
    if len(valid_prompts) == 0 or len(valid_prompts) != len(valid_labels):
        raise DataError(
            f"{len(valid_prompts)} validation prompts and {len(valid_labels)} labels",
            fix="hold out at least one labelled episode for early stopping",
        )
    t0 = time.perf_counter()
    seed_everything(settings.seed)
    split = split_for(settings, lm)
    if lm.has_adapter(adapter):
        raise ConfigError(
            f"{lm.name} already has an adapter {adapter!r}; train under a new name (new_adapter_name())"
        )
    with lm.lock:
        lm.add_adapter(adapter, peft_config(settings, lm))
        states = lm.lower_states(prompts, split, batch_size=settings.batch_size, progress=progress)
        vstates = lm.lower_states(valid_prompts, split, batch_size=settings.batch_size, progress=progress)
        targets = answer_targets(lm, labels)
        params = lm.adapter_parameters(adapter)
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
        steps = math.ceil(len(prompts) / settings.batch_size) * settings.max_epochs
        warm = max(1, round(settings.warmup_ratio * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.05, (steps - s) / max(1, steps - warm)))
        )
        gen = torch.Generator().manual_seed(settings.seed)
        first = evaluate_adapter(lm, adapter, vstates, valid_labels, split)
        history = [
            {"epoch": 0, "train_loss": float("nan"), "valid_loss": first["loss"], "valid_auc": first["auc"]}
        ]
        best_loss, best_epoch, bad = first["loss"], 0, 0
        best = lm.adapter_weights(adapter)
        bar = _bar(settings.max_epochs, "LoRA training", progress, unit="epochs")
        for epoch in range(1, settings.max_epochs + 1):
            lm.model.train()
            order = torch.randperm(len(prompts), generator=gen).tolist()
            total = 0.0
            with lm.adapter(adapter):
                for lo in range(0, len(order), settings.batch_size):
                    idx = order[lo : lo + settings.batch_size]
                    loss = answer_loss(lm, [states[i] for i in idx], targets[idx], split)
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                    sched.step()
                    total += loss.item() * len(idx)
            lm.model.eval()
            ev = evaluate_adapter(lm, adapter, vstates, valid_labels, split)
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": total / len(prompts),
                    "valid_loss": ev["loss"],
                    "valid_auc": ev["auc"],
                }
            )
            bar.update(1)
            if ev["loss"] < best_loss - 1e-4:
                best_loss, best_epoch, bad = ev["loss"], epoch, 0
                best = lm.adapter_weights(adapter)
            else:
                bad += 1
                if bad >= settings.patience:
                    break
        bar.close()
        lm.set_adapter_weights(adapter, best)
    return LoraResult(best, history, best_epoch, time.perf_counter() - t0)
