"""Files newer and messier than the bundle: Windows-1252 lines, football-data's extra-league
layout, month-first dates, a repeated match with another score, a file of only a header."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketcast.data.validation import DataError
from marketcast.datasets.football_data import load_football, load_football_sources
from tests.unit.test_validation import HEADER, only_issue, row, write

EXTRA_HEADER = [
    "Country", "League", "Season", "Date", "Time", "Home", "Away", "HG", "AG", "Res",
    "PSCH", "PSCD", "PSCA",
]  # fmt: skip


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    return ("\n".join(",".join(r) for r in [header, *rows]) + "\n").encode()


def _extra(country: str, league: str, home: str, away: str) -> list[str]:
    return [country, league, "2022", "05/06/2022", "20:00", home, away, "1", "0", "H", "2.1",
            "3.1", "3.6"]  # fmt: skip


def test_a_windows_1252_apostrophe_is_one_team_with_the_utf8_seasons(tmp_path: Path) -> None:
    """Read as Latin-1, cp1252's ’ (0x92) became a control character: "Nott’m Forest" of a
    cp1252 season and of a UTF-8 season were two teams."""
    utf8 = _csv(HEADER, [row(home="Nott’m Forest")])
    cp1252 = _csv(HEADER, [row(date="19/08/2023", home="Nott’m Forest")]).decode().encode("cp1252")
    data = load_football_sources([("E0/2023-2024.csv", utf8), ("E0/b/2023-2024.csv", cp1252)])
    assert set(data.matches["home_team"]) == {"Nott’m Forest"}


def test_one_stray_line_leaves_the_rest_of_a_utf8_file_as_it_is(tmp_path: Path) -> None:
    """One cp1252 line made the whole file Latin-1: every UTF-8 "Málaga" became "MÃ¡laga"."""
    path = write(
        tmp_path,
        [row(home="Málaga"), row(date="19/08/2023", home="PLACEHOLDER"), row(date="26/08/2023")],
    )
    path.write_bytes(path.read_bytes().replace(b"PLACEHOLDER", "Málaga".encode("cp1252")))
    data = load_football([path])
    assert data.matches["home_team"].tolist() == ["Málaga", "Málaga", "Arsenal"]
    assert data.report.repaired == {"cp1252_decoded_rows": 1}
    assert only_issue(data.report, "not_utf8_decoded_as_cp1252").row == 3


def test_extra_league_files_in_one_folder_are_one_league_each() -> None:
    """ARG.csv and BRA.csv side by side were both the folder's league: ratings and serving
    mixed two countries."""
    arg = _csv(EXTRA_HEADER, [_extra("Argentina", "Liga Profesional", "Boca Juniors", "River")])
    bra = _csv(EXTRA_HEADER, [_extra("Brazil", "Serie A", "Flamengo", "Santos")])
    data = load_football_sources([("new/ARG.csv", arg), ("new/BRA.csv", bra)])
    leagues = dict(zip(data.matches["home_team"], data.matches["league"], strict=True))
    assert leagues == {"Boca Juniors": "ARG", "Flamengo": "BRA"}


def test_month_first_dates_are_refused_naming_the_row() -> None:
    """Dates re-saved as 8/13/2022 lost the 13th-31st as unparseable and kept the rest with
    day and month swapped."""
    rows = [row(date="8/5/2023"), row(date="8/13/2023"), row(date="8/20/2023")]
    with pytest.raises(DataError, match="month/day/year") as caught:
        load_football_sources([("E0/2023-2024.csv", _csv(HEADER, rows))])
    assert (caught.value.row, caught.value.field) == (3, "Date")
    # a day-first file with one mistyped date is still read, the typo dropped
    rows = [row(date="13/08/2023"), row(date="20/08/2023"), row(date="8/27/2023")]
    data = load_football_sources([("E0/2023-2024.csv", _csv(HEADER, rows))])
    assert data.report.rows_kept == 2
    # ... and named as month-first, with a word on the dates that read both ways (the loader
    # audit of 2026-11-25: it was an unparseable date, nothing said why)
    issue = only_issue(data.report, "month_first_dates")
    assert (issue.row, issue.field, issue.value) == (4, "Date", "8/27/2023")


def test_a_repeated_match_with_another_score_is_counted_apart_from_copies() -> None:
    first = _csv(HEADER, [row(), row(date="19/08/2023", home="Chelsea")])
    second = _csv(HEADER, [row(hg="5"), row(date="19/08/2023", home="Chelsea")])
    data = load_football_sources([("E0/2023-2024.csv", first), ("E0/x/2023-2024.csv", second)])
    dropped = data.report.dropped
    assert (dropped["duplicate_match"], dropped["duplicate_match_other_result"]) == (1, 1)
    issue = only_issue(data.report, "duplicate_match_other_result")
    assert (issue.file, issue.row) == ("E0/x/2023-2024.csv", 2)
    assert issue.value is not None
    assert issue.value.endswith("5-1 dropped, 2-1 kept from E0/2023-2024.csv row 2")
    assert data.matches["home_goals"].tolist() == [2, 2]  # the first file's scores


def test_a_file_of_only_a_header_is_reported() -> None:
    data = load_football_sources(
        [("E0/2023-2024.csv", _csv(HEADER, [row()])), ("E0/x/2022-2023.csv", _csv(HEADER, []))]
    )
    assert data.report.rows_kept == 1
    assert only_issue(data.report, "header_only_file").file == "E0/x/2022-2023.csv"


def test_extra_league_files_kept_one_per_year_take_the_folders_league() -> None:
    """ARG/2022.csv and ARG/2023.csv became leagues '2022' and '2023', and ARG/2022.csv beside
    BRA/2022.csv one league '2022' of two countries."""
    arg = _csv(EXTRA_HEADER, [_extra("Argentina", "Liga Profesional", "Boca Juniors", "River")])
    bra = _csv(EXTRA_HEADER, [_extra("Brazil", "Serie A", "Flamengo", "Santos")])
    later = arg.replace(b"05/06/2022", b"05/06/2023")
    data = load_football_sources(
        [("ARG/2022.csv", arg), ("ARG/2023.csv", later), ("BRA/2022.csv", bra)]
    )
    assert sorted(data.matches["league"]) == ["ARG", "ARG", "BRA"]


def test_a_byte_windows_1252_leaves_undefined_spoils_only_itself() -> None:
    """One 0x81 in a line made the whole line Latin-1: its ’ a control character again."""
    line = _csv(HEADER, [row(home="PLACEHOLDER")]).replace(b"PLACEHOLDER", b"Nott\x92m Forest\x81")
    data = load_football_sources([("E0/2023-2024.csv", line)])
    assert data.matches["home_team"].tolist() == ["Nott’m Forest\x81"]
