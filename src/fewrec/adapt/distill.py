"""Item cold start by distillation: a small network learns text embedding -> CF factors.

The collaborative model (teacher) gives factors for items with interactions; the student maps
an item's text embedding to those factors (and to its log-popularity), so an item with text
only gets factors at once.
"""

from __future__ import annotations

import numpy as np

from fewrec.errors import ConfigError, DataError, is_whole_number
from fewrec.train import seed_everything

MIN_STUDENT_ITEMS = 4
"""The fewest items with interactions the student learns from (one of them validates)."""


def train_student(
    text_emb: np.ndarray,
    targets: np.ndarray,
    train_mask: np.ndarray,
    *,
    hidden: int = 256,
    epochs: int = 300,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    patience: int = 30,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], float]:
    """Fit an MLP text -> targets on the rows in ``train_mask`` (10% held out for early
    stopping). Returns its weights as numpy arrays and the held-out R^2."""
    import torch

    if not is_whole_number(epochs) or epochs < 1:
        raise ConfigError(f"epochs must be a whole number >= 1, got {epochs!r}")
    text_emb, targets = np.asarray(text_emb), np.asarray(targets)
    rows = np.flatnonzero(train_mask)
    for what, values in (("text embeddings", text_emb), ("targets", targets[rows])):
        if not np.isfinite(values).all():
            bad = np.flatnonzero(~np.isfinite(values).reshape(len(values), -1).all(axis=1))
            rows_of = bad if what == "text embeddings" else rows[bad]
            raise DataError(
                f"the {what} hold NaN or infinite values in {len(bad)} rows (the first is row {rows_of[0]})",
                fix="give finite values (re-encode the items' text, or drop the broken rows)",
            )
    seed_everything(seed)
    if len(rows) < MIN_STUDENT_ITEMS:
        raise DataError(
            f"the text -> factors student (of fewshot and the ensemble's fewshot) needs at least "
            f"{MIN_STUDENT_ITEMS} items with interactions to learn from, and the data has {len(rows)}",
            fix="add interactions on more items, or use `content`, which ranks items by their text alone",
        )
    rng = np.random.default_rng(seed)
    rng.shuffle(rows)
    n_val = max(1, len(rows) // 10)
    val, tr = rows[:n_val], rows[n_val:]
    x = torch.tensor(text_emb, dtype=torch.float32)
    mu = targets[tr].mean(axis=0)
    sd = targets[tr].std(axis=0) + 1e-6
    y = torch.tensor((targets - mu) / sd, dtype=torch.float32)
    first, last = torch.nn.Linear(x.shape[1], hidden), torch.nn.Linear(hidden, y.shape[1])
    net = torch.nn.Sequential(first, torch.nn.GELU(), torch.nn.Dropout(0.1), last)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    tr_t, val_t = torch.tensor(tr), torch.tensor(val)
    best, best_state, stale = np.inf, None, 0  # stale: epochs without a better validation loss
    for _ in range(epochs):
        net.train()
        perm = tr_t[torch.randperm(len(tr_t))]
        for start in range(0, len(perm), 256):
            idx = perm[start : start + 256]
            loss = torch.mean((net(x[idx]) - y[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val_loss = torch.mean((net(x[val_t]) - y[val_t]) ** 2).item()
        if val_loss < best - 1e-5:
            best, stale = val_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is None:  # no finite validation loss in any epoch
        raise DataError(
            "the student's validation loss never became finite (the training diverged)",
            fix="lower lr, or check the text embeddings and targets",
        )
    net.load_state_dict(best_state)
    weights = {
        "w1": first.weight.detach().numpy().T.copy(),
        "b1": first.bias.detach().numpy().copy(),
        "w2": last.weight.detach().numpy().T.copy(),
        "b2": last.bias.detach().numpy().copy(),
        "mu": mu.astype(np.float32),
        "sd": sd.astype(np.float32),
    }
    z_val = (targets[val] - mu) / sd
    spread = float(np.mean((z_val - z_val.mean(axis=0)) ** 2))
    r2 = 1.0 - best / spread if spread > 0 else 0.0
    return weights, float(r2)


def apply_student(weights: dict[str, np.ndarray], text_emb: np.ndarray) -> np.ndarray:
    """Run the student in numpy (no torch needed at serving time)."""
    h = text_emb @ weights["w1"] + weights["b1"]
    h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))  # exact GELU, as torch's default
    out = h @ weights["w2"] + weights["b2"]
    return (out * weights["sd"] + weights["mu"]).astype(np.float32)


def _erf(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf

    return erf(x)
