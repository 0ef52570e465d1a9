"""Staking rules: one bet per match at most, on the largest edge, flat or (fractional) Kelly."""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from marketcast.types import StakeDecision

__all__ = ["RULES", "decide_stakes", "stake_fractions"]

FloatArray = npt.NDArray[np.float64]

#: Staking rules accepted by :func:`stake_fractions` and :func:`decide_stakes`.
RULES: Final[tuple[str, ...]] = ("flat", "kelly", "fractional_kelly")


def _validate(
    probs: npt.ArrayLike, odds_decimal: npt.ArrayLike, rule: str
) -> tuple[FloatArray, FloatArray]:
    if rule not in RULES:
        raise ValueError(f"unknown staking rule {rule!r}; expected one of {RULES}")
    p = np.asarray(probs, dtype=np.float64)
    o = np.asarray(odds_decimal, dtype=np.float64)
    if p.ndim != 2 or p.shape != o.shape:
        raise ValueError(f"probs and odds must both have shape (n, k); got {p.shape}, {o.shape}")
    return p, o


def _edges(p: FloatArray, o: FloatArray) -> FloatArray:
    """Expected profit of 1 unit, ``p * odds - 1``, shape (n, k); NaN where unpriced."""
    usable = np.isfinite(p) & np.isfinite(o) & (o > 1.0)
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
        Model probabilities, shape (n, k).
    odds_decimal
        Decimal odds available, shape (n, k); NaN or <= 1 means no price for that outcome.
    rule
        ``"flat"`` (1 unit), ``"kelly"`` (full Kelly) or ``"fractional_kelly"``
        (``kelly_fraction`` of full Kelly).
    kelly_fraction
        Multiplier of the Kelly stake for ``"fractional_kelly"``.
    min_edge
        A bet needs ``edge = p * odds - 1 >= min_edge``.
    max_stake_fraction
        Cap on a Kelly stake, as a fraction of the bankroll (flat stakes are not capped).
    bankroll_units
        Notional bankroll; a flat stake is ``1 / bankroll_units`` of it.

    Returns
    -------
    outcome_index : numpy.ndarray
        int64, shape (n,); -1 where no bet.
    stake_fraction : numpy.ndarray
        Shape (n,); 0 where no bet.
    edge : numpy.ndarray
        Shape (n,); the largest edge of the row (also for rows without a bet), NaN when no
        outcome is priced.

    Examples
    --------
    >>> idx, frac, edge = stake_fractions([[0.5, 0.3, 0.2]], [[2.2, 3.0, 5.0]], rule="kelly",
    ...                                   max_stake_fraction=1.0)
    >>> int(idx[0]), round(float(frac[0]), 4), round(float(edge[0]), 4)
    (0, 0.0833, 0.1)
    """
    p, o = _validate(probs, odds_decimal, rule)
    edges = _edges(p, o)
    priced = np.any(np.isfinite(edges), axis=1)
    best = np.argmax(np.where(np.isfinite(edges), edges, -np.inf), axis=1)
    rows = np.arange(p.shape[0])
    best_edge = np.where(priced, edges[rows, np.where(priced, best, 0)], np.nan)
    bet = priced & (best_edge >= min_edge)
    best_odds = o[rows, best]
    if rule == "flat":
        fraction = np.full(p.shape[0], 1.0 / bankroll_units)
    else:
        multiplier = 1.0 if rule == "kelly" else kelly_fraction
        with np.errstate(divide="ignore", invalid="ignore"):
            kelly = best_edge / (best_odds - 1.0)
        fraction = np.minimum(multiplier * kelly, max_stake_fraction)
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
    says why not otherwise.

    Examples
    --------
    >>> decide_stakes([[0.5, 0.5]], [[2.2, 1.8]], rule="flat")[0]
    StakeDecision(outcome_index=0, stake_fraction=0.01, edge=0.10000000000000009, reason='flat')
    >>> decide_stakes([[0.5, 0.5]], [[2.0, 1.8]])[0].reason
    'no bet: best edge 0.0000 < min_edge 0.0200'
    """
    p, o = _validate(probs, odds_decimal, rule)
    index, fraction, edge = stake_fractions(
        p, o, rule, kelly_fraction, min_edge, max_stake_fraction, bankroll_units
    )
    decisions: list[StakeDecision] = []
    for i, f, e in zip(index.tolist(), fraction.tolist(), edge.tolist(), strict=True):
        if i < 0:
            reason = (
                "no bet: no priced outcome"
                if np.isnan(e)
                else f"no bet: best edge {e:.4f} < min_edge {min_edge:.4f}"
            )
            decisions.append(StakeDecision(None, 0.0, e, reason))
            continue
        reason = rule
        if rule != "flat" and f >= max_stake_fraction:
            reason = f"{rule}, capped at {max_stake_fraction:g}"
        decisions.append(StakeDecision(int(i), float(f), float(e), reason))
    return decisions
