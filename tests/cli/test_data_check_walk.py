"""Which files in a folder ``data check`` reads, and which it names as not read.

``data check`` walked a folder once for the CSV files and again for the other files; these tests
pin what both walks chose (nested folders, hidden files and folders, ``MANIFEST.csv``, symlinks)
so that one walk chooses the same.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.data.validation import DataError
from marketcast.datasets.football_data import iter_csv_files, load_football
from marketcast.datasets.sniff import scan_folder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281"
E0_2122 = (FIXTURES / "2122" / "E0.csv").read_bytes()  # 12 matches
D1_2122 = (FIXTURES / "2122" / "D1.csv").read_bytes()  # 10 matches
E0_2223 = (FIXTURES / "2223" / "E0.csv").read_bytes()


def _mixed_folder(tmp_path: Path) -> Path:
    """A folder holding every kind of entry the walk tells apart."""
    folder = tmp_path / "data"
    (folder / "E0" / "sub" / "deep").mkdir(parents=True)
    (folder / "D1").mkdir()
    (folder / ".hidden").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "E0.csv").write_bytes(E0_2223)
    (folder / "E0" / "2021-2022.csv").write_bytes(E0_2122)
    (folder / "E0" / "2022-2023.CSV").symlink_to(elsewhere / "E0.csv")  # read, any case
    (folder / "E0" / "copy.csv").symlink_to("2021-2022.csv")  # the same file: read once
    (folder / "E0" / "latest").symlink_to("2021-2022.csv")  # a CSV read: not named
    (folder / "D1" / "2021-2022.csv.gz").write_bytes(gzip.compress(D1_2122))
    (folder / "D1" / "MANIFEST.csv").write_text("file,rows\n")  # skipped, in any folder
    (folder / "manifest.CSV").write_text("file,rows\n")  # skipped, any case
    (folder / "E0" / "notes.txt").write_text("where the files came from\n")
    (folder / "E0" / "sub" / "deep" / "2023-2024.xlsx").write_bytes(b"PK\x03\x04 a workbook")
    (folder / "E0" / "sub" / "deep" / "B.ZIP").write_bytes(b"PK\x05\x06")
    (folder / ".hidden" / "2019-2020.csv").write_bytes(E0_2122)  # hidden folder: skipped
    (folder / "E0" / ".cache.zip").write_bytes(b"PK\x05\x06")  # hidden file: skipped
    # a linked folder is walked, but a file reached twice is read (or named) once
    (folder / "linked").symlink_to(folder / "E0", target_is_directory=True)
    return folder


def test_a_mixed_folder_reads_each_csv_once_and_names_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _mixed_folder(tmp_path)
    out = tmp_path / "report.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["files_read"] == 3  # E0 2021-22 (not its copy), E0 2022-23, D1 2021-22
    assert report["rows_kept"] == 12 + 12 + 10
    assert report["files_not_read"] == [
        str(folder / "E0" / "notes.txt"),
        str(folder / "E0" / "sub" / "deep" / "2023-2024.xlsx"),
        str(folder / "E0" / "sub" / "deep" / "B.ZIP"),
    ]
    err = capsys.readouterr().err
    assert (
        "warning: 3 files in the folders given are not CSV files and were not read (nor would "
        f"a run read them): {folder / 'E0' / 'notes.txt'}, "
        f"{folder / 'E0' / 'sub' / 'deep' / '2023-2024.xlsx'}, "
        f"{folder / 'E0' / 'sub' / 'deep' / 'B.ZIP'}; a tar archive is read when named itself, "
        "a zip archive once unzipped\n"
    ) in err


def test_a_folder_of_nested_zips_names_the_visible_ones(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    (folder / "a").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    (folder / "a" / "B.ZIP").write_bytes(b"PK\x05\x06")
    (folder / "c.zip").write_bytes(b"PK\x05\x06")
    (folder / ".hidden" / "d.zip").write_bytes(b"PK\x05\x06")
    (folder / ".e.zip").write_bytes(b"PK\x05\x06")
    (folder / "notes.txt").write_text("zips only\n")
    (folder / "MANIFEST.csv").write_text("file,rows\n")  # no CSV file to read
    out = tmp_path / "report.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert [e["reason"] for e in report["errors"]] == [
        "no CSV files found, only 2 zip archives (B.ZIP, c.zip): unzip them and check the "
        "CSVs inside (data.binance.vision ships its candles zipped)"
    ]
    assert "files_not_read" not in report  # the error says what is there


def test_a_folder_without_csv_or_zip_has_no_csv_files(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "notes.txt").write_text("nothing yet\n")
    out = tmp_path / "report.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert [e["reason"] for e in report["errors"]] == ["no CSV files found"]
    assert "files_not_read" not in report


def test_one_walk_chooses_the_csv_files_a_run_reads(tmp_path: Path) -> None:
    """`scan_folder` repeats `iter_csv_files`'s choice: a run reads what ``data check`` reads."""
    folder = _mixed_folder(tmp_path)
    scan = scan_folder(folder)
    assert scan.csv_files == list(iter_csv_files([folder]))
    assert [p.relative_to(folder).as_posix() for p in scan.csv_files] == [
        "D1/2021-2022.csv.gz",
        "E0/2021-2022.csv",
        "E0/2022-2023.CSV",
    ]
    assert [p.relative_to(folder).as_posix() for p in scan.not_read] == [
        "E0/notes.txt",
        "E0/sub/deep/2023-2024.xlsx",
        "E0/sub/deep/B.ZIP",
    ]


def test_a_linked_season_folder_is_read_and_a_link_cycle_ends(tmp_path: Path) -> None:
    """A season folder linked in beside a real one was skipped without a word."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "2021-2022.csv").write_bytes(E0_2122)
    folder = tmp_path / "data"
    (folder / "D1").mkdir(parents=True)
    (folder / "D1" / "2021-2022.csv").write_bytes(D1_2122)
    (folder / "E0").symlink_to(elsewhere, target_is_directory=True)
    (folder / "D1" / "up").symlink_to(folder, target_is_directory=True)  # a cycle
    out = tmp_path / "report.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["files_read"] == 2
    assert report["rows_kept"] == 12 + 10


def test_a_broken_link_or_a_pipe_named_csv_is_an_error_naming_it(tmp_path: Path) -> None:
    """Both were skipped without a word (and a pipe must not be opened: it would block)."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "2021-2022.csv").write_bytes(E0_2122)
    (folder / "dangling.csv").symlink_to(tmp_path / "missing.csv")
    os.mkfifo(folder / "pipe.csv")
    out = tmp_path / "report.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["files_read"] == 1
    reasons = {e["file"]: e["reason"] for e in report["errors"]}
    assert reasons == {
        str(folder / "dangling.csv"): f"a broken link (to {tmp_path / 'missing.csv'}): "
        "nothing to read",
        str(folder / "pipe.csv"): "not a regular file (a named pipe, socket or device): not read",
    }
    # a run refuses it too, naming it, rather than reading the rest as if it were all
    with pytest.raises(DataError, match=r"dangling\.csv: a broken link"):
        load_football([str(folder)], on_error="raise")
