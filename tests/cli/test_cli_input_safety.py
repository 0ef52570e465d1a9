"""``--json`` never replaces a data file the command reads (CLI audit: it did, exit 0)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from marketcast.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "E0"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "2122" / "E0.csv", folder / "2021-2022.csv")
    return folder


def test_data_check_refuses_a_json_target_that_is_its_input_file(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = data / "2021-2022.csv"
    before = csv.read_bytes()
    assert main(["data", "check", str(csv), "--json", str(csv)]) == 2
    assert csv.read_bytes() == before
    assert "is a data file read from" in capsys.readouterr().err


def test_evaluate_refuses_a_json_target_inside_its_data_folder(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = data / "2021-2022.csv"
    before = csv.read_bytes()
    folder = str(data.parent)
    code = main(
        ["evaluate", "football", "--data", folder, "--start", "2021-08-20", "--json", str(csv)]
    )
    assert code == 2
    assert csv.read_bytes() == before
    assert f"is a data file read from {folder}" in capsys.readouterr().err


def test_a_new_json_file_beside_the_data_is_fine(data: Path) -> None:
    """A report written into the data folder is no data file: only an existing CSV is refused."""
    out = data / "report.json"
    assert main(["data", "check", str(data), "--json", str(out)]) == 0
    assert out.is_file()
    # and run again over it: a JSON file is not read, so not refused
    assert main(["data", "check", str(data), "--json", str(out)]) == 0
