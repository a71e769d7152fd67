"""User-facing errors: each names what is wrong, where, and how to fix it."""

from __future__ import annotations

from numbers import Integral
from typing import Any


def is_whole_number(value: Any) -> bool:
    """An int (Python or numpy), not a bool: what counts, seeds and sizes must be."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def with_fix(message: str, fix: str | None) -> str:
    """``message``, then (after a full stop where it has none) ``Fix: fix`` when there is one."""
    if not fix:
        return message
    return f"{message}{'' if message.rstrip().endswith(('.', '?', '!', ':')) else '.'} Fix: {fix}"


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


class NotFittedError(FewrecError, RuntimeError):
    """A model was used before `fit`."""


class ArgumentError(FewrecError, TypeError):
    """An argument of the wrong type: a query, ``k``, a list of ids, a dataset."""

    def __init__(self, message: str, *, fix: str | None = None):
        super().__init__(with_fix(message, fix))
