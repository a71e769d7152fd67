"""The HTTP service: FastAPI app, durable SQLite store, vector index and serving engine.

Needs the ``serve`` extra (fastapi, uvicorn; faiss-cpu optional). `create_app` builds the ASGI
app; `run_server` (``fewrec serve`` / ``python -m fewrec.serve``) runs it with uvicorn. Both are
imported lazily, so ``import fewrec.serve`` does not import FastAPI.
"""

from __future__ import annotations

from typing import Any

from fewrec.serve.engine import Engine, ExplorationConfig
from fewrec.serve.store import Store

__all__ = ["Engine", "ExplorationConfig", "Store", "create_app", "run_server"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "run_server"):
        from fewrec.serve import app

        return getattr(app, name)
    raise AttributeError(f"module 'fewrec.serve' has no attribute {name!r}")
