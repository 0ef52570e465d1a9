"""football-data.co.uk loader: every real-file quirk, the bookmaker map, odds_matrix, real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.validation import DataError
from marketcast.datasets.football_data import (
    MATCH_COLUMNS,
    ODDS_COLUMNS,
    STAT_COLUMNS,
    detect_quote_columns,
    iter_csv_files,
    load_football,
    odds_matrix,
)

REAL = Path("/work/shared/data/football")

OLD_HEADER = [
    "Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR",
    "B365H", "B365D", "B365A", "PSH", "PSD", "PSA",
    "BbMxH", "BbMxD", "BbMxA", "BbAvH", "BbAvD", "BbAvA",
    "BbMx>2.5", "BbAv>2.5", "BbMx<2.5", "BbAv<2.5",
    "BbAHh", "BbMxAHH", "BbAvAHH", "BbMxAHA", "BbAvAHA",
]  # fmt: skip
OLD_ROWS = [
    ["E0", "13/08/05", "Aston Villa", "Bolton", "2", "2", "D",
     "2.3", "3.25", "3", "2.35", "3.3", "3.1",
     "2.4", "3.3", "3.4", "2.2", "3.16", "3.05",
     "2.2", "2.01", "1.87", "1.7",
     "-0.25", "2.1", "2.01", "1.92", "1.84"],
    ["E0", "14/01/06", "Everton", "Man United", "1", "3", "A",
     "4.5", "3.4", "1.8", "4.6", "3.5", "1.85",
     "4.8", "3.6", "1.9", "4.4", "3.35", "1.8",
     "2.0", "1.9", "1.95", "1.85",
     "0.5", "1.95", "1.88", "2.0", "1.95"],
]  # fmt: skip

NEW_HEADER = [
    "Div", "Date", "Time", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR",
    "B365H", "B365D", "B365A", "PSH", "PSD", "PSA", "MaxH", "MaxD", "MaxA", "AvgH", "AvgD", "AvgA",
    "B365>2.5", "B365<2.5", "P>2.5", "P<2.5", "Max>2.5", "Max<2.5", "Avg>2.5", "Avg<2.5",
    "AHh", "B365AHH", "B365AHA", "PAHH", "PAHA", "MaxAHH", "MaxAHA", "AvgAHH", "AvgAHA",
    "B365CH", "B365CD", "B365CA", "PSCH", "PSCD", "PSCA", "MaxCH", "MaxCD", "MaxCA",
    "AvgCH", "AvgCD", "AvgCA",
    "B365C>2.5", "B365C<2.5", "PC>2.5", "PC<2.5", "MaxC>2.5", "MaxC<2.5", "AvgC>2.5", "AvgC<2.5",
    "AHCh", "B365CAHH", "B365CAHA", "PCAHH", "PCAHA", "MaxCAHH", "MaxCAHA", "AvgCAHH", "AvgCAHA",
]  # fmt: skip
NEW_ROW = [
    "D1", "16/08/2019", "19:30", "Bayern Munich", "Hertha", "2", "2", "D",
    "1.14", "8.0", "15.0", "1.19", "7.73", "15.3", "1.25", "8.3", "17.5", "1.18", "7.55", "15.04",
    "1.33", "3.4", "1.36", "3.35", "1.4", "3.4", "1.34", "3.24",
    "-2.0", "1.8", "2.0", "1.85", "2.07", "2.1", "2.11", "1.84", "2.04",
    "1.14", "8.0", "15.0", "1.18", "8.49", "17.38", "1.25", "9.1", "19.25",
    "1.17", "8.0", "15.67",
    "1.3", "3.5", "1.32", "3.62", "1.4", "3.62", "1.31", "3.4",
    "-2.25", "2.03", "1.9", "1.99", "1.93", "2.04", "1.93", "1.98", "1.91",
]  # fmt: skip


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    newline: str = "\n",
    encoding: str = "utf-8",
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header), *(",".join(r) for r in rows)]
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


def quote(data: object, match: int, market: str, timing: str, bookmaker: str) -> pd.Series:
    odds = data.odds  # type: ignore[attr-defined]
    match_id = data.matches["match_id"].iloc[match]  # type: ignore[attr-defined]
    sel = odds[
        (odds["match_id"] == match_id)
        & (odds["market"] == market)
        & (odds["timing"] == timing)
        & (odds["bookmaker"] == bookmaker)
    ]
    assert len(sel) == 1, f"expected one {market}/{timing}/{bookmaker} quote, got {len(sel)}"
    return sel.iloc[0]


# --- schema ------------------------------------------------------------------------------------


def test_schema_and_sorting(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, OLD_ROWS[::-1])
    data = load_football([path])
    m = data.matches
    assert list(m.columns) == list(MATCH_COLUMNS)
    assert list(data.odds.columns) == list(ODDS_COLUMNS)
    assert isinstance(m.index, pd.RangeIndex)
    assert str(m["kickoff_utc"].dtype) == "datetime64[ns, UTC]"
    assert m["home_goals"].dtype == np.int64
    # sorted by kickoff although the file lists the January match first
    assert m["match_id"].tolist() == [
        "E0:2005-08-13:Aston Villa:Bolton",
        "E0:2006-01-14:Everton:Man United",
    ]
    assert m["result"].tolist() == ["D", "A"]
    assert m["season"].tolist() == ["2005-2006", "2005-2006"]
    # source_row is the line in the file: the August match was written second (line 3)
    assert m["source_row"].tolist() == [3, 2]
    assert m["source_file"].iloc[0] == str(path)


def test_dates_two_and_four_digit_years_and_default_kickoff(tmp_path: Path) -> None:
    rows = [r.copy() for r in OLD_ROWS]
    rows[1][1] = "14/01/2006"
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, rows)])
    # no Time column: 15:00 Europe/London (BST in August, GMT in January)
    assert data.matches["kickoff_utc"].tolist() == [
        pd.Timestamp("2005-08-13 14:00", tz="UTC"),
        pd.Timestamp("2006-01-14 15:00", tz="UTC"),
    ]
    assert not data.matches["kickoff_time_known"].any()


def test_time_column_is_london_time(tmp_path: Path) -> None:
    second = NEW_ROW.copy()
    second[1:5] = ["07/12/2019", "", "Dortmund", "Augsburg"]
    data = load_football([write_csv(tmp_path / "D1" / "2019-2020.csv", NEW_HEADER,
                                    [NEW_ROW, second])])  # fmt: skip
    m = data.matches
    assert m["kickoff_utc"].tolist() == [
        pd.Timestamp("2019-08-16 18:30", tz="UTC"),  # 19:30 BST
        pd.Timestamp("2019-12-07 15:00", tz="UTC"),  # blank Time -> 15:00 GMT
    ]
    assert m["kickoff_time_known"].tolist() == [True, False]
    assert data.report.repaired["kickoff_time_defaulted"] == 1


def test_season_from_date_when_file_name_is_not_a_season(tmp_path: Path) -> None:
    rows = [r.copy() for r in OLD_ROWS]
    rows[0][1] = "30/06/06"  # before 1 July: still 2005-2006
    rows[1][1] = "01/07/06"  # from 1 July: 2006-2007
    data = load_football([write_csv(tmp_path / "E0.csv", OLD_HEADER, rows)])
    assert data.matches["season"].tolist() == ["2005-2006", "2006-2007"]


def test_crlf_gives_the_same_table(tmp_path: Path) -> None:
    lf = load_football([write_csv(tmp_path / "a" / "2005-2006.csv", OLD_HEADER, OLD_ROWS)])
    crlf = load_football(
        [write_csv(tmp_path / "b" / "2005-2006.csv", OLD_HEADER, OLD_ROWS, newline="\r\n")]
    )
    cols = [c for c in MATCH_COLUMNS if c != "source_file"]
    pd.testing.assert_frame_equal(lf.matches[cols], crlf.matches[cols])
    pd.testing.assert_frame_equal(lf.odds, crlf.odds)
    assert crlf.matches["away_team"].tolist() == ["Bolton", "Man United"]


def test_empty_trailing_header_fields(tmp_path: Path) -> None:
    rows = [[*r, "", "", ""] for r in OLD_ROWS]
    data = load_football(
        [write_csv(tmp_path / "E0" / "2005-2006.csv", [*OLD_HEADER, "", "", ""], rows)]
    )
    assert len(data.matches) == 2
    assert data.report.repaired["empty_header_fields"] == 3
    assert quote(data, 0, "ah", "prematch", "max")["odds_1"] == pytest.approx(1.92)


def test_blank_all_comma_rows_are_counted_and_line_numbers_kept(tmp_path: Path) -> None:
    blank = [""] * len(OLD_HEADER)
    rows = [OLD_ROWS[0], blank, OLD_ROWS[1], blank]
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, rows)])
    assert data.report.blank_rows == 2
    assert data.report.rows_read == 2
    assert data.report.rows_kept == 2
    assert data.matches["source_row"].tolist() == [2, 4]


def test_column_order_does_not_matter(tmp_path: Path) -> None:
    order = np.random.default_rng(0).permutation(len(NEW_HEADER))
    shuffled_header = [NEW_HEADER[i] for i in order]
    shuffled_row = [NEW_ROW[i] for i in order]
    a = load_football([write_csv(tmp_path / "a" / "2019-2020.csv", NEW_HEADER, [NEW_ROW])])
    b = load_football(
        [write_csv(tmp_path / "b" / "2019-2020.csv", shuffled_header, [shuffled_row])]
    )
    pd.testing.assert_frame_equal(a.odds, b.odds)
    assert len(a.odds) == 24  # 4 books x 3 markets x 2 timings


def test_sanitized_mirror_headers_and_float_integers(tmp_path: Path) -> None:
    header = [
        "Div", "Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR",
        "B365_2_5", "B365_2_5_1", "P_2_5", "P_2_5_1", "BbMx_2_5", "BbMx_2_5_1",
        "PC_2_5", "PC_2_5_1", "AvgC_2_5", "AvgC_2_5_1",
    ]  # fmt: skip
    row = [
        "SP1", "17/08/13", "Valencia", "Malaga", "8.0", "0.0", "H",
        "1.9", "1.95", "1.93", "1.99", "2.05", "2.1",
        "1.8", "2.1", "1.75", "2.05",
    ]  # fmt: skip
    data = load_football([write_csv(tmp_path / "SP1" / "2013-2014.csv", header, [row])])
    m = data.matches
    assert (m["home_goals"].iloc[0], m["away_goals"].iloc[0]) == (8, 0)
    assert data.report.repaired["integers_written_as_floats"] == 2
    assert data.report.repaired["ou_headers_renamed"] == 10
    b365 = quote(data, 0, "ou25", "prematch", "b365")
    assert (b365["odds_0"], b365["odds_1"], b365["line"]) == (1.9, 1.95, 2.5)  # over, under
    assert quote(data, 0, "ou25", "prematch", "pinnacle")["odds_1"] == 1.99
    assert quote(data, 0, "ou25", "prematch", "max")["odds_0"] == 2.05
    assert quote(data, 0, "ou25", "closing", "pinnacle")["odds_0"] == 1.8
    assert quote(data, 0, "ou25", "closing", "avg")["odds_1"] == 2.05


def test_latin1_file_is_decoded(tmp_path: Path) -> None:
    rows = [r.copy() for r in OLD_ROWS]
    rows[0][2] = "La Coruña"
    path = write_csv(tmp_path / "SP1" / "2005-2006.csv", OLD_HEADER, rows, encoding="latin-1")
    data = load_football([path])
    assert "La Coruña" in data.matches["home_team"].tolist()
    assert data.report.repaired["cp1252_decoded_rows"] == 1


def test_team_names_are_stripped(tmp_path: Path) -> None:
    rows = [r.copy() for r in OLD_ROWS]
    rows[0][2] = "  Aston Villa "
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, rows)])
    assert data.matches["home_team"].iloc[0] == "Aston Villa"
    assert data.report.repaired["team_names_stripped"] == 1


def test_header_only_file_gives_empty_typed_tables(tmp_path: Path) -> None:
    data = load_football([write_csv(tmp_path / "E0" / "2024-2025.csv", OLD_HEADER, [])])
    assert (data.report.files_read, len(data.matches), len(data.odds)) == (1, 0, 0)
    assert str(data.matches["match_id"].dtype) == "str"
    assert str(data.matches["kickoff_utc"].dtype) == "datetime64[ns, UTC]"
    odds, line = odds_matrix(data, "ah", "closing", "best")
    assert odds.shape == (0, 2)
    assert line.shape == (0,)


# --- bookmaker map -----------------------------------------------------------------------------


def test_old_file_bookmakers_and_betbrain_asian_handicap(tmp_path: Path) -> None:
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, OLD_ROWS)])
    books = set(data.odds.loc[data.odds["market"] == "1x2", "bookmaker"])
    assert books == {"b365", "pinnacle", "max", "avg"}
    assert set(data.odds["timing"]) == {"prematch"}
    ah = quote(data, 0, "ah", "prematch", "avg")
    assert (ah["line"], ah["odds_0"], ah["odds_1"]) == (-0.25, 2.01, 1.84)
    x12 = quote(data, 1, "1x2", "prematch", "pinnacle")
    assert (x12["odds_0"], x12["odds_1"], x12["odds_2"]) == (4.6, 3.5, 1.85)
    assert np.isnan(x12["line"])
    ou = quote(data, 0, "ou25", "prematch", "max")
    assert (ou["odds_0"], ou["odds_1"]) == (2.2, 1.87)
    assert np.isnan(ou["odds_2"])


def test_new_file_prematch_and_closing_quotes(tmp_path: Path) -> None:
    data = load_football([write_csv(tmp_path / "D1" / "2019-2020.csv", NEW_HEADER, [NEW_ROW])])
    psch = quote(data, 0, "1x2", "closing", "pinnacle")
    assert (psch["odds_0"], psch["odds_1"], psch["odds_2"]) == (1.18, 8.49, 17.38)
    ah_close = quote(data, 0, "ah", "closing", "pinnacle")
    assert (ah_close["line"], ah_close["odds_0"], ah_close["odds_1"]) == (-2.25, 1.99, 1.93)
    ah_pre = quote(data, 0, "ah", "prematch", "b365")
    assert (ah_pre["line"], ah_pre["odds_0"]) == (-2.0, 1.8)
    assert quote(data, 0, "ou25", "closing", "max")["odds_1"] == 3.62


def test_detect_quote_columns_prefers_max_over_betbrain() -> None:
    header = ["MaxH", "MaxD", "MaxA", "BbMxH", "BbMxD", "BbMxA", "GBH", "GBD", "GBA",
              "1XBH", "1XBD", "1XBA", "PSCH", "PSCD", "PSCA"]  # fmt: skip
    specs = detect_quote_columns(header)
    found = {(s.timing, s.bookmaker): s.columns[0] for s in specs}
    assert found == {
        ("prematch", "gb"): "GBH",
        ("prematch", "1xb"): "1XBH",
        ("prematch", "max"): "MaxH",
        ("closing", "pinnacle"): "PSCH",
    }


def test_detect_requires_the_whole_triplet_and_an_ah_line() -> None:
    assert detect_quote_columns(["B365H", "B365D"]) == []
    assert detect_quote_columns(["B365AHH", "B365AHA"]) == []  # no line column
    (spec,) = detect_quote_columns(["B365AHH", "B365AHA", "AHh"])
    assert spec.line_column == "AHh"


# --- odds_matrix -------------------------------------------------------------------------------


def test_odds_matrix_aligned_with_matches(tmp_path: Path) -> None:
    rows = [r.copy() for r in OLD_ROWS]
    rows[1][10:13] = ["", "", ""]  # no Pinnacle quote for the second match
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, rows)])
    odds, line = odds_matrix(data, "1x2", "prematch", "pinnacle")
    assert odds.shape == (2, 3)
    np.testing.assert_array_equal(odds[0], [2.35, 3.3, 3.1])
    assert np.isnan(odds[1]).all()
    assert np.isnan(line).all()
    ah, ah_line = odds_matrix(data, "ah", "prematch", "max")
    np.testing.assert_array_equal(ah_line, [-0.25, 0.5])
    np.testing.assert_array_equal(ah[:, 1], [1.92, 2.0])
    closing, _ = odds_matrix(data, "1x2", "closing", "pinnacle")
    assert np.isnan(closing).all()


def test_odds_matrix_best_is_max_over_books_without_average(tmp_path: Path) -> None:
    rows = [r.copy() for r in OLD_ROWS]
    rows[0][7:10] = ["2.5", "3.2", "3.0"]  # b365 beats max on home
    rows[0][16:19] = ["2.6", "3.4", "3.5"]  # avg (excluded from best) would beat everyone
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, rows)])
    avg, _ = odds_matrix(data, "1x2", "prematch", "avg")
    np.testing.assert_array_equal(avg[0], [2.6, 3.4, 3.5])
    best, _ = odds_matrix(data, "1x2", "prematch", "best")
    np.testing.assert_array_equal(best[0], [2.5, 3.3, 3.4])
    np.testing.assert_array_equal(best[1], [4.8, 3.6, 1.9])
    ou_best, ou_line = odds_matrix(data, "ou25", "prematch", "best")
    assert ou_best.shape == (2, 2)
    np.testing.assert_array_equal(ou_line, [2.5, 2.5])


# --- file discovery ----------------------------------------------------------------------------


def test_iter_csv_files_recurses_and_skips_manifest(tmp_path: Path) -> None:
    write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, OLD_ROWS[:1])
    write_csv(tmp_path / "D1" / "2005-2006.csv", OLD_HEADER, OLD_ROWS[1:])
    (tmp_path / "MANIFEST.csv").write_text("league,season\nE0,2005-2006\n")
    (tmp_path / "notes.txt").write_text("not a csv")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_csv_files([tmp_path])]
    assert found == ["D1/2005-2006.csv", "E0/2005-2006.csv"]
    data = load_football([tmp_path])
    assert data.report.files_read == 2
    with pytest.raises(DataError, match="no such file"):
        list(iter_csv_files([tmp_path / "missing"]))


def test_a_file_named_twice_is_read_once_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The folder and a file in it, as two paths: read once, as before, but without a word."""
    write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, OLD_ROWS[:1])
    again = tmp_path / "E0" / ".." / "E0" / "2005-2006.csv"
    with caplog.at_level("WARNING"):
        found = list(iter_csv_files([tmp_path, again]))
    assert found == [tmp_path / "E0" / "2005-2006.csv"]
    assert f"{again} is named more than once in the data paths: read once" in caplog.text


# --- real files --------------------------------------------------------------------------------


@pytest.mark.skipif(not REAL.is_dir(), reason="shared real data not present")
def test_real_files_match_the_manifest() -> None:
    manifest = pd.read_csv(REAL / "MANIFEST.csv")
    picks = manifest[
        manifest["file"].isin(
            [
                "football/E0/2005-2006.csv",  # dd/mm/yy, Betbrain, no Time
                "football/D1/2010-2011.csv",  # empty trailing header fields
                "football/F1/2013-2014.csv",  # sanitized headers, blank row, 8.0 goals
                "football/I1/2019-2020.csv",  # sanitized, Time column, closing odds
                "football/E0/2022-2023.csv",  # CRLF, original headers, closing odds
            ]
        )
    ]
    paths = [REAL / f.removeprefix("football/") for f in picks["file"]]
    data = load_football(paths)
    counts = data.matches.groupby("source_file").size()
    for path, rows in zip(paths, picks["rows"], strict=True):
        assert counts[str(path)] == rows
    assert data.report.blank_rows == picks["blank_rows"].sum()
    assert data.report.rows_kept == picks["rows"].sum()
    # closing Pinnacle 1X2 quotes kept per file equal the filled PSCH cells
    odds = data.odds.merge(data.matches[["match_id", "source_file"]], on="match_id")
    psch = odds[(odds["market"] == "1x2") & (odds["timing"] == "closing")
                & (odds["bookmaker"] == "pinnacle")].groupby("source_file").size()  # fmt: skip
    for path, expected in zip(paths, picks["PSCH"], strict=True):
        assert psch.get(str(path), 0) == expected
    pc_over = odds[(odds["market"] == "ou25") & (odds["timing"] == "closing")
                   & (odds["bookmaker"] == "pinnacle")].groupby("source_file").size()  # fmt: skip
    for path, expected in zip(paths, picks["PC_over"], strict=True):
        assert pc_over.get(str(path), 0) == expected
    assert set(data.matches["league"]) == {"E0", "D1", "F1", "I1"}
    assert data.matches["match_id"].is_unique


# --- match statistics --------------------------------------------------------------------------

STATS_HEADER = [*OLD_HEADER[:7], "HS", "AS", "HST", "AST", "HC", "AC", *OLD_HEADER[7:]]


def _with_stats(row: list[str], stats: list[str]) -> list[str]:
    return [*row[:7], *stats, *row[7:]]


def test_match_stats_are_kept_as_floats(tmp_path: Path) -> None:
    rows = [
        _with_stats(OLD_ROWS[0], ["14", "9", "6", "3", "7", "2"]),
        _with_stats(OLD_ROWS[1], ["8.0", "", "2", "5", "4", "6"]),
    ]
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", STATS_HEADER, rows)])
    m = data.matches
    assert m[list(STAT_COLUMNS)].dtypes.eq(np.float64).all()
    assert m.loc[0, list(STAT_COLUMNS)].tolist() == [14.0, 9.0, 6.0, 3.0, 7.0, 2.0]
    assert m.loc[1, "home_shots"] == 8.0
    assert np.isnan(m.loc[1, "away_shots"])  # blank: missing, not an error
    assert "match_stats_blanked" not in data.report.repaired


def test_files_without_stats_give_nan_columns(tmp_path: Path) -> None:
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", OLD_HEADER, OLD_ROWS)])
    assert list(data.matches.columns) == list(MATCH_COLUMNS)
    assert data.matches[list(STAT_COLUMNS)].isna().all().all()


def test_bad_stat_cells_are_blanked_and_named(tmp_path: Path) -> None:
    rows = [
        _with_stats(OLD_ROWS[0], ["x", "-1", "6", "3", "7.5", "2"]),
        _with_stats(OLD_ROWS[1], ["5", "9", "8", "5", "4", "99"]),  # 8 on target of 5 shots
    ]
    path = write_csv(tmp_path / "E0" / "2005-2006.csv", STATS_HEADER, rows)
    data = load_football([path])
    m = data.matches
    assert len(m) == 2  # a bad statistic never drops the match
    assert np.isnan(m.loc[0, ["home_shots", "away_shots", "home_corners"]].to_numpy(float)).all()
    assert m.loc[0, "home_shots_on_target"] == 6.0
    assert m.loc[1, "home_shots"] == 5.0  # shots kept, the impossible on-target count blanked
    assert np.isnan(m.loc[1, "home_shots_on_target"])
    assert np.isnan(m.loc[1, "away_corners"])  # 99 corners: above the plausible maximum
    assert data.report.repaired["match_stats_blanked"] == 5
    found = {(i.row, i.field, i.reason, i.value) for i in data.report.issues}
    assert found == {
        (2, "HS", "invalid_match_stat", "x"),
        (2, "AS", "invalid_match_stat", "-1"),
        (2, "HC", "invalid_match_stat", "7.5"),
        (3, "AC", "invalid_match_stat", "99"),
        (3, "HST", "shots_on_target_exceed_shots", "8>5"),
    }
    assert all(i.file == str(path) for i in data.report.issues)


# --- columns nothing reads -----------------------------------------------------------------------


def test_an_unknown_bookmakers_odds_are_counted_as_ignored_columns(tmp_path: Path) -> None:
    """A newer file with a bookmaker the map lacks: reported per file, not silently skipped."""
    extra = ["ZZH", "ZZD", "ZZA", "ZZCH", "ZZCD", "ZZCA", "ZZ>2.5", "ZZ<2.5"]
    header = NEW_HEADER + extra
    row = [*NEW_ROW, "1.2", "7.5", "14.0", "1.2", "8.0", "16.0", "1.3", "3.5"]
    write_csv(tmp_path / "D1" / "2019-2020.csv", header, [row])
    write_csv(tmp_path / "D1" / "2020-2021.csv", header, [[*row[:1], "16/08/2020", *row[2:]]])
    report = load_football([tmp_path]).report
    assert report.columns_ignored == {
        "ZZ 1x2 closing": 2,
        "ZZ 1x2 prematch": 2,
        "ZZ ou25 prematch": 2,
    }
    assert report.to_dict()["columns_ignored"] == report.columns_ignored
    # the one-line summary an `evaluate` prints says so too (it did not)
    summary = report.summary("matches")
    assert summary.endswith("; 3 odds column groups no rule reads (columns_ignored)")
    # Betfair's sportsbook (BFH, BFD, BFA) and Betfred (BFDH, ...) side by side: both are read
    both = ["BFH", "BFD", "BFA", "BFDH", "BFDD", "BFDA"]
    write_csv(tmp_path / "bf" / "E0" / "2005-2006.csv", [*OLD_HEADER, *both],
              [[*OLD_ROWS[0], "2.2", "3.2", "3.1", "2.25", "3.3", "3.2"]])  # fmt: skip
    betfair = load_football([tmp_path / "bf"])
    assert betfair.report.columns_ignored == {}
    assert quote(betfair, 0, "1x2", "prematch", "bf")["odds_0"] == 2.2
    assert quote(betfair, 0, "1x2", "prematch", "bfd")["odds_1"] == 3.3
    # the known bookmakers of the same files are all read: nothing of theirs is "ignored"
    write_csv(tmp_path / "known" / "D1" / "2019-2020.csv", NEW_HEADER, [NEW_ROW])
    assert load_football([tmp_path / "known"]).report.columns_ignored == {}
