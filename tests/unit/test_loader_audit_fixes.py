"""Loader audit: the season of a file not named ``YYYY-YYYY.csv``, infinite odds and handicap
lines, and issues naming the rows of a recomputed result or an unreadable kick-off time."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.validation import QUOTE_DROP_REASONS, quote_drop_codes
from marketcast.datasets.bundle import read_archive_csvs
from marketcast.datasets.football_data import (
    bundled_football_path,
    load_football,
    load_football_sources,
    odds_matrix,
)
from marketcast.orchestration.football import test_mask_last_seasons as last_seasons_mask
from tests.unit.test_validation import HEADER, only_issue, row, write


@cache
def _bundled(member: str) -> bytes:
    return dict(read_archive_csvs(bundled_football_path()))[f"football/{member}"]


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode()


# --------------------------------------------------------------------------------------------
# finding 1: a file whose name gives no season


@pytest.mark.parametrize(
    "name", ["mmz4281/1920/E0.csv", "new/E0_1920.csv", "2019-20/E0.csv", "x/E0.csv"]
)
def test_the_covid_season_in_a_file_not_named_for_it_stays_one_season(name: str) -> None:
    """E0 2019-20 ran to 26 July 2020: split at 1 July, football-data's own download layout
    (``mmz4281/1920/E0.csv``) made its last 66 matches a season of their own, the one "the last
    season" evaluated. The folder's ``1920``, or else the dates (all in one season's window),
    give the whole file one season, as the file named ``2019-2020.csv`` has."""
    season = _bundled("E0/2019-2020.csv")
    data = load_football_sources([(name, season)])
    named = load_football_sources([("E0/2019-2020.csv", season)])
    assert data.matches["season"].value_counts().to_dict() == {"2019-2020": 380}
    assert int(last_seasons_mask(data.matches, 1).sum()) == 380
    assert not [i for i in data.report.issues if i.reason == "season_split_at_1_july"]
    assert "season_split_at_1_july" not in data.report.repaired
    pd.testing.assert_frame_equal(
        data.matches.drop(columns="source_file"), named.matches.drop(columns="source_file")
    )
    pd.testing.assert_frame_equal(data.odds, named.odds)


def test_a_file_of_two_seasons_is_split_at_1_july_and_reported() -> None:
    dates = ["12/08/2022", "20/05/2023", "12/08/2023", "19/05/2024"]
    rows = [row(date=d, home=f"Home {i}") for i, d in enumerate(dates)]
    data = load_football_sources([("new/E0.csv", _csv(rows))])
    assert data.matches["season"].tolist() == ["2022-2023"] * 2 + ["2023-2024"] * 2
    assert data.report.repaired["season_split_at_1_july"] == 4
    issue = only_issue(data.report, "season_split_at_1_july")
    assert (issue.file, issue.row, issue.field) == ("new/E0.csv", None, "Date")
    assert issue.value is not None
    assert "2022-08-12 to 2024-05-19" in issue.value
    assert issue.value.endswith("split at 1 July: 2022-2023 2, 2023-2024 2")


def test_a_season_in_the_path_is_used_where_the_dates_fit_it() -> None:
    """Dates from June to September of one year lie in two seasons' windows: the folder's
    ``1920`` says which; without it each date's side of 1 July decides, and a file that this
    splits is reported. ``2021`` may be a year as well as football-data's code of 2020-21: a
    file of 2021-22's dates in a folder ``2021`` is 2021-22, whole, with no row dropped."""
    dates = ["17/06/2020", "30/06/2020", "01/07/2020", "26/07/2020"]  # after the COVID break
    body = _csv([row(date=d, home=f"Home {i}") for i, d in enumerate(dates)])
    hinted = load_football_sources([("mmz4281/1920/E0.csv", body)])
    assert hinted.matches["season"].tolist() == ["2019-2020"] * 4
    assert "season_split_at_1_july" not in hinted.report.repaired
    plain = load_football_sources([("new/E0.csv", body)])
    assert plain.matches["season"].tolist() == ["2019-2020"] * 2 + ["2020-2021"] * 2
    assert plain.report.repaired["season_split_at_1_july"] == 4
    issue = only_issue(plain.report, "season_split_at_1_july")
    assert "2019-2020 and 2020-2021 alike" in str(issue.value)

    dates = ["13/08/2021", "01/01/2022", "22/05/2022"]
    body = _csv([row(date=d, home=f"Home {i}") for i, d in enumerate(dates)])
    contradicted = load_football_sources([("mmz4281/2021/E0.csv", body)])
    assert contradicted.matches["season"].tolist() == ["2021-2022"] * 3
    assert contradicted.report.rows_kept == 3


# --------------------------------------------------------------------------------------------
# finding 2: infinite odds and handicap lines


def test_quote_drop_codes_refuses_an_infinite_price() -> None:
    odds = np.array([[np.inf, 1.8, 1.9], [2.0, 3.4, -np.inf], [2.0, 3.4, 3.8]])
    codes = quote_drop_codes(odds, np.ones((3, 3), dtype=bool))
    unparseable = QUOTE_DROP_REASONS.index("unparseable_odds") + 1
    assert codes.tolist() == [unparseable, unparseable, 0]


@pytest.mark.parametrize("written", ["inf", "Infinity", "-inf"])
def test_an_infinite_price_drops_the_quote_with_an_issue(tmp_path: Path, written: str) -> None:
    """``inf/1.05`` passed (inf > 1, and 1/inf adds 0 to the booksum): the best 1X2 price of
    the match became infinite."""
    data = load_football([write(tmp_path, [row(b365=(written, "6.5", "12.0"))])])
    assert data.report.quotes_dropped["unparseable_odds"] == 1
    issue = only_issue(data.report, "unparseable_odds")
    assert (issue.row, issue.field) == (2, "B365H/B365D/B365A")
    assert issue.file.endswith("2023-2024.csv")
    best, _ = odds_matrix(data, "1x2", "prematch", "best")
    assert best.tolist() == [[1.3, 7.0, 13.0]]  # the max quote alone


@pytest.mark.parametrize("written", ["inf", "-Infinity"])
def test_an_infinite_handicap_line_drops_the_quote(tmp_path: Path, written: str) -> None:
    data = load_football([write(tmp_path, [row(ah=(written, "1.95", "1.95"))])])
    assert data.report.quotes_dropped["unparseable_odds"] == 1
    issue = only_issue(data.report, "unparseable_odds")
    assert (issue.row, issue.field) == (2, "B365AHH/B365AHA/AHh")
    assert (data.odds["market"] != "ah").all()


# --------------------------------------------------------------------------------------------
# finding 3: repairs that named no row


def test_a_result_that_disagrees_with_the_goals_is_named(tmp_path: Path) -> None:
    rows = [row(), row(home="Leeds", away="Spurs", hg="1", ag="0")]
    rows[1][HEADER.index("FTR")] = "A"
    data = load_football([write(tmp_path, rows)])
    assert data.matches["result"].tolist() == ["H", "H"]
    assert data.report.repaired["result_recomputed"] == 1
    issue = only_issue(data.report, "result_recomputed")
    assert (issue.row, issue.field, issue.value) == (3, "FTR", "A (goals 1-0: H)")


@pytest.mark.parametrize("written", ["3pm", "1500", "12:30 PM", "15h00"])
def test_an_unreadable_kickoff_time_is_named_and_a_blank_one_only_counted(
    tmp_path: Path, written: str
) -> None:
    header = [*HEADER, "Time"]
    rows = [[*row(), written], [*row(home="Leeds", date="19/08/2023"), ""]]
    data = load_football([write(tmp_path, rows, header=header)])
    assert not data.matches["kickoff_time_known"].any()
    assert data.report.repaired["kickoff_time_defaulted"] == 2
    issue = only_issue(data.report, "kickoff_time_defaulted")
    assert (issue.row, issue.field, issue.value) == (2, "Time", written)


def test_a_blank_result_beside_the_goals_is_counted(tmp_path: Path) -> None:
    """Contract audit (low): a blank ``FTR`` was filled in from the goals without a count,
    where every repaired row is counted in the integrity report."""
    rows = [row(), row(home="Leeds", away="Spurs", hg="0", ag="2")]
    rows[1][HEADER.index("FTR")] = ""
    data = load_football([write(tmp_path, rows)])
    assert data.matches["result"].tolist() == ["H", "A"]
    assert data.report.repaired["result_from_goals"] == 1
    assert "result_recomputed" not in data.report.repaired
