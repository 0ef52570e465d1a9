"""Audit fixes: Dixon-Coles at the tau > 0 limit, walk-forward kickoff units and result delay."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import approx_fprime

import marketcast.models.dixon_coles as dc
from marketcast.datasets.football_data import load_football
from marketcast.evaluation.walk_forward import walk_forward_predict
from marketcast.models.dixon_coles import (
    MIN_WEIGHT,
    DixonColes,
    _build_fit_data,
    _decay_weights,
    _kickoff_seconds,
    _objective,
    dixon_coles_tau_factors,
)
from marketcast.splits.walk_forward import LeakageError, WalkForwardSplit, check_no_leakage
from marketcast.types import MarketKind

# ----------------------------------------------------------------------------- Dixon-Coles


@pytest.fixture(scope="module")
def bundesliga() -> tuple[pd.DataFrame, np.ndarray]:
    """D1 2016-17 to 2020-21 from the bundle: in December 2020 the fitted rho_D1 (~ -0.24) sits
    on the tau > 0 limit of Bayern's home matches (lambda ~ 4.1, 1 + lambda * rho ~ 0)."""
    matches = load_football(None).matches
    keep = (matches["league"] == "D1") & matches["season"].between("2016-2017", "2020-2021")
    d1 = matches.loc[keep].reset_index(drop=True)
    X = d1[["league", "home_team", "away_team", "kickoff_utc"]]
    return X, d1[["home_goals", "away_goals"]].to_numpy()


def _december_2020_steps(X: pd.DataFrame) -> list:
    kickoff = X["kickoff_utc"]
    test = (kickoff >= pd.Timestamp("2020-11-21", tz="UTC")) & (
        kickoff < pd.Timestamp("2020-12-24", tz="UTC")
    )
    return list(WalkForwardSplit(7).split(kickoff, test.to_numpy()))


def _max_gradient(model: DixonColes, X: pd.DataFrame, goals: np.ndarray) -> float:
    """Largest |d objective / d theta| at the fitted parameters (one league)."""
    kickoff_s = _kickoff_seconds(X["kickoff_utc"])
    w = _decay_weights(kickoff_s, model.half_life_days)
    keep = w >= MIN_WEIGHT
    names = np.concatenate(
        [X["home_team"].to_numpy(dtype=str)[keep], X["away_team"].to_numpy(dtype=str)[keep]]
    )
    teams, codes = np.unique(names, return_inverse=True)
    n = int(keep.sum())
    data = _build_fit_data(
        codes[:n].astype(np.intp),
        codes[n:].astype(np.intp),
        np.zeros(n, dtype=np.intp),
        goals[keep].astype(np.int64),
        w[keep],
        teams.size,
        1,
    )
    assert list(teams) == list(model.teams_)
    theta = np.concatenate(
        [model.attack_, model.defence_, model.intercept_, model.home_advantage_, model.rho_]
    )
    return float(np.abs(_objective(theta, data, model.l2)[1]).max())


def test_warm_and_cold_fits_agree_where_the_tau_limit_binds(bundesliga) -> None:
    """The objective used to be a flat 1e6 past the limit: L-BFGS-B stalled there after 2-8
    iterations, where it stopped depended on the start, and the 2020-12-12 warm refit fell back
    to independent Poisson (1X2 up to 0.062 from the cold fit of the same rows)."""
    X, goals = bundesliga
    warm = DixonColes(warm_start=True)
    smallest_tau = []
    for step in _december_2020_steps(X):
        train_X, train_goals = X.iloc[step.train_index], goals[step.train_index]
        warm.fit(train_X, train_goals)
        cold = DixonColes().fit(train_X, train_goals)
        assert (warm.fit_kind_, warm.converged_) == ("dixon_coles", True), step.start_utc
        assert (cold.fit_kind_, cold.converged_) == ("dixon_coles", True), step.start_utc
        test_X = X.iloc[step.test_index]
        np.testing.assert_allclose(
            warm.predict_proba(test_X), cold.predict_proba(test_X), atol=1e-5, rtol=0
        )
        smallest_tau.append(dixon_coles_tau_factors(*cold._rates(train_X)).min())
    assert min(smallest_tau) < 0.01  # the limit does bind in these weeks
    assert min(smallest_tau) > 0.0


def test_a_fit_reported_converged_is_at_a_stationary_point(bundesliga) -> None:
    """The cold fit of the 2020-12-05 step stopped on scipy's relative-reduction test with a
    gradient of 7e-3 and was reported converged."""
    X, goals = bundesliga
    for step in _december_2020_steps(X):
        train_X, train_goals = X.iloc[step.train_index], goals[step.train_index]
        cold = DixonColes().fit(train_X, train_goals)
        assert cold.converged_
        assert _max_gradient(cold, train_X, train_goals) < 1e-4, step.start_utc


def _simulated(n_teams: int = 10, reps: int = 3, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Every ordered pair plays ``reps`` times, independent Poisson goals, a match a day."""
    rng = np.random.default_rng(seed)
    home, away = np.meshgrid(np.arange(n_teams), np.arange(n_teams), indexing="ij")
    pairs = home != away
    home = np.repeat(home[pairs], reps)
    away = np.repeat(away[pairs], reps)
    strength = rng.normal(0.0, 0.3, n_teams)
    goals = np.stack(
        [
            rng.poisson(np.exp(0.3 + strength[home] - strength[away])),
            rng.poisson(np.exp(0.1 + strength[away] - strength[home])),
        ],
        axis=1,
    )
    kickoff = pd.Timestamp("2020-01-01 15:00", tz="UTC") + pd.to_timedelta(
        np.arange(home.size), unit="D"
    )
    frame = pd.DataFrame(
        {
            "league": "E0",
            "home_team": [f"t{i}" for i in home],
            "away_team": [f"t{i}" for i in away],
            "kickoff_utc": kickoff,
        }
    )
    return frame, goals


def test_an_early_scipy_stop_away_from_the_optimum_is_not_converged(monkeypatch) -> None:
    """scipy's "success" includes a stop on a tiny relative reduction of the objective, which
    happens away from an optimum too (as at the tau limit); converged means stationary."""
    frame, goals = _simulated()
    real_minimize = dc.minimize

    def stops_early(fun, x0, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["options"] = {**kwargs["options"], "ftol": 0.5}
        return real_minimize(fun, x0, **kwargs)

    monkeypatch.setattr(dc, "minimize", stops_early)
    model = DixonColes().fit(frame, goals)
    assert not model.converged_
    assert model.fit_kind_ == "poisson"


def test_a_warm_fit_that_fails_is_retried_from_the_cold_start(monkeypatch) -> None:
    """A failed warm fit fell straight back to independent Poisson, where a cold fit of the
    same rows converges."""
    frame, goals = _simulated()
    warm = DixonColes(warm_start=True).fit(frame.iloc[:-20], goals[:-20])
    real_minimize = dc.minimize
    calls = []

    def first_call_fails(fun, x0, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            kwargs["options"] = {**kwargs["options"], "maxiter": 1}
        return real_minimize(fun, x0, **kwargs)

    monkeypatch.setattr(dc, "minimize", first_call_fails)
    warm.fit(frame, goals)
    monkeypatch.setattr(dc, "minimize", real_minimize)
    cold = DixonColes().fit(frame, goals)
    assert (warm.fit_kind_, warm.converged_) == ("dixon_coles", True)
    np.testing.assert_allclose(warm.predict_proba(frame), cold.predict_proba(frame), atol=1e-6)


def test_the_objective_past_the_tau_limit_is_finite_and_points_back() -> None:
    """Past the limit the objective was a flat 1e6 with a zero gradient, which gave L-BFGS-B no
    direction; now a barrier and its straight continuation give a finite value rising towards
    and past the limit, and a gradient consistent with it that moves rho back."""
    # team 0 scores e^1.6 = 4.95 a match: tau(0, 1) = 1 + 4.95 rho at home, tau(1, 0) away
    home = np.array([0, 1, 2, 0, 1, 2], dtype=np.intp)
    away = np.array([1, 2, 0, 2, 0, 1], dtype=np.intp)
    goals = np.array([[3, 1], [0, 1], [1, 0], [4, 0], [0, 0], [1, 1]], dtype=np.int64)
    data = _build_fit_data(home, away, np.zeros(6, dtype=np.intp), goals, np.ones(6), 3, 1)
    values = []
    for rho in (-0.19, -0.2015, -0.21, -0.25):  # smallest tau 0.06, 0.003, -0.04, -0.24
        theta = np.array([1.2, 0.0, 0.0, 0.0, 0.0, 0.0, 0.4, 0.0, rho])
        value, grad = _objective(theta, data, 1e-3)
        assert np.isfinite(value)
        numeric = approx_fprime(theta, lambda t: _objective(t, data, 1e-3)[0], 1e-9)
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-6 * max(1.0, value))
        assert grad[-1] < 0.0  # raising rho (towards tau > 0) lowers the objective
        values.append(value)
    assert values == sorted(values)
    assert values[-1] > values[-2] + 1.0


# ---------------------------------------------------------------------- walk-forward split


def _kickoffs(unit: str) -> pd.Series:
    """Four weeks of Saturday 15:00 UTC kickoffs, two a day, stored in ``unit``."""
    days = pd.date_range("2021-02-06 15:00", periods=4, freq="7D", tz="UTC")
    return pd.Series(np.repeat(days, 2)).dt.as_unit(unit)


@pytest.mark.parametrize("unit", ["ns", "us", "s"])
def test_walk_forward_steps_do_not_depend_on_the_kickoff_unit(unit: str) -> None:
    """asi8 (the column's unit) was compared with Timestamp.value (ns): with microsecond
    kickoffs, pandas 3's default for ISO text, every step was empty and none was yielded."""
    kickoff = _kickoffs(unit)
    test_mask = np.array([False, False, True, True, True, True, True, True])
    steps = list(WalkForwardSplit(7).split(kickoff, test_mask))
    assert [s.train_index.tolist() for s in steps] == [[0, 1], [0, 1, 2, 3], [0, 1, 2, 3, 4, 5]]
    assert [s.test_index.tolist() for s in steps] == [[2, 3], [4, 5], [6, 7]]
    assert steps[0].start_utc == pd.Timestamp("2021-02-13", tz="UTC")


def test_walk_forward_predict_forecasts_every_row_with_microsecond_kickoffs() -> None:
    frame, goals = _simulated(n_teams=6, reps=2)
    frame = frame.assign(kickoff_utc=frame["kickoff_utc"].dt.as_unit("us"))
    test_mask = np.arange(len(frame)) >= 40
    result = walk_forward_predict(
        frame, goals, test_mask, {"dc": DixonColes()}, (MarketKind.ONE_X_TWO,)
    )
    assert result.n_steps > 0
    assert np.isfinite(result.probabilities["dc"]["1x2"][test_mask]).all()


def test_test_rows_in_no_step_are_an_error() -> None:
    """A test mask whose rows fall in no step used to give zero steps and all-NaN forecasts."""
    kickoff = pd.Series(pd.to_datetime(["2021-02-06 15:00", None, None], utc=True))
    with pytest.raises(ValueError, match="2 of 2 test rows fall in no walk-forward step"):
        WalkForwardSplit(7).split(kickoff, np.array([False, True, True]))


def test_a_match_trains_a_step_only_once_its_result_is_known() -> None:
    """A 23:30 UTC kickoff (result ~01:20) trained the step forecasting a 00:30 kickoff of the
    next day; the features already wait LEAGUE_RESULT_DELAY_HOURS = 3 for a result."""
    kickoff = pd.Series(
        pd.to_datetime(
            ["2021-03-07 20:59", "2021-03-07 21:00", "2021-03-07 23:30", "2021-03-08 00:30"],
            utc=True,
        )
    ).dt.as_unit("ns")  # the unit the loader gives (the unit bug is tested above)
    (step,) = WalkForwardSplit(7).split(kickoff, np.array([False, False, False, True]))
    assert step.start_utc == pd.Timestamp("2021-03-08", tz="UTC")
    assert step.train_index.tolist() == [0, 1]  # 21:00 + 3 h = the step's start: known
    assert step.test_index.tolist() == [3]
    # the 23:30 match trains the next step, once its result is in
    later = pd.concat([kickoff, pd.Series(pd.to_datetime(["2021-03-15 15:00"], utc=True))])
    later = later.dt.as_unit("ns").reset_index(drop=True)
    steps = list(WalkForwardSplit(7).split(later, np.array([False, False, False, True, True])))
    assert steps[1].train_index.tolist() == [0, 1, 2, 3]


def test_the_leakage_check_enforces_the_result_delay() -> None:
    kickoff = pd.DatetimeIndex(pd.to_datetime(["2021-03-07 23:30", "2021-03-08 00:30"], utc=True))
    check_no_leakage(kickoff, np.array([0]), np.array([1]))  # kicked off earlier: fine alone
    with pytest.raises(LeakageError, match="result"):
        check_no_leakage(kickoff, np.array([0]), np.array([1]), min_gap=pd.Timedelta(hours=3))
    check_no_leakage(kickoff, np.array([0]), np.array([1]), min_gap=pd.Timedelta(hours=1))
