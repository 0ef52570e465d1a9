"""A quarter-line Asian handicap probability means one thing whoever serves it: each side's
expected share of the stake won, the de-margined fair price's. Dixon-Coles counted a half win
whole, and a network learning the results weighed it whole."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from marketcast.labels.football import asian_handicap_result
from marketcast.models.base import market_label_weights, market_labels
from marketcast.models.dixon_coles import asian_handicap_proba, dixon_coles_score_matrix
from marketcast.models.neural import NeuralModel
from marketcast.types import MarketKind


def test_a_half_result_weighs_half_and_other_rows_one() -> None:
    X = pd.DataFrame({"ah_line": [-0.25, -0.25, -0.75, -0.5, -1.0, np.nan]})
    goals = np.array([[1, 1], [2, 0], [1, 0], [0, 0], [1, 0], [3, 0]])
    weights = market_label_weights(MarketKind.ASIAN_HANDICAP, X, goals)
    # draw on -0.25: half loss; 2-0: win; 1-0 on -0.75: half win; 0-0 on -0.5: loss;
    # 1-0 on -1: push (no label); no line: no label
    np.testing.assert_array_equal(weights, [0.5, 1.0, 0.5, 1.0, 0.0, 0.0])
    assert (market_label_weights(MarketKind.ONE_X_TWO, X, goals) == 1.0).all()


@pytest.mark.parametrize("line", [-1.25, -0.75, -0.25, 0.25, 0.75, -0.5, 0.0])
def test_the_weighted_labels_best_probability_is_dixon_coles_fair_price(line: float) -> None:
    """What a model learning the weighted results converges to, cell by cell of a score
    matrix, is the probability Dixon-Coles serves for the line."""
    mat, _ = dixon_coles_score_matrix(np.array([1.6]), np.array([1.0]), np.array([-0.1]), 10)
    i, j = np.indices(mat[0].shape)
    goals = np.column_stack([i.ravel(), j.ravel()])
    X = pd.DataFrame({"ah_line": np.full(len(goals), line)})
    labels = market_labels(MarketKind.ASIAN_HANDICAP, X, goals)
    weights = market_label_weights(MarketKind.ASIAN_HANDICAP, X, goals) * mat[0].ravel()
    home = (weights * (labels == 0)).sum() / (weights * (labels >= 0)).sum()
    assert home == pytest.approx(asian_handicap_proba(mat, np.array([line]))[0, 0], rel=1e-12)
    assert np.array_equal(np.abs(asian_handicap_result(i - j, line)).ravel() > 0, labels >= 0)


def test_the_network_learning_the_results_weighs_a_half_result_half(epl) -> None:
    X, y = epl
    X = X.iloc[:200].reset_index(drop=True)
    targets = NeuralModel()._targets(X, y[:200], {}, torch.device("cpu"))
    expected = market_label_weights(MarketKind.ASIAN_HANDICAP, X, y[:200])
    np.testing.assert_allclose(targets["w_ah"].numpy(), expected)
    assert (expected == 0.5).any()  # the sample holds quarter lines settled by half


def test_lightgbm_learning_the_results_weighs_a_half_result_half(epl, monkeypatch) -> None:
    """LightGBM with ``target: result`` still counted a half win as a whole one."""
    from marketcast.models.gbm import LightGBMModel

    X, y = epl
    X, y = X.iloc[:400].reset_index(drop=True), y[:400]
    seen: dict[str, np.ndarray] = {}
    fit_market = LightGBMModel._fit_market

    def spy(self, features, targets, init, k, weights):  # type: ignore[no-untyped-def]
        seen[str(k)] = weights
        return fit_market(self, features, targets, init, k, weights)

    monkeypatch.setattr(LightGBMModel, "_fit_market", spy)
    LightGBMModel(target="result", markets=("ah",), n_estimators=5).fit(X, y)
    expected = market_label_weights(MarketKind.ASIAN_HANDICAP, X, y)
    np.testing.assert_array_equal(seen["2"], expected[expected > 0])
    assert (seen["2"] == 0.5).any()  # the sample holds quarter lines settled by half
