"""What a bettor reading the HTML report needs: coverage, yardstick, staking terms, precision,
the promotion test's direction and level, and accessible plots and tables."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marketcast.promotion import PromotionRule, decide_promotion, shown_gain, shown_p_value
from marketcast.reports import reliability_svg, render_html

GOLDEN_INPUT = Path(__file__).parents[1] / "golden" / "small_report_input.json"
SVG_NS = "{http://www.w3.org/2000/svg}"
STAKING = {
    "bankroll_units": 100.0,
    "kelly_fraction": 0.25,
    "max_stake_fraction": 0.05,
    "min_edge": 0.02,
    "n_bootstrap": 1000,
    "seed": 1,
    "staking": "fractional_kelly",
}


@pytest.fixture
def report() -> dict[str, Any]:
    """The golden test's small report with the keys a real football run adds, no plots."""
    report = json.loads(GOLDEN_INPUT.read_text(encoding="utf-8"))
    for key in ("reliability", "profit_curves", "per_league"):  # plots are slow, tested apart
        report.pop(key)
    markets = report["evaluation"]["markets"]
    markets["ah"] = {
        "engines": {"lightgbm": {"log_loss": 0.69, "n": 1097}},
        "market": {
            "closing": {"log_loss": 0.694, "n": 1097, "sources": {"pinnacle": 1086, "avg": 11}},
        },
        "backtest": {"lightgbm": {"roi": 0.04, "n_bets": 1122, "clv": 0.03, "config": STAKING}},
        "n": 1097,
        "not_scored": {
            "handicap_line_moved": 1538,
            "quarter_line": 1544,
            "unsettled": 315,
            "no_forecast": 0,
        },
        "backtest_rows": 1288,
        "odds_taken": "best",
        "exchange_commission": 0.05,
    }
    markets["1x2"]["market"]["closing"]["sources"] = {"pinnacle": 1288}
    markets["1x2"].update(
        n=1288, not_scored={"no_prematch_price": 1}, backtest_rows=1288, odds_taken="b365"
    )
    return report


def _section(page: str, market: str) -> str:
    return re.search(rf'<section id="market-{market}">.*?</section>', page, flags=re.S).group(0)


def _text(html: str) -> str:
    """Visible text with tags dropped and whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --------------------------------------------------------------------------- 1. coverage


def test_scored_matches_not_scored_reasons_and_backtest_rows(report: dict[str, Any]) -> None:
    ah = _text(_section(render_html(report), "ah"))
    assert "Scored: 1,097 of the 4,494 matches evaluated in this market." in ah
    assert "quarter_line 1,544" in ah
    assert "handicap_line_moved 1,538" in ah
    assert "unsettled 315" in ah
    assert "no_forecast" not in ah  # a reason with no match is left out
    assert "Backtest: runs on 1,288 matches" in ah
    # the reasons that do not keep a match from being bet, not pushes alone (the handicap
    # bets outnumbered the scored matches mostly through moved lines)
    assert (
        "That includes matches left unscored only by a check the bets do not need (a line that "
        "moved by the close: bet and settled on the pre-match line; a push on a whole line: bet "
        "and refunded, profit 0)" in ah
    )
    one = _text(_section(render_html(report), "1x2"))
    assert "Scored: 1,288 of the 1,289 matches evaluated" in one
    assert "no_prematch_price 1" in one
    assert "That includes" not in one  # nothing backtested beyond the scored matches


def test_an_unscored_but_bet_match_is_explained_by_its_own_markets_reasons(
    report: dict[str, Any],
) -> None:
    """Over/under without closing prices (before 2019-20) spoke of whole handicap lines."""
    ou = report["evaluation"]["markets"]["ou25"]
    ou.update(n=500, not_scored={"no_closing_price": 100}, backtest_rows=600)
    text = _text(_section(render_html(report), "ou25"))
    assert "(no closing price: it is needed only to score)" in text
    assert "handicap" not in text.split("Backtest:")[1].split("</p>")[0]


# --------------------------------------------------------------------------- 2. yardstick


def test_closing_yardstick_sources_and_mix_warning(report: dict[str, Any]) -> None:
    page = render_html(report)
    ah = _section(page, "ah")
    assert "Closing yardstick: Pinnacle 1,086, closing average 11" in _text(ah)
    assert '<p class="warning">' in ah
    assert "mixes sources" in ah
    one = _section(page, "1x2")
    assert "Closing yardstick: Pinnacle 1,288" in _text(one)
    assert "warning" not in one


# --------------------------------------------------------------------------- 3. terms


def test_pricing_staking_and_clv_definition(report: dict[str, Any]) -> None:
    page = render_html(report)
    ah = _text(_section(page, "ah"))
    assert "How bets were priced and staked" in ah
    assert "best pre-match price across bookmakers" in ah
    assert "net of the 5.0% exchange commission" in ah
    assert "rule fractional_kelly" in ah
    assert "Kelly fraction 0.25" in ah
    assert "min edge 0.02" in ah
    assert "stake cap 5% of the bankroll" in ah
    assert "100-unit notional bankroll" in ah
    assert "do not compound" in ah
    assert "odds taken \u00d7 de-margined closing probability \u2212 1" in ah
    assert "does not depend on the result" in ah
    # a named bookmaker, and the settings taken from the run configuration
    one = _text(_section(page, "1x2"))
    assert "the pre-match price of b365" in one
    assert "Kelly fraction 0.25" in one  # config.backtest.fraction
    assert "min edge 0.02" in one


# --------------------------------------------------------------------------- 4. precision


def test_ratios_show_four_decimals_so_the_best_never_ties_on_screen() -> None:
    per_league = {
        "E0": {
            "1x2": {
                "engines": {"a": {"log_loss": 1.0}, "b": {"log_loss": 1.0}},
                "market": {"closing": {"log_loss": 1.0, "n": 10}},
                "ratio_to_closing": {"a": 1.01231, "b": 1.01249},
            }
        }
    }
    section = {"engines": {"a": {"log_loss": 1.01231}}, "ratio_to_closing": {"a": 1.01231}}
    page = render_html({"evaluation": {"markets": {"1x2": section}}, "per_league": per_league})
    assert '<td class="num worse">1.0123</td>' in page  # headline
    assert '<td class="num worse best">1.0123</td><td class="num worse">1.0125</td>' in page


# --------------------------------------------------------------------------- 5. promotion


def test_promotion_states_direction_and_holm_level(report: dict[str, Any]) -> None:
    report["promotion"]["ah"] = {
        "promote": False,
        "champion": "market",
        "challenger": "lightgbm",
        "mean_difference": -0.0008,
        "p_value": 0.82,
        "n": 1097,
        "alpha_used": 0.016666666666666666,
        "challengers_tested": 3,
        "reason": "log_loss gain -0.0008 per match over 1,097 matches: not better",
        "rule": {"alpha": 0.05, "metric": "log_loss"},
    }
    block = _text(_section(render_html(report), "ah"))
    assert "Keep market ; lightgbm is not promoted." in block
    assert (
        "mean difference (log_loss, champion \u2212 challenger per match; positive means the "
        "challenger is better) -0.0008"
    ) in block
    assert "Significance level used: 0.01667 (Holm-corrected over 3 challengers tested, " in block
    assert "family alpha 0.05" in block


def test_a_first_champion_is_said_so_not_kept() -> None:
    decision = {
        "promote": True,
        "champion": None,
        "challenger": "market",
        "reason": "no champion yet",
        "n": 1200,
    }
    page = render_html({"promotion": {"1x2": decision}})
    block = re.search(r'<div class="decision[^"]*">.*?</div>', page, flags=re.S).group(0)
    assert "First champion: <strong>market</strong> installed" in block
    assert "Keep" not in block
    assert "Promote" not in block
    decision["promote"] = False  # however the flag reads, nothing was kept
    assert "Keep" not in render_html({"promotion": {"1x2": decision}})


# --------------------------------------------------------------------------- 7. plots, tables


def _line_points(svg: str) -> int:
    """Vertices of the model's curve: the path stroked in the model's colour, 1.2 wide."""
    root = ET.fromstring(svg)
    curves = [
        p.get("d", "")
        for p in root.iter(f"{SVG_NS}path")
        if "stroke: #1f77b4; stroke-width: 1.2" in (p.get("style") or "")
    ]
    assert len(curves) == 2  # the curve, then its legend sample
    return len(re.findall(r"[ML]", curves[0]))


def test_thin_reliability_bins_are_hollow_and_not_joined() -> None:
    bins = [
        {"p_mean": 0.1, "freq": 0.5, "n": 3},  # thin: its own hollow marker
        {"p_mean": 0.3, "freq": 0.3, "n": 200},
        {"p_mean": 0.5, "freq": 0.5, "n": 150},
        {"p_mean": 0.9, "freq": 0.2, "n": 9},  # thin
    ]
    svg = reliability_svg({"m": {"home": bins}})
    assert _line_points(svg) == 2
    assert svg.count("fill-opacity: 0") + svg.count("fill: none") >= 2
    full = reliability_svg({"m": {"home": [{**b, "n": 100} for b in bins]}})
    assert _line_points(full) == 4


def test_every_svg_has_a_title_and_tables_are_labelled() -> None:
    report = json.loads(GOLDEN_INPUT.read_text(encoding="utf-8"))
    page = render_html(report)
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    assert len(svgs) == 6
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.get("role") == "img"
        first = next(iter(root))
        assert first.tag == f"{SVG_NS}title"
        assert first.text
    assert "<title>1X2 (home / draw / away): reliability diagram per outcome</title>" in page
    assert "<th>" not in page
    assert page.count("<th ") == page.count('<th scope="col"')
    assert "<caption>Scores and backtest per model</caption>" in page
    assert "<caption>Ratio to the closing line per league; test window: " in page
    assert "<script" not in page.lower()
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', ""
    )


def test_models_tied_as_shown_are_all_shaded_best(report: dict[str, Any]) -> None:
    """Two ratios equal to 4 decimals (1.00240 and 1.00241) were one shaded, one not."""
    golden = json.loads(GOLDEN_INPUT.read_text(encoding="utf-8"))
    report["per_league"] = golden["per_league"]
    ratios = report["per_league"]["D1"]["1x2"]["ratio_to_closing"]
    ratios.update(dixon_coles=1.00241, lightgbm=1.00240)
    section = _section(render_html(report), "1x2")
    row = re.search(r"<tr><td>D1</td>.*?</tr>", section).group(0)
    assert row.count('class="num better best">1.0024</td>') == 0  # ratio > 1: "worse best"
    assert row.count('class="num worse best">1.0024</td>') == 2


def test_the_decision_figures_read_as_its_reason_writes_them() -> None:
    """The reason said p=0.0862 and a gain of 0.000241, the figures under it 0.08617 and
    0.0002412: one decision at two precisions."""
    rng = np.random.default_rng(7)
    champion = rng.uniform(0.5, 1.5, 4493)
    challenger = champion - 0.000241 + rng.normal(0.0, 0.0117, 4493)
    made = decide_promotion("market", champion, "lightgbm", challenger, PromotionRule())
    decision = made.model_dump(mode="json")
    assert made.p_value is not None
    assert made.mean_difference is not None
    p, gain = shown_p_value(made.p_value), shown_gain(made.mean_difference)
    assert len(f"{made.p_value:.4g}") > len(p)  # the old figure had a digit more
    block = _text(_section(render_html({"promotion": {"1x2": decision}}), "1x2"))
    assert f"p={p} " in block  # the reason
    assert f"p-value {p} \u00b7" in block
    assert f"challenger is better) {gain} \u00b7" in block


def test_each_league_backtest_is_in_the_page(report: dict[str, Any]) -> None:
    """Per-league ROI, bets and CLV were in report.json only."""
    golden = json.loads(GOLDEN_INPUT.read_text(encoding="utf-8"))
    report["per_league"] = golden["per_league"]
    report["per_league"]["D1"]["1x2"]["backtest"] = {
        "lightgbm": {"roi": -0.04603, "n_bets": 254, "clv": 0.032793},
        "market": {"roi": 0.0875, "n_bets": 1292, "clv": None},
    }
    report["per_league"]["E0"]["1x2"]["backtest"] = {
        "lightgbm": {"roi": 0.012, "n_bets": 31, "clv": -0.0049},
    }
    section = _section(render_html(report), "1x2")
    assert "<caption>Backtest per league: ROI, then the number of bets" in section
    d1 = re.search(r"<tr><td>D1</td><td class=\"num\">-4.60%.*?</tr>", section).group(0)
    assert '-4.60%<br><span class="ci">254 bets, CLV +3.28%</span>' in d1
    assert '+8.75%<br><span class="ci">1,292 bets, CLV \u2013</span>' in d1
    e0 = re.search(r"<tr><td>E0</td><td class=\"num\">\+1.20%.*?</tr>", section).group(0)
    assert '+1.20%<br><span class="ci">31 bets, CLV -0.49%</span>' in e0
    assert e0.endswith('<td class="num">\u2013</td></tr>')  # market: not backtested there


def test_a_bankroll_that_ran_out_is_named_under_the_table(report: dict[str, Any]) -> None:
    """Drawdowns of 459 and 471 units on a 100-unit bankroll read like any other figure."""
    bets = report["evaluation"]["markets"]["ah"]["backtest"]["lightgbm"]
    bets.update(lowest_bankroll_units=-359.27, bankroll_exhausted=True, max_drawdown=459.27)
    block = _text(_section(render_html(report), "ah"))
    assert (
        "The notional 100-unit bankroll ran out under lightgbm (lowest -359.27 units) "
        "( bankroll_exhausted ): stakes stay sized on the starting bankroll"
    ) in block
    bets.update(lowest_bankroll_units=12.0, bankroll_exhausted=False)
    assert "ran out" not in _text(_section(render_html(report), "ah"))
