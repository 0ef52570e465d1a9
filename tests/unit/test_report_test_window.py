"""Each league's test window (first and last kick-off, test matches) in report.json and the page."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketcast.config import FootballRunConfig
from marketcast.datasets.football_data import FootballData, load_football
from marketcast.evaluation.backtest import BacktestConfig
from marketcast.evaluation.football import evaluate_predictions, kickoff_window
from marketcast.evaluation.walk_forward import walk_forward_predict
from marketcast.features.football import build_features
from marketcast.models.factory import make_model
from marketcast.orchestration.football import build_report
from marketcast.orchestration.football import (  # renamed: pytest would collect test_*
    test_mask_last_seasons as last_seasons_mask,
)
from marketcast.reports import load_report, render_html, write_report
from marketcast.types import MarketKind

# The 2021-22 seasons (the test season: the last one per league) as played.
D1_WINDOW = {"first_kickoff": "2021-08-13", "last_kickoff": "2022-05-14", "n_matches": 306}
I1_WINDOW = {"first_kickoff": "2021-08-21", "last_kickoff": "2022-05-22", "n_matches": 380}
POOLED_WINDOW = {"first_kickoff": "2021-08-13", "last_kickoff": "2022-05-22", "n_matches": 686}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report written from a small walk-forward: D1 and I1, trained on 2020-21, tested on
    2021-22 (the last season per league, as ``marketcast run`` picks it)."""
    bundled = load_football(None)
    keep = bundled.matches["league"].isin(["D1", "I1"]) & bundled.matches["season"].isin(
        ["2020-2021", "2021-2022"]
    )
    matches = bundled.matches.loc[keep].reset_index(drop=True)
    odds = bundled.odds.loc[bundled.odds["match_id"].isin(matches["match_id"])]
    data: FootballData = dataclasses.replace(
        bundled, matches=matches, odds=odds.reset_index(drop=True)
    )
    X = build_features(data)
    y = data.matches[["home_goals", "away_goals"]].to_numpy()
    mask = last_seasons_mask(data.matches, 1)
    markets = tuple(MarketKind)
    models = {name: make_model(name, seed=1) for name in ("market", "elo")}
    predictions = walk_forward_predict(X, y, mask, models, markets, step_days=30)
    evaluation = evaluate_predictions(
        data,
        X,
        predictions,
        markets,
        demargin_method="shin",
        backtest=BacktestConfig(n_bootstrap=0, seed=1),
    )
    config = FootballRunConfig.model_validate({"models": ["market", "elo"]})
    created = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = build_report(config, "run", created, data, evaluation, {}, {"evaluate": 1.0})
    out = tmp_path_factory.mktemp("run")
    write_report(out, report)
    return out


@pytest.fixture(scope="module")
def report(run_dir: Path) -> dict[str, Any]:
    return load_report(run_dir / "report.json")


def test_report_json_records_each_leagues_test_window(report: dict[str, Any]) -> None:
    for market in ("1x2", "ou25", "ah"):
        assert report["per_league"]["D1"][market]["test_window"] == D1_WINDOW
        assert report["per_league"]["I1"][market]["test_window"] == I1_WINDOW
    assert report["evaluation"]["test_window"] == POOLED_WINDOW
    assert report["evaluation"]["n_matches"] == POOLED_WINDOW["n_matches"]


def test_the_window_counts_test_matches_not_only_the_scored_ones(report: dict[str, Any]) -> None:
    # Asian handicap scores only matches on a whole or half line the close kept: far fewer
    # than the league's test matches, which the window still counts in full.
    for league, window in (("D1", D1_WINDOW), ("I1", I1_WINDOW)):
        section = report["per_league"][league]["ah"]
        assert section["test_window"] == window
        assert 0 < section["market"]["closing"]["n"] < section["test_window"]["n_matches"]


def test_the_added_key_leaves_the_contract_keys_as_they_were(
    report: dict[str, Any], run_dir: Path
) -> None:
    assert set(report["evaluation"]) == {"n_matches", "markets", "test_window"}
    for section in report["per_league"]["D1"].values():
        assert set(section) == {"engines", "market", "ratio_to_closing", "backtest", "test_window"}
    one = report["evaluation"]["markets"]["1x2"]
    assert {"engines", "market", "backtest", "champion", "ratio_to_closing", "n"} <= set(one)
    assert "test_window" not in one


def test_page_shows_each_leagues_window_in_the_per_league_table(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    header = (
        '<th scope="col">league</th><th scope="col" class="num">first kick-off</th>'
        '<th scope="col" class="num">last kick-off</th>'
        '<th scope="col" class="num">test matches</th><th scope="col" class="num">n</th>'
    )
    assert page.count(header) == 3  # one per-league table per market
    for league, window in (("D1", D1_WINDOW), ("I1", I1_WINDOW)):
        row = (
            f'<tr><td>{league}</td><td class="num">{window["first_kickoff"]}</td>'
            f'<td class="num">{window["last_kickoff"]}</td>'
            f'<td class="num">{window["n_matches"]}</td>'
        )
        assert page.count(row) == 3
    assert page.count("the number of the league&#x27;s walk-forward test matches") == 3
    assert (
        "<dt>test window (kick-off, UTC)</dt><dd>2021-08-13 to 2022-05-22, all leagues "
        "(each league's below)</dd>"
    ) in page


# --------------------------------------------------------------------------- kickoff_window


def test_kickoff_window_dates_are_utc_days_and_an_empty_window_has_none() -> None:
    kickoff = pd.Series(
        pd.to_datetime(["2022-05-22 23:30", "2021-08-13 00:15", "2020-09-12 11:30"], utc=True)
    )
    assert kickoff_window(kickoff, np.array([True, True, False])) == {
        "first_kickoff": "2021-08-13",
        "last_kickoff": "2022-05-22",
        "n_matches": 2,
    }
    assert kickoff_window(kickoff, np.zeros(3, dtype=bool)) == {
        "first_kickoff": None,
        "last_kickoff": None,
        "n_matches": 0,
    }


# --------------------------------------------------------------------------- render_html


def _per_league_report(windows: dict[str, Any]) -> dict[str, Any]:
    per_league = {
        league: {
            "1x2": {
                "engines": {"elo": {"log_loss": 1.0}},
                "market": {"closing": {"log_loss": 0.99, "n": 10}},
                **({"test_window": windows[league]} if league in windows else {}),
            }
        }
        for league in ("D1", "E0")
    }
    section = {"engines": {"elo": {"log_loss": 1.0}}, "market": {"closing": {"log_loss": 0.99}}}
    return {"evaluation": {"markets": {"1x2": section}}, "per_league": per_league}


def test_a_report_without_windows_renders_as_before() -> None:
    page = render_html(_per_league_report({}))
    assert "<caption>Ratio to the closing line per league</caption>" in page
    assert "kick-off" not in page
    assert '<tr><td>D1</td><td class="num">10</td><td class="num">0.9900</td>' in page


def test_a_league_without_a_window_shows_dashes_and_text_is_escaped() -> None:
    windows = {"E0": {"first_kickoff": "<b>2021-08-13</b>", "last_kickoff": "2022-05-22"}}
    page = render_html(_per_league_report(windows))
    rows = dict(re.findall(r"<tr><td>(D1|E0)</td>((?:<td[^>]*>[^<]*</td>){4})", page))
    assert rows["D1"] == (
        '<td class="num">\u2013</td><td class="num">\u2013</td><td class="num">\u2013</td>'
        '<td class="num">10</td>'
    )
    assert rows["E0"] == (
        '<td class="num">&lt;b&gt;2021-08-13&lt;/b&gt;</td><td class="num">2022-05-22</td>'
        '<td class="num">\u2013</td><td class="num">10</td>'
    )
