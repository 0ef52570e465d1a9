"""Render a run report dict as one self-contained HTML page (inline CSS and SVG, no scripts)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from html import escape
from typing import Any

from marketcast.data.validation import sum_per_group
from marketcast.promotion import shown_gain, shown_p_value
from marketcast.reports.plots import (
    MIN_BIN_FORECASTS,
    assign_colors,
    order_models,
    profit_curves_svg,
    ratio_bar_svg,
    reliability_svg,
)

__all__ = ["market_ratios", "render_html"]

MARKET_ORDER: tuple[str, ...] = ("1x2", "ou25", "ah")
MARKET_TITLES: dict[str, str] = {
    "1x2": "1X2 (home / draw / away)",
    "ou25": "Over / under 2.5 goals",
    "ah": "Asian handicap",
}
YARDSTICK_LABELS: dict[str, str] = {
    "closing": "closing line (de-margined)",
    "prematch": "pre-match line (de-margined)",
}
_DATA_COUNT_ORDER = ("ok", "files_read", "rows_read", "rows_kept", "blank_rows")
#: The integrity report's counts as the page names them (its own key in the JSON beside each);
#: a count without a label here shows its key with spaces
_DATA_COUNT_LABELS = {
    "ok": "no error recorded (drops and repairs are not errors)",
    "files_read": "files read",
    "rows_read": "rows read (blank rows not counted)",
    "rows_kept": "rows kept",
    "blank_rows": "blank rows skipped",
    "matches_in_run": "matches in this run",
    "quotes_kept": "odds quotes kept",
}
_DATA_TABLE_ORDER = ("dropped", "repaired", "quotes_dropped")
# integrity counts keyed "<file>: <group>", shown on the page summed per group
_PER_FILE_GROUPS = frozenset({"columns_present_but_empty", "rows_without_quote"})
_ISSUE_COLUMN_ORDER = ("file", "row", "field", "reason", "value")
_MAX_LISTED_ISSUES = 20
_DASH = "\u2013"
# Timings taken inside another step: name prefix -> the step that contains them. The football
# run times each model's fits (``fit_<model>``) within ``walk_forward``.
_TIMING_PARTS: dict[str, str] = {"fit_": "walk_forward"}

_CSS = """
:root { --ink: #1d2430; --muted: #5b6573; --rule: #d9dde3; --band: #f4f6f8;
        --good: #1a7f37; --bad: #b42318; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 24px 28px 64px; color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 24px; margin: 0 0 6px; }
h2 { font-size: 20px; margin: 40px 0 10px; padding-bottom: 4px;
     border-bottom: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 24px 0 8px; }
code, pre, .num { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0 0; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; }
nav { margin: 16px 0 0; padding: 8px 12px; background: var(--band); border-radius: 6px; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); text-align: left;
         vertical-align: top; }
th { background: var(--band); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.yardstick td { color: var(--muted); font-style: italic; background: #fafbfc; }
tr.champion td { font-weight: 600; }
tr.part td { color: var(--muted); }
tr.part td:first-child { padding-left: 26px; }
.ci { color: var(--muted); font-size: 11px; }
.better { color: var(--good); }
.worse { color: var(--bad); }
td.best { background: #e6f4ea; }
.badge { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px;
         font-size: 11px; font-weight: 600; background: var(--ink); color: #fff; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px;
          border-radius: 2px; vertical-align: baseline; }
.decision { padding: 10px 14px; border-left: 4px solid var(--muted); background: var(--band);
            margin: 8px 0 12px; }
.decision.promote { border-left-color: var(--good); }
.decision.keep { border-left-color: var(--bad); }
.decision p { margin: 2px 0; }
.warning { padding: 6px 12px; border-left: 4px solid #b54708; background: #fffaeb; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 12px;
          padding: 0 0 4px; }
.note, .empty { color: var(--muted); }
figure { margin: 8px 0 16px; }
figure svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; }
pre { background: var(--band); padding: 10px; overflow-x: auto; font-size: 12px; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; }
""".strip()


# --------------------------------------------------------------------------- formatting


def _e(value: Any) -> str:
    """Escape any value for HTML text or an attribute."""
    return escape(str(value), quote=True)


def _real(value: Any) -> float | None:
    """``value`` as a finite float, or None when missing, non-numeric or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # (an int beyond a float: not finite)
        return None
    return number if math.isfinite(number) else None


def _fixed(value: Any, digits: int = 4) -> str:
    number = _real(value)
    return _DASH if number is None else f"{number:.{digits}f}"


def _signed(value: Any, digits: int = 2) -> str:
    number = _real(value)
    return _DASH if number is None else f"{number:+.{digits}f}"


def _pct(value: Any, digits: int = 2) -> str:
    """Fraction -> signed percentage, e.g. -0.0123 -> ``-1.23%``."""
    number = _real(value)
    return _DASH if number is None else f"{100.0 * number:+.{digits}f}%"


def _count(value: Any) -> str:
    """A count or other scalar: ``1,294``, ``2.50``, ``yes``/``no``, text; a dash when missing."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = _real(value)
    if number is None:
        return _e(value) if isinstance(value, str) and value else _DASH
    return f"{round(number):,}" if number == round(number) else f"{number:,.2f}"


def _general(value: Any) -> str:
    number = _real(value)
    return _DASH if number is None else f"{number:.4g}"


def _as_the_reason(value: Any, shown: Callable[[float], str]) -> str:
    """A decision's figure written as its reason writes it (report.json keeps every digit)."""
    number = _real(value)
    return _DASH if number is None else shown(number)


def _slug(text: str) -> str:
    """``text`` as an id part: itself when it is one, else its safe characters and a short
    hash (two names without one safe character were both ``x``, and their ids clashed)."""
    text = str(text)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    if slug == text:
        return slug
    digest = hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()[:8]
    return f"{slug or 'x'}-{digest}"


def _date(value: Any) -> str:
    """An ISO date (or any text) as given, escaped; a dash when missing or empty."""
    return _e(value) if isinstance(value, str) and value else _DASH


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one (sections may be missing or null)."""
    return value if isinstance(value, Mapping) else {}


def _ratio_cell(ratio: float | None, *, best: bool = False) -> str:
    if ratio is None:
        return f'<td class="num">{_DASH}</td>'
    classes = ["num", "better" if ratio < 1.0 else "worse" if ratio > 1.0 else ""]
    if best:
        classes.append("best")
    # 4 decimals, as in the terminal and README: at 3 the "best" shading could tie on screen
    return f'<td class="{" ".join(c for c in classes if c)}">{ratio:.4f}</td>'


def _swatch(color: str | None) -> str:
    if color is None:
        return ""
    return f'<span class="swatch" style="background:{_e(color)}"></span>'


def _table(
    head: Sequence[tuple[str, bool]], rows: Iterable[str], caption: str | None = None
) -> str:
    """``head``: (label, numeric) pairs; ``rows``: pre-rendered ``<tr>`` strings."""
    cells = "".join(
        f'<th scope="col" class="num">{_e(h)}</th>' if num else f'<th scope="col">{_e(h)}</th>'
        for h, num in head
    )
    body = "\n".join(rows)
    cap = f"<caption>{_e(caption)}</caption>\n" if caption else ""
    return f"<table>\n{cap}<thead><tr>{cells}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


_SVG_OPEN = re.compile(r"<svg\b[^>]*>")


def _figure(svg: str, caption: str, title: str) -> str:
    """``svg`` with ``title`` as its accessible name (``<title>``, ``role="img"``), captioned."""
    opening = _SVG_OPEN.search(svg)
    if opening is not None:
        tag = opening.group(0)
        named = tag[:-1] + ' role="img">' if "role=" not in tag else tag
        svg = svg[: opening.start()] + named + f"<title>{_e(title)}</title>" + svg[opening.end() :]
    return f"<figure>\n{svg}<figcaption>{_e(caption)}</figcaption>\n</figure>"


# --------------------------------------------------------------------------- market logic


def _markets_in(report: Mapping[str, Any]) -> list[str]:
    """Every market named anywhere in the report, known markets first."""
    found: set[str] = set(_mapping(_mapping(report.get("evaluation")).get("markets")))
    for key in ("reliability", "profit_curves", "promotion"):
        found.update(_mapping(report.get(key)))
    for by_market in _mapping(report.get("per_league")).values():
        found.update(_mapping(by_market))
    known = [m for m in MARKET_ORDER if m in found]
    return known + sorted(found - set(known))


def market_ratios(section: Mapping[str, Any]) -> dict[str, float | None]:
    """Log loss / closing-line log loss for every engine and the pre-match line in one section.

    A ratio given in ``section["ratio_to_closing"]`` wins; otherwise it is computed from the
    engine's and the closing line's log loss (both scored on the same matches upstream).

    Parameters
    ----------
    section
        One market's evaluation block: ``{"engines": {...}, "market": {"closing": ...,
        "prematch": ...}, "ratio_to_closing": {...}}``; any part may be missing.

    Returns
    -------
    dict[str, float | None]
        Model name (and ``"prematch"``, ``"closing"`` when present) -> ratio, None when unknown.

    Examples
    --------
    >>> market_ratios({"engines": {"elo": {"log_loss": 1.02}},
    ...                "market": {"closing": {"log_loss": 1.0}}})
    {'elo': 1.02, 'closing': 1.0}
    """
    given = _mapping(section.get("ratio_to_closing"))
    yardsticks = _mapping(section.get("market"))
    closing_ll = _real(_mapping(yardsticks.get("closing")).get("log_loss"))

    def ratio_of(name: str, scores: Mapping[str, Any]) -> float | None:
        stated = _real(given.get(name))
        if stated is not None:
            return stated
        log_loss = _real(scores.get("log_loss"))
        if log_loss is None or closing_ll is None or closing_ll <= 0.0:
            return None
        return log_loss / closing_ll

    ratios = {
        name: ratio_of(name, _mapping(scores))
        for name, scores in _mapping(section.get("engines")).items()
    }
    for name in ("prematch", "closing"):
        if name in yardsticks:
            ratios[name] = ratio_of(name, _mapping(yardsticks.get(name)))
    return ratios


def _model_sort_key(scores: Mapping[str, Any], name: str) -> tuple[int, float, str]:
    log_loss = _real(scores.get("log_loss"))
    return (log_loss is None, log_loss if log_loss is not None else 0.0, name)


# --------------------------------------------------------------------------- sections


def _header(report: Mapping[str, Any], markets: Sequence[str]) -> str:
    items = [
        (label, f"<code>{_e(value)}</code>" if value is not None else _DASH)
        for label, value in (
            ("run id", report.get("run_id")),
            ("created (UTC)", report.get("created_utc")),
            ("git sha", report.get("git_sha")),
        )
    ]
    n_matches = _mapping(report.get("evaluation")).get("n_matches")
    if n_matches is not None:
        items.append(("matches evaluated", _count(n_matches)))
    window = _mapping(_mapping(report.get("evaluation")).get("test_window"))
    if window:
        first, last = _date(window.get("first_kickoff")), _date(window.get("last_kickoff"))
        # leagues' windows can be disjoint seasons: this is their span, not one test period
        items.append(
            ("test window (kick-off, UTC)", f"{first} to {last}, all leagues (each league's below)")
        )
    meta = "\n".join(f"<dt>{_e(label)}</dt><dd>{value}</dd>" for label, value in items)
    links = [(f"market-{_slug(m)}", MARKET_TITLES.get(m, m)) for m in markets]
    links += [("data", "Data integrity"), ("timings", "Timings"), ("config", "Configuration")]
    nav = " ".join(f'<a href="#{_e(anchor)}">{_e(text)}</a>' for anchor, text in links)
    return (
        "<header>\n<h1>marketcast run report</h1>\n"
        f'<dl class="meta">\n{meta}\n</dl>\n<nav>{nav}</nav>\n</header>'
    )


_HEADLINE_HEAD: tuple[tuple[str, bool], ...] = (
    ("model", False),
    ("log loss", True),
    ("ratio to closing", True),
    ("RPS", True),
    ("Brier", True),
    ("ECE", True),
    ("n", True),
    ("ROI (95% CI)", True),
    ("bets", True),
    ("profit (units)", True),
    ("max drawdown (units)", True),
    ("CLV", True),
)


def _roi_cell(bets: Mapping[str, Any]) -> str:
    roi = _pct(bets.get("roi"))
    ci = bets.get("roi_ci")
    if isinstance(ci, Sequence) and not isinstance(ci, str) and len(ci) == 2:
        low, high = _pct(ci[0]), _pct(ci[1])
        # no ROI and no interval (no bet staked): one dash, not "–[–, –]"
        if (roi, low, high) != (_DASH, _DASH, _DASH):
            roi += f'<br><span class="ci">[{low}, {high}]</span>'
    return f'<td class="num">{roi}</td>'


def _clv_cell(bets: Mapping[str, Any]) -> str:
    """CLV, and over how many bets it is a mean when some bets had no closing price."""
    clv = _pct(bets.get("clv"))
    without = _real(bets.get("n_bets_without_closing"))
    if without is not None and without > 0:
        n_bets = _real(bets.get("n_bets"))
        if n_bets is not None and n_bets >= without:
            over = f"over {_count(n_bets - without)} of {_count(n_bets)} bets"
        else:
            over = f"{_count(without)} bets without a closing price left out"
        clv += f'<br><span class="ci">{over}</span>'
    return f'<td class="num">{clv}</td>'


def _headline_row(
    label: str,
    scores: Mapping[str, Any],
    bets: Mapping[str, Any],
    ratio: float | None,
    *,
    classes: Sequence[str] = (),
    color: str | None = None,
    badge: str | None = None,
) -> str:
    name = _swatch(color) + _e(label) + (f'<span class="badge">{_e(badge)}</span>' if badge else "")
    has_bets = bool(bets)
    cells = [
        f"<td>{name}</td>",
        f'<td class="num">{_fixed(scores.get("log_loss"))}</td>',
        _ratio_cell(ratio),
        f'<td class="num">{_fixed(scores.get("rps"))}</td>',
        f'<td class="num">{_fixed(scores.get("brier"))}</td>',
        f'<td class="num">{_fixed(scores.get("ece"))}</td>',
        f'<td class="num">{_count(scores.get("n"))}</td>',
        _roi_cell(bets) if has_bets else f'<td class="num">{_DASH}</td>',
        f'<td class="num">{_count(bets.get("n_bets"))}</td>',
        f'<td class="num">{_signed(bets.get("profit_units"))}</td>',
        f'<td class="num">{_fixed(bets.get("max_drawdown"), 2)}</td>',
        _clv_cell(bets),
    ]
    cls = f' class="{" ".join(classes)}"' if classes else ""
    return f"<tr{cls}>" + "".join(cells) + "</tr>"


def _registry_champion(promotion: Mapping[str, Any]) -> str | None:
    """The registry's champion after the run (``promotion.registry_champion``), if recorded."""
    value = promotion.get("registry_champion")
    return str(value) if value is not None and str(value) else None


def _champion_lead(
    registry: str | None, in_run: str | None, names: Collection[str]
) -> tuple[str, str | None]:
    """The line above the headline table, and the model whose row carries the badge.

    The champion is the registry's after this run when the report records one (a run's
    ``promotion.<market>.registry_champion``): the promotion block names it too, so the two
    never disagree. The in-run evaluation's own pick (``champion``: the market model unless a
    model beats it significantly, among this run's models only) is shown beside it only when it
    differs; a report without a registry champion (``evaluate football``) names that pick.
    """
    if registry is None:
        if in_run is None:
            return "", None
        return f"<p>Champion: <strong>{_e(in_run)}</strong></p>\n", in_run
    also = (
        " Best in this run&rsquo;s own evaluation (its models only): "
        f"<strong>{_e(in_run)}</strong>."
        if in_run is not None and in_run != registry
        else ""
    )
    if registry in names:
        text = (
            f"Champion (registry, after this run): <strong>{_e(registry)}</strong>, the row "
            'marked <span class="badge">champion</span>.'
        )
        return f"<p>{text}{also}</p>\n", registry
    if registry == "none":  # a run whose promotion was not applied records "none" for no champion
        text = "Champion (registry, after this run): none."
    elif registry.startswith("unknown"):  # the registry could not be read back
        text = f"Champion (registry, after this run): {_e(registry)}."
    else:
        text = (
            f"Champion (registry, after this run): <strong>{_e(registry)}</strong>, not among "
            "this run&rsquo;s models, so no row is marked."
        )
    return f"<p>{text}{also}</p>\n", None


def _headline(
    section: Mapping[str, Any], colors: Mapping[str, str], promotion: Mapping[str, Any]
) -> str:
    engines = _mapping(section.get("engines"))
    backtest = _mapping(section.get("backtest"))
    yardsticks = _mapping(section.get("market"))
    in_run = section.get("champion")
    ratios = market_ratios(section)

    names = sorted(engines, key=lambda n: _model_sort_key(_mapping(engines[n]), n))
    names += [n for n in order_models(backtest) if n not in engines]
    lead, champion = _champion_lead(
        _registry_champion(promotion), str(in_run) if in_run is not None else None, names
    )
    rows = []
    for name in names:
        is_champion = champion is not None and name == champion
        rows.append(
            _headline_row(
                name,
                _mapping(engines.get(name)),
                _mapping(backtest.get(name)),
                ratios.get(name),
                classes=["champion"] if is_champion else [],
                color=colors.get(name),
                badge="champion" if is_champion else None,
            )
        )
    for name in ("closing", "prematch"):
        if name in yardsticks:
            rows.append(
                _headline_row(
                    YARDSTICK_LABELS[name],
                    _mapping(yardsticks.get(name)),
                    _mapping(backtest.get(name)),
                    ratios.get(name),
                    classes=["yardstick"],
                    color=colors.get(name),
                )
            )
    missing = _engines_without_forecasts(section, names)
    if not rows:
        return '<p class="empty">No scores for this market.</p>' + missing
    note = (
        '<p class="note">Ratio to closing = log loss / log loss of the de-margined closing line '
        "on the same matches: 1.0000 is as good as the market, lower is better. Log loss (the "
        "mean of -ln of the probability given to the outcome, in nats), RPS (ranked probability "
        "score over the ordered outcomes, in [0, 1]) and Brier (the sum over outcomes of the "
        "squared error, in [0, 2]) are proper scores, lower is better. ECE (expected "
        "calibration error over 10 bins) is a calibration diagnostic: a lower ECE is not a "
        "better model. ROI, profit, drawdown and CLV come from bets at pre-match prices settled "
        "on the result.</p>"
    )
    table = _table(_HEADLINE_HEAD, rows, "Scores and backtest per model")
    return lead + table + missing + _bankroll_note(backtest) + "\n" + note


def _bankroll_note(backtest: Mapping[str, Any]) -> str:
    """A note naming the backtests whose notional bankroll ran out (``bankroll_exhausted``).

    Stakes stay sized on the starting bankroll, so a drawdown larger than it reads as a number
    like any other; a bettor would have had nothing left to stake.
    """
    exhausted = {
        name: _mapping(bets)
        for name, bets in backtest.items()
        if _mapping(bets).get("bankroll_exhausted") is True
    }
    if not exhausted:
        return ""
    listed = ", ".join(
        f"<strong>{_e(name)}</strong> (lowest {_signed(bets.get('lowest_bankroll_units'))} units)"
        for name, bets in sorted(exhausted.items())
    )
    sizes = {
        _real(_mapping(bets.get("config")).get("bankroll_units")) for bets in exhausted.values()
    }
    units = sizes.pop() if len(sizes) == 1 else None  # backtests on other bankrolls: no size
    bankroll = "notional bankroll" if units is None else f"notional {_count(units)}-unit bankroll"
    return (
        f'\n<p class="note">The {bankroll} ran out under {listed} '
        "(<code>bankroll_exhausted</code>): stakes stay sized on the starting bankroll, which "
        "does not compound, so the later bets stake money a bettor would no longer hold, and the "
        "drawdown is at least the bankroll.</p>"
    )


def _engines_without_forecasts(section: Mapping[str, Any], shown: Collection[str]) -> str:
    """A note naming the models that gave no forecast on any test match of the market."""
    listed = section.get("engines_without_forecasts")
    if not isinstance(listed, list | tuple):
        return ""
    names = sorted({str(n) for n in listed} - {str(n) for n in shown})
    if not names:
        return ""
    return (
        '\n<p class="note">No forecast on any test match of this market, so not in the table: '
        + ", ".join(f"<strong>{_e(n)}</strong>" for n in names)
        + " (<code>engines_without_forecasts</code>).</p>"
    )


# Each reason a match of the test window was not scored, in words (see evaluation/football.py).
_NOT_SCORED_LABELS: dict[str, str] = {
    "unsettled": "no settled result (on a whole handicap line: a push, the stake refunded)",
    "no_closing_price": "no closing price",
    "no_prematch_price": "no pre-match price",
    "handicap_line_moved": "the pre-match or closing line is not the model's handicap line",
    "quarter_line": "quarter handicap line (a split stake, not a probability)",
    "no_forecast": "a model gave no forecast",
    "no_handicap_line": "no handicap line quoted (the bet cannot be settled)",
}
# Reasons a match is not scored that do not keep it from being bet, per market (a bet needs a
# pre-match price and a settled result, and a handicap bet a whole or half line).
_BET_BUT_NOT_SCORED: dict[str, dict[str, str]] = {
    market: {"no_closing_price": "no closing price: it is needed only to score"}
    for market in ("1x2", "ou25")
} | {
    "ah": {
        "handicap_line_moved": "a line that moved by the close: bet and settled on the "
        "pre-match line",
        "unsettled": "a push on a whole line: bet and refunded, profit 0",
        "no_closing_price": "no closing price: it is needed only to score",
    }
}
# The closing yardstick's sources (features.football.CLOSING_PREFERENCE), in words.
_SOURCE_LABELS: dict[str, str] = {"pinnacle": "Pinnacle", "avg": "closing average"}


def _coverage(section: Mapping[str, Any], market: str) -> str:
    """Which of the evaluated matches were scored, why the rest were not, what was backtested."""
    n = _real(section.get("n"))
    not_scored = {str(k): _real(v) for k, v in _mapping(section.get("not_scored")).items()}
    backtest_rows = _real(section.get("backtest_rows"))
    if n is None and not not_scored and backtest_rows is None:
        return ""
    parts = []
    if n is not None:
        evaluated = n + sum(v for v in not_scored.values() if v is not None)
        parts.append(
            f"<p><strong>Scored:</strong> {_count(n)} of the {_count(evaluated)} matches "
            "evaluated in this market.</p>"
        )
    reasons = sorted(
        ((k, v) for k, v in not_scored.items() if v), key=lambda kv: (-(kv[1] or 0.0), kv[0])
    )
    if reasons:
        items = "\n".join(
            f"<li><code>{_e(k)}</code> {_count(v)}: {_e(_NOT_SCORED_LABELS.get(k, k))}</li>"
            for k, v in reasons
        )
        parts.append(
            "<p>Not scored (each match counted under the first reason it fails):</p>\n"
            f"<ul>\n{items}\n</ul>"
        )
    elif not_scored:
        parts.append("<p>Not scored: none.</p>")
    if backtest_rows is not None:
        bet_unscored = [
            text
            for reason, text in _BET_BUT_NOT_SCORED.get(market, {}).items()
            if not_scored.get(reason)
        ]
        parts.append(
            f"<p><strong>Backtest:</strong> runs on {_count(backtest_rows)} matches "
            "(<code>backtest_rows</code>): every match that can be priced before kick-off."
            + (
                " That includes matches left unscored only by a check the bets do not need ("
                + "; ".join(bet_unscored)
                + "), so the number of bets can exceed the scored <code>n</code>."
                if n is not None and backtest_rows > n and bet_unscored
                else ""
            )
            + (
                f" {_count(unpriced)} of them had no price to bet at "
                "(<code>backtest_rows_unpriced</code>: the bookmaker named did not quote them, "
                "or quoted another handicap line)."
                if (unpriced := _real(section.get("backtest_rows_unpriced")))
                else ""
            )
            + "</p>"
        )
    return '<div class="coverage">\n' + "\n".join(parts) + "\n</div>"


def _closing_sources(section: Mapping[str, Any]) -> str:
    """The closing yardstick's sources with counts, and a warning when they mix."""
    closing = _mapping(_mapping(section.get("market")).get("closing"))
    sources = {str(k): v for k, v in _mapping(closing.get("sources")).items()}
    if not sources:
        return ""
    ordered = sorted(sources.items(), key=lambda kv: (-(_real(kv[1]) or 0.0), kv[0]))
    listed = ", ".join(f"{_e(_SOURCE_LABELS.get(k, k))} {_count(v)}" for k, v in ordered)
    text = f"<p><strong>Closing yardstick:</strong> {listed} (matches scored).</p>"
    if len(sources) > 1:
        text += (
            '\n<p class="warning"><strong>Warning:</strong> the closing yardstick mixes '
            "sources. Ratios to closing over a mix move with the mix (the lines differ in "
            "sharpness), so compare them across runs or leagues with care.</p>"
        )
    return text


def _staking_config(section: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """The backtest settings: a model's recorded ``config`` first, then the run configuration."""
    recorded: dict[str, Any] = {}
    backtest = _mapping(section.get("backtest"))
    for name in sorted(backtest):
        recorded = dict(_mapping(_mapping(backtest[name]).get("config")))
        if recorded:
            break
    return {**_mapping(config.get("backtest")), **recorded}


def _bankroll_units(cfg: Mapping[str, Any]) -> str:
    """The notional bankroll of the backtest settings ``cfg``, as text (100 when unrecorded)."""
    bankroll = _real(cfg.get("bankroll_units"))
    return _count(bankroll) if bankroll is not None else "100"


def _staking_terms(cfg: Mapping[str, Any]) -> list[str]:
    """The staking rule as applied (see ``evaluation.staking.stake_fractions``), whatever else
    the settings hold: a Kelly fraction only under ``fractional_kelly`` (``kelly`` stakes the
    full Kelly stake, fraction 1), and no stake cap under ``flat`` (1 unit a bet, never capped).
    """
    rule = cfg.get("staking")
    terms = [] if rule is None else [f"rule <code>{_e(rule)}</code>"]
    if rule == "flat":
        bankroll = _real(cfg.get("bankroll_units"))
        share = 100.0 / (bankroll if bankroll is not None and bankroll > 0 else 100.0)
        terms.append(f"1 unit a bet ({share:.4g}% of the bankroll)")
    elif rule == "kelly":
        terms.append("full Kelly (Kelly fraction 1)")
    elif _real(cfg.get("kelly_fraction")) is not None:
        terms.append(f"Kelly fraction {_general(cfg['kelly_fraction'])}")
    if _real(cfg.get("min_edge")) is not None:
        terms.append(
            f"min edge {_general(cfg['min_edge'])} (bet only when probability \u00d7 odds "
            f"\u2212 1 \u2265 {_general(cfg['min_edge'])})"
        )
    if rule == "flat":
        terms.append("no stake cap (a flat stake is never capped)")
    elif _real(cfg.get("max_stake_fraction")) is not None:
        terms.append(
            f"stake cap {100.0 * float(cfg['max_stake_fraction']):g}% of the bankroll per bet"
        )
    return terms


def _betting_terms(section: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """How the backtest's bets were priced and staked, and what CLV means."""
    if not _mapping(section.get("backtest")):
        return ""
    cfg = _staking_config(section, config)
    odds = section.get("odds_taken", cfg.get("bookmaker"))
    if odds is None:
        priced = "pre-match prices"
    elif str(odds) == "best":
        priced = "the best pre-match price across bookmakers (<code>best</code>)"
    else:
        priced = f"the pre-match price of <code>{_e(odds)}</code>"
    commission = _real(section.get("exchange_commission", cfg.get("exchange_commission")))
    if commission is not None:
        priced += (
            f"; exchange prices are taken net of the {100.0 * commission:.1f}% exchange "
            "commission on winnings"
        )
    terms = [f"<li><strong>Odds taken:</strong> {priced}.</li>"]
    staking = _staking_terms(cfg)
    if staking:
        terms.append(f"<li><strong>Staking:</strong> {', '.join(staking)}.</li>")
    bankroll_text = _bankroll_units(cfg)
    terms.append(
        f"<li><strong>Units:</strong> stakes, profit and drawdown are in units of a "
        f"{bankroll_text}-unit notional bankroll; stakes do not compound (each is sized on "
        f"the fixed {bankroll_text} units, not on the running balance).</li>"
    )
    without = [
        _real(_mapping(bets).get("n_bets_without_closing"))
        for bets in _mapping(section.get("backtest")).values()
    ]
    subset = (
        " A bet without a closing price on its line (on the Asian handicap, also one whose "
        "line moved by the close) has no CLV: the mean is over the other bets, and the CLV "
        "cell says over how many."
        if any(n is not None and n > 0 for n in without)
        else ""
    )
    terms.append(
        "<li><strong>CLV</strong> (closing-line value) = mean over bets of odds taken "
        "\u00d7 de-margined closing probability \u2212 1; positive means the bet beat the "
        f"close. It does not depend on the result.{subset}</li>"
    )
    return "<h3>How bets were priced and staked</h3>\n<ul>\n" + "\n".join(terms) + "\n</ul>"


def _first_champion(decision: Mapping[str, Any]) -> str | None:
    """The model this run made the market's first champion, else None.

    A run records it as ``first_champion`` (``"<model> <version>: <reason>"``; the decision's
    ``champion`` is that model, which any challenger was then tested against); a bare
    bootstrap decision says "no champion yet" and names the crowned model as its challenger.
    """
    champion, challenger = decision.get("champion"), decision.get("challenger")
    if decision.get("first_champion"):
        installed = champion if champion is not None else challenger
    elif "no champion yet" in str(decision.get("reason") or ""):
        installed = challenger if challenger is not None else champion
    else:
        return None
    return str(installed) if installed is not None else "the first model"


def _not_applied_verdict(decision: Mapping[str, Any], installed: str | None) -> str:
    """What this run meant to do to the champion pointer and could not (``not_applied``).

    A run's moves are, in order: install the first champion or refresh the incumbent (its refit
    on this run's matches), then, when the decision promotes, the challenger. A run stopped
    between the two lists the first in ``applied_moves``: the verdict says it was made and the
    promotion was not. Otherwise none of what is named here reached the registry.
    """
    champion, challenger = decision.get("champion"), decision.get("challenger")
    promote = decision.get("promote")
    other = challenger is not None and str(challenger) != installed
    made = decision.get("applied_moves")
    if isinstance(made, list) and made and promote is True and other:
        if installed is not None:
            done = f"<strong>{_e(installed)}</strong> installed as the first champion"
        else:
            who = _e(champion) if champion is not None else "the champion"
            done = (
                f"Champion <strong>{who}</strong> refreshed (its refit on this run&rsquo;s matches)"
            )
        return f"{done}; promotion of <strong>{_e(challenger)}</strong> over it not applied."
    if installed is not None:
        text = f"Installing <strong>{_e(installed)}</strong> as the first champion"
        if promote is True and other:
            return f"{text} and promoting <strong>{_e(challenger)}</strong> over it not applied."
        rest = f"; {_e(challenger)} was not promoted" if other else ""
        return f"{text} not applied{rest}."
    if promote is True:
        over = f" over {_e(champion)}" if champion is not None else ""
        who = _e(challenger) if challenger is not None else "the challenger"
        return f"Promotion of <strong>{who}</strong>{over} not applied."
    if promote is False and champion is not None:
        # with no challenger, a run either refreshed the champion (reason "champion <model>
        # refreshed: refit on ...") or left it alone ("<model> <version> stays: ...")
        refreshed = challenger is not None or "refreshed" in str(decision.get("reason") or "")
        if not refreshed:
            return f"Keep <strong>{_e(champion)}</strong>; this run planned no change to it."
        rest = f"; {_e(challenger)} was not promoted" if challenger is not None else ""
        return (
            f"Refresh of the champion <strong>{_e(champion)}</strong> (its refit on this "
            f"run&rsquo;s matches) not applied{rest}."
        )
    return "This run&rsquo;s change to the champion was not applied."


def _promotion(decision: Mapping[str, Any]) -> str:
    if not decision:
        return ""
    promote = decision.get("promote")
    champion = decision.get("champion")
    challenger = decision.get("challenger")
    who_ch = _e(challenger) if challenger is not None else "the challenger"
    who_cp = _e(champion) if champion is not None else "the champion"
    installed = _first_champion(decision)
    if decision.get("not_applied"):
        verdict, cls = _not_applied_verdict(decision, installed), "keep"
    elif installed is not None:
        # the first model became champion because there was none; a challenger, if any, was
        # then tested against it
        verdict = f"First champion: <strong>{_e(installed)}</strong> installed (there was none yet)"
        if challenger is not None and str(challenger) != installed:
            then = "then promoted over it" if promote is True else "not promoted"
            verdict += f"; {who_ch} {then}"
        verdict, cls = verdict + ".", "promote"
    elif promote is True:
        verdict, cls = f"Promote <strong>{who_ch}</strong> over {who_cp}.", "promote"
    elif promote is False and challenger is None:
        # "the challenger is not promoted" above a reason saying there was none
        verdict, cls = f"Keep <strong>{who_cp}</strong>; no challenger was evaluated.", "keep"
    elif promote is False:
        verdict, cls = f"Keep <strong>{who_cp}</strong>; {who_ch} is not promoted.", "keep"
    else:
        verdict, cls = "No promotion decision recorded.", ""
    parts = [f"<p>{verdict}</p>"]
    if decision.get("reason") is not None:
        parts.append(f"<p>Reason: {_e(decision['reason'])}</p>")
    if decision.get("not_applied"):
        parts.append(f"<p>Not applied: {_e(decision['not_applied'])}</p>")
    if decision.get("decision_not_saved"):
        parts.append(f"<p>Decision not saved: {_e(decision['decision_not_saved'])}</p>")
    if decision.get("registry_champion") is not None:
        parts.append(
            f"<p>Registry champion after this run: <strong>"
            f"{_e(decision['registry_champion'])}</strong></p>"
        )
    rule = _mapping(decision.get("rule"))
    metric = rule.get("metric") or "score"
    sequential = rule.get("test") == "sequential"
    # the level the reason compared p with: Holm's share of alpha, else alpha itself
    level = _real(decision.get("alpha_used"))
    level = level if level is not None else _real(rule.get("alpha"))
    stats = [
        (
            "always-valid p-value (sequential test)" if sequential else "p-value",
            _as_the_reason(decision.get("p_value"), lambda p: shown_p_value(p, level)),
        ),
        (
            f"mean difference ({metric}, champion \u2212 challenger per match; positive means "
            "the challenger is better)",
            _as_the_reason(decision.get("mean_difference"), shown_gain),
        ),
        ("paired matches", _count(decision.get("n"))),
        ("paired matches needed at this gain and spread", _count(decision.get("matches_needed"))),
    ]
    shown = [f"{_e(k)} {v}" for k, v in stats if v != _DASH]
    if shown:
        parts.append('<p class="note">' + " \u00b7 ".join(shown) + "</p>")
    alpha_used = _real(decision.get("alpha_used"))
    if alpha_used is not None:
        tested = _real(decision.get("challengers_tested"))
        family = _real(rule.get("alpha"))
        over = f" over {_count(tested)} challengers tested" if tested is not None else ""
        of = f", family alpha {_general(family)}" if family is not None else ""
        parts.append(
            f'<p class="note">Significance level used: {_general(alpha_used)} '
            f"(Holm-corrected{over}{of}).</p>"
        )
    body = "\n".join(parts)
    div_class = f"decision {cls}" if cls else "decision"
    return f'<h3>Promotion</h3>\n<div class="{div_class}">\n{body}\n</div>'


def _per_league(per_league: Mapping[str, Any], market: str, colors: Mapping[str, str]) -> str:
    by_league = {
        league: _mapping(_mapping(sections).get(market))
        for league, sections in per_league.items()
        if _mapping(_mapping(sections).get(market))
    }
    if not by_league:
        return ""
    ratios = {league: market_ratios(section) for league, section in by_league.items()}
    models = order_models(
        name for r in ratios.values() for name in r if name not in ("closing", "prematch")
    )
    has_prematch = any("prematch" in r for r in ratios.values())
    windows = {league: _mapping(s.get("test_window")) for league, s in by_league.items()}
    has_window = any(windows.values())
    head: list[tuple[str, bool]] = [("league", False)]
    if has_window:
        head += [("first kick-off", True), ("last kick-off", True), ("test matches", True)]
    head += [("n", True), ("closing log loss", True)]
    head += [(name, True) for name in models]
    if has_prematch:
        head.append(("pre-match line", True))
    rows = []
    for league in sorted(by_league):
        section = by_league[league]
        closing = _mapping(_mapping(section.get("market")).get("closing"))
        engines = _mapping(section.get("engines"))
        n = closing.get("n")
        if n is None:
            ns = [_real(_mapping(s).get("n")) for s in engines.values()]
            n = max((x for x in ns if x is not None), default=None)
        model_ratios = [ratios[league].get(name) for name in models]
        finite = [r for r in model_ratios if r is not None]
        best = min(finite) if finite else None
        cells = [f"<td>{_e(league)}</td>"]
        if has_window:
            window = windows[league]
            cells += [
                f'<td class="num">{_date(window.get("first_kickoff"))}</td>',
                f'<td class="num">{_date(window.get("last_kickoff"))}</td>',
                f'<td class="num">{_count(window.get("n_matches"))}</td>',
            ]
        cells += [
            f'<td class="num">{_count(n)}</td>',
            f'<td class="num">{_fixed(closing.get("log_loss"))}</td>',
        ]
        # every model tied with the best as shown (4 decimals) is shaded, not the first of them
        shown_best = None if best is None else f"{best:.4f}"
        cells += [
            _ratio_cell(r, best=r is not None and f"{r:.4f}" == shown_best) for r in model_ratios
        ]
        if has_prematch:
            cells.append(_ratio_cell(ratios[league].get("prematch")))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    caption = "Ratio to the closing line per league"
    if has_window:
        caption += (
            "; test window: the first and last kick-off (UTC date) and the number of the "
            "league's walk-forward test matches, of which n were scored in this market"
        )
    table = _table(head, rows, caption)
    bar_input = {
        league: {name: ratios[league].get(name) for name in models} for league in by_league
    }
    svg = ratio_bar_svg(bar_input, colors=colors, salt=f"ratio-{_slug(market)}")
    figure = _figure(
        svg,
        "Ratio to the closing line per league (bars start at 1.00; left is better).",
        f"{MARKET_TITLES.get(market, market)}: ratio to the closing line per league and model",
    )
    return (
        "<h3>Per league: model vs market</h3>\n"
        '<p class="note">Ratio to the closing line per league; the best model in each league is '
        "shaded.</p>\n" + table + "\n" + figure + _per_league_backtest(by_league)
    )


def _per_league_backtest(by_league: Mapping[str, Mapping[str, Any]]) -> str:
    """Each league's backtest per model: ROI, then the bets and CLV under it (it was in
    report.json only). No interval: a league's few hundred bets would give a wide one, and the
    pooled table above has it."""
    backtests = {league: _mapping(s.get("backtest")) for league, s in by_league.items()}
    models = order_models({name for b in backtests.values() for name in b})
    if not models:
        return ""
    rows = []
    for league in sorted(backtests):
        cells = [f"<td>{_e(league)}</td>"]
        for name in models:
            bets = _mapping(backtests[league].get(name))
            if not bets:  # not backtested in this league: one dash, not "– bets, CLV –"
                cells.append(f'<td class="num">{_DASH}</td>')
                continue
            detail = f"{_count(bets.get('n_bets'))} bets, CLV {_pct(bets.get('clv'))}"
            cells.append(
                f'<td class="num">{_pct(bets.get("roi"))}<br><span class="ci">{detail}</span></td>'
            )
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = [("league", False), *((name, True) for name in models)]
    caption = (
        "Backtest per league: ROI, then the number of bets and the closing-line value; each "
        "league is bet alone (its own bankroll) with the staking rules of the table above"
    )
    return "\n" + _table(head, rows, caption)


def _has_reliability_bins(reliability: Mapping[str, Any]) -> bool:
    """Whether any model's reliability data holds a bin to draw (a forecast was scored)."""
    return any(
        isinstance(bins, list | tuple) and any(isinstance(b, Mapping) for b in bins)
        for by_outcome in reliability.values()
        for bins in _mapping(by_outcome).values()
    )


def _market_section(report: Mapping[str, Any], market: str, colors: Mapping[str, str]) -> str:
    section = _mapping(_mapping(_mapping(report.get("evaluation")).get("markets")).get(market))
    promotion = _mapping(_mapping(report.get("promotion")).get(market))
    parts = [
        f'<section id="market-{_e(_slug(market))}">',
        f"<h2>{_e(MARKET_TITLES.get(market, market))}</h2>",
        _headline(section, colors, promotion),
        _coverage(section, market),
        _closing_sources(section),
        _betting_terms(section, _mapping(report.get("config"))),
        _promotion(promotion),
        _per_league(_mapping(report.get("per_league")), market, colors),
    ]
    reliability = _mapping(_mapping(report.get("reliability")).get(market))
    if reliability and not _has_reliability_bins(reliability):
        # every model's bins are empty (nothing scored in the market): no empty axes
        parts.append("<h3>Reliability</h3>")
        parts.append(
            '<p class="empty">No reliability data: no forecast was scored in this market.</p>'
        )
    elif reliability:
        svg = reliability_svg(reliability, colors=colors, salt=f"reliability-{_slug(market)}")
        parts.append("<h3>Reliability</h3>")
        parts.append(
            _figure(
                svg,
                "Observed frequency against forecast probability per bin; the diagonal is perfect "
                "calibration and marker area grows with the number of forecasts in the bin. "
                f"Hollow markers are bins with fewer than {MIN_BIN_FORECASTS} forecasts: too "
                "few to read, they are not joined to the curve.",
                f"{MARKET_TITLES.get(market, market)}: reliability diagram per outcome",
            )
        )
    curves = _mapping(_mapping(report.get("profit_curves")).get(market))
    if curves:
        svg = profit_curves_svg(curves, colors=colors, salt=f"profit-{_slug(market)}")
        parts.append("<h3>Cumulative profit</h3>")
        parts.append(
            _figure(
                svg,
                "Cumulative profit in units of the notional "
                f"{_bankroll_units(_staking_config(section, _mapping(report.get('config'))))}"
                "-unit bankroll, bets at pre-match prices, by kick-off. The "
                "curve steps at every bet; the maximum drawdown in the table is measured after "
                "all bets of one kick-off have settled (they settle together), so the curve can "
                "dip below it between bets of the same kick-off.",
                f"{MARKET_TITLES.get(market, market)}: cumulative profit per model",
            )
        )
    parts.append("</section>")
    return "\n".join(p for p in parts if p)


def _reason_table(
    title: str, counts: Mapping[str, Any], head: tuple[str, str] = ("reason", "count")
) -> str:
    if not counts:
        return f'<h3>{_e(title)}</h3>\n<p class="empty">none</p>'
    keyed = sorted(counts.items(), key=lambda kv: (-(_real(kv[1]) or 0.0), str(kv[0])))
    rows = [f'<tr><td>{_e(k)}</td><td class="num">{_count(v)}</td></tr>' for k, v in keyed]
    return f"<h3>{_e(title)}</h3>\n" + _table(((head[0], False), (head[1], True)), rows)


def _issue_table(title: str, issues: Sequence[Any]) -> str:
    shown = list(issues[:_MAX_LISTED_ISSUES])
    more = len(issues) - len(shown)
    head = f"<h3>{_e(title)} ({len(issues):,})</h3>"
    if not shown:
        return head + '\n<p class="empty">none</p>'
    if all(isinstance(i, Mapping) for i in shown):
        columns = _known_first({str(k) for issue in shown for k in issue}, _ISSUE_COLUMN_ORDER)
        rows = [
            "<tr>" + "".join(f"<td>{_e(_plain(issue.get(c)))}</td>" for c in columns) + "</tr>"
            for issue in shown
        ]
        body = _table([(c, False) for c in columns], rows)
    else:
        body = "<ul>\n" + "\n".join(f"<li>{_e(_plain(i))}</li>" for i in shown) + "\n</ul>"
    if more > 0:
        body += f'\n<p class="note">and {more:,} more</p>'
    return head + "\n" + body


def _known_first(names: set[str], known: Sequence[str]) -> list[str]:
    """``names`` with the ``known`` ones first in that order, the rest sorted."""
    return [k for k in known if k in names] + sorted(names - set(known))


def _plain(value: Any) -> str:
    if value is None:
        return _DASH
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def _data_section(data: Mapping[str, Any]) -> str:
    parts = ['<section id="data">', "<h2>Data integrity</h2>"]
    if not data:
        parts += ['<p class="empty">No integrity report recorded.</p>', "</section>"]
        return "\n".join(parts)
    scalars = {k for k in data if not isinstance(data[k], Mapping | list | tuple)}
    ordered = _known_first(scalars, _DATA_COUNT_ORDER)
    rows = [
        f"<tr><td>{_e(_DATA_COUNT_LABELS.get(k, k.replace('_', ' ')))} <code>{_e(k)}</code></td>"
        f'<td class="num">{_count(data[k])}</td></tr>'
        for k in ordered
    ]
    rows_read, rows_kept = _real(data.get("rows_read")), _real(data.get("rows_kept"))
    if rows_read and rows_kept is not None:
        rows.append(
            f'<tr><td>share of rows kept</td><td class="num">{100.0 * rows_kept / rows_read:.2f}%'
            "</td></tr>"
        )
    if rows:
        parts.append(_table((("count", False), ("value", True)), rows))
    for key in _known_first({k for k in data if isinstance(data[k], Mapping)}, _DATA_TABLE_ORDER):
        if key in _PER_FILE_GROUPS:  # "<file>: <group>" keys: one row per group on the page
            title = f"{key.replace('_', ' ')} (summed over files; per file in report.json)"
            # a count given as null (or not as a number) cannot be summed: it is left out
            counts = {k: n for k, v in data[key].items() if (n := _real(v)) is not None}
            by_group = sum_per_group(counts)
            parts.append(_reason_table(title, by_group, head=("odds group", "matches")))
            if len(counts) < len(data[key]):
                parts.append(
                    f'<p class="note">{len(data[key]) - len(counts):,} of the '
                    f"{len(data[key]):,} per-file entries have no count and are left out.</p>"
                )
        else:
            parts.append(_reason_table(key.replace("_", " "), data[key]))
    for key in sorted(k for k in data if isinstance(data[k], list | tuple)):
        parts.append(_issue_table(key.replace("_", " "), data[key]))
    parts.append("</section>")
    return "\n".join(parts)


def _timing_stage(step: str, steps: Collection[str]) -> str | None:
    """The recorded step that contains ``step`` (``fit_elo`` -> ``walk_forward``), else None."""
    for prefix, stage in _TIMING_PARTS.items():
        if step.startswith(prefix) and stage in steps and step != stage:
            return stage
    return None


def _timings_section(timings: Mapping[str, Any]) -> str:
    parts = ['<section id="timings">', "<h2>Timings</h2>"]
    seconds = {str(k): _real(v) for k, v in timings.items()}
    if not seconds:
        parts += ['<p class="empty">No timings recorded.</p>', "</section>"]
        return "\n".join(parts)
    stage_of = {step: _timing_stage(step, seconds) for step in seconds}
    stages = [step for step, stage in stage_of.items() if stage is None]
    # the parts are already inside their stage's seconds, so only the stages add up; a stage
    # without its time leaves the total (and every share of it) unknown
    times = [seconds[step] for step in stages]
    total = None if None in times else sum(v for v in times if v is not None)

    def largest_first(steps: Iterable[str]) -> list[str]:
        return sorted(steps, key=lambda step: (-(seconds[step] or 0.0), step))

    def share(v: float | None) -> str:
        return f"{100.0 * v / total:.1f}%" if v is not None and total else _DASH

    def row(label: str, v: float | None, cls: str = "") -> str:
        return (
            f'<tr{cls}><td>{label}</td><td class="num">{_fixed(v, 1)}</td>'
            f'<td class="num">{share(v)}</td></tr>'
        )

    rows = []
    for stage in largest_first(stages):
        rows.append(row(_e(stage), seconds[stage]))
        for part in largest_first(step for step, s in stage_of.items() if s == stage):
            rows.append(row(f"of which {_e(part)}", seconds[part], ' class="part"'))
    rows.append(
        f'<tr><td><strong>total</strong></td><td class="num">{_fixed(total, 1)}</td><td></td></tr>'
    )
    parts.append(_table((("step", False), ("seconds", True), ("share", True)), rows))
    if len(stages) < len(seconds):
        parts.append(
            '<p class="note">Rows marked &ldquo;of which&rdquo; are part of the step above '
            "them: they are not added to the total, and their share is of the total.</p>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _config_section(config: Any) -> str:
    parts = ['<section id="config">', "<h2>Configuration</h2>"]
    if not config:
        parts.append('<p class="empty">No configuration recorded.</p>')
    else:
        text = json.dumps(config, indent=2, sort_keys=True, default=str)
        parts.append(
            "<details>\n<summary>run configuration (JSON)</summary>\n"
            f"<pre>{_e(text)}</pre>\n</details>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _all_model_names(report: Mapping[str, Any]) -> list[str]:
    names: set[str] = set()
    for section in _mapping(_mapping(report.get("evaluation")).get("markets")).values():
        names.update(_mapping(_mapping(section).get("engines")))
        names.update(_mapping(_mapping(section).get("backtest")))
        names.update(_mapping(_mapping(section).get("market")))
    for key in ("reliability", "profit_curves"):
        for by_model in _mapping(report.get(key)).values():
            names.update(_mapping(by_model))
    for by_market in _mapping(report.get("per_league")).values():
        for section in _mapping(by_market).values():
            names.update(_mapping(_mapping(section).get("engines")))
    return sorted(str(n) for n in names)


# --------------------------------------------------------------------------- entry point


def render_html(report: Mapping[str, Any]) -> str:
    """Render a run report as one self-contained HTML page.

    The page holds a header (run id, creation time, git sha, test window), then per market a
    headline table (every model with log loss, ratio to the closing line, RPS, Brier, ECE, n
    and its backtest: ROI with CI, bets, profit, max drawdown, CLV; the champion marked, the
    registry's after the run when the report records it; the closing and pre-match lines as
    yardstick rows), the promotion decision, a per-league table
    (each league's test window: first and last kick-off and test matches) and bar chart of
    the ratio to closing, reliability diagrams and cumulative profit curves;
    then the data-integrity summary, timings and the configuration. All text is escaped;
    CSS and SVG are inline and there is no script or external URL. Missing sections render
    as short notes. The output depends only on the report's content, not on dict order.

    Parameters
    ----------
    report
        The run report dict (see ``docs/reports.md``); any section may be missing.

    Returns
    -------
    str
        The complete HTML document.

    Examples
    --------
    >>> page = render_html({"run_id": "<demo>"})
    >>> page.startswith("<!DOCTYPE html>"), "&lt;demo&gt;" in page, "<demo>" in page
    (True, True, False)
    """
    markets = _markets_in(report)
    colors = assign_colors(_all_model_names(report))
    run_id = report.get("run_id")
    title = "marketcast report" + (f" \u2014 {run_id}" if run_id is not None else "")
    body: list[str] = [_header(report, markets)]
    if markets:
        body += [_market_section(report, market, colors) for market in markets]
    else:
        body.append('<p class="empty">No evaluation results in this report.</p>')
    body.append(_data_section(_mapping(report.get("data"))))
    body.append(_timings_section(_mapping(report.get("timings_s"))))
    body.append(_config_section(report.get("config")))
    body.append(
        "<footer>Generated by marketcast. Probabilities of the market lines have the bookmaker "
        "margin removed; the closing line is the yardstick (ratio 1.0000).</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>\n{_CSS}\n</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
