"""EloModel: ordered-logit gradient, parameter recovery, markets, artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from sklearn.base import clone

from marketcast.models.elo import EloModel, _negative_log_likelihood, ordered_logit_proba
from marketcast.types import MarketKind


def simulate(n: int, seed: int, coef: float = 0.6, cuts: tuple[float, float] = (-1.0, 0.2)):
    rng = np.random.default_rng(seed)
    diff = rng.normal(0, 150, n)
    pi_gd = rng.normal(0, 0.5, n)
    proba = ordered_logit_proba(coef * diff / 100, *cuts)
    outcome = (rng.random(n)[:, None] > proba.cumsum(axis=1)).sum(axis=1)
    goals = np.array([[1, 0], [1, 1], [0, 1]])[outcome]
    x = pd.DataFrame(
        {"elo_home": 1500 + diff / 2, "elo_away": 1500 - diff / 2, "pi_expected_gd": pi_gd}
    )
    return x, goals, outcome


def test_gradient_matches_finite_differences() -> None:
    x, _, outcome = simulate(500, seed=0)
    design = np.stack(
        [((x.elo_home - x.elo_away) / 100).to_numpy(), x.pi_expected_gd.to_numpy()], axis=1
    )
    params = np.array([0.4, -0.2, -0.8, 0.1])
    err = check_grad(
        lambda p: _negative_log_likelihood(p, design, outcome)[0],
        lambda p: _negative_log_likelihood(p, design, outcome)[1],
        params,
    )
    assert err < 1e-6


def test_recovers_coefficient_and_cut_points() -> None:
    x, goals, _ = simulate(20_000, seed=1)
    model = EloModel().fit(x, goals)
    assert model.converged_
    assert model.coef_[0] == pytest.approx(0.6, abs=0.05)
    assert model.cut_away_ == pytest.approx(-1.0, abs=0.05)
    assert model.cut_draw_ == pytest.approx(0.2, abs=0.05)


def test_probabilities_valid_and_monotone_in_rating_gap() -> None:
    x, goals, _ = simulate(3000, seed=2)
    model = EloModel().fit(x, goals)
    grid = pd.DataFrame({"elo_home": [1300.0, 1500.0, 1700.0], "elo_away": [1500.0] * 3})
    p = model.predict_proba(grid)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert (p > 0).all()
    assert p[0, 0] < p[1, 0] < p[2, 0]
    assert p[0, 2] > p[1, 2] > p[2, 2]
    np.testing.assert_allclose(model.predict_market_proba(grid, MarketKind.ONE_X_TWO), p)
    assert model.predict_market_proba(grid, MarketKind.OVER_UNDER_25) is None
    assert model.predict_market_proba(grid, MarketKind.ASIAN_HANDICAP) is None


def test_use_pi_adds_a_coefficient_and_ignores_an_uninformative_one() -> None:
    x, goals, _ = simulate(20_000, seed=3)
    model = EloModel(use_pi=True).fit(x, goals)
    assert model.coef_.shape == (2,)
    assert abs(model.coef_[1]) < 0.1  # pi_expected_gd is noise in this simulation
    with pytest.raises(ValueError, match=r"feature frame lacks columns \['pi_expected_gd'\]"):
        model.predict_proba(x.drop(columns="pi_expected_gd"))


def test_artifact_round_trip_and_clone() -> None:
    x, goals, _ = simulate(2000, seed=4)
    model = EloModel().fit(x, goals)
    restored = EloModel.from_artifact(model.to_artifact())
    np.testing.assert_allclose(restored.predict_proba(x), model.predict_proba(x))
    fresh = clone(model)
    assert not [k for k in vars(fresh) if k.endswith("_")]
    with pytest.raises(ValueError, match="not fitted"):
        fresh.predict_proba(x)
