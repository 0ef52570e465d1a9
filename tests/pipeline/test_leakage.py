"""A match's closing odds and result never enter its features; every split trains on the past."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from marketcast.datasets.football_data import STAT_COLUMNS, FootballData
from marketcast.evaluation.walk_forward import walk_forward_predict
from marketcast.features.football import (
    OPTIONAL_FEATURE_GROUPS,
    OUTCOME_COLUMNS,
    build_features,
    closing_targets,
)
from marketcast.models.gbm import LightGBMModel
from marketcast.splits.walk_forward import LeakageError, WalkForwardSplit, check_no_leakage
from marketcast.types import MarketKind

CLOSING_MARKERS = ("closing", "close", "psc", "avgc", "maxc", "b365c")
#: The "line_moves" group: earlier matches' moves to the closing line (never a match's own).
LINE_MOVE_COLUMNS = (
    "home_line_move_ewm",
    "away_line_move_ewm",
    "line_move_diff",
    "home_total_move_ewm",
    "away_total_move_ewm",
    "total_move_sum",
)


def _numeric(X: pd.DataFrame) -> pd.DataFrame:
    return X.drop(columns=["match_id", "league", "season", "kickoff_utc", "home_team", "away_team"])


@pytest.fixture(scope="module")
def epl_features_all(epl: FootballData) -> pd.DataFrame:
    """Features with every optional group (shots, cross-market, line moves) and the core set."""
    return build_features(epl, groups=OPTIONAL_FEATURE_GROUPS)


def test_no_outcome_or_closing_column_in_features(epl_features_all: pd.DataFrame) -> None:
    columns = [c.lower() for c in epl_features_all.columns]
    assert not (set(OUTCOME_COLUMNS) | set(STAT_COLUMNS)) & set(columns)
    assert not [c for c in columns if any(marker in c for marker in CLOSING_MARKERS)]


def _perturb_closing(epl: FootballData, rows: np.ndarray, seed: int) -> FootballData:
    """``epl`` with every closing quote of the matches ``rows`` moved far (and its lines)."""
    odds = epl.odds.copy()
    closing = (odds["timing"] == "closing") & odds["match_id"].isin(
        epl.matches.loc[rows, "match_id"]
    )
    rng = np.random.default_rng(seed)
    for col in ("odds_0", "odds_1", "odds_2"):
        odds.loc[closing, col] = odds.loc[closing, col] * rng.uniform(1.2, 3.0, closing.sum())
    odds.loc[closing, "line"] = odds.loc[closing, "line"] + 0.25
    return dataclasses.replace(epl, odds=odds)


def test_closing_odds_change_no_feature_but_the_line_moves(
    epl: FootballData, epl_features_all: pd.DataFrame
) -> None:
    perturbed = _numeric(
        build_features(
            _perturb_closing(epl, np.ones(len(epl.matches), dtype=bool), seed=0),
            groups=OPTIONAL_FEATURE_GROUPS,
        )
    )
    expected = _numeric(epl_features_all)
    others = [c for c in expected.columns if c not in LINE_MOVE_COLUMNS]
    pd.testing.assert_frame_equal(perturbed[others], expected[others])
    for column in LINE_MOVE_COLUMNS:  # ...which do read earlier closing prices
        assert not np.allclose(perturbed[column], expected[column], equal_nan=True), column


def test_closing_odds_only_reach_features_of_later_dates(
    epl: FootballData, epl_features_all: pd.DataFrame
) -> None:
    kickoff = epl.matches["kickoff_utc"]
    cutoff = kickoff.iloc[len(kickoff) // 2].normalize()
    perturbed = build_features(
        _perturb_closing(epl, (kickoff >= cutoff).to_numpy(), seed=2),
        groups=OPTIONAL_FEATURE_GROUPS,
    )
    upto = (kickoff < cutoff + pd.Timedelta(days=1)).to_numpy()  # the cutoff's own date too
    pd.testing.assert_frame_equal(_numeric(perturbed)[upto], _numeric(epl_features_all)[upto])
    # ...and the change does reach later matches, so the test can fail.
    for column in LINE_MOVE_COLUMNS:
        assert not np.allclose(
            perturbed.loc[~upto, column], epl_features_all.loc[~upto, column], equal_nan=True
        ), column


def test_a_matchs_own_stats_and_result_never_reach_its_features(
    epl: FootballData, epl_features_all: pd.DataFrame
) -> None:
    matches = epl.matches.copy()
    kickoff = matches["kickoff_utc"]
    day = kickoff.iloc[len(matches) // 2].normalize()
    today = ((kickoff >= day) & (kickoff < day + pd.Timedelta(days=1))).to_numpy()
    assert today.sum() >= 2
    rng = np.random.default_rng(1)
    for col in STAT_COLUMNS:
        matches.loc[today, col] = rng.integers(0, 30, today.sum()).astype(float)
    matches.loc[today, "home_goals"] = matches.loc[today, "home_goals"] + 4
    perturbed = build_features(
        dataclasses.replace(epl, matches=matches), groups=OPTIONAL_FEATURE_GROUPS
    )
    upto = (kickoff < day + pd.Timedelta(days=1)).to_numpy()
    pd.testing.assert_frame_equal(_numeric(perturbed)[upto], _numeric(epl_features_all)[upto])
    # ...and it does reach the teams' later matches, so the test can fail.
    teams = set(matches.loc[today, "home_team"])
    later = ~upto & matches["home_team"].isin(teams).to_numpy()
    for column in ("home_sot_for_ewm", "home_xg_for_ewm", "home_finishing_resid_ewm"):
        assert not np.allclose(
            perturbed.loc[later, column].to_numpy(), epl_features_all.loc[later, column].to_numpy()
        ), column


def test_results_only_reach_features_of_later_dates(
    epl: FootballData, epl_features: pd.DataFrame
) -> None:
    matches = epl.matches.copy()
    cutoff = matches["kickoff_utc"].iloc[len(matches) // 2].normalize()
    later = matches["kickoff_utc"] >= cutoff
    matches.loc[later, "home_goals"] = matches.loc[later, "away_goals"] + 3
    perturbed = build_features(dataclasses.replace(epl, matches=matches))
    upto = (matches["kickoff_utc"] < cutoff + pd.Timedelta(days=1)).to_numpy()
    same_day_or_before = _numeric(perturbed)[upto]
    pd.testing.assert_frame_equal(same_day_or_before, _numeric(epl_features)[upto])
    # ...and the change does reach later matches, so the test can fail.
    after = ~upto
    assert not np.allclose(
        perturbed.loc[after, "elo_home"].to_numpy(), epl_features.loc[after, "elo_home"].to_numpy()
    )


def test_every_walk_forward_step_trains_strictly_before_it_tests(epl: FootballData) -> None:
    kickoff = epl.matches["kickoff_utc"]
    test_mask = (epl.matches["season"] == "2021-2022").to_numpy()
    steps = list(WalkForwardSplit(7).split(kickoff, test_mask))
    assert len(steps) > 30
    seen = np.concatenate([s.test_index for s in steps])
    assert sorted(seen.tolist()) == np.flatnonzero(test_mask).tolist()
    for step in steps:
        assert kickoff.iloc[step.train_index].max() < kickoff.iloc[step.test_index].min()
        assert (kickoff.iloc[step.test_index] >= step.start_utc).all()
        assert (kickoff.iloc[step.test_index] < step.end_utc).all()


def test_leakage_check_raises_on_overlap() -> None:
    kickoff = pd.DatetimeIndex(pd.to_datetime(["2024-01-01", "2024-01-08", "2024-01-08"], utc=True))
    with pytest.raises(LeakageError, match="not before"):
        check_no_leakage(kickoff, np.array([0, 1]), np.array([2]))


def test_a_closing_price_only_trains_forecasts_of_later_steps(
    epl: FootballData, epl_features: pd.DataFrame
) -> None:
    # LightGBM learning the closing line gets closing prices as a training target; a forecast
    # must never see the closing price of its own match or of any match not yet kicked off.
    kickoff = epl.matches["kickoff_utc"]
    test_mask = (epl.matches["season"] == "2021-2022").to_numpy()
    cutoff = kickoff[test_mask].iloc[test_mask.sum() // 2]
    y = epl.matches[["home_goals", "away_goals"]].to_numpy()
    closing = closing_targets(epl, (MarketKind.ONE_X_TWO,))
    moved = {"1x2": closing["1x2"].copy()}
    later = (kickoff >= cutoff).to_numpy()
    moved["1x2"][later] = moved["1x2"][later][:, ::-1]  # home and away prices swapped

    def forecasts(targets: dict[str, np.ndarray]) -> np.ndarray:
        # a short history holds no validation slice: grow a fixed number of trees
        model = LightGBMModel(
            markets=("1x2",),
            target="closing",
            n_estimators=60,
            early_stopping_rounds=0,
            min_child_samples=50,
            n_jobs=1,
        )
        run = walk_forward_predict(
            epl_features,
            y,
            test_mask,
            {"lightgbm": model},
            (MarketKind.ONE_X_TWO,),
            retrain_every_steps={"lightgbm": 1},
            closing=targets,
        )
        return run.probabilities["lightgbm"]["1x2"]

    before, after = forecasts(closing), forecasts(moved)
    steps = list(WalkForwardSplit(7).split(kickoff, test_mask))
    untouched = [s for s in steps if kickoff.iloc[s.train_index].max() < cutoff]
    touched = [s for s in steps if kickoff.iloc[s.train_index].max() >= cutoff]
    assert untouched
    assert touched
    for step in untouched:  # trained before the moved prices: not one forecast changes
        np.testing.assert_array_equal(after[step.test_index], before[step.test_index])
    # ...and the moved prices do train the forecasts of later weeks, so the test can fail.
    rows = np.concatenate([s.test_index for s in touched])
    assert np.abs(after[rows] - before[rows]).max() > 1e-3
