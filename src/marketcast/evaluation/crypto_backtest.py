"""Vectorised crypto backtest over many pairs: positions, costs, net returns and finance metrics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from marketcast.costs import (
    SLIPPAGE_EXPONENTS,
    CostModel,
    borrow_cost,
    fee_cost,
    funding_cost,
    slippage_cost,
    spread_cost,
)

__all__ = [
    "BacktestResult",
    "buy_and_hold",
    "finance_metrics",
    "max_drawdown",
    "period_entry_bars",
    "period_returns_from_opens",
    "run_backtest",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Positions may exceed [-1, 1] by float round-off only.
_POSITION_TOLERANCE = 1e-12


@dataclass(frozen=True)
class BacktestResult:
    """Per-period outcome of :func:`run_backtest`; every array has shape ``(n_periods,)``.

    Each value is a fraction of the portfolio's capital for that period (the mean over the
    period's active pair sleeves), and ``net == gross - fee - spread - slippage - funding -
    borrow`` holds exactly, element by element.
    """

    gross: FloatArray
    fee: FloatArray
    spread: FloatArray
    slippage: FloatArray
    funding: FloatArray
    borrow: FloatArray
    net: FloatArray
    turnover: FloatArray
    exposure: FloatArray
    n_active: IntArray
    positions: FloatArray = field(repr=False)  # (n_periods, n_pairs), after forcing untradable to 0
    periods_per_year: float
    costs: CostModel
    n_untradable: int  # pair-periods with a NaN return
    n_forced_exits: int  # of those, pair-periods where a non-zero requested position was set to 0
    n_cost_inputs_filled: (
        int  # traded cells whose spread/volume/volatility came from an earlier bar
    )
    n_funding_missing: int  # held cells with no funding data (charged 0)

    @property
    def per_period_net_returns(self) -> FloatArray:
        """Net return per period, the series to compare two strategies with a paired test."""
        return self.net

    @property
    def n_periods(self) -> int:
        """Number of periods, including those with nothing tradable."""
        return int(self.net.shape[0])

    def capacity_usd(self) -> float:
        """Sleeve notional at which modelled slippage would eat half the gross edge.

        Slippage scales as ``notional ** e`` (``e = 1/2`` square root, ``1`` linear), so with
        total slippage ``S0`` at ``notional_usd = N0`` and total gross return ``G`` (simple sums),
        ``S(N) = G / 2`` gives ``N = N0 * (G / (2 * S0)) ** (1 / e)``. It is 0 when there is no
        gross edge (``G <= 0``) and infinite when nothing is charged for slippage.
        """
        gross_total = float(self.gross.sum())
        slippage_total = float(self.slippage.sum())
        if gross_total <= 0:
            return 0.0
        if self.costs.slippage_model == "none" or slippage_total <= 0:
            return math.inf
        exponent = SLIPPAGE_EXPONENTS[self.costs.slippage_model]
        return self.costs.notional_usd * (gross_total / (2.0 * slippage_total)) ** (1.0 / exponent)

    def metrics(self) -> dict[str, float]:
        """Finance metrics of the net returns plus cost, turnover and capacity figures.

        Keys: those of :func:`finance_metrics` (``hit_rate`` over periods with a position) and
        ``gross_return`` (compounded), ``costs`` (``sum(gross) - sum(net)``, simple sums, so it
        equals the sum of the five cost keys), ``fee_cost``, ``spread_cost``, ``slippage_cost``,
        ``funding_cost``, ``borrow_cost`` (simple sums over periods), ``turnover``
        (annualised: mean per-period turnover times periods per year),
        ``turnover_per_period``, ``exposure`` (mean gross
        exposure), ``capacity_usd``, ``n_untradable``, ``n_forced_exits``,
        ``n_cost_inputs_filled``, ``n_funding_missing``.
        """
        holding = self.exposure > 0
        out = finance_metrics(self.net, self.periods_per_year, active=holding)
        out["gross_return"] = _compounded(self.gross)
        out["costs"] = float(self.gross.sum() - self.net.sum())
        out["fee_cost"] = float(self.fee.sum())
        out["spread_cost"] = float(self.spread.sum())
        out["slippage_cost"] = float(self.slippage.sum())
        out["funding_cost"] = float(self.funding.sum())
        out["borrow_cost"] = float(self.borrow.sum())
        mean_turnover = float(self.turnover.mean()) if self.n_periods else math.nan
        out["turnover"] = mean_turnover * self.periods_per_year
        out["turnover_per_period"] = mean_turnover
        out["exposure"] = float(self.exposure.mean()) if self.n_periods else math.nan
        out["capacity_usd"] = self.capacity_usd()
        out["n_untradable"] = int(self.n_untradable)
        out["n_forced_exits"] = int(self.n_forced_exits)
        out["n_cost_inputs_filled"] = int(self.n_cost_inputs_filled)
        out["n_funding_missing"] = int(self.n_funding_missing)
        return out


def run_backtest(
    positions: npt.ArrayLike,
    period_returns: npt.ArrayLike,
    spread: npt.ArrayLike | None,
    quote_volume: npt.ArrayLike | None,
    volatility: npt.ArrayLike | None,
    funding: npt.ArrayLike | None,
    costs: CostModel,
    periods_per_year: float,
    *,
    allowed: npt.ArrayLike | None = None,
    inputs_filled: npt.ArrayLike | None = None,
    pair_names: Sequence[str] | None = None,
    period_labels: Sequence[object] | None = None,
) -> BacktestResult:
    """Backtest target positions on many pairs at once, net of fee, spread, slippage and funding.

    Decision at bar ``t``'s close, entry at the open of ``t + 1``; period ``k`` runs from its
    entry open to the next period's entry open, and positions are rebalanced once per period.

    Parameters
    ----------
    positions
        ``(n_periods, n_pairs)`` target position per period, a fraction of the sleeve notional
        in ``[-1, 1]`` (negative is short).
    period_returns
        ``(n_periods, n_pairs)`` simple open-to-open return of each period. NaN marks a pair not
        tradable that period: its position is forced to 0 (counted in ``n_untradable`` and, when
        a non-zero position was asked for, ``n_forced_exits``), so a held position is closed
        there and re-opened, paying costs both ways, when the pair trades again.
    spread
        ``(n_periods, n_pairs)`` full relative spread at entry (ignored when
        ``costs.spread_method == "fixed"``, may then be None).
    quote_volume
        ``(n_periods, n_pairs)`` USD traded in a bar: the entry bar's, or (the walk-forward
        pipeline) the decision bar's, carried forward; None when slippage is off.
    volatility
        ``(n_periods, n_pairs)`` standard deviation of one bar's return, known at decision time.
    funding
        ``(n_periods, n_pairs)`` sum of funding rates paid during each period (see
        :func:`marketcast.costs.period_funding_sums`), or None: no funding.
    costs
        The cost model.
    periods_per_year
        Annualisation factor, e.g. ``8760 / horizon_hours``.
    allowed
        ``(n_periods, n_pairs)`` booleans, the cells a strategy may hold (the day's universe);
        None: all. A cell outside is not tradable, like a NaN return (its position is forced to
        0, counted in ``n_forced_exits`` when one was asked for), and is not an active sleeve:
        a pair outside the universe with a finite return used to count in every period's
        divisor, shrinking the return of the pairs that were traded.
    inputs_filled
        ``(n_periods, n_pairs)`` booleans: cells whose volume or volatility the caller already
        carried forward from an earlier bar (the pipeline does, per hour, so its edge gate and
        this backtest price a trade alike); counted in ``n_cost_inputs_filled`` where traded
        and slippage is charged. None: none.
    pair_names, period_labels
        Names of the columns and rows (e.g. pairs and decision times), used by the error for a
        traded cell that cannot be priced; None: their indices.

    Returns
    -------
    BacktestResult
        ``turnover[k] = mean_i |pos[k, i] - pos[k - 1, i]|`` (from 0 before the first period);
        ``gross[k] = mean_i pos[k, i] * ret[k, i]``; each cost component likewise; the mean is
        over the period's active sleeves (pairs tradable that period, or being closed there).
        A traded cell with a missing spread, volatility or volume (or zero volume) uses the
        pair's last valid earlier value (counted); with none, it is an error naming the pair and
        the period (never a later value: that would price a trade with the future).

    Examples
    --------
    >>> r = run_backtest([[1.0], [1.0]], [[0.01], [0.02]], None, None, None, None,
    ...                  CostModel(spread_method="fixed", fixed_spread=0.0, slippage_model="none"),
    ...                  8760.0)
    >>> r.net.round(6).tolist()
    [0.009, 0.02]
    """
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    returns = _matrix("period_returns", period_returns)
    pos_req = _matrix("positions", positions, shape=returns.shape)
    bad = ~np.isfinite(pos_req) | (np.abs(pos_req) > 1.0 + _POSITION_TOLERANCE)
    if bad.any():
        k, i = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise ValueError(
            f"positions must be finite and in [-1, 1]; {int(bad.sum())} bad cells, first at "
            f"(period {k}, pair {i}) = {pos_req[k, i]}"
        )

    tradable = np.isfinite(returns)  # (P, N)
    n_untradable = int((~tradable).sum())  # NaN returns only, not the cells outside `allowed`
    if allowed is not None:
        mask = np.asarray(allowed, dtype=bool)
        if mask.shape != returns.shape:
            raise ValueError(f"allowed has shape {mask.shape}, period_returns {returns.shape}")
        tradable &= mask
    pos = np.where(tradable, np.clip(pos_req, -1.0, 1.0), 0.0)  # (P, N)
    n_forced_exits = int((~tradable & (pos_req != 0)).sum())
    previous = np.zeros_like(pos)
    previous[1:] = pos[:-1]
    turnover = np.abs(pos - previous)  # (P, N)
    traded = turnover > 0

    filled = np.zeros_like(traded)
    where = _CellNames(pair_names, period_labels)
    spread_in = None
    if costs.spread_method != "fixed":
        spread_in = _cost_input(
            "spread", spread, returns.shape, traded, positive=False, out=filled, where=where
        )
    volume_in = volatility_in = None
    if _charges_slippage(costs):
        volume_in = _cost_input(
            "quote_volume",
            quote_volume,
            returns.shape,
            traded,
            positive=True,
            out=filled,
            where=where,
        )
        volatility_in = _cost_input(
            "volatility",
            volatility,
            returns.shape,
            traded,
            positive=False,
            out=filled,
            where=where,
        )
        if inputs_filled is not None:
            carried = np.asarray(inputs_filled, dtype=bool)
            if carried.shape != returns.shape:
                raise ValueError(
                    f"inputs_filled has shape {carried.shape}, period_returns {returns.shape}"
                )
            filled |= traded & carried
    funding_in = None
    n_funding_missing = 0
    if costs.funding and funding is not None:
        funding_in = _matrix("funding", funding, shape=returns.shape)
        n_funding_missing = int(((pos != 0) & ~np.isfinite(funding_in)).sum())

    gross_cells = pos * np.where(tradable, returns, 0.0)
    fee_cells = fee_cost(turnover, costs)
    spread_cells = spread_cost(turnover, spread_in, costs)
    slippage_cells = slippage_cost(turnover, volatility_in, volume_in, costs)
    funding_cells = funding_cost(pos, funding_in, costs)
    # a short that pays no funding (spot) borrows the asset: it held for free before
    borrow_cells = borrow_cost(pos, funding_in, costs, periods_per_year)

    n_active = (tradable | traded).sum(axis=1)  # (P,)
    denominator = np.maximum(n_active, 1).astype(np.float64)
    gross = gross_cells.sum(axis=1) / denominator
    fee = fee_cells.sum(axis=1) / denominator
    spread_paid = spread_cells.sum(axis=1) / denominator
    slippage = slippage_cells.sum(axis=1) / denominator
    funding_paid = funding_cells.sum(axis=1) / denominator
    borrow_paid = borrow_cells.sum(axis=1) / denominator
    net = gross - fee - spread_paid - slippage - funding_paid - borrow_paid
    return BacktestResult(
        gross=gross,
        fee=fee,
        spread=spread_paid,
        slippage=slippage,
        funding=funding_paid,
        borrow=borrow_paid,
        net=net,
        turnover=turnover.sum(axis=1) / denominator,
        exposure=np.abs(pos).sum(axis=1) / denominator,
        n_active=n_active.astype(np.int64),
        positions=pos,
        periods_per_year=float(periods_per_year),
        costs=costs,
        n_untradable=n_untradable,
        n_forced_exits=n_forced_exits,
        n_cost_inputs_filled=int(filled.sum()),
        n_funding_missing=n_funding_missing,
    )


def buy_and_hold(
    period_returns: npt.ArrayLike,
    spread: npt.ArrayLike | None,
    quote_volume: npt.ArrayLike | None,
    volatility: npt.ArrayLike | None,
    funding: npt.ArrayLike | None,
    costs: CostModel,
    periods_per_year: float,
    hold: npt.ArrayLike | None = None,
    *,
    inputs_filled: npt.ArrayLike | None = None,
    pair_names: Sequence[str] | None = None,
    period_labels: Sequence[object] | None = None,
) -> BacktestResult:
    """Hold +1 in every pair whenever it is tradable, equal weight, paying entry costs once.

    A pair enters when it first trades; an untradable period (NaN return) closes it and it
    re-enters afterwards, paying costs again. ``hold`` (boolean, like ``period_returns``)
    limits it to the cells a strategy may hold, e.g. the day's universe, so it is compared with
    strategies on the same pairs; a pair leaving it is sold. A pair whose entry cannot be priced
    yet (no valid spread, volume or volatility at or before the period, where the cost model
    needs one) waits, flat, until it can: it used to be entered anyway, and the backtest then
    refused the cell, ending the evaluation. Otherwise the same arguments as
    :func:`run_backtest`.
    """
    returns = _matrix("period_returns", period_returns)
    positions = np.isfinite(returns).astype(np.float64)
    if hold is not None:
        mask = np.asarray(hold, dtype=bool)
        if mask.shape != returns.shape:
            raise ValueError(f"hold has shape {mask.shape}, period_returns {returns.shape}")
        positions = positions * mask  # asked for only where it may hold: no forced exits
    needed: list[tuple[str, npt.ArrayLike | None, bool]] = []
    if costs.spread_method != "fixed":
        needed.append(("spread", spread, False))
    if _charges_slippage(costs):
        needed += [("quote_volume", quote_volume, True), ("volatility", volatility, False)]
    for name, values, positive in needed:
        if values is not None:  # None: run_backtest names the missing input
            priced = _last_valid_row(_matrix(name, values, shape=returns.shape), positive) >= 0
            positions = positions * priced
    return run_backtest(
        positions,
        returns,
        spread,
        quote_volume,
        volatility,
        funding,
        costs,
        periods_per_year,
        allowed=hold,
        inputs_filled=inputs_filled,
        pair_names=pair_names,
        period_labels=period_labels,
    )


def finance_metrics(
    net: npt.ArrayLike, periods_per_year: float, *, active: npt.ArrayLike | None = None
) -> dict[str, float]:
    """Sharpe, Sortino, drawdown, return, hit rate and profit factor of per-period net returns.

    - ``sharpe = mean / std (ddof 1) * sqrt(periods_per_year)`` (risk-free rate 0)
    - ``sortino = mean / sqrt(mean(min(r, 0) ** 2)) * sqrt(periods_per_year)``: downside
      deviation below 0 over all periods (Sortino & Price 1994)
    - ``max_drawdown``: largest fall from a peak of the compounded equity ``prod(1 + r)``,
      a positive fraction, with the starting capital as the first peak (see :func:`max_drawdown`)
    - ``net_return = prod(1 + r) - 1``; ``annualised_return = (1 + net_return) **
      (periods_per_year / n) - 1``; ``volatility = std * sqrt(periods_per_year)``
    - ``hit_rate``: share of ``active`` periods (all if None) with ``r > 0``
    - ``profit_factor = sum(r > 0) / -sum(r < 0)``: ``inf`` without losses, NaN without either

    Undefined values (fewer than 2 periods, zero variance: a standard deviation within 1e-12
    of the mean's size, which rounding leaves above 0 for identical returns) are NaN, Sortino
    included. ``annualised_return`` is NaN for a series of less than a quarter of a year
    (`MIN_YEARS_TO_ANNUALISE`): raising one hour's +1% to the 8,760th power is an
    extrapolation (7e37), not a measurement, and past about +8% it overflowed. A strategy
    ruined at some period (equity at 0: ``r <= -1``) has nothing after it: the per-period
    statistics stop there, and ``n_periods_after_ruin`` counts the periods left out (a wipe-out
    followed by gains reported a Sharpe of 15.6).

    Examples
    --------
    >>> m = finance_metrics([0.01, -0.02, 0.03], periods_per_year=4.0)
    >>> round(m["sharpe"], 6), round(m["max_drawdown"], 6), round(m["profit_factor"], 6)
    (0.529813, 0.02, 2.0)
    """
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    r = np.asarray(net, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"net must be 1-D, got shape {r.shape}")
    if not np.isfinite(r).all():
        bad = ~np.isfinite(r)
        raise ValueError(f"net has {int(bad.sum())} non-finite values, first at {np.argmax(bad)}")
    mask = np.ones(r.shape[0], dtype=bool) if active is None else np.asarray(active, dtype=bool)
    if mask.shape != r.shape:
        raise ValueError(f"active must have the shape of net {r.shape}, got {mask.shape}")
    n_all = r.shape[0]
    ruined = np.flatnonzero(r <= -1.0)
    if ruined.size:  # nothing is traded on capital that is gone
        r, mask = r[: ruined[0] + 1], mask[: ruined[0] + 1]
    n = r.shape[0]
    scale = math.sqrt(periods_per_year)
    mean = float(r.mean()) if n else math.nan
    std = float(r.std(ddof=1)) if n > 1 else math.nan
    varies = n > 1 and std > 1e-12 * max(float(np.abs(r).max()), 1e-300)
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if n > 1 else math.nan
    net_return = _compounded(r)
    gains = float(r[r > 0].sum())
    losses = float(-r[r < 0].sum())
    return {
        "sharpe": mean / std * scale if varies else math.nan,
        "sortino": mean / downside * scale if varies and downside > 0 else math.nan,
        "max_drawdown": max_drawdown(r),
        "net_return": net_return,
        "annualised_return": _annualised(net_return, n_all, periods_per_year),
        "volatility": std * scale if varies or n < 2 else 0.0,
        "hit_rate": float((r[mask] > 0).mean()) if mask.any() else math.nan,
        "profit_factor": (gains / losses if losses > 0 else (math.inf if gains > 0 else math.nan)),
        "n_periods": int(n_all),  # counts, written as integers
        "n_active_periods": int(mask.sum()),
        "n_periods_after_ruin": int(n_all - n),
    }


def max_drawdown(net: npt.ArrayLike) -> float:
    """Largest peak-to-trough fall of compounded equity ``prod(1 + r)``, as a positive fraction.

    The starting capital (1.0) is the first peak; equity stays at 0 once ruined (``r <= -1``).

    Examples
    --------
    >>> max_drawdown([0.10, -0.20, 0.05, -0.10, 0.50])
    0.244
    """
    r = np.asarray(net, dtype=np.float64)
    equity = np.concatenate([[1.0], np.cumprod(np.maximum(1.0 + r, 0.0))])
    peak = np.maximum.accumulate(equity)
    return float(np.max(1.0 - equity / peak))


def period_entry_bars(n_bars: int, horizon_bars: int, offset_bars: int = 0) -> IntArray:
    """Entry bar of each complete period: ``offset + k * horizon`` while the exit bar exists.

    The decision for period ``k`` is at the close of the bar before its entry bar.

    Examples
    --------
    >>> period_entry_bars(10, 4).tolist()
    [0, 4]
    >>> period_entry_bars(10, 4, offset_bars=1).tolist()
    [1, 5]
    """
    if horizon_bars < 1 or offset_bars < 0:
        raise ValueError(
            f"horizon_bars must be >= 1 and offset_bars >= 0; got {horizon_bars}, {offset_bars}"
        )
    return np.arange(offset_bars, n_bars - horizon_bars, horizon_bars, dtype=np.int64)


def period_returns_from_opens(
    open_prices: npt.ArrayLike, horizon_bars: int, offset_bars: int = 0
) -> FloatArray:
    """Open-to-open simple returns of non-overlapping periods, ``(n_periods, n_pairs)``.

    ``ret[k] = open[e_k + horizon] / open[e_k] - 1`` with ``e_k`` from :func:`period_entry_bars`;
    NaN where either open is missing or not positive.

    Examples
    --------
    >>> period_returns_from_opens([[100.0], [101.0], [110.0], [99.0], [99.0]], 2).round(6).tolist()
    [[0.1], [-0.1]]
    """
    opens = np.asarray(open_prices, dtype=np.float64)
    if opens.ndim == 1:
        opens = opens[:, None]
    if opens.ndim != 2:
        raise ValueError(f"open_prices must be (n_bars, n_pairs), got shape {opens.shape}")
    entry = period_entry_bars(opens.shape[0], horizon_bars, offset_bars)
    start, end = opens[entry], opens[entry + horizon_bars]
    ok = np.isfinite(start) & np.isfinite(end) & (start > 0) & (end > 0)
    return np.where(ok, end / np.where(ok, start, 1.0) - 1.0, np.nan)


#: Shortest series, in years, whose return `finance_metrics` annualises.
MIN_YEARS_TO_ANNUALISE = 0.25


def _annualised(net_return: float, n_periods: int, periods_per_year: float) -> float:
    if n_periods and net_return <= -1.0:  # ruin is a measurement, however short the series
        return -1.0
    if n_periods < MIN_YEARS_TO_ANNUALISE * periods_per_year:
        return math.nan
    exponent = periods_per_year / n_periods * math.log1p(net_return)
    return math.inf if exponent > 709.0 else math.expm1(exponent)


def _compounded(r: FloatArray) -> float:
    return float(np.prod(np.maximum(1.0 + r, 0.0)) - 1.0) if r.size else math.nan


def _matrix(name: str, values: npt.ArrayLike, shape: tuple[int, ...] | None = None) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be (n_periods, n_pairs), got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} has shape {arr.shape}, expected {shape} like period_returns")
    return arr


def _charges_slippage(costs: CostModel) -> bool:
    return costs.slippage_model != "none" and costs.slippage_coef > 0


def _last_valid_row(arr: FloatArray, positive: bool) -> IntArray:
    """Per cell, the latest period at or before it with a valid value in its column; -1: none."""
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(arr) & ((arr > 0) if positive else (arr >= 0))
    rows = np.arange(arr.shape[0])[:, None]
    return np.asarray(np.maximum.accumulate(np.where(valid, rows, -1), axis=0), dtype=np.int64)


@dataclass(frozen=True)
class _CellNames:
    """The pair and period names an error about a cell gives (indices when not known)."""

    pairs: Sequence[str] | None
    periods: Sequence[object] | None

    def describe(self, period: int, pair: int) -> str:
        if self.pairs is None and self.periods is None:
            return f"pair {pair} trades in period {period}"
        name = self.pairs[pair] if self.pairs is not None else f"pair {pair}"
        when = self.periods[period] if self.periods is not None else f"period {period}"
        return f"{name} trades in the period decided at {when} (pair {pair}, period {period})"


def _cost_input(
    name: str,
    values: npt.ArrayLike | None,
    shape: tuple[int, ...],
    traded: BoolArray,
    *,
    positive: bool,
    out: BoolArray,
    where: _CellNames,
) -> FloatArray:
    """Cost input with invalid cells forward-filled per pair from the last valid earlier period.

    Marks in ``out`` the traded cells that needed the fill; raises, naming the pair and the
    period, if a traded cell has no valid value at or before it (a later value would be
    lookahead: the caller passes what was known, or does not trade there).
    """
    if values is None:
        raise ValueError(f"{name} is None but the cost model needs it")
    arr = _matrix(name, values, shape=shape)
    last_valid = _last_valid_row(arr, positive)  # (P, N)
    missing = traded & (last_valid < 0)
    if missing.any():
        k, i = np.unravel_index(int(np.argmax(missing)), missing.shape)
        need = "> 0" if positive else ">= 0"
        raise ValueError(
            f"{name}: {where.describe(int(k), int(i))} with no finite value {need} at or before "
            f"it ({int(missing.sum())} such cells)"
        )
    valid = last_valid == np.arange(arr.shape[0])[:, None]
    out |= traded & ~valid
    filled = arr[np.maximum(last_valid, 0), np.arange(arr.shape[1])[None, :]]
    return np.where(last_valid >= 0, filled, np.nan)
