"""Closed-form few-shot user heads, and meta-learning of their prior over K-shot episodes.

A user's score for item i is ``w_u . x_i`` over item representations ``x_i``. Given K history
items I, the head is the posterior mean of a Bayesian linear model with implicit zeros on all
other items (as in ALS fold-in) and a Gaussian prior ``N(w0(u), diag(lambda)^-1)``::

    A = gamma X^T X + alpha X_I^T X_I + diag(lambda)
    w_u = A^-1 (alpha X_I^T 1 + diag(lambda) w0(u))

so a new user adapts with one d x d solve (microseconds), and ``A^-1`` is the posterior
covariance that drives exploration. Meta-learning (MAML/MeLU in spirit, with the closed-form
inner loop of Bertinetto et al. 2019) learns ``w0`` (a global mean plus a map from side info),
``lambda``, ``alpha`` and ``gamma`` by simulating K-shot users from warm users: reveal K of their
items, adapt, and minimise the softmax cross-entropy of the hidden items over the catalogue.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from fewrec.errors import user_stacklevel
from fewrec.train import seed_everything


@dataclass
class HeadParams:
    """Prior and update parameters of the few-shot head (all numpy)."""

    mean: np.ndarray  # (d,) global prior mean
    side: np.ndarray  # (s, d) side-info one-hot -> prior mean offset
    log_lambda: np.ndarray  # (d,) prior precision (log)
    log_alpha: float  # confidence of observed items (log)
    log_gamma: float  # weight of the implicit zeros (log)
    beta: float = 0.0  # weight of the item-item (EASE) term added to the head's scores

    @classmethod
    def plain(cls, d: int, s: int, l2: float, alpha: float, beta: float = 0.0) -> HeadParams:
        """The head without meta-learning: zero prior mean, ridge precision ``l2``."""
        return cls(
            np.zeros(d, np.float32),
            np.zeros((s, d), np.float32),
            np.full(d, np.log(l2), np.float32),
            float(np.log(alpha)),
            0.0,
            float(beta),
        )

    def as_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean,
            "side": self.side,
            "log_lambda": self.log_lambda,
            "log_alpha": np.array(self.log_alpha),
            "log_gamma": np.array(self.log_gamma),
            "beta": np.array(self.beta),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> HeadParams:
        return cls(
            a["mean"],
            a["side"],
            a["log_lambda"],
            float(a["log_alpha"]),
            float(a["log_gamma"]),
            float(a["beta"]),
        )


def adapt_heads(
    x: np.ndarray,
    gram: np.ndarray,
    history: list[np.ndarray],
    prior_mean: np.ndarray,
    params: HeadParams,
    *,
    return_cov: bool = False,
):
    """Posterior mean heads (n_queries x d) for each query's history items (closed form)."""
    d = x.shape[1]
    lam = np.exp(params.log_lambda).astype(np.float64)
    alpha, gamma = np.exp(params.log_alpha), np.exp(params.log_gamma)
    base = gamma * gram.astype(np.float64) + np.diag(lam)
    heads = np.empty((len(history), d), dtype=np.float64)
    covs = np.empty((len(history) if return_cov else 0, d, d))
    for q, items in enumerate(history):
        xi = x[items].astype(np.float64)
        a = base + alpha * (xi.T @ xi)
        b = alpha * xi.sum(axis=0) + lam * prior_mean[q]
        if return_cov:
            covs[q] = np.linalg.inv(a)
            heads[q] = covs[q] @ b
        else:
            heads[q] = np.linalg.solve(a, b)
    return (heads.astype(np.float32), covs) if return_cov else heads.astype(np.float32)


def meta_learn_head(
    x: np.ndarray,
    user_items: list[np.ndarray],
    user_side: np.ndarray,
    init: HeadParams,
    item_item: np.ndarray | None = None,
    *,
    shots: tuple[int, ...] = (0, 1, 3, 5, 10, 20),
    reveal: str = "both",
    steps: int = 300,
    batch: int = 64,
    lr: float = 0.05,
    eval_every: int = 25,
    patience: int = 4,
    seed: int = 0,
    progress: bool = False,
    rank_item_item: bool = False,
    empty_baseline: np.ndarray | None = None,
) -> tuple[HeadParams, dict[str, float]]:
    """Learn the head's prior and step sizes over simulated K-shot users.

    Args:
        x: item representations (n_items x d).
        user_items: each warm user's items in time order.
        user_side: one-hot side info per user (n_users x s).
        init: the starting parameters (the plain head).
        item_item: optional (n_items x n_items) item-item weights whose history sum is added
            to the scores with the learned weight ``beta``.
        shots: K values episodes are drawn from.
        reveal: which K items an episode reveals: "earliest", "random" or "both" (half each);
            match it to how new users arrive.
        steps, batch, lr: Adam steps, episodes per step, learning rate.
        eval_every, patience: early stopping on held-out users' episode loss.
        seed: episodes and initialisation seed.
        rank_item_item: then rescale ``beta`` (by a power of 2 in 1/4..256) for NDCG@10 on the
            held-out users' episodes.
        empty_baseline: optional item scores (popularity) to set the learned prior against
            where nothing is revealed: the log gets both one's NDCG@10 of the held-out users'
            items at K = 0 (``empty_ndcg_prior``, ``empty_ndcg_baseline``).

    Returns:
        The best parameters on held-out users, and a small training log.
    """
    import torch
    from tqdm.auto import tqdm

    seed_everything(seed)
    rng = np.random.default_rng(seed)
    users = np.array([i for i, it in enumerate(user_items) if len(it) >= 2])
    rng.shuffle(users)
    # at most half the users held out (8 of 8 had been: no episode left to learn from, and the
    # prior came back unchanged, without a word)
    n_val = min(max(8, len(users) // 10), len(users) // 2)
    if n_val < 1:
        warnings.warn(
            f"meta-learning needs users with 2 or more items to learn from and check on, and the data "
            f"has {len(users)}: the few-shot prior stays as it starts (as fewshot-nometa's)",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return init, {"val_loss_start": float("nan"), "val_loss_best": float("nan"), "steps": 0}
    val_users, tr_users = users[:n_val], users[n_val:]
    xt = torch.tensor(x, dtype=torch.float64)
    n, d = xt.shape
    gram = xt.T @ xt
    side_t = torch.tensor(user_side, dtype=torch.float64)
    p_mean = torch.tensor(init.mean, dtype=torch.float64, requires_grad=True)
    p_side = torch.tensor(init.side, dtype=torch.float64, requires_grad=True)
    p_lam = torch.tensor(init.log_lambda, dtype=torch.float64, requires_grad=True)
    p_alpha = torch.tensor(init.log_alpha, dtype=torch.float64, requires_grad=True)
    p_gamma = torch.tensor(init.log_gamma, dtype=torch.float64, requires_grad=True)
    p_beta = torch.tensor(init.beta, dtype=torch.float64, requires_grad=item_item is not None)
    ii = None if item_item is None else torch.tensor(item_item, dtype=torch.float64)
    learn = [p_mean, p_side, p_lam, p_alpha, p_gamma] + ([p_beta] if ii is not None else [])
    opt = torch.optim.Adam(learn, lr=lr)

    def episodes(pool: np.ndarray, size: int, ep_rng: np.random.Generator):
        # ``size`` users, or every user of a smaller pool once (drawn with replacement, a pool of
        # 66 held-out users had checked 41 of them, some twice)
        chosen = ep_rng.choice(pool, size=min(size, len(pool)), replace=False)
        kmax = max(1, max(shots))
        # filled in numpy, then shared with torch: indexing a torch tensor row by row with
        # numpy arrays took most of the meta-learning's time outside its products
        idx = np.zeros((len(chosen), kmax), dtype=np.int64)
        mask = np.zeros((len(chosen), kmax, 1))
        shown = np.zeros((len(chosen), n))
        target = np.zeros((len(chosen), n))
        for row, u in enumerate(chosen):
            items = user_items[u]
            k = int(min(ep_rng.choice(shots), len(items) - 1))
            earliest = reveal == "earliest" or (reveal == "both" and ep_rng.random() < 0.5)
            order = items if earliest else ep_rng.permutation(items)
            idx[row, :k] = order[:k]
            mask[row, :k] = 1.0
            shown[row, order[:k]] = 1.0
            target[row, order[k:]] = 1.0
        as_t = torch.from_numpy
        return chosen, as_t(idx), as_t(mask), as_t(shown), as_t(target)

    def logits_of(chosen, idx, mask, shown):
        """The adapted heads' scores and the (unweighted) item-item scores of episodes."""
        lam = torch.exp(p_lam)
        alpha, gamma = torch.exp(p_alpha), torch.exp(p_gamma)
        xr = xt[idx] * mask  # (B, Kmax, d): the revealed items' rows, zero-padded
        a = gamma * gram + torch.diag(lam) + alpha * xr.transpose(1, 2) @ xr
        prior = p_mean + side_t[chosen] @ p_side
        # the revealed rows summed (the zero padding adds nothing): `shown @ ii` multiplied
        # every item's row (an episodes x items x items product) to add K <= 20 of them
        b = alpha * xr.sum(1) + lam * prior
        w = torch.linalg.solve(a, b.unsqueeze(2)).squeeze(2)
        return w @ xt.T, (None if ii is None else (ii[idx] * mask).sum(1))

    def loss_of(chosen, idx, mask, shown, target):
        logits, item_item_part = logits_of(chosen, idx, mask, shown)
        if ii is not None:
            logits = logits + p_beta * item_item_part
        logits = logits.masked_fill(shown > 0, float("-inf"))
        logp = torch.log_softmax(logits, dim=1)
        per = -(torch.where(target > 0, logp, torch.zeros_like(logp))).sum(1) / target.sum(1)
        return per.mean()

    val_eps = episodes(val_users, 256, np.random.default_rng(seed + 1))
    with torch.no_grad():
        best = float(loss_of(*val_eps))
    start_loss = best
    best_params = init
    bad = 0
    bar = tqdm(range(steps), desc="meta-learning the few-shot prior", disable=not progress)
    for step in bar:
        loss = loss_of(*episodes(tr_users, batch, rng))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % eval_every == 0 or step + 1 == steps:  # (fewer steps: none was kept)
            with torch.no_grad():
                val = float(loss_of(*val_eps))
            bar.set_postfix(val=f"{val:.4f}")
            if val < best - 1e-4:
                best, bad = val, 0
                best_params = HeadParams(
                    p_mean.detach().numpy().astype(np.float32),
                    p_side.detach().numpy().astype(np.float32),
                    p_lam.detach().numpy().astype(np.float32),
                    float(p_alpha.detach()),
                    float(p_gamma.detach()),
                    float(p_beta.detach()),
                )
            else:
                bad += 1
                if bad >= patience:
                    break
    log = {
        "val_loss_start": start_loss,
        "val_loss_best": best,
        "steps": step + 1,
        "val_users": len(np.unique(val_eps[0])),
        "val_episodes": len(val_eps[0]),
    }
    if rank_item_item and ii is not None and best_params.beta > 0:
        # The likelihood weighs every hidden item alike and settles on a small item-item weight;
        # the top of the list wants more. Rescale beta for NDCG@10 on the held-out episodes.
        with torch.no_grad():
            for t, v in (
                (p_mean, best_params.mean),
                (p_side, best_params.side),
                (p_lam, best_params.log_lambda),
            ):
                t.copy_(torch.as_tensor(v, dtype=torch.float64))
            p_alpha.fill_(best_params.log_alpha)
            p_gamma.fill_(best_params.log_gamma)
            head, item_item_part = logits_of(*val_eps[:4])
            shown, target = val_eps[3], val_eps[4]
            scale, best_ndcg = 1.0, -1.0
            for m in BETA_SCALES:
                logits = (head + best_params.beta * m * item_item_part).masked_fill(shown > 0, float("-inf"))
                val = _ndcg_at_10(logits.numpy(), target.numpy())
                if val > best_ndcg + 1e-6:
                    scale, best_ndcg = m, val
        best_params = replace(best_params, beta=best_params.beta * scale)
        log.update({"beta_scale": scale, "val_ndcg@10": best_ndcg})
    if empty_baseline is not None:  # (the held-out episodes' users: at most 256 of them)
        checked = np.unique(val_eps[0])
        log.update(_empty_ndcg(x, user_items, user_side, checked, best_params, empty_baseline))
    return best_params, log


def _empty_ndcg(
    x: np.ndarray,
    user_items: list[np.ndarray],
    user_side: np.ndarray,
    users: np.ndarray,
    params: HeadParams,
    baseline: np.ndarray,
    chunk: int = 64,
) -> dict[str, float]:
    """Mean NDCG@10 of ``users``' items with nothing revealed (K = 0): ranked by the head that
    ``params``' prior gives (side info moves its mean) and by ``baseline``; ``chunk`` users'
    scores over the catalogue at a time (every held-out user at once took GBs on a large one)."""
    import scipy.sparse as sp

    x64 = x.astype(np.float64)
    gram = x64.T @ x64
    rows = np.repeat(np.arange(len(users)), [len(user_items[u]) for u in users])
    cols = np.concatenate([user_items[u] for u in users]) if len(users) else np.zeros(0, np.int64)
    target = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), len(x)))
    target.data[:] = 1.0  # (an item twice in a history: still one hidden item)
    base = np.asarray(baseline, np.float64)[None, :]
    prior_sum = base_sum = 0.0
    for lo in range(0, len(users), chunk):
        part = users[lo : lo + chunk]
        prior = params.mean[None, :].astype(np.float64) + user_side[part] @ params.side
        heads = adapt_heads(x, gram, [np.zeros(0, np.int64)] * len(part), prior, params)
        block = target[lo : lo + chunk]
        prior_sum += _ndcg_at_10(heads @ x.T, block) * len(part)
        base_sum += _ndcg_at_10(np.repeat(base, len(part), axis=0), block) * len(part)
    n = max(len(users), 1)
    return {"empty_ndcg_prior": prior_sum / n, "empty_ndcg_baseline": base_sum / n}


BETA_SCALES = tuple(2.0**k for k in range(-2, 9))
"""Multipliers of the likelihood's item-item weight tried for NDCG@10 (0.25 to 256)."""


def _ndcg_at_10(logits: np.ndarray, target) -> float:
    """Mean NDCG@10 of episodes (scores and 0/1 hidden items, dense or sparse), by the
    evaluation's own metric."""
    import scipy.sparse as sp

    from fewrec.eval import metrics as M

    hidden = sp.csr_matrix(target)
    hits = M.hits_matrix(M.top_k_matrix(logits, 10), hidden)
    return float(M.ndcg_at_k(hits, np.diff(hidden.indptr), 10).mean())
