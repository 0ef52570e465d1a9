"""Shin's per-row float path (used for a server's single quotes) equals the vectorised path."""

from __future__ import annotations

import numpy as np

from marketcast.margins import implied_probabilities, shin_z


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
