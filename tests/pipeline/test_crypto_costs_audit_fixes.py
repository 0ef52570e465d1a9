"""What the crypto costs audit found: a gap just before ``--start`` stopped the evaluation after
every job (naming no pair), a zero-volume decision bar forced a held position flat for a period,
holes in funding data were charged as zero funding without a word, and the signal server judged
every horizon with the first champion's universe."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.config import CryptoRunConfig, CryptoUniverseConfig
from marketcast.costs import CostModel, period_funding_sums, round_trip_cost_rate, window_sums
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.evaluation.crypto_backtest import buy_and_hold, run_backtest
from marketcast.orchestration.crypto import (
    cost_model,
    evaluate_crypto,
    horizon_rows,
    prepare_crypto,
)
from marketcast.orchestration.crypto_jobs import edge_positions
from tests.api.crypto_setup import Setup

PAIRS = ("BTCUSDT", "ETHUSDT")


def _bundle_slice(
    folder: Path, first_day: str, end_day: str, holes: dict[str, tuple[str, str]] | None = None
) -> Path:
    """BTC and ETH hourly candles from ``first_day`` to ``end_day``; ``holes``: pair -> the
    first and last bar (``date`` text) removed from its file."""
    for name, data in read_archive_csvs(BUNDLED_CRYPTO):
        pair = next((p for p in PAIRS if name.endswith(f"{p}_1h.csv")), None)
        if pair is None:
            continue
        frame = pd.read_csv(io.BytesIO(data))
        keep = (frame["date"] >= first_day) & (frame["date"] < end_day)
        if holes and pair in holes:
            first, last = holes[pair]
            keep &= ~frame["date"].between(first, last)
        frame.loc[keep].to_csv(folder / Path(name).name, index=False)
    return folder


def _row(rows: pd.DataFrame, pair: str, decision: str) -> pd.Series:
    at = (rows["pair"] == pair) & (rows["decision_time_utc"] == pd.Timestamp(decision, tz="UTC"))
    assert at.sum() == 1
    return rows.loc[at].iloc[0]


def _last_valid_before(
    rows: pd.DataFrame, pair: str, decision: str, column: str, positive: bool
) -> float:
    """Brute force: the pair's latest valid ``column`` on a row before ``decision``."""
    one = rows.loc[rows["pair"] == pair].sort_values("decision_time_utc")
    one = one.loc[one["decision_time_utc"] < pd.Timestamp(decision, tz="UTC")]
    values = one[column].to_numpy(dtype=np.float64)
    valid = np.isfinite(values) & ((values > 0) if positive else (values >= 0))
    return float(values[valid][-1])


# -- 1. a gap just before --start -------------------------------------------------------------
@pytest.fixture(scope="module")
def gap_before_start(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """April to mid-July 2022. ETH loses 2022-06-30 22:00 and 23:00 (refilled as repaired bars,
    volume 0: its first test decision's bar has no volume); BTC loses 17:00 to 22:00 (6 h, left
    open: its first test decision's 24 h volatility is NaN)."""
    return _bundle_slice(
        tmp_path_factory.mktemp("gap_before_start"),
        "2022-04-01",
        "2022-07-20",
        holes={
            "ETHUSDT": ("2022-06-30 22:00:00", "2022-06-30 23:00:00"),
            "BTCUSDT": ("2022-06-30 17:00:00", "2022-06-30 22:00:00"),
        },
    )


def test_a_gap_just_before_start_is_priced_with_what_was_known(gap_before_start: Path) -> None:
    """The evaluation used to stop after every job: `pair 1 trades in period 0 with no finite
    value > 0 at or before it`. The cell is now priced with the pair's last value before the
    window (never a later one), by the edge gate and the backtest alike."""
    config = CryptoRunConfig(
        pairs=PAIRS, horizons=("1d",), models=("flat", "momentum"), max_workers=1
    )
    prepared = prepare_crypto(config, [str(gap_before_start)])
    evaluation = evaluate_crypto(config, prepared, start="2022-07-01", end="2022-07-15")
    ev = evaluation.horizons["1d"]
    assert set(ev.models) == {"flat", "momentum"}
    assert ev.buy_and_hold["n_cost_inputs_filled"] == 2  # both pairs entered at period 0
    assert np.isfinite(ev.buy_and_hold["net_return"])
    assert ev.buy_and_hold["n_periods"] == 14

    rows = horizon_rows(prepared, "1d", config)
    start = "2022-07-01 00:00"

    eth = _row(rows, "ETHUSDT", start)
    assert eth["quote_volume"] == 0.0
    assert eth["in_universe"]
    assert eth["cost_quote_volume"] == _last_valid_before(
        rows, "ETHUSDT", start, "quote_volume", positive=True
    )
    btc = _row(rows, "BTCUSDT", start)
    assert np.isnan(btc["realised_vol_24h"])
    assert btc["in_universe"]
    assert btc["volatility"] == _last_valid_before(
        rows, "BTCUSDT", start, "realised_vol_24h", positive=False
    )
    assert eth["cost_inputs_filled"]
    assert btc["cost_inputs_filled"]
    # the gate prices the same values the backtest charges
    costs = cost_model(config)
    for row in (eth, btc):
        expected = round_trip_cost_rate(
            costs,
            [row["spread_estimate_168h"]],
            [row["volatility"]],
            [row["cost_quote_volume"]],
            min_spread=config.costs.min_spread,
        )[0]
        assert np.isfinite(row["round_trip_cost"])
        assert row["round_trip_cost"] == pytest.approx(expected, rel=1e-12)


def test_a_cell_that_cannot_be_priced_is_named_and_buy_and_hold_waits_for_a_price() -> None:
    costs = CostModel(spread_method="fixed")
    returns = np.full((3, 2), 0.01)
    volume = np.array([[1e8, np.nan], [1e8, 2e8], [1e8, 2e8]])
    vol = np.full((3, 2), 0.01)
    with pytest.raises(
        ValueError,
        match=r"quote_volume: ETHUSDT trades in the period decided at "
        r"2022-07-01 00:00 UTC \(pair 1, period 0\)",
    ):
        run_backtest(
            np.ones((3, 2)),
            returns,
            None,
            volume,
            vol,
            None,
            costs,
            365.0,
            pair_names=["BTCUSDT", "ETHUSDT"],
            period_labels=["2022-07-01 00:00 UTC", "2022-07-02 00:00 UTC", "2022-07-03 00:00 UTC"],
        )
    # buy-and-hold does not enter ETH before its entry can be priced (no later value is used)
    held = buy_and_hold(returns, None, volume, vol, None, costs, 365.0)
    np.testing.assert_array_equal(held.positions, [[1.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    assert held.n_cost_inputs_filled == 0
    with pytest.raises(ValueError, match=r"volatility: ETHUSDT trades"):
        run_backtest(
            np.ones((3, 2)),
            returns,
            None,
            np.full((3, 2), 1e8),
            np.array([[0.01, np.nan]] * 3),
            None,
            costs,
            365.0,
            pair_names=["BTCUSDT", "ETHUSDT"],
        )


# -- 4. a decision bar without volume -----------------------------------------------------------
@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """March 2023: Binance's 2023-03-24 outage, a placeholder bar at 12:00 and 13:00 missing."""
    return _bundle_slice(tmp_path_factory.mktemp("outage"), "2023-02-01", "2023-03-31")


def test_a_zero_volume_decision_bar_is_priced_with_the_last_volume_known(outage: Path) -> None:
    """The gate priced the 14:00 decision (its bar, 13:00, refilled with volume 0) at an infinite
    round trip, so no model could hold that period, and a held position would be closed and
    reopened an hour later, paying a round trip the backtest prices with the last valid volume
    anyway."""
    config = CryptoRunConfig(pairs=PAIRS, horizons=("1h",), models=("flat",), max_workers=1)
    prepared = prepare_crypto(config, [str(outage)])
    rows = horizon_rows(prepared, "1h", config)
    for pair in PAIRS:
        row = _row(rows, pair, "2023-03-24 14:00")
        assert row["quote_volume"] == 0.0
        assert np.isfinite(row["forward_return"])
        assert np.isfinite(row["round_trip_cost"])
        known = _last_valid_before(rows, pair, "2023-03-24 14:00", "quote_volume", positive=True)
        assert known == _row(rows, pair, "2023-03-24 12:00")["quote_volume"]  # the 11:00 bar
        assert row["cost_quote_volume"] == known
    # the same view every hour keeps the position through the outage: one entry, no round trip
    eth = rows.loc[rows["pair"] == "ETHUSDT"].set_index("decision_time_utc")
    hours = pd.date_range("2023-03-24 10:00", "2023-03-24 16:00", freq="h", tz="UTC")
    cost = eth.loc[hours, "round_trip_cost"].to_numpy()
    positions = edge_positions(np.full(len(hours), 0.9), 0.05, cost, 0.0)
    np.testing.assert_array_equal(positions, np.ones(len(hours)))
    returns = eth.loc[hours, "forward_return"].to_numpy()[:, None]
    result = run_backtest(
        positions[:, None],
        returns,
        eth.loc[hours, "spread_cost_est"].to_numpy()[:, None],
        eth.loc[hours, "cost_quote_volume"].to_numpy()[:, None],
        eth.loc[hours, "volatility"].to_numpy()[:, None],
        None,
        cost_model(config),
        8760.0,
    )
    # 11:00 to 13:00 exit or enter at the placeholder or refilled bar: untradable, forced flat
    # (as before); 14:00 trades, and the view is held from it on (it waited for 15:00)
    np.testing.assert_array_equal(np.isfinite(returns[:, 0]), [1, 0, 0, 0, 1, 1, 1])
    assert result.turnover.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    assert result.exposure.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


# -- 3. holes in funding data -------------------------------------------------------------------
def test_periods_overlapping_a_funding_hole_are_missing_not_free() -> None:
    hours = 3600 * 10**9
    jan = np.arange(0, 31 * 24, 8) * hours
    mar = np.arange(59 * 24, 90 * 24, 8) * hours  # February missing
    times = np.concatenate([jan, mar])
    rates = np.full(len(times), 1e-4)
    starts = np.arange(0, 89) * 24 * hours
    ends = starts + 24 * hours
    sums = period_funding_sums(times, rates, starts, ends)
    hole = (ends > jan[-1]) & (starts < mar[0])
    assert hole.sum() == 29  # every February day, and 31 January (its 00:00 event is missing)
    assert np.isnan(sums[hole]).all()
    np.testing.assert_array_equal(sums[~hole], window_sums(times, rates, starts, ends)[~hole])
    result = run_backtest(
        np.ones((89, 1)),
        np.zeros((89, 1)),
        None,
        None,
        None,
        sums[:, None],
        CostModel(spread_method="fixed", slippage_model="none"),
        365.0,
    )
    assert result.n_funding_missing == 29
    # complete data: bit for bit what the sums were
    full = np.arange(0, 90 * 24, 8) * hours
    np.testing.assert_array_equal(
        period_funding_sums(full, np.full(len(full), 1e-4), starts, ends),
        window_sums(full, np.full(len(full), 1e-4), starts, ends),
    )
    # a pair on 4 h funding that goes back to 8 h has no hole when floored at 8 h, as the
    # pipeline floors it (Binance moves pairs between 8 h, 4 h and 1 h)
    mixed = np.concatenate([np.arange(0, 10 * 24, 4), np.arange(10 * 24, 12 * 24, 8)]) * hours
    day = np.arange(0, 11) * 24 * hours
    assert np.isfinite(
        period_funding_sums(
            mixed, np.ones(len(mixed)), day, day + 24 * hours, min_spacing=8 * hours
        )
    ).all()


def test_a_hole_in_a_funding_file_is_reported_and_its_periods_counted(tmp_path: Path) -> None:
    """End to end: a funding file with 20 days cut out of its middle."""
    folder = _bundle_slice(tmp_path, "2023-01-01", "2023-03-31")
    events = pd.date_range("2023-01-01 08:00", "2023-03-30 16:00", freq="8h", tz="UTC")
    kept = events[(events < "2023-02-01") | (events >= "2023-02-21")]
    pd.DataFrame(
        {
            "timestamp": kept.as_unit("ms").asi8 + 3,  # Binance stamps a few ms late
            "symbol": "BTCUSDT",
            "funding_rate": 1e-4,
        }
    ).to_csv(folder / "BTCUSDT_funding_8h.csv", index=False)
    config = CryptoRunConfig(pairs=PAIRS, horizons=("1d",), models=("flat",), max_workers=1)
    prepared = prepare_crypto(config, [str(folder)])
    gaps = [i for i in prepared.data.report.issues if i.reason.startswith("funding_gap")]
    assert len(gaps) == 1
    assert prepared.data.report.ok
    assert gaps[0].file.endswith("BTCUSDT_funding_8h.csv")
    assert "BTCUSDT" in gaps[0].reason
    assert "2023-01-31 16:00 and 2023-02-21 00:00" in gaps[0].reason

    rows = horizon_rows(prepared, "1d", config)
    btc = rows.loc[(rows["pair"] == "BTCUSDT") & rows["on_grid"]]
    entry = btc["entry_time_utc"]
    inside = (entry >= pd.Timestamp("2023-02-01", tz="UTC")) & (
        entry < pd.Timestamp("2023-02-20", tz="UTC")
    )
    assert inside.sum() == 19
    assert btc.loc[inside, "funding_period"].isna().all()  # were 0: "no funding paid"
    covered = (entry >= pd.Timestamp("2023-01-02", tz="UTC")) & (
        entry < pd.Timestamp("2023-01-30", tz="UTC")
    )
    np.testing.assert_allclose(btc.loc[covered, "funding_period"], 3e-4, rtol=1e-12)


# -- 2. the server judges each horizon by its own champion's universe --------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """Run 1 (default universe) exports 1h logistic and 1d flat; run 2, whose liquidity floor
    no pair passes, exports 1d flat and is crowned: 1h keeps run 1's champion."""
    setup = Setup(tmp_path_factory.mktemp("two_runs"))
    strict = CryptoUniverseConfig(min_median_quote_volume_usd=1e15)
    setup.config = setup.config.model_copy(update={"universe": strict})
    setup.prepared = prepare_crypto(setup.config, [str(setup.candle_dir)])
    setup.export("1d", "flat")
    return setup


def test_each_horizon_follows_its_own_champions_universe(two_runs: Setup) -> None:
    service = two_runs.service()
    snap = service.snapshot()
    assert snap.champions["1d"].universe.min_median_quote_volume_usd == 1e15
    assert snap.champions["1h"].universe.min_median_quote_volume_usd == 1e6

    _, day = service.signals("1d")
    assert len(day) == 4
    for signal in day:
        assert signal.tradable is False
        assert signal.position == 0
        assert signal.reason == "not in the universe: low_liquidity"
    _, hour = service.signals("1h")
    assert all(s.tradable for s in hour)  # run 1's universe holds all four
    assert not any(s.reason.startswith("not in the universe") for s in hour)
    assert {r.horizon for r in service.rankings()} == {"1h"}

    rows = [r for r in service.do_not_trade() if r.reason == "low_liquidity"]
    assert sorted(r.pair for r in rows) == sorted(s.pair for s in day)
    assert {r.horizon for r in rows} == {"1d"}  # the pairs are fine for 1h's champion
