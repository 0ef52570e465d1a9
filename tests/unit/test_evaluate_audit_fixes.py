"""Defects the evaluation audit found in ``evaluate football``: a market no model prices, the
champion chosen without a test, per-league backtests left out, split drawdown steps, and
forecast errors naming no model or match."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketcast.cli import main
from marketcast.datasets.football_data import FootballData, load_football
from marketcast.evaluation.backtest import BacktestConfig, run_backtest
from marketcast.evaluation.football import (
    _PROMOTION_KEYS,
    FootballEvaluation,
    _choose_champion,
    evaluate_predictions,
)
from marketcast.evaluation.scoring import log_loss_per_sample
from marketcast.evaluation.walk_forward import WalkForwardPredictions
from marketcast.features.football import MARKET_COLUMNS, build_features
from marketcast.models.base import market_labels
from marketcast.orchestration import commands
from marketcast.promotion import PromotionRule
from marketcast.reports.writer import write_report
from marketcast.types import MarketKind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football"
ONE_X_TWO, OVER_UNDER = MarketKind.ONE_X_TWO, MarketKind.OVER_UNDER_25


@pytest.fixture(scope="module")
def fixture_data() -> FootballData:
    """E0 2021-22 and 2022-23 (12 matches each), D1 2021-22 (10): every match has a time."""
    return load_football([str(FIXTURES)])


def _features(data: FootballData) -> pd.DataFrame:
    return build_features(data, demargin_method="shin")


def _season(data: FootballData, season: str) -> np.ndarray:
    return (data.matches["season"] == season).to_numpy()


def _predictions(
    X: pd.DataFrame, mask: np.ndarray, models: dict[str, dict[MarketKind, np.ndarray]]
) -> WalkForwardPredictions:
    """Forecasts on the test rows only (NaN elsewhere); a market a model lacks is all NaN."""
    probabilities = {}
    for name, by_market in models.items():
        probabilities[name] = {}
        for market in MarketKind:
            k = len(MARKET_COLUMNS[market])
            p = by_market.get(market, np.full((len(X), k), np.nan))
            probabilities[name][market.value] = np.where(mask[:, None], p, np.nan)
    return WalkForwardPredictions(probabilities=probabilities, test_mask=mask, n_steps=1)


def _market(X: pd.DataFrame) -> dict[MarketKind, np.ndarray]:
    """The ``market`` model's forecast: the de-margined pre-match prices."""
    return {m: X[list(MARKET_COLUMNS[m])].to_numpy(dtype=float) for m in MarketKind}


def _constant(X: pd.DataFrame, market: MarketKind, row: list[float]) -> np.ndarray:
    return np.tile(np.asarray(row, dtype=float), (len(X), 1))


def _evaluate(
    data: FootballData,
    X: pd.DataFrame,
    predictions: WalkForwardPredictions,
    markets: tuple[MarketKind, ...],
    **backtest: Any,
) -> FootballEvaluation:
    return evaluate_predictions(
        data,
        X,
        predictions,
        markets,
        demargin_method="shin",
        backtest=BacktestConfig(**{"staking": "flat", "n_bootstrap": 0, **backtest}),
        promotion=PromotionRule(min_matches=5),
    )


# --------------------------------------------------------------------------- 1. no model prices


def test_cli_refuses_a_market_no_chosen_model_prices_before_reading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """LightGBM fitted for 1X2 only, on the default markets: the walk-forward ran to the end,
    then `min()` of an empty dict stopped it ("min() arg is an empty sequence")."""

    def must_not_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was read: the refusal came after it")

    monkeypatch.setattr(commands, "load_football", must_not_read)
    config = tmp_path / "gbm.yaml"
    config.write_text("model_params: {lightgbm: {markets: ['1x2']}}\n")
    out = tmp_path / "out.json"
    args = ["evaluate", "football", "--data", str(FIXTURES), "--start", "2022-08-01"]
    code = main([*args, "--models", "lightgbm", "--config", str(config), "--json", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    # elo is not suggested: it prices 1X2 only
    assert re.search(
        r"gbm.yaml: --markets ou25: none of the models lightgbm prices it; add one that does "
        r"\(market, dixon_coles, neural\) or leave ou25 out$",
        err,
    )
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_cli_refuses_elo_alone_on_the_goal_markets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's repro: ``--models elo`` with the default markets (Elo prices only 1X2)."""
    monkeypatch.setattr(commands, "load_football", lambda *a, **k: pytest.fail("data read"))
    args = ["evaluate", "football", "--data", str(FIXTURES), "--start", "2022-08-01"]
    assert main([*args, "--models", "elo", "--json", str(tmp_path / "out.json")]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "--markets ou25: none of the models elo prices it; add one that does (market, "
            "dixon_coles, lightgbm, neural) or leave ou25 out"
        )
    )


def test_evaluate_predictions_refuses_a_market_no_model_forecast(
    fixture_data: FootballData,
) -> None:
    """From the Python API: a ValueError naming the market, not `min()` of nothing."""
    X = _features(fixture_data)
    mask = _season(fixture_data, "2022-2023")
    only_results = _predictions(X, mask, {"elo": {ONE_X_TWO: _constant(X, ONE_X_TWO, [1 / 3] * 3)}})
    with pytest.raises(ValueError, match=r"^ou25: no model has a forecast on any of the 12 test"):
        _evaluate(fixture_data, X, only_results, (ONE_X_TWO, OVER_UNDER))


def test_choose_champion_with_no_model_names_the_market() -> None:
    losses = {"closing": np.full(3, 0.7), "prematch": np.full(3, 0.7)}
    with pytest.raises(ValueError, match=r"^ou25: no model was scored"):
        _choose_champion(losses, {}, PromotionRule(min_matches=2), market=OVER_UNDER)


# --------------------------------------------------------------------------- 2. market incumbent


def test_without_the_market_model_the_prematch_price_is_the_incumbent(
    fixture_data: FootballData,
) -> None:
    """Without `market` in the models the lowest log loss was champion, untested: a uniform
    forecast, far worse than the price, was "promoted" ("no market baseline evaluated")."""
    X = _features(fixture_data)
    mask = _season(fixture_data, "2022-2023")
    uniform = _predictions(X, mask, {"elo": {ONE_X_TWO: _constant(X, ONE_X_TWO, [1 / 3] * 3)}})
    ev = _evaluate(fixture_data, X, uniform, (ONE_X_TWO,)).markets["1x2"]
    assert ev.champion == "market"
    assert ev.summary["champion"] == "market"
    assert set(ev.promotion) == _PROMOTION_KEYS | {"test"}
    assert ev.promotion["promote"] is False
    assert ev.promotion["champion"] == "market"
    assert ev.promotion["challenger"] == "elo"
    assert ev.promotion["p_value"] is not None
    gain = np.mean(ev.losses["prematch"] - ev.losses["elo"])
    assert ev.promotion["mean_difference"] == pytest.approx(gain, rel=1e-12)
    assert gain < 0  # the uniform forecast is worse than the price


def test_prematch_losses_are_the_market_models(fixture_data: FootballData) -> None:
    """The incumbent stood in for is the same forecast: the `market` model's losses."""
    X = _features(fixture_data)
    mask = _season(fixture_data, "2022-2023")
    with_market = _predictions(X, mask, {"market": _market(X)})
    for ev in _evaluate(fixture_data, X, with_market, tuple(MarketKind)).markets.values():
        assert len(ev.rows) > 0
        np.testing.assert_array_equal(ev.losses["prematch"], ev.losses["market"])


def test_without_the_market_model_a_better_challenger_passes_the_test(
    fixture_data: FootballData,
) -> None:
    X = _features(fixture_data)
    mask = _season(fixture_data, "2022-2023")
    y_goals = fixture_data.matches[["home_goals", "away_goals"]].to_numpy()
    labels = market_labels(ONE_X_TWO, X, y_goals)
    sharp = np.full((len(X), 3), 0.05)
    sharp[np.arange(len(X)), np.clip(labels, 0, 2)] = 0.9  # knows the result
    ev = _evaluate(
        fixture_data, X, _predictions(X, mask, {"oracle": {ONE_X_TWO: sharp}}), (ONE_X_TWO,)
    ).markets["1x2"]
    assert ev.champion == "oracle"
    assert set(ev.promotion) == _PROMOTION_KEYS | {"test"}
    assert ev.promotion["promote"] is True
    assert ev.promotion["champion"] == "market"
    assert ev.promotion["p_value"] < 0.05


# --------------------------------------------------------------------------- 3. per-league bets


def _without_closing(data: FootballData, league: str, market: MarketKind) -> FootballData:
    """``data`` with no closing price of ``market`` in ``league`` (as over/under before 2019)."""
    in_league = data.odds["match_id"].str.startswith(f"{league}:")
    drop = in_league & (data.odds["market"] == market.value) & (data.odds["timing"] == "closing")
    return dataclasses.replace(data, odds=data.odds.loc[~drop].reset_index(drop=True))


def test_a_league_bet_but_not_scored_has_a_per_league_entry(
    fixture_data: FootballData, tmp_path: Path
) -> None:
    """The per-league loop ran over the scored leagues only: D1's bets counted in the overall
    backtest, but D1 had no per-league entry."""
    data = _without_closing(fixture_data, "D1", OVER_UNDER)
    X = _features(data)
    mask = _season(data, "2021-2022")  # E0 and D1
    overs = _predictions(
        X, mask, {"market": _market(X), "elo": {OVER_UNDER: _constant(X, OVER_UNDER, [0.75, 0.25])}}
    )
    ev = _evaluate(data, X, overs, (OVER_UNDER,), min_edge=0.0).markets["ou25"]
    assert ev.summary["not_scored"]["no_closing_price"] == 10
    assert set(ev.per_league) == {"D1", "E0"}
    d1 = ev.per_league["D1"]
    assert d1["market"]["closing"]["n"] == 0
    assert np.isnan(d1["market"]["closing"]["log_loss"])
    assert d1["engines"]["elo"]["n"] == 0
    assert np.isnan(d1["ratio_to_closing"]["elo"])
    assert d1["backtest"]["elo"]["n_bets"] > 0
    assert d1["test_window"]["n_matches"] == 10
    for name, overall in ev.summary["backtest"].items():
        per_league = sum(section["backtest"][name]["n_bets"] for section in ev.per_league.values())
        assert per_league == overall["n_bets"]

    # the report takes the n = 0 league: null in the JSON, a row in the per-league table
    report = {
        "evaluation": {"n_matches": int(mask.sum()), "markets": {"ou25": ev.summary}},
        "per_league": {league: {"ou25": section} for league, section in ev.per_league.items()},
        "promotion": {"ou25": ev.promotion},
    }
    json_path, html_path = write_report(tmp_path, report)
    written = json.loads(json_path.read_text())["per_league"]["D1"]["ou25"]
    assert written["market"]["closing"] == {"log_loss": None, "rps": None, "n": 0}
    assert written["backtest"]["elo"]["n_bets"] == d1["backtest"]["elo"]["n_bets"]
    html = html_path.read_text()
    assert "<td>D1</td>" in html
    assert "<td>E0</td>" in html


# --------------------------------------------------------------------------- 4. drawdown steps


def test_a_filled_in_kickoff_time_does_not_split_the_known_bets_of_its_stamp() -> None:
    """Known +1, unknown -1, known -1 at one stamp: the known pair settles as one step (0), so
    the drawdown is 1 unit; sorted by row the unknown bet split them and it read 2."""
    kickoff = pd.Series(pd.to_datetime(["2023-08-12 14:00"] * 3, utc=True))
    result = run_backtest(
        [[0.6, 0.4]] * 3,
        [[2.0, 2.0]] * 3,
        [[1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]],
        None,
        kickoff,
        BacktestConfig(staking="flat", n_bootstrap=0),
        kickoff_time_known=np.array([True, False, True]),
    )
    assert result.max_drawdown == 1.0
    assert result.bets["row"].tolist() == [0, 2, 1]  # known bets first within the stamp
    assert result.profit_units == -1.0


def test_bets_of_one_stamp_keep_row_order_when_all_times_are_known() -> None:
    kickoff = pd.Series(pd.to_datetime(["2023-08-12 16:30", "2023-08-12 14:00"] * 2, utc=True))
    result = run_backtest(
        [[0.6, 0.4]] * 4,
        [[2.0, 2.0]] * 4,
        [[1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]],
        None,
        kickoff,
        BacktestConfig(staking="flat", n_bootstrap=0),
        kickoff_time_known=np.array([True, True, True, True]),
    )
    assert result.bets["row"].tolist() == [1, 3, 0, 2]
    assert result.max_drawdown == 0.0  # 14:00 settles at 0, 16:30 at 0


# --------------------------------------------------------------------------- 5. bad forecast row


def test_a_forecast_that_is_not_a_distribution_names_model_market_and_match(
    fixture_data: FootballData,
) -> None:
    X = _features(fixture_data)
    mask = _season(fixture_data, "2022-2023")
    broken = _constant(X, ONE_X_TWO, [1 / 3] * 3)
    bad = int(np.flatnonzero(mask)[4])
    broken[bad] = [0.9, 0.9, 0.9]
    predictions = _predictions(X, mask, {"market": _market(X), "elo": {ONE_X_TWO: broken}})
    match_id = fixture_data.matches["match_id"].iloc[bad]
    with pytest.raises(ValueError, match=r"^model 'elo', market 1x2, match_id ") as caught:
        _evaluate(fixture_data, X, predictions, (ONE_X_TWO,))
    assert str(caught.value) == (
        f"model 'elo', market 1x2, match_id {match_id}: probabilities must sum to 1 "
        "(within 1e-06), got 2.7: [0.9, 0.9, 0.9]"
    )


def test_log_loss_of_a_valid_forecast_is_unchanged_by_the_check(
    fixture_data: FootballData,
) -> None:
    X = _features(fixture_data)
    mask = _season(fixture_data, "2022-2023")
    uniform = _constant(X, ONE_X_TWO, [1 / 3] * 3)
    ev = _evaluate(
        fixture_data, X, _predictions(X, mask, {"elo": {ONE_X_TWO: uniform}}), (ONE_X_TWO,)
    ).markets["1x2"]
    assert ev.losses["elo"] == pytest.approx(log_loss_per_sample(ev.labels, uniform[ev.rows]))


def test_a_handicap_bet_is_priced_only_on_the_bookmakers_own_line(
    fixture_data: FootballData,
) -> None:
    """The bookmaker's prices were taken and its line dropped: a forecast on another line was
    bet at prices for a different bet and settled on the forecast's line."""
    handicap = MarketKind.ASIAN_HANDICAP
    X = _features(fixture_data)
    mask = _season(fixture_data, "2021-2022")
    home = _constant(X, handicap, [0.7, 0.3])

    def bets(frame: pd.DataFrame) -> int:
        predictions = _predictions(frame, mask, {"market": _market(frame), "elo": {handicap: home}})
        ev = _evaluate(fixture_data, frame, predictions, (handicap,), min_edge=0.0)
        return int(ev.markets["ah"].summary["backtest"]["elo"]["n_bets"])

    assert bets(X) > 0
    moved = X.assign(ah_line=X["ah_line"] + 1.0)  # whole stays whole, half stays half
    assert bets(moved) == 0
