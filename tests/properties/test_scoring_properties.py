"""Properties of the scoring rules and de-margining: propriety, ranges, invariances."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketcast.evaluation.scoring import (
    brier_score,
    brier_score_per_sample,
    ece,
    log_loss,
    log_loss_per_sample,
    rps,
    rps_per_sample,
)
from marketcast.margins import implied_probabilities, overround, shin_z

PER_SAMPLE = {
    "log_loss": log_loss_per_sample,
    "brier": brier_score_per_sample,
    "rps": rps_per_sample,
}
MEAN_SCORES = {"log_loss": log_loss, "brier": brier_score, "rps": rps, "ece": ece}
METHODS = ("multiplicative", "additive", "power", "shin")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def distributions(draw: st.DrawFn, n_classes: int) -> np.ndarray:
    weights = draw(st.lists(st.floats(0.0, 1.0), min_size=n_classes, max_size=n_classes))
    w = np.asarray(weights)
    if w.sum() < 1e-6:
        w = np.ones(n_classes)
    return w / w.sum()


@st.composite
def forecast_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_classes = draw(st.integers(2, 5))
    return draw(distributions(n_classes)), draw(distributions(n_classes))


@st.composite
def labelled_forecasts(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_classes = draw(st.integers(2, 4))
    n = draw(st.integers(1, 25))
    p = np.stack([draw(distributions(n_classes)) for _ in range(n)])
    y = np.asarray(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)))
    return y, p


def expected_score(score: str, truth: np.ndarray, forecast: np.ndarray) -> float:
    """Expected per-sample score of ``forecast`` when outcomes are drawn from ``truth``."""
    k = len(truth)
    losses = PER_SAMPLE[score](np.arange(k), np.tile(forecast, (k, 1)))
    return float(np.sum(truth * losses))


@pytest.mark.parametrize("score", sorted(PER_SAMPLE))
@SETTINGS
@given(pair=forecast_pairs())
def test_scores_are_proper(score: str, pair: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pair
    assert expected_score(score, p, p) <= expected_score(score, p, q) + 1e-9


@SETTINGS
@given(data=labelled_forecasts())
def test_rps_lies_in_unit_interval(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    values = rps_per_sample(y, p)
    assert np.all(values >= 0.0)
    assert np.all(values <= 1.0 + 1e-12)


@SETTINGS
@given(data=labelled_forecasts())
def test_brier_lies_in_zero_two(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    values = brier_score_per_sample(y, p)
    assert np.all((values >= 0.0) & (values <= 2.0 + 1e-12))


@SETTINGS
@given(n_classes=st.integers(2, 5), data=st.data())
def test_certain_correct_forecast_has_zero_loss(n_classes: int, data: st.DataObject) -> None:
    y = np.asarray(data.draw(st.lists(st.integers(0, n_classes - 1), min_size=1, max_size=20)))
    p = np.eye(n_classes)[y]
    assert log_loss(y, p) == 0.0
    assert brier_score(y, p) == 0.0
    assert rps(y, p) == 0.0


@pytest.mark.parametrize("score", sorted(MEAN_SCORES))
@SETTINGS
@given(data=labelled_forecasts(), perm_seed=st.integers(0, 2**32 - 1))
def test_scores_are_shuffle_invariant(
    score: str, data: tuple[np.ndarray, np.ndarray], perm_seed: int
) -> None:
    y, p = data
    order = np.random.default_rng(perm_seed).permutation(len(y))
    assert MEAN_SCORES[score](y[order], p[order]) == pytest.approx(
        MEAN_SCORES[score](y, p), rel=1e-12, abs=1e-12
    )


@SETTINGS
@given(data=labelled_forecasts())
def test_excluded_rows_do_not_change_the_mean(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    y_with_push = np.concatenate([y, [-1]])
    p_with_push = np.vstack([p, np.full((1, p.shape[1]), 1.0 / p.shape[1])])
    for score in MEAN_SCORES.values():
        assert score(y_with_push, p_with_push) == pytest.approx(score(y, p), rel=1e-12, abs=1e-12)


odds_rows = st.integers(2, 4).flatmap(
    lambda k: st.lists(
        st.lists(st.floats(1.01, 60.0), min_size=k, max_size=k), min_size=1, max_size=20
    )
)


@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@given(rows=odds_rows)
def test_demargined_rows_are_distributions(method: str, rows: list[list[float]]) -> None:
    # Random odds include heavily negative overrounds (e.g. all prices near 60).
    odds = np.asarray(rows)
    probs = implied_probabilities(odds, method=method)
    assert probs.shape == odds.shape
    assert np.all(np.isfinite(probs))
    assert np.all((probs >= 0.0) & (probs <= 1.0))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@SETTINGS
@given(rows=odds_rows)
def test_demargining_keeps_the_price_order(method: str, rows: list[list[float]]) -> None:
    odds = np.asarray(rows)
    probs = implied_probabilities(odds, method=method)
    shorter = odds[:, :, None] < odds[:, None, :]  # (n, k, k): outcome i priced shorter than j
    gap = probs[:, :, None] - probs[:, None, :]  # (n, k, k): p_i - p_j
    assert np.all(gap[shorter] >= -1e-12)


@SETTINGS
@given(rows=odds_rows)
def test_shin_z_is_zero_exactly_when_there_is_no_margin(rows: list[list[float]]) -> None:
    odds = np.asarray(rows)
    z = shin_z(odds)
    margin = overround(odds)
    assert np.all((z >= 0.0) & (z < 1.0))
    assert np.all(z[margin <= 0.0] == 0.0)
    assert np.all(z[margin > 1e-9] > 0.0)
