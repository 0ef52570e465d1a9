"""The edge gate prices a spot short's borrow interest, as the backtest charges it.

Shorts on spot pay ``costs.short_borrow_rate`` in the backtest (dea72a2), but the gate that
picks the positions left it out: a short whose edge covered the trading cost and not the
borrow was taken, and paid for. The gate and the signal server now add the interest over the
hold to a short's cost where the pair pays no funding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.config import CryptoCosts, CryptoRunConfig
from marketcast.orchestration.crypto import horizon_rows, plan_jobs, prepare_crypto
from marketcast.orchestration.crypto_jobs import run_group_task
from tests.pipeline.test_crypto_costs_audit_fixes import PAIRS, _bundle_slice


@pytest.fixture(scope="module")
def btc_perpetual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BTC and ETH, January to June 2022; BTC with a funding file from February (a perpetual
    from then), ETH without (spot)."""
    folder = _bundle_slice(tmp_path_factory.mktemp("borrow"), "2022-01-01", "2022-07-01")
    events = pd.date_range("2022-02-01 00:00", "2022-06-30 16:00", freq="8h", tz="UTC")
    pd.DataFrame(
        {"timestamp": events.as_unit("ms").asi8, "symbol": "BTCUSDT", "funding_rate": 1e-4}
    ).to_csv(folder / "BTCUSDT_funding_8h.csv", index=False)
    return folder


def _config(rate: float, *, funding: bool = True) -> CryptoRunConfig:
    return CryptoRunConfig(
        pairs=PAIRS,
        horizons=("1d",),
        models=("flat", "momentum"),
        max_workers=1,
        costs=CryptoCosts(short_borrow_rate=rate, funding=funding),
    )


def test_each_row_knows_the_borrow_a_short_would_pay(btc_perpetual: Path) -> None:
    config = _config(0.2)
    prepared = prepare_crypto(config, [str(btc_perpetual)])
    rows = horizon_rows(prepared, "1d", config)
    spot = rows["pair"] == "ETHUSDT"
    np.testing.assert_allclose(rows.loc[spot, "short_borrow"], 0.2 * 24 / 8760, rtol=1e-12)
    # a perpetual's short pays funding, from its first funding event: before it nothing said
    # the pair was one
    funded = ~spot & (rows["decision_time_utc"] >= pd.Timestamp("2022-02-01", tz="UTC"))
    assert funded.sum() > 0
    assert (rows.loc[funded, "short_borrow"] == 0.0).all()
    before = ~spot & ~funded
    np.testing.assert_allclose(rows.loc[before, "short_borrow"], 0.2 * 24 / 8760, rtol=1e-12)
    unfunded = _config(0.2, funding=False)  # costs.funding off: every short borrows
    rows = horizon_rows(prepare_crypto(unfunded, [str(btc_perpetual)]), "1d", unfunded)
    np.testing.assert_allclose(rows["short_borrow"], 0.2 * 24 / 8760, rtol=1e-12)


def _positions(folder: Path, rate: float) -> pd.DataFrame:
    config = _config(rate)
    prepared = prepare_crypto(config, [str(folder)])
    start = pd.Timestamp("2022-04-01", tz="UTC")
    jobs = plan_jobs(prepared, config, ("1d",), start, None)
    frames = [run_group_task(job.args[0]).decisions for job in jobs]
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["pair", "decision_time_utc"]).reset_index(drop=True)


def test_the_gate_takes_no_short_whose_edge_the_borrow_eats(btc_perpetual: Path) -> None:
    free = _positions(btc_perpetual, 0.0)
    dear = _positions(btc_perpetual, 4.9)  # 134 bp a day: more than any 1d edge here
    held, priced = free["position__momentum"], dear["position__momentum"]
    spot = free["pair"] == "ETHUSDT"
    assert (held[spot] < 0).sum() > 0  # the free run shorts ETH
    assert (priced[spot] < 0).sum() == 0  # no ETH short covers the borrow
    # longs, and the perpetual's shorts (which pay funding, not borrow), are unchanged
    assert (priced[spot] == held[spot].clip(lower=0)).all()
    assert (priced[~spot] == held[~spot]).all()
    assert (held[~spot] < 0).sum() > 0
