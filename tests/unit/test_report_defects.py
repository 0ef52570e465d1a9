"""Report page defects found by a probe of the football run report (runs/<id>/report.html)."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from marketcast.reports import load_report, reliability_svg, render_html, write_report

SVG_NS = "{http://www.w3.org/2000/svg}"
DASH = "\u2013"
HOSTILE = '<script>alert("x")</script>'


def _market(engines: dict[str, float], champion: str | None, **extra: Any) -> dict[str, Any]:
    """One market's evaluation block: ``engines`` is model -> log loss."""
    section: dict[str, Any] = {
        "engines": {name: {"log_loss": ll, "rps": 0.2, "n": 300} for name, ll in engines.items()},
        "market": {"closing": {"log_loss": 0.68, "n": 300}},
        **extra,
    }
    if champion is not None:
        section["champion"] = champion
    return section


def _page(section: dict[str, Any], promotion: dict[str, Any] | None = None) -> str:
    report: dict[str, Any] = {"evaluation": {"markets": {"ou25": section}}}
    if promotion is not None:
        report["promotion"] = {"ou25": promotion}
    return render_html(report)


def _badged_rows(page: str) -> list[str]:
    """Model names of the headline rows carrying the champion badge."""
    rows = re.findall(r'<tr class="champion"><td>(.*?)</td>', page)
    return [re.sub(r"<[^>]+>", "", row).removesuffix("champion") for row in rows]


def _lead(page: str) -> str:
    """The paragraph naming the champion above the headline table."""
    return re.search(r"<p>Champion.*?</p>", page).group(0)


def _headline_cells(page: str, model: str) -> list[str]:
    badge = r'(?:<span class="badge">[^<]*</span>)?'
    row = re.search(rf"<tr[^>]*><td>(?:<span[^>]*></span>)?{model}{badge}</td>.*?</tr>", page)
    assert row is not None, f"no headline row for {model}"
    return re.findall(r"<td[^>]*>(.*?)</td>", row.group(0))


# --------------------------------------------------------------------------- 1. champion


def test_registry_champion_outside_the_run_is_named_and_no_row_is_badged() -> None:
    """Models [market, elo], registry champion dixon_coles (promoted earlier by hand): the page
    said "Champion: market" and badged the market row, the promotion block "Keep dixon_coles"."""
    promotion = {
        "promote": False,
        "champion": "dixon_coles",
        "reason": "dixon_coles v3 stays: this run did not evaluate it (models: market, elo)",
        "registry_champion": "dixon_coles",
    }
    page = _page(_market({"market": 0.69, "elo": 0.70}, "market"), promotion)
    lead = _lead(page)
    assert "<strong>dixon_coles</strong>, not among this run&rsquo;s models" in lead
    assert "Champion (registry, after this run)" in lead
    assert _badged_rows(page) == []
    assert "Champion: <strong>market</strong>" not in page
    # the in-run pick differs, so it is still shown, as what it is
    assert (
        "Best in this run&rsquo;s own evaluation (its models only): <strong>market</strong>" in lead
    )
    # and it agrees with the promotion block below
    assert "Registry champion after this run: <strong>dixon_coles</strong>" in page


def test_registry_champion_in_the_run_carries_the_badge() -> None:
    promotion = {
        "promote": True,
        "champion": "market",
        "challenger": "elo",
        "reason": "elo beats market",
        "registry_champion": "elo",
    }
    page = _page(_market({"market": 0.69, "elo": 0.70}, "market"), promotion)
    assert _badged_rows(page) == ["elo"]
    assert "Champion (registry, after this run): <strong>elo</strong>" in _lead(page)
    assert "Best in this run" in _lead(page)
    # when both agree there is nothing to add
    page = _page(_market({"market": 0.69, "elo": 0.70}, "elo"), promotion)
    assert _badged_rows(page) == ["elo"]
    assert "Best in this run" not in page


def test_registry_with_no_champion_badges_nothing() -> None:
    promotion = {"promote": False, "champion": "market", "registry_champion": "none"}
    page = _page(_market({"market": 0.69, "elo": 0.70}, "market"), promotion)
    assert _badged_rows(page) == []
    assert "Champion (registry, after this run): none." in _lead(page)


def test_without_a_registry_champion_the_in_run_pick_is_the_champion() -> None:
    """``evaluate football`` output (no registry) keeps the in-run champion, as before."""
    page = _page(_market({"market": 0.69, "elo": 0.70}, "market"), {"promote": False})
    assert _badged_rows(page) == ["market"]
    assert "<p>Champion: <strong>market</strong></p>" in page


def test_registry_champion_is_escaped() -> None:
    promotion = {"promote": False, "champion": HOSTILE, "registry_champion": HOSTILE}
    page = _page(_market({"market": 0.69}, "market"), promotion)
    assert "<script" not in page.lower()
    assert "&lt;script&gt;" in _lead(page)


# --------------------------------------------------------------------------- 2. hollow bins


def _marker_styles(svg: str) -> list[dict[str, str]]:
    """The style declarations of each reliability marker, in drawing order."""
    root = ET.fromstring(svg)
    group = next(
        g for g in root.iter(f"{SVG_NS}g") if g.get("id", "").endswith("-PathCollection_1")
    )
    styles = []
    for path in group.iter(f"{SVG_NS}path"):
        pairs = (d.split(":", 1) for d in path.get("style", "").split(";") if d.strip())
        styles.append({k.strip(): v.strip() for k, v in pairs})
    return styles


def test_thin_reliability_bins_are_drawn_hollow_in_the_svg() -> None:
    """``scatter(facecolors="none", alpha=0.8)`` wrote ``fill-opacity`` with no ``fill``, so
    browsers filled the thin bins black (SVG's default fill)."""
    bins = [{"p_mean": 0.2, "freq": 0.3, "n": 3}, {"p_mean": 0.8, "freq": 0.75, "n": 100}]
    hollow, solid = _marker_styles(
        reliability_svg({"elo": {"home": bins}}, colors={"elo": "#1f77b4"})
    )
    assert hollow["fill"] == "none"
    assert hollow["stroke"] == "#1f77b4"
    assert solid["fill"] == "#1f77b4"
    # no marker is left to the black default
    for style in (hollow, solid):
        assert "fill" in style


# --------------------------------------------------------------------------- 3. not applied


def _decision_text(page: str) -> str:
    block = re.search(r'<div class="decision[^"]*">(.*?)</div>', page, flags=re.S).group(1)
    return html.unescape(re.sub(r"<[^>]+>", "", block))


def test_a_refresh_not_applied_is_not_called_a_promotion() -> None:
    """dixon_coles was never promoted: what failed was the refresh of the incumbent, market."""
    decision = {
        "promote": False,
        "champion": "market",
        "challenger": "dixon_coles",
        "reason": "dixon_coles is not better than market",
        "not_applied": "the champion of football/ou25 changed after it was read",
        "registry_champion": "lightgbm",
    }
    text = _decision_text(render_html({"promotion": {"ou25": decision}}))
    assert "Promotion of dixon_coles" not in text
    assert "Refresh of the champion market (its refit on this run\u2019s matches) not applied" in (
        text
    )
    assert "dixon_coles was not promoted." in text
    assert "Not applied: the champion of football/ou25 changed after it was read" in text


FIRST = "market 20261123T031926Z: no champion yet"


@pytest.mark.parametrize(
    ("decision", "verdict"),
    [
        (
            {"promote": True, "champion": "market", "challenger": "elo"},
            "Promotion of elo over market not applied.",
        ),
        (
            {"promote": False, "champion": "market", "reason": "champion market refreshed: refit"},
            "Refresh of the champion market (its refit on this run\u2019s matches) not applied.",
        ),
        (
            {"promote": True, "challenger": "elo", "reason": "no champion yet"},
            "Installing elo as the first champion not applied.",
        ),
        (
            {"promote": False, "champion": "market", "challenger": "elo", "first_champion": FIRST},
            "Installing market as the first champion not applied; elo was not promoted.",
        ),
        (
            {"promote": True, "champion": "market", "challenger": "elo", "first_champion": FIRST},
            "Installing market as the first champion and promoting elo over it not applied.",
        ),
        (
            {"promote": False, "champion": "dixon_coles", "reason": "dixon_coles v3 stays"},
            "Keep dixon_coles; this run planned no change to it.",
        ),
    ],
    ids=[
        "promotion",
        "refresh_only",
        "bootstrap",
        "first_champion_kept",
        "first_champion_then_promotion",
        "nothing_planned",
    ],
)
def test_not_applied_names_what_was_not_applied(decision: dict[str, Any], verdict: str) -> None:
    decision = {**decision, "not_applied": "changed after it was read"}
    text = _decision_text(render_html({"promotion": {"1x2": decision}}))
    assert text.strip().splitlines()[0] == verdict


@pytest.mark.parametrize(
    ("promote", "verdict"),
    [
        (False, "First champion: market installed (there was none yet); elo not promoted."),
        (True, "First champion: market installed (there was none yet); elo then promoted over it."),
    ],
    ids=["kept", "promoted"],
)
def test_a_first_champion_with_challengers_is_not_kept(promote: bool, verdict: str) -> None:
    """A first run of [market, elo] installed market and tested elo against it: the block said
    "Keep market", of a champion there was not before the run."""
    decision = {
        "promote": promote,
        "champion": "market",
        "challenger": "elo",
        "reason": "elo against market on paired log loss",
        "first_champion": FIRST,
    }
    text = _decision_text(render_html({"promotion": {"1x2": decision}}))
    assert text.strip().splitlines()[0] == verdict
    assert "Keep" not in text


# --------------------------------------------------------------------------- 4. CLV subset


def test_clv_says_over_how_many_bets_when_some_had_no_closing_price() -> None:
    backtest = {
        "elo": {"clv": 0.0123, "n_bets": 302, "n_bets_without_closing": 119, "roi": 0.01},
        "market": {"clv": -0.004, "n_bets": 50, "n_bets_without_closing": 0, "roi": 0.0},
    }
    page = _page(_market({"market": 0.69, "elo": 0.70}, "market", backtest=backtest))
    assert (
        _headline_cells(page, "elo")[-1] == '+1.23%<br><span class="ci">over 183 of 302 bets</span>'
    )
    assert _headline_cells(page, "market")[-1] == "-0.40%"
    assert "the mean is over the other bets" in page


def test_clv_cell_is_plain_when_every_bet_had_a_closing_price() -> None:
    backtest = {"elo": {"clv": 0.0123, "n_bets": 302, "n_bets_without_closing": 0}}
    page = _page(_market({"elo": 0.70}, "elo", backtest=backtest))
    assert _headline_cells(page, "elo")[-1] == "+1.23%"
    assert "over " not in page.split("<table>")[1].split("</table>")[0]
    assert "the mean is over the other bets" not in page


# --------------------------------------------------------------------------- 5. drawdown note


def test_profit_curve_says_the_drawdown_is_per_kick_off() -> None:
    curves = {
        "elo": {
            "kickoff_utc": ["2023-08-12T14:00:00Z", "2023-08-12T14:00:00Z"],
            "cumulative_profit": [-1.0, 0.5],
        }
    }
    page = render_html({"profit_curves": {"1x2": curves}})
    caption = re.search(r"<h3>Cumulative profit</h3>.*?<figcaption>(.*?)</figcaption>", page, re.S)
    assert caption is not None
    assert "The curve steps at every bet" in caption.group(1)
    assert "measured after all bets of one kick-off have settled" in caption.group(1)


# --------------------------------------------------------------------------- 6. nothing scored


def _nothing_scored_report() -> dict[str, Any]:
    """A market where no match could be scored: scores null, no bins, no bet staked."""
    nothing = {"log_loss": None, "rps": None, "n": 0}
    return {
        "evaluation": {
            "markets": {
                "ah": {
                    "engines": {"elo": {**nothing, "brier": None, "ece": None}},
                    "market": {"closing": nothing, "prematch": nothing},
                    "backtest": {
                        "elo": {
                            "roi": None,
                            "roi_ci": [None, None],
                            "n_bets": 0,
                            "profit_units": 0.0,
                            "max_drawdown": 0.0,
                            "clv": None,
                            "n_bets_without_closing": 0,
                        }
                    },
                    "champion": "elo",
                    "n": 0,
                    "not_scored": {"handicap_line_moved": 40},
                }
            }
        },
        "reliability": {"ah": {"elo": {"home": [], "away": []}, "closing": {"home": []}}},
    }


def test_a_market_with_nothing_scored_shows_notes_not_empty_axes() -> None:
    page = render_html(_nothing_scored_report())
    section = re.search(r'<section id="market-ah">.*?</section>', page, flags=re.S).group(0)
    assert "<h3>Reliability</h3>" in section
    assert "No reliability data: no forecast was scored in this market." in section
    assert "<svg" not in section
    assert _headline_cells(section, "elo")[7] == DASH  # ROI: one dash, not "–[–, –]"


def test_reliability_svg_without_bins_is_the_note() -> None:
    svg = reliability_svg(_nothing_scored_report()["reliability"]["ah"])
    root = ET.fromstring(svg)
    texts = "".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    assert "no reliability data" in texts
    assert "forecast probability" not in texts  # no axes drawn


def test_roi_keeps_a_partial_interval() -> None:
    backtest = {"elo": {"roi": None, "roi_ci": [None, 0.1], "n_bets": 3}}
    page = _page(_market({"elo": 0.70}, "elo", backtest=backtest))
    assert _headline_cells(page, "elo")[7] == f'{DASH}<br><span class="ci">[{DASH}, +10.00%]</span>'


# --------------------------------------------------------------------------- 7. no forecasts


def test_engines_without_forecasts_are_named_under_the_table() -> None:
    section = _market(
        {"market": 0.69, "elo": 0.70},
        "market",
        engines_without_forecasts=["dixon_coles", HOSTILE, "elo"],
    )
    page = _page(section)
    note = re.search(r"<p class=\"note\">No forecast on any test match.*?</p>", page).group(0)
    assert "<strong>dixon_coles</strong>" in note
    assert "&lt;script&gt;" in note
    assert "<strong>elo</strong>" not in note  # it has a row: it did forecast
    assert "<script" not in page.lower()
    assert "No forecast on any test match" not in _page(
        _market({"elo": 0.70}, "elo", engines_without_forecasts=[])
    )


def test_a_market_kept_without_challenger_is_not_said_to_have_one() -> None:
    page = render_html(
        {
            "promotion": {
                "1x2": {
                    "promote": False,
                    "champion": "market",
                    "reason": "no challenger: only the market was evaluated",
                }
            }
        }
    )
    assert "Keep <strong>market</strong>; no challenger was evaluated." in page
    assert "the challenger is not promoted" not in page  # was, above a reason saying none


def test_markets_named_without_a_safe_character_get_distinct_ids() -> None:
    reliability = {"m": {"home": [{"p_mean": 0.5, "freq": 0.5, "n": 20}]}}
    page = render_html({"reliability": {"ü": reliability, "é": reliability}})
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) > 2
    assert len(ids) == len(set(ids))  # was: 70 repeated, both markets' ids made from "x"
    assert 'id="market-1x2"' in render_html({"reliability": {"1x2": reliability}})


def test_a_name_with_a_lone_surrogate_writes_both_files(tmp_path: Path) -> None:
    """A file name read with surrogateescape reaches the report; encoding the page raised once
    report.json was in place, so the pair was half written (and the JSON could not be
    rendered again)."""
    report = {"run_id": "r", "data": {"issues": [{"file": "E0/x\udcff.csv", "count": 1}]}}
    json_path, html_path = write_report(tmp_path, report)
    assert "\\udcff" in json_path.read_text(encoding="ascii")
    assert "E0/x?.csv" in html_path.read_text(encoding="utf-8")
    again = tmp_path / "again"
    write_report(again, load_report(json_path))
    assert (again / "report.html").read_bytes() == html_path.read_bytes()


def _timings_rows(page: str) -> dict[str, tuple[str, str]]:
    section = page.split('<section id="timings">')[1].split("</section>")[0]
    cells = re.findall(
        r'<tr[^>]*><td>(?:<strong>)?([^<]+)(?:</strong>)?</td><td class="num">([^<]*)</td>'
        r"<td[^>]*>([^<]*)</td></tr>",
        section,
    )
    return {label: (secs, share) for label, secs, share in cells}


def test_a_step_without_its_time_leaves_the_total_and_shares_unknown() -> None:
    """A missing time was left out of the total: 2.0 s shown as the whole run, 100% of it."""
    rows = _timings_rows(render_html({"timings_s": {"walk_forward": 2.0, "scoring": None}}))
    assert rows["walk_forward"] == ("2.0", DASH)
    assert rows["total"] == (DASH, "")
    rows = _timings_rows(render_html({"timings_s": {"walk_forward": 3.0, "scoring": 1.0}}))
    assert rows["walk_forward"] == ("3.0", "75.0%")
    assert rows["total"] == ("4.0", "")


def _bets(bankroll: float, lowest: float) -> dict[str, Any]:
    return {
        "bankroll_exhausted": True,
        "lowest_bankroll_units": lowest,
        "n_bets": 3,
        "config": {"bankroll_units": bankroll},
    }


def test_the_bankroll_named_on_the_page_is_the_backtests_whatever_their_order() -> None:
    """The caption said a 100-unit bankroll beside terms saying 1,000, and the note took the
    first exhausted backtest's bankroll in the dict's order."""
    market = _market({"a": 0.67}, None)
    market["backtest"] = {"a": _bets(1000, -1500)}
    report = {
        "evaluation": {"markets": {"ou25": market}},
        "profit_curves": {"ou25": {"a": {"cumulative_profit": [-500.0, -1500.0]}}},
    }
    page = render_html(report)
    assert "notional 1,000-unit bankroll, bets at pre-match prices" in page
    assert "100-unit" not in page
    both = [("a", _bets(100, -5)), ("b", _bets(1000, -50))]
    pages = {
        render_html({"evaluation": {"markets": {"ou25": {"backtest": dict(order)}}}})
        for order in (both, both[::-1])
    }
    [page] = pages  # one page, whichever order the backtests came in
    assert "The notional bankroll ran out" in page


def test_a_number_beyond_a_float_is_shown_as_missing(tmp_path: Path) -> None:
    """An integer too large for a float (valid JSON) crashed the page with OverflowError."""
    json_path, _ = write_report(tmp_path, {"run_id": "x", "evaluation": {"n_matches": 10**400}})
    assert json_path.exists()
