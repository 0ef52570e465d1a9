"""Shared domain types: markets, outcomes, timings, forecasts and stake decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class MarketKind(StrEnum):
    """Football markets marketcast settles and scores."""

    ONE_X_TWO = "1x2"
    OVER_UNDER_25 = "ou25"
    ASIAN_HANDICAP = "ah"


class Timing(StrEnum):
    """When a price was collected: before kick-off (a feature) or at the close (yardstick only)."""

    PREMATCH = "prematch"
    CLOSING = "closing"


#: Outcome names per market, in column order of every probability and odds matrix.
OUTCOMES: dict[MarketKind, tuple[str, ...]] = {
    MarketKind.ONE_X_TWO: ("home", "draw", "away"),
    MarketKind.OVER_UNDER_25: ("over", "under"),
    MarketKind.ASIAN_HANDICAP: ("home", "away"),
}

#: Canonical pseudo-bookmakers: market maximum and market average across bookmakers.
BEST_ODDS_BOOKMAKER = "max"
AVERAGE_BOOKMAKER = "avg"
PINNACLE = "pinnacle"
#: Betting exchanges among the bookmakers (Betfair Exchange, football-data's ``BFE`` columns from
#: 2024-25): their prices are before the commission the exchange takes from net winnings.
EXCHANGES = frozenset({"bfe"})
#: Commission on net winnings a backtest charges on exchange prices (Betfair's base rate).
EXCHANGE_COMMISSION = 0.05


@dataclass(frozen=True)
class Forecast:
    """One forecast: probabilities per outcome plus what a consumer needs to act on it."""

    market: MarketKind
    probabilities: dict[str, float]
    expected_goal_difference: float | None
    band: dict[str, tuple[float, float]]
    logits: dict[str, float]
    explanation: str
    model_name: str
    model_version: str
    data_timestamp: str
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StakeDecision:
    """What a staking rule decided for one match: which outcome, what fraction, and why."""

    outcome_index: int | None
    stake_fraction: float
    edge: float
    reason: str
