"""A team written in another case, or with an invisible character, is one team, not two.

``ARSENAL`` in one season and ``Arsenal`` in the other were two teams with half a history each,
and ``Leeds`` with a zero-width space a third, with no issue (CLI audit, high).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from marketcast.datasets.football_data import load_football

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281"


def test_case_and_invisible_variants_are_unified_and_reported(tmp_path: Path) -> None:
    first = pd.read_csv(FIXTURES / "2122" / "E0.csv")
    second = pd.read_csv(FIXTURES / "2223" / "E0.csv")
    folder = tmp_path / "E0"
    folder.mkdir()
    first.to_csv(folder / "2021-2022.csv", index=False)
    plain = load_football([str(folder / "2021-2022.csv")]).matches
    team = plain["home_team"].iloc[0]
    second.to_csv(tmp_path / "clean.csv", index=False)
    clean = load_football([str(tmp_path / "clean.csv")]).matches
    clean_teams = set(clean["home_team"]) | set(clean["away_team"])

    odd = second.copy()
    renamed = {t: t.upper() for t in clean_teams}  # the whole season in capitals
    odd["HomeTeam"] = odd["HomeTeam"].replace(renamed)
    odd["AwayTeam"] = odd["AwayTeam"].replace(renamed)
    odd.loc[0, "HomeTeam"] = odd.loc[0, "HomeTeam"] + "\u200b"
    odd.to_csv(folder / "2022-2023.csv", index=False)

    data = load_football([str(folder)])
    teams = set(data.matches["home_team"]) | set(data.matches["away_team"])
    written = set(first["HomeTeam"]) | set(first["AwayTeam"]) | clean_teams
    assert {t.casefold() for t in teams} == {t.casefold() for t in written}
    assert len(teams) == len({t.casefold() for t in teams})  # one spelling per team
    assert team in teams
    changed = data.report.repaired["team_name_unified"]
    assert changed > 0
    issues = [i for i in data.report.issues if i.reason == "team_name_unified"]
    assert len(issues) == changed  # fewer than the report's 200 kept issues
    # each names the row and the change, which is one of case or of an invisible character
    for issue in issues:
        was, now = (ast.literal_eval(part) for part in str(issue.value).split(" -> "))
        assert was.replace("\u200b", "").casefold() == now.casefold()
        assert was != now
    assert any("\\u200b" in str(i.value) for i in issues)


def test_unicode_forms_and_doubled_spaces_are_one_team(tmp_path: Path) -> None:
    """The loader audit of 2026-11-25: ``München`` composed (NFC) and decomposed (NFD, as some
    files and editors write it), and ``Bayern  München`` with two spaces, were three teams;
    the same match written both ways was kept twice, past the duplicate check."""
    header = "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG,FTR,PSH,PSD,PSA"
    composed = "Bayern M\u00fcnchen"
    decomposed = "Bayern Mu\u0308nchen"
    rows = [
        f"D1,13/08/2021,Gladbach,{composed},1,1,D,4.5,4.2,1.7",
        f"D1,21/08/2021,{decomposed},Koln,3,2,H,1.2,7,11",
        "D1,28/08/2021,Bayern  M\u00fcnchen,Hertha,5,0,H,1.2,7,11",
        f"D1,13/08/2021,Gladbach,{decomposed},1,1,D,4.5,4.2,1.7",  # the first match again
    ]
    (tmp_path / "D1").mkdir()
    (tmp_path / "D1" / "2021-2022.csv").write_text("\n".join([header, *rows]) + "\n")
    data = load_football([str(tmp_path / "D1")])
    teams = set(data.matches["home_team"]) | set(data.matches["away_team"])
    assert teams == {"Gladbach", composed, "Koln", "Hertha"}
    assert len(data.matches) == 3
    assert data.report.dropped["duplicate_match"] == 1
    assert data.report.repaired["team_name_unified"] == 3  # both NFD cells, the spaced one
