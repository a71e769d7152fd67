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

How hard the weights are held toward zero is chosen by cross-validated AUC over users (episodes
of one user stay in one fold), and the like-share rule alone is a candidate too. Few-shot data
then gets the rule or a strongly held fit, whose direction tends to each feature's plain
covariance with the label, the robust choice for a few dozen samples; a warm catalogue gets a
freer one (TALLRec K = 16 / 64 / 256: AUC 0.687 / 0.720 / 0.741 with a fixed C = 1, now
0.730 / 0.732 / 0.746; catalogue 0.782 either way). A final one-feature logistic fit on the
linear score restores calibrated probabilities (it cannot change the ranking).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field, PositiveFloat

from fewrec.data.dataset import Dataset
from fewrec.errors import DataError
from fewrec.models.base import Recommender, register
from fewrec.models.content import TextModelConfig, embed_items
from fewrec.models.query import QueryBatch

FEATURES = ("share", "rate", "text", "cf", "pop", "bias")
RULE_TIE_BREAK = 1e-4
"""Weight (relative to the standardised share) of the tie-breaking fit when the rule wins."""


class LikeConfig(TextModelConfig):
    history: int = Field(10, ge=1)
    """Previous interactions used as the history of a training episode."""
    prior_strength: float = Field(5.0, ge=0)
    """Pseudo-ratings at the global like rate added to each item's like rate."""
    max_episodes: int = Field(50_000, ge=10)
    """Most training episodes (one per training interaction after a user's first); with more,
    a seeded random sample of this many is fitted on. Larger: more data to fit, a slower fit."""
    c: float | None = Field(None, gt=0)
    """Inverse L2 strength of the logistic regression; None: chosen from ``c_grid`` by
    cross-validated AUC, folds split by user."""
    c_grid: tuple[PositiveFloat, ...] = Field((1e-4, 1e-3, 1e-2, 0.1, 1.0), min_length=1)  # (() failed)
    """Values of ``c`` that cross-validation tries when ``c`` is None (unused otherwise): the
    simplest candidate whose AUC is within one standard error of the best's wins, the like-share
    rule alone first, then these from the smallest. The smallest is also the choice when there
    are too few users to cross-validate, and the fit that breaks the rule's ties."""
    like_threshold: float = Field(0.6, gt=0, lt=1)
    """A rating counts as liked above this share of the top rating (3 on a 1-5 scale)."""


@register
class LikeClassifier(Recommender):
    """Will the user like this item? A logistic regression over the share of the history the
    user liked, the item's like-rate among other users, its text's match to the liked items and
    a collaborative affinity (the TALLRec task)."""

    name = "like-clf"
    reads_ratings = True
    # it ranks by the chance of a like, much of it the item's own like-rate: not "Popular"
    unraised_reason = "Most people who tried it liked it."
    Config = LikeConfig
    config: LikeConfig
    scores_new_items = True

    def _fit(self, data: Dataset) -> None:
        from sklearn.linear_model import LogisticRegression

        cfg = self.config
        self.emb_ = embed_items(data, cfg)
        inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
        like = self.fitted.like_cut(cfg.like_threshold)
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
        rows, groups = [], []
        users = inter["user"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        for lo, hi in zip(starts, ends, strict=True):
            for j in range(lo + 1, hi):
                h0 = max(lo, j - cfg.history)
                rows.append((items[h0:j], liked[h0:j], items[j], liked[j]))
                groups.append(users[lo])
        rng = np.random.default_rng(cfg.seed)
        if len(rows) > cfg.max_episodes:
            keep = rng.choice(len(rows), cfg.max_episodes, replace=False)
            rows, groups = [rows[i] for i in keep], [groups[i] for i in keep]
        feats = np.array([self._features(h, hl, np.array([t]), loo=lab)[0] for h, hl, t, lab in rows])
        labels = np.array([lab for *_, lab in rows])
        self.mu_ = feats.mean(axis=0) if len(feats) else np.zeros(len(FEATURES))
        self.sd_ = feats.std(axis=0) + 1e-6 if len(feats) else np.ones(len(FEATURES))
        if len(set(labels.tolist())) < 2:
            # one class only: fall back to the like-share rule, on the share itself (standardised
            # by a spread of ~1e-6 it was a step at the training mean: 0.5, 0 or 1 for every item,
            # and exp overflowed), from 0.12 (no like) through 0.5 to 0.88 (all liked)
            self.c_ = cfg.c if cfg.c is not None else 1.0
            self.mu_, self.sd_ = np.zeros(len(FEATURES)), np.ones(len(FEATURES))
            self.coef_ = 4.0 * np.eye(len(FEATURES))[0]
            self.intercept_ = -2.0
            return
        z = (feats - self.mu_) / self.sd_
        self.c_ = cfg.c if cfg.c is not None else self._cross_validated_c(z, labels, np.array(groups))
        if self.c_ == 0.0:
            # The like-share rule won the cross-validation. The share is one number per history,
            # so alone it cannot rank items for one user: the most strongly held fit breaks the
            # ties (scaled far below the share, it cannot reorder different histories' answers).
            clf = None
            coef = self._rule_coef(z, labels)
        else:
            clf = LogisticRegression(C=self.c_, max_iter=1000, random_state=cfg.seed)
            coef = clf.fit(z, labels).coef_[0].astype(np.float64)
        # Platt scaling: a strongly held fit ranks well but squeezes every probability toward
        # the base rate; rescale its score to calibrated odds (the ranking stays as it is).
        platt = LogisticRegression(C=1e6, max_iter=1000).fit((z @ coef)[:, None], labels)
        scale = float(platt.coef_[0, 0])
        if scale > 0:
            self.coef_, self.intercept_ = coef * scale, float(platt.intercept_[0])
        else:  # the score does not rise with the label here: keep the direction as fitted
            self.coef_, self.intercept_ = coef, 0.0 if clf is None else float(clf.intercept_[0])

    def _rule_coef(self, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The like-share rule, its ties broken by the most strongly held fit. The share is one
        number per history, so alone it cannot rank items for one user (nor the many histories
        with the same share); the fit, scaled far below the share, orders only within a tie."""
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression(C=min(self.config.c_grid), max_iter=1000, random_state=self.config.seed)
        tie = fit.fit(z, labels).coef_[0].astype(np.float64)
        tie[0] = 0.0
        return np.eye(len(FEATURES))[0] + RULE_TIE_BREAK * tie / (np.abs(tie).sum() + 1e-12)

    def _cross_validated_c(self, z: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
        """The simplest candidate whose AUC on held-out users is within one standard error of
        the best's (a one-SE rule on the per-fold differences: with little data, doubt the freer
        fit). Candidates, simplest first: the like-share rule (returned as C = 0; judged here by
        the share alone, used with `_rule_coef`'s tie-break), then ``c_grid`` from the most
        strongly held. The smallest C when no fold has both classes on each side."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GroupKFold

        from fewrec.eval.metrics import auc

        grid = sorted(self.config.c_grid)
        n_folds = min(5, len(np.unique(groups)))
        if n_folds < 2:
            return grid[0]
        folds = []  # per fold: the AUC of each C
        for train, test in GroupKFold(n_splits=n_folds).split(z, labels, groups):
            if len(np.unique(labels[train])) < 2 or len(np.unique(labels[test])) < 2:
                continue
            row = [auc(labels[test], z[test, 0])]  # the rule, judged by the share alone
            for c in grid:
                clf = LogisticRegression(C=c, max_iter=1000, random_state=self.config.seed)
                row.append(auc(labels[test], clf.fit(z[train], labels[train]).decision_function(z[test])))
            folds.append(row)
        if len(folds) < 2:
            return grid[0]
        scores = np.array(folds)
        diff = scores[:, [int(np.argmax(scores.mean(axis=0)))]] - scores  # >= 0 on average
        se = diff.std(axis=0, ddof=1) / np.sqrt(len(folds))
        return float([0.0, *grid][int(np.flatnonzero(diff.mean(axis=0) <= se)[0])])

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
        # the mean similarity to the liked items minus that to the disliked ones, as a similarity
        # to their mean vectors (a catalogue x history product per query took half the scoring)
        text = self.emb_[targets] @ (_mean_vector(self.emb_[lk]) - _mean_vector(self.emb_[dk]))
        if loo is None:  # only the (target, history item) entries: a catalogue's rows were copied per query
            cf = _mean_rows(self.cf_[np.ix_(targets, lk)]) - _mean_rows(self.cf_[np.ix_(targets, dk)])
        else:
            # the episode's own user made every (target, history) pair co-occur once: remove it
            cf_rows = np.take(self.cf_, targets, axis=0)  # a copy, whatever ``targets`` is
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
        every = np.broadcast_to(np.arange(self.n_items), (len(batch), self.n_items))
        return self._probabilities(batch, every)

    def score_batch(self, batch: QueryBatch) -> np.ndarray:
        return self.probabilities(batch).astype(np.float32)

    def score_candidates(self, batch: QueryBatch, candidates: np.ndarray) -> np.ndarray:
        """P(like) of given items per query ((n_queries x m) item indices), as `score_batch`
        gives them but without scoring the whole catalogue (TALLRec samples ask for one item)."""
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 2 or cand.shape[0] != len(batch):
            raise DataError(f"candidates must be (n_queries x m), got {cand.shape} for {len(batch)} queries")
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_items):
            raise DataError(f"candidate item indices must be in 0..{self.n_items - 1}")
        return self._probabilities(batch, cand).astype(np.float32)

    def _probabilities(self, batch: QueryBatch, items: np.ndarray) -> np.ndarray:
        like = self.fitted.like_cut(self.config.like_threshold)
        h: sp.csr_matrix = batch.history
        out = np.empty(items.shape, dtype=np.float64)
        for q in range(len(batch)):
            idx = h.indices[h.indptr[q] : h.indptr[q + 1]]
            lab = (h.data[h.indptr[q] : h.indptr[q + 1]] > like).astype(np.float64)
            f = (self._features(idx, lab, items[q]) - self.mu_) / self.sd_
            out[q] = 1.0 / (1.0 + np.exp(-(f @ self.coef_ + self.intercept_)))
        return out

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
            "scalars": np.array([self.global_rate_, self.intercept_, self.c_]),
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
        scalars = [float(v) for v in arrays["scalars"]]
        self.global_rate_, self.intercept_ = scalars[:2]
        self.c_ = scalars[2] if len(scalars) > 2 else 1.0  # saved before C was chosen per fit


def _mean_vector(rows: np.ndarray) -> np.ndarray:
    """The mean row (zeros for none)."""
    return rows.mean(axis=0) if len(rows) else np.zeros(rows.shape[1], dtype=rows.dtype)


def _mean_rows(block: np.ndarray) -> np.ndarray:
    if block.shape[1] == 0:
        return np.zeros(block.shape[0])
    return block.mean(axis=1)
