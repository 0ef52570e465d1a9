"""Odds column groups in the header but blank (Pinnacle from 2024-25 on): counted, not silent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from marketcast.data.validation import IntegrityReport
from marketcast.datasets.football_data import load_football

# A football-data.co.uk 2024-25 layout: Bet365 and Pinnacle, pre-match and closing, three markets.
HEADER = [
    "Div", "Date", "Time", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR",
    "B365H", "B365D", "B365A", "PSH", "PSD", "PSA",
    "B365>2.5", "B365<2.5", "P>2.5", "P<2.5",
    "AHh", "B365AHH", "B365AHA", "PAHH", "PAHA",
    "B365CH", "B365CD", "B365CA", "PSCH", "PSCD", "PSCA",
    "B365C>2.5", "B365C<2.5", "PC>2.5", "PC<2.5",
    "AHCh", "B365CAHH", "B365CAHA", "PCAHH", "PCAHA",
]  # fmt: skip
TEAMS = [
    ("Arsenal", "Wolves"),
    ("Everton", "Brighton"),
    ("Fulham", "Leicester"),
    ("Ipswich", "Spurs"),
]
PINNACLE_EMPTY = [
    "pinnacle 1x2 closing",
    "pinnacle ah closing",
    "pinnacle ah prematch",
    "pinnacle ou25 closing",
    "pinnacle ou25 prematch",
]


def _row(day: int, home: str, away: str, pinnacle_1x2: list[str], year: int = 2024) -> list[str]:
    """One match: Bet365 fills every group; Pinnacle only its pre-match 1X2 (as given)."""
    return [
        "E0", f"{day:02d}/08/{year}", "15:00", home, away, "1", "0", "H",
        "2.1", "3.4", "3.6", *pinnacle_1x2,
        "1.9", "1.9", "", "",
        "-0.25", "1.95", "1.95", "", "",
        "2.05", "3.5", "3.7", "", "", "",
        "1.88", "1.92", "", "",
        "-0.25", "1.93", "1.97", "", "",
    ]  # fmt: skip


def _write(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(HEADER), *(",".join(r) for r in rows)]) + "\n")
    return path


def _season(path: Path, year: int = 2024) -> Path:
    """Four matches: Pinnacle's pre-match 1X2 filled, filled, half-filled, blank; the rest blank.

    The half-filled triplet is a dropped quote (``unparseable_odds``), not a missing one.
    """
    pinnacle = [["2.15", "3.5", "3.7"], ["2.2", "3.4", "3.6"], ["2.2", "", "3.6"], ["", "", ""]]
    matches = enumerate(zip(TEAMS, pinnacle, strict=True))
    rows = [_row(17 + i, h, a, p, year) for i, ((h, a), p) in matches]
    return _write(path, rows)


def test_blank_and_partly_blank_groups_are_counted_per_file(tmp_path: Path) -> None:
    path = _season(tmp_path / "E0" / "2024-2025.csv")
    data = load_football([tmp_path])
    report = data.report
    assert report.columns_present_but_empty == {f"{path}: {g}": 4 for g in PINNACLE_EMPTY}
    # the half-filled row is a dropped quote (counted there), not a row without a quote
    assert report.rows_without_quote == {f"{path}: pinnacle 1x2 prematch": 1}
    assert report.quotes_dropped["unparseable_odds"] == 1
    # Bet365 is filled everywhere: nothing of it is reported
    assert not any("b365" in key for key in report.rows_without_quote)
    assert not any("b365" in key for key in report.columns_present_but_empty)
    # only reported: the odds are what they were (Bet365's 6 groups x 4 + Pinnacle's 2 quotes)
    assert report.quotes_kept == len(data.odds) == 26
    pinnacle = data.odds[data.odds["bookmaker"] == "pinnacle"]
    assert pinnacle[["market", "timing"]].drop_duplicates().values.tolist() == [["1x2", "prematch"]]
    assert len(pinnacle) == 2


def test_the_json_and_the_summary_carry_them(tmp_path: Path) -> None:
    _season(tmp_path / "E0" / "2024-2025.csv")
    _season(tmp_path / "E0" / "2023-2024.csv", year=2023)
    report = load_football([tmp_path]).report
    encoded = report.to_dict()
    assert encoded["columns_present_but_empty"] == report.columns_present_but_empty
    assert encoded["rows_without_quote"] == report.rows_without_quote
    assert len(encoded["columns_present_but_empty"]) == 10  # 5 groups x 2 files
    assert list(encoded["columns_present_but_empty"]) == sorted(
        encoded["columns_present_but_empty"]
    )
    assert {"columns_ignored", "quotes_dropped", "dropped", "issues"} <= encoded.keys()
    assert report.summary("matches").endswith(
        "; 5 odds column groups present but empty in 2 files (columns_present_but_empty)"
    )


def test_a_filled_file_reports_nothing(tmp_path: Path) -> None:
    rows = [_row(17 + i, h, a, ["2.15", "3.5", "3.7"]) for i, (h, a) in enumerate(TEAMS)]
    frame = pd.DataFrame(rows, columns=HEADER)
    for col in HEADER[8:]:  # fill every Pinnacle cell with Bet365's price on the same market
        if frame[col].eq("").all():
            frame[col] = frame[col.replace("PS", "B365").replace("P", "B365", 1)]
    path = tmp_path / "E0" / "2024-2025.csv"
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False)
    report = load_football([path]).report
    assert (report.columns_present_but_empty, report.rows_without_quote) == ({}, {})
    assert "present but empty" not in report.summary("matches")


def test_merge_adds_them_up() -> None:
    a, b = IntegrityReport(), IntegrityReport()
    a.count_unquoted("E0.csv", "pinnacle 1x2 closing", 380, 380)
    b.count_unquoted("D1.csv", "pinnacle 1x2 closing", 306, 306)
    b.count_unquoted("D1.csv", "pinnacle 1x2 prematch", 306, 7)
    merged = a.merge(b)
    assert merged.columns_present_but_empty == {
        "E0.csv: pinnacle 1x2 closing": 380,
        "D1.csv: pinnacle 1x2 closing": 306,
    }
    assert merged.rows_without_quote == {"D1.csv: pinnacle 1x2 prematch": 7}
