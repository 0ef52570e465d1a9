"""Crypto labels: forward open-to-open returns after the execution latency, direction classes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketcast.data.validation import DataError

__all__ = [
    "BAR",
    "DELISTING_BARS",
    "HORIZON_BARS",
    "dead_zone_for",
    "direction_label",
    "forward_returns",
]

FloatArray = npt.NDArray[np.float64]
Int8Array = npt.NDArray[np.int8]

#: Bar length of the candles (hourly).
BAR = pd.Timedelta(hours=1)
#: Forecast horizons by name, in bars.
HORIZON_BARS: dict[str, int] = {"1h": 1, "4h": 4, "1d": 24}
#: Hours after a pair's last bar in which the market must go on for its end to be a delisting.
DELISTING_BARS = 24


def _hour_keys(code: npt.ArrayLike, hours: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """One int64 key per (code, hour): the code (a pair's, a vendor's) in the high bits, the
    hour since the epoch in the low."""
    return np.asarray(code, dtype=np.int64) * np.int64(1 << 32) + np.asarray(hours, np.int64)


def forward_returns(
    candles: pd.DataFrame,
    horizon_bars: int,
    latency_bars: int = 0,
    *,
    delisting_bars: int | None = DELISTING_BARS,
) -> pd.DataFrame:
    """Simple return from the entry open to the exit open, for every candle row.

    The row of the bar opening at ``t`` is decided at its close, ``t + 1 h``. The position is
    entered at the open of the bar opening at ``t + (1 + latency_bars) h`` and closed at the
    open of the bar opening ``horizon_bars`` hours later; the label resolves then.

    **Delistings.** A pair whose bars stop while the market goes on (in each of the
    ``delisting_bars`` hours after its last bar, its vendor's pairs with a bar, new listings
    included, outnumber half of the others that traded in its last hour) was delisted or halted
    for good: a position held into its end is closed at the last traded price, the close of
    its last bar, and the label resolves ``delisting_bars`` hours after that close, when the
    rule can first tell it (one part stays read from the data: that the pair never comes
    back). Without this the return of the final
    holding period, often a crash, was NaN and the backtest booked the position flat from its
    entry. An exit bar that is missing for any other reason (a gap the pair comes back from,
    or the end of the data) still gives NaN.

    Parameters
    ----------
    candles
        Hourly candles with ``pair``, ``open_time_utc`` (tz-aware UTC, whole hours) and
        ``open``; at most one bar per pair and hour; rows need not be sorted. With a
        ``repaired`` column (``load_candles``' filled gaps and no-trade hours), a return whose
        entry or exit bar is repaired is NaN: its open is the previous close carried forward,
        a price nobody could trade at.
    horizon_bars
        Holding period in bars (>= 1), e.g. ``HORIZON_BARS["4h"]``.
    latency_bars
        Bars between the decision and the entry (>= 0).
    delisting_bars
        Hours (>= 1) after a pair's last bar in each of which most other pairs of its vendor
        must have a bar for its end to be a delisting (default a day: a file merely cut a few
        hours earlier than the others is not one, nor is the end of one dataset where another,
        years later, or another vendor's, begins). The evidence is the pairs in ``candles``:
        one pair alone is never delisted. None never exits at a delisting; nor does a frame
        without ``close``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``candles``: ``forward_return`` (``open_exit / open_entry - 1``, or
        ``close_last / open_entry - 1`` at a delisting; NaN when the entry or the exit bar
        is not in the data at exactly its expected hour, so no return spans a gap by
        shifting rows, or is repaired), ``entry_time_utc``, ``label_end_utc`` (the exit
        bar's open time, or at a delisting the last bar's close plus ``delisting_bars``
        hours: when the label resolves), ``exit_time_utc`` (when the position is closed: the
        exit bar's open time, or at a delisting the last bar's close; funding is paid up to
        it) and ``delisting_exit`` (bool). Times are filled on every row, also where the
        return is NaN.

        And the period a position is actually held, for the backtest: ``period_return``
        from the open of the first traded bar (in the data and not repaired) at or after the
        entry hour to the open of the first at or after the exit hour (0 when both are the
        same bar: nothing traded in the period), ``period_entry_utc`` and
        ``period_exit_utc`` their open times (funding is paid between them); at a delisting
        the last close, flagged in ``period_delisting``. A position cannot be closed while
        its pair does not trade (an outage, a halt): booking such a period flat, as a NaN
        label would, used the knowledge that its exit bar was missing, which comes only at
        the exit (the crypto
        audit of 2026-11-25 found such 4h periods fell 1.22% on average). A period held into
        a delisting ends at the last close, as the label does, also where the entry hour is a
        filled one (the label has no return there). NaN only where the pair never trades
        again in the data and the rule sees no delisting (the data's end).
        Labels stay ``forward_return``: a label must resolve at ``label_end_utc``.

    Examples
    --------
    >>> times = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    >>> bars = pd.DataFrame({"pair": "BTCUSDT", "open_time_utc": times,
    ...                      "open": [100.0, 101.0, 103.0, 102.0]})
    >>> forward_returns(bars, 1)["forward_return"].round(4).tolist()
    [0.0198, -0.0097, nan, nan]
    """
    if delisting_bars is not None and delisting_bars < 1:
        raise ValueError(f"delisting_bars must be >= 1 or None, got {delisting_bars}")
    if horizon_bars < 1:
        raise ValueError(f"horizon_bars must be >= 1, got {horizon_bars}")
    if latency_bars < 0:
        raise ValueError(f"latency_bars must be >= 0, got {latency_bars}")
    missing = [c for c in ("pair", "open_time_utc", "open") if c not in candles.columns]
    if missing:
        raise DataError("candles", None, missing[0], f"missing columns {missing}")
    open_time = candles["open_time_utc"]
    if not isinstance(open_time.dtype, pd.DatetimeTZDtype) or open_time.isna().any():
        raise DataError(
            "candles",
            None,
            "open_time_utc",
            f"must be tz-aware UTC without gaps in the column, got {open_time.dtype}",
        )
    open_ns = np.asarray(pd.DatetimeIndex(open_time).as_unit("ns").asi8, dtype=np.int64)
    off_grid = open_ns % BAR.value != 0
    if off_grid.any():
        position = int(np.flatnonzero(off_grid)[0])
        raise DataError(
            "candles", None, "open_time_utc", f"row position {position}: not on a whole hour"
        )
    codes, _ = pd.factorize(candles["pair"], sort=False)
    hours = open_ns // BAR.value
    keys = _hour_keys(codes, hours)
    index = pd.Index(keys)
    if not index.is_unique:
        position = int(np.flatnonzero(index.duplicated())[0])
        raise DataError(
            "candles",
            None,
            "open_time_utc",
            f"row position {position}: duplicate bar for pair {candles['pair'].iloc[position]}",
        )
    opens = candles["open"].to_numpy(np.float64)
    entry_pos = index.get_indexer(pd.Index(keys + (1 + latency_bars)))
    exit_pos = index.get_indexer(pd.Index(keys + (1 + latency_bars + horizon_bars)))
    found = (entry_pos >= 0) & (exit_pos >= 0)
    repaired = np.zeros(len(candles), dtype=bool)
    if "repaired" in candles.columns:  # a filled gap or no-trade hour: nobody could fill there
        repaired = candles["repaired"].to_numpy(dtype=bool)
        found &= ~(repaired[np.maximum(entry_pos, 0)] | repaired[np.maximum(exit_pos, 0)])
    exit_price = np.where(found, opens[exit_pos], np.nan)
    label_end = open_time + (1 + latency_bars + horizon_bars) * BAR
    exit_time = label_end
    # rows whose exit would come after their pair's delisting (whatever their entry)
    into_delisting = np.zeros(len(candles), dtype=bool)
    last_pos = np.zeros(len(candles), dtype=np.intp)
    if delisting_bars is not None and "close" in candles.columns and len(candles):
        vendors = (
            pd.factorize(candles["vendor"], sort=False)[0]
            if "vendor" in candles.columns
            else np.zeros(len(candles), dtype=np.intp)
        )
        into_delisting, last_pos = _delisting_exits(
            codes, hours, vendors, 1 + latency_bars + horizon_bars, delisting_bars
        )
    delisted = into_delisting & (entry_pos >= 0) & ~repaired[np.maximum(entry_pos, 0)]
    if delisting_bars is not None and delisted.any():
        exit_price = np.where(delisted, candles["close"].to_numpy(np.float64)[last_pos], exit_price)
        # known once the market has traded on without the pair for `delisting_bars` hours:
        # resolved at its last close, the label trained refits that had not seen those hours
        last_close = pd.DatetimeIndex(open_time)[last_pos] + BAR
        exit_time = exit_time.mask(delisted, pd.Series(last_close, index=label_end.index))
        confirmed = last_close + delisting_bars * BAR
        label_end = label_end.mask(delisted, pd.Series(confirmed, index=label_end.index))
        found |= delisted
    entry_open = np.where(found, opens[entry_pos], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = exit_price / entry_open - 1.0
    ret = np.where(found & (entry_open > 0.0) & (exit_price > 0.0), ret, np.nan)
    delisted &= np.isfinite(ret)
    # the period a position is actually held: from the first traded open at or after the
    # entry hour to the first at or after the exit hour (the backtest's; see the docstring)
    traded = ~repaired & (opens > 0.0)
    held_entry = _first_traded_at(keys, traded, keys + (1 + latency_bars))
    held_exit = _first_traded_at(keys, traded, keys + (1 + latency_bars + horizon_bars))
    held = (held_entry >= 0) & (held_exit >= 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        held_ret = np.where(held, opens[held_exit] / opens[held_entry] - 1.0, np.nan)
    times = pd.DatetimeIndex(open_time).as_unit("ns")  # read as int64 ns for funding
    entry_time = open_time + (1 + latency_bars) * BAR
    period_entry = pd.Series(times[np.maximum(held_entry, 0)], index=candles.index)
    period_entry = period_entry.where(held_entry >= 0, entry_time)
    period_exit = pd.Series(times[np.maximum(held_exit, 0)], index=candles.index)
    period_exit = period_exit.where(held, exit_time)
    # held into a delisting, as the label is, but from the held entry: a label whose entry
    # hour is a filled one has none, while the position enters at the next open
    gone = into_delisting & (held_entry >= 0) & ~held
    if gone.any():
        closes = candles["close"].to_numpy(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            held_ret = np.where(
                gone, closes[last_pos] / opens[np.maximum(held_entry, 0)] - 1.0, held_ret
            )
        period_exit = period_exit.mask(gone, pd.Series(times[last_pos] + BAR, index=candles.index))
    return pd.DataFrame(
        {
            "forward_return": ret,
            "entry_time_utc": entry_time,
            "label_end_utc": label_end,
            "exit_time_utc": exit_time,
            "delisting_exit": delisted,
            "period_return": held_ret,
            "period_entry_utc": period_entry,
            "period_exit_utc": period_exit,
            "period_delisting": gone & np.isfinite(held_ret),
        },
        index=candles.index,
    )


def _first_traded_at(
    keys: npt.NDArray[np.int64], traded: npt.NDArray[np.bool_], wanted: npt.NDArray[np.int64]
) -> npt.NDArray[np.intp]:
    """Row position of the first traded bar of the same pair at or after each ``wanted``
    (pair, hour) key, -1 where the pair has none (`_hour_keys`: a pair's keys are one block)."""
    rows = np.flatnonzero(traded)
    order = np.argsort(keys[rows], kind="stable")
    sorted_keys = keys[rows][order]
    at = np.searchsorted(sorted_keys, wanted, side="left")
    inside = at < len(sorted_keys)
    found = np.full(len(wanted), -1, dtype=np.intp)
    same_pair = inside.copy()
    same_pair[inside] = (sorted_keys[at[inside]] >> 32) == (wanted[inside] >> 32)
    found[same_pair] = rows[order[at[same_pair]]]
    return found


def _delisting_exits(
    codes: npt.NDArray[np.intp],
    hours: npt.NDArray[np.int64],
    vendors: npt.NDArray[np.intp],
    exit_bars: int,
    delisting_bars: int,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
    """Rows whose exit falls after their pair's delisting, and the row position of each row's
    pair's last bar; a caller adds that the row's position was entered.

    A row's exit falls after a delisting when its exit bar (``exit_bars``
    after the row's) would open after its pair's last bar, and the market went on without the
    pair: of the other pairs with a bar of the same vendor in that last hour, more than half
    have one in each of the ``delisting_bars`` hours after it (new listings count too). So the
    end of one dataset is no delisting where another market's files (futures after spot) or one
    pair's longer download go on, and an exchange outage inside those hours hides a delisting
    (its labels stay NaN).
    """
    n_pairs = int(codes.max()) + 1
    last_hour = np.full(n_pairs, np.iinfo(np.int64).min)
    np.maximum.at(last_hour, codes, hours)
    is_last = hours == last_hour[codes]
    last_pos = np.zeros(n_pairs, dtype=np.intp)
    last_pos[codes[is_last]] = np.flatnonzero(is_last)
    # pairs with a bar per (vendor, hour): one bar per pair and hour, so a count of rows
    market, n_trading = np.unique(_hour_keys(vendors, hours), return_counts=True)
    after = last_hour[:, None] + np.arange(delisting_bars + 1)  # (n_pairs, 1 + delisting_bars)
    wanted = pd.Index(_hour_keys(vendors[last_pos][:, None], after).ravel())
    at = pd.Index(market).get_indexer(wanted)
    counts = np.where(at >= 0, n_trading[at], 0).reshape(after.shape)
    others_at_end = counts[:, 0] - 1  # the pair itself traded in its last hour
    gone = (others_at_end >= 1) & (2 * counts[:, 1:].min(axis=1) > others_at_end)
    after_end = hours + exit_bars > last_hour[codes]  # the exit bar would come after the last
    return after_end & gone[codes], last_pos[codes]


def direction_label(returns: npt.ArrayLike, dead_zone: float) -> Int8Array:
    """Direction class of each return: +1 above ``dead_zone``, -1 below ``-dead_zone``, else 0.

    A NaN return (label not available) also gives 0; the rows with a usable label are
    ``np.isfinite(returns)``, which callers must use as the mask for training and scoring.

    Parameters
    ----------
    returns
        Forward returns, shape ``(n,)``.
    dead_zone
        Half-width (>= 0) of the band around 0 labelled 0 (e.g. :func:`dead_zone_for`).

    Returns
    -------
    numpy.ndarray
        int8, shape ``(n,)``, values in {-1, 0, +1}.

    Examples
    --------
    >>> direction_label([0.01, -0.002, 0.0005, np.nan], 0.001).tolist()
    [1, -1, 0, 0]
    """
    if not dead_zone >= 0.0:
        raise ValueError(f"dead_zone must be >= 0, got {dead_zone}")
    r = np.atleast_1d(np.asarray(returns, dtype=np.float64))
    label = np.zeros(r.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        label[r > dead_zone] = 1
        label[r < -dead_zone] = -1
    return label


def dead_zone_for(horizon_bars: int, cost_rate: float) -> float:
    """Default dead zone: the round-trip cost ``2 * cost_rate``.

    A move smaller than the round-trip cost cannot be traded at a profit, whatever the
    horizon, so it is labelled 0 (flat). ``horizon_bars`` is validated and kept in the
    signature so a horizon-dependent rule can replace this one without changing callers.

    Parameters
    ----------
    horizon_bars
        Holding period in bars (>= 1).
    cost_rate
        One-way trading cost as a fraction of notional: the pipeline passes the fee it
        charges alone (``costs.fee_rate``: the taker fee, or the maker fee with ``use_taker``
        off; a round-trip fee, docs/crypto-pipeline.md); add half the spread and the slippage
        for a wider zone.

    Examples
    --------
    >>> dead_zone_for(4, 0.0015)
    0.003
    """
    if horizon_bars < 1:
        raise ValueError(f"horizon_bars must be >= 1, got {horizon_bars}")
    if not cost_rate >= 0.0:
        raise ValueError(f"cost_rate must be >= 0, got {cost_rate}")
    return 2.0 * float(cost_rate)
