"""Audit fixes to the crypto data and spread features: funding and open-interest rows get the
candle rules (finite values, time range); spread moments touching a no-trade hour are left out;
the Corwin-Schultz overnight adjustment moves bar t only; a file name with several pair-like
words picks the one with a major quote asset or is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketcast.costs import period_funding_sums
from marketcast.data.validation import DataError
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.datasets.crypto import load_candle_sources, pair_from_name
from marketcast.features.crypto import spread_estimate
from marketcast.features.spread import rolling_spread, spread_moments
from marketcast.features.universe import build_universe

T0_MS = 1_768_233_600_000  # 2026-01-12 16:00 UTC, a funding hour
HOUR_MS = 3_600_000
_CS_K = 3.0 - 2.0 * np.sqrt(2.0)


def _funding_csv() -> bytes:
    lines = [
        "timestamp,symbol,funding_rate",
        f"{T0_MS},BTCUSDT,0.0001",  # line 2
        f"{T0_MS + 8 * HOUR_MS},BTCUSDT,inf",  # line 3: not a rate
        "0,BTCUSDT,0.0001",  # line 4: 1970, a broken stamp
        f"{T0_MS + 16 * HOUR_MS},BTCUSDT,0.0002",  # line 5
    ]
    return ("\n".join(lines) + "\n").encode()


# --- 1. funding and open interest: finite values, times in range -------------------------------


def test_funding_drops_an_infinite_rate_and_a_zero_time_naming_their_lines() -> None:
    data = load_candle_sources([("BTCUSDT_funding_8h.csv", _funding_csv())])
    report = data.report
    assert report.dropped["non_finite_value"] == 1
    assert report.dropped["timestamp_out_of_range"] == 1
    assert report.rows_read == report.rows_kept + sum(report.dropped.values()) == 4
    found = {
        (i.file, i.row, i.field, i.reason)
        for i in report.issues
        if i.reason in ("non_finite_value", "timestamp_out_of_range")
    }
    assert found == {
        ("BTCUSDT_funding_8h.csv", 3, "funding_rate", "non_finite_value"),
        ("BTCUSDT_funding_8h.csv", 4, "funding_time_utc", "timestamp_out_of_range"),
    }
    funding = data.funding
    assert funding["funding_rate"].tolist() == [0.0001, 0.0002]
    # the sums see only real events: no crash on inf, and a 2025 period is outside coverage
    times = pd.DatetimeIndex(funding["funding_time_utc"]).as_unit("ns").asi8
    start = pd.DatetimeIndex(["2025-06-01 00:00", "2026-01-12 16:00"], tz="UTC").as_unit("ns")
    end = pd.DatetimeIndex(["2025-06-01 04:00", "2026-01-13 08:00"], tz="UTC").as_unit("ns")
    sums = period_funding_sums(times, funding["funding_rate"].to_numpy(), start.asi8, end.asi8)
    assert np.isnan(sums[0])
    assert sums[1] == pytest.approx(0.0002)


def test_funding_with_on_error_raise_names_the_first_bad_line() -> None:
    with pytest.raises(DataError) as caught:
        load_candle_sources([("BTCUSDT_funding_8h.csv", _funding_csv())], on_error="raise")
    assert (caught.value.row, caught.value.field, caught.value.reason) == (
        3,
        "funding_rate",
        "non_finite_value",
    )


def test_open_interest_drops_infinite_values_and_far_future_times() -> None:
    lines = [
        "timestamp,symbol,sum_open_interest,sum_open_interest_value",
        f"{T0_MS},BTCUSDT,100,inf",  # line 2
        f"{T0_MS + 4 * HOUR_MS},BTCUSDT,1e400,5",  # line 3: overflows to inf
        "4102444800000,BTCUSDT,100,5",  # line 4: 2100-01-01
        f"{T0_MS + 8 * HOUR_MS},BTCUSDT,100,5",  # line 5
    ]
    data = load_candle_sources([("BTCUSDT_open_interest_4h.csv", "\n".join(lines).encode())])
    report = data.report
    assert report.dropped["non_finite_value"] == 2
    assert report.dropped["timestamp_out_of_range"] == 1
    found = sorted(
        (i.row, i.field, i.reason)
        for i in report.issues
        if i.reason in ("non_finite_value", "timestamp_out_of_range")
    )
    assert found == [
        (2, "open_interest_value", "non_finite_value"),
        (3, "open_interest", "non_finite_value"),
        (4, "time_utc", "timestamp_out_of_range"),
    ]
    assert len(data.open_interest) == 1
    assert np.isfinite(
        data.open_interest[["open_interest", "open_interest_value"]].to_numpy()
    ).all()


# --- 2. no-trade hours are not spread observations ---------------------------------------------


def _simulated_csv(no_trade_share: float, spread: float = 0.0045, n_hours: int = 24 * 60) -> bytes:
    """Hourly bars of trades at bid or ask around a random-walk mid (60 ticks an hour); a
    no-trade hour is the exchange's placeholder: the previous close, zero volume. The price path
    is the same whatever ``no_trade_share``."""
    path_rng, gap_rng = np.random.default_rng(1), np.random.default_rng(2)
    no_trade = gap_rng.uniform(size=n_hours) < no_trade_share
    start = pd.Timestamp("2022-01-01", tz="UTC")
    rows, mid, prev_close = [], 100.0, None
    for i in range(n_hours):
        ticks = mid * np.exp(np.cumsum(path_rng.normal(0.0, 0.003 / np.sqrt(60), 60)))
        prices = ticks * (1 + path_rng.choice([-1, 1], 60) * spread / 2)
        mid = ticks[-1]
        if no_trade[i] and prev_close is not None:
            o = h = lo = c = prev_close
            volume = 0.0
        else:
            o, h, lo, c, volume = prices[0], prices.max(), prices.min(), prices[-1], 1e6
            prev_close = c
        when = start + pd.Timedelta(hours=i)
        rows.append(f"{when:%Y-%m-%d %H:%M:%S},{o},{h},{lo},{c},{volume},THINUSDT")
    return ("date,open,high,low,close,volume,ticker\n" + "\n".join(rows) + "\n").encode()


def _estimates(no_trade_share: float) -> dict[str, float]:
    data = load_candle_sources(
        [("THINUSDT_1h.csv", _simulated_csv(no_trade_share))], max_repair_bars=3
    )
    candles = data.candles
    universe = build_universe(candles, min_median_quote_volume_usd=0, min_history_days=0)
    return {
        "repaired": float(candles["repaired"].sum()),
        "rolling_720": float(rolling_spread(candles, 720).iloc[-1]),
        "feature_168h": float(np.nanmedian(spread_estimate(candles))),
        "universe": float(universe["spread_estimate"].iloc[-1]),
        "rolling_720_cs": float(rolling_spread(candles, 720, "corwin_schultz").iloc[-1]),
    }


def test_zero_volume_placeholder_hours_leave_the_spread_estimate_within_noise() -> None:
    """Old code: 0.0045 with every hour traded, about 0.0028 with 40 % placeholder hours."""
    full, thin = _estimates(0.0), _estimates(0.4)
    assert full["repaired"] == 0
    assert thin["repaired"] > 300
    for key in ("rolling_720", "feature_168h", "universe"):
        assert full[key] == pytest.approx(0.0045, rel=0.1), key
        assert thin[key] == pytest.approx(full[key], rel=0.1), key
    assert thin["rolling_720_cs"] == pytest.approx(full["rolling_720_cs"], rel=0.15)


def test_both_moments_touching_a_repaired_bar_are_left_out() -> None:
    high = np.array([101.0, 100.5, 100.0, 101.5, 101.0])
    low = np.array([100.0, 99.5, 100.0, 100.0, 99.8])
    close = np.array([101.0, 100.0, 100.0, 100.2, 100.5])
    repaired = np.array([False, False, True, False, False])
    plain = spread_moments(high, low, close)
    assert plain[2] == 0.0  # the placeholder's moments are exactly 0: no observation
    masked = spread_moments(high, low, close, no_trade=repaired)
    assert np.isnan(masked[[0, 2, 3]]).all()
    assert masked[[1, 4]].tolist() == plain[[1, 4]].tolist()
    frame = pd.DataFrame(
        {
            "open_time_utc": pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC"),
            "high": high,
            "low": low,
            "close": close,
            "volume": [5.0, 5.0, 0.0, 5.0, 5.0],
            "repaired": repaired,
        }
    )
    got = rolling_spread(frame, 5, min_periods=2).iloc[-1]
    assert got == pytest.approx(np.sqrt(max((plain[1] + plain[4]) / 2, 0.0)))


# --- 3. Corwin-Schultz: only bar t is adjusted for the gap from bar t - 1's close ---------------


def _cs(h1: float, l1: float, h2: float, l2: float) -> float:
    beta = np.log(h1 / l1) ** 2 + np.log(h2 / l2) ** 2
    gamma = np.log(max(h1, h2) / min(l1, l2)) ** 2
    alpha = (np.sqrt(2 * beta) - np.sqrt(beta)) / _CS_K - np.sqrt(gamma / _CS_K)
    return float(2 * (np.exp(alpha) - 1) / (1 + np.exp(alpha)))


def test_corwin_schultz_pairs_the_adjusted_bar_with_the_raw_previous_bar() -> None:
    high, low, close = [100.5, 112.0, 111.5], [99.5, 110.0, 110.5], [100.0, 111.0, 111.0]
    raw = spread_moments(high, low, close, "corwin_schultz")
    # bar 1 opens 10 above bar 0's close: it becomes 102 / 100 against bar 0 as it traded
    assert raw[1] == pytest.approx(_cs(100.5, 99.5, 102.0, 100.0), abs=1e-12)
    # bar 2 trades inside bar 1's range and around its close: no shift, and bar 1 is raw
    expected = _cs(112.0, 110.0, 111.5, 110.5)
    assert expected == pytest.approx(0.0051, abs=1e-4)
    assert raw[2] == pytest.approx(expected, abs=1e-12)


# --- 4. a file name with several pair-like words -----------------------------------------------


def _generic_csv(n: int = 5) -> bytes:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{T0_MS - (n + 2 - i) * HOUR_MS},1,2,0.5,1.5,10" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def test_a_pair_like_word_before_the_pair_does_not_name_the_file() -> None:
    name = "crypto_industry_BTCUSDT_1h.csv"  # INDUSTRY ends in TRY
    assert pair_from_name(name) == "BTCUSDT"
    data = load_candle_sources([(name, _generic_csv())])
    assert data.report.ok, data.report.errors
    assert data.pairs == ["BTCUSDT"]
    # names with one pair-like word map as before, whatever its quote asset
    unchanged = {
        "data/crypto/BTCUSDT_1h.csv": "BTCUSDT",
        "Binance_ethusdt_funding_8h.csv": "ETHUSDT",
        "binance_futures_um/SOLUSDT_funding_8h.csv": "SOLUSDT",
        "Binance_BTCUSDT_1h (1).csv": "BTCUSDT",
        "1000SHIBUSDT_1h.csv": "1000SHIBUSDT",
        "ETHBTC_1h.csv": "ETHBTC",
        "XBTUSD_1h.csv": "XBTUSD",
        "BTCUSDT-1h-2025-01.csv": "BTCUSDT",
        "BTCTRY_1h.csv": "BTCTRY",
        "binance_top_entry.csv": "ENTRY",
        "prices.csv": None,
    }
    assert {n: pair_from_name(n) for n in unchanged} == unchanged
    for member, _ in read_archive_csvs(BUNDLED_CRYPTO):
        stem = member.rsplit("/", 1)[-1]
        if stem.endswith("_1h.csv"):
            assert pair_from_name(member) == stem.removesuffix("_1h.csv"), member


def test_a_file_name_with_two_pairs_and_no_symbol_column_is_refused_naming_both() -> None:
    name = "BTCUSDT_vs_ETHUSDT_1h.csv"
    assert pair_from_name(name) is None
    data = load_candle_sources([(name, _generic_csv())])
    assert data.pairs == []
    [error] = data.report.errors
    assert error.file == name
    assert "BTCUSDT, ETHUSDT" in error.reason
    assert "cannot tell the pair" in error.reason
