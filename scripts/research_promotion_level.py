"""How often the promotion t-test promotes a no-better challenger, on a run's own differences.

The paired t-test's level is a normal approximation: strongly skewed per-match differences
(a challenger that departs from the champion on a few matches only, a strategy with rare large
losses) make it promote no-better challengers more often than ``alpha``. This measures it on the
differences a football run actually scored: each model's per-match log-loss differences against
the market (``losses.parquet``), centred on 0 (a challenger of no gain whose differences are
shaped like the real ones), resampled ``n`` at a time, and tested as a run tests them.

    PYTHONPATH=src .venv/bin/python scripts/research_promotion_level.py runs/<football run>

writes ``bench/results/research/promotion_level.json`` (rates with their Monte Carlo standard
errors, and each model's skewness and excess kurtosis) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from marketcast.promotion import PromotionRule, paired_test

LEVELS = (0.05, 0.0125)  # the rule's alpha, and Holm's share of it for the first of four
OUT = Path(__file__).resolve().parents[1] / "bench" / "results" / "research"


def null_rates(
    differences: np.ndarray, n: int, reps: int, rng: np.random.Generator
) -> dict[str, float]:
    """Share of ``reps`` samples of ``n`` centred differences whose t-test p is below each
    level (the test `decide_promotion` runs, vectorised; one sample is checked against it)."""
    centred = differences - differences.mean()
    sample = centred[rng.integers(0, len(centred), (reps, n))]
    t = sample.mean(axis=1) / (sample.std(axis=1, ddof=1) / math.sqrt(n))
    p = stats.t.sf(t, n - 1)
    check = paired_test(sample[0], np.zeros(n)).p_value
    assert math.isclose(check, p[0], rel_tol=1e-9), (check, p[0])
    return {f"{level:g}": float((p < level).mean()) for level in LEVELS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a football run folder holding losses.parquet")
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    losses = pd.read_parquet(args.run / "losses.parquet")
    rng = np.random.default_rng(args.seed)
    results: dict[str, object] = {
        "run": args.run.name,
        "reps": args.reps,
        "min_matches": PromotionRule().min_matches,
        "markets": {},
    }
    for market, frame in losses.groupby("market", sort=True):
        rows = {}
        models = [c.removeprefix("loss_") for c in frame.columns if c.startswith("loss_")]
        for model in models:
            if model in ("market", "closing"):
                continue
            d = (frame["loss_market"] - frame[f"loss_{model}"]).dropna().to_numpy()
            if len(d) < PromotionRule().min_matches:
                continue
            if not d.std() > 0:  # the market's forecast itself (a booster without trees)
                rows[model] = {"n_matches": len(d), "identical_to_market": True}
                print(f"{market:5} {model:12} identical to the market: never tested")
                continue
            sizes = sorted({PromotionRule().min_matches, 1000, len(d)})
            rows[model] = {
                "n_matches": len(d),
                "skewness": float(stats.skew(d)),
                "excess_kurtosis": float(stats.kurtosis(d)),
                "rates": {str(n): null_rates(d, n, args.reps, rng) for n in sizes},
            }
            for n, rates in rows[model]["rates"].items():
                shown = "  ".join(
                    f"p<{level}: {rate:.4f} +- {math.sqrt(rate * (1 - rate) / args.reps):.4f}"
                    for level, rate in rates.items()
                )
                print(f"{market:5} {model:12} n={n:>5}  {shown}")
        results["markets"][str(market)] = rows  # type: ignore[index]
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "promotion_level.json"
    path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
