"""Daily tradable universe of crypto pairs: liquidity, spread, history and staleness rules."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketcast.features.crypto import candle_grid
from marketcast.features.spread import (
    SPREAD_METHODS,
    SpreadMethod,
    moment_to_spread,
    no_trade_bars,
    spread_moments,
)

__all__ = ["UNIVERSE_REASONS", "build_universe", "in_universe", "universe_spread_method"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Reasons in priority order: a pair failing several rules gets the first that applies.
UNIVERSE_REASONS: tuple[str, ...] = ("ok", "short_history", "stale", "low_liquidity", "wide_spread")

_HOURS_PER_DAY = 24


def _daily(wide_hourly: FloatArray, n_days: int, how: str) -> FloatArray:
    """Aggregate an ``(n_hours, n_pairs)`` grid into ``(n_days, n_pairs)`` (NaN-aware)."""
    n_hours, n_pairs = wide_hourly.shape
    padded = np.full((n_days * _HOURS_PER_DAY, n_pairs), np.nan)
    padded[:n_hours] = wide_hourly
    cube = padded.reshape(n_days, _HOURS_PER_DAY, n_pairs)
    present = np.isfinite(cube)
    if how == "sum":
        return np.where(present.any(axis=1), np.nansum(cube, axis=1), np.nan)
    if how == "count":
        return present.sum(axis=1).astype(np.float64)
    raise ValueError(how)


def _shifted_rolling_sum(daily: FloatArray, window_days: int) -> FloatArray:
    """Sum over days ``d - window_days .. d - 1`` (NaN counts as 0), aligned to day ``d``."""
    frame = pd.DataFrame(np.nan_to_num(daily, nan=0.0))
    return frame.rolling(window_days, min_periods=1).sum().shift(1).to_numpy()


def universe_spread_method(cost_spread_method: str) -> SpreadMethod:
    """The estimator the universe's spread rule uses for a run whose costs charge by
    ``cost_spread_method``: the same one, so that the pairs kept are those whose spread the costs
    measure as narrow; ``fixed`` (a constant charged, no estimate) keeps the default Abdi-Ranaldo.

    Examples
    --------
    >>> universe_spread_method("corwin_schultz"), universe_spread_method("fixed")
    ('corwin_schultz', 'abdi_ranaldo')
    """
    if cost_spread_method == "corwin_schultz":
        return "corwin_schultz"
    if cost_spread_method in ("abdi_ranaldo", "fixed"):
        return "abdi_ranaldo"
    raise ValueError(f"unknown spread method {cost_spread_method!r}")


def build_universe(
    candles: pd.DataFrame,
    *,
    lookback_days: int = 30,
    min_median_quote_volume_usd: float = 1e6,
    max_spread: float = 0.003,
    min_history_days: int = 30,
    max_stale_hours: float = 24.0,
    spread_method: SpreadMethod = "abdi_ranaldo",
    spread_confidence_z: float = 1.645,
) -> pd.DataFrame:
    """Decide, for each UTC day and pair, whether the pair may be traded that day.

    The decision for day ``D`` uses only bars that closed by ``D`` 00:00 UTC (the end of the
    previous day), so it can be made before the first decision of the day.

    Rules, checked in this order (the first failure is the ``reason``):

    ``short_history``
        The pair's first bar opened less than ``min_history_days`` days before ``D``.
    ``stale``
        The pair's last bar with positive volume closed more than ``max_stale_hours`` before
        ``D`` (delisted, halted or an outage longer than that).
    ``low_liquidity``
        The median daily quote volume (USD, sum over the bars of each UTC day) of the
        ``lookback_days`` days before ``D`` is below ``min_median_quote_volume_usd``.
    ``wide_spread``
        The spread is wider than ``max_spread`` with confidence: the one-sided lower bound
        ``mean - z * standard error`` of the ``spread_method`` estimator's two-bar
        squared-spread moments over the same days, turned into a spread, exceeds
        ``max_spread``. The pipeline and the signal server pass the estimator the run's costs
        charge by (:func:`universe_spread_method`). Hourly high-low spread
        estimates are noisy next to hourly volatility, so the point estimate alone would
        exclude liquid pairs at random; ``spread_confidence_z = 0`` uses it anyway. A moment
        touching a no-trade hour (a repaired bar, or a zero-volume bar with ``high == low``:
        `marketcast.features.spread.no_trade_bars`) is left out: it is exactly 0 and would
        pull the estimate down. A pair with no spread estimate (no two
        consecutive traded bars) fails this rule.

    Parameters
    ----------
    candles
        Hourly candles in the loader's contract; any number of pairs; gaps allowed.
    lookback_days
        Days before ``D`` that the liquidity and spread rules look at.
    min_median_quote_volume_usd
        Minimum median daily quote volume.
    max_spread
        Maximum relative spread (fraction of price).
    min_history_days
        Minimum days since the pair's first bar.
    max_stale_hours
        Maximum hours since the last bar with volume.
    spread_method
        Spread estimator for the moments (``"abdi_ranaldo"`` or ``"corwin_schultz"``).
    spread_confidence_z
        z of the one-sided lower bound used by the spread rule (1.645: 95 %).

    Returns
    -------
    pandas.DataFrame
        One row per (date, pair), from the day of each pair's first bar to the day the data's
        last bar closes in (the day after the last when that bar opens at 23:00: its
        decisions are made that day), sorted by (date, pair): ``date`` (midnight UTC,
        tz-aware), ``pair``, ``included``, ``reason``, ``median_quote_volume_usd``,
        ``spread_estimate`` (point estimate), ``spread_lower_bound``, ``history_days``,
        ``hours_since_last_trade``.
    """
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be >= 1, got {lookback_days}")
    if min_history_days < 0:
        raise ValueError(f"min_history_days must be >= 0, got {min_history_days}")
    if spread_method not in SPREAD_METHODS:
        raise ValueError(f"unknown spread method {spread_method!r}")
    if not spread_confidence_z >= 0.0:
        raise ValueError(f"spread_confidence_z must be >= 0, got {spread_confidence_z}")
    grid = candle_grid(candles, origin="day")
    n_pairs = len(grid.pairs)
    # through the day the last bar closes in: a 23:00 bar's decisions fall on the next day, for
    # which the server had no row (it fell back to the day before, unlike training)
    n_days = -(-(grid.n_hours + 1) // _HOURS_PER_DAY)

    quote_volume = grid.wide(candles["quote_volume"])
    daily_qv = _daily(quote_volume, n_days, "sum")
    median_qv = (
        pd.DataFrame(daily_qv).rolling(lookback_days, min_periods=1).median().shift(1).to_numpy()
    )

    # a missing hour is NaN on the grid (its moments are NaN anyway), not a no-trade bar
    no_trade = np.nan_to_num(grid.wide(no_trade_bars(candles)), nan=0.0) > 0.0
    moments = spread_moments(
        grid.wide(candles["high"]),
        grid.wide(candles["low"]),
        grid.wide(candles["close"]),
        spread_method,
        no_trade=no_trade,
    )
    n_moments = _shifted_rolling_sum(_daily(moments, n_days, "count"), lookback_days)
    sum_m = _shifted_rolling_sum(_daily(moments, n_days, "sum"), lookback_days)
    sum_m2 = _shifted_rolling_sum(_daily(moments * moments, n_days, "sum"), lookback_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_m = np.where(n_moments > 0, sum_m / n_moments, np.nan)
        var_m = (sum_m2 - n_moments * mean_m * mean_m) / (n_moments - 1.0)
        se_m = np.sqrt(np.where(n_moments > 1, np.maximum(var_m, 0.0), np.nan) / n_moments)
    spread_point = moment_to_spread(mean_m, spread_method)
    spread_lower = moment_to_spread(mean_m - spread_confidence_z * se_m, spread_method)

    # Hour index of each pair's first bar and, per day, of the last bar with volume.
    first_hour = np.full(n_pairs, np.iinfo(np.int64).max)
    np.minimum.at(first_hour, grid.pair_code, grid.hour)
    volume = candles["volume"].to_numpy(np.float64)
    traded = volume > 0.0
    last_traded = np.full((n_days, n_pairs), -1, dtype=np.int64)
    np.maximum.at(
        last_traded,
        (grid.hour[traded] // _HOURS_PER_DAY, grid.pair_code[traded]),
        grid.hour[traded],
    )
    # Latest traded hour on any day before D: running max, then shifted one day.
    last_traded_before = np.vstack(
        [np.full((1, n_pairs), -1), np.maximum.accumulate(last_traded, axis=0)[:-1]]
    )

    day_start_hour = (np.arange(n_days) * _HOURS_PER_DAY)[:, None]
    history_days = (day_start_hour - first_hour[None, :]) / _HOURS_PER_DAY
    # A bar opening at hour h closes at h + 1.
    hours_since_trade = np.where(
        last_traded_before >= 0, day_start_hour - (last_traded_before + 1), np.inf
    ).astype(np.float64)

    short = history_days < min_history_days
    stale = hours_since_trade > max_stale_hours
    with np.errstate(invalid="ignore"):
        illiquid = ~(median_qv >= min_median_quote_volume_usd)
        wide = ~(spread_lower <= max_spread)
    reason_code = np.select([short, stale, illiquid, wide], [1, 2, 3, 4], default=0)

    # Rows from the day of each pair's first bar on.
    listed = np.arange(n_days)[:, None] >= (first_hour // _HOURS_PER_DAY)[None, :]
    day_idx, pair_idx = np.nonzero(listed)
    order = np.lexsort((pair_idx, day_idx))
    day_idx, pair_idx = day_idx[order], pair_idx[order]
    dates = grid.start_utc + pd.to_timedelta(day_idx * _HOURS_PER_DAY, unit="h")
    codes = reason_code[day_idx, pair_idx]
    universe = pd.DataFrame(
        {
            "date": dates,
            "pair": np.asarray(grid.pairs, dtype=object)[pair_idx],
            "included": codes == 0,
            "reason": np.asarray(UNIVERSE_REASONS, dtype=object)[codes],
            "median_quote_volume_usd": median_qv[day_idx, pair_idx],
            "spread_estimate": spread_point[day_idx, pair_idx],
            "spread_lower_bound": spread_lower[day_idx, pair_idx],
            "history_days": history_days[day_idx, pair_idx],
            "hours_since_last_trade": hours_since_trade[day_idx, pair_idx],
        }
    )
    universe["date"] = pd.DatetimeIndex(universe["date"]).as_unit("ns")
    return universe.reset_index(drop=True)


def in_universe(pair: pd.Series, decision_time_utc: pd.Series, universe: pd.DataFrame) -> BoolArray:
    """Whether each row's pair is in the universe of its decision day.

    A decision at ``decision_time_utc`` uses the universe of its UTC day (built from bars
    that closed by that day's midnight). Rows whose (day, pair) is not in ``universe`` are
    out.
    """
    day = pd.DatetimeIndex(decision_time_utc).floor("D").as_unit("ns")
    keys = pd.MultiIndex.from_arrays(
        [pd.DatetimeIndex(universe["date"]).as_unit("ns"), universe["pair"].astype(str)]
    )
    lookup = pd.Series(universe["included"].to_numpy(bool), index=keys)
    if not lookup.index.is_unique:
        raise ValueError("universe has more than one row for a (date, pair)")
    wanted = pd.MultiIndex.from_arrays([day, pd.Index(pair.astype(str))])
    position = lookup.index.get_indexer(wanted)
    return np.where(position >= 0, lookup.to_numpy()[np.maximum(position, 0)], False)
