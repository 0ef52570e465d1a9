"""Loader and validation rules a mutation audit found unpinned (2026-11-25): two-digit years,
date anchors and day/month ties, line endings, column aliases, the future-date grace, 24:00,
the odds-outlier vote and factor, the overround range and its bounds, the issue cap. Each test
fails when its rule is changed the way the audit changed it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from marketcast.data.validation import IntegrityReport, Issue
from marketcast.datasets.football_data import FootballData, load_football, split_lines

HEADER = "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR"
ODDS_HEADER = HEADER + ",B365H,B365D,B365A,BWH,BWD,BWA,IWH,IWD,IWA"


def _load(tmp_path: Path, rows: list[str], header: str = HEADER) -> FootballData:
    path = tmp_path / "E0.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return load_football([path])


def _dropped(data: FootballData) -> dict[str, int]:
    return {k: v for k, v in data.report.dropped.items() if v}


def _quotes_dropped(data: FootballData) -> dict[str, Any]:
    return {k: v for k, v in data.report.quotes_dropped.items() if v}


def test_two_digit_years_pivot_at_70(tmp_path: Path) -> None:
    data = _load(
        tmp_path, ["E0,15/08/95,15:00,Arsenal,Chelsea,1,0,H", "E0,15/08/55,15:00,Leeds,Hull,1,0,H"]
    )
    assert data.matches["kickoff_utc"].dt.year.tolist() == [1995]  # 55 is 2055: in the future
    assert _dropped(data) == {"date_in_future": 1}


def test_a_date_with_text_after_it_is_unparseable(tmp_path: Path) -> None:
    data = _load(tmp_path, ["E0,12/08/2023 junk,15:00,Arsenal,Chelsea,1,0,H"])
    assert _dropped(data) == {"unparseable_date": 1}


def test_a_day_first_and_a_month_first_date_tie_keeps_day_first(tmp_path: Path) -> None:
    data = _load(
        tmp_path,
        ["E0,13/08/2023,15:00,Arsenal,Chelsea,1,0,H", "E0,08/14/2023,15:00,Leeds,Hull,1,0,H"],
    )
    assert len(data.matches) == 1
    assert _dropped(data) == {"unparseable_date": 1}


def test_a_second_field_over_31_is_no_month_first_date(tmp_path: Path) -> None:
    data = _load(tmp_path, ["E0,05/40/2023,15:00,Arsenal,Chelsea,1,0,H"])
    assert _dropped(data) == {"unparseable_date": 1}


def test_old_mac_line_endings_win_only_a_strict_majority() -> None:
    assert split_lines("x\ry\nz\rw\n") == ["x\ry", "z\rw"]


def test_an_alias_column_is_not_read_when_the_canonical_one_is_there(tmp_path: Path) -> None:
    data = _load(
        tmp_path,
        ["E0,12/08/2023,15:00,ArsenalX,Arsenal,Chelsea,1,0,H"],
        header="Div,Date,Time,Home,HomeTeam,AwayTeam,FTHG,FTAG,FTR",
    )
    assert data.matches["home_team"].tolist() == ["Arsenal"]


def test_a_match_dated_tomorrow_is_kept(tmp_path: Path) -> None:
    """One day of grace: a fixture list in another time zone may already read tomorrow."""
    tomorrow = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)).strftime("%d/%m/%Y")
    data = _load(tmp_path, [f"E0,{tomorrow},15:00,Arsenal,Chelsea,1,0,H"])
    assert len(data.matches) == 1


def test_a_kick_off_at_24_00_is_no_time(tmp_path: Path) -> None:
    data = _load(tmp_path, ["E0,12/08/2023,24:00,Arsenal,Chelsea,1,0,H"])
    assert not data.matches["kickoff_time_known"].any()
    assert data.report.repaired.get("kickoff_time_defaulted") == 1


def test_a_price_five_times_below_the_others_is_an_outlier(tmp_path: Path) -> None:
    data = _load(
        tmp_path,
        ["E0,12/08/2023,15:00,Arsenal,Chelsea,1,0,H,1.2,7,30,1.2,7,30,1.2,7,5"],
        ODDS_HEADER,
    )
    assert _quotes_dropped(data) == {"odds_outlier": 1}


def test_an_outlier_needs_three_bookmakers_voting_on_the_row(tmp_path: Path) -> None:
    """Two prices, 30 and 300, are no majority: neither is dropped."""
    rows = [
        "E0,12/08/2023,15:00,Arsenal,Chelsea,1,0,H,1.2,7,30,1.2,7,300,,,",
        "E0,13/08/2023,15:00,Leeds,Hull,1,0,H,2,3,4,2,3,4,2,3,4",
    ]
    data = _load(tmp_path, rows, ODDS_HEADER)
    assert "odds_outlier" not in _quotes_dropped(data)


def test_the_outlier_factor_is_five(tmp_path: Path) -> None:
    data = _load(
        tmp_path,
        ["E0,12/08/2023,15:00,Arsenal,Chelsea,1,0,H,1.2,7,30,1.2,7,30,1.2,7,165"],
        ODDS_HEADER,
    )
    assert _quotes_dropped(data) == {"odds_outlier": 1}  # 5.5 times the median


@pytest.mark.parametrize(
    "prices",
    ["1.4,3,3.5", "2.5,2.5,10"],  # booksum 1.333 (inside 1.40) and exactly 0.90 (the bound)
    ids=["booksum-1.33", "booksum-at-the-lower-bound"],
)
def test_a_booksum_inside_the_range_is_kept(tmp_path: Path, prices: str) -> None:
    data = _load(
        tmp_path,
        [f"E0,12/08/2023,15:00,Arsenal,Chelsea,1,0,H,{prices}"],
        HEADER + ",B365H,B365D,B365A",
    )
    assert "overround_out_of_range" not in _quotes_dropped(data)
    assert len(data.odds) == 1


def test_the_issue_sample_keeps_at_most_its_cap() -> None:
    report = IntegrityReport(max_issues=1)
    report.add_issue(Issue("a", 1, "x", "y", "z"))
    report.add_issue(Issue("a", 2, "x", "y", "z"))
    assert len(report.issues) == 1


def test_best_prices_may_sum_as_low_as_0_80(tmp_path: Path) -> None:
    """The best price of each outcome comes from different bookmakers: their booksum runs lower
    than one bookmaker's (0.804 here) and is kept down to 0.80."""
    data = _load(
        tmp_path,
        ["E0,12/08/2023,15:00,Arsenal,Chelsea,1,0,H,3.5,3.5,4.3"],
        HEADER + ",MaxH,MaxD,MaxA",
    )
    assert "overround_out_of_range" not in _quotes_dropped(data)
    assert len(data.odds) == 1
