"""What an audit of de-margining, settlement and the football features found (2026-11-24):

- a match without a result (NaN goals: a fixture not yet played, passed in by a caller) read as
  a 0-point loss in form and in the price residuals; it now adds nothing (the loader drops such
  rows, so the pipeline's figures do not move);
- the power method's Newton solver stopped far from the root on a booksum of 0.02 or less.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

from marketcast import margins
from marketcast.datasets.football_data import FootballData, load_football
from marketcast.features.football import build_features
from marketcast.margins import implied_probabilities, power_k


@pytest.fixture(scope="module")
def data() -> FootballData:
    """One season of one league from the bundle (E0 2021-22, 380 matches)."""
    bundled = load_football(None)
    keep = (bundled.matches["league"] == "E0") & (bundled.matches["season"] == "2021-2022")
    matches = bundled.matches.loc[keep.to_numpy()].reset_index(drop=True)
    odds = bundled.odds.loc[bundled.odds["match_id"].isin(matches["match_id"])]
    return dataclasses.replace(bundled, matches=matches, odds=odds.reset_index(drop=True))


def _without_result(data: FootballData, row: int) -> FootballData:
    matches = data.matches.astype({"home_goals": float, "away_goals": float})
    matches.loc[matches.index[row], ["home_goals", "away_goals"]] = np.nan
    return dataclasses.replace(data, matches=matches)


def _dropped(data: FootballData, row: int) -> FootballData:
    matches = data.matches.drop(index=data.matches.index[row]).reset_index(drop=True)
    odds = data.odds.loc[data.odds["match_id"].isin(matches["match_id"])]
    return dataclasses.replace(data, matches=matches, odds=odds.reset_index(drop=True))


def test_an_unplayed_match_is_not_a_loss_in_form_or_residuals(data: FootballData) -> None:
    matches = data.matches.reset_index(drop=True)
    row = len(matches) // 2
    team = matches.at[row, "home_team"]
    later = matches.index[
        (matches.index > row) & ((matches["home_team"] == team) | (matches["away_team"] == team))
    ]
    assert len(later) >= 2
    with_nan = build_features(_without_result(data, row)).reset_index(drop=True)
    # the same history with the row left out entirely: what "adds nothing" means
    dropped = build_features(_dropped(data, row)).reset_index(drop=True)
    kept = [i for i in range(len(matches)) if i != row]
    nxt = later[0]
    side = "home" if matches.at[nxt, "home_team"] == team else "away"
    for column in (f"{side}_form_points", f"{side}_team_price_resid", f"{side}_goals_for_ewm"):
        assert with_nan.at[nxt, column] == pytest.approx(
            dropped.at[kept.index(nxt), column], rel=1e-12
        ), column
    # the league's residuals after that date read the played matches only
    league = [c for c in with_nan.columns if c.startswith("league_resid_")]
    after = [
        i
        for i in kept
        if matches.at[i, "kickoff_utc"].date() > matches.at[row, "kickoff_utc"].date()
    ]
    np.testing.assert_allclose(
        with_nan.loc[after, league].to_numpy(),
        dropped.loc[[kept.index(i) for i in after], league].to_numpy(),
        rtol=1e-12,
    )
    # and with the result known, form differs (the test can tell the cases apart)
    known = build_features(data).reset_index(drop=True)
    assert not np.allclose(
        known.loc[after, league].to_numpy(), with_nan.loc[after, league].to_numpy()
    )


def test_form_points_average_the_last_six_played_matches(data: FootballData) -> None:
    matches = data.matches.reset_index(drop=True)
    team = matches.at[0, "home_team"]
    own = matches.index[(matches["home_team"] == team) | (matches["away_team"] == team)]
    gap = own[7]  # its eighth match has no result
    X = build_features(_without_result(data, int(gap))).reset_index(drop=True)

    def points(i: int) -> float:
        home, away = matches.at[i, "home_goals"], matches.at[i, "away_goals"]
        mine, theirs = (home, away) if matches.at[i, "home_team"] == team else (away, home)
        return 3.0 if mine > theirs else 1.0 if mine == theirs else 0.0

    nxt = own[8]
    played = [points(int(i)) for i in own[:8] if i != gap][-6:]
    side = "home" if matches.at[nxt, "home_team"] == team else "away"
    assert X.at[nxt, f"{side}_form_points"] == pytest.approx(np.mean(played))
    assert not pd.isna(X.at[nxt, f"{side}_form_points"])


@pytest.mark.parametrize(
    "odds",
    [[1000.0, 1000.0, 1000.0], [55.556, 500.0], [60.0, 3.0, 400.0], [2.0, 2.0], [1.5, 4.0, 6.5]],
)
def test_power_k_reaches_the_root_on_any_booksum(odds: list[float]) -> None:
    """Newton on the sum itself stopped far from the root on a booksum of 0.02 or less."""
    inverse = 1.0 / np.asarray(odds)
    root = brentq(lambda k: np.log((inverse**k).sum()), -50.0, 50.0, xtol=1e-15)
    assert float(power_k(np.asarray(odds))) == pytest.approx(root, abs=1e-12)
    probabilities = implied_probabilities(np.asarray(odds), "power")
    np.testing.assert_allclose(probabilities, inverse**root / (inverse**root).sum(), atol=1e-12)


def test_shin_scalar_newton_agrees_with_the_vectorised_bisection() -> None:
    """A served quote solves Shin's z per row by safeguarded Newton (4-6 steps); the many-row
    path keeps the 60-step bisection. The two must agree, from a hair over 1 to a 40% margin,
    with long shots down to 1,000,000."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(3000):
        n = int(rng.integers(2, 6))
        row = rng.dirichlet(np.ones(n) * rng.uniform(0.2, 3.0)) * rng.uniform(1.0 + 1e-9, 1.4)
        rows.append(np.clip(row, 1e-6, 0.9999))
    rows += [np.array([1e-6, 0.5, 0.5000001]), np.array([0.9999, 0.0002]), np.full(5, 0.2 + 1e-12)]
    for inverse in rows:
        served = margins._solve_shin_z_row(inverse.tolist())
        batch = margins._solve_shin_z(np.tile(inverse, (8, 1)), np.ones(8, dtype=bool))[0]
        assert served == pytest.approx(batch, abs=1e-14)
        if inverse.sum() > 1.0:  # else z = 0 and the row is normalised instead
            probabilities = margins._shin_probabilities(inverse[None, :], np.array([served]))
            assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert margins._solve_shin_z_row([0.5, 0.5]) == 0.0  # no overround: no insiders


def test_goal_averages_weigh_played_matches_as_if_an_unplayed_one_were_not_there() -> None:
    """An unplayed match aged every earlier match by one step of decay: 0.885, not 0.942."""
    from marketcast.features.football import EWM_HALFLIFE_MATCHES, team_form_features

    kickoff = pd.date_range("2023-01-07 15:00", periods=4, freq="7D", tz="UTC")
    matches = pd.DataFrame(
        {
            "home_team": ["A"] * 4,
            "away_team": ["B", "C", "D", "E"],
            "kickoff_utc": kickoff,
            "home_goals": [2.0, np.nan, 0.0, np.nan],
            "away_goals": [0.0, np.nan, 1.0, np.nan],
        }
    )
    form = team_form_features(matches)
    decay = 0.5 ** (1 / EWM_HALFLIFE_MATCHES)  # one played match between the two
    assert form.at[3, "home_goals_for_ewm"] == pytest.approx((decay * 2 + 0) / (decay + 1))
    assert form.at[3, "home_goals_against_ewm"] == pytest.approx((decay * 0 + 1) / (decay + 1))
