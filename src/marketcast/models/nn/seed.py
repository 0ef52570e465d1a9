"""One seeding function for every torch model: Python, NumPy and torch (CPU and CUDA)."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator

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
        reproducible; the flag matters on CUDA and is recorded in the run manifest. The setting
        is process-wide: wrap the work in :func:`restored_determinism` to give the caller's
        setting back afterwards.

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


@contextlib.contextmanager
def restored_determinism() -> Iterator[None]:
    """Restore torch's deterministic-algorithm and cuDNN settings on exit.

    :func:`seed_everything` with ``deterministic=True`` changes them for the whole process; a
    fit that asks for deterministic kernels runs inside this so that later code keeps its own.

    Examples
    --------
    >>> before = torch.are_deterministic_algorithms_enabled()
    >>> with restored_determinism():
    ...     seed_everything(0, deterministic=True)
    ...     torch.are_deterministic_algorithms_enabled()
    True
    >>> torch.are_deterministic_algorithms_enabled() == before
    True
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn_deterministic = torch.backends.cudnn.deterministic
    cudnn_benchmark = torch.backends.cudnn.benchmark
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.deterministic = cudnn_deterministic
        torch.backends.cudnn.benchmark = cudnn_benchmark


@contextlib.contextmanager
def restored_random_state() -> Iterator[None]:
    """Give Python's ``random``, NumPy's global generator and torch's (CPU and CUDA) their
    states back on exit.

    :func:`seed_everything` reseeds them for the whole process: after a fit, a caller's
    ``np.random`` stream was the network's seed's whatever the caller had seeded, so anything
    later in a run that drew from it was tied to the network.

    Examples
    --------
    >>> _ = np.random.seed(11)
    >>> with restored_random_state():
    ...     seed_everything(0)
    >>> after = np.random.random()
    >>> _ = np.random.seed(11)
    >>> after == np.random.random()
    True
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
