"""Football benchmark: every model against the closing line; our Dixon-Coles against penaltyblog.

Run with ``make bench``. Writes ``bench/results/football.json``, the README's results table and
docs/models.md's penaltyblog paragraph (each between its ``<!-- bench:football... -->`` markers).

1. Walk-forward evaluation (the ``marketcast run`` set-up, without the registry) over the last two
   bundled seasons of each league: per league and pooled, each model's 1X2 log loss divided by the
   de-margined closing line's (the headline ratio), RPS, ROI and CLV at the best pre-match price.
2. penaltyblog's ``DixonColesGoalModel`` on the same matches: every second test week of every
   league, both fitted on the same training rows with the same weights (that league's earlier
   matches, our fit's own time decay: 180-day half-life from the latest kick-off, weights below
   ``MIN_WEIGHT`` dropped; checked in every fit); 1X2 log loss on the week's matches and fit time,
   as a ratio. Without penaltyblog installed the bench stops before the evaluation, unless
   ``--no-penaltyblog`` asks to skip the comparison (the README block then says it was not run).
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _markdown import replace_block

from marketcast.config import FootballRunConfig, load_config
from marketcast.evaluation.scoring import log_loss_per_sample
from marketcast.evaluation.staking import applied_kelly_multiplier, applied_stake_cap
from marketcast.models.dixon_coles import (
    MIN_WEIGHT,
    DixonColes,
    _decay_weights,
    _kickoff_seconds,
)
from marketcast.orchestration.football import (
    evaluate_football,
    load_data,
    test_mask_last_seasons,
    write_json,
)
from marketcast.serving.service import edge_confidence, reliability_blend

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "football.json"
README = ROOT / "README.md"
HALF_LIFE_DAYS = 180.0


def evaluation_section(config: FootballRunConfig) -> tuple[dict[str, Any], Any, Any]:
    data = load_data(config)
    mask = test_mask_last_seasons(data.matches, config.walk_forward.last_seasons)
    t0 = time.perf_counter()
    evaluation, _, timings = evaluate_football(config, data, mask)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {"wall_s": round(wall, 1), "timings_s": timings, "markets": {}}
    for market_name, ev in evaluation.markets.items():
        out["markets"][market_name] = market_section(
            ev, evaluation.n_matches, evaluation.test_windows
        )
    one_x_two = evaluation.markets["1x2"]
    kickoff = data.matches["kickoff_utc"].to_numpy()[one_x_two.rows]
    out["routing"] = routing_section(one_x_two, kickoff)
    return out, data, mask


def market_section(ev: Any, n_test: int, test_windows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One market's results: scores per model, pooled and per league, and what was scored.

    ``ev`` is a ``MarketEvaluation``, ``n_test`` the walk-forward's test matches (every league)
    and ``test_windows`` each league's (``FootballEvaluation.test_windows``).
    ``n`` is the matches scored; ``not_scored`` counts the rest by the first reason each failed
    (``evaluate_football``'s own counts: no pre-match price, no closing price, a handicap line
    that moved, ...), so ``n + sum(not_scored) == n_test``. ``backtest_rows`` is the matches the
    backtest may bet (priced before kick-off: more than ``n`` where a reason is learnt only at the
    close). ``per_league_counts`` gives the same split per league, counts only (the evaluation
    keeps no reasons per league).
    """
    s = ev.summary
    pooled = _rows(s["engines"], s["market"], s["ratio_to_closing"], s["backtest"])
    leagues = {
        league: _rows(sec["engines"], sec["market"], sec["ratio_to_closing"], sec["backtest"])
        for league, sec in ev.per_league.items()
    }
    counts = {}
    for league, window in sorted(test_windows.items()):
        league_test = int(window["n_matches"])
        sec = ev.per_league.get(league)  # absent: a league this market neither scored nor bet
        # the yardsticks and every model are scored on the same rows
        league_scored = int(sec["market"]["closing"]["n"]) if sec else 0
        counts[league] = {
            "n_test": league_test,
            "n": league_scored,
            "n_not_scored": league_test - league_scored,
        }
    return {
        "n": s["n"],
        "n_test": int(n_test),
        "not_scored": {reason: int(n) for reason, n in s["not_scored"].items()},
        "backtest_rows": s["backtest_rows"],
        "champion": s["champion"],
        "promotion": ev.promotion,
        "pooled": pooled,
        "per_league": leagues,
        "per_league_counts": counts,
    }


ROUTING_THRESHOLDS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.01)


def routing_section(ev: Any, kickoff: np.ndarray) -> dict[str, Any]:
    """The server's edge/cloud router replayed on the walk-forward's out-of-sample forecasts.

    Per candidate edge model (the champion, and every other engine as a what-if) and threshold:
    the share the edge answers, and the 1X2 log loss (and ratio to closing) of the edge alone,
    the cloud ensemble alone, and the routed answers. The router and the ensemble are the
    server's own functions. The ensemble weights come from each member's walk-forward log loss
    on the matches that kicked off on earlier days (``kickoff``: each scored row's), as a
    server's manifests hold losses on matches already played; the first day's are equal. They
    were the losses on the very matches the blend was scored on, which flattered the cloud path
    by about 0.001 of ratio on a probe's two-league replica. The market in the request is the
    de-margined pre-match price.
    """
    forecasts, labels = ev.forecasts, ev.labels
    engines = [name for name in forecasts if name not in ("closing", "prematch")]
    cloud = _blend_on_earlier_days(
        np.stack([forecasts[name] for name in engines]),
        np.stack([ev.losses[name] for name in engines]),
        kickoff,
    )
    closing_ll = float(ev.losses["closing"].mean())

    def score(p: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
        y = labels if rows is None else labels[rows]
        p = p if rows is None else p[rows]
        if not len(p):
            return {"log_loss": None, "ratio_to_closing": None}
        ll = float(log_loss_per_sample(y, p).mean())
        return {"log_loss": round(ll, 5), "ratio_to_closing": round(ll / closing_ll, 5)}

    out: dict[str, Any] = {
        "champion": ev.champion,
        "members": engines,
        "cloud": score(cloud),
        "n": len(labels),
        "edge_models": {},
    }
    for name in [ev.champion, *(e for e in engines if e != ev.champion)]:
        confidence = edge_confidence(forecasts[name], forecasts["prematch"])
        rows = []
        for threshold in ROUTING_THRESHOLDS:
            edge = confidence >= threshold
            routed = np.where(edge[:, None], forecasts[name], cloud)
            rows.append(
                {
                    "threshold": threshold,
                    "edge_share": round(float(edge.mean()), 4),
                    "routed": score(routed),
                    # on the fixtures the edge kept: would the cloud have done better?
                    "edge_rows_by_edge": score(forecasts[name], edge),
                    "edge_rows_by_cloud": score(cloud, edge),
                }
            )
        out["edge_models"][name] = {"edge_alone": score(forecasts[name]), "thresholds": rows}
    return out


def _blend_on_earlier_days(
    probs: np.ndarray, losses: np.ndarray, kickoff: np.ndarray
) -> np.ndarray:
    """The reliability blend of each row, weighted by the members' mean loss over the rows of
    earlier UTC days (``probs`` (members, rows, outcomes), ``losses`` (members, rows))."""
    day = pd.DatetimeIndex(kickoff).floor("D")
    blend = np.empty(probs.shape[1:])
    for today in day.unique():
        rows = np.flatnonzero(day == today)
        before = np.flatnonzero(day < today)
        past = losses[:, before].mean(axis=1) if len(before) else np.zeros(len(losses))
        blend[rows] = reliability_blend(probs[:, rows], past)
    return blend


def _rows(engines, market, ratio, backtest) -> dict[str, Any]:
    rows = {}
    for name, scores in engines.items():
        bt = backtest.get(name, {})
        rows[name] = {
            "ratio_to_closing": ratio[name],
            "log_loss": scores["log_loss"],
            "rps": scores["rps"],
            "roi": bt.get("roi"),
            "n_bets": bt.get("n_bets"),
            "clv": bt.get("clv"),
            "n": scores["n"],
        }
    rows["prematch_market"] = {
        "ratio_to_closing": ratio["prematch"],
        "log_loss": market["prematch"]["log_loss"],
        "rps": market["prematch"]["rps"],
    }
    rows["closing_line"] = {
        "ratio_to_closing": 1.0,
        "log_loss": market["closing"]["log_loss"],
        "rps": market["closing"]["rps"],
    }
    return rows


def training_rows(train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The training rows ``DixonColes.fit`` keeps, and their weights: its own rule (time decay
    from the latest kick-off in continuous time, ``HALF_LIFE_DAYS``, weights below
    ``MIN_WEIGHT`` dropped), so that penaltyblog gets the very rows and weights ours fits on.

    penaltyblog's ``dixon_coles_weights`` counts whole days: a match 1,793.9 days old kept a
    weight above 1e-3 there and was dropped by ours (4 of 198 fits on the bundle had one row more
    for penaltyblog). Returns the boolean mask over ``train`` and the kept rows' weights.
    """
    weights = _decay_weights(_kickoff_seconds(train["kickoff_utc"]), HALF_LIFE_DAYS)
    keep = weights >= MIN_WEIGHT
    return keep, weights[keep]


def penaltyblog_section(data, mask: np.ndarray, every_nth_week: int = 2) -> dict[str, Any]:
    from penaltyblog.models import DixonColesGoalModel

    matches = data.matches
    goals = matches[["home_goals", "away_goals"]].to_numpy()
    outcome = np.where(goals[:, 0] > goals[:, 1], 0, np.where(goals[:, 0] == goals[:, 1], 1, 2))
    times: dict[str, list[float]] = {"ours_cold": [], "ours_warm": [], "penaltyblog": []}
    probs: dict[str, list[np.ndarray]] = {"ours": [], "penaltyblog": []}
    outcomes: list[np.ndarray] = []
    n_train: list[int] = []
    skipped = 0
    pb_failed = 0
    for league, _group in matches.groupby("league", sort=True):
        league_mask = mask & (matches["league"] == league).to_numpy()
        kickoff = matches["kickoff_utc"]
        start = kickoff[league_mask].min().floor("D")
        end = kickoff[league_mask].max()
        warm = DixonColes(half_life_days=HALF_LIFE_DAYS, warm_start=True)
        week = 0
        while start <= end:
            stop = start + pd.Timedelta(days=7)
            test = league_mask & (kickoff >= start).to_numpy() & (kickoff < stop).to_numpy()
            train = (matches["league"] == league).to_numpy() & (kickoff < start).to_numpy()
            start = stop
            if not test.any():
                continue
            week += 1
            if week % every_nth_week:
                continue
            tr = matches[train]
            keep, weights = training_rows(tr)
            tr, y = tr[keep], goals[train][keep]
            n_train.append(len(tr))
            cold = DixonColes(half_life_days=HALF_LIFE_DAYS)
            t0 = time.perf_counter()
            cold.fit(tr, y)
            times["ours_cold"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            warm.fit(tr, y)
            times["ours_warm"].append(time.perf_counter() - t0)
            if not cold.n_train_ == warm.n_train_ == len(tr) == len(weights):
                raise RuntimeError(
                    f"{league}, week from {stop - pd.Timedelta(days=7):%Y-%m-%d}: penaltyblog "
                    f"gets {len(tr)} training rows ({len(weights)} weights), ours fitted on "
                    f"{cold.n_train_} cold and {warm.n_train_} warm: not the same rows"
                )
            pb = DixonColesGoalModel(
                tr["home_goals"], tr["away_goals"], tr["home_team"], tr["away_team"], weights
            )
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pb.fit()
            times["penaltyblog"].append(time.perf_counter() - t0)
            te = matches[test]
            known = set(tr["home_team"]) | set(tr["away_team"])
            seen = te["home_team"].isin(known).to_numpy() & te["away_team"].isin(known).to_numpy()
            skipped += int((~seen).sum())
            te = te[seen]
            if te.empty:
                continue
            pb_p = np.array(
                [
                    _penaltyblog_1x2(pb, h, a, cold.max_goals + 1)
                    for h, a in zip(te["home_team"], te["away_team"], strict=True)
                ]
            )
            valid = ~np.isnan(pb_p).any(axis=1)
            pb_failed += int((~valid).sum())
            probs["ours"].append(cold.predict_proba(te)[valid])
            probs["penaltyblog"].append(pb_p[valid] / pb_p[valid].sum(axis=1, keepdims=True))
            outcomes.append(outcome[test][seen][valid])
    y = np.concatenate(outcomes)

    def log_loss(p: np.ndarray) -> float:
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1))))

    ours, theirs = np.concatenate(probs["ours"]), np.concatenate(probs["penaltyblog"])
    ms = {k: 1e3 * float(np.mean(v)) for k, v in times.items()}
    return {
        # both fitted on the rows and weights of `training_rows`, checked in every fit
        "same_rows_and_weights": True,
        "half_life_days": HALF_LIFE_DAYS,
        "min_weight": MIN_WEIGHT,
        "n_leagues": int(matches.loc[mask, "league"].nunique()),
        "n_fits": len(times["penaltyblog"]),
        "n_matches": len(y),
        "n_matches_skipped_unseen_team": skipped,
        "n_matches_penaltyblog_failed": pb_failed,
        "mean_training_matches": float(np.mean(n_train)),
        "log_loss_ours": log_loss(ours),
        "log_loss_penaltyblog": log_loss(theirs),
        "max_abs_probability_difference": float(np.abs(ours - theirs).max()),
        "mean_fit_ms": ms,
        "fit_speedup_cold": ms["penaltyblog"] / ms["ours_cold"],
        "fit_speedup_warm": ms["penaltyblog"] / ms["ours_warm"],
    }


def _penaltyblog_1x2(model: Any, home: str, away: str, max_goals: int) -> np.ndarray:
    """penaltyblog's 1X2, or NaN where its low-score correction goes negative (it raises)."""
    try:
        return np.asarray(model.predict(home, away, max_goals=max_goals).home_draw_away)
    except ValueError:
        return np.full(3, np.nan)


def readme_table(results: dict[str, Any]) -> str:
    ev = results["evaluation"]
    lines = [
        f"Measured by `make bench` on {results['machine']} ({results['date']}); "
        f"walk-forward over the last two bundled seasons of each league, weekly steps, "
        f"{ev['wall_s']:.0f} s for the whole evaluation. Ratio = log loss / de-margined closing "
        "line's log loss on the same matches (lower is better, 1.00 = the closing line). ROI and "
        f"CLV: {staking_terms(results['config']['backtest'])}.",
        "",
        "**1X2, per league** (ratio to closing; ROI)",
        "",
    ]
    one = ev["markets"]["1x2"]
    # per league: matches scored and not (absent from results written before they were recorded)
    counts = one.get("per_league_counts")
    models = [m for m in one["pooled"] if m not in ("closing_line",)]
    count_columns = "n | not scored" if counts else "n"
    header = f"| league | {count_columns} | " + " | ".join(models) + " |"
    lines += [header, "|" + " --- |" * (len(models) + count_columns.count("|") + 2)]
    leagues = sorted(set(one["per_league"]) | set(counts or {}))
    for league in [*leagues, "pooled"]:
        rows = one["pooled"] if league == "pooled" else one["per_league"].get(league, {})
        if counts:
            n, n_test = (
                (one["n"], one["n_test"])
                if league == "pooled"
                else (counts[league]["n"], counts[league]["n_test"])
            )
            n_cells = f"{n} | {n_test - n}"
        else:
            n_cells = str(next((r["n"] for r in rows.values() if "n" in r), ""))
        cells = []
        for m in models:
            r = rows.get(m, {})
            cell = f"{r['ratio_to_closing']:.4f}" if r.get("ratio_to_closing") else "-"
            if r.get("roi") is not None:
                cell += f"; {r['roi']:+.1%}"
            cells.append(cell)
        lines.append(f"| {league} | {n_cells} | " + " | ".join(cells) + " |")
    lines += scored_lines(ev["markets"])
    lines += ["", "**Pooled, every market**", ""]
    lines += [
        "| market | model | ratio to closing | log loss | RPS | ROI | bets | CLV |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for market_name, sec in ev["markets"].items():
        for m, r in sec["pooled"].items():
            champion = " (champion)" if m == sec["champion"] else ""
            roi = "" if r.get("roi") is None else f"{r['roi']:+.2%}"
            clv = "" if r.get("clv") is None else f"{r['clv']:+.2%}"
            bets = "" if r.get("n_bets") is None else str(r["n_bets"])
            lines.append(
                f"| {market_name} | {m}{champion} | {r['ratio_to_closing']:.4f} | "
                f"{r['log_loss']:.4f} | {r['rps']:.4f} | {roi} | {bets} | {clv} |"
            )
    if ev.get("routing"):
        lines += routing_lines(ev["routing"])
    lines += ["", penaltyblog_line(results)]
    return "\n".join(lines)


def scored_lines(markets: dict[str, Any]) -> list[str]:
    """The README's table of the matches each market scored, left out (by reason) and could bet.

    Results written before ``n_test`` and ``not_scored`` were recorded show ``n`` only.
    """
    n_tests = {sec["n_test"] for sec in markets.values() if "n_test" in sec}
    of = f" of the {n_tests.pop()} test matches" if len(n_tests) == 1 else ""
    lines = [
        "",
        f"**Matches scored per market**{of} (a match a market cannot score is counted under the "
        "first reason it fails; the backtest may bet every match priced before kick-off)",
        "",
        "| market | scored | not scored | why not | backtest rows |",
        "| --- | --- | --- | --- | --- |",
    ]
    for market_name, sec in markets.items():
        not_scored = sec.get("not_scored")
        if not_scored is None:
            missing, why = "-", "not recorded by this run"
        else:
            missing = str(sum(not_scored.values()))
            reasons = sorted(((n, r) for r, n in not_scored.items() if n), key=lambda x: -x[0])
            why = ", ".join(f"`{reason}` {n}" for n, reason in reasons) or "-"
        bets = sec.get("backtest_rows", "-")
        lines.append(f"| {market_name} | {sec['n']} | {missing} | {why} | {bets} |")
    return lines


def penaltyblog_line(results: dict[str, Any]) -> str:
    """The README's penaltyblog line, or the reason the comparison was not run."""
    pb = results.get("penaltyblog")
    if not pb:
        reason = results.get("penaltyblog_not_run") or "no reason recorded"
        return f"**Dixon-Coles vs penaltyblog**: comparison not run: {reason}."
    rows = (
        "identical training rows and weights,"
        if pb.get("same_rows_and_weights")
        else "the rows penaltyblog's whole-day weights kept, one more than ours in a few fits;"
    )
    ms = pb["mean_fit_ms"]
    return (
        f"**Dixon-Coles vs penaltyblog {results['penaltyblog_version']}** "
        f"({pb['n_fits']} fits on {rows} {pb['n_matches']} matches): "
        f"1X2 log loss ours {pb['log_loss_ours']:.5f} vs penaltyblog "
        f"{pb['log_loss_penaltyblog']:.5f} (left out of both: "
        f"{pb['n_matches_skipped_unseen_team']} matches with a team absent from the training rows "
        f"and {pb['n_matches_penaltyblog_failed']} on which penaltyblog raised 'negative "
        f"probabilities'); mean fit {ms['ours_cold']:.1f} ms cold / {ms['ours_warm']:.1f} ms "
        f"warm vs {ms['penaltyblog']:.1f} ms: **{pb['fit_speedup_cold']:.1f}x** faster cold, "
        f"{pb['fit_speedup_warm']:.1f}x warm."
    )


def staking_terms(backtest: dict[str, Any]) -> str:
    """The run's staking as applied, from its ``config.backtest``: a Kelly fraction only under
    ``fractional_kelly`` and no cap on flat stakes (``evaluation.staking``), then the price taken.

    ``{"staking": "fractional_kelly", "kelly_fraction": 0.25, "min_edge": 0.02,
    "max_stake_fraction": 0.05, "bookmaker": "best"}`` reads "fractional Kelly (0.25, min edge
    2%, cap 5%) at the best pre-match price".
    """
    rule = backtest["staking"]
    names = {"flat": "flat stakes", "kelly": "full Kelly", "fractional_kelly": "fractional Kelly"}
    multiplier = applied_kelly_multiplier(rule, backtest["kelly_fraction"])
    cap = applied_stake_cap(rule, backtest["max_stake_fraction"])
    terms = [f"{multiplier:g}"] if rule == "fractional_kelly" else []
    terms.append(f"min edge {100 * backtest['min_edge']:g}%")
    if cap is not None:
        terms.append(f"cap {100 * cap:g}%")
    bookmaker = backtest["bookmaker"]
    price = "the best" if bookmaker == "best" else f"{bookmaker}'s"
    return f"{names[rule]} ({', '.join(terms)}) at {price} pre-match price"


def routing_lines(routing: dict[str, Any]) -> list[str]:
    """The README's routing table: each edge model at the default threshold (0.8)."""
    lines = [
        "",
        f"**Edge/cloud routing, 1X2** (the server's router replayed on these out-of-sample "
        f"forecasts; cloud = reliability-weighted ensemble of {', '.join(routing['members'])}: "
        f"ratio {routing['cloud']['ratio_to_closing']:.4f}). At the default threshold 0.8:",
        "",
        "| edge model | edge alone | edge share | routed | edge's rows: edge vs cloud |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, sec in routing["edge_models"].items():
        row = next(r for r in sec["thresholds"] if r["threshold"] == 0.8)
        champion = " (champion)" if name == routing["champion"] else ""
        lines.append(
            f"| {name}{champion} | {sec['edge_alone']['ratio_to_closing']:.4f} | "
            f"{row['edge_share']:.1%} | {row['routed']['ratio_to_closing']:.4f} | "
            f"{_ratio(row['edge_rows_by_edge'])} vs {_ratio(row['edge_rows_by_cloud'])} |"
        )
    return lines


def _ratio(score: dict[str, Any]) -> str:
    value = score["ratio_to_closing"]
    return "-" if value is None else f"{value:.4f}"


DOCS_MODELS = ROOT / "docs" / "models.md"
README_MARKERS = ("<!-- bench:football:start -->", "<!-- bench:football:end -->")
DOCS_MARKERS = (
    "<!-- bench:football:penaltyblog:start -->",
    "<!-- bench:football:penaltyblog:end -->",
)


def update_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = README_MARKERS
    if start not in text:
        text = text.replace("BENCH_TABLE", f"{start}\n{table}\n{end}")
    else:
        text = replace_block(text, README_MARKERS, table)
    README.write_text(text, encoding="utf-8")


def update_docs(paragraph: str, path: Path = DOCS_MODELS) -> None:
    """Rewrite docs/models.md's penaltyblog paragraph between its markers."""
    text = path.read_text(encoding="utf-8")
    path.write_text(replace_block(text, DOCS_MARKERS, paragraph), encoding="utf-8")


def docs_paragraph(results: dict[str, Any]) -> str:
    """docs/models.md's penaltyblog bullet: every figure from ``results`` as printed here.

    The estimators' differences and the history of the timings are fixed text beside it.
    """
    pb = results.get("penaltyblog")
    if not pb:
        reason = results.get("penaltyblog_not_run") or "no reason recorded"
        text = (
            f"- Against penaltyblog's `DixonColesGoalModel`: not run in the latest `make bench` "
            f"({results['date']}, `bench/results/football.json`): {reason}. Earlier runs are in "
            "the history of that file."
        )
        return _wrap(text)
    ms = pb["mean_fit_ms"]
    n_leagues = pb.get("n_leagues", len(results["evaluation"]["markets"]["1x2"]["per_league"]))
    half_life = pb.get("half_life_days", HALF_LIFE_DAYS)
    if pb.get("same_rows_and_weights"):
        rows = (
            f"both fitted on the same training rows with the same weights (that league's earlier "
            f"matches; our fit's time decay from the latest kick-off, half-life {half_life:g} "
            f"days, weights below {pb.get('min_weight', MIN_WEIGHT):g} dropped; the bench checks "
            f"every fit's row count), a mean of {pb['mean_training_matches']:,.0f} matches a fit"
        )
    else:
        rows = (
            f"both fitted on the training rows that penaltyblog's whole-day decay weights kept "
            f"(half-life {half_life:g} days, below 1e-3 dropped), each with its own weights, a "
            f"mean of {pb['mean_training_matches']:,.0f} matches a fit; our fit's continuous-time "
            "cut dropped one row more in a few fits (4 of 198 in this set-up), so the rows were "
            "not quite identical"
        )
    failed, skipped = pb["n_matches_penaltyblog_failed"], pb["n_matches_skipped_unseen_team"]
    text = (
        f"- Against penaltyblog {results['penaltyblog_version']}'s `DixonColesGoalModel` "
        f"(`make bench`, `bench/football.py`, `bench/results/football.json`, `penaltyblog`; "
        f"{results['date']}, {results['machine']}): {pb['n_fits']} fits, every second test week "
        f"of the {n_leagues} leagues, {rows}. Our fit takes {ms['ours_cold']:.1f} ms cold and "
        f"{ms['ours_warm']:.1f} ms warm against penaltyblog's {ms['penaltyblog']:.1f} ms in the "
        f"same run: {pb['fit_speedup_cold']:.1f}x faster cold, {pb['fit_speedup_warm']:.1f}x "
        f"warm. Their 1X2 forecasts of the {pb['n_matches']:,} matches scored differ by up to "
        f"{pb['max_abs_probability_difference']:.2f} in a probability, and 1X2 log loss is "
        f"{pb['log_loss_ours']:.5f} for ours against {pb['log_loss_penaltyblog']:.5f} "
        f"({abs(pb['log_loss_penaltyblog'] - pb['log_loss_ours']):.4f} apart). Left out of "
        f"both: {_matches(skipped)} with a team that had no match in the fit's training rows, "
        f"and {_matches(failed)} on which penaltyblog raised (negative probabilities)."
    )
    return _wrap(text)


def _matches(n: int) -> str:
    return f"{n:,} match" if n == 1 else f"{n:,} matches"


def _wrap(text: str) -> str:
    return textwrap.fill(
        text, width=100, subsequent_indent="  ", break_long_words=False, break_on_hyphens=False
    )


def penaltyblog_version() -> str:
    """penaltyblog's version; stop at once, naming the fix, when it is not installed."""
    try:
        import penaltyblog
    except ImportError as exc:
        raise SystemExit(
            f"bench/football.py: penaltyblog is not installed ({exc}), so the Dixon-Coles "
            "comparison cannot run: install the dev dependencies (`make install`), or pass "
            "--no-penaltyblog to run without it (the README block then says it was not run)"
        ) from None
    return str(penaltyblog.__version__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="run config (default: the built-in defaults)")
    parser.add_argument(
        "--no-readme",
        action="store_true",
        help="do not rewrite the README table nor docs/models.md's penaltyblog paragraph",
    )
    parser.add_argument(
        "--no-penaltyblog",
        action="store_true",
        help="skip the comparison with penaltyblog (the README block says it was not run)",
    )
    args = parser.parse_args(argv)
    # before the minutes of evaluation: a missing penaltyblog fails now, not after them
    pb_version = None if args.no_penaltyblog else penaltyblog_version()
    config = load_config(args.config)
    t0 = time.perf_counter()
    evaluation, data, mask = evaluation_section(config)
    print(f"evaluation done in {evaluation['wall_s']} s", file=sys.stderr)
    pb, pb_not_run = None, None
    if args.no_penaltyblog:
        pb_not_run = "--no-penaltyblog given"
        print(f"penaltyblog comparison not run: {pb_not_run}", file=sys.stderr)
    else:
        pb = penaltyblog_section(data, mask)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
        "total_wall_s": round(time.perf_counter() - t0, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "config": config.model_dump(mode="json"),
        "evaluation": evaluation,
        "penaltyblog": pb,
        "penaltyblog_version": pb_version,
        "penaltyblog_not_run": pb_not_run,
    }
    write_json(RESULTS, results)
    table = readme_table(results)
    if not args.no_readme:
        update_readme(table)
        update_docs(docs_paragraph(results))
    print(table)
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
