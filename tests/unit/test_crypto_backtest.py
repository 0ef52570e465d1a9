"""Tests for crypto trading costs and the vectorised crypto backtest."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from marketcast.costs import (
    CostModel,
    fee_cost,
    funding_cost,
    period_funding_sums,
    round_trip_cost_rate,
    slippage_cost,
    spread_cost,
)
from marketcast.evaluation.crypto_backtest import (
    buy_and_hold,
    finance_metrics,
    max_drawdown,
    period_entry_bars,
    period_returns_from_opens,
    run_backtest,
)
from marketcast.features.spread import estimate_spread

BTC_CSV = Path("/work/shared/data/crypto/BTCUSDT_1h.csv")
FREE = CostModel(
    taker_fee_rate=0.0,
    maker_fee_rate=0.0,
    spread_method="fixed",
    fixed_spread=0.0,
    slippage_model="none",
    funding=False,
    short_borrow_rate=0.0,
)


def _random_inputs(
    seed: int, n_periods: int = 60, n_pairs: int = 4, nan_share: float = 0.1
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n_periods, n_pairs)
    returns = rng.normal(0.0, 0.02, shape)
    returns[rng.random(shape) < nan_share] = np.nan
    return {
        "positions": rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=shape),
        "period_returns": returns,
        "spread": rng.uniform(0.0, 0.003, shape),
        "quote_volume": rng.uniform(1e5, 1e7, shape),
        "volatility": rng.uniform(0.002, 0.02, shape),
        "funding": rng.normal(1e-4, 1e-4, shape),
    }


def _run(inputs: dict[str, np.ndarray], costs: CostModel, periods_per_year: float = 8760.0):
    return run_backtest(costs=costs, periods_per_year=periods_per_year, **inputs)


def _reference(inputs: dict[str, np.ndarray], costs: CostModel) -> np.ndarray:
    """Per-period net return by an explicit loop over periods and pairs."""
    pos_req, ret = inputs["positions"], inputs["period_returns"]
    fee = costs.taker_fee_rate if costs.use_taker else costs.maker_fee_rate
    n_periods, n_pairs = ret.shape
    net = np.zeros(n_periods)
    prev = np.zeros(n_pairs)
    for k in range(n_periods):
        total, n_active = 0.0, 0
        for i in range(n_pairs):
            ok = not math.isnan(ret[k, i])
            p = pos_req[k, i] if ok else 0.0
            dp = abs(p - prev[i])
            if not ok and dp == 0:
                continue
            n_active += 1
            pnl = p * ret[k, i] if ok else 0.0
            slip = (
                costs.slippage_coef
                * inputs["volatility"][k, i]
                * math.sqrt(dp * costs.notional_usd / inputs["quote_volume"][k, i])
            )
            pnl -= dp * (fee + inputs["spread"][k, i] / 2 + slip)
            if costs.funding:
                pnl -= p * inputs["funding"][k, i]
            elif p < 0:  # a short on spot borrows the asset
                pnl -= -p * costs.short_borrow_rate / 8760.0
            total += pnl
            prev[i] = p
        prev = np.where(np.isnan(ret[k]), 0.0, prev)
        net[k] = total / max(n_active, 1)
    return net


@pytest.mark.parametrize("spot", [False, True], ids=["perpetual", "spot"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_costs_reconcile_gross_minus_each_cost_equals_net(seed: int, spot: bool) -> None:
    inputs = _random_inputs(seed)
    costs = CostModel(funding=not spot)
    result = _run(inputs, costs)
    rebuilt = (
        result.gross - result.fee - result.spread - result.slippage - result.funding - result.borrow
    )
    np.testing.assert_allclose(result.net, rebuilt, rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.net, _reference(inputs, costs), rtol=0, atol=1e-12)
    metrics = result.metrics()
    kinds = ("fee_cost", "spread_cost", "slippage_cost", "funding_cost", "borrow_cost")
    parts = sum(metrics[k] for k in kinds)
    # spot shorts pay interest and no funding; a perpetual's pay funding and no interest
    assert (metrics["borrow_cost"] > 0, metrics["funding_cost"] == 0) == (spot, spot)
    assert metrics["costs"] == pytest.approx(parts, abs=1e-12)
    assert metrics["costs"] == pytest.approx(result.gross.sum() - result.net.sum(), abs=1e-12)
    assert all(metrics[k] > 0 for k in ("fee_cost", "spread_cost", "slippage_cost"))


def test_zero_cost_model_gives_net_equal_gross() -> None:
    inputs = _random_inputs(3)
    result = _run(inputs, FREE)
    assert np.abs(result.gross).sum() > 0
    np.testing.assert_array_equal(result.net, result.gross)
    assert result.metrics()["costs"] == 0.0


def test_constant_position_pays_turnover_once() -> None:
    n = 50
    returns = np.full((n, 1), 0.001)
    costs = CostModel(spread_method="fixed", fixed_spread=0.002, slippage_model="none")
    result = run_backtest(np.ones((n, 1)), returns, None, None, None, None, costs, 8760.0)
    np.testing.assert_array_equal(result.turnover, np.r_[1.0, np.zeros(n - 1)])
    assert result.fee.sum() == pytest.approx(0.001)
    assert result.spread.sum() == pytest.approx(0.001)
    assert result.fee[1:].sum() == 0.0
    assert result.metrics()["turnover"] == pytest.approx(8760.0 / n)


def test_flat_positions_give_zero_everything() -> None:
    inputs = _random_inputs(4)
    inputs["positions"] = np.zeros_like(inputs["positions"])
    result = _run(inputs, CostModel())
    for name in ("gross", "fee", "spread", "slippage", "funding", "net", "turnover", "exposure"):
        assert np.all(getattr(result, name) == 0.0), name
    metrics = result.metrics()
    assert metrics["net_return"] == 0.0
    assert metrics["max_drawdown"] == 0.0
    assert math.isnan(metrics["sharpe"])
    assert math.isnan(metrics["hit_rate"])
    assert metrics["capacity_usd"] == 0.0


def test_sharpe_and_sortino_match_hand_computation() -> None:
    net = [0.01, -0.02, 0.015, 0.003, -0.004, 0.02]
    ppy = 2190.0
    m = finance_metrics(net, ppy)
    sharpe = statistics.mean(net) / statistics.stdev(net) * math.sqrt(ppy)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in net) / len(net))
    assert m["sharpe"] == pytest.approx(sharpe, rel=1e-12)
    assert m["sortino"] == pytest.approx(statistics.mean(net) / downside * math.sqrt(ppy))
    assert m["profit_factor"] == pytest.approx(0.048 / 0.024)
    assert m["hit_rate"] == pytest.approx(4 / 6)
    assert m["net_return"] == pytest.approx(math.prod(1 + r for r in net) - 1)


def test_max_drawdown_on_hand_example() -> None:
    # equity 1 -> 1.2 -> 0.9 -> 0.99 -> 0.792 -> 1.188: worst fall 1.2 -> 0.792 = 34%.
    assert max_drawdown([0.2, -0.25, 0.1, -0.2, 0.5]) == pytest.approx(0.34)
    # the starting capital counts as a peak
    assert max_drawdown([-0.1, 0.05]) == pytest.approx(0.1)
    assert max_drawdown([0.01, 0.02]) == 0.0


def test_slippage_grows_with_notional_by_the_square_root_law() -> None:
    inputs = _random_inputs(5, nan_share=0.0)
    small = _run(inputs, CostModel(notional_usd=10_000))
    large = _run(inputs, CostModel(notional_usd=40_000))
    assert large.slippage.sum() == pytest.approx(2.0 * small.slippage.sum(), rel=1e-12)
    linear = CostModel(notional_usd=10_000, slippage_model="linear")
    linear_large = CostModel(notional_usd=40_000, slippage_model="linear")
    assert _run(inputs, linear_large).slippage.sum() == pytest.approx(
        4.0 * _run(inputs, linear).slippage.sum(), rel=1e-12
    )
    rate = slippage_cost([1.0, 2.0], [0.01, 0.01], [1e6, 1e6], CostModel()) / np.array([1.0, 2.0])
    assert rate[1] == pytest.approx(math.sqrt(2.0) * rate[0])


def test_capacity_is_where_slippage_eats_half_the_gross_edge() -> None:
    rng = np.random.default_rng(6)
    n = 400
    returns = rng.normal(0.0, 0.01, (n, 3))
    positions = np.sign(returns + rng.normal(0.0, 0.01, (n, 3)))  # a signal with an edge
    common = (returns, rng.uniform(0, 0.001, (n, 3)), rng.uniform(1e6, 5e6, (n, 3)))
    vol = rng.uniform(0.003, 0.01, (n, 3))
    for model in ("square_root", "linear"):
        costs = CostModel(slippage_model=model)
        first = run_backtest(positions, *common, vol, None, costs, 8760.0)
        capacity = first.capacity_usd()
        assert first.gross.sum() > 0
        at_capacity = CostModel(slippage_model=model, notional_usd=capacity)
        again = run_backtest(positions, *common, vol, None, at_capacity, 8760.0)
        assert again.slippage.sum() == pytest.approx(0.5 * again.gross.sum(), rel=1e-9)


def test_funding_sign_long_pays_positive_funding() -> None:
    returns = np.zeros((3, 2))
    funding = np.full((3, 2), 1e-4)
    positions = np.array([[1.0, -1.0]] * 3)
    costs = FREE.model_copy(update={"funding": True})
    result = run_backtest(positions, returns, None, None, None, funding, costs, 1095.0)
    np.testing.assert_allclose(result.funding, 0.0, atol=1e-18)  # long pays, short receives
    long_only = run_backtest(positions[:, :1], returns[:, :1], None, None, None, funding[:, :1],
                             costs, 1095.0)  # fmt: skip
    np.testing.assert_allclose(long_only.funding, 1e-4)
    np.testing.assert_allclose(long_only.net, -1e-4)
    short_only = run_backtest(-positions[:, :1], returns[:, :1], None, None, None,
                              funding[:, :1], costs, 1095.0)  # fmt: skip
    np.testing.assert_allclose(short_only.net, 1e-4)
    spot = run_backtest(positions[:, :1], returns[:, :1], None, None, None, funding[:, :1], FREE,
                        1095.0)  # fmt: skip
    assert spot.funding.sum() == 0.0


def test_funding_missing_is_charged_zero_and_counted() -> None:
    funding = np.array([[1e-4], [np.nan], [2e-4]])
    costs = FREE.model_copy(update={"funding": True})
    result = run_backtest(np.ones((3, 1)), np.zeros((3, 1)), None, None, None, funding, costs, 1.0)
    np.testing.assert_allclose(result.funding, [1e-4, 0.0, 2e-4])
    assert result.n_funding_missing == 1
    assert funding_cost([1.0], [np.nan], costs).tolist() == [0.0]


def test_period_funding_sums_use_half_open_holding_interval() -> None:
    hours = np.datetime64("2023-01-01T00:00")
    times = hours + np.array([0, 8, 16, 24, 32], dtype="timedelta64[h]")
    rates = np.array([1.0, 2.0, 4.0, 8.0, 16.0]) * 1e-5
    starts = hours + np.array([0, 4, 8, 28, 30], dtype="timedelta64[h]")
    ends = starts + np.timedelta64(8, "h")
    sums = period_funding_sums(times, rates, starts, ends)
    # (0, 8] -> 8h event; (4, 12] -> 8h; (8, 16] -> 16h; (28, 36] ends past the data -> NaN
    np.testing.assert_allclose(sums[:3], [2e-5, 2e-5, 4e-5])
    assert np.isnan(sums[3:]).all()


def test_nan_returns_force_flat_and_are_counted() -> None:
    returns = np.array([[0.01, 0.02], [np.nan, 0.01], [0.03, np.nan], [0.01, 0.01]])
    positions = np.array([[1.0, -1.0], [1.0, 0.0], [1.0, -1.0], [0.0, 0.0]])
    costs = FREE.model_copy(update={"taker_fee_rate": 0.001})
    result = run_backtest(positions, returns, None, None, None, None, costs, 8760.0)
    assert result.n_untradable == 2
    assert result.n_forced_exits == 2  # (1, 0) asked for 1.0 and (2, 1) for -1.0
    np.testing.assert_array_equal(
        result.positions, [[1.0, -1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]]
    )
    # period 1: pair 0 is closed in its untradable period, pair 1 is closed and trades: 2 active
    np.testing.assert_array_equal(result.n_active, [2, 2, 1, 2])
    np.testing.assert_allclose(result.turnover, [1.0, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(result.gross, [-0.005, 0.0, 0.03, 0.0])
    np.testing.assert_allclose(result.fee, 0.001 * result.turnover)
    assert result.metrics()["n_forced_exits"] == 2.0


def test_cost_inputs_are_forward_filled_and_counted() -> None:
    inputs = {
        "positions": np.array([[1.0], [0.0], [1.0]]),
        "period_returns": np.zeros((3, 1)),
        "spread": np.array([[0.002], [np.nan], [np.nan]]),
        "quote_volume": np.array([[1e6], [0.0], [1e6]]),
        "volatility": np.array([[0.01], [0.01], [0.01]]),
        "funding": None,
    }
    result = _run(inputs, CostModel())
    assert result.n_cost_inputs_filled == 2  # cells (1, 0) (spread, volume) and (2, 0) (spread)
    np.testing.assert_allclose(result.spread, [0.001, 0.001, 0.001])
    inputs["spread"] = np.array([[np.nan], [0.001], [0.001]])
    with pytest.raises(ValueError, match=r"spread: pair 0 trades in period 0"):
        _run(inputs, CostModel())


def test_bad_positions_raise_naming_the_cell() -> None:
    positions = np.zeros((3, 2))
    positions[2, 1] = 1.5
    with pytest.raises(ValueError, match=r"period 2, pair 1"):
        run_backtest(positions, np.zeros((3, 2)), None, None, None, None, FREE, 1.0)
    with pytest.raises(ValueError, match="shape"):
        run_backtest(np.zeros((3, 1)), np.zeros((3, 2)), None, None, None, None, FREE, 1.0)


def test_cost_model_is_frozen_and_forbids_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        CostModel(taker_fee=0.001)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CostModel().notional_usd = 5.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="needs a per-bar spread"):
        spread_cost([1.0], None, CostModel())
    assert fee_cost([2.0], CostModel(use_taker=False, maker_fee_rate=0.0002)).tolist() == [0.0004]


def test_buy_and_hold_pays_entry_costs_once() -> None:
    rng = np.random.default_rng(7)
    returns = rng.normal(0.0005, 0.01, (30, 3))
    returns[:5, 2] = np.nan  # listed later
    costs = CostModel(spread_method="fixed", fixed_spread=0.001, slippage_model="none")
    result = buy_and_hold(returns, None, None, None, None, costs, 365.0)
    assert result.n_forced_exits == 0
    np.testing.assert_allclose(result.fee[[0, 5]], [0.001, 0.001 / 3])
    assert np.count_nonzero(result.fee) == 2
    gross = np.nanmean(returns, axis=1)
    np.testing.assert_allclose(result.gross, gross, atol=1e-15)
    assert result.metrics()["gross_return"] == pytest.approx(np.prod(1 + gross) - 1)


def test_buy_and_hold_holds_only_what_a_strategy_may_hold() -> None:
    """The pipeline's models hold only the day's universe; buy-and-hold held every pair."""
    rng = np.random.default_rng(8)
    returns = rng.normal(0.0005, 0.01, (20, 3))
    hold = np.ones_like(returns, dtype=bool)
    hold[10:, 1] = False  # pair 1 leaves the universe half-way
    costs = CostModel(spread_method="fixed", fixed_spread=0.001, slippage_model="none")
    limited = buy_and_hold(returns, None, None, None, None, costs, 365.0, hold=hold)
    free = buy_and_hold(returns, None, None, None, None, costs, 365.0)
    np.testing.assert_array_equal(limited.positions, hold.astype(float))
    assert limited.fee[10] > 0  # pair 1 is sold when it leaves
    # the two pairs it may hold are the book: pair 1, out of the universe, is not in it
    assert limited.gross[12] == pytest.approx((returns[12, 0] + returns[12, 2]) / 2)
    assert free.gross[12] == pytest.approx(returns[12].mean())
    with pytest.raises(ValueError, match="hold has shape"):
        buy_and_hold(returns, None, None, None, None, costs, 365.0, hold=hold[:5])


def test_period_returns_from_opens_follow_entry_bars() -> None:
    opens = np.array([[100.0, 10.0], [110.0, 11.0], [99.0, np.nan], [121.0, 12.0], [121.0, 9.0]])
    np.testing.assert_array_equal(period_entry_bars(5, 1), [0, 1, 2, 3])
    ret = period_returns_from_opens(opens, 2, offset_bars=1)
    np.testing.assert_allclose(ret, [[0.1, 12 / 11 - 1]])
    ret1 = period_returns_from_opens(opens, 1)
    assert np.isnan(ret1[1:3, 1]).all()
    assert ret1[0, 0] == pytest.approx(0.1)


def _btc_opens(n_bars: int) -> np.ndarray:
    frame = pd.read_csv(BTC_CSV, usecols=["date", "open"], nrows=n_bars)
    return frame["open"].to_numpy(np.float64)


@pytest.mark.skipif(not BTC_CSV.exists(), reason="shared crypto data not present")
def test_final_equity_matches_vectorbt_with_fees_only() -> None:
    """Long/flat 24h momentum on 3,000 real BTC hours, fee 0.1%, against vectorbt.

    vectorbt buys ``cash / (price * (1 + fee))`` units, so an entry leaves ``(1 + r) / (1 + fee)``
    of capital after the period where we book ``1 + r - fee``; exits agree exactly. Per entry the
    two differ by at most ``fee * |r| + fee**2 * (1 + |r|)`` relative, so the final equities must
    agree within the sum of that bound over entries (times 1.5 for second-order compounding).
    """
    vbt = pytest.importorskip("vectorbt")
    opens = _btc_opens(3_001)
    n = opens.size - 1
    returns = opens[1:] / opens[:-1] - 1.0
    momentum = np.r_[np.full(25, np.nan), opens[24:-1] / opens[:-25] - 1.0][:n]
    positions = (np.nan_to_num(momentum) > 0).astype(np.float64)  # decided before each entry
    fee = 0.001
    costs = FREE.model_copy(update={"taker_fee_rate": fee})
    ours = run_backtest(positions, returns, None, None, None, None, costs, 8760.0)
    equity_ours = 1.0 + ours.metrics()["net_return"]

    changes = np.abs(np.diff(np.r_[0.0, positions])) > 0
    size = np.full(n + 1, np.nan)
    size[:n][changes] = positions[changes]
    portfolio = vbt.Portfolio.from_orders(
        close=opens, size=size, size_type="targetpercent", price=opens, fees=fee,
        init_cash=1.0, direction="longonly", freq="1h",
    )  # fmt: skip
    equity_vbt = float(portfolio.value().to_numpy()[-1])

    entries = changes & (positions > 0)
    bound = 1.5 * float(
        np.sum(fee * np.abs(returns[entries]) + fee**2 * (1 + np.abs(returns[entries])))
    )
    assert entries.sum() > 20
    assert abs(equity_vbt / equity_ours - 1.0) <= bound
    # the comparison is not vacuous: fees moved both far more than the tolerance
    assert abs(1.0 + ours.metrics()["gross_return"] - equity_ours) / equity_ours > 10 * bound


@pytest.mark.skipif(not BTC_CSV.exists(), reason="shared crypto data not present")
def test_estimate_spread_on_real_candles() -> None:
    frame = pd.read_csv(BTC_CSV, nrows=500)
    fixed = estimate_spread(frame, CostModel(spread_method="fixed", fixed_spread=0.0007))
    np.testing.assert_array_equal(fixed, np.full(500, 0.0007))
    estimated = estimate_spread(frame, CostModel(), window_bars=48)
    later = estimated[100:]
    assert np.isfinite(later).all()
    assert later.min() >= 0
    assert later.max() > 0


def test_a_pair_outside_the_universe_is_not_in_the_divisor() -> None:
    """A pair the universe leaves out, with a finite return, counted as an active sleeve:
    AAA long at +1% beside an excluded BBB reported +0.5% a period (a probe: +22.0% over 40
    periods instead of +47.3%), for every model and for buy-and-hold alike."""
    periods = 40
    returns = np.column_stack([np.full(periods, 0.01), np.zeros(periods)])
    universe = np.column_stack([np.ones(periods, dtype=bool), np.zeros(periods, dtype=bool)])
    costs = CostModel(spread_method="fixed", fixed_spread=0.0, slippage_model="none")
    positions = universe.astype(np.float64)
    inputs = (None, None, None, None, costs, 8760.0)
    result = run_backtest(positions, returns, *inputs, allowed=universe)
    assert result.metrics()["net_return"] == pytest.approx(1.009 * 1.01 ** (periods - 1) - 1)
    assert result.metrics()["exposure"] == pytest.approx(1.0)
    held = buy_and_hold(returns, *inputs, hold=universe)
    assert held.metrics()["net_return"] == pytest.approx(result.metrics()["net_return"])
    assert held.metrics()["n_forced_exits"] == 0
    # a position asked for outside the universe is forced flat, and counted
    forced = run_backtest(np.ones((periods, 2)), returns, *inputs, allowed=universe)
    assert forced.metrics()["n_forced_exits"] == periods
    assert forced.metrics()["net_return"] == pytest.approx(result.metrics()["net_return"])


def test_a_bad_cost_input_is_named_by_its_position_in_the_inputs_shape() -> None:
    """One row per cell (the pipeline's candle rows) said '(period, pair) (1,)'."""
    costs = CostModel()
    with pytest.raises(ValueError, match=r"quote_volume .* first at index 1 = inf"):
        slippage_cost([1.0, 1.0], [0.01, 0.01], [1e6, np.inf], costs)
    grid = np.ones((2, 2))
    volume = [[1e6, 1e6], [np.inf, 1e6]]
    with pytest.raises(ValueError, match=r"quote_volume .* first at \(period, pair\) \(1, 0\)"):
        slippage_cost(grid, grid / 100, volume, costs)
    with pytest.raises(ValueError, match=r"volatility .* first at the one value = nan"):
        slippage_cost(1.0, np.nan, 1e6, costs)


def test_an_infinite_quote_volume_is_an_unpriced_trade() -> None:
    """Like a missing or zero volume: an infinite cost no edge clears (it raised)."""
    cost = round_trip_cost_rate(CostModel(), [0.001] * 3, [0.01] * 3, [1e6, np.inf, np.nan])
    assert np.isfinite(cost[0])
    assert np.isinf(cost[1:]).all()


def test_the_backtests_counts_are_integers_in_its_metrics() -> None:
    """``n_periods`` 366.0 and ``n_funding_missing`` 7280.0 in the JSON: counts as floats."""
    result = run_backtest(
        np.ones((4, 2)), np.full((4, 2), 0.01), None, None, None, None,
        CostModel(slippage_model="none", spread_method="fixed"), 365.0,
    )  # fmt: skip
    counts = {k: v for k, v in result.metrics().items() if k.startswith("n_")}
    assert set(counts) >= {"n_periods", "n_active_periods", "n_untradable", "n_funding_missing"}
    assert all(type(v) is int for v in counts.values()), counts
    assert json.dumps(counts["n_periods"]) == "4"


def test_a_short_on_spot_pays_borrow_interest_per_period_held() -> None:
    """Crypto audit (medium): a short on spot held for free (no funding, no interest), while
    DESIGN's edge is net of every cost; 62% of the logistic model's traded cells were shorts."""
    costs = CostModel(spread_method="fixed", fixed_spread=0.0, slippage_model="none")
    positions = [[-1.0, 1.0], [-1.0, 1.0], [0.0, 0.0]]
    flat = np.zeros((3, 2))
    spot = run_backtest(positions, flat, None, None, None, None, costs, 2190.0)  # 4h periods
    per_period = 0.10 / 2190.0 / 2  # the short's sleeve is half of the capital
    np.testing.assert_allclose(spot.borrow, [per_period, per_period, 0.0], rtol=1e-12)
    assert spot.metrics()["borrow_cost"] == pytest.approx(2 * per_period)
    # with funding rates for the cells, the short pays (or receives) funding instead
    rates = np.full((3, 2), 1e-4)
    perpetual = run_backtest(positions, flat, None, None, None, rates, costs, 2190.0)
    assert perpetual.metrics()["borrow_cost"] == 0.0
    free = CostModel(
        spread_method="fixed", fixed_spread=0.0, slippage_model="none", short_borrow_rate=0.0
    )
    assert run_backtest(positions, flat, None, None, None, None, free, 2190.0).borrow.sum() == 0


def test_a_short_series_is_not_annualised_and_a_long_one_never_overflows() -> None:
    """One hour's +10% raised to the 8,760th power overflowed (OverflowError ended the run);
    one hour's +1% annualised to 7e37."""
    assert math.isnan(finance_metrics([0.10], 8760.0)["annualised_return"])
    assert math.isnan(finance_metrics([0.01] * 2189, 8760.0)["annualised_return"])
    assert finance_metrics([0.10] * 2190, 8760.0)["annualised_return"] == math.inf
    quarter = finance_metrics([0.001] * 2190, 8760.0)["annualised_return"]
    assert quarter == pytest.approx(1.001**8760 - 1, rel=1e-9)
    assert finance_metrics([-0.5] * 2190, 8760.0)["annualised_return"] == pytest.approx(-1.0)
    assert finance_metrics([0.1, -1.0], 8760.0)["annualised_return"] == -1.0  # ruin, however short


@pytest.mark.parametrize("value", [0.001, 0.003, 0.05, -0.01])
def test_identical_returns_have_no_sharpe_or_sortino(value: float) -> None:
    """Rounding left a standard deviation of 2e-17 above 0: a Sharpe of 4e17."""
    m = finance_metrics([value] * 10, 8760.0)
    assert math.isnan(m["sharpe"])
    assert math.isnan(m["sortino"])
    assert m["volatility"] == 0.0


def test_one_period_has_no_sortino() -> None:
    m = finance_metrics([-0.01], 8760.0)
    assert math.isnan(m["sortino"])  # was -sqrt(8760)
    assert math.isnan(m["sharpe"])


def test_statistics_stop_at_ruin() -> None:
    """A wipe-out followed by gains reported a Sharpe of 15.6 and a hit rate of 75%."""
    m = finance_metrics([0.1, -1.0, 0.5, 0.5, 0.5], 8760.0)
    before = finance_metrics([0.1, -1.0], 8760.0)
    for key in ("sharpe", "sortino", "volatility", "hit_rate", "profit_factor", "max_drawdown"):
        assert m[key] == before[key], key
    assert m["sharpe"] < 0
    assert m["net_return"] == -1.0
    assert (m["n_periods"], m["n_periods_after_ruin"]) == (5, 3)
    assert finance_metrics([0.1, -0.5], 8760.0)["n_periods_after_ruin"] == 0
