"""Crypto trading costs per period as fractions of notional: fee, spread, slippage and funding."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    pass

__all__ = [
    "HOURS_PER_YEAR",
    "CostModel",
    "borrow_cost",
    "carry_forward",
    "fee_cost",
    "fee_rate",
    "funding_cost",
    "funding_gaps",
    "half_spread_rate",
    "period_funding_sums",
    "round_trip_cost_rate",
    "short_borrow_over",
    "slippage_cost",
    "slippage_rate",
    "spread_cost",
    "window_sums",
]

FloatArray = npt.NDArray[np.float64]

# Exponent of the order-size term: impact per unit traded ~ (order / volume) ** exponent.
SLIPPAGE_EXPONENTS: dict[str, float] = {"square_root": 0.5, "linear": 1.0}

#: Annualisation: 8,760 hours (365 days), as docs/crypto-backtest.md and the vectorbt bench use
HOURS_PER_YEAR = 24 * 365
#: A hole between two funding events longer than this many times the pair's usual spacing is
#: missing data, not a schedule (see :func:`funding_gaps`).
FUNDING_GAP_FACTOR = 1.5
#: How many intervals either side of one set the usual spacing it is judged by (see
#: :func:`funding_gaps`): a day of 1 h funding, two days and more of 4 h or 8 h.
FUNDING_SPACING_WINDOW = 24
#: The longest funding interval Binance USD-M uses (8 h; 4 h and 1 h pairs exist, and a pair's
#: interval can change), in ns: the pipeline's floor for the usual spacing of a pair's first and
#: last interval, which have neighbours on one side only.
LONGEST_FUNDING_INTERVAL_NS = 8 * 3600 * 10**9


class CostModel(BaseModel):
    """What one unit of turnover, and one period of holding, costs.

    Defaults are Binance spot, VIP 0, without the BNB fee discount: 0.1% maker and taker
    (with BNB the rate is 0.075%; USD-M perpetuals charge 0.02% maker and 0.05% taker).
    A market order crosses half the quoted spread and walks the book (slippage); a perpetual
    position also pays or receives funding. Every rate is a fraction of traded or held notional.

    Attributes
    ----------
    maker_fee_rate, taker_fee_rate
        Fee per unit of traded notional.
    use_taker
        Orders are market orders (taker fee); ``False`` assumes resting limit orders that fill
        (maker fee), which is optimistic for a strategy that must trade at the open.
    spread_method
        Which per-bar relative spread the caller supplies (``abdi_ranaldo`` or
        ``corwin_schultz``, estimated from candles), or ``fixed`` to use ``fixed_spread``.
        The costs here charge whatever estimate is passed; the crypto pipeline passes this
        method's trailing 168 h estimate (``orchestration.crypto.cost_spread_estimate``).
    fixed_spread
        Full relative spread ``(ask - bid) / mid`` when ``spread_method == "fixed"``.
    slippage_model
        ``square_root``: ``rate = coef * vol * sqrt(order_usd / bar_quote_volume_usd)``;
        ``linear``: ``rate = coef * vol * order_usd / bar_quote_volume_usd``; ``none``: zero.
    slippage_coef
        The impact coefficient ``Y`` of the square-root law, of order 1 in the empirical
        literature (Toth et al. 2011, "Anomalous price impact and the critical nature of
        liquidity in financial markets"; Almgren et al. 2005 fit about 0.3 to 1 on US equities).
    notional_usd
        Notional of one pair's sleeve: a position of 1.0 in one pair holds this many USD.
    funding
        The instrument is a perpetual swap that pays funding; ``False`` for spot.
    short_borrow_rate
        Yearly interest on the notional of a short position that pays no funding (spot: the
        asset is borrowed on margin), charged per period held (:func:`borrow_cost`); 10% a year
        by default, above Binance's usual margin rates for the major coins and below many
        alts'. A short on spot used to hold for free.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    maker_fee_rate: float = Field(0.001, ge=0, lt=0.05)
    taker_fee_rate: float = Field(0.001, ge=0, lt=0.05)
    use_taker: bool = True
    spread_method: Literal["abdi_ranaldo", "corwin_schultz", "fixed"] = "abdi_ranaldo"
    fixed_spread: float = Field(0.0005, ge=0, lt=0.5)
    slippage_model: Literal["square_root", "linear", "none"] = "square_root"
    slippage_coef: float = Field(1.0, ge=0)
    notional_usd: float = Field(10_000.0, gt=0)
    funding: bool = True
    short_borrow_rate: float = Field(0.10, ge=0, lt=5)


def fee_rate(costs: CostModel) -> float:
    """Fee per unit of turnover: the taker rate for market orders, else the maker rate.

    Examples
    --------
    >>> fee_rate(CostModel(maker_fee_rate=0.0002, taker_fee_rate=0.0005, use_taker=False))
    0.0002
    """
    return costs.taker_fee_rate if costs.use_taker else costs.maker_fee_rate


def fee_cost(turnover: npt.ArrayLike, costs: CostModel) -> FloatArray:
    """Fee per period: ``fee_rate * turnover``, a fraction of the sleeve notional.

    Examples
    --------
    >>> fee_cost([0.0, 1.0, 2.0], CostModel()).tolist()
    [0.0, 0.001, 0.002]
    """
    turnover_arr = _turnover(turnover)
    return turnover_arr * fee_rate(costs)


def half_spread_rate(spread: npt.ArrayLike | None, costs: CostModel) -> FloatArray:
    """Half of the full relative spread: what a market order pays per unit traded vs the mid.

    With ``spread_method == "fixed"`` the ``spread`` argument is ignored (it may be ``None``).
    """
    if costs.spread_method == "fixed":
        if spread is None:
            return np.asarray(costs.fixed_spread / 2.0, dtype=np.float64)
        return np.full(np.shape(spread), costs.fixed_spread / 2.0)
    if spread is None:
        raise ValueError(
            f"spread_method={costs.spread_method!r} needs a per-bar spread estimate; got None "
            "(use estimate_spread, or spread_method='fixed')"
        )
    return 0.5 * np.asarray(spread, dtype=np.float64)


def spread_cost(
    turnover: npt.ArrayLike, spread: npt.ArrayLike | None, costs: CostModel
) -> FloatArray:
    """Spread paid per period: ``turnover * spread / 2`` (half the spread per unit traded).

    Raises ``ValueError`` naming the first (period, pair) that trades with a missing or
    negative spread.

    Examples
    --------
    >>> spread_cost([1.0, 2.0], [0.002, 0.002], CostModel()).tolist()
    [0.001, 0.002]
    >>> spread_cost([1.0], None, CostModel(spread_method="fixed", fixed_spread=0.001)).tolist()
    [0.0005]
    """
    turnover_arr = _turnover(turnover)
    half = np.broadcast_to(half_spread_rate(spread, costs), turnover_arr.shape)
    traded = turnover_arr > 0
    _check_traded("spread", half, traded, lower=0.0, strict=False)
    return np.where(traded, turnover_arr * half, 0.0)


def slippage_rate(
    turnover: npt.ArrayLike,
    volatility: npt.ArrayLike | None,
    quote_volume: npt.ArrayLike | None,
    costs: CostModel,
) -> FloatArray:
    """Price impact per unit traded, as a fraction of price.

    ``order_usd = turnover * notional_usd`` and, per bar,

    - square root: ``coef * volatility * sqrt(order_usd / quote_volume)``
    - linear: ``coef * volatility * order_usd / quote_volume``

    ``volatility`` is the standard deviation of one bar's return and ``quote_volume`` the USD
    traded in a bar: the entry bar's in ``run_backtest``'s callers that read volumes from
    candles (docs/crypto-backtest.md), the decision bar's, carried forward over hours without
    trades, in the walk-forward pipeline, whose trade filter must price from what is known.
    The square-root form is scale free: daily sigma and daily volume give the same number as
    hourly ones (``sqrt(24)`` cancels). Zero where nothing trades.
    Raises ``ValueError`` naming the first (period, pair) that trades with a missing or negative
    volatility, or a missing or non-positive volume.

    Examples
    --------
    >>> slippage_rate([1.0], [0.01], [1_000_000.0], CostModel(notional_usd=10_000)).round(6)
    array([0.001])
    """
    turnover_arr = _turnover(turnover)
    if costs.slippage_model == "none" or costs.slippage_coef == 0.0:
        return np.zeros_like(turnover_arr)
    if volatility is None or quote_volume is None:
        raise ValueError(
            f"slippage_model={costs.slippage_model!r} needs volatility and quote_volume; got None "
            "(pass slippage_model='none' to switch slippage off)"
        )
    vol = np.broadcast_to(np.asarray(volatility, dtype=np.float64), turnover_arr.shape)
    volume = np.broadcast_to(np.asarray(quote_volume, dtype=np.float64), turnover_arr.shape)
    traded = turnover_arr > 0
    _check_traded("volatility", vol, traded, lower=0.0, strict=False)
    _check_traded("quote_volume", volume, traded, lower=0.0, strict=True)
    safe_volume = np.where(traded, volume, 1.0)
    participation = turnover_arr * costs.notional_usd / safe_volume
    exponent = SLIPPAGE_EXPONENTS[costs.slippage_model]
    rate = costs.slippage_coef * np.where(traded, vol, 0.0) * participation**exponent
    return np.where(traded, rate, 0.0)


def round_trip_cost_rate(
    costs: CostModel,
    spread_estimate: npt.ArrayLike,
    volatility: npt.ArrayLike,
    quote_volume: npt.ArrayLike,
    *,
    min_spread: float = 0.0,
) -> FloatArray:
    """Cost of opening and closing one full position, as a fraction of notional, per bar.

    ``2 * (fee + half spread + slippage)`` with the spread estimate (NaN read as 0) floored at
    ``min_spread`` (ignored when ``spread_method == "fixed"``) and slippage on the bar's
    volatility and quote volume. A bar whose trade cannot be priced has an infinite cost, so no
    edge clears it: without a finite positive volume (an infinite one raised, naming a cell
    that did not exist), or (when slippage is charged) without a finite volatility ``>= 0``.
    Callers pass the last valid value known at the decision (the pipeline's edge gate and the
    server's signals both do, and the backtest charges those values), so the cost is infinite
    only where a pair has none yet. (A NaN volatility used to be read as 0, an underpriced
    trade the backtest then refused to price.)

    Examples
    --------
    >>> round_trip_cost_rate(CostModel(slippage_model="none"), [0.001], [0.01], [1e6]).tolist()
    [0.003]
    >>> round_trip_cost_rate(CostModel(), [0.001], [0.01], [0.0]).tolist()
    [inf]
    >>> round_trip_cost_rate(CostModel(), [0.001], [float("nan")], [1e6]).tolist()
    [inf]
    """
    estimate = np.nan_to_num(np.asarray(spread_estimate, dtype=np.float64), nan=0.0)
    spread = np.fmax(estimate, min_spread)
    volatility_arr = np.broadcast_to(np.asarray(volatility, dtype=np.float64), spread.shape)
    volume = np.asarray(quote_volume, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        priced = np.isfinite(volume) & (volume > 0)
        if costs.slippage_model != "none" and costs.slippage_coef > 0:
            priced = priced & np.isfinite(volatility_arr) & (volatility_arr >= 0)
    per_side = (
        fee_rate(costs)
        + half_spread_rate(spread, costs)
        + slippage_rate(
            np.ones(spread.shape),
            np.where(priced, volatility_arr, 0.0),
            np.where(priced, volume, 1.0),
            costs,
        )
    )
    return np.where(priced, 2.0 * per_side, np.inf)


def carry_forward(
    values: npt.ArrayLike, groups: npt.ArrayLike, *, positive: bool
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Each row's cost input, or its group's (pair's) last valid value on an earlier row.

    Rows of a group must be in time order (groups may interleave). Valid is finite and
    ``>= 0`` (``> 0`` with ``positive``, as a volume must be). Returns the values, NaN before a
    group's first valid one (nothing known yet: :func:`round_trip_cost_rate` is then
    infinite, so nothing trades), and whether each was carried from an earlier row. A cost input
    is never taken from a later row: that would price a decision with what was not known then.
    The pipeline's edge gate and backtest, and the signal server, price trades with it.

    Examples
    --------
    >>> v, carried = carry_forward([0.0, 5.0, 7.0, 0.0, 0.0], list("abaab"), positive=True)
    >>> v.tolist(), carried.tolist()
    ([nan, 5.0, 7.0, 7.0, 5.0], [False, False, False, True, True])
    """
    raw = np.asarray(values, dtype=np.float64)
    keys = np.asarray(groups)
    if raw.shape != keys.shape or raw.ndim != 1:
        raise ValueError(
            f"values and groups must be 1-D of equal length; got {raw.shape}, {keys.shape}"
        )
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(raw) & ((raw > 0) if positive else (raw >= 0))
    order = np.argsort(keys, kind="stable")  # each group's rows together, in their order
    rows = np.arange(raw.size)
    sorted_keys = keys[order]
    starts = np.ones(raw.size, dtype=bool)
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group_first = np.maximum.accumulate(np.where(starts, rows, 0))
    last = np.maximum.accumulate(np.where(valid[order], rows, -1))
    last = np.where(last >= group_first, last, -1)
    known = np.empty(raw.size)
    known[order] = np.where(last >= 0, raw[order][np.maximum(last, 0)], np.nan)
    return known, ~valid & np.isfinite(known)


def slippage_cost(
    turnover: npt.ArrayLike,
    volatility: npt.ArrayLike | None,
    quote_volume: npt.ArrayLike | None,
    costs: CostModel,
) -> FloatArray:
    """Slippage per period: ``turnover * slippage_rate`` (grows as ``turnover ** 1.5`` for the
    square-root law, so it rises with ``notional_usd`` against the bar's volume).

    Examples
    --------
    >>> slippage_cost([2.0], [0.01], [1_000_000.0], CostModel()).round(8)
    array([0.00282843])
    """
    turnover_arr = _turnover(turnover)
    return turnover_arr * slippage_rate(turnover_arr, volatility, quote_volume, costs)


def funding_cost(
    positions: npt.ArrayLike, funding_rate_sum: npt.ArrayLike | None, costs: CostModel
) -> FloatArray:
    """Funding paid per period: ``position * sum of funding rates paid during the holding period``.

    A positive funding rate means longs pay shorts, so a long pays (positive cost) and a short
    receives (negative cost). Zero for spot (``costs.funding`` is False), when ``funding_rate_sum``
    is None, and where it is NaN (no funding data for that period; the backtest counts these).
    The payment is on the entry notional (the position's drift within the period is ignored).

    Examples
    --------
    >>> funding_cost([1.0, -1.0, 0.5], [0.0001, 0.0001, float("nan")], CostModel()).tolist()
    [0.0001, -0.0001, 0.0]
    """
    pos = np.asarray(positions, dtype=np.float64)
    if not costs.funding or funding_rate_sum is None:
        return np.zeros_like(pos)
    rates = np.broadcast_to(np.asarray(funding_rate_sum, dtype=np.float64), pos.shape)
    known = np.isfinite(rates)
    return np.where(known & (pos != 0), pos * np.where(known, rates, 0.0), 0.0)


def short_borrow_over(
    costs: CostModel, hold_hours: float, pays_funding: npt.ArrayLike
) -> FloatArray:
    """Interest a short of notional 1 pays over a hold of ``hold_hours`` where it pays no
    funding: ``short_borrow_rate * hold_hours / 8760``; 0 where ``pays_funding`` (a perpetual,
    with ``costs.funding`` on). This is what the edge gate adds to a short's cost, known at the
    decision (the backtest's :func:`borrow_cost` also charges a perpetual's holes in its rates).

    Examples
    --------
    >>> costs = CostModel(short_borrow_rate=0.0876)  # 1 bp an hour
    >>> short_borrow_over(costs, 24, [False, True]).round(8).tolist()
    [0.00024, 0.0]
    >>> short_borrow_over(costs.model_copy(update={"funding": False}), 24, [True]).round(8).tolist()
    [0.00024]
    """
    pays = np.asarray(pays_funding, dtype=bool) & costs.funding
    return np.where(pays, 0.0, costs.short_borrow_rate * hold_hours / HOURS_PER_YEAR)


def borrow_cost(
    positions: npt.ArrayLike,
    funding_rate_sum: npt.ArrayLike | None,
    costs: CostModel,
    periods_per_year: float,
) -> FloatArray:
    """Interest paid per period on short positions that pay no funding: ``-position *
    short_borrow_rate / periods_per_year`` where the position is short and the period has no
    funding rates (spot, ``costs.funding`` False, or no funding data for the cell: a perpetual
    with a hole in its rates is charged as if borrowed, the conservative side); 0 elsewhere.

    Examples
    --------
    >>> costs = CostModel(short_borrow_rate=0.0876)  # 1 bp a hour-long period
    >>> borrow_cost([-1.0, 1.0, -0.5], None, costs, 8760.0).round(8).tolist()
    [1e-05, 0.0, 5e-06]
    >>> borrow_cost([-1.0, -1.0], [0.0001, float("nan")], costs, 8760.0).round(8).tolist()
    [0.0, 1e-05]
    """
    pos = np.asarray(positions, dtype=np.float64)
    short = pos < 0
    if costs.funding and funding_rate_sum is not None:
        rates = np.broadcast_to(np.asarray(funding_rate_sum, dtype=np.float64), pos.shape)
        short &= ~np.isfinite(rates)
    return np.where(short, -pos * costs.short_borrow_rate / periods_per_year, 0.0)


def period_funding_sums(
    funding_time_utc: npt.ArrayLike,
    funding_rate: npt.ArrayLike,
    period_start_utc: npt.ArrayLike,
    period_end_utc: npt.ArrayLike,
    *,
    min_spacing: float | np.timedelta64 | None = None,
    end_spacing: float | np.timedelta64 | None = None,
    delisting: npt.ArrayLike | None = None,
) -> FloatArray:
    """Sum the funding rates whose funding time falls in ``(start, end]`` of each period, one pair.

    An entry at a bar's open just misses a funding event stamped at that open, and a position
    closed at the next period's open is still held at an event stamped then, hence the half-open
    interval. Periods the funding data do not cover are NaN, so a caller can count them: those
    not inside ``[first, last]`` funding time, and those overlapping a hole inside it
    (:func:`funding_gaps`: two consecutive events further apart than 1.5 times the pair's usual
    spacing, a month's download missing, say). Periods covered with no event sum to 0. Before,
    a hole inside the coverage summed to 0: "no funding paid", not counted as missing.
    Times are anything numpy orders and subtracts consistently (``datetime64``, or epoch numbers
    in one unit: the pipeline passes ns); ``min_spacing`` and ``end_spacing``, in the unit of
    their differences, floor the usual spacing (see :func:`funding_gaps`, which judges each
    interval by the ones around it).

    ``delisting`` flags the periods that end at the pair's delisting (its last close): no event
    comes after it, so such a period is covered up to its end when the next event would have
    come later (the end less than the last interval, floored at ``end_spacing``, after the last
    event). A last close almost never falls on a funding time: those periods were NaN, charged
    0, and a short among them paid borrow interest instead of receiving funding.

    Examples
    --------
    >>> t, rates = np.array([8, 16, 24, 32]), [1e-4, 2e-4, -1e-4, 3e-4]
    >>> period_funding_sums(t, rates, [8, 16, 30], [16, 32, 40]).round(6).tolist()
    [0.0002, 0.0002, nan]

    A hole between 24 and 64 (spacing 8): the periods overlapping it are NaN.

    >>> t = np.array([8, 16, 24, 64, 72, 80])
    >>> period_funding_sums(t, [1e-4] * 6, [8, 16, 40, 64], [16, 32, 48, 80]).round(6).tolist()
    [0.0001, nan, nan, 0.0002]

    Delisted at 35, three hours after the last event: the periods held into it are covered.

    >>> t = np.array([16, 24, 32])
    >>> held = period_funding_sums(t, [1e-4] * 3, [31, 33], [35, 35], delisting=[True, True])
    >>> held.round(6).tolist()
    [0.0001, 0.0]
    """
    times = np.asarray(funding_time_utc)
    rates = np.asarray(funding_rate, dtype=np.float64)
    if times.shape != rates.shape or times.ndim != 1:
        raise ValueError(
            f"funding_time_utc and funding_rate must be 1-D of equal length; got "
            f"{times.shape} and {rates.shape}"
        )
    bad = ~np.isfinite(rates)
    if bad.any():
        raise ValueError(
            f"funding_rate: {int(bad.sum())} non-finite values, first at row {int(np.argmax(bad))}"
        )
    start = np.asarray(period_start_utc)
    end = np.asarray(period_end_utc)
    sums = window_sums(times, rates, start, end)
    if times.size == 0:
        return np.full(sums.shape, np.nan)
    last = times.max()
    ends_covered = end <= last
    if delisting is not None:
        intervals = np.diff(np.sort(times))
        usual = intervals[-1] if intervals.size else end_spacing
        if usual is not None and end_spacing is not None:
            usual = max(usual, end_spacing)
        if usual is not None:
            ends_covered |= np.asarray(delisting, dtype=bool) & (end - last < usual)
    covered = (start >= times.min()) & ends_covered
    hole_from, hole_to = funding_gaps(times, min_spacing=min_spacing, end_spacing=end_spacing)
    if hole_from.size:
        # holes are disjoint and sorted: those with from < end, less those with to <= start
        overlapping = np.searchsorted(hole_from, end, side="left") - np.searchsorted(
            hole_to, start, side="right"
        )
        covered &= overlapping <= 0
    return np.where(covered, sums, np.nan)


def funding_gaps(
    funding_time_utc: npt.ArrayLike,
    *,
    factor: float = FUNDING_GAP_FACTOR,
    window: int = FUNDING_SPACING_WINDOW,
    min_spacing: float | np.timedelta64 | None = None,
    end_spacing: float | np.timedelta64 | None = None,
) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]:
    """Holes in one pair's funding times: ``(from, to)``, the events either side of each.

    A hole is an interval between consecutive events longer than ``factor`` times the usual
    spacing around it: the larger of the median of the ``window`` intervals before it and the
    median of the ``window`` after it (itself left out). Binance moves a pair between 8 h, 4 h
    and 1 h funding, and the larger median keeps a schedule change from reading as a hole (the
    first 8 h interval after 4 h ones has 8 h ones after it), while a pair on 1 h funding is
    judged by 1 h: a 3-hour hole in it is one. Before, one median per pair was floored at 8 h,
    so a 1 h pair's holes under 12 h were not seen.

    The first and the last interval have neighbours on one side only, so a schedule change just
    there cannot be told from a hole: ``end_spacing`` floors their usual spacing (the pipeline
    passes 8 h, `LONGEST_FUNDING_INTERVAL_NS`). ``min_spacing`` floors every interval's. Both are
    in the unit of the times' differences (a number for epoch numbers, a ``timedelta64`` for
    ``datetime64``). With one interval and no floor there is no usual spacing, hence no hole.
    A one-interval stay on another schedule inside the data (4 h, one 8 h, 4 h again) reads as a
    hole.

    Examples
    --------
    >>> [a.tolist() for a in funding_gaps([0, 8, 16, 48, 56])]
    [[16], [48]]

    4 h funding going over to 8 h: no hole. Hourly funding with three events missing: one.

    >>> [a.tolist() for a in funding_gaps([0, 4, 8, 12, 16, 24, 32, 40], end_spacing=8)]
    [[], []]
    >>> [a.tolist() for a in funding_gaps([0, 1, 2, 3, 4, 8, 9, 10, 11, 12])]
    [[4], [8]]
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 interval; got {window}")
    times = np.sort(np.asarray(funding_time_utc), kind="stable")
    if times.size < 2:
        return times[:0], times[:0]
    spacing = np.diff(times)
    usual = _neighbour_median(spacing, window)
    for floor, where in ((end_spacing, [0, -1]), (min_spacing, slice(None))):
        if floor is not None:
            usual[where] = np.fmax(usual[where], _as_count(floor, spacing.dtype))
    spacing = _as_count(spacing, spacing.dtype)
    with np.errstate(invalid="ignore"):
        hole = spacing > factor * usual  # NaN (no neighbour, no floor): never a hole
    return times[:-1][hole], times[1:][hole]


def _neighbour_median(spacing: npt.NDArray[np.generic], window: int) -> FloatArray:
    """Per interval, the larger of the medians of up to ``window`` intervals before and after it.

    NaN where it has no neighbour (a single interval). Works on the differences' numbers (a
    ``timedelta64``'s count in its unit).

    Examples
    --------
    >>> _neighbour_median(np.array([8, 8, 4, 4, 4]), 2).tolist()
    [6.0, 8.0, 8.0, 6.0, 4.0]
    """
    values = _as_count(spacing, spacing.dtype)
    window = min(window, values.size)  # a longer one only adds NaN
    padded = np.concatenate([np.full(window, np.nan), values, np.full(window, np.nan)])
    rows = np.lib.stride_tricks.sliding_window_view(padded, window)
    with warnings.catch_warnings():  # an all-NaN side (an end of the data) is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        medians = np.nanmedian(rows, axis=1)
    # rows[i] covers padded[i : i + window]: intervals i - window .. i - 1 (before interval i)
    # start at row i, and intervals i + 1 .. i + window at row i + window + 1
    before = medians[: values.size]
    after = medians[window + 1 : window + 1 + values.size]
    return np.asarray(np.fmax(before, after), dtype=np.float64)


def _as_count(value: object, unit: np.dtype[np.generic]) -> FloatArray:
    """``value`` in numbers of ``unit`` (a ``timedelta64`` dtype), or as it is for numbers."""
    arr = np.asarray(value)
    if unit.kind == "m":
        arr = arr.astype(unit).astype(np.int64)
    return np.asarray(arr, dtype=np.float64)


def window_sums(
    times: npt.ArrayLike, values: npt.ArrayLike, start: npt.ArrayLike, end: npt.ArrayLike
) -> FloatArray:
    """Sum of the ``values`` whose ``times`` fall in ``(start, end]``, per window.

    ``times`` may come in any order; windows reaching outside them sum what they do cover.

    Examples
    --------
    >>> window_sums([16, 8, 24], [2.0, 1.0, 4.0], [0, 8], [16, 100]).tolist()
    [3.0, 6.0]
    """
    times = np.asarray(times)
    order = np.argsort(times, kind="stable")
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(values, dtype=np.float64)[order])])
    times = times[order]
    return np.asarray(
        cumulative[np.searchsorted(times, end, side="right")]
        - cumulative[np.searchsorted(times, start, side="right")]
    )


def _turnover(turnover: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(turnover, dtype=np.float64)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ValueError(
            f"turnover must be finite and >= 0; {int(bad.sum())} bad values, first at index "
            f"{_where(bad)}"
        )
    return arr


def _check_traded(
    name: str, values: FloatArray, traded: npt.NDArray[np.bool_], *, lower: float, strict: bool
) -> None:
    with np.errstate(invalid="ignore"):
        below = values <= lower if strict else values < lower
    bad = traded & (~np.isfinite(values) | below)
    if bad.any():
        need = f"> {lower}" if strict else f">= {lower}"
        first = _where(bad)
        # a (period, pair) grid, one row per cell (the pipeline's candle rows), or one value
        at = (
            f"(period, pair) {first}"
            if bad.ndim == 2
            else f"index {first[0]}"
            if bad.ndim == 1
            else "the one value"
        )
        raise ValueError(
            f"{name} must be finite and {need} where a position is traded; {int(bad.sum())} bad "
            f"cells, first at {at} = {values[first]}"
        )


def _where(mask: npt.NDArray[np.bool_]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))
