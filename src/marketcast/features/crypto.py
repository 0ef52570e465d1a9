"""Crypto pair features known at each hourly bar's close, on the actual hourly time grid."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.typing import Rolling

from marketcast.data.candles import CANDLE_COLUMNS
from marketcast.data.validation import DataError
from marketcast.features.spread import (
    SpreadMethod,
    moment_to_spread,
    no_trade_bars,
    spread_moments,
)

log = logging.getLogger(__name__)

__all__ = [
    "BAR",
    "CRYPTO_FEATURE_COLUMNS",
    "FUNDING_MAX_AGE",
    "REQUIRED_CANDLE_COLUMNS",
    "RETURN_HORIZONS_BARS",
    "CandleGrid",
    "build_crypto_features",
    "candle_grid",
    "charged_spread",
    "spread_estimate",
    "validate_candles",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Bar length of the candles this module reads.
BAR = pd.Timedelta(hours=1)
#: Columns of the loader's candle table (``data.candles.CANDLE_COLUMNS``) these features read.
REQUIRED_CANDLE_COLUMNS: tuple[str, ...] = tuple(
    c for c in CANDLE_COLUMNS if c not in ("quote_volume_estimated", "trades", "vendor", "repaired")
)
#: Log-return look-backs, in hourly bars.
RETURN_HORIZONS_BARS: tuple[int, ...] = (1, 4, 24, 72, 168)
#: A funding rate older than this at decision time is treated as unknown (NaN).
FUNDING_MAX_AGE = pd.Timedelta(hours=24)
#: Share of a rolling window's hours that must hold data for the window to give a value.
MIN_WINDOW_COVERAGE = 0.8
#: The spread estimate's window (hours) and the fewest two-bar estimates it needs.
SPREAD_WINDOW_BARS = 168
SPREAD_MIN_ESTIMATES = 42

CRYPTO_FEATURE_COLUMNS: tuple[str, ...] = (
    *(f"ret_log_{k}h" for k in RETURN_HORIZONS_BARS),
    "realised_vol_24h",
    "realised_vol_168h",
    "range_rel_24h",
    "range_rel_168h",
    "log_quote_volume_24h",
    "quote_volume_z_168h",
    "close_ema_ratio_24h",
    "close_ema_ratio_168h",
    "ema_cross_24h_168h",
    "xs_rank_ret_24h",
    "xs_rank_ret_168h",
    "xs_rank_quote_volume_24h",
    "beta_btc_168h",
    "corr_btc_168h",
    "spread_estimate_168h",
    "funding_rate_last",
    "trend_strength_168h",
    "efficiency_ratio_24h",
)


def _ns(times: pd.Series | pd.DatetimeIndex) -> IntArray:
    """Nanoseconds since the epoch, whatever the datetime unit (pandas 3 defaults to us)."""
    return np.asarray(pd.DatetimeIndex(times).as_unit("ns").asi8, dtype=np.int64)


def validate_candles(candles: pd.DataFrame, *, name: str = "candles") -> None:
    """Check the candles contract; raise :class:`DataError` naming the row and field.

    Requires the :data:`REQUIRED_CANDLE_COLUMNS`, a tz-aware UTC ``open_time_utc`` on whole
    hours and at most one bar per ``(pair, open_time_utc)``. Rows need not be sorted.
    """
    missing = [c for c in REQUIRED_CANDLE_COLUMNS if c not in candles.columns]
    if missing:
        raise DataError(name, None, missing[0], f"missing columns {missing}")
    open_time = candles["open_time_utc"]
    if not isinstance(open_time.dtype, pd.DatetimeTZDtype) or str(open_time.dt.tz) != "UTC":
        raise DataError(
            name, None, "open_time_utc", f"must be datetime64[ns, UTC], got {open_time.dtype}"
        )
    if open_time.isna().any():
        position = int(np.flatnonzero(open_time.isna().to_numpy())[0])
        raise DataError(name, None, "open_time_utc", f"missing at row position {position}")
    open_ns = _ns(open_time)
    off_grid = open_ns % BAR.value != 0
    if off_grid.any():
        position = int(np.flatnonzero(off_grid)[0])
        raise DataError(
            name,
            None,
            "open_time_utc",
            f"row position {position} (pair {candles['pair'].iloc[position]}): "
            f"{open_time.iloc[position]} is not on a whole hour",
        )
    duplicated = candles.duplicated(["pair", "open_time_utc"]).to_numpy()
    if duplicated.any():
        position = int(np.flatnonzero(duplicated)[0])
        raise DataError(
            name,
            None,
            "open_time_utc",
            f"row position {position}: duplicate bar for pair {candles['pair'].iloc[position]} "
            f"at {open_time.iloc[position]}",
        )


@dataclass(frozen=True)
class CandleGrid:
    """Candles laid out on a full hourly grid: one row per hour, one column per pair.

    ``hour[i]`` and ``pair_code[i]`` locate candle row ``i``; hours without a bar hold NaN,
    so rolling windows over the grid count hours, and a missing hour stays missing.
    """

    pairs: tuple[str, ...]
    start_utc: pd.Timestamp
    n_hours: int
    hour: IntArray
    pair_code: IntArray

    def wide(self, values: npt.ArrayLike) -> FloatArray:
        """Scatter per-row ``values`` into an ``(n_hours, n_pairs)`` array (NaN elsewhere)."""
        out = np.full((self.n_hours, len(self.pairs)), np.nan)
        out[self.hour, self.pair_code] = np.asarray(values, dtype=np.float64)
        return out

    def rows(self, wide: FloatArray | pd.DataFrame) -> FloatArray:
        """Gather an ``(n_hours, n_pairs)`` array back to one value per candle row."""
        array = wide.to_numpy() if isinstance(wide, pd.DataFrame) else wide
        return np.asarray(array[self.hour, self.pair_code], dtype=np.float64)


def candle_grid(candles: pd.DataFrame, *, origin: str = "day") -> CandleGrid:
    """Build the :class:`CandleGrid` of ``candles`` (validated first).

    Parameters
    ----------
    candles
        Candles in the loader's contract.
    origin
        ``"day"`` starts the grid at midnight UTC of the first bar, so ``hour // 24`` is a
        day index; ``"hour"`` starts it at the first bar.
    """
    validate_candles(candles)
    if candles.empty:
        raise DataError("candles", None, None, "no rows")
    open_ns = _ns(candles["open_time_utc"])
    first = pd.Timestamp(int(open_ns.min()), tz="UTC")
    start = first.floor("D") if origin == "day" else first
    hour = (open_ns - start.value) // BAR.value
    codes, uniques = pd.factorize(candles["pair"], sort=False)
    return CandleGrid(
        pairs=tuple(str(p) for p in uniques),
        start_utc=start,
        n_hours=int(hour.max()) + 1,
        hour=hour.astype(np.int64),
        pair_code=codes.astype(np.int64),
    )


def _min_periods(window_bars: int) -> int:
    return max(1, int(np.ceil(MIN_WINDOW_COVERAGE * window_bars)))


def _rolling(frame: pd.DataFrame, window_bars: int) -> Rolling:
    return frame.rolling(window_bars, min_periods=_min_periods(window_bars))


def _cross_section_rank(wide: FloatArray) -> FloatArray:
    """Rank across pairs at each hour, scaled to [0, 1]; 0.5 when only one pair has a value."""
    frame = pd.DataFrame(wide)
    ranks = frame.rank(axis=1, method="average").to_numpy()
    count = np.isfinite(wide).sum(axis=1, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = (ranks - 1.0) / (count - 1.0)
    return np.where(count == 1.0, np.where(np.isfinite(wide), 0.5, np.nan), scaled)


def _beta_corr(
    returns: FloatArray, benchmark: FloatArray, window_bars: int
) -> tuple[FloatArray, FloatArray]:
    """Rolling beta and correlation of each column to ``benchmark`` on hours both have."""
    both = np.isfinite(returns) & np.isfinite(benchmark)[:, None]
    x = pd.DataFrame(np.where(both, returns, 0.0))
    y = pd.DataFrame(np.where(both, benchmark[:, None], 0.0))
    roll = lambda f: f.rolling(window_bars, min_periods=1).sum().to_numpy()  # noqa: E731
    n = roll(pd.DataFrame(both.astype(np.float64)))
    sx, sy, sxy = roll(x), roll(y), roll(x * y)
    sxx, syy = roll(x * x), roll(y * y)
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sy / n
        var_x = sxx - sx * sx / n
        var_y = syy - sy * sy / n
        beta = np.where(var_y > 0.0, cov / var_y, np.nan)
        corr = np.where((var_x > 0.0) & (var_y > 0.0), cov / np.sqrt(var_x * var_y), np.nan)
    enough = n >= _min_periods(window_bars)
    return np.where(enough, beta, np.nan), np.where(enough, np.clip(corr, -1.0, 1.0), np.nan)


def _last_funding(
    candles: pd.DataFrame, decision_time_utc: pd.Series, funding: pd.DataFrame
) -> FloatArray:
    """Latest funding rate with ``funding_time_utc <= decision_time_utc``, at most 24 h old."""
    missing = [c for c in ("pair", "funding_time_utc", "funding_rate") if c not in funding]
    if missing:
        raise DataError("funding", None, missing[0], f"missing columns {missing}")
    funding_time = funding["funding_time_utc"]
    if not isinstance(funding_time.dtype, pd.DatetimeTZDtype):
        raise DataError(
            "funding", None, "funding_time_utc", f"must be tz-aware UTC, got {funding_time.dtype}"
        )
    right = (
        funding.loc[funding_time.notna(), ["pair", "funding_time_utc", "funding_rate"]]
        .astype({"pair": str, "funding_rate": np.float64})
        .assign(funding_time_utc=lambda f: f["funding_time_utc"].dt.tz_convert("UTC"))
        .sort_values("funding_time_utc", kind="stable")
    )
    left = pd.DataFrame(
        {
            "row": np.arange(len(candles)),
            "pair": candles["pair"].astype(str).to_numpy(),
            "decision_time_utc": decision_time_utc.dt.tz_convert("UTC").array,
        }
    ).sort_values("decision_time_utc", kind="stable")
    right["funding_time_utc"] = right["funding_time_utc"].astype(left["decision_time_utc"].dtype)
    merged = pd.merge_asof(
        left,
        right,
        left_on="decision_time_utc",
        right_on="funding_time_utc",
        by="pair",
        direction="backward",
        tolerance=FUNDING_MAX_AGE,
    )
    out = np.full(len(candles), np.nan)
    out[merged["row"].to_numpy()] = merged["funding_rate"].to_numpy(np.float64)
    return out


def _grid_spread(grid: CandleGrid, candles: pd.DataFrame, method: SpreadMethod) -> FloatArray:
    """Trailing spread estimate on the hourly grid: 168 h window, 42 two-bar estimates needed.

    The window mean of the untruncated two-bar moments, truncated once
    (``features/spread.rolling_spread``'s ``aggregate="moment"``); the value at hour ``t`` uses
    bars opening at or before ``t`` only. Two-bar moments are NaN across a missing hour (the
    grid holds NaN there) and where bar ``t`` or ``t - 1`` has no trade (``repaired``, or zero
    volume and ``high == low``: `marketcast.features.spread.no_trade_bars`): such a bar's OHLC
    is the previous close, so its moments are exactly 0 and would pull the estimate down. A
    week with fewer than 42 two-bar moments left is NaN.
    """
    high, low = grid.wide(candles["high"]), grid.wide(candles["low"])
    close = grid.wide(candles["close"])
    no_trade = np.nan_to_num(grid.wide(no_trade_bars(candles)), nan=0.0) > 0.0
    moments = pd.DataFrame(spread_moments(high, low, close, method, no_trade=no_trade))
    mean_moment = moments.rolling(SPREAD_WINDOW_BARS, min_periods=SPREAD_MIN_ESTIMATES).mean()
    return moment_to_spread(mean_moment.to_numpy(), method)


def spread_estimate(candles: pd.DataFrame, method: SpreadMethod = "abdi_ranaldo") -> FloatArray:
    """The ``spread_estimate_168h`` rule by another estimator, one value per candle row.

    With ``method="abdi_ranaldo"`` this is the feature ``spread_estimate_168h`` itself; the
    crypto pipeline calls it with ``costs.spread_method`` so that the spread its costs charge
    follows the configured estimator, while the feature stays Abdi-Ranaldo (the models and
    the feature store do not change with the cost settings). Like the feature, it is known at
    the bar's close (``decision_time_utc``): trailing 168 h on the pair's hourly grid.

    Returns
    -------
    numpy.ndarray
        Relative spread (fraction of price), aligned with ``candles``' rows; NaN where fewer
        than 42 two-bar estimates are in the window (missing hours and moments touching a
        no-trade hour are not estimates).
    """
    grid = candle_grid(candles, origin="hour")
    return grid.rows(_grid_spread(grid, candles, method))


def charged_spread(
    features: pd.DataFrame, candles: pd.DataFrame, method: SpreadMethod | Literal["fixed"]
) -> FloatArray:
    """The spread estimate a cost model with ``spread_method`` ``method`` charges, per row of
    ``features`` (:func:`build_crypto_features` of ``candles``, row for row).

    ``abdi_ranaldo`` (and ``fixed``, whose cost ignores the estimate) is the feature
    ``spread_estimate_168h``; ``corwin_schultz`` is :func:`spread_estimate` by that estimator.
    The pipeline's costs and the signal server's both read it here, so that a champion is
    served the spread its run charged.
    """
    if method == "corwin_schultz":
        return spread_estimate(candles, method)
    return features["spread_estimate_168h"].to_numpy(dtype=np.float64)


def build_crypto_features(
    candles: pd.DataFrame,
    funding: pd.DataFrame | None = None,
    *,
    btc_pair: str = "BTCUSDT",
) -> pd.DataFrame:
    """Features for every candle row, known at that bar's close (``decision_time_utc``).

    Every feature of the bar opening at ``t`` uses bars opening at or before ``t`` only, so it
    is known at ``decision_time_utc = t + 1 h``. Each pair is laid on the full hourly grid:
    a return over ``k`` bars is ``ln(close_t / close_{t-k h})`` and is NaN when either bar is
    missing; rolling windows span ``w`` hours and need bars in at least 80 % of them.
    Cross-sectional ranks compare the pairs that have a bar at the same hour.

    Parameters
    ----------
    candles
        Hourly candles in the loader's contract (``pair``, ``open_time_utc``, OHLC,
        ``volume``, ``quote_volume``); rows need not be sorted; gaps are allowed.
    funding
        Optional funding rates with ``pair``, ``funding_time_utc``, ``funding_rate``.
    btc_pair
        Benchmark for beta and correlation; when absent those columns are NaN (logged).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``candles`` (same rows, same order): ``pair``, ``open_time_utc``,
        ``decision_time_utc`` and :data:`CRYPTO_FEATURE_COLUMNS`.
    """
    grid = candle_grid(candles, origin="hour")
    close = grid.wide(candles["close"])
    log_close = pd.DataFrame(np.log(close))
    ret_1h = log_close.diff(1)
    columns: dict[str, FloatArray] = {}

    for k in RETURN_HORIZONS_BARS:
        columns[f"ret_log_{k}h"] = grid.rows(log_close.diff(k))

    squared = ret_1h * ret_1h
    vol = {w: np.sqrt(_rolling(squared, w).mean().to_numpy()) for w in (24, 168)}
    columns["realised_vol_24h"] = grid.rows(vol[24])
    columns["realised_vol_168h"] = grid.rows(vol[168])

    high, low = grid.wide(candles["high"]), grid.wide(candles["low"])
    range_rel = pd.DataFrame((high - low) / close)
    columns["range_rel_24h"] = grid.rows(_rolling(range_rel, 24).mean())
    columns["range_rel_168h"] = grid.rows(_rolling(range_rel, 168).mean())

    quote_volume = pd.DataFrame(grid.wide(candles["quote_volume"]))
    # Mean over the hours present, scaled to a 24 h total, so a short gap does not look quiet.
    log_qv_24h = np.log1p(_rolling(quote_volume, 24).mean().to_numpy() * 24.0)
    columns["log_quote_volume_24h"] = grid.rows(log_qv_24h)
    log_qv = pd.DataFrame(np.log1p(quote_volume.to_numpy()))
    qv_roll = _rolling(log_qv, 168)
    with np.errstate(invalid="ignore", divide="ignore"):
        qv_std = qv_roll.std().to_numpy()
        z = (log_qv.to_numpy() - qv_roll.mean().to_numpy()) / qv_std
    columns["quote_volume_z_168h"] = grid.rows(np.where(qv_std > 0.0, z, np.nan))

    close_frame = pd.DataFrame(close)
    ema = {s: close_frame.ewm(span=s, min_periods=s).mean().to_numpy() for s in (24, 168)}
    columns["close_ema_ratio_24h"] = grid.rows(np.log(close / ema[24]))
    columns["close_ema_ratio_168h"] = grid.rows(np.log(close / ema[168]))
    columns["ema_cross_24h_168h"] = grid.rows(np.log(ema[24] / ema[168]))

    columns["xs_rank_ret_24h"] = grid.rows(_cross_section_rank(log_close.diff(24).to_numpy()))
    columns["xs_rank_ret_168h"] = grid.rows(_cross_section_rank(log_close.diff(168).to_numpy()))
    qv_now = np.where(np.isfinite(close), log_qv_24h, np.nan)
    columns["xs_rank_quote_volume_24h"] = grid.rows(_cross_section_rank(qv_now))

    ret_1h_array = ret_1h.to_numpy()
    if btc_pair in grid.pairs:
        benchmark = ret_1h_array[:, grid.pairs.index(btc_pair)]
        beta, corr = _beta_corr(ret_1h_array, benchmark, 168)
    else:
        log.warning("benchmark pair %s absent: beta_btc and corr_btc are NaN", btc_pair)
        beta = corr = np.full_like(close, np.nan)
    columns["beta_btc_168h"] = grid.rows(beta)
    columns["corr_btc_168h"] = grid.rows(corr)

    columns["spread_estimate_168h"] = grid.rows(_grid_spread(grid, candles, "abdi_ranaldo"))

    open_time = candles["open_time_utc"]
    decision_time = open_time + BAR
    if funding is None:
        columns["funding_rate_last"] = np.full(len(candles), np.nan)
    else:
        columns["funding_rate_last"] = _last_funding(candles, decision_time, funding)

    with np.errstate(invalid="ignore", divide="ignore"):
        trend = np.abs(log_close.diff(168).to_numpy()) / (vol[168] * np.sqrt(168.0))
        path_24h = ret_1h.abs().rolling(24, min_periods=24).sum().to_numpy()
        efficiency = np.abs(log_close.diff(24).to_numpy()) / path_24h
    columns["trend_strength_168h"] = grid.rows(np.where(np.isfinite(trend), trend, np.nan))
    columns["efficiency_ratio_24h"] = grid.rows(np.where(path_24h > 0.0, efficiency, np.nan))

    features = pd.DataFrame(
        {
            "pair": candles["pair"],
            "open_time_utc": open_time,
            "decision_time_utc": decision_time.rename("decision_time_utc"),
        },
        index=candles.index,
    )
    feature_block = pd.DataFrame(
        {name: columns[name] for name in CRYPTO_FEATURE_COLUMNS}, index=candles.index
    )
    return pd.concat([features, feature_block], axis=1)
