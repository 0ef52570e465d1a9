"""Golden evaluation: the contract JSON on a small real fixture is stable."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketcast.datasets.football_data import FootballData
from marketcast.evaluation.backtest import BacktestConfig
from marketcast.evaluation.football import FootballEvaluation, evaluate_predictions
from marketcast.evaluation.walk_forward import walk_forward_predict
from marketcast.features.football import MARKET_COLUMNS, closing_yardstick
from marketcast.models.factory import make_model
from marketcast.types import MarketKind

GOLDEN = Path(__file__).parents[1] / "golden" / "epl_2022_evaluation.json"
MODELS = ("market", "elo", "dixon_coles")


def _evaluation(epl: FootballData, X: pd.DataFrame, **backtest: Any) -> FootballEvaluation:
    mask = (epl.matches["kickoff_utc"] >= pd.Timestamp("2022-01-01", tz="UTC")).to_numpy()
    y = epl.matches[["home_goals", "away_goals"]].to_numpy()
    markets = tuple(MarketKind)
    predictions = walk_forward_predict(
        X, y, mask, {m: make_model(m, seed=1) for m in MODELS}, markets, step_days=7
    )
    return evaluate_predictions(
        epl,
        X,
        predictions,
        markets,
        demargin_method="shin",
        backtest=BacktestConfig(**{"n_bootstrap": 200, "seed": 1, **backtest}),
    )


def _evaluate(epl: FootballData, X: pd.DataFrame) -> dict[str, Any]:
    return _evaluation(epl, X).to_contract_json()


def test_handicap_pushes_are_bet_and_refunded_not_left_out(
    epl: FootballData, epl_features: pd.DataFrame
) -> None:
    """Pushes were dropped from the backtest with the scores: bets chosen by their result."""
    ah = _evaluation(epl, epl_features, staking="flat", min_edge=0.0).markets["ah"]
    summary = ah.summary
    assert summary["backtest_rows"] > summary["n"]  # the whole-line pushes, among others
    refunded = 0
    for curve in ah.profit_curves.values():
        cumulative = np.asarray(curve["cumulative_profit"], dtype=float)
        steps = np.diff(np.concatenate([[0.0], cumulative]))
        refunded += int(np.sum(np.isclose(steps, 0.0)))  # only a push settles at exactly 0
    assert refunded > 0


def test_the_handicap_backtest_bets_lines_that_moved_by_the_close(
    epl: FootballData, epl_features: pd.DataFrame
) -> None:
    """The bets were chosen by the closing line (a moved line, or no close, was not bet): on the
    bundle's handicaps 40% of lines moved, and the rest inflated the market model's ROI from
    +0.4% to +14.0%. A backtest may read only what was known before kick-off."""
    ah = _evaluation(epl, epl_features, staking="flat", min_edge=0.0).markets["ah"]
    test = (epl.matches["kickoff_utc"] >= pd.Timestamp("2022-01-01", tz="UTC")).to_numpy()
    line = epl_features["ah_line"].to_numpy(dtype=float)
    priced = (
        ~epl_features[list(MARKET_COLUMNS[MarketKind.ASIAN_HANDICAP])].isna().any(axis=1).to_numpy()
    )
    whole_or_half = np.isfinite(line) & np.isclose(line * 2, np.round(line * 2))
    known = test & priced & whole_or_half
    _, closing_line, _ = closing_yardstick(epl, MarketKind.ASIAN_HANDICAP, method="shin")
    moved = known & ~np.isclose(closing_line, line)
    assert moved.sum() > 0  # the fixture has such matches
    assert ah.summary["backtest_rows"] == known.sum()
    for name, bt in ah.summary["backtest"].items():
        # a close on another line prices another bet: those bets have no closing value
        assert 0 < bt["n_bets_without_closing"] <= moved.sum(), name


def _rounded(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_rounded(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if math.isnan(obj) else round(float(obj), 6)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _compare(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        diffs = [f"{path}/{k}: missing" for k in expected if k not in actual]
        diffs += [f"{path}/{k}: unexpected" for k in actual if k not in expected]
        for k in expected.keys() & actual.keys():
            diffs += _compare(expected[k], actual[k], f"{path}/{k}")
        return diffs
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for i, (e, a) in enumerate(zip(expected, actual, strict=False))
            for d in _compare(e, a, f"{path}[{i}]")
        ]
    if isinstance(expected, float) and isinstance(actual, float):
        return [] if abs(expected - actual) <= 2e-6 else [f"{path}: {expected} != {actual}"]
    return [] if expected == actual else [f"{path}: {expected!r} != {actual!r}"]


def test_evaluation_json_matches_golden(
    epl: FootballData, epl_features: pd.DataFrame, regen_golden: bool
) -> None:
    actual = _rounded(_evaluate(epl, epl_features))
    if regen_golden:
        GOLDEN.write_text(json.dumps(actual, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))
    diffs = _compare(expected, actual)
    assert not diffs, (
        "evaluation differs from the golden file (rerun with --regen-golden and "
        "review the diff if intended):\n" + "\n".join(diffs[:20])
    )
    # Sanity on the stored numbers themselves: the pre-match price sits near the closing line.
    one = expected["markets"]["1x2"]
    assert (
        0.97 < one["market"]["prematch"]["log_loss"] / one["market"]["closing"]["log_loss"] < 1.04
    )
