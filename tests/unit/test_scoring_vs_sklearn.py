"""Differential tests: our log loss and Brier score against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss
from sklearn.metrics import log_loss as sk_log_loss

from marketcast.evaluation.scoring import brier_score, ece, log_loss, reliability_curve, score_all


def random_forecasts(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), size=n)
    # Keep probabilities inside sklearn's [eps, 1 - eps] clip so both compute the same thing.
    p = np.clip(p, 1e-9, None)
    p /= p.sum(axis=1, keepdims=True)
    y = rng.integers(0, k, size=n)
    return y, p


@pytest.mark.parametrize(("seed", "k"), [(0, 2), (1, 3), (2, 3), (3, 5)])
def test_log_loss_matches_sklearn(seed: int, k: int) -> None:
    y, p = random_forecasts(seed, 500, k)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p, labels=list(range(k))), abs=1e-12)


@pytest.mark.parametrize(("seed", "k"), [(0, 2), (1, 3), (2, 3), (3, 5)])
def test_brier_matches_sklearn_unscaled(seed: int, k: int) -> None:
    y, p = random_forecasts(seed, 500, k)
    expected = brier_score_loss(y, p, labels=list(range(k)), scale_by_half=False)
    assert brier_score(y, p) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_binary_brier_is_twice_sklearn_default(seed: int) -> None:
    y, p = random_forecasts(seed, 400, 2)
    assert brier_score(y, p) == pytest.approx(2.0 * brier_score_loss(y, p[:, 1]), abs=1e-12)


def test_excluded_rows_match_sklearn_on_the_kept_rows() -> None:
    y, p = random_forecasts(7, 300, 2)
    y_with_pushes = y.copy()
    y_with_pushes[::7] = -1
    kept = y_with_pushes >= 0
    scores = score_all(y_with_pushes, p)
    assert scores["n"] == int(kept.sum())
    assert scores["log_loss"] == pytest.approx(
        sk_log_loss(y[kept], p[kept], labels=[0, 1]), abs=1e-12
    )
    assert scores["brier"] == pytest.approx(2.0 * brier_score_loss(y[kept], p[kept, 1]), abs=1e-12)


def test_log_loss_clips_a_certain_miss() -> None:
    assert log_loss([1], [[1.0, 0.0]]) == pytest.approx(-np.log(1e-15))


@pytest.mark.parametrize(("seed", "k"), [(8, 2), (9, 3)])
def test_reliability_curve_matches_sklearn_calibration_curve(seed: int, k: int) -> None:
    from sklearn.calibration import calibration_curve

    y, p = random_forecasts(seed, 800, k)
    curves = reliability_curve(y, p, n_bins=10)
    ece_by_class = []
    for c in range(k):
        freq, p_mean = calibration_curve(y == c, p[:, c], n_bins=10, strategy="uniform")
        filled = curves[c]["n"] > 0
        np.testing.assert_allclose(curves[c]["freq"][filled], freq, atol=1e-12)
        np.testing.assert_allclose(curves[c]["p_mean"][filled], p_mean, atol=1e-12)
        assert curves[c]["n"].sum() == len(y)
        weights = curves[c]["n"][filled] / len(y)
        ece_by_class.append(np.sum(weights * np.abs(freq - p_mean)))
    assert ece(y, p) == pytest.approx(np.mean(ece_by_class), abs=1e-12)


def test_ece_hand_case() -> None:
    # Class 0: forecasts 0.7 (bin 7) twice, hit once -> |0.7 - 0.5| = 0.2; class 1 mirrors it.
    assert ece([0, 1], [[0.7, 0.3], [0.7, 0.3]]) == pytest.approx(0.2)
    curve = reliability_curve([0, 1], [[0.7, 0.3], [0.7, 0.3]])
    assert curve[0]["n"][7] == 2
    assert curve[0]["freq"][7] == pytest.approx(0.5)
    assert np.isnan(curve[0]["freq"][0])
