"""Fitted models saved once per test session and shared by the serving and online tests."""

from __future__ import annotations

import atexit
import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fewrec.data.dataset import Dataset
from fewrec.models import make_model

_ROOT: Path | None = None
_DIRS: dict[tuple, Path] = {}
_LOCK = threading.Lock()

#: A few-shot model that fits in ~20 s: a short meta-learning and distillation.
FAST_FEWSHOT: dict[str, Any] = {"meta_steps": 30, "distill_epochs": 100}


def models_root() -> Path:
    """A folder for saved models, removed when the test process exits."""
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="fewrec-test-models-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def saved_model(name: str, data: Dataset, **config: Any) -> Path:
    """Fit ``name`` on ``data`` once per process and return its saved directory."""
    key = (name, id(data), json.dumps(config, sort_keys=True, default=str))
    with _LOCK:
        if key not in _DIRS:
            path = models_root() / f"{name}-{len(_DIRS)}"
            make_model(name, **config).fit(data).save(path)
            _DIRS[key] = path
        return _DIRS[key]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(base: str, timeout: float = 180.0, proc: Any = None) -> None:
    """Poll ``/health/ready`` on a loopback server until it answers 200."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {proc.returncode}")
        try:
            if httpx.get(f"{base}/health/ready", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{base} not ready after {timeout} s")
