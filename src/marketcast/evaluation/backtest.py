"""Economic backtest: stake on edges at pre-match prices, settle, report ROI, drawdown and CLV."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketcast.evaluation.scoring import check_probabilities
from marketcast.evaluation.staking import (
    RULES,
    applied_kelly_multiplier,
    applied_stake_cap,
    check_staking_parameters,
    stake_fractions,
)
from marketcast.labels.football import profit_matrix

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "cumulative_profit_curve",
    "lowest_bankroll",
    "max_drawdown",
    "profit_matrix",
    "run_backtest",
]

FloatArray = npt.NDArray[np.float64]

# Bound on resampled indices held at once (8 bytes each), so long backtests do not exhaust memory.
_MAX_DRAWS_PER_CHUNK = 4_000_000

BET_COLUMNS: tuple[str, ...] = (
    "row",
    "kickoff_utc",
    "outcome",
    "stake",
    "odds",
    "edge",
    "profit",
    "clv",
    "cumulative_profit",
)


@dataclass(frozen=True)
class BacktestConfig:
    """Staking and resampling settings of a backtest (see :mod:`marketcast.evaluation.staking`).

    Checked on construction, with the same ranges as the run config: ``kelly_fraction`` and
    ``max_stake_fraction`` in (0, 1], ``min_edge`` >= 0 and ``bankroll_units`` > 0 (finite
    numbers), ``n_bootstrap`` an integer >= 0 and ``seed`` an integer >= 0 or None (a fresh
    random bootstrap each run). ``ValueError`` names the field.
    """

    staking: str = "fractional_kelly"
    kelly_fraction: float = 0.25
    min_edge: float = 0.02
    max_stake_fraction: float = 0.05
    bankroll_units: float = 100.0
    n_bootstrap: int = 1000
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.staking not in RULES:
            raise ValueError(f"unknown staking rule {self.staking!r}; expected one of {RULES}")
        check_staking_parameters(
            self.kelly_fraction, self.min_edge, self.max_stake_fraction, self.bankroll_units
        )
        for name in ("n_bootstrap", "seed"):
            value = getattr(self, name)
            if name == "seed" and value is None:
                continue
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


@dataclass(frozen=True)
class BacktestResult:
    """Outcome of :func:`run_backtest`; money is in units of the notional bankroll."""

    roi: float
    profit_units: float
    n_bets: int
    staked_units: float
    max_drawdown: float
    clv: float
    n_bets_without_closing: int
    roi_ci: tuple[float, float]
    hit_rate: float
    n_unsettled: int
    config: BacktestConfig
    bets: pd.DataFrame = field(repr=False, compare=False)
    #: the notional bankroll at its lowest, in units: ``bankroll_units`` plus the lowest
    #: cumulative profit (0 before the first bet), the bets of one kick-off as one step, as in
    #: ``max_drawdown``. At or below 0 the bankroll ran out: stakes stay sized on
    #: ``bankroll_units`` (non-compounding), so later bets stake money no longer held.
    lowest_bankroll_units: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no bets frame); NaN becomes ``None``.

        ``config`` records the staking as applied, not as configured: ``kelly_fraction`` is
        the multiple of the Kelly stake staked (1 under ``"kelly"``, ``None`` under
        ``"flat"``) and ``max_stake_fraction`` the cap on a stake (``None`` under ``"flat"``,
        whose 1-unit stakes are never capped).
        """

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else float(x)

        return {
            "roi": clean(self.roi),
            "profit_units": clean(self.profit_units),
            "n_bets": int(self.n_bets),
            "staked_units": clean(self.staked_units),
            "max_drawdown": clean(self.max_drawdown),
            "clv": clean(self.clv),
            "n_bets_without_closing": int(self.n_bets_without_closing),
            "roi_ci": [clean(self.roi_ci[0]), clean(self.roi_ci[1])],
            "hit_rate": clean(self.hit_rate),
            "n_unsettled": int(self.n_unsettled),
            "lowest_bankroll_units": clean(self.lowest_bankroll_units),
            "bankroll_exhausted": bool(self.lowest_bankroll_units <= 0.0),
            "config": {
                "staking": self.config.staking,
                "kelly_fraction": applied_kelly_multiplier(
                    self.config.staking, self.config.kelly_fraction
                ),
                "min_edge": self.config.min_edge,
                "max_stake_fraction": applied_stake_cap(
                    self.config.staking, self.config.max_stake_fraction
                ),
                "bankroll_units": self.config.bankroll_units,
                "n_bootstrap": int(self.config.n_bootstrap),  # a numpy integer is accepted
                "seed": None if self.config.seed is None else int(self.config.seed),
            },
        }


def max_drawdown(profits_in_time_order: npt.ArrayLike) -> float:
    """Largest peak-to-trough fall of the cumulative profit, starting from 0 before the first bet.

    Examples
    --------
    >>> max_drawdown([1.0, -2.0, 0.5, -1.0, 3.0])
    2.5
    """
    profits = np.asarray(profits_in_time_order, dtype=np.float64)
    curve = np.concatenate([[0.0], np.cumsum(profits)])
    return float(np.max(np.maximum.accumulate(curve) - curve))


def lowest_bankroll(profits_in_time_order: npt.ArrayLike, bankroll_units: float) -> float:
    """The bankroll at its lowest: ``bankroll_units`` plus the lowest cumulative profit, which
    is 0 before the first bet.

    Examples
    --------
    >>> lowest_bankroll([1.0, -2.0, 0.5, -1.0, 3.0], 100.0)
    98.5
    >>> lowest_bankroll([], 100.0)
    100.0
    """
    profits = np.asarray(profits_in_time_order, dtype=np.float64)
    return float(bankroll_units + min(0.0, float(np.min(np.cumsum(profits), initial=0.0))))


def _settled_together(
    profits: FloatArray, kickoff: pd.DatetimeIndex, time_known: npt.NDArray[np.bool_]
) -> FloatArray:
    """Profits summed over the bets of each kick-off (``kickoff`` sorted): the bets of one
    kick-off settle at once, so a bankroll never sees one lose before another wins. A bet with
    no kick-off time (NaT, or ``time_known`` False: a date whose time was filled in) is a step
    of its own.

    Examples
    --------
    >>> t = pd.DatetimeIndex(["2023-08-12 14:00", "2023-08-12 14:00", "2023-08-12 16:30"])
    >>> _settled_together(np.array([1.0, -1.0, -1.0]), t, np.array([True, True, True])).tolist()
    [0.0, -1.0]
    >>> _settled_together(np.array([1.0, -1.0, -1.0]), t, np.array([False, False, True])).tolist()
    [1.0, -1.0, -1.0]
    """
    if len(profits) == 0:
        return profits
    stamps = kickoff.asi8
    alone = ~time_known | kickoff.isna()  # (n_bets,)
    starts = np.ones(len(profits), dtype=bool)
    starts[1:] = (stamps[1:] != stamps[:-1]) | alone[1:] | alone[:-1]
    return np.add.reduceat(profits, np.flatnonzero(starts))


def _bootstrap_roi(
    stakes: FloatArray, profits: FloatArray, n_bootstrap: int, seed: int | None
) -> tuple[float, float]:
    """Percentile 95% interval of ROI = sum(profit) / sum(stake), resampling bets.

    NaN where the bets hold no spread to resample: none, or every bet with the same return to
    1e-9 (one bet, or several won at the same odds, whose returns under Kelly stakes differ in
    the last digit). Every resample then had the ROI of the sample, and the interval read as
    certainty: one winning bet at evens was "ROI +100%, 95% CI [+100%, +100%]".

    Examples
    --------
    >>> _bootstrap_roi(np.array([1.0]), np.array([1.0]), 1000, 0)
    (nan, nan)
    >>> low, high = _bootstrap_roi(np.array([1.0, 1.0]), np.array([1.0, -1.0]), 1000, 0)
    >>> low, high
    (-1.0, 1.0)
    """
    returns = profits / stakes if len(stakes) else profits
    if n_bootstrap == 0 or len(returns) == 0:
        return (float("nan"), float("nan"))
    if np.ptp(returns) <= 1e-9 * max(1.0, float(np.max(np.abs(returns)))):  # rounding aside
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    rois = np.empty(n_bootstrap)
    chunk = max(1, _MAX_DRAWS_PER_CHUNK // len(stakes))
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        draws = rng.integers(0, len(stakes), size=(size, len(stakes)))  # (size, n_bets)
        rois[start : start + size] = profits[draws].sum(axis=1) / stakes[draws].sum(axis=1)
    low, high = np.quantile(rois, [0.025, 0.975])
    return (float(low), float(high))


def run_backtest(
    probs: npt.ArrayLike,
    odds_taken: npt.ArrayLike,
    profit_per_unit: npt.ArrayLike,
    closing_probs: npt.ArrayLike | None = None,
    kickoff_utc: npt.ArrayLike | pd.Series | pd.DatetimeIndex | None = None,
    config: BacktestConfig | None = None,
    *,
    kickoff_time_known: npt.ArrayLike | None = None,
) -> BacktestResult:
    """Bet on model edges at the pre-match odds and settle on the result.

    Parameters
    ----------
    probs
        Model probabilities, shape (n, k); a row holding a NaN is no forecast and is not bet
        (see :func:`marketcast.evaluation.staking.stake_fractions`).
    odds_taken
        Pre-match decimal odds the bets are placed at, shape (n, k).
    profit_per_unit
        Profit of a 1-unit bet on each outcome, shape (n, k), e.g. from
        :func:`marketcast.labels.football.profit_matrix` (pushes and half results exact).
    closing_probs
        De-margined closing probabilities, shape (n, k); CLV of a bet is
        ``odds_taken * p_closing - 1``. A row holding a NaN has no closing price: its bets are
        left out of the CLV mean and counted in ``n_bets_without_closing``. Any other row must be
        a distribution, as ``probs`` must (values in [0, 1] summing to 1), else ``ValueError``
        names the row.
    kickoff_utc
        Kick-off times, shape (n,); bets are ordered by them (stable, so row order breaks ties)
        for the cumulative profit and drawdown, and the bets of one kick-off are one step of
        the drawdown (they settle together). ``None`` keeps row order, a step per bet.
    config
        Staking and bootstrap settings; defaults to :class:`BacktestConfig()`.
    kickoff_time_known
        Booleans, shape (n,): whether ``kickoff_utc`` holds the real kick-off time, not only
        the date (football-data files before 2019-20 have no ``Time``; the loader fills in
        15:00 and sets the match's ``kickoff_time_known`` False). A bet whose time is not
        known still sorts by its date (after the known bets of the same stamp) but is a
        drawdown step of its own, never settled with the other bets of its day. ``None``:
        every given kick-off time is known.

    Returns
    -------
    BacktestResult
        ``roi = profit_units / staked_units``; ``hit_rate`` is the share of bets with a positive
        profit (half wins count); ``roi_ci`` is a 95% percentile bootstrap interval over bets.
        A bet whose profit is NaN (result unknown) is dropped and counted in ``n_unsettled``.

    Examples
    --------
    >>> cfg = BacktestConfig(staking="flat", n_bootstrap=0)
    >>> res = run_backtest([[0.6, 0.4], [0.6, 0.4]], [[2.0, 2.0], [2.0, 2.0]],
    ...                    [[1.0, -1.0], [-1.0, 1.0]], config=cfg)
    >>> res.n_bets, res.profit_units, res.roi, res.max_drawdown
    (2, 0.0, 0.0, 1.0)
    """
    cfg = config if config is not None else BacktestConfig()
    p = np.asarray(probs, dtype=np.float64)
    odds = np.asarray(odds_taken, dtype=np.float64)
    profit_unit = np.asarray(profit_per_unit, dtype=np.float64)
    if profit_unit.shape != p.shape:
        raise ValueError(f"profit_per_unit must have shape {p.shape}, got {profit_unit.shape}")
    closing: FloatArray | None = None
    if closing_probs is not None:
        closing = np.asarray(closing_probs, dtype=np.float64)
        if closing.shape != p.shape:
            raise ValueError(f"closing_probs must have shape {p.shape}, got {closing.shape}")
        closing = check_probabilities(closing, "closing_probs")
    n_rows = p.shape[0]

    outcome, stake_fraction, edge = stake_fractions(
        p,
        odds,
        rule=cfg.staking,
        kelly_fraction=cfg.kelly_fraction,
        min_edge=cfg.min_edge,
        max_stake_fraction=cfg.max_stake_fraction,
        bankroll_units=cfg.bankroll_units,
    )
    rows = np.flatnonzero(outcome >= 0)
    chosen = outcome[rows]
    unit_profit = profit_unit[rows, chosen]
    settled = np.isfinite(unit_profit)
    n_unsettled = int(np.sum(~settled))
    rows, chosen, unit_profit = rows[settled], chosen[settled], unit_profit[settled]

    time_known = np.ones(n_rows, dtype=bool)
    if kickoff_time_known is not None:
        time_known = np.asarray(kickoff_time_known)
        if time_known.dtype != np.bool_ or time_known.shape != (n_rows,):
            raise ValueError(
                f"kickoff_time_known must be {n_rows} booleans, got dtype {time_known.dtype} "
                f"and shape {time_known.shape}"
            )
    if kickoff_utc is None:
        kickoff = pd.DatetimeIndex([pd.NaT] * n_rows, tz="UTC")
    else:
        kickoff = pd.DatetimeIndex(pd.to_datetime(pd.Series(kickoff_utc).to_numpy(), utc=True))
        if len(kickoff) != n_rows:
            raise ValueError(f"kickoff_utc must have length {n_rows}, got {len(kickoff)}")
        # NaT (int64 min) would sort first; push unknown kick-offs to the end instead.
        sort_key = np.where(kickoff.isna(), np.iinfo(np.int64).max, kickoff.asi8)[rows]
        # within one stamp the bets whose time is known come first, so they stay adjacent and
        # settle as one step: a filled-in time between them split them (lexsort is stable)
        order = np.lexsort((~time_known[rows], sort_key))
        rows, chosen, unit_profit = rows[order], chosen[order], unit_profit[order]

    stake_units = stake_fraction[rows] * cfg.bankroll_units
    bet_profit = stake_units * unit_profit
    bet_odds = odds[rows, chosen]
    if closing is None:
        clv = np.full(len(rows), np.nan)
    else:
        closing_priced = ~np.any(np.isnan(closing), axis=1)
        clv = np.where(closing_priced[rows], bet_odds * closing[rows, chosen] - 1.0, np.nan)

    n_bets = len(rows)
    steps = _settled_together(bet_profit, kickoff[rows], time_known[rows])  # drawdown steps
    staked = float(stake_units.sum())
    profit = float(bet_profit.sum())
    has_closing = np.isfinite(clv)
    bets = pd.DataFrame(
        {
            "row": rows,
            "kickoff_utc": kickoff[rows],
            "outcome": chosen,
            "stake": stake_units,
            "odds": bet_odds,
            "edge": edge[rows],
            "profit": bet_profit,
            "clv": clv,
            "cumulative_profit": np.cumsum(bet_profit),
        },
        columns=list(BET_COLUMNS),
    )
    return BacktestResult(
        roi=profit / staked if staked > 0 else float("nan"),
        profit_units=profit,
        n_bets=n_bets,
        staked_units=staked,
        max_drawdown=max_drawdown(steps),
        clv=float(np.mean(clv[has_closing])) if np.any(has_closing) else float("nan"),
        n_bets_without_closing=int(np.sum(~has_closing)),
        roi_ci=_bootstrap_roi(stake_units, bet_profit, cfg.n_bootstrap, cfg.seed),
        hit_rate=float(np.mean(bet_profit > 0)) if n_bets else float("nan"),
        n_unsettled=n_unsettled,
        config=cfg,
        bets=bets,
        lowest_bankroll_units=lowest_bankroll(steps, cfg.bankroll_units),
    )


def cumulative_profit_curve(result: BacktestResult) -> pd.Series:
    """Cumulative profit in units after each bet, in time order.

    Indexed by kick-off time when the backtest had them, else by bet number.

    Examples
    --------
    >>> cfg = BacktestConfig(staking="flat", n_bootstrap=0)
    >>> res = run_backtest([[0.6, 0.4]], [[2.0, 2.0]], [[1.0, -1.0]], config=cfg)
    >>> cumulative_profit_curve(res).tolist()
    [1.0]
    """
    bets = result.bets
    curve = pd.Series(
        bets["cumulative_profit"].to_numpy(), name="cumulative_profit", dtype="float64"
    )
    if len(bets) and bets["kickoff_utc"].notna().all():
        curve.index = pd.DatetimeIndex(bets["kickoff_utc"], name="kickoff_utc")
    else:
        curve.index.name = "bet"
    return curve
