"""A served fixture of a later season gets training's season turnover (Elo moved towards its
league mean); league residuals ignore the datetime unit and a result still being played."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from marketcast.datasets.football_data import FootballData, load_football, load_football_sources
from marketcast.features import football
from marketcast.features.football import (
    build_features,
    market_residual_features,
    model_feature_columns,
)
from marketcast.features.football_state import FeatureState, build_feature_state
from tests.unit.test_football_quirks import EXTRA_HEADER

ODDS = {"1x2": (2.0, 3.5, 4.0)}
TURNOVER_SIDES = ("home", "away", "league")


@pytest.fixture(scope="module")
def bundled() -> FootballData:
    return load_football(None)


def _subset(data: FootballData, keep: pd.Series | np.ndarray) -> FootballData:
    matches = data.matches.loc[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    odds = data.odds.loc[data.odds["match_id"].isin(matches["match_id"])]
    return dataclasses.replace(data, matches=matches, odds=odds.reset_index(drop=True))


def _fixtures(matches: pd.DataFrame) -> list[dict[str, object]]:
    return [
        {
            "league": m.league,
            "home": m.home_team,
            "away": m.away_team,
            "kickoff": m.kickoff_utc,
            "odds": ODDS,
        }
        for m in matches.itertuples()
    ]


def _served_and_trained(
    history: FootballData, fixtures: FootballData
) -> tuple[FeatureState, pd.DataFrame, pd.DataFrame]:
    """The state of ``history``, its rows for ``fixtures``, and training's rows for them (the
    features of ``history`` plus the fixtures, the fixtures' own results unused)."""
    both = dataclasses.replace(
        history,
        matches=pd.concat([history.matches, fixtures.matches], ignore_index=True),
        odds=pd.concat([history.odds, fixtures.odds], ignore_index=True),
    )
    state = build_feature_state(history)
    served = state.fixture_frame(_fixtures(fixtures.matches))
    trained = build_features(both).iloc[len(history.matches) :].reset_index(drop=True)
    return state, served, trained


def _assert_team_columns_equal(served: pd.DataFrame, trained: pd.DataFrame) -> None:
    """Every feature but the market's (the request's odds are made up) equal to 1e-12."""
    columns = [
        c
        for c in model_feature_columns(trained)
        if c != "league" and not c.startswith(("mkt_", "ah_", "xm_"))
    ]
    assert {"elo_home", "elo_away", "elo_diff", "pi_expected_gd", "season_day"} <= set(columns)
    for column in columns:
        np.testing.assert_allclose(
            served[column].to_numpy(dtype=float),
            trained[column].to_numpy(dtype=float),
            rtol=0,
            atol=1e-12,
            err_msg=column,
        )
    assert served["season"].tolist() == trained["season"].tolist()


@pytest.mark.parametrize(
    "history_seasons",
    [("2020-2021", "2021-2022"), ("2019-2020", "2020-2021")],
    ids=["next season", "two seasons later"],
)
def test_a_fixture_of_a_later_season_gets_the_training_row(
    bundled: FootballData, history_seasons: tuple[str, ...]
) -> None:
    """Crystal Palace v Arsenal, 2022-08-05, the first match of E0 2022-23: served from a
    state of E0 2020-22 it read Elo ratings without the season turnover (1501.992 at home
    where training has 1500.030). Two seasons later training turns the season over once, and
    so does the server."""
    m = bundled.matches
    e0 = m["league"] == "E0"
    history = _subset(bundled, e0 & m["season"].isin(history_seasons))
    first_day = m.loc[e0 & (m["season"] == "2022-2023"), "kickoff_utc"].min().normalize()
    on_day = (
        e0 & (m["kickoff_utc"] >= first_day) & (m["kickoff_utc"] < first_day + pd.Timedelta(days=1))
    )
    fixtures = _subset(bundled, on_day)
    assert fixtures.matches[["home_team", "away_team"]].values.tolist() == [
        ["Crystal Palace", "Arsenal"]
    ]
    state, served, trained = _served_and_trained(history, fixtures)
    _assert_team_columns_equal(served, trained)
    # bit for bit: the state carries the turnover as an exact change
    assert (
        served.loc[0, ["elo_home", "elo_away"]].tolist()
        == trained.loc[0, ["elo_home", "elo_away"]].tolist()
    )
    # not vacuous: the turnover moved both ratings away from what the state carried
    assert served.at[0, "elo_home"] != state.home_side["Crystal Palace"]["elo_home"]
    assert served.at[0, "elo_away"] != state.away_side["Arsenal"]["elo_away"]


def test_a_fixture_of_the_same_season_reads_the_state_unchanged(bundled: FootballData) -> None:
    """The last day of E0 2021-22 served from the state of the days before it."""
    m = bundled.matches
    season = (m["league"] == "E0") & m["season"].isin(["2020-2021", "2021-2022"])
    last_day = m.loc[season, "kickoff_utc"].max().normalize()
    history = _subset(bundled, season & (m["kickoff_utc"] < last_day))
    fixtures = _subset(bundled, season & (m["kickoff_utc"] >= last_day))
    assert len(fixtures.matches) == 10
    state, served, trained = _served_and_trained(history, fixtures)
    _assert_team_columns_equal(served, trained)
    home = fixtures.matches["home_team"]
    assert served["elo_home"].tolist() == [state.home_side[t]["elo_home"] for t in home]


TEAMS = ("Flamengo", "Santos", "Palmeiras", "Gremio")
#: Each date's two matches (indices into TEAMS), taking turns, and the goals of each match.
PAIRINGS = (((0, 1), (2, 3)), ((0, 2), (1, 3)), ((3, 0), (2, 1)))
GOALS = ((3, 0), (1, 1), (0, 2), (2, 1), (4, 1), (0, 0))


def _brazil(rows: list[tuple[str, str, int, int]]) -> bytes:
    """An extra-league file of (Season, Date, home index, away index) rows."""
    lines = [",".join(EXTRA_HEADER)]
    for i, (season, date, home, away) in enumerate(rows):
        hg, ag = GOALS[i % len(GOALS)]
        lines.append(
            f"Brazil,Serie A,{season},{date},20:00,{TEAMS[home]},{TEAMS[away]},{hg},{ag},"
            f"{'H' if hg > ag else 'D' if hg == ag else 'A'},2.1,3.1,3.6"
        )
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("season", "date", "turned_over"),
    [("2012", "07/07/2012", False), ("2013", "20/04/2013", True)],
)
def test_a_calendar_year_league_turns_its_season_over_in_january(
    season: str, date: str, turned_over: bool
) -> None:
    """In a league whose seasons are calendar years (football-data's extra-league files), a
    July fixture is in the season of the history (the 1 July split would have turned it over)
    and an April fixture of the next year is not."""
    history_rows = [
        ("2012", f"{day:02d}/{month:02d}/2012", *pair)
        for k, (month, day) in enumerate([(4, 21), (5, 5), (5, 19), (6, 2), (6, 16), (6, 30)])
        for pair in PAIRINGS[k % 3]
    ]
    fixture_row = (season, date, 0, 1)
    data = load_football_sources([("new/BRA.csv", _brazil([*history_rows, fixture_row]))])
    assert data.matches["season"].iloc[-1] == season
    is_fixture = np.arange(len(data.matches)) == len(data.matches) - 1
    state, served, trained = _served_and_trained(
        _subset(data, ~is_fixture), _subset(data, is_fixture)
    )
    _assert_team_columns_equal(served, trained)
    assert bool(served.at[0, "elo_home"] != state.home_side["Flamengo"]["elo_home"]) is turned_over


@pytest.mark.parametrize("unit", ["us", "ms", "s"])
def test_features_do_not_depend_on_the_kickoff_datetime_unit(
    bundled: FootballData, unit: str
) -> None:
    """pandas 3 reads datetimes as microseconds; the league residuals assumed nanoseconds and
    put about 1000 days in one "day" (75% of E0 2020-21's ``league_resid_home`` was NaN)."""
    data = _subset(
        bundled, (bundled.matches["league"] == "E0") & (bundled.matches["season"] == "2020-2021")
    )
    ns = data.matches.assign(kickoff_utc=data.matches["kickoff_utc"].dt.as_unit("ns"))
    other = data.matches.assign(kickoff_utc=data.matches["kickoff_utc"].dt.as_unit(unit))
    X_ns = build_features(dataclasses.replace(data, matches=ns))
    X_other = build_features(dataclasses.replace(data, matches=other))
    assert str(X_other["kickoff_utc"].dtype) == f"datetime64[{unit}, UTC]"
    pd.testing.assert_frame_equal(
        X_other.drop(columns="kickoff_utc"), X_ns.drop(columns="kickoff_utc"), check_exact=True
    )
    first_date = ns["kickoff_utc"].dt.normalize() == ns["kickoff_utc"].min().normalize()
    assert X_ns["league_resid_home"].isna().tolist() == first_date.tolist()  # nothing earlier


def _residuals(kickoffs: list[str], home_goals: list[float]) -> pd.DataFrame:
    """`market_residual_features` of one league's matches priced 50/25/25, over 2.5 at 0.5."""
    n = len(kickoffs)
    matches = pd.DataFrame(
        {
            "league": "USA",
            # nanoseconds, as the unit test above checks the unit: these check the delay
            "kickoff_utc": pd.to_datetime(kickoffs, utc=True).as_unit("ns"),
            "home_team": [f"Home {i}" for i in range(n)],
            "away_team": [f"Away {i}" for i in range(n)],
            "home_goals": home_goals,
            "away_goals": 0.0,
        }
    )
    X = pd.DataFrame(
        {"mkt_1x2_home": 0.5, "mkt_1x2_draw": 0.25, "mkt_1x2_away": 0.25, "mkt_ou25_over": 0.5},
        index=matches.index,
    )
    return market_residual_features(matches, X)


def test_a_result_reaches_the_league_residual_once_the_match_is_over() -> None:
    """A 00:30 UTC kick-off saw the home win of a match that kicked off at 23:00 the evening
    before, still being played; the 19:00 match's result was over and stays visible."""
    resid = _residuals(
        ["2023-06-03 19:00", "2023-06-03 23:00", "2023-06-04 00:30", "2023-06-04 02:00"],
        [0.0, 1.0, 0.0, 0.0],  # a 0-0 (home residual -0.5), then a home win (+0.5)
    )["league_resid_home"].to_numpy()
    assert np.isnan(resid[:2]).all()  # one date: neither sees the other
    assert resid[2] == -0.5  # the 19:00 match only (its weight decays like every other)
    assert resid[3] == 0.0  # three hours after 23:00: both
    # and a match the late one hides from nobody: both matches of the 3rd at the 4th's 15:00
    later = _residuals(
        ["2023-06-03 19:00", "2023-06-03 23:00", "2023-06-04 15:00"], [0.0, 1.0, 0.0]
    )
    assert later["league_resid_home"].iloc[2] == 0.0
    assert football.LEAGUE_RESULT_DELAY_HOURS == 3.0  # the rule docs/models.md states


def test_a_late_result_is_hidden_alone_from_a_match_on_the_next_date() -> None:
    """Only the late match is held back: every earlier date, decayed as before, still counts."""
    resid = _residuals(
        ["2023-06-01 19:00", "2023-06-03 23:30", "2023-06-04 01:00", "2023-06-05 15:00"],
        [1.0, 0.0, 1.0, 0.0],
    )["league_resid_home"].to_numpy()
    assert resid[1] == 0.5
    assert resid[2] == pytest.approx(0.5, abs=1e-15)  # the 1st's home win, not the 3rd's 0-0
    decay = np.exp(-np.log(2.0) / 60.0)
    weights = np.array([decay**4, decay**2, decay**1])  # the 1st, 3rd and 4th, seen on the 5th
    expected = np.dot(weights, [0.5, -0.5, 0.5]) / weights.sum()
    assert resid[3] == pytest.approx(expected, abs=1e-15)


def test_a_version_1_state_still_loads_and_serves_as_before(bundled: FootballData) -> None:
    """A registered champion's older state is not refused: it serves without the turnover."""
    m = bundled.matches
    history = _subset(bundled, (m["league"] == "E0") & (m["season"] == "2021-2022"))
    state = build_feature_state(history)
    payload = json.loads(state.to_json())
    for key in ("season", "league_season", *(f"turnover_{s}_side" for s in TURNOVER_SIDES)):
        payload.pop(key)
    old = FeatureState.from_json(json.dumps({**payload, "version": 1}).encode())
    fixture = {"league": "E0", "home": "Arsenal", "away": "Chelsea", "odds": ODDS}
    same_season = {**fixture, "kickoff": pd.Timestamp("2022-06-01 14:00", tz="UTC")}
    next_season = {**fixture, "kickoff": pd.Timestamp("2022-08-13 14:00", tz="UTC")}
    for row in (same_season, next_season):
        [served] = old.fixture_rows([row])
        assert served["elo_home"] == state.home_side["Arsenal"]["elo_home"]
    [current] = state.fixture_rows([next_season])
    assert current["elo_home"] != state.home_side["Arsenal"]["elo_home"]
    with pytest.raises(ValueError, match="incompatible marketcast version"):
        FeatureState.from_json(json.dumps({**payload, "version": 0}).encode())
