"""Batch jobs on Ray: item-text embedding with Ray Data, recommendations for every user, and
the benchmark's per-model evaluation, fanned out over a local Ray or a cluster.

The same code runs on this machine and on a cluster: `RayConfig.address` (or
``$FEWREC_RAY_ADDRESS``) names the cluster (``"auto"`` for the one this node belongs to,
``"ray://head:10001"`` for Ray Client); without it a local Ray starts. Every node needs fewrec
installed (``pip install 'fewrec[ray,text]'``); ``$FEWREC_DATA_DIR`` and ``$FEWREC_NUM_THREADS``
are forwarded to the workers when set.

* `embed_parquet`: ``read_parquet -> map_batches(encoder actor pool) -> write_parquet``. Each
  actor holds one `TextEncoder` (model loaded once per actor, vectors cached in its SQLite file).
* `recommend_all`: top-k for every user, in chunks of users, one Ray task per chunk. The model
  travels as its saved directory (config.json, vocab.json, state.npz: no pickle of the model
  object) and is loaded once per worker process.
* `run_benchmark_ray`: one Ray task per model of `fewrec.eval.benchmark.run_benchmark`, on the same
  seeded split; the merged document equals the single-process one except for timings.

Results equal the single-process results exactly: the same chunks of users are scored by the
same code (``executor="local"`` runs them in this process), and a saved-then-loaded model scores
exactly like the original.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field

from fewrec.errors import (
    ArgumentError,
    ConfigError,
    DataError,
    FewrecError,
    Settings,
    is_whole_number,
    not_whole,
    user_stacklevel,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from fewrec.data.dataset import Dataset
    from fewrec.models.base import Recommender

INSTALL_FIX = "pip install 'fewrec[ray]'"
ADDRESS_ENV = "FEWREC_RAY_ADDRESS"
#: Environment variables passed on to Ray workers when set in the driver.
FORWARDED_ENV = ("FEWREC_DATA_DIR", "FEWREC_NUM_THREADS", "OPENBLAS_NUM_THREADS", "FEWREC_IMPORT")
# (FEWREC_IMPORT: the modules that register a user's own models; the workers said "unknown
# model" and told the user to set it, which they had)


class RayConfig(Settings):
    """Where and how to run Ray (validated, JSON round-trippable).

    Attributes:
        address: cluster address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None reads
            ``$FEWREC_RAY_ADDRESS``; None or ``"local"`` there starts a local Ray.
        num_cpus: CPUs of a local Ray (None: all); ignored on a cluster.
        object_store_memory: bytes of a local Ray's object store (None: Ray's default).
        namespace: Ray namespace of fewrec's jobs.
        include_dashboard: start the dashboard with a local Ray.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    settings_name = "Ray config"

    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)
    object_store_memory: int | None = Field(None, ge=78_643_200)
    namespace: str = "fewrec"
    include_dashboard: bool = False

    @classmethod
    def make(cls, **overrides: Any) -> RayConfig:
        """A config with overrides (the same as ``RayConfig(**overrides)``)."""
        return cls(**overrides)

    def resolved_address(self) -> str | None:
        """The cluster address to connect to, or None for a local Ray."""
        address = self.address if self.address is not None else os.environ.get(ADDRESS_ENV)
        address = (address or "").strip()
        return None if address in ("", "local") else address


def require_ray() -> Any:
    """The `ray` module, or a `FewrecError` that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data needs the `ray[data]` extra)
    except ImportError as exc:
        raise FewrecError(f"Ray is not installed ({exc}). Fix: {INSTALL_FIX}") from None
    return ray


def init_ray(config: RayConfig | None = None) -> bool:
    """Connect to Ray as ``config`` says, unless this process already is; True if it started now."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    cfg = config or RayConfig()
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    kwargs: dict[str, Any] = {
        "namespace": cfg.namespace,
        "runtime_env": {"env_vars": env} if env else None,
        "logging_level": logging.WARNING,  # ("Started a local Ray instance" on every command)
    }
    address = cfg.resolved_address()
    if address is None:
        kwargs.update(
            num_cpus=cfg.num_cpus,
            object_store_memory=cfg.object_store_memory,
            include_dashboard=cfg.include_dashboard,
        )
    fix = (
        f"start one there (`ray start --head` for 'auto'), or give another address (--address, the "
        f"config or ${ADDRESS_ENV}), or none to run on a local Ray"
    )
    if address is not None:
        _check_reachable(address, fix)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, ValueError) as exc:
        if address is None:
            raise FewrecError(f"could not start a local Ray ({exc})") from None
        where = f"the Ray cluster at {address!r}"
        raise FewrecError(f"could not connect to {where} ({exc}). Fix: {fix}.") from None
    return True


def _check_reachable(address: str, fix: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``host:port`` (or ``ray://host:port``) nothing listens on: Ray itself
    keeps retrying such an address for minutes."""
    import socket

    rest = address.removeprefix("ray://")
    if address == "auto" or "://" in rest:
        return
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise FewrecError(
            f"Ray address {address!r} is not 'auto', 'host:port' or 'ray://host:port'. Fix: {fix}."
        )
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise FewrecError(f"nothing answers at the Ray address {address!r} ({exc}). Fix: {fix}.") from None


def _check_cpus(cpus: float, what: str, config: RayConfig | None) -> None:
    """A task or actor that reserves more CPUs than a local Ray has would wait forever; on a
    cluster (which may add nodes on demand) it is a warning."""
    if isinstance(cpus, bool) or not isinstance(cpus, int | float) or not (cpus > 0 and math.isfinite(cpus)):
        raise ConfigError(f"{what} must be a positive number of CPUs (1, or 0.5 to share one), got {cpus!r}")
    total = cluster_cpus()
    if cpus <= total:
        return
    message = f"{what}={cpus:g} but the Ray cluster has {total} CPUs now"
    if (config or RayConfig()).resolved_address() is None:
        raise ConfigError(f"{message}; on a local Ray it would wait forever")
    warnings.warn(
        f"{message}; the job waits until nodes with more join", UserWarning, stacklevel=user_stacklevel()
    )


def _user_error(exc: BaseException) -> FewrecError | None:
    """The fewrec error a Ray task raised, unwrapped from Ray's task-error wrappers: the
    innermost (Ray's wrapper of a ConfigError is itself a ConfigError, whose text is the remote
    traceback)."""
    seen: set[int] = set()
    found = None
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, FewrecError):
            found = current
        seen.add(id(current))
        current = getattr(current, "cause", None) or current.__cause__
    return found


@contextlib.contextmanager
def _own_errors() -> Iterator[None]:
    """A fewrec error that Ray work in the block raised comes out as itself, one clear line,
    not inside Ray's task-error wrappers."""
    try:
        yield
    except Exception as exc:
        mine = _user_error(exc)
        if mine is None:
            raise
        raise mine from None


@contextlib.contextmanager
def ray_session(config: RayConfig | None = None) -> Iterator[Any]:
    """A block with Ray connected; shuts Ray down afterwards only if the block started it.
    Ray's and Ray Data's own INFO lines ("Started a local Ray instance", each dataset's plan,
    advice on settings a fewrec user cannot reach) are kept off the user's screen meanwhile;
    their warnings and errors stay."""
    require_ray()  # (importing Ray Data configures its logger: the levels are set after it)
    quiet = {name: logging.getLogger(name) for name in ("ray", "ray.data")}
    levels = {name: log.level for name, log in quiet.items()}
    handlers = [h for log in quiet.values() for h in log.handlers]  # (a filter of a logger
    # misses its children's records; its handlers' see them all)
    for log in quiet.values():
        log.setLevel(max(log.getEffectiveLevel(), logging.WARNING))
    for handler in handlers:
        handler.addFilter(_RAY_ADVICE)
    started = init_ray(config)
    try:
        yield require_ray()
    finally:
        if started:
            require_ray().shutdown()
        for name, log in quiet.items():
            log.setLevel(levels[name])
        for handler in handlers:
            handler.removeFilter(_RAY_ADVICE)


class _RayAdvice(logging.Filter):
    """Drops Ray's warnings that advise on what a fewrec user neither chose nor can set (a
    local Ray's token authentication, Ray Data's progress bars: `embed_parquet`'s ``progress``)."""

    ADVICE = ("Token authentication is enabled", "Progress bars disabled")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).lstrip().startswith(self.ADVICE)


_RAY_ADVICE = _RayAdvice()


def cluster_cpus() -> int:
    """CPUs of the connected Ray cluster (at least 1)."""
    return max(1, int(require_ray().cluster_resources().get("CPU", 1)))


# ------------------------------------------------------------------------------ text embedding
class EncodeBatch:
    """The Ray Data callable class behind `embed_parquet`: one `TextEncoder` per actor.

    Args:
        model: packaged encoder model.
        backend: the model's backend (see `fewrec.text.encoder.TextEncoder`); None: its own.
        cache_dir: the encoder's cache folder on the worker (None: its default).
        encoder_batch_size: texts per forward pass.
        threads: intra-op threads of the actor's encoder (its CPUs).
        text_column: input text column.
        vector_column: output column of fixed-size float32 lists.
    """

    def __init__(
        self,
        model: str,
        backend: str | None,
        cache_dir: str | None,
        encoder_batch_size: int,
        threads: int,
        text_column: str,
        vector_column: str,
    ):
        from fewrec.text.encoder import TextEncoder

        os.environ["FEWREC_NUM_THREADS"] = str(threads)  # read when the model loads, just below
        self.encoder = TextEncoder(
            model, backend=backend, cache_dir=cache_dir, batch_size=encoder_batch_size, show_progress=False
        ).load()
        self.text_column = text_column
        self.vector_column = vector_column

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        if self.text_column not in batch.column_names:
            raise DataError(
                f"the input has no text column {self.text_column!r} (columns: {batch.column_names})",
                fix="pass text_column= the column that holds the item texts",
            )
        texts = ["" if t is None else str(t) for t in batch.column(self.text_column).to_pylist()]
        vecs = self.encoder.encode(texts, progress=False)
        flat = pa.array(vecs.reshape(-1), type=pa.float32())
        column = pa.FixedSizeListArray.from_arrays(flat, self.encoder.dim)
        return batch.append_column(self.vector_column, column)


@dataclass
class EmbedReport:
    """What `embed_parquet` did.

    Attributes:
        rows: texts embedded.
        seconds: wall time of the Ray Data job (actor start-up and model loading included).
        actors: encoder actors in the pool.
        destination: the output folder of Parquet files.
        encoder: the encoder's name (model@backend).
    """

    rows: int
    seconds: float
    actors: int
    destination: str
    encoder: str

    @property
    def items_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("nan")


def _prepare_destination(destination: str, overwrite: bool, sources: str | Sequence[str] = ()) -> None:
    """The output folder, made ready before Ray starts: refused where it is a file, holds or is
    held by an input (``--overwrite`` deleted the input before reading it), is not empty
    without ``overwrite``, or cannot be made."""
    if "://" in destination:
        return  # remote filesystems: Ray writes there; we do not list or delete
    path = Path(destination)
    if path.exists() and not path.is_dir():  # (a raw NotADirectoryError from Ray)
        raise FewrecError(f"the output {path} is a file; give a folder for the Parquet files")
    out = path.resolve()
    for src in [sources] if isinstance(sources, str) else sources:
        if "://" in src:
            continue
        given = Path(src).resolve()
        if given == out or out in given.parents or given in out.parents:
            raise FewrecError(
                f"the output folder {path} holds or is held by the input {src}, which writing it "
                "would delete. Fix: give an output folder apart from the input"
            )
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise FewrecError(
                f"the output folder {path} is not empty. Fix: choose another folder, delete it, or "
                "pass overwrite=True (--overwrite in the CLI)."
            )
        # only an earlier output's Parquet files go (the whole folder went: a .git, notes)
        others = sorted(p.name for p in path.iterdir() if not (p.is_file() and p.suffix == ".parquet"))
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise FewrecError(
                f"the output folder {path} holds more than Parquet files ({shown}), which overwrite "
                "would not delete. Fix: choose another folder, or move them out"
            )
        for old in path.glob("*.parquet"):
            old.unlink()
    try:  # (a file above it, or a folder not writable, failed once the encoding was done)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".fewrec-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise FewrecError(
            f"cannot write the output folder {path} ({exc.strerror or exc}). Fix: give a folder "
            "you can write to"
        ) from None


def embed_parquet(
    source: str | Path | Sequence[str | Path],
    destination: str | Path,
    *,
    text_column: str = "text",
    vector_column: str = "embedding",
    model: str = "all-MiniLM-L6-v2",
    backend: str | None = None,
    actors: int | None = None,
    cpus_per_actor: int = 1,
    batch_size: int = 512,
    encoder_batch_size: int = 64,
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    ray_config: RayConfig | None = None,
    progress: bool = False,
) -> EmbedReport:
    """Embed the text column of Parquet files with an actor pool of encoders (Ray Data).

    Reads ``source`` (files, folders or URIs that Ray's ``read_parquet`` takes), adds a column of
    L2-normalised float32 vectors (a fixed-size list, readable by any Parquet reader) and writes
    the rows, every input column kept, to the folder ``destination``. Rows come out in the order
    actors finish them, not in input order: keep an id column (`read_embeddings` reorders by it).
    Missing texts (nulls) are embedded as the empty text.

    Args:
        source: input Parquet file(s) or folder(s).
        destination: output folder (must be empty unless ``overwrite``).
        text_column: input column of texts.
        vector_column: name of the added vector column.
        model: packaged encoder model: ``"all-MiniLM-L6-v2"`` or ``"multilingual"``.
        backend: encoder backend (None: the model's own; MiniLM also runs on ``"torch-bf16"`` and
            ``"onnx"``).
        actors: encoder actors; None: the cluster's CPUs divided by ``cpus_per_actor``.
        cpus_per_actor: CPUs (and encoder threads) of each actor.
        batch_size: rows per Ray Data batch sent to an actor.
        encoder_batch_size: texts per forward pass inside an actor.
        cache_dir: encoder cache folder on the workers (None: each node's default).
        overwrite: replace the Parquet files of an earlier output in ``destination`` (a folder
            holding other files is refused).
        ray_config: where to run (None: ``$FEWREC_RAY_ADDRESS`` or a local Ray).
        progress: Ray Data progress bars.

    Returns:
        An `EmbedReport` (rows, seconds, throughput).
    """
    from fewrec.text.encoder import TextEncoder

    if cpus_per_actor < 1 or batch_size < 1 or (actors is not None and actors < 1):
        raise ConfigError("actors, cpus_per_actor and batch_size must be >= 1")
    name = TextEncoder(model, backend=backend, cache_dir=cache_dir or tempfile.gettempdir()).name
    paths = [str(p) for p in source] if isinstance(source, list | tuple) else str(source)
    destination = str(destination)
    _check_text_column(paths, text_column, vector_column)
    made = "://" not in destination and not Path(destination).exists()
    _prepare_destination(destination, overwrite, paths)
    try:
        with ray_session(ray_config) as ray:
            _check_cpus(cpus_per_actor, "cpus_per_actor", ray_config)
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = progress
            ctx.enable_operator_progress_bars = progress
            total = cluster_cpus()
            n_actors = actors or max(1, total // cpus_per_actor)
            # Ray Data lists the input files in a task that reserves a whole CPU; an actor pool that
            # reserved every CPU would leave it waiting forever. So the pool reserves at most all CPUs
            # but one (the actors still run `cpus_per_actor` encoder threads each).
            reserve = min(float(cpus_per_actor), max(0.01, (total - 1) / n_actors))
            start = time.perf_counter()
            # Reading and writing Parquet is light next to encoding: those tasks reserve no CPU, so an
            # actor pool that takes every CPU cannot starve them (a deadlock otherwise).
            ds = ray.data.read_parquet(paths, num_cpus=0)
            rows = ds.count()
            if not rows:  # ("wrote" a folder that was never made)
                raise DataError(f"the input {paths} has no rows to embed")
            # A Parquet file with one row group is one block, which one actor would encode alone:
            # split the stream into blocks of `batch_size` rows, or fewer, so every actor gets work
            # (300 rows in blocks of 512 went to one actor while the others loaded the model)
            ds = ds.repartition(target_num_rows_per_block=max(1, min(batch_size, math.ceil(rows / n_actors))))
            ds = ds.map_batches(
                EncodeBatch,
                batch_format="pyarrow",
                batch_size=batch_size,
                compute=ray.data.ActorPoolStrategy(size=n_actors),
                num_cpus=reserve,
                udf_modifying_row_count=False,
                fn_constructor_kwargs={
                    "model": model,
                    "backend": backend,
                    "cache_dir": None if cache_dir is None else str(cache_dir),
                    "encoder_batch_size": encoder_batch_size,
                    "threads": cpus_per_actor,
                    "text_column": text_column,
                    "vector_column": vector_column,
                },
            )
            with _own_errors():
                ds.write_parquet(destination, ray_remote_args={"num_cpus": 0})
            seconds = time.perf_counter() - start
        return EmbedReport(rows, seconds, n_actors, destination, name)
    except BaseException:
        out = Path(destination)
        if made and out.is_dir() and not any(out.iterdir()):  # (a failed run left it, empty)
            out.rmdir()
        raise


def _check_text_column(paths: str | list[str], text_column: str, vector_column: str = "embedding") -> None:
    """Local Parquet input that is missing, not Parquet, without ``text_column``, already with
    a ``vector_column`` (an earlier output: Ray's 193-line "exists 2 times in schema"), or
    without rows: one clear error before Ray starts (remote URIs are left to Ray)."""
    import pyarrow.dataset as pds

    local = [p for p in ([paths] if isinstance(paths, str) else paths) if "://" not in p]
    if not local:
        return
    for p in local:
        if not Path(p).exists():
            raise DataError(f"no such file or folder: {p}")
    try:  # a list of datasets: pyarrow takes folders only one at a time
        datasets = [pds.dataset(p, format="parquet") for p in local]
        # each file's own schema: a folder's is its first file's, and a file without the column
        # was embedded as empty texts
        schemas = [(f.path, f.physical_schema) for d in datasets for f in d.get_fragments()]
    except Exception as exc:  # pyarrow's errors for non-Parquet input vary by version
        raise DataError(f"cannot read {local} as Parquet ({exc})", fix="give Parquet files") from None
    for where, schema in schemas:
        if text_column not in schema.names:
            raise DataError(
                f"{where} has no text column {text_column!r}; its columns are {schema.names}",
                fix="--text-column NAME (text_column= in Python)",
            )
        if vector_column in schema.names:
            raise DataError(
                f"{where} has a column {vector_column!r} already (an earlier embed's output?)",
                fix="embed the items' own file, or drop that column first",
            )
    every = [paths] if isinstance(paths, str) else paths
    if len(local) == len(every) and not sum(d.count_rows() for d in datasets):  # (files' metadata)
        raise DataError(f"the input {local} has no rows to embed")


def read_embeddings(
    path: str | Path,
    *,
    id_column: str = "item",
    vector_column: str = "embedding",
    order: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Ids and vectors from the Parquet files that `embed_parquet` wrote.

    Ray Data writes blocks as actors finish them, so the file order is not the input order:
    pass ``order`` (the ids in the order wanted) to get the rows in that order.
    """
    import pyarrow.dataset as pds

    table = pds.dataset(str(path), format="parquet").to_table(columns=[id_column, vector_column])
    column = table.column(vector_column).combine_chunks()
    dim = column.type.list_size
    vectors = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    vectors = vectors.reshape(table.num_rows, dim)
    ids = [str(i) for i in table.column(id_column).to_pylist()]
    if order is None:
        return ids, vectors
    position = {key: i for i, key in enumerate(ids)}
    if len(position) != len(ids):
        raise DataError(f"{path}: the id column {id_column!r} has duplicates; cannot reorder by id")
    wanted = [str(i) for i in order]
    missing = [key for key in wanted if key not in position]
    if missing:
        raise DataError(f"{path}: {len(missing)} ids are not in the embeddings, e.g. {missing[:3]}")
    return wanted, vectors[[position[key] for key in wanted]]


# ---------------------------------------------------------------------- shipping a model to workers
def pack_model(model: Recommender) -> dict[str, bytes]:
    """A fitted model as the files of its saved directory (``relative path -> bytes``)."""
    with tempfile.TemporaryDirectory(prefix="fewrec-pack-") as tmp:
        root = Path(tmp) / "model"
        model.save(root)
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _digest(packed: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(packed):
        h.update(name.encode())
        h.update(hashlib.sha256(packed[name]).digest())
    return h.hexdigest()


def unpack_model(packed: dict[str, bytes]) -> Recommender:
    """The model from `pack_model`'s files (loaded with `load_model`: nothing is unpickled)."""
    from fewrec.models.saving import load_model

    with tempfile.TemporaryDirectory(prefix="fewrec-unpack-") as tmp:
        root = Path(tmp)
        for name, blob in packed.items():
            target = (root / name).resolve()
            if root.resolve() not in target.parents:
                raise FewrecError(f"packed model file {name!r} points outside its folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blob)
        return load_model(root)


_WORKER_MODELS: dict[str, Recommender] = {}


def _worker_model(digest: str, packed: dict[str, bytes]) -> Recommender:
    """The unpacked model, loaded once per worker process (a few most recent kept)."""
    if digest not in _WORKER_MODELS:
        while len(_WORKER_MODELS) >= 2:
            _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
        _WORKER_MODELS[digest] = unpack_model(packed)
    return _WORKER_MODELS[digest]


# -------------------------------------------------------------------- recommendations for all users
def recommend_chunk(
    model: Recommender, users: Sequence[str], k: int, exclude_seen: bool = True
) -> pd.DataFrame:
    """Top-``k`` for each user id: a frame with columns user, rank (1..k), item, score."""
    from fewrec.models.query import Query

    frames = model.recommend_many([Query(user=u) for u in users], k, exclude_seen=exclude_seen)
    parts = [
        pd.DataFrame({"user": u, "rank": np.arange(1, len(f) + 1), "item": f["item"], "score": f["score"]})
        for u, f in zip(users, frames, strict=True)
    ]
    if not parts:  # (typed as a list's columns: they were all float64)
        return pd.DataFrame(
            {
                "user": pd.Series([], dtype="str"),
                "rank": pd.Series([], dtype=np.int64),
                "item": pd.Series([], dtype="str"),
                "score": pd.Series([], dtype=np.float64),
            }
        )
    return pd.concat(parts, ignore_index=True)


def _recommend_task(
    digest: str, packed: dict[str, bytes], users: list[str], k: int, exclude_seen: bool
) -> pd.DataFrame:
    return recommend_chunk(_worker_model(digest, packed), users, k, exclude_seen)


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[lo : lo + size]) for lo in range(0, len(items), size)]


def recommend_all(
    model: Recommender,
    k: int = 10,
    *,
    users: Sequence[str | int] | None = None,
    exclude_seen: bool = True,
    chunk_size: int = 256,
    executor: Literal["ray", "local"] = "ray",
    cpus_per_task: float = 1,
    ray_config: RayConfig | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """Top-``k`` recommendations for every user (or ``users``), one Ray task per chunk of users.

    Args:
        model: a fitted recommender.
        k: recommendations per user.
        users: external user ids (default: every user the model knows).
        exclude_seen: leave out items in each user's training history.
        chunk_size: users per task (and per `recommend_many` call).
        executor: ``"ray"``, or ``"local"`` to score the same chunks in this process.
        cpus_per_task: CPUs each Ray task reserves.
        ray_config: where to run (None: ``$FEWREC_RAY_ADDRESS`` or a local Ray).
        progress: a progress bar over chunks.

    Returns:
        A frame with columns user, rank (1..k), item, score; users in the given order.
    """
    from tqdm.auto import tqdm

    from fewrec.models.base import Recommender

    if not isinstance(model, Recommender):
        raise ArgumentError(
            f"recommend_all needs a fitted model, got {type(model).__name__}",
            fix="recommend_all(load_model(path), ...)",
        )
    for name, value in (("k", k), ("chunk_size", chunk_size)):
        if not is_whole_number(value):
            raise ArgumentError(not_whole(name, value))
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if users is not None and (isinstance(users, str | bytes) or not isinstance(users, Iterable)):
        raise ArgumentError(f"users must be a list of user ids, got {users!r}", fix="users=['196']")
    if executor not in ("ray", "local"):
        raise ConfigError(f"executor must be 'ray' or 'local', got {executor!r}")
    if executor == "ray" and type(model).__module__ == "__main__":  # (the workers said "unknown model")
        raise ConfigError(
            f"{model.name} is defined in __main__ (a script or a notebook), which Ray's workers cannot "
            "import. Fix: define it in a module, and name it in $FEWREC_IMPORT"
        )
    st = model.fitted
    # (a user given twice got two lists)
    ids = st.users.ids if users is None else list(dict.fromkeys(str(u) for u in users))
    unknown = [u for u in ids if u not in st.users]
    if unknown:
        raise DataError(
            f"{len(unknown)} user ids unknown to the model, e.g. {unknown[:3]}",
            fix="recommend for known users, or use recommend_many with history-only queries for new ones",
        )
    chunks = _chunks(ids, chunk_size)
    results: list[pd.DataFrame | None] = [None] * len(chunks)
    with contextlib.ExitStack() as stack:
        # Ray first: without it (or its cluster) the error comes before a progress bar is drawn
        ray = stack.enter_context(ray_session(ray_config)) if executor == "ray" else None
        bar = stack.enter_context(
            tqdm(total=len(ids), desc="recommending", unit="user", disable=not progress, leave=False)
        )
        if ray is None:
            for i, chunk in enumerate(chunks):
                results[i] = recommend_chunk(model, chunk, k, exclude_seen)
                bar.update(len(chunk))
        else:
            _check_cpus(cpus_per_task, "cpus_per_task", ray_config)
            packed = pack_model(model)
            ref = ray.put(packed)
            task = ray.remote(num_cpus=cpus_per_task)(_recommend_task)
            pending = {
                task.remote(_digest(packed), ref, chunk, k, exclude_seen): i for i, chunk in enumerate(chunks)
            }
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(done[0])
                with _own_errors():
                    results[i] = ray.get(done[0])
                bar.update(len(chunks[i]))
    frames = [r for r in results if r is not None]
    if not frames:
        return recommend_chunk(model, [], k, exclude_seen)
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------- benchmark evaluation fan-out
def is_timing_key(key: str) -> bool:
    """Whether a benchmark metric is a timing (differs run to run by nature)."""
    leaf = key.rsplit("/", 1)[-1]
    return leaf.endswith("seconds") or leaf.startswith("adapt_ms")


def strip_timings(result: dict[str, Any]) -> dict[str, Any]:
    """A benchmark document without timings, machine and executor (what must match exactly)."""
    out = {k: v for k, v in result.items() if k not in ("machine", "executor")}
    out["models"] = {
        m: {key: v for key, v in row.items() if not is_timing_key(key)} for m, row in result["models"].items()
    }
    return out


def _own_configs(configs: dict[str, dict[str, Any]], model: str) -> dict[str, dict[str, Any]]:
    """The config overrides of one model (by its name, or its base name for ``NAME@variant``)."""
    return {k: v for k, v in configs.items() if k in (model, model.partition("@")[0])}


def _benchmark_task(protocol: str, model: str, data: Dataset, options: dict[str, Any]) -> dict[str, Any]:
    from fewrec.eval.benchmark import run_benchmark

    return run_benchmark(protocol, [model], dataset=data, progress=False, **options)


def run_benchmark_ray(
    protocol: str,
    models: Sequence[str] | None = None,
    *,
    dataset: str | Dataset = "movielens-100k",
    seed: int = 0,
    shots: Sequence[int] | None = None,
    reveal: str = "earliest",
    configs: dict[str, dict[str, Any]] | None = None,
    baseline: str | None = "popularity",
    cpus_per_model: float = 1,
    ray_config: RayConfig | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """`run_benchmark` with each model trained and evaluated in its own Ray task.

    Every task builds the same seeded split from the same dataset (sent once through Ray's
    object store), so the document equals ``run_benchmark(...)``'s except for timings (see
    `strip_timings`); it gains an ``"executor"`` entry.

    Args:
        protocol: ``warm``, ``cold-user``, ``cold-item`` or ``tallrec``.
        models: model names (default: the protocol's default list).
        dataset: dataset name or `Dataset`.
        seed: split seed.
        shots: K values (cold-user, tallrec).
        reveal: cold-user reveal order.
        configs: per-model config overrides.
        baseline: the model whose headline metric the others' gains are measured against.
        cpus_per_model: CPUs each model's task reserves.
        ray_config: where to run (None: ``$FEWREC_RAY_ADDRESS`` or a local Ray).
        progress: a progress bar over models.
    """
    from rich.console import Console
    from rich.progress import Progress

    from fewrec.data.movielens import load_dataset
    from fewrec.eval.benchmark import add_gains, check_request, fit_to_data

    names = check_request(protocol, models, configs, shots, reveal, baseline)
    data = load_dataset(dataset) if isinstance(dataset, str) else dataset
    names, left_out = fit_to_data(names, data, configs or {}, models is None)
    # each task holds one model, and its settings: the gains are added once, to the merged document
    options = {"seed": seed, "shots": shots, "reveal": reveal, "baseline": None}
    configs = configs or {}
    docs: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    with (
        ray_session(ray_config) as ray,
        Progress(disable=not progress, transient=True, console=Console(stderr=True)) as bar,
    ):
        _check_cpus(cpus_per_model, "cpus_per_model", ray_config)
        job = bar.add_task(f"benchmark {protocol} on Ray", total=len(names))
        data_ref = ray.put(data)
        task = ray.remote(num_cpus=cpus_per_model)(_benchmark_task)
        pending = {
            task.remote(protocol, m, data_ref, {**options, "configs": _own_configs(configs, m)}): m
            for m in names
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            name = pending.pop(done[0])
            with _own_errors():
                docs[name] = ray.get(done[0])
            bar.update(job, advance=1, description=f"{protocol}: {name} done")
        address = ray.get_runtime_context().gcs_address
    first = {k: v for k, v in docs[names[0]].items() if k != "configs"}  # that one model's
    if configs:
        first["configs"] = configs
    if left_out:
        first["settings"] = {**first["settings"], "models_left_out": left_out}
    merged = {
        **first,
        "models": {m: docs[m]["models"][m] for m in names},
        "executor": {
            "kind": "ray",
            "address": address,
            "tasks": len(names),
            "cpus_per_model": cpus_per_model,
            "wall_seconds": time.perf_counter() - start,
        },
    }
    return add_gains(merged, baseline)
