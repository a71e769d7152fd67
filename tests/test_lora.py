"""LoRA fine-tuning of the packaged encoder (`fewrec.adapt.lora`) and `content-lora`.

Real model, tiny budget: 200 MovieLens items, a few dozen steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

pytest.importorskip("peft")

from fewrec.adapt.lora import LoraEncoder, LoraOptions, train_lora  # noqa: E402
from fewrec.data.dataset import Dataset, Vocabulary  # noqa: E402
from fewrec.errors import ConfigError, DataError  # noqa: E402
from fewrec.models.base import Query, load_model, make_model  # noqa: E402
from fewrec.models.content import ContentConfig, embed_texts  # noqa: E402
from fewrec.models.lora_content import LoraContentRecommender  # noqa: E402, F401  (registers content-lora)

N_ITEMS = 200
FAST = {"batch_size": 32, "eval_every": 10, "max_seconds": 120.0}


@pytest.fixture(scope="module")
def tiny(ml100k) -> Dataset:
    """The first 200 items of ML-100K and the users with at least 5 interactions on them."""
    inter = ml100k.interactions
    inter = inter[inter["item"] < N_ITEMS]
    counts = inter.groupby("user").size()
    users = np.sort(counts[counts >= 5].index.to_numpy())
    inter = inter[inter["user"].isin(users)]
    remap = pd.Series(np.arange(len(users)), index=users)
    inter = inter.assign(user=remap.loc[inter["user"].to_numpy()].to_numpy()).reset_index(drop=True)
    return Dataset(
        inter,
        Vocabulary([ml100k.users.id(int(u)) for u in users]),
        Vocabulary(ml100k.items.ids[:N_ITEMS]),
        item_info=ml100k.item_info.iloc[:N_ITEMS].reset_index(drop=True),
        user_info=ml100k.user_info.iloc[users].reset_index(drop=True),
        name="ml100k-tiny",
        item_template=ml100k.item_template,
    )


@pytest.fixture(scope="module")
def trained(tiny):
    """20 steps without early stopping (the final adapter is kept)."""
    options = LoraOptions(max_steps=20, lr=5e-3, valid_users=0, **FAST)
    return train_lora(tiny.item_texts(), tiny.matrix(), 5.0, options, progress=False)


def test_fresh_adapter_equals_the_packaged_encoder(tiny):
    from fewrec.text.encoder import get_encoder

    texts = tiny.item_texts()[:16] + ["I love space adventure films like Interstellar"]
    fresh = LoraEncoder(LoraOptions()).encode(texts)
    frozen = get_encoder("all-MiniLM-L6-v2", "torch").encode(texts)
    np.testing.assert_allclose((fresh * frozen).sum(axis=1), 1.0, atol=1e-5)


def test_only_adapter_parameters_train():
    for layers, expected in ((2, 2 * 2 * (8 * 384 + 384 * 8)), (6, 6 * 2 * (8 * 384 + 384 * 8))):
        enc = LoraEncoder(LoraOptions(lora_layers=layers))
        trainable = enc.trainable()
        assert enc.n_trainable() == expected
        assert all(".lora_A." in n or ".lora_B." in n for n in trainable)
        # adapters sit only in the top `layers` layers, on query and value
        assert {n.split(".layer.")[1].split(".")[0] for n in trainable} == {
            str(i) for i in range(6 - layers, 6)
        }
        assert {n.split(".self.")[1].split(".")[0] for n in trainable} == {"query", "value"}
        frozen = sum(p.numel() for p in enc.model.parameters() if not p.requires_grad)
        assert frozen > 22_000_000


def test_training_lowers_the_loss_and_changes_the_embeddings(trained):
    losses = np.asarray(trained.losses)
    assert len(losses) == trained.steps == 20 and trained.stop_reason == "max_steps"
    assert losses[-5:].mean() < losses[:5].mean() - 0.05, losses
    diff = np.abs(trained.item_emb - trained.frozen_emb).max()
    cos = (trained.item_emb * trained.frozen_emb).sum(axis=1)
    assert diff > 1e-3 and cos.min() < 0.999, (diff, cos.min())
    np.testing.assert_allclose(np.linalg.norm(trained.item_emb, axis=1), 1.0, atol=1e-5)


def test_training_leaves_the_base_weights_alone(trained):
    from fewrec.adapt.lora import _pristine_base

    pristine = dict(_pristine_base()[0].named_parameters())
    for name, p in trained.encoder.bert.named_parameters():
        if "lora_" not in name:
            base = name.replace(".base_layer", "")
            assert np.array_equal(p.detach().numpy(), pristine[base].detach().numpy()), name


def test_the_encoder_and_lora_share_one_frozen_minilm(tiny, trained):
    """The MiniLM had been read twice in a process using both the torch encoder and LoRA; now
    once, and LoRA's training (on its own copy) leaves the shared weights' vectors as they were."""
    from fewrec.adapt.lora import _pristine_base
    from fewrec.text.encoder import _load_backend, get_encoder

    encoder = get_encoder("all-MiniLM-L6-v2", "torch")
    backend = _load_backend(encoder._spec, "torch")
    assert backend.bert is _pristine_base()[0]
    assert backend.tokenizer is not _pristine_base()[1]  # a call sets its padding and truncation
    texts = tiny.item_texts()[:8]
    np.testing.assert_allclose(backend.embed(texts), trained.frozen_emb[:8], atol=1e-5)


def test_early_stopping_keeps_the_best_adapter(tiny):
    options = LoraOptions(**{**FAST, "max_steps": 20, "eval_every": 5, "lr": 5e-3, "valid_users": 20})
    texts = tiny.item_texts()
    result = train_lora(texts, tiny.matrix(), 5.0, options, progress=False)
    scores = [e["score"] for e in result.evals]
    assert result.evals[0]["step"] == 0 and len(result.evals) >= 2
    assert result.best_step == result.evals[int(np.argmax(scores))]["step"]
    assert result.horizon <= options.max_steps  # (the plan after the last step read 21 of 20)
    # the returned embeddings are those of the kept adapter
    again = result.encoder.encode(texts[:20], max_length=options.max_seq_length)
    np.testing.assert_allclose(again, result.item_emb[:20], atol=1e-5)


def test_time_budget_is_respected(tiny):
    options = LoraOptions(**{**FAST, "max_steps": 1000, "max_seconds": 0.5, "valid_users": 0})
    result = train_lora(tiny.item_texts(), tiny.matrix(), 5.0, options, progress=False)
    assert result.stop_reason == "time" and result.steps == 0
    np.testing.assert_array_equal(result.item_emb, result.frozen_emb)


def test_content_lora_save_load_scores_equal(tiny, tmp_path):
    model = make_model("content-lora", max_steps=10, lr=5e-3, valid_users=0, **FAST).fit(tiny)
    text = "I love space adventure films like Star Wars"
    queries = [Query(items=["1", "50"]), Query(text=text), Query(items=["2"], ratings=[1.0], text=text)]
    before = model.score_many(queries)
    model.save(tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert type(back) is type(model) and back._encoder is None  # rebuilt lazily
    np.testing.assert_array_equal(back.item_emb_, model.item_emb_)
    for a, b in zip(before, back.score_many(queries), strict=True):
        pd.testing.assert_series_equal(a, b, rtol=1e-5)
    # free text goes through the adapted encoder, not the frozen one
    frozen = embed_texts([text], ContentConfig(), 384)
    np.testing.assert_allclose(back.embed_texts([text]), model.embed_texts([text]), atol=1e-6)
    assert np.abs(model.embed_texts([text]) - frozen).max() > 1e-3
    # new items are embedded by the adapted encoder too
    info = tiny.item_info.iloc[[49]].reset_index(drop=True)  # Star Wars again, under a new id
    back.add_items(["new-star-wars"], info)
    np.testing.assert_allclose(back.item_emb_[-1], back.item_emb_[49], atol=1e-5)


def test_bad_configs_and_data_are_clear_errors(tiny):
    for bad in (
        {"lora_rank": 0},
        {"temperature": 0.0},
        {"lora_targets": ["nope"]},
        {"max_seconds": 0},
        {"warmup_fraction": 1.0},
        {"backend": "onnx"},
        {"no_such_option": 1},
    ):
        with pytest.raises(ConfigError):
            make_model("content-lora", **bad)
    with pytest.raises(ConfigError):
        LoraOptions(lr=-1.0)
    with pytest.raises(ConfigError, match="lora_layers"):
        LoraEncoder(LoraOptions(lora_layers=7))
    texts = tiny.item_texts()
    with pytest.raises(DataError, match="item texts"):
        train_lora(texts[:-1], tiny.matrix(), 5.0, LoraOptions(), progress=False)
    disliked = tiny.matrix().copy()
    disliked.data[:] = 1.0
    with pytest.raises(DataError, match="liked"):
        train_lora(texts, disliked, 5.0, LoraOptions(), progress=False)
    with pytest.raises(DataError):
        train_lora(texts, sp.csr_matrix((3, len(texts))), 5.0, LoraOptions(), progress=False)


@pytest.mark.slow
def test_lora_beats_the_frozen_encoder_on_held_out_cold_items(ml100k):
    """On the cold-item split's validation items (never trained on), recall@20 among them."""
    from fewrec.data.splits import cold_item_split
    from fewrec.eval.evaluate import evaluate_ranking

    split = cold_item_split(ml100k, seed=0)
    cold = np.unique(split.valid.targets.indices)
    frozen = make_model("content").fit(split.train)
    lora = make_model("content-lora").fit(split.train)
    r0 = evaluate_ranking(frozen, split.valid, split.train, only_items=cold).values["recall@20"]
    r1 = evaluate_ranking(lora, split.valid, split.train, only_items=cold).values["recall@20"]
    assert r1 > r0 * 1.1, (r0, r1)
