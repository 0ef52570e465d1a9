"""Would averaging two models' forecasts beat either, or the price, on the same matches?

Reads two ``--probs`` files of ``research_football_features.py`` (same window, so the same scored
matches) and, for blend weights w, scores the geometric blend ``softmax((1 - w) log a + w log b)``:
its log loss over the closing line's, and one-sided paired t-tests against the pre-match market
and against ``a`` alone.

    .venv/bin/python scripts/research_blend_forecasts.py runs/lgb.npz:closing_target \\
        runs/nn.npz:closing_target --json runs/blend.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from marketcast.evaluation.scoring import log_loss_per_sample
from marketcast.evaluation.significance import paired_test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="FILE.npz:VARIANT, the reference")
    parser.add_argument("b", help="FILE.npz:VARIANT, blended in with weight w")
    parser.add_argument("--weights", default="0,0.25,0.5,0.75,1")
    parser.add_argument("--json", dest="json_out")
    args = parser.parse_args(argv)
    (file_a, name_a), (file_b, name_b) = (spec.rsplit(":", 1) for spec in (args.a, args.b))
    a, b = np.load(file_a), np.load(file_b)
    if not np.array_equal(a["match_id"], b["match_id"]):
        parser.error("the two files score different matches: run both on the same window")
    labels = a["label"]
    loss_close = log_loss_per_sample(labels, a["closing"]).mean()
    loss_market = log_loss_per_sample(labels, a["market"])
    loss_a = log_loss_per_sample(labels, a[name_a])
    rows = []
    for w in (float(x) for x in args.weights.split(",")):
        z = (1 - w) * np.log(a[name_a]) + w * np.log(b[name_b])
        p = np.exp(z - z.max(axis=1, keepdims=True))
        loss = log_loss_per_sample(labels, p / p.sum(axis=1, keepdims=True))
        rows.append(
            {
                "weight_b": w,
                "ratio_to_closing": float(loss.mean() / loss_close),
                "vs_market": paired_test(loss_market, loss).to_dict(),
                "vs_a": paired_test(loss_a, loss).to_dict() if w > 0 else None,
            }
        )
    if args.json_out:  # before printing: a print can never lose the figures
        report = {"a": args.a, "b": args.b, "n": len(labels), "blends": rows}
        Path(args.json_out).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    for row in rows:
        print(
            f"w={row['weight_b']:.2f}: ratio {row['ratio_to_closing']:.5f}, "
            f"p vs market {row['vs_market']['p_value']:.4f}"
            + (f", gain vs a {row['vs_a']['mean_difference']:+.5f}" if row["vs_a"] else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
