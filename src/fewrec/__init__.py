"""fewrec: recommendations from very little data.

The core import is light: the names below load on first use (pandas and scipy with `Dataset`,
torch and transformers only when a text model is used), so ``import fewrec`` and ``fewrec
--help`` load none of them (0.6 s for ``--help``, where it was 1.9).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "DataError": "fewrec.errors",
    "FewrecError": "fewrec.errors",
    "Dataset": "fewrec.data.dataset",
    "Vocabulary": "fewrec.data.dataset",
    "Query": "fewrec.models.query",
    "Recommender": "fewrec.models.base",
    "load_model": "fewrec.models.saving",
}

__all__ = [
    "DataError",
    "Dataset",
    "FewrecError",
    "Query",
    "Recommender",
    "Vocabulary",
    "load_model",
    "__version__",
]

if TYPE_CHECKING:
    from fewrec.data.dataset import Dataset, Vocabulary
    from fewrec.errors import DataError, FewrecError
    from fewrec.models.base import Recommender
    from fewrec.models.query import Query
    from fewrec.models.saving import load_model


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fewrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
