"""Training utilities shared by every torch model: seeding and thread settings."""

from __future__ import annotations

import os
import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and use at most 2 torch threads (fewer where torch was
    given fewer, e.g. by ``OMP_NUM_THREADS=1``). Torch CPU kernels are deterministic for a
    fixed thread count; changing `torch.set_num_threads` can change the last bits of sums."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1, torch.get_num_threads())))
