"""A file name's pair decides which files ``pairs`` reads only for files without a symbol
column (``binance_top_entry.csv`` is no ENTRY file); spreadsheet serial days in a time column
are a clear error, not "not hourly"."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from marketcast.data.validation import DataError
from marketcast.datasets.crypto import load_candles, pair_from_name

OHLCV = "timestamp,open,high,low,close,volume"
START = pd.Timestamp("2024-01-01 00:00", tz="UTC")
SERIAL_START = 45292  # 2024-01-01 as a spreadsheet serial day (days since 1899-12-30)


def _ms(hour: int) -> int:
    return int((START + pd.Timedelta(hours=hour)).timestamp() * 1000)


def _bars(hours: range, symbol: str | None = None, price: float = 100.0) -> list[str]:
    """Data lines of a generic export (``timestamp`` in ms), with a symbol when given one."""
    tail = "" if symbol is None else f",{symbol}"
    return [f"{_ms(h)},{price},{price + 1},{price - 1},{price + 0.5},12.5{tail}" for h in hours]


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _multi_pair(path: Path) -> Path:
    """Six BTCUSDT bars, then six ETHUSDT bars, with a ``symbol`` column."""
    lines = [OHLCV + ",symbol", *_bars(range(6), "BTCUSDT"), *_bars(range(6), "ETH/USDT", 50.0)]
    return _write(path, lines)


# --- 1. pairs: a file's symbols, not its name, tell whether it holds a pair asked for ----------


def test_pair_from_name_takes_a_word_that_ends_like_a_pair() -> None:
    """The defect's premise: the name alone says ENTRY (EN + TRY)."""
    assert pair_from_name("binance_top_entry.csv") == "ENTRY"


@pytest.mark.parametrize("wanted", [["BTCUSDT"], ["btc/usdt"], ["BTCUSDT", "SOLUSDT"]])
def test_a_multi_pair_file_named_with_a_word_is_read_for_a_pair_it_holds(
    tmp_path: Path, wanted: list[str]
) -> None:
    """It was skipped: its name seemed to say it held ENTRY only."""
    path = _multi_pair(tmp_path / "binance_top_entry.csv")
    data = load_candles([path], pairs=wanted)
    assert data.report.ok, data.report.errors
    assert data.pairs == ["BTCUSDT"]
    assert (data.report.files_read, data.report.rows_read, data.report.rows_kept) == (1, 6, 6)


def test_a_multi_pair_file_named_after_one_pair_is_read_for_another(tmp_path: Path) -> None:
    """``BTCUSDT_ETHUSDT_1h.csv`` may hold other pairs than its name's first (docs): asking for
    ETHUSDT skipped it."""
    path = _multi_pair(tmp_path / "BTCUSDT_ETHUSDT_1h.csv")
    data = load_candles([path], pairs=["ETHUSDT"])
    assert data.report.ok, data.report.errors
    assert data.pairs == ["ETHUSDT"]
    assert data.candles["close"].tolist() == [50.5] * 6


def test_a_blank_symbol_in_a_file_whose_name_spells_no_pair_of_it_is_missing(
    tmp_path: Path,
) -> None:
    """A row without a symbol took the name's word as its pair: a phantom ENTRY bar."""
    lines = [OHLCV + ",symbol", *_bars(range(6), "BTCUSDT"), *_bars(range(6, 7), "")]
    path = _write(tmp_path / "binance_top_entry.csv", lines)
    data = load_candles([path])
    assert data.pairs == ["BTCUSDT"]
    assert data.report.dropped["missing_value"] == 1
    [issue] = [i for i in data.report.issues if i.reason == "missing_value"]
    assert (issue.file, issue.row, issue.field) == (str(path), 8, "symbol")


def test_a_blank_symbol_in_a_file_named_after_its_pair_still_takes_the_name(
    tmp_path: Path,
) -> None:
    lines = [OHLCV + ",symbol", *_bars(range(6), "BTCUSDT"), *_bars(range(6, 7), "")]
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", lines)])
    assert data.report.ok, data.report.errors
    assert data.pairs == ["BTCUSDT"]
    assert data.report.rows_kept == 7


def test_a_file_of_other_pairs_is_still_skipped_unread(tmp_path: Path) -> None:
    """A symbol column holding none of the pairs asked for: not read, not counted. ``BTCUSD``
    is the start of ``BTCUSDT``, yet no BTCUSD row: skipped too."""
    eth = _write(tmp_path / "ETHUSDT_1h.csv", [OHLCV + ",symbol", *_bars(range(6), "ETHUSDT")])
    btc = _write(tmp_path / "BTCUSDT_1h.csv", [OHLCV + ",ticker", *_bars(range(6), "BTC-USDT")])
    for wanted in (["BTCUSDT"], ["BTCUSD"]):
        data = load_candles([eth], pairs=wanted)
        assert (data.report.files_read, data.report.rows_read) == (0, 0)
        assert data.candles.empty
    assert load_candles([btc], pairs=["BTCUSD"]).report.files_read == 0


def test_a_file_whose_symbols_contradict_its_requested_name_is_still_refused(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "BTCUSDT_1h.csv", [OHLCV + ",symbol", *_bars(range(6), "ETHUSDT")])
    data = load_candles([path], pairs=["BTCUSDT"])
    [error] = data.report.errors
    assert error.reason.startswith("symbol_mismatch: the file name gives BTCUSDT")


@pytest.mark.parametrize(
    ("file_name", "pair"),
    [
        ("BTCUSDT_1h.csv", "BTCUSDT"),
        ("Binance_ethusdt_1h.csv", "ETHUSDT"),
        ("ETHBTC_1h.csv", "ETHBTC"),
        ("BTCTRY_1h.csv", "BTCTRY"),
        ("POLUSDT_1h.csv", "POLUSDT"),
        ("BTCUSD_PERP_1h.csv", "BTCUSD"),
    ],
)
def test_a_file_without_a_symbol_column_takes_its_pair_from_its_name(
    tmp_path: Path, file_name: str, pair: str
) -> None:
    path = _write(tmp_path / file_name, [OHLCV, *_bars(range(6))])
    data = load_candles([path], pairs=[pair])
    assert data.report.ok, data.report.errors
    assert data.pairs == [pair]
    other = load_candles([path], pairs=["SOLUSDT"])
    assert (other.report.files_read, other.report.rows_read) == (0, 0)


def test_the_bundle_filtered_by_pair_reads_one_file() -> None:
    data = load_candles(pairs=["BTCUSDT"])
    assert data.pairs == ["BTCUSDT"]
    assert data.report.files_read == 1


# --- 2. spreadsheet serial days in a time column -----------------------------------------------


def _serial_lines(time_col: str, cells: list[str]) -> list[str]:
    header = OHLCV.replace("timestamp", time_col)
    return [header, *(f"{c},100,101,99,100.5,12.5" for c in cells)]


SERIAL_CELLS = {
    "whole": [f"{SERIAL_START + h / 24!r}" for h in range(6)],  # 45292.041666666664
    "rounded": [f"{SERIAL_START + h / 24:.10f}" for h in range(6)],  # 45292.0416666667
}


@pytest.mark.parametrize("time_col", ["timestamp", "date"])
@pytest.mark.parametrize("cells", SERIAL_CELLS.values(), ids=SERIAL_CELLS.keys())
def test_spreadsheet_serial_days_are_a_clear_error(
    tmp_path: Path, time_col: str, cells: list[str]
) -> None:
    """They were read as epoch seconds of 1970 and refused as "candles are not hourly" (or,
    in a ``date`` column, every row dropped as an unparseable timestamp)."""
    path = _write(tmp_path / "BTCUSDT_1h.csv", _serial_lines(time_col, cells))
    data = load_candles([path])
    [error] = data.report.errors
    assert (error.file, error.row, error.field, error.value) == (str(path), 2, time_col, cells[0])
    assert "spreadsheet serial day" in error.reason
    assert "2024-01-01 00:00" in error.reason  # what the number would be, to recognise it
    assert "re-export" in error.reason
    assert "not hourly" not in error.reason
    assert data.candles.empty
    assert (data.report.files_read, sum(data.report.dropped.values())) == (0, 0)
    with pytest.raises(DataError, match=rf"row 2, field '{time_col}': .*spreadsheet serial day"):
        load_candles([path], on_error="raise")


@pytest.mark.parametrize("scale", [1, 1_000, 1_000_000], ids=["seconds", "ms", "us"])
def test_epoch_units_are_still_told_by_size(tmp_path: Path, scale: int) -> None:
    seconds = [int((START + pd.Timedelta(hours=h)).timestamp()) for h in range(6)]
    path = _write(
        tmp_path / "BTCUSDT_1h.csv", _serial_lines("timestamp", [str(s * scale) for s in seconds])
    )
    data = load_candles([path])
    assert data.report.ok, data.report.errors
    assert data.candles["open_time_utc"].tolist() == [
        START + pd.Timedelta(hours=h) for h in range(6)
    ]


def test_one_stray_serial_number_in_an_epoch_file_is_one_dropped_row(tmp_path: Path) -> None:
    """Not the file refused: most of its times are epoch milliseconds."""
    cells = [str(_ms(h)) for h in range(6)]
    cells[2] = "45292.0833333333"
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", _serial_lines("timestamp", cells))])
    assert data.report.errors == []
    assert data.report.dropped["unaligned_timestamp"] == 1  # 1970-01-01 12:34:52.08 as seconds
    assert data.report.rows_kept == 5
