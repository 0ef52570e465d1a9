"""Crypto spread estimators, universe, features and labels: values, timing and no lookahead."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.validation import DataError
from marketcast.features.crypto import CRYPTO_FEATURE_COLUMNS, build_crypto_features
from marketcast.features.spread import (
    abdi_ranaldo_spread,
    corwin_schultz_spread,
    rolling_spread,
)
from marketcast.features.universe import UNIVERSE_REASONS, build_universe, in_universe
from marketcast.labels.crypto import (
    DELISTING_BARS,
    HORIZON_BARS,
    dead_zone_for,
    direction_label,
    forward_returns,
)

CRYPTO_DIR = Path("/work/shared/data/crypto")
HOUR = pd.Timedelta(hours=1)


# --------------------------------------------------------------------------- helpers


def load_real(pairs: list[str], start: str, end: str) -> pd.DataFrame:
    """Real Binance hourly candles mapped to the loader contract (quote volume = volume x close)."""
    frames = []
    for pair in pairs:
        path = CRYPTO_DIR / f"{pair}_1h.csv"
        if not path.exists():
            pytest.skip(f"real data not available: {path}")
        raw = pd.read_csv(path)
        open_time = pd.to_datetime(raw["date"], utc=True).dt.as_unit("ns")
        keep = (open_time >= pd.Timestamp(start, tz="UTC")) & (
            open_time < pd.Timestamp(end, tz="UTC")
        )
        raw, open_time = raw.loc[keep], open_time.loc[keep]
        frames.append(
            pd.DataFrame(
                {
                    "pair": raw["ticker"].astype(str),
                    "open_time_utc": open_time,
                    "open": raw["open"].astype(float),
                    "high": raw["high"].astype(float),
                    "low": raw["low"].astype(float),
                    "close": raw["close"].astype(float),
                    "volume": raw["volume"].astype(float),
                    "quote_volume": (raw["volume"] * raw["close"]).astype(float),
                    "quote_volume_estimated": True,
                    "trades": np.nan,
                    "vendor": "binance",
                    "repaired": False,
                }
            )
        )
    candles = pd.concat(frames, ignore_index=True)
    return candles.sort_values(["pair", "open_time_utc"], ignore_index=True)


def synthetic_candles(
    pairs: list[str],
    n_bars: int,
    *,
    start: str = "2022-01-01",
    vol_bar: float = 0.01,
    quote_volume: float = 1e6,
    seed: int = 0,
) -> pd.DataFrame:
    """Random-walk hourly candles for several pairs, in the loader contract."""
    rng = np.random.default_rng(seed)
    open_time = pd.date_range(start, periods=n_bars, freq="h", tz="UTC").as_unit("ns")
    frames = []
    for pair in pairs:
        log_close = np.cumsum(rng.normal(0.0, vol_bar, n_bars)) + np.log(100.0)
        close = np.exp(log_close)
        open_ = np.concatenate([[100.0], close[:-1]])
        wiggle = np.abs(rng.normal(0.0, vol_bar / 2, (2, n_bars)))
        high = np.maximum(open_, close) * np.exp(wiggle[0])
        low = np.minimum(open_, close) * np.exp(-wiggle[1])
        qv = quote_volume * np.exp(rng.normal(0.0, 0.3, n_bars))
        frames.append(
            pd.DataFrame(
                {
                    "pair": pair,
                    "open_time_utc": open_time,
                    "open": open_,
                    "high": high,
                    "low": low,
                    "close": close,
                    "volume": qv / close,
                    "quote_volume": qv,
                    "quote_volume_estimated": False,
                    "trades": np.nan,
                    "vendor": "synthetic",
                    "repaired": False,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def bounce_bars(
    n_bars: int, *, vol_bar: float, spread: float, ticks: int = 100, seed: int = 0
) -> pd.DataFrame:
    """Bars from a mid-price random walk whose trades print at mid +- half the spread."""
    rng = np.random.default_rng(seed)
    mid = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol_bar / np.sqrt(ticks), n_bars * ticks)))
    side = rng.choice([-1.0, 1.0], size=mid.shape)
    trades = (mid * (1.0 + side * spread / 2.0)).reshape(n_bars, ticks)
    return pd.DataFrame(
        {"high": trades.max(axis=1), "low": trades.min(axis=1), "close": trades[:, -1]}
    )


# --------------------------------------------------------------------------- spread


@pytest.mark.parametrize("method", ["abdi_ranaldo", "corwin_schultz"])
@pytest.mark.parametrize(("vol_bar", "spread"), [(0.003, 0.01), (0.002, 0.002)])
def test_rolling_spread_recovers_simulated_bid_ask_bounce(
    method: str, vol_bar: float, spread: float
) -> None:
    bars = bounce_bars(3000, vol_bar=vol_bar, spread=spread)
    estimate = rolling_spread(bars, window_bars=3000, method=method).iloc[-1]  # type: ignore[arg-type]
    assert estimate == pytest.approx(spread, rel=0.25)


def test_moment_aggregate_is_less_biased_than_mean_of_truncated_estimates() -> None:
    # A spread far below the bar's volatility, as for liquid pairs on hourly bars.
    bars = bounce_bars(4000, vol_bar=0.01, spread=0.001, seed=3)
    moment = rolling_spread(bars, window_bars=4000, aggregate="moment").iloc[-1]
    mean = rolling_spread(bars, window_bars=4000, aggregate="mean").iloc[-1]
    assert mean > 3 * 0.001  # truncating every two-bar estimate reads volatility as spread
    assert abs(moment - 0.001) < abs(mean - 0.001)


def test_spread_estimates_are_non_negative_and_nan_only_at_the_first_bar() -> None:
    candles = load_real(["SOLUSDT"], "2022-05-01", "2022-06-01")
    h, lo, c = (candles[k].to_numpy() for k in ("high", "low", "close"))
    for estimate in (abdi_ranaldo_spread(h, lo, c), corwin_schultz_spread(h, lo, close=c)):
        assert np.isnan(estimate[0])
        assert np.all(estimate[1:] >= 0.0)
        assert np.isfinite(estimate[1:]).all()
    rolled = rolling_spread(candles, window_bars=168, method="corwin_schultz")
    assert (rolled.dropna() >= 0.0).all()
    assert rolled.notna().sum() > len(candles) - 168


def test_per_bar_estimators_accept_a_bars_by_markets_matrix() -> None:
    bars = [bounce_bars(50, vol_bar=0.004, spread=0.004, seed=s) for s in (1, 2)]
    h = np.column_stack([b["high"] for b in bars])
    lo = np.column_stack([b["low"] for b in bars])
    c = np.column_stack([b["close"] for b in bars])
    both = abdi_ranaldo_spread(h, lo, c)
    np.testing.assert_array_equal(both[:, 1], abdi_ranaldo_spread(h[:, 1], lo[:, 1], c[:, 1]))
    both_cs = corwin_schultz_spread(h, lo, close=c)
    np.testing.assert_array_equal(
        both_cs[:, 0], corwin_schultz_spread(h[:, 0], lo[:, 0], close=c[:, 0])
    )


def test_spread_rejects_bad_prices() -> None:
    with pytest.raises(ValueError, match="high is below low"):
        corwin_schultz_spread([100.0, 100.0], [99.0, 101.0])
    with pytest.raises(ValueError, match="must be positive"):
        abdi_ranaldo_spread([100.0, 0.0], [99.0, 99.0], [99.5, 99.5])


def test_rolling_spread_does_not_pair_bars_across_a_gap() -> None:
    bars = bounce_bars(40, vol_bar=0.004, spread=0.004, seed=5)
    bars["open_time_utc"] = pd.date_range("2023-01-01", periods=40, freq="h", tz="UTC")
    with_gap = bars.drop(index=20).reset_index(drop=True)
    with_gap.loc[20:, "open_time_utc"] = bars["open_time_utc"].iloc[21:].to_numpy()
    per_bar = rolling_spread(with_gap, window_bars=1, min_periods=1, aggregate="mean")
    # Row 20 follows a missing hour: its two-bar estimate is left out.
    assert np.isnan(per_bar.iloc[20])
    assert np.isfinite(per_bar.iloc[21])
    assert per_bar.iloc[21] == pytest.approx(
        abdi_ranaldo_spread(with_gap["high"], with_gap["low"], with_gap["close"])[21]
    )


# --------------------------------------------------------------------------- universe


def test_universe_rules_give_the_expected_reasons() -> None:
    n_days = 70
    liquid = synthetic_candles(["AAAUSDT"], n_days * 24, quote_volume=1e6, seed=1)
    thin = synthetic_candles(["THINUSDT"], n_days * 24, quote_volume=1e3, seed=2)
    late = synthetic_candles(["NEWUSDT"], 20 * 24, start="2022-02-20", seed=3)
    stopped = synthetic_candles(["GONEUSDT"], 40 * 24, quote_volume=1e6, seed=4)
    wide_bars = bounce_bars(n_days * 24, vol_bar=0.002, spread=0.02, seed=6)
    wide = synthetic_candles(["WIDEUSDT"], n_days * 24, seed=5)
    wide[["high", "low", "close"]] = wide_bars.to_numpy()
    wide["open"] = np.concatenate([[wide_bars["close"].iloc[0]], wide_bars["close"].iloc[:-1]])
    candles = pd.concat([liquid, thin, late, stopped, wide], ignore_index=True)

    universe = build_universe(candles, min_median_quote_volume_usd=1e6)

    day = universe[universe["date"] == pd.Timestamp("2022-03-05", tz="UTC")].set_index("pair")
    assert day.loc["AAAUSDT", "reason"] == "ok"
    assert bool(day.loc["AAAUSDT", "included"])
    assert day.loc["THINUSDT", "reason"] == "low_liquidity"
    assert day.loc["NEWUSDT", "reason"] == "short_history"
    assert day.loc["GONEUSDT", "reason"] == "stale"
    assert day.loc["WIDEUSDT", "reason"] == "wide_spread"
    assert day.loc["WIDEUSDT", "spread_estimate"] == pytest.approx(0.02, rel=0.25)
    assert set(universe["reason"]) <= set(UNIVERSE_REASONS)
    assert (universe["included"] == (universe["reason"] == "ok")).all()
    # A daily median of ~24 x 1e6 USD.
    assert day.loc["AAAUSDT", "median_quote_volume_usd"] == pytest.approx(24e6 * 1.05, rel=0.1)
    # History: ok on day 30 after the first bar (midnight), not on day 29.
    aaa = universe[universe["pair"] == "AAAUSDT"].set_index("date")["reason"]
    assert aaa[pd.Timestamp("2022-01-30", tz="UTC")] == "short_history"
    assert aaa[pd.Timestamp("2022-01-31", tz="UTC")] == "ok"
    # The stopped pair's last bar closes 2022-02-10 00:00: stale once more than 24 h passed.
    gone = universe[universe["pair"] == "GONEUSDT"].set_index("date")
    assert gone.loc[pd.Timestamp("2022-02-10", tz="UTC"), "hours_since_last_trade"] == 0.0
    assert gone.loc[pd.Timestamp("2022-02-11", tz="UTC"), "hours_since_last_trade"] == 24.0
    assert gone.loc[pd.Timestamp("2022-02-11", tz="UTC"), "reason"] == "ok"
    assert gone.loc[pd.Timestamp("2022-02-12", tz="UTC"), "reason"] == "stale"


def test_universe_uses_only_data_before_the_day() -> None:
    candles = load_real(["BTCUSDT", "ETHUSDT", "XLMUSDT"], "2022-01-01", "2022-04-01")
    base = build_universe(candles)
    today = pd.Timestamp("2022-03-10", tz="UTC")
    perturbed = candles.copy()
    on_day = perturbed["open_time_utc"].between(today, today + pd.Timedelta(hours=23))
    perturbed.loc[on_day, ["volume", "quote_volume"]] = 0.0
    perturbed.loc[on_day, "high"] *= 1.5
    after = build_universe(perturbed)
    upto = base["date"] <= today
    pd.testing.assert_frame_equal(base[upto], after[upto])
    # The next day does see the change (so the test is sensitive): the wild highs widen the
    # spread estimate past the limit.
    next_day = after["date"] == today + pd.Timedelta(days=1)
    assert base.loc[next_day, "included"].all()
    assert (after.loc[next_day, "reason"] == "wide_spread").all()
    assert (after.loc[next_day, "spread_estimate"] > base.loc[next_day, "spread_estimate"]).all()


def test_the_universe_has_a_row_for_the_day_a_2300_bar_decides_on() -> None:
    """A 23:00 bar closes at midnight: its decisions fall on the next day, which had no row when
    the data ended there, so the server (whose store always ends at its latest bar) took the
    day before's decision where training had that day's."""
    candles = load_real(["BTCUSDT", "ETHUSDT"], "2022-01-01", "2022-03-01")
    ends_2300 = candles[candles["open_time_utc"] < pd.Timestamp("2022-02-10", tz="UTC")]
    assert ends_2300["open_time_utc"].max().hour == 23
    short = build_universe(ends_2300)
    full = build_universe(candles)
    day = pd.Timestamp("2022-02-10", tz="UTC")
    assert short["date"].max() == day
    pd.testing.assert_frame_equal(
        short[short["date"] == day].reset_index(drop=True),
        full[full["date"] == day].reset_index(drop=True),
    )
    ends_2200 = ends_2300[ends_2300["open_time_utc"].dt.hour != 23]
    assert build_universe(ends_2200)["date"].max() == day - pd.Timedelta(days=1)


def test_universe_on_real_pairs_keeps_liquid_pairs() -> None:
    candles = load_real(["BTCUSDT", "ETHUSDT", "TRXUSDT"], "2022-06-01", "2022-09-01")
    universe = build_universe(candles)
    late = universe[universe["date"] >= pd.Timestamp("2022-07-15", tz="UTC")]
    assert late["included"].mean() > 0.95
    assert (late["median_quote_volume_usd"] > 1e7).all()


def test_in_universe_maps_rows_to_their_decision_day() -> None:
    universe = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "pair": ["BTCUSDT", "BTCUSDT"],
            "included": [False, True],
        }
    )
    decision = pd.Series(
        pd.to_datetime(["2024-01-01 23:00", "2024-01-02 00:00", "2024-01-03 05:00"], utc=True)
    )
    got = in_universe(pd.Series(["BTCUSDT"] * 3), decision, universe)
    assert got.tolist() == [False, True, False]


# --------------------------------------------------------------------------- features


@pytest.fixture(scope="module")
def real_three() -> pd.DataFrame:
    return load_real(["BTCUSDT", "ETHUSDT", "SOLUSDT"], "2022-01-01", "2022-04-01")


def test_feature_frame_is_aligned_with_candles(real_three: pd.DataFrame) -> None:
    features = build_crypto_features(real_three)
    assert list(features.columns) == [
        "pair",
        "open_time_utc",
        "decision_time_utc",
        *CRYPTO_FEATURE_COLUMNS,
    ]
    assert features.index.equals(real_three.index)
    assert (features["pair"] == real_three["pair"]).all()
    assert (features["decision_time_utc"] - features["open_time_utc"] == HOUR).all()
    late = features[features["open_time_utc"] >= pd.Timestamp("2022-02-01", tz="UTC")]
    core = [c for c in CRYPTO_FEATURE_COLUMNS if c != "funding_rate_last"]
    assert late[core].notna().mean().min() > 0.99


def test_features_do_not_change_when_later_bars_change(real_three: pd.DataFrame) -> None:
    cut = pd.Timestamp("2022-03-01 12:00", tz="UTC")
    base = build_crypto_features(real_three)
    rng = np.random.default_rng(7)
    perturbed = real_three.copy()
    later = perturbed["open_time_utc"] > cut
    scale = np.exp(rng.normal(0.0, 0.05, later.sum()))
    for column in ("open", "high", "low", "close"):
        perturbed.loc[later, column] *= scale
    perturbed.loc[later, ["volume", "quote_volume"]] *= 10.0
    # ... and some later bars vanish altogether.
    perturbed = perturbed.drop(index=perturbed.index[later][::7])
    after = build_crypto_features(perturbed)
    upto = base["open_time_utc"] <= cut
    pd.testing.assert_frame_equal(base[upto], after.loc[base.index[upto]])
    # Sensitivity: the first later bar's features do change.
    first_later = base.index[base["open_time_utc"] == cut + HOUR]
    kept = first_later.intersection(after.index)
    assert not np.allclose(
        base.loc[kept, "ret_log_1h"].to_numpy(), after.loc[kept, "ret_log_1h"].to_numpy()
    )


def test_returns_and_volatility_use_the_time_grid(real_three: pd.DataFrame) -> None:
    candles = real_three[real_three["pair"] == "ETHUSDT"].reset_index(drop=True)
    gap = candles["open_time_utc"].between(
        pd.Timestamp("2022-02-10 00:00", tz="UTC"), pd.Timestamp("2022-02-10 02:00", tz="UTC")
    )
    candles = candles.loc[~gap].reset_index(drop=True)
    features = build_crypto_features(candles, btc_pair="NONE")
    close = candles.set_index("open_time_utc")["close"]
    for k in (1, 24):
        expected = np.log(close / close.reindex(close.index - k * HOUR).to_numpy())
        np.testing.assert_allclose(
            features[f"ret_log_{k}h"], expected.to_numpy(), rtol=0, atol=1e-12
        )
    # The bar right after the 3-hour gap has no 1-bar return (its previous hour is missing).
    after_gap = features["open_time_utc"] == pd.Timestamp("2022-02-10 03:00", tz="UTC")
    assert features.loc[after_gap, "ret_log_1h"].isna().all()
    # Realised vol over 24 h = root mean square of the 1 h log returns present in the window.
    row = 1000
    t = candles["open_time_utc"].iloc[row]
    hourly = np.log(close / close.reindex(close.index - HOUR).to_numpy())
    window = hourly[(hourly.index > t - 24 * HOUR) & (hourly.index <= t)].dropna()
    assert features["realised_vol_24h"].iloc[row] == pytest.approx(
        np.sqrt(np.mean(window**2)), rel=1e-9
    )
    assert features["beta_btc_168h"].isna().all()


def test_cross_sectional_ranks_and_btc_beta(real_three: pd.DataFrame) -> None:
    candles = real_three.copy()
    # A synthetic pair whose hourly log returns are exactly twice BTC's.
    btc = candles[candles["pair"] == "BTCUSDT"].copy()
    log_close = np.log(btc["close"].to_numpy())
    lever = btc.assign(pair="LEVUSDT")
    lever["close"] = np.exp(2.0 * (log_close - log_close[0]) + np.log(50.0))
    lever["open"] = lever["close"]
    lever["high"] = lever["close"] * 1.001
    lever["low"] = lever["close"] * 0.999
    candles = pd.concat([candles, lever], ignore_index=True)
    features = build_crypto_features(candles)
    ranks = features[["xs_rank_ret_24h", "xs_rank_ret_168h", "xs_rank_quote_volume_24h"]]
    assert ranks.min().min() == 0.0
    assert ranks.max().max() == 1.0
    hour = features[features["open_time_utc"] == pd.Timestamp("2022-03-15 10:00", tz="UTC")]
    order_by_return = hour.sort_values("ret_log_24h")["pair"].tolist()
    order_by_rank = hour.sort_values("xs_rank_ret_24h")["pair"].tolist()
    assert order_by_return == order_by_rank
    assert sorted(hour["xs_rank_ret_24h"].round(6)) == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    late = features["open_time_utc"] >= pd.Timestamp("2022-02-01", tz="UTC")
    btc_rows = late & (features["pair"] == "BTCUSDT")
    lev_rows = late & (features["pair"] == "LEVUSDT")
    np.testing.assert_allclose(features.loc[btc_rows, "beta_btc_168h"], 1.0, atol=1e-9)
    np.testing.assert_allclose(features.loc[lev_rows, "beta_btc_168h"], 2.0, atol=1e-6)
    np.testing.assert_allclose(features.loc[lev_rows, "corr_btc_168h"], 1.0, atol=1e-6)
    eth = features.loc[late & (features["pair"] == "ETHUSDT"), "corr_btc_168h"]
    assert 0.5 < eth.median() < 1.0


def test_funding_is_the_last_rate_known_at_decision_time() -> None:
    candles = synthetic_candles(["BTCUSDT"], 48)
    funding = pd.DataFrame(
        {
            "pair": "BTCUSDT",
            "funding_time_utc": pd.to_datetime(
                ["2022-01-01 00:00", "2022-01-01 08:00", "2022-01-01 08:00:00.007"],
                utc=True,
                format="ISO8601",
            ),
            "funding_rate": [1e-4, 2e-4, 3e-4],
        }
    )
    features = build_crypto_features(candles, funding).set_index("open_time_utc")
    rate = features["funding_rate_last"]
    # Bar 06:00 decides at 07:00: the 00:00 rate. Bar 07:00 decides at 08:00: the 08:00 rate
    # (stamped exactly then), not the one 7 ms later.
    assert rate[pd.Timestamp("2022-01-01 06:00", tz="UTC")] == 1e-4
    assert rate[pd.Timestamp("2022-01-01 07:00", tz="UTC")] == 2e-4
    assert rate[pd.Timestamp("2022-01-01 08:00", tz="UTC")] == 3e-4
    # Older than 24 h at decision time: unknown.
    assert rate[pd.Timestamp("2022-01-02 07:00", tz="UTC")] == 3e-4
    assert np.isnan(rate[pd.Timestamp("2022-01-02 08:00", tz="UTC")])
    assert build_crypto_features(candles)["funding_rate_last"].isna().all()


def test_features_do_not_depend_on_row_order(real_three: pd.DataFrame) -> None:
    sample = real_three[real_three["open_time_utc"] < pd.Timestamp("2022-02-15", tz="UTC")]
    shuffled = sample.sample(frac=1.0, random_state=3)
    base = build_crypto_features(sample)
    other = build_crypto_features(shuffled)
    pd.testing.assert_frame_equal(base, other.loc[base.index])


def test_features_reject_bad_candles(real_three: pd.DataFrame) -> None:
    duplicated = pd.concat([real_three, real_three.iloc[[5]]], ignore_index=True)
    with pytest.raises(DataError, match="duplicate bar for pair BTCUSDT"):
        build_crypto_features(duplicated)
    naive = real_three.assign(open_time_utc=real_three["open_time_utc"].dt.tz_localize(None))
    with pytest.raises(DataError, match="open_time_utc"):
        build_crypto_features(naive)
    off_hour = real_three.copy()
    off_hour.loc[3, "open_time_utc"] += pd.Timedelta(minutes=30)
    with pytest.raises(DataError, match="row position 3"):
        build_crypto_features(off_hour)


def test_features_and_universe_are_fast_on_20_pairs() -> None:
    candles = synthetic_candles([f"P{i:02d}USDT" for i in range(19)] + ["BTCUSDT"], 19_500)
    started = time.perf_counter()
    features = build_crypto_features(candles)
    feature_seconds = time.perf_counter() - started
    started = time.perf_counter()
    universe = build_universe(candles)
    universe_seconds = time.perf_counter() - started
    assert len(features) == 20 * 19_500
    assert len(universe) == 20 * 813
    assert feature_seconds < 10.0
    assert universe_seconds < 5.0


# --------------------------------------------------------------------------- labels


def test_forward_returns_follow_the_timing_convention() -> None:
    candles = synthetic_candles(["AAAUSDT", "BBBUSDT"], 60)
    opens = candles["open"].to_numpy()
    for latency in (0, 2):
        labels = forward_returns(candles, HORIZON_BARS["4h"], latency_bars=latency)
        i = 10
        entry, exit_ = i + 1 + latency, i + 1 + latency + 4
        assert labels["forward_return"].iloc[i] == pytest.approx(opens[exit_] / opens[entry] - 1)
        t = candles["open_time_utc"].iloc[i]
        assert labels["entry_time_utc"].iloc[i] == t + (1 + latency) * HOUR
        assert labels["label_end_utc"].iloc[i] == t + (1 + latency + 4) * HOUR
        # The last bars of the first pair have no exit bar: NaN, not the next pair's prices.
        last_a = np.flatnonzero(candles["pair"] == "AAAUSDT")[-(5 + latency) :]
        assert labels["forward_return"].iloc[last_a].isna().all()
        assert labels["forward_return"].notna().sum() == 2 * (60 - 5 - latency)


def test_an_exit_open_that_is_no_price_gives_no_label() -> None:
    """An exit open of 0 gave a label of -100% while the held period moved on past it."""
    candles = synthetic_candles(["AAAUSDT"], 30)
    candles.loc[15, "open"] = 0.0
    labels = forward_returns(candles, 4)
    assert np.isnan(labels["forward_return"].iloc[10])  # exits at bar 15's open
    assert np.isfinite(labels["period_return"].iloc[10])  # held to bar 16's open


def test_forward_returns_never_fill_at_a_repaired_bar() -> None:
    """A filled gap's open is the previous close carried forward: no one could trade there, yet
    labels entered and exited at it (26 4h labels on BTC and ETH, |r| up to 4.7%)."""
    candles = synthetic_candles(["AAAUSDT"], 60)
    candles["repaired"] = False
    candles.loc[30, "repaired"] = True
    labels = forward_returns(candles, 4)["forward_return"]
    # entry at bar 30 (decided on bar 29) or exit at it (decided on bar 25): no label
    assert labels.iloc[[25, 29]].isna().all()
    assert labels.iloc[[24, 26, 28, 30, 31]].notna().all()  # bar 30 inside a holding is fine
    unflagged = forward_returns(candles.drop(columns="repaired"), 4)["forward_return"]
    assert unflagged.iloc[[25, 29]].notna().all()


def test_a_period_whose_exit_does_not_trade_is_held_to_the_first_traded_open() -> None:
    """The crypto time-honesty audit: a period whose exit bar was repaired or missing had a NaN
    return, and the backtest booked it flat, which used the knowledge that the exit would not
    trade (it comes only at the exit); in the bundle those 4h periods fell 1.22% on average.
    The label stays NaN (it must resolve at its end); the held period runs to the next open."""
    candles = synthetic_candles(["AAAUSDT", "BBBUSDT"], 60)
    candles["repaired"] = False
    candles.loc[30, "repaired"] = True  # a filled hour of AAA
    gap = candles.drop(index=[40, 41, 42, 43, 44]).reset_index(drop=True)  # 5 hours gone
    labels = forward_returns(gap, 4)
    a = gap.loc[gap["pair"] == "AAAUSDT"]
    opens = a.set_index("open_time_utc")["open"]
    t0 = a["open_time_utc"].iloc[0]

    def row(bar: int) -> int:
        return int(a.index[a["open_time_utc"] == t0 + bar * HOUR][0])

    # decided on bar 25: exit bar 30 is repaired, held to bar 31's open
    period = labels.iloc[row(25)]
    assert np.isnan(period["forward_return"])
    assert period["period_return"] == pytest.approx(
        opens[t0 + 31 * HOUR] / opens[t0 + 26 * HOUR] - 1
    )
    assert period["period_exit_utc"] == t0 + 31 * HOUR
    # decided on bar 29: the entry is repaired, held from bar 31, the next period chains on
    assert labels["period_entry_utc"].iloc[row(29)] == t0 + 31 * HOUR
    assert labels["period_exit_utc"].iloc[row(29)] == t0 + 34 * HOUR
    # decided on bar 37: the exit (42) falls in the gap; held to bar 45, the first after it
    assert labels["period_exit_utc"].iloc[row(37)] == t0 + 45 * HOUR
    assert labels["period_return"].iloc[row(37)] == pytest.approx(
        opens[t0 + 45 * HOUR] / opens[t0 + 38 * HOUR] - 1
    )
    # decided on bar 39: entry and exit both in the gap, one traded open: nothing held
    assert labels["period_return"].iloc[row(39)] == 0.0
    # where both bars trade the period is the label's
    ordinary = labels["forward_return"].notna()
    assert (labels.loc[ordinary, "period_return"] == labels.loc[ordinary, "forward_return"]).all()
    # the data's end: no open after it, so no return (the pair's next bars are BBB's)
    assert labels["period_return"].iloc[a.index[-5:]].isna().all()
    # times in ns whatever the input's unit: the funding windows read them as int64 ns
    seconds = gap.assign(open_time_utc=gap["open_time_utc"].dt.as_unit("s"))
    held = forward_returns(seconds, 4)
    assert held["period_entry_utc"].dt.unit == held["period_exit_utc"].dt.unit == "ns"
    pd.testing.assert_series_equal(held["period_exit_utc"], labels["period_exit_utc"])


def test_a_held_period_into_a_delisting_from_a_filled_entry_hour_ends_at_the_last_close() -> None:
    """The review: the label of a row whose entry hour is a filled one has no return, and the
    held period had none either (NaN, booked flat), though the position enters at the next
    open and the pair is delisted two hours later."""
    candles = synthetic_candles(["AAAUSDT", "BBBUSDT"], 100)
    gone = candles.drop(
        index=candles.index[(candles["pair"] == "BBBUSDT") & (candles.index >= 160)]
    ).reset_index(drop=True)
    gone["repaired"] = False
    b = np.flatnonzero(gone["pair"] == "BBBUSDT")  # BBB's bars 0..59, then delisted
    gone.loc[b[57], "repaired"] = True
    labels = forward_returns(gone, 4)
    row = b[56]  # enters at bar 57's hour (filled): held from bar 58's open
    assert np.isnan(labels["forward_return"].iloc[row])
    expected = gone["close"].iloc[b[59]] / gone["open"].iloc[b[58]] - 1.0
    assert labels["period_return"].iloc[row] == pytest.approx(expected)
    assert labels["period_entry_utc"].iloc[row] == gone["open_time_utc"].iloc[b[58]]
    assert labels["period_exit_utc"].iloc[row] == gone["open_time_utc"].iloc[b[59]] + HOUR
    assert labels["period_delisting"].iloc[row]  # counted with the delisting exits
    assert labels["period_delisting"].sum() == labels["delisting_exit"].sum() + 1
    # the rows whose label is a delisting exit hold the same period as the label
    exits = labels["delisting_exit"].to_numpy()
    assert exits.any()
    np.testing.assert_allclose(
        labels.loc[exits, "period_return"], labels.loc[exits, "forward_return"], rtol=1e-12
    )
    assert (labels.loc[exits, "period_exit_utc"] == labels.loc[exits, "exit_time_utc"]).all()


def test_forward_returns_never_span_a_missing_bar() -> None:
    candles = synthetic_candles(["AAAUSDT"], 60)
    dropped = candles.drop(index=20).reset_index(drop=True)
    labels = forward_returns(dropped, 1)
    time_of = dropped["open_time_utc"]
    missing = candles["open_time_utc"].iloc[20]
    # Entry at the missing bar (row of bar 18) and exit at it (row of bar 19): NaN.
    assert labels.loc[time_of == missing - 2 * HOUR, "forward_return"].isna().all()
    assert labels.loc[time_of == missing - HOUR, "forward_return"].isna().all()
    # A 24-bar label whose entry and exit both exist is kept even though bar 20 is missing.
    long = forward_returns(dropped, 24)
    row = int(np.flatnonzero(time_of == missing - 5 * HOUR)[0])
    opens = candles.set_index("open_time_utc")["open"]
    t = time_of.iloc[row]
    assert long["forward_return"].iloc[row] == pytest.approx(
        opens[t + 25 * HOUR] / opens[t + HOUR] - 1
    )


def test_a_position_held_into_a_delisting_exits_at_the_last_price() -> None:
    """A pair whose bars stop while the others go on was delisted: the holding that ran into
    its end is closed at its last close (a final crash is a loss), not booked flat."""
    candles = synthetic_candles(["AAAUSDT", "BBBUSDT"], 100)
    gone = candles.drop(
        index=candles.index[(candles["pair"] == "BBBUSDT") & (candles.index >= 160)]
    )
    gone = gone.reset_index(drop=True)
    labels = forward_returns(gone, 4, latency_bars=1)
    b = np.flatnonzero(gone["pair"] == "BBBUSDT")
    last = b[-1]  # bar 59 of BBB: the pair's last, 40 bars before the data's end
    t_last = gone["open_time_utc"].iloc[last]
    # decided on bars 54..57: entered at 56..59's open, the exit (60..63) never comes
    for row in b[-6:-2]:
        entry = row + 2
        expected = gone["close"].iloc[last] / gone["open"].iloc[entry] - 1.0
        assert labels["forward_return"].iloc[row] == pytest.approx(expected)
        # known once the market traded on without it for DELISTING_BARS hours: resolved at its
        # close, a refit before then trained on a delisting it could not know of
        assert labels["label_end_utc"].iloc[row] == t_last + HOUR + DELISTING_BARS * HOUR
        assert labels["exit_time_utc"].iloc[row] == t_last + HOUR  # held, and funded, to here
        assert labels["delisting_exit"].iloc[row]
    # decided on bar 53: the exit bar 59 exists, an ordinary label
    assert not labels["delisting_exit"].iloc[b[-7]]
    assert labels["exit_time_utc"].iloc[b[-7]] == labels["label_end_utc"].iloc[b[-7]] == t_last
    assert labels["forward_return"].iloc[b[-7]] == pytest.approx(
        gone["open"].iloc[last] / gone["open"].iloc[b[-7] + 2] - 1.0
    )
    # decided on the last two bars: no entry bar, so no position and no label
    assert labels["forward_return"].iloc[b[-2:]].isna().all()
    assert labels["delisting_exit"].sum() == 4
    # the data's own end is not a delisting: AAA's last labels stay unknown
    a = np.flatnonzero(gone["pair"] == "AAAUSDT")
    assert labels["forward_return"].iloc[a[-6:]].isna().all()
    off = forward_returns(gone, 4, latency_bars=1, delisting_bars=None)
    assert off["forward_return"].iloc[b[-6:-2]].isna().all()
    assert not off["delisting_exit"].any()
    assert (
        forward_returns(gone.drop(columns="close"), 4, 1)["forward_return"]
        .iloc[b[-6:]]
        .isna()
        .all()
    )
    with pytest.raises(ValueError, match="delisting_bars"):
        forward_returns(gone, 4, delisting_bars=0)


def test_an_early_cut_file_or_a_gap_is_not_a_delisting() -> None:
    candles = synthetic_candles(["AAAUSDT", "BBBUSDT"], 100)
    b = candles["pair"] == "BBBUSDT"
    # BBB's file ends 10 bars before AAA's: less than a day, the end of BBB's data
    cut = candles.drop(index=candles.index[b][-10:]).reset_index(drop=True)
    labels = forward_returns(cut, 4)
    assert not labels["delisting_exit"].any()
    assert labels.loc[cut["pair"] == "BBBUSDT", "forward_return"].iloc[-5:].isna().all()
    assert forward_returns(cut, 4, delisting_bars=10)["delisting_exit"].sum() == 4
    # spot files to 2022 and futures files from 2025 in one folder: the spot set's end is the
    # end of a dataset, not a delisting of the pairs that have no futures file
    later = synthetic_candles(["AAAUSDT"], 100, start="2025-01-01", seed=1)
    mixed = pd.concat([candles, later], ignore_index=True)
    assert not forward_returns(mixed, 4)["delisting_exit"].any()
    # another vendor's files going on (BTC's perpetual after the spot set) delist no spot pair
    spot = synthetic_candles(["AAAUSDT", "BBBUSDT", "CCCUSDT"], 100)
    perp = synthetic_candles(["AAAUSDT"], 60, start="2022-01-05 04:00", seed=2)
    perp["vendor"] = "binance_futures_um"
    assert not forward_returns(pd.concat([spot, perp], ignore_index=True), 4)[
        "delisting_exit"
    ].any()
    # nor does one pair's download running a day further than the others'
    longer = synthetic_candles(["AAAUSDT"], 140, seed=3)
    rest = synthetic_candles(["BBBUSDT", "CCCUSDT", "DDDUSDT"], 100, seed=4)
    assert not forward_returns(pd.concat([longer, rest], ignore_index=True), 4)[
        "delisting_exit"
    ].any()
    # while one pair of four stopping as the others go on is a delisting
    others = synthetic_candles(["BBBUSDT", "CCCUSDT", "DDDUSDT"], 140, seed=4)
    gone_one = pd.concat([longer.iloc[:100], others], ignore_index=True)
    flagged = forward_returns(gone_one, 4)["delisting_exit"].to_numpy()
    assert set(gone_one.loc[flagged, "pair"]) == {"AAAUSDT"}
    # a gap the pair comes back from is not its end: an exit inside it gives NaN
    gap = candles.drop(index=candles.index[b][30:40]).reset_index(drop=True)
    assert not forward_returns(gap, 4)["delisting_exit"].any()
    # a repaired (carried-forward) entry bar is never traded, delisting or not
    repaired = candles.drop(index=candles.index[b][60:]).reset_index(drop=True)
    repaired["repaired"] = False
    last_b = int(np.flatnonzero(repaired["pair"] == "BBBUSDT")[-1])
    repaired.loc[last_b, "repaired"] = True
    labels = forward_returns(repaired, 4)
    assert np.isnan(labels["forward_return"].iloc[last_b - 1])  # entry at the repaired bar
    assert labels["delisting_exit"].iloc[last_b - 2]  # entry before it, exit at its close


def test_direction_labels_and_dead_zone() -> None:
    returns = np.array([0.004, -0.004, 0.002, -0.003, np.nan, 0.0031])
    zone = dead_zone_for(HORIZON_BARS["1d"], cost_rate=0.0015)
    assert zone == pytest.approx(0.003)
    labels = direction_label(returns, zone)
    assert labels.dtype == np.int8
    assert labels.tolist() == [1, -1, 0, 0, 0, 1]
    assert direction_label(returns, 0.0).tolist() == [1, -1, 1, -1, 0, 1]
    with pytest.raises(ValueError, match="dead_zone"):
        direction_label(returns, -0.1)
    with pytest.raises(ValueError, match="horizon_bars"):
        dead_zone_for(0, 0.001)


def test_forward_returns_on_real_data_match_a_direct_lookup(real_three: pd.DataFrame) -> None:
    labels = forward_returns(real_three, HORIZON_BARS["1d"], latency_bars=1)
    eth = real_three["pair"] == "ETHUSDT"
    opens = real_three.loc[eth].set_index("open_time_utc")["open"]
    t = real_three.loc[eth, "open_time_utc"]
    expected = opens.reindex(t + 26 * HOUR).to_numpy() / opens.reindex(t + 2 * HOUR).to_numpy() - 1
    np.testing.assert_allclose(labels.loc[eth, "forward_return"], expected, rtol=1e-12)


def test_feature_spread_matches_rolling_spread_per_pair() -> None:
    candles = synthetic_candles(["AAAUSDT", "BTCUSDT"], 400, seed=9)
    features = build_crypto_features(candles)
    for pair in ("AAAUSDT", "BTCUSDT"):
        rows = candles["pair"] == pair
        expected = rolling_spread(candles.loc[rows], window_bars=168)
        np.testing.assert_allclose(
            features.loc[rows, "spread_estimate_168h"], expected, rtol=1e-9, atol=1e-12
        )
    assert features["spread_estimate_168h"].notna().sum() == 2 * (400 - 42)
