"""Crypto backtest benchmark: our vectorised backtest against vectorbt on 200,000 real hourly bars.

Data: the last 10,000 hourly bars common to all 20 Binance spot pairs in
``/work/shared/data/crypto/*.csv`` (20 x 10,000 = 200,000 bars), plus 200 earlier bars of
warm-up for the features. Signal: sign of the 24-hour momentum ``close[t] / close[t-24] - 1`` at
bar ``t``'s close, entered at the open of ``t + 1``, every pair at once, rebalanced every
``h`` bars (``h = 1`` and ``h = 4``), equal weight (each pair 1/20 of capital).

Costs, ours: 0.1% taker fee, half the rolling Abdi-Ranaldo spread (168 bars), square-root
slippage (coef 1, 24-bar volatility, entry-bar quote volume, 10,000 USD per pair) and funding.
Funding: the spot window (2022-23) has no overlapping perpetual funding data, so each pair's
real 2025-26 Binance USD-M funding rates are replayed in order on the window's 8-hourly funding
times (00, 08, 16 UTC): real sizes, not real timing (MATIC has none: the cross-pair mean).
vectorbt has no funding: it gets the same fee, and as ``slippage`` (a fraction of price per
order) the same per-order half spread + impact rate as ours; it is run on the opens (as close
and price), one group, cash shared, target percent +-1/20 per pair, ``call_seq="auto"``.

Timing: vectorbt runs once first (numba JIT), then both run 5 times; best of 5. Timed work:
ours = build the period arrays from the bar arrays, sum funding per period, run the backtest and
compute its metrics; vectorbt = ``Portfolio.from_orders`` plus final value, Sharpe and max
drawdown. Run: ``PYTHONPATH=src .venv/bin/python bench/crypto_backtest_vs_vectorbt.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from marketcast.costs import CostModel, half_spread_rate, period_funding_sums
from marketcast.costs import slippage_rate as cost_slippage_rate
from marketcast.evaluation.crypto_backtest import (
    BacktestResult,
    period_entry_bars,
    period_returns_from_opens,
    run_backtest,
)
from marketcast.features.spread import rolling_spread

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/crypto")
FUNDING = DATA / "binance_futures_um"
RESULTS = ROOT / "bench" / "results" / "crypto_backtest.json"
N_BARS = 10_000
WARMUP_BARS = 200
MOMENTUM_BARS = 24
VOL_BARS = 24
SPREAD_WINDOW_BARS = 168
HOURS_PER_YEAR = 8760.0
REPEATS = 5


def load_bars(n_bars: int, warmup_bars: int) -> dict[str, Any]:
    """The last ``n_bars + warmup_bars`` hours common to every pair, as (n_bars, n_pairs) arrays."""
    frames = {}
    for path in sorted(DATA.glob("*_1h.csv")):
        frame = pd.read_csv(path, usecols=["date", "open", "high", "low", "close", "volume"])
        frame["open_time_utc"] = pd.to_datetime(frame["date"], utc=True)
        frames[path.name.removesuffix("_1h.csv")] = frame.drop(columns="date").set_index(
            "open_time_utc"
        )
    common = sorted(set.intersection(*(set(f.index) for f in frames.values())))
    keep = pd.DatetimeIndex(common[-(n_bars + warmup_bars) :])
    pairs = sorted(frames)
    out: dict[str, Any] = {"pairs": pairs, "open_time_utc": keep}
    for column in ("open", "high", "low", "close", "volume"):
        out[column] = np.column_stack([frames[p].loc[keep, column].to_numpy() for p in pairs])
    typical = (out["open"] + out["high"] + out["low"] + out["close"]) / 4.0
    out["quote_volume"] = out["volume"] * typical  # the spot files carry base volume only
    hour_ns = 3_600 * 10**9
    gaps = np.diff(keep[warmup_bars:].as_unit("ns").asi8) != hour_ns
    out["n_gaps_inside_window"] = int(gaps.sum())
    return out


def features(bars: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per bar, known at its close: momentum, 24-bar volatility, rolling spread."""
    close = bars["close"]
    momentum = np.full_like(close, np.nan)
    momentum[MOMENTUM_BARS:] = close[MOMENTUM_BARS:] / close[:-MOMENTUM_BARS] - 1.0
    log_ret = np.diff(np.log(close), axis=0, prepend=np.nan)
    volatility = pd.DataFrame(log_ret).rolling(VOL_BARS).std().to_numpy()
    spread = np.column_stack(
        [
            rolling_spread(
                pd.DataFrame(
                    {
                        "open_time_utc": bars["open_time_utc"],
                        "high": bars["high"][:, i],
                        "low": bars["low"][:, i],
                        "close": close[:, i],
                    }
                ),
                window_bars=SPREAD_WINDOW_BARS,
                method="abdi_ranaldo",
            ).to_numpy()
            for i in range(close.shape[1])
        ]
    )
    return {"momentum": momentum, "volatility": volatility, "spread": spread}


def synthetic_funding(pairs: list[str], open_time_utc: pd.DatetimeIndex) -> dict[str, Any]:
    """Real 2025-26 funding rates per pair replayed on the window's 8-hourly funding times."""
    start = open_time_utc[0].floor("8h")
    times = pd.date_range(start, open_time_utc[-1] + pd.Timedelta(hours=8), freq="8h")
    real: dict[str, np.ndarray] = {}
    for pair in pairs:
        path = FUNDING / f"{pair}_funding_8h.csv"
        if path.exists():
            real[pair] = pd.read_csv(path)["funding_rate"].to_numpy(np.float64)
    length = min(len(v) for v in real.values())
    mean_series: np.ndarray = np.mean([v[:length] for v in real.values()], axis=0)
    rates = np.column_stack(
        [np.resize(real.get(pair, mean_series), len(times)) for pair in pairs]
    )  # (n_events, n_pairs), cycled
    return {
        "time_ns": times.as_unit("ns").asi8,
        "rates": rates,
        "pairs_without_real_funding": [p for p in pairs if p not in real],
        "real_rate_abs_mean": float(np.mean([np.abs(v).mean() for v in real.values()])),
    }


def positions_per_bar(momentum: np.ndarray) -> np.ndarray:
    """Target for the period entered at the open of bar ``b``: sign of momentum at ``b - 1``."""
    pos = np.zeros_like(momentum)
    pos[1:] = np.sign(np.nan_to_num(momentum[:-1]))
    return pos


def ours(
    bars: dict[str, Any],
    feats: dict[str, np.ndarray],
    funding: dict[str, Any],
    pos_bar: np.ndarray,
    horizon_bars: int,
    offset_bars: int,
    costs: CostModel,
) -> BacktestResult:
    """Period arrays from bar arrays, funding per period, the backtest (timed end to end)."""
    entry = period_entry_bars(bars["open"].shape[0], horizon_bars, offset_bars)
    returns = period_returns_from_opens(bars["open"], horizon_bars, offset_bars)
    decision = entry - 1  # features known at the close before the entry open
    open_ns = bars["open_time_utc"].as_unit("ns").asi8
    start_ns, end_ns = open_ns[entry], open_ns[entry + horizon_bars]
    funding_sums = np.column_stack(
        [
            period_funding_sums(funding["time_ns"], funding["rates"][:, i], start_ns, end_ns)
            for i in range(returns.shape[1])
        ]
    )
    return run_backtest(
        positions=pos_bar[entry],
        period_returns=returns,
        spread=feats["spread"][decision],
        quote_volume=bars["quote_volume"][entry],
        volatility=feats["volatility"][decision],
        funding=funding_sums,
        costs=costs,
        periods_per_year=HOURS_PER_YEAR / horizon_bars,
    )


def vectorbt_inputs(
    bars: dict[str, Any],
    feats: dict[str, np.ndarray],
    result: BacktestResult,
    horizon_bars: int,
    offset_bars: int,
    costs: CostModel,
) -> dict[str, np.ndarray]:
    """Bar-level vectorbt arrays over the window: prices, target percents, per-order slippage."""
    n_bars, n_pairs = bars["open"].shape
    entry = period_entry_bars(n_bars, horizon_bars, offset_bars)
    decision = entry - 1
    prev = np.vstack([np.zeros((1, n_pairs)), result.positions[:-1]])
    turnover = np.abs(result.positions - prev)
    spread = pd.DataFrame(feats["spread"]).ffill().to_numpy()[decision]
    volume = pd.DataFrame(bars["quote_volume"]).replace(0.0, np.nan).ffill().to_numpy()[entry]
    volatility = pd.DataFrame(feats["volatility"]).ffill().to_numpy()[decision]
    per_order = half_spread_rate(spread, costs) + cost_slippage_rate(
        turnover, volatility, volume, costs
    )
    window = slice(offset_bars, n_bars)
    size = np.full((n_bars, n_pairs), np.nan)
    size[entry] = result.positions / n_pairs
    slippage = np.zeros((n_bars, n_pairs))
    slippage[entry] = per_order
    return {
        "close": bars["open"][window],
        "size": size[window],
        "slippage": slippage[window],
    }


def run_vectorbt(inputs: dict[str, np.ndarray], costs: CostModel, n_pairs: int) -> Any:
    """Simulate, then read final value, Sharpe and max drawdown (the timed vectorbt work)."""
    import vectorbt as vbt

    portfolio = vbt.Portfolio.from_orders(
        close=inputs["close"],
        size=inputs["size"],
        size_type="targetpercent",
        price=inputs["close"],
        fees=costs.taker_fee_rate,
        slippage=inputs["slippage"],
        direction="both",
        init_cash=costs.notional_usd * n_pairs,
        cash_sharing=True,
        group_by=np.zeros(n_pairs, dtype=int),
        call_seq="auto",
        freq="1h",
    )
    summary = {
        "final_value": float(portfolio.final_value()),
        "sharpe_hourly_annualised": float(portfolio.sharpe_ratio()),
        "max_drawdown": float(-portfolio.max_drawdown()),
    }
    return portfolio, summary


def vectorbt_turnover(portfolio: Any) -> dict[str, float]:
    """Sum over orders of traded value / portfolio value at that bar, and fees paid in USD."""
    records = portfolio.orders.values
    value = np.asarray(portfolio.value()).ravel()
    traded = records["size"] * records["price"]
    return {
        "n_orders": int(records.shape[0]),
        "turnover_total": float(np.sum(traded / value[records["idx"]])),
        "fees_usd": float(records["fees"].sum()),
    }


def best_of(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_horizon(
    bars: dict[str, Any],
    feats: dict[str, np.ndarray],
    funding: dict[str, Any],
    horizon_bars: int,
    costs: CostModel,
    *,
    first: bool,
) -> dict[str, Any]:
    """Ours against vectorbt at one horizon; ``first``: the process's first vectorbt call,
    which compiles numba (later horizons' first calls reuse the compiled code)."""
    n_pairs = len(bars["pairs"])
    offset = bars["open"].shape[0] - N_BARS  # first entry = first bar of the 10,000-bar window
    pos_bar = positions_per_bar(feats["momentum"])
    result = ours(bars, feats, funding, pos_bar, horizon_bars, offset, costs)
    no_funding = costs.model_copy(update={"funding": False})
    result_no_funding = ours(bars, feats, funding, pos_bar, horizon_bars, offset, no_funding)
    vbt_in = vectorbt_inputs(bars, feats, result, horizon_bars, offset, costs)

    cold_t0 = time.perf_counter()
    run_vectorbt(vbt_in, costs, n_pairs)  # numba JIT compile (or cache load) when ``first``
    vbt_cold_s = time.perf_counter() - cold_t0
    vbt_s, (portfolio, vbt_out) = best_of(lambda: run_vectorbt(vbt_in, costs, n_pairs), REPEATS)
    vbt_out |= vectorbt_turnover(portfolio)
    ours_s, metrics = best_of(
        lambda: ours(bars, feats, funding, pos_bar, horizon_bars, offset, costs).metrics(),
        REPEATS,
    )
    fee_only = costs.model_copy(
        update={"spread_method": "fixed", "slippage_model": "none", "funding": False}
    )
    entry = period_entry_bars(pos_bar.shape[0], horizon_bars, offset)
    core_s, _ = best_of(
        lambda: run_backtest(
            pos_bar[entry],
            period_returns_from_opens(bars["open"], horizon_bars, offset),
            None,
            None,
            None,
            None,
            fee_only,
            HOURS_PER_YEAR / horizon_bars,
        ).metrics(),
        REPEATS,
    )
    init = costs.notional_usd * n_pairs
    m_nf = result_no_funding.metrics()
    return {
        "horizon_bars": horizon_bars,
        "n_periods": result.n_periods,
        "pair_periods": int(result.n_periods * n_pairs),
        "timing_s": {
            "ours_best_of_5": ours_s,
            "ours_fee_only_best_of_5": core_s,
            "vectorbt_best_of_5": vbt_s,
            # labelled "incl_jit" at every horizon until 2026-11-25: only the first compiles
            "vectorbt_first_call": vbt_cold_s,
            "vectorbt_first_call_includes_jit": first,
            "ratio_ours_over_vectorbt": ours_s / vbt_s,
        },
        "final_equity_usd": {
            "ours_all_costs": init * (1.0 + metrics["net_return"]),
            "ours_without_funding": init * (1.0 + m_nf["net_return"]),
            "ours_gross": init * (1.0 + metrics["gross_return"]),
            "vectorbt_fees_and_slippage": vbt_out["final_value"],
        },
        "ours_metrics": {k: _json_float(v) for k, v in metrics.items()},
        "ours_turnover_total": float(result.turnover.sum()),
        # vectorbt trades each pair back from its drifted weight to the target at every
        # rebalance; we charge only the change of target, so this is its extra turnover.
        "vectorbt_extra_turnover": vbt_out["turnover_total"] - float(result.turnover.sum()),
        "vectorbt": vbt_out,
    }


def _json_float(x: float) -> float | str:
    return x if np.isfinite(x) else str(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--horizons", default="1,4", help="comma-separated rebalance bars")
    args = parser.parse_args(argv)

    import vectorbt as vbt

    bars = load_bars(N_BARS, WARMUP_BARS)
    feats = features(bars)
    funding = synthetic_funding(bars["pairs"], bars["open_time_utc"])
    costs = CostModel()
    window = slice(WARMUP_BARS, None)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, {platform.python_version()}",
        "load_average_at_start": os.getloadavg()[0],
        "versions": {
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "vectorbt": vbt.__version__,
        },
        "data": {
            "pairs": bars["pairs"],
            "bars_per_pair": N_BARS,
            "total_bars": N_BARS * len(bars["pairs"]),
            "first_open_utc": str(bars["open_time_utc"][WARMUP_BARS]),
            "last_open_utc": str(bars["open_time_utc"][-1]),
            "gaps_in_window": bars["n_gaps_inside_window"],
            "median_spread_estimate": dict(
                zip(
                    bars["pairs"],
                    np.round(np.nanmedian(feats["spread"][window], axis=0), 6).tolist(),
                    strict=True,
                )
            ),
            "median_quote_volume_usd": dict(
                zip(
                    bars["pairs"],
                    np.round(np.median(bars["quote_volume"][window], axis=0)).tolist(),
                    strict=True,
                )
            ),
        },
        "funding": {
            "source": "real 2025-26 Binance USD-M 8h funding per pair, replayed on 2022-23 times",
            "pairs_without_real_funding": funding["pairs_without_real_funding"],
            "mean_abs_rate_per_8h": funding["real_rate_abs_mean"],
        },
        "costs": costs.model_dump(),
        "signal": "sign(close[t] / close[t-24] - 1), entry at open[t+1]",
        "vectorbt_has_no_funding": True,
        "horizons": {},
    }
    for i, h in enumerate(int(x) for x in args.horizons.split(",")):
        results["horizons"][f"{h}h"] = bench_horizon(bars, feats, funding, h, costs, first=i == 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    for name, sec in results["horizons"].items():
        t, e = sec["timing_s"], sec["final_equity_usd"]
        sys.stdout.write(
            f"{name}: ours {t['ours_best_of_5'] * 1e3:.1f} ms, vectorbt "
            f"{t['vectorbt_best_of_5'] * 1e3:.1f} ms, ratio {t['ratio_ours_over_vectorbt']:.2f}; "
            f"equity ours {e['ours_all_costs']:.0f} (no funding {e['ours_without_funding']:.0f}) "
            f"vectorbt {e['vectorbt_fees_and_slippage']:.0f}\n"
        )
    sys.stdout.write(f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
