"""Candle files the loader used to read wrong without a word: a file whose rows are all or mostly
dropped, a half-written last line, a generic ``timestamp,open,...`` export taken for futures, and
a file that switches from hourly to 4-hour bars."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from marketcast.cli import main
from marketcast.data.candles import CandleReport
from marketcast.data.validation import DataError
from marketcast.datasets.crypto import detect_file, detect_format, load_candles

SPOT_HEADER = "date,open,high,low,close,volume,ticker"
OHLCV = "timestamp,open,high,low,close,volume"
START = pd.Timestamp("2023-06-01 00:00", tz="UTC")
REAL = Path("/work/shared/data/crypto")


def _spot_line(at: pd.Timestamp, pair: str = "BTCUSDT", close: float = 100.5) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S},100.0,101.0,99.0,{close},12.5,{pair}"


def _spot_lines(hours: list[int], pair: str = "BTCUSDT") -> list[str]:
    return [SPOT_HEADER] + [_spot_line(START + pd.Timedelta(hours=h), pair) for h in hours]


def _write(path: Path, lines: list[str], *, end: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + end)
    return path


def _balanced(report: CandleReport) -> bool:
    return report.rows_read == report.rows_kept + sum(report.dropped.values())


# --- 1. a file whose rows are all, or mostly, dropped is an error ------------------------------


def test_a_file_whose_every_row_is_dropped_is_an_error_naming_row_field_and_value(
    tmp_path: Path,
) -> None:
    """Dates a spreadsheet re-wrote (``06/01/2023 00:00``): every BTC row was dropped as
    ``unparseable_timestamp``, the report stayed ok and run/evaluate went on without BTC."""
    btc = [SPOT_HEADER] + [
        f"{START + pd.Timedelta(hours=h):%m/%d/%Y %H:%M},100.0,101.0,99.0,100.5,12.5,BTCUSDT"
        for h in range(6)
    ]
    eth = _spot_lines(list(range(6)), "ETHUSDT")
    paths = [_write(tmp_path / "BTCUSDT_1h.csv", btc), _write(tmp_path / "ETHUSDT_1h.csv", eth)]
    data = load_candles(paths)
    report = data.report
    assert not report.ok
    [error] = report.errors
    assert (error.file, error.row, error.field) == (str(paths[0]), 2, "date")
    assert error.reason.startswith("6 of its 6 data rows were dropped as bad")
    assert "the first ('06/01/2023 00:00'): unparseable_timestamp" in error.reason
    assert error.value == "06/01/2023 00:00"
    # the file was read and its rows counted as dropped; the other file is read as before
    assert report.dropped["unparseable_timestamp"] == 6
    assert _balanced(report)
    assert data.pairs == ["ETHUSDT"]
    with pytest.raises(DataError, match="row 2, field 'date': unparseable_timestamp"):
        load_candles(paths, on_error="raise")


def test_a_file_with_swapped_high_and_low_is_an_error_though_a_bar_survives(
    tmp_path: Path,
) -> None:
    """Swapped columns break the bar checks on every bar but a flat one: more than half of a
    file's rows dropped as bad is an error, not only all of them. The bar that passed is not
    used either (it was, while the server logged the file's pairs as not served)."""
    lines = ["date,open,low,high,close,volume,ticker"] + [
        f"{START + pd.Timedelta(hours=h):%Y-%m-%d %H:%M:%S},100.0,101.0,99.0,100.5,12.5,BTCUSDT"
        for h in range(5)
    ]
    lines.append(f"{START + pd.Timedelta(hours=5):%Y-%m-%d %H:%M:%S},100,100,100,100,1,BTCUSDT")
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", lines)])
    [error] = data.report.errors
    assert (error.row, error.field, error.value) == (2, "high", "99.0")
    assert error.reason.startswith("5 of its 6 data rows were dropped as bad")
    assert "high_below_open_close" in error.reason
    assert data.candles.empty
    assert data.report.dropped["mostly_bad_file"] == 1
    assert _balanced(data.report)


def test_a_few_bad_rows_are_still_only_counted(tmp_path: Path) -> None:
    lines = _spot_lines(list(range(6)))
    lines[3] = lines[3].replace("2023-06-01 02:00:00", "2023-06-01 xx")
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", lines)])
    assert data.report.ok
    assert data.report.dropped["unparseable_timestamp"] == 1


def test_data_check_exits_1_on_a_file_whose_rows_are_all_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    _write(folder / "ETHUSDT_1h.csv", _spot_lines(list(range(4)), "ETHUSDT"))
    _write(folder / "BTCUSDT_1h.csv", _spot_lines(list(range(4)), "ETHUSDT"))  # another pair's
    out = tmp_path / "report.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 1
    [error] = json.loads(out.read_text())["errors"]
    assert error["file"].endswith("BTCUSDT_1h.csv")
    assert (error["row"], error["field"], error["value"]) == (2, "ticker", "ETHUSDT")
    assert "symbol_mismatch" in error["reason"]


def test_dates_in_an_epoch_timestamp_are_refused_naming_the_column(tmp_path: Path) -> None:
    """A futures-like header (it has ``quote_volume``) whose ``timestamp`` holds dates."""
    lines = [f"{OHLCV},quote_volume"] + [
        f"{START + pd.Timedelta(hours=h):%Y-%m-%d %H:%M:%S},100,101,99,100.5,12.5,1256.25"
        for h in range(4)
    ]
    path = _write(tmp_path / "BTCUSDT_1h.csv", lines)
    with pytest.raises(DataError, match="row 2, field 'timestamp': timestamp holds dates"):
        load_candles([path], on_error="raise")
    lines[2] = lines[2].replace(",101,", ",oops,")  # a bad value too: not counted, not read
    data = load_candles([_write(path, lines)])
    [error] = data.report.errors
    assert (error.row, error.field) == (2, "timestamp")
    assert error.reason.startswith(
        "timestamp holds dates ('2023-06-01 00:00:00'), expected epoch milliseconds"
    )
    report = data.report
    assert (report.files_read, report.rows_read, sum(report.dropped.values())) == (0, 0, 0)
    assert report.issues == []


def test_a_refused_file_leaves_no_drop_counts_behind(tmp_path: Path) -> None:
    """Its rows are not read, so none of them is dropped (the counts used to stay)."""
    hourly = _spot_lines(list(range(3)))
    hourly[2] = hourly[2].replace(",101.0,", ",n/a?,")
    four_hourly = [_spot_line(START + pd.Timedelta(hours=h)) for h in range(4, 48, 4)]
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", [*hourly, *four_hourly])])
    assert len(data.report.errors) == 1
    assert data.report.dropped["unparseable_value"] == 0
    assert data.report.rows_read == 0
    assert data.report.issues == []


# --- 2. a half-written last line --------------------------------------------------------------


def test_a_line_cut_inside_a_value_is_dropped_as_a_short_row(tmp_path: Path) -> None:
    lines = _spot_lines(list(range(4)))
    lines[-1] = lines[-1][: lines[-1].index(",12.5") + 4]  # "...,100.5,12." and no ticker
    path = _write(tmp_path / "BTCUSDT_1h.csv", lines, end="")
    data = load_candles([path])
    report = data.report
    assert report.dropped["short_row"] == 1
    assert report.ok
    assert _balanced(report)
    assert len(data.candles) == 3
    [issue] = [i for i in report.issues if i.reason == "short_row"]
    assert (issue.file, issue.row, issue.field, issue.value) == (str(path), 5, "ticker", lines[-1])
    with pytest.raises(DataError, match="row 5, field 'ticker': short_row: 6 fields, the head"):
        load_candles([path], on_error="raise")


def test_a_short_row_in_a_file_without_a_symbol_column(tmp_path: Path) -> None:
    ms = [int((START + pd.Timedelta(hours=h)).timestamp() * 1000) for h in range(4)]
    lines = [f"{OHLCV}"] + [f"{t},100,101,99,100.5,12.5" for t in ms]
    lines[-1] = f"{ms[-1]},100,101,99"  # close and volume missing
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", lines)])
    assert data.report.dropped["short_row"] == 1
    assert [i.field for i in data.report.issues if i.reason == "short_row"] == ["close"]


def test_blank_and_all_comma_lines_are_not_short_rows(tmp_path: Path) -> None:
    lines = _spot_lines(list(range(4)))
    lines.insert(3, ",,,")
    lines.insert(2, "")
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", lines)])
    assert "short_row" not in data.report.dropped
    assert data.report.blank_rows == 2
    assert len(data.candles) == 4


def test_a_symbol_cut_short_makes_no_phantom_pair(tmp_path: Path) -> None:
    lines = _spot_lines(list(range(4)))
    lines[-1] = lines[-1][:-3]  # "BTCU"
    path = _write(tmp_path / "BTCUSDT_1h.csv", lines, end="")
    data = load_candles([path])
    assert data.pairs == ["BTCUSDT"]
    assert len(data.candles) == 3
    assert data.report.dropped["unknown_symbol"] == 1
    [issue] = [i for i in data.report.issues if i.reason == "unknown_symbol"]
    assert (issue.row, issue.field, issue.value) == (5, "ticker", "BTCU")
    with pytest.raises(DataError, match="row 5, field 'ticker': unknown_symbol"):
        load_candles([path], on_error="raise")


def test_a_symbol_the_file_name_contradicts_is_dropped(tmp_path: Path) -> None:
    """``BTCUSD`` (``BTCUSDT`` cut after ``USD``) ends in a quote asset: the name tells it."""
    lines = _spot_lines(list(range(4)))
    lines[-1] = lines[-1][:-1]
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", lines, end="")])
    assert data.pairs == ["BTCUSDT"]
    assert data.report.dropped["symbol_mismatch"] == 1
    [issue] = [i for i in data.report.issues if i.reason == "symbol_mismatch"]
    assert (issue.row, issue.field, issue.value) == (5, "ticker", "BTCUSD")


def test_files_of_several_pairs_keep_every_pair_their_name_or_no_name_allows(
    tmp_path: Path,
) -> None:
    both = _spot_lines([0, 1]) + _spot_lines([0, 1], "ETHUSDT")[1:]
    named = load_candles([_write(tmp_path / "BTCUSDT_ETHUSDT_1h.csv", both)])
    unnamed = load_candles([_write(tmp_path / "other" / "top_pairs_1h.csv", both)])
    for data in (named, unnamed):
        assert data.pairs == ["BTCUSDT", "ETHUSDT"]
        assert data.report.ok
        assert not {"symbol_mismatch", "unknown_symbol"} & set(data.report.dropped)


def test_clean_files_report_no_new_drop_reasons(tmp_path: Path) -> None:
    """The new reasons appear in ``dropped`` only once a row is dropped for them."""
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", _spot_lines(list(range(4))))])
    assert not {"short_row", "unknown_symbol", "symbol_mismatch"} & set(data.report.dropped)


# --- 3. a generic timestamp,open,high,low,close,volume file is no futures file ----------------


@pytest.mark.parametrize("extra", ["close_time", "quote_volume", "trades"])
def test_the_futures_layout_needs_a_futures_column(extra: str) -> None:
    assert detect_format([*OHLCV.split(","), extra]) == "binance_futures_um"
    assert detect_format(OHLCV.upper().split(",")) == "generic"


@pytest.mark.parametrize("text_dates", [False, True])
def test_a_generic_export_reads_epoch_or_date_text_as_vendor_generic(
    tmp_path: Path, text_dates: bool
) -> None:
    hours = [START + pd.Timedelta(hours=h) for h in range(4)]
    stamps = [f"{t:%Y-%m-%d %H:%M:%S}" if text_dates else str(int(t.timestamp() * 1000))
              for t in hours]  # fmt: skip
    lines = [OHLCV] + [f"{s},100,101,99,100.5,12.5" for s in stamps]
    data = load_candles([_write(tmp_path / "ccxt" / "BTCUSDT.csv", lines)])
    assert data.report.ok
    assert data.report.rows_kept == 4
    assert data.candles["open_time_utc"].tolist() == hours
    assert data.candles["vendor"].unique().tolist() == ["generic"]
    assert data.candles["quote_volume_estimated"].all()


def test_generic_bars_lose_the_vendor_overlap_to_spot(tmp_path: Path) -> None:
    ms = [int((START + pd.Timedelta(hours=h)).timestamp() * 1000) for h in range(4)]
    generic = [OHLCV] + [f"{t},100,101,99,100.4,12.5" for t in ms]
    spot = _spot_lines([0, 1])
    data = load_candles([_write(tmp_path / "a" / "BTCUSDT.csv", generic),
                         _write(tmp_path / "b" / "BTCUSDT_1h.csv", spot)])  # fmt: skip
    vendors = data.candles.set_index("open_time_utc")["vendor"]
    assert vendors.tolist() == ["binance_spot"] * 2 + ["generic"] * 2
    assert data.report.dropped["vendor_overlap"] == 2


@pytest.mark.skipif(not REAL.is_dir(), reason="shared data not present")
def test_the_shared_files_keep_their_kinds() -> None:
    kinds = {str(p.relative_to(REAL)): detect_file(p) for p in sorted(REAL.rglob("*.csv"))}
    for name, kind in kinds.items():
        if name.startswith("binance_futures_um/") and name.endswith("_1h.csv"):
            assert kind == "binance_futures_um", name
        elif "funding" in name:
            assert kind == "funding", name
        elif "open_interest" in name:
            assert kind == "open_interest", name
        elif name.startswith("cryptodatadownload/"):
            assert kind == "cryptodatadownload", name
        else:
            assert kind == "binance_spot", name


# --- 4. a file that switches from hourly to 4-hour bars ----------------------------------------


def test_an_hourly_file_switching_to_4h_bars_is_refused_naming_the_row(tmp_path: Path) -> None:
    """Each 3-hour hole between 4h bars was filled with made-up hourly bars."""
    hours = list(range(24)) + list(range(24, 24 + 4 * 12, 4))
    path = _write(tmp_path / "BTCUSDT_1h.csv", _spot_lines(hours))
    other = _write(tmp_path / "ETHUSDT_1h.csv", _spot_lines(list(range(6)), "ETHUSDT"))
    data = load_candles([path, other])
    [error] = data.report.errors
    assert (error.file, error.row, error.field) == (str(path), 26, "date")  # the first 4h bar
    assert error.reason.startswith("mixed_interval: BTCUSDT bars are hourly, then 4 hours apart")
    assert error.value == "2023-06-02 00:00"
    assert data.pairs == ["ETHUSDT"]
    assert data.report.repaired.get("gap_bars_filled", 0) == 0
    with pytest.raises(DataError, match="row 26, field 'date': mixed_interval"):
        load_candles([path], on_error="raise")


def test_ordinary_gaps_are_no_mixed_interval(tmp_path: Path) -> None:
    """Single gaps, even of one size again and again, and 5 coarse steps in a row are read."""
    hours = [0, 1, 3, 4, 6, 7, 9, 10, 14, 15]  # 2h steps, never two in a row
    hours += list(range(16, 40)) + list(range(44, 44 + 4 * 5, 4))  # then 5 steps of 4h
    hours += list(range(64, 90))
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", _spot_lines(hours))])
    assert data.report.ok
    assert data.report.rows_kept == len(hours)


@pytest.mark.skipif(not REAL.is_dir(), reason="shared data not present")
def test_the_shared_data_has_no_mixed_interval_or_new_drops() -> None:
    report = load_candles([REAL]).report
    assert report.ok
    assert not {"short_row", "unknown_symbol", "symbol_mismatch"} & set(report.dropped)
    assert (report.rows_read, report.dropped["zero_volume"]) == (520_206, 260)
