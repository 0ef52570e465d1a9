"""The command line as a user runs it: real files in, exit codes and JSON out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.cli import main
from marketcast.config import CRYPTO_MODELS, FOOTBALL_MODELS
from marketcast.datasets.bundle import read_archive_csvs
from marketcast.datasets.football_data import bundled_football_path
from marketcast.promotion import decide_promotion

SEASONS = ("E0/2020-2021.csv", "E0/2021-2022.csv")


@pytest.fixture(scope="module")
def epl_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real Premier League season files, written out of the bundle as downloaded."""
    root = tmp_path_factory.mktemp("football")
    for name, payload in read_archive_csvs(bundled_football_path()):
        if name.endswith(SEASONS):
            target = root / Path(name).parent.name / Path(name).name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
    assert len(list(root.rglob("*.csv"))) == 2
    return root


def test_evaluate_football_writes_the_contract_json(
    epl_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    status = main(
        [
            "evaluate",
            "football",
            "--data",
            str(epl_folder),
            "--start",
            "2022-01-01",
            "--markets",
            "1x2,ou25,ah",
            "--models",
            "market,dixon_coles",
            "--json",
            str(out),
        ]
    )
    assert status == 0
    result = json.loads(out.read_text())
    assert result["n_matches"] > 150
    for market in ("1x2", "ou25", "ah"):
        section = result["markets"][market]
        assert set(section) >= {"engines", "market", "backtest", "champion"}
        assert set(section["engines"]) == {"market", "dixon_coles"}
        dc = section["engines"]["dixon_coles"]
        assert set(dc) >= {"log_loss", "brier", "rps", "ece", "n"}
        assert dc["n"] == section["market"]["closing"]["n"] == section["market"]["prematch"]["n"]
        assert set(section["backtest"]["dixon_coles"]) >= {
            "roi",
            "n_bets",
            "profit_units",
            "max_drawdown",
            "clv",
        }
        assert section["champion"] in {"market", "dixon_coles"}
        # every test match is scored or counted under the first reason it could not be
        assert section["n"] + sum(section["not_scored"].values()) == result["n_matches"]
    one = result["markets"]["1x2"]
    # The pre-match price is a sharp forecast: within a few percent of the closing line.
    assert (
        0.97 < one["market"]["prematch"]["log_loss"] / one["market"]["closing"]["log_loss"] < 1.05
    )
    # the summary names the model tested (it read "1x2: champion market: <reason>" alone)
    said = capsys.readouterr().err  # the summary goes to stderr, the JSON to the file
    for market in ("1x2", "ou25", "ah"):
        promotion = result["markets"][market]["promotion"]
        tested = (
            f"(promoted over {promotion['champion']})"
            if promotion["promote"]
            else f"(best challenger {promotion['challenger']})"
        )
        assert f"{market}: champion {result['markets'][market]['champion']} {tested}: " in said


def test_evaluate_football_takes_the_configs_markets_without_the_flag(
    epl_folder: Path, tmp_path: Path
) -> None:
    """`--markets` defaulted to all three, so a config's markets were ignored."""
    config = tmp_path / "football.yaml"
    config.write_text("markets: [ou25]\nmodels: [market]\n")
    out = tmp_path / "out.json"
    args = ["evaluate", "football", "--data", str(epl_folder), "--start", "2022-03-01"]
    assert main([*args, "--config", str(config), "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())["markets"]) == {"ou25"}


def test_evaluate_applies_the_configs_sequential_promotion_test(
    epl_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`promotion: {test: sequential}` reaches the evaluation's decision (its p-value is the
    always-valid one, and the JSON says which test gave it); a test name it does not know is
    refused naming the field."""
    config = tmp_path / "football.yaml"
    config.write_text(
        "markets: [1x2]\nmodels: [market, dixon_coles]\n"
        "promotion: {alpha: 0.05, min_matches: 20, test: sequential, planned_matches: 300}\n"
    )
    args = ["evaluate", "football", "--data", str(epl_folder), "--start", "2022-03-01"]
    out = tmp_path / "out.json"
    assert main([*args, "--config", str(config), "--json", str(out)]) == 0
    promotion = json.loads(out.read_text())["markets"]["1x2"]["promotion"]
    assert promotion["test"] == "sequential"
    plain = tmp_path / "plain.yaml"
    plain.write_text(
        "markets: [1x2]\nmodels: [market, dixon_coles]\npromotion: {alpha: 0.05, min_matches: 20}\n"
    )
    out_plain = tmp_path / "plain.json"
    assert main([*args, "--config", str(plain), "--json", str(out_plain)]) == 0
    t_test = json.loads(out_plain.read_text())["markets"]["1x2"]["promotion"]
    assert t_test["test"] == "t"
    assert t_test["n"] == promotion["n"]
    if promotion["mean_difference"] > 0:  # the always-valid p is never below the t-test's here
        assert promotion["p_value"] >= t_test["p_value"]
    else:
        assert promotion["p_value"] == 1.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("promotion: {test: z}\n")
    capsys.readouterr()
    assert main([*args, "--config", str(bad), "--json", str(tmp_path / "x.json")]) == 2
    error = capsys.readouterr().err
    assert "promotion" in error
    assert "test" in error


def test_a_short_history_evaluates_every_model_at_the_price_at_worst(
    epl_folder: Path, tmp_path: Path
) -> None:
    """Two seasons, predicted from the second one's start: the learners have under 400 matches.

    LightGBM used to stop with LightGBM's own 'num_features > 0' error there, and the network
    forecast far worse than the price; both now keep the market price until the history can
    vouch for them.
    """
    out = tmp_path / "short.json"
    args = ["evaluate", "football", "--data", str(epl_folder), "--start", "2021-08-01"]
    args += ["--markets", "1x2,ou25", "--models", "market,lightgbm,neural", "--json", str(out)]
    assert main(args) == 0
    result = json.loads(out.read_text())
    for market in ("1x2", "ou25"):
        engines = result["markets"][market]["engines"]
        for name in ("lightgbm", "neural"):
            assert engines[name]["log_loss"] == pytest.approx(
                engines["market"]["log_loss"], abs=1e-6
            )
        # why the champion is what it is (the JSON had the champion and no reason)
        promotion = result["markets"][market]["promotion"]
        assert promotion["champion"] == result["markets"][market]["champion"] == "market"
        assert promotion["challengers_tested"] == 2
        assert promotion["reason"]


def test_files_with_closing_odds_only_are_counted_not_scored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """football-data's extra-league layout (Country, League, Home, HG, ...) has no pre-match odds:
    nothing can be compared with the pre-match price, and the JSON and the log say why."""
    header = "Country,League,Season,Date,Time,Home,Away,HG,AG,Res,PSCH,PSCD,PSCA,AvgCH,AvgCD,AvgCA"
    rows = [header]
    teams = [f"Team {c}" for c in "ABCDEFGH"]
    day = 0
    for week in range(40):
        for i in range(0, 8, 2):
            home, away = teams[(i + week) % 8], teams[(i + 1 + 3 * week) % 8]
            if home == away:
                continue
            date = (pd.Timestamp("2021-08-01") + pd.Timedelta(days=day)).strftime("%d/%m/%Y")
            hg, ag = (week + i) % 3, (week * i) % 2
            res = "H" if hg > ag else "D" if hg == ag else "A"
            rows.append(
                f"Argentina,Liga,2021/2022,{date},20:00,{home},{away},{hg},{ag},{res},"
                "2.1,3.3,3.6,2.05,3.2,3.5"
            )
        day += 7
    path = tmp_path / "ARG.csv"
    path.write_text("\r\n".join(rows) + "\r\n")
    out = tmp_path / "closing_only.json"
    args = ["evaluate", "football", "--data", str(path), "--start", "2022-03-01"]
    with caplog.at_level("WARNING", logger="marketcast.evaluation.football"):
        assert main([*args, "--markets", "1x2", "--models", "market", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    section = result["markets"]["1x2"]
    assert result["n_matches"] > 0
    assert section["n"] == 0
    # the contract's keys, null without a scored match (brier and ece were left out)
    assert section["engines"]["market"] == {
        **dict.fromkeys(("log_loss", "brier", "rps", "ece")),
        "n": 0,
    }
    assert section["not_scored"]["no_prematch_price"] == result["n_matches"]
    assert "none of the" in caplog.text
    assert "no_prematch_price" in caplog.text


def test_evaluate_rejects_unknown_model(epl_folder: Path, tmp_path: Path, capsys) -> None:
    status = main(
        [
            "evaluate",
            "football",
            "--data",
            str(epl_folder),
            "--start",
            "2022-01-01",
            "--models",
            "market,oracle",
            "--json",
            str(tmp_path / "x.json"),
        ]
    )
    assert status == 2
    assert "oracle" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("vertical", "names"), [("football", FOOTBALL_MODELS), ("crypto", CRYPTO_MODELS)]
)
def test_evaluate_help_names_every_model(vertical: str, names: tuple[str, ...], capsys) -> None:
    with pytest.raises(SystemExit):
        main(["evaluate", vertical, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert ",".join(names) in help_text


def test_evaluate_scores_only_the_window_between_start_and_end(
    epl_folder: Path, tmp_path: Path, capsys
) -> None:
    """``--end`` closes the window (it stopped with "output array is read-only" on pandas 3)."""
    args = ["evaluate", "football", "--data", str(epl_folder), "--models", "market"]
    out = tmp_path / "window.json"
    window = ["--start", "2022-01-01", "--end", "2022-03-01", "--json", str(out)]
    assert main([*args, *window]) == 0
    opened = json.loads(out.read_text())
    assert main([*args, "--start", "2022-01-01", "--json", str(out)]) == 0
    to_the_end = json.loads(out.read_text())
    assert 0 < opened["n_matches"] < to_the_end["n_matches"]
    backwards = ["--start", "2022-03-01", "--end", "2022-01-01", "--json", str(out)]
    assert main([*args, *backwards]) == 2
    assert "--end 2022-01-01 must be after --start 2022-03-01" in capsys.readouterr().err


def test_data_check_passes_on_good_files(epl_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "integrity.json"
    assert main(["data", "check", str(epl_folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["rows_kept"] == 760
    assert report["errors"] == []


def test_data_check_exits_1_naming_file_row_and_field(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "E0" / "broken.csv"
    bad.parent.mkdir()
    bad.write_text("Div,Date,HomeTeam,AwayTeam,FTAG\nE0,01/08/2020,A,B,1\n")
    assert main(["data", "check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "broken.csv" in err
    assert "FTHG" in err
    assert "row 1" in err
    assert "no CSV files found" not in err  # the file was found; it could not be read


def test_data_check_fails_when_every_row_is_dropped(tmp_path: Path, capsys) -> None:
    """It said ``"ok": true`` with exit 0 over a file of which nothing was kept."""
    path = tmp_path / "E0.csv"
    rows = [f"E0,bad{i},A,B,1,0" for i in range(3)]
    path.write_text("\n".join(["Div,Date,HomeTeam,AwayTeam,FTHG,FTAG", *rows]) + "\n")
    out = tmp_path / "check.json"
    assert main(["data", "check", str(path), "--json", str(out)]) == 1
    assert "no match kept of the 3 rows read" in capsys.readouterr().err
    assert json.loads(out.read_text())["ok"] is False


def test_data_check_fails_on_candles_of_which_none_is_kept(tmp_path: Path, capsys) -> None:
    """Zero-volume bars, every one dropped, were ``"ok": true`` with exit 0 (only football's
    sections said so), while ``evaluate crypto`` refused the same file."""
    from marketcast.datasets.bundle import BUNDLED_CRYPTO

    raw = dict(read_archive_csvs(BUNDLED_CRYPTO))["crypto/BTCUSDT_1h.csv"].decode()
    header, *lines = raw.splitlines()[:40]
    zero = [",".join([*line.split(",")[:5], "0", *line.split(",")[6:]]) for line in lines]
    (tmp_path / "candles").mkdir()
    (tmp_path / "candles" / "BTCUSDT_1h.csv").write_text("\n".join([header, *zero]) + "\n")
    out = tmp_path / "check.json"
    assert main(["data", "check", str(tmp_path / "candles"), "--json", str(out)]) == 1
    assert "no candle kept of the 39 rows read (see dropped)" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert report["dropped"]["zero_volume"] == 39


def test_data_check_fails_on_files_holding_a_header_alone(tmp_path: Path, capsys) -> None:
    """A header-only football file was ``"ok": true`` with exit 0 (an issue only)."""
    (tmp_path / "E0").mkdir()
    (tmp_path / "E0" / "2022-2023.csv").write_text("Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\n")
    out = tmp_path / "check.json"
    assert main(["data", "check", str(tmp_path), "--json", str(out)]) == 1
    assert "no match in the 1 file read (a header alone)" in capsys.readouterr().err
    assert json.loads(out.read_text())["ok"] is False


def test_data_check_prints_where_the_first_issues_are(tmp_path: Path, capsys) -> None:
    good = "E0,01/08/2020,A,B,1,0"
    rows = [good, *(f"E0,bad{i},A,B,1,0" for i in range(12))]
    path = tmp_path / "E0.csv"
    path.write_text("\n".join(["Div,Date,HomeTeam,AwayTeam,FTHG,FTAG", *rows]) + "\n")
    assert main(["data", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}, row 3, field 'Date': unparseable_date (bad0)" in out
    assert "row 12" in out
    assert "row 13" not in out
    assert "... 2 more issues in the sample (--json keeps them)" in out


def test_data_check_prints_the_issue_sample_in_row_order(tmp_path: Path, capsys) -> None:
    """The sample is kept rule by rule: a bad date on row 4 and a bad score on row 2 printed
    the date first (the walkthrough saw rows 41, 11, 31, 21)."""
    rows = ["E0,01/08/2020,A,B,x,0", "E0,02/08/2020,C,D,1,0", "E0,bad,E,F,1,0"]
    path = tmp_path / "E0.csv"
    path.write_text("\n".join(["Div,Date,HomeTeam,AwayTeam,FTHG,FTAG", *rows]) + "\n")
    main(["data", "check", str(path)])
    out = capsys.readouterr().out
    assert out.index(f"{path}, row 2,") < out.index(f"{path}, row 4,")


def test_data_check_reads_the_files_evaluate_reads(
    epl_folder: Path, tmp_path: Path, capsys
) -> None:
    """A manifest, a hidden folder and an upper-case suffix: both commands see the same files."""
    folder = tmp_path / "data"
    season = (epl_folder / "E0" / "2021-2022.csv").read_bytes()
    (folder / "E0").mkdir(parents=True)
    (folder / "E0" / "2021-2022.CSV").write_bytes(season)
    (folder / ".old").mkdir()
    (folder / ".old" / "2021-2022.csv").write_bytes(season)  # would all be duplicates
    (folder / "MANIFEST.csv").write_text("league,season,rows\nE0,2021-2022,380\n")
    out = tmp_path / "integrity.json"
    assert main(["data", "check", str(folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["files_read"], report["rows_kept"], report["errors"]) == (1, 380, [])
    assert sum(report["dropped"].values()) == 0
    evaluated = tmp_path / "eval.json"
    args = ["evaluate", "football", "--data", str(folder), "--models", "market"]
    assert main([*args, "--start", "2022-04-01", "--json", str(evaluated)]) == 0
    assert json.loads(evaluated.read_text())["data"]["files_read"] == 1
    assert "data: 380 of 380 matches kept from 1 file" in capsys.readouterr().err


def test_evaluate_reports_the_rows_it_dropped(epl_folder: Path, tmp_path: Path, capsys) -> None:
    """``data check`` counted them; ``evaluate`` on the same files said nothing."""
    lines = (epl_folder / "E0" / "2021-2022.csv").read_text().splitlines()
    lines[5] = lines[5].replace(lines[5].split(",")[1], "2021.10.xx", 1)  # an unreadable date
    bad = tmp_path / "E0" / "2021-2022.csv"
    bad.parent.mkdir()
    bad.write_text("\n".join(lines) + "\n")
    out = tmp_path / "eval.json"
    args = ["evaluate", "football", "--data", str(bad), "--models", "market", "--markets", "1x2"]
    assert main([*args, "--start", "2022-04-01", "--json", str(out)]) == 0
    assert "data: 379 of 380 matches kept from 1 file; dropped: unparseable_date 1" in (
        capsys.readouterr().err  # the progress console
    )
    data = json.loads(out.read_text())["data"]
    assert data["dropped"]["unparseable_date"] == 1
    assert (data["issues"][0]["row"], data["issues"][0]["field"]) == (6, "Date")


def test_start_must_be_an_iso_date(epl_folder: Path, tmp_path: Path, capsys) -> None:
    """``01/10/2021`` was read as 10 January (and ``13/10/2021`` as 13 October)."""
    args = ["evaluate", "football", "--data", str(epl_folder), "--models", "market"]
    assert main([*args, "--start", "01/10/2021", "--json", str(tmp_path / "x.json")]) == 2
    assert "'01/10/2021' is not an ISO 8601 date" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_registry_commands_list_show_promote_rollback(
    epl_folder: Path, tmp_path: Path, capsys
) -> None:
    from marketcast.datasets.football_data import load_football
    from marketcast.features.football import build_features
    from marketcast.features.football_state import build_feature_state
    from marketcast.models.factory import make_model
    from marketcast.registry import Registry, build_manifest

    root = tmp_path / "reg"
    registry = Registry(str(root))
    data = load_football([str(epl_folder)])
    X, y = build_features(data), data.matches[["home_goals", "away_goals"]].to_numpy()
    state = build_feature_state(data).to_json()
    versions = []
    for name in ("market", "dixon_coles"):
        # servable versions, as a run registers them: `promote` loads them as a server would
        files = {**make_model(name).fit(X, y).to_artifact(), "feature_state.json": state}
        manifest = build_manifest(
            model_name=name,
            vertical="football",
            market="1x2",
            config={},
            files=files,
            data_sha256="d" * 64,
            features_sha256="f" * 64,
            training_window={
                "start_utc": "2020-01-01T00:00:00Z",
                "end_utc": "2021-01-01T00:00:00Z",
                "n_matches": 10,
            },
            scores={"log_loss": 0.97},
        )
        versions.append(registry.register("football", "1x2", name, files, manifest))
    registry.set_champion("football", "1x2", "market", versions[0], "no champion yet")

    assert main(["registry", "--root", str(root), "list"]) == 0
    assert "dixon_coles" in capsys.readouterr().out
    assert main(["registry", "--root", str(root), "show", "football/1x2/dixon_coles"]) == 0
    assert versions[1] in capsys.readouterr().out
    assert (
        main(["registry", "--root", str(root), "promote", "football/1x2/dixon_coles", versions[1]])
        == 0
    )
    assert registry.champion("football", "1x2").model_name == "dixon_coles"
    assert main(["registry", "--root", str(root), "rollback", "football/1x2"]) == 0
    assert registry.champion("football", "1x2").model_name == "market"
    assert main(["registry", "--root", str(root), "show", "football/1x2/../x"]) == 2
    capsys.readouterr()

    # a version no server can load (no feature state: registered by hand) is refused, as the
    # server's admin promote refuses it; before, the pointer moved and the next start failed
    bare_files = {"m.json": b"{}"}
    bare_manifest = build_manifest(
        model_name="elo",
        vertical="football",
        market="1x2",
        config={},
        files=bare_files,
        data_sha256="d" * 64,
        features_sha256="f" * 64,
        training_window=manifest.training_window,
        scores={},
    )
    bare = registry.register("football", "1x2", "elo", bare_files, bare_manifest)
    assert main(["registry", "--root", str(root), "promote", "football/1x2/elo", bare]) == 2
    assert "has no feature_state.json: no server could forecast with it" in capsys.readouterr().err
    assert registry.champion("football", "1x2").model_name == "market"

    # a market: its champion, the champions before it and the latest promotion decision
    assert main(["registry", "--root", str(root), "show", "football/ou25"]) == 2
    assert "no champion and no promotion decision for football/ou25" in capsys.readouterr().err
    champion = np.random.default_rng(0).gamma(4.0, 0.25, 500)
    challenger = champion - 0.003 + np.linspace(-0.2, 0.2, 500)  # better, not significantly
    decision = decide_promotion(
        "market", champion, "dixon_coles", challenger, champion_version=versions[0]
    )
    registry.save_decision("football", "1x2", decision)
    registry.set_champion("football", "1x2", "dixon_coles", versions[1], "manual promotion")
    capsys.readouterr()
    assert main(["registry", "--root", str(root), "show", "football/1x2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["champion"]["model_name"] == "dixon_coles"
    assert [(h["model_name"], h["version"]) for h in shown["history"]] == [("market", versions[0])]
    assert shown["last_decision"]["challenger"] == "dixon_coles"
    assert shown["last_decision"]["matches_needed"] == decision.matches_needed
    assert decision.matches_needed is not None
    # the decision left market champion; the pointer moved by hand since
    assert shown["last_decision_superseded"] == (
        f"the champion pointer moved after this decision (to dixon_coles {versions[1]}: manual "
        f"promotion); it left market {versions[0]} champion"
    )

    # nor is the bare version restored by a rollback (only its files were checked there)
    registry.set_champion("football", "1x2", "elo", bare, "set by hand")
    registry.set_champion("football", "1x2", "dixon_coles", versions[1], "set by hand")
    capsys.readouterr()
    assert main(["registry", "--root", str(root), "rollback", "football/1x2"]) == 2
    assert "has no feature_state.json: no server could forecast with it" in capsys.readouterr().err
    assert registry.champion("football", "1x2").model_name == "dixon_coles"

    # a champion whose version is gone: `list` showed no champion and said nothing, exit 0
    shutil.rmtree(root / "football" / "1x2" / "dixon_coles" / versions[1])
    assert main(["registry", "--root", str(root), "list"]) == 1
    err = capsys.readouterr().err
    assert f"football/1x2's champion is dixon_coles {versions[1]}, which is not among" in err


def test_empty_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["data", "check", str(tmp_path)]) == 1
    assert "no CSV files found" in capsys.readouterr().err
    status = main(
        [
            "evaluate",
            "football",
            "--data",
            str(tmp_path),
            "--start",
            "2022-01-01",
            "--json",
            str(tmp_path / "x.json"),
        ]
    )
    assert status == 2
    assert "no matches found" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("vertical", ["football", "crypto"])
def test_an_unwritable_json_folder_fails_before_the_evaluation(
    vertical: str, epl_folder: Path, tmp_path: Path, capsys
) -> None:
    """`--json` under a regular file was found unwritable only after the whole evaluation."""
    (tmp_path / "report.txt").write_text("a file, not a folder")
    target = tmp_path / "report.txt" / "out" / "eval.json"
    data = str(epl_folder) if vertical == "football" else str(tmp_path / "no-candles")
    args = ["evaluate", vertical, "--data", data, "--start", "2022-05-01"]
    assert main([*args, "--json", str(target)]) == 2
    captured = capsys.readouterr()
    assert f"--json {target}: cannot write in {target.parent}" in captured.err
    assert "data:" not in captured.out + captured.err  # no file was read


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_json_folder_fails_before_the_evaluation(
    epl_folder: Path, tmp_path: Path, capsys
) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    args = ["evaluate", "football", "--data", str(epl_folder), "--start", "2022-05-01"]
    try:
        assert main([*args, "--json", str(folder / "eval.json")]) == 2
    finally:
        folder.chmod(0o700)
    assert "Permission denied" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_a_missing_json_folder_is_no_error_and_a_failed_run_leaves_it_missing(
    tmp_path: Path, capsys
) -> None:
    """The probe runs in the nearest existing folder and removes its own file; the missing
    folders are made by the final write only (the probe made them, and a run that then failed
    left them behind)."""
    target = tmp_path / "new" / "deeper" / "eval.json"
    args = ["evaluate", "crypto", "--data", str(tmp_path / "no-candles"), "--start", "2022-05-01"]
    assert main([*args, "--json", str(target)]) == 2  # the data is missing, not the folder
    assert "--json" not in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert (
        main(["data", "check", str(tmp_path / "nope")]) == 1
    )  # an error in the data, as documented
    assert "no such file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--port", "70000", "70000 is outside [1, 65535]"),
        ("--port", "0", "0 is outside [1, 65535]"),
        ("--workers", "0", "0 is outside [1, 64]"),
        ("--port", "eighty", "'eighty' is not a whole number"),
    ],
)
def test_serve_refuses_a_port_or_worker_count_out_of_range(
    option: str, value: str, message: str, capsys
) -> None:
    """``--port 70000`` used to listen on 4464 (70000 mod 65536) without a word."""
    with pytest.raises(SystemExit) as stopped:
        main(["serve", option, value])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_serve_refuses_a_registry_poll_that_would_spin(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """``MARKETCAST_REGISTRY_POLL_S=-1`` made the registry watcher use a whole core."""
    monkeypatch.setenv("MARKETCAST_REGISTRY_POLL_S", "-1")
    assert main(["serve", "--workers", "2"]) == 2
    assert "MARKETCAST_REGISTRY_POLL_S=-1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("MARKETCAST_EDGE_THRESHOLD", "abc", "MARKETCAST_EDGE_THRESHOLD must be"),
        ("MARKETCAST_STALE_AFTER_DAYS", "-1", "MARKETCAST_STALE_AFTER_DAYS must be"),
        ("MARKETCAST_LLM_TIMEOUT_S", "0", "MARKETCAST_LLM_TIMEOUT_S must be"),
        ("MARKETCAST_CRYPTO_WINDOW_BARS", "5", "MARKETCAST_CRYPTO_WINDOW_BARS='5': must be >= 200"),
    ],
)
def test_serve_checks_every_worker_setting_before_training_or_forking(
    variable: str, value: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """With --workers 2 a bad setting crash-looped the workers (the supervisor lived on and
    never served); with an empty registry it first trained for eight minutes."""
    monkeypatch.setenv(variable, value)
    monkeypatch.setenv("MARKETCAST_LLM_BASE_URL", "http://127.0.0.1:9")  # for the timeout check
    monkeypatch.setenv("MARKETCAST_REGISTRY", str(tmp_path))  # empty: would train first
    assert main(["serve", "--workers", "2"]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing trained


def test_serve_refuses_a_registry_path_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A mistyped MARKETCAST_REGISTRY was taken as an empty registry, created, trained into."""
    typo = tmp_path / "registy"
    monkeypatch.setenv("MARKETCAST_REGISTRY", str(typo))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert f"registry {typo} does not exist (MARKETCAST_REGISTRY): fix the path" in err
    assert not typo.exists()


def test_serve_takes_the_default_registry_spelled_out_like_an_unset_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MARKETCAST_REGISTRY=registry (the documented default) was refused on a fresh machine,
    where leaving it unset trains the bundled champions into ./registry."""
    from marketcast.orchestration import commands

    class Training(Exception):
        pass

    def train(*args: object, **kwargs: object) -> None:
        raise Training

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(commands, "FirstTraining", train)  # the training child, started
    for value in ("registry", "./registry"):
        monkeypatch.setenv("MARKETCAST_REGISTRY", value)
        with pytest.raises(Training):
            commands.serve(None, None)


def test_registry_clean_lists_then_removes_a_crashed_registration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crashed = tmp_path / "reg" / "football" / "1x2" / "elo" / "20200101T000000Z-0123abcd"
    crashed.mkdir(parents=True)
    (crashed / "params.json").write_bytes(b"{}")
    os.utime(crashed / "params.json", (1577836800, 1577836800))  # written 2020-01-01 too
    root = str(tmp_path / "reg")
    assert main(["registry", "--root", root, "clean", "--dry-run"]) == 0
    assert f"would remove {crashed}" in capsys.readouterr().out
    assert crashed.exists()
    assert main(["registry", "--root", root, "clean"]) == 0
    assert "removed 1 leftover(s) older than 1 h" in capsys.readouterr().out
    assert not crashed.exists()
    for bad in ("nan", "inf", "-1"):  # inf overflowed timedelta with a traceback
        assert main(["registry", "--root", root, "clean", "--older-than-hours", bad]) == 2


def test_python_dash_m_marketcast_is_the_command() -> None:
    """Where the venv's scripts are not on PATH, ``python -m marketcast`` failed with "No module
    named marketcast.__main__"."""
    done = subprocess.run(
        [sys.executable, "-m", "marketcast", "data", "check", "/no/such/file"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "error: /no/such/file: no such file or folder" in done.stderr
