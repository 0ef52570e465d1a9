"""Does a feature group or a training target help a model beat the pre-match price?

Issue 2's protocol. The *test* window is each league's last two bundled seasons (what
``bench/football.py`` scores); the *development* window is the two seasons before those. Feature
groups are chosen on the development window only; the test window is run once, afterwards.

For each variant (the core features plus some of ``OPTIONAL_FEATURE_GROUPS``, and the model's
training target: the results, or the closing line of earlier matches) the script walks the model
(``--model``: LightGBM, or the network) forward with the default run config's cadence (7-day
steps, refit every 4 steps; LightGBM fits the ``--market``'s booster only, 1X2 unless named:
the other markets' boosters do not change its forecasts), scores that market's log loss on the
matches the bench scores (label, de-margined closing and pre-match prices present), and prints
per league and pooled: the ratio to the closing line's log loss for the pre-match market and each
variant, and paired t-tests on per-match log loss (market minus variant; variant minus the
``--reference`` variant, the core-only baseline unless named). ``--define`` adds variants that
are one of the above with model parameters of their own. It also checks the cross-market
premise directly: is the market's draw price too high or too low where the Poisson fit to the
1X2 and over/under prices disagrees with it?

    .venv/bin/python scripts/research_football_features.py --window dev --json runs/dev.json
    .venv/bin/python scripts/research_football_features.py --window test --variants baseline,shots
    .venv/bin/python scripts/research_football_features.py --variants baseline,closing_target
    .venv/bin/python scripts/research_football_features.py --reference closing_target \
        --variants slow --define '{"slow": {"like": "closing_target",
                                           "params": {"learning_rate": 0.01}}}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketcast.config import load_config
from marketcast.datasets.football_data import FootballData, load_football
from marketcast.evaluation.scoring import log_loss_per_sample
from marketcast.evaluation.significance import paired_test
from marketcast.evaluation.walk_forward import walk_forward_predict
from marketcast.features.football import (
    OPTIONAL_FEATURE_GROUPS,
    build_features,
    closing_targets,
    prematch_probabilities,
)
from marketcast.models.base import market_labels
from marketcast.models.factory import make_model
from marketcast.types import MarketKind

#: Variant -> (optional feature groups, LightGBM's training target).
VARIANTS: dict[str, tuple[tuple[str, ...], str]] = {
    "baseline": ((), "result"),
    "shots": (("shots",), "result"),
    "cross_market": (("cross_market",), "result"),
    "all": (("shots", "cross_market"), "result"),
    "closing_target": ((), "closing"),
    "closing_cross_market": (("cross_market",), "closing"),
    "closing_all": (("shots", "cross_market"), "closing"),
    "closing_line_moves": (("line_moves",), "closing"),
}


def window_mask(matches: pd.DataFrame, window: str) -> np.ndarray:
    """Per league: ``test`` = last two seasons, ``dev`` = the two seasons before those."""
    mask = np.zeros(len(matches), dtype=bool)
    for _league, group in matches.groupby("league", sort=True):
        seasons = sorted(group["season"].unique())
        chosen = seasons[-2:] if window == "test" else seasons[-4:-2]
        mask[group.index[group["season"].isin(chosen)].to_numpy()] = True
    return mask


def group_columns(data: FootballData) -> dict[str, list[str]]:
    """The columns each optional group adds to the core feature frame."""
    head = data.matches.iloc[:200]
    small = FootballData(head, data.odds[data.odds["match_id"].isin(head["match_id"])], data.report)
    core = set(build_features(small, groups=()).columns)
    return {
        g: [c for c in build_features(small, groups=(g,)).columns if c not in core]
        for g in OPTIONAL_FEATURE_GROUPS
    }


def draw_premise(X: pd.DataFrame, y_goals: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """Realised draw rate minus the market's draw price, by quintile of ``xm_draw_gap``."""
    gap = X["xm_draw_gap"].to_numpy()[rows]
    draw = (y_goals[rows, 0] == y_goals[rows, 1]).astype(float)
    price = X["mkt_1x2_draw"].to_numpy()[rows]
    ok = ~np.isnan(gap) & ~np.isnan(price)
    gap, draw, price = gap[ok], draw[ok], price[ok]
    edges = np.quantile(gap, [0.2, 0.4, 0.6, 0.8])
    bins = np.digitize(gap, edges)
    out: dict[str, Any] = {"n": len(gap), "quintiles": []}
    for b in range(5):
        m = bins == b
        resid = draw[m] - price[m]
        out["quintiles"].append(
            {
                "mean_gap": float(gap[m].mean()),
                "draw_rate_minus_price": float(resid.mean()),
                "std_error": float(resid.std(ddof=1) / np.sqrt(m.sum())),
                "n": int(m.sum()),
            }
        )
    # slope of (draw - price) on the centred gap: > 0 means the fit knows something the price lacks
    centred = gap - gap.mean()
    slope = float(centred @ (draw - price) / (centred @ centred))
    resid = (draw - price) - slope * centred
    se = float(np.sqrt(resid.var(ddof=2) / (centred @ centred)))
    out.update(slope=slope, slope_se=se, slope_t=slope / se)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", choices=("dev", "test"), default="dev")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma list")
    parser.add_argument("--json", dest="json_out", help="where to write the figures")
    parser.add_argument(
        "--probs", help="where to write the scored rows' labels and forecasts (.npz)"
    )
    parser.add_argument("--model", choices=("lightgbm", "neural"), default="lightgbm")
    parser.add_argument(
        "--market", choices=("1x2", "ou25"), default="1x2", help="the market scored"
    )
    parser.add_argument(
        "--params", default="{}", help='model overrides as JSON, e.g. {"n_estimators": 800}'
    )
    parser.add_argument(
        "--define",
        default="{}",
        help="more variants as JSON: name -> {'like': a variant above, 'params': {overrides}}",
    )
    parser.add_argument(
        "--reference", default="baseline", help="the variant every other is tested against"
    )
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    defined = {
        name: {"like": spec["like"], "params": dict(spec.get("params", {}))}
        for name, spec in json.loads(args.define).items()
    }
    known = {**{v: {"like": v, "params": {}} for v in VARIANTS}, **defined}
    unknown = [
        v for v in {*variants, args.reference} if v not in known or known[v]["like"] not in VARIANTS
    ]
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}: define them with --define")
    if args.reference not in variants:
        variants.insert(0, args.reference)

    config = load_config(None)
    data = load_football(None)
    matches = data.matches
    mask = window_mask(matches, args.window)
    X_all = build_features(
        data, demargin_method=config.demargin_method, groups=OPTIONAL_FEATURE_GROUPS
    )
    columns = group_columns(data)
    y_goals = matches[["home_goals", "away_goals"]].to_numpy()
    market = MarketKind(args.market)

    model_params = {**config.model_params.get(args.model, {}), **json.loads(args.params)}
    if args.model == "lightgbm":
        # one thread: on a shared machine two OpenMP threads wait on each other at every split
        model_params.update(markets=(market.value,), n_jobs=1)
    closing = closing_targets(data, method=config.demargin_method)
    probs: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    for variant in variants:
        groups, target = VARIANTS[known[variant]["like"]]
        drop = [c for g in OPTIONAL_FEATURE_GROUPS if g not in groups for c in columns[g]]
        X = X_all.drop(columns=drop)
        params = {**model_params, "target": target, **known[variant]["params"]}
        models: dict[str, Any] = {args.model: make_model(args.model, params, seed=config.seed)}
        if not probs:
            models["market"] = make_model("market", config.model_params.get("market"))
        t0 = time.perf_counter()
        pred = walk_forward_predict(
            X,
            y_goals,
            mask,
            models,
            (market,),
            step_days=config.walk_forward.step_days,
            retrain_every_steps=config.walk_forward.retrain_every_steps,
            closing=closing,
        )
        timings[variant] = round(time.perf_counter() - t0, 1)
        if "market" in pred.probabilities:
            probs["market"] = pred.probabilities["market"][market.value]
        probs[variant] = pred.probabilities[args.model][market.value]
        print(f"{variant}: {timings[variant]} s", file=sys.stderr)

    labels_all = market_labels(market, X_all, y_goals)
    closing_line = closing[market.value]  # the yardstick: the market's closing line
    prematch, _ = prematch_probabilities(data, market, method=config.demargin_method)
    valid = mask & (labels_all >= 0)
    valid &= ~np.isnan(closing_line).any(axis=1) & ~np.isnan(prematch).any(axis=1)
    for p in probs.values():
        valid &= ~np.isnan(p).any(axis=1)
    rows = np.flatnonzero(valid)
    labels = labels_all[rows]
    losses = {name: log_loss_per_sample(labels, p[rows]) for name, p in probs.items()}
    losses["prematch"] = log_loss_per_sample(labels, prematch[rows])
    losses["closing"] = log_loss_per_sample(labels, closing_line[rows])
    leagues = matches["league"].to_numpy()[rows]

    def section(m: np.ndarray) -> dict[str, Any]:
        close = losses["closing"][m].mean()
        out: dict[str, Any] = {"n": int(m.sum())}
        out["ratio_to_closing"] = {k: float(v[m].mean() / close) for k, v in losses.items()}
        out["vs_market"] = {
            v: paired_test(losses["market"][m], losses[v][m]).to_dict() for v in variants
        }
        out["vs_reference"] = {
            v: paired_test(losses[args.reference][m], losses[v][m]).to_dict()
            for v in variants
            if v != args.reference
        }
        return out

    report: dict[str, Any] = {
        "window": args.window,
        "market": market.value,
        "model": args.model,
        "params": model_params,
        "seasons": {
            lg: sorted(matches.loc[mask & (matches["league"] == lg).to_numpy(), "season"].unique())
            for lg in sorted(matches["league"].unique())
        },
        "reference": args.reference,
        "variants": {
            v: {
                "groups": list(VARIANTS[known[v]["like"]][0]),
                "target": VARIANTS[known[v]["like"]][1],
                "params": known[v]["params"],
            }
            for v in variants
        },
        "group_columns": columns,
        "timings_s": timings,
        "pooled": section(np.ones(len(rows), dtype=bool)),
        "per_league": {lg: section(leagues == lg) for lg in sorted(set(leagues.tolist()))},
        "draw_premise": {
            "window": draw_premise(X_all, y_goals, rows),
            "history_before_window": draw_premise(
                X_all, y_goals, np.flatnonzero(_before_window(matches, mask))
            ),
        },
    }
    if args.probs:
        Path(args.probs).parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, Any] = {
            "match_id": matches["match_id"].to_numpy()[rows].astype(str),
            "league": leagues.astype(str),
            "label": labels,
            "prematch": prematch[rows],
            "closing": closing_line[rows],
            **{name: p[rows] for name, p in probs.items()},
        }
        np.savez_compressed(args.probs, **arrays)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    _print(report, variants)  # after the files: a print can never lose a run's figures
    return 0


def _before_window(matches: pd.DataFrame, mask: np.ndarray) -> np.ndarray:
    """Rows of each league that kick off before that league's first window match."""
    before = np.zeros(len(matches), dtype=bool)
    kickoff = matches["kickoff_utc"]
    for league in matches["league"].unique():
        in_league = (matches["league"] == league).to_numpy()
        start = kickoff[in_league & mask].min()
        before |= in_league & (kickoff < start).to_numpy()
    return before


def _print(report: dict[str, Any], variants: list[str]) -> None:
    names = ["prematch", *variants]
    print(
        f"window {report['window']}, {report['model']}: {report['market']} log loss / "
        "closing line's; "
        "p = paired t, one-sided"
    )
    print(f"{'':8}{'n':>6}" + "".join(f"{n:>14}" for n in names))
    for label, sec in [("pooled", report["pooled"]), *report["per_league"].items()]:
        ratio = sec["ratio_to_closing"]
        cells = "".join(f"{ratio[n]:>14.5f}" for n in names)
        print(f"{label:8}{sec['n']:>6}{cells}")
        pv = "".join(
            f"{'p_mkt=' + _fmt(sec['vs_market'][v]['p_value'], '.3f'):>14}" for v in variants
        )
        print(f"{'':14}{'':>14}{pv}")
    for v, test in report["pooled"]["vs_reference"].items():
        print(
            f"pooled {v} vs {report['reference']}: mean gain "
            f"{_fmt(test['mean_difference'], '+.5f')}, t {_fmt(test['t_stat'], '.2f')}, "
            f"p {_fmt(test['p_value'], '.3f')}"
        )
    for scope, d in report["draw_premise"].items():
        print(
            f"draw premise ({scope}, n={d['n']}): slope of (draw - price) on xm_draw_gap "
            f"{d['slope']:+.3f} (t {d['slope_t']:.2f}); by quintile: "
            + ", ".join(
                f"{q['mean_gap']:+.3f}->{q['draw_rate_minus_price']:+.3f}" for q in d["quintiles"]
            )
        )


def _fmt(value: float | None, spec: str) -> str:
    """``value`` formatted, or ``n/a`` where a test had nothing to say (identical forecasts)."""
    return "n/a" if value is None else format(value, spec)


if __name__ == "__main__":
    raise SystemExit(main())
