"""The per-row float paths (a server's single quotes: Shin, the overround) equal the vectorised
ones."""

from __future__ import annotations

import numpy as np

from marketcast.margins import implied_probabilities, overround, quote_overround, shin_z


def test_single_rows_match_the_vectorised_solution() -> None:
    rng = np.random.default_rng(3)
    odds = rng.uniform(1.05, 15.0, (400, 3))
    odds[0] = [1.9, 3.6, 4.4]
    odds[1] = [2.5, 3.6, 3.6]  # under-round (best prices): z = 0
    odds[2, 1] = np.nan
    batch = implied_probabilities(odds, "shin")
    one_by_one = np.vstack(
        [implied_probabilities(odds[i : i + 1], "shin") for i in range(len(odds))]
    )
    np.testing.assert_allclose(one_by_one, batch, rtol=0, atol=1e-15)
    assert np.isnan(one_by_one[2]).all()
    z_batch = shin_z(odds)
    z_rows = np.array([shin_z(odds[i : i + 1])[0] for i in range(len(odds))])
    np.testing.assert_allclose(z_rows, z_batch, rtol=0, atol=1e-15)
    assert z_rows[1] == 0.0


def test_one_quotes_overround_is_the_vectorised_one_to_the_bit() -> None:
    rng = np.random.default_rng(11)
    for k in (2, 3):
        odds = rng.uniform(1.01, 30.0, (2_000, k)).round(2)
        odds[0, 0] = 1.0  # a price of 1 (or less) is no price: NaN
        odds[1, -1] = np.nan
        odds[2, 0] = np.inf
        odds[3, 1] = 0.5
        batch = overround(odds)
        one_by_one = np.array([quote_overround(tuple(map(float, row))) for row in odds])
        assert np.isnan(one_by_one[:4]).all()
        assert np.isnan(batch[:4]).all()
        np.testing.assert_array_equal(one_by_one, batch)  # NaN where NaN, else equal bits
