"""fewrec: recommendations from very little data.

The core import is light: heavy parts (torch, transformers) load only when a text model is used.
"""

from fewrec.data.dataset import Dataset, Vocabulary
from fewrec.errors import DataError, FewrecError
from fewrec.models.base import Query, Recommender, load_model

__version__ = "0.1.0"

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
