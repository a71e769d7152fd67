"""A few-shot "will this user like X?" classifier (the TALLRec task), usable as a ranker.

For a query (history with like/dislike labels) and a target item it combines, in a logistic
regression, what decides the answer:

* ``share``: the share of liked items in the history (the TALLRec trivial rule);
* ``rate``: how often the target was liked by others in the training data (smoothed);
* ``text``: text similarity of the target to the liked minus the disliked history items;
* ``cf``: co-occurrence similarity of the target to the liked minus the disliked items;
* ``pop``: the target's log-popularity;
* ``bias``: how much more the user liked their history items than others did (a user bias
  relative to item quality, as in a baseline rating predictor).

The weights are fitted on episodes built from the training data itself: each training
interaction is a target, its user's previous (up to 10) interactions the history, its own
interaction left out of the item statistics. With few training samples the fit is a few-shot
fit; with a warm catalogue of other users the same code learns a strong prior.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from fewrec.data.dataset import Dataset
from fewrec.models.base import QueryBatch, Recommender, register
from fewrec.models.content import TextModelConfig, embed_items

FEATURES = ("share", "rate", "text", "cf", "pop", "bias")


class LikeConfig(TextModelConfig):
    history: int = Field(10, ge=1)
    """Previous interactions used as the history of a training episode."""
    prior_strength: float = Field(5.0, ge=0)
    """Pseudo-ratings at the global like rate added to each item's like rate."""
    max_episodes: int = Field(50_000, ge=10)
    c: float = Field(1.0, gt=0)
    """Inverse L2 strength of the logistic regression."""
    like_threshold: float = Field(0.6, gt=0, lt=1)
    """A rating counts as liked above this share of the top rating (3 on a 1-5 scale)."""


@register
class LikeClassifier(Recommender):
    """Logistic regression over like-share, item like-rate, text and CF affinity (see module)."""

    name = "like-clf"
    Config = LikeConfig
    scores_new_items = True

    def _fit(self, data: Dataset) -> None:
        from sklearn.linear_model import LogisticRegression

        cfg = self.config
        self.emb_ = embed_items(data, cfg)
        inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
        like = self.fitted.like_rating * cfg.like_threshold
        liked = (inter["rating"].to_numpy() > like).astype(np.float64)
        items = inter["item"].to_numpy()
        n = data.n_items
        self.count_ = np.bincount(items, minlength=n).astype(np.float64)
        self.pos_ = np.bincount(items, weights=liked, minlength=n)
        self.global_rate_ = float(liked.mean()) if len(liked) else 0.5
        x = data.matrix(implicit=True).tocsc()
        co = (x.T @ x).toarray()
        norms = np.sqrt(np.maximum(np.diag(co), 1e-9))
        self.norms_ = norms
        self.cf_ = (co / np.outer(norms, norms)).astype(np.float32)
        np.fill_diagonal(self.cf_, 0.0)
        # episodes: (history of up to `history` previous items with labels, target)
        rows, labels = [], []
        users = inter["user"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        for lo, hi in zip(starts, ends, strict=True):
            for j in range(lo + 1, hi):
                h0 = max(lo, j - cfg.history)
                rows.append((items[h0:j], liked[h0:j], items[j], liked[j]))
        rng = np.random.default_rng(cfg.seed)
        if len(rows) > cfg.max_episodes:
            rows = [rows[i] for i in rng.choice(len(rows), cfg.max_episodes, replace=False)]
        feats = np.array([self._features(h, hl, np.array([t]), loo=lab)[0] for h, hl, t, lab in rows])
        labels = np.array([lab for *_, lab in rows])
        self.mu_ = feats.mean(axis=0) if len(feats) else np.zeros(len(FEATURES))
        self.sd_ = feats.std(axis=0) + 1e-6 if len(feats) else np.ones(len(FEATURES))
        if len(set(labels.tolist())) < 2:
            # one class only: fall back to the like-share rule
            self.coef_ = np.eye(len(FEATURES))[0]
            self.intercept_ = 0.0
            return
        clf = LogisticRegression(C=cfg.c, max_iter=1000, random_state=cfg.seed)
        clf.fit((feats - self.mu_) / self.sd_, labels)
        self.coef_ = clf.coef_[0].astype(np.float64)
        self.intercept_ = float(clf.intercept_[0])

    def _features(
        self, hist: np.ndarray, hist_liked: np.ndarray, targets: np.ndarray, loo: float | None = None
    ) -> np.ndarray:
        """Feature rows (len(targets) x len(FEATURES)) for one history; ``loo`` removes the target's own
        label from the item statistics (training episodes)."""
        m = self.config.prior_strength
        count, pos = self.count_[targets], self.pos_[targets]
        if loo is not None:
            count, pos = count - 1.0, pos - loo
        rate = (pos + m * self.global_rate_) / (count + m)
        share = hist_liked.mean() if len(hist) else self.global_rate_
        lk, dk = hist[hist_liked > 0], hist[hist_liked <= 0]
        e_t = self.emb_[targets]
        text = _mean_sim(e_t, self.emb_[lk]) - _mean_sim(e_t, self.emb_[dk])
        cf_rows = self.cf_[targets]
        if loo is not None:
            # the episode's own user made every (target, history) pair co-occur once: remove it
            cf_rows = cf_rows.copy()
            cf_rows[:, hist] -= 1.0 / (self.norms_[targets][:, None] * self.norms_[hist][None, :])
        cf = _mean_rows(cf_rows[:, lk]) - _mean_rows(cf_rows[:, dk])
        pop = np.log1p(np.maximum(count, 0.0))
        h_count, h_pos = self.count_[hist], self.pos_[hist]
        if loo is not None:  # training episode: the user's own history labels are in the counts
            h_count, h_pos = h_count - 1.0, h_pos - hist_liked
        h_rate = (h_pos + m * self.global_rate_) / (h_count + m)
        bias = float(np.mean(hist_liked - h_rate)) if len(hist) else 0.0
        return np.c_[np.full(len(targets), share), rate, text, cf, pop, np.full(len(targets), bias)]

    def probabilities(self, batch: QueryBatch) -> np.ndarray:
        """P(like) of every item for every query."""
        like = self.fitted.like_rating * self.config.like_threshold
        h: sp.csr_matrix = batch.history
        out = np.empty((len(batch), self.n_items), dtype=np.float64)
        all_items = np.arange(self.n_items)
        for q in range(len(batch)):
            idx = h.indices[h.indptr[q] : h.indptr[q + 1]]
            lab = (h.data[h.indptr[q] : h.indptr[q + 1]] > like).astype(np.float64)
            f = (self._features(idx, lab, all_items) - self.mu_) / self.sd_
            out[q] = 1.0 / (1.0 + np.exp(-(f @ self.coef_ + self.intercept_)))
        return out

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        return self.probabilities(batch).astype(np.float32)

    def _get_arrays(self) -> dict[str, np.ndarray]:
        return {
            "emb": self.emb_,
            "count": self.count_,
            "pos": self.pos_,
            "cf": self.cf_,
            "norms": self.norms_,
            "mu": self.mu_,
            "sd": self.sd_,
            "coef": self.coef_,
            "scalars": np.array([self.global_rate_, self.intercept_]),
        }

    def _set_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.emb_, self.count_, self.pos_, self.cf_ = (
            arrays["emb"],
            arrays["count"],
            arrays["pos"],
            arrays["cf"],
        )
        self.mu_, self.sd_, self.coef_ = arrays["mu"], arrays["sd"], arrays["coef"]
        self.norms_ = arrays["norms"]
        self.global_rate_, self.intercept_ = (float(v) for v in arrays["scalars"])


def _mean_sim(targets: np.ndarray, others: np.ndarray) -> np.ndarray:
    if not len(others):
        return np.zeros(len(targets))
    return (targets @ others.T).mean(axis=1)


def _mean_rows(block: np.ndarray) -> np.ndarray:
    if block.shape[1] == 0:
        return np.zeros(block.shape[0])
    return block.mean(axis=1)
