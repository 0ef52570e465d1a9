"""``data check`` reads what a run reads: a tar archive of candles, and a football config's leagues.

A tar of candle files (which ``load_candles`` reads, so a crypto config's ``data.paths`` may name
one) went to the football reader: every member "lacks ``Date``", named without its archive. With
``--config``, a football config's ``data.leagues`` was ignored: every league of the files was
counted as kept, and a league the data lacks (which stops ``marketcast run``) passed.
"""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.config import load_config
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.datasets.football_data import bundled_football_path
from marketcast.orchestration.football import load_data


@pytest.fixture(scope="module")
def spot() -> dict[str, list[str]]:
    """Header and last 100 hourly bars of the bundled Binance spot BTCUSDT and ETHUSDT files."""
    sources = dict(read_archive_csvs(BUNDLED_CRYPTO))
    out = {}
    for pair in ("BTCUSDT", "ETHUSDT"):
        lines = sources[f"crypto/{pair}_1h.csv"].decode().splitlines()
        out[pair] = [lines[0], *lines[-100:]]
    return out


@pytest.fixture(scope="module")
def seasons() -> dict[str, bytes]:
    """E0 (380 matches) and D1 (306) 2021-22 as football-data.co.uk publishes them."""
    sources = dict(read_archive_csvs(bundled_football_path()))
    return {league: sources[f"football/{league}/2021-2022.csv"] for league in ("E0", "D1")}


def _candle_folder(folder: Path, spot: dict[str, list[str]]) -> Path:
    """``<folder>/crypto/<PAIR>_1h.csv`` for each pair; returns ``folder``."""
    (folder / "crypto").mkdir(parents=True)
    for pair, lines in spot.items():
        (folder / "crypto" / f"{pair}_1h.csv").write_text("\n".join(lines) + "\n")
    return folder


def _tar(path: Path, folder: Path) -> Path:
    """``folder``'s ``crypto/`` packed into ``path`` (compression from the suffix)."""
    mode = {".tar": "w", ".gz": "w:gz", ".tgz": "w:gz", ".xz": "w:xz"}[path.suffix]
    with tarfile.open(path, mode) as tar:
        tar.add(folder / "crypto", arcname="crypto")
    return path


@pytest.mark.parametrize("name", ["candles.tar", "candles.tar.gz", "candles.tgz", "candles.tar.xz"])
def test_a_tar_of_candles_gets_the_report_of_its_files(
    name: str, spot: dict[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _candle_folder(tmp_path / "plain", spot)
    archive = _tar(tmp_path / name, folder)
    from_tar, from_files = tmp_path / "tar.json", tmp_path / "files.json"

    assert main(["data", "check", str(archive), "--json", str(from_tar)]) == 0
    captured = capsys.readouterr()
    assert main(["data", "check", str(folder), "--json", str(from_files)]) == 0

    report = json.loads(from_tar.read_text())
    assert (report["ok"], report["files_read"], report["rows_read"]) == (True, 2, 200)
    assert report["rows_by_kind"] == {"candles": 200}
    assert report == json.loads(from_files.read_text())
    assert "data integrity: crypto" in captured.out
    assert "data integrity: football" not in captured.out
    assert captured.err == ""


def test_bad_candles_in_a_tar_are_named_by_archive_and_member(
    spot: dict[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _candle_folder(tmp_path / "plain", spot)
    btc = folder / "crypto" / "BTCUSDT_1h.csv"
    lines = btc.read_text().splitlines()
    fields = lines[5].split(",")
    fields[2] = "1.0"  # high, far below open and close
    lines[5] = ",".join(fields)
    btc.write_text("\n".join(lines) + "\n")
    eth = folder / "crypto" / "ETHUSDT_1h.csv"
    eth.write_text("\n".join(eth.read_text().splitlines()[1:]) + "\n")  # header lost
    archive = _tar(tmp_path / "candles.tar.gz", folder)
    out = tmp_path / "check.json"

    assert main(["data", "check", str(archive), "--json", str(out)]) == 1

    report = json.loads(out.read_text())
    assert (report["files_read"], report["rows_read"], report["rows_kept"]) == (1, 100, 99)
    assert report["dropped"]["high_below_open_close"] == 1
    [issue] = [i for i in report["issues"] if i["reason"] == "high_below_open_close"]
    assert (issue["file"], issue["row"], issue["field"], issue["value"]) == (
        f"{archive}:crypto/BTCUSDT_1h.csv",
        6,
        "high",
        "1.0",
    )
    [error] = report["errors"]
    assert (error["file"], error["row"]) == (f"{archive}:crypto/ETHUSDT_1h.csv", 1)
    assert error["reason"].startswith("unrecognised header: '2023-06-")
    captured = capsys.readouterr()
    assert f"{archive}:crypto/BTCUSDT_1h.csv, row 6, field 'high'" in captured.out
    assert f"error: {archive}:crypto/ETHUSDT_1h.csv, row 1: unrecognised header" in captured.err
    assert "missing required column" not in captured.err


def _football_config(tmp_path: Path, seasons: dict[str, bytes], leagues: str) -> Path:
    """E0 and D1 under ``tmp_path/data``, and a config reading them with ``leagues``."""
    for league, season in seasons.items():
        path = tmp_path / "data" / league / "2021-2022.csv"
        path.parent.mkdir(parents=True)
        path.write_bytes(season)
    config = tmp_path / "football.yaml"
    config.write_text(f"data: {{paths: ['{tmp_path / 'data'}'], leagues: {leagues}}}\n")
    return config


def test_a_football_config_checks_the_leagues_a_run_keeps(
    seasons: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _football_config(tmp_path, seasons, "[E0]")
    out = tmp_path / "check.json"

    assert main(["data", "check", "--config", str(config), "--json", str(out)]) == 0

    report = json.loads(out.read_text())
    run_matches = load_data(load_config(config)).matches
    assert set(run_matches["league"]) == {"E0"}
    assert (report["files_read"], report["rows_read"]) == (2, 380 + 306)
    assert report["rows_kept"] == len(run_matches) == 380
    assert report["leagues"] == ["E0"]
    assert report["dropped"]["outside_config_leagues"] == 306  # counted, not lost
    assert report["rows_read"] == report["rows_kept"] + sum(report["dropped"].values())
    assert "leagues: E0 (the config's data.leagues)" in capsys.readouterr().out


def test_a_league_the_data_lacks_fails_the_check_as_it_fails_the_run(
    seasons: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _football_config(tmp_path, seasons, "[E0, XX]")
    out = tmp_path / "check.json"
    reason = "unknown leagues ['XX']; the data holds ['D1', 'E0']"
    with pytest.raises(ValueError, match=re.escape(reason)):
        load_data(load_config(config))

    assert main(["data", "check", "--config", str(config), "--json", str(out)]) == 1

    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert report["errors"] == [
        {"file": str(config), "row": None, "field": "data.leagues", "reason": reason, "value": None}
    ]
    assert f"error: {config}, field 'data.leagues': {reason}" in capsys.readouterr().err


def test_files_in_a_folder_that_are_not_csv_are_named(
    tmp_path: Path, seasons: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    """A workbook or a zip beside the CSV files was passed over without a word: the report
    counted the files read, and nothing said others were there."""
    folder = tmp_path / "data"
    (folder / "E0").mkdir(parents=True)
    (folder / "E0" / "2021-2022.csv").write_bytes(seasons["E0"])
    (folder / "E0" / "2022-2023.xlsx").write_bytes(b"PK\x03\x04 a workbook")
    (folder / "notes.txt").write_text("where the files came from\n")
    (folder / ".DS_Store").write_bytes(b"\x00")  # hidden: skipped on purpose, not named
    (folder / "MANIFEST.csv").write_text("file,rows\n")  # skipped on purpose, not named
    out = tmp_path / "report.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 0  # a warning only
    report = json.loads(out.read_text())
    assert report["files_read"] == 1
    assert report["files_not_read"] == [
        str(folder / "E0" / "2022-2023.xlsx"),
        str(folder / "notes.txt"),
    ]
    err = capsys.readouterr().err
    assert "warning: 2 files in the folders given are not CSV files and were not read" in err
    assert "2022-2023.xlsx" in err
