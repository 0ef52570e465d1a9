"""Staking rules: one bet per match at most, on the largest edge, flat or (fractional) Kelly."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Final

import numpy as np
import numpy.typing as npt

from marketcast.evaluation.scoring import check_probabilities
from marketcast.types import StakeDecision

__all__ = [
    "RULES",
    "applied_kelly_multiplier",
    "applied_stake_cap",
    "check_staking_parameters",
    "decide_stakes",
    "stake_fractions",
]

FloatArray = npt.NDArray[np.float64]

#: Staking rules accepted by :func:`stake_fractions` and :func:`decide_stakes`.
RULES: Final[tuple[str, ...]] = ("flat", "kelly", "fractional_kelly")


def check_staking_parameters(
    kelly_fraction: float, min_edge: float, max_stake_fraction: float, bankroll_units: float
) -> None:
    """Raise ``ValueError``, naming the parameter, unless each is a finite number in range.

    ``kelly_fraction`` and ``max_stake_fraction`` must be in (0, 1], ``min_edge`` >= 0 and
    ``bankroll_units`` > 0, whatever the rule (as in the run config).

    Examples
    --------
    >>> check_staking_parameters(0.25, 0.02, 0.05, 100.0)
    >>> check_staking_parameters(0.25, 0.02, 0.0, 100.0)
    Traceback (most recent call last):
    ...
    ValueError: max_stake_fraction must be a finite number in (0, 1], got 0.0
    """
    # A zero Kelly multiplier or stake cap would never bet; a negative min_edge would bet on
    # expected losses (the run config's BacktestSettings has the same ranges).
    checks: tuple[tuple[str, float, str, Callable[[float], bool]], ...] = (
        ("kelly_fraction", kelly_fraction, "in (0, 1]", lambda x: 0.0 < x <= 1.0),
        ("min_edge", min_edge, ">= 0", lambda x: x >= 0.0),
        ("max_stake_fraction", max_stake_fraction, "in (0, 1]", lambda x: 0.0 < x <= 1.0),
        ("bankroll_units", bankroll_units, "> 0", lambda x: x > 0.0),
    )
    for name, value, wanted, in_range in checks:
        is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (is_real and math.isfinite(value) and in_range(float(value))):
            raise ValueError(f"{name} must be a finite number {wanted}, got {value!r}")


def applied_kelly_multiplier(rule: str, kelly_fraction: float) -> float | None:
    """The multiple of the full Kelly stake that ``rule`` stakes, or ``None`` for a flat rule.

    ``"fractional_kelly"`` stakes ``kelly_fraction`` of it, ``"kelly"`` the whole stake (1,
    whatever ``kelly_fraction`` says) and ``"flat"`` 1 unit, no Kelly stake at all.

    Examples
    --------
    >>> applied_kelly_multiplier("fractional_kelly", 0.25), applied_kelly_multiplier("kelly", 0.25)
    (0.25, 1.0)
    >>> applied_kelly_multiplier("flat", 0.25) is None
    True
    """
    if rule not in RULES:
        raise ValueError(f"unknown staking rule {rule!r}; expected one of {RULES}")
    if rule == "flat":
        return None
    return 1.0 if rule == "kelly" else float(kelly_fraction)


def applied_stake_cap(rule: str, max_stake_fraction: float) -> float | None:
    """The cap on a stake, as a fraction of the bankroll, under ``rule``; ``None`` for a flat
    rule, whose 1-unit stakes are never capped.

    Examples
    --------
    >>> applied_stake_cap("kelly", 0.05), applied_stake_cap("flat", 0.005)
    (0.05, None)
    """
    if rule not in RULES:
        raise ValueError(f"unknown staking rule {rule!r}; expected one of {RULES}")
    return None if rule == "flat" else float(max_stake_fraction)


def _validate(
    probs: npt.ArrayLike,
    odds_decimal: npt.ArrayLike,
    rule: str,
    kelly_fraction: float,
    min_edge: float,
    max_stake_fraction: float,
    bankroll_units: float,
) -> tuple[FloatArray, FloatArray]:
    if rule not in RULES:
        raise ValueError(f"unknown staking rule {rule!r}; expected one of {RULES}")
    check_staking_parameters(kelly_fraction, min_edge, max_stake_fraction, bankroll_units)
    p = np.asarray(probs, dtype=np.float64)
    o = np.asarray(odds_decimal, dtype=np.float64)
    if p.ndim != 2 or p.shape != o.shape:
        raise ValueError(f"probs and odds must both have shape (n, k); got {p.shape}, {o.shape}")
    return check_probabilities(p, "probs"), o


def _edges(p: FloatArray, o: FloatArray) -> FloatArray:
    """Expected profit of 1 unit, ``p * odds - 1``, shape (n, k); NaN where unpriced.

    A row holding a NaN probability is no forecast: all its edges are NaN.
    """
    forecast = ~np.isnan(p).any(axis=1, keepdims=True)  # (n, 1)
    usable = forecast & np.isfinite(o) & (o > 1.0)
    return np.where(usable, p * o - 1.0, np.nan)


def stake_fractions(
    probs: npt.ArrayLike,
    odds_decimal: npt.ArrayLike,
    rule: str = "fractional_kelly",
    kelly_fraction: float = 0.25,
    min_edge: float = 0.02,
    max_stake_fraction: float = 0.05,
    bankroll_units: float = 100.0,
) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
    """Vectorised staking: at most one bet per match, on the outcome with the largest edge.

    Units: stakes are fractions of a fixed notional bankroll (``bankroll_units``, 100 units by
    default) that does not compound, so matches played at the same time are sized independently.
    A flat stake is 1 unit (``1 / bankroll_units`` of the bankroll); a Kelly stake is
    ``multiplier * edge / (odds - 1)`` (Kelly 1956, one outcome at a time), capped at
    ``max_stake_fraction``; a Kelly rule never bets on a non-positive edge.

    Parameters
    ----------
    probs
        Model probabilities, shape (n, k). A row holding a NaN is no forecast and is not bet;
        any other row must be a distribution (values in [0, 1] summing to 1, see
        :func:`~marketcast.evaluation.scoring.check_probabilities`), else ``ValueError``
        names the row.
    odds_decimal
        Decimal odds available, shape (n, k); NaN or <= 1 means no price for that outcome.
    rule
        ``"flat"`` (1 unit), ``"kelly"`` (full Kelly) or ``"fractional_kelly"``
        (``kelly_fraction`` of full Kelly).
    kelly_fraction
        Multiplier of the Kelly stake for ``"fractional_kelly"``, in (0, 1]; ``"kelly"`` and
        ``"flat"`` do not use it (see :func:`applied_kelly_multiplier`).
    min_edge
        A bet needs ``edge = p * odds - 1 >= min_edge``; ``min_edge >= 0``.
    max_stake_fraction
        Cap on a Kelly stake, as a fraction of the bankroll (flat stakes are not capped, see
        :func:`applied_stake_cap`), in (0, 1].
    bankroll_units
        Notional bankroll, > 0; a flat stake is ``1 / bankroll_units`` of it.

    The four numbers are checked whatever the rule (:func:`check_staking_parameters`).

    Returns
    -------
    outcome_index : numpy.ndarray
        int64, shape (n,); -1 where no bet.
    stake_fraction : numpy.ndarray
        Shape (n,); 0 where no bet.
    edge : numpy.ndarray
        Shape (n,); the largest edge of the row (also for rows without a bet), NaN when no
        outcome is priced or the row is no forecast.

    Examples
    --------
    >>> idx, frac, edge = stake_fractions([[0.5, 0.3, 0.2]], [[2.2, 3.0, 5.0]], rule="kelly",
    ...                                   max_stake_fraction=1.0)
    >>> int(idx[0]), round(float(frac[0]), 4), round(float(edge[0]), 4)
    (0, 0.0833, 0.1)
    """
    p, o = _validate(
        probs, odds_decimal, rule, kelly_fraction, min_edge, max_stake_fraction, bankroll_units
    )
    edges = _edges(p, o)
    priced = np.any(np.isfinite(edges), axis=1)
    best = np.argmax(np.where(np.isfinite(edges), edges, -np.inf), axis=1)
    rows = np.arange(p.shape[0])
    best_edge = np.where(priced, edges[rows, np.where(priced, best, 0)], np.nan)
    bet = priced & (best_edge >= min_edge)
    best_odds = o[rows, best]
    multiplier = applied_kelly_multiplier(rule, kelly_fraction)
    cap = applied_stake_cap(rule, max_stake_fraction)
    if multiplier is None or cap is None:  # flat
        fraction = np.full(p.shape[0], 1.0 / bankroll_units)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            kelly = best_edge / (best_odds - 1.0)
        fraction = np.minimum(multiplier * kelly, cap)
        bet &= fraction > 0
    outcome_index = np.where(bet, best, -1).astype(np.int64)
    stake_fraction = np.where(bet, fraction, 0.0)
    return outcome_index, stake_fraction, best_edge


def decide_stakes(
    probs: npt.ArrayLike,
    odds_decimal: npt.ArrayLike,
    rule: str = "fractional_kelly",
    kelly_fraction: float = 0.25,
    min_edge: float = 0.02,
    max_stake_fraction: float = 0.05,
    bankroll_units: float = 100.0,
) -> list[StakeDecision]:
    """One :class:`~marketcast.types.StakeDecision` per match; see :func:`stake_fractions`.

    ``reason`` is the rule name (``"... capped at 0.05"`` when the cap binds) for a bet, and
    says why not otherwise: ``"no bet: no forecast"`` (a NaN probability in the row), ``"no
    bet: no priced outcome"``, ``"no bet: best edge ... < min_edge ..."``, or, for a Kelly rule
    with ``min_edge = 0``, ``"no bet: best edge 0.0000 is not positive (kelly bets only a
    gain)"``. Out-of-range parameters and probability rows are ``ValueError``, not reasons.

    Examples
    --------
    >>> decide_stakes([[0.5, 0.5]], [[2.2, 1.8]], rule="flat")[0]
    StakeDecision(outcome_index=0, stake_fraction=0.01, edge=0.10000000000000009, reason='flat')
    >>> decide_stakes([[0.5, 0.5]], [[2.0, 1.8]])[0].reason
    'no bet: best edge 0.0000 < min_edge 0.0200'
    """
    p, o = _validate(
        probs, odds_decimal, rule, kelly_fraction, min_edge, max_stake_fraction, bankroll_units
    )
    index, fraction, edge = stake_fractions(
        p, o, rule, kelly_fraction, min_edge, max_stake_fraction, bankroll_units
    )
    forecast = ~np.any(np.isnan(p), axis=1)
    decisions: list[StakeDecision] = []
    for i, f, e, has_forecast in zip(
        index.tolist(), fraction.tolist(), edge.tolist(), forecast.tolist(), strict=True
    ):
        if i < 0:
            if not has_forecast:
                reason = "no bet: no forecast"
            elif np.isnan(e):
                reason = "no bet: no priced outcome"
            elif e < min_edge:
                reason = f"no bet: best edge {e:.4f} < min_edge {min_edge:.4f}"
            else:  # only a Kelly rule with min_edge = 0 skips an edge that clears min_edge
                reason = f"no bet: best edge {e:.4f} is not positive ({rule} bets only a gain)"
            decisions.append(StakeDecision(None, 0.0, e, reason))
            continue
        reason = rule
        if rule != "flat" and f >= max_stake_fraction:
            reason = f"{rule}, capped at {max_stake_fraction:g}"
        decisions.append(StakeDecision(int(i), float(f), float(e), reason))
    return decisions
