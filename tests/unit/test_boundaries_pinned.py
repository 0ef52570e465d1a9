"""Boundaries a mutation audit found unpinned: each test fails when its comparison, filter or
key is changed the way the audit changed it (2026-11-25; the code was right, the tests silent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketcast.evaluation.backtest import BacktestConfig, run_backtest
from marketcast.evaluation.scoring import check_probabilities, reliability_curve
from marketcast.evaluation.staking import decide_stakes, stake_fractions
from marketcast.labels.football import asian_handicap_profit, profit_matrix
from marketcast.splits.purged import check_purged
from marketcast.splits.walk_forward import LeakageError, WalkForwardSplit, check_no_leakage

FLAT = BacktestConfig(staking="flat", n_bootstrap=0)


def _utc(*times: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(times), utc=True))


# --------------------------------------------------------------------------- scoring


def test_a_negative_probability_is_refused_whatever_its_size() -> None:
    with pytest.raises(ValueError, match=r"p row 0: probabilities must be in \[0, 1\]"):
        check_probabilities([[-0.2, 0.6, 0.6]])


def test_reliability_leaves_out_rows_that_are_not_numbers() -> None:
    """The curve's promise: a NaN forecast is no forecast, counted in no bin."""
    curve = reliability_curve([0, 1], [[np.nan, np.nan], [0.2, 0.8]], n_bins=2)
    assert curve[0]["n"].tolist() == [1.0, 0.0]  # the second row alone
    assert curve[1]["n"].tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------- staking


def test_odds_of_exactly_one_are_no_price() -> None:
    """Odds of 1 return the stake and nothing more: no outcome is priced, so no bet."""
    chosen, fraction, _ = stake_fractions([[1.0, 0.0]], [[1.0, 5.0]], rule="flat", min_edge=0.0)
    assert (chosen.tolist(), fraction.tolist()) == ([-1], [0.0])
    decision = decide_stakes([[1.0, 0.0]], [[1.0, float("nan")]], rule="flat", min_edge=0.0)[0]
    assert decision.reason == "no bet: no priced outcome"


# --------------------------------------------------------------------------- backtest


def test_bets_without_a_kick_off_time_settle_last() -> None:
    result = run_backtest(
        [[0.6, 0.4], [0.6, 0.4]],
        [[2.0, 2.0], [2.0, 2.0]],
        [[-1.0, 1.0], [1.0, -1.0]],
        kickoff_utc=[pd.NaT, pd.Timestamp("2023-08-12 15:00", tz="UTC")],
        config=FLAT,
    )
    assert result.bets["row"].tolist() == [1, 0]
    assert result.bets["cumulative_profit"].tolist() == [1.0, 0.0]
    assert result.to_dict()["lowest_bankroll_units"] == 100.0


def test_a_closing_price_with_a_missing_outcome_is_no_closing_price() -> None:
    result = run_backtest(
        [[0.6, 0.4]], [[2.0, 2.0]], [[1.0, -1.0]], closing_probs=[[0.55, np.nan]], config=FLAT
    ).to_dict()
    assert result["clv"] is None or np.isnan(result["clv"])
    assert result["n_bets_without_closing"] == 1


def test_a_bankroll_that_lands_on_zero_ran_out() -> None:
    config = BacktestConfig(staking="flat", n_bootstrap=0, bankroll_units=1.0)
    result = run_backtest([[0.6, 0.4]], [[2.0, 2.0]], [[-1.0, 1.0]], config=config).to_dict()
    assert result["lowest_bankroll_units"] == 0.0
    assert result["bankroll_exhausted"] is True


# --------------------------------------------------------------------------- settlement


def test_a_missing_price_gives_no_profit_whatever_the_result() -> None:
    np.testing.assert_array_equal(
        asian_handicap_profit([-1.0, -0.5, 0.0, 1.0], np.nan), [np.nan] * 4
    )
    np.testing.assert_array_equal(
        profit_matrix("1x2", [[2.0, np.nan, 4.0]], [1], [0]), [[1.0, np.nan, -1.0]]
    )


# --------------------------------------------------------------------------- splits


def test_a_training_label_must_resolve_strictly_before_the_purge_limit() -> None:
    decided = _utc("2024-01-01 00:00", "2024-01-02 00:00")
    ends = _utc("2024-01-01 23:00", "2024-01-02 01:00")
    with pytest.raises(LeakageError, match="a training label resolves at 2024-01-01 23:00"):
        check_purged(decided, ends, [0], [1], pd.Timedelta(hours=1))
    check_purged(decided, ends, [0], [1], pd.Timedelta(minutes=59))  # a minute earlier: fine


def test_a_training_label_that_never_resolves_is_leakage() -> None:
    decided = _utc("2024-01-01 00:00", "2024-01-01 06:00", "2024-01-03 00:00")
    ends = _utc("2024-01-01 01:00", None, "2024-01-03 01:00")
    with pytest.raises(LeakageError, match="a training row has no label end time"):
        check_purged(decided, ends, [0, 1], [2], pd.Timedelta(hours=1))


def test_a_result_not_yet_known_at_the_test_kick_off_is_leakage() -> None:
    kickoffs = pd.DatetimeIndex(pd.to_datetime(["2024-01-06 21:00", "2024-01-06 23:00"], utc=True))
    with pytest.raises(LeakageError, match="its result, known 0 days 03:00:00 later"):
        check_no_leakage(kickoffs, [0], [1], min_gap=pd.Timedelta(hours=3))
    check_no_leakage(kickoffs, [0], [1], min_gap=pd.Timedelta(hours=2))  # known by then


def test_a_kick_off_on_a_step_boundary_is_in_the_later_step_only() -> None:
    kickoffs = _utc("2024-01-01 15:00", "2024-01-08 15:00", "2024-01-15 00:00")
    steps = list(WalkForwardSplit(7).split(kickoffs, [False, True, True]))
    assert [s.test_index.tolist() for s in steps] == [[1], [2]]


def test_steps_start_at_midnight_utc() -> None:
    """A match at 22:00 the evening before the first test match is not known at 00:00."""
    kickoffs = _utc("2024-03-07 22:00", "2024-03-08 01:30")
    [step] = WalkForwardSplit(7).split(kickoffs, [False, True])
    assert str(step.start_utc) == "2024-03-08 00:00:00+00:00"
    assert (step.train_index.tolist(), step.test_index.tolist()) == ([], [1])
