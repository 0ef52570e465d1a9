"""Names with lone surrogates (from ``surrogateescape``-decoded data) still plot."""

from __future__ import annotations

from marketcast.reports.plots import profit_curves_svg, ratio_bar_svg, reliability_svg

BAD = "Bayern M\udcfcnchen"  # a lone surrogate, as surrogateescape leaves a latin-1 byte


def test_ratio_bars_with_a_lone_surrogate_in_names() -> None:
    svg = ratio_bar_svg({BAD: {f"elo {BAD}": 0.98, "market": 1.0}})
    assert svg.startswith("<svg")
    assert "Bayern M?nchen" in svg
    svg.encode("utf-8")  # strict: the SVG holds no surrogate


def test_profit_curves_and_reliability_with_a_lone_surrogate_in_names() -> None:
    curves = {BAD: {"kickoff_utc": ["2024-01-01T15:00:00Z"], "cumulative_profit": [1.5]}}
    reliability = {BAD: {BAD: [{"p_mean": 0.5, "freq": 0.4, "n": 10}]}}
    for svg in (profit_curves_svg(curves), reliability_svg(reliability)):
        assert svg.startswith("<svg")
        assert "Bayern M?nchen" in svg
