"""Cross-market fit: goal rates recovered from Poisson prices; the features it exposes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from marketcast.features.football import (
    cross_market_features,
    fit_poisson_rates,
    poisson_outcome_probabilities,
)


def test_probabilities_equal_scipy_skellam_and_poisson() -> None:
    rate_home = np.array([0.4, 1.5, 2.9])
    rate_away = np.array([2.2, 1.1, 0.3])
    p = poisson_outcome_probabilities(rate_home, rate_away)
    np.testing.assert_allclose(p[:, 0], stats.skellam.sf(0, rate_home, rate_away), atol=1e-12)
    np.testing.assert_allclose(p[:, 1], stats.skellam.pmf(0, rate_home, rate_away), atol=1e-12)
    np.testing.assert_allclose(p[:, 2], stats.skellam.cdf(-1, rate_home, rate_away), atol=1e-12)
    np.testing.assert_allclose(p[:, 3], stats.poisson.sf(2, rate_home + rate_away), atol=1e-12)
    np.testing.assert_allclose(p[:, :3].sum(axis=1), 1.0, atol=1e-12)


def test_fit_recovers_known_rates_from_poisson_prices() -> None:
    rng = np.random.default_rng(7)
    rate_home = rng.uniform(0.3, 3.5, 5_000)
    rate_away = rng.uniform(0.2, 3.0, 5_000)
    p = poisson_outcome_probabilities(rate_home, rate_away)
    fitted_home, fitted_away = fit_poisson_rates(p[:, 0], p[:, 2], p[:, 3])
    np.testing.assert_allclose(fitted_home, rate_home, atol=1e-6)
    np.testing.assert_allclose(fitted_away, rate_away, atol=1e-6)


def test_a_rows_rates_do_not_depend_on_the_other_rows() -> None:
    """The fit stopped when every row's step was small, so a row got as many iterations as the
    slowest other row: its rates moved (by ~1e-15) with other matches' prices, later ones
    included, and a fixture served alone differed from its training value."""
    rng = np.random.default_rng(3)
    p = poisson_outcome_probabilities(rng.uniform(0.5, 2.5, 2_000), rng.uniform(0.4, 2.0, 2_000))
    noisy = p + rng.normal(0.0, 0.01, p.shape)  # prices no Poisson pair fits exactly
    home, away = fit_poisson_rates(noisy[:, 0], noisy[:, 2], noisy[:, 3])
    first_half = fit_poisson_rates(noisy[:1_000, 0], noisy[:1_000, 2], noisy[:1_000, 3])
    assert np.array_equal(first_half[0], home[:1_000])
    assert np.array_equal(first_half[1], away[:1_000])
    for row in (0, 999, 1_999):
        alone = fit_poisson_rates(
            noisy[row : row + 1, 0], noisy[row : row + 1, 2], noisy[row : row + 1, 3]
        )
        assert (alone[0][0], alone[1][0]) == (home[row], away[row])


def test_missing_price_gives_nan_rates_and_leaves_other_rows_alone() -> None:
    p = poisson_outcome_probabilities(np.array([1.2, 1.8]), np.array([1.0, 0.7]))
    over = p[:, 3].copy()
    over[0] = np.nan
    fitted_home, fitted_away = fit_poisson_rates(p[:, 0], p[:, 2], over)
    assert np.isnan([fitted_home[0], fitted_away[0]]).all()
    np.testing.assert_allclose([fitted_home[1], fitted_away[1]], [1.8, 0.7], atol=1e-9)


def test_features_are_zero_gaps_for_consistent_prices() -> None:
    p = poisson_outcome_probabilities(np.array([1.6, 0.9]), np.array([1.2, 1.4]))
    X = pd.DataFrame(
        {"mkt_1x2_home": p[:, 0], "mkt_1x2_draw": p[:, 1], "mkt_1x2_away": p[:, 2],
         "mkt_ou25_over": p[:, 3]}
    )  # fmt: skip
    feats = cross_market_features(X)
    np.testing.assert_allclose(feats["xm_total_goals"], [2.8, 2.3], atol=1e-9)
    np.testing.assert_allclose(feats["xm_supremacy"], [0.4, -0.5], atol=1e-9)
    np.testing.assert_allclose(feats[["xm_draw_gap", "xm_over_gap"]], 0.0, atol=1e-9)
    # a draw priced 3 points above what the other prices imply: the gap says so
    X.loc[0, "mkt_1x2_draw"] += 0.03
    assert feats.index.equals(X.index)
    assert abs(cross_market_features(X)["xm_draw_gap"].iloc[0] + 0.03) < 1e-9
