"""Paired t-test against scipy.stats.ttest_rel, and the bootstrap mean interval."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from marketcast.evaluation.significance import bootstrap_mean_ci, paired_test


@pytest.mark.parametrize("alternative", ["greater", "less", "two-sided"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_ttest_rel(alternative: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    champion = rng.gamma(2.0, 0.5, size=300)
    challenger = champion - 0.02 + rng.normal(0, 0.2, size=300)
    ours = paired_test(champion, challenger, alternative=alternative)
    ref = stats.ttest_rel(champion, challenger, alternative=alternative)
    assert ours.t_stat == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-10, abs=1e-300)
    assert ours.n == 300
    assert ours.mean_difference == pytest.approx(np.mean(champion - challenger), rel=1e-12)
    assert ours.std_error == pytest.approx(
        np.std(champion - challenger, ddof=1) / np.sqrt(300), rel=1e-12
    )


def test_better_challenger_gives_small_one_sided_p_value() -> None:
    rng = np.random.default_rng(5)
    champion = rng.normal(1.0, 0.3, size=500)
    challenger = champion - 0.05 + rng.normal(0, 0.1, size=500)
    result = paired_test(champion, challenger)
    assert result.mean_difference > 0
    assert result.p_value < 1e-6
    assert paired_test(challenger, champion).p_value > 1 - 1e-6


def test_nan_pairs_are_dropped() -> None:
    champion = np.array([1.0, 1.2, np.nan, 0.9, 1.1, 1.3])
    challenger = np.array([0.9, 1.0, 0.8, np.nan, 1.0, 1.0])
    result = paired_test(champion, challenger)
    keep = ~(np.isnan(champion) | np.isnan(challenger))
    ref = stats.ttest_rel(champion[keep], challenger[keep], alternative="greater")
    assert result.n == 4
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-12)


def test_degenerate_inputs() -> None:
    one = paired_test([1.0], [0.5])
    assert one.n == 1
    assert one.mean_difference == 0.5
    assert np.isnan(one.p_value)
    constant = paired_test([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
    assert constant.t_stat == np.inf
    assert constant.p_value == 0.0
    assert json.loads(json.dumps(one.to_dict(), allow_nan=False))["p_value"] is None
    with pytest.raises(ValueError, match="differ in length"):
        paired_test([1.0, 2.0], [1.0])


def test_bootstrap_mean_ci() -> None:
    x = np.random.default_rng(0).normal(0.3, 1.0, size=400)
    low, high = bootstrap_mean_ci(x, n_bootstrap=2000, seed=1)
    assert low < x.mean() < high
    # close to the normal-theory interval mean +- 1.96 se
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert bootstrap_mean_ci(x, n_bootstrap=2000, seed=1) == (low, high)
    with_nan = np.concatenate([x, [np.nan]])
    assert bootstrap_mean_ci(with_nan, n_bootstrap=2000, seed=1) == (low, high)
    assert all(np.isnan(bootstrap_mean_ci([], n_bootstrap=10)))
    assert all(np.isnan(bootstrap_mean_ci([0.3, np.nan], n_bootstrap=10)))  # was (0.3, 0.3)


def test_identical_differences_write_standard_json() -> None:
    result = paired_test([1.5, 2.5, 3.5], [1.0, 2.0, 3.0])  # every difference 0.5: t = inf
    out = result.to_dict()
    assert out["t_stat"] is None
    json.dumps(out, allow_nan=False)


def test_bootstrap_refuses_an_infinite_value() -> None:
    with pytest.raises(ValueError, match="infinite value at 3"):
        bootstrap_mean_ci([1.0, 2.0, np.nan, np.inf, 3.0])
