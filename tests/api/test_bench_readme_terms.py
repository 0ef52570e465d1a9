"""The benches' README blocks state what the run recorded, not fixed text."""

from __future__ import annotations

from typing import Any

from tests.bench_module import load_bench

BACKTEST = {
    "staking": "fractional_kelly",
    "kelly_fraction": 0.25,
    "min_edge": 0.02,
    "max_stake_fraction": 0.05,
    "bookmaker": "best",
}


def test_football_readme_states_the_runs_staking_as_applied() -> None:
    bench = load_bench("football")
    assert bench.staking_terms(BACKTEST) == (
        "fractional Kelly (0.25, min edge 2%, cap 5%) at the best pre-match price"
    )
    # full Kelly ignores the fraction; a flat stake is never capped
    assert bench.staking_terms({**BACKTEST, "staking": "kelly", "kelly_fraction": 0.5}) == (
        "full Kelly (min edge 2%, cap 5%) at the best pre-match price"
    )
    flat = {**BACKTEST, "staking": "flat", "min_edge": 0.025, "bookmaker": "pinnacle"}
    assert bench.staking_terms(flat) == "flat stakes (min edge 2.5%) at pinnacle's pre-match price"


def _crypto_case() -> dict[str, Any]:
    flat = dict.fromkeys(("sharpe", "net_return", "gross_return", "max_drawdown", "turnover"), 0.0)
    return {
        "backend": "local",
        "pairs": 20,
        "wall_s": 165.6,
        "pair_horizons_per_min": 21.74,
        "peak_rss_driver_mib": 1355.7,
        "peak_rss_worker_mib": 1339.3,
        "test_start": "2022-07-01",
        "results": {"1h": {"champion": "flat", "models": {"flat": flat}}},
    }


def test_crypto_readme_opens_with_the_date_and_machine_when_recorded() -> None:
    bench = load_bench("crypto")
    machine = {"arch": "x86_64", "cpus": 2, "python": "3.11.7"}
    results = {"date": "2026-11-24", "machine": machine, "cases": [_crypto_case()]}
    dated = bench.readme_table(results)
    assert dated.splitlines()[0] == (
        "Measured by `make bench` on x86_64, 2 cores, Python 3.11.7 (2026-11-24); "
        "each case in a fresh process."
    )
    # results written before the date was recorded render as before
    assert bench.readme_table({"cases": [_crypto_case()]}).startswith("| case | pairs |")
