"""The layouts exchanges publish today: data.binance.vision klines and funding, and
CryptoDataDownload exports with a notice line before the header."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from marketcast.cli import main
from marketcast.datasets.crypto import (
    BINANCE_VISION_KLINE_COLUMNS,
    detect_file,
    detect_source,
    load_candles,
)

VISION_HEADER = ",".join(BINANCE_VISION_KLINE_COLUMNS)
CDD_HEADER = "Unix,Date,Symbol,Open,High,Low,Close,Volume ETH,Volume USDT,tradecount"
START = pd.Timestamp("2025-01-01 00:00", tz="UTC")


def _kline(hour: int, *, scale: int, close: float = 101.0, high: float = 102.0) -> str:
    """One data.binance.vision kline line, open time ``START + hour`` in ``scale`` per second."""
    open_s = int(START.timestamp()) + 3600 * hour
    t = open_s * scale
    close_t = (open_s + 3600) * scale - 1
    return f"{t},100.0,{high},99.0,{close},2.5,{close_t},251.0,42,1.25,125.5,0"


def _write(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _hours(n: int) -> pd.DatetimeIndex:
    return pd.date_range(START, periods=n, freq="h")


@pytest.mark.parametrize(("header", "scale"), [(False, 1_000_000), (True, 1_000_000),
                                               (False, 1_000), (True, 1_000)])  # fmt: skip
def test_vision_spot_klines_with_and_without_header(
    tmp_path: Path, header: bool, scale: int
) -> None:
    """Microseconds (spot since 2025) and milliseconds read alike; a bad bar is counted."""
    lines = [_kline(h, scale=scale) for h in range(4)]
    lines[2] = _kline(2, scale=scale, high=100.5)  # high below close: dropped, then refilled
    path = _write(tmp_path / "spot" / "BTCUSDT-1h-2025-01.csv",
                  [VISION_HEADER, *lines] if header else lines)  # fmt: skip
    data = load_candles([path])
    candles = data.candles
    assert candles["open_time_utc"].tolist() == list(_hours(4))
    assert str(candles["open_time_utc"].dt.tz) == "UTC"
    assert candles["pair"].unique().tolist() == ["BTCUSDT"]
    assert candles["vendor"].unique().tolist() == ["binance_spot"]
    kept = candles.loc[~candles["repaired"]]
    assert (
        kept[["open", "high", "low", "close"]].to_numpy().tolist()
        == [[100.0, 102.0, 99.0, 101.0]] * 3
    )
    assert kept["volume"].tolist() == [2.5] * 3
    assert kept["quote_volume"].tolist() == [251.0] * 3  # from the file, not estimated
    assert not kept["quote_volume_estimated"].any()
    assert kept["trades"].tolist() == [42.0] * 3
    report = data.report.to_dict()
    assert (report["files_read"], report["rows_read"], report["rows_kept"]) == (1, 4, 3)
    assert report["dropped"]["high_below_open_close"] == 1
    assert report["repaired"]["gap_bars_filled"] == 1
    assert report["errors"] == []
    issue = next(i for i in report["issues"] if i["reason"] == "high_below_open_close")
    assert issue["row"] == (4 if header else 3)  # the file's own line number


def test_vision_futures_folder_tags_the_vendor_and_counts_bad_values(tmp_path: Path) -> None:
    lines = [_kline(h, scale=1_000) for h in range(3)]
    lines[1] = lines[1].replace(",2.5,", ",n/a?,", 1)  # an unreadable volume
    path = _write(tmp_path / "futures" / "um" / "monthly" / "ETHUSDT-1h-2025-01.csv",
                  [VISION_HEADER, *lines])  # fmt: skip
    data = load_candles([path])
    assert data.candles["vendor"].unique().tolist() == ["binance_futures_um"]
    assert data.candles["pair"].unique().tolist() == ["ETHUSDT"]
    report = data.report.to_dict()
    assert (report["rows_read"], report["rows_kept"]) == (3, 2)
    assert report["dropped"]["unparseable_value"] == 1
    issue = next(i for i in report["issues"] if i["reason"] == "unparseable_value")
    assert (issue["row"], issue["field"], issue["value"]) == (3, "volume", "n/a?")


def test_vision_spot_year_boundary_mixes_units_and_says_so(tmp_path: Path) -> None:
    """A spot history concatenated across 2025 holds ms then µs: both read, the mix counted."""
    lines = [_kline(h, scale=1_000) for h in range(-2, 0)] + [
        _kline(h, scale=1_000_000) for h in range(2)
    ]
    data = load_candles([_write(tmp_path / "XRPUSDT-1h-2024-2025.csv", lines)])
    expected = pd.date_range(START - pd.Timedelta(hours=2), periods=4, freq="h")
    assert data.candles["open_time_utc"].tolist() == list(expected)
    repaired = data.report.to_dict()["repaired"]
    assert (repaired["timestamps_in_milliseconds"], repaired["timestamps_in_microseconds"]) == (
        2,
        2,
    )


def test_vision_klines_that_are_not_hourly_are_refused_as_before(tmp_path: Path) -> None:
    lines = [_kline(4 * h, scale=1_000) for h in range(4)]
    data = load_candles([_write(tmp_path / "BTCUSDT-4h-2025-01.csv", lines)])
    assert data.candles.empty
    (error,) = data.report.to_dict()["errors"]
    assert "candles are not hourly" in error["reason"]


def test_headerless_file_needs_the_vision_name(tmp_path: Path) -> None:
    """Twelve numbers and no header are only a kline file under a ``<PAIR>-<interval>-`` name."""
    lines = [_kline(h, scale=1_000) for h in range(3)]
    assert detect_file(_write(tmp_path / "BTCUSDT-1h-2025-01.csv", lines)) == "binance_vision"
    assert detect_file(_write(tmp_path / "numbers.csv", lines)) is None
    assert detect_source("BTCUSDT-1h-2025-01.csv", b"1,2,3\n") is None


def test_vision_funding_reads_as_funding(tmp_path: Path) -> None:
    t0 = int(pd.Timestamp("2025-01-01 08:00", tz="UTC").timestamp() * 1000)
    lines = ["calc_time,funding_interval_hours,last_funding_rate",
             f"{t0 + 3},8,0.0001", f"{t0 + 8 * 3_600_000},8,-0.00002",
             f"{t0 + 16 * 3_600_000},8,"]  # fmt: skip
    data = load_candles([_write(tmp_path / "BTCUSDT-fundingRate-2025-01.csv", lines)])
    funding = data.funding
    assert funding["pair"].tolist() == ["BTCUSDT", "BTCUSDT"]
    assert funding["funding_time_utc"].tolist() == list(
        pd.date_range("2025-01-01 08:00", periods=2, freq="8h", tz="UTC")
    )
    assert funding["funding_rate"].tolist() == [0.0001, -0.00002]
    report = data.report.to_dict()
    assert (report["rows_read"], report["rows_kept"]) == (3, 2)
    assert report["dropped"]["missing_value"] == 1
    assert report["repaired"]["funding_time_rounded"] == 1
    assert report["rows_by_kind"] == {"funding": 2}


def test_cryptodatadownload_notice_line_is_skipped(tmp_path: Path) -> None:
    t0 = int(START.timestamp() * 1000)
    rows = [f"{t0 + 3_600_000 * h},2025-01-01 0{h}:00:00,ETHUSDT,10,11,9,10.5,3,31.5,7"
            for h in (2, 1, 0)]  # fmt: skip
    rows[1] = rows[1].replace(",11,9,", ",11,12,")  # low above open and close
    lines = ["https://www.CryptoDataDownload.com", CDD_HEADER, *rows]
    data = load_candles([_write(tmp_path / "Binance_ETHUSDT_1h.csv", lines)])
    candles = data.candles
    assert candles["open_time_utc"].tolist() == list(_hours(3))
    assert candles["vendor"].unique().tolist() == ["cryptodatadownload"]
    assert candles["pair"].unique().tolist() == ["ETHUSDT"]
    kept = candles.loc[~candles["repaired"]]
    assert kept["close"].tolist() == [10.5, 10.5]
    assert kept["volume"].tolist() == [3.0, 3.0]
    assert kept["quote_volume"].tolist() == [31.5, 31.5]
    report = data.report.to_dict()
    assert (report["files_read"], report["rows_read"], report["rows_kept"]) == (1, 3, 2)
    assert report["dropped"]["low_above_open_close"] == 1
    issue = next(i for i in report["issues"] if i["reason"] == "low_above_open_close")
    assert issue["row"] == 4  # notice on line 1, header on line 2


def test_data_check_routes_every_recognised_layout_to_crypto(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "data"
    _write(folder / "BTCUSDT-1h-2025-01.csv", [_kline(h, scale=1_000_000) for h in range(3)])
    _write(folder / "hdr" / "ETHUSDT-1h-2025-01.csv",
           [VISION_HEADER, *(_kline(h, scale=1_000) for h in range(3))])  # fmt: skip
    _write(folder / "BTCUSDT-fundingRate-2025-01.csv",
           ["calc_time,funding_interval_hours,last_funding_rate",
            f"{int(START.timestamp() * 1000)},8,0.0001"])  # fmt: skip
    t0 = int(START.timestamp() * 1000)
    cdd_rows = [f"{t0 + 3_600_000 * h},x,SOLUSDT,10,11,9,10.5,3,31.5,7" for h in (1, 0)]
    cdd_header = CDD_HEADER.replace("ETH", "SOL")
    _write(folder / "Binance_SOLUSDT_1h.csv",
           ["https://www.CryptoDataDownload.com", cdd_header, *cdd_rows])  # fmt: skip
    out = tmp_path / "integrity.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "football" not in report  # nothing went to the football checker
    assert report["errors"] == []
    assert (report["files_read"], report["rows_read"]) == (4, 9)
    assert report["rows_by_kind"] == {"candles": 8, "funding": 1}
    assert "missing required column" not in capsys.readouterr().err
