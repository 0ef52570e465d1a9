"""Walk-forward prediction: before each step, fit on every result known by then, predict it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from marketcast.models.base import ClosingTargets, fit_football_model, n_outcomes
from marketcast.splits.walk_forward import WalkForwardSplit
from marketcast.types import MarketKind

log = logging.getLogger(__name__)

#: Called after each step with (steps done, steps total, description).
ProgressFn = Callable[[int, int, str], None]


@dataclass
class WalkForwardPredictions:
    """Out-of-sample probabilities for every test row, per model and market.

    ``probabilities[model][market]`` has shape (n_matches, n_outcomes) over *all* rows of the
    feature frame; rows outside the test set stay NaN.
    """

    probabilities: dict[str, dict[str, np.ndarray]]
    test_mask: np.ndarray
    n_steps: int
    n_fits: dict[str, int] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    predict_seconds: dict[str, float] = field(default_factory=dict)


def walk_forward_predict(
    X: pd.DataFrame,
    y_goals: np.ndarray,
    test_mask: np.ndarray,
    models: Mapping[str, Any],
    markets: tuple[MarketKind, ...],
    *,
    step_days: int = 7,
    retrain_every_steps: Mapping[str, int] | None = None,
    progress: ProgressFn | None = None,
    closing: ClosingTargets | None = None,
) -> WalkForwardPredictions:
    """Walk forward over the test rows, refitting each model on its cadence.

    A step trains on the matches whose result is known by its start (kickoff + 3 hours, see
    :class:`~marketcast.splits.walk_forward.WalkForwardSplit`). Each model object is fitted
    again in place at every refit, so estimators with ``warm_start=True`` start from their
    previous optimum (fast weekly refits). A model is always fitted before its first step; after
    that every ``retrain_every_steps[name]`` steps. At the steps in between, a model with
    ``update_history(X, y)`` (the network) is given every result known by the step, so the
    recent-match sequences it reads are as fresh as a live model's, not frozen at its last fit.

    Parameters
    ----------
    X
        Feature frame for all rows (history and test), with ``kickoff_utc``.
    y_goals
        Shape (n, 2): home and away goals; only rows of each step's training set are read.
    test_mask
        Which rows to predict; a test row that falls in no step (a missing kickoff) is a
        ``ValueError`` before any fit.
    models
        Model name -> unfitted estimator.
    markets
        Markets to predict.
    closing
        Per market, de-margined closing probabilities for all rows (`closing_targets`): the
        training target of models with ``target="closing"``. Only training rows are passed on,
        so a step never sees the closing price of a match it predicts.
    """
    retrain_every_steps = dict(retrain_every_steps or {})
    n = len(X)
    y_goals = np.asarray(y_goals)
    probabilities = {
        name: {m.value: np.full((n, n_outcomes(m)), np.nan) for m in markets} for name in models
    }
    result = WalkForwardPredictions(probabilities, np.asarray(test_mask, dtype=bool), 0)
    for name in models:
        result.n_fits[name] = 0
        result.fit_seconds[name] = 0.0
        result.predict_seconds[name] = 0.0

    splitter = WalkForwardSplit(step_days)
    steps = list(splitter.split(X["kickoff_utc"], result.test_mask))
    last_fit_step: dict[str, int] = {}
    for step in steps:
        train_X = X.iloc[step.train_index]
        train_y = y_goals[step.train_index]
        test_X = X.iloc[step.test_index]
        train_closing = (
            None
            if closing is None
            else {m: np.asarray(c)[step.train_index] for m, c in closing.items()}
        )
        for name, model in models.items():
            cadence = max(1, int(retrain_every_steps.get(name, 1)))
            if name not in last_fit_step or step.number - last_fit_step[name] >= cadence:
                t0 = time.perf_counter()
                fit_football_model(model, train_X, train_y, train_closing)
                result.fit_seconds[name] += time.perf_counter() - t0
                result.n_fits[name] += 1
                last_fit_step[name] = step.number
            elif (update_history := getattr(model, "update_history", None)) is not None:
                # between refits, a model that reads recent matches (the network's team
                # histories) gets the results that arrived since, as a live server's would
                update_history(train_X, train_y)
            t0 = time.perf_counter()
            for market in markets:
                p = model.predict_market_proba(test_X, market)
                if p is not None:
                    probabilities[name][market.value][step.test_index] = p
            result.predict_seconds[name] += time.perf_counter() - t0
        result.n_steps += 1
        if progress is not None:
            progress(result.n_steps, len(steps), f"week of {step.start_utc:%Y-%m-%d}")
    return result
