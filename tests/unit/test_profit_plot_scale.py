"""The profit plot keeps the curves near the market readable beside a curve hundreds of units
away (a Kelly-staked model far from the price)."""

from __future__ import annotations

from marketcast.reports.plots import profit_curves_svg, profit_linear_range


def _curve(profit: list[float]) -> dict[str, list]:
    days = [f"2023-08-{day:02d}T15:00:00Z" for day in range(1, len(profit) + 1)]
    return {"kickoff_utc": days, "cumulative_profit": profit}


def test_curves_far_apart_get_a_log_scale_past_the_near_ones_reach() -> None:
    """session 22's note: on the run's 1X2 page elo and Dixon-Coles fell ~470 units and the
    market, LightGBM and neural curves (within ~15 units of 0) were flat lines on the axis."""
    near = {"market": _curve([1.0, -4.0, 12.0]), "lightgbm": _curve([-2.0, 3.0, 8.0])}
    svg = profit_curves_svg({**near, "elo": _curve([-50.0, -200.0, -470.0])})
    assert "log scale past ±20" in svg
    # curves of one size stay on a plain scale
    assert "log scale" not in profit_curves_svg(near)
    assert "cumulative profit (units)" in profit_curves_svg(near)


def test_the_linear_range_is_the_reach_of_the_near_curves_rounded_up() -> None:
    assert profit_linear_range([[0.4], [-300.0]]) == 1.0  # at least one unit
    assert profit_linear_range([[-30.0], [250.0], [-2999.0]]) == 500.0
    assert profit_linear_range([[float("nan"), 3.0], [400.0]]) == 5.0
    assert profit_linear_range([[0.0], [0.0]]) is None
    assert profit_linear_range([[-90.0], [800.0]]) is None  # within ten times: one scale
