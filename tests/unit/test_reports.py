"""Tests for marketcast.reports: HTML rendering, SVG plots and the atomic report writer."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from marketcast.promotion import decide_promotion
from marketcast.reports import (
    load_report,
    market_ratios,
    profit_curves_svg,
    ratio_bar_svg,
    reliability_svg,
    render_html,
    to_jsonable,
    write_report,
)

GOLDEN_INPUT = Path(__file__).parents[1] / "golden" / "small_report_input.json"
SVG_NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return json.loads(GOLDEN_INPUT.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def page(report: dict[str, Any]) -> str:
    return render_html(report)


def _svgs(page: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", page, flags=re.S)


def _hostile_report() -> dict[str, Any]:
    bins = [{"p_mean": 0.3, "freq": 0.35, "n": 40}, {"p_mean": 0.6, "freq": 0.55, "n": 25}]
    return {
        "run_id": f"run {HOSTILE}",
        "git_sha": "<b>sha</b>",
        "evaluation": {
            "markets": {
                "1x2": {
                    "engines": {HOSTILE: {"log_loss": 0.99, "rps": 0.2, "n": 10}},
                    "market": {"closing": {"log_loss": 0.97, "n": 10}},
                    "backtest": {HOSTILE: {"roi": 0.1, "n_bets": 3}},
                    "champion": HOSTILE,
                }
            }
        },
        "per_league": {
            "<E0>": {
                "1x2": {
                    "engines": {HOSTILE: {"log_loss": 1.0}},
                    "ratio_to_closing": {HOSTILE: 1.01},
                }
            }
        },
        "reliability": {"1x2": {HOSTILE: {"home": bins}}},
        "profit_curves": {"1x2": {HOSTILE: {"cumulative_profit": [1.0, -0.5, 0.2]}}},
        "promotion": {
            "1x2": {"promote": False, "reason": "p & q < 0.05 <i>", "challenger": HOSTILE}
        },
        "data": {
            "dropped": {"<bad>": 2},
            "issues": [{"file": "a<b>.csv", "row": 2, "field": "FTHG"}],
        },
        "timings_s": {"<step>": 1.0},
        "config": {"name": "</pre><script>"},
    }


# --------------------------------------------------------------------------- render_html


def test_every_model_and_the_champion_appear(report: dict[str, Any], page: str) -> None:
    for market in ("1x2", "ou25"):
        section = report["evaluation"]["markets"][market]
        for model in section["engines"]:
            assert f"</span>{model}" in page
        champion = section["champion"]
        assert f"<p>Champion: <strong>{champion}</strong></p>" in page
    # the champion's headline row is the one carrying the badge, once per market
    champion_rows = re.findall(r'<tr class="champion"><td>.*?</td>', page)
    assert [re.sub(r"<[^>]+>", "", row) for row in champion_rows] == [
        "lightgbmchampion",
        "dixon_coleschampion",
    ]


def test_headline_rows_hold_scores_ratios_and_backtest(page: str) -> None:
    row = re.search(r'<tr class="champion">.*?</tr>', page).group(0)  # 1x2 champion: lightgbm
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[1:7] == ["0.9791", "1.0141", "0.2019", "0.5817", "0.0174", "1,288"]
    assert cells[7] == '+5.63%<br><span class="ci">[-38.20%, +49.46%]</span>'
    assert cells[8:] == ["32", "+1.80", "5.20", "+0.18%"]
    assert 'closing line (de-margined)</td><td class="num">0.9655</td><td class="num">1.000' in page
    assert (
        'pre-match line (de-margined)</td><td class="num">0.9702</td><td class="num worse">1.0049'
        in page
    )


def test_page_has_every_section(page: str) -> None:
    for text in (
        "<h2>1X2 (home / draw / away)</h2>",
        "<h2>Over / under 2.5 goals</h2>",
        "<h3>Promotion</h3>",
        "Promote <strong>lightgbm</strong> over dixon_coles.",
        "Keep <strong>dixon_coles</strong>; lightgbm is not promoted.",
        "<h3>Per league: model vs market</h3>",
        "<h3>Reliability</h3>",
        "<h3>Cumulative profit</h3>",
        '<section id="data">',
        '<tr><td>rows kept <code>rows_kept</code></td><td class="num">1,294</td></tr>',
        '<tr><td>duplicate_match</td><td class="num">1</td></tr>',
        '<tr><td>evaluate</td><td class="num">42.3</td><td class="num">92.8%</td></tr>',
        "<code>abc1234</code>",
        "<code>2026-11-21T23-59-59_football</code>",
    ):
        assert text in page
    # 2 markets x (ratio bars, reliability, profit curves)
    assert len(_svgs(page)) == 6


def test_per_league_ratios_and_best_model(page: str) -> None:
    # 1x2, D1: dixon_coles 0.9832 / 0.9597, lightgbm 0.9743 / 0.9597 (the shaded best), after
    # the league's test window (first and last kick-off, test matches)
    assert (
        '<tr><td>D1</td><td class="num">2022-08-05</td><td class="num">2024-05-18</td>'
        '<td class="num">646</td><td class="num">642</td><td class="num">0.9597</td>'
        '<td class="num worse">1.0245</td><td class="num worse best">1.0152</td>'
    ) in page


def test_no_external_resources_or_scripts(page: str) -> None:
    assert re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, flags=re.I) is None
    assert re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", page, flags=re.I) is None
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "<!DOCTYPE svg" not in page
    # internal anchors only
    assert set(re.findall(r'href="([^"]*)"', page)) >= {"#market-1x2", "#data", "#timings"}
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', page))


def test_element_ids_are_unique_and_references_resolve(page: str) -> None:
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) > 100
    assert len(ids) == len(set(ids))
    references = set(re.findall(r"url\(#([^)]+)\)", page)) | set(
        re.findall(r'href="#([^"]+)"', page)
    )
    assert references
    assert references <= set(ids)


def test_hostile_text_is_escaped_everywhere() -> None:
    page = render_html(_hostile_report())
    assert "<script" not in page.lower()
    assert "<b>sha</b>" not in page
    assert "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # headline, badge line
    assert "&lt;E0&gt;" in page
    assert "p &amp; q &lt; 0.05 &lt;i&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page
    # the plots carry the name as escaped SVG text and still parse as XML
    svgs = _svgs(page)
    assert len(svgs) == 3
    for svg in svgs:
        ET.fromstring(svg)
    assert any("&lt;script&gt;" in svg for svg in svgs)


@pytest.mark.parametrize(
    "section",
    [
        "evaluation",
        "per_league",
        "reliability",
        "profit_curves",
        "promotion",
        "data",
        "timings_s",
        "config",
    ],
)
def test_missing_or_empty_sections_render(report: dict[str, Any], section: str) -> None:
    for replacement in (None, {}, "absent"):
        partial = copy.deepcopy(report)
        if replacement == "absent":
            del partial[section]
        else:
            partial[section] = replacement
        # plots are the slow part and are covered elsewhere
        for key in ("reliability", "profit_curves", "per_league"):
            if key != section:
                partial.pop(key, None)
        page = render_html(partial)
        assert page.endswith("</html>\n")
        assert '<section id="timings">' in page
        assert "<code>abc1234</code>" in page


def test_empty_report_renders_notes() -> None:
    page = render_html({})
    assert "No evaluation results in this report." in page
    assert "No integrity report recorded." in page
    assert "No timings recorded." in page
    assert "No configuration recorded." in page
    assert "<svg" not in page


def test_unquoted_odds_groups_are_summed_per_group_on_the_page() -> None:
    """The bundle has 246 "<file>: <group>" keys in 81 files: one row each flooded the page."""
    data = {
        "rows_read": 10,
        "rows_kept": 10,
        "rows_without_quote": {
            "E0/2014-2015.csv: sj 1x2 prematch": 300,
            "E1/2014-2015.csv: sj 1x2 prematch": 41,
            "E0/2018-2019.csv: pinnacle 1x2 closing": 2,
        },
        "columns_present_but_empty": {"E0/2025-2026.csv: pinnacle 1x2 closing": 380},
    }
    page = render_html({"data": data})
    section = page[page.index('<section id="data">') :]
    assert "rows without quote (summed over files; per file in report.json)" in section
    assert '<tr><td>sj 1x2 prematch</td><td class="num">341</td></tr>' in section
    assert '<tr><td>pinnacle 1x2 closing</td><td class="num">2</td></tr>' in section
    assert '<tr><td>pinnacle 1x2 closing</td><td class="num">380</td></tr>' in section
    assert "2014-2015.csv" not in section
    head = re.findall(r"<th [^>]*>(.*?)</th>", section)
    assert head.count("odds group") == 2
    assert head.count("matches") == 2


def test_the_integrity_counts_are_named_in_words() -> None:
    """The table showed the JSON keys alone, and "ok | yes" said nothing of what was ok."""
    data = {"ok": False, "files_read": 3, "rows_read": 10, "rows_kept": 9, "quotes_kept": 40}
    section = render_html({"data": data}).split('<section id="data">')[1]
    rows = re.findall(r"<tr><td>(.*?)</td><td class=\"num\">(.*?)</td></tr>", section)
    assert rows == [
        ("no error recorded (drops and repairs are not errors) <code>ok</code>", "no"),
        ("files read <code>files_read</code>", "3"),
        ("rows read (blank rows not counted) <code>rows_read</code>", "10"),
        ("rows kept <code>rows_kept</code>", "9"),
        ("odds quotes kept <code>quotes_kept</code>", "40"),
        ("share of rows kept", "90.00%"),
    ]


def test_missing_values_render_as_dashes() -> None:
    section = {
        "engines": {
            "elo": {"log_loss": None, "rps": float("nan"), "n": 5},
            "market": {"log_loss": "oops", "n": float("nan")},
        },
        "backtest": {"elo": {"roi": None, "roi_ci": [None, 0.1]}},
    }
    page = render_html({"evaluation": {"markets": {"ah": section}}})
    row = re.search(r"<tr><td>.*?elo</td>.*?</tr>", page).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[1:7] == ["\u2013", "\u2013", "\u2013", "\u2013", "\u2013", "5"]
    assert cells[7] == '\u2013<br><span class="ci">[\u2013, +10.00%]</span>'
    row = re.search(r"<tr><td>.*?market</td>.*?</tr>", page).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[1:] == ["\u2013"] * 11
    assert "<h2>Asian handicap</h2>" in page


def test_a_decision_that_is_not_significant_shows_the_matches_it_needs() -> None:
    champion = np.random.default_rng(1).gamma(4.0, 0.25, 600)
    noise = np.random.default_rng(2).normal(0.0, 0.1, 600)
    challenger = champion - 0.004 + (noise - noise.mean())  # gain 0.004, t about 1
    decision = decide_promotion("market", champion, "lightgbm", challenger)
    assert decision.matches_needed is not None
    page = render_html({"promotion": {"1x2": decision.model_dump(mode="json")}})
    block = re.search(r'<div class="decision keep">.*?</div>', page, flags=re.S).group(0)
    assert "Keep <strong>market</strong>; lightgbm is not promoted." in block
    assert f"paired matches needed at this gain and spread {decision.matches_needed:,}" in block
    assert f"would reach it at about {decision.matches_needed:,} matches" in block


def test_render_is_deterministic_and_ignores_dict_order(report: dict[str, Any], page: str) -> None:
    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reverse(v) for v in value]
        return value

    reordered = reverse(report)
    assert list(reordered) != list(report)
    assert render_html(reordered) == page


def test_market_ratios_prefers_given_and_computes_missing() -> None:
    section = {
        "engines": {"elo": {"log_loss": 1.05}, "dixon_coles": {"log_loss": 0.98}},
        "market": {"closing": {"log_loss": 0.98}, "prematch": {"log_loss": 0.99}},
        "ratio_to_closing": {"elo": 1.5},
    }
    ratios = market_ratios(section)
    assert ratios["elo"] == 1.5
    assert ratios["dixon_coles"] == pytest.approx(1.0)
    assert ratios["prematch"] == pytest.approx(0.99 / 0.98)
    assert ratios["closing"] == pytest.approx(1.0)
    assert market_ratios({"engines": {"elo": {"log_loss": 1.0}}}) == {"elo": None}


# --------------------------------------------------------------------------- plots


def test_reliability_svg_parses_and_has_one_panel_per_outcome(report: dict[str, Any]) -> None:
    svg = reliability_svg(report["reliability"]["1x2"])
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    panels = [g for g in root.iter(f"{SVG_NS}g") if re.search(r"-axes_\d+$", g.get("id", ""))]
    assert len(panels) == 3
    texts = "".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    for word in ("home", "draw", "away", "dixon_coles", "lightgbm", "closing"):
        assert word in texts
    assert "http://purl.org" not in svg  # no metadata block
    assert reliability_svg(report["reliability"]["1x2"]) == svg


def _marker_widths(svg: str) -> list[float]:
    """Widths (pt) of the scatter markers, in drawing order."""
    root = ET.fromstring(svg)
    group = next(
        g for g in root.iter(f"{SVG_NS}g") if g.get("id", "").endswith("-PathCollection_1")
    )
    widths = []
    for path in group.iter(f"{SVG_NS}path"):
        numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        xs = numbers[0::2]
        widths.append(max(xs) - min(xs))
    return widths


def test_reliability_marker_size_follows_bin_count() -> None:
    same = [{"p_mean": 0.2, "freq": 0.2, "n": 50}, {"p_mean": 0.8, "freq": 0.8, "n": 50}]
    varied = [{"p_mean": 0.2, "freq": 0.2, "n": 1}, {"p_mean": 0.8, "freq": 0.8, "n": 100}]
    small, large = _marker_widths(reliability_svg({"m": {"home": same}}))
    assert small == pytest.approx(large)
    small, large = _marker_widths(reliability_svg({"m": {"home": varied}}))
    # marker area 8 + 72 n / n_max pt^2, so the diameters differ by sqrt(80 / 8.72)
    assert large / small == pytest.approx(math.sqrt(80.0 / 8.72), rel=0.01)


def test_profit_curves_svg_dates_and_bet_numbers(report: dict[str, Any]) -> None:
    dated = profit_curves_svg(report["profit_curves"]["1x2"])
    texts = "".join(t.text or "" for t in ET.fromstring(dated).iter(f"{SVG_NS}text"))
    assert "kick-off (UTC)" in texts
    assert "2021-" in texts
    undated = profit_curves_svg({"elo": {"cumulative_profit": [1.0, 0.0, 2.5]}})
    texts = "".join(t.text or "" for t in ET.fromstring(undated).iter(f"{SVG_NS}text"))
    assert "bet number" in texts
    empty = profit_curves_svg({})
    assert "no bets placed" in empty
    ET.fromstring(empty)


def test_ratio_bar_svg_parses_and_labels_leagues() -> None:
    svg = ratio_bar_svg({"E0": {"elo": 1.02, "lightgbm": 0.99}, "D1": {"elo": None}})
    root = ET.fromstring(svg)
    texts = "".join(t.text or "" for t in root.iter(f"{SVG_NS}text"))
    assert "E0" in texts
    assert "D1" in texts
    assert "lower is better" in texts
    assert "no per-league ratios" in ratio_bar_svg({"E0": {"elo": float("nan")}})


def test_plots_ignore_user_matplotlib_style(report: dict[str, Any]) -> None:
    import matplotlib as mpl

    baseline = reliability_svg(report["reliability"]["ou25"])
    with mpl.rc_context({"lines.linewidth": 7.0, "font.size": 22.0, "svg.fonttype": "path"}):
        assert reliability_svg(report["reliability"]["ou25"]) == baseline
        # and the plot leaves the caller's settings as they were
        assert mpl.rcParams["font.size"] == 22.0
        assert mpl.rcParams["svg.fonttype"] == "path"


# --------------------------------------------------------------------------- writer


def test_write_report_json_and_html(tmp_path: Path, report: dict[str, Any]) -> None:
    # the plot sections are left out to keep this fast; the golden test renders them
    small = {k: v for k, v in report.items() if k not in ("reliability", "profit_curves")}
    small = copy.deepcopy(small)
    small["evaluation"]["markets"]["1x2"]["engines"]["lightgbm"]["ece"] = float("nan")
    small["timings_s"]["report"] = np.float64(0.6)
    small.pop("per_league")
    before = copy.deepcopy(small)
    json_path, html_path = write_report(tmp_path / "run", small)
    assert (json_path.name, html_path.name) == ("report.json", "report.html")
    text = json_path.read_text(encoding="utf-8")
    assert '"ece": null' in text
    assert "NaN" not in text
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    loaded = load_report(json_path)
    assert loaded["evaluation"]["markets"]["1x2"]["engines"]["lightgbm"]["ece"] is None
    assert loaded["timings_s"]["report"] == 0.6
    assert load_report(tmp_path / "run") == loaded
    # the page is rendered from the cleaned content: re-rendering the JSON gives the same bytes
    assert html_path.read_text(encoding="utf-8") == render_html(loaded)
    assert math.isnan(small["evaluation"]["markets"]["1x2"]["engines"]["lightgbm"]["ece"])
    assert small.keys() == before.keys()  # the input was not replaced by its cleaned copy
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["report.html", "report.json"]


def test_write_report_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = {"run_id": "first", "timings_s": {"load": 1.0}}
    _, html_path = write_report(tmp_path, first)
    old_html = html_path.read_bytes()

    real_replace = os.replace
    calls: list[str] = []

    def replace_then_crash(src: Any, dst: Any) -> None:
        calls.append(Path(dst).name)
        if Path(dst).name == "report.html":
            raise OSError("disk went away")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_crash)
    with pytest.raises(OSError, match="disk went away"):
        write_report(tmp_path, {"run_id": "second", "timings_s": {"load": 2.0}})
    assert calls == ["report.json", "report.html"]
    assert html_path.read_bytes() == old_html
    assert "first" in html_path.read_text(encoding="utf-8")
    assert load_report(tmp_path)["run_id"] == "second"
    # no half-written temp files are left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]


def test_write_report_render_failure_writes_nothing(tmp_path: Path) -> None:
    write_report(tmp_path, {"run_id": "first"})
    with pytest.raises(TypeError, match="no JSON form"):
        write_report(tmp_path, {"run_id": "second", "config": {"bad": object()}})
    assert load_report(tmp_path)["run_id"] == "first"
    assert "first" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_to_jsonable_converts_numpy_and_non_finite() -> None:
    out = to_jsonable(
        {
            1: np.array([1.5, np.nan]),
            "t": (np.int64(2), -math.inf),
            "p": Path("a/b"),
            "ok": True,
        }
    )
    assert out == {"1": [1.5, None], "t": [2, None], "p": "a/b", "ok": True}


def test_to_jsonable_takes_a_long_double_and_refuses_a_long_complex() -> None:
    """``np.longdouble(1.5).item()`` is a long double again: the conversion recursed for ever."""
    assert to_jsonable({"x": np.longdouble(1.5), "y": np.longdouble("inf")}) == {
        "x": 1.5,
        "y": None,
    }
    with pytest.raises(TypeError, match="clongdouble has no JSON form"):
        to_jsonable(np.clongdouble(1 + 2j))


def test_load_report_rejects_non_objects(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_report(path)


# --------------------------------------------------------------------------- review fixes


def _rows(page: str, section_id: str) -> list[list[str]]:
    """Text of the cells of each body row of the tables in one ``<section>`` of the page."""
    section = re.search(rf'<section id="{section_id}">.*?</section>', page, flags=re.S).group(0)
    rows = re.findall(r"<tr\b[^>]*>(.*?)</tr>", section, flags=re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    return [[re.sub(r"<[^>]+>", "", cell) for cell in row] for row in cells if row]


@pytest.mark.parametrize(("flag", "shown"), [(True, "yes"), (False, "no"), (None, "\u2013")])
def test_booleans_render_as_yes_or_no_and_only_missing_values_as_dashes(
    flag: bool | None, shown: str
) -> None:
    data = {"ok": flag, "files_read": 4, "repaired": {"kickoff_guessed": flag, "missing_time": 2}}
    page = render_html({"data": data, "evaluation": {"n_matches": flag}})
    rows = _rows(page, "data")
    assert ["no error recorded (drops and repairs are not errors) ok", shown] in rows
    assert ["files read files_read", "4"] in rows
    assert ["kickoff_guessed", shown] in rows  # the reason tables use the same formatter
    if flag is not None:  # a missing count leaves the header line out
        assert f"<dt>matches evaluated</dt><dd>{shown}</dd>" in page


def test_timings_total_counts_each_stage_once_and_nests_the_fits() -> None:
    timings = {
        "load": 1.0,
        "features": 2.0,
        "walk_forward": 6.0,  # includes the two fits below
        "fit_elo": 1.5,
        "fit_lightgbm": 3.0,
        "scoring": 1.0,
    }
    rows = _rows(render_html({"timings_s": timings}), "timings")
    assert rows == [
        ["walk_forward", "6.0", "60.0%"],
        ["of which fit_lightgbm", "3.0", "30.0%"],
        ["of which fit_elo", "1.5", "15.0%"],
        ["features", "2.0", "20.0%"],
        ["load", "1.0", "10.0%"],
        ["scoring", "1.0", "10.0%"],
        ["total", "10.0", ""],
    ]
    # without the stage that contains them, the fits are stages of their own
    rows = _rows(render_html({"timings_s": {"fit_elo": 3.0, "load": 1.0}}), "timings")
    assert rows == [["fit_elo", "3.0", "75.0%"], ["load", "1.0", "25.0%"], ["total", "4.0", ""]]


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_write_report_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        json_path, html_path = write_report(tmp_path, {"run_id": "modes"})
        plain = tmp_path / "plain.json"
        plain.write_text("{}", encoding="utf-8")
    finally:
        os.umask(old)
    assert plain.stat().st_mode & 0o777 == 0o666 & ~umask
    assert json_path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert html_path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_report_onto_a_directory_fails_clearly_and_leaves_no_temp_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "report.json").mkdir()
    with pytest.raises(OSError, match=r"cannot write .*report\.json") as caught:
        write_report(tmp_path, {"run_id": "blocked"})
    assert str(tmp_path / "report.json") in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    assert list((tmp_path / "report.json").iterdir()) == []
