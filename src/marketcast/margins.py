"""Bookmaker margins: overround and de-margined implied probabilities."""

from __future__ import annotations

import logging
import math
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ADDITIVE_EPSILON",
    "METHODS",
    "implied_probabilities",
    "overround",
    "power_k",
    "shin_z",
]

FloatArray = npt.NDArray[np.float64]

#: De-margining methods accepted by :func:`implied_probabilities`.
METHODS: Final[tuple[str, ...]] = ("multiplicative", "additive", "power", "shin")

_log = logging.getLogger(__name__)
#: Non-empty once additive de-margining has warned of a floored longshot in this process.
_FLOOR_WARNED: list[bool] = []

#: Floor applied to additive probabilities before renormalising (longshots can go negative).
ADDITIVE_EPSILON: Final[float] = 1e-6

_BISECTION_STEPS: Final[int] = 60  # halves [0, 1) to below 1e-18
_SCALAR_ROWS: Final[int] = 4  # up to this many rows, solve Shin per row in plain floats
_NEWTON_STEPS: Final[int] = 60
_NEWTON_TOL: Final[float] = 1e-14


def _as_rows(odds_decimal: npt.ArrayLike) -> tuple[FloatArray, bool]:
    """Return ``(odds (n, k), was_1d)``; a 1-D input is a single row."""
    arr = np.asarray(odds_decimal, dtype=np.float64)
    if arr.ndim == 1:
        return arr[np.newaxis, :], True
    if arr.ndim != 2:
        raise ValueError(f"odds must be 1-D or 2-D, got shape {arr.shape}")
    return arr, False


def _inverse_odds(odds: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Return raw implied probabilities ``1 / odds`` (n, k) and the mask of usable rows (n,)."""
    valid = np.all(np.isfinite(odds) & (odds > 1.0), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(valid[:, None], 1.0 / odds, np.nan)
    return inv, valid


def _normalise(probs: FloatArray) -> FloatArray:
    """Scale each row to sum to 1."""
    return np.asarray(probs / probs.sum(axis=1, keepdims=True), dtype=np.float64)


def _restore(rows: FloatArray, was_1d: bool) -> FloatArray:
    """Undo :func:`_as_rows` on a per-row result: a 1-D input gets its single row back."""
    return np.asarray(rows[0] if was_1d else rows, dtype=np.float64)


def overround(odds_decimal: npt.ArrayLike) -> FloatArray:
    """Bookmaker overround ``sum_i 1/odds_i - 1`` per row.

    Parameters
    ----------
    odds_decimal
        Decimal odds, shape (n, k) or (k,).

    Returns
    -------
    numpy.ndarray
        Shape (n,) (or shape () for a 1-D input); NaN for rows with any missing odds or odds <= 1.

    Examples
    --------
    >>> overround(np.array([[1.9, 1.9], [2.0, 2.0]])).round(4)
    array([0.0526, 0.    ])
    """
    odds, was_1d = _as_rows(odds_decimal)
    inv, _ = _inverse_odds(odds)
    return _restore(inv.sum(axis=1) - 1.0, was_1d)


def quote_overround(price: tuple[float, ...]) -> float:
    """`overround` of one quote in plain floats, to the same bits (summed in numpy's order):
    the server's per-fixture row, where numpy on one row costs ten times the arithmetic.

    Examples
    --------
    >>> round(quote_overround((1.9, 1.9)), 4), quote_overround((1.0, 3.0))
    (0.0526, nan)
    """
    if all(math.isfinite(x) and x > 1.0 for x in price):
        total = 0.0
        for x in price:
            total += 1.0 / x
        return total - 1.0
    return math.nan


def _multiplicative(inv: FloatArray) -> FloatArray:
    return _normalise(inv)


def _additive(inv: FloatArray) -> FloatArray:
    # Subtract the margin equally from each outcome; longshots can go below zero, so floor them at
    # ADDITIVE_EPSILON and renormalise (the result is then no longer a pure additive shift).
    n_outcomes = inv.shape[1]
    probs = inv - (inv.sum(axis=1, keepdims=True) - 1.0) / n_outcomes
    floored = probs < ADDITIVE_EPSILON  # NaN rows compare False
    if floored.any():
        rows = np.flatnonzero(floored.any(axis=1))
        # a warning the first time in a process, then debug: a server de-margins one quote
        # a request, and would warn on every longshot
        level = logging.DEBUG if _FLOOR_WARNED else logging.WARNING
        _log.log(
            level,
            "additive de-margining floored %d probabilities in %d of %d rows (first row %d) "
            "at %g: the margin's equal share exceeds a longshot's 1/odds; shin or "
            "multiplicative keep it positive (later floors are logged at DEBUG)",
            int(floored.sum()),
            len(rows),
            len(probs),
            int(rows[0]),
            ADDITIVE_EPSILON,
        )
        _FLOOR_WARNED.append(True)
    probs = np.maximum(probs, ADDITIVE_EPSILON)
    return _normalise(probs)


def power_k(odds_decimal: npt.ArrayLike) -> FloatArray:
    """Exponent ``k`` of the power method per row: ``sum_i (1/odds_i)^k = 1``.

    ``k > 1`` for a positive overround, ``k = 1`` for none and ``k < 1`` for a negative one.
    Solved with Newton's method on ``g(k) = log sum_i pi_i^k``, vectorised over rows: ``g`` is
    convex and decreasing, and the start (1, or 0 for a booksum under 1) is left of the root,
    so the iterates rise to it monotonically, also for a booksum far below 1 (best-odds rows).

    Parameters
    ----------
    odds_decimal
        Decimal odds, shape (n, k) or (k,).

    Returns
    -------
    numpy.ndarray
        Shape (n,) (shape () for 1-D input); NaN for unusable rows.

    Examples
    --------
    >>> float(power_k(np.array([2.0, 2.0])))
    1.0
    >>> k = float(power_k(np.array([1000.0, 1000.0, 1000.0])))  # 3 * 0.001^k = 1
    >>> bool(abs(k - np.log(3) / np.log(1000)) < 1e-12)
    True
    """
    odds, was_1d = _as_rows(odds_decimal)
    inv, valid = _inverse_odds(odds)
    k = _solve_power_k(inv, valid)
    return _restore(k, was_1d)


def _solve_power_k(inv: FloatArray, valid: npt.NDArray[np.bool_]) -> FloatArray:
    # Newton on g(k) = log sum_i pi_i^k, whose root is the power method's k. g is convex (a
    # log-sum-exp of lines in k) and decreasing, and g > 0 left of the root, so from a start left
    # of it (k = 1 when the booksum is >= 1, else k = 0, where g = log(outcomes) > 0) every
    # tangent lands left of the root again: the iterates rise to it without overshooting, and g
    # is nearly linear, so a few steps do. Newton on f(k) = sum_i pi_i^k - 1 from k = 1 jumped
    # far left on a booksum of 0.02 or less and crawled back (f is exponential there): after 60
    # steps [1000, 1000, 1000] read k = -38.6 for 0.159, and [55.556, 500] swapped favourite
    # and longshot.
    log_inv = np.log(np.where(valid[:, None], inv, 0.5))
    booksum = np.where(valid, inv.sum(axis=1), np.nan)
    k = np.where(valid, np.where(booksum >= 1.0, 1.0, 0.0), np.nan)
    for _ in range(_NEWTON_STEPS):
        exponent = k[:, None] * log_inv  # log(pi_i ** k)
        top = exponent.max(axis=1, keepdims=True)
        weights = np.exp(exponent - top)
        total = weights.sum(axis=1)
        g = top[:, 0] + np.log(total)
        slope = (weights * log_inv).sum(axis=1) / total  # < 0: a weighted mean of log pi_i
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(valid, g / slope, 0.0)
        k = k - step
        if np.all(np.abs(np.where(valid, step, 0.0)) <= _NEWTON_TOL * np.maximum(1.0, np.abs(k))):
            break
    return k


def _power(inv: FloatArray, valid: npt.NDArray[np.bool_]) -> FloatArray:
    k = _solve_power_k(inv, valid)
    probs = inv ** k[:, None]
    # Newton leaves a residual of order 1e-16; renormalising makes rows sum to 1 exactly.
    return _normalise(probs)


def _shin_probabilities(inv: FloatArray, z: FloatArray) -> FloatArray:
    """Jullien & Salanié (1994) closed form of Shin's true probabilities for a given ``z``."""
    booksum = inv.sum(axis=1, keepdims=True)
    zc = z[:, None]
    probs = (np.sqrt(zc**2 + 4.0 * (1.0 - zc) * inv**2 / booksum) - zc) / (2.0 * (1.0 - zc))
    return np.asarray(probs, dtype=np.float64)


def _solve_shin_z(inv: FloatArray, valid: npt.NDArray[np.bool_]) -> FloatArray:
    # Shin (1993): sum_i p_i(z) = sqrt(B) > 1 at z = 0 and sum_i pi_i^2 / B < 1 as z -> 1, and the
    # sum falls with z, so bisection on [0, 1) finds the unique insider share. Rows without a
    # positive overround have no informed-trader interpretation: z = 0 there.
    if inv.shape[0] <= _SCALAR_ROWS:
        # A server de-margins one quote at a time: plain floats beat numpy's per-call overhead.
        return np.array(
            [
                _solve_shin_z_row(row.tolist()) if ok else np.nan
                for row, ok in zip(inv, valid, strict=True)
            ],
            dtype=np.float64,
        )
    booksum = np.where(valid, inv.sum(axis=1), np.nan)
    solvable = valid & (booksum > 1.0)
    safe_inv = np.where(solvable[:, None], inv, 0.5)
    lo = np.zeros(inv.shape[0])
    hi = np.ones(inv.shape[0])
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        too_much = _shin_probabilities(safe_inv, mid).sum(axis=1) > 1.0
        lo = np.where(too_much, mid, lo)
        hi = np.where(too_much, hi, mid)
    z = 0.5 * (lo + hi)
    return np.where(solvable, z, np.where(valid, 0.0, np.nan))


def _solve_shin_z_row(inv: list[float]) -> float:
    """:func:`_solve_shin_z` for one row, in plain floats: Newton's method kept inside a
    shrinking bracket (a step that would leave it bisects instead).

    ``f(z) = sum_i p_i(z) - 1`` falls from ``sqrt(B) - 1 > 0`` at 0, so the root is bracketed in
    [0, 1) throughout; Newton takes 4-6 steps where the plain bisection took 60 (a quarter of a
    served forecast's CPU went to it). Both agree to 1e-15 (``tests/unit``).
    """
    booksum = sum(inv)
    if not booksum > 1.0:
        return 0.0
    shares = [4.0 * x * x / booksum for x in inv]  # 4 x_i^2 / B
    lo, hi, z = 0.0, 1.0, 0.0
    for _ in range(_BISECTION_STEPS):
        total = -1.0
        slope = 0.0
        for a in shares:
            root = math.sqrt(z * z + (1.0 - z) * a)
            total += (root - z) / (2.0 * (1.0 - z))
            # d/dz of (root - z) / (2 (1 - z)), with d root / dz = (2 z - a) / (2 root)
            d_root = (2.0 * z - a) / (2.0 * root)
            slope += ((d_root - 1.0) * (1.0 - z) + (root - z)) / (2.0 * (1.0 - z) ** 2)
        if total > 0.0:
            lo = z
        else:
            hi = z
        if total == 0.0 or hi - lo <= 1e-17:
            break
        step = total / slope if slope < 0.0 else math.inf
        candidate = z - step
        if not lo < candidate < hi:
            candidate = 0.5 * (lo + hi)
        if abs(candidate - z) <= 1e-16 * max(1.0, z):
            z = candidate
            break
        z = candidate
    return z


def shin_z(odds_decimal: npt.ArrayLike) -> FloatArray:
    """Shin's share of insider trading ``z`` per row (Shin 1993; Jullien & Salanié 1994).

    Parameters
    ----------
    odds_decimal
        Decimal odds, shape (n, k) or (k,).

    Returns
    -------
    numpy.ndarray
        ``z`` in [0, 1), shape (n,) (shape () for 1-D input); 0 for rows with zero or negative
        overround, NaN for rows with missing odds or odds <= 1.

    Examples
    --------
    >>> round(float(shin_z(np.array([1.8, 3.9, 4.6]))), 4)
    0.0147
    """
    odds, was_1d = _as_rows(odds_decimal)
    inv, valid = _inverse_odds(odds)
    z = _solve_shin_z(inv, valid)
    return _restore(z, was_1d)


def _shin(inv: FloatArray, valid: npt.NDArray[np.bool_]) -> FloatArray:
    z = _solve_shin_z(inv, valid)
    probs = _shin_probabilities(inv, np.where(np.isfinite(z), z, 0.0))
    probs = np.clip(probs, 0.0, 1.0)
    return _normalise(probs)


def implied_probabilities(
    odds_decimal: npt.ArrayLike, method: str = "multiplicative"
) -> FloatArray:
    """De-margined implied probabilities per row.

    Parameters
    ----------
    odds_decimal
        Decimal odds, shape (n, k) or (k,), columns in ``OUTCOMES[market]`` order; works for any
        ``k >= 2``.
    method
        ``"multiplicative"`` (``pi_i / sum pi``), ``"additive"`` (subtract the margin equally;
        values below ``ADDITIVE_EPSILON`` are floored there and the row renormalised),
        ``"power"`` (``pi_i ** k`` with ``k`` solving ``sum = 1``) or ``"shin"`` (Shin 1993,
        solved for ``z`` per row; rows with zero or negative overround get ``z = 0``, i.e. the
        normalised row). ``pi_i = 1 / odds_i``.

    Returns
    -------
    numpy.ndarray
        Same shape as the input; rows sum to 1 and lie in [0, 1]. Rows with any NaN (or any
        odds <= 1) come back all NaN.

    Examples
    --------
    >>> implied_probabilities(np.array([[2.0, 2.0]]))
    array([[0.5, 0.5]])
    >>> implied_probabilities(np.array([1.8, 3.9, 4.6]), method="shin").round(4)
    array([0.5442, 0.2472, 0.2085])
    """
    if method not in METHODS:
        raise ValueError(f"unknown de-margining method {method!r}; expected one of {METHODS}")
    odds, was_1d = _as_rows(odds_decimal)
    inv, valid = _inverse_odds(odds)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "multiplicative":
            probs = _multiplicative(inv)
        elif method == "additive":
            probs = _additive(inv)
        elif method == "power":
            probs = _power(inv, valid)
        else:
            probs = _shin(inv, valid)
    probs = np.where(valid[:, None], probs, np.nan)
    return _restore(probs, was_1d)
