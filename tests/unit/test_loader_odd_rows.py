"""Odd rows the football loader once read silently: each is now read right, dropped or repaired,
counted, and named by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketcast.data.validation import (
    REPEATED_HEADER,
    ROW_DROP_REASONS,
    SAME_TEAM,
    TEAM_TWICE_ON_DAY,
    IntegrityReport,
    Issue,
)
from marketcast.datasets.football_data import FootballData, load_football

HEADER = [
    "Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "Referee",
    "B365H", "B365D", "B365A", "MaxH", "MaxD", "MaxA",
]  # fmt: skip


def row(
    date: str = "12/08/2023",
    home: str = "Arsenal",
    away: str = "Forest",
    hg: str = "2",
    ag: str = "1",
    referee: str = "M Jones",
    b365: tuple[str, str, str] = ("1.25", "6.5", "12.0"),
    best: tuple[str, str, str] = ("1.3", "7.0", "13.0"),
    div: str = "E0",
) -> list[str]:
    return [div, date, home, away, hg, ag, referee, *b365, *best]


def write(
    tmp_path: Path,
    rows: list[list[str]],
    *,
    name: str = "E0/2023-2024.csv",
    newline: str = "\n",
    encoding: str = "utf-8",
) -> Path:
    """``rows`` under ``HEADER`` (a row may be another header)."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(r) for r in [HEADER, *rows]]
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def issues(report: IntegrityReport, reason: str) -> list[Issue]:
    return [i for i in report.issues if i.reason == reason]


def only_issue(report: IntegrityReport, reason: str) -> Issue:
    found = issues(report, reason)
    assert len(found) == 1, report.issues
    return found[0]


def prices(data: FootballData, home: str, bookmaker: str) -> list[float]:
    odds = data.odds
    match_id = data.matches.loc[data.matches["home_team"] == home, "match_id"].item()
    sel = odds[(odds["match_id"] == match_id) & (odds["bookmaker"] == bookmaker)]
    return sel[["odds_0", "odds_1", "odds_2"]].iloc[0].tolist()


def counts_add_up(report: IntegrityReport) -> bool:
    return report.rows_read == report.rows_kept + sum(report.dropped.values())


# --- a header repeated further down ----------------------------------------------------------


def test_a_header_with_other_columns_reads_the_rows_below_it_by_its_columns(
    tmp_path: Path,
) -> None:
    """Two files joined with their headers, the second with B365 and Max swapped: the rows
    below the second header were read by the first, so Max's prices were taken for B365's."""
    swapped = [*HEADER[:7], "MaxH", "MaxD", "MaxA", "B365H", "B365D", "B365A"]
    below = row(home="Leeds", away="Spurs")
    below = [*below[:7], *below[10:13], *below[7:10]]  # written in the swapped order
    data = load_football([write(tmp_path, [row(), swapped, below])])
    assert data.matches["home_team"].tolist() == ["Arsenal", "Leeds"]
    assert prices(data, "Leeds", "b365") == [1.25, 6.5, 12.0]
    assert prices(data, "Leeds", "max") == [1.3, 7.0, 13.0]
    assert data.matches["source_row"].tolist() == [2, 4]
    report = data.report
    assert report.dropped[REPEATED_HEADER] == 1
    assert report.dropped["unparseable_date"] == 0
    assert counts_add_up(report)
    issue = only_issue(report, REPEATED_HEADER)
    assert (issue.row, issue.field) == (3, None)
    assert issue.value is not None
    assert "column 8 is 'MaxH', was 'B365H'" in issue.value


def test_the_same_header_again_is_counted_as_a_repeated_header(tmp_path: Path) -> None:
    """It was dropped as an unparseable date ('Date')."""
    path = write(tmp_path, [row(), HEADER, row(home="Leeds", away="Spurs")])
    data = load_football([path])
    assert data.matches["source_row"].tolist() == [2, 4]
    assert data.report.dropped["unparseable_date"] == 0
    assert data.report.dropped[REPEATED_HEADER] == 1
    issue = only_issue(data.report, REPEATED_HEADER)
    assert (issue.file, issue.row, issue.value) == (
        str(path),
        3,
        "the header again (as on line 1)",
    )
    assert counts_add_up(data.report)


def test_a_repeated_header_may_bring_columns_the_first_lacks(tmp_path: Path) -> None:
    """Its rows are read as a file of their own would be; the rows above have no such cell."""
    wider = [*HEADER, "Time", "PSH", "PSD", "PSA"]
    below = [*row(home="Leeds", away="Spurs"), "17:30", "1.28", "6.6", "12.5"]
    data = load_football([write(tmp_path, [row(), wider, below])])
    assert data.matches["kickoff_time_known"].tolist() == [False, True]
    assert prices(data, "Leeds", "pinnacle") == [1.28, 6.6, 12.5]
    assert set(data.odds.loc[data.odds["bookmaker"] == "pinnacle", "match_id"]) == {
        "E0:2023-08-12:Leeds:Spurs"
    }
    assert data.report.dropped[REPEATED_HEADER] == 1


def test_reasons_clean_files_never_give_are_reported_only_once_found(tmp_path: Path) -> None:
    """A clean file's report keeps the keys reports always had."""
    report = load_football([write(tmp_path, [row()])]).report
    assert list(report.dropped) == list(ROW_DROP_REASONS)
    assert "control_characters_removed" not in report.repaired


# --- impossible fixtures ---------------------------------------------------------------------


@pytest.mark.parametrize("away", ["Arsenal", "arsenal"])
def test_a_team_playing_itself_is_dropped(tmp_path: Path, away: str) -> None:
    data = load_football([write(tmp_path, [row(away=away), row(home="Leeds", away="Spurs")])])
    assert data.matches["home_team"].tolist() == ["Leeds"]
    assert data.report.dropped[SAME_TEAM] == 1
    issue = only_issue(data.report, SAME_TEAM)
    assert (issue.row, issue.field, issue.value) == (2, "AwayTeam", f"Arsenal v {away}")
    assert counts_add_up(data.report)


@pytest.mark.parametrize(
    "second",
    [
        pytest.param(("Arsenal", "Leeds"), id="home_twice"),
        pytest.param(("Forest", "Arsenal"), id="return_fixture_same_day"),
        pytest.param(("Leeds", "Forest"), id="away_twice"),
    ],
)
def test_a_team_twice_on_one_day_drops_every_such_row_naming_them_all(
    tmp_path: Path, second: tuple[str, str]
) -> None:
    """One of the rows is wrong and nothing tells which: all go, each issue names both."""
    home, away = second
    rows = [row(), row(home=home, away=away), row(home="Spurs", away="Wolves")]
    path = write(tmp_path, rows)
    data = load_football([path])
    assert data.matches["home_team"].tolist() == ["Spurs"]
    assert data.report.dropped[TEAM_TWICE_ON_DAY] == 2
    found = issues(data.report, TEAM_TWICE_ON_DAY)
    assert [i.row for i in found] == [2, 3]
    for issue in found:
        assert issue.value is not None
        assert "twice on 2023-08-12 in E0" in issue.value
        assert issue.value.endswith(f"{path} row 2, {path} row 3")
    assert counts_add_up(data.report)


def test_a_team_twice_on_one_day_across_two_files_names_both(tmp_path: Path) -> None:
    first = write(tmp_path, [row()], name="a/E0/2023-2024.csv")
    second = write(tmp_path, [row(away="Leeds")], name="b/E0/2023-2024.csv")
    data = load_football([first, second])
    assert data.matches.empty
    issue = issues(data.report, TEAM_TWICE_ON_DAY)[1]
    assert (issue.file, issue.row, issue.field) == (str(second), 2, "HomeTeam")
    assert issue.value == (
        f"Arsenal plays twice on 2023-08-12 in E0: {first} row 2, {second} row 2"
    )


def test_copies_of_one_fixture_are_duplicates_not_a_team_playing_twice(tmp_path: Path) -> None:
    data = load_football([write(tmp_path, [row(), row(), row(hg="3")])])
    assert len(data.matches) == 1
    assert TEAM_TWICE_ON_DAY not in data.report.dropped
    dropped = data.report.dropped
    assert (dropped["duplicate_match"], dropped["duplicate_match_other_result"]) == (1, 1)


def test_copies_of_one_fixture_in_other_letter_case_are_duplicates(tmp_path: Path) -> None:
    """``Everton v arsenal`` beside ``Everton v Arsenal``: both were dropped as a team playing
    twice (and before that both were kept, ``arsenal`` a club of its own)."""
    data = load_football([write(tmp_path, [row(), row(away="forest")])])
    assert data.matches["away_team"].tolist() == ["Forest"]
    assert TEAM_TWICE_ON_DAY not in data.report.dropped
    assert data.report.dropped["duplicate_match"] == 1


def test_one_name_in_two_leagues_on_one_day_is_two_teams(tmp_path: Path) -> None:
    rows = [row(), row(away="Leeds", div="E1")]
    data = load_football([write(tmp_path, rows)])
    assert data.matches["league"].tolist() == ["E0", "E1"]
    assert TEAM_TWICE_ON_DAY not in data.report.dropped


# --- control characters ------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["Ever\x00ton", '"Ever\x01ton"', "Everton\x7f"])
def test_a_control_character_in_a_team_name_is_removed_counted_and_named(
    tmp_path: Path, cell: str
) -> None:
    """'Ever\\x00ton' was a team of its own beside 'Everton'."""
    rows = [row(home=cell), row(home="Everton", away="Leeds", date="19/08/2023")]
    data = load_football([write(tmp_path, rows)])
    assert data.matches["home_team"].tolist() == ["Everton", "Everton"]
    assert data.report.repaired["control_characters_removed"] == 1
    issue = only_issue(data.report, "control_character_removed")
    shown = cell.strip('"').replace("\x00", "\\x00").replace("\x01", "\\x01")
    shown = shown.replace("\x7f", "\\x7f")
    assert (issue.row, issue.field, issue.value) == (2, "HomeTeam", f"{shown} -> Everton")
    assert sum(data.report.dropped.values()) == 0


def test_a_control_character_in_a_price_is_removed_and_the_quote_kept(tmp_path: Path) -> None:
    data = load_football([write(tmp_path, [row(b365=("1.25", "6.5\x00", "12.0"))])])
    assert prices(data, "Arsenal", "b365") == [1.25, 6.5, 12.0]
    issue = only_issue(data.report, "control_character_removed")
    assert (issue.field, issue.value) == ("B365D", "6.5\\x00 -> 6.5")


def test_a_control_character_in_the_header_is_named_and_the_name_read_as_written(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, [row()])
    path.write_text(path.read_text().replace("MaxH", "Max\x00H", 1))
    data = load_football([path])
    assert set(data.odds["bookmaker"]) == {"b365"}
    issue = only_issue(data.report, "control_character_in_header")
    assert (issue.row, issue.field, issue.value) == (
        1,
        "Max\\x00H",
        "column 11: matched as written",
    )


# --- a stray carriage return -------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_stray_cr_in_a_crlf_file_keeps_the_row_and_every_line_number(
    tmp_path: Path, encoding: str
) -> None:
    """``M\\rJones`` split its row into two ``malformed_row`` drops, and every later issue
    named the line after the one ``sed -n Np`` shows."""
    rows = [
        row(),
        row(home="Leeds", away="Spurs", referee="M\rJones"),
        row(home="Nott’m Forest" if encoding == "cp1252" else "Wolves", away="Burnley"),
        row(home="Fulham", away="Brentford", date="bad"),
    ]
    data = load_football([write(tmp_path, rows, newline="\r\n", encoding=encoding)])
    report = data.report
    assert report.dropped["malformed_row"] == 0
    assert data.matches["source_row"].tolist() == [2, 3, 4]
    assert only_issue(report, "unparseable_date").row == 5
    issue = only_issue(report, "control_character_removed")
    assert (issue.row, issue.field, issue.value) == (3, "Referee", "M\\x0dJones -> MJones")
    assert report.repaired["control_characters_removed"] == 1
    assert counts_add_up(report)


def test_a_file_of_old_mac_endings_still_breaks_rows_at_cr(tmp_path: Path) -> None:
    rows = [row(), row(home="Leeds", away="Spurs")]
    data = load_football([write(tmp_path, rows, newline="\r")])
    assert data.matches["source_row"].tolist() == [2, 3]
    assert "control_characters_removed" not in data.report.repaired


def test_an_old_mac_file_an_editor_gave_a_final_crlf_keeps_its_rows(tmp_path: Path) -> None:
    """Split at LF because it held one: the whole file was one header line, its matches
    lost without an error."""
    rows = [row(), row(home="Leeds", away="Spurs")]
    path = write(tmp_path, rows, newline="\r")
    path.write_bytes(path.read_bytes() + b"\n")  # the last CR becomes a CRLF
    data = load_football([path])
    assert data.matches["source_row"].tolist() == [2, 3]
    assert data.report.rows_kept == 2


def test_a_repeated_header_opened_by_a_byte_order_mark_is_the_same_header(
    tmp_path: Path,
) -> None:
    """Two Excel "CSV UTF-8" files joined: the second header read "\ufeffDiv", so it started
    a block without Div and its rows took the folder's name for their league."""
    path = write(
        tmp_path, [row(), ["\ufeffDiv", *HEADER[1:]], row(home="Leeds", away="Spurs", div="E1")]
    )
    data = load_football([path])
    assert data.matches["league"].tolist() == ["E0", "E1"]
    assert only_issue(data.report, REPEATED_HEADER).value == "the header again (as on line 1)"
    assert "league_from_path" not in data.report.repaired


# --- goals written in another notation ---------------------------------------------------------


@pytest.mark.parametrize("goals", ["1e1", "1E0", "+2", "Infinity", "0x1", "٣"])
@pytest.mark.parametrize("field", ["FTHG", "FTAG"])
def test_goals_not_written_in_digits_are_refused(tmp_path: Path, field: str, goals: str) -> None:
    """'1e1' became 10 goals, counted nowhere (``integers_written_as_floats`` looked for '.')."""
    bad = row(hg=goals) if field == "FTHG" else row(ag=goals)
    data = load_football([write(tmp_path, [bad, row(home="Leeds", away="Spurs", hg="2.0")])])
    assert data.matches["home_team"].tolist() == ["Leeds"]
    assert data.report.dropped["missing_result"] == 1
    issue = only_issue(data.report, "missing_result")
    assert (issue.row, issue.field, issue.value) == (2, field, goals)
    assert data.report.repaired["integers_written_as_floats"] == 1  # the 2.0, read as 2
    assert data.matches["home_goals"].tolist() == [2]


def test_a_lower_case_league_code_is_the_league_it_names(tmp_path: Path) -> None:
    """football-data writes its codes in capitals: an "e0" typed by hand was a league of its
    own, and its matches were no E0 team's history."""
    path = write(tmp_path, [row(), row(home="Leeds", away="Spurs", div=" e0")])
    data = load_football([path])
    assert data.matches["league"].tolist() == ["E0", "E0"]
    assert data.report.repaired["league_code_upper_cased"] == 1
    issue = only_issue(data.report, "league_code_upper_cased")
    assert (issue.row, issue.field, issue.value) == (3, "Div", "e0 read as E0")
