"""Recommenders behind one contract (`fewrec.models.base.Recommender`).

Models of your own register with `register`; name the modules that do in ``$FEWREC_IMPORT``
(comma-separated) and `make_model`, `load_model`, the CLI and the service import them.
"""

from fewrec.models.base import MODELS, ModelConfig, Recommender, make_model, register
from fewrec.models.baselines import LikeShare, PopularityRecommender, RandomRecommender
from fewrec.models.content import ContentRecommender
from fewrec.models.ease import DLAE, EASE, KShotRidge
from fewrec.models.ensemble import EnsembleRecommender
from fewrec.models.fewshot import FewShotNoMeta, FewShotRecommender
from fewrec.models.knn import ItemKNN, RP3Beta
from fewrec.models.likeclf import LikeClassifier
from fewrec.models.lm import DistilledLM, LMInContext, LMLora, LMRerank
from fewrec.models.lora_content import LoraContentRecommender
from fewrec.models.mf import ALS, BPR
from fewrec.models.query import Query, QueryBatch
from fewrec.models.saving import load_model
from fewrec.models.transitions import Transitions

__all__ = [
    "ALS",
    "BPR",
    "ContentRecommender",
    "DLAE",
    "EASE",
    "EnsembleRecommender",
    "FewShotNoMeta",
    "FewShotRecommender",
    "MODELS",
    "ItemKNN",
    "KShotRidge",
    "RP3Beta",
    "LikeClassifier",
    "LMInContext",
    "LMLora",
    "LMRerank",
    "LikeShare",
    "Transitions",
    "DistilledLM",
    "LoraContentRecommender",
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
