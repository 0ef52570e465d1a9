"""The backtest's terms as applied: the staking recorded and shown, drawdown steps when only the
date of a kick-off is known, and the bookmaker bets are placed with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from marketcast.config import BacktestSettings, FootballRunConfig, load_config
from marketcast.datasets.football_data import FootballData, load_football
from marketcast.evaluation.backtest import BacktestConfig, max_drawdown, run_backtest
from marketcast.evaluation.football import MarketEvaluation, evaluate_predictions
from marketcast.evaluation.walk_forward import walk_forward_predict
from marketcast.features.football import build_features
from marketcast.models.factory import make_model
from marketcast.reports import render_html
from marketcast.types import AVERAGE_BOOKMAKER, MarketKind

GOLDEN_INPUT = Path(__file__).parents[1] / "golden" / "small_report_input.json"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "football"

# One match, edge 0.10 on the home win at 2.2: full Kelly 0.1 / 1.2 = 0.0833 of the bankroll.
PROBS = np.array([[0.5, 0.3, 0.2]])
ODDS = np.array([[2.2, 3.0, 5.0]])
HOME_WINS = np.array([[1.2, -1.0, -1.0]])


def _backtest(**settings: Any) -> dict[str, Any]:
    config = BacktestConfig(n_bootstrap=0, **settings)
    return run_backtest(PROBS, ODDS, HOME_WINS, config=config).to_dict()


# --------------------------------------------------------------------------- 1. staking terms


@pytest.mark.parametrize(
    ("settings", "staked", "kelly_fraction", "cap"),
    [
        # kelly stakes full Kelly whatever kelly_fraction says: 8.33 units, not 0.25 x 8.33
        ({"staking": "kelly", "kelly_fraction": 0.25, "max_stake_fraction": 0.5}, 8.3333, 1.0, 0.5),
        (
            {"staking": "fractional_kelly", "kelly_fraction": 0.25, "max_stake_fraction": 0.5},
            2.0833,
            0.25,
            0.5,
        ),
        # flat stakes 1 unit, neither a Kelly stake nor capped (0.005 would be 0.5 units)
        ({"staking": "flat", "kelly_fraction": 0.25, "max_stake_fraction": 0.005}, 1.0, None, None),
    ],
)
def test_the_recorded_config_is_the_staking_applied(
    settings: dict[str, Any], staked: float, kelly_fraction: float | None, cap: float | None
) -> None:
    """to_dict recorded kelly_fraction 0.25 under kelly (stakes used 1) and the cap under flat
    (never applied); a reader of report.json took the wrong rule from it."""
    summary = _backtest(**settings)
    assert summary["staked_units"] == pytest.approx(staked, abs=1e-4)
    recorded = summary["config"]
    assert recorded["kelly_fraction"] == kelly_fraction
    assert recorded["max_stake_fraction"] == cap
    # the keys stay (the report's JSON contract), with JSON-able values
    assert set(recorded) == {
        "staking",
        "kelly_fraction",
        "min_edge",
        "max_stake_fraction",
        "bankroll_units",
        "n_bootstrap",
        "seed",
    }
    assert json.loads(json.dumps(recorded, allow_nan=False)) == recorded


def _staking_line(backtest_config: dict[str, Any], recorded: dict[str, Any] | None) -> str:
    """The 1X2 section's staking sentence, from the run config as written and, when given, the
    backtest's recorded config."""
    report = json.loads(GOLDEN_INPUT.read_text(encoding="utf-8"))
    for key in ("reliability", "profit_curves", "per_league"):  # plots are slow, not needed
        report.pop(key)
    report["config"]["backtest"] = backtest_config
    section = report["evaluation"]["markets"]["1x2"]
    for summary in section["backtest"].values():
        if recorded is None:
            summary.pop("config", None)
        else:
            summary["config"] = recorded
    page = render_html(report)
    one = page.split('<section id="market-1x2">', 1)[1].split("</section>", 1)[0]
    match = re.search(r"<li><strong>Staking:</strong>(.*?)</li>", one)
    assert match is not None
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "as-written"])
def test_the_page_states_full_kelly_not_the_unused_fraction(recorded: bool) -> None:
    """``staking: kelly`` read "Kelly fraction 0.25" while stakes were full Kelly (147.27 units
    staked against 37.33 under a real quarter Kelly)."""
    written = {"staking": "kelly", "kelly_fraction": 0.25, "max_stake_fraction": 0.05}
    line = _staking_line(written, _backtest(**written)["config"] if recorded else None)
    assert "rule kelly" in line
    assert "full Kelly (Kelly fraction 1)" in line
    assert "0.25" not in line
    assert "stake cap 5% of the bankroll per bet" in line


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "as-written"])
def test_the_page_states_a_flat_stake_is_not_capped(recorded: bool) -> None:
    """``staking: flat, max_stake_fraction: 0.005`` read "stake cap 0.5% of the bankroll per
    bet" while every stake was 1 unit (1%), and "Kelly fraction 0.25" of no Kelly stake."""
    written = {"staking": "flat", "kelly_fraction": 0.25, "max_stake_fraction": 0.005}
    line = _staking_line(written, _backtest(**written)["config"] if recorded else None)
    assert "rule flat" in line
    assert "1 unit a bet (1% of the bankroll)" in line
    assert "no stake cap" in line
    assert "0.5%" not in line
    assert "Kelly fraction" not in line


def test_the_page_states_the_fraction_of_fractional_kelly() -> None:
    written = {"staking": "fractional_kelly", "kelly_fraction": 0.5, "max_stake_fraction": 0.03}
    line = _staking_line(written, _backtest(**written)["config"])
    assert "rule fractional_kelly, Kelly fraction 0.5, min edge 0.02" in line
    assert "stake cap 3% of the bankroll per bet" in line


# --------------------------------------------------------------------------- 2. drawdown steps

# Three matches on one Saturday: won (+1), lost (-1), lost (-1) at evens with flat stakes.
DAY_PROBS = np.full((3, 2), 0.6) * [1.0, 2.0 / 3.0]
DAY_ODDS = np.full((3, 2), 2.0)
DAY_PROFITS = np.array([[1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]])
SATURDAY_1500 = pd.to_datetime(["2017-08-12 14:00"] * 3, utc=True)  # 15:00 London (BST)
FLAT = BacktestConfig(staking="flat", n_bootstrap=0)


def test_bets_whose_kick_off_time_is_unknown_are_steps_of_their_own() -> None:
    """Seasons before 2019-20 have no ``Time``: the loader fills 15:00 with
    ``kickoff_time_known`` False, and the backtest summed a whole day as one kick-off (E0
    2017-18 flat: max drawdown 37.42 against 37.92 bet by bet)."""
    known = run_backtest(DAY_PROBS, DAY_ODDS, DAY_PROFITS, None, SATURDAY_1500, FLAT)
    assert known.max_drawdown == pytest.approx(1.0)  # one step: +1 - 1 - 1
    unknown = run_backtest(
        DAY_PROBS,
        DAY_ODDS,
        DAY_PROFITS,
        None,
        SATURDAY_1500,
        FLAT,
        kickoff_time_known=np.zeros(3, dtype=bool),
    )
    assert unknown.max_drawdown == pytest.approx(2.0)  # +1, then -1 and -1 from the peak
    assert unknown.profit_units == known.profit_units


def test_a_known_kick_off_does_not_settle_with_a_filled_in_one_at_the_same_stamp() -> None:
    """Row 0's 15:00 is a filled-in date; rows 1 and 2 really kick off at 15:00 that day."""
    flags = np.array([False, True, True])
    apart = run_backtest(
        DAY_PROBS,
        DAY_ODDS,
        np.array([[1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]]),
        None,
        SATURDAY_1500,
        FLAT,
        kickoff_time_known=flags,
    )
    assert apart.max_drawdown == pytest.approx(2.0)  # +1 (row 0), then -2 (rows 1 + 2)
    together = run_backtest(
        DAY_PROBS,
        DAY_ODDS,
        np.array([[-1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]]),
        None,
        SATURDAY_1500,
        FLAT,
        kickoff_time_known=flags,
    )
    assert together.max_drawdown == pytest.approx(1.0)  # -1 (row 0), then 0 (rows 1 + 2)


def test_dates_without_a_time_still_order_the_bets() -> None:
    """An unknown time is a step of its own but keeps its place by date (not pushed last)."""
    kickoff = pd.to_datetime(["2017-08-19 14:00", "2017-08-12 14:00", "2017-08-26 14:00"], utc=True)
    result = run_backtest(
        DAY_PROBS,
        DAY_ODDS,
        DAY_PROFITS,
        None,
        kickoff,
        FLAT,
        kickoff_time_known=np.zeros(3, dtype=bool),
    )
    assert result.bets["row"].tolist() == [1, 0, 2]


def _market_model_1x2(data: FootballData, bookmaker: str = "best") -> MarketEvaluation:
    """The market model walked forward week by week over ``data``, 1X2, flat stakes."""
    features = build_features(data)
    goals = data.matches[["home_goals", "away_goals"]].to_numpy()
    markets = (MarketKind.ONE_X_TWO,)
    predictions = walk_forward_predict(
        features,
        goals,
        np.ones(len(features), dtype=bool),
        {"market": make_model("market", seed=1)},
        markets,
        step_days=7,
    )
    evaluation = evaluate_predictions(
        data,
        features,
        predictions,
        markets,
        demargin_method="shin",
        backtest=BacktestConfig(staking="flat", min_edge=0.0, n_bootstrap=0),
        bookmaker=bookmaker,
    )
    return evaluation.markets["1x2"]


def test_an_evaluation_of_a_season_without_times_steps_bet_by_bet(tmp_path: Path) -> None:
    """End to end: the E0 fixture with its ``Time`` column dropped (as before 2019-20), flat
    stakes; the reported drawdown must be the one of the bets in order, each its own step."""
    csv = FIXTURES / "mmz4281" / "2223" / "E0.csv"
    no_time = tmp_path / "E0.csv"
    pd.read_csv(csv).drop(columns="Time").to_csv(no_time, index=False)
    data = load_football([no_time])
    assert not data.matches["kickoff_time_known"].any()
    one = _market_model_1x2(data)
    cumulative = np.asarray(one.profit_curves["market"]["cumulative_profit"], dtype=float)
    bet_by_bet = max_drawdown(np.diff(np.concatenate([[0.0], cumulative])))
    assert bet_by_bet == pytest.approx(3.33)  # 2.93 when each day was one kick-off
    assert one.summary["backtest"]["market"]["max_drawdown"] == pytest.approx(bet_by_bet)


@pytest.mark.parametrize(
    "flags",
    [np.zeros(2, dtype=bool), np.array([1, 0, 1]), np.array([True, False, None], dtype=object)],
)
def test_kickoff_time_known_must_be_one_boolean_per_row(flags: np.ndarray) -> None:
    with pytest.raises(ValueError, match="kickoff_time_known must be 3 booleans"):
        run_backtest(
            DAY_PROBS, DAY_ODDS, DAY_PROFITS, None, SATURDAY_1500, FLAT, kickoff_time_known=flags
        )


# --------------------------------------------------------------------------- 3. bookmaker


@pytest.mark.parametrize("name", ["avg", "AVG", " avg"])
def test_the_market_average_is_no_bookmaker_to_bet_with(name: str) -> None:
    """``bookmaker: avg`` bet at the mean of the bookmakers' prices, which nobody offers."""
    with pytest.raises(ValidationError, match=r"market average .* no bet can be placed at it"):
        BacktestSettings(bookmaker=name)
    with pytest.raises(ValidationError, match="use 'best'"):
        FootballRunConfig(backtest={"bookmaker": name})


def test_a_yaml_config_betting_at_the_average_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("models: [market]\nbacktest: {bookmaker: avg}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"field 'backtest\.bookmaker': .*market average"):
        load_config(path)


@pytest.mark.parametrize("name", ["best", "pinnacle", "b365"])
def test_best_and_named_bookmakers_are_accepted(name: str) -> None:
    assert BacktestSettings(bookmaker=name).bookmaker == name


def test_the_refused_name_is_the_loaders_average_bookmaker() -> None:
    """config may not import types, so it names the average itself: the two must agree."""
    with pytest.raises(ValidationError):
        BacktestSettings(bookmaker=AVERAGE_BOOKMAKER)


def test_the_python_api_refuses_the_average_too() -> None:
    """The config refused it, but `evaluate_predictions(bookmaker="avg")` still bet at it."""
    with pytest.raises(ValueError, match="market average"):
        evaluate_predictions(
            None,  # type: ignore[arg-type]  # refused before anything is read
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            (),
            demargin_method="shin",
            backtest=BacktestConfig(),
            bookmaker="AVG",
        )


def test_the_matches_a_named_bookmaker_left_unpriced_are_counted(tmp_path: Path) -> None:
    """`backtest_rows` read 380 with Bet365 blank on half of them: nothing said that half the
    matches could not be bet at the named bookmaker."""
    frame = pd.read_csv(FIXTURES / "mmz4281" / "2223" / "E0.csv")
    blank = np.arange(len(frame)) % 2 == 1
    frame.loc[blank, ["B365H", "B365D", "B365A"]] = np.nan
    half = tmp_path / "E0.csv"
    frame.to_csv(half, index=False)
    data = load_football([half])
    summaries = {name: _market_model_1x2(data, name).summary for name in ("b365", "best")}
    rows = summaries["b365"]["backtest_rows"]
    assert summaries["b365"]["backtest_rows_unpriced"] == int(blank.sum()) > 0
    assert summaries["best"]["backtest_rows_unpriced"] == 0  # another bookmaker priced them
    assert summaries["best"]["backtest_rows"] == rows
    page = render_html({"evaluation": {"markets": {"1x2": summaries["b365"]}}})
    assert f"{int(blank.sum())} of them had no price to bet at" in page
