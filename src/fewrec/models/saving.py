"""Saving and loading models.

A saved model is a directory (config.json, vocab.json, state.npz, items.parquet,
users.parquet) with no pickle anywhere. `save_model` (`Recommender.save`) writes it into a
sibling folder and swaps that in, under a lock that loads of models in the folder take too;
`load_model` (`Recommender.load`) reads a model of any registered class back.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import ValidationError

from fewrec.data.dataset import Vocabulary
from fewrec.errors import (
    ArgumentError,
    ConfigError,
    DataError,
    FewrecError,
    file_in_the_way,
    is_whole_number,
    split_fix,
    user_stacklevel,
    validation_problems,
    with_fix,
)
from fewrec.models.base import LOADING_SAVED, MODELS, FitState, Recommender, _import_builtin_models

FORMAT_VERSION = 1


def save_model(model: Recommender, path: str | Path) -> Path:
    """`Recommender.save`: save ``model`` as a directory at ``path`` and return ``path``."""
    st = model.fitted
    path = _model_path(path)
    _check_save_folder(path)
    meta = {
        "format": FORMAT_VERSION,
        "model": model.name,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "config": model.config.model_dump(mode="json"),
        "like_rating": st.like_rating,
        "counts": st.counts,
        "genre_sep": st.genre_sep,
        "item_template": st.item_template,
        "item_fields": [str(c) for c in st.item_info.columns],
        "user_fields": [str(c) for c in st.user_info.columns],
        "versions": _versions(),
    }
    files: dict[str, bytes | None] = {
        "config.json": json.dumps(meta, indent=2).encode(),
        "vocab.json": json.dumps({"users": st.users.to_json(), "items": st.items.to_json()}).encode(),
    }
    # None: no file, so a model saved here before must not lend this one its titles
    files["items.parquet"] = _parquet_bytes(
        st.item_info,
        "item fields",
        "give each field one type for all items (text, numbers, or lists of text)",
    )
    files["users.parquet"] = _parquet_bytes(
        st.user_info,
        "user side info",
        "give each side-info field one type for all users (text or numbers)",
    )
    arrays = {f"model.{k}": np.asarray(v) for k, v in model._get_arrays().items()}
    objects = [k.removeprefix("model.") for k, v in arrays.items() if v.dtype.hasobject]
    if objects:  # np.savez would pickle them, and a load (which never unpickles) refuse them
        raise ConfigError(
            with_fix(
                f"{model.name} cannot be saved: its arrays {objects} hold Python objects, which a "
                "saved model does not keep (no pickle)",
                "return numeric or text arrays from _get_arrays (np.array(list_of_str) is text)",
            )
        )
    train = st.train.tocsr()
    arrays.update({"train.data": train.data, "train.indices": train.indices, "train.indptr": train.indptr})
    if st.left_out is not None:
        arrays.update({"left_out.indices": st.left_out.indices, "left_out.indptr": st.left_out.indptr})

    def state(fh: BinaryIO) -> None:  # (a file object: np.savez would append .npz to a name)
        # (numpy's stub: a key of **arrays could be its allow_pickle flag)
        np.savez(fh, **arrays)  # type: ignore[arg-type]

    write_folder(path, {"state.npz": state, **files})
    return path


def write_folder(
    path: Path, files: Mapping[str, bytes | Callable[[BinaryIO], None] | None], what: str = "model"
) -> None:
    """Write ``files`` (name: bytes, a function writing into an open file, or None for no file)
    as the folder ``path``: whole into a sibling folder, then swapped in under the lock that
    loads in the folder take (`_folder_lock`). Replacing the files one by one, a save cut short
    loaded silently with the new arrays and the old ids (a model's), or the new ratings and the
    old users (a dataset's: `Dataset.save`)."""
    try:
        target = _save_target(path)
        tmp = _saving_folder(target)
    except OSError as exc:
        raise _unsavable(path, exc, what) from None
    try:
        # Each file, then the folders, is flushed to disk before the next step: after a power
        # cut the renamed folder could otherwise hold empty or partly written files.
        for name, data in files.items():
            if isinstance(data, bytes):
                (tmp / name).write_bytes(data)
                _fsync(tmp / name)
            elif data is not None:
                with open(tmp / name, "wb") as fh:
                    data(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
        _fsync(tmp, folder=True)
        old = None
        # the two renames under a lock that loads in this folder take too: a load had read one
        # save's config.json with another's state.npz, or found no folder, and two saves at
        # once had failed with "is a file" or left a `.replaced-` folder behind
        with _folder_lock(target.parent, exclusive=True):
            if target.exists():  # saved there before, or an empty folder
                old = target.parent / f".{target.name}.replaced-{os.getpid()}-{secrets.token_hex(4)}"
                target.rename(old)
                try:
                    tmp.rename(target)
                except BaseException:
                    old.rename(target)
                    raise
            else:
                tmp.rename(target)
            _fsync(target.parent, folder=True)
        if old is not None:  # (a load that opened its files still reads them)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):  # no room left, a folder made read-only meanwhile
            raise _unsavable(path, exc, what) from None
        raise


STALE_SAVE_SECONDS = 600.0
"""A ``.NAME.saving-PID-HEX`` folder beside a model whose process is gone and whose files have
not changed for this long is a save that was killed: the next save of NAME removes it. The age
guards a save of another container or machine, whose pid this one cannot see (its files change
as it writes), and a pid reused by a new process keeps a folder rather than losing one."""


def is_saved_model(path: str | Path) -> bool:
    """Whether ``path`` holds a saved model (its ``config.json``), read while no `save` is midway
    through swapping a model folder in there."""
    target = _model_path(path)
    with _folder_lock(target.parent, exclusive=False):
        return (target / "config.json").is_file()


@contextlib.contextmanager
def _folder_lock(folder: Path, *, exclusive: bool):
    """An advisory lock (``flock``) on ``folder`` itself, so that no lock file is left beside
    the models: a save holds it exclusively while it swaps a model folder in, a load shared
    while it opens the model's files. Where the folder cannot be opened or locked (Windows, a
    file system without locks, a folder not made yet) nothing is locked."""
    fd = None
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)  # (closed below if it fails)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # (releases the lock)


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs here; True when that cannot be told."""
    if os.name != "posix":  # os.kill(pid, 0) would end a Windows process, not probe it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError, ValueError):  # another user's process, an impossible pid
        return True
    return True


#: The name of a save's own folder beside the model ``name``: the one it writes into
#: (`_saving_folder`) and the old model's while it is swapped out, with the saving process's id.
_OWN_FOLDER = re.compile(r"\.(?P<name>.+)\.(?P<kind>saving|replaced)-(?P<pid>\d+)-[0-9a-f]+")


def _remove_stale_saves(target: Path) -> None:
    """Remove the folders of saves of ``target`` killed midway (a kill -9, a power cut): each
    is a whole model's files, which no later save removed."""
    name = glob.escape(target.name)
    if not target.exists() and any(target.parent.glob(f".{name}.replaced-*")):
        return  # a swap cut short: these folders hold the models (`check_model_dir` names them)
    # and, the target being there again, the old model a swap killed midway had moved aside
    # (a `.replaced-` folder, a whole model, stayed for good)
    kinds = ("saving", "replaced") if target.exists() else ("saving",)
    for folder in (f for kind in kinds for f in target.parent.glob(f".{name}.{kind}-*")):
        match = _OWN_FOLDER.fullmatch(folder.name)
        if not match or match["name"] != target.name or match["kind"] not in kinds:
            continue
        if folder.is_symlink() or not folder.is_dir() or _running(int(match["pid"])):
            continue
        try:
            info = folder.stat()
            changed = max([info.st_mtime] + [f.lstat().st_mtime for f in folder.iterdir()])
            if match["kind"] == "replaced":  # a rename keeps its mtimes (the day it was saved): when
                changed = max(changed, info.st_ctime)  # it was moved aside is its ctime
        except OSError:  # removed meanwhile, or unreadable: left alone
            continue
        if time.time() - changed > STALE_SAVE_SECONDS:
            shutil.rmtree(folder, ignore_errors=True)


def _saving_folder(target: Path) -> Path:
    """A new hidden sibling of ``target`` (an absolute path) that a save writes its files into
    before swapping it in; the folders of earlier saves there that were killed are removed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_saves(target)
    tmp = target.parent / f".{target.name}.saving-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    return tmp


def _fsync(path: Path, folder: bool = False) -> None:
    """Flush ``path``'s data (a file) or entries (a folder) to disk. A folder that cannot be
    opened or flushed (Windows, some network file systems) is left to the system."""
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        if not folder:
            raise


def _save_target(path: Path) -> Path:
    """Where a save of ``path`` writes: its absolute path with links followed, so a save to a
    link (``current -> v1``) replaces the model in ``v1`` and the link still points there."""
    try:
        return path.resolve()
    except RuntimeError as exc:  # a loop of links (an OSError from Python 3.13)
        raise OSError(str(exc)) from None


def _unsavable(path: Path, exc: OSError, what: str = "model") -> FewrecError:
    """An OS error of a save as one error naming the path and the reason; a file the error
    names inside the save's own folders (``.NAME.saving-...``, ``.NAME.replaced-...``) is named
    as in ``path`` (the message named ``/proc/.x.saving-8637-ef409e05`` for ``/proc/x``)."""
    if (above := file_in_the_way(path)) is not None:  # mkdir says only "File exists"
        reason = f"{above} is a file, not a folder"
    else:
        reason = exc.strerror or str(exc) or type(exc).__name__
        named = Path(os.fsdecode(exc.filename)) if exc.filename else None
        if named is not None:  # the save's own folder, or a file in it: named as in ``path``
            own = next((p for p in (named, *named.parents) if _OWN_FOLDER.fullmatch(p.name)), None)
            if own is not None:
                named = None if own == named else Path(path) / named.relative_to(own)
        if named is not None:
            reason += f": {named}"
    return FewrecError(
        with_fix(
            f"cannot save the {what} to {path} ({reason})",
            f"give a path in a folder you can write to, with room for the {what}",
        )
    )


def _model_path(path: str | Path, what: str = "model") -> Path:
    """``path`` as a Path, or an ArgumentError for a path no file system takes (a NUL byte in it
    was a raw "embedded null byte" from deep in a save or a load)."""
    if not isinstance(path, str | os.PathLike):
        raise ArgumentError(f"a {what}'s path is a str or a Path, got {type(path).__name__}")
    path = Path(path).expanduser()  # ("~/models" was a folder named "~" here)
    if "\x00" in str(path):
        raise ArgumentError(f"the path {str(path)!r} holds a NUL byte, which no file name can")
    return path


def _check_save_folder(
    path: Path, what: str = "model", marker: str = "config.json", saved: tuple[str, ...] | None = None
) -> None:
    """That ``path`` is no file, and no folder holding files a save would lose: a folder with
    other files in it, or a saved model (or ``what``, whose folder holds ``marker`` and the
    files ``saved``) with files beside its own (a save swaps the whole folder, so they went
    with the old model)."""
    saved = SAVED_FILES if saved is None else saved
    try:  # under the lock of a save's swap: another save's swap shows a folder half moved
        with _folder_lock(_save_target(path).parent, exclusive=False):
            is_file = path.exists() and not path.is_dir()
            found = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
            is_model = (path / marker).exists()
    except OSError as exc:  # a folder that cannot be read, a loop of links
        raise _unsavable(path, exc, what) from None
    if is_file:
        raise FewrecError(
            with_fix(f"{path} is a file; a {what} is saved as a directory", "pick another path")
        )
    if found and not is_model:
        raise FewrecError(  # its files would be mixed with the model's
            with_fix(
                f"{path} is a folder with other files in it, not a saved {what}", "give a new or empty folder"
            )
        )
    if extra := [name for name in found if name not in saved]:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise FewrecError(
            with_fix(
                f"{path} holds a saved {what} and other files ({shown}), which replacing the {what} "
                "would delete",
                "move them out of the folder, or give another folder",
            )
        )


def check_save_path(path: str | Path) -> None:
    """That a model can be saved at ``path``, or the FewrecError `Recommender.save` would raise
    there: a fit of minutes or hours is not wasted on an output it cannot write. It makes (and
    removes) the folder a save writes into, and the missing folders above it."""
    path = _model_path(path)
    _check_save_folder(path)
    made: list[Path] = []
    try:
        target = _save_target(path)
        made = [p for p in target.parents if not p.exists()]  # the deepest first
        _saving_folder(target).rmdir()
    except OSError as exc:
        raise _unsavable(path, exc) from None
    finally:
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()


def check_model_dir(path: Path) -> None:
    """That ``path`` is a folder a model was saved in, or a FewrecError saying what it is (a
    save cut short, no folder, another folder)."""
    if not path.exists():
        here = path.absolute().parent
        saving = sorted(here.glob(f".{path.name}.saving-*"))
        replaced = sorted(here.glob(f".{path.name}.replaced-*"))
        if saving and replaced:  # cut short between moving the old folder away and the new one in
            raise FewrecError(
                with_fix(
                    f"{path} does not exist: a save there was cut short while swapping folders",
                    f"rename {saving[-1]} (the new model) or {replaced[-1]} (the old one) to {path}",
                )
            )
        if saving:
            raise FewrecError(
                with_fix(f"{path} does not exist: a save there did not finish", "save it again")
            )
        raise FewrecError(with_fix(f"{path} does not exist", "give the folder a model was saved in"))
    if path.is_file() and (path.parent / "config.json").exists():  # ("m/config.json": "no config.json")
        raise FewrecError(
            with_fix(f"{path} is a file of a saved model", f"give the model's folder, {path.parent}")
        )
    if not (path / "config.json").exists():  # (a results folder, say: it named no fix)
        raise FewrecError(
            with_fix(
                f"{path}: not a saved fewrec model (no config.json)",
                "give a folder written by `fewrec train ... --output DIR` or `model.save(DIR)`",
            )
        )


def load_model(path: str | Path) -> Recommender:
    """Load a model saved with `Recommender.save` (never unpickles anything).

    Raises:
        FewrecError: ``path`` does not exist, is a file or holds no saved model, or the model's
            class is not registered (a model of your own: import its module first, or name it
            in ``$FEWREC_IMPORT``).
    """
    return _load_model(path)


def _load_model(path: str | Path, expected: type[Recommender] | None = None) -> Recommender:
    """`load_model`; with ``expected``, a model of another class is an error, raised before
    its files are read."""
    path = _model_path(path)
    files = _open_saved(path)
    try:
        return _load_opened(path, files, expected)
    finally:
        for fh in files.values():
            if not isinstance(fh, OSError):
                fh.close()


SAVED_FILES = ("config.json", "vocab.json", "state.npz", "items.parquet", "users.parquet")
"""The files of a saved model (`Recommender.save`)."""


def _open_saved(path: Path) -> dict[str, Any]:
    """The files of the model saved at ``path``, opened together under the lock a save's swap
    takes, so that they are all of one save however many saves replace it meanwhile (an open
    file is read whole after its folder was swapped out and removed). Each is an open binary
    file, or the OSError opening it gave; files not there are left out."""
    try:
        real = path.resolve()  # (a save swaps the folder a link points to, locking its parent)
    except (OSError, RuntimeError):  # a loop of links: `check_model_dir` says it is not there
        real = path
    out: dict[str, Any] = {}
    with _folder_lock(real.parent, exclusive=False):
        check_model_dir(path)
        for name in SAVED_FILES:
            try:
                out[name] = open(real / name, "rb")  # noqa: SIM115 (closed by `_load_model`)
            except FileNotFoundError:
                continue
            except OSError as exc:  # (raised when the part is read)
                out[name] = exc
    return out


def _saved_file(files: dict[str, Any], name: str) -> Any:
    """One of `_open_saved`'s files, or the error of opening it."""
    fh = files.get(name)
    if fh is None:
        raise FileNotFoundError(2, "No such file or directory", name)
    if isinstance(fh, OSError):
        raise fh
    return fh


def _load_opened(path: Path, files: dict[str, Any], expected: type[Recommender] | None) -> Recommender:
    try:
        meta = json.loads(_saved_file(files, "config.json").read())
        name = meta.get("model")
        _check_meta(meta)
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise _damaged(path, "config.json", exc) from None
    _import_builtin_models()
    if name not in MODELS:
        where = meta.get("class")
        raise FewrecError(
            with_fix(
                f"{path}: unknown model {name!r}"
                + (f" (saved from {where})" if where else "")
                + f"; known: {sorted(MODELS)}",
                "a model of your own is known once the module that registers it is imported: "
                "import it before loading (CLI and service: FEWREC_IMPORT=its_module)",
            )
        )
    if expected is not None and not issubclass(MODELS[name], expected):
        wanted = getattr(expected, "name", None)
        raise FewrecError(
            with_fix(
                f"{path} holds the model {name!r} ({MODELS[name].__name__}), not "
                + (f"{wanted} ({expected.__name__})" if wanted else expected.__name__),
                "load it with fewrec.load_model(path) or Recommender.load(path), which load a "
                "model of any type",
            )
        )
    _check_saved_by(path, meta, MODELS[name])
    try:
        return _load_parts(path, MODELS[name], meta, files)
    except FewrecError:
        raise
    except Exception as exc:  # noqa: BLE001 (any failure to read a saved model is damage)
        part = getattr(exc, "part", None) or "the saved files"
        raise _damaged(path, part, exc) from None


def _check_meta(meta: dict) -> None:
    """A ValueError naming the first field of a saved config.json of the wrong kind (edited by
    hand): a model name given as a list, or versions as text, were raw errors on loading, and a
    like rating of NaN loaded."""
    kinds: dict[str, tuple[type, ...]] = {
        "model": (str,),
        "versions": (dict,),
        "item_template": (str, type(None)),
        "counts": (bool,),
        "genre_sep": (str,),
        "item_fields": (list,),
        "user_fields": (list,),
    }
    for key, kind in kinds.items():
        if key in meta and not isinstance(meta[key], kind):
            raise ValueError(f"{key} is {meta[key]!r}, not {' or '.join(k.__name__ for k in kind)}")
    like = meta.get("like_rating")
    if isinstance(like, bool) or not isinstance(like, int | float) or not np.isfinite(like):
        raise ValueError(f"like_rating is {like!r}, not a finite number")


def _saved_and_mine(meta: dict) -> tuple[str, str]:
    """The fewrec version that saved the model of ``meta`` (its config.json) and this one, as
    the load errors name them."""
    saved = str((meta.get("versions") or {}).get("fewrec", "an unknown version"))
    return saved, _versions().get("fewrec", "this version")


def _check_saved_by(path: Path, meta: dict, cls: type[Recommender]) -> None:
    """A model saved in a newer format, or with settings this fewrec does not know, is one
    error naming the versions (it was "damaged or incomplete", or loaded unchecked); one saved
    by another fewrec version loads with a warning."""
    saved, mine = _saved_and_mine(meta)
    fmt = meta.get("format")
    # (every model fewrec saves names its format, from 1: a format of 0, or none, loaded unchecked)
    if fmt is None or (is_whole_number(fmt) and int(fmt) < 1):
        given = "names no format" if fmt is None else f"names format {fmt!r}"
        raise FewrecError(
            with_fix(
                f"{path}: config.json {given}, where every model fewrec saves names its format "
                f"(1 to {FORMAT_VERSION}): it was not saved by fewrec, or was edited",
                "restore the config.json fewrec saved, or train the model again",
            )
        )
    if not is_whole_number(fmt) or int(fmt) > FORMAT_VERSION:
        raise FewrecError(
            with_fix(
                f"{path}: saved in format {fmt!r} by fewrec {saved}; fewrec {mine} reads format "
                f"{FORMAT_VERSION}",
                "load it with a fewrec as new as the one that saved it, or train it again",
            )
        )
    settings = meta.get("config")
    if isinstance(settings, dict):
        # (settings' former names are read as their new ones: ALS's show_progress)
        known = set(cls.Config.model_fields) | set(cls.Config.renamed) | set(cls.Config.retired)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise FewrecError(
                with_fix(
                    f"{path}: config.json has settings {unknown} that {cls.name} in fewrec {mine} "
                    f"does not know (saved by fewrec {saved})",
                    "load it with the fewrec that saved it, or train it again",
                )
            )
    if saved != mine and "versions" in meta:
        warnings.warn(
            f"{path} was saved by fewrec {saved}, this is {mine}: it loads, but train it again "
            "if its recommendations look different",
            UserWarning,
            stacklevel=user_stacklevel(),  # the caller of load_model or Recommender.load
        )


def _damaged(path: Path, part: str, exc: BaseException) -> FewrecError:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return FewrecError(
        f"{path}: the saved model is damaged or incomplete ({part}: {type(exc).__name__}: {detail}). "
        "Fix: save or train it again (`fewrec train ... --output DIR`)"
    )


def _configured(path: Path, cls: type[Recommender], meta: dict) -> Recommender:
    """The model of a saved config; settings this fewrec refuses (a check added since the model
    was saved) are one error naming them (it was "damaged or incomplete")."""
    try:
        config = meta["config"]
        if isinstance(config, dict):  # (a setting since taken out, which had no effect)
            config = {k: v for k, v in config.items() if k not in cls.Config.retired}
        token = LOADING_SAVED.set(True)  # (a check added since it was saved may let it pass)
        try:
            return cls(
                cls.Config(**config) if isinstance(config, dict) else cls.Config.model_validate(config)
            )
        finally:
            LOADING_SAVED.reset(token)
    except (ValidationError, ConfigError) as exc:
        # (a settings error's own problems, without its fix for a typo, as `__init__` reads it)
        problems = validation_problems(exc) if isinstance(exc, ValidationError) else exc.problems or str(exc)
        saved, mine = _saved_and_mine(meta)
        raise FewrecError(
            with_fix(
                f"{path}: its settings are not valid in fewrec {mine} (saved by fewrec {saved}): {problems}",
                "train it again with valid settings, or load it with the fewrec that saved it",
            )
        ) from None


def _load_parts(path: Path, cls: type[Recommender], meta: dict, files: dict[str, Any]) -> Recommender:
    def part(name: str, read):
        try:
            return read()
        except Exception as exc:
            setattr(exc, "part", name)  # noqa: B010 (read by `_load_opened`; Exception declares no such field)
            raise

    model = part("config.json", lambda: _configured(path, cls, meta))
    vocab = part("vocab.json", lambda: json.loads(_saved_file(files, "vocab.json").read()))

    def arrays_of():
        try:
            with np.load(_saved_file(files, "state.npz"), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as exc:  # numpy takes any file that is no .npy/.npz for a pickle
            if "pickle" not in str(exc):
                raise
            raise ValueError("not a NumPy .npz archive (the file is damaged or was replaced)") from None

    arrays = part("state.npz", arrays_of)
    try:
        users, items = part("vocab.json", lambda: (Vocabulary(vocab["users"]), Vocabulary(vocab["items"])))
    except FewrecError as exc:  # (an id twice: "Fix: make ids unique before building a vocabulary")
        raise _damaged(path, "vocab.json", DataError(split_fix(str(exc))[0])) from None
    indptr, indices = arrays["train.indptr"], arrays["train.indices"]
    if len(indptr) != len(users) + 1 or (len(indices) and int(indices.max()) >= len(items)):
        raise FewrecError(
            f"{path}: vocab.json ({len(users)} users, {len(items)} items) does not match state.npz; "
            "the saved model is damaged. Fix: save or train it again"
        )
    train = sp.csr_matrix((arrays["train.data"], indices, indptr), shape=(len(users), len(items)))

    def saved_frame(name: str, fields: str, what: str, n: int, unit: str) -> pd.DataFrame:
        """A saved Parquet table of a row per item or user; without one (a model without such
        fields, or users saved before side info was kept) a frame of ``n`` rows and no columns."""
        if name in files:
            frame = part(name, lambda: pd.read_parquet(_saved_file(files, name)))
        elif meta.get(fields):  # saved with them: without them titles, text or side info are gone
            frame = part(name, lambda: _missing_file(f"the model was saved with {what} {meta[fields]}"))
        else:
            return pd.DataFrame(index=pd.RangeIndex(n))  # a row each, as `Dataset` has
        if len(frame) != n:
            raise FewrecError(
                f"{path}: {name} has {len(frame)} rows for {n} {unit}; the saved model is damaged. "
                "Fix: save or train it again"
            )
        return frame

    item_info = saved_frame("items.parquet", "item_fields", "item fields", len(items), "items")
    if "genres" in item_info.columns:  # models saved before empty genres were kept as lists: None
        item_info["genres"] = item_info["genres"].map(lambda g: [] if g is None else list(g))
    user_info = saved_frame("users.parquet", "user_fields", "user side info", len(users), "users")
    left_out = None
    if "left_out.indptr" in arrays:
        lo_indices = arrays["left_out.indices"]
        ones = np.ones(len(lo_indices), np.float32)
        left_out = sp.csr_matrix((ones, lo_indices, arrays["left_out.indptr"]), shape=train.shape)
    model.state_ = FitState(
        users,
        items,
        train,
        float(meta["like_rating"]),
        item_info,
        meta.get("item_template"),
        user_info,
        left_out,
        bool(meta.get("counts", False)),  # (saved before 2026-12-07: no amounts flag)
        meta.get("genre_sep") or "|",  # (saved before 2026-12-07: none kept; "|" was used)
    )
    part(
        "state.npz",
        lambda: model._set_arrays({k[6:]: v for k, v in arrays.items() if k.startswith("model.")}),
    )
    return model


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("fewrec", "numpy", "scipy", "implicit", "torch"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[pkg] = metadata.version(pkg)
    return out


def _parquet_bytes(frame: pd.DataFrame, what: str, fix: str) -> bytes | None:
    """``frame`` (item fields, user side info) as Parquet bytes; None when it has no columns."""
    if not len(frame.columns):
        return None
    buf = io.BytesIO()
    try:
        frame.reset_index(drop=True).to_parquet(buf, index=False)
    except (ValueError, TypeError, ImportError) as exc:  # pyarrow's errors derive from these
        raise DataError(f"the {what} cannot be saved ({type(exc).__name__}: {exc})", fix=fix) from None
    return buf.getvalue()


def _missing_file(why: str) -> pd.DataFrame:
    raise FileNotFoundError(f"it is missing; {why}")
