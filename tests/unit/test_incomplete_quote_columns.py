"""An odds group partly there, or a known odds column in another case, is counted, not lost.

The loader reads a bookmaker's group only whole: a file without ``PSCA`` lost Pinnacle's
closing 1X2 (the closing yardstick fell back to the market average) and ``b365h`` lost Bet365's
prices, and neither appeared in ``columns_ignored`` (CLI audit, high).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from marketcast.datasets.football_data import load_football

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281" / "2122"


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def test_a_missing_column_of_a_group_and_a_lower_case_column_are_reported(tmp_path: Path) -> None:
    frame = pd.read_csv(FIXTURE / "E0.csv")
    whole = load_football([str(_write(frame, tmp_path / "whole" / "2021-2022.csv"))])
    assert whole.report.columns_ignored == {}

    cut = frame.drop(columns=["PSCA"]).rename(columns={"B365H": "b365h"})
    data = load_football([str(_write(cut, tmp_path / "cut" / "2021-2022.csv"))])
    assert data.report.columns_ignored == {
        "PS 1x2 closing (incomplete: PSCA missing)": 1,
        "b365h (a known odds column in another case)": 1,
        "B365 1x2 prematch (incomplete: B365H missing)": 1,
    }
    # the quotes themselves are still not read: the report says so instead of nothing
    odds = data.odds
    assert (
        odds.loc[(odds["bookmaker"] == "pinnacle") & (odds["timing"] == "closing")]
        .query("market == '1x2'")
        .empty
    )
    assert "3 odds column groups no rule reads" in data.report.summary("matches")
