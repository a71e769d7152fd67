"""Shared fixtures: the real MovieLens-100K (fetched once into the user data dir) and splits."""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs a worker per core (pytest-xdist): one torch thread each, set before torch
    # is imported, so the workers do not fight over the cores (seed_everything keeps to it)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

warnings.filterwarnings("ignore", message=".*OpenBLAS.*")


@pytest.fixture(scope="session")
def ml100k():
    from fewrec.data.movielens import load_movielens_100k

    return load_movielens_100k()


@pytest.fixture(scope="session")
def warm(ml100k):
    from fewrec.data.splits import warm_split

    return warm_split(ml100k, seed=0)


@pytest.fixture(scope="session")
def cold_user(ml100k):
    from fewrec.data.splits import cold_user_split

    return cold_user_split(ml100k, shots=5, seed=0)


_FITTED: dict = {}


@pytest.fixture(scope="session")
def fit_cached():
    """Fit a model once per session per (training data, name, settings): tests share fitted
    models. ``split_name`` names the training data; the settings are the model's validated
    ones, so a default given by name and one left out are the same fit."""
    from fewrec.models import make_model

    def fit(split_name, split, name, **config):
        model = make_model(name, **config)
        key = (split_name, name, model.config.model_dump_json())
        if key not in _FITTED:
            _FITTED[key] = model.fit(split.train)
        return _FITTED[key]

    return fit
