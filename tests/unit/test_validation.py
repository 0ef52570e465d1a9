"""Integrity checks: one test per kind of bad input, each counted and named in the report."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.validation import (
    QUOTE_DROP_REASONS,
    DataError,
    IntegrityReport,
    Issue,
    quote_drop_codes,
)
from marketcast.datasets.football_data import load_football

HEADER = [
    "Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR",
    "B365H", "B365D", "B365A", "MaxH", "MaxD", "MaxA", "AHh", "B365AHH", "B365AHA",
]  # fmt: skip


def row(
    date: str = "12/08/2023",
    home: str = "Arsenal",
    away: str = "Forest",
    hg: str = "2",
    ag: str = "1",
    b365: tuple[str, str, str] = ("1.25", "6.5", "12.0"),
    best: tuple[str, str, str] = ("1.3", "7.0", "13.0"),
    ah: tuple[str, str, str] = ("-1.75", "1.95", "1.95"),
) -> list[str]:
    return ["E0", date, home, away, hg, ag, _result(hg, ag), *b365, *best, *ah]


def _result(hg: str, ag: str) -> str:
    """``FTR`` as football-data writes it beside the goals; blank where a goal count is not a
    number (a blank ``FTR`` beside the goals is a counted repair)."""
    if not (hg.isdigit() and ag.isdigit()):
        return ""
    return "H" if int(hg) > int(ag) else "A" if int(hg) < int(ag) else "D"


def write(tmp_path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    path = tmp_path / "E0" / "2023-2024.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def only_issue(report: IntegrityReport, reason: str) -> Issue:
    found = [i for i in report.issues if i.reason == reason]
    assert len(found) == 1, report.issues
    return found[0]


def test_clean_file_has_nothing_dropped(tmp_path: Path) -> None:
    data = load_football([write(tmp_path, [row()])])
    report = data.report
    assert (report.rows_read, report.rows_kept, report.quotes_kept) == (1, 1, 3)
    assert sum(report.dropped.values()) == 0
    assert sum(report.quotes_dropped.values()) == 0
    assert report.issues == []


def test_odds_le_1_drops_the_quote_not_the_match(tmp_path: Path) -> None:
    path = write(tmp_path, [row(b365=("1.0", "6.5", "12.0"))])
    data = load_football([path])
    assert data.report.rows_kept == 1
    assert data.report.quotes_dropped["odds_le_1"] == 1
    assert set(data.odds["bookmaker"]) == {"max", "b365"}  # b365 1x2 gone, b365 ah kept
    assert len(data.odds) == 2
    issue = only_issue(data.report, "odds_le_1")
    assert (issue.file, issue.row, issue.field, issue.value) == (
        str(path),
        2,
        "B365H/B365D/B365A",
        "1.0/6.5/12.0",
    )


def test_overround_out_of_range_with_looser_floor_for_best_odds(tmp_path: Path) -> None:
    # booksum 1/1.6 + 1/7.5 + 1/14 = 0.83: below 0.90 for a bookmaker, above 0.80 for max
    under = ("1.6", "7.5", "14.0")
    data = load_football([write(tmp_path, [row(b365=under, best=under)])])
    assert data.report.quotes_dropped["overround_out_of_range"] == 1
    issue = only_issue(data.report, "overround_out_of_range")
    assert issue.field == "B365H/B365D/B365A"
    kept = data.odds.loc[data.odds["market"] == "1x2", "bookmaker"].tolist()
    assert kept == ["max"]  # 0.83 is allowed for the best-odds pseudo-bookmaker


def test_overround_too_high_is_dropped(tmp_path: Path) -> None:
    data = load_football([write(tmp_path, [row(ah=("-1.75", "1.2", "1.3"))])])
    assert data.report.quotes_dropped["overround_out_of_range"] == 1
    assert "ah" not in set(data.odds["market"])


def test_unparseable_odds_and_invalid_handicap_line(tmp_path: Path) -> None:
    rows = [
        row(b365=("1.25", "abc", "12.0")),
        row(date="13/08/2023", home="Spurs", ah=("0.758", "1.9", "1.95")),
    ]
    data = load_football([write(tmp_path, rows)])
    assert data.report.quotes_dropped["unparseable_odds"] == 1
    assert data.report.quotes_dropped["invalid_line"] == 1
    assert only_issue(data.report, "unparseable_odds").value == "1.25/abc/12.0"
    assert only_issue(data.report, "invalid_line").row == 3


def test_duplicate_match_keeps_the_first(tmp_path: Path) -> None:
    rows = [row(hg="2"), row(hg="2"), row(date="19/08/2023")]
    data = load_football([write(tmp_path, rows)])
    assert data.report.dropped["duplicate_match"] == 1
    assert data.report.rows_kept == 2
    first = data.matches[data.matches["match_id"] == "E0:2023-08-12:Arsenal:Forest"]
    assert first["home_goals"].tolist() == [2]
    issue = only_issue(data.report, "duplicate_match")
    assert (issue.row, issue.value) == (3, "E0:2023-08-12:Arsenal:Forest")
    # the dropped duplicate's quotes are not in the odds table
    assert len(data.odds) == 2 * 3


def test_duplicate_across_files(tmp_path: Path) -> None:
    a = write(tmp_path / "a", [row()])
    b = write(tmp_path / "b", [row()])
    data = load_football([a, b])
    assert data.report.dropped["duplicate_match"] == 1
    assert data.matches["source_file"].tolist() == [str(a)]


def test_unparseable_date(tmp_path: Path) -> None:
    rows = [row(date="31/02/2023"), row(date="next saturday", home="Spurs"), row(home="Fulham")]
    data = load_football([write(tmp_path, rows)])
    assert data.report.dropped["unparseable_date"] == 2
    assert data.report.rows_kept == 1
    values = sorted(i.value for i in data.report.issues if i.reason == "unparseable_date")
    assert values == ["31/02/2023", "next saturday"]
    assert {i.field for i in data.report.issues} == {"Date"}


@pytest.mark.parametrize(
    ("hg", "ag", "field", "value"),
    [("", "1", "FTHG", ""), ("2", "x", "FTAG", "x"), ("1.5", "0", "FTHG", "1.5")],
)
def test_missing_or_non_numeric_result(
    tmp_path: Path, hg: str, ag: str, field: str, value: str
) -> None:
    data = load_football([write(tmp_path, [row(hg=hg, ag=ag), row(home="Spurs")])])
    assert data.report.dropped["missing_result"] == 1
    assert data.report.rows_kept == 1
    issue = only_issue(data.report, "missing_result")
    assert (issue.row, issue.field, issue.value) == (2, field, value)


def test_missing_team(tmp_path: Path) -> None:
    data = load_football([write(tmp_path, [row(away=" "), row(home="Spurs")])])
    assert data.report.dropped["missing_team"] == 1
    issue = only_issue(data.report, "missing_team")
    assert (issue.row, issue.field) == (2, "AwayTeam")
    assert data.matches["home_team"].tolist() == ["Spurs"]


def test_missing_required_column_raises_naming_file_row_field(tmp_path: Path) -> None:
    header = [h for h in HEADER if h != "FTHG"]
    rows = [[v for h, v in zip(HEADER, row(), strict=True) if h != "FTHG"]]
    path = write(tmp_path, rows, header)
    with pytest.raises(DataError) as info:
        load_football([path])
    assert str(info.value) == f"{path}, row 1, field 'FTHG': missing required column"
    assert (info.value.file, info.value.row, info.value.field) == (str(path), 1, "FTHG")


def test_collect_mode_records_the_error_and_loads_the_rest(tmp_path: Path) -> None:
    good = write(tmp_path / "good", [row()])
    bad = tmp_path / "bad" / "E0.csv"
    bad.parent.mkdir()
    bad.write_text("Div,Date,HomeTeam,AwayTeam,FTHG\nE0,12/08/2023,A,B,1\n")
    data = load_football([good, bad], on_error="collect")
    assert data.report.rows_kept == 1
    assert data.report.files_read == 1
    assert not data.report.ok
    assert data.report.errors == [Issue(str(bad), 1, "FTAG", "missing required column")]


def test_empty_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="empty file"):
        load_football([path])


def test_non_utf8_bytes_are_read_as_cp1252_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, [row(home="PLACEHOLDER")])
    path.write_bytes(path.read_bytes().replace(b"PLACEHOLDER", "Málaga".encode("cp1252")))
    data = load_football([path])
    assert data.matches["home_team"].tolist() == ["Málaga"]
    assert data.report.repaired == {"cp1252_decoded_rows": 1}
    issue = only_issue(data.report, "not_utf8_decoded_as_cp1252")
    assert (issue.file, issue.row) == (str(path), 2)


def test_a_row_may_stop_short_of_the_headers_unnamed_columns_only(tmp_path: Path) -> None:
    """``...,AHh,B365AHH,B365AHA,,,``: a row without those three blanks loses nothing."""
    header = [*HEADER, "", "", ""]
    path = write(tmp_path, [[*row(), "", "", ""], row(home="Spurs", away="Leeds")], header=header)
    data = load_football([path])
    assert data.matches["home_team"].tolist() == ["Arsenal", "Spurs"]
    assert data.report.repaired["ragged_rows"] == 1
    issue = only_issue(data.report, "ragged_row_aligned")
    assert (issue.row, issue.value) == (3, "16 fields of 19")
    assert len(data.odds) == 2 * 3


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param([*row(home="Spurs"), ""], id="one_blank_field_too_many"),
        pytest.param(row(home="Spurs")[:10], id="fields_missing"),
    ],
)
def test_a_row_of_another_width_is_dropped_even_when_its_extra_field_is_blank(
    tmp_path: Path, bad: list[str]
) -> None:
    """A stray comma before a blank last cell looks like a trailing comma: Pinnacle's draw
    price was read as its home price. A lost comma shifts the other way."""
    data = load_football([write(tmp_path, [row(), bad])])
    assert data.matches["home_team"].tolist() == ["Arsenal"]
    issue = only_issue(data.report, "malformed_row")
    assert (issue.row, issue.value) == (3, f"{len(bad)} fields, the header has 16")


def test_a_row_with_a_stray_comma_is_dropped_not_shifted(tmp_path: Path) -> None:
    """A comma inside a field moves every later column: its odds must not be read one off."""
    stray = row(home="Spurs")
    stray.insert(4, "Smith")  # e.g. an unquoted "Smith, J" in a referee column
    path = write(tmp_path, [row(), stray, row(home="Leeds", away="Spurs")])
    data = load_football([path])
    assert data.matches["home_team"].tolist() == ["Arsenal", "Leeds"]
    assert data.report.dropped["malformed_row"] == 1
    issue = only_issue(data.report, "malformed_row")
    assert (issue.file, issue.row, issue.value) == (str(path), 3, "17 fields, the header has 16")
    assert data.report.rows_read == data.report.rows_kept + sum(data.report.dropped.values())


@pytest.mark.parametrize(
    "bad_home", ['"Spurs', '"' + "x" * 200_000 + '"'], ids=["unclosed_quote", "huge_field"]
)
def test_a_row_the_csv_reader_cannot_split_loses_only_itself(tmp_path: Path, bad_home: str) -> None:
    """An open quote used to swallow the rest of the file into one field (115 of 120 rows)."""
    rows = [
        row(home="Leeds"),
        row(home=bad_home),
        *(row(home=f"T{i}", away=f"U{i}") for i in range(5)),
    ]
    data = load_football([write(tmp_path, rows)])
    assert data.report.rows_kept == 6
    assert data.report.dropped["malformed_row"] == 1
    issue = only_issue(data.report, "malformed_row")
    assert issue.row == 3
    assert issue.value is not None
    assert issue.value.startswith("cannot split the row")


def test_old_mac_line_endings_and_gzip_read_like_the_plain_file(tmp_path: Path) -> None:
    rows = [row(), row(home="Leeds", date="19/08/2023")]
    plain = write(tmp_path / "plain", rows)
    text = plain.read_bytes()
    expected = load_football([plain]).matches.drop(columns=["source_file"])
    cr = tmp_path / "cr" / "E0" / "2023-2024.csv"
    gz = tmp_path / "gz" / "E0" / "2023-2024.csv.gz"
    gz_named_csv = tmp_path / "gz_named" / "E0" / "2023-2024.csv"
    for path, payload in (
        (cr, text.replace(b"\n", b"\r")),
        (gz, gzip.compress(text)),
        (gz_named_csv, gzip.compress(text)),
    ):
        path.parent.mkdir(parents=True)
        path.write_bytes(payload)
        loaded = load_football([path.parents[1]])  # the folder: .csv.gz is found too
        assert loaded.report.files_read == 1
        pd.testing.assert_frame_equal(loaded.matches.drop(columns=["source_file"]), expected)
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip.compress(text)[:30])
    with pytest.raises(DataError, match=r"broken\.csv\.gz: cannot decompress gzip data"):
        load_football([broken])


@pytest.mark.parametrize(
    ("hg", "ag", "reason", "field"),
    [
        ("inf", "1", "missing_result", "FTHG"),
        ("31", "1", "implausible_goals", "FTHG"),
        ("2", "999", "implausible_goals", "FTAG"),
    ],
)
def test_goals_that_are_infinite_or_implausible_drop_the_match(
    tmp_path: Path, hg: str, ag: str, reason: str, field: str
) -> None:
    """``inf`` used to pass the whole-number check and become -9223372036854775808 goals."""
    data = load_football([write(tmp_path, [row(), row(home="Leeds", hg=hg, ag=ag)])])
    assert data.matches["home_team"].tolist() == ["Arsenal"]
    issue = only_issue(data.report, reason)
    assert (issue.row, issue.field) == (3, field)
    assert data.report.dropped[reason] == 1


def test_a_date_outside_the_season_the_file_is_named_for_is_dropped(tmp_path: Path) -> None:
    dates = ["31/05/2023", "01/06/2023", "30/09/2024", "01/10/2024", "12/08/2099"]
    data = load_football(
        [write(tmp_path, [row(date=d, home=f"T{i}") for i, d in enumerate(dates)])]
    )
    assert data.matches["home_team"].tolist() == ["T1", "T2"]  # 2023-2024 runs June to September
    dropped = [i for i in data.report.issues if i.reason == "date_outside_season"]
    assert [(i.row, i.field, i.value) for i in dropped] == [
        (2, "Date", "31/05/2023"),
        (5, "Date", "01/10/2024"),
        (6, "Date", "12/08/2099"),
    ]


def test_a_result_dated_in_the_future_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "E0.csv"  # no season in the name, so only the clock can tell
    path.write_text("\n".join(",".join(r) for r in [HEADER, row(), row(date="12/08/2099")]))
    data = load_football([path])
    assert len(data.matches) == 1
    assert only_issue(data.report, "date_in_future").value == "12/08/2099"


def test_a_repeated_header_column_is_reported_and_the_first_read(tmp_path: Path) -> None:
    path = write(tmp_path, [[*row(), "9"]], header=[*HEADER, "FTHG"])
    data = load_football([path])
    assert data.matches["home_goals"].tolist() == [2]
    assert data.report.repaired["repeated_header_fields"] == 1
    issue = only_issue(data.report, "repeated_column_ignored")
    assert (issue.row, issue.field, issue.value) == (1, "FTHG", "column 17")


def test_whitespace_only_lines_are_blank_rows(tmp_path: Path) -> None:
    path = write(tmp_path, [row(), ["   "], [",, ,"], row(home="Leeds", away="Spurs")])
    data = load_football([path])
    assert (data.report.blank_rows, data.report.rows_read) == (2, 2)
    assert data.matches["source_row"].tolist() == [2, 5]


def test_row_counts_add_up_and_report_is_json(tmp_path: Path) -> None:
    rows = [row(), row(), row(date="?", home="B"), row(hg="", home="C"), row(home="", away="D")]
    report = load_football([write(tmp_path, rows)]).report
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())
    encoded = json.loads(json.dumps(report.to_dict()))
    assert encoded["dropped"] == {
        "malformed_row": 0,
        "unparseable_date": 1,
        "date_outside_season": 0,
        "missing_team": 1,
        "missing_result": 1,
        "implausible_goals": 0,
        "date_in_future": 0,
        "duplicate_match": 1,
        "duplicate_match_other_result": 0,
    }
    assert encoded["issues"][0].keys() == {"file", "row", "field", "reason", "value"}


def test_issue_sample_is_capped_but_counts_are_complete(tmp_path: Path) -> None:
    rows = [row(date=f"bad{i}") for i in range(30)]
    report = load_football([write(tmp_path, rows)], max_issues=5).report
    assert report.dropped["unparseable_date"] == 30
    assert len(report.issues) == 5


def test_merge_adds_counts() -> None:
    a = IntegrityReport(files_read=1, rows_read=3, rows_kept=2, repaired={"x": 1})
    a.drop("missing_team")
    a.drop_quotes("odds_le_1", 2)
    b = IntegrityReport(files_read=1, rows_read=1, rows_kept=1, repaired={"x": 2, "y": 1})
    b.errors.append(Issue("f.csv", 1, "FTHG", "missing required column"))
    merged = a.merge(b)
    assert (merged.files_read, merged.rows_read, merged.rows_kept) == (2, 4, 3)
    assert merged.repaired == {"x": 3, "y": 1}
    assert merged.dropped["missing_team"] == 1
    assert merged.quotes_dropped["odds_le_1"] == 2
    assert not merged.ok
    assert a.ok


def test_quote_drop_codes_precedence() -> None:
    odds = np.array([[0.5, np.nan], [1.9, 1.9], [np.nan, np.nan]])
    present = np.array([[True, True], [True, True], [False, False]])
    codes = quote_drop_codes(odds, present)
    assert QUOTE_DROP_REASONS[codes[0] - 1] == "unparseable_odds"
    assert codes[1] == 0
    assert codes[2] == -1


def test_a_bom_before_latin1_text_keeps_the_first_column(tmp_path: Path) -> None:
    """The BOM survived the Latin-1 fallback: ``ï»¿Div``, and the league became the folder's."""
    path = write(tmp_path, [row(home="PLACEHOLDER")])
    text = path.read_bytes().replace(b"PLACEHOLDER", "Málaga".encode("latin-1"))
    path.write_bytes(b"\xef\xbb\xbf" + text)
    data = load_football([path])
    assert data.matches[["league", "home_team"]].values.tolist() == [["E0", "Málaga"]]
    assert "league_from_path" not in data.report.repaired


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def test_an_archive_is_read_by_the_rules_of_a_folder(tmp_path: Path) -> None:
    """A macOS ``._`` member was read as a football file (and failed); gzip members were
    ignored ("no CSV files found")."""
    season = write(tmp_path / "src", [row(), row(home="Leeds", away="Spurs")]).read_bytes()
    archive = _tar(
        tmp_path / "upload.tar.gz",
        {
            "E0/2023-2024.csv.gz": gzip.compress(season),
            "E0/._2023-2024.csv": b"\x00\x05\x16\x07 resource fork",
            "E0/.hidden/2023-2024.csv": season,
        },
    )
    data = load_football([archive])
    assert data.report.errors == []
    assert data.matches["home_team"].tolist() == ["Arsenal", "Leeds"]


@pytest.mark.parametrize(
    "payload", [b"not a tar archive at all", None], ids=["not_tar", "truncated"]
)
def test_an_unreadable_archive_is_a_data_error_naming_it(
    tmp_path: Path, payload: bytes | None
) -> None:
    """Both were tracebacks (tarfile.ReadError, EOFError)."""
    archive = tmp_path / "upload.tar.gz"
    if payload is None:
        season = write(tmp_path / "src", [row()]).read_bytes()
        full = _tar(tmp_path / "full.tar.gz", {"E0/2023-2024.csv": season * 50}).read_bytes()
        payload = full[: len(full) // 2]
    archive.write_bytes(payload)
    with pytest.raises(DataError, match=r"upload\.tar\.gz: cannot read archive"):
        load_football([archive])
    report = load_football([archive], on_error="collect").report
    assert [e.file for e in report.errors] == [str(archive)]


def test_a_decimal_slip_on_a_long_shot_is_dropped_as_an_outlier(tmp_path: Path) -> None:
    """The loader audit of 2026-11-25: ``B365A`` 17 typed as 1700 moved the booksum by 0.06 and
    passed every check; it became the "best" price, and one cell took a backtest's ROI from
    +5.5% to +236%. A price five times off the median of three or more quotes is now dropped."""
    header = [*HEADER[:13], "PSH", "PSD", "PSA", "AvgH", "AvgD", "AvgA"]
    slipped = ["E0", "12/08/2023", "Arsenal", "Forest", "2", "1", "H"]
    slipped += ["1.25", "6.5", "1700", "1.3", "7.0", "17.5", "1.27", "6.8", "16.0"]
    slipped += ["1.24", "6.4", "15.5"]
    fine = ["E0", "19/08/2023", "Spurs", "Forest", "2", "1", "H"]
    fine += ["1.25", "6.5", "17.0", "1.3", "7.0", "17.5", "1.27", "6.8", "16.0"]
    fine += ["1.24", "6.4", "15.5"]
    data = load_football([write(tmp_path, [slipped, fine], header)])
    assert data.report.quotes_dropped["odds_outlier"] == 1
    issue = only_issue(data.report, "odds_outlier")
    assert (issue.row, issue.field, issue.value) == (2, "B365H/B365D/B365A", "1.25/6.5/1700.0")
    odds = data.odds[data.odds["market"] == "1x2"]
    assert odds["odds_2"].max() == 17.5  # the best away price is the real one
    assert sorted(odds.loc[odds["match_id"] == odds["match_id"].iloc[0], "bookmaker"]) == [
        "avg",
        "max",
        "pinnacle",
    ]


def test_two_quotes_that_disagree_are_both_kept(tmp_path: Path) -> None:
    """With two quotes there is no telling which one slipped: neither is an outlier."""
    data = load_football([write(tmp_path, [row(b365=("1.25", "6.5", "120.0"))])])
    assert data.report.quotes_dropped["odds_outlier"] == 0
    assert data.report.quotes_kept == 3


def test_a_slip_the_best_odds_column_copied_is_dropped_from_both(tmp_path: Path) -> None:
    """The review of 00fac6d: ``max`` copies the slipped price, so one slip among four quotes was
    two bad votes; the median between the pairs (about 2x from the slip, 50x from the truth)
    marked Pinnacle and the average and kept the slip. ``max`` no longer votes."""
    header = [*HEADER[:13], "PSH", "PSD", "PSA", "AvgH", "AvgD", "AvgA"]
    slipped = ["E0", "12/08/2023", "Arsenal", "Forest", "2", "1", "H"]
    slipped += ["1.25", "6.5", "170", "1.27", "6.8", "170", "1.27", "6.8", "17.0"]
    slipped += ["1.24", "6.4", "16.0"]
    data = load_football([write(tmp_path, [slipped], header)])
    assert data.report.quotes_dropped["odds_outlier"] == 2
    kept = data.odds.loc[data.odds["market"] == "1x2", "bookmaker"].tolist()
    assert sorted(kept) == ["avg", "pinnacle"]


def test_a_slipped_handicap_quote_is_dropped(tmp_path: Path) -> None:
    """Asian-handicap quotes are judged among those on the row's most common line (`_row_mode`,
    whose doctest covers rows with several lines)."""
    header = [
        "Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR",
        "AHh", "B365AHH", "B365AHA", "PAHH", "PAHA", "AvgAHH", "AvgAHA", "MaxAHH", "MaxAHA",
    ]  # fmt: skip
    base = ["E0", "12/08/2023", "Arsenal", "Forest", "2", "1", "H", "-1.5"]
    rows = [[*base, "2.0", "1.85", "2.02", "1.88", "1.98", "1.84", "2.05", "1.9"]]
    data = load_football([write(tmp_path, rows, header)])
    assert data.report.quotes_dropped["odds_outlier"] == 0
    rows = [[*base, "20.0", "1.01", "2.02", "1.88", "1.98", "1.84", "2.05", "1.9"]]
    data = load_football([write(tmp_path, rows, header)])  # B365's booksum 1.04: in range
    assert data.report.quotes_dropped["odds_outlier"] == 1
    ah = data.odds[data.odds["market"] == "ah"]
    assert sorted(ah["bookmaker"]) == ["avg", "max", "pinnacle"]
