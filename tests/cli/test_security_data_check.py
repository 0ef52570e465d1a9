"""`marketcast data check` never sends control characters from a data file to the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketcast.cli import main

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281" / "2122"
OSC_TITLE = "\x1b]0;owned\x07"  # sets the terminal title
CSI_CLEAR = "\x1b[2J"  # clears the screen
C1_CSI = "\x9b31m"  # the one-byte C1 form of ESC [


def test_issue_values_and_column_names_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (FIXTURE / "E0.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    prefix = f"Z{CSI_CLEAR}"  # an odds-shaped group nothing reads: listed by name
    header = lines[0].rstrip("\r\n") + f",{prefix}H,{prefix}D,{prefix}A\n"
    cells = lines[1].rstrip("\r\n").split(",")
    cells[1] = f"{OSC_TITLE}{C1_CSI}bad date"  # Date: reported with its value
    odds = ",2.1,3.4,3.5\n"
    rows = [",".join(cells) + odds] + [line.rstrip("\r\n") + odds for line in lines[2:]]
    folder = tmp_path / "E0"
    folder.mkdir()
    (folder / "2021-2022.csv").write_text(header + "".join(rows), encoding="utf-8")

    main(["data", "check", str(tmp_path)])
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert r"\x1b]0;owned\x07\x9b31mbad date" in shown
    assert r"columns_ignored: Z\x1b[2J 1x2 prematch" in shown
    assert not any(ch in shown for ch in ("\x1b", "\x07", "\x9b"))


def test_errors_name_files_with_control_characters_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / f"E0{CSI_CLEAR}.csv").write_text("Div,Date,Home\n1,2,3\n", encoding="utf-8")

    assert main(["data", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert r"E0\x1b[2J.csv" in err
    assert "missing required column" in err
    assert "\x1b" not in err
