"""Significance for champion/challenger comparisons: the paired t-test and bootstrap intervals.

The paired t-test lives with the promotion rule that applies it (`marketcast.promotion`); it is
re-exported here for evaluation code.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from marketcast.promotion import ALTERNATIVES, PairedTestResult, paired_test

__all__ = ["ALTERNATIVES", "PairedTestResult", "bootstrap_mean_ci", "paired_test"]

# Bound on resampled indices held at once (8 bytes each), so long series do not exhaust memory.
_MAX_DRAWS_PER_CHUNK: Final[int] = 4_000_000


def bootstrap_mean_ci(
    x: npt.ArrayLike,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (NaN values dropped); NaN for fewer
    than two values.

    Raises
    ------
    ValueError
        For an infinite value (a mean with one has no interval; dropping it, as before, gave
        the interval of the other values without a word).

    Examples
    --------
    >>> low, high = bootstrap_mean_ci(np.arange(100.0), n_bootstrap=500, seed=1)
    >>> bool(low < 49.5 < high)
    True
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    if np.isinf(values).any():
        raise ValueError(
            f"bootstrap_mean_ci: x holds an infinite value at {np.argmax(np.isinf(values))}"
        )
    values = values[~np.isnan(values)]
    # one value resamples to itself: (0.3, 0.3) read as certainty, not as no interval at all
    if values.size < 2 or n_bootstrap <= 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_bootstrap)
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // values.size)
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        draws = rng.integers(0, values.size, size=(size, values.size))  # (size, n)
        means[start : start + size] = values[draws].mean(axis=1)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return (float(low), float(high))
