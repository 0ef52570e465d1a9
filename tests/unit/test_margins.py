"""De-margining: known values, round trips through each method's own model, and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import brentq

from marketcast.margins import implied_probabilities, overround, power_k, shin_z

METHODS = ("multiplicative", "additive", "power", "shin")
ODDS_1X2 = np.array([[1.8, 3.9, 4.6], [2.5, 3.2, 3.0], [1.25, 6.5, 13.0]])


def test_overround_known_values() -> None:
    np.testing.assert_allclose(overround(np.array([[2.0, 2.0], [1.9, 1.9]])), [0.0, 2 / 1.9 - 1])
    assert float(overround(np.array([1.8, 3.9, 4.6]))) == pytest.approx(
        1 / 1.8 + 1 / 3.9 + 1 / 4.6 - 1
    )


@pytest.mark.parametrize("method", METHODS)
def test_fair_even_market_is_half_half(method: str) -> None:
    np.testing.assert_allclose(
        implied_probabilities(np.array([[2.0, 2.0], [1.9, 1.9]]), method), 0.5, atol=1e-15
    )


def test_multiplicative_known_values() -> None:
    probs = implied_probabilities(np.array([[1.8, 3.9, 4.6]]))
    inv = 1 / np.array([1.8, 3.9, 4.6])
    np.testing.assert_allclose(probs[0], inv / inv.sum(), rtol=1e-15)


def test_additive_subtracts_margin_equally() -> None:
    odds = np.array([[1.8, 3.9, 4.6]])
    inv = 1 / odds[0]
    expected = inv - (inv.sum() - 1) / 3
    np.testing.assert_allclose(implied_probabilities(odds, "additive")[0], expected, rtol=1e-14)


def test_additive_floors_negative_longshots_and_renormalises(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from marketcast import margins

    monkeypatch.setattr(margins, "_FLOOR_WARNED", [])
    odds = np.array([[1.9, 3.5, 4.2], [1.02, 40.0, 500.0]])
    inv = 1 / odds[1]
    raw = inv - (inv.sum() - 1) / 3
    assert raw[2] < 0  # the additive shift would give a negative probability
    with caplog.at_level("WARNING", logger="marketcast.margins"):
        probs = implied_probabilities(odds, "additive")[1]
    # the repair is counted, not silent (the audit of 2026-11-25)
    assert "floored 1 probabilities in 1 of 2 rows (first row 1)" in caplog.text
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    with caplog.at_level("DEBUG", logger="marketcast.margins"):
        implied_probabilities(odds[1:], "additive")  # later floors: debug, not a warning each
    assert [r.levelname for r in caplog.records] == ["WARNING", "DEBUG"]
    assert probs[2] == pytest.approx(1e-6 / (raw[:2].sum() + 1e-6), rel=1e-9)
    assert probs.sum() == pytest.approx(1.0, abs=1e-15)
    assert np.all(probs > 0)


def test_power_round_trip() -> None:
    true_p = np.array([0.55, 0.25, 0.20])
    k = 1.07
    odds = 1 / true_p ** (1 / k)  # the power model: pi_i = p_i ** (1/k)
    np.testing.assert_allclose(implied_probabilities(odds[None, :], "power")[0], true_p, atol=1e-12)
    assert float(power_k(odds)) == pytest.approx(k, rel=1e-12)


def test_power_handles_negative_overround() -> None:
    odds = np.array([[5.0, 5.0]])
    assert float(power_k(odds)[0]) == pytest.approx(np.log(0.5) / np.log(0.2), rel=1e-12)
    np.testing.assert_allclose(implied_probabilities(odds, "power"), 0.5)


def shin_prices(true_p: np.ndarray, z: float) -> np.ndarray:
    """Shin's (1993) bookmaker prices for true probabilities ``p`` and insider share ``z``."""
    s = np.sqrt(z * true_p + (1 - z) * true_p**2)
    return s * s.sum()


@pytest.mark.parametrize(
    ("true_p", "z"),
    [
        (np.array([0.55, 0.25, 0.20]), 0.02),
        (np.array([0.8, 0.15, 0.05]), 0.05),
        (np.array([0.45, 0.55]), 0.01),
        (np.array([0.3, 0.3, 0.25, 0.15]), 0.1),
    ],
)
def test_shin_inverts_the_shin_model(true_p: np.ndarray, z: float) -> None:
    odds = 1 / shin_prices(true_p, z)
    np.testing.assert_allclose(implied_probabilities(odds[None, :], "shin")[0], true_p, atol=1e-12)
    assert float(shin_z(odds)) == pytest.approx(z, rel=1e-9)


def test_shin_matches_independent_scalar_solve() -> None:
    for row in ODDS_1X2:
        inv = 1 / row
        booksum = inv.sum()

        def excess(z: float, inv: np.ndarray = inv, booksum: float = booksum) -> float:
            p = (np.sqrt(z**2 + 4 * (1 - z) * inv**2 / booksum) - z) / (2 * (1 - z))
            return float(p.sum() - 1)

        z = brentq(excess, 0.0, 0.999, xtol=1e-15)
        assert float(shin_z(row)) == pytest.approx(z, abs=1e-12)


def test_shin_with_zero_or_negative_overround_returns_normalised_row() -> None:
    odds = np.array([[2.0, 2.0], [2.2, 2.1], [3.0, 5.0]])  # margins 0, < 0, < 0
    np.testing.assert_array_equal(shin_z(odds), [0.0, 0.0, 0.0])
    inv = 1 / odds
    np.testing.assert_allclose(
        implied_probabilities(odds, "shin"), inv / inv.sum(axis=1, keepdims=True), rtol=1e-14
    )


@pytest.mark.parametrize("method", METHODS)
def test_rows_with_nan_or_bad_odds_come_back_nan(method: str) -> None:
    odds = np.array([[1.8, 3.9, 4.6], [np.nan, 3.9, 4.6], [1.0, 3.9, 4.6], [2.5, 3.2, 3.0]])
    probs = implied_probabilities(odds, method)
    assert np.all(np.isnan(probs[1:3]))
    np.testing.assert_allclose(probs[[0, 3]].sum(axis=1), 1.0, atol=1e-14)
    assert np.isnan(overround(odds)[1])


@pytest.mark.parametrize("method", METHODS)
def test_one_dimensional_input_keeps_its_shape(method: str) -> None:
    probs = implied_probabilities(ODDS_1X2[0], method)
    assert probs.shape == (3,)
    np.testing.assert_allclose(probs, implied_probabilities(ODDS_1X2, method)[0], rtol=1e-14)


def test_methods_shift_probability_to_favourites_in_known_order() -> None:
    # Additive and power take more margin off long shots than multiplicative does.
    mult = implied_probabilities(ODDS_1X2, "multiplicative")
    for method in ("additive", "power", "shin"):
        assert np.all(implied_probabilities(ODDS_1X2, method)[:, 0] > mult[:, 0])


def test_unknown_method_raises() -> None:
    with pytest.raises(ValueError, match="unknown de-margining method"):
        implied_probabilities(ODDS_1X2, "bogus")


@pytest.mark.parametrize("method", METHODS)
def test_matches_penaltyblog(method: str) -> None:
    implied = pytest.importorskip("penaltyblog.implied")
    for row in ODDS_1X2:
        expected = implied.calculate_implied(row.tolist(), method=method).probabilities
        np.testing.assert_allclose(implied_probabilities(row, method), expected, atol=1e-9)
