"""LightGBM keeps the market prior when no tree helps; the leak guard knows football-data names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketcast.datasets.football_data import (
    BOOKMAKER_PREFIXES,
    STAT_SOURCE_COLUMNS,
    FootballData,
    detect_quote_columns,
)
from marketcast.features.football import MARKET_COLUMNS, OPTIONAL_FEATURE_GROUPS, build_features
from marketcast.models.base import check_no_outcome_columns, soft_log_loss
from marketcast.models.gbm import LightGBMModel
from marketcast.types import MarketKind

N_ROWS = 3000
N_VALID = int(N_ROWS * 0.15)  # the default validation_fraction: the latest 450 rows
PRICE = {"1x2": [0.45, 0.27, 0.28], "ou25": [0.52, 0.48]}
MOVED = {  # where the closing price went, by the sign of the feature "x"
    "1x2": ([0.55, 0.24, 0.21], [0.35, 0.30, 0.35]),
    "ou25": ([0.62, 0.38], [0.42, 0.58]),
}


def _frame(market: str, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """One league, a constant pre-match price, and a feature ``x`` the price ignores."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=N_ROWS)
    X = pd.DataFrame(
        {
            "match_id": [f"m{i:05d}" for i in range(N_ROWS)],
            "league": "E0",
            "season": "2021-2022",
            "kickoff_utc": pd.Timestamp("2015-01-01", tz="UTC")
            + pd.to_timedelta(np.arange(N_ROWS) * 6, "h"),
            "home_team": "a",
            "away_team": "b",
            "x": x,
        }
    )
    for column, p in zip(MARKET_COLUMNS[MarketKind(market)], PRICE[market], strict=True):
        X[column] = p
    goals = rng.poisson(1.3, size=(N_ROWS, 2))
    return X, goals, x


def _closing_model(market: str, X: pd.DataFrame, goals: np.ndarray, closing: np.ndarray):
    model = LightGBMModel(markets=(market,), target="closing", n_jobs=1)  # calibrate=True
    return model.fit(X, goals, closing={market: closing})


@pytest.mark.parametrize("market", ["1x2", "ou25"])
def test_no_tree_helps_on_validation_so_the_forecast_is_exactly_the_market(market: str) -> None:
    # The training rows' closing price moved with x, the validation rows' did not move at all:
    # every tree learnt on the training rows can only hurt the validation slice, the first one
    # included (LightGBM's early stopping alone keeps it: its best score starts at +inf).
    X, goals, x = _frame(market)
    closing = np.tile(PRICE[market], (N_ROWS, 1))
    n_train = N_ROWS - N_VALID
    up, down = MOVED[market]
    closing[:n_train] = np.where((x[:n_train] > 0)[:, None], up, down)

    model = _closing_model(market, X, goals, closing)

    assert model.best_iteration_[market] == 0
    assert model.boosters_[market] is None
    assert model.temperature_[market] == 1.0  # no temperature on the prior either
    price = X[list(MARKET_COLUMNS[MarketKind(market)])].to_numpy()
    forecast = model.predict_market_proba(X, MarketKind(market))
    np.testing.assert_allclose(forecast, price, rtol=0, atol=1e-12)
    assert "lightgbm_" + market + ".txt" not in model.to_artifact()


@pytest.mark.parametrize("market", ["1x2", "ou25"])
def test_trees_that_help_on_validation_are_kept(market: str) -> None:
    X, goals, x = _frame(market, seed=1)
    up, down = MOVED[market]
    closing = np.where((x > 0)[:, None], up, down)  # the move holds on validation too

    model = _closing_model(market, X, goals, closing)

    assert model.best_iteration_[market] > 0
    assert model.boosters_[market] is not None
    price = np.log(X[list(MARKET_COLUMNS[MarketKind(market)])].to_numpy())
    forecast = model.predict_market_proba(X, MarketKind(market))
    valid = slice(N_ROWS - N_VALID, None)
    assert soft_log_loss(np.log(forecast[valid]), closing[valid]) < soft_log_loss(
        price[valid], closing[valid]
    )


# -- the leakage guard ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        "PSCH", "B365CH", "AvgCH", "MaxCA", "BbAvCD", "PC>2.5", "AvgC<2.5", "PC_2_5",
        "B365C_2_5_1", "AHCh", "PCAHH", "AvgCAHA", "psch", "avgc>2.5",
    ],
)  # fmt: skip
def test_guard_refuses_football_data_closing_columns(column: str) -> None:
    X = pd.DataFrame({"elo_diff": [0.0], "PSH": [2.0], column: [2.1]})
    with pytest.raises(ValueError, match=f"'{column}' is football-data's closing price") as err:
        check_no_outcome_columns(X)
    assert "yardstick, known only at kick-off" in str(err.value)


@pytest.mark.parametrize(
    "column",
    [
        "HS", "AS", "HST", "AST", "HC", "AC", "HF", "AY", "HR", "Attendance", "hs",
        "home_shots", "away_shots_on_target", "home_corners",
    ],
)  # fmt: skip
def test_guard_refuses_the_match_s_own_statistics(column: str) -> None:
    X = pd.DataFrame({"home_shots_for_ewm": [12.0], column: [10.0]})
    with pytest.raises(ValueError, match=f"'{column}' is a statistic of the match itself"):
        check_no_outcome_columns(X)


@pytest.mark.parametrize("column", ["FTHG", "FTR", "HTAG", "HG", "AG", "Res", "home_goals"])
def test_guard_refuses_the_match_s_result(column: str) -> None:
    with pytest.raises(ValueError, match=f"'{column}' is the match's result"):
        check_no_outcome_columns(pd.DataFrame({column: [1]}))


def test_guard_accepts_pre_match_odds_columns() -> None:
    pre_match = [
        "PSH", "PSD", "PSA", "B365H", "B365D", "B365A", "AvgH", "MaxH", "VCH", "BbMxH",
        "B365>2.5", "B365<2.5", "P>2.5", "Avg<2.5", "B365_2_5", "AHh", "BbAHh", "B365AH",
        "B365AHH", "PAHA", "Referee", "Time",
    ]  # fmt: skip
    check_no_outcome_columns(pd.DataFrame(columns=pre_match))


def test_guard_follows_the_loader_tables() -> None:
    # every closing quote and line the loader reads is refused, every pre-match one accepted
    prefixes = [prefix for prefix, _ in BOOKMAKER_PREFIXES]
    suffixes = ["H", "D", "A", ">2.5", "<2.5", "AHH", "AHA"]
    header = [p + s for p in prefixes for s in suffixes]
    header += [p + "C" + s for p in prefixes for s in suffixes] + ["AHh", "AHCh"]
    specs = detect_quote_columns(header)
    assert {s.timing for s in specs} == {"prematch", "closing"}
    for spec in specs:
        columns = [*spec.columns, *([spec.line_column] if spec.line_column else [])]
        frame = pd.DataFrame(columns=columns)
        if spec.timing == "closing":
            with pytest.raises(ValueError, match="closing price"):
                check_no_outcome_columns(frame)
        else:
            check_no_outcome_columns(frame)
    for source, _ in STAT_SOURCE_COLUMNS:
        with pytest.raises(ValueError, match="statistic of the match itself"):
            check_no_outcome_columns(pd.DataFrame(columns=[source]))


def test_lightgbm_fit_refuses_a_hand_merged_closing_column() -> None:
    X, goals, _ = _frame("1x2")
    X["PSCH"] = 2.1
    with pytest.raises(ValueError, match="'PSCH' is football-data's closing price"):
        LightGBMModel(markets=("1x2",), n_jobs=1).fit(X, goals)


def test_every_pipeline_feature_passes_the_guard(epl_data: FootballData) -> None:
    X = build_features(epl_data, groups=OPTIONAL_FEATURE_GROUPS)
    assert {"mkt_1x2_home", "home_shots_for_ewm", "line_move_diff"} <= set(X.columns)
    check_no_outcome_columns(X)
