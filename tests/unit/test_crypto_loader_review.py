"""Real users' candle files that the audit's checks (test_crypto_loader_audit.py) refused,
though they loaded before and are read right: exchange symbols of unlisted quote assets, file
names that do not spell the pair as its symbol does, thin pairs, ragged exports. The audit's
cases stay caught; and a file refused as mostly bad keeps none of its rows."""

from __future__ import annotations

import logging
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.candles import CandleReport
from marketcast.data.validation import DataError
from marketcast.datasets.crypto import detect_format, load_candles

OHLCV = "timestamp,open,high,low,close,volume"
SPOT_HEADER = "date,open,high,low,close,volume,ticker"
START = pd.Timestamp("2023-06-01 00:00", tz="UTC")


def _ms(hour: int) -> int:
    return int((START + pd.Timedelta(hours=hour)).timestamp() * 1000)


def _lines(hours: list[int], symbol: str | None = None, price: float = 100.0) -> list[str]:
    """A generic export (``timestamp`` in ms), with a ``symbol`` column when given one."""
    tail = "" if symbol is None else f",{symbol}"
    header = OHLCV + ("" if symbol is None else ",symbol")
    bars = [f"{_ms(h)},{price},{price + 1},{price - 1},{price + 0.5},12.5{tail}" for h in hours]
    return [header, *bars]


def _write(path: Path, lines: list[str], *, end: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + end)
    return path


def _balanced(report: CandleReport) -> bool:
    return bool(report.rows_read == report.rows_kept + sum(report.dropped.values()))


# --- 1. a symbol whose quote asset the loader does not list is a pair all the same ------------


@pytest.mark.parametrize(
    ("file_name", "symbol", "pair"),
    [
        ("BTC-GBP_1h.csv", "BTC-GBP", "BTCGBP"),  # Coinbase
        ("BTC-USDT-SWAP_1h.csv", "BTC-USDT-SWAP", "BTCUSDTSWAP"),  # OKX perpetual
        ("BTCUSD_PERP_1h.csv", "BTCUSD_PERP", "BTCUSDPERP"),  # Binance COIN-M
        ("BTCUSDT_230630_1h.csv", "BTCUSDT_230630", "BTCUSDT230630"),  # a dated future
    ],
)
def test_exchange_symbols_load_whatever_their_quote_asset(
    tmp_path: Path, file_name: str, symbol: str, pair: str
) -> None:
    """Each was dropped row by row as ``unknown_symbol`` (or ``symbol_mismatch``), so the file
    was mostly bad and the whole run refused."""
    data = load_candles([_write(tmp_path / file_name, _lines(list(range(6)), symbol))])
    assert data.report.ok, data.report.errors
    assert data.pairs == [pair]
    assert data.report.rows_kept == 6


def test_a_cut_symbol_is_caught_without_the_file_naming_the_pair(tmp_path: Path) -> None:
    lines = _lines(list(range(4)), "BTCUSDT")
    lines[-1] = lines[-1][: -len("SDT")]  # "BTCU"
    data = load_candles([_write(tmp_path / "prices_1h.csv", lines, end="")])
    assert data.pairs == ["BTCUSDT"]
    assert data.report.dropped["unknown_symbol"] == 1
    assert _balanced(data.report)


def test_only_a_lone_symbol_on_the_last_line_is_taken_for_a_cut_one(tmp_path: Path) -> None:
    """``BTCUSD`` is the start of ``BTCUSDT``; a file holding both pairs keeps both, its last
    line included, and a one-bar pair that is no one's start is kept too."""
    usd = _lines([0, 1, 2], "BTC-USD")
    both = [*usd, *_lines([0, 1, 2], "BTCUSDT")[1:], usd[-1]]
    data = load_candles([_write(tmp_path / "a" / "prices_1h.csv", both)])
    assert data.report.ok
    assert data.pairs == ["BTCUSD", "BTCUSDT"]
    assert not {"unknown_symbol", "symbol_mismatch"} & set(data.report.dropped)
    lone = [*_lines([0, 1, 2], "BTCUSDT"), _lines([3], "ETHU")[1]]
    data = load_candles([_write(tmp_path / "b" / "prices_1h.csv", lone)])
    assert data.pairs == ["BTCUSDT", "ETHU"]


# --- 2. the file name contradicts a file only when none of its symbols is the name's pair -----


def test_a_renamed_pairs_history_saved_under_its_new_name(tmp_path: Path) -> None:
    """``POLUSDT_1h.csv`` holding MATICUSDT then POLUSDT rows, with MATICUSDT=POLUSDT: its
    MATIC rows were dropped as ``symbol_mismatch`` (more than half: the run was refused)."""
    lines = _lines(list(range(8)), "MATICUSDT") + _lines(list(range(8, 12)), "POLUSDT")[1:]
    path = _write(tmp_path / "POLUSDT_1h.csv", lines)
    data = load_candles([path], pair_renames={"MATICUSDT": "POLUSDT"})
    assert data.report.ok, data.report.errors
    assert data.pairs == ["POLUSDT"]
    assert data.report.rows_kept == 12
    old_name = _write(tmp_path / "old" / "MATICUSDT_1h.csv", _lines(list(range(6)), "POLUSDT"))
    data = load_candles([old_name], pair_renames={"MATICUSDT": "POLUSDT"})
    assert data.report.ok, data.report.errors
    assert data.pairs == ["POLUSDT"]


@pytest.mark.parametrize(
    ("file_name", "symbols", "pairs"),
    [
        # "ENTRY" ends in TRY: no pair, though `pair_from_name` takes it
        ("binance_top_entry.csv", ["BTCUSDT", "ETHUSDT"], ["BTCUSDT", "ETHUSDT"]),
        ("BTCUSDT_and_more_1h.csv", ["BTCUSDT", "ETHUSDT"], ["BTCUSDT", "ETHUSDT"]),
        ("BTCUSD_1h.csv", ["XBT/USD"], ["XBTUSD"]),  # Kraken's name for BTC
    ],
)
def test_a_file_name_that_does_not_spell_the_pair_refuses_nothing(
    tmp_path: Path, file_name: str, symbols: list[str], pairs: list[str]
) -> None:
    lines = [OHLCV + ",symbol"]
    for i, symbol in enumerate(symbols):
        lines += _lines(list(range(6)), symbol, price=100.0 * (i + 1))[1:]
    data = load_candles([_write(tmp_path / file_name, lines)])
    assert data.report.ok, data.report.errors
    assert data.pairs == pairs
    assert data.report.rows_kept == 6 * len(symbols)
    assert sum(data.report.dropped.values()) == 0


def test_another_pairs_bars_under_a_pairs_name_are_refused(tmp_path: Path) -> None:
    """ETH bars saved as ``BTCUSDT_1h.csv``: refused as a whole, none of it read."""
    path = _write(tmp_path / "BTCUSDT_1h.csv", _lines(list(range(6)), "ETH/USDT"))
    other = _write(tmp_path / "SOLUSDT_1h.csv", _lines(list(range(6)), "SOLUSDT"))
    data = load_candles([path, other])
    [error] = data.report.errors
    assert (error.file, error.row, error.field, error.value) == (str(path), 2, "symbol", "ETH/USDT")
    assert error.reason.startswith(
        "symbol_mismatch: the file name gives BTCUSDT, its symbol column holds ETHUSDT and no "
        "BTCUSDT row"
    )
    assert data.pairs == ["SOLUSDT"]
    assert (data.report.rows_read, data.report.files_read) == (6, 1)
    with pytest.raises(DataError, match="row 2, field 'symbol': symbol_mismatch"):
        load_candles([path], on_error="raise")


# --- 3. a file refused as mostly bad contributes no rows ----------------------------------------


def _mostly_bad_eth(folder: Path) -> Path:
    """300 rows, 200 of them with dates a spreadsheet re-wrote in the epoch column."""
    lines = _lines(list(range(300)))
    lines[101:] = [
        line.replace(str(_ms(h)), f"{START + pd.Timedelta(hours=h):%d/%m/%Y %H:%M}", 1)
        for h, line in zip(range(100, 300), lines[101:], strict=True)
    ]
    return _write(folder / "ETHUSDT_1h.csv", lines)


def test_a_mostly_bad_file_keeps_none_of_its_rows(tmp_path: Path) -> None:
    """Its 100 good rows were kept: a stray stretch of the pair, in the data of a run that
    ``report.ok`` refused, and served by the crypto server that logged them as not served."""
    path = _mostly_bad_eth(tmp_path / "data")
    other = _write(tmp_path / "data" / "BTCUSDT_1h.csv", _lines(list(range(300))))
    data = load_candles([path, other])
    [error] = data.report.errors
    assert error.file == str(path)
    assert error.reason.startswith("200 of its 300 data rows were dropped as bad")
    assert data.pairs == ["BTCUSDT"]
    report = data.report
    assert (report.dropped["unparseable_timestamp"], report.dropped["mostly_bad_file"]) == (
        200,
        100,
    )
    assert (report.rows_read, report.rows_kept) == (600, 300)
    assert _balanced(report)


def test_the_crypto_server_serves_no_row_of_a_file_it_logs_as_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from marketcast.serving.crypto import CryptoService, CryptoSettings

    folder = tmp_path / "data"
    _mostly_bad_eth(folder)
    _write(folder / "BTCUSDT_1h.csv", _lines(list(range(300))))
    service = types.SimpleNamespace(settings=CryptoSettings(candle_paths=(str(folder),)))
    with caplog.at_level(logging.ERROR, logger="marketcast.serving.crypto"):
        data = CryptoService._load_candles(service)  # type: ignore[arg-type]
    assert sorted(data.candles["pair"].unique()) == ["BTCUSDT"]
    [record] = caplog.records
    assert "ETHUSDT_1h.csv refused (200 of its 300 data rows" in record.getMessage()
    assert record.getMessage().endswith(": none of its rows is served")


def test_a_file_mostly_bad_by_the_bar_checks_leaves_the_others_as_alone(tmp_path: Path) -> None:
    """Its surviving bars are taken out before the candle rules run, so the other files' gap
    repair, counts and issues are those of loading them without it."""
    swapped = ["date,open,low,high,close,volume,ticker"] + [
        f"{START + pd.Timedelta(hours=h):%Y-%m-%d %H:%M:%S},100.0,101.0,99.0,100.5,12.5,BTCUSDT"
        for h in range(5)
    ]
    swapped.append(f"{START + pd.Timedelta(hours=5):%Y-%m-%d %H:%M:%S},100,100,100,100,1,BTCUSDT")
    bad = _write(tmp_path / "BTCUSDT_1h.csv", swapped)
    good = _write(tmp_path / "ETHUSDT_1h.csv", _lines([0, 1, 2, 4, 5, 6], "ETHUSDT"))  # a gap
    alone = load_candles([good])
    data = load_candles([bad, good])
    pd.testing.assert_frame_equal(data.candles, alone.candles)
    pd.testing.assert_frame_equal(data.gaps, alone.gaps)
    report = data.report
    assert report.repaired == alone.report.repaired
    assert report.dropped["high_below_open_close"] == 5
    assert report.dropped["mostly_bad_file"] == 1
    assert (report.rows_read, report.rows_kept) == (12, 6)
    assert _balanced(report)
    [error] = report.errors
    assert error.file == str(bad)


# --- 4. a thin pair is no mixed_interval file ---------------------------------------------------


def test_a_thin_pair_with_runs_of_2h_steps_loads_with_its_gaps(tmp_path: Path) -> None:
    """A pair trading about half its hours (no-trade hours left out, as Coinbase and ccxt do)
    has 6 two-hour steps in a row within weeks: the whole file was refused as mixed_interval."""
    rng = np.random.default_rng(4)
    hours = np.flatnonzero(rng.random(24 * 90) < 0.5).tolist()  # 90 days, each hour a coin flip
    two_hour = np.r_[0, np.diff(hours) == 2, 0]
    edges = np.flatnonzero(np.diff(two_hour))  # starts and ends of the runs of 2h steps
    assert (edges[1::2] - edges[::2]).max() == 7  # the audit refused 6 in a row
    data = load_candles([_write(tmp_path / "XYZUSD_1h.csv", _lines(hours, "XYZ-USD", 2.0))])
    assert data.report.ok, data.report.errors
    assert data.report.rows_kept == len(hours)
    assert len(data.candles) == len(hours) + data.report.repaired["gap_bars_filled"]


@pytest.mark.parametrize(
    "hours",
    [
        list(range(24)) + list(range(24, 38, 2)) + list(range(39, 60)),  # 7 2h steps, inside
        list(range(60)) + list(range(60, 120, 2)) + list(range(120, 200)),  # 30 of them
        list(range(24)) + list(range(24, 56, 4)) + list(range(53, 70)),  # 7 4h steps, inside
        list(range(24)) + list(range(25, 62, 4)),  # 9 4h steps to the end, off the 4h marks
        list(range(24)) + list(range(24, 56, 4)),  # 7 4h steps to the end: gaps still
    ],
)
def test_coarse_steps_short_of_strong_evidence_are_gaps(tmp_path: Path, hours: list[int]) -> None:
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", _lines(hours))])
    assert data.report.ok, data.report.errors
    assert data.report.rows_kept == len(hours)


@pytest.mark.parametrize(
    ("hours", "first_coarse"),
    [
        (list(range(24)) + list(range(24, 60, 4)), 24),  # 8 4h steps to the last bar
        (list(range(0, 36, 4)) + list(range(33, 60)), 0),  # 8 4h steps from the first bar
        (list(range(200)) + list(range(200, 400, 4)) + list(range(397, 500)), 200),  # 49 inside
        (list(range(24)) + list(range(24, 240, 24)), 24),  # daily bars joined on, at 00:00
    ],
)
def test_an_hourly_file_joined_to_a_coarser_export_is_still_refused(
    tmp_path: Path, hours: list[int], first_coarse: int
) -> None:
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", _lines(hours))])
    [error] = data.report.errors
    assert error.reason.startswith("mixed_interval: BTCUSDT bars are hourly, then")
    assert error.row == hours.index(first_coarse) + 2
    assert data.candles.empty


# --- 5. a line short only of columns nothing reads is read ---------------------------------------


def test_a_ragged_export_lacking_an_unused_column_on_some_rows_is_read(tmp_path: Path) -> None:
    """A ``note`` column left out where empty: every other row was dropped as ``short_row`` and
    the file then refused as "not hourly", the short_row counts thrown away with it."""
    bars = [
        f"{START + pd.Timedelta(hours=h):%Y-%m-%d %H:%M:%S},100,101,99,100.5,12.5,BTCUSDT"
        + (",checked" if h % 2 else "")
        for h in range(10)
    ]
    data = load_candles([_write(tmp_path / "BTCUSDT_1h.csv", [SPOT_HEADER + ",note", *bars])])
    assert data.report.ok, data.report.errors
    assert data.report.rows_kept == 10
    assert "short_row" not in data.report.dropped


def test_a_line_cut_before_a_read_column_is_still_a_short_row(tmp_path: Path) -> None:
    bars = [
        f"{START + pd.Timedelta(hours=h):%Y-%m-%d %H:%M:%S},100,101,99,100.5,12.5,BTCUSDT,ok"
        for h in range(4)
    ]
    bars[-1] = bars[-1][: bars[-1].index(",12.5") + 4]  # "...,100.5,12." and no ticker, no note
    path = _write(tmp_path / "BTCUSDT_1h.csv", [SPOT_HEADER + ",note", *bars], end="")
    data = load_candles([path])
    assert data.report.dropped["short_row"] == 1
    [issue] = [i for i in data.report.issues if i.reason == "short_row"]
    assert (issue.row, issue.field) == (5, "ticker")
    assert data.report.rows_kept == 3


# --- 7. a date,open,high,low,close,volume export without a ticker is generic --------------------


def test_a_date_export_without_a_ticker_is_generic_and_loses_the_overlap_to_spot(
    tmp_path: Path,
) -> None:
    assert detect_format(["date", "open", "high", "low", "close", "volume"]) == "generic"
    assert detect_format(["Date", "Open", "High", "Low", "Close", "Volume", "Symbol"]) == (
        "binance_spot"
    )
    stamp = "{:%Y-%m-%d %H:%M:%S}"
    plain = ["date,open,high,low,close,volume"] + [
        f"{stamp.format(START + pd.Timedelta(hours=h))},100,101,99,100.4,12.5" for h in range(4)
    ]
    spot = [SPOT_HEADER] + [
        f"{stamp.format(START + pd.Timedelta(hours=h))},100,101,99,100.5,12.5,BTCUSDT"
        for h in range(2)
    ]
    data = load_candles(
        [
            _write(tmp_path / "a" / "BTCUSDT.csv", plain),
            _write(tmp_path / "b" / "BTCUSDT_1h.csv", spot),
        ]
    )
    assert data.report.ok
    assert data.candles["vendor"].tolist() == ["binance_spot"] * 2 + ["generic"] * 2
