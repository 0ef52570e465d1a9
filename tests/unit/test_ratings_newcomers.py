"""Teams new to a league on one date all start from the pool as it stood before that date."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from marketcast.features.ratings import elo_ratings, pi_ratings

Rating = Callable[[pd.DataFrame], pd.DataFrame]
#: the columns holding a team's own ratings when it is the home side / the away side
HOME_COLUMNS = {elo_ratings: ["elo_home"], pi_ratings: ["pi_home_home", "pi_home_away"]}
AWAY_COLUMNS = {elo_ratings: ["elo_away"], pi_ratings: ["pi_away_home", "pi_away_away"]}


def _season(
    rows: list[dict[str, object]], label: str, first_kickoff: str, teams: list[str]
) -> None:
    """Ten weekly rounds of league L among ``teams`` (seeded results)."""
    rng = np.random.default_rng(len(rows))
    start = pd.Timestamp(first_kickoff, tz="UTC")
    for week in range(10):
        perm = rng.permutation(teams)
        for i in range(0, len(perm), 2):
            rows.append(
                {
                    "league": "L",
                    "season": label,
                    "kickoff_utc": start + pd.Timedelta(days=7 * week),
                    "home_team": perm[i],
                    "away_team": perm[i + 1],
                    "home_goals": int(rng.integers(0, 4)),
                    "away_goals": int(rng.integers(0, 3)),
                }
            )


def _history(*, with_offsets: bool) -> list[dict[str, object]]:
    """League L's first season (A-F); with offsets, a second where newcomer N replaces F.

    Six teams, not four: a team added at the lower quartile of four leaves it where it is.
    """
    rows: list[dict[str, object]] = []
    _season(rows, "2019-2020", "2019-08-10 14:00", ["A", "B", "C", "D", "E", "F"])
    if with_offsets:  # N's end-of-season offset is what the next newcomers start from
        _season(rows, "2020-2021", "2020-08-15 14:00", ["A", "B", "C", "D", "E", "N"])
    return rows


def _opening_day(rows: list[dict[str, object]], label: str, kickoff: str) -> pd.DataFrame:
    """``rows`` plus newcomers X (away to A) and Y (at home to B) at one kick-off."""
    t = pd.Timestamp(kickoff, tz="UTC")
    for home, away in (("A", "X"), ("Y", "B")):
        rows.append(
            {
                "league": "L",
                "season": label,
                "kickoff_utc": t,
                "home_team": home,
                "away_team": away,
                "home_goals": 1,
                "away_goals": 0,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("rating", [elo_ratings, pi_ratings])
@pytest.mark.parametrize(
    ("with_offsets", "label", "kickoff"),
    [
        (True, "2021-2022", "2021-08-14 14:00"),  # mean of L plus N's offset
        (False, "2020-2021", "2020-08-15 14:00"),  # lower quartile of L (no offsets yet)
    ],
)
def test_two_newcomers_at_one_kickoff_each_start_as_if_alone(
    rating: Rating, with_offsets: bool, label: str, kickoff: str
) -> None:
    matches = _opening_day(_history(with_offsets=with_offsets), label, kickoff)
    x_row, y_row = matches.index[-2], matches.index[-1]
    home, away = HOME_COLUMNS[rating], AWAY_COLUMNS[rating]
    for frame in (matches, matches.iloc[::-1]):  # either row first
        both = rating(frame)
        x_alone = rating(frame.drop(index=y_row)).loc[x_row, away].to_numpy()
        y_alone = rating(frame.drop(index=x_row)).loc[y_row, home].to_numpy()
        np.testing.assert_array_equal(both.loc[x_row, away].to_numpy(), x_alone)
        np.testing.assert_array_equal(both.loc[y_row, home].to_numpy(), y_alone)
        # two newcomers alike start alike, whichever row comes first
        np.testing.assert_array_equal(x_alone, y_alone)


def _league_with_newcomers() -> pd.DataFrame:
    """Four seasons of L, each bringing two or three newcomers at one kick-off."""
    rows: list[dict[str, object]] = []
    _season(rows, "2019-2020", "2019-08-10 14:00", ["A", "B", "C", "D", "E", "F"])
    _season(rows, "2020-2021", "2020-08-15 14:00", ["A", "B", "C", "D", "N1", "N2"])
    _season(rows, "2021-2022", "2021-08-14 14:00", ["A", "B", "N1", "N2", "P1", "P2"])
    _season(rows, "2022-2023", "2022-08-13 14:00", ["A", "N1", "P1", "Q1", "Q2", "Q3"])
    matches = pd.DataFrame(rows)
    # a fixture of a later date, still to be played, with two more newcomers
    fixtures = pd.DataFrame(
        {
            "league": "L",
            "season": "2022-2023",
            "kickoff_utc": pd.Timestamp("2022-12-01 20:00", tz="UTC"),
            "home_team": ["R1", "A"],
            "away_team": ["N1", "R2"],
            "home_goals": np.nan,
            "away_goals": np.nan,
        }
    )
    return pd.concat([matches, fixtures], ignore_index=True)


@pytest.mark.parametrize("rating", [elo_ratings, pi_ratings])
def test_shuffled_rows_give_the_sorted_rows_ratings(rating: Rating) -> None:
    matches = _league_with_newcomers()
    expected = rating(matches)
    for order in (
        np.arange(len(matches))[::-1],
        np.random.default_rng(0).permutation(len(matches)),
        np.random.default_rng(1).permutation(len(matches)),
    ):
        shuffled = rating(matches.iloc[order])
        assert list(shuffled.index) == list(matches.index[order])
        pd.testing.assert_frame_equal(shuffled.loc[matches.index], expected, check_exact=True)


def _late_kickoffs(early: int, late: int) -> pd.DataFrame:
    """A season of A-D, then a 20:00 and a 23:00 UTC kick-off (home goals ``early``, ``late``)
    before a promoted side's 00:30 kick-off, and another promoted side's the date after."""
    rows: list[dict[str, object]] = []
    _season(rows, "2020-2021", "2020-08-08 14:00", ["A", "B", "C", "D"])
    for kickoff, home, away, goals in [
        ("2021-09-04 20:00", "C", "D", early),  # known (23:00) by 00:30
        ("2021-09-04 23:00", "A", "B", late),  # still being played at 00:30
        ("2021-09-05 00:30", "N", "C", 1),
        ("2021-09-06 15:00", "M", "D", 1),
    ]:
        rows.append(
            {
                "league": "L",
                "season": "2021-2022",
                "kickoff_utc": pd.Timestamp(kickoff, tz="UTC"),
                "home_team": home,
                "away_team": away,
                "home_goals": goals,
                "away_goals": 0,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("rating", [elo_ratings, pi_ratings])
def test_a_newcomer_does_not_read_a_match_still_being_played(rating: Rating) -> None:
    """A 00:30 UTC kick-off read the ratings after a 23:00 match the evening before, whose
    result is not known until about 02:00: a newcomer's start (the league's mean or quartile)
    moved with that score. A later date reads it; a 20:00 result is known by 00:30."""
    draw, rout = rating(_late_kickoffs(1, 0)), rating(_late_kickoffs(1, 6))
    n_row, m_row = len(draw) - 2, len(draw) - 1
    home = HOME_COLUMNS[rating]
    assert draw.iloc[n_row][home].equals(rout.iloc[n_row][home])  # was: N's start moved
    assert not np.allclose(draw.iloc[m_row][home], rout.iloc[m_row][home])

    early_win = rating(_late_kickoffs(4, 0))
    away = AWAY_COLUMNS[rating]  # C, who played at 20:00
    assert not np.allclose(early_win.iloc[n_row][away], draw.iloc[n_row][away])


@pytest.mark.parametrize("rating", [elo_ratings, pi_ratings])
def test_a_match_without_a_kickoff_is_refused_naming_its_row(rating: Rating) -> None:
    """It sorted as the earliest match, so its result fed every rating (the loader never
    gives one; a caller of the feature functions may)."""
    frame = _late_kickoffs(1, 0)
    frame.loc[7, "kickoff_utc"] = pd.NaT
    with pytest.raises(ValueError, match=r"kickoff_utc is missing in 1 row\(s\) \(index \[7\]\)"):
        rating(frame)
