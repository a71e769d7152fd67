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
    "ArgumentError": "fewrec.errors",
    "ConfigError": "fewrec.errors",
    "DataError": "fewrec.errors",
    "FewrecError": "fewrec.errors",
    "NotFittedError": "fewrec.errors",
    "Columns": "fewrec.data.loaders",
    "Dataset": "fewrec.data.dataset",
    "Vocabulary": "fewrec.data.dataset",
    "load_dataset": "fewrec.data.movielens",
    "load_interactions": "fewrec.data.loaders",
    "Query": "fewrec.models.query",
    "Recommender": "fewrec.models.base",
    "load_model": "fewrec.models.saving",
    "make_model": "fewrec.models",  # (the package: it registers every built-in model)
}

__all__ = [
    "ArgumentError",
    "Columns",
    "ConfigError",
    "DataError",
    "Dataset",
    "FewrecError",
    "NotFittedError",
    "Query",
    "Recommender",
    "Vocabulary",
    "load_dataset",
    "load_interactions",
    "load_model",
    "make_model",
    "__version__",
]

if TYPE_CHECKING:
    from fewrec.data.dataset import Dataset, Vocabulary
    from fewrec.data.loaders import Columns, load_interactions
    from fewrec.data.movielens import load_dataset
    from fewrec.errors import ArgumentError, ConfigError, DataError, FewrecError, NotFittedError
    from fewrec.models import make_model
    from fewrec.models.base import Recommender
    from fewrec.models.query import Query
    from fewrec.models.saving import load_model


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'fewrec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


#: The module's own helpers, left out of ``dir(fewrec)`` (it listed typing's Any and importlib).
_HIDDEN = {"Any", "TYPE_CHECKING", "annotations", "importlib", "_HIDDEN"}


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY} - _HIDDEN)
