"""The README's and docs/' Python examples run as written (in a scratch directory), and warn about
nothing; their links lead somewhere; what they say of the service holds."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: the README, then the docs pages in the order its list gives them
PAGES = [README] + [ROOT / p for p in dict.fromkeys(re.findall(r"\]\((docs/[\w-]+\.md)", README.read_text()))]
SERVING = ROOT / "docs" / "serving.md"


def _all_text() -> str:
    return "\n".join(page.read_text() for page in PAGES)


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    blocks = [
        (page, block)
        for page in PAGES
        for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    ]
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    from fewrec.models import MODELS

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # e.g. text given to a model that ignores it
            for page, block in blocks:
                exec(compile(block, str(page), "exec"), namespace)
        # the model of one's own: registered, saved by the default `_get_arrays`, and checked
        assert MODELS["shrunk-mean"] is namespace["ShrunkMean"]
        assert namespace["mine"]._get_arrays()["mean_"].shape == (1682,)
    finally:
        MODELS.pop("shrunk-mean", None)  # the other tests' registry is the built-in models'
    recs = namespace["recs"]
    assert len(recs) == 10 and recs["reason"].str.len().gt(0).all()
    assert (tmp_path / "models" / "ease" / "config.json").exists()
    assert "new-1" in namespace["model"].fitted.items.ids


def test_readme_benchmark_examples_keep_the_recorded_results():
    """`benchmark --output benchmarks/warm.json` overwrote a recorded result, and two seed
    examples wrote the same seeds.json; every example's result has its own path outside
    benchmarks/, and that path is git-ignored."""
    text = _all_text().replace("\\\n", " ")
    lines = [ln for ln in text.splitlines() if re.search(r"fewrec (benchmark|merge-seeds)\b", ln)]
    outputs = [m.group(1) for ln in lines for m in [re.search(r"--output (\S+)", ln)] if m]
    assert len(outputs) >= 4
    assert not [o for o in outputs if o.startswith("benchmarks/")]
    assert len(set(outputs)) == len(outputs), outputs
    ignored = (ROOT / ".gitignore").read_text().split()
    assert all(o.split("/")[0] + "/" in {i.strip("/") + "/" for i in ignored} for o in outputs)


def test_readme_serve_routes_exist_and_an_unknown_user_is_a_404(tmp_path):
    """The routes "Serve it" lists are the app's, and what it says of an unknown user holds:
    a 404 over HTTP until PUT /users/{id} creates the user."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from fewrec.data.loaders import Columns, load_interactions
    from fewrec.models import make_model
    from fewrec.serve.app import create_app

    serve = SERVING.read_text()
    listed = re.findall(r"^# (GET|POST|PUT|DELETE) (/\S*?):?\s", serve, flags=re.M)
    assert len(listed) >= 5
    frame = pd.DataFrame({"user": ["a", "a", "b", "b", "c"], "item": ["1", "2", "2", "3", "1"]})
    data = load_interactions(frame, columns=Columns(user="user", item="item", rating=None, timestamp=None))
    app = create_app(make_model("popularity").fit(data), tmp_path / "s.db", api_keys=["k"], warm_up=False)
    routes = {
        (method, re.sub(r"\{[^}]*\}", "{}", route.path))
        for route in app.routes
        for method in getattr(route, "methods", ())
    }
    for method, path in listed:
        assert (method, re.sub(r"\{[^}]*\}", "{}", path)) in routes, (method, path)
    with TestClient(app) as client:
        missing = client.post("/recommend", json={"user": "alice", "k": 2})
        assert missing.status_code == 404 and "PUT /users/{id}" in missing.json()["message"]
        made = client.put("/users/alice", json={"text": "anything"}, headers={"X-API-Key": "k"})
        assert made.status_code == 200
        assert client.post("/recommend", json={"user": "alice", "k": 2}).status_code == 200


def test_readme_states_the_services_limits_as_the_code_sets_them():
    from fewrec.serve import schemas as S
    from fewrec.serve.app import DEFAULT_MAX_BODY

    text = " ".join(SERVING.read_text().split())
    limits = text[text.index("**Limits:**") :][:600]
    assert DEFAULT_MAX_BODY == 1 << 20 and "1 MiB" in limits
    for value, words in [
        (S.MAX_HISTORY, "list at most {} items"),
        (S.MAX_BATCH, "a batch {} items or feedback events"),
        (S.MAX_K, "`k` {}"),
        (S.MAX_TEXT, "a text {} characters"),
        (S.MAX_TITLE, "a title {}"),
        (S.MAX_ID, "id {}"),
        (S.MAX_FIELDS, "{} fields"),
        (S.MAX_LIST, "at most {} values"),
    ]:
        assert words.format(f"{value:,}") in limits, (value, words)


def _anchor(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_docs_links_lead_somewhere_and_every_page_is_listed():
    """The README's list names every page of docs/, and every relative link of the README and the
    docs names a file that exists (and a heading of it, where it names one)."""
    assert sorted(PAGES[1:]) == sorted((ROOT / "docs").glob("*.md"))
    checked = 0
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), (page.name, target)
            if anchor:  # (a code block's "# comment" is no heading)
                prose = re.sub(r"```.*?```", "", file.read_text(), flags=re.S)
                headings = re.findall(r"^#+ (.+)$", prose, flags=re.M)
                assert anchor in {_anchor(h) for h in headings}, (page.name, target)
            checked += 1
    assert checked >= 15


def test_the_model_of_ones_own_describes_its_setting(tmp_path, monkeypatch):
    """An audit: docs/models.md's model of one's own described its setting in a ``#`` comment,
    which `fewrec models shrunk-mean` does not read (it reads the docstring under a setting), and
    took a negative shrink. Its config, as a module of one's own holds it, describes the setting
    and refuses a negative one."""
    import importlib

    from fewrec.errors import ConfigError

    text = (ROOT / "docs" / "models.md").read_text()
    block = re.search(r"```python\n(.*?)```", text.split("## A model of your own")[1], flags=re.S)
    assert block is not None
    config = re.search(r"^class ShrunkMeanConfig.*?(?=^\S)", block.group(1), flags=re.S | re.M)
    assert config is not None
    imports = "from pydantic import Field\nfrom fewrec.models import ModelConfig\n\n"
    (tmp_path / "shrunk_config_doc.py").write_text(imports + config.group(0))
    monkeypatch.syspath_prepend(str(tmp_path))
    cls = importlib.import_module("shrunk_config_doc").ShrunkMeanConfig
    assert "counts fully" in (cls.model_fields["shrink"].description or "")
    with pytest.raises(ConfigError, match="shrink"):
        cls(shrink=-1)
