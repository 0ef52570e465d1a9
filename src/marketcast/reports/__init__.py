"""Run reports: report.json plus one self-contained report.html with inline SVG plots."""

from __future__ import annotations

from marketcast.reports.html import market_ratios, render_html
from marketcast.reports.plots import profit_curves_svg, ratio_bar_svg, reliability_svg
from marketcast.reports.writer import load_report, to_jsonable, write_report

__all__ = [
    "load_report",
    "market_ratios",
    "profit_curves_svg",
    "ratio_bar_svg",
    "reliability_svg",
    "render_html",
    "to_jsonable",
    "write_report",
]
