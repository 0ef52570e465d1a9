"""Settlement: 1X2, over/under and Asian handicap results, labels and profits (quarter lines)."""

from __future__ import annotations

import numpy as np
import pytest

from marketcast.labels.football import (
    asian_handicap_label,
    asian_handicap_profit,
    asian_handicap_result,
    bet_profit,
    outcome_1x2,
    outcome_over_under,
    over_under_result,
    profit_matrix,
    settle,
)

# (home line, goal difference, result of a home bet, profit at odds 1.9)
AH_CASES = [
    # whole lines
    (0.0, 0, 0.0, 0.0),
    (0.0, 1, 1.0, 0.9),
    (0.0, -1, -1.0, -1.0),
    (-1.0, 1, 0.0, 0.0),
    (-1.0, 2, 1.0, 0.9),
    (-1.0, 0, -1.0, -1.0),
    (1.0, -1, 0.0, 0.0),
    (1.0, 0, 1.0, 0.9),
    (-2.0, 2, 0.0, 0.0),
    # half lines
    (-0.5, 0, -1.0, -1.0),
    (-0.5, 1, 1.0, 0.9),
    (0.5, 0, 1.0, 0.9),
    (0.5, -1, -1.0, -1.0),
    (-1.5, 1, -1.0, -1.0),
    (-1.5, 2, 1.0, 0.9),
    # quarter lines: -0.25 = half on 0, half on -0.5
    (-0.25, 0, -0.5, -0.5),
    (-0.25, 1, 1.0, 0.9),
    (-0.25, -1, -1.0, -1.0),
    # +0.25 = half on 0, half on +0.5
    (0.25, 0, 0.5, 0.45),
    (0.25, -1, -1.0, -1.0),
    (0.25, 1, 1.0, 0.9),
    # -0.75 = half on -0.5, half on -1
    (-0.75, 0, -1.0, -1.0),
    (-0.75, 1, 0.5, 0.45),
    (-0.75, 2, 1.0, 0.9),
    # +0.75 = half on +0.5, half on +1
    (0.75, -1, -0.5, -0.5),
    (0.75, 0, 1.0, 0.9),
    (0.75, -2, -1.0, -1.0),
    # -1.25 = half on -1, half on -1.5
    (-1.25, 1, -0.5, -0.5),
    (-1.25, 2, 1.0, 0.9),
    (-1.25, 0, -1.0, -1.0),
    # +1.25 = half on +1, half on +1.5
    (1.25, -1, 0.5, 0.45),
    (1.25, -2, -1.0, -1.0),
    # -1.75 = half on -1.5, half on -2
    (-1.75, 2, 0.5, 0.45),
    (-1.75, 1, -1.0, -1.0),
    (-1.75, 3, 1.0, 0.9),
    # +1.75 = half on +1.5, half on +2
    (1.75, -2, -0.5, -0.5),
    (1.75, -1, 1.0, 0.9),
    # -2.25 = half on -2, half on -2.5
    (-2.25, 2, -0.5, -0.5),
    (-2.25, 3, 1.0, 0.9),
]


@pytest.mark.parametrize(("line", "goal_diff", "result", "profit"), AH_CASES)
def test_asian_handicap_home_bet(line: float, goal_diff: int, result: float, profit: float) -> None:
    got = asian_handicap_result([goal_diff], line)
    assert got[0] == result
    assert asian_handicap_profit(got, 1.9)[0] == pytest.approx(profit, abs=1e-12)


def test_asian_handicap_vectorised_matches_cases() -> None:
    lines = np.array([c[0] for c in AH_CASES])
    diffs = np.array([c[1] for c in AH_CASES])
    expected = np.array([c[2] for c in AH_CASES])
    np.testing.assert_array_equal(asian_handicap_result(diffs, lines), expected)


@pytest.mark.parametrize("line", np.arange(-3.0, 3.01, 0.25))
def test_quarter_lines_are_the_mean_of_their_neighbours(line: float) -> None:
    diffs = np.arange(-5, 6)
    result = asian_handicap_result(diffs, line)
    if (line * 4) % 2 == 1:
        neighbours = (
            asian_handicap_result(diffs, line - 0.25) + asian_handicap_result(diffs, line + 0.25)
        ) / 2
        np.testing.assert_array_equal(result, neighbours)
    else:
        np.testing.assert_array_equal(result, np.sign(diffs + line))
    assert set(np.unique(result)) <= {-1.0, -0.5, 0.0, 0.5, 1.0}


def test_away_side_is_the_mirror_of_home() -> None:
    hg = np.array([0, 1, 2, 0, 3])
    ag = np.array([0, 0, 1, 2, 1])
    lines = np.array([-0.25, -0.75, 0.25, 0.5, -2.0])
    results = asian_handicap_result(hg - ag, lines)
    odds = np.tile([1.9, 2.0], (5, 1))
    profits = profit_matrix("ah", odds, hg, ag, lines)
    np.testing.assert_allclose(profits[:, 0], asian_handicap_profit(results, 1.9))
    np.testing.assert_allclose(profits[:, 1], asian_handicap_profit(-results, 2.0))
    # gd 0 at -0.25: home half loss, away half win at 2.0
    np.testing.assert_allclose(profits[0], [-0.5, 0.5])


def test_asian_handicap_label() -> None:
    labels = asian_handicap_label([0, 1, 1, 0, 2, -1], [-0.25, -0.75, -1.0, 0.0, -1.5, 0.75])
    np.testing.assert_array_equal(labels, [1, 0, -1, -1, 0, 1])


def test_line_not_a_quarter_multiple_raises() -> None:
    with pytest.raises(ValueError, match=r"multiple of 0\.25"):
        asian_handicap_result([0], 0.3)


def test_missing_line_gives_nan() -> None:
    result = asian_handicap_result([1, 1], [np.nan, -0.5])
    assert np.isnan(result[0])
    assert result[1] == 1.0
    assert asian_handicap_label([1], [np.nan])[0] == -1


def test_outcome_1x2() -> None:
    np.testing.assert_array_equal(outcome_1x2([3, 1, 0, 2], [0, 1, 1, 2]), [0, 1, 2, 1])


def test_over_under() -> None:
    np.testing.assert_array_equal(outcome_over_under([1, 2, 0, 3], [1, 1, 0, 3]), [1, 0, 1, 0])
    # integer line: a push is -1
    np.testing.assert_array_equal(outcome_over_under([1, 2], [2, 2], 3.0), [-1, 0])
    # quarter line 2.25 on 2 goals: over bet half loses
    np.testing.assert_array_equal(over_under_result([2, 3], 2.25), [-0.5, 1.0])
    np.testing.assert_array_equal(over_under_result([2, 3], 2.75), [-1.0, 0.5])


def test_settle_dispatch() -> None:
    hg, ag = np.array([2, 1, 0]), np.array([1, 1, 0])
    np.testing.assert_array_equal(settle("1x2", hg, ag), [0, 1, 1])
    np.testing.assert_array_equal(settle("ou25", hg, ag), [0, 1, 1])
    np.testing.assert_array_equal(settle("ah", hg, ag, [-1.0, 0.25, -0.25]), [-1, 0, 1])
    with pytest.raises(ValueError, match="needs a line"):
        settle("ah", hg, ag)


def test_profit_matrix_1x2_and_ou() -> None:
    odds = np.array([[2.0, 3.5, 4.0], [2.5, 3.0, 3.0]])
    np.testing.assert_allclose(
        profit_matrix("1x2", odds, [1, 0], [1, 2]), [[-1, 2.5, -1], [-1, -1, 2.0]]
    )
    np.testing.assert_allclose(
        profit_matrix("ou25", [[1.8, 2.1], [1.9, 1.95]], [2, 1], [1, 0]),
        [[0.8, -1.0], [-1.0, 0.95]],
    )


def test_profit_matrix_nan_odds_and_goals() -> None:
    odds = np.array([[np.nan, 3.5, 4.0], [2.0, 3.0, 3.0]])
    profits = profit_matrix("1x2", odds, [1.0, np.nan], [0.0, 1.0])
    assert np.isnan(profits[0, 0])
    np.testing.assert_allclose(profits[0, 1:], [-1.0, -1.0])
    assert np.all(np.isnan(profits[1]))


def test_bet_profit() -> None:
    got = bet_profit(
        "ah",
        [0, 1, -1, 0],
        [1.9, 2.0, 1.9, 1.9],
        [1, 1, 2, 2],
        [1, 0, 0, 0],
        [-0.25, -0.75, 0.0, -2.0],
    )
    np.testing.assert_allclose(got, [-0.5, -0.5, 0.0, 0.0])


def test_a_line_a_hair_off_its_quarter_settles_as_the_quarter() -> None:
    """A line within 1e-12 of a quarter passed the check but settled on its raw value: at
    -0.75 + 1e-12 a one-goal home win was a full win, not a half win."""
    margins = np.repeat(np.arange(-5, 6), 29)
    lines = np.tile(np.arange(-14, 15) / 4.0, 11)
    exact = asian_handicap_result(margins, lines)
    for nudge in (1e-12, -1e-12):
        np.testing.assert_array_equal(asian_handicap_result(margins, lines + nudge), exact)
        np.testing.assert_array_equal(
            over_under_result(margins + 5, lines + 3.5 + nudge),
            over_under_result(margins + 5, lines + 3.5),
        )
    assert asian_handicap_result([1], [-0.75 + 1e-12])[0] == 0.5
    np.testing.assert_allclose(
        profit_matrix("ah", [[1.9, 2.0]], [1], [0], [-0.75 + 1e-12]), [[0.45, -0.5]]
    )


def test_a_bad_line_names_its_row() -> None:
    with pytest.raises(ValueError, match=r"^row 2: line -0\.6 is not a multiple of 0\.25$"):
        asian_handicap_result([0, 1, 1], [0.25, -0.5, -0.6])
