"""Walk-forward prediction: each model sees only the past, on its retrain cadence."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd

from marketcast.datasets.football_data import FootballData
from marketcast.evaluation.walk_forward import walk_forward_predict
from marketcast.types import MarketKind


class SpyModel:
    """Records what it was trained on; predicts uniform probabilities."""

    def __init__(self) -> None:
        self.fits: list[pd.Timestamp] = []
        self.predicted_after: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        assert len(X) == len(y)
        self.fits.append(X["kickoff_utc"].max())
        return self

    def predict_market_proba(self, X: pd.DataFrame, market: MarketKind) -> np.ndarray | None:
        if market is MarketKind.ASIAN_HANDICAP:
            return None
        self.predicted_after.append((self.fits[-1], X["kickoff_utc"].min()))
        k = 3 if market is MarketKind.ONE_X_TWO else 2
        return np.full((len(X), k), 1.0 / k)


def test_models_only_ever_see_the_past(epl: FootballData, epl_features: pd.DataFrame) -> None:
    mask = (epl.matches["season"] == "2021-2022").to_numpy()
    y = epl.matches[["home_goals", "away_goals"]].to_numpy()
    weekly, monthly = SpyModel(), SpyModel()
    result = walk_forward_predict(
        epl_features,
        y,
        mask,
        {"weekly": weekly, "monthly": monthly},
        (MarketKind.ONE_X_TWO, MarketKind.OVER_UNDER_25, MarketKind.ASIAN_HANDICAP),
        step_days=7,
        retrain_every_steps={"weekly": 1, "monthly": 4},
    )
    assert result.n_fits["weekly"] == result.n_steps
    assert result.n_fits["monthly"] == -(-result.n_steps // 4)
    for latest_train, earliest_test in weekly.predicted_after + monthly.predicted_after:
        assert latest_train < earliest_test
    p = result.probabilities["weekly"]["1x2"]
    assert np.isnan(p[~mask]).all()
    assert np.allclose(p[mask], 1 / 3)
    assert np.isnan(result.probabilities["weekly"]["ah"]).all()


class HistorySpy(SpyModel):
    """A model that also reads recent matches: it records each history update."""

    def __init__(self) -> None:
        super().__init__()
        self.histories: list[pd.Timestamp] = []

    def update_history(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        assert len(X) == len(y)
        self.histories.append(X["kickoff_utc"].max())
        return self


def test_between_refits_the_history_follows_every_result_before_the_step(
    epl: FootballData, epl_features: pd.DataFrame
) -> None:
    """The network's team histories stayed frozen at its last fit for three weeks in four."""
    mask = (epl.matches["season"] == "2021-2022").to_numpy()
    y = epl.matches[["home_goals", "away_goals"]].to_numpy()
    model = HistorySpy()
    result = walk_forward_predict(
        epl_features,
        y,
        mask,
        {"monthly": model},
        (MarketKind.ONE_X_TWO,),
        step_days=7,
        retrain_every_steps={"monthly": 4},
    )
    assert len(model.fits) + len(model.histories) == result.n_steps
    assert len(model.histories) == result.n_steps - result.n_fits["monthly"]
    latest = sorted(model.fits + model.histories)  # the newest match known at each step
    firsts = [first for _, first in model.predicted_after]  # each step's first kick-off
    assert len(latest) == len(firsts) == result.n_steps
    for known, first in zip(latest, firsts, strict=True):
        assert known < first  # only the past
    gaps = [first - known for known, first in zip(latest, firsts, strict=True)]
    assert sorted(gaps)[len(gaps) // 2] < pd.Timedelta(days=8)  # typically last week's results
