"""Every metric against values computed by hand."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from fewrec.errors import DataError
from fewrec.eval import metrics as M


def csr(rows, n_items):
    r, c = [], []
    for i, items in enumerate(rows):
        r += [i] * len(items)
        c += list(items)
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(rows), n_items))


def test_top_k_orders_best_first_and_breaks_ties_by_index():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.0]])
    assert M.top_k_matrix(scores, 3).tolist() == [[1, 3, 2]]


def test_top_k_takes_the_lowest_indices_among_ties_at_the_boundary():
    """argpartition alone picks an arbitrary (CPU-dependent) subset of the items tied at the k-th
    score; the top k must be exactly a stable sort's first k, whatever the ties, -inf or NaN."""
    from fewrec.topk import top_k

    rng = np.random.default_rng(0)
    for _ in range(500):
        n, m = int(rng.integers(1, 6)), int(rng.integers(1, 60))
        scores = rng.integers(0, int(rng.integers(1, 5)), size=(n, m)).astype(np.float64)
        scores[rng.random((n, m)) < 0.2] = -np.inf
        scores[rng.random((n, m)) < 0.1] = np.nan
        k = int(rng.integers(0, m + 3))
        ranked = np.where(np.isnan(scores), -np.inf, scores)  # NaN ties with -inf
        want = np.argsort(-ranked, axis=1, kind="stable")[:, : min(k, m)]
        np.testing.assert_array_equal(M.top_k_matrix(scores, k), want)
        np.testing.assert_array_equal(top_k(scores[0], k), want[0])
    flat = np.zeros((3, 1000))  # all tied: the first items, in order
    np.testing.assert_array_equal(M.top_k_matrix(flat, 20), np.tile(np.arange(20), (3, 1)))


def test_top_k_by_breaks_ties_by_the_prior_then_the_index():
    """What a stable sort by (score desc, prior desc, index) gives, whatever the ties."""
    from fewrec.topk import top_k_by

    rng = np.random.default_rng(1)
    for _ in range(500):
        m = int(rng.integers(1, 60))
        scores = rng.integers(0, int(rng.integers(1, 4)), size=m).astype(np.float64)
        scores[rng.random(m) < 0.2] = -np.inf
        prior = rng.integers(0, 4, size=m).astype(np.float64)
        k = int(rng.integers(0, m + 3))
        want = np.lexsort((np.arange(m), -prior, -scores))[: min(k, m)]
        got = top_k_by(scores, k, prior)
        scored = np.isfinite(scores[want])  # -inf ranks keep top_k's order: no recommendation
        assert len(got) == len(want)
        np.testing.assert_array_equal(got[scored], want[scored])
        assert np.isneginf(scores[got[~scored]]).all()


def test_ranking_metrics_by_hand():
    # ranking: items 4, 3, 2, 1, 0 ; targets {3, 0} -> hits at ranks 2 and 5
    scores = np.array([[0.0, 1.0, 2.0, 3.0, 4.0]])
    targets = csr([[3, 0]], 5)
    top = M.top_k_matrix(scores, 5)
    hits = M.hits_matrix(top, targets)
    assert hits.tolist() == [[False, True, False, False, True]]
    n_t = np.array([2])
    dcg3 = 1 / math.log2(3)
    idcg3 = 1 / math.log2(2) + 1 / math.log2(3)
    assert M.ndcg_at_k(hits, n_t, 3)[0] == pytest.approx(dcg3 / idcg3)
    dcg5 = 1 / math.log2(3) + 1 / math.log2(6)
    assert M.ndcg_at_k(hits, n_t, 5)[0] == pytest.approx(dcg5 / idcg3)
    assert M.recall_at_k(hits, n_t, 3)[0] == pytest.approx(0.5)
    assert M.precision_at_k(hits, 3)[0] == pytest.approx(1 / 3)
    assert M.hit_rate_at_k(hits, 1)[0] == 0.0
    assert M.hit_rate_at_k(hits, 2)[0] == 1.0
    assert M.reciprocal_rank(scores, targets)[0] == pytest.approx(0.5)


def test_hits_matrix_matches_a_per_query_lookup():
    """The vectorised lookup against the plain per-row membership test, on random rankings with
    empty rows, empty target sets and targets outside the top k."""
    rng = np.random.default_rng(0)
    for _ in range(50):
        n, m = int(rng.integers(1, 20)), int(rng.integers(1, 40))
        targets = sp.random(n, m, density=rng.random() * 0.4, format="csr", random_state=rng)
        top = M.top_k_matrix(rng.random((n, m)), int(rng.integers(1, 12)))
        want = np.array([np.isin(top[i], targets[i].indices) for i in range(n)]).reshape(top.shape)
        np.testing.assert_array_equal(M.hits_matrix(top, targets), want)


def test_ndcg_ideal_is_capped_at_k():
    hits = np.array([[True, True]])
    assert M.ndcg_at_k(hits, np.array([10]), 2)[0] == pytest.approx(1.0)


def test_reciprocal_rank_skips_excluded_items_and_averages_ties():
    scores = np.array([[5.0, 4.0, 3.0, 3.0, 3.0]])
    targets = csr([[3]], 5)
    excluded = csr([[0]], 5)
    # item 0 excluded; item 1 first; items 2,3,4 tie: the target is 2nd, 3rd or 4th, each a
    # third of the time, so E[1 / rank] = (1/2 + 1/3 + 1/4) / 3 (1 / E[rank] was 1/3)
    assert M.reciprocal_rank(scores, targets, excluded)[0] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)


def test_reciprocal_rank_is_the_mean_over_every_order_of_ties():
    """MRR under ties was 1 / E[rank] while the other metrics count ties in expectation: it
    is now E[1 / rank], as enumerating every order of the tied items gives."""
    import itertools

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 7))
        scores = rng.integers(0, 3, size=n).astype(float)
        chosen = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)
        ranks = []
        for perm in itertools.permutations(range(n)):
            order = sorted(range(n), key=lambda i: (-scores[i], perm.index(i)))
            ranks.append(1 / (min(order.index(x) for x in chosen) + 1))
        got = M.reciprocal_rank(scores[None, :], csr([list(chosen)], n))[0]
        assert got == pytest.approx(np.mean(ranks), abs=1e-12)


def test_auc_by_hand_with_ties():
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.9, 0.1, 0.5, 0.5])
    # pairs (pos, neg): (0.9,0.1)=1 (0.9,0.5)=1 (0.5,0.1)=1 (0.5,0.5)=0.5 -> 3.5/4
    assert M.auc(labels, scores) == pytest.approx(0.875)


def test_auc_needs_both_classes():
    with pytest.raises(DataError):
        M.auc(np.array([1, 1]), np.array([0.1, 0.2]))


def test_mae_rmse():
    assert M.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert M.rmse([1, 2, 3], [2, 2, 5]) == pytest.approx(math.sqrt(5 / 3))
    with pytest.raises(DataError, match="differ in shape"):  # was broadcast to a 3 x 3 error
        M.mae([1, 2, 3], [[1], [2], [3]])
    with pytest.raises(DataError, match="differ in shape"):
        M.rmse([1, 2], [1, 2, 3])


def test_coverage_diversity_novelty():
    top = np.array([[0, 1], [1, 2]])
    assert M.catalogue_coverage(top, 6) == pytest.approx(0.5)
    vecs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # list 0: orthogonal -> distance 1; list 1: items 1, 2 orthogonal -> 1
    assert M.intra_list_diversity(top, vecs).tolist() == pytest.approx([1.0, 1.0])
    same = np.array([[0, 2]])
    assert M.intra_list_diversity(same, vecs)[0] == pytest.approx(0.0)
    # a list of one item has no pairs to measure: NaN, as with `shown` (it read 0, most alike)
    assert np.isnan(M.intra_list_diversity(np.array([[0], [1]]), vecs)).all()
    counts = np.array([3, 1, 0])
    # p = (c + 1) / (n_users + 1) with n_users = 3
    expected = (-math.log2(4 / 4) - math.log2(2 / 4)) / 2
    assert M.novelty(np.array([[0, 1]]), counts, 3)[0] == pytest.approx(expected)
    # ranks not shown (scored -inf) are left out; a list with nothing to measure is NaN
    shown = np.array([[True, False], [True, True]])
    assert M.catalogue_coverage(top, 4, shown) == pytest.approx(3 / 4)
    assert M.catalogue_coverage(top, 3, np.array([[True, False], [False, True]])) == pytest.approx(2 / 3)
    div = M.intra_list_diversity(top, vecs, shown)
    assert np.isnan(div[0]) and div[1] == pytest.approx(1.0)
    # an item without genres (a zero vector) is left out: it counted as orthogonal to everything,
    # so data without genres gave every model a diversity of 1.0
    bare = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    div = M.intra_list_diversity(np.array([[0, 1, 2], [1, 3, 0]]), bare)
    assert div[0] == pytest.approx(0.0) and np.isnan(div[1])
    nov = M.novelty(np.array([[0, 1], [0, 1]]), counts, 3, np.array([[True, False], [False, False]]))
    assert nov[0] == pytest.approx(0.0) and np.isnan(nov[1])


def test_bootstrap_ci_brackets_the_mean_and_shrinks_with_more_users():
    rng = np.random.default_rng(1)
    small = rng.random(50)
    big = rng.random(5000)
    lo, hi = M.bootstrap_ci(small)
    assert lo < small.mean() < hi
    blo, bhi = M.bootstrap_ci(big)
    assert (bhi - blo) < (hi - lo)
    assert M.bootstrap_ci(small, seed=3) == M.bootstrap_ci(small, seed=3)


def test_auc_ci_resamples_users_with_all_their_samples():
    """TALLRec's 1,000 test samples come from 16 users: resampling samples treated them as 1,000
    independent draws. Here 16 users, 60 samples each, scored by their own like-rate (the
    like-share rule): the CI over users is about twice as wide as the one over samples."""
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(16), 60)
    rate = rng.uniform(0.2, 0.8, 16)[users]
    labels = (rng.random(len(users)) < rate).astype(int)
    scores = rate + rng.normal(0, 0.01, len(users))
    point = M.auc(labels, scores)
    lo, hi = M.auc_ci(labels, scores, users)
    slo, shi = M.auc_ci(labels, scores, np.arange(len(users)))  # each sample its own group
    assert lo < point < hi and slo < point < shi
    assert (hi - lo) > 1.5 * (shi - slo), (lo, hi, slo, shi)
    assert M.auc_ci(labels, scores, users, seed=4) == M.auc_ci(labels, scores, users, seed=4)
    assert np.isnan(M.auc_ci(np.ones(5), np.arange(5.0), np.arange(5))).all()
    with pytest.raises(DataError, match="differ in shape"):
        M.auc_ci(labels, scores, users[:-1])


def test_bootstrap_gain_ci_is_paired_over_users():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.05, 1.0, 300)  # users differ a lot in how easy they are
    better = base * 1.2 + rng.normal(0, 0.01, 300)
    lo, hi = M.bootstrap_gain_ci(better, base)
    gain = better.mean() / base.mean() - 1
    assert lo < gain < hi and lo > 0.15 and hi < 0.25
    # pairing removes the user-to-user spread an unpaired ratio keeps
    idx, jdx = rng.integers(0, 300, (2, 1000, 300))
    unpaired = np.quantile(better[idx].mean(1) / base[jdx].mean(1) - 1, [0.025, 0.975])
    assert hi - lo < (unpaired[1] - unpaired[0]) / 3
    assert M.bootstrap_gain_ci(2 * base, base) == pytest.approx((1.0, 1.0))
    with pytest.raises(ValueError, match="same users"):
        M.bootstrap_gain_ci(base, base[:10])


def test_bootstrap_gain_ci_leaves_out_draws_where_the_baseline_scores_0():
    """On few test users some resamples draw only users the baseline scores 0 on: their gain is
    0/0, and the whole interval was NaN, even the baseline's gain over itself."""
    base = np.r_[np.zeros(16), 0.5, 0.2, 1.0, 0.3, 0.4]  # 0 in a draw: about 0.8 ** 21 = 1%
    other = np.r_[np.full(16, 0.1), 0.3, 0.1, 1.0, 0.3, 0.2]
    assert M.bootstrap_gain_ci(base, base) == (0.0, 0.0)
    lo, hi = M.bootstrap_gain_ci(other, base)
    assert np.isfinite([lo, hi]).all() and lo < other.mean() / base.mean() - 1 < hi
    # the baseline scores on 1 user of 8: 0.875 ** 8 = 34% of the draws have no gain: no interval
    few = np.r_[np.zeros(7), 0.5]
    assert np.isnan(M.bootstrap_gain_ci(few, few)).all()


def test_ranks_scored_minus_inf_are_never_hits(ml100k):
    """An ID-only model scores no cold item: restricted to the cold items its top-k is only the
    tie order of -inf scores (lowest indices first, mostly items the user has seen), which
    must count for nothing; a model that scores them is unaffected."""
    from fewrec.data.splits import cold_item_split
    from fewrec.eval.evaluate import evaluate_ranking
    from fewrec.models import make_model

    split = cold_item_split(ml100k, 0)
    pop = make_model("popularity").fit(split.train)
    rep = evaluate_ranking(pop, split.test, split.train, only_items=split.cold_items)
    assert rep.values["hr@20"] == 0.0 and rep.values["recall@20"] == 0.0 and rep.values["mrr"] == 0.0
    # nor are they recommendations for coverage, diversity and novelty (were 0.006, 0.68, 3.3)
    assert rep.values["coverage@10"] == 0.0
    assert "diversity@10" not in rep.values and "novelty@10" not in rep.values
    rnd = make_model("random").fit(split.train)
    rep = evaluate_ranking(rnd, split.test, split.train, only_items=split.cold_items)
    assert rep.values["hr@20"] > 0.2
    # coverage counts the eligible (cold) items, not the catalogue: random lists show them all
    assert rep.values["coverage@10"] > 0.95
    # a mask over the items is the same restriction (its coverage was 81.5: the mask's two
    # values were counted as the eligible items)
    mask = np.isin(np.arange(ml100k.n_items), split.cold_items)
    assert evaluate_ranking(rnd, split.test, split.train, only_items=mask).values == rep.values | {
        "score_seconds": pytest.approx(rep.values["score_seconds"], abs=10)
    }


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"only_items": np.array([-1, 3])}, r"only_items holds -1, not an item index"),
        ({"only_items": np.array([], int)}, r"only_items must be item indices .* at least one"),
        ({"only_items": ["50", "181"]}, r"model.fitted.items.index\(ids\)"),
        ({"item_vectors": np.ones((10, 3))}, r"one row per item of the model \(1682\), got shape \(10, 3\)"),
        ({"seed": "a"}, r"seed must be a whole number"),
        ({"evalset": "split"}, r"evalset must be an EvalSet, got Split. Fix: give split.test"),
        ({"train": "test"}, r"train must be a Dataset, got EvalSet"),
    ],
)
def test_evaluate_ranking_names_what_it_was_given_wrong(ml100k, fit_cached, warm, kwargs, pattern):
    """An audit: a Split for its test set was a raw TypeError, a negative index wrapped round to
    the last items, a bad item_vectors an IndexError inside the diversity metric."""
    from fewrec.errors import ArgumentError
    from fewrec.eval.evaluate import evaluate_ranking

    model = fit_cached("warm", warm, "popularity")
    given = {"evalset": warm.test, "train": warm.train} | kwargs
    given["evalset"] = warm if given["evalset"] == "split" else given["evalset"]
    given["train"] = warm.test if given["train"] == "test" else given["train"]
    with pytest.raises(ArgumentError, match=pattern):
        evaluate_ranking(model, given.pop("evalset"), given.pop("train"), **given)


def test_evaluate_ranking_warns_when_train_is_not_the_models_data(ml100k, fit_cached, warm, recwarn):
    """An audit: the whole data given as train moved novelty (1.7207 -> 1.7257) without a word."""
    from fewrec.eval.evaluate import evaluate_ranking

    model = fit_cached("warm", warm, "popularity")
    evaluate_ranking(model, warm.test, warm.train)
    assert not [w for w in recwarn if "the model was fitted on" in str(w.message)]
    with pytest.warns(UserWarning, match=r"train holds 100,000 interactions, the model was fitted on 79,619"):
        evaluate_ranking(model, warm.test, ml100k)


def test_evaluation_takes_cut_offs_of_numpy_and_past_the_catalogue(fit_cached, warm):
    """ks as a numpy array was "not a list"; a cut-off of 10**9 built 7 GB of NDCG discounts
    (the process was killed): no rank past the catalogue counts."""
    from fewrec.eval.evaluate import evaluate_ranking

    model = fit_cached("warm", warm, "popularity")
    few = evaluate_ranking(model, warm.test, warm.train, ks=np.array([10, 20]))
    assert "ndcg@20" in few.values
    whole = evaluate_ranking(model, warm.test, warm.train, ks=(10, 10**9))
    catalogue = evaluate_ranking(model, warm.test, warm.train, ks=(10, model.n_items))
    assert whole.values[f"ndcg@{10**9}"] == pytest.approx(catalogue.values[f"ndcg@{model.n_items}"])


def test_reciprocal_rank_reads_nan_and_minus_inf_targets_as_not_recommended():
    targets = sp.csr_matrix(np.array([[0, 0, 1, 0], [0, 1, 1, 0]], dtype=np.float32))
    scores = np.array([[1.0, 2.0, np.nan, 3.0], [1.0, -np.inf, -np.inf, -np.inf]])
    # NaN scored 1.0 once (it compared false with everything); a target the model cannot score
    # is not recommended, as in the top-k lists: 0, not the tie order of the unscored items
    assert M.reciprocal_rank(scores, targets).tolist() == [0.0, 0.0]
    scores[1, 2] = 0.0
    assert M.reciprocal_rank(scores, targets)[1] == pytest.approx(1 / 2)


def test_evaluating_a_model_trained_on_the_targets_is_refused(ml100k):
    """A model fitted on another split (or all the data) has seen this split's targets: its
    figures would be inflated (EASE: 0.35 -> 0.46 NDCG@10), so evaluation refuses it."""
    from fewrec.data.splits import cold_user_split, warm_split
    from fewrec.eval.evaluate import evaluate_ranking
    from fewrec.models import make_model

    s0, s1 = warm_split(ml100k, 0), warm_split(ml100k, 1)
    pop = make_model("popularity").fit(s0.train)
    assert evaluate_ranking(pop, s0.test, s0.train).values["n_queries"] > 0  # its own split: fine
    with pytest.raises(DataError, match="trained on .* of the interactions this evaluation holds out"):
        evaluate_ranking(pop, s1.test, s1.train)
    cold = cold_user_split(ml100k, 5, 0)
    with pytest.raises(DataError, match="holds out"):
        evaluate_ranking(make_model("popularity").fit(ml100k), cold.test, cold.train)


def test_cut_offs_and_shapes_are_checked(ml100k):
    """k = 0 gave NaN precision and zeros; a target matrix with fewer rows read the missing
    queries as target-less; queries without targets counted as misses and halved the means."""
    from fewrec.data.splits import warm_split
    from fewrec.errors import ArgumentError
    from fewrec.eval.evaluate import evaluate_ranking
    from fewrec.models import make_model

    hits = np.ones((2, 3), dtype=bool)
    for bad in (0, -1, 2.5, "10", True):
        with pytest.raises(ArgumentError, match="k must be (an int|>= 1), got"):
            M.precision_at_k(hits, bad)
    with pytest.raises(DataError, match="3 ranked lists but 2 rows of targets"):
        M.hits_matrix(np.array([[0, 1], [1, 0], [2, 3]]), sp.csr_matrix(np.eye(4)[:2]))
    split = warm_split(ml100k, 0)
    pop = make_model("popularity").fit(split.train)
    for ks in ((0,), (), 10, "10", (10, 2.5)):
        with pytest.raises(ArgumentError, match="ks"):
            evaluate_ranking(pop, split.test, split.train, ks=ks)
    targets = split.test.targets.tolil()
    targets.rows[0], targets.data[0] = [], []
    holed = split.test.subset(np.arange(len(split.test)))
    holed.targets = targets.tocsr()
    with pytest.raises(DataError, match="1 of the 943 queries have no target items"):
        evaluate_ranking(pop, holed, split.train)


def test_a_float_cut_off_reads_as_the_other_not_an_int_errors(ml100k):
    """An audit: ``k=2.0`` said "k must be a whole number >= 1, got 2.0" where fewrec's other
    counts say "must be an int, got the float 2.0", and ``ks=[5.0]`` ended in "Fix: each of
    ks=10"."""
    from fewrec.data.splits import warm_split
    from fewrec.errors import ArgumentError
    from fewrec.eval.evaluate import evaluate_ranking
    from fewrec.models import Query, make_model

    pop = make_model("popularity").fit(ml100k)
    with pytest.raises(ArgumentError, match=r"^k must be an int, got the float 2\.0\. Fix: k=10$"):
        pop.recommend(Query(items=["50"]), k=2.0)
    with pytest.raises(ArgumentError, match=r"^k must be an int, got the float 2\.0\. Fix: k=10$"):
        M.precision_at_k(np.ones((2, 3), dtype=bool), 2.0)
    split = warm_split(ml100k, 0)
    with pytest.raises(ArgumentError) as caught:
        evaluate_ranking(pop, split.test, split.train, ks=[5.0])
    assert str(caught.value) == "each cut-off in ks must be an int, got the float 5.0. Fix: ks=(10, 20)"


def test_tied_scores_count_in_expectation_not_by_item_index():
    """Ties broke toward the lower item index, which on MovieLens are the popular films: a
    model scoring every item alike got NDCG@10 0.23 on cold users (0.06 in expectation). A
    rank in a tie group now holds targets / size of a hit, over the group's full size."""
    n_items, k = 50, 10
    targets = csr([[0, 1, 2], [40, 41]], n_items)
    flat = np.zeros((2, n_items))
    top = M.top_k_matrix(flat, k)
    tied = M.tied_hits(flat, top, targets)
    np.testing.assert_allclose(tied.expected, [[3 / 50] * k, [2 / 50] * k])
    disc = 1 / np.log2(np.arange(2, k + 2))
    idcg = np.array([disc[:3].sum(), disc[:2].sum()])
    np.testing.assert_allclose(
        M.ndcg_at_k(tied.expected, np.array([3, 2]), k), np.array([3 / 50, 2 / 50]) * disc.sum() / idcg
    )
    # HR: the chance ten draws from 50 catch one of 3 (or 2) targets
    miss = [math.comb(47, 10) / math.comb(50, 10), math.comb(48, 10) / math.comb(50, 10)]
    np.testing.assert_allclose(M.tied_hit_rate(tied, k), 1 - np.array(miss))
    # without ties it is the plain hit matrix; a tie wholly inside the list is certain
    scores = np.tile(-np.arange(n_items, dtype=float), (2, 1))
    scores[1, 40], scores[1, 41] = 5.0, 5.0  # two targets tied at the top
    top = M.top_k_matrix(scores, k)
    tied = M.tied_hits(scores, top, targets)
    np.testing.assert_array_equal(tied.expected, M.hits_matrix(top, targets).astype(float))
    assert M.tied_hit_rate(tied, 1).tolist() == [1.0, 1.0]
    # -inf ranks are no recommendations, tied or not; +inf ranks are
    inf = np.full((1, 5), -np.inf)
    inf[0, 3] = np.inf
    tied = M.tied_hits(inf, M.top_k_matrix(inf, 3), csr([[3, 4]], 5))
    assert tied.expected.tolist() == [[1.0, 0.0, 0.0]] and M.tied_hit_rate(tied, 3).tolist() == [1.0]


def test_an_item_rated_0_stays_excluded():
    """binary_union summed ratings, and scipy drops the zeros a sum gives: an item rated 0 in
    training (a rating the library supports) was ranked again."""
    from fewrec.data.splits import binary_union

    rated = sp.csr_matrix((np.array([0.0, 5.0]), ([0, 0], [1, 2])), shape=(1, 4))
    rated_again = sp.csr_matrix((np.array([3.0]), ([0], [3])), shape=(1, 4))
    assert binary_union(rated, rated_again).indices.tolist() == [1, 2, 3]


def test_the_benchmark_scores_new_users_as_the_model_serves_them(cold_user):
    """The benchmark read a new user's revealed dislikes as likes, while `recommend` leaves
    them out for models that do not read ratings (itemknn K5 0.421 against 0.428 as served)."""
    from fewrec.eval.evaluate import score_eval_set
    from fewrec.models import Query, make_model

    model = make_model("itemknn").fit(cold_user.train)
    evalset = cold_user.test
    scores = score_eval_set(model, evalset)
    st = model.fitted
    for q in range(0, len(evalset), 25):
        row = evalset.history[q]
        query = Query(items=[st.items.id(i) for i in row.indices], ratings=row.data.tolist())
        served = model.score(query).to_numpy()
        finite = np.isfinite(scores[q])
        np.testing.assert_allclose(scores[q][finite], served[finite], rtol=1e-6)


def test_popularity_by_segment_reads_no_held_out_user(ml100k, cold_user):
    """Segment sizes counted every user of the data, the held-out ones too: their side info
    moved the scores of test queries (by up to 0.42)."""
    from fewrec.models import Query, make_model

    train = cold_user.train
    held_out = np.flatnonzero(train.user_counts() == 0)
    moved = train.user_info.copy()
    moved.loc[held_out, "gender"] = "F"
    moved.loc[held_out, "occupation"] = "doctor"
    other = train.__class__(
        train.interactions, train.users, train.items, train.item_info, moved, train.name, train.item_template
    )
    query = Query(user_info={"gender": "M", "occupation": "doctor", "age": 30})
    a = make_model("popularity", segment_by="auto").fit(train).score(query).to_numpy()
    b = make_model("popularity", segment_by="auto").fit(other).score(query).to_numpy()
    np.testing.assert_array_equal(a, b)


def test_metrics_refuse_inputs_that_gave_nan_wrong_values_or_numpy_errors():
    """An audit: mismatched shapes were read silently (a third query ignored), string labels
    were all True, NaN scores gave a NaN AUC, empty errors NaN with warnings, a level of 95 a
    numpy error, and more hits than targets an NDCG above 1."""
    from fewrec.errors import ArgumentError

    with pytest.raises(DataError, match=r"scores \(2, 5\) and targets \(3, 5\)"):
        M.reciprocal_rank(np.zeros((2, 5)), sp.csr_matrix((3, 5)))
    with pytest.raises(DataError, match="differ in shape"):
        M.reciprocal_rank(np.random.rand(1, 5), csr([[7]], 8))
    with pytest.raises(DataError, match="booleans or 0/1"):
        M.auc(["no", "yes"], [0.1, 0.2])
    with pytest.raises(DataError, match="booleans or 0/1"):
        M.auc([2, 0], [0.1, 0.2])
    with pytest.raises(DataError, match="1 scores are NaN"):
        M.auc([1, 0], [np.nan, 0.3])
    assert M.auc(np.array([1.0, 0.0]), [0.9, 0.3]) == 1.0
    for error in (M.mae, M.rmse):
        with pytest.raises(DataError, match="no values"):
            error([], [])
    with pytest.raises(ArgumentError, match="n_items"):
        M.catalogue_coverage(np.zeros((1, 1), int), 0)
    with pytest.raises(ArgumentError, match="level must be a share"):
        M.bootstrap_ci([1, 0, 0.5], level=95)
    with pytest.raises(DataError, match="more hits than targets"):
        M.ndcg_at_k(np.array([[1, 1, 1]]), np.array([1]), 3)
    with pytest.raises(DataError, match="one count per query"):
        M.recall_at_k(np.array([[1, 0]]), np.array([1, 1]), 2)
    assert M.ndcg_at_k([[1, 0, 1]], [2], 3)[0] == pytest.approx((1 + 1 / 2) / (1 + 1 / math.log2(3)))


def test_evaluating_an_empty_evalset_is_an_error_not_nan(ml100k):
    """A cold-user split past every user's count has no test users; its evaluation gave NaN for
    every metric, with 18 numpy warnings."""
    from fewrec.data.splits import cold_user_split, make_split
    from fewrec.errors import ConfigError
    from fewrec.eval.evaluate import evaluate_ranking
    from fewrec.models import make_model

    split = cold_user_split(ml100k, shots=5)  # (a K past every user's count is the split's error)
    empty = split.test.subset(np.zeros(0, dtype=np.int64))
    model = make_model("popularity").fit(split.train)
    with pytest.raises(DataError, match="no queries"):
        evaluate_ranking(model, empty, split.train)
    with pytest.raises(ConfigError, match="use tallrec_split"):
        make_split(ml100k, "tallrec")


def test_evaluation_checks_a_models_scores_as_recommend_does(warm):
    """An audit: evaluation read `score_batch` unchecked. One row for a batch was broadcast to
    every query (a silently wrong NDCG), 1-D or boolean scores were evaluated, and float64
    scores were written into float32, so ``1e8 + popularity`` collapsed into ties (NDCG 0.157
    where recommend ranks as popularity, 0.518). It refuses what recommend refuses, with the
    same message, and keeps a model's float64."""
    from fewrec.errors import FewrecError
    from fewrec.eval.evaluate import evaluate_ranking
    from fewrec.models import Query, Recommender

    class Shaped(Recommender):
        name = "test-shaped"
        reads_item_text = False
        shape = "full"

        def _fit(self, data):
            self.pop_ = np.asarray(self.fitted.train.getnnz(axis=0), dtype=np.float32)

        def score_batch(self, batch):
            full = np.tile(self.pop_, (len(batch), 1))
            return {
                "full": full,
                "one row": full[:1],
                "1-D": self.pop_,
                "bool": full > 10,
                "offset": 1e8 + full.astype(np.float64),
                "some NaN": np.where(np.arange(full.shape[1]) % 7 == 0, np.nan, full),
            }[self.shape]

    model = Shaped().fit(warm.train)
    test = warm.test.subset(np.arange(40))
    plain = evaluate_ranking(model, test, warm.train, ks=(10,)).values["ndcg@10"]
    for shape in ("one row", "1-D", "bool"):
        model.shape = shape
        with pytest.raises(FewrecError, match=r"test-shaped.score_batch gave ndarray of shape") as caught:
            evaluate_ranking(model, test, warm.train, ks=(10,))
        if shape == "one row":  # (a query's one row is right for recommend)
            continue
        with pytest.raises(FewrecError) as served:
            model.recommend(Query(items=["50"]))
        assert str(served.value) == str(caught.value).replace("(40,", "(1,")  # the same message
    model.shape = "offset"
    got = evaluate_ranking(model, test, warm.train, ks=(10,)).values["ndcg@10"]
    assert got == pytest.approx(plain, abs=1e-12)
    # NaN for some items left them out of every list without a word (recommend warned only for a
    # query of NaN alone)
    model.shape = "some NaN"
    for run in (
        lambda: evaluate_ranking(model, test, warm.train, ks=(10,)),
        lambda: model.recommend(Query(items=["50"])),
    ):
        with pytest.warns(UserWarning, match=r"test-shaped.score_batch gave NaN for some items"):
            run()
