"""Findings of a README walk-through: the CLI on small own data, its notes and its error
lines in logs, and warnings a plain fit printed."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import fewrec_here as fewrec


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def short_histories(tmp_path):
    """80 users with 3-12 interactions each: no test user reaches the default K = 20."""
    rows = [(f"u{u}", f"i{(u * 7 + j * 3) % 40}") for u in range(80) for j in range(3 + u % 10)]
    path = tmp_path / "small.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id"]).to_csv(path, index=False)
    return path


def test_cold_user_default_shots_leave_out_the_k_no_test_user_reaches(tmp_path, short_histories):
    """The default shots include K = 20, which users of 3-12 interactions never reach: the run
    failed. It now leaves such K out with one note; K asked for with --shots still fail."""
    own = ["--interactions", str(short_histories), "--rating-col", "", "--time-col", ""]
    out = tmp_path / "r.json"
    args = ["benchmark", "--protocol", "cold-user", "--models", "popularity", *own]
    proc = fewrec(*args, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "note: K = 20 left out: no test user has an interaction left after revealing" in proc.stderr
    assert proc.stderr.count("note:") == 1
    result = json.loads(out.read_text())
    # the test users' most (it quoted every user's: 13 beside "K = 10 left out", an audit)
    most = result["settings"]["most_test_user_interactions"]
    assert most <= 12 and f"the most any test user has is {most})" in " ".join(proc.stderr.split())
    assert result["settings"]["shots"] == [0, 1, 3, 5, 10]
    assert result["settings"]["shots_left_out"] == [20]
    assert "K20/ndcg@10" not in result["models"]["popularity"]
    asked = fewrec(*args, "--shots", "5,20")
    assert asked.returncode == 2
    assert "no test user has an interaction left after revealing K = 20" in flat(asked.stderr)
    # every K past them: it quoted the K asked as the most (--shots 99: "the most is 99", then
    # its fix, --shots 98, failed alike)
    past = fewrec(*args, "--shots", "99")
    assert past.returncode == 2 and f"the most any test user has is {most} " in flat(past.stderr), past.stderr
    assert f"--shots {most - 1}" in flat(past.stderr)


def test_fitting_als_prints_no_openblas_thread_warning(monkeypatch):
    """implicit's constructor warns when OpenBLAS may use several threads; the model was built
    outside the one-thread limit that wraps its fit, so `make_model("als").fit` printed
    "RuntimeWarning: OpenBLAS is configured to use 2 threads"."""
    import implicit.utils
    from threadpoolctl import threadpool_info, threadpool_limits

    from fewrec.data.loaders import Columns, load_interactions
    from fewrec.models import make_model

    if not any(api["internal_api"] == "openblas" for api in threadpool_info()):
        pytest.skip("numpy/implicit do not use OpenBLAS here")
    frame = pd.DataFrame(
        [(f"u{u}", f"i{(u * 5 + j) % 30}") for u in range(40) for j in range(6)], columns=["user", "item"]
    )
    data = load_interactions(frame, columns=Columns(user="user", item="item", rating=None, timestamp=None))
    monkeypatch.setattr(implicit.utils, "_checked_blas_config", False)  # it warns once a process
    with threadpool_limits(2, "blas"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_model("als", iterations=2).fit(data)
    assert not [w for w in caught if "OpenBLAS" in str(w.message)]


def test_cli_output_is_not_wrapped_at_80_columns_in_a_log(tmp_path, short_histories):
    """Off a terminal rich wrapped every line at 80 columns: an error spanned lines and the
    markdown table of `benchmark` broke mid-row in logs. Each now stays on one line."""
    missing = tmp_path / ("no-such-model-" + "x" * 80)
    proc = fewrec("recommend", str(missing))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "does not exist" in lines[0]
    args = ["benchmark", "--protocol", "cold-user", "--models", "popularity,itemknn", "--shots", "1,5"]
    own = ["--interactions", str(short_histories), "--rating-col", "", "--time-col", ""]
    table = fewrec(*args, *own)
    assert table.returncode == 0, table.stderr
    lines = [line for line in table.stdout.splitlines() if line.strip()]
    rows = [line for line in lines if line.startswith("|")]
    assert len(rows) == 4 and all(r.endswith("|") for r in rows), rows
    # under the table: its test users, and notes, each a line of its own
    assert lines[4].startswith("test users: K1") and all(n.startswith("Note: ") for n in lines[5:]), lines


def test_cli_recommend_with_an_empty_query_says_so(tmp_path):
    """`recommend MODEL --k 3` with no --user/--item/--title/--text silently gave popular items;
    it now says the query is empty and how to personalise the list."""
    out = tmp_path / "pop"
    assert fewrec("train", "popularity", "--output", str(out)).returncode == 0
    proc = fewrec("recommend", str(out), "--k", "3")
    assert proc.returncode == 0, proc.stderr
    assert "Recommendations" in proc.stdout
    err = flat(proc.stderr)
    assert "note: the query is empty, so these are the most popular items" in err
    assert "--user ID, --item ID, --title TITLE or --text" in err
    given = fewrec("recommend", str(out), "--item", "50", "--k", "3")
    assert given.returncode == 0 and "query is empty" not in given.stderr
    # --candidate ranks only the items given (what an LM model needs to score a few)
    few = fewrec(
        "recommend", str(out), "--item", "50", "--candidate", "1", "--candidate", "7", "--candidate", "zz"
    )
    assert few.returncode == 0, few.stderr
    rows = [line for line in few.stdout.splitlines() if line.startswith("│")]
    assert len(rows) == 2 and "Toy Story" in few.stdout
    assert "candidates not in the catalogue: ['zz']" in flat(few.stderr)


def test_cli_recommend_unknown_title_suggests_only_close_titles(tmp_path):
    """A title not in the catalogue got far-fetched suggestions ("Interstellar": did you mean
    ['Cinderella', "Dante's Peak"]); only close titles are suggested now, and with none the
    error says the title is not in the catalogue and to describe it with --text."""
    out = tmp_path / "pop"
    assert fewrec("train", "popularity", "--output", str(out)).returncode == 0
    far = fewrec("recommend", str(out), "--title", "Interstellar")
    assert far.returncode == 2
    err = flat(far.stderr)
    assert "no item titled 'Interstellar': it is not in the catalogue" in err
    assert "--text 'something like Interstellar'" in err
    assert "Cinderella" not in err and "did you mean" not in err
    # (a disliked one was to be asked for: "--text 'something like Zzzqqq'", an audit)
    unliked = fewrec("recommend", str(out), "--disliked-title", "Interstellar")
    assert unliked.returncode == 2 and "--text 'nothing like Interstellar'" in flat(unliked.stderr)
    typo = fewrec("recommend", str(out), "--title", "Toy Stroy", "--title", "Godfater")
    assert typo.returncode == 2 and "did you mean 'Toy Story'?" in flat(typo.stderr)


def test_close_titles_ignore_articles_and_trailing_words(ml100k):
    from fewrec.present import close_titles

    names = [str(t) for t in ml100k.item_info["title"]]
    assert close_titles("Godfater", names) == ["Godfather, The"]
    assert close_titles("Star Warz Episode", names)[0] == "Star Wars"
    assert close_titles("Interstellar", names) == [] and close_titles("Barbie", names) == []


def test_cli_recommend_takes_disliked_items(tmp_path):
    """The CLI could only give liked items: a disliked one (the audit's 'text plus a 1-star
    item') could not be said. --disliked/--disliked-title add it at the bottom of the scale:
    never recommended back, and left out of the profile (pushing its look-alikes down costs
    liked films: `benchmarks/dislikes.md`), so never cited either."""
    out = tmp_path / "content"
    assert fewrec("train", "content", "--output", str(out)).returncode == 0
    base = ["recommend", str(out), "--title", "Star Wars (1977)", "--k", "5", "--explain"]
    liked = fewrec(*base)
    assert liked.returncode == 0 and "Return of the Jedi" in liked.stdout
    proc = fewrec(*base, "--disliked-title", "Return of the Jedi (1983)", "--disliked", "172")
    assert proc.returncode == 0, proc.stderr
    ids = re.findall(r"│\s*\d+\s*│\s*(\d+)\s*│", proc.stdout)
    assert len(ids) == 5 and not {"181", "172"} & set(ids)
    # in a pipe the table is drawn wide: one line per recommendation, reason and all
    assert sum(line.startswith("│") for line in proc.stdout.splitlines()) == 5
    assert "disliked" not in proc.stdout and "rated" not in proc.stdout
    more = re.findall(r"│\s*\d+\s*│\s*(\d+)\s*│", fewrec(*base[:-3], "--k", "7").stdout)
    assert ids == [i for i in more if i not in {"181", "172"}][:5]  # as if only Star Wars was said
    unknown = fewrec("recommend", str(out), "--disliked", "nope")
    assert unknown.returncode == 2 and "unknown history item 'nope'" in flat(unknown.stderr)
    far = fewrec("recommend", str(out), "--disliked-title", "Zzzqx")
    assert far.returncode == 2 and "no item titled 'Zzzqx'" in flat(far.stderr)
    both = fewrec("recommend", str(out), "--title", "Star Wars (1977)", "--disliked", "50")
    assert both.returncode == 2 and "['50'] given both as liked" in flat(both.stderr)  # was: a dislike
    # an audit: the other listing of a film given by title came back first; a second --text
    # won without a word; candidates all unknown (typed with commas) printed nothing, exit 0
    amy = fewrec("recommend", str(out), "--title", "Chasing Amy", "--k", "3")
    assert amy.returncode == 0 and "Chasing Amy" not in amy.stdout, amy.stdout
    twice = fewrec("recommend", str(out), "--text", "horror films", "--text", "romantic comedies")
    assert twice.returncode == 2 and "--text given 2 times" in flat(twice.stderr)
    commas = fewrec("recommend", str(out), "--candidate", "181,1")
    assert commas.returncode == 2 and "repeat --candidate, one id each" in flat(commas.stderr)
    ascii_out = subprocess.run(  # an accented title to an ASCII pipe was a traceback
        [
            str(Path(sys.executable).parent / "fewrec"),
            "recommend",
            str(out),
            "--candidate",
            "543",
            "--item",
            "1",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    assert ascii_out.returncode == 0 and "Traceback" not in ascii_out.stderr and "Mis" in ascii_out.stdout


def test_titles_match_without_their_article_or_accents(ml100k):
    """ "The Godfather" was refused for "Godfather, The" (with "did you mean" the very title), and
    "Amelie" did not find "Amélie"."""
    from fewrec.data import Vocabulary
    from fewrec.present import match_titles

    for title in ("The Godfather", "the godfather (1972)", "Godfather, The"):
        (m,) = match_titles(ml100k.item_info, ml100k.items, [title])
        assert m.item == "127", title
    (m,) = match_titles(ml100k.item_info, ml100k.items, ["The Godfather"])
    assert "taken as Godfather, The (1972)" in m.note  # not an exact match: said so
    info = pd.DataFrame({"title": ["Amélie", "Léon: The Professional", "Leonardo"]})
    found = match_titles(info, Vocabulary(["a", "b", "c"]), ["amelie", "Leon"])
    assert [m.item for m in found] == ["a", "b"] and found[0].note is None
    # an audit: other languages' articles and titles without their punctuation were "not in the
    # catalogue", and a film listed twice came back as the top pick for itself
    for title, item in (("Les Miserables", "543"), ("La Cérémonie", "1623"), ("Dr Strangelove", "474")):
        (m,) = match_titles(ml100k.item_info, ml100k.items, [title])
        assert m.item == item, (title, m)
    (m,) = match_titles(ml100k.item_info, ml100k.items, ["Chasing Amy"])
    assert (m.item, m.twins) == ("246", ("268",)) and "listed 2 times in the catalogue" in m.note
    # a first-run audit: two films of one title named neither the year taken nor the other
    (m,) = match_titles(ml100k.item_info, ml100k.items, ["Sabrina"])
    assert m.item == "274" and "Sabrina (1995) (item 274), Sabrina (1954) (item 486)" in m.note, m.note
    assert "e.g. 'Sabrina (1954)'" in m.note
    assert match_titles(ml100k.item_info, ml100k.items, ["Sabrina (1954)"])[0].item == "486"
    # a user audit: "Godfather" took part I without naming part II, which it begins too
    for title in ("Godfather", "The Godfather"):
        (m,) = match_titles(ml100k.item_info, ml100k.items, [title])
        assert m.item == "127" and "also matches 'Godfather: Part II, The' (item 187)" in m.note, m.note


def test_cli_warnings_print_as_one_line(tmp_path):
    """A text model trained without item text read the items' ids without a word; the warning
    now said so printed as Python's own, with a file path and a line of source."""
    rows = "user_id,item_id\n" + "".join(f"u{u},sku-{(u + j) % 6}\n" for u in range(8) for j in range(3))
    data = tmp_path / "inter.csv"
    data.write_text(rows)
    proc = fewrec("train", "content", "--output", str(tmp_path / "m"), "--interactions", str(data))
    assert proc.returncode == 0, proc.stderr
    err = flat(proc.stderr)
    assert "warning: the items have no text" in err and "--items" in err
    assert "UserWarning" not in proc.stderr and "warnings.warn" not in proc.stderr
    # so do items of a table whose text fields are blank for some of them (half a catalogue)
    items = tmp_path / "items.csv"
    items.write_text(
        "item_id,name\n" + "".join(f"sku-{i},{'Book ' + str(i) if i % 2 else ''}\n" for i in range(6))
    )
    args = ["--interactions", str(data), "--items", str(items), "--rating-col", "", "--time-col", ""]
    proc = fewrec("train", "content", "--output", str(tmp_path / "m2"), *args)
    assert proc.returncode == 0, proc.stderr
    assert "warning: 3 of 6 items have no text" in flat(proc.stderr) and "sku-0" in proc.stderr


def test_cli_models_shows_each_presets_own_defaults():
    """`fewrec models` printed the Config class defaults, so the ablation fewshot-nometa showed
    meta_learn True (its real default is False)."""
    proc = fewrec("models")
    assert proc.returncode == 0, proc.stderr
    lines = {line.split(":", 1)[0]: line for line in proc.stdout.splitlines() if ":" in line}
    assert '"meta_learn": false' in lines["fewshot-nometa"] and '"meta_learn": true' in lines["fewshot"]
    # as JSON, the syntax --set reads ((0, 1, 3) had been shown, which --set refused)
    assert '"shots": [0, 1, 3, 5, 10, 20]' in lines["ensemble"]
    # every stdout line is a model and its defaults as JSON (the hint line goes to stderr)
    for line in proc.stdout.splitlines():
        name, _, config = line.partition(": ")
        assert isinstance(json.loads(config), dict), line
    assert "fewrec models NAME" in proc.stderr


def test_cli_models_name_explains_each_setting():
    """The settings' attribute docstrings were read by the source alone: `fewrec models` gave
    defaults and no word of what a setting does (an API audit)."""
    proc = fewrec("models", "fewshot-nometa")
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "meta_learn = false Learn the prior and step sizes over K-shot episodes" in out
    unknown = fewrec("models", "fewshot-meta")
    assert unknown.returncode != 0 and "unknown model 'fewshot-meta'" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_cli_set_and_info_take_lists_by_commas_and_refuse_a_key_given_twice(tmp_path):
    """An audit: --set shots=1,3 was "not a valid tuple" and segment_by=age,gender one field
    named 'age,gender'; a second --set neighbors=7 or --info age=45 won without a word; and
    recommend m/config.json said "no config.json"."""
    out = tmp_path / "m"
    proc = fewrec("train", "kshot-ridge", "--set", "shots=1,3", "--set", "l2=10", "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "config.json").read_text())["config"]["shots"] == [1, 3]
    wrong = fewrec("train", "kshot-ridge", "--set", "shots=1,x", "--output", str(tmp_path / "w"))
    assert wrong.returncode != 0 and "shots.1: Input should be a valid integer" in flat(wrong.stderr)
    assert "Traceback" not in wrong.stderr
    seg = tmp_path / "seg"
    assert (
        fewrec("train", "popularity", "--set", "segment_by=age, gender", "--output", str(seg)).returncode == 0
    )
    assert json.loads((seg / "config.json").read_text())["config"]["segment_by"] == ["age", "gender"]
    twice = fewrec(
        "train", "itemknn", "--set", "neighbors=5", "--set", "neighbors=7", "--output", str(tmp_path / "x")
    )
    assert twice.returncode != 0 and "gives neighbors a second value (the first: 5)" in flat(twice.stderr)
    info = fewrec("recommend", str(seg), "--info", "age=27", "--info", "age=45")
    assert info.returncode != 0 and "--info age given twice (27 and 45)" in flat(info.stderr)
    inside = fewrec("recommend", str(seg / "config.json"))
    assert inside.returncode != 0 and f"give the model's folder, {seg}" in flat(inside.stderr)


def test_cli_serve_with_a_wrong_model_path_creates_no_store(tmp_path):
    """`fewrec serve /nonexistent` refused, but left an empty SQLite store behind."""
    store = tmp_path / "store.db"
    proc = fewrec("serve", str(tmp_path / "no-model"), "--store", str(store))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    assert not store.exists()


def test_cli_recommend_takes_side_info(tmp_path):
    """`recommend` had no way to give side info, so a new user of a segmented model (or of
    kshot-ridge, or the ensemble) could not say who they are."""
    out = tmp_path / "seg"
    assert fewrec("train", "popularity", "--set", "segment_by=auto", "--output", str(out)).returncode == 0

    def top(*args):
        proc = fewrec("recommend", str(out), "--k", "5", *args)
        assert proc.returncode == 0, proc.stderr
        return re.findall(r"│\s*\d+\s*│\s*(\d+)\s*│", proc.stdout), flat(proc.stderr)

    plain, _ = top()
    female, _ = top("--info", "gender=F")
    artist, note = top("--info", "age=31", "--info", "occupation=artist", "--info", "agee=3")
    assert len({tuple(plain), tuple(female), tuple(artist)}) == 3
    assert "does not read the side-info field 'agee'" in note
    bad = fewrec("recommend", str(out), "--info", "age")
    assert bad.returncode == 2 and "--info expects field=value" in flat(bad.stderr)


def test_cli_train_min_rating_leaves_dislikes_out(tmp_path):
    """On a like/dislike log (1/0) an item everyone disliked topped popularity and EASE: ID-only
    models count every interaction. `--min-rating 1` trains on the likes; without it a note."""
    rows = ["user_id,item_id,rating"] + [f"u{u},hated,0" for u in range(30)]
    rows += [f"u{u},loved,1" for u in range(10)] + [f"u{u},i{u % 5},1" for u in range(30)]
    data = tmp_path / "thumbs.csv"
    data.write_text("\n".join(rows) + "\n")

    def top(*args):
        out = tmp_path / "m"
        trained = fewrec("train", "popularity", "--output", str(out), "--interactions", str(data), *args)
        assert trained.returncode == 0, trained.stderr
        listed = fewrec("recommend", str(out), "--k", "1")
        return re.findall(r"│\s*\d+\s*│\s*(\S+)\s*│", listed.stdout)[0], flat(trained.stderr)

    everything, note = top()
    assert everything == "hated" and "30 interactions are rated 0" in note and "--min-rating 1" in note
    likes, quiet = top("--min-rating", "1")
    assert likes == "loved" and "rated 0" not in quiet
    none = fewrec(
        "train",
        "popularity",
        "--output",
        str(tmp_path / "n"),
        "--interactions",
        str(data),
        "--min-rating",
        "2",
    )
    assert none.returncode == 2 and "no interaction is rated 2 or more" in flat(none.stderr)


def test_cli_refuses_a_nan_minimum_rating_and_an_empty_user(tmp_path):
    """An audit: ``--min-rating nan`` read the data and then said "no interaction is rated nan
    or more", and ``recommend --user ''`` (``--user "$ID"`` with ID unset) took "" as a new
    user's id; both are refused up front, and `keep_ratings` refuses a NaN."""
    import math

    from fewrec.data.movielens import load_movielens_100k
    from fewrec.errors import DataError

    for command in (["train", "popularity", "--output", str(tmp_path / "m")], ["benchmark"]):
        proc = fewrec(*command, "--min-rating", "nan")
        assert proc.returncode == 2 and "--min-rating is nan, which no rating reaches" in flat(proc.stderr)
    for blank in ("", "  "):
        proc = fewrec("recommend", str(tmp_path / "m"), "--user", blank)
        assert proc.returncode == 2 and "--user is empty. Fix: give a user id" in flat(proc.stderr)
    with pytest.raises(DataError, match="the minimum rating is NaN"):
        load_movielens_100k().keep_ratings(math.nan)


def test_cli_train_says_how_it_reads_plays_and_a_plus_minus_one_log(tmp_path):
    """An audit: plays of 1-8 read as stars (3 plays a dislike, never a reason) and a +1/-1 log
    trained its -1s as interest, both without a word (the note counted only 0s)."""

    def train(name, header, values, *args):
        rows = [header] + [
            f"u{u},i{(u * 7 + j) % 9},{values[(u + j) % len(values)]}" for u in range(20) for j in range(4)
        ]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
        out = tmp_path / name.replace(".csv", "")
        proc = fewrec("train", "itemknn", "--output", str(out), "--interactions", str(tmp_path / name), *args)
        assert proc.returncode == 0, proc.stderr
        return flat(proc.stderr)

    plays = train("plays.csv", "user_id,item_id,plays", [1, 2, 3, 8], "--rating-col", "plays")
    assert (
        "ratings 1-8 read as a star scale: 3.2 or less is a dislike" in plays and "--rating-col ''" in plays
    )
    signs = train("signs.csv", "user_id,item_id,rating", [1, -1])
    assert "40 interactions are rated 0 or less" in signs and "--min-rating 1" in signs
    stars = train("stars.csv", "user_id,item_id,rating", [1, 3, 4, 5])
    assert "star scale" not in stars and "rated 0" not in stars


def test_cli_options_that_would_be_ignored_are_errors(tmp_path):
    """An audit: `benchmark --address` without `--ray` ran locally without a word, and
    `serve --exploration off --explore-width 3` dropped the width."""
    proc = fewrec("benchmark", "--protocol", "warm", "--models", "popularity", "--address", "10.9.9.9:6379")
    assert proc.returncode != 0 and "add --ray" in flat(proc.stderr) and "Traceback" not in proc.stderr
    proc = fewrec("serve", str(tmp_path), "--exploration", "off", "--explore-width", "3")
    assert proc.returncode != 0 and "no effect with --exploration off" in flat(proc.stderr)
    proc = subprocess.run(
        [sys.executable, "-m", "fewrec.serve", str(tmp_path), "--exploration", "off", "--explore-width", "3"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no effect with --exploration off" in proc.stderr


def test_models_of_ones_own_reach_the_cli_through_fewrec_import(tmp_path):
    """The CLI and the service could not use a model of one's own: nothing imported the module
    that registers it. $FEWREC_IMPORT names such modules; a wrong name is one line."""
    (tmp_path / "myplug.py").write_text(
        "import numpy as np\n"
        "from fewrec.models import Recommender, register\n\n"
        "@register\n"
        "class Flat(Recommender):\n"
        "    name = 'flat-test'\n"
        "    reads_item_text = False\n\n"
        "    def _fit(self, data):\n"
        "        self.s_ = np.asarray(self.fitted.popularity, dtype=np.float32)\n\n"
        "    def score_batch(self, batch):\n"
        "        return np.tile(self.s_, (len(batch), 1))\n"
    )
    env = {
        **os.environ,
        "FEWREC_IMPORT": "myplug",
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    env.pop("COLUMNS", None)
    run = [sys.executable, "-m", "fewrec.cli"]
    listed = subprocess.run([*run, "models"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and "flat-test" in listed.stdout, listed.stderr
    # one model's settings, for a model without a docstring (an IndexError)
    one = subprocess.run([*run, "models", "flat-test"], capture_output=True, text=True, env=env)
    assert one.returncode == 0 and "seed = 0" in one.stdout, one.stderr
    model_dir = tmp_path / "flat"
    trained = subprocess.run(
        [*run, "train", "flat-test", "--output", str(model_dir)], capture_output=True, text=True, env=env
    )
    assert trained.returncode == 0, trained.stderr
    recs = subprocess.run(
        [*run, "recommend", str(model_dir), "--title", "Star Wars", "--k", "3"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert recs.returncode == 0 and len(recs.stdout.strip().splitlines()) >= 3, recs.stderr
    wrong = subprocess.run(
        [*run, "models"], capture_output=True, text=True, env={**env, "FEWREC_IMPORT": "nosuch"}
    )
    assert wrong.returncode == 2 and "names 'nosuch'" in wrong.stderr and "Traceback" not in wrong.stderr
    # the `fewrec` program finds a module in the current folder, as the README's example has it
    # (a console script does not put that folder on the path, as `python -m` does)
    script = Path(sys.executable).parent / "fewrec"
    if script.exists():
        plain = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        here = subprocess.run(
            [str(script), "models"], capture_output=True, text=True, env=plain, cwd=tmp_path
        )
        assert here.returncode == 0 and "flat-test" in here.stdout, here.stderr


def test_cli_train_checks_the_output_can_be_written_before_it_fits(tmp_path):
    """An audit: `train --output` in a folder that cannot be written trained fully (minutes to
    hours for slow models), then crashed with a PermissionError traceback. The output is now
    checked first: one error line, before the data is even read; no folder is left behind."""
    (tmp_path / "a-file").write_text("not a folder")
    missing = str(tmp_path / "missing.csv")  # read after the check: its error would come first
    out = tmp_path / "a-file" / "m"
    proc = fewrec("train", "popularity", "--output", str(out), "--interactions", missing)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "missing.csv" not in proc.stderr
    expected = r"error: cannot save the model to .*a-file is a file, not a folder.*Fix: "
    assert re.match(expected, flat(proc.stderr))
    made = tmp_path / "new" / "deeper" / "m"  # writable: the check makes and removes its folders
    proc = fewrec("train", "popularity", "--output", str(made), "--interactions", missing)
    assert proc.returncode == 2 and "missing.csv" in flat(proc.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="a read-only folder (root writes anyway)")
def test_cli_train_into_a_read_only_folder_is_one_error_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        proc = fewrec("train", "popularity", "--output", str(locked / "m"), "--interactions", "x.csv")
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot save the model to" in flat(proc.stderr) and "Permission denied" in flat(proc.stderr)


def test_audit_of_the_cli_on_own_data(tmp_path, short_histories, caplog):
    """An audit of the CLI on small data of one's own: `--models ''` ran every default model
    (the ensemble's minutes among them); `--output` naming a folder failed as a traceback after
    the run; a Parquet file named .csv was "not valid utf-8" (advice: another encoding); a line
    with a field too many blamed the separator, over two lines; a title column of another name
    was read as text without a word; a bad template was shown as rewritten ("{title}" for the
    "{name}" given); --min-rating on implicit data said ratings "run 1 to 1"; a split too small
    named a setting the CLI has not."""
    own = ["--interactions", str(short_histories), "--rating-col", "", "--time-col", ""]
    proc = fewrec("benchmark", "--models", "", *own)
    assert proc.returncode != 0 and "--models names no model" in proc.stderr
    (tmp_path / "folder").mkdir()
    proc = fewrec("benchmark", "--models", "popularity", *own, "--output", str(tmp_path / "folder"))
    assert proc.returncode != 0 and "is a folder; give a file path" in flat(proc.stderr)
    assert "Traceback" not in proc.stderr and "train" not in proc.stderr
    pd.read_csv(short_histories).to_parquet(tmp_path / "p.csv")
    proc = fewrec("data", "info", "--interactions", str(tmp_path / "p.csv"))
    assert "this is a Parquet file, not a text table. Fix: rename it to p.parquet" in flat(proc.stderr)
    assert "separator" not in proc.stderr  # (a note of a separator found in it came first)
    (tmp_path / "ragged.csv").write_text("user_id,item_id\na,x\nb,y,extra\n")
    proc = fewrec("data", "info", "--interactions", str(tmp_path / "ragged.csv"))
    assert "line 3 has 3 fields, the lines before it 2" in flat(proc.stderr)
    items = tmp_path / "items.csv"
    pd.DataFrame(
        {"item_id": [f"i{i}" for i in range(40)], "name": [f"Gadget {i}" for i in range(40)]}
    ).to_csv(items, index=False)
    proc = fewrec("data", "info", *own, "--items", str(items))
    assert proc.returncode == 0 and "no 'title' column (columns ['name'])" in caplog.text
    assert "--title-col NAME" in caplog.text
    proc = fewrec(
        "data",
        "info",
        *own,
        "--items",
        str(items),
        "--title-col",
        "name",
        "--item-template",
        "{name}: {plot}",
    )
    assert "template '{name}: {plot}' names field 'plot'" in flat(proc.stderr)
    proc = fewrec("train", "popularity", *own, "--min-rating", "4", "--output", str(tmp_path / "m"))
    assert "the data are implicit" in flat(proc.stderr)
    (tmp_path / "one.csv").write_text("user_id,item_id\na,x\n")
    proc = fewrec(
        "benchmark",
        "--protocol",
        "cold-user",
        "--models",
        "popularity",
        "--interactions",
        str(tmp_path / "one.csv"),
    )
    assert (
        "it needs at least 3 users with interactions" in flat(proc.stderr)
        and "test_fraction" not in proc.stderr
    )


def test_a_short_list_says_why(tmp_path, short_histories):
    """`recommend --k 1000` on a catalogue of 40 gave fewer rows without a word."""
    own = ["--interactions", str(short_histories), "--rating-col", "", "--time-col", ""]
    assert fewrec("train", "popularity", *own, "--output", str(tmp_path / "m")).returncode == 0
    proc = fewrec("recommend", str(tmp_path / "m"), "--user", "u3", "--k", "1000")
    assert proc.returncode == 0
    assert "34 items, not 1000: the rest of the catalogue's 40 items are in the history" in flat(proc.stderr)
    # all the candidates there are (it said "the rest of the 2 candidates are in the history")
    proc = fewrec("recommend", str(tmp_path / "m"), "--k", "5", "--candidate", "i1", "--candidate", "i2")
    assert proc.returncode == 0 and "2 items, not 5: only 2 candidates were given" in flat(proc.stderr)
    # (it said "1 items"; and -k, as in "top-k", is --k)
    proc = fewrec("recommend", str(tmp_path / "m"), "-k", "5", "--candidate", "i1")
    assert proc.returncode == 0 and "1 item, not 5: only one candidate was given" in flat(proc.stderr)


def test_benchmark_takes_a_minimum_rating_as_train_does(tmp_path):
    """`train` had --min-rating for like/dislike logs and `benchmark` had not: a log's 0s were
    scored as interest, and as targets to find."""
    rows = [(f"u{u}", f"i{(u * 5 + j) % 30}", int((u + j) % 3 > 0)) for u in range(60) for j in range(10)]
    path = tmp_path / "likes.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "liked"]).to_csv(path, index=False)
    out = tmp_path / "r.json"
    args = ["--interactions", str(path), "--rating-col", "liked", "--time-col", "", "--models", "popularity"]
    assert fewrec("benchmark", *args, "--min-rating", "1", "--output", str(out)).returncode == 0
    result = json.loads(out.read_text())
    assert result["dataset"] == "likes rated >= 1"
    from fewrec.data import load_interactions

    liked = load_interactions(path, columns={"rating": "liked", "timestamp": None}).keep_ratings(1)
    assert result["data_fingerprint"] == liked.fingerprint()  # the 0s left out of the data scored
    proc = fewrec("benchmark", "--protocol", "tallrec", *args, "--min-rating", "1")
    assert proc.returncode != 0 and "--min-rating would leave the dislikes out" in flat(proc.stderr)


def test_the_wait_says_what_it_is_for():
    """An audit: `recommend` with an LM model showed "reading your text" while it ignored the
    text, and nothing for its minutes of prompts."""
    from fewrec.cli import what_we_wait_for
    from fewrec.models.base import make_model

    lm, content = make_model("lm-icl"), make_model("content")
    assert what_we_wait_for(lm, "space films") == "asking the language model about each candidate ..."
    assert what_we_wait_for(lm, None) == "asking the language model about each candidate ..."
    assert what_we_wait_for(content, "space films").startswith("reading your text")
    assert what_we_wait_for(content, None) is None
    assert what_we_wait_for(make_model("popularity"), "space films") is None


def test_train_into_a_log_says_how_it_read_the_data_and_what_it_trains(tmp_path):
    """An audit: `fewrec train ... > log 2>&1` on purchases without a rating column left the log
    without "no rating column, so implicit data" (logged before the level was set) and without a word
    of the fit (a status line, which a log does not show)."""
    rows = [f"u{u},i{(u * 7 + j) % 30}" for u in range(40) for j in range(5)]
    (tmp_path / "buys.csv").write_text("user_id,item_id\n" + "\n".join(rows) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run(
        [sys.executable, "-m", "fewrec.cli", "train", "popularity", "--output", str(tmp_path / "m")]
        + ["--interactions", str(tmp_path / "buys.csv")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no 'rating' column, so the data are implicit: every interaction 1" in proc.stderr
    assert "training popularity on" in proc.stderr
    # as the CLI's own notes read (they read "INFO fewrec.data.loaders: ...")
    assert re.search(r"^note: \S*buys\.csv: no 'rating' column", proc.stderr, re.M), proc.stderr
    # the model's notes of how it read the data, as a fit in Python warns them (train printed
    # its own copies, without segmented popularity's)
    seg = fewrec(
        "train",
        "popularity",
        "--set",
        "segment_by=auto",
        "--output",
        str(tmp_path / "s"),
        "--interactions",
        str(tmp_path / "buys.csv"),
    )
    assert seg.returncode == 0 and "note: popularity segment_by='auto' found no user fields" in flat(
        seg.stderr
    )


def test_recommend_prints_json_or_csv_for_programs(tmp_path):
    """The list was a rich table only: a script had to scrape box-drawing characters. With
    --format json or csv it is data on stdout (notes stay on stderr)."""
    import io
    import json

    inter = tmp_path / "i.csv"
    inter.write_text("user,item\n" + "".join(f"u{u},i{i}\n" for u in range(20) for i in range(u % 5, 15, 3)))
    items = tmp_path / "items.csv"
    items.write_text("item,title\n" + "".join(f"i{i},Item number {i}\n" for i in range(15)))
    out = tmp_path / "m"
    cols = ["--user-col", "user", "--item-col", "item", "--rating-col", "", "--time-col", ""]
    made = fewrec(
        "train", "itemknn", "--output", str(out), "--interactions", str(inter), "--items", str(items), *cols
    )
    assert made.returncode == 0, made.stderr
    got = fewrec("recommend", str(out), "--item", "i0", "--k", "3", "--explain", "--format", "json")
    assert got.returncode == 0, got.stderr
    rows = json.loads(got.stdout)
    assert [r["rank"] for r in rows] == [1, 2, 3] and all(r["label"].startswith("Item number") for r in rows)
    assert all(isinstance(r["score"], float) and r["reason"] for r in rows) and "i0" not in {
        r["item"] for r in rows
    }
    table = pd.read_csv(
        io.StringIO(fewrec("recommend", str(out), "--item", "i0", "--k", "3", "--format", "csv").stdout)
    )
    assert list(table.columns) == ["rank", "item", "label", "score"] and table["item"].tolist() == [
        r["item"] for r in rows
    ]
    bad = fewrec("recommend", str(out), "--item", "i0", "--format", "xml")
    assert bad.returncode != 0 and "--format is table, json or csv, not 'xml'" in bad.stderr


def test_ctrl_c_or_an_exit_code_in_a_command_is_the_exit_code(tmp_path, monkeypatch):
    """Ctrl-C during `train` or `benchmark` exited 0 without a word: typer turns it into a
    return code of 130 under standalone_mode=False, which main() dropped, as it dropped a
    typer.Exit(n) raised in a command."""
    import typer

    from fewrec.data import movielens

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(movielens, "load_dataset", interrupted)
    proc = fewrec("train", "popularity", "--output", str(tmp_path / "m"))
    assert proc.returncode == 130 and proc.stderr.strip() == "aborted", proc.stderr
    assert not (tmp_path / "m").exists()

    def exits(*args, **kwargs):
        raise typer.Exit(3)

    monkeypatch.setattr(movielens, "load_dataset", exits)
    proc = fewrec("train", "popularity", "--output", str(tmp_path / "m"))
    assert proc.returncode == 3 and proc.stderr == "", proc.stderr


def _fewrec_process(*args: str, **kwargs) -> subprocess.Popen:
    """``python -m fewrec ARGS``, this checkout's fewrec first on the path."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "fewrec", *args], env=env, **kwargs)


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGPIPE"), reason="no SIGPIPE")
def test_a_pipe_closed_early_ends_a_command_quietly_as_unix_tools_end():
    """`fewrec models | head -n 2` (and --help) exited 1, failing a `set -o pipefail` script:
    Python ignores SIGPIPE, and rich and typer made the write error exit 1. The command now
    ends as `seq 1 100000 | head -1` ends: by SIGPIPE (141 in a shell), saying nothing."""
    import signal

    for args in (["models"], ["--help"]):
        proc = _fewrec_process(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # before its first line: the reader is gone
        err = proc.stderr.read()
        proc.wait(timeout=60)
        proc.stderr.close()
        assert proc.returncode == -signal.SIGPIPE and err == b"", (args, proc.returncode, err)


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGPIPE"), reason="no SIGPIPE")
def test_serve_keeps_python_ignoring_sigpipe(monkeypatch):
    """A client that drops its socket must not end the server, so `serve` keeps SIGPIPE ignored
    where the other commands let it end them."""
    import signal

    from fewrec.serve import app

    seen = []
    monkeypatch.setattr(app, "run_server", lambda *a, **k: seen.append(signal.getsignal(signal.SIGPIPE)))
    assert fewrec("serve", "some-model").returncode == 0
    assert seen == [signal.SIG_IGN]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_a_write_error_on_stdout_is_one_line_and_a_bugs_os_error_keeps_its_traceback(monkeypatch):
    """`fewrec models > /dev/full` printed a 60-line traceback ending in "OSError: [Errno 28] No
    space left on device"; it is one error line and exit 1. An OSError of a bug still raises."""
    with open("/dev/full", "w") as full:
        proc = _fewrec_process("models", stdout=full, stderr=subprocess.PIPE, text=True)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert err == "error: cannot write the output: No space left on device\n"

    from fewrec.models import base

    def broken(*args, **kwargs):
        raise OSError("a bug's error")

    monkeypatch.setattr(base, "_import_builtin_models", broken)
    with pytest.raises(OSError, match="a bug's error"):
        fewrec("models")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc")
def test_a_train_output_it_cannot_save_to_is_named_as_given():
    """`train ease --output /proc/x` named the save's own temporary folder in its error ("No such
    file or directory: /proc/.x.saving-8637-ef409e05"), not the path given."""
    proc = fewrec("train", "popularity", "--output", "/proc/x")
    said = flat(proc.stderr)
    assert proc.returncode == 2 and said.startswith("error: cannot save the model to /proc/x ("), said
    assert ".saving-" not in said and ".x." not in said


def test_help_lists_each_command_in_one_line_and_shows_examples():
    """`fewrec --help` kept the docstrings' line breaks in its command list: merge-seeds,
    recommend and demo broke mid-sentence ("... into one" / "table over seeds"). Each
    command's summary (its docstring's first paragraph) is one line; recommend, train and
    benchmark end their --help with an example from the README."""
    from fewrec.cli import app

    for group in [app, *(g.typer_instance for g in app.registered_groups)]:
        docs = [group.info.help] + [c.help or c.callback.__doc__ for c in group.registered_commands]
        for doc in docs:
            assert "\n" not in inspect.cleandoc(str(doc)).split("\n\n")[0], doc
    for command, example in (
        ("recommend", "fewrec recommend models/ease --title"),
        ("train", "fewrec train ease --output models/ease"),
        ("benchmark", "fewrec benchmark --protocol warm --models"),
    ):
        helped = fewrec(command, "--help")
        assert helped.returncode == 0 and example in flat(helped.stdout), helped.stdout


def _command_name(command) -> str:
    """A registered command's name on the command line (typer's: the function's, dashed)."""
    return command.name or command.callback.__name__.replace("_", "-")


def _help_pages() -> list[tuple[str, ...]]:
    """Every command's and group's `--help` arguments, the top level's first."""
    from fewrec.cli import app

    pages: list[tuple[str, ...]] = [()]
    for c in app.registered_commands:
        pages.append((_command_name(c),))
    for g in app.registered_groups:
        pages.append((g.name,))
        pages += [(g.name, _command_name(c)) for c in g.typer_instance.registered_commands]
    return pages


def test_help_pages_wrap_their_prose_and_show_flags_as_flags():
    """Under rich's help a paragraph after the first kept the docstring's line breaks at any
    width ("... free text and/or side info" / "(a known user's" / "own side info ..."), and
    every flag and --help itself read `--explain <bool>`, as if it took a value. The help is
    click's plain text now: prose rewrapped, flags bare, and each command's summary whole in
    an 80-column listing (click cuts a long one with "...")."""
    pages = _help_pages()
    assert len(pages) >= 12, pages
    for args in pages:
        helped = fewrec(*args, "--help")
        assert helped.returncode == 0, (args, helped.stderr)
        text = helped.stdout
        assert "<bool>" not in text and "--help" in text, (args, text)
        # an option given once per value reads as one value (--user <list[str]> said a list, and
        # a second --user is an error)
        assert "<list[str]>" not in text, (args, text)
        prose = text.split("\n\n", 1)[1]  # after the usage line
        for section in ("\nArguments:", "\nOptions:", "\nCommands:"):
            prose = prose.split(section)[0]
        for paragraph in prose.strip().split("\n\n"):
            lines = paragraph.splitlines()
            assert all(len(line) > 50 for line in lines[:-1]), (args, paragraph)  # wrapped
        if "\nCommands:" in text:
            listing = text.split("\nCommands:")[1].strip().splitlines()
            assert listing and not any(line.endswith("...") for line in listing), (args, listing)


def test_an_item_option_given_a_title_or_ids_with_commas_names_the_form_that_takes_it(
    tmp_path, short_histories
):
    """A CLI audit: `--item "Star Wars"` and `--item P000,P001` were "unknown history item"
    errors that named neither `--title` nor a repeated `--item`."""
    own = ["--interactions", str(short_histories), "--rating-col", "", "--time-col", ""]
    assert fewrec("train", "popularity", *own, "--output", str(tmp_path / "m")).returncode == 0
    proc = fewrec("recommend", str(tmp_path / "m"), "--item", "i1,i2")
    said = flat(proc.stderr)
    assert proc.returncode == 2 and "--item 'i1,i2' is 2 ids. Fix: repeat --item: --item i1 --item i2" in said
    ml = tmp_path / "ml"
    assert fewrec("train", "popularity", "--output", str(ml)).returncode == 0
    proc = fewrec("recommend", str(ml), "--disliked", "Fargo (1996)")
    said = flat(proc.stderr)
    assert (
        proc.returncode == 2
        and "--disliked 'Fargo (1996)' is a title, not an id. Fix: --disliked-title" in said
    )
    proc = fewrec("recommend", str(ml), "--item", "no such thing")  # (neither: the unknown id's error)
    assert proc.returncode == 2 and "unknown history item 'no such thing'" in flat(proc.stderr)


def test_models_names_the_benchmark_presets():
    """A CLI audit: `benchmark --models` takes presets (ensemble-blend...) that `fewrec models`
    never listed and `fewrec models ensemble-blend` called an unknown model."""
    listed = fewrec("models")
    assert listed.returncode == 0 and 'ensemble-blend = ensemble {"rerank": false}' in flat(listed.stderr)
    one = fewrec("models", "ensemble-blend")
    assert one.returncode == 0 and "a benchmark preset, ensemble with" in flat(one.stderr)
    assert "fewrec train ensemble --set 'rerank=false'" in flat(one.stderr) and "rerank = true" in one.stdout


def test_fewrec_models_lists_a_model_whose_settings_have_no_defaults():
    """An audit: one registered model of one's own whose config has a setting without a default
    stopped `fewrec models` with exit 2, listing none of the others. It is listed (on stderr,
    so stdout stays one `name: {json}` line per model) as needing that setting, the others as
    before; `fewrec models NAME` shows its settings."""
    import numpy as np

    from fewrec.models import MODELS, ModelConfig, Recommender, register

    class NeedsConfig(ModelConfig):
        shrink: float
        """How far scores shrink."""

    class Needs(Recommender):
        name = "test-needs"
        Config = NeedsConfig

        def _fit(self, data):
            pass

        def score_batch(self, batch):
            return np.zeros((len(batch), self.n_items), np.float32)

    register(Needs)
    try:
        listed = fewrec("models")
        one = fewrec("models", "test-needs")
    finally:
        MODELS.pop("test-needs", None)
    assert listed.returncode == 0, listed.stderr
    assert "test-needs: needs settings of no default: shrink" in listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert {line.split(":")[0] for line in lines} >= {"popularity", "transitions", "ease"}
    assert all(json.loads(line.split(": ", 1)[1]) is not None for line in lines)  # still JSON
    assert one.returncode == 0 and "shrink = (no default" in one.stdout and "seed = 0" in one.stdout, (
        one.stderr
    )
