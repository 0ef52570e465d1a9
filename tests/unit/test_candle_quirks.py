"""Candle files as users hand them over: overlapping exports, trailing commas, spreadsheet-rounded
times and header-only downloads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.candles import CandleReport
from marketcast.data.validation import DataError
from marketcast.datasets.crypto import BINANCE_VISION_KLINE_COLUMNS, load_candles

SPOT_HEADER = "date,open,high,low,close,volume,ticker"
VISION_HEADER = ",".join(BINANCE_VISION_KLINE_COLUMNS)
START = pd.Timestamp("2023-06-01 00:00", tz="UTC")
HOURS = 6
# one bar's values, as both exports print them
OPEN, HIGH, LOW, CLOSE = "27000.01", "27100.5", "26900.2", "27050.33"
VOLUME, QUOTE_VOLUME = "1234.56789", "33395000.1234"


def _hour(i: int) -> pd.Timestamp:
    return START + pd.Timedelta(hours=i)


def _spot_lines(n: int = HOURS) -> list[str]:
    """A Binance spot export (no quote volume, no trade count)."""
    return [SPOT_HEADER] + [
        f"{_hour(i):%Y-%m-%d %H:%M:%S},{OPEN},{HIGH},{LOW},{CLOSE},{VOLUME},BTCUSDT"
        for i in range(n)
    ]


def _vision_line(i: int, *, open_time: str | None = None) -> str:
    """One data.binance.vision kline line (milliseconds) for hour ``i``."""
    ms = int(_hour(i).timestamp()) * 1000
    t = str(ms) if open_time is None else open_time
    return f"{t},{OPEN},{HIGH},{LOW},{CLOSE},{VOLUME},{ms + 3_599_999},{QUOTE_VOLUME},4242,1,2,0"


def _vision_lines(n: int = HOURS, *, header: bool = True) -> list[str]:
    return ([VISION_HEADER] if header else []) + [_vision_line(i) for i in range(n)]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _values(candles: pd.DataFrame) -> pd.DataFrame:
    return candles.drop(columns=["source_file", "source_row"], errors="ignore")


# --- 1. an estimated quote volume is not a value the file gives -------------------------------


@pytest.mark.parametrize("spot_first", [True, False])
def test_spot_and_vision_copies_of_the_same_bars_are_duplicates_not_conflicts(
    tmp_path: Path, spot_first: bool
) -> None:
    """The spot file's quote volume is the loader's ``volume * close``: it conflicted with the
    vision file's real one on every hour (``conflicting_duplicate 6``)."""
    spot = _write(tmp_path / "BTCUSDT_1h.csv", _spot_lines())
    vision = _write(tmp_path / "spot" / "BTCUSDT-1h-2023-06.csv", _vision_lines())
    data = load_candles([spot, vision] if spot_first else [vision, spot])
    report = data.report
    assert (report.dropped["duplicate_bar"], report.dropped["conflicting_duplicate"]) == (HOURS, 0)
    assert not [i for i in report.issues if i.reason == "conflicting_duplicate"]
    # the bar kept is the one whose file gives the quote volume
    candles = data.candles
    assert candles["quote_volume"].tolist() == [float(QUOTE_VOLUME)] * HOURS
    assert not candles["quote_volume_estimated"].any()
    assert candles["trades"].tolist() == [4242.0] * HOURS
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())


def test_a_given_quote_volume_is_kept_over_an_estimate_even_without_trade_counts(
    tmp_path: Path,
) -> None:
    """One spot-layout export gives trade counts, the other the quote volume: the kept bar has
    the file's quote volume, not the estimate (the trade count alone used to decide)."""
    with_trades = _write(
        tmp_path / "a" / "BTCUSDT_1h.csv",
        ["date,open,high,low,close,volume,trades,ticker"]
        + [f"{_hour(i):%Y-%m-%d %H:%M:%S},{OPEN},{HIGH},{LOW},{CLOSE},{VOLUME},4242,BTCUSDT"
           for i in range(HOURS)],
    )  # fmt: skip
    with_quote = _write(
        tmp_path / "b" / "BTCUSDT_1h.csv",
        ["date,open,high,low,close,volume,quote_volume,ticker"]
        + [f"{_hour(i):%Y-%m-%d %H:%M:%S},{OPEN},{HIGH},{LOW},{CLOSE},{VOLUME},{QUOTE_VOLUME},"
           "BTCUSDT" for i in range(HOURS)],
    )  # fmt: skip
    data = load_candles([with_trades, with_quote])
    assert data.report.dropped["duplicate_bar"] == HOURS
    assert data.report.dropped["conflicting_duplicate"] == 0
    assert data.candles["quote_volume"].tolist() == [float(QUOTE_VOLUME)] * HOURS
    assert not data.candles["quote_volume_estimated"].any()


def test_copies_that_differ_on_a_value_both_files_give_still_conflict(tmp_path: Path) -> None:
    spot_lines = _spot_lines()
    spot_lines[3] = spot_lines[3].replace(f",{CLOSE},", ",27050.34,")  # hour 2's close
    spot = _write(tmp_path / "BTCUSDT_1h.csv", spot_lines)
    vision = _write(tmp_path / "spot" / "BTCUSDT-1h-2023-06.csv", _vision_lines())
    report = load_candles([spot, vision]).report
    assert (report.dropped["duplicate_bar"], report.dropped["conflicting_duplicate"]) == (5, 1)
    (issue,) = [i for i in report.issues if i.reason == "conflicting_duplicate"]
    assert (issue.file, issue.row, issue.field) == (str(spot), 4, "close")


# --- 2. trailing commas ------------------------------------------------------------------------


def test_a_header_ending_in_a_comma_is_read_and_counted(tmp_path: Path) -> None:
    """It was ``cannot parse CSV: Too many columns specified: expected 8 and found 7``."""
    lines = _spot_lines()
    clean = load_candles([_write(tmp_path / "clean" / "BTCUSDT_1h.csv", lines)])
    path = _write(tmp_path / "BTCUSDT_1h.csv", [lines[0] + ",", *lines[1:]])
    data = load_candles([path])
    assert data.report.ok
    pd.testing.assert_frame_equal(_values(data.candles), _values(clean.candles))
    assert data.report.repaired["empty_header_fields"] == 1
    assert "trailing_empty_fields" not in data.report.repaired
    issue = next(i for i in data.report.issues if i.reason == "trailing_empty_fields")
    assert issue.file == str(path)


@pytest.mark.parametrize("header", [True, False])
def test_vision_rows_ending_in_a_comma_are_read_and_counted(tmp_path: Path, header: bool) -> None:
    """With a header it was ``cannot parse CSV: Number of passed names did not match number of
    header fields in the file``; without one the file was not recognised."""
    lines = _vision_lines(header=header)
    clean = load_candles([_write(tmp_path / "clean" / "BTCUSDT-1h-2023-06.csv", lines)])
    trailing = (
        [lines[0]] + [line + "," for line in lines[1:]]
        if header
        else [line + "," for line in lines]
    )
    path = _write(tmp_path / "BTCUSDT-1h-2023-06.csv", trailing)
    data = load_candles([path])
    assert data.report.ok
    pd.testing.assert_frame_equal(_values(data.candles), _values(clean.candles))
    assert data.report.rows_read == HOURS
    assert data.report.repaired["trailing_empty_fields"] == HOURS
    issue = next(i for i in data.report.issues if i.reason == "trailing_empty_fields")
    assert issue.file == str(path)


def test_some_rows_with_a_trailing_comma_and_crlf_endings(tmp_path: Path) -> None:
    lines = _vision_lines()
    lines[2] += ","
    lines[5] += ",,"
    path = tmp_path / "BTCUSDT-1h-2023-06.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    data = load_candles([path])
    assert data.report.ok
    assert len(data.candles) == HOURS
    assert data.report.repaired["trailing_empty_fields"] == 2
    assert data.candles["quote_volume"].tolist() == [float(QUOTE_VOLUME)] * HOURS


def test_a_row_with_a_value_past_the_header_is_an_error_naming_the_row(tmp_path: Path) -> None:
    """Truncated silently before: a comma inside a value moves every later column."""
    lines = _spot_lines()
    lines[3] = lines[3].replace(f",{VOLUME},", ",1234,56789,")  # a decimal comma: line 4
    bad = _write(tmp_path / "bad" / "BTCUSDT_1h.csv", lines)
    good = _write(tmp_path / "good" / "ETHUSDT_1h.csv",
                  [line.replace("BTCUSDT", "ETHUSDT") for line in _spot_lines()])  # fmt: skip
    with pytest.raises(DataError) as info:
        load_candles([bad], on_error="raise")
    assert (info.value.file, info.value.row) == (str(bad), 4)
    assert "8 fields, the header has 7" in str(info.value)
    data = load_candles([bad, good])
    (error,) = data.report.errors
    assert (error.file, error.row) == (str(bad), 4)
    assert data.candles["pair"].unique().tolist() == ["ETHUSDT"]


# --- 3. open times a spreadsheet rounded -------------------------------------------------------


def test_open_times_rounded_by_a_spreadsheet_are_refused_naming_row_and_field(
    tmp_path: Path,
) -> None:
    """``1.68558E+15``: the file was refused as "not hourly: most bars are 0 days 02:46:40
    apart", which sent the user looking for the wrong fault."""
    scale = 1_000_000  # microseconds, Binance spot's unit since 2025
    lines = [VISION_HEADER] + [
        _vision_line(i, open_time=f"{(int(_hour(i).timestamp()) * scale):.5E}") for i in range(30)
    ]
    assert lines[1].startswith("1.68558E+15,")
    rounded = _write(tmp_path / "xl" / "BTCUSDT-1h-2023-06.csv", lines)
    with pytest.raises(DataError) as info:
        load_candles([rounded], on_error="raise")
    assert (info.value.file, info.value.row, info.value.field) == (str(rounded), 2, "open_time")
    assert "rounded" in info.value.reason
    assert "spreadsheet" in info.value.reason
    assert "re-export" in info.value.reason
    assert "not hourly" not in info.value.reason

    good = _write(tmp_path / "ETHUSDT-1h-2023-06.csv", _vision_lines())
    data = load_candles([rounded, good])
    (error,) = data.report.errors
    assert (error.file, error.row, error.field, error.value) == (
        str(rounded), 2, "open_time", "1.68558E+15"
    )  # fmt: skip
    assert data.candles["pair"].unique().tolist() == ["ETHUSDT"]


def test_open_times_written_with_an_exponent_but_exact_are_read(tmp_path: Path) -> None:
    lines = [VISION_HEADER] + [
        _vision_line(i, open_time=f"{int(_hour(i).timestamp()) * 1000:.9E}") for i in range(HOURS)
    ]
    data = load_candles([_write(tmp_path / "BTCUSDT-1h-2023-06.csv", lines)])
    assert data.report.ok
    assert data.candles["open_time_utc"].tolist() == [_hour(i) for i in range(HOURS)]


# --- 4. header-only files ----------------------------------------------------------------------


def test_a_header_only_file_is_reported_and_the_others_are_read(tmp_path: Path) -> None:
    """It passed silently (``rows_read 0``, no word): a truncated download went unseen."""
    good = _write(tmp_path / "BTCUSDT_1h.csv", _spot_lines())
    empty = _write(tmp_path / "ETHUSDT_1h.csv", [SPOT_HEADER])
    blank = _write(tmp_path / "SOLUSDT-1h-2023-06.csv", [VISION_HEADER, "", ""])
    data = load_candles([good, empty, blank])
    report = data.report
    assert report.ok  # a warning, not an error
    assert report.header_only_files == [str(empty), str(blank)]
    assert report.to_dict()["header_only_files"] == [str(empty), str(blank)]
    issues = [(i.file, i.reason) for i in report.issues if i.reason == "header_only_file"]
    assert issues == [(str(empty), "header_only_file"), (str(blank), "header_only_file")]
    assert data.pairs == ["BTCUSDT"]
    assert (report.files_read, report.rows_read, report.rows_kept) == (3, HOURS, HOURS)


def test_a_header_only_file_alone_is_reported(tmp_path: Path) -> None:
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", [SPOT_HEADER])])
    assert data.candles.empty
    assert data.report.header_only_files == [str(tmp_path / "BTCUSDT_1h.csv")]
    assert [i.reason for i in data.report.issues] == ["header_only_file"]


def test_header_only_files_survive_a_merge() -> None:
    a = CandleReport(header_only_files=["a.csv"])
    b = CandleReport(header_only_files=["b.csv"])
    assert a.merge(b).header_only_files == ["a.csv", "b.csv"]
    assert np.array_equal(CandleReport().to_dict()["header_only_files"], [])


def test_a_file_of_pairs_not_asked_for_is_not_header_only(tmp_path: Path) -> None:
    """With ``pairs``, a file holding none of them (its pairs from its ticker column) was
    reported as a truncated download."""
    btc = _write(tmp_path / "BTCUSDT_1h.csv", _spot_lines())
    eth = _write(tmp_path / "more.csv", [x.replace("BTC", "ETH") for x in _spot_lines()])
    data = load_candles([btc, eth], pairs=["BTCUSDT"])
    assert data.pairs == ["BTCUSDT"]
    assert data.report.header_only_files == []
    assert not [i for i in data.report.issues if i.reason == "header_only_file"]
