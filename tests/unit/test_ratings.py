"""Elo and pi-ratings: strict causality, hand-computed updates, newcomers, seasons, speed."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from marketcast.features.ratings import elo_ratings, pi_ratings


def frame(rows: list[tuple[str, str, str, str, float, float]]) -> pd.DataFrame:
    """Rows of (league, kickoff, home, away, home_goals, away_goals)."""
    out = pd.DataFrame(
        rows,
        columns=["league", "kickoff_utc", "home_team", "away_team", "home_goals", "away_goals"],
    )
    out["kickoff_utc"] = pd.to_datetime(out["kickoff_utc"], utc=True)
    return out


def random_matches(n_dates: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    teams = {"E0": [f"A{i}" for i in range(8)], "E1": [f"B{i}" for i in range(8)]}
    rows = []
    day = pd.Timestamp("2020-08-01 12:00", tz="UTC")
    for d in range(n_dates):
        for league, names in teams.items():
            perm = rng.permutation(names)
            for h, a in zip(perm[:4:2], perm[1:4:2], strict=True):
                hour = pd.Timedelta(hours=int(rng.integers(0, 8)))
                rows.append(
                    (
                        league,
                        day + pd.Timedelta(days=3 * d) + hour,
                        h,
                        a,
                        rng.poisson(1.4),
                        rng.poisson(1.1),
                    )
                )
    return frame(rows)


@pytest.mark.parametrize("rating", [elo_ratings, pi_ratings])
def test_changing_a_result_never_changes_earlier_or_same_day_ratings(rating) -> None:
    matches = random_matches(12, seed=1)
    base = rating(matches)
    target = 20
    day = matches["kickoff_utc"].dt.floor("D")
    changed = matches.copy()
    changed.loc[target, ["home_goals", "away_goals"]] = [7, 0]
    after = rating(changed)
    upto = (day <= day[target]).to_numpy()
    pd.testing.assert_frame_equal(base[upto], after[upto])
    assert not np.allclose(base[~upto].to_numpy(), after[~upto].to_numpy())


def test_same_day_matches_do_not_see_each_other() -> None:
    matches = frame(
        [
            ("E0", "2020-09-01 12:00", "A", "B", 3, 0),
            ("E0", "2020-09-01 19:00", "A", "C", 0, 0),  # A's second match that day
            ("E0", "2020-09-02 15:00", "A", "D", 1, 1),
        ]
    )
    elo = elo_ratings(matches)
    assert elo.loc[1, "elo_home"] == 1500.0
    assert elo.loc[2, "elo_home"] > 1500.0


def test_elo_hand_computed_two_matches() -> None:
    matches = frame(
        [
            ("E0", "2020-09-01 15:00", "A", "B", 2, 0),
            ("E0", "2020-09-08 15:00", "B", "A", 1, 1),
            ("E0", "2020-09-15 15:00", "A", "B", 0, 0),
        ]
    )
    elo = elo_ratings(matches, k=20, home_advantage=60, goal_diff_multiplier=True)
    # match 1: expected 1 / (1 + 10^(-60/400)) = 0.585499, margin 2 -> multiplier 1.5
    step1 = 20 * 1.5 * (1 - 0.5854990)
    assert elo.loc[0].tolist() == [1500.0, 1500.0]
    assert elo.loc[1, "elo_home"] == pytest.approx(1500 - step1, abs=1e-4)  # B at home
    assert elo.loc[1, "elo_away"] == pytest.approx(1500 + step1, abs=1e-4)
    # match 2: B (1487.565) hosts A (1512.435), draw
    expected_b = 1 / (1 + 10 ** ((1512.43503 - 1487.56497 - 60) / 400))
    step2 = 20 * 1.0 * (0.5 - expected_b)
    assert elo.loc[2, "elo_home"] == pytest.approx(1500 + step1 - step2, abs=1e-4)
    assert elo.loc[2, "elo_away"] == pytest.approx(1500 - step1 + step2, abs=1e-4)
    assert elo.loc[2, "elo_home"] == pytest.approx(1513.4427, abs=1e-3)


def test_pi_ratings_hand_computed_update() -> None:
    matches = frame(
        [
            ("E0", "2020-09-01 15:00", "A", "B", 2, 0),
            ("E0", "2020-09-08 15:00", "A", "B", 0, 0),
        ]
    )
    pi = pi_ratings(matches, lambda_=0.035, gamma=0.7)
    assert (pi.loc[0] == 0.0).all()
    # error 2 -> psi = 3 log10(3) = 1.431364; home beat expectation
    psi = 3 * math.log10(3)
    assert pi.loc[1, "pi_home_home"] == pytest.approx(0.035 * psi)
    assert pi.loc[1, "pi_home_away"] == pytest.approx(0.7 * 0.035 * psi)
    assert pi.loc[1, "pi_away_away"] == pytest.approx(-0.035 * psi)
    assert pi.loc[1, "pi_away_home"] == pytest.approx(-0.7 * 0.035 * psi)
    expected_gd = 2 * (10 ** (0.035 * psi / 3) - 1)
    assert pi.loc[1, "pi_expected_gd"] == pytest.approx(expected_gd)
    assert pi.loc[1, "pi_expected_gd"] == pytest.approx(0.07840, abs=1e-4)


def test_unplayed_rows_get_ratings_but_no_update() -> None:
    matches = frame(
        [
            ("E0", "2020-09-01 15:00", "A", "B", np.nan, np.nan),
            ("E0", "2020-09-08 15:00", "A", "B", 1, 0),
        ]
    )
    elo = elo_ratings(matches)
    assert elo.loc[1].tolist() == [1500.0, 1500.0]


def test_output_aligned_to_an_unsorted_input_index() -> None:
    matches = frame(
        [
            ("E0", "2020-09-08 15:00", "A", "B", 1, 1),
            ("E0", "2020-09-01 15:00", "A", "B", 3, 0),
        ]
    ).set_axis([10, 5])
    elo = elo_ratings(matches)
    assert list(elo.index) == [10, 5]
    assert elo.loc[5, "elo_home"] == 1500.0
    assert elo.loc[10, "elo_home"] > 1500.0


def test_newcomer_starts_at_league_lower_quartile_then_learned_offset() -> None:
    rows = [
        ("E1", "2019-08-03 15:00", "A", "B", 2, 0),
        ("E1", "2019-08-03 15:00", "C", "D", 0, 2),
        ("E1", "2020-08-08 15:00", "N1", "A", 0, 1),  # N1 new in E1's second season
        ("E1", "2021-08-07 15:00", "N2", "B", 0, 0),  # N2 new in the third season
    ]
    matches = frame(rows)
    elo = elo_ratings(matches, carry_over=0.5)
    step = 20 * 1.5 * (1 - 1 / (1 + 10 ** (-60 / 400)))
    step_cd = 20 * 1.5 * (0 - 1 / (1 + 10 ** (-60 / 400)))
    season1 = np.array([1500 + step, 1500 - step, 1500 + step_cd, 1500 - step_cd])
    regressed = 1500 + 0.5 * (season1 - 1500)  # league mean stays 1500
    assert elo.loc[2, "elo_home"] == pytest.approx(np.quantile(regressed, 0.25))
    assert elo.loc[2, "elo_away"] == pytest.approx(regressed[0])
    # N1 (home) loses 0-1 to A; then N2 starts at the league mean plus N1's end-of-season offset
    pool = np.append(regressed, elo.loc[2, "elo_home"])
    expected_n1 = 1 / (1 + 10 ** ((pool[0] - pool[4] - 60) / 400))
    pool[4] -= 20 * expected_n1
    pool[0] += 20 * expected_n1
    n1_offset = pool[4] - pool.mean()  # regression towards the mean keeps the mean
    assert elo.loc[3, "elo_home"] == pytest.approx(pool.mean() + n1_offset, abs=1e-6)
    assert elo.loc[3, "elo_home"] < 1500.0


def test_forty_thousand_matches_in_under_two_seconds() -> None:
    rng = np.random.default_rng(0)
    n = 40_000
    teams = np.array([f"T{i}" for i in range(120)])
    home = rng.integers(0, 120, n)
    away = (home + rng.integers(1, 120, n)) % 120
    matches = pd.DataFrame(
        {
            "league": np.where(home < 60, "E0", "E1"),
            "home_team": teams[home],
            "away_team": teams[away],
            "kickoff_utc": pd.Timestamp("2005-08-01", tz="UTC")
            + pd.to_timedelta(np.sort(rng.integers(0, 6000, n)), unit="D"),
            "home_goals": rng.poisson(1.4, n),
            "away_goals": rng.poisson(1.1, n),
        }
    )
    start = time.perf_counter()
    elo = elo_ratings(matches)
    pi = pi_ratings(matches)
    assert time.perf_counter() - start < 4.0  # both together; each ~0.3 s here
    assert elo.notna().all().all()
    assert pi.notna().all().all()
