"""Elo and Dixon-Coles on tiny or degenerate training sets: finite fits, every class > 0."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

from marketcast.models.dixon_coles import (
    LEAGUE_PRIOR_SD,
    DixonColes,
    _build_fit_data,
    _objective,
)
from marketcast.models.elo import PSEUDO_MATCHES, EloModel, _negative_log_likelihood

KICKOFF = pd.Timestamp("2021-06-01 15:00", tz="UTC")


# ---------------------------------------------------------------------------------------- Elo
@pytest.mark.parametrize(
    ("goals", "seen"), [([0, 1], 2), ([1, 1], 1), ([2, 0], 0)], ids=["away", "draw", "home"]
)
def test_elo_one_match_fits_the_smoothed_shares(goals: list[int], seen: int) -> None:
    """One match at an even rating: the fit is the multinomial with the pseudo-matches added.

    The original fit gave a NaN row after one away win and probabilities of 0 or ~1e-12 after one
    draw or home win.
    """
    x = pd.DataFrame({"elo_home": [1500.0], "elo_away": [1500.0]})
    model = EloModel().fit(x, np.array([goals]))
    expected = np.full(3, PSEUDO_MATCHES / 3.0)
    expected[seen] += 1.0
    expected /= 1.0 + PSEUDO_MATCHES
    assert model.converged_
    np.testing.assert_allclose(model.predict_proba(x)[0], expected, rtol=1e-5)


def test_elo_two_matches_without_a_draw_give_finite_positive_forecasts() -> None:
    """One home and one away win: the start and the forecasts were NaN ([[nan, nan, 0.501]])."""
    x = pd.DataFrame({"elo_home": [1500.0, 1520.0], "elo_away": [1500.0, 1490.0]})
    model = EloModel().fit(x, np.array([[1, 0], [0, 1]]))
    proba = model.predict_proba(x)
    assert model.converged_
    assert np.isfinite([model.cut_away_, model.cut_draw_, *model.coef_]).all()
    assert (proba > 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert proba[0, 0] > 0.5  # the even match was a home win
    assert proba[1, 2] > 0.5  # the other an away win


def test_elo_sixty_draws_leave_home_and_away_possible(epl) -> None:
    """60 real matches, every one 1-1: the original fitted P(home) = P(away) = 0 exactly."""
    features, _ = epl
    x = features.iloc[:60]
    model = EloModel().fit(x, np.ones((60, 2), dtype=int))
    proba = model.predict_proba(features.iloc[:200])
    assert np.isfinite(proba).all()
    assert proba[:, [0, 2]].min() > 1e-6
    assert proba[:, 1].min() > 0.99


def test_elo_non_finite_optimum_raises() -> None:
    """Ratings so extreme that the optimum overflows: an error, not NaN forecasts."""
    x = pd.DataFrame({"elo_home": [1e306, 1500.0, 1500.0], "elo_away": [0.0, 1500.0, 1510.0]})
    with pytest.raises(ValueError, match="non-finite"):
        EloModel().fit(x, np.array([[1, 0], [1, 1], [0, 2]]))


def test_elo_weighted_ridged_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    design = rng.normal(0, 1.5, (40, 2))
    outcome = rng.integers(0, 3, 40).astype(np.intp)
    weight = rng.uniform(0.01, 1.0, 40)
    params = np.array([0.4, -0.2, -0.8, 0.1])

    def value(p: np.ndarray) -> float:
        return _negative_log_likelihood(p, design, outcome, weight, 0.3)[0]

    grad = _negative_log_likelihood(params, design, outcome, weight, 0.3)[1]
    np.testing.assert_allclose(grad, approx_fprime(params, value, 1e-7), rtol=1e-5, atol=1e-7)


# -------------------------------------------------------------------------------- Dixon-Coles
def _with_new_league_match(features: pd.DataFrame, goals: np.ndarray, score: list[int]):
    """The E0 rows plus one X1 match NewA - NewB after them (two unseen teams, new league)."""
    new = features.iloc[[-1]].copy()
    new["league"] = "X1"
    new["home_team"], new["away_team"] = "NewA", "NewB"
    new["match_id"] = "X1:1"
    new["kickoff_utc"] = features["kickoff_utc"].max() + pd.Timedelta(days=1)
    frame = pd.concat([features.astype({"league": str}), new.astype({"league": str})])
    return frame.reset_index(drop=True), np.vstack([goals, [score]])


def test_dc_new_league_after_one_away_win_keeps_a_finite_home_advantage(epl) -> None:
    """The audit's case: X1's home advantage ran to -23 and P(home win) was 0 for every X1 match."""
    features, goals = epl
    frame, y = _with_new_league_match(features, goals, [0, 2])
    model = DixonColes().fit(frame, y)
    x1 = list(model.leagues_).index("X1")
    fixtures = pd.DataFrame(
        {"league": ["X1", "X1"], "home_team": ["NewA", "NewB"], "away_team": ["NewB", "NewA"]}
    )
    proba = model.predict_proba(fixtures)
    assert model.converged_
    assert -2.0 < model.home_advantage_[x1] < 0.5
    assert proba[:, 0].min() > 0.01
    assert proba[1, 0] > proba[0, 0]  # NewB, the winner, is the stronger side at home


def test_dc_new_league_of_goalless_draws_keeps_a_finite_intercept(epl) -> None:
    """Two 0-0 draws in a new league sent its intercept towards -inf (P(0-0) near 1)."""
    features, goals = epl
    frame, y = _with_new_league_match(features, goals, [0, 0])
    second = frame.iloc[[-1]].assign(match_id="X1:2", home_team="NewB", away_team="NewA")
    frame = pd.concat([frame, second], ignore_index=True)
    model = DixonColes().fit(frame, np.vstack([y, [0, 0]]))
    x1 = list(model.leagues_).index("X1")
    assert model.intercept_[x1] > -2.0
    assert model.home_advantage_[x1] > -2.0
    mat = model.score_matrix(frame.iloc[[-1]])
    assert 0.05 < mat[0, 0, 0] < 0.9


def test_dc_league_prior_value_and_gradient() -> None:
    """The prior term equals its closed form, and the analytic gradient matches a numeric one."""
    rng = np.random.default_rng(5)
    n, n_teams, n_leagues = 200, 6, 2
    home = rng.integers(0, n_teams, n)
    away = (home + rng.integers(1, n_teams, n)) % n_teams
    league = rng.integers(0, n_leagues, n)
    goals = rng.poisson(1.3, (n, 2))
    w = rng.uniform(0.1, 1.0, n)
    data = _build_fit_data(home, away, league, goals, w, n_teams, n_leagues)
    no_prior = dataclasses.replace(data, prior_precision=0.0)
    theta = np.concatenate(
        [rng.normal(0, 0.2, 2 * n_teams), [0.9, -0.7], [-1.2, 0.6], [-0.05, 0.04]]
    )
    intercept, home_adv = theta[12:14], theta[14:16]
    pooled_home, pooled_away = np.average(goals, axis=0, weights=w)
    expected = (
        0.5
        / (LEAGUE_PRIOR_SD**2 * w.sum())
        * (
            np.sum((intercept - np.log(pooled_away)) ** 2)
            + np.sum((home_adv - np.log(pooled_home / pooled_away)) ** 2)
        )
    )
    value, grad = _objective(theta, data, 1e-3)
    assert value - _objective(theta, no_prior, 1e-3)[0] == pytest.approx(expected, rel=1e-9)
    numeric = approx_fprime(theta, lambda t: _objective(t, data, 1e-3)[0], 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)
