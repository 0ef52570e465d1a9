"""Deterministic SVG plots for run reports: reliability diagrams, profit curves, ratio bars."""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

__all__ = [
    "MIN_BIN_FORECASTS",
    "PALETTE",
    "YARDSTICK_STYLES",
    "assign_colors",
    "order_models",
    "order_outcomes",
    "profit_curves_svg",
    "ratio_bar_svg",
    "reliability_svg",
]

# A reliability bin with fewer forecasts than this is drawn hollow and left out of the line.
MIN_BIN_FORECASTS = 10
# Reliability markers: outline and solid face at this opacity; a hollow one has no face at all.
_MARKER_ALPHA = 0.8
_HOLLOW = (0.0, 0.0, 0.0, 0.0)

# matplotlib's tab10, minus grey (reserved for the market yardsticks).
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
)

# The market lines are drawn in black/grey so the models stand out against them.
YARDSTICK_STYLES: dict[str, dict[str, Any]] = {
    "closing": {"color": "#222222", "linestyle": "--"},
    "prematch": {"color": "#888888", "linestyle": ":"},
    "market": {"color": "#555555", "linestyle": "-."},
}

# Everything that shapes the SVG text is fixed here so the output is byte-stable: the style is
# reset to matplotlib's defaults (a user's matplotlibrc cannot leak in), text stays text
# (`svg.fonttype = none`, no embedded glyph paths) and ids are hashed with a fixed salt.
_BASE_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "timezone": "UTC",
}

# Drop the Dublin Core block (it carries a creation date, the matplotlib version and URLs).
_SVG_METADATA: dict[str, Any] = {"Date": None, "Creator": None, "Type": None, "Format": None}

_FIG_WIDTH_IN = 9.0


@contextmanager
def _plot_style(salt: str) -> Iterator[None]:
    """Reset matplotlib's style and fix the SVG id salt for the duration of one plot."""
    # typed Any: matplotlib's stubs want Literal rc keys
    rc: Any = {**_BASE_RC, "svg.hashsalt": f"marketcast:{salt}"}
    with mpl_style.context("default"), mpl.rc_context(rc):
        yield


def _new_figure(width_in: float, height_in: float) -> Figure:
    """A figure bound to the Agg canvas explicitly: pyplot and its global backend are never used."""
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


_TAG = re.compile(r"<[^>]+>")
_ID_REFS = re.compile(r'(\bid="|url\(#|href="#)')


def _to_svg(fig: Figure) -> str:
    """Render ``fig`` to SVG text starting at ``<svg`` (no XML prolog, no external DTD URL).

    Every element id (and every reference to one) gets the plot's salt as a prefix, so several
    plots inlined in one HTML page never share an id (matplotlib names groups ``figure_1``,
    ``axes_1``, ... in every file).
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_SVG_METADATA)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    salt = str(mpl.rcParams["svg.hashsalt"])
    prefix = re.sub(r"[^A-Za-z0-9_-]+", "-", salt) + "-"
    # inside tags only: text content never holds a raw "<" or ">" (matplotlib escapes them)
    return _TAG.sub(lambda tag: _ID_REFS.sub(lambda m: m.group(1) + prefix, tag.group(0)), text)


def _label(name: str) -> str:
    """Make ``name`` safe as a matplotlib label: no mathtext, not hidden from the legend, and
    valid Unicode (a lone surrogate, which a name read with ``surrogateescape`` may hold, made
    the SVG writer raise; it becomes ``?``)."""
    text = str(name).encode("utf-8", errors="replace").decode("utf-8").replace("$", r"\$")
    # matplotlib hides legend entries whose label starts with an underscore.
    return "\u200b" + text if text.startswith("_") else text


def _as_float(value: Any) -> float:
    """``value`` as a float, NaN when it is missing or not a number."""
    if isinstance(value, bool) or value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def order_models(names: Iterable[str]) -> list[str]:
    """Models in display order: models by name, then the yardsticks (closing, prematch, market).

    The order never depends on dict insertion order, so a report re-read from sorted JSON
    draws the same pictures.

    Parameters
    ----------
    names
        Model names; duplicates are ignored.

    Returns
    -------
    list[str]
        The distinct names in display order.

    Examples
    --------
    >>> order_models(["closing", "lightgbm", "dixon_coles", "lightgbm"])
    ['dixon_coles', 'lightgbm', 'closing']
    """
    unique = set(names)
    yardsticks = [name for name in YARDSTICK_STYLES if name in unique]
    return sorted(unique - set(yardsticks)) + yardsticks


def assign_colors(names: Sequence[str]) -> dict[str, str]:
    """Give each model a fixed colour: palette order follows the sorted model names.

    Yardsticks (``closing``, ``prematch``, ``market``) keep their own grey styles and take no
    palette slot.

    Parameters
    ----------
    names
        Model names; duplicates are ignored.

    Returns
    -------
    dict[str, str]
        Model name -> hex colour.

    Examples
    --------
    >>> assign_colors(["lightgbm", "closing", "dixon_coles"])
    {'closing': '#222222', 'dixon_coles': '#1f77b4', 'lightgbm': '#ff7f0e'}
    """
    colors: dict[str, str] = {}
    slot = 0
    for name in sorted(set(names)):
        if name in YARDSTICK_STYLES:
            colors[name] = YARDSTICK_STYLES[name]["color"]
        else:
            colors[name] = PALETTE[slot % len(PALETTE)]
            slot += 1
    return colors


def _style_for(name: str, colors: Mapping[str, str]) -> dict[str, Any]:
    style: dict[str, Any] = {"linestyle": "-"}
    style.update(YARDSTICK_STYLES.get(name, {}))
    style["color"] = colors.get(name, style.get("color", "#333333"))
    return style


def _empty_figure(message: str, salt: str) -> str:
    with _plot_style(salt):
        fig = _new_figure(_FIG_WIDTH_IN, 1.2)
        fig.text(0.5, 0.5, message, ha="center", va="center", color="#666666")
        return _to_svg(fig)


def _items(value: Any) -> list[Any]:
    """``value`` as a list when it is one (or a tuple), else empty: a report's list may be
    missing, ``null`` or of another type."""
    return list(value) if isinstance(value, list | tuple) else []


def _mapping_entries(section: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The entries of ``{model or league: {...}}`` that are mappings: one given as ``null`` (or
    as another type) has nothing to draw."""
    return {str(k): v for k, v in section.items() if isinstance(v, Mapping)}


def _bin_point(b: Any) -> tuple[float, float, float] | None:
    """A reliability bin as (p_mean, freq, n); None when it is not drawable."""
    if not isinstance(b, Mapping):
        return None
    point = (_as_float(b.get("p_mean")), _as_float(b.get("freq")), _as_float(b.get("n")))
    return point if math.isfinite(point[0]) and math.isfinite(point[1]) else None


def reliability_svg(
    reliability_for_market: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]],
    *,
    colors: Mapping[str, str] | None = None,
    salt: str = "reliability",
) -> str:
    """Reliability diagrams for one market: one panel per outcome, one curve per model.

    Each bin is drawn at (mean forecast probability, observed frequency) with a marker whose
    area grows with the number of forecasts in the bin; the diagonal is perfect calibration.
    The curve joins only bins with at least :data:`MIN_BIN_FORECASTS` forecasts; a thinner bin
    is a hollow marker on its own (its frequency is too noisy to read as part of the curve).

    Parameters
    ----------
    reliability_for_market
        ``{model: {outcome: [{"p_mean": float, "freq": float, "n": int}, ...]}}``, e.g. the
        report's ``reliability["1x2"]``. Panels follow :func:`order_outcomes`.
    colors
        Model name -> colour; defaults to :func:`assign_colors` over the models given.
    salt
        Fixed salt for SVG element ids; give each plot in one HTML page its own.

    Returns
    -------
    str
        SVG document text starting at ``<svg``.
    """
    # a model given as null (or as something else than a mapping) draws nothing, and so does
    # an outcome whose bins are null or not a list
    by_model = _mapping_entries(reliability_for_market)
    models = order_models(m for m, by_outcome in by_model.items() if by_outcome)
    outcomes = order_outcomes(str(o) for m in models for o in by_model[m])
    points_of = {m: {str(o): _points(bins) for o, bins in by_model[m].items()} for m in models}
    # a market with nothing scored lists its outcomes with no bins: a note, not empty axes
    if not any(points for m in models for points in points_of[m].values()):
        return _empty_figure("no reliability data", salt)
    colors = dict(colors) if colors is not None else assign_colors(models)

    n_max = 1.0
    for model in models:
        for bins in by_model[model].values():
            for b in _items(bins):
                n = _as_float(b.get("n")) if isinstance(b, Mapping) else math.nan
                if math.isfinite(n):
                    n_max = max(n_max, n)

    with _plot_style(salt):
        fig = _new_figure(max(3.0 * len(outcomes), 6.0), 3.6)
        axes = fig.subplots(1, len(outcomes), squeeze=False, sharey=True)[0]
        for ax, outcome in zip(axes, outcomes, strict=True):
            ax.plot([0.0, 1.0], [0.0, 1.0], color="#bbbbbb", linewidth=1.0, zorder=1)
            for model in models:
                points = points_of[model].get(outcome)
                if not points:
                    continue
                style = _style_for(model, colors)
                xs = [p[0] for p in points]
                ys = [p[1] for p in points]
                # marker area in pt^2: 8 for an empty bin up to 80 for the fullest bin
                sizes = [
                    8.0 + 72.0 * (p[2] / n_max if math.isfinite(p[2]) else 0.0) for p in points
                ]
                # the line joins only bins with enough forecasts to read; a thin bin stays a
                # hollow marker of its own, so a few forecasts never bend the curve
                solid = [p[2] >= MIN_BIN_FORECASTS for p in points]
                line = [(x, y) for x, y, ok in zip(xs, ys, solid, strict=True) if ok]
                ax.plot(
                    [x for x, _ in line] or [math.nan],
                    [y for _, y in line] or [math.nan],
                    linewidth=1.2,
                    label=_label(model),
                    zorder=2,
                    **style,
                )
                # the opacity goes into each colour, not `alpha=`: that overrode the alpha 0 of
                # "none" too, and the SVG got a fill-opacity with no fill, which browsers fill
                # black; a transparent face is written as `fill: none`
                color = to_rgba(style["color"], _MARKER_ALPHA)
                faces = [color if ok else _HOLLOW for ok in solid]
                ax.scatter(xs, ys, s=sizes, facecolors=faces, edgecolors=[color], zorder=3)
            ax.set_xlim(0.0, 1.0)
            ax.set_ylim(0.0, 1.0)
            ax.set_title(_label(outcome))
            ax.set_xlabel("forecast probability")
        axes[0].set_ylabel("observed frequency")
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5))
        return _to_svg(fig)


def _points(bins: Any) -> list[tuple[float, float, float]]:
    """The drawable bins of one outcome, sorted; none when ``bins`` is not a list."""
    return sorted(p for p in map(_bin_point, _items(bins)) if p is not None)


_OUTCOME_ORDER = ("home", "draw", "away", "over", "under")


def order_outcomes(names: Iterable[str]) -> list[str]:
    """Outcomes in reading order: home, draw, away, over, under, then any others by name.

    Parameters
    ----------
    names
        Outcome names; duplicates are ignored.

    Returns
    -------
    list[str]
        The distinct names in display order.

    Examples
    --------
    >>> order_outcomes(["away", "home", "draw", "away"])
    ['home', 'draw', 'away']
    """
    unique = set(names)
    known = [name for name in _OUTCOME_ORDER if name in unique]
    return known + sorted(unique - set(known))


def _parse_kickoff(value: Any) -> dt.datetime | None:
    """ISO-8601 text -> naive UTC datetime (matplotlib's date axis is set to UTC)."""
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    return stamp


#: A profit curve of at most this many bets marks each bet with a dot.
_MARKED_BETS = 10


def profit_curves_svg(
    curves_for_market: Mapping[str, Mapping[str, Sequence[Any]]],
    *,
    colors: Mapping[str, str] | None = None,
    salt: str = "profit",
) -> str:
    """Cumulative profit (units staked at 1 per unit of stake) against kick-off time.

    Parameters
    ----------
    curves_for_market
        ``{model: {"kickoff_utc": [iso str, ...], "cumulative_profit": [float, ...]}}``, e.g.
        the report's ``profit_curves["1x2"]``. Without usable ``kickoff_utc`` the x axis is
        the bet number.
    colors
        Model name -> colour; defaults to :func:`assign_colors` over the models given.
    salt
        Fixed salt for SVG element ids.

    Returns
    -------
    str
        SVG document text starting at ``<svg``.
    """
    series: list[tuple[str, list[Any], list[float]]] = []
    use_dates = True
    curves = _mapping_entries(curves_for_market)  # a model given as null has no curve
    for model in order_models(curves):
        curve = curves[model]
        profit = [_as_float(v) for v in _items(curve.get("cumulative_profit"))]
        if not profit:
            continue
        stamps = [_parse_kickoff(v) for v in _items(curve.get("kickoff_utc"))]
        if len(stamps) != len(profit) or any(s is None for s in stamps):
            use_dates = False
        series.append((model, stamps, profit))
    if not series:
        return _empty_figure("no bets placed", salt)
    colors = dict(colors) if colors is not None else assign_colors([s[0] for s in series])

    with _plot_style(salt):
        fig = _new_figure(_FIG_WIDTH_IN, 3.6)
        ax = fig.subplots()
        ax.axhline(0.0, color="#999999", linewidth=0.8)
        for model, stamps, profit in series:
            # each curve starts at 0 just before its first bet (at its kick-off, or bet 0), so
            # the first bet's own step is drawn: a one-bet curve was a lone point, drawing nothing
            xs: list[Any] = [stamps[0], *stamps] if use_dates else list(range(len(profit) + 1))
            few = len(profit) <= _MARKED_BETS  # a few steps are easy to miss: mark each bet
            ax.step(
                xs,
                [0.0, *profit],
                where="post",
                linewidth=1.2,
                label=_label(model),
                marker="o" if few else None,
                markersize=3,
                markevery=list(range(1, len(xs))),
                **_style_for(model, colors),
            )
        ax.set_xlabel("kick-off (UTC)" if use_dates else "bet number")
        linear = profit_linear_range([profit for _, _, profit in series])
        if linear is None:
            ax.set_ylabel("cumulative profit (units)")
        else:
            # Kelly stakes of a model far from the price lost hundreds of units, and the curves
            # near the market, within a few units of 0, were flat lines along the axis
            ax.set_yscale("symlog", linthresh=linear)
            ax.set_ylabel(f"cumulative profit (units; log scale past \u00b1{linear:g})")
        # below the axes: inside them it covered a curve's early stretch (Dixon-Coles' 1X2 run
        # from +96 to +147 units, 183 vertices, in the audited report)
        fig.legend(loc="outside lower center", ncols=min(len(series), 5))
        return _to_svg(fig)


def profit_linear_range(profits: Sequence[Sequence[float]]) -> float | None:
    """The range ``±r`` of units a profit plot keeps linear, logarithmic past it; None for an
    all-linear plot.

    When the widest curve reaches more than ten times as far from 0 as another, ``r`` is the
    reach of the widest of the others (rounded up to a power of ten's 1, 2 or 5): those keep
    their shape, and the wide ones are drawn on a log scale past it.

    Examples
    --------
    >>> profit_linear_range([[-3.0, 12.0], [-470.0], [-8.5]]), profit_linear_range([[5.0], [9.0]])
    (20.0, None)
    """
    reaches = sorted(
        max((abs(v) for v in profit if math.isfinite(v)), default=0.0) for profit in profits
    )
    if len(reaches) < 2 or reaches[-1] <= 0.0:
        return None
    near = [reach for reach in reaches if reach * 10.0 < reaches[-1]]
    if not near:
        return None
    reach = max(near[-1], 1.0)
    power = 10.0 ** math.floor(math.log10(reach))
    return next(step * power for step in (1.0, 2.0, 5.0, 10.0) if step * power >= reach)


def ratio_bar_svg(
    ratios: Mapping[str, Mapping[str, Any]],
    *,
    colors: Mapping[str, str] | None = None,
    salt: str = "ratio",
) -> str:
    """Horizontal grouped bars of log loss / closing-line log loss, per league and model.

    A bar left of the 1.00 line means the model beat the de-margined closing line there.

    Parameters
    ----------
    ratios
        ``{league: {model: ratio}}``; missing or non-finite ratios are skipped.
    colors
        Model name -> colour; defaults to :func:`assign_colors` over the models given.
    salt
        Fixed salt for SVG element ids.

    Returns
    -------
    str
        SVG document text starting at ``<svg``.
    """
    by_league = _mapping_entries(ratios)  # a league given as null has no bars
    leagues = sorted(by_league)
    models = order_models(m for league in leagues for m in by_league[league])
    values = {
        (league, model): _as_float(by_league[league].get(model))
        for league in leagues
        for model in models
    }
    finite = [v for v in values.values() if math.isfinite(v)]
    if not finite:
        return _empty_figure("no per-league ratios", salt)
    colors = dict(colors) if colors is not None else assign_colors(models)

    bar_h = 0.8 / len(models)
    with _plot_style(salt):
        fig = _new_figure(_FIG_WIDTH_IN, 1.4 + 0.22 * len(leagues) * len(models))
        ax = fig.subplots()
        for j, model in enumerate(models):
            ys = [i + (j - (len(models) - 1) / 2) * bar_h for i in range(len(leagues))]
            ws = [values[(league, model)] for league in leagues]
            keep = [(y, w) for y, w in zip(ys, ws, strict=True) if math.isfinite(w)]
            if keep:
                # bars grow from the market's 1.00: leftwards = better than the closing line
                ax.barh(
                    [k[0] for k in keep],
                    [k[1] - 1.0 for k in keep],
                    left=1.0,
                    height=bar_h * 0.9,
                    color=colors.get(model, "#333333"),
                    label=_label(model),
                )
        lo, hi = min(finite), max(finite)
        pad = max(0.01, (hi - lo) * 0.15, abs(1.0 - lo) * 0.15, abs(hi - 1.0) * 0.15)
        ax.set_xlim(min(lo, 1.0) - pad, max(hi, 1.0) + pad)
        ax.axvline(1.0, color="#222222", linestyle="--", linewidth=1.0)
        ax.set_yticks(range(len(leagues)), [_label(league) for league in leagues])
        ax.invert_yaxis()
        ax.set_xlabel("log loss / closing-line log loss (1.00 = market; lower is better)")
        fig.legend(loc="outside right upper")
        return _to_svg(fig)
