"""The `fewrec` command line: data, train, recommend, benchmark, merge-seeds, demo, serve, scale, models."""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import signal
import sys
import warnings
from contextlib import nullcontext, redirect_stdout, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NotRequired, TypedDict

import typer
from rich.console import Console
from rich.markup import escape

from fewrec.errors import ConfigError, FewrecError, NoteFormatter, missing_extra, with_fix

if TYPE_CHECKING:
    from fewrec.data.dataset import Dataset
    from fewrec.models.base import Recommender

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, rich_markup_mode=None)
data_app = typer.Typer(no_args_is_help=True, help="Fetch and inspect datasets.", rich_markup_mode=None)
app.add_typer(data_app, name="data")


def _print_version(value: bool) -> None:
    if value:
        from fewrec import __version__

        console.print(f"fewrec {__version__}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


def _console(stderr: bool = False) -> Console:
    """A console that wraps at the terminal's width on a terminal, and elsewhere (a log, a
    pipe) leaves each message and markdown-table row on one line and draws tables up to
    `PIPE_WIDTH` wide (``$COLUMNS`` if set): rich would wrap them all at 80 columns."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    width = None if tty or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(stderr=stderr, soft_wrap=not tty, width=width)


#: Width of the tables printed to a log or a pipe (recommendations with their reasons).
PIPE_WIDTH = 160


console = _console()
err = _console(stderr=True)


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore", message=".*OpenBLAS.*")
    warnings.showwarning = _show_warning
    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:  # (fewrec's lines as notes, as the CLI's own)
        handler.setFormatter(NoteFormatter())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one line, like the notes (Python's own shows the file and source line)."""
    err.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False)


def _parse_set(values: list[str] | None) -> dict[str, object]:
    """``key=value`` pairs; values are parsed as JSON when they can be (numbers, bools). A dotted
    key sets a nested setting: ``lora.max_epochs=1 lora.lr=0.01`` give
    ``{"lora": {"max_epochs": 1, "lr": 0.01}}``, as ``lora={"max_epochs": 1, "lr": 0.01}`` does
    (a JSON object and dotted keys under it merge; the nested settings not given keep their
    defaults either way)."""
    out: dict[str, object] = {}
    for item in values or []:
        if "=" not in item:
            raise FewrecError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        path = [part.strip() for part in key.split(".")]
        if not all(path):
            raise FewrecError(
                f"--set expects key=value, got {item!r}. Fix: name the setting, e.g. --set lr=0.01, "
                "or a nested one with dots, e.g. --set lora.lr=0.01"
            )
        value = _json_or_text(raw)
        node = out
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                given = ".".join(path[: depth + 1])
                raise FewrecError(
                    f"--set {item!r} sets a setting inside {given}, which another --set gave the "
                    f"value {child!r}. Fix: give {given} either as one value or by its nested settings"
                )
            node = child
        _merge_setting(node, path[-1], value, item)
    return out


def _merge_setting(node: dict[str, object], key: str, value: object, item: str = "") -> None:
    """``node[key] = value``, except that a JSON object merges into nested settings set before;
    a plain value over nested settings set before is an error, as the other order is (the
    nested ones had been dropped without a word)."""
    old = node.get(key)
    if isinstance(old, dict) and isinstance(value, dict):
        for k, v in value.items():
            _merge_setting(old, k, v, item)
    elif isinstance(old, dict) and old:
        raise FewrecError(
            f"--set {item!r} gives {key} one value, but another --set gave it nested settings "
            f"{old!r}. Fix: give {key} either as one value or by its nested settings"
        )
    elif key in node and not (isinstance(old, dict) and not old):
        raise FewrecError(
            f"--set {item!r} gives {key} a second value (the first: {old!r}). Fix: give it once"
        )
    else:
        node[key] = value


def _comma_lists(model: str, settings: dict[str, object]) -> dict[str, object]:
    """A list setting given as comma-separated text as that list (``--set shots=1,3``,
    ``segment_by=age,gender``): it was refused as "not a valid tuple", or read as one field
    named 'age,gender'. Text settings keep their commas."""
    from fewrec.models import MODELS
    from fewrec.models.base import _import_builtin_models

    _import_builtin_models()
    fields = MODELS[model].Config.model_fields if model in MODELS else {}
    out = dict(settings)
    for key, value in settings.items():
        if isinstance(value, str) and "," in value and key in fields and _takes_list(fields[key].annotation):
            # ("5," had a last part of '' that was no integer)
            out[key] = [_json_or_text(part.strip()) for part in value.split(",") if part.strip()]
    return out


def _takes_list(annotation: object) -> bool:
    """Whether a settings field's type is a tuple or list (or a union with one)."""
    import types
    import typing

    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        return True
    return origin in (typing.Union, types.UnionType) and any(
        _takes_list(a) for a in typing.get_args(annotation)
    )


def _json_or_text(raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _parse_info(values: list[str]) -> dict[str, object]:
    """``field=value`` pairs of side info: a plain number is a number ("31", "2.5"), anything
    else text as written ("02139" keeps its zero, "true" stays the text of a CSV cell)."""
    out: dict[str, object] = {}
    for item in values:
        key, equals, raw = item.partition("=")
        if not key.strip() or not equals:
            raise FewrecError(f"--info expects field=value, e.g. --info age=31; got {item!r}")
        number = re.fullmatch(r"[+-]?(0|[1-9]\d*)(\.\d+)?", raw.strip())
        if key.strip() in out:  # (the last had won without a word)
            raise FewrecError(
                f"--info {key.strip()} given twice ({out[key.strip()]} and {raw}). Fix: give it once"
            )
        out[key.strip()] = (float(raw) if "." in raw else int(raw)) if number else raw
    return out


# Options of every command that can read your own data (train, benchmark, data info).
RayAddressOpt = Annotated[
    str | None,
    typer.Option(help="Ray cluster address (default: $FEWREC_RAY_ADDRESS, else a local Ray)"),
]
InteractionsOpt = Annotated[
    Path | None, typer.Option(help="CSV/Parquet of interactions (default: MovieLens-100K)")
]
ItemsOpt = Annotated[Path | None, typer.Option(help="CSV/Parquet of item text")]
UsersOpt = Annotated[Path | None, typer.Option(help="CSV/Parquet of user side info")]
UserColOpt = Annotated[str, typer.Option(help="user id column")]
ItemColOpt = Annotated[str, typer.Option(help="item id column")]
RatingColOpt = Annotated[str | None, typer.Option(help="rating column ('': implicit data, every row a like)")]
TimeColOpt = Annotated[  # (--timestamp-col too, as Python's Columns(timestamp=...): it was no option)
    str | None, typer.Option("--time-col", "--timestamp-col", help="timestamp column ('': the rows' order)")
]
ItemIdColOpt = Annotated[
    str | None, typer.Option(help="id column of the --items table (default: --item-col)")
]
UserIdColOpt = Annotated[
    str | None, typer.Option(help="id column of the --users table (default: --user-col)")
]
GenresColOpt = Annotated[str | None, typer.Option(help="genre column of the --items table ('': none)")]
TitleColOpt = Annotated[str | None, typer.Option(help="title column of the --items table, e.g. name")]
GenreSepOpt = Annotated[str, typer.Option(help="separator of genres given as one string")]
CodeColOpt = Annotated[
    list[str] | None,
    typer.Option(
        metavar="<str>",
        help="a --users column of numbers that are codes (zip, group): each value its own level, "
        "not by decade (once per column)",
    ),
]
EncodingOpt = Annotated[str, typer.Option(help="text encoding of CSV files")]
SepOpt = Annotated[
    str | None,
    typer.Option(
        help="CSV field separator of every file, e.g. ';' or '\\t' (default: each file's, from its header)"
    ),
]
RepeatsOpt = Annotated[
    str,
    typer.Option(
        help="what repeated rows of a (user, item) make: last (the latest), sum (their ratings "
        "added up: plays, purchases) or count (their number: a log of one row per play)"
    ),
]
ItemTemplateOpt = Annotated[
    str | None,
    typer.Option(
        help="item text from the --items fields, e.g. '{title}. {genres}. {plot}' "
        "(default: every text field, joined)"
    ),
]


def _data_options(values: dict) -> dict:
    """The data options among a command's arguments (``locals()``), for `_own_data`."""
    return {name: values[name] for name in inspect.signature(_own_data).parameters}


def _own_data(
    interactions: Path | None,
    items: Path | None,
    users: Path | None,
    *,
    user_col: str,
    item_col: str,
    rating_col: str | None,
    time_col: str | None,
    item_id_col: str | None,
    user_id_col: str | None,
    genres_col: str | None,
    genre_sep: str,
    title_col: str | None,
    code_col: list[str] | None,
    encoding: str,
    sep: str | None,
    item_template: str | None,
    repeats: str,
) -> Dataset | None:
    """The user's own dataset from the data options, or None without ``--interactions``."""
    from fewrec.data.loaders import Columns, load_interactions

    if interactions is None:
        own = (items, users, item_template, code_col or None)
        if any(x is not None for x in own) or repeats != "last":
            raise FewrecError(
                "--items, --users, --item-template, --code-col and --repeats describe your own "
                "interactions: give --interactions too (without it the command uses MovieLens-100K)"
            )
        return None
    _check_encoding(encoding)
    if code_col and users is None:  # (it was ignored without a word)
        raise FewrecError("--code-col names columns of the --users table. Fix: give --users too")
    cols = Columns(
        user=user_col,
        item=item_col,
        rating=rating_col,
        timestamp=time_col,
        item_id=item_id_col or None,
        user_id=user_id_col or None,
        genres=genres_col,
        genre_sep=genre_sep,
        title=title_col,
        codes=tuple(code_col or ()),
    )
    if sep is not None:
        sep = {"\\t": "\t", "tab": "\t"}.get(sep, sep)
    return load_interactions(
        interactions,
        items,
        users,
        columns=cols,
        encoding=encoding,
        sep=sep,
        name=interactions.stem,
        item_template=item_template or None,  # '': the default text, as '' means none elsewhere
        repeats=repeats,
    )


@data_app.command("fetch")
def data_fetch(name: Annotated[str, typer.Argument(help="dataset name", metavar="NAME")] = "movielens-100k"):
    """Download a built-in dataset once, verify it and cache it."""
    from fewrec.data.movielens import DATASETS, fetch

    if name not in DATASETS:  # (as `data info` and --dataset say it)
        raise FewrecError(with_fix(f"unknown dataset {name!r}", f"use one of {sorted(DATASETS)}"))
    path = fetch(name)
    err.print(f"[green]ok[/green] {escape(name)} cached at {escape(str(path))}")


@data_app.command("info")
def data_info(
    name: Annotated[str, typer.Argument(help="dataset name", metavar="NAME")] = "movielens-100k",
    interactions: InteractionsOpt = None,
    items: ItemsOpt = None,
    users: UsersOpt = None,
    user_col: UserColOpt = "user_id",
    item_col: ItemColOpt = "item_id",
    rating_col: RatingColOpt = "rating",
    time_col: TimeColOpt = "timestamp",
    item_id_col: ItemIdColOpt = None,
    user_id_col: UserIdColOpt = None,
    genres_col: GenresColOpt = "genres",
    genre_sep: GenreSepOpt = "|",
    title_col: TitleColOpt = "title",
    code_col: CodeColOpt = None,
    encoding: EncodingOpt = "utf-8",
    sep: SepOpt = None,
    repeats: RepeatsOpt = "last",
    item_template: ItemTemplateOpt = None,
):
    """A dataset's size and its first items' text.

    A built-in dataset, or your own with --interactions (and --items)."""
    from fewrec.data.movielens import load_dataset

    data = _own_data(**_data_options(locals()))
    if data is not None and name != "movielens-100k":
        raise FewrecError("give a dataset name or --interactions, not both")
    data = load_dataset(name) if data is None else data
    console.print(repr(data), markup=False)
    lo, hi = data.rating_range
    if lo < hi:  # (a typo of 50 among 1-5 stars shows here)
        console.print(f"ratings {lo:g} to {hi:g}", markup=False, highlight=False)
    for text in data.item_texts()[:5]:  # (a 1 MB description was printed whole)
        if len(text) > 200:
            text = f"{text[:200]}... ({len(text):,} characters)"
        console.print(text, markup=False, highlight=False)


@app.command("models")
def list_models(
    name: Annotated[
        str | None,
        typer.Argument(help="one model: each of its settings, its default and what it does", metavar="NAME"),
    ] = None,
):
    """List the available recommenders and their default configs."""
    from pydantic_core import to_jsonable_python

    from fewrec.eval.benchmark import PRESETS
    from fewrec.models import MODELS
    from fewrec.models.base import _import_builtin_models, model_class

    _import_builtin_models()  # and those $FEWREC_IMPORT names

    if name is not None:
        if name in PRESETS:  # (it was "unknown model", though benchmark --models takes it)
            base, cfg = PRESETS[name]
            err.print(
                f"{name}: a benchmark preset, {base} with {json.dumps(cfg)} (train it as: fewrec train "
                f"{base} " + " ".join(f"--set '{k}={json.dumps(v)}'" for k, v in cfg.items()) + ")",
                highlight=False,
                markup=False,
            )
            name = base
        cls = model_class(name)
        about = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())  # its first paragraph
        head = f"[bold]{escape(name)}[/bold]" + (f": {escape(about)}" if about else "")
        console.print(head, highlight=False)
        try:
            defaults = cls().config.model_dump(mode="json")  # (a preset's own defaults)
        except ConfigError:  # a setting of no default (a model of one's own): said per setting
            fields = cls.Config.model_fields.items()
            given = {
                f: info.get_default(call_default_factory=True) for f, info in fields if not info.is_required()
            }
            defaults = to_jsonable_python(given)
        for field, info in cls.Config.model_fields.items():
            about = " ".join((info.description or "").split())
            value = json.dumps(defaults[field]) if field in defaults else "(no default: give it with --set)"
            console.print(f"  [bold]{escape(field)}[/bold] = {escape(value)}")
            if about:
                console.print(f"      {escape(about)}", highlight=False)
        return
    for model, cls in sorted(MODELS.items()):
        # a preset's own defaults (fewshot-nometa: no meta-learning), as JSON, as --set reads them
        try:
            config = json.dumps(cls().config.model_dump(mode="json"))
        except ConfigError as exc:  # (one config of one's own without defaults stopped the list)
            needed = [f for f, info in cls.Config.model_fields.items() if info.is_required()]
            # on stderr: stdout's lines stay `name: {json}`
            why = f"needs settings of no default: {', '.join(needed)} (give them with --set)"
            err.print(f"{model}: {why if needed else exc}", highlight=False, markup=False)
            continue
        console.print(f"[bold]{escape(model)}[/bold]: {escape(config)}")
    # (on stderr: stdout is one `name: {json}` line per model, for a script to read)
    err.print("(fewrec models NAME: each setting of one model and what it does)", highlight=False)
    # (they were named only by the error for an unknown model)
    presets = "; ".join(f"{p} = {base} {json.dumps(cfg)}" for p, (base, cfg) in PRESETS.items())
    err.print(f"(benchmark --models also takes presets: {presets})", highlight=False, markup=False)


class _BenchmarkOptions(TypedDict):
    """What `benchmark` passes on to `run_benchmark`, `run_benchmark_ray` and `run_seeds`."""

    dataset: str | Dataset
    seed: NotRequired[int]  # (`run_seeds` takes seeds instead)
    shots: list[int] | None
    reveal: str
    configs: dict[str, dict[str, object]]
    progress: bool


@app.command(
    "benchmark",
    epilog="Example: fewrec benchmark --protocol warm --models popularity,itemknn,ease "
    "--output results/warm.json",
)
def benchmark(
    protocol: Annotated[str, typer.Option(help="warm | cold-user | cold-item | tallrec")] = "warm",
    models: Annotated[
        str | None, typer.Option(help="comma-separated model names (default: every model of the protocol)")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            help="write the JSON result here, and its table beside it (the same name, .md); both are replaced"
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option(help="split seed (models keep their own seed, 0 unless --set MODEL.seed=N)")
    ] = 0,
    seeds: Annotated[
        str | None,
        typer.Option(help="comma-separated split seeds: one run each, then mean ± 95% CI over them"),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            help="the model the headline gains are measured against (default popularity, when it is "
            "among the models; 'none': no gains)"
        ),
    ] = None,
    shots: Annotated[str | None, typer.Option(help="comma-separated K values")] = None,
    reveal: Annotated[str, typer.Option(help="cold-user: earliest | random K revealed")] = "earliest",
    dataset: Annotated[str, typer.Option(help="built-in dataset name")] = "movielens-100k",
    interactions: InteractionsOpt = None,
    items: ItemsOpt = None,
    users: UsersOpt = None,
    user_col: UserColOpt = "user_id",
    item_col: ItemColOpt = "item_id",
    rating_col: RatingColOpt = "rating",
    time_col: TimeColOpt = "timestamp",
    item_id_col: ItemIdColOpt = None,
    user_id_col: UserIdColOpt = None,
    genres_col: GenresColOpt = "genres",
    genre_sep: GenreSepOpt = "|",
    title_col: TitleColOpt = "title",
    code_col: CodeColOpt = None,
    encoding: EncodingOpt = "utf-8",
    sep: SepOpt = None,
    repeats: RepeatsOpt = "last",
    item_template: ItemTemplateOpt = None,
    min_rating: Annotated[
        float | None,
        typer.Option(
            help="evaluate on the interactions rated at least this (the data `train --min-rating` "
            "trains on): the others are left out of the data, as if never made"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="model.key=value config override (nested: lm-lora.lora.lr=0.01)", metavar="<str>"
        ),
    ] = None,
    ray: Annotated[bool, typer.Option("--ray", help="one Ray task per model")] = False,
    address: RayAddressOpt = None,
):
    """Train and evaluate models on one protocol; print a table.

    Runs on MovieLens-100K, or on your own data with --interactions (and --items, --users and
    the column options of `fewrec train`)."""
    from fewrec.eval.benchmark import (
        DEFAULT_MODELS,
        check_result_path,
        markdown_table,
        run_benchmark,
        write_result,
    )

    if output is not None:
        check_result_path(output)  # before the run, not after it
    if address is not None and not ray:
        raise FewrecError("--address names the Ray cluster to run on. Fix: add --ray, or drop --address")
    configs: dict[str, dict[str, object]] = {}
    for model, value in _parse_set(set_).items():  # "model.key=value": the first dot ends the model
        if not isinstance(value, dict):
            raise FewrecError(
                f"--set expects model.key=value, got {model!r}. Fix: name the model, e.g. "
                "--set fewshot.seed=1 or --set lm-lora.lora.lr=0.01"
            )
        configs[model] = _comma_lists(model, value)
    names = [m.strip() for m in models.split(",") if m.strip()] if models is not None else None
    if names == []:  # "--models ''" ran every default model (the ensemble's minutes among them)
        raise FewrecError(
            "--models names no model. Fix: --models popularity,ease (see `fewrec models`), or leave it out"
        )
    ks = [_int(k, "--shots") for k in shots.split(",")] if shots else None
    base = "popularity" if baseline is None else (None if baseline.lower() == "none" else baseline)
    chosen = names or DEFAULT_MODELS.get(protocol, [])
    if baseline is not None and base is not None and protocol == "tallrec":  # (it was ignored)
        raise FewrecError(
            "--baseline applies to the ranking protocols; tallrec's table compares each model's AUC "
            "directly. Fix: drop --baseline"
        )
    if baseline is not None and base is not None and chosen and base not in chosen:
        raise FewrecError(f"--baseline {base!r} is not among the models; add it to --models or pass none")
    _check_min_rating(min_rating)
    own = _own_data(**_data_options(locals()))
    if own is not None and dataset != "movielens-100k":
        raise FewrecError("give --dataset or --interactions, not both")
    data: str | Dataset = dataset if own is None else own
    if min_rating is not None and protocol == "tallrec":
        raise FewrecError(
            "tallrec predicts likes against dislikes, and --min-rating would leave the dislikes out. "
            "Fix: drop --min-rating"
        )
    from fewrec.models.base import rating_scale_notes, zero_rated

    for scale in rating_scale_notes(own) if own is not None else []:  # (as a fit says them)
        err.print(f"[yellow]note:[/yellow] {escape(scale)}", highlight=False)
    nos = zero_rated(own.interactions["rating"]) if own is not None else ""
    if nos and min_rating is None and protocol != "tallrec":
        err.print(
            f"[yellow]note:[/yellow] {nos}, a dislike in a query, yet held-out ones count as hits "
            "and models that do not read ratings train on them as signs of interest; --min-rating 1 "
            "leaves them out",
            highlight=False,
        )
    if min_rating is not None:  # as `train` does: a like/dislike log's 0s are no interest
        from fewrec.data.movielens import load_dataset

        kept = (load_dataset(dataset) if own is None else own).keep_ratings(min_rating)
        kept.name = f"{kept.name} rated >= {min_rating:g}"
        data = kept
    options = _BenchmarkOptions(
        dataset=data, seed=seed, shots=ks, reveal=reveal, configs=configs, progress=True
    )
    if seeds is not None:
        from fewrec.eval.benchmark import run_seeds

        if seed != 0:
            raise FewrecError("give --seed or --seeds, not both")
        if ray:
            raise FewrecError("--seeds runs the seeds one after another in this process; drop --ray")
        del options["seed"]
        split_seeds = [_int(s, "--seeds") for s in seeds.split(",") if s.strip()]
        result = run_seeds(protocol, names, seeds=split_seeds, baseline=base, **options)
    elif ray:
        from fewrec.scale.ray_jobs import RayConfig, run_benchmark_ray

        result = run_benchmark_ray(
            protocol, names, ray_config=RayConfig(address=address), baseline=base, **options
        )
    else:
        result = run_benchmark(protocol, names, baseline=base, **options)
    left_out = result["settings"].get("shots_left_out")
    if left_out and protocol == "tallrec":  # the default K, on data of few samples
        err.print(
            f"[yellow]note:[/yellow] K = {', '.join(map(str, left_out))} left out: the data gives "
            f"{result['settings']['n_train']} training samples; --shots chooses the K",
            highlight=False,
        )
    elif left_out:  # the default K of cold-user, on data of short histories
        # (of the data benchmarked: after --min-rating)
        top = result["settings"].get("most_test_user_interactions")
        most = f" (the most any test user has is {top})" if isinstance(top, int) else ""
        err.print(
            f"[yellow]note:[/yellow] K = {', '.join(map(str, left_out))} left out: no test user has an "
            f"interaction left after revealing that many{most}; --shots chooses the K",
            highlight=False,
        )
    for name, why in result["settings"].get("models_left_out", {}).items():
        hint = f"{name} left out of the default models: {why}"  # (its reason ends with its fix)
        err.print(f"[yellow]note:[/yellow] {escape(hint)}", highlight=False)
    if protocol == "cold-user":  # (which K items the test users revealed: the table does not say)
        err.print(f"cold-user, {result['settings'].get('reveal', reveal)} reveal:", markup=False)
    console.print(markdown_table(result), markup=False)
    if output:
        written = write_result(result, output)
        # (stdout: the table alone, for `> table.md`)
        err.print(f"wrote {written} and {written.with_suffix('.md')}", markup=False)


@app.command("merge-seeds")
def merge_seeds(
    files: Annotated[
        list[Path], typer.Argument(help="benchmark JSON files (one seed or several each)", metavar="FILES")
    ],
    output: Annotated[Path, typer.Option(help="write the combined JSON result here")],
    baseline: Annotated[
        str | None,
        typer.Option(help="the model the headline gains are measured against ('none': no gains)"),
    ] = "popularity",
):
    """Merge benchmark runs of several split seeds into one table.

    Runs made apart (e.g. in parallel) give the table `benchmark --seeds` would give."""
    from fewrec.eval.benchmark import (
        check_result_path,
        combine_seeds,
        markdown_table,
        split_runs,
        write_result,
    )

    check_result_path(output)  # before the table (a folder failed after it, with a traceback)
    runs = []
    for path in files:
        try:
            runs.extend(split_runs(json.loads(path.read_text())))
        except FileNotFoundError:
            raise FewrecError(f"no such file: {path}") from None
        except IsADirectoryError:  # (a traceback)
            raise FewrecError(f"{path} is a folder. Fix: give the benchmark's JSON files in it") from None
        except OSError as exc:
            raise FewrecError(f"cannot read {path} ({exc.strerror or exc})") from None
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError, AttributeError):
            raise FewrecError(f"{path} is not a fewrec benchmark JSON result") from None
    base = None if baseline is None or baseline.lower() == "none" else baseline
    result = combine_seeds(runs, base)
    console.print(markdown_table(result), markup=False)
    write_result(result, output)
    err.print(f"wrote {output}", markup=False)  # (stdout: the table alone)


def _check_min_rating(min_rating: float | None) -> None:
    """--min-rating nan is refused before any loading (it said "no interaction is rated nan or
    more" once the data was read)."""
    if min_rating is not None and math.isnan(min_rating):
        raise FewrecError(
            "--min-rating is nan, which no rating reaches. Fix: give a number, e.g. --min-rating 4"
        )


def _int(value: str, option: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise FewrecError(f"{option} expects integers, got {value!r}") from None


@app.command("train", epilog="Example: fewrec train ease --output models/ease")
def train(
    model: Annotated[str, typer.Argument(help="model name (see `fewrec models`)", metavar="MODEL")],
    output: Annotated[Path, typer.Option(help="directory to save the model in")],
    interactions: InteractionsOpt = None,
    items: ItemsOpt = None,
    users: UsersOpt = None,
    user_col: UserColOpt = "user_id",
    item_col: ItemColOpt = "item_id",
    rating_col: RatingColOpt = "rating",
    time_col: TimeColOpt = "timestamp",
    item_id_col: ItemIdColOpt = None,
    user_id_col: UserIdColOpt = None,
    genres_col: GenresColOpt = "genres",
    genre_sep: GenreSepOpt = "|",
    title_col: TitleColOpt = "title",
    code_col: CodeColOpt = None,
    encoding: EncodingOpt = "utf-8",
    sep: SepOpt = None,
    repeats: RepeatsOpt = "last",
    item_template: ItemTemplateOpt = None,
    min_rating: Annotated[
        float | None,
        typer.Option(
            help="train on interactions rated at least this, e.g. 1 for like/dislike data whose 0s "
            "are dislikes (models that do not read ratings count every interaction as interest); "
            "the others are never recommended back to their users"
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="key=value config (nested settings: lora.lr=0.01)", metavar="<str>"),
    ] = None,
):
    """Train a model (MovieLens-100K or your own data) and save it."""
    from fewrec.data.movielens import load_dataset
    from fewrec.models import make_model
    from fewrec.models.saving import check_save_path

    settings = _comma_lists(model, _parse_set(set_))
    _check_min_rating(min_rating)
    rec = make_model(model, **settings)  # a bad name or setting fails before any loading
    # the model's own progress bars, on a terminal (ALS and BPR read their old name too)
    shows = "progress" in type(rec).Config.model_fields
    if shows and not {"progress", "show_progress"} & set(settings):
        rec = make_model(model, **settings, progress=sys.stderr.isatty())
    _check_encoding(encoding)
    # before the fit: a file, a folder with other files, or a read-only folder failed only
    # once it was done
    check_save_path(output)
    replacing = (output / "config.json").exists()
    # stages, the text encoder's bars, and how the data was read ("no 'rating' column, so every
    # row counts as a like" was logged before this level was set, so never shown)
    logging.getLogger("fewrec").setLevel(logging.INFO)
    data = _own_data(**_data_options(locals()))
    data = load_dataset() if data is None else data
    if min_rating is not None:
        data = data.keep_ratings(min_rating)
    if (shows and sys.stderr.isatty()) or not err.is_terminal:  # (a status shows nothing in a log)
        err.print(f"training {model} on {data!r}", highlight=False, markup=False)
        rec.fit(data)
    else:
        with err.status(f"training {model} on {data!r}"):
            rec.fit(data)
    for note in rec._fit_notes(data):  # (as a fit in Python warns them)
        err.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    if replacing:
        where = escape(str(output))
        err.print(f"[yellow]note:[/yellow] replacing the model saved in {where}", highlight=False)
    rec.save(output)
    err.print(f"[green]saved[/green] {escape(model)} to {escape(str(output))}")


def _check_item_ids(rec, option: str, ids: list[str]) -> None:
    """An unknown id given to ``option`` that is several ids with commas, or a title: said
    with the form that takes it ("unknown history item 'P000,P001'" named neither)."""
    from fewrec.present import match_titles

    fit = rec.fitted
    for given in ids:
        if fit.items.lookup([given])[0] >= 0:
            continue
        parts = [p.strip() for p in given.split(",") if p.strip()]
        if len(parts) > 1 and (fit.items.lookup(parts) >= 0).all():
            again = " ".join(f"{option} {p}" for p in parts)
            raise FewrecError(
                with_fix(f"{option} {given!r} is {len(parts)} ids", f"repeat {option}: {again}")
            )
        titled = "--title" if option == "--item" else "--disliked-title"
        exact = False
        if "title" in fit.item_info.columns:
            with suppress(FewrecError):  # (no title of that name either: the unknown id's own error)
                exact = match_titles(fit.item_info, fit.items, [given])[0].note is None
        if exact:
            raise FewrecError(with_fix(f"{option} {given!r} is a title, not an id", f"{titled} {given!r}"))


def _check_encoding(encoding: str) -> None:
    import codecs

    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FewrecError(
            f"--encoding {encoding!r} is not a text encoding Python knows (e.g. utf-8, latin-1)"
        ) from None


@app.command(
    "recommend",
    epilog='Example: fewrec recommend models/ease --title "Star Wars" --title "Fargo" --k 10 --explain',
)
def recommend(
    model_dir: Annotated[Path, typer.Argument(help="a saved model directory", metavar="MODEL_DIR")],
    user: Annotated[list[str] | None, typer.Option(help="a known user id", metavar="<str>")] = None,
    item: Annotated[
        list[str] | None, typer.Option(help="an item id the user liked (repeat it)", metavar="<str>")
    ] = None,
    title: Annotated[
        list[str] | None, typer.Option(help="a title the user liked (repeat it)", metavar="<str>")
    ] = None,
    disliked: Annotated[
        list[str] | None,
        typer.Option(
            help="an item id the user disliked (never recommended back; repeat it)", metavar="<str>"
        ),
    ] = None,
    disliked_title: Annotated[
        list[str] | None, typer.Option(help="a title the user disliked (repeat it)", metavar="<str>")
    ] = None,
    text: Annotated[
        list[str] | None, typer.Option(help="free text about the user's taste", metavar="<str>")
    ] = None,
    info: Annotated[
        list[str] | None,
        typer.Option(
            help="user side info as field=value, e.g. --info age=31 --info occupation=artist", metavar="<str>"
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", "-k", help="how many")] = 10,
    explain: Annotated[bool, typer.Option("--explain", help="say why each item is recommended")] = False,
    candidate: Annotated[
        list[str] | None,
        typer.Option(
            help="rank only these item ids (repeat it); an LM model scores only them", metavar="<str>"
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="table (for people), or json or csv on stdout for programs (rank, item, label, "
            "score, and reason with --explain; notes stay on stderr)",
        ),
    ] = "table",
):
    """Top-k for a user: liked items, free text or side info.

    For a known user, liked or disliked items/titles, free text and/or side info (a known user's
    own side info is read from the training data)."""
    from fewrec.models.query import Query
    from fewrec.models.saving import load_model
    from fewrec.present import match_titles, print_frame, print_recommendations, progress_lines

    if fmt not in ("table", "json", "csv"):  # before the model loads
        raise FewrecError(f"--format is table, json or csv, not {fmt!r}")
    for option, given in (("--user", user), ("--text", text)):  # (the last had won without a word)
        if given and len(given) > 1:
            raise FewrecError(f"{option} given {len(given)} times; give it once (one {option[2:]} a query)")
    one_user: str | None = user[0] if user else None
    if one_user is not None and not one_user.strip():  # (--user "$ID" with ID unset: a new user "")
        raise FewrecError("--user is empty. Fix: give a user id, or leave --user out for a new user")
    one_text: str | None = text[0] if text else None
    rec = load_model(model_dir)
    for option, ids in (("--item", item), ("--disliked", disliked)):
        _check_item_ids(rec, option, ids or [])
    liked, unliked = list(item or []), list(disliked or [])
    notes = []
    for titles, into in ((title, liked), (disliked_title, unliked)):
        if not titles:
            continue
        fit = rec.fitted
        for m in match_titles(fit.item_info, fit.items, titles, "--text", disliked=into is unliked):
            into.extend([m.item, *m.twins])  # (a film listed twice came back as the first pick)
            notes.append(m.note)
    both = sorted(set(liked) & set(unliked))
    if both:
        raise FewrecError(
            f"item(s) {both} given both as liked (--item/--title) and as disliked "
            "(--disliked/--disliked-title); give each one once"
        )
    fit = rec.fitted
    # a dislike is the bottom of the model's scale, as in the service (0 on implicit data)
    ratings = [fit.like_rating] * len(liked) + [fit.dislike_rating] * len(unliked)
    side = _parse_info(info) if info else None
    query = Query(
        user=one_user,
        items=liked + unliked,
        ratings=ratings if unliked else None,
        text=one_text,
        user_info=side,
    )
    if one_user is None and not side and not liked + unliked and not (one_text or "").strip():
        popular = rec.empty_is_popularity or rec.name == "popularity"
        what = "the most popular items" if popular else "the same items for anyone, not personalised"
        notes.append(
            f"the query is empty, so these are {what}; personalise them with --user ID, --item ID, "
            "--title TITLE or --text 'what you like'"
        )
    if candidate:  # (recommend's own warning about them is silenced below, as the others are)
        unknown = [c for c, i in zip(candidate, fit.items.lookup(candidate), strict=True) if i < 0]
        if len(unknown) == len(candidate):  # (an empty list and exit 0)
            commas = " (repeat --candidate, one id each)" if any("," in c for c in unknown) else ""
            raise FewrecError(f"no candidate is in the catalogue: {unknown[:5]}{commas}")
        notes.append(f"candidates not in the catalogue: {unknown[:5]}" if unknown else None)
    for note in [n for n in notes if n] + rec.query_notes(query):
        err.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    waits = what_we_wait_for(rec, one_text)
    waiting = err.status(waits) if waits else nullcontext()
    with warnings.catch_warnings(), waiting, progress_lines(err):  # (an LM's lines every 30 s)
        warnings.simplefilter("ignore", UserWarning)  # the notes above say the same
        recs = rec.recommend(query, k=k, explain=explain, candidates=candidate or None)
    if recs.empty:
        what = "every candidate is unknown or in the history" if candidate else "every item is in the history"
        err.print(f"[yellow]note:[/yellow] nothing left to recommend: {what}")
        if fmt != "table":  # (a program reading stdout gets an empty list, not nothing)
            print_frame(recs, rec.fitted.item_info, rec.fitted.items, fmt)
        return
    if len(recs) < k:  # say why the list is short (k = 1000 on 30 items gave 22 rows, unexplained)
        total = len(set(candidate)) if candidate else rec.n_items
        pool = f"of the {total} candidates" if candidate else f"of the catalogue's {total:,} items"
        why = f"the rest {pool} are in the history, disliked or unknown to the model"
        if len(recs) == total:  # all there are ("the rest of the 4 candidates" with none left out)
            only = "only one candidate was given" if total == 1 else f"only {total} candidates were given"
            why = only if candidate else f"the catalogue has only {total:,}"
        got = f"{len(recs)} item" + ("s" if len(recs) > 1 else "")  # ("1 items, not 3")
        err.print(f"[yellow]note:[/yellow] {got}, not {k}: {why}", highlight=False)
    if fmt != "table":
        print_frame(recs, rec.fitted.item_info, rec.fitted.items, fmt)
        return
    print_recommendations(
        console,
        recs,
        rec.fitted.item_info,
        rec.fitted.items,
        show_ids="title" in rec.fitted.item_info.columns,
    )


def what_we_wait_for(rec: Recommender, text: str | None) -> str | None:
    """The status line shown while `recommend` works, or None where it is quick: a first
    sentence loads the text encoder (5-15 s on a small CPU), and a language model reads a prompt
    per candidate (seconds to minutes). A model that ignores the text is not "reading" it."""
    waits = ["reading your text (the encoder loads on first use)"] if text and rec.reads_text else []
    if getattr(rec.config, "max_prompts", None) is not None:  # an LM model
        waits.append("asking the language model about each candidate")
    return " and ".join(waits) + " ..." if waits else None


@app.command("demo")
def demo(
    liked: Annotated[
        list[str] | None,
        typer.Option("--liked", help="a title the new user liked (repeat it)", metavar="<str>"),
    ] = None,
    text: Annotated[
        str | None, typer.Option(help="what a second new user writes (default: a sci-fi sentence)")
    ] = None,
):
    """The main job: fetch, benchmark, train, recommend.

    Fetch data, a compact cold-start benchmark, train, and top-10 for a new user who liked three
    named movies, for one who wrote a sentence, and for one who wrote it in Chinese."""
    from fewrec.demo import DEMO_TEXT, run_demo

    run_demo(console, liked or ["Star Wars", "Toy Story", "Fargo"], text=text or DEMO_TEXT)


@app.command("serve")
def serve(
    model: Annotated[
        Path, typer.Argument(help="saved model directory (see `fewrec train`)", metavar="MODEL")
    ],
    store: Annotated[Path, typer.Option(help="SQLite store file (created if missing)")] = Path("fewrec.db"),
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            "--api-key",
            help="key accepted for writes, repeatable (default: $FEWREC_API_KEYS)",
            metavar="<str>",
        ),
    ] = None,
    exploration: Annotated[str, typer.Option(help="new-user exploration: thompson | ucb | off")] = "thompson",
    explore_width: Annotated[
        float | None,
        typer.Option(
            help="Thompson's scale (default 0.25, tuned for lists of 10; 1 did best for one item at "
            "a time) or UCB's c (default 1; in the replays UCB only matched the best guess)"
        ),
    ] = None,
    explore_until: Annotated[
        int,
        typer.Option(
            help="explore while a user has fewer history items than this (likes, and ratings above a dislike)"
        ),
    ] = 20,
    index: Annotated[
        str,
        typer.Option(
            help="similar-items index: auto (FAISS flat, exact) | exact | faiss-flat | faiss-hnsw | "
            "faiss-ivf (exact, then a tuned FAISS IVF past 50,000 items)"
        ),
    ] = "auto",
    log_level: Annotated[
        str, typer.Option(help="server log level: critical | error | warning | info | debug")
    ] = "info",
    max_body_bytes: Annotated[
        int, typer.Option(help="the largest request body accepted, in bytes (larger: a 413)")
    ] = 1 << 20,
    max_store_mb: Annotated[
        float | None,
        typer.Option(help="refuse writes (a 507) once the store holds this many MB; default: no limit"),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-host",
            help="a host name requests may name (their Host header), repeatable; '*': any. Default: "
            "localhost and 127.0.0.1 when listening on a loopback address (against DNS rebinding), "
            "any otherwise",
            metavar="<str>",
        ),
    ] = None,
):
    """Serve a saved model over HTTP: an API and a web page.

    The web page is at /, the API's docs at /docs."""
    from fewrec.online.bandits import MAX_WIDTH
    from fewrec.serve.app import run_server
    from fewrec.serve.engine import ExplorationConfig

    if hasattr(signal, "SIGPIPE"):  # as Python has it: main() lets it end the other commands
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    if exploration not in ("ucb", "thompson", "off"):
        raise FewrecError(f"--exploration must be ucb, thompson or off, got {exploration!r}")
    if exploration == "off" and explore_width is not None:
        raise FewrecError("--explore-width has no effect with --exploration off; drop one of them")
    if explore_width is not None and not 0 <= explore_width <= MAX_WIDTH:  # (pydantic named "c")
        raise FewrecError(f"--explore-width must be between 0 and {MAX_WIDTH:g}, got {explore_width:g}")
    width = {} if explore_width is None else {"scale" if exploration == "thompson" else "c": explore_width}
    explore = ExplorationConfig(policy=exploration, until=explore_until, **width)
    from fewrec.serve.index import INDEX_KINDS

    if index not in INDEX_KINDS:
        raise FewrecError(f"--index must be one of {', '.join(INDEX_KINDS)}, got {index!r}")
    levels = ("critical", "error", "warning", "info", "debug", "trace")
    if log_level.lower() not in levels:
        raise FewrecError(f"--log-level must be one of {', '.join(levels)}, got {log_level!r}")
    if not 0 <= port <= 65535:
        raise FewrecError(f"--port must be between 0 and 65535, got {port}")
    if max_body_bytes < 1:
        raise FewrecError(f"--max-body-bytes must be at least 1, got {max_body_bytes}")
    run_server(
        model,
        store,
        host=host,
        port=port,
        api_keys=api_key or None,
        exploration=explore,
        index=index,
        log_level=log_level.lower(),
        allowed_hosts=allow_host or None,
        max_body_bytes=max_body_bytes,
        max_store_mb=max_store_mb,
    )


scale_app = typer.Typer(
    no_args_is_help=True, help="Batch jobs on Ray (local or a cluster).", rich_markup_mode=None
)
app.add_typer(scale_app, name="scale")


@scale_app.command("embed")
def scale_embed(
    source: Annotated[
        Path, typer.Argument(help="Parquet file or folder with a text column", metavar="SOURCE")
    ],
    destination: Annotated[Path, typer.Argument(help="output Parquet folder", metavar="DESTINATION")],
    text_column: Annotated[str, typer.Option(help="column holding the text")] = "text",
    model: Annotated[
        str, typer.Option(help="text encoder: all-MiniLM-L6-v2 (English) | multilingual")
    ] = "all-MiniLM-L6-v2",
    backend: Annotated[
        str | None, typer.Option(help="MiniLM: torch | torch-bf16 | onnx (default: the model's own)")
    ] = None,
    actors: Annotated[
        int | None, typer.Option(help="encoder actors (default: one per CPU of the cluster)")
    ] = None,
    address: RayAddressOpt = None,
    overwrite: Annotated[
        bool, typer.Option(help="replace the Parquet files of an earlier output in destination")
    ] = False,
    progress: Annotated[
        bool | None, typer.Option(help="Ray Data's progress bars (default: on a terminal)")
    ] = None,
    vector_column: Annotated[str, typer.Option(help="name of the added vector column")] = "embedding",
):
    """Embed item text with Ray Data (Parquet in, Parquet out)."""
    from fewrec.scale.ray_jobs import RayConfig, embed_parquet

    if not source.exists():
        raise FewrecError(f"no such file or folder: {source}")

    with redirect_stdout(sys.stderr):  # (Ray's own lines, as in scale recommend)
        report = embed_parquet(
            source,
            destination,
            text_column=text_column,
            model=model,
            backend=backend,
            actors=actors,
            overwrite=overwrite,
            ray_config=RayConfig(address=address),
            progress=sys.stderr.isatty() if progress is None else progress,
            vector_column=vector_column,
        )
    err.print(
        f"embedded {report.rows} texts with {report.encoder} in {report.seconds:.1f} s "
        f"({report.items_per_second:.0f} texts/s, {report.actors} actors); wrote {report.destination}",
        markup=False,
    )


@scale_app.command("recommend")
def scale_recommend(
    model_dir: Annotated[Path, typer.Argument(help="a saved model directory", metavar="MODEL_DIR")],
    output: Annotated[Path, typer.Option(help="file for the recommendations: .parquet or .csv")],
    k: Annotated[int, typer.Option("--k", "-k", help="items per user")] = 10,
    address: RayAddressOpt = None,
):
    """Top-k for every known user, fanned out over Ray tasks."""
    from fewrec.eval.benchmark import check_writable
    from fewrec.models.saving import load_model
    from fewrec.scale.ray_jobs import RayConfig, recommend_all

    if output.is_dir():
        example = output / "recs.parquet"
        raise FewrecError(f"--output {output} is a folder. Fix: give a file name, e.g. {example}")
    if k < 1:
        raise FewrecError(f"k must be >= 1, got {k}")  # (as `recommend` says it)
    # by its name's suffix (a .csv was written as Parquet under that name)
    as_csv = output.suffix.lower() == ".csv"
    if not as_csv and output.suffix.lower() not in (".parquet", ".pq"):
        raise FewrecError(
            with_fix(f"--output {output} is neither .parquet nor .csv", f"e.g. {output}.parquet")
        )
    check_writable(output)  # before the job (a file above it failed once every user was done)
    if output.exists():  # (scale embed asks for --overwrite of a folder; one file is replaced, said)
        err.print(f"[yellow]note:[/yellow] replacing {escape(str(output))}", highlight=False)
    # Ray prints its workers' troubles on stdout ("(raylet) A worker died or was killed ...", a
    # task it then ran again), where a pipe reads data: they go to stderr, with the other notes
    with redirect_stdout(sys.stderr):
        recs = recommend_all(load_model(model_dir), k, ray_config=RayConfig(address=address), progress=True)
    output.parent.mkdir(parents=True, exist_ok=True)
    if as_csv:
        recs.to_csv(output, index=False)
    else:
        recs.to_parquet(output, index=False)
    err.print(f"wrote {len(recs)} rows to {output}", markup=False)


def main() -> None:
    """Entry point: user mistakes print one clear message (no traceback) and exit 2; Ctrl-C
    prints "aborted" and exits 130; a pipe closed early (``| head``) ends the command quietly,
    as it ends Unix tools (exit 141, by SIGPIPE)."""
    _quiet_libraries()
    for stream in (sys.stdout, sys.stderr):  # a title with an accent to an ASCII pipe was a traceback
        with suppress(AttributeError, ValueError):
            stream.reconfigure(errors="replace")  # type: ignore[union-attr]
    # Python ignores SIGPIPE, so a write to a closed pipe raised, and rich and typer made that
    # exit 1 (`fewrec models | head` failed a `set -o pipefail` script); `serve` sets it back
    # (a client that drops its socket must not end the server)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        # standalone_mode=False: typer returns the code of a typer.Exit, and 130 for Ctrl-C in a
        # command, rather than exiting (both had ended in exit 0)
        code = app(standalone_mode=False)
        stdout = sys.stdout  # (a local: `_stdout_failed` finds the stream it failed on)
        stdout.flush()  # (a write error at exit was Python's own message, and exit 120)
    except FewrecError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # an optional dependency not installed; click usage errors
        missing = missing_extra(exc)
        if missing is not None:
            err.print(f"[bold red]error:[/bold red] {escape(str(missing))}")
            sys.exit(2)
        from typer._click import exceptions as click_exceptions

        if isinstance(exc, click_exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, typer.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, OSError) and _stdout_failed(exc):  # (a full disk: a 60-line traceback)
            why = escape(exc.strerror or str(exc))
            err.print(f"[bold red]error:[/bold red] cannot write the output: {why}")
            sys.exit(1)
        raise
    if isinstance(code, int) and code != 0:
        if code == 130:
            err.print("aborted")
        sys.exit(code)


def _stdout_failed(exc: OSError) -> bool:
    """Whether ``exc`` is stdout's write error (a full disk, ``> /dev/full``), not a bug's: it
    names no file, and the code that raised it was writing to stdout (a console, click's echo,
    main's flush). Stdout then goes to /dev/null, so that Python's flush at exit does not fail
    again (its own message, and exit 120)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if exc.filename is not None or tb is None:
        return False
    stdout = sys.stdout
    writers = tb.tb_frame.f_locals.values()
    if not any(v is stdout or (isinstance(v, Console) and v.file is stdout) for v in writers):
        return False
    with suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stdout.fileno())
        os.close(null)
    return True


if __name__ == "__main__":
    main()
