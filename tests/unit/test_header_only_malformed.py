"""``header_only_file`` means a header and no data rows: a file whose rows were all malformed
was also reported as one, beside its ``malformed_row`` issues."""

from __future__ import annotations

from pathlib import Path

from marketcast.data.validation import IntegrityReport
from marketcast.datasets.football_data import load_football

HEADER = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,Referee,B365H,B365D,B365A"
GOOD = "E0,12/08/2023,Arsenal,Forest,2,1,M Jones,1.25,6.5,12.0"
SHORT = "E0,12/08/2023,Arsenal,Forest,2,1,M Jones"  # 7 fields of 10


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "E0.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reasons(report: IntegrityReport) -> list[str]:
    return [i.reason for i in report.issues]


def test_a_file_whose_only_row_is_malformed_is_not_header_only(tmp_path: Path) -> None:
    report = load_football([write(tmp_path, [HEADER, SHORT])]).report
    assert reasons(report) == ["malformed_row"]
    assert report.issues[0].row == 2
    assert (report.rows_read, report.rows_kept, report.dropped["malformed_row"]) == (1, 0, 1)


def test_a_file_whose_rows_are_all_malformed_gets_only_malformed_row_issues(
    tmp_path: Path,
) -> None:
    report = load_football([write(tmp_path, [HEADER, SHORT, "", f"{GOOD},extra"])]).report
    assert reasons(report) == ["malformed_row", "malformed_row"]
    assert [i.row for i in report.issues] == [2, 4]
    assert (report.rows_read, report.dropped["malformed_row"], report.blank_rows) == (2, 2, 1)


def test_a_header_and_blank_rows_is_still_header_only(tmp_path: Path) -> None:
    path = write(tmp_path, [HEADER, "", ",,,,,,,,,"])
    report = load_football([path]).report
    assert reasons(report) == ["header_only_file"]
    assert (report.issues[0].file, report.issues[0].value) == (str(path), "a header and no rows")
    assert (report.rows_read, report.blank_rows) == (0, 2)


def test_a_header_only_file_beside_a_malformed_row_elsewhere_is_still_reported(
    tmp_path: Path,
) -> None:
    """The check is per file: a malformed row in another file does not hide it."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = tmp_path / "a" / "E0.csv"
    bad.write_text(f"{HEADER}\n{SHORT}\n{GOOD}\n", encoding="utf-8")
    empty = tmp_path / "b" / "E0.csv"
    empty.write_text(f"{HEADER}\n", encoding="utf-8")
    report = load_football([bad, empty]).report
    assert [(i.file, i.reason) for i in report.issues] == [
        (str(bad), "malformed_row"),
        (str(empty), "header_only_file"),
    ]
    assert (report.rows_read, report.rows_kept) == (2, 1)
