"""Staking and backtest: hand-computed flat and Kelly cases, drawdown, CLV and bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from marketcast.evaluation.backtest import (
    BacktestConfig,
    cumulative_profit_curve,
    lowest_bankroll,
    max_drawdown,
    run_backtest,
)
from marketcast.evaluation.staking import decide_stakes, stake_fractions
from marketcast.labels.football import profit_matrix
from marketcast.margins import implied_probabilities

# Edges (p * odds - 1): row 0 home 0.10; row 1 best 0.015 (< min_edge); row 2 home 0.05;
# row 3 away 0.10.
PROBS = np.array([[0.5, 0.3, 0.2], [0.4, 0.35, 0.25], [0.3, 0.3, 0.4], [0.2, 0.3, 0.5]])
ODDS = np.array([[2.2, 3.0, 5.0], [2.4, 2.9, 4.0], [3.5, 3.4, 2.4], [5.0, 3.5, 2.2]])
# Results: row 0 away win (home bet loses), row 1 draw, row 2 home win (+2.5), row 3 home win
# (away bet loses).
HOME_GOALS = np.array([0, 1, 2, 3])
AWAY_GOALS = np.array([1, 1, 0, 0])
PROFIT_PER_UNIT = profit_matrix("1x2", ODDS, HOME_GOALS, AWAY_GOALS)
# Row 3 kicks off first, then row 0, then row 2: cumulative -1, -2, +0.5 with flat stakes.
KICKOFF = pd.to_datetime(
    ["2023-01-02 15:00", "2023-01-02 15:00", "2023-01-03 20:00", "2023-01-01 12:30"], utc=True
)


def test_stake_fractions_pick_the_largest_edge_above_min_edge() -> None:
    index, fraction, edge = stake_fractions(PROBS, ODDS, rule="flat")
    np.testing.assert_array_equal(index, [0, -1, 0, 2])
    np.testing.assert_allclose(fraction, [0.01, 0.0, 0.01, 0.01])
    np.testing.assert_allclose(edge, [0.1, 0.015, 0.05, 0.1], atol=1e-12)


def test_kelly_and_fractional_kelly_fractions() -> None:
    _, full, _ = stake_fractions(PROBS, ODDS, rule="kelly", max_stake_fraction=1.0)
    np.testing.assert_allclose(full, [0.1 / 1.2, 0.0, 0.05 / 2.5, 0.1 / 1.2], atol=1e-12)
    _, quarter, _ = stake_fractions(
        PROBS, ODDS, rule="fractional_kelly", kelly_fraction=0.25, max_stake_fraction=0.015
    )
    np.testing.assert_allclose(quarter, [0.015, 0.0, 0.005, 0.015], atol=1e-12)


def test_min_edge_filters_bets() -> None:
    index, _, _ = stake_fractions(PROBS, ODDS, rule="flat", min_edge=0.06)
    np.testing.assert_array_equal(index, [0, -1, -1, 2])


def test_unpriced_outcomes_are_skipped() -> None:
    odds = ODDS.copy()
    odds[0, 0] = np.nan
    odds[1, :] = np.nan
    index, fraction, edge = stake_fractions(PROBS, odds, rule="flat")
    assert index[0] == -1  # remaining edges -0.1 and 0.0
    assert edge[0] == pytest.approx(0.0, abs=1e-12)
    assert index[1] == -1
    assert np.isnan(edge[1])
    assert fraction[1] == 0.0


def test_decide_stakes_records() -> None:
    decisions = decide_stakes(PROBS, ODDS, rule="fractional_kelly", max_stake_fraction=0.015)
    assert [d.outcome_index for d in decisions] == [0, None, 0, 2]
    assert decisions[0].stake_fraction == pytest.approx(0.015)
    assert decisions[0].reason == "fractional_kelly, capped at 0.015"
    assert decisions[2].reason == "fractional_kelly"
    assert decisions[2].stake_fraction == pytest.approx(0.005)
    assert decisions[1].reason == "no bet: best edge 0.0150 < min_edge 0.0200"
    assert decisions[1].stake_fraction == 0.0


def test_flat_backtest_hand_computed() -> None:
    config = BacktestConfig(staking="flat", n_bootstrap=0)
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, kickoff_utc=KICKOFF, config=config)
    assert result.n_bets == 3
    assert result.staked_units == pytest.approx(3.0)
    assert result.profit_units == pytest.approx(0.5)
    assert result.roi == pytest.approx(0.5 / 3)
    assert result.hit_rate == pytest.approx(1 / 3)
    assert result.max_drawdown == pytest.approx(2.0)  # time order: -1, -2, +0.5
    assert result.bets["row"].tolist() == [3, 0, 2]
    np.testing.assert_allclose(result.bets["cumulative_profit"], [-1.0, -2.0, 0.5])


def test_drawdown_follows_row_order_without_kickoffs() -> None:
    config = BacktestConfig(staking="flat", n_bootstrap=0)
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, config=config)
    assert result.bets["row"].tolist() == [0, 2, 3]
    assert result.max_drawdown == pytest.approx(1.0)  # -1, +1.5, +0.5


def test_bets_at_one_kickoff_are_one_step_of_the_drawdown() -> None:
    """Six bets at one kick-off, three won and three lost at evens, leave the bankroll where
    it was: the drawdown was 3 units, counted bet by bet in row order."""
    config = BacktestConfig(staking="flat", n_bootstrap=0, min_edge=0.0)
    n = 6
    won = np.array([False, False, False, True, True, True])
    profit = np.where(won[:, None], [[1.0, -1.0]], [[-1.0, 1.0]])
    same = pd.DatetimeIndex(["2023-08-12 15:00"] * n, tz="UTC")
    result = run_backtest(
        [[0.6, 0.4]] * n, [[2.0, 2.0]] * n, profit, kickoff_utc=same, config=config
    )
    assert result.profit_units == 0.0
    assert result.max_drawdown == 0.0
    # at two kick-offs, the losers first, the fall between them is real
    apart = pd.DatetimeIndex(["2023-08-12 15:00"] * 3 + ["2023-08-12 17:30"] * 3, tz="UTC")
    result = run_backtest(
        [[0.6, 0.4]] * n, [[2.0, 2.0]] * n, profit, kickoff_utc=apart, config=config
    )
    assert result.max_drawdown == pytest.approx(3.0)


def test_kelly_backtest_hand_computed() -> None:
    config = BacktestConfig(staking="kelly", max_stake_fraction=1.0, n_bootstrap=0)
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, config=config)
    stakes = np.array([100 * 0.1 / 1.2, 100 * 0.05 / 2.5, 100 * 0.1 / 1.2])
    np.testing.assert_allclose(result.bets["stake"], stakes)
    assert result.staked_units == pytest.approx(stakes.sum())
    assert result.profit_units == pytest.approx(-stakes[0] + 2.5 * stakes[1] - stakes[2])
    assert result.roi == pytest.approx(result.profit_units / stakes.sum())


def test_fractional_kelly_backtest_respects_cap() -> None:
    config = BacktestConfig(
        staking="fractional_kelly", kelly_fraction=0.25, max_stake_fraction=0.015, n_bootstrap=0
    )
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, config=config)
    np.testing.assert_allclose(result.bets["stake"], [1.5, 0.5, 1.5])
    assert result.bets["stake"].max() <= 0.015 * config.bankroll_units + 1e-12
    assert result.profit_units == pytest.approx(-1.5 + 1.25 - 1.5)
    assert result.staked_units == pytest.approx(3.5)


def test_clv_skips_and_counts_bets_without_closing() -> None:
    closing = np.array(
        [[0.48, 0.3, 0.22], [0.4, 0.3, 0.3], [np.nan, np.nan, np.nan], [0.2, 0.3, 0.5]]
    )
    config = BacktestConfig(staking="flat", n_bootstrap=0)
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, closing_probs=closing, config=config)
    assert result.n_bets_without_closing == 1
    assert result.clv == pytest.approx(((2.2 * 0.48 - 1) + (2.2 * 0.5 - 1)) / 2)
    assert np.isnan(result.bets.set_index("row").loc[2, "clv"])


def test_asian_handicap_push_and_half_results_are_exact() -> None:
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.6, 0.4]])
    odds = np.array([[1.9, 1.9], [1.9, 1.9], [1.9, 1.9]])
    lines = np.array([-1.0, -0.75, -0.25])
    profits = profit_matrix("ah", odds, [1, 1, 0], [0, 0, 0], lines)
    config = BacktestConfig(staking="flat", n_bootstrap=0)
    result = run_backtest(probs, odds, profits, config=config)
    np.testing.assert_allclose(result.bets["profit"], [0.0, 0.45, -0.5])
    assert result.profit_units == pytest.approx(-0.05)
    assert result.hit_rate == pytest.approx(1 / 3)


def test_unsettled_bets_are_dropped_and_counted() -> None:
    profits = PROFIT_PER_UNIT.copy()
    profits[2, :] = np.nan
    result = run_backtest(PROBS, ODDS, profits, config=BacktestConfig(staking="flat"))
    assert result.n_unsettled == 1
    assert result.n_bets == 2
    assert result.profit_units == pytest.approx(-2.0)


def random_market(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true_p = rng.dirichlet([4.0, 2.5, 3.0], size=n)
    odds = 1 / (true_p * 1.05 * rng.uniform(0.9, 1.1, size=(n, 3)))
    odds = np.maximum(odds, 1.01)
    outcome = np.array([rng.choice(3, p=row) for row in true_p])
    home_goals = np.where(outcome == 0, 2, np.where(outcome == 1, 1, 0))
    away_goals = np.where(outcome == 2, 2, 1)
    profits = profit_matrix("1x2", odds, home_goals, away_goals)
    return true_p, odds, profits, implied_probabilities(odds)


def test_bootstrap_interval_contains_roi_and_is_seeded() -> None:
    true_p, odds, profits, _ = random_market(0, 600)
    config = BacktestConfig(staking="flat", n_bootstrap=500, seed=3)
    result = run_backtest(true_p, odds, profits, config=config)
    low, high = result.roi_ci
    assert result.n_bets > 50
    assert low < result.roi < high
    again = run_backtest(true_p, odds, profits, config=config)
    assert again.roi_ci == result.roi_ci
    other = run_backtest(true_p, odds, profits, config=BacktestConfig(staking="flat", seed=4))
    assert other.roi_ci != result.roi_ci


def test_bets_without_spread_get_no_interval() -> None:
    """One winning bet at evens was "ROI +100%, 95% CI [+100%, +100%]": with one bet, or
    every bet returning the same, each resample is the sample and the interval claimed
    certainty. It is now NaN (null in JSON)."""
    probs = np.array([[0.6, 0.2, 0.2], [0.6, 0.2, 0.2], [0.6, 0.2, 0.2]])
    odds = np.array([[2.0, 4.0, 4.0]] * 3)
    won = np.array([[1.0, -1.0, -1.0]] * 3)
    config = BacktestConfig(staking="flat", min_edge=0.0)
    for n in (1, 3):
        result = run_backtest(probs[:n], odds[:n], won[:n], config=config)
        assert result.n_bets == n
        assert result.roi == 1.0
        assert np.isnan(result.roi_ci).all()
        assert result.to_dict()["roi_ci"] == [None, None]
    # won at the same odds under Kelly: the stakes, and so the returns, differ in the last digit
    kelly = BacktestConfig(staking="kelly", min_edge=0.0, max_stake_fraction=1.0)
    home = np.array([0.6033669873528069, 0.5790025859995174, 0.65800306359616, 0.5929984600350954])
    at_odds = np.column_stack([home, (1 - home) / 2, (1 - home) / 2])
    result = run_backtest(at_odds, [[2.2, 4.0, 4.0]] * 4, [[1.2, -1.0, -1.0]] * 4, config=kelly)
    returns = result.bets["profit"] / result.bets["stake"]
    assert 0 < np.ptp(returns) < 1e-12  # four wins at 2.2, equal but for rounding
    assert np.isnan(result.roi_ci).all()
    lost = won.copy()
    lost[2] = [-1.0, 1.0, -1.0]  # the third bet lost: spread, and an interval again
    low, high = run_backtest(probs, odds, lost, config=config).roi_ci
    assert low < high


def test_max_drawdown_helper() -> None:
    assert max_drawdown([1.0, -2.0, 0.5, -1.0, 3.0]) == pytest.approx(2.5)
    assert max_drawdown([-1.0, -1.0]) == pytest.approx(2.0)  # measured from the 0 start
    assert max_drawdown([1.0, 2.0]) == 0.0
    assert max_drawdown([]) == 0.0


def test_no_bets_and_json() -> None:
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, config=BacktestConfig(min_edge=0.5))
    assert result.n_bets == 0
    assert np.isnan(result.roi)
    assert result.max_drawdown == 0.0
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["roi"] is None
    assert payload["n_bets"] == 0
    assert payload["roi_ci"] == [None, None]
    assert "bets" not in payload
    assert cumulative_profit_curve(result).empty


def test_cumulative_profit_curve_is_indexed_by_kickoff() -> None:
    config = BacktestConfig(staking="flat", n_bootstrap=0)
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, kickoff_utc=KICKOFF, config=config)
    curve = cumulative_profit_curve(result)
    assert list(curve.index) == [KICKOFF[3], KICKOFF[0], KICKOFF[2]]
    np.testing.assert_allclose(curve.to_numpy(), [-1.0, -2.0, 0.5])
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["profit_units"] == pytest.approx(0.5)
    assert payload["config"]["staking"] == "flat"


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown staking rule"):
        BacktestConfig(staking="martingale")


def test_numpy_integer_settings_write_as_json() -> None:
    config = BacktestConfig(staking="flat", n_bootstrap=np.int64(5), seed=np.int64(3))
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, kickoff_utc=KICKOFF, config=config)
    terms = json.loads(json.dumps(result.to_dict(), allow_nan=True))["config"]
    assert (terms["n_bootstrap"], terms["seed"]) == (5, 3)


def test_a_bankroll_that_runs_out_is_said_so() -> None:
    """A 100-unit bankroll, never compounded, showed a drawdown of 459 units like any other
    figure: the bettor would have had nothing left to stake long before."""
    config = BacktestConfig(staking="flat", n_bootstrap=0, min_edge=0.0, bankroll_units=4.5)
    kickoff = pd.date_range("2023-08-12 15:00", periods=4, freq="D", tz="UTC")
    lost = np.array([[-1.0, 1.0]] * 4)  # flat stakes 1 unit a bet, whatever the bankroll
    result = run_backtest(
        [[0.6, 0.4]] * 4, [[2.0, 2.0]] * 4, lost, kickoff_utc=kickoff, config=config
    )
    assert result.lowest_bankroll_units == pytest.approx(0.5)
    assert not result.to_dict()["bankroll_exhausted"]
    config = BacktestConfig(staking="kelly", n_bootstrap=0, min_edge=0.0, max_stake_fraction=1.0)
    # full Kelly at p 0.6, evens: 20% a bet; five losses take 100 units to 0
    result = run_backtest(
        [[0.6, 0.4]] * 6,
        [[2.0, 2.0]] * 6,
        np.array([[-1.0, 1.0]] * 6),
        kickoff_utc=pd.date_range("2023-08-12", periods=6, freq="D", tz="UTC"),
        config=config,
    )
    payload = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert payload["lowest_bankroll_units"] == pytest.approx(-20.0)
    assert payload["bankroll_exhausted"] is True
    assert payload["max_drawdown"] == pytest.approx(120.0)


def test_bets_of_one_kickoff_reach_the_lowest_bankroll_together() -> None:
    """The lowest bankroll is measured on the drawdown's steps: a loss and a win at one
    kick-off never take it down."""
    config = BacktestConfig(staking="flat", n_bootstrap=0, min_edge=0.0)
    profit = np.array([[-1.0, 1.0], [1.0, -1.0]])
    same = pd.DatetimeIndex(["2023-08-12 15:00"] * 2, tz="UTC")
    result = run_backtest(
        [[0.6, 0.4]] * 2, [[2.0, 2.0]] * 2, profit, kickoff_utc=same, config=config
    )
    assert result.lowest_bankroll_units == 100.0
    assert lowest_bankroll([-1.0, 1.0], 100.0) == 99.0  # bet by bet it would be


def test_no_bet_leaves_the_bankroll_whole() -> None:
    result = run_backtest(PROBS, ODDS, PROFIT_PER_UNIT, config=BacktestConfig(min_edge=0.5))
    assert result.lowest_bankroll_units == 100.0
    assert result.to_dict()["bankroll_exhausted"] is False
