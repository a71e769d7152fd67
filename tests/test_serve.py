"""The HTTP service end to end through FastAPI's TestClient, on a real few-shot model."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import threading
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import FAST_FEWSHOT, models_root, saved_model  # noqa: E402

from fewrec.serve.app import create_app  # noqa: E402
from fewrec.serve.engine import EXPLORED, ExplorationConfig, _draw_seed  # noqa: E402
from fewrec.serve.store import FeedbackRecord, ItemRecord  # noqa: E402

KEY = "test-key"
AUTH = {"X-API-Key": KEY}


@pytest.fixture(scope="module")
def fewshot_dir(cold_user):
    return saved_model("fewshot", cold_user.train, **FAST_FEWSHOT)


@pytest.fixture(scope="module")
def ease_dir(cold_user):
    return saved_model("ease", cold_user.train)


@pytest.fixture
def client(fewshot_dir, tmp_path):
    app = create_app(
        fewshot_dir,
        tmp_path / "store.db",
        api_keys=[KEY],
        exploration=ExplorationConfig(policy="thompson"),
        model_root=models_root(),
        warm_up=False,
    )
    with TestClient(app) as c:
        yield c


def rec(client, **body):
    body.setdefault("explore", False)
    r = client.post("/recommend", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def ids(resp) -> list[str]:
    return [i["item"] for i in resp["items"]]


def test_health_and_docs(client):
    assert client.get("/health/live").json()["status"] == "ok"
    assert client.get("/health/live", params={"_": "1733300000"}).status_code == 200  # a cache-buster
    ready = client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["detail"]["model"] == "fewshot"
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/items/{item_id}", "/users/{user_id}", "/feedback", "/recommend", "/admin/model"):
        assert p in paths
    # errors are documented with the body they have (ErrorBody), not FastAPI's default
    invalid = paths["/recommend"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert invalid["$ref"].endswith("/ErrorBody")
    # the docs page loads its scripts from the service itself, not a CDN (no internet here)
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text
    script = re.search(r'src="([^"]+swagger-ui-bundle\.js)"', docs.text)
    assert script and client.get(script.group(1)).status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "fewrec" in page.text
    assert client.get("/static/app.js").status_code == 200
    # the page and its files with a CSP and nosniff, by either path; HEAD answers (it was a 405)
    for path in ("/", "/static/index.html", "/static/app.js"):
        got = client.head(path)
        assert got.status_code == 200, path
        assert "script-src 'self'" in got.headers["content-security-policy"], path
        assert got.headers["x-content-type-options"] == "nosniff", path


def test_session_recommendations_have_scores_and_reasons(client):
    out = rec(client, items=["50", "181"], k=5)  # Star Wars, Return of the Jedi
    assert out["policy"] == "greedy" and out["history_size"] == 2
    assert len(out["items"]) == 5 and not {"50", "181"} & set(ids(out))
    scores = [i["score"] for i in out["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all(i["reason"] for i in out["items"])
    assert any(set(i["because"]) & {"50", "181"} for i in out["items"])
    text_only = rec(client, text="a funny animated film for children", k=5)
    assert text_only["history_size"] == 0 and len(text_only["items"]) == 5


def test_item_crud(client):
    body = {"title": "Zeta Nebula", "text": "Astronauts find a signal", "fields": {"genres": ["Sci-Fi"]}}
    r = client.put("/items/zeta", json=body, headers=AUTH)
    assert r.status_code == 200 and r.json()["recommendable"] and r.json()["source"] == "store"
    got = client.get("/items/zeta").json()
    assert got["title"] == "Zeta Nebula" and got["fields"] == {"genres": ["Sci-Fi"]}
    found = client.get("/items", params={"q": "zeta neb"}).json()
    assert [i["id"] for i in found["items"]] == ["zeta"]
    upd = client.put("/items/zeta", json={**body, "fields": {"genres": ["Drama"]}}, headers=AUTH)
    assert upd.json()["fields"] == {"genres": ["Drama"]} and r.json()["notes"] == upd.json()["notes"] == []
    # a field the model's item text leaves out is stored without a word: now the answer says so
    directed = client.put(
        "/items/psy", json={"title": "Psy", "fields": {"director": "Hitchcock", "year": "1960"}}, headers=AUTH
    )
    (note,) = directed.json()["notes"]
    assert "fields ['director'] are stored" in note and "year" not in note.split("]")[0]
    bulk = client.post(
        "/items", json=[{"id": "b1", "title": "One"}, {"id": "b2", "title": "Two"}], headers=AUTH
    )
    assert bulk.status_code == 200 and [i["id"] for i in bulk.json()] == ["b1", "b2"]
    assert client.delete("/items/zeta", headers=AUTH).status_code == 204
    assert client.get("/items/zeta").status_code == 404
    assert client.delete("/items/zeta", headers=AUTH).status_code == 404
    gone = client.post("/feedback", json={"user": "u9", "item": "zeta", "kind": "like"}, headers=AUTH)
    assert gone.status_code == 404 and "was deleted" in gone.json()["message"]
    # nor is it read as history: it had been, and the reasons quoted the deleted item
    asked = client.post("/recommend", json={"items": ["50", "zeta"], "explore": False})
    assert asked.status_code == 404 and "was deleted" in asked.json()["message"], asked.text
    assert asked.json()["field"] == "items[1]"
    out = rec(client, items=["50"], k=100, filters={"genres": "Drama"})
    assert "zeta" not in ids(out)
    # a catalogue item can be deleted too, and is then never recommended
    assert client.delete("/items/181", headers=AUTH).status_code == 204
    assert "181" not in ids(rec(client, items=["50"], k=20))
    asked = client.post("/recommend", json={"items": ["181"], "explore": False})
    assert asked.status_code == 404 and "was deleted" in asked.json()["message"], asked.text


def test_new_item_is_recommendable_within_a_second(client):
    start = time.perf_counter()
    r = client.put(
        "/items/orbit",
        json={
            "title": "Orbit of Jupiter",
            "text": "A crew of astronauts on a desperate space adventure",
            "fields": {"year": "2024", "genres": ["Sci-Fi", "Spacefaring"]},
        },
        headers=AUTH,
    )
    assert r.status_code == 200
    out = rec(client, items=["50", "172"], k=5, filters={"genres": "spacefaring"})
    elapsed = time.perf_counter() - start
    assert ids(out) == ["orbit"] and elapsed < 1.0
    assert np.isfinite(out["items"][0]["score"])
    # it works as history too, and shows among similar items of related films
    liked = rec(client, items=["orbit"], k=10)
    assert any("orbit" in i["because"] for i in liked["items"])
    sim = client.get("/items/orbit/similar", params={"k": 10}).json()
    assert len(sim["items"]) == 10 and "orbit" not in ids(sim)
    assert sim["items"][0]["reason"].startswith("Similar to Orbit of Jupiter")


def test_an_item_written_here_is_read_as_the_python_api_reads_it(client, fewshot_dir):
    """An item PUT with a title, a free text and fields is embedded from the same text as
    ``model.add_items`` makes of it in Python: the service had folded the text into the title
    ("Dune. A desert planet... (1965)") where Python reads it after the template."""
    from fewrec import load_model

    fields = {"year": "1965", "genres": ["Sci-Fi"]}
    body = {"title": "Dune", "text": "A desert planet and its spice", "fields": fields}
    assert client.put("/items/dune", json=body, headers=AUTH).status_code == 200
    served = client.app.state.engine.state.model
    row = served.fitted.item_info.iloc[served.fitted.items.lookup(["dune"])]
    model = load_model(fewshot_dir)
    info = pd.DataFrame({"title": ["Dune"], "text": [body["text"]], "year": ["1965"], "genres": [["Sci-Fi"]]})
    model.add_items(["dune"], info)
    mine = model.fitted.item_info.iloc[model.fitted.items.lookup(["dune"])]
    assert served.texts_of(row, ["dune"]) == model.texts_of(mine, ["dune"])
    assert "Dune (1965)" in served.texts_of(row, ["dune"])[0]
    found = rec(client, text="a desert planet and its spice", k=5)
    assert "dune" in ids(found)


def test_changed_item_text_is_read_again(client):
    body = {"title": "Untitled", "text": "a quiet drama about a family farm", "fields": {"year": "2020"}}
    assert client.put("/items/retitled", json=body, headers=AUTH).status_code == 200
    fans = ["50", "172", "181"]  # Star Wars trilogy fans

    def score() -> float:  # its score against the spread of the top-100 scores
        only = rec(client, items=fans, k=1, filters={"year": "2020"})
        top = [i["score"] for i in rec(client, items=fans, k=100)["items"]]
        return (only["items"][0]["score"] - np.mean(top)) / np.std(top)

    before = score()
    space = {**body, "title": "Galaxy Rebels", "text": "a space opera: rebels fight an evil empire"}
    start = time.perf_counter()
    assert client.put("/items/retitled", json=space, headers=AUTH).status_code == 200
    after = score()
    assert time.perf_counter() - start < 1.0
    assert after > before + 0.5, (before, after)  # unchanged if the text is not re-read
    # a catalogue item re-described is re-read as well, and similar items follow its new text
    old_sim = ids(client.get("/items/1/similar", params={"k": 5}).json())  # Toy Story
    toy = {"title": "Toy Story (1995)", "text": "a gritty war film", "fields": {"genres": ["War"]}}
    assert client.put("/items/1", json=toy, headers=AUTH).status_code == 200
    assert ids(client.get("/items/1/similar", params={"k": 5}).json()) != old_sim


def test_feedback_changes_the_next_recommendations_within_a_second(client):
    user = "fresh-user"
    assert client.put("/users/" + user, json={"info": {"age": 30}}, headers=AUTH).status_code == 200
    # its name in /recommend and Query is read here too (it was a 422)
    again = client.put("/users/" + user, json={"user_info": {"age": 31}}, headers=AUTH)
    assert again.status_code == 200 and again.json()["info"] == {"age": 31}, again.text
    before = client.get(f"/users/{user}/recommend", params={"k": 10, "explore": False}).json()
    assert before["history_size"] == 0
    start = time.perf_counter()
    for item in ("50", "172", "181"):  # Star Wars trilogy
        r = client.post("/feedback", json={"user": user, "item": item, "kind": "like"}, headers=AUTH)
        assert r.status_code == 201
    after = client.get(f"/users/{user}/recommend", params={"k": 10, "explore": False}).json()
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    assert after["history_size"] == 3 and ids(after) != ids(before)
    assert not {"50", "172", "181"} & set(ids(after))
    assert any(set(i["because"]) & {"50", "172", "181"} for i in after["items"])
    # a dislike removes an item from the list without counting as a like
    top = ids(after)[0]
    client.post("/feedback", json={"user": user, "item": top, "kind": "dislike"}, headers=AUTH)
    again = client.get(f"/users/{user}/recommend", params={"k": 10, "explore": False}).json()
    assert top not in ids(again) and again["history_size"] == 3
    # a rating counts as a like above 3 of 5
    client.post("/feedback", json={"user": user, "item": "1", "kind": "rating", "value": 5}, headers=AUTH)
    assert client.get(f"/users/{user}/recommend", params={"explore": False}).json()["history_size"] == 4
    events = client.get(f"/users/{user}/feedback").json()
    assert [e["kind"] for e in events] == ["like", "like", "like", "dislike", "rating"]


def test_every_event_counts_and_the_newest_wins(client):
    """A user's likes still count after more than a thousand later events; an event that
    arrives late but happened earlier does not override a newer one; milliseconds are refused."""
    user = "busy-user"
    client.put("/users/" + user, json={}, headers=AUTH)
    for item in ("50", "172", "181"):
        client.post("/feedback", json={"user": user, "item": item, "kind": "like"}, headers=AUTH)
    views = [{"user": user, "item": str(i), "kind": "view"} for i in range(200, 1200)]
    assert client.post("/feedback/batch", json={"events": views}, headers=AUTH).status_code == 201
    out = client.get(f"/users/{user}/recommend", params={"explore": False}).json()
    assert out["history_size"] == 3
    assert not {str(i) for i in range(200, 1200)} & set(ids(out))  # viewed items stay seen
    late = {"user": user, "item": "50", "kind": "dislike", "timestamp": 1_000.0}
    r = client.post("/feedback", json=late, headers=AUTH)
    assert r.status_code == 201 and r.json()["accepted"] == 1
    (note,) = r.json()["notes"]  # stored, and the ack says it changes nothing
    assert "newer like of item '50'" in note and "changes nothing" in note
    assert client.get(f"/users/{user}/recommend", params={"explore": False}).json()["history_size"] == 3
    batch = [dict(late, item="172", kind="rating", value=1), {"user": user, "item": "181", "kind": "view"}]
    batch.append({"user": user, "item": "7", "kind": "like"})
    notes = client.post("/feedback/batch", json={"events": batch}, headers=AUTH).json()["notes"]
    assert len(notes) == 1 and notes[0].startswith("events[0]: ") and "this rating" in notes[0]
    ms = {"user": user, "item": "1", "kind": "like", "timestamp": 1.7e12}
    r = client.post("/feedback", json=ms, headers=AUTH)
    assert r.status_code == 422 and "milliseconds" in r.json()["message"]
    future = {"user": user, "item": "1", "kind": "like", "timestamp": time.time() + 10 * 86_400}
    r = client.post("/feedback", json=future, headers=AUTH)
    assert r.status_code == 422 and r.json()["field"] == "timestamp"
    # a clock an hour ahead: its like is stored as now, so a dislike sent after it decides (an
    # audit: the like outweighed every later event without a timestamp for that hour)
    size = lambda: client.get(f"/users/{user}/recommend", params={"explore": False}).json()["history_size"]  # noqa: E731
    before = size()
    ahead = {"user": user, "item": "98", "kind": "like", "timestamp": time.time() + 3600}
    assert client.post("/feedback", json=ahead, headers=AUTH).json()["events"][0]["timestamp"] <= time.time()
    assert size() == before + 1
    after = client.post("/feedback", json={"user": user, "item": "98", "kind": "dislike"}, headers=AUTH)
    assert after.json()["notes"] == [] and size() == before


def test_a_known_users_dislike_of_a_training_item(client, cold_user, tmp_path):
    """A known user's dislike of an item of their training history takes it out of the history
    the model scores (the service kept the training rating, the Python API did not); a model
    that learned a vector for the user (ALS) folds the user in without it (it counted it until
    retrained)."""
    user = str(cold_user.train.users.ids[0])
    inter = cold_user.train.interactions
    first = cold_user.train.items.id(int(inter[inter["user"] == 0]["item"].iloc[0]))
    before = rec(client, user=user, k=3)
    assert before["notes"] == []
    client.post("/feedback", json={"user": user, "item": first, "kind": "dislike"}, headers=AUTH)
    after = rec(client, user=user, k=3)
    assert after["notes"] == [] and after["history_size"] == before["history_size"] - 1
    assert rec(client, user=user, items=[first], k=3)["history_size"] == before["history_size"]  # liked again
    als = saved_model("als", cold_user.train)
    assert client.post("/admin/model", json={"path": str(als)}, headers=AUTH).status_code == 200
    disliked = rec(client, user=user, k=10)
    assert disliked["notes"] == []  # no "counts it until retrained" note: it does not
    client.post("/feedback", json={"user": user, "item": first, "kind": "like"}, headers=AUTH)
    liked = rec(client, user=user, k=10)  # the history as trained: the learned vector again
    assert ids(liked) != ids(disliked)


def test_filters_and_exclusions(client):
    out = rec(client, items=["50"], k=10, filters={"genres": ["Comedy", "Romance"]})
    assert all({"Comedy", "Romance"} & set(i["fields"]["genres"]) for i in out["items"])
    year = rec(client, items=["50"], k=5, filters={"year": 1995})
    assert all(i["fields"]["year"] == "1995" for i in year["items"])
    first = ids(rec(client, items=["50"], k=3))
    assert not set(first) & set(ids(rec(client, items=["50"], k=3, exclude=first)))
    assert ids(rec(client, items=["50"], filters={"title": "star wars"}, exclude_seen=False)) == ["50"]
    none = rec(client, items=["50"], filters={"title": "star wars"})
    assert ids(none) == []  # and says why (an empty list came back without a word)
    assert none["notes"] == [
        "0 items, not 10: the rest of the catalogue's 1,682 items are seen or filtered out"
    ]
    get = client.get("/users/1/recommend", params=[("filter", "genres:Horror"), ("k", 3)]).json()
    assert all("Horror" in i["fields"]["genres"] for i in get["items"])
    # a filter value no item has is named (a typo must not look like "nothing to recommend")
    typo = rec(client, items=["50"], k=3, filters={"genres": ["Comdy", "Drama"]})
    assert typo["items"] and typo["notes"] == ["filter genres='Comdy' matches no item (close: ['comedy'])"]
    assert rec(client, items=["50"], k=3, filters={"genres": "Drama"})["notes"] == []


def test_known_user_and_exploration(client):
    known = client.get("/users/1").json()
    assert known["known_to_model"]
    greedy = client.get("/users/1/recommend", params={"k": 10}).json()
    assert greedy["policy"] == "greedy" and greedy["history_size"] > 20  # a warm user: no exploring
    assert any(i["because"] for i in greedy["items"])  # a long history is explained by its top items
    new = [rec(client, text="space", k=10, explore=None, seed=s) for s in range(4)]
    assert {r["policy"] for r in new} == {"thompson"}
    assert len({tuple(ids(r)) for r in new}) > 1  # draws differ
    assert all(i["mean_score"] != i["score"] for i in new[0]["items"])
    assert rec(client, text="space", k=10, explore=None, seed=7) == rec(
        client, text="space", k=10, explore=None, seed=7
    )
    # an item the draw put in the list says so: the model's reasons explain its best guess
    best = set(ids(rec(client, text="space", k=10, explore=False)))
    for r in new:
        for i in r["items"]:
            assert (i["reason"] == EXPLORED) == (i["item"] not in best), i
    assert any(i["reason"] == EXPLORED for r in new for i in r["items"])


def test_one_seed_gives_each_user_their_own_draw():
    """A client that pinned the seed gave every user nearly the same list (54% shared): the draw
    of the shared prior. The seed is now taken with the user, or the session."""
    from fewrec.serve import schemas as S

    seeds = {str(_draw_seed(S.RecommendRequest(user=u, seed=1))) for u in ("1", "2", "3")} | {
        str(_draw_seed(S.RecommendRequest(items=["50"], seed=1)))
    }
    assert len(seeds) == 4
    assert _draw_seed(S.RecommendRequest(user="1", seed=1)) == _draw_seed(
        S.RecommendRequest(user="1", seed=1)
    )
    assert _draw_seed(S.RecommendRequest(user="1")) is None  # unseeded: fresh each call
    # a session's items as a set: the same likes in another order, the same draw
    a, b = (S.RecommendRequest(items=i, seed=1) for i in (["50", "181"], ["181", "50"]))
    assert _draw_seed(a) == _draw_seed(b) != _draw_seed(S.RecommendRequest(items=["50"], seed=1))
    rated = S.RecommendRequest(items=["181", "50"], ratings=[1, 5], seed=1)
    assert _draw_seed(rated) != _draw_seed(S.RecommendRequest(items=["181", "50"], ratings=[5, 1], seed=1))


def test_writes_need_an_api_key(client):
    r = client.put("/items/x1", json={"title": "X"})
    assert r.status_code == 401 and r.json()["field"] == "X-API-Key"
    r = client.put("/items/x1", json={"title": "X"}, headers={"X-API-Key": "wrong"})
    assert r.status_code == 403 and r.json()["field"] == "X-API-Key"
    for method, path, body in [
        ("post", "/feedback", {"user": "u", "item": "1", "kind": "like"}),
        ("post", "/feedback/batch", {"events": [{"user": "u", "item": "1", "kind": "like"}]}),
        ("put", "/users/u", {}),
        ("delete", "/users/1", None),
        ("delete", "/items/1", None),
        ("post", "/items", [{"id": "x", "title": "X"}]),
        ("post", "/admin/model", {"path": "/tmp"}),
    ]:
        resp = client.request(method, path, json=body)
        assert resp.status_code == 401, (path, resp.text)
    assert client.get("/items/1").status_code == 200  # reads are open
    assert client.post("/recommend", json={"items": ["1"]}).status_code == 200


BAD = [
    ("post", "/recommend", {"k": 0}, 422, "k"),
    ("post", "/recommend", {"k": "ten"}, 422, "k"),
    ("post", "/recommend", {"k": 1000}, 422, "k"),
    ("post", "/recommend", {"items": "50"}, 422, "items"),
    ("post", "/recommend", {"items": ["50", 7]}, 422, "items[1]"),
    ("post", "/recommend", {"items": ["nope"]}, 404, "items[0]"),
    ("post", "/recommend", {"items": ["50"], "ratings": [5, 4]}, 422, "ratings"),  # (it said body)
    ("post", "/recommend", {"items": ["50", "1"], "ratings": [5, -3]}, 422, "ratings[1]"),
    ("post", "/recommend", {"items": ["50"], "ratings": [100]}, 422, "ratings[0]"),
    ("post", "/recommend", {"text": "x" * 5000}, 422, "text"),
    ("post", "/recommend", {"filters": {"colour": "red"}}, 422, "filters.colour"),
    ("post", "/recommend", {"filters": {"genres": []}}, 422, "filters.genres"),
    ("post", "/recommend", {"user": "no-such-user"}, 404, "user"),
    ("post", "/recommend", {"user": ""}, 422, "user"),
    ("post", "/recommend", {"usr": "1"}, 422, "usr"),
    ("post", "/recommend", {"user_info": {"age": [1, 2]}}, 422, "user_info.age"),
    ("post", "/feedback", {"user": "u", "item": "50", "kind": "love"}, 422, "kind"),
    ("post", "/feedback", {"user": "u", "item": "50", "kind": "rating"}, 422, "value"),
    ("post", "/feedback", {"user": "u", "item": "50", "kind": "like", "value": 1}, 422, "value"),
    ("post", "/feedback", {"user": "u", "item": "50", "kind": "like", "timestamp": 1.7e12}, 422, "timestamp"),
    ("post", "/feedback", {"user": "u", "item": "50", "kind": "rating", "value": 11}, 422, "value"),
    ("post", "/feedback", {"user": "u", "item": "nope", "kind": "like"}, 404, "item"),
    ("post", "/feedback", {"user": "u", "item": "50", "kind": "like", "timestamp": -1}, 422, "timestamp"),
    ("post", "/feedback", {"item": "50", "kind": "like"}, 422, "user"),
    ("post", "/feedback/batch", {"events": []}, 422, "events"),
    (
        "post",
        "/feedback/batch",
        {
            "events": [
                {"user": "u", "item": "50", "kind": "like"},
                {"user": "u", "item": "zz", "kind": "like"},
            ]
        },
        404,
        "events[1].item",
    ),
    ("put", "/items/new", {}, 422, "body"),
    ("put", "/items/new", {"title": "t", "fields": {"bad key": 1}}, 422, "fields.bad key"),
    ("put", "/items/new", {"title": "t" * 2000}, 422, "title"),
    ("put", "/items/" + "x" * 300, {"title": "t"}, 422, "item_id"),
    ("post", "/items", [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}], 422, "[1].id"),
    ("put", "/users/u", {"info": {"f" + str(i): i for i in range(40)}}, 422, "info"),
    ("get", "/items/nope", None, 404, "item_id"),
    ("get", "/users/nope", None, 404, "user_id"),
    ("get", "/users/nope/recommend", None, 404, "user_id"),  # (it named the body's "user")
    ("get", "/items/50/similar?k=0", None, 422, "k"),
    ("get", "/items/50/similar?filter=genres", None, 422, "filter[0]"),
    ("get", "/items?limit=0", None, 422, "limit"),
    ("get", "/users/1/recommend?explroe=false", None, 422, "explroe"),  # a typo was ignored
    ("get", "/items/50?k=3", None, 422, "k"),
    ("post", "/admin/model", {"path": "/"}, 403, "path"),
    ("post", "/admin/model", {"path": "models/a\u0000b"}, 422, "path"),  # a NUL was a 500
    # JSON true was read as 1: a k of 1, a rating of 1 star (a dislike)
    ("post", "/recommend", {"items": ["50"], "k": True}, 422, "k"),
    # an id with a space at an end ("196 ") made a user of its own
    ("post", "/feedback", {"user": "196 ", "item": "50", "kind": "like"}, 422, "user"),
    ("put", "/users/%20bob", {}, 422, "user_id"),
    ("post", "/recommend", {"items": ["50"], "ratings": [True]}, 422, "ratings[0]"),
    ("post", "/feedback", {"user": "u", "item": "50", "kind": "rating", "value": True}, 422, "value"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"), BAD, ids=[f"{b[1]}-{b[4]}" for b in BAD]
)
def test_invalid_input_is_a_4xx_naming_the_field(client, method, path, body, status, field):
    r = client.request(method, path, json=body, headers=AUTH)
    assert r.status_code == status, r.text
    out = r.json()
    assert out["field"] == field, out
    assert out["error"] and out["message"]


def test_malformed_bodies_and_limits(client):
    r = client.post("/recommend", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["field"] == "body"
    plain = client.post("/recommend", content=b'{"items": ["50"]}', headers={"Content-Type": "text/plain"})
    assert plain.status_code == 422 and "Content-Type: application/json" in plain.json()["message"]
    r = client.post(
        "/recommend",
        content=b'{"ratings": [NaN], "items": ["50"]}',
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["field"] == "ratings[0]"
    r = client.post(
        "/recommend", content=b"[" + b"1," * 600_000 + b"1]", headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 413 and r.json()["field"] == "body"

    def chunks():
        for _ in range(300):
            yield b" " * 10_000

    r = client.post("/recommend", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/no/such/route").status_code == 404
    assert client.patch("/items/50", json={}).status_code == 405


def test_error_bodies_say_what_to_send(client):
    """An audit of the service's errors: a 405 dropped its Allow header and named no method;
    the engine's errors (a rating out of range, an unknown item) left `errors` empty, where the
    docs promise one entry per invalid field; pydantic's "Value error, " led validators'
    messages; a number for an id (MovieLens' ids look like numbers) and an empty body named no
    fix."""
    r = client.get("/recommend")
    assert r.status_code == 405 and r.headers["allow"] == "POST", r.headers
    assert r.json()["message"] == "Method Not Allowed. Fix: use POST"
    r = client.post(
        "/feedback", json={"user": "u", "item": "50", "kind": "rating", "value": 50}, headers=AUTH
    )
    assert r.status_code == 422 and r.json()["errors"] == [
        {"field": "value", "location": "body", "message": r.json()["message"]}
    ]
    r = client.post("/feedback", json={"user": "u", "item": "50", "kind": "rating"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["message"].startswith("value: a rating event needs a value")
    r = client.post("/feedback", json={"user": 196, "item": "50", "kind": "like"}, headers=AUTH)
    assert r.status_code == 422 and r.json()["message"].endswith('(send it as text: "196")'), r.json()
    r = client.post("/feedback", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and "the request has no body (send a JSON object" in r.json()["message"]
    # an unknown key names the keys there are (unknown query parameters did), a title where
    # ids go how to find one; a typo in exclude, which left nothing out, is a note
    r = client.post("/recommend", json={"titles": ["Star Wars"]})
    said = r.json()["message"]
    assert r.status_code == 422 and said.startswith("titles: Extra inputs are not permitted. Fix: use k, ")
    assert " items, " in said and " user_info " in said
    assert said.endswith("(titles are no key: GET /items?q=<title> finds an item's id)"), said
    # a value no member of a union takes: what the members take, not the first one's complaint
    r = client.post("/recommend", json={"user_info": {"age": [1, 2]}})
    said = r.json()["message"]
    assert r.status_code == 422 and said.startswith("user_info.age: a value of the wrong type: give "), said
    assert "a number" in said and "text" in said and "valid number" not in said
    # a field name out of its pattern says what it may hold, not the pattern
    r = client.post("/recommend", json={"user_info": {"favourite colour": "red"}})
    said = r.json()["message"]
    assert r.status_code == 422 and "a field name is letters, digits, '_' and '-'" in said, said
    assert "'favourite colour'" in said and "String should match" not in said
    # the two batch routes take different shapes, and each says so for the other's
    r = client.post("/items", json={"items": [{"id": "z1", "title": "Z"}]}, headers=AUTH)
    assert r.status_code == 422 and r.json()["message"].endswith(
        '(send the list itself, not {"items": [...]})'
    )
    r = client.post("/feedback/batch", json=[{"user": "u", "item": "50", "kind": "like"}], headers=AUTH)
    assert r.status_code == 422 and r.json()["message"].endswith('(send an object: {"events": [...]})'), (
        r.json()
    )
    # /users has no list: the redirect to /users/ said "user_id: String should have at least 1 character"
    r = client.get("/users")
    assert r.status_code == 422 and "the path names no user id: add it, e.g. /users/42" in r.json()["message"]
    # a field's location is where it is: a path's id is no body field
    r = client.get("/users/nope", headers=AUTH)
    assert r.status_code == 404 and r.json()["errors"][0] == {
        "field": "user_id",
        "location": "path",
        "message": r.json()["message"],
    }
    from fewrec.serve.engine import _megabytes

    assert [_megabytes(b) for b in (1e4, 5.5e7, 1e9, 2.5e10)] == ["0.01", "55", "1,000", "25,000"]
    # a known user's side info in the training data, which the model reads, is shown
    u = client.get("/users/1", headers=AUTH).json()
    assert u["known_to_model"] and set(u["training_info"]) == {"age", "gender", "occupation"}, u
    assert isinstance(u["training_info"]["age"], int) and u["info"] == {}
    r = client.post("/recommend", json={"items": ["50"], "exclude": ["181", "CC7"]})
    assert r.status_code == 200 and "exclude names no item of the catalogue: 'CC7'" in " ".join(
        r.json()["notes"]
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"text": "\xff\xfe"}', "the body is not UTF-8 text"),
        (b'{"user_info": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "the JSON body is nested too deeply"),
        (b'{"k": 1' + b"0" * 5000 + b"}", "a number in the body has thousands of digits"),
    ],
    ids=["not-utf8", "deep", "digits"],
)
def test_a_body_json_cannot_read_is_a_400_that_says_why(client, body, message):
    """FastAPI answered these "There was an error parsing the body", which names no problem."""
    r = client.post("/recommend", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    assert r.json()["message"].startswith(message + ". Fix: "), r.json()


def test_random_garbage_never_gives_a_500(client):
    rng = np.random.default_rng(0)
    atoms = [None, True, -1, 0, 3.5, 1e308, "", "50", "x" * 300, [], {}, ["50"], {"a": 1}, [None], "like"]
    keys = [
        "user",
        "items",
        "ratings",
        "text",
        "k",
        "filters",
        "explore",
        "kind",
        "item",
        "value",
        "events",
        "x",
    ]
    for _ in range(300):
        body = {
            str(rng.choice(keys)): atoms[int(rng.integers(len(atoms)))]
            for _ in range(int(rng.integers(0, 5)))
        }
        for method, path in [
            ("post", "/recommend"),
            ("post", "/feedback"),
            ("put", "/items/g"),
            ("put", "/users/g"),
        ]:
            r = client.request(method, path, json=body, headers=AUTH)
            assert r.status_code < 500, (path, body, r.text)


def test_delete_user_removes_their_data(client, tmp_path):
    user = "to-forget"
    client.put(f"/users/{user}", json={"text": "I like westerns", "info": {"age": 40}}, headers=AUTH)
    client.post(
        "/feedback/batch",
        json={"events": [{"user": user, "item": i, "kind": "like"} for i in ("1", "2")]},
        headers=AUTH,
    )
    assert client.get(f"/users/{user}").json()["feedback"] == 2
    r = client.delete(f"/users/{user}", headers=AUTH)
    assert r.status_code == 200 and r.json() == {"id": user, "deleted": True, "feedback_deleted": 2}
    assert client.get(f"/users/{user}").status_code == 404
    assert client.get(f"/users/{user}/feedback").status_code == 404
    assert client.get(f"/users/{user}/recommend").status_code == 404
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT COUNT(*) FROM users WHERE id = ?", (user,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM feedback WHERE user = ?", (user,)).fetchone()[0] == 0
    # nor left in the files' bytes: the delete had stayed in the -wal file, the rows in the store's
    for path in tmp_path.glob("store.db*"):
        assert b"I like westerns" not in path.read_bytes(), path.name
    # a user the model trained on: their training history is no longer used either
    assert client.get("/users/1/recommend").json()["history_size"] > 0
    assert client.delete("/users/1", headers=AUTH).status_code == 200
    assert client.get("/users/1").status_code == 404
    client.put("/users/1", json={}, headers=AUTH)
    assert client.get("/users/1/recommend").json()["history_size"] == 0


def test_deleting_an_unknown_user_is_a_404_that_writes_nothing(client, tmp_path):
    """A DELETE of an id neither the model nor the store knew answered 404 but remembered the id
    as deleted: a row per call, and a model swapped in later that trained on the id ignored
    that user's history."""
    for i in range(3):
        assert client.delete(f"/users/nobody-{i}", headers=AUTH).status_code == 404
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute("SELECT COUNT(*) FROM forgotten").fetchone()[0] == 0
    client.put("/users/somebody", json={}, headers=AUTH)
    assert client.delete("/users/somebody", headers=AUTH).status_code == 200
    assert client.app.state.engine.store.is_forgotten("somebody")


def test_hot_swap_without_downtime(client, fewshot_dir, ease_dir):
    client.put(
        "/items/added", json={"title": "Added Before Swap", "fields": {"genres": ["Drama"]}}, headers=AUTH
    )
    errors: list[str] = []
    done = threading.Event()

    def hammer():
        while not done.is_set():
            r = client.post("/recommend", json={"items": ["50"], "k": 5, "explore": False})
            if r.status_code != 200:
                errors.append(r.text)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        r = client.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["model"] == "ease" and info["version"] == 2
        # the folder inside the model root: the server's absolute paths were open to any reader
        assert info["source"] == ease_dir.relative_to(models_root()).as_posix() == ease_dir.name
        assert client.get("/admin/model").json()["source"] == info["source"]
        # EASE cannot add text items: the API-added item is kept but not recommendable
        assert client.get("/items/added").json()["recommendable"] is False
        # ... a request may still name it: it counts as seen, and a note says why it is unused
        r = client.post("/recommend", json={"items": ["50", "added"], "k": 5, "explore": False})
        assert r.status_code == 200, r.text
        assert any("'added' is stored but this model cannot use it" in n for n in r.json()["notes"])
        assert "added" not in [i["item"] for i in r.json()["items"]]
        back = client.post("/admin/model", json={"path": str(fewshot_dir)}, headers=AUTH).json()
        assert back["model"] == "fewshot" and back["version"] == 3
        assert client.get("/items/added").json()["recommendable"] is True
    finally:
        done.set()
        worker.join()
    assert not errors
    bad = client.post("/admin/model", json={"path": str(models_root() / "missing")}, headers=AUTH)
    assert bad.status_code == 404 and bad.json()["field"] == "path"
    # a path as `source` gives it, relative to the model folder (it was read from the server's
    # own folder: "outside the model folder"), and a file inside a model names its folder
    by_source = client.post("/admin/model", json={"path": ease_dir.name}, headers=AUTH)
    assert by_source.status_code == 200 and by_source.json()["model"] == "ease", by_source.text
    inside = client.post("/admin/model", json={"path": f"{ease_dir.name}/config.json"}, headers=AUTH)
    assert inside.status_code == 404 and f"give its folder, {ease_dir.resolve()}" in inside.json()["message"]
    # a save cut short while swapping folders names them (it said only "no config.json", an audit)
    half = models_root() / "half"
    for kind in ("saving", "replaced"):
        shutil.copytree(ease_dir, models_root() / f".half.{kind}-1-ab")
    cut = client.post("/admin/model", json={"path": str(half)}, headers=AUTH)
    assert cut.status_code == 404 and "cut short while swapping folders" in cut.json()["message"], cut.text
    assert "Fix: rename" in cut.json()["message"]


def test_requests_do_not_wait_for_a_hot_swap(client, ease_dir, monkeypatch):
    """`/admin/model` promises that requests never wait: while a swap loads (made to take 2 s
    here), requests keep being answered at their usual speed by the model being replaced."""
    engine = client.app.state.engine
    build = engine._build_state

    def slow_build(*args, **kwargs):
        time.sleep(2.0)
        return build(*args, **kwargs)

    monkeypatch.setattr(engine, "_build_state", slow_build)
    timings: list[tuple[float, float, str]] = []  # (start, seconds, model)
    errors: list[str] = []
    done = threading.Event()

    def hammer():
        while not done.is_set():
            start = time.perf_counter()
            r = client.post("/recommend", json={"items": ["50"], "k": 5, "explore": False})
            if r.status_code != 200:
                errors.append(r.text)
            timings.append((start, time.perf_counter() - start, engine.state.model.name))

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        time.sleep(0.3)  # requests flow before the swap starts
        began = time.perf_counter()
        assert client.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH).status_code == 200
        ended = time.perf_counter()
        time.sleep(0.3)
    finally:
        done.set()
        worker.join()
    assert not errors
    during = [seconds for start, seconds, _ in timings if began <= start and start + seconds <= ended - 0.1]
    assert len(during) >= 5, f"{len(during)} requests answered during a {ended - began:.1f} s swap"
    assert max(during) < 1.0, f"a request waited {max(during):.2f} s during the swap"
    assert timings[-1][2] == "ease"


def test_similar_items(client):
    out = client.get("/items/50/similar", params={"k": 5}).json()
    assert len(out["items"]) == 5 and "50" not in ids(out)
    assert "181" in ids(out) or "172" in ids(out)  # a Star Wars sequel is among the most similar
    comedy = client.get("/items/50/similar", params=[("k", 5), ("filter", "genres:Comedy")]).json()
    assert all("Comedy" in i["fields"]["genres"] for i in comedy["items"])
    assert json.dumps(out)  # JSON-able
    # named as lists' reasons name it (an audit: "Similar to Godfather, The (Action).")
    godfather = client.get("/items/127/similar", params={"k": 3}).json()["items"]
    assert godfather[0]["reason"].startswith("Similar to The Godfather (1972)"), godfather[0]["reason"]
    assert all("; both are " in i["reason"] or i["reason"].endswith("(1972).") for i in godfather)


def test_similar_items_of_a_filter_are_scored_exactly_not_through_the_index(client):
    """A scale audit: a filter keeping over half the catalogue went through the vector index,
    whose IVF search reaches only the cells near the item: from an item of a kind the filter
    excluded, recall@10 was 0.34 on 60,000 items, and some lists came back short."""
    engine = client.app.state.engine
    index = engine._state.index
    calls: list[int] = []
    real = index.search

    def search(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    index.search = search
    try:
        drama = client.get("/items/50/similar", params=[("k", 5), ("filter", "genres:Drama")]).json()
        assert len(drama["items"]) == 5 and not calls  # (Drama: under half of ML-100K's films)
        kinds = ["Action", "Adventure", "Comedy", "Drama", "Romance", "Thriller", "Sci-Fi", "Crime", "Horror"]
        everything = [("filter", f"genres:{g}") for g in kinds] + [("k", 5)]
        wide = client.get("/items/50/similar", params=everything).json()
        assert len(wide["items"]) == 5 and not calls  # a filter keeping (nearly) all: exact too
        assert len(client.get("/items/50/similar", params={"k": 5}).json()["items"]) == 5 and calls
    finally:
        index.search = real


def test_restart_keeps_everything(fewshot_dir, tmp_path):
    """...and the store file alone holds it once the service has stopped: its writes had stayed
    in the `-wal` file beside it, so a copy of the file named by --store was an empty store."""
    import shutil

    db = tmp_path / "store.db"
    app = create_app(fewshot_dir, db, api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        c.put("/items/kept", json={"title": "Kept Item", "fields": {"genres": ["Western"]}}, headers=AUTH)
        c.put("/items/gone", json={"title": "Gone Item"}, headers=AUTH)
        c.post("/feedback", json={"user": "k1", "item": "kept", "kind": "like"}, headers=AUTH)
        c.delete("/items/1", headers=AUTH)
        c.delete("/items/gone", headers=AUTH)
    copy = tmp_path / "copy.db"
    shutil.copyfile(db, copy)  # the file alone, as a backup would take it
    app = create_app(fewshot_dir, copy, api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        assert c.get("/items/kept").json()["recommendable"]
        assert c.get("/items/1").status_code == 404
        asked = c.post("/recommend", json={"items": ["gone"], "explore": False})
        assert asked.status_code == 404 and "was deleted" in asked.json()["message"], asked.text
        out = c.get("/users/k1/recommend", params={"explore": False}).json()
        assert out["history_size"] == 1 and any("kept" in i["because"] for i in out["items"])


def test_reads_do_not_wait_for_a_slow_item_add(client, monkeypatch):
    from fewrec.models.fewshot import FewShotRecommender

    original = FewShotRecommender._add_items
    started = threading.Event()

    def slow(self, start, info):
        started.set()
        time.sleep(1.5)
        original(self, start, info)

    monkeypatch.setattr(FewShotRecommender, "_add_items", slow)
    put = threading.Thread(
        target=lambda: client.put(
            "/items/slow", json={"title": "Slow Item", "fields": {"genres": ["Slowcore"]}}, headers=AUTH
        )
    )
    put.start()
    assert started.wait(30)
    t0 = time.perf_counter()
    during = rec(client, items=["50"], k=5)
    assert time.perf_counter() - t0 < 1.0 and "slow" not in ids(during)  # served from the previous state
    put.join()
    assert ids(rec(client, items=["50"], k=5, filters={"genres": "slowcore"})) == ["slow"]


def test_model_info_and_notes_say_what_the_model_reads(client, ease_dir):
    info = client.get("/admin/model").json()
    assert info["reads_text"] is True and info["side_fields"] == ["age", "gender", "occupation"]
    assert rec(client, items=["50"], text="space adventures", user_info={"age": 30}, k=3)["notes"] == []
    out = rec(client, items=["50"], user_info={"age": 30, "shoe_size": 43}, k=3)
    assert len(out["notes"]) == 1 and "does not read the side-info field 'shoe_size'" in out["notes"][0]
    client.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH)
    assert client.get("/admin/model").json()["reads_text"] is False
    notes = rec(client, items=["50"], text="space adventures", user_info={"age": 30}, k=3)["notes"]
    assert notes == [
        "ease does not read free text, so the text was ignored (content, content-lora, fewshot and "
        "ensemble read it)",
        "ease does not read user side info, so age was ignored",
    ]
    out = rec(client, items=["50"], k=3, explore=True)
    assert out["policy"] == "greedy" and out["notes"] == [
        "explore was asked for, but ease has no posterior to explore with (the few-shot models have "
        "one): this is the model's best guess"
    ]


def test_a_model_that_cannot_add_items_keeps_them_stored(client, cold_user, ease_dir):
    """A model that cannot add items without retraining (ID-only) keeps a PUT item stored, not
    recommendable, instead of failing and vanishing; `content` now adds it from its text."""
    content_dir = saved_model("content", cold_user.train)
    assert client.post("/admin/model", json={"path": str(content_dir)}, headers=AUTH).status_code == 200
    r = client.put("/items/c0", json={"title": "Dune", "fields": {"genres": ["Sci-Fi"]}}, headers=AUTH)
    assert r.status_code == 200 and client.get("/items/c0").json()["recommendable"] is True
    assert client.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH).status_code == 200
    r = client.put("/items/c1", json={"title": "Dune", "fields": {"genres": ["Sci-Fi"]}}, headers=AUTH)
    assert r.status_code == 200, r.text
    got = client.get("/items/c1")
    assert got.status_code == 200 and got.json()["recommendable"] is False
    assert (
        client.post("/feedback", json={"user": "u1", "item": "c1", "kind": "like"}, headers=AUTH).status_code
        == 201
    )
    # a catalogue item re-described: the ID-only model's reasons name it as it is now (they
    # named the trained title and cited the trained genres)
    jedi = {"title": "Jedi Remastered", "fields": {"year": "1983"}}
    assert client.put("/items/181", json=jedi, headers=AUTH).status_code == 200
    reasons = [i["reason"] for i in rec(client, items=["181", "172"], k=5)["items"]]
    assert any("Jedi Remastered" in r for r in reasons) and not any(
        "Return of the Jedi" in r for r in reasons
    )
    star_wars = rec(client, items=["50"], k=30)["items"]
    (jedi_item,) = [i for i in star_wars if i["item"] == "181"]
    assert "Sci-Fi" not in jedi_item["reason"], jedi_item["reason"]
    # the ensemble adds items through its text components (it kept them stored, as ID-only ones)
    ensemble_dir = saved_model(
        "ensemble", cold_user.train, components={"content": {}, "itemknn": {}, "popularity": {}}, tune=False
    )
    assert client.post("/admin/model", json={"path": str(ensemble_dir)}, headers=AUTH).status_code == 200
    assert client.get("/items/c1").json()["recommendable"] is True  # stored, now added
    body = {
        "title": "Orbit",
        "text": "astronauts on a space adventure",
        "fields": {"genres": ["Spacefaring"]},
    }
    r = client.put("/items/c2", json=body, headers=AUTH)
    assert r.status_code == 200 and r.json()["recommendable"] is True
    out = rec(client, items=["50", "172"], k=3, filters={"genres": "Spacefaring"})
    assert ids(out) == ["c2"] and np.isfinite(out["items"][0]["score"])
    # a model that reads item text but cannot re-read it says it keeps the trained text
    clf_dir = saved_model("like-clf", cold_user.train, max_episodes=3000)
    assert client.post("/admin/model", json={"path": str(clf_dir)}, headers=AUTH).status_code == 200
    (note,) = client.put("/items/172", json={"title": "Empire Remastered"}, headers=AUTH).json()["notes"]
    assert "like-clf cannot re-read" in note
    assert client.put("/items/c3", json={"title": "Brand new"}, headers=AUTH).json()["notes"] == []


def test_catalogue_title_filter_follows_changes():
    """The title index is rebuilt after items are added or renamed; a copy keeps its own;
    items without a title match no title filter (not even "None")."""
    from fewrec.serve.catalogue import Catalogue
    from fewrec.serve.store import ItemRecord

    cat = Catalogue()
    cat.append([ItemRecord("a", title="Fargo"), ItemRecord("b", title=None)])
    assert cat.mask("title", "fargo").tolist() == [True, False]
    assert not cat.mask("title", "None").any()
    before = cat.copy()
    cat.append([ItemRecord("c", title="FARGO ")])
    cat.update(0, ItemRecord("a", title="Heat"))
    assert cat.mask("title", "fargo").tolist() == [False, False, True]
    assert cat.mask("title", ["heat", "fargo"]).tolist() == [True, False, True]
    assert before.mask("title", "fargo").tolist() == [True, False]
    assert cat.unmatched("title", "Faro") == ["filter title='Faro' matches no item (close: ['fargo'])"]
    assert cat.unmatched("title", "Heat") == []


def test_close_value_hints_of_unmatched_filters_have_a_bounded_cost(monkeypatch):
    """Each unmatched filter value was compared (difflib) with every value of its field: 64
    title values on a 100,000-item catalogue took 45 s of one unauthenticated request."""
    import difflib

    from fewrec.serve.catalogue import CLOSE_PAIRS, Catalogue
    from fewrec.serve.store import ItemRecord

    compared = []
    real = difflib.get_close_matches
    monkeypatch.setattr(
        difflib, "get_close_matches", lambda w, p, **kw: compared.append(len(p)) or real(w, p, **kw)
    )
    cat = Catalogue()
    cat.append([ItemRecord(str(j), title=f"title {j}") for j in range(CLOSE_PAIRS // 4)])
    notes = cat.unmatched("title", [f"titel {j}" for j in range(64)])
    assert len(notes) == 64 and sum(compared) <= CLOSE_PAIRS
    assert "(close: ['title 0'" in notes[0] and notes[-1] == "filter title='titel 63' matches no item"
    compared.clear()
    cat.append([ItemRecord(f"x{j}", title=f"x {j}") for j in range(CLOSE_PAIRS)])
    assert cat.unmatched("title", "titel 1") == ["filter title='titel 1' matches no item"] and not compared


def test_search_reads_fields_of_items_with_long_texts():
    """A text over the search budget cut off the fields after it: fields come first."""
    from fewrec.serve.catalogue import SEARCH_CHARS, Catalogue
    from fewrec.serve.store import ItemRecord

    cat = Catalogue()
    long = ItemRecord("a", title="A", text="x" * (SEARCH_CHARS + 10), fields={"director": "Kubrick"})
    cat.append([long, ItemRecord("b", title="B", text="short", fields={"director": "Kubrick"})])
    assert cat.search("KUBRICK").tolist() == [0, 1] and cat.search("(.*)").tolist() == []


def test_catalogue_of_a_model_with_untitled_items_has_no_nan_titles():
    """A missing title or text (pandas 3 keeps it as NaN) became the title "nan"."""
    from fewrec.data import load_interactions
    from fewrec.models import make_model
    from fewrec.serve.catalogue import Catalogue

    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "b", "c"]})
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["Fargo", None, ""], "text": [None, "x", "y"]})
    cat = Catalogue.from_model(make_model("popularity").fit(load_interactions(inter, items)))
    assert cat.titles == ["Fargo", None, None] and cat.texts == [None, "x", "y"]
    assert cat.mask("title", "nan").tolist() == [False, False, False]


def test_implicit_data_models_take_any_non_negative_rating(client, cold_user):
    """A model trained without ratings reads a request's items as likes whatever their rating:
    5-star values are taken (not a 422), negative ones are still refused."""
    from fewrec.data import load_interactions

    train = cold_user.train
    inter = train.interactions
    users, items = np.asarray(train.users.ids), np.asarray(train.items.ids)
    frame = pd.DataFrame({"user_id": users[inter["user"]], "item_id": items[inter["item"]]})
    path = saved_model("itemknn", load_interactions(frame))
    assert client.post("/admin/model", json={"path": str(path)}, headers=AUTH).status_code == 200
    assert len(ids(rec(client, items=["50", "181"], ratings=[5, 4], k=3))) == 3
    # ratings that differ read alike (all likes), as the Python API notes
    said = rec(client, items=["50", "181"], ratings=[5, 2], k=3)["notes"]
    assert any("trained on interactions without ratings" in n for n in said), said
    assert not any("without ratings" in n for n in rec(client, items=["50"], ratings=[4], k=3)["notes"])
    r = client.post("/recommend", json={"items": ["50"], "ratings": [-1], "explore": False})
    assert r.status_code == 422 and r.json()["field"] == "ratings[0]"


@pytest.fixture(scope="module")
def shop_dir():
    """A few-shot model of a shop's own data: ids with "/", items with only a description."""
    from fewrec.data import load_interactions

    rng = np.random.default_rng(0)
    kinds = ["kitchen pan pot stove", "garden hose rake lawn"]
    items = pd.DataFrame(
        {
            "item_id": [f"shop/{j}" for j in range(40)],
            "description": [f"{kinds[j % 2]} {j}" for j in range(40)],
        }
    )
    rows = [
        (f"u{u}", f"shop/{j}")
        for u in range(30)
        for j in rng.choice(np.arange(u % 2, 40, 2), 6, replace=False)
    ]
    data = load_interactions(pd.DataFrame(rows, columns=["user_id", "item_id"]), items)
    return saved_model("fewshot", data, **FAST_FEWSHOT)


def test_own_data_ids_with_slashes_text_of_untitled_items_and_search(shop_dir, ease_dir, tmp_path):
    """Ids holding "/" (sent as %2F) were a 404 on every id route; text given to a new item was
    dropped when the model's items had no title column; search read titles only; a hot swap to
    another catalogue forgot a user's stored likes without a note."""
    app = create_app(shop_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        assert c.get("/items/shop%2F3").json()["id"] == "shop/3"
        assert c.get("/items/shop%2F3/similar?k=3").status_code == 200
        for name, text, kind in [("g", "garden hose rake lawn", 1), ("k", "kitchen pan pot stove", 0)]:
            r = c.put(f"/items/new%2F{name}", json={"text": text}, headers=AUTH)
            assert r.status_code == 200 and r.json()["id"] == f"new/{name}"
            similar = [it["item"] for it in c.get(f"/items/new%2F{name}/similar?k=6").json()["items"]]
            assert sum(i.startswith("shop/") and int(i[5:]) % 2 == kind for i in similar) >= 5, similar
        found = [it["id"] for it in c.get("/items?q=KITCHEN&limit=50").json()["items"]]
        assert sorted(found) == sorted(["new/k", *(f"shop/{j}" for j in range(0, 40, 2))])
        assert c.get("/items?q=shop/7").json()["items"][0]["id"] == "shop/7"  # an exact id first
        feedback = {"user": "a/b", "item": "shop/3", "kind": "like"}
        assert c.post("/feedback", json=feedback, headers=AUTH).status_code == 201
        assert c.get("/users/a%2Fb/feedback").json()[0]["item"] == "shop/3"
        assert c.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH).status_code == 200
        notes = c.get("/users/a%2Fb/recommend?explore=false").json()["notes"]
        assert any(
            "1 of the user's stored items (likes and ratings) are not in this model's catalogue" in n
            for n in notes
        )
        assert c.delete("/users/a%2Fb", headers=AUTH).status_code == 200


def test_dislikes_reach_models_that_read_ratings_and_reserved_ids(cold_user, tmp_path):
    """The service dropped every low rating before the model, so content (which weighs a
    5-star item over a 4-star one) never saw a rating; a dislike is left out of its profile
    and never recommended back. Ids ending in "/" or in a route's name (PUT
    /users/u1/recommend created user "u1/recommend") are refused."""
    path = saved_model("content", cold_user.train)
    app = create_app(path, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        five_four = ids(rec(c, items=["50", "181"], ratings=[5, 4], k=10))
        assert five_four != ids(rec(c, items=["50", "181"], ratings=[4, 5], k=10))  # ratings reach it
        liked = ids(rec(c, items=["50"], k=11))
        mixed = ids(rec(c, items=["50", "181"], ratings=[5, 1], k=10))
        assert mixed == [i for i in liked if i != "181"][:10] and "181" not in mixed
        assert c.get("/items/50/").status_code == 422
        r = c.put("/users/u1/recommend", json={"text": "x"}, headers=AUTH)
        assert r.status_code == 422 and r.json()["field"] == "user_id"
        assert c.put("/items/a/similar", json={"title": "x"}, headers=AUTH).status_code == 422
        assert c.put("/items/a/b", json={"title": "x"}, headers=AUTH).status_code == 200
        shadowed = {"user": "u1/recommend", "item": "50", "kind": "like"}
        r = c.post("/feedback", json=shadowed, headers=AUTH)
        assert r.status_code == 422 and r.json()["field"] == "user"
        assert c.delete("/users/u1%2Frecommend", headers=AUTH).status_code != 422  # deletes take any id


def test_feedback_on_an_item_another_process_created_says_so(fewshot_dir, tmp_path):
    """Two service processes on one store: an item PUT through one was "no item ... create the
    item first" to the other, though it exists. Each reads new items when it starts; it now says so."""
    apps = [
        create_app(fewshot_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
        for _ in range(2)
    ]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        assert a.put("/items/fresh", json={"title": "A fresh film"}, headers=AUTH).status_code == 200
        r = b.post("/feedback", json={"user": "u", "item": "fresh", "kind": "like"}, headers=AUTH)
        assert r.status_code == 404 and r.json()["field"] == "item"
        assert (
            "created by another service process" in r.json()["message"] and "restart" in r.json()["message"]
        )
        r = b.post("/feedback", json={"user": "u", "item": "never", "kind": "like"}, headers=AUTH)
        assert "create the item first" in r.json()["message"]


def test_an_exploration_width_of_zero_is_the_best_guess_and_says_so(fewshot_dir, tmp_path):
    """Thompson at scale 0 acted greedy but reported "thompson" (an audit)."""
    app = create_app(
        fewshot_dir,
        tmp_path / "s.db",
        api_keys=[KEY],
        exploration=ExplorationConfig(policy="thompson", scale=0),
        model_root=models_root(),
        warm_up=False,
    )
    with TestClient(app) as c:
        out = rec(c, text="space", explore=True)
        assert out["policy"] == "greedy" and all(i["score"] == i["mean_score"] for i in out["items"])


def test_a_seed_under_ucb_says_it_changes_nothing(fewshot_dir, tmp_path):
    """An audit: a client's seed under UCB (which draws nothing) went unremarked."""
    app = create_app(
        fewshot_dir,
        tmp_path / "s.db",
        api_keys=[KEY],
        model_root=models_root(),
        warm_up=False,
        exploration=ExplorationConfig(policy="ucb"),
    )
    with TestClient(app) as c:
        seeded = rec(c, text="space", explore=True, seed=3)
        assert seeded["policy"] == "ucb"
        assert "seed changes nothing here: UCB exploration draws nothing at random" in seeded["notes"]
        assert not any("seed" in n for n in rec(c, text="space", explore=True)["notes"])


def test_ratings_keep_their_scale_across_a_hot_swap(ease_dir, cold_user, tmp_path):
    """A `rating` was stored as a bare value: after a hot swap from a star-rated model to one of
    implicit data (top 1), a 1 of 5 read as a top rating, the disliked films came back first,
    "because you liked" them; the other way, a top 1 became a 1-star dislike for good."""
    from fewrec.data.dataset import Dataset
    from fewrec.serve.store import Store

    train = cold_user.train
    implicit = Dataset(
        interactions=train.interactions.assign(rating=1.0),
        users=train.users,
        items=train.items,
        item_info=train.item_info,
        user_info=train.user_info,
        name="implicit",
    )
    implicit_dir = saved_model("ease", implicit)
    app = create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    c = TestClient(app)
    events = [
        {"user": "d1", "item": "50", "kind": "rating", "value": 1},
        {"user": "d1", "item": "181", "kind": "rating", "value": 2},
        {"user": "d1", "item": "100", "kind": "rating", "value": 5},
    ]
    assert c.post("/feedback/batch", json={"events": events}, headers=AUTH).status_code == 201
    stars = rec(c, user="d1", k=20, exclude_seen=False)
    assert stars["history_size"] == 1 and not {"50", "181"} & set(ids(stars))
    assert c.post("/admin/model", json={"path": str(implicit_dir)}, headers=AUTH).status_code == 200
    swapped = rec(c, user="d1", k=20, exclude_seen=False)
    assert swapped["history_size"] == 1 and not {"50", "181"} & set(ids(swapped))
    top = {"user": "d2", "item": "100", "kind": "rating", "value": 1}  # the top of implicit data
    assert c.post("/feedback", json=top, headers=AUTH).status_code == 201
    assert c.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH).status_code == 200
    assert rec(c, user="d2", k=5)["history_size"] == 1  # a like there is a 5 here, not a dislike
    rows = sqlite3.connect(tmp_path / "s.db").execute("SELECT item, scale FROM feedback ORDER BY seq")
    assert rows.fetchall() == [("50", 5.0), ("181", 5.0), ("100", 5.0), ("100", 1.0)]
    # a store written before scales were kept opens, its ratings read on the model's scale
    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema', '1');"
        "CREATE TABLE feedback (seq INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, "
        "item TEXT NOT NULL, kind TEXT NOT NULL, value REAL, ts REAL NOT NULL);"
        "INSERT INTO feedback (user, item, kind, value, ts) VALUES ('u', '50', 'rating', 4, 1.0);"
    )
    conn.commit()
    conn.close()
    store = Store(old)
    (event,) = store.user_state("u")[1]
    assert (event.value, event.scale) == (4.0, None)
    store.close()


def test_play_counts_stay_counts_across_a_hot_swap(ease_dir, cold_user, tmp_path):
    """An audit: a stored count was read as a share of its scale's top, so after a retrain
    moved the top play count from 5,000 to 4,000, 120 plays became a dislike (out of the history,
    never recommended back, without a word); and a count above the training's was a 422 that
    the Python API takes."""
    from fewrec.data.dataset import Dataset

    train = cold_user.train

    def plays(top: float):
        counts = np.minimum(train.interactions["rating"].to_numpy() * 1000.0, top)
        data = Dataset(
            interactions=train.interactions.assign(rating=counts),
            users=train.users,
            items=train.items,
            item_info=train.item_info,
            name=f"plays up to {top:g}",
        )
        return saved_model("ease", data)

    app = create_app(plays(5000), tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    c = TestClient(app)
    events = [
        {"user": "p1", "item": "50", "kind": "rating", "value": 120},
        {"user": "p1", "item": "181", "kind": "click"},
        {"user": "p1", "item": "100", "kind": "rating", "value": 6000},  # above the training's top
    ]
    assert c.post("/feedback/batch", json={"events": events}, headers=AUTH).status_code == 201
    assert rec(c, user="p1", k=5)["history_size"] == 3
    assert c.post("/admin/model", json={"path": str(plays(4000))}, headers=AUTH).status_code == 200
    assert rec(c, user="p1", k=5)["history_size"] == 3
    assert c.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH).status_code == 200
    assert rec(c, user="p1", k=5)["history_size"] == 3  # counts are likes on a star scale
    no = {"user": "p2", "item": "50", "kind": "rating", "value": 7}  # stars: above 5 is a mistake
    assert c.post("/feedback", json=no, headers=AUTH).status_code == 422


def test_small_counts_made_by_repeats_stay_counts_across_a_hot_swap(ease_dir, cold_user, tmp_path):
    """A count of plays made by `repeats` (top 8, a scale of 10 or less) was stored with its
    model's top as the scale, so after a hot swap to a star model 2 plays of 8 read as a 1-star
    share: a dislike, out of the history."""
    from fewrec.data.dataset import Dataset

    train = cold_user.train
    data = Dataset(
        interactions=train.interactions.assign(rating=train.interactions["rating"].to_numpy() + 3.0),
        users=train.users,
        items=train.items,
        item_info=train.item_info,
        name="plays 4-8",
        counts=True,
    )
    app = create_app(
        saved_model("ease", data), tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False
    )
    c = TestClient(app)
    events = [
        {"user": "p1", "item": "50", "kind": "rating", "value": 2},
        {"user": "p1", "item": "181", "kind": "rating", "value": 8},
    ]
    assert c.post("/feedback/batch", json={"events": events}, headers=AUTH).status_code == 201
    assert rec(c, user="p1", k=5)["history_size"] == 2
    assert c.post("/admin/model", json={"path": str(ease_dir)}, headers=AUTH).status_code == 200
    assert rec(c, user="p1", k=5)["history_size"] == 2  # plays are likes on a star scale


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--port", "99999"], "invalid port value"), (["--log-level", "foo"], "invalid choice")],
)
def test_python_m_serve_refuses_bad_options_in_a_line(args, message, capsys):
    """`python -m fewrec.serve` answered --port 99999 and --log-level foo with tracebacks
    (OverflowError, KeyError) where `fewrec serve` gave an error line."""
    from fewrec.serve.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["model", *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_a_name_in_an_added_items_text_gets_no_note(client, fewshot_dir, tmp_path):
    """An item written with a director in its `text`: the model reads the text, but the note
    said no item's text mentioned the name (its word list was worked out later from titles
    alone), after the write and after a restart."""
    body = {"title": "Obscure Film Two", "text": "Directed by Alfred Hitchcock"}
    assert client.put("/items/psy2", json=body, headers=AUTH).status_code == 200
    assert rec(client, text="films by Alfred Hitchcock", k=3)["notes"] == []
    assert "'Kurosawa'" in rec(client, text="films by Kurosawa", k=3)["notes"][0]
    again = TestClient(create_app(fewshot_dir, tmp_path / "store.db", api_keys=[KEY], warm_up=False))
    assert rec(again, text="films by Alfred Hitchcock", k=3)["notes"] == []


def test_reasons_over_http_are_the_python_apis_for_a_long_history(client, fewshot_dir, monkeypatch):
    """The service explained a history of more than 10 items through 10 of them, so its reasons
    differed from the Python API's and the CLI's (10 of 10 for user 196); on a catalogue this
    size every history item is read."""
    from fewrec.models import Query
    from fewrec.models.base import load_model

    history = ["50", "172", "181", "1", "100", "127", "98", "174", "56", "7", "117", "121", "222", "69", "79"]
    out = rec(client, items=history, k=10)
    model = load_model(fewshot_dir)
    want = model.recommend(Query(items=history), k=10, explain=True)
    assert ids(out) == want["item"].tolist()
    assert [i["reason"] for i in out["items"]] == want["reason"].tolist()
    # a model of slow scoring rows (the ensemble: 215 ms for a 118-item history) caps them
    from fewrec.models.fewshot import FewShotRecommender

    engine = client.app.state.engine
    st = engine.state
    batch = st.model.batch_from_queries([Query(items=history)]).for_model(st.model)
    top = st.model.fitted.items.lookup(ids(out))
    assert engine._explain_batch(st, batch, Query(items=history), top).history.nnz == len(history)
    monkeypatch.setattr(FewShotRecommender, "explain_history", 12)
    assert engine._explain_batch(st, batch, Query(items=history), top).history.nnz == 12


def test_store_paths_it_must_not_use_are_refused_in_a_line_and_left_as_they_are(tmp_path):
    """Another program's SQLite file had the store's tables added (and WAL mode set); a damaged
    store ended in a traceback or a hint to check the path was writable; a path under a file
    was a raw FileExistsError."""
    from fewrec.errors import FewrecError
    from fewrec.serve.store import Store

    other = tmp_path / "shop.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE orders (id INTEGER)")
    before = other.read_bytes()
    with pytest.raises(FewrecError, match=r"SQLite database of something else \(tables \['orders'\]\)"):
        Store(other)
    assert other.read_bytes() == before and not other.with_name("shop.db-wal").exists()
    users_only = tmp_path / "crm.db"  # a table name of the store's own is not a store either
    with sqlite3.connect(users_only) as db:
        db.execute("CREATE TABLE users (name TEXT, email TEXT)")
    before = users_only.read_bytes()
    with pytest.raises(FewrecError, match=r"SQLite database of something else \(tables \['users'\]\)"):
        Store(users_only)
    assert users_only.read_bytes() == before
    store = Store(tmp_path / "good.db")
    store.upsert_items([ItemRecord(f"i{n}", title="x" * 500) for n in range(200)])
    store.close()
    data = bytearray((tmp_path / "good.db").read_bytes())
    data[4096 : 4096 * 3] = b"\x07" * (4096 * 2)  # pages in the middle overwritten
    (tmp_path / "good.db").write_bytes(bytes(data))
    with pytest.raises(FewrecError, match=r"is damaged .*Fix: restore a backup"):
        Store(tmp_path / "good.db")
    with pytest.raises(FewrecError, match="cannot make the store's folder"):
        Store(tmp_path / "shop.db" / "store.db")
    notes = tmp_path / "notes.csv"
    notes.write_text("a,b\n1,2\n")
    with pytest.raises(FewrecError, match="is not a SQLite database, so not a fewrec store"):
        Store(notes)
    assert notes.read_text() == "a,b\n1,2\n"


def test_two_processes_opening_a_new_store_at_once_both_open_it(tmp_path, monkeypatch):
    """An audit: two services (or a service and a script) starting at once on a new store file
    both found no schema row, and the later insert failed: "cannot open the store ... (UNIQUE
    constraint failed: meta.key)" (1 of 45 starts of three processes at once). The set-up is
    now one write transaction, so the other process's waits for it. Here the other opens the
    store just as this one is about to write its schema row."""
    from fewrec.serve.store import SCHEMA_VERSION, Store

    path = tmp_path / "s.db"
    other: dict[str, object] = {}

    def open_other():
        try:
            other["store"] = Store(path)
        except Exception as exc:  # noqa: BLE001 (the test reports it)
            other["store"] = exc

    class Writer:  # this store's writer connection, opening the other store at that moment
        def __init__(self, conn):
            self._conn = conn

        def __getattr__(self, name):
            return getattr(self._conn, name)

        def execute(self, sql, *args):
            if sql.startswith("INSERT INTO meta VALUES ('schema'") and not other:
                thread = threading.Thread(target=open_other)
                thread.start()
                thread.join(timeout=1.0)  # (it waits for this set-up to commit)
                other["thread"] = thread
            return self._conn.execute(sql, *args)

    real = Store._connect
    calls = []

    def connect(self):
        conn = real(self)
        calls.append(self)
        return Writer(conn) if len(calls) == 1 else conn

    monkeypatch.setattr(Store, "_connect", connect)
    store = Store(path)
    other["thread"].join(timeout=30)
    monkeypatch.undo()
    assert isinstance(other["store"], Store), other["store"]
    for s in (store, other["store"]):
        assert s._reader().execute("SELECT value FROM meta WHERE key = 'schema'").fetchall() == [
            (str(SCHEMA_VERSION),)
        ]
        s.close()


def test_a_reader_of_the_store_does_not_hold_a_user_delete_or_the_writes_after_it(tmp_path):
    """The checkpoint after deleting a user waited on the write lock for a reader's snapshot (a
    backup, a query) for up to the store's 30 s, and every write waited with it."""
    from fewrec.serve.store import Store, UserRecord

    store = Store(tmp_path / "s.db")
    store.upsert_user(UserRecord("carol", text="SECRET-PERSONAL-TEXT"))
    reader = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM users").fetchall()  # holds its snapshot
    t0 = time.perf_counter()
    assert store.delete_user("carol") == (True, 0)
    store.add_feedback([FeedbackRecord("dave", "50", "like")])
    assert time.perf_counter() - t0 < 5.0
    reader.execute("ROLLBACK")
    reader.close()
    assert store.checkpoint()  # the next one moves the rest
    for path in tmp_path.glob("s.db*"):
        assert b"SECRET-PERSONAL" not in path.read_bytes(), path.name


def test_a_write_the_store_cannot_take_is_a_503_that_says_why(fewshot_dir, tmp_path):
    """A store that could not be written (full disk, read-only file, locked) gave an opaque 500,
    and on a full disk its log named a failed ROLLBACK instead of the cause."""
    db = tmp_path / "store.db"
    app = create_app(fewshot_dir, db, api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        app.state.engine.store._writer.execute("PRAGMA busy_timeout=100")
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer holds the store
        try:
            r = c.post("/feedback", json={"user": "u1", "item": "50", "kind": "like"}, headers=AUTH)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert r.status_code == 503, r.text
        assert "could not be written (database is locked)" in r.json()["message"]
        assert "another process was writing to the store" in r.json()["message"]
        ok = c.post("/feedback", json={"user": "u1", "item": "50", "kind": "like"}, headers=AUTH)
        assert ok.status_code == 201, ok.text


def test_warm_up_loads_the_text_encoder_even_when_its_text_is_cached(fewshot_dir, tmp_path, monkeypatch):
    """The warm-up's own text was in the embedding cache, so no encoder loaded: the first new
    text or item after the service said ready took 3.2-3.6 s."""
    import fewrec.text.encoder as E

    monkeypatch.setattr(E, "_LOADED", {})  # as in a fresh process (this one has loaded it)
    app = create_app(fewshot_dir, tmp_path / "s.db", warm_up=False)
    app.state.engine.warm_up()  # its text is cached by now (the fixture's fit, earlier runs)
    assert sorted(name for name, _ in E._LOADED) == ["all-MiniLM-L6-v2"]


def test_a_deleted_item_in_a_users_feedback_only_counts_as_seen(client):
    """A user's like of an item deleted later kept shaping their list and was cited in its
    reasons ("Because you liked Return of the Jedi"), which clients could no longer look up."""
    for item in ("181", "50"):
        client.post("/feedback", json={"user": "erin", "item": item, "kind": "like"}, headers=AUTH)
    before = client.get("/users/erin/recommend", params={"k": 10, "explore": False}).json()
    assert before["history_size"] == 2 and any("181" in i["because"] for i in before["items"])
    assert client.delete("/items/181", headers=AUTH).status_code == 204
    after = client.get("/users/erin/recommend", params={"k": 10, "explore": False}).json()
    assert after["history_size"] == 1 and not any("181" in i["because"] for i in after["items"])
    assert "181" not in ids(after) and any("were deleted" in n for n in after["notes"])


def test_a_known_users_deleted_and_disliked_training_items_neither_shape_nor_return(client, cold_user):
    """An audit: after DELETE /items/X, a known user's training rating of X still shaped their
    list and was cited ("Because you rated" an item the service answers 404 for); and their 1-2
    star training ratings counted in history_size and came back with exclude_seen=false, where
    the same rating sent as feedback never did."""
    train = cold_user.train
    m = train.interactions
    row = int(m.loc[m["rating"] <= 2, "user"].value_counts().index[0])  # most low ratings
    user, mine = str(train.users.ids[row]), m[m["user"] == row]
    low = mine.loc[mine["rating"] <= 2, "item"].to_numpy()
    disliked = {str(train.items.ids[i]) for i in low}

    def rec(**params):
        return client.get(f"/users/{user}/recommend", params={"k": 50, "explore": False, **params}).json()

    before = rec()
    assert before["history_size"] == len(mine) - len(disliked)
    for i in low[:3]:  # the item alone, by its title
        only = {
            "user": user,
            "k": 5,
            "exclude_seen": False,
            "filters": {"title": train.item_info["title"].iloc[i]},
        }
        assert str(train.items.ids[i]) not in ids(client.post("/recommend", json=only).json()), i
    assert ids(client.post("/recommend", json={**only, "exclude_seen": True}).json()) == []
    cited = [b for i in before["items"] for b in i["because"]]
    assert cited
    gone = max(set(cited), key=cited.count)
    assert client.delete(f"/items/{gone}", headers=AUTH).status_code == 204
    after = rec()
    assert after["history_size"] == before["history_size"] - 1
    assert not any(gone in i["because"] for i in after["items"]) and ids(after) != ids(before)
    assert any(
        f"training history were deleted, so they no longer shape the list: ['{gone}']" in n
        for n in after["notes"]
    )


def test_similar_items_of_a_model_that_reads_no_history_do_not_claim_similarity(cold_user, tmp_path):
    """After a hot swap to popularity, /items/50/similar said "Similar to Star Wars" of a plain
    popularity list."""
    pop_dir = saved_model("popularity", cold_user.train)
    app = create_app(pop_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        out = c.get("/items/50/similar", params={"k": 3}).json()
    assert len(out["items"]) == 3
    assert not any(i["reason"].startswith("Similar to") for i in out["items"]), out["items"]
    assert any("not similar items" in n for n in out["notes"])


def test_copying_the_catalogue_while_a_request_indexes_a_field():
    """Adding items copies the live catalogue while requests filter on it: a request indexing a
    field for the first time made the copy fail ("dictionary changed size during iteration")."""
    import sys

    from fewrec.serve.catalogue import Catalogue

    n, fields = 50, 300
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(3):
            cat = Catalogue()
            cat.titles, cat.texts, cat.source = [f"t{i}" for i in range(n)], [None] * n, ["model"] * n
            cat.fields = [{f"f{j}": i % 3 for j in range(fields)} for i in range(n)]
            cat.active, cat.field_names = np.ones(n, dtype=bool), {f"f{j}" for j in range(fields)}
            errors, done = [], threading.Event()

            def copy_until_done(cat=cat, errors=errors, done=done):
                while not done.is_set():
                    try:
                        cat.copy()
                    except RuntimeError as exc:
                        errors.append(exc)
                        return

            copier = threading.Thread(target=copy_until_done)
            copier.start()
            for j in range(fields):
                cat.mask(f"f{j}", 1)
            done.set()
            copier.join()
            assert not errors, errors[0]
    finally:
        sys.setswitchinterval(old_interval)


def test_a_loopback_service_answers_only_to_local_host_names(ease_dir, tmp_path, monkeypatch):
    """On 127.0.0.1 the service took any Host header, so a web page whose host name was made to
    resolve to 127.0.0.1 (DNS rebinding) could read users' feedback, and write without a key
    set. `run_server` now checks the name on a loopback address; --allow-host adds one, '*' any."""
    import uvicorn

    from fewrec.serve import app as app_module
    from fewrec.text import encoder

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    monkeypatch.setattr(encoder, "_KEEP_QUERY_TEXTS", True)  # run_server turns it off

    def status(host_header: str, **kw) -> int:
        app_module.run_server(ease_dir, tmp_path / "store.db", **kw)
        with TestClient(served["app"]) as c:
            resp = c.get("/health/live", headers={"host": host_header})
            if resp.status_code == 400:
                assert resp.json()["error"] == "bad_host" and "--allow-host" in resp.json()["message"]
            return resp.status_code

    assert status("localhost:8000") == 200
    assert status("127.0.0.1:8000") == 200
    assert status("[::1]:8000") == 200
    assert status("rebound.example:8000") == 400
    assert status("rebound.example", host="::1") == 400
    assert status("rec.example.com", allowed_hosts=["rec.example.com"]) == 200
    assert status("localhost", allowed_hosts=["rec.example.com"]) == 200
    assert status("rebound.example", allowed_hosts=["*"]) == 200
    assert status("rec.example.com", host="0.0.0.0") == 200  # listening beyond this machine


def test_the_service_keeps_users_sentences_off_the_disk_cache(ease_dir, tmp_path, monkeypatch):
    """Every free-text query of the service's users was written to the embedding cache."""
    import uvicorn

    from fewrec.serve import app as app_module
    from fewrec.text import encoder

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.setattr(encoder, "_KEEP_QUERY_TEXTS", True)  # the default, restored after
    app_module.run_server(ease_dir, tmp_path / "store.db")
    assert not encoder.keep_query_texts()


def test_both_serve_commands_pass_allow_host_and_max_body_bytes_on(ease_dir, monkeypatch):
    from typer.testing import CliRunner

    from fewrec.cli import app as cli
    from fewrec.serve import __main__ as serve_main
    from fewrec.serve import app as app_module

    seen = []
    monkeypatch.setattr(
        app_module, "run_server", lambda *a, **kw: seen.append((kw["allowed_hosts"], kw["max_body_bytes"]))
    )
    hosts = ["--allow-host", "a.example", "--allow-host", "*"]
    result = CliRunner().invoke(cli, ["serve", str(ease_dir), *hosts, "--max-body-bytes", "5000"])
    assert result.exit_code == 0, result.output
    assert serve_main.main([str(ease_dir), "--allow-host", "b.example", "--max-body-bytes", "7"]) == 0
    CliRunner().invoke(cli, ["serve", str(ease_dir)])
    assert seen == [(["a.example", "*"], 5000), (["b.example"], 7), (None, 1 << 20)]
    refused = CliRunner().invoke(cli, ["serve", str(ease_dir), "--max-body-bytes", "0"])
    assert "at least 1" in str(refused.exception)
    with pytest.raises(SystemExit):
        serve_main.main([str(ease_dir), "--max-body-bytes", "0"])


def test_a_long_history_with_a_dislike_is_explained_without_it(ease_dir, tmp_path, monkeypatch):
    """Past the explained history's cap, a model without item vectors (EASE, popularity) put
    the query's latest items first, a dislike among them; the dislike is not in the history
    that model reads, and the lookup of its rating gave HTTP 500, for every list of a heavy
    user who had disliked one item."""
    import fewrec.serve.engine as engine_module

    monkeypatch.setattr(engine_module, "EXPLAIN_MAX_CELLS", 1)
    app = create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    c = TestClient(app)
    c.app.state.engine.explain_max_history = 3
    liked = ["50", "172", "181", "1", "100", "127"]
    out = rec(c, items=[*liked, "98"], ratings=[5] * len(liked) + [1], k=5)
    cited = {i for row in out["items"] for i in row["because"]}
    assert len(out["items"]) == 5 and cited and cited <= set(liked)  # three of them, never "98"
    assert (
        c.post("/feedback", json={"user": "h", "item": "98", "kind": "dislike"}, headers=AUTH).status_code
        == 201
    )
    for item in liked:
        assert (
            c.post("/feedback", json={"user": "h", "item": item, "kind": "like"}, headers=AUTH).status_code
            == 201
        )
    assert len(rec(c, user="h", k=5)["items"]) == 5


def test_an_unexpected_error_is_answered_without_raising_past_the_app(ease_dir, tmp_path, monkeypatch):
    """Starlette's handler of `Exception` answered 500 and then re-raised the error, and uvicorn
    closed the connection: a keep-alive client's next request failed with a reset. (TestClient
    raised it into the test.)"""
    from fewrec.serve.engine import Engine

    app = create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    c = TestClient(app)

    def broken(*args, **kwargs):
        raise KeyError(1499)

    monkeypatch.setattr(Engine, "_reasons", broken)
    r = c.post("/recommend", json={"items": ["50"], "k": 3})
    assert r.status_code == 500 and r.json()["error"] == "internal"
    assert c.get("/health/live").status_code == 200


def test_a_failed_start_leaves_no_store_and_a_busy_port_is_one_error(tmp_path, ease_dir):
    """A damaged model left a new, empty store file behind; a port in use was reported by
    uvicorn after the model had loaded ("[Errno 98] ... address already in use", exit 3), and
    an unknown host as "[Errno -2] Name or service not known" without naming it."""
    import shutil
    import socket

    from fewrec.errors import FewrecError
    from fewrec.serve.app import run_server

    damaged = tmp_path / "damaged"
    shutil.copytree(ease_dir, damaged)
    (damaged / "state.npz").write_text("garbage")
    with pytest.raises(FewrecError, match="damaged"):
        create_app(damaged, tmp_path / "new.db", warm_up=False)
    assert not list(tmp_path.glob("new.db*"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(FewrecError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            run_server(tmp_path / "nowhere", tmp_path / "s.db", port=port)
    with pytest.raises(FewrecError, match="cannot listen on host '999.1.1.1'"):
        run_server(tmp_path / "nowhere", tmp_path / "s.db", host="999.1.1.1", port=port)
    assert not list(tmp_path.glob("s.db*"))


def test_a_sessions_side_info_has_the_field_cap_of_a_users(ease_dir, tmp_path):
    """`PUT /users/x` refused more than 32 fields of info, `POST /recommend` took 95,000 (a 9 MB
    answer of a note per field), without a key."""
    from fewrec.serve.schemas import MAX_FIELDS

    c = TestClient(
        create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    )
    many = {f"f{i}": 0 for i in range(MAX_FIELDS + 1)}
    r = c.post("/recommend", json={"items": ["50"], "user_info": many, "k": 3})
    assert r.status_code == 422 and f"at most {MAX_FIELDS} fields" in r.json()["message"]
    assert rec(c, items=["50"], user_info={"age": 30}, k=3)["items"]


def test_numbers_as_text_blank_items_and_undecodable_ids_are_refused(ease_dir, tmp_path):
    """An audit: {"k": "5"} and a rating "4" were read as numbers; an item of only a blank
    title was stored and recommended; "%ff%fe" in a path became the id "\\ufffd\\ufffd"."""
    c = TestClient(
        create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    )
    r = c.post("/recommend", json={"items": ["50"], "k": "5"})
    assert r.status_code == 422 and "must be a number, not the text '5'" in r.json()["message"]
    event = {"user": "a", "item": "50", "kind": "rating", "value": "4"}
    assert c.post("/feedback", json=event, headers=AUTH).status_code == 422
    r = c.put("/items/blank", json={"title": "   "}, headers=AUTH)
    assert r.status_code == 422 and "needs a title, a text or some fields" in r.json()["message"]
    r = c.put("/users/%ff%fe", json={}, headers=AUTH)
    assert r.status_code == 422 and "U+FFFD" in r.json()["message"]
    assert c.put("/users/caf%C3%A9", json={}, headers=AUTH).status_code in (200, 201)
    assert rec(c, items=["50"], k=5)["items"]


def test_booleans_and_seeds_as_text_are_refused_in_bodies_and_read_in_queries(ease_dir, tmp_path):
    """An audit: {"explain": "no"} was read as false and {"seed": "7"} as 7, where {"k": "5"} is
    refused; a query string's ?explain=false is still read. An unknown field of ?filter= named
    the body's `filters.colour`, and a second DELETE of an item said "no item", where GET says
    it was deleted."""
    c = TestClient(
        create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    )
    for key, value in [("explain", "no"), ("exclude_seen", 0), ("explore", "yes")]:
        r = c.post("/recommend", json={"items": ["50"], key: value})
        assert r.status_code == 422, (key, r.text)
        assert r.json()["message"] == f"{key}: must be true or false, not {value!r}"
    r = c.post("/recommend", json={"items": ["50"], "seed": "7"})
    assert r.status_code == 422 and "must be a number, not the text '7'" in r.json()["message"]
    assert rec(c, items=["50"], explain=False, seed=7, k=3)["items"][0]["reason"] is None
    assert c.put("/users/u1", json={"info": {"age": 30}}, headers=AUTH).status_code == 200
    r = c.get("/users/u1/recommend?explain=false&k=3&seed=7")
    assert r.status_code == 200 and r.json()["items"][0]["reason"] is None
    r = c.get("/users/u1/recommend?filter=colour:red")
    assert r.status_code == 422
    assert r.json()["field"] == "filter" and r.json()["errors"][0]["location"] == "query"
    r = c.post("/recommend", json={"items": ["50"], "filters": {"colour": "red"}})
    assert r.status_code == 422 and r.json()["field"] == "filters.colour"
    assert c.delete("/items/50", headers=AUTH).status_code == 204
    r = c.delete("/items/50", headers=AUTH)
    assert r.status_code == 404 and r.json()["message"] == "item '50' was already deleted"
    assert c.delete("/items/no-such", headers=AUTH).json()["message"] == "no item 'no-such'"


def test_errors_name_the_path_and_header_and_similar_cites_only_what_it_read(ease_dir, cold_user, tmp_path):
    """An audit: GET /users/nobody/recommend named the body's `user`, a write without a key
    the body's `X-API-Key`; /similar cited the item as `because` under "Popular right now."
    and with explain=false."""
    c = TestClient(
        create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    )
    r = c.get("/users/nobody/recommend")
    assert r.status_code == 404 and (r.json()["field"], r.json()["errors"][0]["location"]) == (
        "user_id",
        "path",
    )
    r = c.post("/recommend", json={"user": "nobody"})
    assert r.status_code == 404 and (r.json()["field"], r.json()["errors"][0]["location"]) == ("user", "body")
    r = c.post("/feedback", json={"user": "a", "item": "50", "kind": "like"})
    assert r.status_code == 401 and r.json()["errors"][0]["location"] == "header"
    out = c.get("/items/50/similar", params={"k": 3}).json()["items"]
    assert all(i["because"] == ["50"] for i in out)
    out = c.get("/items/50/similar", params={"k": 3, "explain": False}).json()["items"]
    assert out and all(i["because"] == [] and i["reason"] is None for i in out)
    pop = saved_model("popularity", cold_user.train)
    assert c.post("/admin/model", json={"path": str(pop)}, headers=AUTH).status_code == 200
    out = c.get("/items/50/similar", params={"k": 3}).json()["items"]
    assert out and all(i["because"] == [] and i["reason"] == "Popular right now." for i in out)
    # random draws by the history, so its rows differ: its picks were "Similar to Star Wars"
    assert c.post("/admin/model", json={"path": str(saved_model("random", cold_user.train))}, headers=AUTH)
    r = c.get("/items/50/similar", params={"k": 3}).json()
    assert all(i["reason"] == "Picked at random (a baseline)." for i in r["items"]), r
    assert any("not similar items" in n for n in r["notes"])


def test_a_film_listed_twice_does_not_come_back_through_its_copy_over_http(ease_dir, tmp_path):
    """As in Python (`Recommender._twins`): a session that liked Chasing Amy (246) got its copy
    (268) back over HTTP, and a disliked film's copy too."""
    c = TestClient(
        create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    )
    assert "268" not in ids(rec(c, items=["246"], k=50))
    assert "268" not in ids(rec(c, items=["50", "246"], ratings=[5, 1], k=100, exclude_seen=False))
    # a film the text names as a known one is left out too, and said so
    out = rec(c, text="films like Star Wars", k=20)
    assert "50" not in ids(out) and any("names Star Wars (1977) as one you know" in n for n in out["notes"])
    assert "50" in ids(rec(c, text="films like Star Wars", k=20, exclude_seen=False))


def test_a_union_fields_error_names_its_cause_not_the_first_member(ease_dir, tmp_path):
    """An audit: a field of 65 values, or of a 1,001-character text, was "Input should be a valid
    number" (the first member of the union it failed), and a null side-info value too."""
    c = TestClient(
        create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    )
    r = c.put("/items/x3", json={"fields": {"a": list(range(65))}}, headers=AUTH)
    assert r.status_code == 422 and "at most 64 items" in r.json()["message"], r.json()["message"]
    r = c.put("/items/x3", json={"fields": {"a": ["x" * 1001]}}, headers=AUTH)
    assert r.status_code == 422 and "at most 1000 characters" in r.json()["message"], r.json()["message"]
    r = c.post("/recommend", json={"user_info": {"age": None}})
    assert (
        r.status_code == 422
        and r.json()["message"] == "user_info.age: must not be null: give a value, or leave the key out"
    )
    r = c.post("/recommend", json={"k": 0})
    assert r.status_code == 422 and r.json()["field"] == "k"


def test_writes_stop_at_the_stores_size_cap_and_reads_go_on(ease_dir, tmp_path):
    """A client with a key could fill the disk with users, items and feedback: with
    --max-store-mb, writes past the cap get a 507 naming the sizes; reads and deletes go on."""
    app = create_app(
        ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False, max_store_mb=0.2
    )
    c = TestClient(app)
    store = app.state.engine.store
    refused = None
    for n in range(400):
        r = c.put(f"/users/u{n}", json={"text": "x" * 2000}, headers=AUTH)
        if r.status_code != 200:
            refused = r
            break
    assert refused is not None and refused.status_code == 507, refused
    assert refused.json()["error"] == "store_full" and "MB of the 0.2 MB" in refused.json()["message"]
    assert store.size_bytes() >= 200_000
    event = {"user": "u1", "item": "50", "kind": "like"}
    assert c.post("/feedback", json=event, headers=AUTH).status_code == 507
    assert c.put("/items/new", json={"title": "New"}, headers=AUTH).status_code == 507
    assert rec(c, user="u1", k=3)["items"] and c.get("/users/u1").status_code == 200
    assert c.delete("/users/u1", headers=AUTH).status_code == 200
    # the deletes its 507 asks for make room (freed pages stay in the file, which counted whole)
    store.checkpoint()  # (the users in the file itself, not its -wal)
    for m in range(2, n):
        assert c.delete(f"/users/u{m}", headers=AUTH).status_code == 200
    assert c.post("/feedback", json=event, headers=AUTH).status_code == 201
    assert store.used_bytes() < 100_000 < 200_000 <= store.size_bytes()


@pytest.mark.parametrize("bad", [0, -1.5, "10", True])
def test_a_store_cap_that_is_no_size_is_refused_before_the_model_loads(tmp_path, bad, capsys):
    """--max-store-mb 0 (or less) would refuse every write; it is an error line at start."""
    from fewrec.errors import FewrecError
    from fewrec.serve.__main__ import main

    with pytest.raises(FewrecError, match=r"max_store_mb \(--max-store-mb\) must be a number above 0"):
        create_app(tmp_path / "no-model", tmp_path / "s.db", warm_up=False, max_store_mb=bad)
    assert not list(tmp_path.glob("s.db*"))
    if not isinstance(bad, str | bool):
        assert main([str(tmp_path / "no-model"), "--port", "0", "--max-store-mb", str(bad)]) == 2
        assert "must be a number above 0" in capsys.readouterr().err


@pytest.mark.parametrize("keys", [[""], ["ok", "  "]])
def test_an_empty_api_key_is_refused_at_start(tmp_path, keys, capsys):
    """An audit: `serve --api-key "$KEY"` with KEY unset kept an empty key, which no request can
    send (an empty header counts as none): every write was a 401, without a word at start."""
    from fewrec.errors import FewrecError
    from fewrec.serve.__main__ import main

    with pytest.raises(FewrecError, match=r"an API key is empty"):
        create_app(tmp_path / "no-model", tmp_path / "s.db", warm_up=False, api_keys=keys)
    assert not list(tmp_path.glob("s.db*"))
    given = [a for k in keys for a in ("--api-key", k)]
    assert main([str(tmp_path / "no-model"), "--port", "0", *given]) == 2
    assert "an API key is empty" in capsys.readouterr().err


def test_user_state_reads_the_deciding_event_per_item_kept_on_write_and_built_for_old_stores(tmp_path):
    """user_state read every event of a user (216 ms a request for one of 50,000); it now reads
    a row per item of `latest`, kept on each write. Random events (views, late arrivals with
    older timestamps, ties) give what the rule over all events gives, as does a schema-2 store
    (no `latest`) when opened, and a deleted user leaves nothing there."""
    from fewrec.serve.store import TASTE_KINDS, FeedbackRecord, Store

    rng = np.random.default_rng(0)
    kinds = ["view", *TASTE_KINDS]
    events = [
        FeedbackRecord(
            f"u{rng.integers(3)}",
            str(rng.integers(40)),
            str(rng.choice(kinds)),
            4.0,
            float(rng.integers(1, 6)),
        )
        for _ in range(300)
    ]
    store = Store(tmp_path / "s.db")
    for start in range(0, len(events), 7):
        store.add_feedback(events[start : start + 7])
    stored = store.feedback("u0") + store.feedback("u1") + store.feedback("u2")

    def by_rule(user):
        mine = [e for e in stored if e.user == user]
        deciding = {}
        for e in sorted((e for e in mine if e.kind in TASTE_KINDS), key=lambda e: (e.ts, e.seq)):
            deciding[e.item] = e
        return {e.item for e in mine}, sorted(deciding.values(), key=lambda e: (e.ts, e.seq))

    def state(s, user):
        seen, deciding = s.user_state(user)
        return set(seen), deciding

    for user in ("u0", "u1", "u2"):
        assert state(store, user) == by_rule(user)
        assert len(by_rule(user)[0]) > len(by_rule(user)[1]) > 0  # some items only viewed
    assert store.delete_user("u2") == (True, sum(e.user == "u2" for e in stored))
    assert state(store, "u2") == (set(), [])
    store.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.executescript("DROP TABLE latest; UPDATE meta SET value = '2' WHERE key = 'schema';")
    conn.close()
    store = Store(tmp_path / "s.db")
    for user in ("u0", "u1"):
        assert state(store, user) == by_rule(user)
    assert store._reader().execute("SELECT COUNT(*) FROM latest WHERE user = 'u2'").fetchone() == (0,)
    store.close()


def test_title_search_finds_titles_as_people_write_them(client):
    """An audit of the page: "The Godfather" found nothing (MovieLens files it "Godfather,
    The"), nor did "Star Wars 1977", "miserables" or "Misérables" typed with a combining accent,
    which `fewrec recommend --title` finds."""

    def first(q):
        found = client.get("/items", params={"q": q, "limit": 3}).json()["items"]
        return found[0]["title"] if found else None

    assert first("The Godfather") == "Godfather, The"
    assert first("the usual suspects") == "Usual Suspects, The"
    assert first("Star Wars 1977") == "Star Wars"
    assert first("miserables") == first("Mise\u0301rables") == "Misérables, Les"
    assert first("Godfather, The") == "Godfather, The"  # as filed, still
    # an article is put back in front, not dropped: "Die Hard" finds no "Hard Target"
    found = client.get("/items", params={"q": "Die Hard", "limit": 20}).json()["items"]
    assert found and all("Die Hard" in it["title"] for it in found), [it["title"] for it in found]
    assert first("zzqx nothing") is None


def test_an_ack_says_outdated_only_what_was_outdated_when_written(client, monkeypatch):
    """An audit: two clients sending feedback for one user at once could get "stored but
    changes nothing" for an event that was the newest when written: the ack read the user's
    state after the write, when another client's newer event had landed."""
    store = client.app.state.engine.store
    write = store.add_feedback_deciding

    def and_another_client(events):
        out = write(events)  # committed: another client's newer event lands now
        write([FeedbackRecord(events[0].user, events[0].item, "dislike", None, time.time() + 60)])
        return out

    monkeypatch.setattr(store, "add_feedback_deciding", and_another_client)
    r = client.post("/feedback", json={"user": "racer", "item": "50", "kind": "like"}, headers=AUTH)
    assert r.status_code == 201 and r.json()["notes"] == [], r.json()
    monkeypatch.undo()
    # one that was outdated when written still says so
    late = {"user": "racer", "item": "50", "kind": "like", "timestamp": 1_000.0}
    assert "changes nothing" in client.post("/feedback", json=late, headers=AUTH).json()["notes"][0]


def test_an_item_without_a_number_field_is_added_and_a_bad_one_refused_before_it_is_stored(tmp_path):
    """An audit: an item PUT without the catalogue's number field (price) had it filled with "",
    which the model refused as no number: 503 "stored but could not add", advice to install the
    text encoder, and at the next start that stored item kept every stored item out of the
    model (one that had been recommendable became "no item"). A missing field is now missing, a
    bad one is refused before it is stored, and a start adds the stored items one by one."""
    from fewrec.data import load_interactions
    from fewrec.models import load_model
    from fewrec.serve.store import Store

    rng = np.random.default_rng(0)
    kinds = ["kitchen pan pot stove", "garden hose rake lawn"]
    items = pd.DataFrame(
        {
            "item_id": [f"s{j}" for j in range(30)],
            "title": [f"{kinds[j % 2]} {j}" for j in range(30)],
            "price": rng.uniform(1, 50, 30).round(2),
            "in_stock": rng.random(30) < 0.5,
            "released": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, 30), "D"),
            "year": rng.integers(1990, 2020, 30),
            "genres": [["Kitchen"] if j % 2 == 0 else ["Garden"] for j in range(30)],
        }
    )
    rows = [
        (f"u{u}", f"s{j}") for u in range(20) for j in rng.choice(np.arange(u % 2, 30, 2), 5, replace=False)
    ]
    data = load_interactions(pd.DataFrame(rows, columns=["user_id", "item_id"]), items)
    path = saved_model("fewshot", data, **FAST_FEWSHOT)
    db = tmp_path / "s.db"
    app = create_app(path, db, api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        assert (
            c.put("/items/d", json={"title": "garden rake", "fields": {"price": 9}}, headers=AUTH).status_code
            == 200
        )
        assert c.put("/items/e", json={"title": "kitchen stove"}, headers=AUTH).status_code == 200
        assert c.get("/items/e").json()["recommendable"] is True
        r = c.put("/items/f", json={"title": "a pot", "fields": {"price": "cheap"}}, headers=AUTH)
        assert r.status_code == 422 and r.json()["field"] == "fields" and "'cheap'" in r.json()["message"]
        assert c.get("/items/f").status_code == 404  # not stored
        # in a batch, the first bad item is named by its place, and none is stored
        batch = [
            {"id": f"b{i}", "title": "a pan", "fields": {"price": p}} for i, p in enumerate([3, 4, "x", "y"])
        ]
        r = c.post("/items", json=batch, headers=AUTH)
        assert (
            r.status_code == 422 and r.json()["field"] == "items[2].fields" and "'b2'" in r.json()["message"]
        )
        assert c.get("/items/b0").status_code == 404
        # a yes/no field given as JSON true (it was "True", no number), a date as text
        flagged = {"title": "garden hose", "fields": {"in_stock": True, "released": "2024-12-01"}}
        assert c.put("/items/h", json=flagged, headers=AUTH).status_code == 200
        assert c.put("/items/s0", json={"title": "kitchen pan 0 renamed"}, headers=AUTH).status_code == 200
        # a fraction for a whole-number column is refused (stored, it turned the column into
        # floats, and its failed update kept every added item out at the next start); a date
        # with a zone is read (a 500); genres "A|B" are two
        r = c.put("/items/s2", json={"title": "x", "fields": {"year": 2003.5}}, headers=AUTH)
        assert r.status_code == 422 and "whole number" in r.json()["message"]
        zoned = {
            "title": "garden hoe",
            "fields": {"released": "2024-12-01T10:00:00Z", "genres": "Garden|Tools"},
        }
        assert c.put("/items/z", json=zoned, headers=AUTH).status_code == 200
        # GET and filters read the fields as the model holds them (they read them as sent:
        # "yes" matched a filter of "yes", not true; a trained item's date was "... 00:00:00")
        typed = {
            "title": "garden shears",
            "fields": {"in_stock": "yes", "price": "9.99", "released": "2024-04-08"},
        }
        assert c.put("/items/t", json=typed, headers=AUTH).status_code == 200
        assert c.get("/items/t").json()["fields"] == {
            "in_stock": True,
            "price": 9.99,
            "released": "2024-04-08",
        }
        hits = rec(c, text="garden", k=40, filters={"in_stock": "true", "released": "2024-04-08"})
        assert "t" in ids(hits)
        day = items["released"][1].date().isoformat()  # a trained item's date, as its day
        assert "s1" in ids(rec(c, text="kitchen", k=40, filters={"released": day}))
        many = c.post("/recommend", json={"text": "garden", "k": 50})  # (k past the catalogue: a 500)
        assert many.status_code == 200 and any("the catalogue has" in n for n in many.json()["notes"])
        served = app.state.engine._state.model
        served.save(tmp_path / "saved")  # the fields' table still saves (a flag column of text did not)
        info = load_model(tmp_path / "saved").fitted.item_info.set_axis(served.fitted.items.ids)
        assert info.loc["h", "in_stock"] == True and pd.isna(info.loc["e", "in_stock"])  # noqa: E712
        assert info.loc["h", "released"] == pd.Timestamp("2024-12-01") and pd.isna(info.loc["e", "released"])
        assert info.loc["z", "released"] == pd.Timestamp("2024-12-01 10:00") and info.loc["z", "genres"] == [
            "Garden",
            "Tools",
        ]
        assert str(info["year"].dtype) in ("int64", "Int64")
    # an item stored with a field the model cannot take (written before this check, or for
    # another model) waits; the others are added at the start
    Store(db).upsert_items([ItemRecord("g", "a pan", None, {"price": "cheap"})])
    app = create_app(path, db, api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        assert c.get("/items/d").json()["recommendable"] is True
        assert c.get("/items/e").json()["recommendable"] is True
        assert c.get("/items/g").json()["recommendable"] is False
        r = c.post("/feedback", json={"user": "u", "item": "g", "kind": "like"}, headers=AUTH)
        assert "another service process" not in r.text
    # an item stored before fields were typed (an older fewrec's store): typed at the start, as a
    # PUT types it now (GET showed "yes" and "7.5", and a filter of in_stock true missed it)
    Store(db).upsert_items([ItemRecord("old", "garden trowel", None, {"in_stock": "yes", "price": "7.5"})])
    app = create_app(path, db, api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        assert c.get("/items/old").json()["fields"] == {"in_stock": True, "price": 7.5}
        assert "old" in ids(rec(c, text="garden trowel", k=40, filters={"in_stock": True}))
        assert c.get("/items/g").json()["recommendable"] is False  # (the bad one still waits)


def test_an_item_the_model_fails_to_add_is_stored_and_waits(client, monkeypatch):
    """A PUT whose item the model could not add (its encoder failing, say) answered 503, but the
    served state did not hold it as waiting: feedback on it said it "was created by another
    service process on this store"."""
    from fewrec.models.fewshot import FewShotRecommender

    def failing(self, ids, info=None):
        raise RuntimeError("the encoder is gone")

    monkeypatch.setattr(FewShotRecommender, "add_items", failing)
    r = client.put("/items/w1", json={"title": "A waiting film"}, headers=AUTH)
    assert r.status_code == 503
    got = client.get("/items/w1")
    assert got.status_code == 200 and got.json()["recommendable"] is False
    fb = client.post("/feedback", json={"user": "u1", "item": "w1", "kind": "like"}, headers=AUTH)
    assert fb.status_code == 201, fb.text


def test_a_later_event_in_a_batch_wins_over_an_earlier_one_without_a_timestamp(client):
    """An audit: in one batch, a like without a timestamp took the store's clock, read after the
    engine's; a later dislike whose client clock ran a second ahead was clamped to the engine's
    and so looked older: "stored but changes nothing", and the disliked film came back."""
    now = time.time()
    events = [
        {"user": "q", "item": "50", "kind": "like"},
        {"user": "q", "item": "50", "kind": "dislike", "timestamp": now + 1},
    ]
    r = client.post("/feedback/batch", json={"events": events}, headers=AUTH)
    assert r.status_code == 201, r.text
    notes = r.json().get("notes", [])
    assert not any("this dislike was stored but changes nothing" in n for n in notes), notes
    assert any("this like was stored but changes nothing" in n for n in notes), notes  # (it is older)
    back = client.get("/users/q/recommend", params={"explore": False, "exclude_seen": False, "k": 100})
    assert "50" not in ids(back.json())


def test_feedback_on_an_item_a_put_is_adding_waits_for_it(ease_dir, tmp_path):
    """An audit: while a PUT of many items was adding them (stored, not yet served), feedback on
    one was a 404 blaming "another service process" and advising a restart (573 of the calls
    in 6.9 s of a 600-item PUT). It now waits for the PUT, which holds the items' lock."""
    from fewrec.serve import schemas as S

    app = create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], warm_up=False)
    with TestClient(app):
        engine = app.state.engine
        out: list = []
        event = S.FeedbackIn(user="f1", item="new-1", kind="like")
        with engine._items_lock:  # a PUT between storing the item and serving it
            stored = engine.store.upsert_items([ItemRecord("new-1", "A new film", "", {})])
            worker = threading.Thread(target=lambda: out.append(engine.add_feedback([event])))
            worker.start()
            worker.join(0.5)
            assert worker.is_alive() and not out  # waiting, not refused
            engine._state = engine._apply_items(engine._state, stored)
        worker.join(10)
        assert out and out[0].accepted == 1


def test_two_deletes_of_one_item_answer_204_once(ease_dir, tmp_path):
    """An audit: the "already deleted" check ran outside the items' lock, so two concurrent
    deletes of one item could both answer 204 (and write two tombstones)."""
    from fewrec.serve.errors import NotFoundError

    app = create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], warm_up=False)
    with TestClient(app):
        engine = app.state.engine
        results: list = []

        def delete() -> None:
            try:
                engine.delete_item("50")
                results.append("deleted")
            except NotFoundError:
                results.append("404")

        with engine._items_lock:  # both pass any check made before the lock
            workers = [threading.Thread(target=delete) for _ in range(2)]
            for w in workers:
                w.start()
            time.sleep(0.3)
        for w in workers:
            w.join(10)
        assert sorted(results) == ["404", "deleted"]


def test_stores_opened_at_once_by_several_processes_all_open(tmp_path):
    """An audit: the switch to WAL did not wait out another process's lock, so of three
    processes opening a new store at once one could fail ("database is locked")."""
    from fewrec.serve.store import Store

    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # as another process opening it at the same moment
    opened: list = []
    worker = threading.Thread(target=lambda: opened.append(Store(path, timeout=10)))
    worker.start()
    worker.join(0.5)
    assert worker.is_alive() and not opened  # waiting, not failed
    holder.execute("ROLLBACK")
    holder.close()
    worker.join(10)
    assert opened
    opened[0].close()


def test_a_swap_answers_with_the_model_it_put_in(ease_dir, cold_user, tmp_path, monkeypatch):
    """An audit: `swap` read the served model for its answer after releasing its lock, so with
    a second swap landing in between, POST /admin/model answered with the other model."""
    import fewrec.serve.engine as engine_module

    popularity_dir = saved_model("popularity", cold_user.train)
    app = create_app(ease_dir, tmp_path / "s.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app):
        engine = app.state.engine
        log_info = engine_module.log.info
        landed: list = []

        def info(message, *args):
            if message.startswith("now serving") and not landed:  # between the lock and the answer
                landed.append("swapping")
                landed[0] = engine.swap(str(popularity_dir)).model
            return log_info(message, *args)

        monkeypatch.setattr(engine_module.log, "info", info)
        answer = engine.swap(str(ease_dir))
        assert landed == ["popularity"] and engine.info().model == "popularity"
        assert answer.model == "ease"


def test_similar_items_of_an_item_an_id_only_model_cannot_score_yet(ease_dir, tmp_path):
    """A service audit: under EASE a new item put by PUT /items/{id} was shown by GET but its
    /similar was 404 "no recommendable item", as for an id no one knows."""
    app = create_app(ease_dir, tmp_path / "store.db", api_keys=[KEY], model_root=models_root(), warm_up=False)
    with TestClient(app) as c:
        assert c.put("/items/dune-2021", json={"title": "Dune"}, headers=AUTH).status_code == 200
        assert c.get("/items/dune-2021").status_code == 200
        r = c.get("/items/dune-2021/similar")
        said = r.json()["message"]
        assert r.status_code == 404 and said.startswith(
            "item 'dune-2021' is stored, but ease cannot score it yet"
        )
        assert "Fix: serve a model that reads item text" in said
        assert c.get("/items/nope/similar").json()["message"] == "no recommendable item 'nope'"


def test_an_item_scored_plus_inf_is_recommended_first_not_dropped(cold_user, tmp_path):
    """An audit: an item a model scored +inf was left out of `recommend`, the service's lists and
    its similar items (they kept finite scores only), with a false "the rest are in the history"
    warning, while evaluation ranked it first. +inf is the best score there is; NaN and -inf
    still hold no recommendation."""
    import warnings

    from fewrec.models import Query, Recommender, register
    from fewrec.models.base import MODELS

    class Boosted(Recommender):
        name = "test-boosted"
        reads_item_text = False

        def _fit(self, data):
            self.pop_ = np.asarray(self.fitted.train.getnnz(axis=0), dtype=np.float32)

        def score_batch(self, batch):
            out = np.tile(self.pop_, (len(batch), 1))
            out[:, 7] = np.inf  # the best there is
            out[:, 8] = np.nan  # none
            return out

    register(Boosted)
    try:
        model = Boosted().fit(cold_user.train)
        boosted, unscored = model.fitted.items.id(7), model.fitted.items.id(8)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # (a false "shorter than k" warning)
            got = model.recommend(Query(items=["50"]), k=5)
            assert model.recommend(Query(items=["50"]), k=3, explain=True)["item"][0] == boosted
        # NaN is no score, and said (it had been left out without a word)
        assert caught and {str(w.message) for w in caught} == {
            "test-boosted.score_batch gave NaN for some items, so they get no recommendations (-inf "
            "marks an item a model cannot score)"
        }
        assert len(got) == 5 and got["item"][0] == boosted and got["score"][0] == np.inf
        everything = model.recommend(Query(), k=model.n_items, exclude_seen=False)
        assert boosted in set(everything["item"]) and unscored not in set(everything["item"])
        path = model.save(tmp_path / "boosted")
        app = create_app(path, tmp_path / "s.db", api_keys=[KEY], model_root=tmp_path, warm_up=False)
        with TestClient(app) as c:
            listed = c.post("/recommend", json={"items": ["50"], "k": 5, "explore": False})
            similar = c.get("/items/50/similar", params={"k": 5})
        for r in (listed, similar):
            assert r.status_code == 200, r.text
            items = [i["item"] for i in r.json()["items"]]
            assert items[0] == boosted and len(items) == 5 and unscored not in items, r.json()
        # (JSON has no +inf: it was written as null, "no score")
        assert listed.json()["items"][0]["score"] == "Infinity", listed.json()
        assert float(listed.json()["items"][0]["mean_score"]) == np.inf
        assert all(isinstance(i["score"], float) for i in listed.json()["items"][1:])
    finally:
        MODELS.pop("test-boosted", None)


def test_a_user_id_in_either_unicode_form_is_one_user(client):
    """An audit: the store keyed a user by the form sent, so "café" sent composed (NFC) and
    decomposed (NFD, as macOS file names and some keyboards give it) made two users that print
    alike: feedback split between them, and /recommend under the other form was a 404 "no user
    'café'". Ids are read in normal form C (the model's own ids matched in either form already)."""
    composed, decomposed = "caf\u00e9-user", "cafe\u0301-user"
    assert client.put("/users/" + composed, json={"info": {"age": 30}}, headers=AUTH).status_code == 200
    for user, item in ((composed, "50"), (decomposed, "172")):
        r = client.post("/feedback", json={"user": user, "item": item, "kind": "like"}, headers=AUTH)
        assert r.status_code == 201, r.text
    got = client.get(f"/users/{decomposed}/recommend", params={"explore": False})
    assert got.status_code == 200 and got.json()["history_size"] == 2, got.text
    assert rec(client, user=decomposed)["history_size"] == 2
    events = client.get(f"/users/{composed}/feedback").json()
    assert [e["item"] for e in events] == ["50", "172"] and {e["user"] for e in events} == {composed}
    assert client.get(f"/users/{decomposed}").json()["info"] == {"age": 30}


def test_each_item_says_whether_exploration_put_it_there(client):
    """An audit: an explored pick was marked only by its reason, so with explain=false nothing
    said which picks were the draw's (under Thompson every score differs from its mean)."""
    from fewrec.serve.engine import EXPLORED

    body = {"items": ["50", "181"], "k": 10, "explore": True, "seed": 3}
    told = rec(client, **body)["items"]
    quiet = rec(client, **body, explain=False)["items"]
    assert [i["item"] for i in told] == [i["item"] for i in quiet]
    flags = [i["explored"] for i in told]
    assert any(flags) and not all(flags)
    assert flags == [i["reason"] == EXPLORED for i in told] == [i["explored"] for i in quiet]
    assert all(i["reason"] is None for i in quiet)
    assert not any(i["explored"] for i in rec(client, **{**body, "explore": False})["items"])


def test_a_user_an_older_store_keeps_decomposed_is_reached_in_either_form(ease_dir, tmp_path):
    """The review of the ids' normal form: a user an older store kept under the decomposed
    ("cafe\\u0301") form could no longer be reached, nor erased, once the service read every id
    composed. Opening the store moves them to the composed form, once; of two records of one
    user, the one updated last is kept, and their feedback joins."""
    from fewrec.serve.store import FeedbackRecord, Store, UserRecord

    path = tmp_path / "old.db"
    composed, decomposed = "caf\u00e9-user", "cafe\u0301-user"
    store = Store(path)
    store.upsert_user(UserRecord(id=composed, info={"age": 20}))
    first = store.get_user(composed).created
    store.upsert_user(UserRecord(id=decomposed, info={"age": 31}))  # (the later)
    store.add_feedback([FeedbackRecord(user=decomposed, item="50", kind="like", ts=time.time())])
    store.add_feedback([FeedbackRecord(user=composed, item="172", kind="like", ts=time.time())])
    store.close()
    item = "cre\u0300me-item"  # an item a request stored decomposed (the second review)
    with sqlite3.connect(path) as conn:  # as an older fewrec left it
        conn.execute("DELETE FROM meta WHERE key = 'ids_nfc'")
        conn.execute(
            "INSERT INTO items (id, title, text, fields, deleted, seq, updated) "
            "VALUES (?, 'Creme', NULL, '{}', 0, 1, 0)",
            (item,),
        )
    app = create_app(ease_dir, path, api_keys=[KEY], warm_up=False)
    with TestClient(app) as c:
        for form in (composed, decomposed):
            got = c.get(f"/users/{form}")
            assert got.status_code == 200 and got.json()["info"] == {"age": 31}, got.text
            assert rec(c, user=form, k=3)["history_size"] == 2
        assert app.state.engine.store.get_user(composed).created == pytest.approx(first)
        assert c.delete(f"/items/{item}", headers=AUTH).status_code == 204
        assert c.get("/items/cr\u00e8me-item").status_code == 404
        assert c.delete(f"/users/{decomposed}", headers=AUTH).status_code == 200
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
