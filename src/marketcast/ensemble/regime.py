"""Market regimes from causal features, and a gate enabling models per regime on their record."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Regime labels. Rule priority is illiquid > panic > trend > range (see ``classify_regimes``).
REGIMES = ("trend", "range", "panic", "illiquid")
Regime = Literal["trend", "range", "panic", "illiquid"]


class RegimeRules(BaseModel):
    """Thresholds and feature columns of :func:`classify_regimes` (frozen; unknown keys fail).

    Every trailing statistic is computed per pair from the ``lookback_periods`` rows *before* the
    current one (the current row is excluded), and needs ``min_periods`` of them; before that the
    rule that needs it does not fire. Setting a column to None switches its rule (part) off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pair_column: str | None = "pair"
    time_column: str | None = "open_time_utc"
    vol_column: str | None = "realised_vol_24h"
    return_column: str | None = "ret_log_24h"
    trend_column: str | None = "trend_strength_168h"
    quote_volume_column: str | None = "log_quote_volume_24h"
    spread_column: str | None = "spread_estimate_168h"

    lookback_periods: int = Field(720, ge=2)  # 30 days of 1h bars
    min_periods: int = Field(168, ge=2)  # 7 days of 1h bars

    #: illiquid: spread estimate (fraction of price, 0.005 = 50 bp) above this ...
    max_spread: float = Field(0.005, gt=0)
    #: ... or log quote volume below this trailing quantile of the pair's own history ...
    illiquid_volume_quantile: float = Field(0.10, gt=0, lt=1)
    #: ... or below this absolute floor (None: no floor).
    min_log_quote_volume: float | None = None

    #: panic: volatility above this multiple of its trailing median ...
    panic_vol_ratio: float = Field(2.5, gt=1)
    #: ... and the trailing return below minus this (0.05 = a 5% fall).
    panic_drawdown: float = Field(0.05, gt=0)

    #: trend: |trend strength| above this absolute level, or, when None, above ...
    min_trend_strength: float | None = None
    #: ... this trailing quantile of the pair's own |trend strength|.
    trend_quantile: float = Field(0.70, gt=0, lt=1)

    @model_validator(mode="after")
    def _periods_fit(self) -> RegimeRules:
        if self.min_periods > self.lookback_periods:
            raise ValueError(
                f"min_periods ({self.min_periods}) exceeds lookback_periods "
                f"({self.lookback_periods})"
            )
        return self


def _trailing(
    values: pd.Series, groups: pd.Series | None, rules: RegimeRules, quantile: float
) -> pd.Series:
    """Quantile of the previous ``lookback_periods`` values per group (current row excluded)."""

    def one(series: pd.Series) -> pd.Series:
        rolling = series.shift(1).rolling(rules.lookback_periods, min_periods=rules.min_periods)
        return rolling.quantile(quantile)

    if groups is None:
        return one(values)
    return values.groupby(groups, sort=False, group_keys=False).transform(one)


def classify_regimes(features: pd.DataFrame, *, rules: RegimeRules | None = None) -> pd.Series:
    """Label each row ``illiquid``, ``panic``, ``trend`` or ``range`` from decision-time features.

    Rules, first match wins:

    1. **illiquid**: ``spread_estimate_168h > max_spread``, or ``log_quote_volume_24h`` below
       the pair's trailing ``illiquid_volume_quantile`` (or below ``min_log_quote_volume``);
    2. **panic**: ``realised_vol_24h > panic_vol_ratio x`` the pair's trailing median
       ``realised_vol_24h`` and ``ret_log_24h < -panic_drawdown``;
    3. **trend**: ``|trend_strength| > min_trend_strength`` or, when that is None, above the
       pair's trailing ``trend_quantile`` of ``|trend_strength|``;
    4. **range**: everything else (including warm-up rows and rows with missing inputs).

    Trailing statistics use only earlier rows of the same pair, so a row's regime never depends on
    later rows. Rows are put in time order per pair (by ``rules.time_column`` when present; as
    given otherwise); the result is aligned with ``features.index``.

    Parameters
    ----------
    features
        Feature frame, one row per (pair, bar).
    rules
        Thresholds and column names; :class:`RegimeRules` defaults when None.

    Returns
    -------
    pandas.Series
        Categorical with categories :data:`REGIMES`, named ``regime``.

    Raises
    ------
    ValueError
        When a column the rules name is missing from ``features``.
    """
    rules = rules if rules is not None else RegimeRules()
    named = {
        field: getattr(rules, field)
        for field in (
            "vol_column",
            "return_column",
            "trend_column",
            "quote_volume_column",
            "spread_column",
        )
    }
    missing = {f: c for f, c in named.items() if c is not None and c not in features.columns}
    if missing:
        detail = ", ".join(f"{c!r} (RegimeRules.{f})" for f, c in missing.items())
        raise ValueError(f"feature frame lacks regime columns {detail}; set them to None to skip")

    frame = features.reset_index(drop=True)
    if rules.time_column is not None and rules.time_column in frame.columns:
        keys = [rules.time_column]
        if rules.pair_column is not None and rules.pair_column in frame.columns:
            keys = [rules.pair_column, rules.time_column]
        frame = frame.sort_values(keys, kind="stable")
    groups = (
        frame[rules.pair_column]
        if rules.pair_column is not None and rules.pair_column in frame.columns
        else None
    )

    def column(name: str | None) -> pd.Series | None:
        if name is None:
            return None
        return pd.to_numeric(frame[name], errors="coerce").astype(float)

    # NaN comparisons are False, so missing inputs and warm-up rows fall through to "range".
    n = len(frame)
    illiquid = np.zeros(n, dtype=bool)
    spread = column(rules.spread_column)
    if spread is not None:
        illiquid |= (spread > rules.max_spread).to_numpy(dtype=bool)
    volume = column(rules.quote_volume_column)
    if volume is not None:
        floor = _trailing(volume, groups, rules, rules.illiquid_volume_quantile)
        illiquid |= (volume < floor).to_numpy(dtype=bool)
        if rules.min_log_quote_volume is not None:
            illiquid |= (volume < rules.min_log_quote_volume).to_numpy(dtype=bool)

    panic = np.zeros(n, dtype=bool)
    vol = column(rules.vol_column)
    ret = column(rules.return_column)
    if vol is not None and ret is not None:
        median_vol = _trailing(vol, groups, rules, 0.5)
        spike = (vol > rules.panic_vol_ratio * median_vol).to_numpy(dtype=bool)
        falling = (ret < -rules.panic_drawdown).to_numpy(dtype=bool)
        panic = spike & falling

    trend = np.zeros(n, dtype=bool)
    strength = column(rules.trend_column)
    if strength is not None:
        magnitude = strength.abs()
        if rules.min_trend_strength is not None:
            trend = (magnitude > rules.min_trend_strength).to_numpy(dtype=bool)
        else:
            bar = _trailing(magnitude, groups, rules, rules.trend_quantile)
            trend = (magnitude > bar).to_numpy(dtype=bool)

    # lowest priority first, so a higher-priority rule overwrites
    labels = np.full(n, "range", dtype=object)
    labels[trend] = "trend"
    labels[panic] = "panic"
    labels[illiquid] = "illiquid"
    in_order = pd.Series(labels, index=frame.index).sort_index().to_numpy()
    return pd.Series(
        pd.Categorical(in_order, categories=list(REGIMES)), index=features.index, name="regime"
    )


# -- regime gate -------------------------------------------------------------------------------
def _utc(moment: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """UTC timestamp; naive inputs are read as UTC."""
    stamp = pd.Timestamp(moment)
    if pd.isna(stamp):
        raise ValueError(f"timestamp {moment!r} is not a time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@dataclass(frozen=True)
class GateStats:
    """What the gate saw for one (model, regime) at ``as_of``."""

    model: str
    regime: str
    n_periods: int
    mean_net_return: float
    enabled: bool
    reason: str


class RegimeGate:
    """Enable a model in a regime only when its recent out-of-sample record there is good.

    Records are ``(model, regime, period_end_utc, net_return)``: the per-period net return a
    model earned (out of sample, after costs) on a period it traded in that regime. At ``as_of``
    only records whose ``period_end_utc < as_of`` count: a period still open has not resolved,
    and one ending at ``as_of`` exits at the open of that very bar, the price the decisions of
    ``as_of`` enter at (strict, as the training purge is).
    Of those, the latest ``lookback_periods`` are used: the model is enabled when there are at
    least ``min_periods`` and their mean net return is strictly above ``min_mean_net_return``.
    :meth:`choose` picks the enabled candidate with the highest mean, or ``fallback``.

    Parameters
    ----------
    min_periods
        Resolved periods needed before a model can be enabled.
    min_mean_net_return
        The mean per-period net return must exceed this.
    lookback_periods
        How many of the latest resolved periods are judged.
    fallback
        Model used when no candidate is enabled (``flat``: no position).
    """

    def __init__(
        self,
        min_periods: int = 30,
        min_mean_net_return: float = 0.0,
        lookback_periods: int = 90,
        fallback: str = "flat",
    ) -> None:
        if min_periods < 1 or lookback_periods < min_periods:
            raise ValueError(
                f"need 1 <= min_periods <= lookback_periods, got {min_periods}, {lookback_periods}"
            )
        self.min_periods = min_periods
        self.min_mean_net_return = min_mean_net_return
        self.lookback_periods = lookback_periods
        self.fallback = fallback
        # (model, regime) -> period ends (ns since epoch, sorted) and matching net returns.
        self._ends_ns: dict[tuple[str, str], list[int]] = {}
        self._returns: dict[tuple[str, str], list[float]] = {}

    def record(
        self,
        model: str,
        regime: str,
        period_end_utc: datetime | pd.Timestamp | str,
        net_return: float,
    ) -> None:
        """Add one resolved period's net return of ``model`` in ``regime``."""
        if regime not in REGIMES:
            raise ValueError(f"unknown regime {regime!r}; regimes: {', '.join(REGIMES)}")
        value = float(net_return)
        if not math.isfinite(value):
            raise ValueError(
                f"net_return of {model!r} in {regime!r} at {period_end_utc} is {value}"
            )
        key = (model, regime)
        ends = self._ends_ns.setdefault(key, [])
        returns = self._returns.setdefault(key, [])
        end_ns = _utc(period_end_utc).value
        position = bisect.bisect_right(ends, end_ns)
        ends.insert(position, end_ns)
        returns.insert(position, value)

    def records(self, model: str, regime: str) -> pd.DataFrame:
        """All records of ``(model, regime)`` in time order: ``period_end_utc``, ``net_return``."""
        key = (model, regime)
        return pd.DataFrame(
            {
                "period_end_utc": pd.to_datetime(self._ends_ns.get(key, []), utc=True),
                "net_return": np.asarray(self._returns.get(key, []), dtype=float),
            }
        )

    def _recent(self, model: str, regime: str, as_of: datetime | pd.Timestamp | str) -> list[float]:
        key = (model, regime)
        ends = self._ends_ns.get(key, [])
        resolved = bisect.bisect_left(ends, _utc(as_of).value)  # ends strictly before as_of
        start = max(0, resolved - self.lookback_periods)
        return self._returns.get(key, [])[start:resolved]

    def stats(self, model: str, regime: str, as_of: datetime | pd.Timestamp | str) -> GateStats:
        """Count, mean and the enable decision for ``model`` in ``regime`` at ``as_of``."""
        recent = self._recent(model, regime, as_of)
        n = len(recent)
        mean = float(np.mean(recent)) if n else float("nan")
        if n < self.min_periods:
            return GateStats(
                model, regime, n, mean, False, f"{n} resolved periods < {self.min_periods}"
            )
        if not mean > self.min_mean_net_return:
            reason = f"mean net return {mean:.6f} <= {self.min_mean_net_return}"
            return GateStats(model, regime, n, mean, False, reason)
        reason = f"mean net return {mean:.6f} > {self.min_mean_net_return} over {n} periods"
        return GateStats(model, regime, n, mean, True, reason)

    def enabled(self, model: str, regime: str, as_of: datetime | pd.Timestamp | str) -> bool:
        """Whether ``model`` may trade in ``regime`` at ``as_of``."""
        return self.stats(model, regime, as_of).enabled

    def choose(
        self, candidates: Sequence[str], regime: str, as_of: datetime | pd.Timestamp | str
    ) -> str:
        """The enabled candidate with the best recent mean net return, else ``fallback``.

        Ties keep the earlier candidate in ``candidates``.
        """
        best_model, best_mean = self.fallback, -math.inf
        for model in candidates:
            stats = self.stats(model, regime, as_of)
            if stats.enabled and stats.mean_net_return > best_mean:
                best_model, best_mean = model, stats.mean_net_return
        return best_model
