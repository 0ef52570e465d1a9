"""Crypto boundaries a mutation audit found unpinned: each test fails when its comparison,
term or shift is changed the way the audit changed it (2026-11-25; the code was right, the
tests silent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketcast.costs import (
    CostModel,
    funding_gaps,
    period_funding_sums,
    round_trip_cost_rate,
    spread_cost,
)
from marketcast.data.candles import (
    SpikeRule,
    drop_spikes,
    drop_zero_volume_bars,
    spike_scale,
    vendor_mismatch,
)
from marketcast.data.validation import IntegrityReport
from marketcast.ensemble.consensus import consensus, decision_events
from marketcast.ensemble.regime import RegimeGate, RegimeRules, classify_regimes
from marketcast.evaluation.crypto_backtest import finance_metrics, run_backtest
from marketcast.features.spread import corwin_schultz_spread
from marketcast.labels.crypto import direction_label

HOUR_NS = 3600 * 10**9


def _bars(
    close: list[float],
    open_: list[float] | None = None,
    volume: list[float] | None = None,
    repaired: list[bool] | None = None,
) -> pd.DataFrame:
    """Hourly bars of one pair from 2024-01-01 00:00 UTC."""
    c = np.asarray(close, dtype=float)
    o = c if open_ is None else np.asarray(open_, dtype=float)
    return pd.DataFrame(
        {
            "pair": "BTCUSDT",
            "open_time_utc": pd.date_range("2024-01-01", periods=len(c), freq="h", tz="UTC"),
            "open": o,
            "high": np.maximum(o, c) * 1.001,
            "low": np.minimum(o, c) * 0.999,
            "close": c,
            "volume": 1.0 if volume is None else volume,
            "quote_volume": 100.0,
            "quote_volume_estimated": False,
            "trades": 10.0,
            "vendor": "binance",
            "repaired": False if repaired is None else repaired,
        }
    )


# --------------------------------------------------------------------------- costs


def test_a_pair_not_traded_needs_no_spread_estimate() -> None:
    assert spread_cost([0.0, 1.0], [np.nan, 0.002], CostModel()).tolist() == [0.0, 0.001]
    net = run_backtest(
        [[1.0, 0.0]],
        [[0.01, 0.02]],
        [[0.002, np.nan]],
        None,
        None,
        None,
        CostModel(slippage_model="none"),
        8760.0,
    ).net
    assert net.round(6).tolist() == [0.004]


def test_a_bar_without_volatility_is_priced() -> None:
    assert round_trip_cost_rate(CostModel(), [0.001], [0.0], [1e6]).tolist() == [0.003]


def test_a_delisting_one_usual_interval_after_the_last_rate_is_not_covered() -> None:
    times = np.array([16, 24, 32])
    sums = period_funding_sums(times, [1e-4] * 3, [33, 33], [39, 40], delisting=[True, True])
    assert sums[0] == 0.0
    assert np.isnan(sums[1])


def test_a_funding_step_of_exactly_one_and_a_half_intervals_is_no_gap() -> None:
    times = np.array([0, 8, 16, 28, 36, 44])
    assert [g.tolist() for g in funding_gaps(times)] == [[], []]
    assert period_funding_sums(times, [1e-4] * 6, [16], [28]).tolist() == pytest.approx([1e-4])


# --------------------------------------------------------------------------- backtest


def test_a_period_returning_nothing_is_no_hit() -> None:
    metrics = finance_metrics([0.0, 0.01, -0.01], periods_per_year=8760.0)
    assert metrics["hit_rate"] == pytest.approx(1 / 3)


# --------------------------------------------------------------------------- ensemble


def test_a_gate_needs_a_mean_strictly_above_its_bar() -> None:
    gate = RegimeGate(min_periods=2, lookback_periods=10)
    gate.record("m", "trend", "2024-01-01T01:00Z", 0.01)
    gate.record("m", "trend", "2024-01-01T02:00Z", -0.01)
    assert gate.enabled("m", "trend", "2024-01-02T00:00Z") is False  # mean 0 is not above 0


def test_a_trend_equal_to_its_quantile_bar_is_no_trend() -> None:
    frame = pd.DataFrame(
        {
            "pair": "BTCUSDT",
            "open_time_utc": pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC"),
            "trend_strength_168h": [0.2] * 4,
        }
    )
    rules = RegimeRules(
        vol_column=None,
        return_column=None,
        quote_volume_column=None,
        spread_column=None,
        lookback_periods=2,
        min_periods=2,
    )
    assert classify_regimes(frame, rules=rules).tolist() == ["range"] * 4


def test_a_score_equal_to_its_threshold_takes_no_position() -> None:
    result = consensus({"a": [0.75]}, {"a": 1.0}, base_threshold=0.5)
    assert (result.score.tolist(), result.threshold.tolist()) == ([0.5], [0.5])
    assert result.position.tolist() == [0.0]


def test_an_unchanged_position_is_no_decision_event() -> None:
    result = consensus({"a": [0.9, 0.9]}, {"a": 1.0}, base_threshold=0.1)
    times = ["2024-01-01T00:00Z", "2024-01-01T01:00Z"]
    events = decision_events(
        result, times, pair="BTCUSDT", horizon="1h", regimes="trend", min_change=0.0
    )
    assert result.position.tolist() == [1.0, 1.0]
    assert len(events) == 1


# --------------------------------------------------------------------------- spread, labels


def test_corwin_schultz_adjusts_for_a_gap_down_too() -> None:
    """Bar 1 trades wholly below bar 0's close: its range is shifted up by the gap."""
    spread = corwin_schultz_spread([101.0, 99.1], [99.0, 98.95], close=[99.2, 99.0])
    assert np.isnan(spread[0])
    assert spread[1] == pytest.approx(0.000138, abs=1e-6)


def test_a_return_equal_to_the_dead_zone_is_no_direction() -> None:
    assert direction_label([0.5, -0.5], 0.5).tolist() == [0, 0]


# --------------------------------------------------------------------------- candles


def test_a_repaired_gap_fill_with_no_volume_is_kept() -> None:
    report = IntegrityReport()
    kept = drop_zero_volume_bars(_bars([100.0, 100.0], volume=[1.0, 0.0], repaired=[0, 1]), report)
    assert len(kept) == 2
    assert "zero_volume" not in {k for k, v in report.dropped.items() if v}


def test_closes_exactly_the_tolerance_apart_are_no_mismatch() -> None:
    times = pd.to_datetime(["2021-05-01 00:00", "2021-05-01 01:00"], utc=True)
    a = pd.DataFrame(
        {
            "pair": "BTCUSDT",
            "open_time_utc": times,
            "close": [100.0, 128.0],
            "vendor": "binance",
            "repaired": False,
        }
    )
    b = a.assign(close=[100.0, 64.0], vendor="cryptodatadownload")
    check = vendor_mismatch(a, b, tolerance=1.0).vendor_checks[0]
    assert (check.mismatches, check.max_abs_rel_diff) == (0, 1.0)


def test_the_spike_scale_skips_returns_across_a_gap_and_excludes_its_own_bar() -> None:
    log_close = np.log([100.0, 101.0, 110.0, 111.0])
    rule = SpikeRule(min_window_bars=1, window_bars=3)
    gap = (np.array([0, 1, 3, 4]) * HOUR_NS).astype(np.int64)
    r, scale = spike_scale(log_close, gap, rule)
    assert np.isnan(r[2])  # two hours apart: no hourly return
    np.testing.assert_allclose(scale, [np.nan, np.nan, 0.0148, 0.0148], atol=1e-4)
    hourly = (np.arange(4) * HOUR_NS).astype(np.int64)
    _, scale = spike_scale(log_close, hourly, rule)
    np.testing.assert_allclose(scale, [np.nan, np.nan, 0.0148, 0.0707], atol=1e-4)


@pytest.mark.parametrize(
    "rule",
    [
        SpikeRule(min_window_bars=2, revert_fraction=0.0),  # an exact full revert
        SpikeRule(min_window_bars=2, confirm_fraction=1.0),  # next open exactly at the close
    ],
    ids=["revert-at-its-bound", "confirm-at-its-bound"],
)
def test_a_spike_at_the_bounds_of_its_rule_is_dropped(rule: SpikeRule) -> None:
    close = [100.0, 100.1, 100.0, 100.1, 100.0, 150.0, 100.0, 100.1]
    open_ = [100.0, 100.0, 100.1, 100.0, 100.1, 100.0, 100.0, 100.0]
    kept = drop_spikes(_bars(close, open_=open_), IntegrityReport(), rule)
    assert len(kept) == 7
    assert 150.0 not in kept["close"].tolist()
