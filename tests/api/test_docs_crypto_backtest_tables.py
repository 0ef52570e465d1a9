"""docs/crypto-backtest.md's timing and equity tables say what the committed bench JSON says.

Both tables are copied by hand from `bench/results/crypto_backtest.json`; the timing table kept
an older run's figures after the file was replaced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LABELS = {"1h": "every bar", "4h": "every 4 bars"}


def _rows(start: str) -> dict[str, list[str]]:
    """Rows of the first table after the header line ``start``, by their first cell's label."""
    doc = (ROOT / "docs" / "crypto-backtest.md").read_text(encoding="utf-8")
    lines = doc[doc.index(start) :].splitlines()
    rows: dict[str, list[str]] = {}
    for line in lines[2:]:
        if not line.startswith("| "):
            break
        first, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        rows[first.split(" (")[0]] = cells
    return rows


def _results() -> dict[str, Any]:
    path = ROOT / "bench" / "results" / "crypto_backtest.json"
    return json.loads(path.read_text(encoding="utf-8"))["horizons"]


def test_timing_table_is_the_committed_run() -> None:
    rows = _rows("| rebalance | ours | ours, fee only | vectorbt | ours / vectorbt |")
    for horizon, label in LABELS.items():
        timing = _results()[horizon]["timing_s"]
        assert rows[label] == [
            f"{1000 * timing['ours_best_of_5']:.1f} ms",
            f"{1000 * timing['ours_fee_only_best_of_5']:.1f} ms",
            f"{1000 * timing['vectorbt_best_of_5']:.1f} ms",
            f"{timing['ratio_ours_over_vectorbt']:.2f}",
        ]


def test_final_equity_table_is_the_committed_run() -> None:
    rows = _rows("| rebalance | ours, all costs | ours, no funding | vectorbt (fee + slippage) |")
    keys = ("ours_all_costs", "ours_without_funding", "vectorbt_fees_and_slippage", "ours_gross")
    for horizon, label in LABELS.items():
        equity = _results()[horizon]["final_equity_usd"]
        assert rows[label] == [f"{equity[key]:,.0f}" for key in keys]
