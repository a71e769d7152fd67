"""Free text that says what a user does not want: split, embedded apart, and never cited."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fewrec.explain.reasons import _genres_named
from fewrec.models import make_model
from fewrec.models.base import Query
from fewrec.text.wishes import Wishes, split_wishes

GENRES = [
    "Action",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Film-Noir",
    "Horror",
    "Romance",
    "Sci-Fi",
    "War",
]


@pytest.mark.parametrize(
    ("text", "wants", "avoids"),
    [
        ("I love sci-fi films like Interstellar", "I love sci-fi films like Interstellar", ""),
        ("I like comedies but I hate romance", "I like comedies", "romance"),
        ("I enjoy dramas, I do not like crime films", "I enjoy dramas", "crime films"),
        ("films for kids, no animation", "films for kids", "animation"),
        ("anything but musicals", "", "musicals"),
        ("anything except musicals", "anything", "musicals"),
        ("comedies without romance", "comedies", "romance"),
        ("I'm not into horror", "", "horror"),
        ("not sure, maybe comedies", "not sure, maybe comedies", ""),  # not about taste
        ("", "", ""),
        # from a review: idioms and titles are wishes; curly apostrophes, adverbs and "never" negate
        ("nothing beats a good western", "nothing beats a good western", ""),
        ("I loved No Country for Old Men and westerns", "I loved No Country for Old Men and westerns", ""),
        ("I love Dr. No and Goldfinger", "I love Dr. No and Goldfinger", ""),
        ("I don\u2019t like horror", "", "horror"),
        ("I do not really like horror", "", "horror"),
        ("I never watch horror", "", "horror"),
        ("I hate horror and love westerns", "love westerns", "horror"),
        ("I don't mind horror", "I don't mind horror", ""),
        # from a second review: negations after their subject, "No" opening a clause, adverbs,
        # "and I also love", filler words, hyphens
        ("horror is not for me", "", "horror"),
        ("romcoms aren't my thing", "", "romcoms"),
        ("No Disney stuff", "", "Disney stuff"),
        ("I'm not too keen on horror", "", "horror"),
        ("I'm not a big fan of musicals", "", "musicals"),
        ("I hate horror and I also love westerns", "I also love westerns", "horror"),
        ("no vampires and love triangles", "", "vampires and love triangles"),
        ("Please, no horror", "", "horror"),
        ("I really hate horror", "", "horror"),
        ("no-nonsense action", "no-nonsense action", ""),
        ("Please don't recommend horror", "", "horror"),
        ("stay away from horror", "", "horror"),
        ("a thriller that isn't too violent", "a thriller that", "too violent"),
        ("more like Alien, less like Aliens", "more like Alien", "like Aliens"),
    ],
)
def test_split_wishes(text, wants, avoids):
    assert split_wishes(text) == Wishes(wants, avoids)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("films like Star Wars", []),  # a title's "Wars" is not the War genre
        ("I love comedies", ["Comedy"]),
        ("film noir and sci fi", ["Film-Noir", "Sci-Fi"]),
        ("science fiction", ["Sci-Fi"]),
        ("cartoons for my kids", ["Animation", "Children's"]),
        ("war films", ["War"]),
        ("I like comedies but I hate romance", ["Comedy"]),  # the aversion is not a wish
        ("no horror please", []),
        ("popular stuff", []),
    ],
)
def test_genres_named_are_the_genres_asked_for(text, named):
    assert _genres_named(GENRES, text) == named


def _shares(model, data, text: str, genre: str) -> tuple[float, list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = model.recommend(Query(text=text), k=10, explain=True)
    genres = data.item_genres()
    share = float(np.mean([genre in genres[i] for i in data.items.index(recs["item"])]))
    return share, list(recs["reason"])


@pytest.mark.parametrize("name", ["content", "fewshot"])
def test_an_aversion_pushes_its_genre_down_and_is_never_cited(name, ml100k):
    """'... but I hate romance' filled 9 of 10 places with romances (the sentence embedding
    matched the word); now romances leave the list and no reason names them."""
    model = make_model(name, **({"meta_steps": 50} if name == "fewshot" else {})).fit(ml100k)
    romance, _ = _shares(model, ml100k, "I like comedies and romance", "Romance")
    hated, reasons = _shares(model, ml100k, "I like comedies but I hate romance", "Romance")
    comedy, _ = _shares(model, ml100k, "I like comedies but I hate romance", "Comedy")
    assert romance >= 0.5 and hated <= 0.1 and comedy >= 0.6
    assert not any("Romance" in r for r in reasons)
    no_horror, _ = _shares(model, ml100k, "no horror please", "Horror")
    assert no_horror == 0.0


def test_reasons_for_a_text_of_aversions_only_and_for_dislikes(ml100k):
    """From a review: "no horror" asked for nothing, yet items 'matched what you told us you
    like'; "I love story driven films" named Romance; a disliked film was cited beside the liked
    one in 6 of 10 reasons (a dislike lifts much of the catalogue a little)."""
    model = make_model("content").fit(ml100k)
    _, reasons = _shares(model, ml100k, "no horror please", "Horror")
    assert reasons and not any("you like" in r for r in reasons)
    assert _genres_named(GENRES, "I love story driven films") == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = model.recommend(Query(items=["50", "1"], ratings=[5, 1]), k=10, explain=True)
    # cited only where it did the most (1 of these 10; 6 when cited beside the liked film)
    assert sum("disliked" in r for r in recs["reason"]) <= 2, list(recs["reason"])


def test_settings_errors_name_the_class_and_give_one_fix():
    from fewrec.errors import ConfigError
    from fewrec.models.content import ContentConfig
    from fewrec.models.lora_content import ContentLoraConfig

    with pytest.raises(ConfigError, match="invalid ContentLoraConfig: lora_rank"):
        ContentLoraConfig(lora_rank=0)
    with pytest.raises(ConfigError) as err:
        ContentConfig(encoder="multilingual", backend="torch")
    assert str(err.value).count("Fix:") == 1 and "does not run on backend 'torch'" in str(err.value)
