"""One seeding function for every torch model: Python, NumPy and torch (CPU and CUDA)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and torch; optionally force deterministic kernels.

    Parameters
    ----------
    seed
        The seed for every generator.
    deterministic
        When True, ask torch for deterministic algorithms (an error where none exists) and turn
        cuDNN autotuning off. On the CPU, training with a fixed seed and thread count is already
        reproducible; the flag matters on CUDA and is recorded in the run manifest.

    Examples
    --------
    >>> seed_everything(3)
    >>> a = torch.rand(2)
    >>> seed_everything(3)
    >>> bool(torch.equal(a, torch.rand(2)))
    True
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        # cuBLAS needs this workspace setting for deterministic matrix products.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
