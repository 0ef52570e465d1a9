"""Request and response models of the crypto signal API (v1): add fields, never rename one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from marketcast.data.candles import MAX_REPAIR_BARS
from marketcast.datasets.crypto import epoch_ns
from marketcast.serving.schemas import DoNotTradeRow, ModelRef, RankingRow, checked_time

#: Most bars one ``POST /v1/crypto/candles`` may carry.
MAX_PUSH_BARS = 2_000
#: Most funding events one ``POST /v1/crypto/funding`` may carry.
MAX_PUSH_FUNDING = 2_000
#: The largest |funding rate| per event a push may carry. Exchanges cap a perpetual's rate far
#: below this (Binance: a few percent at most); a larger value is a unit error (a percentage
#: sent as a fraction), which must not reach the features.
MAX_ABS_FUNDING_RATE = 0.1
#: Pair names: exchange symbols, upper-case letters and digits.
PAIR_PATTERN = r"^[A-Z0-9]{2,20}$"


class CryptoSignal(BaseModel):
    """The current signal of one pair and horizon, for the bar that closed at ``bar_time``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pair: str = Field(examples=["BTCUSDT"])
    horizon: str = Field(examples=["1h"], description="forecast horizon: 1h, 4h or 1d")
    bar_time: datetime = Field(
        description="close of the latest bar (its open + 1 h): the decision time of the signal"
    )
    bar_open_utc: datetime = Field(description="open time of the latest bar of the pair")
    p_up: float = Field(ge=0.0, le=1.0, description="P(forward return over the horizon > 0)")
    direction: Literal[-1, 0, 1] = Field(
        description="side of P(up) when the expected move clears the label dead zone, else 0"
    )
    position: Literal[-1, 0, 1] = Field(
        description="what to hold: direction when the edge after costs clears min_edge and the "
        "pair is tradable, else 0"
    )
    expected_return: float = Field(
        description="(2 P(up) - 1) x the group's mean |forward return|, before costs"
    )
    round_trip_cost: float | None = Field(
        description="fee, half spread and slippage, both ways, as a fraction of notional "
        "(null: no volume or volatility is known for the pair in the store's window, so a "
        "trade cannot be priced; a bar without volume is priced with the last volume known)"
    )
    short_borrow: float = Field(
        description="interest a short pays over the hold where it pays no funding (a spot "
        "pair: costs.short_borrow_rate x the horizon's hours / 8760); 0 when P(up) >= 0.5, "
        "or for a perpetual (a pair with funding rates in the store) when the champion's "
        "costs.funding is on: its short pays funding instead"
    )
    edge_after_costs: float | None = Field(
        description="|expected_return| - round_trip_cost - short_borrow (null when the cost is "
        "unknown)"
    )
    regime: str = Field(description="trend, range, panic or illiquid (ensemble/regime.py)")
    model: ModelRef
    group: str | None = Field(description="pair group of the champion; null: pair not trained")
    stale: bool = Field(description="the pair's latest bar closed more than the limit ago")
    tradable: bool = Field(description="not stale and in the universe (liquidity, spread, ...)")
    reason: str = Field(description="why the position is what it is, in words")


class CryptoSignalsOut(BaseModel):
    """Signals answered from one snapshot of champions and candles."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshot_id: str = Field(description="changes with every reload and every candle push")
    latest_bar_time: datetime = Field(description="the latest bar close in the candle store")
    signals: list[CryptoSignal]


class CryptoRankingRow(RankingRow):
    """A crypto (pair, horizon) in the rankings; ``market`` is ``<pair>/<horizon>``."""

    pair: str | None = None
    horizon: str | None = None
    position: int | None = None
    capacity_usd: float | None = Field(
        default=None,
        description="notional at which slippage would eat the edge after fees and spread",
    )
    bar_time: datetime | None = None


class CryptoDoNotTradeRow(DoNotTradeRow):
    """A crypto pair failing a universe or staleness check; ``market`` is the pair.

    ``reason`` is a code (``stale``, ``short_history``, ``low_liquidity``, ``wide_spread``,
    ``no_champion``), ``detail`` the same in words.
    """

    pair: str | None = None
    horizon: str | None = None
    detail: str | None = None


#: The earliest bar time a push may carry: before any crypto exchange.
EARLIEST_BAR = datetime(2009, 1, 1, tzinfo=UTC)


def from_epoch(value: object) -> object:
    """An integer epoch time in any unit the files use (seconds to nanoseconds, told by its
    size as the loader tells it) as an aware datetime; any other value as it is. Binance spot
    stamps in microseconds, which pydantic refused as "dates after 9999".

    >>> from_epoch(1688198400000), from_epoch(1688198400000000), from_epoch("2023-07-01")
    (datetime.datetime(2023, 7, 1, 8, 0, tzinfo=datetime.timezone.utc), \
datetime.datetime(2023, 7, 1, 8, 0, tzinfo=datetime.timezone.utc), '2023-07-01')
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=epoch_ns(value) // 1000)
    return value


class CandleIn(BaseModel):
    """One closed hourly bar from the feed (``quote_volume`` defaults to ``close x volume``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    pair: str = Field(pattern=PAIR_PATTERN, examples=["BTCUSDT"])
    open_time_utc: datetime = Field(examples=["2023-07-01T00:00:00Z"])
    open: float
    high: float
    low: float
    close: float
    volume: float = Field(description="base-asset volume")
    quote_volume: float | None = Field(default=None, description="quote (USD) volume")
    trades: int | None = Field(default=None, ge=0)

    @field_validator("open_time_utc", mode="before")
    @classmethod
    def _epoch(cls, value: object) -> object:
        return from_epoch(value)

    @field_validator("open_time_utc")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return checked_time(value, "open_time_utc", "2023-07-01T00:00:00Z", EARLIEST_BAR)


class CandlesIn(BaseModel):
    """Bars to append, at most ``MAX_PUSH_BARS``; per pair in time order, after its last bar."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bars: list[CandleIn] = Field(min_length=1, max_length=MAX_PUSH_BARS)


class FundingIn(BaseModel):
    """One funding event of a perpetual: the rate paid at ``funding_time_utc`` (a fraction)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    pair: str = Field(pattern=PAIR_PATTERN, examples=["BTCUSDT"])
    funding_time_utc: datetime = Field(examples=["2023-07-01T08:00:00Z"])
    funding_rate: float = Field(
        ge=-MAX_ABS_FUNDING_RATE,
        le=MAX_ABS_FUNDING_RATE,
        examples=[0.0001],
        description="as a fraction per funding interval (0.0001 = 0.01%)",
    )

    @field_validator("funding_time_utc", mode="before")
    @classmethod
    def _epoch(cls, value: object) -> object:
        return from_epoch(value)

    @field_validator("funding_time_utc")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return checked_time(value, "funding_time_utc", "2023-07-01T08:00:00Z", EARLIEST_BAR)


class FundingPushIn(BaseModel):
    """Funding events to append, at most ``MAX_PUSH_FUNDING``; per pair in time order, after
    its latest stored event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rates: list[FundingIn] = Field(min_length=1, max_length=MAX_PUSH_FUNDING)


class FundingPushOut(BaseModel):
    """What a funding push changed."""

    accepted: int
    latest_by_pair: dict[str, datetime] = Field(
        description="latest stored funding time of each pushed pair"
    )
    snapshot_id: str


class CandlesPushOut(BaseModel):
    """What a push changed."""

    accepted: int
    latest_bar_time: datetime
    latest_by_pair: dict[str, datetime] = Field(description="latest bar close of each pushed pair")
    snapshot_id: str
    zero_volume: int = Field(
        0,
        description="pushed bars without volume, left out as the loader leaves them out (an "
        "hour without trades): a pair's latest bar stays the one before, and the hour is filled "
        "with the previous close when the pair's next bar comes",
    )
    gap_bars_filled: int = Field(
        0,
        description=f"missing hours before a pushed bar ({MAX_REPAIR_BARS} or fewer in a row) "
        "filled with the previous close and zero volume, as the loader fills a file's gaps",
    )
    gap_bars_left: int = Field(
        0,
        description="missing hours before a pushed bar left open: runs of more than "
        f"{MAX_REPAIR_BARS} hours",
    )


class CryptoStatusOut(BaseModel):
    """The candle store and the champions behind the signals."""

    snapshot_id: str
    loaded_utc: str
    pairs: list[str]
    bars: int
    window_bars: int
    latest_bar_time: datetime
    champions: dict[str, ModelRef]
    latest_funding_by_pair: dict[str, datetime] = Field(
        default_factory=dict,
        description="latest funding event of each pair that has one (start-up files and pushes); "
        "a rate older than 24 h at a bar's decision time reaches no feature",
    )
