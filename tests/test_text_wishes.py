"""Free text that says what a user does not want: split, embedded apart, and never cited."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fewrec.explain.reasons import _genres_named
from fewrec.models import make_model
from fewrec.models.base import Query
from fewrec.text.wishes import Titles, Wishes, split_wishes, unknown_names, words_of

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
        # from a third review: an aversion ran on to the clause's end, over a fresh wish, and
        # common turn-downs were wishes (each put 0 comedies in content's top 10, or the genre
        # turned down on top, "Matches what you told us you like")
        ("I hate horror I love comedies", "I love comedies", "horror"),
        ("no horror just comedies please", "just comedies please", "horror"),
        ("I hate horror so give me comedies", "so give me comedies", "horror"),
        ("No horror I prefer comedies", "I prefer comedies", "horror"),
        ("horror is not for me I love comedies", "I love comedies", "horror"),
        ("I hate films that are just boring", "", "films that are just boring"),
        ("I hate movies with only one location", "", "movies with only one location"),
        ("Horror? No thanks.", "", "Horror"),
        ("Comedies please. Horror? Nope.", "Comedies please", "Horror"),
        ("Horror, not so much", "", "Horror"),
        ("westerns are a no-go, I like comedies", "I like comedies", "westerns"),
        ("romance doesn't appeal to me", "", "romance"),
        ("I want neither horror nor romance", "", "horror nor romance"),
        ("non-horror films", "", "horror films"),
        ("I like non-fiction", "I like non-fiction", ""),
        # a queries audit: a negated aversion was an aversion ("I don't hate comedies" gave none)
        ("I don't hate comedies", "I don't hate comedies", ""),
        ("I do not hate horror", "I do not hate horror", ""),
        ("I wouldn't say no to a comedy", "I wouldn't say no to a comedy", ""),
        ("I never get tired of westerns", "I never get tired of westerns", ""),
        ("I'm not against a romance", "I'm not against a romance", ""),
        ("Not only comedies but also dramas", "Not only comedies but also dramas", ""),
        # and aversions it missed (each list was of the genre, "Matches what you told us")
        ("Never show me horror", "", "horror"),
        ("zero horror", "", "horror"),
        ("ain't into horror", "", "horror"),
        ("Horror - no!", "", "Horror"),
        ("comedies, romance is a no", "comedies", "romance"),
    ],
)
def test_split_wishes(text, wants, avoids):
    assert split_wishes(text) == Wishes(wants, avoids)


def test_text_of_the_title_placeholders_is_read_as_text():
    """A text holding the characters `Titles.hide` marks its placeholders with was an
    IndexError, or took a title found elsewhere in it."""
    titles = Titles(["Rebel Without a Cause"])
    assert split_wishes("I like \ue0007\ue001 but no horror", titles) == Wishes("I like 7", "horror")
    got = split_wishes("I like Rebel Without a Cause and \ue0000\ue001 but no horror", titles)
    assert got == Wishes("I like Rebel Without a Cause and 0", "horror")


@pytest.mark.parametrize(
    ("text", "wants", "avoids"),
    [
        (
            "me encantan las comedias pero odio las películas románticas",
            "me encantan las comedias",
            "las películas románticas",
        ),
        ("No me gustan las películas de terror", "", "las películas de terror"),
        ("el terror no es lo mío", "", "el terror"),
        (
            "j'adore les comédies mais je déteste les films romantiques",
            "j'adore les comédies",
            "les films romantiques",
        ),
        ("Je n'aime pas les films d'horreur", "", "les films d'horreur"),
        ("pas de films d'horreur", "", "films d'horreur"),
        ("ich liebe Komödien, aber ich hasse Liebesfilme", "ich liebe Komödien", "Liebesfilme"),
        ("Ich mag keine Horrorfilme", "", "Horrorfilme"),
        ("Horror ist nicht mein Ding", "", "Horror"),
        ("我喜欢喜剧，但是讨厌爱情片", "我喜欢喜剧", "爱情片"),
        ("我不喜欢恐怖片", "", "恐怖片"),
        ("恐怖片不是我的菜", "", "恐怖片"),
        # English words that look like another language's negation are no negation
        ("films where music plays a part", "films where music plays a part", ""),
        ("Sin City and a salvo of laughs", "Sin City and a salvo of laughs", ""),
        ("a ballet film, pas de deux", "a ballet film, pas de deux", ""),
    ],
)
def test_split_wishes_in_other_languages(text, wants, avoids):
    """Negations were English only: "me encantan las comedias pero odio las películas
    románticas" was all wishes, so the multilingual encoder matched the romance it names."""
    assert split_wishes(text) == Wishes(wants, avoids)


def test_an_aversion_in_another_language_pushes_its_genre_down(ml100k):
    """With the multilingual encoder, 'comedies but I hate romance' in Spanish, French, German
    and Chinese put 9, 10, 4 and 8 romances in the top 10; now none."""
    model = make_model("content", encoder="multilingual").fit(ml100k)
    for text in [
        "me encantan las comedias pero odio las películas románticas",
        "j'adore les comédies mais je déteste les films romantiques",
        "ich liebe Komödien, aber ich hasse Liebesfilme",
        "我喜欢喜剧，但是讨厌爱情片",
    ]:
        romance, _ = _shares(model, ml100k, text, "Romance")
        comedy, _ = _shares(model, ml100k, text, "Comedy")
        assert romance <= 0.1 and comedy >= 0.6, (text, romance, comedy)
    asked, _ = _shares(model, ml100k, "películas románticas", "Romance")
    assert asked >= 0.5  # the same words, asked for, still find romances


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


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("I love Hitchcock thrillers", ["Hitchcock"]),
        ("Anything with Tom Hanks, or DiCaprio's films", ["Tom Hanks", "DiCaprio"]),
        ("films like Interstellar!  Nolan is great", ["Interstellar"]),  # a sentence's first word: no name
        ("I love Star Wars and Psycho", []),  # words of the catalogue's titles
        ("I love Westerns and Comedies", []),  # a genre in the plural
        ("Hitchcock please", []),
        ("Quentin Tarantino films", ["Tarantino"]),
        ("Pedro Almodóvar dramas and Amélie", ["Almodóvar", "Amélie"]),  # not ASCII only
        ("Korean films for a Sunday, or Christmas movies", []),  # nationalities, days, holidays
        ("I Love Action Movies With Lots Of Explosions", []),  # typed in Title Case: no names
        ("", []),
    ],
)
def test_unknown_names_are_capitalised_words_no_item_text_holds(text, names):
    vocabulary = words_of(
        "Star Wars (1977). Action, Sci-Fi. Psycho (1960). Thriller. Western. Comedy. Tom and Huck"
    )
    assert unknown_names(text, vocabulary) == names


def test_a_name_no_item_text_holds_gets_a_note(ml100k):
    """MovieLens' item text is title, year and genres: a director or an actor asked for matches
    only by what the encoder knows of the name, and the user is told so (once per query, beside
    the list: a hint, not a warning, for the text is read)."""
    model = make_model("content").fit(ml100k)
    query = Query(text="I love Hitchcock thrillers with Cary Grant")
    notes = model.text_hints(query)
    assert len(notes) == 1 and notes == [n for n in model.query_notes(query) if "mentions" in n]
    assert "no item's text here mentions 'Hitchcock' or 'Cary Grant'" in notes[0]
    assert "a film's director" in notes[0]
    # (a film the text names as a known one is said to be left out; no "mentions" note for it)
    assert model.text_hints(Query(text="I love Star Wars and Westerns")) == [
        "the text names Star Wars (1977) as one you know, so the list leaves it out "
        "(exclude_seen=False keeps it)"
    ]
    assert model.ignored_in(query) == []  # nothing of it is ignored
    assert make_model("popularity").fit(ml100k).text_hints(query) == []  # reads no text
    with_director = ml100k.item_info.copy()
    with_director["director"] = "Alfred Hitchcock"  # now the item texts hold the name
    model.fitted.item_info, model.fitted.item_template = with_director, "{title}, by {director}"
    assert model.text_hints(Query(text="I love Hitchcock thrillers")) == []


@pytest.mark.parametrize(
    ("text", "wants", "avoids"),
    [
        ("I loved Rebel Without a Cause", "I loved Rebel Without a Cause", ""),
        ("I loved The Man Without a Face but I hate horror", "I loved The Man Without a Face", "horror"),
        ("I loved the man without a face", "I loved the man", "a face"),  # in lower case: words
        ("Comedy maybe, maybe not too silly", "Comedy maybe", "too silly"),  # no "Maybe, Maybe Not"
        ("romance with no strings attached", "romance with", "strings attached"),
        ("Much Ado About Nothing, no musicals", "Much Ado About Nothing", "musicals"),
        ("films like To Be or Not to Be, but no westerns", "films like To Be or Not to Be", "westerns"),
        ("I want Nothing Personal", "I want Nothing Personal", ""),  # two words: with its capitals
        ("I hate horror", "", "horror"),  # "Hate (Haine, La)": one word, no title
        ("nothing personal but I hate westerns", "", "personal, westerns"),
    ],
)
def test_catalogue_titles_with_a_negation_are_read_as_titles(ml100k, text, wants, avoids):
    """MovieLens' own titles ("Rebel Without a Cause", "Man Without a Face, The") were split at
    their negation: "I loved Rebel Without a Cause" avoided "a Cause"."""
    titles = Titles(ml100k.item_info["title"])
    assert split_wishes(text, titles) == Wishes(wants, avoids)
    assert "The Man Without a Face" in titles.forms and "Hate" not in titles.forms


def test_a_model_reads_its_catalogue_titles_in_the_text(ml100k):
    model = make_model("content").fit(ml100k)
    titles = model.negation_titles()
    assert "Rebel Without a Cause" in titles.forms and model.negation_titles() is titles  # kept
    from fewrec.models.content import wish_vectors
    from fewrec.text.encoder import get_encoder

    text = ["I loved Rebel Without a Cause"]
    whole = get_encoder().encode(text)  # one wish: the text itself
    np.testing.assert_allclose(model.embed_texts(text), whole, atol=1e-5)
    split = wish_vectors(text, get_encoder().encode, whole.shape[1])  # without the titles
    assert not np.allclose(split, whole, atol=1e-3)


def test_a_wish_after_an_aversion_in_one_clause_is_asked_for(ml100k):
    """An audit: "I hate horror I love comedies" avoided "horror I love comedies", so content's
    top 10 held no comedy (the text "comedies" alone: 10); "Horror? No thanks." put horror films
    on top, each "Matches what you told us you like (Horror)"."""
    model = make_model("content").fit(ml100k)
    for text in [
        "I hate horror I love comedies",
        "no horror just comedies please",
        "No horror I prefer comedies",
    ]:
        comedy, _ = _shares(model, ml100k, text, "Comedy")
        horror, _ = _shares(model, ml100k, text, "Horror")
        assert comedy >= 0.6 and horror == 0, (text, comedy, horror)
    horror, reasons = _shares(model, ml100k, "Horror? No thanks.", "Horror")
    assert horror == 0 and not any("Horror" in r for r in reasons), reasons


def test_a_query_text_that_is_not_unicode_is_refused_where_it_is_given():
    """A lone surrogate in one query of a batch was refused by the encoder as "text at
    position 3" (counting the batch's wish and aversion parts), with a fix for Python code only."""
    from fewrec.errors import ArgumentError

    with pytest.raises(
        ArgumentError, match=r"Query.text is not valid Unicode .*character 24 is a lone surrogate"
    ):
        Query(text="I like westerns but not \udc80 musicals")


def test_a_film_the_text_names_as_known_is_left_out(ml100k):
    """A queries audit: "films like Star Wars", "I loved Alien" put the named film first in
    their own list; a title the text only wants ("I want to watch Star Wars") stays."""
    model = make_model("content").fit(ml100k)
    for text, title in [
        ("films like Star Wars", "Star Wars (1977)"),
        ("I loved Alien", "Alien (1979)"),
        ("something like The Godfather", "Godfather, The (1972)"),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = list(model.recommend(Query(text=text), k=20)["label"])
            kept = list(model.recommend(Query(text=text), k=20, exclude_seen=False)["label"])
        assert title not in labels and title in kept, (text, labels[:3])
    wanted = model.recommend(Query(text="I want to watch Star Wars"), k=3)
    assert "Star Wars (1977)" in list(wanted["label"])
    assert model.referenced_items("films like star wars") == []  # (in lower case: words)
    # a genre's name is no title ("War, The (1994)"), nor is what "films" follows
    assert model.referenced_items("I love War films") == model.referenced_items("like War") == []


def test_a_wish_is_no_item_the_user_knows_and_the_note_says_no_film(ml100k):
    """An audit: "I'd like Blue hose for my garden" left the hose out of its own list, "the
    text names Blue hose as a film you know" ("like" after "would" or "'d" is a wish). "like the
    Shining" names "Shining, The" as "like The Shining" does."""
    import pandas as pd

    from fewrec.data import load_interactions

    items = pd.DataFrame(
        {
            "item_id": ["h", "r", "s"],
            "title": ["Blue hose", "Green rake", "Red spade"],
            "genres": ["garden"] * 3,
        }
    )
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "item_id": ["h", "r", "r", "s"]})
    shop = make_model("content").fit(
        load_interactions(inter, items, columns={"rating": None, "timestamp": None})
    )
    for text in (
        "I'd like Blue hose for my garden",
        "I would like Blue hose",
        "I\u2019d love Blue hose",
        "wd like Blue hose",
        "I would really like Blue hose",
        "I'd very much like Blue hose",
        "I\u2019d also love Blue hose",
        "Id like Blue hose",
        "I would  like Blue hose",  # (two spaces: the lookbehinds are of one width)
        "I'd\tlike Blue hose",
    ):
        assert shop.referenced_items(text) == [] and "h" in set(
            shop.recommend(Query(text=text), k=3)["item"]
        ), text
    assert shop.text_hints(Query(text="a hose like Blue hose")) == [
        "the text names Blue hose as one you know, so the list leaves it out (exclude_seen=False keeps it)"
    ]
    model = make_model("content").fit(ml100k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "50" in set(model.recommend(Query(text="I would like to see Star Wars"), k=10)["item"])
        assert "50" not in set(model.recommend(Query(text="films like Star Wars"), k=10)["item"])
    # (a title written with two spaces is the title)
    assert model.referenced_items("films like Star  Wars") == model.referenced_items("films like Star Wars")
    shining = model.referenced_items("films like The Shining")
    assert shining and model.referenced_items("films like the Shining") == shining
    assert model.referenced_items("I'd like a film like Star Wars") == model.referenced_items(
        "films like Star Wars"
    )
