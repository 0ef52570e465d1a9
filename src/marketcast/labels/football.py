"""Football settlement: 1X2, over/under and Asian handicap outcomes, labels and per-unit profits."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from marketcast.types import OUTCOMES, MarketKind

__all__ = [
    "asian_handicap_label",
    "asian_handicap_profit",
    "asian_handicap_result",
    "bet_profit",
    "outcome_1x2",
    "outcome_over_under",
    "over_under_result",
    "profit_matrix",
    "result_matrix",
    "settle",
    "split_quarter_lines",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Label of an excluded sample (a full push): scoring functions drop rows with this label.
EXCLUDED: int = -1


def _goals(goals: npt.ArrayLike) -> FloatArray:
    return np.atleast_1d(np.asarray(goals, dtype=np.float64))


def outcome_1x2(home_goals: npt.ArrayLike, away_goals: npt.ArrayLike) -> IntArray:
    """1X2 outcome index per match: 0 home win, 1 draw, 2 away win.

    Parameters
    ----------
    home_goals, away_goals
        Full-time goals, shape (n,). Matches with missing goals get -1.

    Returns
    -------
    numpy.ndarray
        int64, shape (n,).

    Examples
    --------
    >>> outcome_1x2([2, 1, 0], [0, 1, 3])
    array([0, 1, 2])
    """
    home, away = _goals(home_goals), _goals(away_goals)
    goal_diff = home - away
    label = np.where(goal_diff > 0, 0, np.where(goal_diff < 0, 2, 1))
    return np.where(np.isfinite(goal_diff), label, EXCLUDED).astype(np.int64)


def split_quarter_lines(line: npt.ArrayLike) -> FloatArray:
    """The two whole/half lines a bet on each ``line`` is settled on, shape (n, 2).

    A line that is an odd multiple of 0.25 splits the stake over ``line - 0.25`` and
    ``line + 0.25``; a whole or half line is both halves. Lines are snapped onto the quarter
    grid first: a line 1e-12 off -0.75 (a computed one, or one sent to the API) put one
    half-stake on sign(1e-12), a half win settled as a full one, and a model priced
    ``2.3 - 1.3`` as a line just under +1. NaN lines give NaN rows.

    Raises
    ------
    ValueError
        Naming the first row whose line is more than 1e-9 off the quarter grid.

    Examples
    --------
    >>> split_quarter_lines([-0.75, 0.5, 1.0 - 1e-12])
    array([[-1. , -0.5],
           [ 0.5,  0.5],
           [ 1. ,  1. ]])
    """
    line = np.atleast_1d(np.asarray(line, dtype=np.float64))
    quarters = line * 4.0
    finite = np.isfinite(quarters)
    off = np.flatnonzero(finite & (np.abs(quarters - np.round(quarters)) > 1e-9))
    if len(off):
        row = int(off[0])
        raise ValueError(f"row {row}: line {float(line[row])!r} is not a multiple of 0.25")
    snapped = np.round(quarters) / 4.0
    is_quarter = finite & (np.abs(np.round(quarters)) % 2 == 1)
    offset = np.where(is_quarter, 0.25, 0.0)
    return np.stack([snapped - offset, snapped + offset], axis=-1)


def _split_line_result(margin_goals: FloatArray, line: FloatArray) -> FloatArray:
    """Result of a 1-unit bet that wins when ``margin_goals + line > 0``, quarter lines split
    (`split_quarter_lines`): the mean of two whole/half-line results, one of
    {1, 0.5, 0, -0.5, -1}. NaN where the margin or line is missing.
    """
    lines = split_quarter_lines(line)
    low = np.sign(margin_goals + lines[..., 0])
    high = np.sign(margin_goals + lines[..., 1])
    return 0.5 * (low + high)


def asian_handicap_result(goal_diff: npt.ArrayLike, line: npt.ArrayLike) -> FloatArray:
    """Result of a 1-unit bet on the home side of an Asian handicap.

    Parameters
    ----------
    goal_diff
        Home goals minus away goals, shape (n,).
    line
        Home handicap (``AHh``), scalar or shape (n,); any multiple of 0.25. Quarter lines split
        the stake: -0.25 is half on 0 and half on -0.5, -0.75 half on -0.5 and half on -1, etc.

    Returns
    -------
    numpy.ndarray
        Shape (n,), values in {1, 0.5, 0, -0.5, -1} (win, half win, push, half loss, loss); NaN
        where the goal difference or line is missing. The away side's result is the negative.

    Raises
    ------
    ValueError
        If a line is not a multiple of 0.25.

    Examples
    --------
    >>> asian_handicap_result([0, 1, 0, 1], [-0.25, -0.75, 0.25, -1.0])
    array([-0.5,  0.5,  0.5,  0. ])
    """
    diff = _goals(goal_diff)
    line_arr = np.broadcast_to(np.asarray(line, dtype=np.float64), diff.shape)
    return _split_line_result(diff, line_arr)


def asian_handicap_profit(result: npt.ArrayLike, odds_decimal: npt.ArrayLike) -> FloatArray:
    """Profit of a 1-unit bet at decimal odds given its settlement result.

    A win returns ``odds - 1``, a half win ``(odds - 1) / 2`` (half the stake wins, half is
    refunded), a push 0, a half loss -0.5 and a loss -1. Applies to any market settled as a
    result in {1, 0.5, 0, -0.5, -1}.

    Parameters
    ----------
    result
        Settlement results, shape (n,) or (n, k).
    odds_decimal
        Decimal odds, broadcastable to ``result``.

    Returns
    -------
    numpy.ndarray
        Profit in stake units, NaN where the result or odds is missing.

    Examples
    --------
    >>> asian_handicap_profit([1.0, 0.5, 0.0, -0.5, -1.0], 1.9)
    array([ 0.9 ,  0.45,  0.  , -0.5 , -1.  ])
    """
    res = np.asarray(result, dtype=np.float64)
    odds = np.asarray(odds_decimal, dtype=np.float64)
    return np.where(res > 0, res * (odds - 1.0), res + 0.0 * odds)


def asian_handicap_label(goal_diff: npt.ArrayLike, line: npt.ArrayLike) -> IntArray:
    """Scoring label of an Asian handicap: 0 home covers, 1 away covers, -1 full push or missing.

    Half results count for the side that is up (a half win for home is label 0).

    Examples
    --------
    >>> asian_handicap_label([0, 0, 1], [-0.25, 0.0, -1.0])
    array([ 1, -1, -1])
    """
    result = asian_handicap_result(goal_diff, line)
    return _label_from_result(result)


def _label_from_result(result: FloatArray) -> IntArray:
    label = np.where(result > 0, 0, np.where(result < 0, 1, EXCLUDED))
    return label.astype(np.int64)


def over_under_result(total_goals: npt.ArrayLike, line: npt.ArrayLike = 2.5) -> FloatArray:
    """Result of a 1-unit *over* bet in {1, 0.5, 0, -0.5, -1}; quarter lines split like handicaps.

    Examples
    --------
    >>> over_under_result([2, 3, 2], [2.5, 2.5, 2.25])
    array([-1. ,  1. , -0.5])
    """
    total = _goals(total_goals)
    line_arr = np.broadcast_to(np.asarray(line, dtype=np.float64), total.shape)
    return _split_line_result(total, -line_arr)


def outcome_over_under(
    home_goals: npt.ArrayLike, away_goals: npt.ArrayLike, line: npt.ArrayLike = 2.5
) -> IntArray:
    """Over/under outcome per match: 0 over, 1 under, -1 push (integer lines) or missing.

    Examples
    --------
    >>> outcome_over_under([2, 1, 1], [1, 1, 1], 2.5)
    array([0, 1, 1])
    >>> outcome_over_under([2, 1], [1, 1], 3.0)
    array([-1,  1])
    """
    total = _goals(home_goals) + _goals(away_goals)
    return _label_from_result(over_under_result(total, line))


def _line_or_default(market: MarketKind, line: npt.ArrayLike | None) -> npt.ArrayLike:
    if line is None:
        if market is MarketKind.ASIAN_HANDICAP:
            raise ValueError("the Asian handicap market needs a line")
        return 2.5
    return line


def settle(
    market: MarketKind | str,
    home_goals: npt.ArrayLike,
    away_goals: npt.ArrayLike,
    line: npt.ArrayLike | None = None,
) -> IntArray:
    """Scoring labels for a market: class index in ``OUTCOMES[market]`` order, -1 excluded.

    Parameters
    ----------
    market
        ``"1x2"``, ``"ou25"`` or ``"ah"``.
    home_goals, away_goals
        Full-time goals, shape (n,).
    line
        Ignored for 1x2; the total line for ou25 (default 2.5); the home handicap for ah (required).

    Returns
    -------
    numpy.ndarray
        int64, shape (n,).

    Examples
    --------
    >>> settle("ah", [1, 2], [1, 0], [-0.5, -2.0])
    array([ 1, -1])
    """
    kind = MarketKind(market)
    if kind is MarketKind.ONE_X_TWO:
        return outcome_1x2(home_goals, away_goals)
    line_value = _line_or_default(kind, line)
    if kind is MarketKind.OVER_UNDER_25:
        return outcome_over_under(home_goals, away_goals, line_value)
    return asian_handicap_label(_goals(home_goals) - _goals(away_goals), line_value)


def result_matrix(
    market: MarketKind | str,
    home_goals: npt.ArrayLike,
    away_goals: npt.ArrayLike,
    line: npt.ArrayLike | None = None,
) -> FloatArray:
    """Settlement result of a 1-unit bet on every outcome, shape (n, k), values in [-1, 1].

    1x2: 1 on the outcome that happened, -1 on the others. ou25: (over, -over) from
    :func:`over_under_result`. ah: (home, -home) from :func:`asian_handicap_result`.
    NaN rows where goals (or the line) are missing.
    """
    kind = MarketKind(market)
    home, away = _goals(home_goals), _goals(away_goals)
    if kind is MarketKind.ONE_X_TWO:
        outcome = outcome_1x2(home, away)
        n_outcomes = len(OUTCOMES[kind])
        hit = outcome[:, None] == np.arange(n_outcomes)[None, :]
        res = np.where(hit, 1.0, -1.0)
        return np.where((outcome >= 0)[:, None], res, np.nan)
    line_value = _line_or_default(kind, line)
    if kind is MarketKind.OVER_UNDER_25:
        first = over_under_result(home + away, line_value)
    else:
        first = asian_handicap_result(home - away, line_value)
    return np.stack([first, -first], axis=1)


def profit_matrix(
    market: MarketKind | str,
    odds_decimal: npt.ArrayLike,
    home_goals: npt.ArrayLike,
    away_goals: npt.ArrayLike,
    line: npt.ArrayLike | None = None,
) -> FloatArray:
    """Profit of a 1-unit bet on each outcome, shape (n, k).

    1x2: ``odds - 1`` on the outcome that happened, -1 elsewhere. ou25 and ah: exact pushes and
    half results through :func:`asian_handicap_profit`. NaN where odds, goals or line are missing.

    Examples
    --------
    >>> profit_matrix("1x2", [[2.0, 3.4, 4.0]], [1], [0])
    array([[ 1., -1., -1.]])
    >>> profit_matrix("ah", [[1.9, 2.0]], [1], [1], [-0.25])
    array([[-0.5,  0.5]])
    """
    results = result_matrix(market, home_goals, away_goals, line)
    odds = np.asarray(odds_decimal, dtype=np.float64).reshape(results.shape)
    return asian_handicap_profit(results, odds)


def bet_profit(
    market: MarketKind | str,
    outcome_index: npt.ArrayLike,
    odds_decimal: npt.ArrayLike,
    home_goals: npt.ArrayLike,
    away_goals: npt.ArrayLike,
    line: npt.ArrayLike | None = None,
) -> FloatArray:
    """Profit per unit staked on one chosen outcome per match.

    Parameters
    ----------
    market
        ``"1x2"``, ``"ou25"`` or ``"ah"``.
    outcome_index
        Chosen outcome per match, shape (n,); a negative index means no bet (profit 0).
    odds_decimal
        Decimal odds taken for the chosen outcome, shape (n,).
    home_goals, away_goals, line
        As in :func:`settle`.

    Returns
    -------
    numpy.ndarray
        Shape (n,).

    Examples
    --------
    >>> bet_profit("1x2", [0, 1, -1], [2.0, 3.5, 2.5], [2, 2, 0], [1, 1, 0])
    array([ 1., -1.,  0.])
    """
    results = result_matrix(market, home_goals, away_goals, line)
    index = np.atleast_1d(np.asarray(outcome_index, dtype=np.int64))
    odds = np.atleast_1d(np.asarray(odds_decimal, dtype=np.float64))
    placed = index >= 0
    chosen = results[np.arange(results.shape[0]), np.where(placed, index, 0)]
    return np.where(placed, asian_handicap_profit(chosen, odds), 0.0)
