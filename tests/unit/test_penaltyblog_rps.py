"""Differential tests: our RPS and Brier score against penaltyblog's."""

from __future__ import annotations

import numpy as np
import pytest

from marketcast.evaluation.scoring import brier_score, rps, rps_per_sample

pb_metrics = pytest.importorskip("penaltyblog.metrics")


@pytest.mark.parametrize(("seed", "k"), [(0, 2), (1, 3), (2, 3), (3, 4), (4, 6)])
def test_rps_matches_penaltyblog(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), size=400)
    y = rng.integers(0, k, size=400)
    np.testing.assert_allclose(rps_per_sample(y, p), pb_metrics.rps_array(p, y), atol=1e-12)
    assert rps(y, p) == pytest.approx(pb_metrics.rps_average(p, y), abs=1e-12)


def test_rps_matches_penaltyblog_on_a_hand_case() -> None:
    p = np.array([[0.6, 0.3, 0.1], [0.3, 0.4, 0.3]])
    y = np.array([0, 1])
    assert rps(y, p) == pytest.approx(0.0875, abs=1e-15)
    assert pb_metrics.rps_average(p, y) == pytest.approx(0.0875, abs=1e-15)


@pytest.mark.parametrize("seed", [5, 6])
def test_brier_matches_penaltyblog_multiclass(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(3), size=300)
    y = rng.integers(0, 3, size=300)
    assert brier_score(y, p) == pytest.approx(pb_metrics.multiclass_brier_score(p, y), abs=1e-12)
