"""`fewrec demo` (`make demo`, "the main job end to end"), run through the CLI.

The demo's own steps all run: the data, a compact cold-start benchmark, training on all of
MovieLens-100K, and top-10 lists for a new user who liked named films, for one who wrote a
sentence and for one who wrote in Chinese. Two heavy choices are made cheap, and nothing else:
the benchmark's model list (DEMO_MODELS, seven models with neural ones) is two cheap models,
and the model trained on all data (few-shot, ~12 s on 2 cores, more beside other work) is
`content`, which reads text as few-shot does.
"""

from __future__ import annotations

import re

import pytest
from cli_helpers import fewrec_here as fewrec

LIKED = ["Alien", "Babe"]  # not the demo's default titles: --liked must reach the demo
TEXT = "Give me courtroom dramas with a twist"


@pytest.fixture
def shown(monkeypatch):
    """The demo made cheap as the module docstring says; the lists it prints, by table title."""
    from fewrec import demo

    monkeypatch.setattr(demo, "DEMO_MODELS", ["popularity", "itemknn"])
    real_make = demo.make_model
    monkeypatch.setattr(
        demo, "make_model", lambda name, **kw: real_make("content" if name == "fewshot" else name, **kw)
    )
    lists = {}
    real_print = demo.print_recommendations

    def print_recommendations(console, recs, item_info, items, title="Recommendations", **kw):
        lists[title] = recs.copy()
        return real_print(console, recs, item_info, items, title=title, **kw)

    monkeypatch.setattr(demo, "print_recommendations", print_recommendations)
    return lists


def test_demo_recommends_with_reasons_for_the_liked_titles(shown, ml100k):
    args = [a for title in LIKED for a in ("--liked", title)]
    proc = fewrec("demo", *args, "--text", TEXT)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout
    # the benchmark ran and printed its table, one row per model
    assert re.search(r"^\| popularity \| 0\.\d+ \| 0\.\d+ \|", out, re.M), out
    assert re.search(r"^\| itemknn \| 0\.\d+ \| 0\.\d+ \|", out, re.M), out
    assert list(shown) == [
        "Top-10 for a new user",
        "Top-10 from text alone",
        "Top-10 from a Chinese sentence",
    ]
    # the user who liked the given titles: ten films, none of them those, each with a reason
    # that names the liked films it comes from
    info = ml100k.item_info
    liked_ids = {ml100k.items.ids[i] for i in info.index[info["title"].isin(LIKED)]}
    labels = {f"{t} ({info.loc[info['title'] == t, 'year'].iloc[0]})" for t in LIKED}  # Alien (1979)
    recs = shown["Top-10 for a new user"]
    assert len(recs) == 10 and recs["item"].nunique() == 10
    assert not liked_ids & set(recs["item"].astype(str)), "a liked film was recommended back"
    assert "reason" in recs.columns
    for reason in recs["reason"]:
        assert reason.startswith("Because you liked "), reason
        assert any(label in reason for label in labels), reason
    assert {label for label in labels if any(label in r for r in recs["reason"])} == labels  # both used
    flat = " ".join(out.split())
    assert "4. a new user who liked: Alien, Babe" in flat
    assert "Because you liked" in flat  # the reasons are on the screen, not only in the frame
    # the sentence written in --text was the one read, and both text users got ten films
    assert TEXT in flat
    for title in ("Top-10 from text alone", "Top-10 from a Chinese sentence"):
        assert len(shown[title]) == 10 and shown[title]["reason"].str.len().min() > 0
    # the table says what its columns are (a first-run audit: K0, K5 and adapt_ms_k5 unexplained)
    assert "K0: a test user reveals nothing" in flat and "adapt_ms_k5: milliseconds" in flat


def test_a_demo_title_not_in_the_catalogue_points_to_words(ml100k):
    """A first-run audit: `fewrec demo --liked Interstellar` said only "check the spelling"."""
    proc = fewrec("demo", "--liked", "Interstellar")
    flat = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "describe it in words with --text" in flat, flat
