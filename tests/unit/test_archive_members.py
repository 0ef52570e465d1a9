"""A tar archive's members are read one by one: a bad member is reported, not the archive's end."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from marketcast.data.validation import DataError
from marketcast.datasets.bundle import read_archive_csvs
from marketcast.datasets.crypto import load_candles
from marketcast.datasets.football_data import load_football

GOOD = b"Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR\nE0,05/08/2022,Crystal Palace,Arsenal,0,2,A\n"


def _tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_truncated_gzip_member_is_reported_and_the_others_are_read(tmp_path: Path) -> None:
    """One truncated member lost the whole archive, and hid every other member's problems."""
    broken = gzip.compress(GOOD * 50)[:-40]
    archive = _tar(
        tmp_path / "data.tar.gz",
        [("football/E0/2022-2023.csv", GOOD), ("football/E1/2022-2023.csv.gz", broken)],
    )
    errors: list[DataError] = []
    members = read_archive_csvs(archive, errors=errors)
    assert [name for name, _ in members] == ["football/E0/2022-2023.csv"]
    assert members[0][1] == GOOD
    assert len(errors) == 1
    assert errors[0].file == f"{archive}:football/E1/2022-2023.csv.gz"
    with pytest.raises(DataError, match=r"E1/2022-2023\.csv\.gz"):
        read_archive_csvs(archive)  # without a list the first bad member is raised, as before


def test_an_archive_that_ends_early_keeps_the_members_before_the_break(tmp_path: Path) -> None:
    first, second = ("football/E0/a.csv", GOOD), ("football/E0/b.csv", GOOD * 400)
    whole = _tar(tmp_path / "whole.tar", [first, second], mode="w")
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole.read_bytes()[: 512 + 1024 + 600])  # into the second member's data
    errors: list[DataError] = []
    members = read_archive_csvs(cut, errors=errors)
    assert [name for name, _ in members] == ["football/E0/a.csv"]
    assert len(errors) == 1
    assert errors[0].file == str(cut)
    assert "cannot read archive past football/E0/b.csv" in errors[0].reason
    with pytest.raises(DataError, match="cannot read archive"):
        read_archive_csvs(cut)


def test_an_unreadable_archive_is_raised_even_with_a_list(tmp_path: Path) -> None:
    not_tar = tmp_path / "x.tar"
    not_tar.write_bytes(b"this is not a tar archive at all" * 40)
    with pytest.raises(DataError, match="cannot read archive"):
        read_archive_csvs(not_tar, errors=[])


def _candles(pair: str, hours: int = 30) -> bytes:
    rows = ["date,open,high,low,close,volume,ticker"]
    for h in range(hours):
        rows.append(f"2024-01-0{1 + h // 24} {h % 24:02d}:00:00,100,101,99,100.5,12.5,{pair}")
    return ("\n".join(rows) + "\n").encode()


def test_the_loaders_keep_an_archives_good_members_beside_a_bad_one(tmp_path: Path) -> None:
    """A truncated member in a tar of candles: zero bars were read and only its error shown."""
    broken = gzip.compress(_candles("XRPUSDT", 200))[:-40]
    archive = _tar(
        tmp_path / "candles.tar.gz",
        [("crypto/BTCUSDT_1h.csv", _candles("BTCUSDT")), ("crypto/XRPUSDT_1h.csv.gz", broken)],
    )
    data = load_candles([archive])
    assert set(data.candles["pair"]) == {"BTCUSDT"}
    assert [e.file for e in data.report.errors] == [f"{archive}:crypto/XRPUSDT_1h.csv.gz"]
    football = _tar(
        tmp_path / "football.tar.gz",
        [("football/E0/2022-2023.csv", GOOD), ("football/E1/2022-2023.csv.gz", broken)],
    )
    matches = load_football([football], on_error="collect")
    assert matches.report.rows_kept == 1
    assert [e.file for e in matches.report.errors] == [f"{football}:football/E1/2022-2023.csv.gz"]


def test_what_a_loader_says_of_a_member_names_its_archive(tmp_path: Path) -> None:
    """`evaluate --data x.tar.gz` said "football/E0/bad.csv, row 1, field 'Date': missing
    required column": a name in no folder of the user's."""
    no_date = b"Div,HomeTeam,AwayTeam,FTHG,FTAG,FTR\nE0,Arsenal,Spurs,1,0,H\n"
    archive = _tar(
        tmp_path / "E0.tar.gz",
        [("football/E0/2022-2023.csv", GOOD), ("football/E0/bad.csv", no_date)],
    )
    with pytest.raises(DataError) as raised:
        load_football([archive])
    assert raised.value.file == f"{archive}:football/E0/bad.csv"
    assert str(raised.value).startswith(f"{archive}:football/E0/bad.csv, row 1, field 'Date'")
    collected = load_football([archive], on_error="collect")
    assert [e.file for e in collected.report.errors] == [f"{archive}:football/E0/bad.csv"]
    # a file given beside the archive keeps its own name
    loose = tmp_path / "E1.csv"
    loose.write_bytes(no_date)
    both = load_football([archive, loose], on_error="collect")
    assert sorted(e.file for e in both.report.errors) == sorted(
        [f"{archive}:football/E0/bad.csv", str(loose)]
    )
