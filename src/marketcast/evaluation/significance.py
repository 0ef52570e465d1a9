"""Significance tests for champion/challenger comparisons: paired t-test and bootstrap intervals."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = ["ALTERNATIVES", "PairedTestResult", "bootstrap_mean_ci", "paired_test"]

#: Alternatives of :func:`paired_test`, on the mean of ``champion - challenger``.
ALTERNATIVES: Final[tuple[str, ...]] = ("greater", "less", "two-sided")

# Bound on resampled indices held at once (8 bytes each), so long series do not exhaust memory.
_MAX_DRAWS_PER_CHUNK: Final[int] = 4_000_000


@dataclass(frozen=True)
class PairedTestResult:
    """Paired t-test on per-match loss differences ``champion - challenger``."""

    mean_difference: float
    std_error: float
    t_stat: float
    p_value: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; NaN becomes ``None``."""
        return {
            k: (None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in asdict(self).items()
        }


def paired_test(
    loss_champion: npt.ArrayLike,
    loss_challenger: npt.ArrayLike,
    alternative: str = "greater",
) -> PairedTestResult:
    """Paired t-test on per-match losses (lower is better).

    The differences are ``d = loss_champion - loss_challenger``: a positive mean says the
    challenger is better. With ``alternative="greater"`` the p-value is for H1: ``mean(d) > 0``.
    Pairs with a NaN on either side are dropped. Same statistic and p-value as
    ``scipy.stats.ttest_rel(loss_champion, loss_challenger, alternative=alternative)``.

    Returns
    -------
    PairedTestResult
        ``std_error = std(d, ddof=1) / sqrt(n)``. With ``n < 2`` the t statistic and p-value are
        NaN; when every difference is equal, ``t = sign(mean) * inf`` (NaN if the mean is 0).

    Examples
    --------
    >>> r = paired_test([1.0, 1.2, 0.9, 1.1], [0.9, 1.0, 0.9, 1.0])
    >>> round(r.mean_difference, 3), round(r.t_stat, 3), round(r.p_value, 4)
    (0.1, 2.449, 0.0459)
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; expected one of {ALTERNATIVES}")
    champion = np.asarray(loss_champion, dtype=np.float64).ravel()
    challenger = np.asarray(loss_challenger, dtype=np.float64).ravel()
    if champion.shape != challenger.shape:
        raise ValueError(f"loss arrays differ in length: {champion.shape} vs {challenger.shape}")
    diff = champion - challenger
    diff = diff[np.isfinite(diff)]
    n = int(diff.size)
    if n == 0:
        return PairedTestResult(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    mean = float(np.mean(diff))
    if n < 2:
        return PairedTestResult(mean, float("nan"), float("nan"), float("nan"), n)
    std_error = float(np.std(diff, ddof=1) / math.sqrt(n))
    if std_error == 0.0:
        t_stat = math.copysign(math.inf, mean) if mean != 0.0 else float("nan")
    else:
        t_stat = mean / std_error
    dof = n - 1
    if math.isnan(t_stat):
        p_value = float("nan")
    elif alternative == "greater":
        p_value = float(stats.t.sf(t_stat, dof))
    elif alternative == "less":
        p_value = float(stats.t.cdf(t_stat, dof))
    else:
        p_value = float(2.0 * stats.t.sf(abs(t_stat), dof))
    return PairedTestResult(mean, std_error, t_stat, p_value, n)


def bootstrap_mean_ci(
    x: npt.ArrayLike,
    n_bootstrap: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``x`` (NaN values dropped).

    Examples
    --------
    >>> low, high = bootstrap_mean_ci(np.arange(100.0), n_bootstrap=500, seed=1)
    >>> bool(low < 49.5 < high)
    True
    """
    values = np.asarray(x, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0 or n_bootstrap <= 0:
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
