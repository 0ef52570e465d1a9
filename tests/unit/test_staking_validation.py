"""Staking and backtest input checks: parameters, probability rows, no-bet reasons, config."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from marketcast.evaluation.backtest import BacktestConfig, run_backtest
from marketcast.evaluation.staking import decide_stakes, stake_fractions

PROBS = np.array([[0.6, 0.2, 0.2], [0.5, 0.3, 0.2]])
ODDS = np.array([[2.0, 3.5, 6.0], [2.2, 3.0, 5.0]])  # best edges: home 0.2 and home 0.1
PROFITS = np.array([[1.0, -1.0, -1.0], [-1.0, 2.0, -1.0]])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_stake_fraction": 0.0}, r"max_stake_fraction must be a finite number in \(0, 1\]"),
        ({"kelly_fraction": 0.0}, r"kelly_fraction must be a finite number in \(0, 1\]"),
        ({"kelly_fraction": 1.5}, r"kelly_fraction must be a finite number in \(0, 1\]"),
        ({"bankroll_units": 0.0}, r"bankroll_units must be a finite number > 0, got 0\.0"),
        ({"bankroll_units": -100.0}, r"bankroll_units must be a finite number > 0, got -100"),
        ({"min_edge": float("nan")}, r"min_edge must be a finite number >= 0, got nan"),
        ({"min_edge": -0.1}, r"min_edge must be a finite number >= 0, got -0\.1"),
    ],
)
@pytest.mark.parametrize("rule", ["flat", "kelly", "fractional_kelly"])
def test_parameters_out_of_range_are_rejected_by_name(
    rule: str, params: dict[str, float], message: str
) -> None:
    """A zero cap or multiplier gave 'best edge 0.2000 < min_edge', a zero bankroll a
    ZeroDivisionError, a negative one negative stakes."""
    with pytest.raises(ValueError, match=message):
        decide_stakes(PROBS, ODDS, rule=rule, **params)
    with pytest.raises(ValueError, match=message):
        stake_fractions(PROBS, ODDS, rule=rule, **params)


@pytest.mark.parametrize(
    "row",
    [[np.nan, np.nan, np.nan], [0.6, np.nan, np.nan]],
    ids=["all_nan", "partly_nan"],
)
def test_nan_probabilities_are_no_forecast_not_an_unpriced_match(row: list[float]) -> None:
    probs = np.array([row, PROBS[1]])
    decisions = decide_stakes(probs, ODDS)
    assert decisions[0].outcome_index is None
    assert decisions[0].reason == "no bet: no forecast"
    assert np.isnan(decisions[0].edge)
    assert decisions[1].outcome_index == 0  # the other row is still bet
    unpriced = np.array([[np.nan] * 3, ODDS[1]])
    assert decide_stakes(probs, unpriced)[0].reason == "no bet: no forecast"
    assert decide_stakes(PROBS, unpriced)[0].reason == "no bet: no priced outcome"
    index, fraction, edge = stake_fractions(probs, ODDS, rule="flat")
    assert index.tolist() == [-1, 0]
    assert fraction[0] == 0.0
    assert np.isnan(edge[0])


def test_kelly_skipping_a_zero_edge_says_why() -> None:
    """With min_edge 0 a zero edge clears min_edge, yet Kelly stakes nothing on it."""
    decision = decide_stakes([[0.5, 0.5]], [[2.0, 2.0]], rule="kelly", min_edge=0.0)[0]
    assert decision.outcome_index is None
    assert decision.reason == "no bet: best edge 0.0000 is not positive (kelly bets only a gain)"
    flat = decide_stakes([[0.5, 0.5]], [[2.0, 2.0]], rule="flat", min_edge=0.0)[0]
    assert flat.outcome_index == 0


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ([0.9, 0.9, 0.9], r"probs row 1: probabilities must sum to 1 \(within 1e-06\), got 2\.7"),
        ([1.2, 0.0, 0.0], r"probs row 1: probabilities must be in \[0, 1\], got \[1\.2, 0\.0"),
        ([0.7, 0.7, -0.4], r"probs row 1: probabilities must be in \[0, 1\], got \[0\.7, 0\.7"),
    ],
)
def test_probabilities_that_are_not_distributions_are_rejected(
    bad_row: list[float], message: str
) -> None:
    """Rows summing to 2.7 or above 1 were bet at the stake cap without comment."""
    probs = np.array([PROBS[0], bad_row])
    with pytest.raises(ValueError, match=message):
        decide_stakes(probs, ODDS)
    with pytest.raises(ValueError, match=message):
        run_backtest(probs, ODDS, PROFITS, config=BacktestConfig(n_bootstrap=0))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("min_edge", float("nan"), r"min_edge must be a finite number >= 0, got nan"),
        ("kelly_fraction", float("inf"), r"kelly_fraction must be a finite number in \(0, 1\]"),
        ("kelly_fraction", 0.0, r"kelly_fraction must be a finite number in \(0, 1\], got 0"),
        ("max_stake_fraction", 0.0, r"max_stake_fraction must be a finite number in \(0, 1\]"),
        ("bankroll_units", float("nan"), r"bankroll_units must be a finite number > 0, got nan"),
        ("n_bootstrap", 3.5, r"n_bootstrap must be an integer >= 0, got 3\.5"),
        ("n_bootstrap", True, r"n_bootstrap must be an integer >= 0, got True"),
        ("seed", -1, r"seed must be an integer >= 0, got -1"),
        ("seed", 1.0, r"seed must be an integer >= 0, got 1\.0"),
    ],
)
def test_backtest_config_fields_are_checked_by_name(field: str, value: Any, message: str) -> None:
    """min_edge=nan gave 0 bets and ROI NaN; n_bootstrap=3.5 a TypeError in the bootstrap."""
    with pytest.raises(ValueError, match=message):
        BacktestConfig(**{field: value})


def test_integer_fields_take_numpy_integers_but_not_floats() -> None:
    with pytest.raises(ValueError, match=r"n_bootstrap must be an integer >= 0, got 10\.0"):
        BacktestConfig(n_bootstrap=10.0)  # type: ignore[arg-type]
    config = BacktestConfig(n_bootstrap=np.int64(10), seed=np.int64(2), min_edge=0.0)
    away_won = np.array([[-1.0, -1.0, 5.0], [-1.0, 2.0, -1.0]])  # one bet won: spread to resample
    result = run_backtest(PROBS, ODDS, away_won, config=config)
    assert result.n_bets == 2
    assert result.roi_ci[0] < result.roi < result.roi_ci[1]


def test_closing_probabilities_are_checked_and_a_nan_row_has_no_closing_price() -> None:
    config = BacktestConfig(staking="flat", n_bootstrap=0)
    with pytest.raises(ValueError, match=r"closing_probs row 0: probabilities must be in \[0, 1\]"):
        run_backtest(PROBS, ODDS, PROFITS, [[5.0, 0.0, 0.0], PROBS[1]], config=config)
    with pytest.raises(ValueError, match="closing_probs row 1: probabilities must sum to 1"):
        run_backtest(PROBS, ODDS, PROFITS, [PROBS[0], [0.6, 0.3, 0.2]], config=config)
    partly_nan = np.array([[0.55, np.nan, np.nan], [0.45, 0.3, 0.25]])
    result = run_backtest(PROBS, ODDS, PROFITS, partly_nan, config=config)
    assert result.n_bets == 2
    assert result.n_bets_without_closing == 1
    assert np.isnan(result.bets["clv"].iloc[0])
    assert result.clv == pytest.approx(2.2 * 0.45 - 1.0)
