"""Recommenders behind one contract (`fewrec.models.base.Recommender`)."""

from fewrec.models.base import (
    MODELS,
    ModelConfig,
    Query,
    QueryBatch,
    Recommender,
    load_model,
    make_model,
    register,
)
from fewrec.models.baselines import LikeShare, PopularityRecommender, RandomRecommender
from fewrec.models.ease import EASE
from fewrec.models.knn import ItemKNN
from fewrec.models.mf import ALS, BPR

__all__ = [
    "ALS",
    "BPR",
    "EASE",
    "MODELS",
    "ItemKNN",
    "LikeShare",
    "ModelConfig",
    "PopularityRecommender",
    "Query",
    "QueryBatch",
    "RandomRecommender",
    "Recommender",
    "load_model",
    "make_model",
    "register",
]
