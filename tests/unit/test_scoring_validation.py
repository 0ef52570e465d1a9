"""Scoring input checks: NaN rows score NaN everywhere; invalid forecasts and labels are errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from marketcast.evaluation.scoring import (
    brier_score,
    brier_score_per_sample,
    ece,
    log_loss,
    log_loss_per_sample,
    reliability_curve,
    rps,
    rps_per_sample,
    score_all,
)

PER_SAMPLE = {
    "log_loss": log_loss_per_sample,
    "brier": brier_score_per_sample,
    "rps": rps_per_sample,
}
ALL_SCORING: dict[str, Callable[[Any, Any], Any]] = {
    **PER_SAMPLE,
    "log_loss_mean": log_loss,
    "brier_mean": brier_score,
    "rps_mean": rps,
    "ece": ece,
    "score_all": score_all,
    "reliability_curve": reliability_curve,
}
VALID_ROW = [0.5, 0.3, 0.2]


def test_a_nan_anywhere_in_a_row_makes_every_score_nan() -> None:
    """The log loss ignored a NaN outside the observed class, and RPS one in the last class."""
    for observed in range(3):
        for nan_class in range(3):
            row = [0.5, 0.25, 0.25]
            row[nan_class] = np.nan
            y, p = [observed, 0], [row, VALID_ROW]
            for name, per_sample in PER_SAMPLE.items():
                values = per_sample(y, p)
                assert np.isnan(values[0]), (name, observed, nan_class)
                assert np.isfinite(values[1]), (name, observed, nan_class)
            scores = score_all(y, p)
            for name in ("log_loss", "brier", "rps", "ece"):
                assert np.isnan(scores[name]), (name, observed, nan_class)
            assert scores["n"] == 2


def test_probe_case_scores_agree_on_a_partly_nan_row() -> None:
    scores = score_all([1, 0], [[np.nan, 0.5, 0.5], VALID_ROW])
    assert np.isnan(scores["log_loss"])  # was 0.693 while brier, rps and ece were NaN
    assert np.isnan(log_loss([0, 0], [[np.nan, 0.5, 0.5], VALID_ROW]))


@pytest.mark.parametrize("name", sorted(ALL_SCORING))
@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ([0.9, 0.9, 0.9], r"p row 1: probabilities must sum to 1 \(within 1e-06\), got 2\.7"),
        ([0.5, 0.3, 0.1], r"p row 1: probabilities must sum to 1 \(within 1e-06\), got 0\.9"),
        ([1.5, -0.25, -0.25], r"p row 1: probabilities must be in \[0, 1\], got \[1\.5, -0\.25"),
        ([np.inf, 0.0, 0.0], r"p row 1: probabilities must be in \[0, 1\], got \[inf"),
        ([1.5, np.nan, np.nan], r"p row 1: probabilities must be in \[0, 1\], got \[1\.5, nan"),
    ],
)
def test_rows_that_are_not_distributions_are_rejected_by_every_score(
    name: str, bad_row: list[float], message: str
) -> None:
    """[[0.9] * 3] had log loss 0.105 and [1.5, -0.25, -0.25] a perfect 0.0, silently."""
    with pytest.raises(ValueError, match=message):
        ALL_SCORING[name]([0, 1, 2], [VALID_ROW, bad_row, VALID_ROW])


def test_an_excluded_row_must_still_be_a_distribution() -> None:
    with pytest.raises(ValueError, match="p row 0: probabilities must sum to 1"):
        log_loss([-1, 0], [[0.9, 0.9, 0.9], VALID_ROW])


def test_row_sum_tolerance_admits_float32_rounding_only() -> None:
    """Float32 softmax rows (the network, ONNX) miss 1 by ~1e-7; a 1e-5 miss is an error."""
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=5.0, size=(2000, 10)).astype(np.float32)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p32 = e / e.sum(axis=1, keepdims=True)  # float32 throughout
    assert np.abs(p32.astype(np.float64).sum(axis=1) - 1.0).max() > 1e-8  # really float32 noise
    y = rng.integers(0, 10, size=2000)
    p64 = p32.astype(np.float64)
    assert log_loss(y, p32) == log_loss(y, p64)
    assert np.isfinite(rps(y, p32))
    off = p64.copy()
    off[7, 0] += 1e-5
    with pytest.raises(ValueError, match="p row 7: probabilities must sum to 1"):
        log_loss(y, off)


@pytest.mark.parametrize("name", sorted(ALL_SCORING))
@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([0, 3, 5], r"y row 1: label must be an integer in \[-1, 2\] \(-1 = excluded\), got 3"),
        ([0, -2, 0], r"y row 1: label must be an integer in \[-1, 2\] \(-1 = excluded\), got -2"),
        ([0.0, 1.5, 9.0], r"y row 1: label must be an integer .*, got 1\.5"),
        ([0.0, np.nan, np.nan], r"y row 1: label must be an integer .*, got nan"),
    ],
)
def test_label_errors_name_the_first_bad_row(name: str, labels: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ALL_SCORING[name](labels, [VALID_ROW] * 3)


def test_a_row_sum_just_outside_the_tolerance_is_written_with_its_digits() -> None:
    """1.000002 was written "got 1", which contradicted "must sum to 1"."""
    with pytest.raises(ValueError, match=r"within 1e-06\), got 1\.000002: \[0\.500002, 0\.3"):
        log_loss([0], [[0.500002, 0.3, 0.2]])
