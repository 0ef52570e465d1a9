"""LightGBM boosted from the market: it starts at the price and learns only what the price lacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from marketcast.datasets.football_data import FootballData
from marketcast.evaluation.scoring import log_loss
from marketcast.features.football import OPTIONAL_FEATURE_GROUPS, build_features
from marketcast.models.base import market_labels
from marketcast.models.gbm import LightGBMModel
from marketcast.types import MarketKind


def _one_x_two(lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
    goals = np.arange(11)
    ph = poisson.pmf(goals[None, :], lam[:, None])
    pa = poisson.pmf(goals[None, :], mu[:, None])
    joint = ph[:, :, None] * pa[:, None, :]
    home = np.tril(np.ones((11, 11)), -1)
    draw = np.eye(11)
    p = np.stack(
        [(joint * home).sum((1, 2)), (joint * draw).sum((1, 2)), (joint * home.T).sum((1, 2))],
        axis=1,
    )
    return p / p.sum(axis=1, keepdims=True)


def _synthetic(n: int, seed: int, *, market_knows_signal: bool) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 0.35, n)
    signal = rng.normal(0, 0.4, n)  # e.g. an injury the price missed
    lam, mu = np.exp(0.3 + strength + signal), np.exp(0.1 - strength - signal)
    goals = np.column_stack([rng.poisson(lam), rng.poisson(mu)])
    seen = signal if market_knows_signal else 0.0
    p_market = _one_x_two(np.exp(0.3 + strength + seen), np.exp(0.1 - strength - seen))
    total = lam + mu
    p_over = 1 - poisson.cdf(2, total)
    X = pd.DataFrame(
        {
            "match_id": [f"m{i}" for i in range(n)],
            "league": rng.choice(["E0", "D1"], n),
            "season": "2021-2022",
            "kickoff_utc": pd.Timestamp("2015-01-01", tz="UTC")
            + pd.to_timedelta(np.arange(n) * 6, "h"),
            "home_team": "a",
            "away_team": "b",
            "mkt_1x2_home": p_market[:, 0],
            "mkt_1x2_draw": p_market[:, 1],
            "mkt_1x2_away": p_market[:, 2],
            "mkt_ou25_over": p_over,
            "mkt_ou25_under": 1 - p_over,
            "mkt_ah_home": 0.5,
            "mkt_ah_away": 0.5,
            "ah_line": -0.5,
            "signal": signal,
            "noise": rng.normal(size=n),
        }
    )
    return X, goals


FAST = {
    "n_estimators": 150,
    "learning_rate": 0.05,
    "early_stopping_rounds": 20,
    "markets": ("1x2", "ou25"),
}


def test_learns_what_the_price_lacks() -> None:
    X, y = _synthetic(8000, 0, market_knows_signal=False)
    train, test = slice(0, 6000), slice(6000, None)
    model = LightGBMModel(**FAST).fit(X.iloc[train], y[train])
    labels = market_labels(MarketKind.ONE_X_TWO, X.iloc[test], y[test])
    market_ll = log_loss(
        labels, X.iloc[test][["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    )
    model_ll = log_loss(labels, model.predict_proba(X.iloc[test]))
    assert model.best_iteration_["1x2"] > 0
    assert model_ll < market_ll - 0.01


def test_stays_at_the_price_when_the_price_knows_everything() -> None:
    X, y = _synthetic(8000, 1, market_knows_signal=True)
    train, test = slice(0, 6000), slice(6000, None)
    model = LightGBMModel(**FAST).fit(X.iloc[train], y[train])
    labels = market_labels(MarketKind.ONE_X_TWO, X.iloc[test], y[test])
    market_p = X.iloc[test][["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    model_p = model.predict_proba(X.iloc[test])
    assert log_loss(labels, model_p) < log_loss(labels, market_p) + 0.003
    assert np.abs(model_p - market_p).mean() < 0.02


def test_zero_trees_means_exactly_the_market_prior() -> None:
    X, y = _synthetic(3000, 2, market_knows_signal=True)
    model = LightGBMModel(**{**FAST, "n_estimators": 1, "early_stopping_rounds": 1})
    model.fit(X, y)
    model.boosters_["1x2"] = None  # what fit stores when no tree helps on validation
    model.temperature_["1x2"] = 1.0
    market_p = X[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    np.testing.assert_allclose(
        model.predict_proba(X), market_p / market_p.sum(1, keepdims=True), atol=1e-6
    )


def test_missing_feature_column_is_a_clear_error() -> None:
    X, y = _synthetic(1500, 3, market_knows_signal=True)
    model = LightGBMModel(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="signal"):
        model.predict_proba(X.drop(columns="signal"))


def test_optional_feature_groups_reach_the_booster(epl: FootballData) -> None:
    X = build_features(epl, groups=OPTIONAL_FEATURE_GROUPS)
    y = epl.matches[["home_goals", "away_goals"]].to_numpy()
    train = (epl.matches["season"] != "2021-2022").to_numpy()
    model = LightGBMModel(markets=("1x2",), n_estimators=30, n_jobs=1).fit(X[train], y[train])
    assert {"home_xg_for_ewm", "away_sot_share", "xg_diff_ewm", "xm_draw_gap"} <= set(
        model.feature_names_
    )
    p = model.predict_proba(X[~train])
    assert p.shape == (int((~train).sum()), 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
