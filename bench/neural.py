"""Neural engine benchmark: epoch time, walk-forward ratio to the closing line, band and routing.

Run with ``python bench/neural.py``. Writes ``bench/results/neural.json``.

1. Training time per epoch of ``NeuralModel`` on the whole bundle (all leagues and seasons) on
   this machine's cores (``--epochs`` epochs, no early stopping).
2. Walk-forward evaluation over the last two bundled seasons of each league, through
   ``bench/football.py``'s ``evaluation_section`` (the ``marketcast run`` set-up): the neural
   model beside Dixon-Coles, LightGBM and the pre-match market; 1X2 log loss divided by the
   de-margined closing line's, per league and pooled.
3. Held-back weeks: one fit on everything before the evaluation window, then on the window's
   matches the 1X2 band's coverage of the closing-line probability and the experts' routing
   per league.
4. Selective-scan cost: forward + backward time against sequence length for the ``unbind``
   scan and for a loop indexing ``x[:, t]``, to show linear against quadratic growth.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import resource
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import softmax

from marketcast.config import FootballRunConfig, WalkForwardConfig
from marketcast.features.football import build_features, closing_probabilities
from marketcast.models.neural import NeuralModel, band_coverage, calibrate_band_z
from marketcast.models.nn.ssm import selective_scan
from marketcast.orchestration.football import load_data, test_mask_last_seasons, write_json
from marketcast.types import MarketKind

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "neural.json"


def football_bench() -> ModuleType:
    """``bench/football.py`` as a module (its evaluation machinery is reused, not copied)."""
    spec = importlib.util.spec_from_file_location(
        "marketcast_bench_football", ROOT / "bench" / "football.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def epoch_timing(
    X: pd.DataFrame, y: np.ndarray, params: dict[str, Any], epochs: int
) -> dict[str, Any]:
    model = NeuralModel(**{**params, "max_epochs": epochs, "validation_fraction": 0.0})
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    model.fit(X, y)
    seconds = [r["seconds"] for r in model.training_log_]
    return {
        "n_matches": len(X),
        "epochs": len(seconds),
        "seconds_per_epoch": seconds,
        "mean_seconds_per_epoch": float(np.mean(seconds)),
        "min_seconds_per_epoch": float(np.min(seconds)),
        "fit_wall_s": round(time.perf_counter() - t0, 2),
        "threads": params.get("n_jobs", 2),
        "load_average_1min_before": load_before,
        "load_average_1min_after": os.getloadavg()[0],
    }


def held_back_section(
    data: Any, X: pd.DataFrame, mask: np.ndarray, params: dict[str, Any]
) -> dict[str, Any]:
    y = data.matches[["home_goals", "away_goals"]].to_numpy()
    start = data.matches["kickoff_utc"][mask].min()
    train = (data.matches["kickoff_utc"] < start).to_numpy()
    t0 = time.perf_counter()
    model = NeuralModel(**params).fit(X[train], y[train])
    fit_s = time.perf_counter() - t0
    closing, _ = closing_probabilities(data, MarketKind.ONE_X_TWO)
    low, high = model.predict_band(X[mask])
    coverage = band_coverage(low, high, closing[mask])
    per_league = {}
    leagues = data.matches["league"][mask].to_numpy()
    for league in sorted(set(leagues)):
        rows = leagues == league
        per_league[league] = band_coverage(low[rows], high[rows], closing[mask][rows])
    routing = model.routing_by_league(X[mask])
    # Calibrate the band's width on the first held-back season of each league, check it on
    # the second: z* such that p -+ z* std covers 90% of closing-line probabilities.
    out = model.predict_outputs(X[mask])
    p = softmax(out["logits_1x2"], axis=1)
    seasons = data.matches.loc[mask, ["league", "season"]]
    first = (seasons["season"] == seasons.groupby("league")["season"].transform("min")).to_numpy()
    z_star = calibrate_band_z(p[first], out["band_std"][first], closing[mask][first], 0.9)
    check = ~first
    calibrated = band_coverage(
        np.clip(p[check] - z_star * out["band_std"][check], 0, 1),
        np.clip(p[check] + z_star * out["band_std"][check], 0, 1),
        closing[mask][check],
    )
    return {
        "fit_s": round(fit_s, 1),
        "train_matches": int(train.sum()),
        "best_epoch": model.best_epoch_,
        "best_val_log_loss_1x2": model.best_val_log_loss_,
        "training_log": model.training_log_,
        "band": {
            "pooled": coverage,
            "per_league": per_league,
            "band_z": model.band_z,
            "calibrated_z_for_90pct_on_first_season": z_star,
            "calibrated_coverage_on_second_season": calibrated,
        },
        "routing_by_league": routing.round(4).to_dict(orient="index"),
        "head_market_scale_1x2": float(model.network_.head.scale_1x2.detach()),
    }


def scan_scaling(lengths: tuple[int, ...] = (64, 128, 256, 512)) -> dict[str, Any]:
    """Forward + backward ms of the selective scan at batch 16, d_inner 32, d_state 4."""

    def indexed_scan(delta, A, B, C, x):  # the slow way, for comparison only
        h = x.new_zeros(x.shape[0], x.shape[2], A.shape[1])
        ys = []
        for t in range(x.shape[1]):
            a_t = torch.exp(delta[:, t].unsqueeze(-1) * A)
            h = a_t * h + (delta[:, t] * x[:, t]).unsqueeze(-1) * B[:, t].unsqueeze(1)
            ys.append((h * C[:, t].unsqueeze(1)).sum(-1))
        return torch.stack(ys, 1)

    out: dict[str, Any] = {"unbind_ms": {}, "indexed_ms": {}}
    for length in lengths:
        g = torch.Generator().manual_seed(0)
        args = [
            torch.rand(16, length, 32, generator=g) * 0.1,
            -torch.rand(32, 4, generator=g),
            torch.randn(16, length, 4, generator=g),
            torch.randn(16, length, 4, generator=g),
            torch.randn(16, length, 32, generator=g),
        ]
        for name, fn in (("unbind_ms", selective_scan), ("indexed_ms", indexed_scan)):
            fn(*[a.clone().requires_grad_(True) for a in args]).sum().backward()  # warm-up
            times = []
            for _ in range(7):
                leaves = [a.clone().requires_grad_(True) for a in args]
                t0 = time.perf_counter()
                fn(*leaves).sum().backward()
                times.append(1e3 * (time.perf_counter() - t0))
            out[name][str(length)] = round(min(times), 2)
    return out


def comparison_table(evaluation: dict[str, Any]) -> dict[str, Any]:
    one = evaluation["markets"]["1x2"]
    rows = {}
    for league, section in [*sorted(one["per_league"].items()), ("pooled", one["pooled"])]:
        rows[league] = {
            name: round(section[name]["ratio_to_closing"], 5)
            for name in ("neural", "lightgbm", "dixon_coles", "market", "prematch_market")
            if name in section
        }
        rows[league]["n"] = section["neural"]["n"]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs for the timing fit")
    parser.add_argument("--markets", default="1x2,ou25,ah")
    parser.add_argument("--neural-every", type=int, default=4, help="refit cadence in weeks")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the fits")
    parser.add_argument("--skip-walk-forward", action="store_true")
    args = parser.parse_args()
    # One thread for the fits below: on a shared 2-core machine two OpenMP threads stall
    # whenever another process holds a core (epochs 10x slower); timings cover both.
    params: dict[str, Any] = {"random_state": 20240817, "n_jobs": args.threads}
    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "neural_params": {**NeuralModel().get_params(), **params},
    }
    config = FootballRunConfig(
        models=("market", "dixon_coles", "lightgbm", "neural"),
        markets=tuple(args.markets.split(",")),  # type: ignore[arg-type]
        model_params={"neural": {"n_jobs": args.threads}},
        walk_forward=WalkForwardConfig(
            retrain_every_steps={
                "market": 1,
                "dixon_coles": 1,
                "lightgbm": 4,
                "neural": args.neural_every,
            }
        ),
    )
    data = load_data(config)
    X = build_features(data, demargin_method=config.demargin_method)
    y = data.matches[["home_goals", "away_goals"]].to_numpy()
    mask = test_mask_last_seasons(data.matches, config.walk_forward.last_seasons)

    results["scan_scaling"] = scan_scaling()
    print(f"scan: {results['scan_scaling']}", file=sys.stderr)
    results["epoch_timing"] = {
        f"{n}_threads": epoch_timing(X, y, {**params, "n_jobs": n}, args.epochs) for n in (1, 2)
    }
    print(f"epoch timing: {results['epoch_timing']}", file=sys.stderr)
    results["held_back"] = held_back_section(data, X, mask, params)
    print(f"band: {results['held_back']['band']['pooled']}", file=sys.stderr)
    if not args.skip_walk_forward:
        bench = football_bench()
        evaluation, _, _ = bench.evaluation_section(config)
        results["walk_forward"] = {
            "config": config.model_dump(mode="json"),
            "ratio_to_closing_1x2": comparison_table(evaluation),
            "evaluation": evaluation,
        }
        print(f"1x2 ratios: {results['walk_forward']['ratio_to_closing_1x2']}", file=sys.stderr)
    results["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    write_json(RESULTS, results)
    print(f"wrote {RESULTS} in {results['total_wall_s']} s")
    return 0


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
