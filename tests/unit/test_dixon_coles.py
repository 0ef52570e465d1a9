"""Dixon-Coles: recovery, analytic gradient, market maths, fallback, warm start, priors."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime
from scipy.stats import poisson
from sklearn.base import clone

from marketcast.models.dixon_coles import (
    RHO_BOUND,
    DixonColes,
    _build_fit_data,
    _objective,
    asian_handicap_proba,
    dixon_coles_score_matrix,
    outcome_1x2_proba,
    over_under_proba,
)
from marketcast.types import MarketKind

KICKOFF = pd.Timestamp("2020-01-01 15:00", tz="UTC")


def simulate(
    attack: np.ndarray,
    defence: np.ndarray,
    *,
    home: float,
    rho: float,
    intercept: float,
    reps: int,
    seed: int,
    league: str = "E0",
    days_apart: float = 0.0,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Every ordered pair plays ``reps`` times; scores drawn from the DC score matrix."""
    rng = np.random.default_rng(seed)
    n_teams = attack.size
    h, a = np.meshgrid(np.arange(n_teams), np.arange(n_teams), indexing="ij")
    mask = h != a
    h = np.repeat(h[mask], reps)
    a = np.repeat(a[mask], reps)
    lam = np.exp(intercept + home + attack[h] + defence[a])
    mu = np.exp(intercept + attack[a] + defence[h])
    mat, _ = dixon_coles_score_matrix(lam, mu, np.full(h.size, rho), 10)
    cdf = mat.reshape(h.size, -1).cumsum(axis=1)
    cell = (cdf < rng.random(h.size)[:, None]).sum(axis=1).clip(max=120)
    goals = np.stack([cell // 11, cell % 11], axis=1)
    kickoff = KICKOFF + pd.to_timedelta(np.arange(h.size) * days_apart, unit="D")
    frame = pd.DataFrame(
        {
            "league": league,
            "home_team": [f"{league}_t{i}" for i in h],
            "away_team": [f"{league}_t{i}" for i in a],
            "kickoff_utc": kickoff,
        }
    )
    return frame, goals


@pytest.fixture(scope="module")
def sim() -> tuple[pd.DataFrame, np.ndarray, dict[str, np.ndarray | float]]:
    rng = np.random.default_rng(7)
    attack = rng.normal(0, 0.3, 16)
    defence = rng.normal(0, 0.3, 16)
    attack -= attack.mean()
    defence -= defence.mean()
    truth = {"attack": attack, "defence": defence, "home": 0.3, "rho": -0.12, "intercept": 0.1}
    frame, goals = simulate(attack, defence, home=0.3, rho=-0.12, intercept=0.1, reps=16, seed=3)
    return frame, goals, truth


@pytest.fixture(scope="module")
def fitted(sim: tuple) -> DixonColes:
    frame, goals, _ = sim
    return DixonColes(half_life_days=1e6, l2=1e-6).fit(frame, goals)


def test_recovers_simulated_parameters(sim: tuple, fitted: DixonColes) -> None:
    _, _, truth = sim
    order = np.argsort([int(t.split("_t")[1]) for t in fitted.teams_])
    attack = fitted.attack_[order] - fitted.attack_.mean()
    defence = fitted.defence_[order] - fitted.defence_.mean()
    assert fitted.converged_
    assert fitted.fit_kind_ == "dixon_coles"
    assert np.max(np.abs(attack - truth["attack"])) < 0.12
    assert np.max(np.abs(defence - truth["defence"])) < 0.12
    assert np.corrcoef(attack, truth["attack"])[0, 1] > 0.95
    assert fitted.home_advantage_[0] == pytest.approx(0.3, abs=0.05)
    assert fitted.rho_[0] == pytest.approx(-0.12, abs=0.06)
    base = fitted.intercept_[0] + fitted.attack_.mean() + fitted.defence_.mean()
    assert base == pytest.approx(0.1, abs=0.05)


def test_analytic_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(0)
    n, n_teams, n_leagues = 300, 6, 2
    home = rng.integers(0, n_teams, n)
    away = (home + rng.integers(1, n_teams, n)) % n_teams
    league = rng.integers(0, n_leagues, n)
    goals = rng.poisson(1.2, (n, 2))
    goals[:40] = [[0, 0], [0, 1], [1, 0], [1, 1]] * 10  # plenty of every low-score cell
    w = rng.uniform(0.1, 1.0, n)
    data = _build_fit_data(home, away, league, goals, w, n_teams, n_leagues)
    theta = np.concatenate(
        [rng.normal(0, 0.2, 2 * n_teams), [0.1, 0.05], [0.25, 0.3], [-0.08, 0.05]]
    )
    value, grad = _objective(theta, data, 1e-2)
    numeric = approx_fprime(theta, lambda t: _objective(t, data, 1e-2)[0], 1e-7)
    assert np.isfinite(value)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-7)


def test_score_matrix_rows_sum_to_one_and_apply_tau() -> None:
    lam, mu, rho = np.array([1.4, 0.6]), np.array([1.1, 2.2]), np.array([-0.1, 0.05])
    mat, fallback = dixon_coles_score_matrix(lam, mu, rho, 10)
    assert mat.shape == (2, 11, 11)
    np.testing.assert_allclose(mat.sum(axis=(1, 2)), 1.0, atol=1e-12)
    assert not fallback.any()
    raw = poisson.pmf(np.arange(11), lam[0])[:, None] * poisson.pmf(np.arange(11), mu[0])[None, :]
    raw[0, 0] *= 1 - lam[0] * mu[0] * rho[0]
    raw[0, 1] *= 1 + lam[0] * rho[0]
    raw[1, 0] *= 1 + mu[0] * rho[0]
    raw[1, 1] *= 1 - rho[0]
    np.testing.assert_allclose(mat[0], raw / raw.sum(), rtol=1e-10)


def _direct_two_way(mat: np.ndarray, line: float, kind: str) -> tuple[float, float]:
    """Settle every score cell by hand; quarter lines split the stake over both neighbours, and
    each side's probability is its expected share of the stake won."""
    q = round(line * 4)
    subs = [line - 0.25, line + 0.25] if q % 2 else [line, line]
    gain = lose = 0.0
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            result = 0.0
            for sub in subs:
                margin = (i - j + sub) if kind == "ah" else (i + j - sub)
                result += 0.5 * (1.0 if margin > 0 else -1.0 if margin < 0 else 0.0)
            gain += mat[i, j] * max(result, 0.0)
            lose += mat[i, j] * max(-result, 0.0)
    return gain / (gain + lose), lose / (gain + lose)


@pytest.mark.parametrize("line", [-1.5, -1.0, -0.75, -0.25, 0.0, 0.25, 0.5, 1.0, 1.25])
def test_asian_handicap_matches_direct_summation(line: float) -> None:
    mat, _ = dixon_coles_score_matrix(np.array([1.7]), np.array([0.9]), np.array([-0.1]), 10)
    got = asian_handicap_proba(mat, np.array([line]))[0]
    np.testing.assert_allclose(got, _direct_two_way(mat[0], line, "ah"), rtol=1e-12)
    assert got.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("line", [1.5, 2.0, 2.25, 2.5, 2.75, 3.0])
def test_over_under_matches_direct_summation(line: float) -> None:
    mat, _ = dixon_coles_score_matrix(np.array([1.7]), np.array([0.9]), np.array([-0.1]), 10)
    got = over_under_proba(mat, line)[0]
    np.testing.assert_allclose(got, _direct_two_way(mat[0], line, "ou"), rtol=1e-12)


@pytest.mark.parametrize("on_grid", [1.0, -0.75, 0.5])
def test_a_line_a_rounding_error_off_the_grid_is_priced_as_the_grid_line(on_grid: float) -> None:
    # settlement snaps such a line (2.3 - 1.3 is +1 with its push); the model must price it so
    mat, _ = dixon_coles_score_matrix(np.array([1.4]), np.array([1.1]), np.array([-0.08]), 10)
    for off in (on_grid - 1e-13, on_grid + 1e-13):
        np.testing.assert_array_equal(
            asian_handicap_proba(mat, np.array([off])), asian_handicap_proba(mat, [on_grid])
        )
        np.testing.assert_array_equal(
            over_under_proba(mat, off + 2.0), over_under_proba(mat, on_grid + 2.0)
        )
    assert asian_handicap_proba(mat, np.array([2.3 - 1.3]))[0, 0] == pytest.approx(
        _direct_two_way(mat[0], 1.0, "ah")[0], rel=1e-12
    )


def test_one_x_two_matches_direct_summation() -> None:
    mat, _ = dixon_coles_score_matrix(np.array([1.3]), np.array([1.0]), np.array([-0.05]), 10)
    i, j = np.indices(mat.shape[1:])
    expected = [mat[0][i > j].sum(), mat[0][i == j].sum(), mat[0][i < j].sum()]
    np.testing.assert_allclose(outcome_1x2_proba(mat)[0], expected, rtol=1e-12)


def test_predict_market_proba_shapes_and_lines(sim: tuple, fitted: DixonColes) -> None:
    frame, _, _ = sim
    x = frame.iloc[:5].assign(ah_line=[-0.5, -0.25, 0.0, np.nan, 1.0])
    p1x2 = fitted.predict_market_proba(x, MarketKind.ONE_X_TWO)
    pou = fitted.predict_market_proba(x, MarketKind.OVER_UNDER_25)
    pah = fitted.predict_market_proba(x, MarketKind.ASIAN_HANDICAP)
    assert p1x2.shape == (5, 3)
    assert pou.shape == (5, 2)
    assert pah.shape == (5, 2)
    np.testing.assert_allclose(p1x2.sum(axis=1), 1.0)
    np.testing.assert_allclose(pou.sum(axis=1), 1.0)
    assert np.isnan(pah[3]).all()
    # AH -0.5 home covers exactly when home wins
    np.testing.assert_allclose(pah[0, 0], p1x2[0, 0], rtol=1e-12)
    np.testing.assert_allclose(fitted.predict_proba(x), p1x2)


def test_poisson_fallback_when_tau_goes_negative(sim: tuple, fitted: DixonColes) -> None:
    frame, _, _ = sim
    x = frame.iloc[::37]
    model = DixonColes.from_artifact(fitted.to_artifact())
    model.rho_ = np.array([-0.8])  # tau(0,1) = 1 + lam * rho <= 0 once lam >= 1.25
    goals = model.expected_goals(x)
    invalid = (1 + goals[:, 0] * -0.8 <= 0) | (1 + goals[:, 1] * -0.8 <= 0)
    assert 0 < invalid.sum() < len(x)
    mat = model.score_matrix(x)
    assert model.n_poisson_fallback_ == int(invalid.sum())
    plain, _ = dixon_coles_score_matrix(goals[:, 0], goals[:, 1], np.zeros(len(x)), 10)
    np.testing.assert_allclose(mat[invalid], plain[invalid], rtol=1e-12)
    assert not np.allclose(mat[~invalid], plain[~invalid])
    assert (mat >= 0).all()


def test_failed_fit_falls_back_to_poisson(sim: tuple) -> None:
    frame, goals, _ = sim
    model = DixonColes(max_iter=1).fit(frame, goals)
    assert not model.converged_
    assert model.fit_kind_ == "poisson"
    assert model.rho_[0] == 0.0
    model.predict_proba(frame.iloc[:7])
    assert model.n_poisson_fallback_ == 7


def _warm_fit_before_the_last_40(
    seed: int, sim_seed: int
) -> tuple[pd.DataFrame, np.ndarray, DixonColes]:
    """Simulated matches, and a warm-start model fitted on all but the last 40 of them."""
    rng = np.random.default_rng(seed)
    attack, defence = rng.normal(0, 0.3, 12), rng.normal(0, 0.3, 12)
    frame, goals = simulate(
        attack, defence, home=0.25, rho=-0.1, intercept=0.1, reps=4, seed=sim_seed, days_apart=0.7
    )
    n_old = len(frame) - 40
    return frame, goals, DixonColes(warm_start=True).fit(frame.iloc[:n_old], goals[:n_old])


def test_warm_start_reaches_the_cold_optimum_faster() -> None:
    frame, goals, warm = _warm_fit_before_the_last_40(11, 5)
    warm.fit(frame, goals)
    cold = DixonColes().fit(frame, goals)
    np.testing.assert_allclose(warm.attack_, cold.attack_, atol=2e-4)
    np.testing.assert_allclose(warm.rho_, cold.rho_, atol=2e-4)
    np.testing.assert_allclose(warm.predict_proba(frame), cold.predict_proba(frame), atol=2e-5)
    assert warm.n_iter_ < cold.n_iter_


def test_a_warm_start_at_an_invalid_rho_refits_instead_of_freezing() -> None:
    """A carried-over rho at its bound can make tau <= 0 on the new training set (a new league's
    first weeks did): the objective is flat there, and the warm fit used to stop after 0
    iterations, report convergence and keep last week's parameters for good."""
    frame, goals, warm = _warm_fit_before_the_last_40(12, 6)
    warm.rho_[:] = -RHO_BOUND  # a stored state whose tau is <= 0 for a strong home side
    warm.attack_[0] = 2.0
    warm.fit(frame, goals)
    cold = DixonColes().fit(frame, goals)
    assert warm.n_iter_ > 0
    assert warm.converged_
    np.testing.assert_allclose(warm.predict_proba(frame), cold.predict_proba(frame), atol=2e-5)


def test_unseen_team_gets_the_weak_team_prior(fitted: DixonColes) -> None:
    x = pd.DataFrame(
        {
            "league": ["E0", "E0"],
            "home_team": ["Newcomers FC", "E0_t0"],
            "away_team": ["E0_t1", "Newcomers FC"],
            "kickoff_utc": [KICKOFF, KICKOFF],
        }
    )
    goals = fitted.expected_goals(x)
    t0, t1 = (int(np.flatnonzero(fitted.teams_ == t)[0]) for t in ("E0_t0", "E0_t1"))
    att, dfc = fitted.prior_attack_["E0"], fitted.prior_defence_["E0"]
    base, hfa = fitted.intercept_[0], fitted.home_advantage_[0]
    assert goals[0, 0] == pytest.approx(np.exp(base + hfa + att + fitted.defence_[t1]))
    assert goals[1, 1] == pytest.approx(np.exp(base + att + fitted.defence_[t0]))
    assert att < np.quantile(fitted.attack_, 0.5)
    assert dfc > np.quantile(fitted.defence_, 0.5)
    assert att == pytest.approx(
        fitted.attack_[fitted.attack_ <= np.quantile(fitted.attack_, 0.25)].mean()
    )


def test_two_leagues_share_teams_with_own_home_advantage() -> None:
    rng = np.random.default_rng(2)
    attack, defence = rng.normal(0, 0.3, 10), rng.normal(0, 0.3, 10)
    f0, g0 = simulate(attack, defence, home=0.35, rho=-0.1, intercept=0.1, reps=6, seed=1)
    f1, g1 = simulate(attack, defence, home=0.05, rho=-0.1, intercept=0.1, reps=6, seed=2)
    f1 = f1.assign(league="E1")
    model = DixonColes(half_life_days=1e6).fit(pd.concat([f0, f1]), np.concatenate([g0, g1]))
    assert list(model.leagues_) == ["E0", "E1"]
    assert model.teams_.size == 10  # same team names in both leagues: one strength each
    assert model.home_advantage_[0] - model.home_advantage_[1] == pytest.approx(0.3, abs=0.1)


def test_a_training_match_without_a_kickoff_is_named(sim: tuple) -> None:
    frame, goals, _ = sim
    frame = frame.assign(match_id=[f"E0:{i}" for i in range(len(frame))])
    frame.loc[5, "kickoff_utc"] = pd.NaT  # its age wrapped to a weight of inf: scipy's error
    with pytest.raises(ValueError, match=r"kickoff_utc missing at row 5 \(match 'E0:5'\)"):
        DixonColes().fit(frame, goals)


def test_time_decay_drops_old_matches(sim: tuple) -> None:
    frame, goals, _ = sim
    old = frame.assign(kickoff_utc=KICKOFF - pd.Timedelta(days=2000))
    both = pd.concat([old.iloc[:100], frame])
    model = DixonColes(half_life_days=180).fit(both, np.concatenate([goals[:100], goals]))
    assert model.n_train_ == len(frame)  # weight 2^(-2000/180) < 1e-3


def test_artifact_round_trip_and_sklearn_conventions(sim: tuple, fitted: DixonColes) -> None:
    frame, _, _ = sim
    restored = DixonColes.from_artifact(fitted.to_artifact())
    np.testing.assert_allclose(restored.predict_proba(frame), fitted.predict_proba(frame))
    fresh = clone(fitted)
    assert not [k for k in vars(fresh) if k.endswith("_")]
    assert fresh.get_params() == fitted.get_params()
    with pytest.raises(ValueError, match="not fitted"):
        fresh.predict_proba(frame)


def test_fit_of_2000_matches_is_fast() -> None:
    rng = np.random.default_rng(4)
    attack, defence = rng.normal(0, 0.3, 24), rng.normal(0, 0.3, 24)
    frame, goals = simulate(
        attack, defence, home=0.25, rho=-0.1, intercept=0.1, reps=4, seed=9, days_apart=0.3
    )
    assert 2000 <= len(frame) <= 2300
    model = DixonColes()
    model.fit(frame, goals)
    start = time.perf_counter()
    model.fit(frame, goals)
    assert time.perf_counter() - start < 0.25  # ~10 ms on one core; generous for CI noise


def test_without_the_ridge_a_team_that_never_concedes_is_named(
    sim: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    """With l2=0 its defence has no finite optimum: the fit stopped at -22.9 and called itself
    converged, forecasting a near-certain clean sheet, without a word."""
    frame, goals, _ = sim
    newcomer = pd.DataFrame(
        {"league": ["E0"], "home_team": ["Newco"], "away_team": ["E0_t0"], "kickoff_utc": [KICKOFF]}
    )
    X = pd.concat([frame, newcomer], ignore_index=True)
    y = np.vstack([goals, [[3, 0]]])
    with caplog.at_level("WARNING", logger="marketcast.models.dixon_coles"):
        DixonColes(half_life_days=1e6, l2=0.0).fit(X, y)
    assert "l2=0: Newco never conceded in the fitting window" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="marketcast.models.dixon_coles"):
        ridged = DixonColes(half_life_days=1e6).fit(X, y)
    assert "never conceded" not in caplog.text
    assert ridged.defence_[list(ridged.teams_).index("Newco")] > -5.0


@pytest.mark.parametrize("line", [-1.25, -0.75, -0.25, 0.25, 0.75, -0.5, -1.0])
def test_a_handicap_probability_is_the_de_margined_fair_price(line: float) -> None:
    """On a quarter line a half win counted whole: -0.25 read 0.46 for the home side, where the
    fair price (and so the market model, and the models learning the closing line) read 0.53."""
    from scipy.optimize import brentq

    from marketcast.labels.football import asian_handicap_profit, asian_handicap_result
    from marketcast.margins import implied_probabilities

    mat, _ = dixon_coles_score_matrix(np.array([1.5]), np.array([1.1]), np.array([-0.1]), 10)
    i, j = np.indices(mat[0].shape)
    p, result = mat[0].ravel(), asian_handicap_result((i - j).ravel(), line)

    def fair_odds(side: float) -> float:
        return brentq(lambda o: (p * asian_handicap_profit(side * result, o)).sum(), 1.0001, 1e3)

    price = implied_probabilities([fair_odds(1.0), fair_odds(-1.0)], method="multiplicative")
    np.testing.assert_allclose(asian_handicap_proba(mat, np.array([line]))[0], price, rtol=1e-9)
