"""Proper scoring rules (log loss, Brier, RPS) and calibration error for probabilistic forecasts."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "LOG_LOSS_EPS",
    "PROB_ATOL",
    "brier_score",
    "brier_score_per_sample",
    "check_probabilities",
    "ece",
    "log_loss",
    "log_loss_per_sample",
    "reliability_curve",
    "rps",
    "rps_per_sample",
    "score_all",
]

FloatArray = npt.NDArray[np.float64]

#: Lower clip of a probability inside the log loss (a certain miss costs -log(1e-15) = 34.5 nats).
LOG_LOSS_EPS: float = 1e-15


#: Tolerance on a probability vector: each value in [-PROB_ATOL, 1 + PROB_ATOL], each row sum
#: within PROB_ATOL of 1. Float32 softmax rows (torch, ONNX) miss 1 by up to 1.5e-7 for 3 classes
#: and 3.7e-7 for 10; the pipeline's float64 forecasts and de-margined prices by at most 6e-16.
PROB_ATOL: float = 1e-6


def check_probabilities(p: npt.ArrayLike, name: str = "p") -> FloatArray:
    """Return ``p`` as float64, shape (n, k), once every row is checked to be a distribution.

    A row holding a NaN is a missing forecast and passes (the scores count it as NaN). Every
    other value must lie in [0, 1] and every row without NaN must sum to 1, both within
    :data:`PROB_ATOL`.

    Parameters
    ----------
    p
        Probabilities, shape (n, k).
    name
        Argument name used in error messages.

    Raises
    ------
    ValueError
        On a wrong shape, or naming ``name``, the first bad row and its values.

    Examples
    --------
    >>> check_probabilities([[0.2, 0.8], [np.nan, np.nan]]).shape
    (2, 2)
    >>> check_probabilities([[0.9, 0.9]], name="probs")
    Traceback (most recent call last):
    ...
    ValueError: probs row 0: probabilities must sum to 1 (within 1e-06), got 1.8: [0.9, 0.9]
    """
    p_arr = np.asarray(p, dtype=np.float64)
    if p_arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, k), got {p_arr.shape}")
    missing = np.isnan(p_arr)
    outside = ~missing & ((p_arr < -PROB_ATOL) | (p_arr > 1.0 + PROB_ATOL))
    sums = np.where(missing.any(axis=1), 1.0, p_arr.sum(axis=1))
    bad_range = np.any(outside, axis=1)
    bad = bad_range | (np.abs(sums - 1.0) > PROB_ATOL)
    if np.any(bad):
        row = int(np.argmax(bad))
        values = p_arr[row].tolist()
        if bad_range[row]:
            raise ValueError(f"{name} row {row}: probabilities must be in [0, 1], got {values}")
        raise ValueError(
            f"{name} row {row}: probabilities must sum to 1 (within {PROB_ATOL:g}), "
            f"got {sums[row]:.12g}: {values}"  # at 6 digits 1.000002 read "got 1"
        )
    return p_arr


def _check(y: npt.ArrayLike, p: npt.ArrayLike) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Validate ``y`` (n,) int class indices (-1 = excluded) and ``p`` (n, k) probabilities."""
    p_arr = check_probabilities(p, "p")
    y_arr = np.asarray(y)
    n_rows, n_classes = p_arr.shape
    if y_arr.shape != (n_rows,):
        raise ValueError(
            f"y must have shape ({n_rows},), one label per row of p, got {y_arr.shape}"
        )
    try:
        y_num = y_arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"y must hold integer class indices, got dtype {y_arr.dtype}") from None
    with np.errstate(invalid="ignore"):
        bad = ~((y_num == np.round(y_num)) & (y_num >= -1) & (y_num <= n_classes - 1))
    if np.any(bad):
        row = int(np.argmax(bad))
        raise ValueError(
            f"y row {row}: label must be an integer in [-1, {n_classes - 1}] (-1 = excluded), "
            f"got {y_arr[row : row + 1].tolist()[0]!r}"
        )
    return y_arr.astype(np.int64), p_arr


def _one_hot(y: npt.NDArray[np.int64], n_classes: int) -> FloatArray:
    return (y[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)


def _per_row(loss: FloatArray, y: npt.NDArray[np.int64], p: FloatArray) -> FloatArray:
    """``loss`` where the row is scored; NaN where ``y == -1`` or the row holds a NaN."""
    return np.where((y >= 0) & ~np.isnan(p).any(axis=1), loss, np.nan)


def _mean_included(per_sample: FloatArray, y: npt.NDArray[np.int64]) -> float:
    included = y >= 0
    if not np.any(included):
        return float("nan")
    return float(np.mean(per_sample[included]))


def log_loss_per_sample(y: npt.ArrayLike, p: npt.ArrayLike) -> FloatArray:
    """Negative log probability of the observed class, shape (n,).

    NaN where ``y == -1`` or the row holds a NaN probability (whichever class it is in).
    Probabilities are clipped to ``[1e-15, 1]`` first.

    Examples
    --------
    >>> log_loss_per_sample([0, -1], [[0.5, 0.5], [0.2, 0.8]]).round(4)
    array([0.6931,    nan])
    """
    y_int, p_arr = _check(y, p)
    picked = p_arr[np.arange(len(y_int)), np.maximum(y_int, 0)]
    loss = -np.log(np.clip(picked, LOG_LOSS_EPS, 1.0))
    return _per_row(loss, y_int, p_arr)


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean log loss (natural log) over rows with ``y != -1``.

    Equals ``sklearn.metrics.log_loss(y, p, labels=range(k))`` for probabilities inside
    ``[eps, 1 - eps]``. A row with a NaN probability, in any class, makes the mean NaN (as for
    every score here): mask such rows first. Like every score here it raises ``ValueError``,
    naming the first bad row, on a label outside [-1, k - 1] or on a row of ``p`` that is not a
    distribution (see :func:`check_probabilities`).

    Examples
    --------
    >>> round(log_loss([0, 1], [[0.8, 0.2], [0.4, 0.6]]), 4)
    0.367
    """
    y_int, _ = _check(y, p)
    return _mean_included(log_loss_per_sample(y, p), y_int)


def brier_score_per_sample(y: npt.ArrayLike, p: npt.ArrayLike) -> FloatArray:
    """Sum over classes of the squared error, shape (n,), in [0, 2].

    NaN where ``y == -1`` or the row holds a NaN probability.

    Examples
    --------
    >>> brier_score_per_sample([0], [[0.5, 0.3, 0.2]]).round(2)
    array([0.38])
    """
    y_int, p_arr = _check(y, p)
    loss = np.sum((p_arr - _one_hot(y_int, p_arr.shape[1])) ** 2, axis=1)
    return _per_row(loss, y_int, p_arr)


def brier_score(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Multiclass Brier score: mean over rows (``y != -1``) of the sum of squared errors.

    This is Brier's (1950) original definition, in [0, 2]. It equals
    ``sklearn.metrics.brier_score_loss(y, p, labels=range(k), scale_by_half=False)`` for any
    ``k``; for two classes sklearn's default (``scale_by_half="auto"``), which scores only the
    positive class, ``brier_score_loss(y, p[:, 1])``, is exactly half of this value.

    Examples
    --------
    >>> brier_score([0, 1], [[1.0, 0.0], [0.5, 0.5]])
    0.25
    """
    y_int, _ = _check(y, p)
    return _mean_included(brier_score_per_sample(y, p), y_int)


def rps_per_sample(y: npt.ArrayLike, p: npt.ArrayLike) -> FloatArray:
    """Ranked probability score per row, in [0, 1].

    NaN where ``y == -1`` or the row holds a NaN probability (also in the last class, which
    the cumulative sums leave out).

    ``RPS = sum_{j<k} (P_j - O_j)^2 / (k - 1)`` with ``P`` and ``O`` the cumulative forecast and
    outcome (Epstein 1969; Constantinou & Fenton 2012); classes must be ordered (home, draw, away).

    Examples
    --------
    >>> rps_per_sample([0], [[1.0, 0.0, 0.0]])
    array([0.])
    >>> rps_per_sample([2], [[1.0, 0.0, 0.0]])
    array([1.])
    """
    y_int, p_arr = _check(y, p)
    n_classes = p_arr.shape[1]
    if n_classes < 2:
        raise ValueError("RPS needs at least two classes")
    cum_forecast = np.cumsum(p_arr, axis=1)[:, :-1]
    cum_outcome = np.cumsum(_one_hot(y_int, n_classes), axis=1)[:, :-1]
    loss = np.sum((cum_forecast - cum_outcome) ** 2, axis=1) / (n_classes - 1)
    return _per_row(loss, y_int, p_arr)


def rps(y: npt.ArrayLike, p: npt.ArrayLike) -> float:
    """Mean ranked probability score over rows with ``y != -1``, in [0, 1].

    Examples
    --------
    >>> round(rps([0, 1], [[0.6, 0.3, 0.1], [0.3, 0.4, 0.3]]), 4)
    0.0875
    """
    y_int, _ = _check(y, p)
    return _mean_included(rps_per_sample(y, p), y_int)


def _bin_index(p_col: FloatArray, n_bins: int) -> npt.NDArray[np.int64]:
    # Equal-width bins on [0, 1]; the last bin is closed so p = 1 falls in it.
    return np.minimum((p_col * n_bins).astype(np.int64), n_bins - 1)


def reliability_curve(
    y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10
) -> dict[int, dict[str, FloatArray]]:
    """Reliability diagram per class: mean forecast, observed frequency and count per bin.

    Parameters
    ----------
    y
        Class indices, shape (n,); rows with -1 are excluded.
    p
        Probabilities, shape (n, k).
    n_bins
        Number of equal-width bins on [0, 1].

    Returns
    -------
    dict
        ``{class_index: {"bin_edges": (n_bins + 1,), "p_mean": (n_bins,), "freq": (n_bins,),
        "n": (n_bins,)}}``; empty bins have ``n = 0`` and NaN ``p_mean`` and ``freq``. Rows with
        ``y == -1`` or any NaN probability are left out.

    Examples
    --------
    >>> curve = reliability_curve([0, 1], [[0.9, 0.1], [0.2, 0.8]], n_bins=2)
    >>> curve[0]["freq"], curve[0]["n"]
    (array([0., 1.]), array([1., 1.]))
    """
    y_int, p_arr = _check(y, p)
    keep = (y_int >= 0) & np.all(np.isfinite(p_arr), axis=1)
    y_int, p_arr = y_int[keep], p_arr[keep]
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    curves: dict[int, dict[str, FloatArray]] = {}
    for c in range(p_arr.shape[1]):
        bins = _bin_index(p_arr[:, c], n_bins)
        counts = np.bincount(bins, minlength=n_bins).astype(np.float64)
        p_sum = np.bincount(bins, weights=p_arr[:, c], minlength=n_bins)
        hit_sum = np.bincount(bins, weights=(y_int == c).astype(np.float64), minlength=n_bins)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_mean = np.where(counts > 0, p_sum / counts, np.nan)
            freq = np.where(counts > 0, hit_sum / counts, np.nan)
        curves[c] = {"bin_edges": edges, "p_mean": p_mean, "freq": freq, "n": counts}
    return curves


def ece(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> float:
    """Classwise expected calibration error (Kull et al. 2019), averaged over classes.

    For each class ``c`` the forecasts ``p[:, c]`` are put in ``n_bins`` equal-width bins and
    ``ECE_c = sum_b (n_b / n) |mean(p_b) - freq_b|``; the result is ``mean_c ECE_c``. Classwise
    (rather than top-label) ECE checks every column, including draws, which top-label ECE
    almost never sees in football. Rows with ``y == -1`` are excluded; NaN probabilities on an
    included row make the result NaN, as for the other scores.

    Examples
    --------
    >>> ece([0, 1], [[1.0, 0.0], [0.0, 1.0]])
    0.0
    >>> round(ece([0, 0], [[0.7, 0.3], [0.7, 0.3]]), 4)
    0.3
    """
    y_int, p_arr = _check(y, p)
    if np.any(~np.isfinite(p_arr[y_int >= 0])):
        return float("nan")
    curves = reliability_curve(y_int, p_arr, n_bins)
    per_class = []
    for curve in curves.values():
        n_total = curve["n"].sum()
        if n_total == 0:
            return float("nan")
        gap = np.abs(np.nan_to_num(curve["p_mean"]) - np.nan_to_num(curve["freq"]))
        per_class.append(float(np.sum(curve["n"] * gap) / n_total))
    return float(np.mean(per_class))


def score_all(y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 10) -> dict[str, Any]:
    """All scores on the same rows: ``log_loss``, ``brier``, ``rps``, ``ece`` and ``n``.

    ``n`` counts the rows that were scored (``y != -1``).

    Examples
    --------
    >>> s = score_all([0, 1, -1], [[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])
    >>> s["n"], round(s["brier"], 3)
    (2, 0.13)
    """
    y_int, _ = _check(y, p)
    return {
        "log_loss": log_loss(y, p),
        "brier": brier_score(y, p),
        "rps": rps(y, p),
        "ece": ece(y, p, n_bins),
        "n": int(np.sum(y_int >= 0)),
    }
