"""LightGBM boosted from the market: it starts at the price and learns only what the price lacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import poisson

from marketcast.datasets.football_data import FootballData
from marketcast.evaluation.scoring import log_loss
from marketcast.features.football import (
    OPTIONAL_FEATURE_GROUPS,
    build_features,
    closing_probabilities,
    closing_targets,
    prematch_probabilities,
)
from marketcast.models.base import (
    MIN_CLOSING_ROWS,
    fit_football_model,
    market_labels,
    soft_log_loss,
)
from marketcast.models.factory import load_model
from marketcast.models.gbm import (
    LightGBMModel,
    _as_raw,
    _soft_log_loss_objective,
)
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
    X, goals, _ = _synthetic_with_truth(n, seed, market_knows_signal=market_knows_signal)
    return X, goals


def _synthetic_with_truth(
    n: int, seed: int, *, market_knows_signal: bool
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Features, goals, and the true 1X2 probabilities the goals were drawn from."""
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
    return X, goals, _one_x_two(lam, mu)


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


@pytest.mark.parametrize(
    ("n_rows", "params"),
    [
        (400, {}),  # fewer than 2 x min_child_samples (300): no leaf can split
        (1000, {"min_child_samples": 20}),  # 150 validation rows: too few to judge trees
        (400, {"min_child_samples": 300, "early_stopping_rounds": 0}),
    ],
)
def test_too_few_rows_keep_the_market_price_instead_of_failing(
    n_rows: int, params: dict[str, int], caplog: pytest.LogCaptureFixture
) -> None:
    """One season of history (the league's first in the data) must not crash the fit."""
    X, y = _synthetic(n_rows, 4, market_knows_signal=False)
    with caplog.at_level("INFO", logger="marketcast.models.gbm"):
        model = LightGBMModel(**{**FAST, **params}).fit(X, y)
    assert model.boosters_ == {"1x2": None, "ou25": None}
    assert "too few to fit and validate trees" in caplog.text
    market_p = X[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    np.testing.assert_allclose(model.predict_proba(X), market_p, atol=1e-6)


def test_enough_rows_without_early_stopping_still_grow_trees() -> None:
    X, y = _synthetic(1000, 5, market_knows_signal=False)
    params = {**FAST, "min_child_samples": 20, "early_stopping_rounds": 0, "n_estimators": 30}
    model = LightGBMModel(**params).fit(X, y)
    assert model.boosters_["1x2"] is not None
    assert model.best_iteration_["1x2"] == 30


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


def _kl(truth: np.ndarray, p: np.ndarray) -> float:
    return float((truth * np.log(truth / p)).sum(axis=1).mean())


def test_closing_target_learns_the_price_move_and_beats_results_on_few_rows() -> None:
    # The pre-match price misses a signal the closing price has: a model trained on the closing
    # line learns the move from far fewer matches than one trained on the noisy results.
    X, y, truth = _synthetic_with_truth(4000, 11, market_knows_signal=False)
    train, test = np.arange(3000), np.arange(3000, 4000)
    closing = {"1x2": truth, "ou25": np.full((4000, 2), np.nan)}
    params = {**FAST, "n_estimators": 400}
    by_target = {
        target: fit_football_model(
            LightGBMModel(**params, target=target),
            X.iloc[train],
            y[train],
            {m: c[train] for m, c in closing.items()},
        )
        for target in ("result", "closing")
    }
    fitted = by_target["closing"]
    assert fitted.target_used_ == {"1x2": "closing", "ou25": "result"}
    assert fitted.n_training_rows_["1x2"] == 3000
    market = X[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()[test]
    kl = {t: _kl(truth[test], m.predict_proba(X.iloc[test])) for t, m in by_target.items()}
    assert kl["closing"] < 0.5 * _kl(truth[test], market)
    assert kl["closing"] < 0.7 * kl["result"]


def test_closing_target_equal_to_the_price_adds_nothing() -> None:
    X, y = _synthetic(3000, 4, market_knows_signal=True)
    market = X[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    model = LightGBMModel(**{**FAST, "markets": ("1x2",)}, target="closing")
    model.fit(X, y, closing={"1x2": market})
    np.testing.assert_allclose(model.predict_proba(X), market, atol=2e-3)


def test_closing_target_without_prices_is_a_clear_error_and_few_prices_fall_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    X, y = _synthetic(2000, 5, market_knows_signal=True)
    model = LightGBMModel(**FAST, target="closing")
    with pytest.raises(ValueError, match="closing"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="closing_targets"):
        fit_football_model(model, X, y, None)
    with pytest.raises(ValueError, match="target must be one of"):
        LightGBMModel(target="odds").fit(X, y)
    sparse = np.full((2000, 3), np.nan)
    sparse[: MIN_CLOSING_ROWS - 1] = 1.0 / 3.0
    with caplog.at_level("INFO", logger="marketcast.models.base"):
        model.fit(X, y, closing={"1x2": sparse})
    assert model.target_used_["1x2"] == "result"
    assert f"lightgbm 1x2: {MIN_CLOSING_ROWS - 1} training rows have a closing price" in caplog.text
    assert model.n_training_rows_["1x2"] == 2000
    rebuilt = load_model("lightgbm", model.to_artifact())
    assert rebuilt.target_used_ == model.target_used_
    np.testing.assert_allclose(rebuilt.predict_proba(X), model.predict_proba(X), rtol=1e-9)


@pytest.mark.parametrize("k", [2, 3])
def test_soft_objective_is_the_gradient_of_the_soft_log_loss(k: int) -> None:
    rng = np.random.default_rng(k)
    targets = rng.dirichlet(np.ones(k), size=5)
    preds = rng.normal(size=5) if k == 2 else rng.normal(size=(5, k))  # LightGBM's raw shapes
    weights = rng.uniform(0.2, 1.0, size=5)  # a quarter line's half result weighs 0.5
    grad, hess = _soft_log_loss_objective(targets, k, weights)(preds, None)

    def row_loss(p: np.ndarray, i: int) -> float:
        return weights[i] * soft_log_loss(_as_raw(p, k)[i : i + 1], targets[i : i + 1])

    numeric = np.zeros_like(preds)
    for index in np.ndindex(preds.shape):
        up, down = preds.copy(), preds.copy()
        up[index] += 1e-6
        down[index] -= 1e-6
        numeric[index] = (row_loss(up, index[0]) - row_loss(down, index[0])) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-6)
    assert np.all(hess > 0)


def test_closing_targets_keep_a_handicap_row_only_at_the_pre_match_line(epl: FootballData) -> None:
    targets = closing_targets(epl)
    assert set(targets) == {"1x2", "ou25", "ah"}
    np.testing.assert_array_equal(
        targets["1x2"], closing_probabilities(epl, MarketKind.ONE_X_TWO)[0]
    )
    closing, closing_line = closing_probabilities(epl, MarketKind.ASIAN_HANDICAP)
    _, prematch_line = prematch_probabilities(epl, MarketKind.ASIAN_HANDICAP)
    same = closing_line == prematch_line
    assert 0 < same.sum() < len(same)  # the fixture has lines that moved and lines that did not
    np.testing.assert_array_equal(targets["ah"][same], closing[same])
    assert np.isnan(targets["ah"][~same]).all()
