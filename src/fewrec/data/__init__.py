"""Datasets, loaders, id vocabularies and evaluation splits."""

from fewrec.data.dataset import Dataset, Vocabulary
from fewrec.data.loaders import Columns, load_interactions
from fewrec.data.movielens import fetch_movielens_100k, load_dataset, load_movielens_1m, load_movielens_100k

__all__ = [
    "Columns",
    "Dataset",
    "Vocabulary",
    "fetch_movielens_100k",
    "load_dataset",
    "load_interactions",
    "load_movielens_100k",
    "load_movielens_1m",
]
