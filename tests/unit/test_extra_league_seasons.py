"""football-data's extra-league files (ARG.csv, BRA.csv, ...): a row's season is its ``Season``
cell (``2012``, ``2012/2013``), not its date split at 1 July; a Div file is read as before."""

from __future__ import annotations

import pandas as pd
import pytest

from marketcast.datasets.football_data import load_football_sources
from marketcast.features.football import build_features
from marketcast.features.ratings import elo_ratings
from marketcast.orchestration.football import test_mask_last_seasons as last_seasons_mask
from tests.unit.test_football_quirks import EXTRA_HEADER
from tests.unit.test_validation import HEADER, row

TEAMS = ("Flamengo", "Santos", "Palmeiras", "Gremio")


def _extra_csv(rows: list[tuple[str, str]], country: str = "Brazil") -> bytes:
    """An extra-league file of (Season, Date) rows, the teams taking turns."""
    lines = [",".join(EXTRA_HEADER)]
    for i, (season, date) in enumerate(rows):
        home, away = TEAMS[i % 4], TEAMS[(i + 1 + i // 4) % 4]
        result = "ADH"[i % 3]  # i % 3 goals to 1: the result the goals give
        lines.append(
            f"{country},Serie A,{season},{date},20:00,{home},{away},{i % 3},1,{result},2.1,3.1,3.6"
        )
    return ("\n".join(lines) + "\n").encode()


def _div_csv(dates: list[str], extra_column: str | None = None) -> bytes:
    header, rows = list(HEADER), [row(date=d, home=f"Home {i}") for i, d in enumerate(dates)]
    if extra_column is not None:  # a Season column in a Div file is not read
        header, rows = [*header, "Season"], [[*r, extra_column] for r in rows]
    return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode()


BRAZIL_2012 = [("2012", d) for d in ("21/04/2012", "30/06/2012", "01/07/2012", "02/12/2012")]


def test_a_calendar_year_season_is_one_season_from_april_to_december() -> None:
    """Split at 1 July, Brazil's 2012 (April to December) was 2011-2012 and 2012-2013, so "the
    last two seasons" of the league were one and a half."""
    rows = [("2011", "15/05/2011"), *BRAZIL_2012, ("2013", "25/05/2013")]
    data = load_football_sources([("new/BRA.csv", _extra_csv(rows))])
    assert data.matches["season"].tolist() == ["2011", "2012", "2012", "2012", "2012", "2013"]
    assert "season_from_date" not in data.report.repaired
    test_rows = last_seasons_mask(data.matches, 2)
    assert data.matches.loc[test_rows, "season"].unique().tolist() == ["2012", "2013"]


def test_a_split_season_cell_is_written_like_a_file_name() -> None:
    """``2019/2020`` is ``2019-2020``, also for Russia's matches of July 2020 (COVID-19), which
    the 1 July split put in 2020-2021."""
    rows = [("2019/2020", "14/07/2019"), ("2019/2020", "22/07/2020"), ("2020/2021", "08/08/2020")]
    data = load_football_sources([("new/RUS.csv", _extra_csv(rows, country="Russia"))])
    assert data.matches["season"].tolist() == ["2019-2020", "2019-2020", "2020-2021"]
    assert data.report.issues == []


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("", "unparseable_season"),
        ("12/13x", "unparseable_season"),
        ("2015", "season_outside_dates"),
    ],
)
def test_a_bad_season_cell_falls_back_to_the_date_and_is_reported(cell: str, reason: str) -> None:
    """A blank, unreadable or impossible cell (2015 for a match of May 2013) takes its season
    from the date, counted in ``season_from_date`` with an issue naming the file, line and cell;
    in a calendar-year league's file, the kick-off's year: the 1 July split's 2012-2013 sorted
    after every calendar year of 2013 and made a season of one match."""
    rows = [*BRAZIL_2012, (cell, "25/05/2013")]
    data = load_football_sources([("new/BRA.csv", _extra_csv(rows))])
    assert data.matches["season"].tolist() == ["2012"] * 4 + ["2013"]
    assert data.report.repaired["season_from_date"] == 1
    [issue] = data.report.issues
    assert (issue.file, issue.row, issue.field, issue.reason) == (
        "new/BRA.csv",
        6,
        "Season",
        reason,
    )
    assert issue.value == f"{cell!r} -> 2013"


def test_a_split_season_file_falls_back_to_the_1_july_split() -> None:
    rows = [("2019/2020", "14/07/2019"), ("", "22/02/2020"), ("2020/2021", "08/08/2020")]
    data = load_football_sources([("RUS.csv", _extra_csv(rows, country="Russia"))])
    assert data.matches["season"].tolist() == ["2019-2020", "2019-2020", "2020-2021"]
    assert data.report.repaired["season_from_date"] == 1


def test_a_season_written_as_a_float_is_read() -> None:
    """A file re-saved by pandas after a blank cell writes ``2012.0``: every row fell back."""
    rows = [("2012.0", date) for _, date in BRAZIL_2012]
    data = load_football_sources([("BRA.csv", _extra_csv(rows))])
    assert data.matches["season"].tolist() == ["2012"] * 4
    assert "season_from_date" not in data.report.repaired


def test_a_div_file_beside_an_extra_league_file_is_read_as_before() -> None:
    """Only Div-less files read ``Season``: a Div file's seasons still come from its name or the
    1 July split, whatever a Season column says, and its rows are those it gives alone."""
    dates = ["20/05/2012", "18/08/2012", "12/05/2013"]
    alone = load_football_sources([("E0/x.csv", _div_csv(dates))]).matches
    both = load_football_sources(
        [("E0/x.csv", _div_csv(dates, extra_column="2012")), ("BRA.csv", _extra_csv(BRAZIL_2012))]
    )
    div_rows = both.matches[both.matches["league"] == "E0"].reset_index(drop=True)
    pd.testing.assert_frame_equal(div_rows, alone)
    assert alone["season"].tolist() == ["2011-2012", "2012-2013", "2012-2013"]
    assert both.matches.loc[both.matches["league"] == "BRA", "season"].unique().tolist() == ["2012"]
    assert "season_from_date" not in both.report.repaired


def test_a_brazilian_april_does_not_turn_over_the_european_ratings() -> None:
    """Ratings share one season clock: a calendar-year season counts as the split season it
    ends, so Brazil's 2013 starting in April did not regress E0's ratings mid-season."""
    e0 = _div_csv(["18/08/2012", "25/08/2012", "12/05/2013", "17/08/2013"])
    brazil = _extra_csv([*BRAZIL_2012, ("2013", "20/04/2013"), ("2013", "30/06/2013")])
    alone = load_football_sources([("E0/x.csv", e0)]).matches
    both = load_football_sources([("E0/x.csv", e0), ("BRA.csv", brazil)]).matches
    is_e0 = (both["league"] == "E0").to_numpy()
    mixed = elo_ratings(both)[is_e0].reset_index(drop=True)
    pd.testing.assert_frame_equal(mixed, elo_ratings(alone))
    assert mixed["elo_away"].iat[3] != 1500.0


def test_a_calendar_year_season_counts_its_days_as_the_server_does() -> None:
    """``season_day`` of a ``2012`` row counts from the 1 July on or before the kick-off, as
    `FeatureState` counts a served fixture (it keeps no season per league); from 1 July 2012
    it was negative in April."""
    data = load_football_sources([("BRA.csv", _extra_csv(BRAZIL_2012))])
    days = build_features(data)["season_day"].to_numpy()
    kickoff = data.matches["kickoff_utc"]
    july = pd.to_datetime(["2011-07-01", "2011-07-01", "2012-07-01", "2012-07-01"], utc=True)
    assert days.tolist() == pytest.approx(((kickoff - july).dt.total_seconds() / 86400).tolist())
    assert days.min() > 0
