"""Crypto loader audit fixes: a zero-volume placeholder never wins a duplicated hour over the
traded bar; a pair filter neither counts nor raises on other pairs' rows; a column read twice
refuses the file; a blank symbol given the file name's pair is a counted repair; an epoch
stamp past int64 nanoseconds is out of range, not wrapped to another time."""

from __future__ import annotations

import pytest

from marketcast.data.validation import DataError
from marketcast.datasets.crypto import load_candle_sources

HEADER = "date,open,high,low,close,volume,ticker"


def _csv(*lines: str, header: str = HEADER) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def _bar(hour: int, volume: float = 10.0, symbol: str = "BTCUSDT", open_: str = "100") -> str:
    return f"2021-05-01 {hour:02d}:00:00,{open_},101,99,100.5,{volume},{symbol}"


def test_a_placeholder_read_first_does_not_replace_the_traded_bar_of_its_hour() -> None:
    first = _csv(*(_bar(h, volume=0.0 if h == 2 else 10.0) for h in range(4)))
    second = _csv(*(_bar(h) for h in range(2, 6)))
    data = load_candle_sources([("BTCUSDT_1h_a.csv", first), ("BTCUSDT_1h_b.csv", second)])
    bar = data.candles.set_index("open_time_utc").loc["2021-05-01 02:00:00+00:00"]
    assert bar["volume"] == 10.0
    assert not bar["repaired"]
    assert data.report.dropped.get("zero_volume") == 1
    assert data.report.dropped.get("duplicate_bar") == 1  # hour 3, in both files alike
    assert data.report.dropped.get("conflicting_duplicate", 0) == 0
    assert data.report.repaired.get("gap_bars_filled", 0) == 0


@pytest.mark.parametrize("on_error", ["drop", "raise"])
def test_rows_of_pairs_not_asked_for_are_neither_counted_nor_raised_on(on_error: str) -> None:
    source = _csv(*(_bar(h) for h in range(4)), _bar(0, symbol="ETHUSDT", open_="abc"))
    data = load_candle_sources([("prices_1h.csv", source)], pairs=["BTCUSDT"], on_error=on_error)
    report = data.report
    assert report.rows_read == report.rows_kept == 4
    assert not any(report.dropped.values())
    assert report.issues == []
    assert data.candles["pair"].unique().tolist() == ["BTCUSDT"]


def test_a_bad_row_of_a_pair_asked_for_still_counts_and_raises() -> None:
    source = _csv(*(_bar(h) for h in range(4)), _bar(4, open_="abc"), _bar(0, symbol="ETHUSDT"))
    report = load_candle_sources([("prices_1h.csv", source)], pairs=["BTCUSDT"]).report
    assert report.rows_read == 5
    assert report.dropped["unparseable_value"] == 1
    with pytest.raises(DataError, match=r"prices_1h\.csv, row 6, field 'open'"):
        load_candle_sources([("prices_1h.csv", source)], pairs=["BTCUSDT"], on_error="raise")


@pytest.mark.parametrize("second", ["close", "Close"])
def test_a_column_given_twice_refuses_the_file(second: str) -> None:
    rows = [f"{_bar(h)},99.5" for h in range(4)]
    source = _csv(*rows, header=f"{HEADER},{second}")
    data = load_candle_sources([("BTCUSDT_1h.csv", source)])
    assert data.candles.empty
    [error] = data.report.errors
    assert (error.file, error.row, error.field.lower()) == ("BTCUSDT_1h.csv", 1, "close")
    assert "more than once (columns [5, 8])" in error.reason
    with pytest.raises(DataError, match="column given more than once"):
        load_candle_sources([("BTCUSDT_1h.csv", source)], on_error="raise")


def test_a_blank_symbol_given_the_file_names_pair_is_a_counted_repair() -> None:
    source = _csv(_bar(0), _bar(1, symbol=""), _bar(2))
    data = load_candle_sources([("BTCUSDT_1h.csv", source)])
    assert data.candles["pair"].tolist() == ["BTCUSDT"] * 3
    assert data.report.repaired["pair_from_file_name"] == 1


def test_an_epoch_stamp_past_int64_nanoseconds_is_out_of_range_not_wrapped() -> None:
    start_ms = 1_619_827_200_000  # 2021-05-01 00:00 UTC
    lines = [f"{start_ms + 3_600_000 * h},100,101,99,100.5,10" for h in range(4)]
    header = "timestamp,open,high,low,close,volume"
    source = _csv(*lines, "9999999999999,100,101,99,100.5,10", header=header)
    report = load_candle_sources([("BTCUSDT_1h.csv", source)]).report
    assert report.dropped.get("timestamp_out_of_range") == 1
    assert report.dropped.get("unaligned_timestamp", 0) == 0
    [issue] = [i for i in report.issues if i.reason == "timestamp_out_of_range"]
    assert issue.row == 6
