"""`marketcast data check` names odds column groups that are in the header but blank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketcast.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281" / "2223"
PINNACLE_CLOSING_1X2 = ("PSCH", "PSCD", "PSCA")


def _blank_columns(source: Path, target: Path, columns: tuple[str, ...], rows: slice) -> None:
    """Copy a real football-data.co.uk file, blanking ``columns`` in the data rows ``rows``."""
    lines = source.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    positions = [header.index(c) for c in columns]
    body = [line.split(",") for line in lines[1:]]
    for cells in body[rows]:
        for i in positions:
            cells[i] = ""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join([lines[0], *(",".join(c) for c in body)]) + "\n")


def test_data_check_names_groups_present_but_empty(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pinnacle's closing 1X2 blank in every row of one file and in 4 rows of another."""
    empty = tmp_path / "data" / "E0" / "2022-2023.csv"
    _blank_columns(FIXTURE / "E0.csv", empty, PINNACLE_CLOSING_1X2, slice(None))
    partly = tmp_path / "data" / "D1" / "2021-2022.csv"
    _blank_columns(FIXTURE.parent / "2122" / "D1.csv", partly, PINNACLE_CLOSING_1X2, slice(0, 4))
    n_empty = len(empty.read_text().splitlines()) - 1
    out = tmp_path / "check.json"

    # a report, not an error: the odds that are there are still read
    assert main(["data", "check", str(tmp_path / "data"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["columns_present_but_empty"] == {f"{empty}: pinnacle 1x2 closing": n_empty}
    assert report["rows_without_quote"][f"{partly}: pinnacle 1x2 closing"] == 4
    assert report["ok"] is True
    assert sum(report["dropped"].values()) == 0  # every match of both files is kept
    assert "columns_ignored" in report  # the existing keys stay

    shown = capsys.readouterr().out
    # matches per group, the unit of the per-file counts and of the report page
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in shown.splitlines()
            if line.count("│") == 3}  # fmt: skip
    assert rows["columns_present_but_empty (matches): pinnacle 1x2 closing"] == str(n_empty)
    assert rows["rows_without_quote (matches): pinnacle 1x2 closing"] == "4"
    per_file = f"{empty}: columns_present_but_empty (blank in all {n_empty} matches): "
    assert per_file + "pinnacle 1x2 closing" in shown


def test_data_check_says_nothing_of_filled_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "E0" / "2022-2023.csv"
    target.parent.mkdir()
    target.write_bytes((FIXTURE / "E0.csv").read_bytes())
    out = tmp_path / "check.json"
    assert main(["data", "check", str(tmp_path), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["columns_present_but_empty"] == {}
    assert "columns_present_but_empty" not in capsys.readouterr().out
