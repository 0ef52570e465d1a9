"""Bid-ask spread estimators from high, low and close prices (Corwin-Schultz, Abdi-Ranaldo)."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketcast.costs import CostModel

__all__ = [
    "SPREAD_AGGREGATES",
    "SPREAD_METHODS",
    "SpreadAggregate",
    "SpreadMethod",
    "abdi_ranaldo_spread",
    "corwin_schultz_spread",
    "moment_to_spread",
    "no_trade_bars",
    "per_bar_spread",
    "rolling_spread",
    "spread_moments",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
SpreadMethod = Literal["abdi_ranaldo", "corwin_schultz"]
SpreadAggregate = Literal["moment", "mean"]
SPREAD_METHODS: tuple[str, ...] = ("abdi_ranaldo", "corwin_schultz")
SPREAD_AGGREGATES: tuple[str, ...] = ("moment", "mean")

_HOUR = pd.Timedelta(hours=1)
# 3 - 2 * sqrt(2), the denominator of the Corwin-Schultz alpha (their equation 18).
_CS_K = 3.0 - 2.0 * np.sqrt(2.0)


def _positive_prices(name: str, values: npt.ArrayLike) -> FloatArray:
    prices = np.asarray(values, dtype=np.float64)
    if prices.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (bars) or 2-D (bars x markets), got {prices.ndim}-D")
    bad = np.isfinite(prices) & (prices <= 0.0)
    if bad.any():
        position = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(
            f"{name} must be positive: element {position} is {prices.reshape(-1)[position]!r}"
        )
    return prices


def _same_shape(**arrays: FloatArray) -> None:
    shapes = {name: a.shape for name, a in arrays.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"price arrays differ in shape: {shapes}")


def _lag(values: FloatArray) -> FloatArray:
    """Previous bar's value along axis 0 (NaN for the first bar)."""
    lagged = np.full_like(values, np.nan)
    lagged[1:] = values[:-1]
    return lagged


def _high_low(high: npt.ArrayLike, low: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    h = _positive_prices("high", high)
    lo = _positive_prices("low", low)
    _same_shape(high=h, low=lo)
    below = h < lo
    if below.any():
        position = int(np.flatnonzero(below.reshape(-1))[0])
        raise ValueError(f"high is below low at element {position}")
    return h, lo


def _corwin_schultz_raw(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike | None
) -> FloatArray:
    """Corwin-Schultz two-bar estimate before negatives are set to 0 (NaN for bar 0)."""
    h, lo = _high_low(high, low)
    # bar t - 1 enters as it traded; only bar t is adjusted (below)
    prev_h, prev_lo = _lag(h), _lag(lo)
    if close is not None:
        c = _positive_prices("close", close)
        _same_shape(high=h, close=c)
        prev_close = _lag(c)
        # Overnight adjustment (Corwin & Schultz 2012, section II.B, p. 726): when bar t trades
        # wholly above (below) bar t - 1's close, shift bar t's high and low by the gap before
        # pairing it with bar t - 1, which is left as it is.
        gap_up = np.where(lo > prev_close, lo - prev_close, 0.0)
        gap_down = np.where(h < prev_close, h - prev_close, 0.0)
        shift = gap_up + gap_down
        h = h - shift
        lo = lo - shift
    beta = np.log(h / lo) ** 2 + np.log(prev_h / prev_lo) ** 2
    # np.maximum / np.minimum propagate NaN, so a missing bar gives a missing estimate.
    gamma = np.log(np.maximum(h, prev_h) / np.minimum(lo, prev_lo)) ** 2
    alpha = (np.sqrt(2.0 * beta) - np.sqrt(beta)) / _CS_K - np.sqrt(gamma / _CS_K)
    expa = np.exp(alpha)
    return 2.0 * (expa - 1.0) / (1.0 + expa)


def _abdi_ranaldo_squared(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> FloatArray:
    """Abdi-Ranaldo two-bar squared-spread moment ``4 (c_{t-1} - eta_{t-1})(c_{t-1} - eta_t)``."""
    h, lo = _high_low(high, low)
    c = _positive_prices("close", close)
    _same_shape(high=h, close=c)
    eta = 0.5 * (np.log(h) + np.log(lo))
    prev_close = _lag(np.log(c))
    return 4.0 * (prev_close - _lag(eta)) * (prev_close - eta)


def corwin_schultz_spread(
    high: npt.ArrayLike, low: npt.ArrayLike, *, close: npt.ArrayLike | None = None
) -> FloatArray:
    """Corwin-Schultz (2012) two-bar high-low spread estimate, one value per bar.

    The estimate at bar ``t`` uses bars ``t - 1`` and ``t`` only, so it is known at the close
    of bar ``t``; bar 0 is NaN. With ``beta = ln(H_{t-1}/L_{t-1})^2 + ln(H_t/L_t)^2`` and
    ``gamma = ln(max(H_{t-1}, H_t) / min(L_{t-1}, L_t))^2``::

        alpha = (sqrt(2 beta) - sqrt(beta)) / (3 - 2 sqrt 2) - sqrt(gamma / (3 - 2 sqrt 2))
        S = 2 (exp(alpha) - 1) / (1 + exp(alpha))

    Negative estimates are set to 0 (the paper's "adjusted" two-day estimates). Note that
    this truncation biases the estimate upwards when the spread is small next to the bar's
    volatility; :func:`rolling_spread` with ``aggregate="moment"`` averages before truncating.

    Parameters
    ----------
    high, low
        Bar highs and lows, shape ``(n_bars,)`` or ``(n_bars, n_markets)`` (estimated down
        axis 0). Non-positive prices or ``high < low`` raise ``ValueError``; NaN propagates.
    close
        Optional closes. When given, the paper's overnight adjustment is applied: if bar ``t``
        trades wholly above (below) bar ``t - 1``'s close, bar ``t``'s high and low are shifted
        down (up) by the gap before it is paired with bar ``t - 1`` (whose own high and low are
        used as they are), so a jump between bars is not read as spread.

    Returns
    -------
    numpy.ndarray
        Relative spread (fraction of price), same shape as ``high``, >= 0 or NaN.

    Examples
    --------
    >>> s = corwin_schultz_spread([101.0, 101.0], [99.0, 99.0])
    >>> bool(np.isnan(s[0])), round(float(s[1]), 4)
    (True, 0.02)
    """
    raw = _corwin_schultz_raw(high, low, close)
    return np.where(raw < 0.0, 0.0, raw)


def abdi_ranaldo_spread(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike
) -> FloatArray:
    """Abdi-Ranaldo (2017) close-high-low spread estimate, two-bar version, one value per bar.

    With log mid-range ``eta_t = (ln H_t + ln L_t) / 2`` and log close ``c_t``, the squared
    spread is ``s^2 = 4 E[(c_{t-1} - eta_{t-1}) (c_{t-1} - eta_t)]``. The per-bar estimate
    is ``sqrt(max(4 (c_{t-1} - eta_{t-1}) (c_{t-1} - eta_t), 0))``: negative two-bar products
    are set to 0 (the paper's two-day corrected version). It uses bars ``t - 1`` and ``t``
    only, so it is known at the close of bar ``t``; bar 0 is NaN.

    Parameters
    ----------
    high, low, close
        Bar prices, shape ``(n_bars,)`` or ``(n_bars, n_markets)``.

    Returns
    -------
    numpy.ndarray
        Relative spread (fraction of price), same shape as ``high``, >= 0 or NaN.

    Examples
    --------
    >>> s = abdi_ranaldo_spread([101.0, 100.5], [100.0, 99.5], [101.0, 100.0])
    >>> bool(np.isnan(s[0])), round(float(s[1]), 4)
    (True, 0.0141)
    """
    squared = _abdi_ranaldo_squared(high, low, close)
    return np.sqrt(np.where(squared < 0.0, 0.0, squared))


def per_bar_spread(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    method: SpreadMethod = "abdi_ranaldo",
) -> FloatArray:
    """Per-bar spread estimate by ``method`` (negatives set to 0), known at the bar's close."""
    if method == "abdi_ranaldo":
        return abdi_ranaldo_spread(high, low, close)
    if method == "corwin_schultz":
        return corwin_schultz_spread(high, low, close=close)
    raise ValueError(f"unknown spread method {method!r}; expected one of {SPREAD_METHODS}")


def spread_moments(
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    method: SpreadMethod = "abdi_ranaldo",
    *,
    no_trade: npt.ArrayLike | None = None,
) -> FloatArray:
    """Per-bar untruncated moment whose window mean gives an unbiased spread estimate.

    For ``abdi_ranaldo`` the moment is the two-bar squared spread
    ``4 (c_{t-1} - eta_{t-1})(c_{t-1} - eta_t)``; for ``corwin_schultz`` it is the two-bar
    estimate ``S`` with negatives kept. Averaging these over a window and then applying
    :func:`moment_to_spread` truncates once, after averaging, as in the papers' monthly
    estimators, instead of truncating every noisy two-bar value.

    ``no_trade`` (bool, same shape as ``high``) marks bars without a trade (see
    :func:`no_trade_bars`): a moment whose bar ``t`` or ``t - 1`` is one is NaN, not an
    observation. Such a bar's open, high, low and close all equal the previous close, so both
    moments touching it would be exactly 0 and pull the window mean towards 0 (Corwin &
    Schultz's reference code likewise leaves no-trade days out).

    Examples
    --------
    >>> m = spread_moments([101.0, 100.5, 100.0], [100.0, 99.5, 100.0], [101.0, 100.0, 100.0])
    >>> [round(float(x), 6) for x in m[1:]]
    [0.000198, 0.0]
    >>> m = spread_moments([101.0, 100.5, 100.0], [100.0, 99.5, 100.0], [101.0, 100.0, 100.0],
    ...                    no_trade=[False, False, True])
    >>> bool(np.isnan(m[2]))
    True
    """
    if method == "abdi_ranaldo":
        moments = _abdi_ranaldo_squared(high, low, close)
    elif method == "corwin_schultz":
        moments = _corwin_schultz_raw(high, low, close)
    else:
        raise ValueError(f"unknown spread method {method!r}; expected one of {SPREAD_METHODS}")
    return moments if no_trade is None else _without_no_trade(moments, no_trade)


def no_trade_bars(frame: pd.DataFrame) -> BoolArray:
    """Bars without a trade: ``repaired`` (a filled gap or a zero-volume placeholder the loader
    replaced), or a placeholder not yet replaced: zero ``volume`` and ``high == low``.

    Missing columns mark nothing; a missing volume is not 0. A zero-volume bar with a range is
    not a placeholder, and a traded bar with ``high == low`` (one price all hour) is a real
    observation.

    Examples
    --------
    >>> frame = pd.DataFrame({"volume": [5.0, 0.0, 0.0, np.nan], "high": [2.0, 1.0, 2.0, 1.0],
    ...                       "low": [1.0, 1.0, 1.0, 1.0], "repaired": [False] * 4})
    >>> no_trade_bars(frame).tolist()
    [False, True, False, False]
    """
    flags = np.zeros(len(frame), dtype=bool)
    if "repaired" in frame.columns:
        flags |= frame["repaired"].fillna(False).to_numpy(dtype=bool)
    if {"volume", "high", "low"} <= set(frame.columns):
        flat = frame["high"].to_numpy(dtype=np.float64) == frame["low"].to_numpy(dtype=np.float64)
        flags |= (frame["volume"].to_numpy(dtype=np.float64) == 0.0) & flat
    return flags


def _without_no_trade(values: FloatArray, no_trade: npt.ArrayLike) -> FloatArray:
    """``values`` with NaN at each two-bar value whose bar ``t`` or ``t - 1`` is no-trade."""
    flags = np.asarray(no_trade, dtype=bool)
    if flags.shape != values.shape:
        raise ValueError(f"no_trade has shape {flags.shape}, prices {values.shape}")
    touched = flags.copy()
    touched[1:] |= flags[:-1]
    return np.where(touched, np.nan, values)


def moment_to_spread(
    mean_moment: npt.ArrayLike, method: SpreadMethod = "abdi_ranaldo"
) -> FloatArray:
    """Spread from a window mean of :func:`spread_moments`: negatives become 0.

    Examples
    --------
    >>> moment_to_spread([4e-6, -1e-6], "abdi_ranaldo").tolist()
    [0.002, 0.0]
    """
    moment = np.asarray(mean_moment, dtype=np.float64)
    clipped = np.where(moment < 0.0, 0.0, moment)
    if method == "abdi_ranaldo":
        return np.sqrt(clipped)
    if method == "corwin_schultz":
        return clipped
    raise ValueError(f"unknown spread method {method!r}; expected one of {SPREAD_METHODS}")


def rolling_spread(
    frame_one_pair: pd.DataFrame,
    window_bars: int = 168,
    method: SpreadMethod = "abdi_ranaldo",
    *,
    aggregate: SpreadAggregate = "moment",
    min_periods: int | None = None,
    bar: pd.Timedelta = _HOUR,
) -> pd.Series:
    """Trailing spread estimate of one market, as a fraction of price.

    The value at row ``t`` uses the two-bar estimates of rows ``t - window_bars + 1 .. t``,
    each built from its own bar and the one before, so only bars up to and including ``t``
    enter (known at the close of bar ``t``). The window counts rows (bars present). When the
    frame has ``open_time_utc``, a two-bar estimate whose previous row is not exactly one
    ``bar`` earlier (a gap in the data) is left out instead of pairing bars across the gap.
    A two-bar estimate touching a no-trade bar (``repaired``, or a zero-volume bar with
    ``high == low``: :func:`no_trade_bars`) is left out too, so a window of mostly no-trade
    hours can be NaN.

    Parameters
    ----------
    frame_one_pair
        One market's bars in time order with ``high``, ``low``, ``close`` (and optionally
        ``open_time_utc``, ``volume`` and ``repaired``).
    window_bars
        Number of bars in the window (168 hourly bars = one week).
    method
        ``"abdi_ranaldo"`` (default) or ``"corwin_schultz"``.
    aggregate
        ``"moment"`` (default): average the untruncated two-bar moments, then truncate at 0
        (``sqrt(max(mean(s^2), 0))`` for Abdi-Ranaldo). ``"mean"``: average the per-bar
        estimates that were already truncated at 0. ``"mean"`` is biased upwards by about a
        third of the bar's volatility when the true spread is far below it (liquid pairs on
        hourly bars), so it measures volatility more than spread there.
    min_periods
        Fewest valid two-bar estimates needed for a value; default ``max(2, window_bars // 4)``.
    bar
        Bar length, used to tell consecutive bars from bars across a gap.

    Returns
    -------
    pandas.Series
        Named ``spread_<method>``, indexed like ``frame_one_pair``.
    """
    if window_bars < 1:
        raise ValueError(f"window_bars must be >= 1, got {window_bars}")
    if aggregate not in SPREAD_AGGREGATES:
        raise ValueError(f"unknown aggregate {aggregate!r}; expected one of {SPREAD_AGGREGATES}")
    missing = [c for c in ("high", "low", "close") if c not in frame_one_pair.columns]
    if missing:
        raise ValueError(f"frame_one_pair lacks columns {missing}")
    if "pair" in frame_one_pair.columns and frame_one_pair["pair"].nunique() > 1:
        raise ValueError("frame_one_pair holds more than one pair; call it per pair")
    high, low, close = (frame_one_pair[c].to_numpy(np.float64) for c in ("high", "low", "close"))
    if aggregate == "moment":
        values = spread_moments(high, low, close, method)
    else:
        values = per_bar_spread(high, low, close, method)
    values = _without_no_trade(values, no_trade_bars(frame_one_pair))
    if "open_time_utc" in frame_one_pair.columns and len(frame_one_pair) > 1:
        open_ns = pd.DatetimeIndex(frame_one_pair["open_time_utc"]).as_unit("ns").asi8
        consecutive = np.concatenate([[False], np.diff(open_ns) == bar.value])
        values = np.where(consecutive, values, np.nan)
    periods = max(2, window_bars // 4) if min_periods is None else min_periods
    periods = max(1, min(periods, window_bars))
    window_mean = (
        pd.Series(values, index=frame_one_pair.index)
        .rolling(window_bars, min_periods=periods)
        .mean()
    )
    if aggregate == "moment":
        spread = moment_to_spread(window_mean.to_numpy(), method)
    else:
        spread = window_mean.to_numpy()
    return pd.Series(spread, index=frame_one_pair.index, name=f"spread_{method}")


def estimate_spread(
    frame_one_pair: pd.DataFrame, costs: CostModel, window_bars: int = 168
) -> FloatArray:
    """Per-bar relative spread for one pair by ``costs.spread_method`` (rolling, past bars only).

    ``fixed`` returns ``costs.fixed_spread`` everywhere; the candle estimators call
    :func:`rolling_spread` (Abdi & Ranaldo 2017, Corwin & Schultz 2012).
    """
    if costs.spread_method == "fixed":
        return np.full(len(frame_one_pair), costs.fixed_spread)
    series = rolling_spread(frame_one_pair, window_bars=window_bars, method=costs.spread_method)
    return np.asarray(series, dtype=np.float64)
