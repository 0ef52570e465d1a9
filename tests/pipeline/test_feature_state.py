"""Serving features equal training features: a real match rebuilt from the exported state."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from marketcast.datasets.football_data import FootballData, odds_matrix
from marketcast.features.football import (
    OPTIONAL_FEATURE_GROUPS,
    build_features,
    quoted_market_features,
)
from marketcast.features.football_state import (
    AWAY_SIDE,
    HOME_SIDE,
    LEAGUE_SIDE,
    FeatureState,
    UnknownFixtureError,
    build_feature_state,
)
from marketcast.margins import implied_probabilities
from marketcast.types import MarketKind, Timing

COMPARED = (
    *HOME_SIDE,
    *AWAY_SIDE,
    *LEAGUE_SIDE,
    "elo_diff",
    "pi_expected_gd",
    "home_rest_days",
    "away_rest_days",
    "form_points_diff",
    "rest_days_diff",
    "mkt_1x2_home",
    "mkt_1x2_draw",
    "mkt_1x2_away",
    "mkt_ou25_over",
    "mkt_ah_home",
    "ah_line",
    "season_day",
)
#: Match-level columns of the optional groups, recomputed at serving time.
COMPARED_OPTIONAL = (
    "sot_share_diff",
    "xg_diff_ewm",
    "xm_total_goals",
    "xm_supremacy",
    "xm_draw_gap",
    "xm_over_gap",
    "line_move_diff",
    "total_move_sum",
)


def _history_before(epl: FootballData) -> tuple[np.ndarray, FootballData]:
    kickoff = epl.matches["kickoff_utc"]
    day = kickoff.iloc[int(len(kickoff) * 0.9)].normalize()
    before = (kickoff < day).to_numpy()
    history = epl.matches.loc[before].reset_index(drop=True)
    data = dataclasses.replace(
        epl, matches=history, odds=epl.odds[epl.odds["match_id"].isin(history["match_id"])]
    )
    on_day = ((kickoff >= day) & (kickoff < day + pd.Timedelta(days=1))).to_numpy()
    return on_day, data


@pytest.fixture(scope="module")
def day_and_state(epl: FootballData):
    on_day, data = _history_before(epl)
    return on_day, build_feature_state(data)


@pytest.fixture(scope="module")
def all_groups(epl: FootballData):
    """The state, and the training features, with every optional feature group."""
    on_day, data = _history_before(epl)
    state = build_feature_state(data, groups=OPTIONAL_FEATURE_GROUPS)
    return on_day, state, build_features(epl, groups=OPTIONAL_FEATURE_GROUPS)


@pytest.mark.parametrize("groups", ["default", "all"])
def test_fixture_rows_equal_build_features_rows(
    epl: FootballData, epl_features, day_and_state, all_groups, groups: str
) -> None:
    if groups == "all":
        on_day, state, epl_features = all_groups
    else:
        on_day, state = day_and_state
    rows = np.flatnonzero(on_day)
    assert len(rows) >= 1
    o1, _ = odds_matrix(epl, MarketKind.ONE_X_TWO, Timing.PREMATCH, "pinnacle")
    ou, _ = odds_matrix(epl, MarketKind.OVER_UNDER_25, Timing.PREMATCH, "pinnacle")
    ah, ah_line = odds_matrix(epl, MarketKind.ASIAN_HANDICAP, Timing.PREMATCH, "pinnacle")
    fixtures = [
        {
            "league": epl.matches.at[i, "league"],
            "home": epl.matches.at[i, "home_team"],
            "away": epl.matches.at[i, "away_team"],
            "kickoff": epl.matches.at[i, "kickoff_utc"],
            "odds": {
                "1x2": tuple(o1[i, :3]),
                "ou25": tuple(ou[i, :2]),
                "ah": (ah_line[i], ah[i, 0], ah[i, 1]),
            },
        }
        for i in rows
    ]
    served = state.fixture_frame(fixtures)
    assert set(served.columns) == set(epl_features.columns)
    expected = epl_features.iloc[rows].reset_index(drop=True)
    compared = [c for c in (*COMPARED, *COMPARED_OPTIONAL) if c in epl_features.columns]
    if groups == "all":
        assert {"home_xg_for_ewm", "away_sot_share", *COMPARED_OPTIONAL} <= set(compared)
        assert not expected[list(COMPARED_OPTIONAL)].isna().all().any()
    _assert_columns_equal(served, expected, compared, tolerance=1e-9)


def _assert_columns_equal(
    served: pd.DataFrame, expected: pd.DataFrame, columns: list[str], tolerance: float
) -> None:
    for column in columns:
        np.testing.assert_allclose(
            served[column].to_numpy(dtype=float),
            expected[column].to_numpy(dtype=float),
            rtol=tolerance,
            atol=tolerance,
            err_msg=column,
        )


def test_state_json_round_trip(day_and_state) -> None:
    _, state = day_and_state
    again = FeatureState.from_json(state.to_json())
    assert again.columns == state.columns
    assert again.as_of_utc == state.as_of_utc
    team = next(iter(state.home_side))
    assert again.home_side[team]["elo_home"] == pytest.approx(state.home_side[team]["elo_home"])


def test_unknown_team_and_league_are_named(day_and_state) -> None:
    _, state = day_and_state
    fixture = {
        "league": "E0",
        "home": "Arsenl",
        "away": "Chelsea",
        "kickoff": "2022-05-01T14:00:00Z",
        "odds": {"1x2": (2.0, 3.5, 4.0)},
    }
    with pytest.raises(UnknownFixtureError, match=r"'Arsenl'.*did you mean 'Arsenal'"):
        state.fixture_frame([fixture])
    with pytest.raises(UnknownFixtureError, match="unknown league 'X9'"):
        state.fixture_frame([{**fixture, "home": "Arsenal", "league": "X9"}])


def test_a_promoted_teams_league_is_that_of_its_latest_match_home_or_away(
    bundled: FootballData,
) -> None:
    """Nott'm Forest's last home match in the data is in E1 (the bundle's E1 ends in January
    2021), its latest match an E0 away match on 2022-08-06: it plays in E0. The state said E1
    (home matches won), so a 422 would have said "last played in E1" and its probe row took
    E1's league features and season."""
    m = bundled.matches
    keep = (
        m["league"].isin(["E0", "E1"])
        & m["season"].isin(["2020-2021", "2021-2022", "2022-2023"])
        & (m["kickoff_utc"] < pd.Timestamp("2022-08-07", tz="UTC"))
    )
    matches = m.loc[keep].reset_index(drop=True)
    data = dataclasses.replace(
        bundled,
        matches=matches,
        odds=bundled.odds[bundled.odds["match_id"].isin(matches["match_id"])],
    )
    forest = "Nott'm Forest"
    last_home = matches.loc[matches["home_team"] == forest].iloc[-1]
    latest = matches.loc[(matches["home_team"] == forest) | (matches["away_team"] == forest)]
    latest = latest.sort_values("kickoff_utc").iloc[-1]
    assert (last_home["league"], latest["league"], latest["away_team"]) == ("E1", "E0", forest)
    state = build_feature_state(data)
    assert state.team_league[forest] == "E0"
    assert state.team_league["Arsenal"] == "E0"


def _quotes_by_bookmaker(data: FootballData, match_id: str) -> dict[str, dict[str, tuple]]:
    """A match's pre-match quotes as a request's ``odds.bookmakers`` gives them."""
    odds = data.odds
    rows = odds[(odds["match_id"] == match_id) & (odds["timing"] == Timing.PREMATCH.value)]
    quotes: dict[str, dict[str, tuple]] = {}
    for r in rows.itertuples():
        quote = quotes.setdefault(r.bookmaker, {})
        if r.market == "1x2":
            quote["1x2"] = (r.odds_0, r.odds_1, r.odds_2)
        elif r.market == "ou25":
            quote["ou25"] = (r.odds_0, r.odds_1)
        else:
            quote["ah"] = (r.line, r.odds_0, r.odds_1)
    return quotes


def test_fixtures_quoted_by_every_bookmaker_get_every_training_column(
    epl: FootballData, epl_features, day_and_state
) -> None:
    """With ``odds.bookmakers`` every column is training's, the spread across bookmakers, both
    margins and Pinnacle-minus-average included (one bookmaker's price leaves those blank or
    puts its own margin in both)."""
    on_day, state = day_and_state
    rows = np.flatnonzero(on_day)
    fixtures = []
    for i in rows:
        m = epl.matches.loc[i]
        quotes = _quotes_by_bookmaker(epl, m["match_id"])
        assert {"pinnacle", "b365", "avg", "max"} <= set(quotes)
        fixture = {"league": m["league"], "home": m["home_team"], "away": m["away_team"]}
        odds = {"1x2": quotes["b365"]["1x2"], "bookmakers": quotes}
        fixtures.append({**fixture, "kickoff": m["kickoff_utc"], "odds": odds})
    served = state.fixture_frame(fixtures)
    expected = epl_features.iloc[rows].reset_index(drop=True)
    market = [c for c in epl_features.columns if c.startswith(("mkt_", "ah_", "xm_"))]
    assert {"mkt_1x2_home_spread", "mkt_1x2_overround_avg", "mkt_n_bookmakers"} <= set(market)
    assert not expected[market].isna().any().any()
    compared = [c for c in COMPARED if c in epl_features.columns] + market
    _assert_columns_equal(served, expected, compared, tolerance=1e-12)
    one_price = state.fixture_frame([{**f, "odds": {"1x2": f["odds"]["1x2"]}} for f in fixtures])
    assert one_price["mkt_1x2_home_spread"].isna().all()  # what the field adds


def test_quotes_without_the_average_or_the_best_price_get_them_from_the_bookmakers() -> None:
    quotes = {"b365": {"1x2": (2.0, 3.4, 4.0)}, "bw": {"1x2": (2.2, 3.2, 3.6)}}
    [row] = quoted_market_features([quotes]).to_dict("records")
    mean = np.array([2.1, 3.3, 3.8])
    best = np.array([2.2, 3.4, 4.0])
    assert row["mkt_1x2_overround_avg"] == pytest.approx(float(np.sum(1 / mean) - 1), abs=1e-15)
    assert row["mkt_1x2_overround_best"] == pytest.approx(float(np.sum(1 / best) - 1), abs=1e-15)
    assert row["mkt_n_bookmakers"] == 2
    # multiplicative de-margining, as for every bookmaker in training
    homes = [(1 / q["1x2"][0]) / np.sum(1 / np.array(q["1x2"])) for q in quotes.values()]
    assert row["mkt_1x2_home_spread"] == pytest.approx(abs(homes[0] - homes[1]), abs=1e-15)


def test_handicap_quotes_on_two_lines_are_refused() -> None:
    quotes = {"b365": {"ah": (-0.5, 1.9, 1.95)}, "pinnacle": {"ah": (-0.75, 2.1, 1.8)}}
    with pytest.raises(ValueError, match=r"different lines \(-0.75, -0.5\)"):
        quoted_market_features([quotes])


@pytest.mark.parametrize(
    ("quotes", "avg", "best"),
    [
        ({"max": {"1x2": (2.2, 3.6, 4.0)}}, (2.2, 3.6, 4.0), (2.2, 3.6, 4.0)),
        ({"avg": {"1x2": (2.0, 3.4, 3.8)}}, (2.0, 3.4, 3.8), (2.0, 3.4, 3.8)),
        (
            {"avg": {"1x2": (2.0, 3.4, 3.8)}, "b365": {"1x2": (1.9, 3.5, 3.7)}},
            (2.0, 3.4, 3.8),
            (2.0, 3.5, 3.8),
        ),
    ],
)
def test_the_market_average_and_best_prices_fill_each_other(
    quotes: dict, avg: tuple, best: tuple
) -> None:
    """A market quoted by ``max`` alone had no price at all (the preference never reads
    ``max``): its served probabilities were NaN, a 200 with null bands."""
    [row] = quoted_market_features([quotes]).to_dict("records")
    expected = implied_probabilities(np.array([avg]), "shin")[0]
    got = [row[c] for c in ("mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away")]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert row["mkt_1x2_overround_avg"] == pytest.approx(float(np.sum(1 / np.array(avg)) - 1))
    assert row["mkt_1x2_overround_best"] == pytest.approx(float(np.sum(1 / np.array(best)) - 1))


def test_a_fixture_on_the_histories_last_date_reads_no_result_of_that_date(
    epl: FootballData, epl_features
) -> None:
    """A state built after Saturday's 12:30 match gave the 15:00 fixtures league residuals with
    that result in; training reads no result of a match's own date."""
    kickoff = epl.matches["kickoff_utc"]
    times = kickoff.groupby(kickoff.dt.normalize()).nunique()
    day = times[times >= 2].index[len(times[times >= 2]) // 2]  # a date with several kick-offs
    first = kickoff[kickoff.dt.normalize() == day].min()
    history = epl.matches.loc[kickoff <= first].reset_index(drop=True)
    state = build_feature_state(
        dataclasses.replace(
            epl, matches=history, odds=epl.odds[epl.odds["match_id"].isin(history["match_id"])]
        )
    )
    later = np.flatnonzero(((kickoff > first) & (kickoff.dt.normalize() == day)).to_numpy())
    assert len(later)
    assert state.league_side_last_day  # the first kick-off's result moved the values
    o1, _ = odds_matrix(epl, MarketKind.ONE_X_TWO, Timing.PREMATCH, "pinnacle")
    fixtures = [
        {
            "league": epl.matches.at[i, "league"],
            "home": epl.matches.at[i, "home_team"],
            "away": epl.matches.at[i, "away_team"],
            "kickoff": kickoff.iat[i],
            "odds": {"1x2": tuple(o1[i, :3])},
        }
        for i in later
    ]
    served = state.fixture_frame(fixtures)
    expected = epl_features.iloc[later].reset_index(drop=True)
    _assert_columns_equal(served, expected, list(LEAGUE_SIDE), tolerance=1e-9)
    # a version 2 state (without the last date's values) still loads, and serves as it did
    payload = json.loads(state.to_json())
    payload.update(version=2)
    del payload["league_side_last_day"]
    old = FeatureState.from_json(json.dumps(payload).encode())
    assert old.league_side_last_day == {}
    assert old.fixture_rows(fixtures)[0]["league_resid_home"] == pytest.approx(
        state.league_side[fixtures[0]["league"]]["league_resid_home"]
    )
