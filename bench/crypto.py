"""Crypto pipeline benchmark: the whole purged walk-forward over the bundled pairs and 3 horizons.

Run with ``make bench``. Writes ``bench/results/crypto.json`` and the README's crypto table.

Each case runs in a fresh Python process (``--case``), so wall time and peak memory are its own:

- ``local`` and ``ray`` on every bundled pair (the target: under 10 minutes on 2 cores);
- ``local`` on the 5 and 10 most liquid pairs, for how the time grows with the number of pairs.

Reported per case: wall time, peak resident memory of the driver and of its worker processes
(local backend; Ray's workers belong to the raylet and are not counted), pair-horizons per
minute, and for the full local run the out-of-sample net Sharpe, drawdown and turnover of each
horizon's champion beside buy-and-hold and LightGBM alone, after costs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "crypto.json"
README = ROOT / "README.md"
CASES = (("local", 20), ("ray", 20), ("local", 5), ("local", 10))


def run_case(backend: str, n_pairs: int) -> dict[str, Any]:
    """One case in this process: prepare, walk forward, backtest; timings and peak memory.

    A case on fewer pairs than the bundle first ranks the pairs by liquidity, before its timer
    starts (``ranking_s``, apart): the wall time is the subset's own pipeline. Until 2026-11-23
    the ranking prepared all 20 pairs inside the timer, about 3 s of each 5- and 10-pair wall.
    """
    from marketcast.config import CryptoRunConfig
    from marketcast.orchestration.crypto import evaluate_crypto, prepare_crypto

    config = CryptoRunConfig(backend=backend)  # type: ignore[arg-type]
    ranked, ranking_s = liquid_pairs(config)
    if n_pairs < len(ranked):
        config = config.model_copy(update={"pairs": tuple(ranked[:n_pairs])})
    else:
        ranking_s = None  # every pair: nothing to choose
    t0 = time.perf_counter()
    prepared = prepare_crypto(config)
    start = config.walk_forward.start or "2022-07-01"
    evaluation = evaluate_crypto(config, prepared, start=start, end=config.walk_forward.end)
    wall = time.perf_counter() - t0
    n = int(prepared.data.candles["pair"].nunique())
    horizons = list(evaluation.horizons)
    kib_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kib_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out: dict[str, Any] = {
        "backend": backend,
        "pairs": n,
        "horizons": horizons,
        "wall_s": round(wall, 1),
        "pair_horizons_per_min": round(n * len(horizons) / (wall / 60.0), 2),
        "peak_rss_driver_mib": round(kib_self / 1024, 1),
        "peak_rss_worker_mib": round(kib_children / 1024, 1) if backend == "local" else None,
        "timings_s": {**prepared.timings, **evaluation.timings},
        # choosing the most liquid pairs, before the timer (not in wall_s); None: every pair
        "ranking_s": None if ranking_s is None else round(ranking_s, 2),
        "jobs": evaluation.jobs,
        "test_start": start,
    }
    out["results"] = {
        h: {
            "champion": ev.champion,
            "promotion": ev.decision,
            "models": {
                name: _pick(m) for name, m in {**ev.models, "buy_and_hold": ev.buy_and_hold}.items()
            },
        }
        for h, ev in evaluation.horizons.items()
    }
    return out


def liquid_pairs(config: Any) -> tuple[list[str], float]:
    """The configured data's pairs, most liquid first, and the seconds it took: the candles are
    read, nothing prepared.

    The rule is ``pair_groups``' (median quote volume) over the bars opening before the test
    window only, so that which pairs a subset case trades is not chosen on the bars it is scored
    on (until 2026-11-24 every bar counted; the 5 and 10 most liquid pairs were the same).
    """
    from types import SimpleNamespace

    from marketcast.datasets.crypto import load_candles
    from marketcast.orchestration.crypto import pair_groups

    t0 = time.perf_counter()
    data = load_candles(list(config.data.paths) or None, pair_renames=config.pair_renames)
    start = config.walk_forward.start or "2022-07-01"
    # pair_groups reads only ``prepared.data.candles``
    groups = pair_groups(SimpleNamespace(data=data), 1, before=start)  # type: ignore[arg-type]
    return [p for _, pairs in groups for p in pairs], time.perf_counter() - t0


def _pick(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "sharpe",
        "net_return",
        "gross_return",
        "costs",
        "max_drawdown",
        "turnover",
        "hit_rate",
        "log_loss",
        "n_periods",
        "capacity_usd",
    )
    out: dict[str, Any] = {}
    for key in keys:
        value = metrics.get(key)
        if isinstance(value, float) and value != value:  # NaN
            value = None
        elif isinstance(value, float) and value in (float("inf"), float("-inf")):
            value = str(value)
        out[key] = value
    return out


def readme_table(results: dict[str, Any]) -> str:
    """The README's crypto block, opening with the date and machine when the results hold them
    (a file written before ``main`` recorded them has neither a date nor ``machine.arch``)."""
    lines = []
    if results.get("date"):
        machine = results["machine"]
        lines += [
            f"Measured by `make bench` on {machine['arch']}, {machine['cpus']} cores, Python "
            f"{machine['python']} ({results['date']}); each case in a fresh process.",
            "",
        ]
    lines += [
        "| case | pairs | wall | pair-horizons/min | peak RSS driver / workers |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for case in results["cases"]:
        worker = case["peak_rss_worker_mib"]
        lines.append(
            f"| {case['backend']} | {case['pairs']} | {case['wall_s'] / 60:.1f} min | "
            f"{case['pair_horizons_per_min']:.1f} | {case['peak_rss_driver_mib']:.0f} / "
            f"{'n/a' if worker is None else f'{worker:.0f}'} MiB |"
        )
    ranked = [c for c in results["cases"] if c.get("ranking_s") is not None]
    if ranked:
        sizes = "- and ".join(str(c["pairs"]) for c in ranked)
        seconds = ", ".join(f"{c['ranking_s']:.1f} s" for c in ranked)
        lines += [
            "",
            f"The {sizes}-pair cases first rank the pairs by median quote volume over the bars "
            f"before the test window, before their timer ({seconds}: not in the wall time).",
        ]
    full = next(c for c in results["cases"] if c["backend"] == "local" and c["pairs"] >= 20)
    lines += [
        "",
        f"Out of sample from {full['test_start']}, net of fees, spread, slippage, funding where "
        "the data has it and borrow interest on spot shorts, equal-weight over the pairs in the "
        "universe:",
        "",
        "| horizon | model | net Sharpe | net return | gross return | max drawdown | turnover/yr |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for h, section in full["results"].items():
        champion = section["champion"]
        for name in dict.fromkeys([champion, "lightgbm", "buy_and_hold"]):
            m = section["models"].get(name)
            if m is None:
                continue
            label = f"{name} (champion)" if name == champion else name
            lines.append(
                f"| {h} | {label} | {_num(m['sharpe'], '{:+.2f}')} | "
                f"{_num(m['net_return'], '{:+.1%}')} | {_num(m['gross_return'], '{:+.1%}')} | "
                f"{_num(m['max_drawdown'], '{:.1%}')} | {_num(m['turnover'], '{:.0f}')} |"
            )
    return "\n".join(lines)


def _num(value: Any, pattern: str) -> str:
    return "n/a" if not isinstance(value, int | float) else pattern.format(value)


def update_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- bench:crypto:start -->", "<!-- bench:crypto:end -->"
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", help="backend:pairs, run one case and print its JSON")
    parser.add_argument("--cases", default=",".join(f"{b}:{n}" for b, n in CASES))
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    if args.case:
        backend, n = args.case.split(":")
        print(json.dumps(run_case(backend, int(n)), default=str))
        return
    cases = []
    for spec in args.cases.split(","):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--case", spec],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ},
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            cases.append({"case": spec, "error": proc.stderr[-2000:]})
            continue
        case = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{spec}: {case['wall_s']} s ({time.perf_counter() - t0:.0f} s with start-up)")
        cases.append(case)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "arch": platform.machine(),
            "cpus": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "target": "whole pipeline, all bundled pairs x 3 horizons, under 10 minutes on 2 cores",
        "cases": cases,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True), encoding="utf-8")
    ok = [c for c in cases if "error" not in c]
    if not args.no_readme and any(c["backend"] == "local" and c["pairs"] >= 20 for c in ok):
        update_readme(readme_table({**results, "cases": ok}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
