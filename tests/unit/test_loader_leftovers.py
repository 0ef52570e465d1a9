"""What the football loader still read loosely: match statistics written as no count is written,
and issues that named a tar member without its archive."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from marketcast.data.validation import TEAM_TWICE_ON_DAY
from marketcast.datasets.football_data import load_football
from tests.unit.test_archive_members import _tar
from tests.unit.test_football_loader import OLD_ROWS, STATS_HEADER, _with_stats, write_csv
from tests.unit.test_loader_odd_rows import HEADER, only_issue, row

# --- match statistics are counts, written as counts are --------------------------------------


@pytest.mark.parametrize("written", ["1e1", "+2", "Infinity", "inf", " 1e1 ", "0x10"])
def test_a_stat_not_written_in_digits_is_blanked_and_named(tmp_path: Path, written: str) -> None:
    """``1e1`` was read as 10 shots, ``+2`` as 2: goals written so are refused, and so are
    statistics now (blanked, counted, named); the match is kept."""
    rows = [
        _with_stats(OLD_ROWS[0], [written, "9", "1", "3", "7", "2"]),
        _with_stats(OLD_ROWS[1], ["8", "5", "2", "5", "4", "6"]),
    ]
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", STATS_HEADER, rows)])
    assert len(data.matches) == 2
    assert np.isnan(data.matches.loc[0, "home_shots"])
    assert data.matches.loc[1, "home_shots"] == 8.0
    assert data.report.repaired["match_stats_blanked"] == 1
    issue = only_issue(data.report, "invalid_match_stat")
    assert (issue.row, issue.field, issue.value) == (2, "HS", written)


def test_stats_in_digits_or_a_float_resave_are_still_read(tmp_path: Path) -> None:
    rows = [
        _with_stats(OLD_ROWS[0], ["12", "9.0", "1.", "3", " 7 ", "0"]),
        _with_stats(OLD_ROWS[1], ["8", "5", "2", "5", "4", "6"]),
    ]
    data = load_football([write_csv(tmp_path / "E0" / "2005-2006.csv", STATS_HEADER, rows)])
    stats = data.matches.loc[0, ["home_shots", "away_shots", "home_shots_on_target"]]
    assert stats.tolist() == [12.0, 9.0, 1.0]
    assert data.matches.loc[0, ["home_corners", "away_corners"]].tolist() == [7.0, 0.0]
    assert "match_stats_blanked" not in data.report.repaired


# --- issues that name other rows name their archive too --------------------------------------


def _csv(rows: list[list[str]]) -> bytes:
    return ("\n".join(",".join(r) for r in [HEADER, *rows]) + "\n").encode()


def test_cross_row_issues_name_tar_members_with_their_archive(tmp_path: Path) -> None:
    """``team_twice_on_day`` and ``duplicate_match_other_result`` named the other rows' member
    bare (``football/E0/a.csv row 2``) in an issue whose file said ``<archive>:<member>``."""
    first = _csv([row(), row(home="Everton", away="Fulham", hg="2", ag="1")])
    second = _csv(
        [
            row(home="Arsenal", away="Chelsea"),  # Arsenal's second match that day
            row(home="Everton", away="Fulham", hg="0", ag="0"),  # the same match, 0-0
        ]
    )
    a, b = "football/E0/a/2023-2024.csv", "football/E0/b/2023-2024.csv"
    archive = _tar(tmp_path / "data.tar.gz", [(a, first), (b, second)])
    report = load_football([archive]).report
    assert report.dropped[TEAM_TWICE_ON_DAY] == 2
    twice = [i for i in report.issues if i.reason == TEAM_TWICE_ON_DAY]
    assert {i.file for i in twice} == {f"{archive}:{a}", f"{archive}:{b}"}
    for issue in twice:
        assert issue.value is not None
        assert issue.value.endswith(f": {archive}:{a} row 2, {archive}:{b} row 2")
    other = only_issue(report, "duplicate_match_other_result")
    assert other.file == f"{archive}:{b}"
    assert other.value is not None
    assert other.value.endswith(f"0-0 dropped, 2-1 kept from {archive}:{a} row 3")


def test_a_file_name_that_is_not_utf8_is_written_with_escapes(tmp_path: Path) -> None:
    """Python holds such a name's bytes as lone surrogates: in ``source_file`` they made pyarrow
    raise half-way through the load (and no report could print them)."""
    folder = tmp_path / "E0"
    folder.mkdir()
    fixture = Path(__file__).parents[1] / "fixtures" / "football" / "mmz4281" / "2122" / "E0.csv"
    named = os.fsencode(folder) + b"/2021-2022\xff.csv"
    with open(named, "wb") as handle:
        handle.write(fixture.read_bytes())

    data = load_football([folder])
    assert len(data.matches) > 0
    assert set(data.matches["source_file"]) == {f"{folder}/2021-2022\\xff.csv"}
    assert set(data.matches["season"]) == {"2021-2022"}
    assert "\\udc" not in json.dumps(data.report.to_dict())  # no surrogate left to print
    assert all("\\xff" in issue["file"] for issue in data.report.to_dict()["issues"])
