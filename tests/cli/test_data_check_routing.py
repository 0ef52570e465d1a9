"""``data check`` names what a file is when no checker can read it.

Every file the candle detector did not recognise went to the football reader, which blamed a
missing ``Date`` column under "data integrity: football": a semicolon-delimited season (whose
header names ``Date``), UTF-16 text, a headerless ``BTCUSDT_1h.csv``, a data.binance.vision zip,
a ForecastBench JSON file; a folder of zips was "no CSV files found".
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.datasets.football_data import bundled_football_path

FORECASTBENCH = Path("/work/shared/data/forecasting/forecastbench/question_sets")
FORECASTBENCH_JSON = FORECASTBENCH / "2024-12-08-human.json"


@pytest.fixture(scope="module")
def season() -> bytes:
    """E0 2021-22 as football-data.co.uk publishes it (the bundle holds the file unchanged)."""
    sources = dict(read_archive_csvs(bundled_football_path()))
    return sources["football/E0/2021-2022.csv"]


@pytest.fixture(scope="module")
def spot_lines() -> list[str]:
    """The bundled Binance spot BTCUSDT file's header and its last 200 hourly bars (2023-06)."""
    sources = dict(read_archive_csvs(BUNDLED_CRYPTO))
    lines = sources["crypto/BTCUSDT_1h.csv"].decode().splitlines()
    return [lines[0], *lines[-200:]]


def _vision_rows(spot_lines: list[str]) -> str:
    """The spot bars in data.binance.vision's 12 kline columns, without a header (as shipped)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in csv.DictReader(spot_lines):
        open_ms = _epoch_ms(row["date"])
        close, volume = float(row["close"]), float(row["volume"])
        writer.writerow(
            [open_ms, row["open"], row["high"], row["low"], row["close"], row["volume"],
             open_ms + 3_599_999, f"{close * volume:.8f}", 0, 0, 0, 0]
        )  # fmt: skip
    return out.getvalue()


def _epoch_ms(text: str) -> int:
    stamp = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def _zip(path: Path, member: str, text: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, text)
    return path


# Each builder writes one file under the folder and returns it.
Builder = Callable[[Path, bytes, list[str]], Path]


def _semicolons(folder: Path, season: bytes, spot: list[str]) -> Path:
    path = folder / "E0" / "2021-2022.csv"
    path.parent.mkdir()
    path.write_bytes(season.replace(b",", b";"))
    return path


def _utf16(folder: Path, season: bytes, spot: list[str]) -> Path:
    path = folder / "2021-2022.csv"
    path.write_bytes(season.decode("latin-1").encode("utf-16"))  # with its byte-order mark
    return path


def _headerless_spot(folder: Path, season: bytes, spot: list[str]) -> Path:
    path = folder / "BTCUSDT_1h.csv"
    path.write_text("\n".join(spot[1:]) + "\n")
    return path


def _headerless_spot_named_like_vision(folder: Path, season: bytes, spot: list[str]) -> Path:
    path = folder / "BTCUSDT-1h-2023-06.csv"
    path.write_text("\n".join(spot[1:]) + "\n")
    return path


def _vision_zip(folder: Path, season: bytes, spot: list[str]) -> Path:
    path = folder / "BTCUSDT-1h-2023-06.zip"
    return _zip(path, "BTCUSDT-1h-2023-06.csv", _vision_rows(spot))


def _forecastbench(folder: Path, season: bytes, spot: list[str]) -> Path:
    if not FORECASTBENCH_JSON.is_file():
        pytest.skip("shared ForecastBench data not present")
    path = folder / FORECASTBENCH_JSON.name
    path.write_bytes(FORECASTBENCH_JSON.read_bytes())
    return path


@pytest.mark.parametrize(
    ("build", "section", "row", "reason"),
    [
        (_semicolons, "football", 1,
         "semicolon-delimited: football-data files are comma-separated"),
        (_utf16, "football", None, "UTF-16 text: save it as UTF-8"),
        (_headerless_spot, "crypto", 1,
         "no header row: a candle file is told by its column names (Binance spot: "
         "date,open,high,low,close,volume,ticker); only data.binance.vision klines named "
         "<PAIR>-<interval>-YYYY-MM.csv are read without one"),
        (_headerless_spot_named_like_vision, "crypto", 1,
         "no header row, and 7 columns: a data.binance.vision kline file without a header "
         "has 12 (docs/crypto-data.md)"),
        (_vision_zip, "crypto", None,
         "a zip archive holding BTCUSDT-1h-2023-06.csv: unzip it and check the CSV inside "
         "(data.binance.vision ships its candles zipped)"),
        (_forecastbench, "football", None,
         "JSON, not CSV: data check reads football-data and candle CSV files"),
    ],
)  # fmt: skip
def test_an_unreadable_file_is_named_for_what_it_is(
    build: Builder,
    section: str,
    row: int | None,
    reason: str,
    season: bytes,
    spot_lines: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    path = build(folder, season, spot_lines)
    out = tmp_path / "check.json"

    assert main(["data", "check", str(path), "--json", str(out)]) == 1

    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert report["files_read"] == 0
    [error] = report["errors"]
    assert (error["file"], error["row"], error["field"], error["reason"]) == (
        str(path),
        row,
        None,
        reason,
    )
    captured = capsys.readouterr()
    assert f"data integrity: {section}" in captured.out
    assert f"error: {path}" in captured.err
    assert reason in captured.err
    assert "missing required column" not in captured.err


def test_the_header_is_shown_with_a_delimiter_error(
    season: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _semicolons(tmp_path, season, [])
    assert main(["data", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}, row 1: semicolon-delimited" in err
    assert "(Div;Date;Time;HomeTeam;AwayTeam;FTHG;FTAG;FTR;" in err


def test_a_folder_of_zips_says_to_unzip_them(
    spot_lines: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "no CSV files found", though zips are how data.binance.vision ships candles."""
    rows = _vision_rows(spot_lines)
    for month in ("2023-05", "2023-06"):
        _zip(tmp_path / f"BTCUSDT-1h-{month}.zip", f"BTCUSDT-1h-{month}.csv", rows)
    out = tmp_path / "check.json"

    assert main(["data", "check", str(tmp_path), "--json", str(out)]) == 1

    [error] = json.loads(out.read_text())["errors"]
    assert error["file"] == str(tmp_path)
    assert error["reason"] == (
        "no CSV files found, only 2 zip archives (BTCUSDT-1h-2023-05.zip, "
        "BTCUSDT-1h-2023-06.zip): unzip them and check the CSVs inside "
        "(data.binance.vision ships its candles zipped)"
    )
    captured = capsys.readouterr()
    assert "data integrity: crypto" in captured.out
    assert "data integrity: football" not in captured.out


def test_the_unzipped_candles_are_read(
    spot_lines: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the zip message asks for works: the CSV inside is a candle file data check reads,
    and a zip left beside it (as unzipping leaves it) changes nothing."""
    rows = _vision_rows(spot_lines)
    _zip(tmp_path / "BTCUSDT-1h-2023-06.zip", "BTCUSDT-1h-2023-06.csv", rows)
    with zipfile.ZipFile(tmp_path / "BTCUSDT-1h-2023-06.zip") as archive:
        archive.extractall(tmp_path)
    out = tmp_path / "check.json"

    assert main(["data", "check", str(tmp_path), "--json", str(out)]) == 0

    report = json.loads(out.read_text())
    assert (report["ok"], report["files_read"], report["rows_read"]) == (True, 1, 200)
    assert report["rows_by_kind"]["candles"] == 200


def test_readable_files_beside_an_unreadable_one_are_still_checked(
    season: bytes, spot_lines: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good" / "E0" / "2021-2022.csv"
    good.parent.mkdir(parents=True)
    good.write_bytes(season)
    bad = tmp_path / "bad"
    bad.mkdir()
    semicolons = _semicolons(bad, season, [])
    candles = _vision_zip(bad, season, spot_lines)
    out = tmp_path / "check.json"

    args = [str(good.parent.parent), str(semicolons), str(candles), "--json", str(out)]
    assert main(["data", "check", *args]) == 1

    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert (report["football"]["files_read"], report["football"]["rows_kept"]) == (1, 380)
    assert [e["file"] for e in report["football"]["errors"]] == [str(semicolons)]
    assert [e["file"] for e in report["crypto"]["errors"]] == [str(candles)]
    assert [e["file"] for e in report["errors"]] == [str(semicolons), str(candles)]
