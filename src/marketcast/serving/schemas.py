"""Request and response models of the forecast API (v1). Add fields freely; never rename one."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from marketcast.data.validation import OVERROUND_RANGE_BEST
from marketcast.datasets.football_data import BOOKMAKER_PREFIXES, clean_team_name

API_VERSION = "1.1.0"  # 1.1: odds.bookmakers
MAX_BATCH = 256

#: Decimal odds as a request gives them: a JSON number (text and true are refused, not read as
#: numbers), above 1 and at most 1000.
Odds = Annotated[float, Field(gt=1.0, le=1000.0, strict=True)]


#: Times a request may carry: ``[earliest, LATEST_TIME)``, well inside the range of pandas'
#: nanosecond timestamps (1677 to 2262), so no model sees an overflow.
EARLIEST_KICKOFF = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def checked_time(value: datetime, field: str, example: str, earliest: datetime) -> datetime:
    """``value`` if it carries a timezone and falls in ``[earliest, LATEST_TIME)``.

    Raises
    ------
    ValueError
        Naming the field, for a naive time or one out of range (pydantic makes it a 422).
    """
    if value.tzinfo is None:
        raise ValueError(f"{field} needs a timezone, e.g. {example}")
    if not earliest <= value < LATEST_TIME:
        raise ValueError(f"{field} must fall in [{earliest:%Y-%m-%d}, {LATEST_TIME:%Y-%m-%d})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def checked_booksum(*odds: float) -> None:
    """Refuse prices whose booksum (sum of 1/odds) the data loader would drop as a quote.

    The bounds are the loader's for the best prices across bookmakers
    (``OVERROUND_RANGE_BEST``): 10/10/10 (booksum 0.3) or 1.01 three times (2.97) are typos,
    and a forecast boosted from such a price would be nonsense.
    """
    low, high = OVERROUND_RANGE_BEST
    total = sum(1.0 / o for o in odds)
    # 1.20/2.00/15.00 sums to 1.4000000000000001 in floating point: the bounds are inclusive
    if not low - 1e-9 <= total <= high + 1e-9:
        raise ValueError(
            f"the prices' booksum (sum of 1/odds) is {total:.3f}, outside [{low}, {high}]: "
            "check the odds"
        )


class OneXTwoOdds(_Strict):
    """Pre-match decimal odds for home, draw, away."""

    home: Odds = Field(description="decimal odds, > 1")
    draw: Odds
    away: Odds

    @model_validator(mode="after")
    def _booksum(self) -> OneXTwoOdds:
        checked_booksum(self.home, self.draw, self.away)
        return self


class OverUnderOdds(_Strict):
    """Pre-match decimal odds for over / under 2.5 goals."""

    over: Odds
    under: Odds

    @model_validator(mode="after")
    def _booksum(self) -> OverUnderOdds:
        checked_booksum(self.over, self.under)
        return self


class AsianHandicapOdds(_Strict):
    """Pre-match Asian handicap: the home team's line and decimal odds for each side."""

    line: float = Field(
        ge=-10.0, le=10.0, strict=True, description="home handicap, a multiple of 0.25"
    )
    home: Odds
    away: Odds

    @field_validator("line")
    @classmethod
    def _quarter(cls, value: float) -> float:
        quarters = round(value * 4)
        if abs(value * 4 - quarters) > 1e-9:
            raise ValueError("the handicap line must be a multiple of 0.25")
        # snap: 0.24999999999999997 would otherwise settle as a line just under a quarter
        return quarters / 4 + 0.0  # + 0.0 turns -0.0 into 0.0

    @model_validator(mode="after")
    def _booksum(self) -> AsianHandicapOdds:
        checked_booksum(self.home, self.away)
        return self


class BookmakerOdds(_Strict):
    """One bookmaker's pre-match quotes, each market optional (at least one)."""

    one_x_two: OneXTwoOdds | None = Field(None, alias="1x2")
    ou25: OverUnderOdds | None = None
    ah: AsianHandicapOdds | None = None

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    @model_validator(mode="after")
    def _some_market(self) -> BookmakerOdds:
        if self.one_x_two is None and self.ou25 is None and self.ah is None:
            raise ValueError("a bookmaker needs at least one market's prices")
        return self


#: Bookmaker codes a request may name: the loader's for football-data.co.uk's columns, the
#: market average (``avg``) and maximum (``max``) among them.
BOOKMAKER_CODES = tuple(sorted({code for _, code in BOOKMAKER_PREFIXES}))
MAX_BOOKMAKERS = len(BOOKMAKER_CODES)


class FixtureOdds(_Strict):
    """Odds available before kick-off; 1X2 is required.

    ``bookmakers`` optionally gives several bookmakers' pre-match quotes, keyed by the codes
    the data loader uses (`BOOKMAKER_CODES`: ``pinnacle``, ``b365``, ``avg``, ``max``, ...).
    The market features are then computed from them as training computed them from a
    football-data row (the spread across bookmakers, the average's and the best prices'
    margins, Pinnacle first), instead of from the one price above. The markets above must be
    quoted there too, and every Asian handicap quote must be on the line above.
    """

    one_x_two: OneXTwoOdds = Field(alias="1x2")
    ou25: OverUnderOdds | None = None
    ah: AsianHandicapOdds | None = None
    bookmakers: dict[str, BookmakerOdds] | None = Field(
        None, min_length=1, max_length=MAX_BOOKMAKERS
    )

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    @field_validator("bookmakers")
    @classmethod
    def _by_code(cls, value: dict[str, BookmakerOdds] | None) -> dict[str, BookmakerOdds] | None:
        """Sorted by code: the cache key and the features do not depend on the request's order."""
        return None if value is None else dict(sorted(value.items()))

    @model_validator(mode="after")
    def _bookmakers_agree(self) -> FixtureOdds:
        if self.bookmakers is None:
            return self
        unknown = sorted(set(self.bookmakers) - set(BOOKMAKER_CODES))
        if unknown:
            raise ValueError(
                f"unknown bookmaker code(s) {unknown}; known: {', '.join(BOOKMAKER_CODES)}"
            )
        quotes = self.bookmakers.values()
        for field, mine in (("1x2", self.one_x_two), ("ou25", self.ou25), ("ah", self.ah)):
            quoted = [getattr(q, "one_x_two" if field == "1x2" else field) for q in quotes]
            if mine is not None and not any(quoted):
                raise ValueError(
                    f"odds.{field} is given but no bookmaker in odds.bookmakers quotes it: the "
                    "features would lack the market the forecast answers"
                )
        lines = {q.ah.line for q in quotes if q.ah is not None}
        if self.ah is not None:
            lines.add(self.ah.line)
        if len(lines) > 1:
            raise ValueError(
                "every Asian handicap quote must be on one line (football-data quotes one a "
                f"match); got {', '.join(f'{x:+g}' for x in sorted(lines))}"
            )
        return self


class FixtureIn(_Strict):
    """One fixture to forecast."""

    league: str = Field(min_length=1, max_length=16, examples=["E0"])
    home: str = Field(min_length=1, max_length=64, examples=["Arsenal"])
    away: str = Field(min_length=1, max_length=64, examples=["Chelsea"])
    kickoff: datetime = Field(examples=["2025-05-10T14:00:00Z"])
    odds: FixtureOdds

    @field_validator("kickoff", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        """Only text (or, from Python, a datetime): a number was read as seconds or, past
        2e10, milliseconds since 1970, a guess the caller never made."""
        if not isinstance(value, str | datetime):
            raise ValueError(
                "kickoff must be ISO 8601 text with a timezone, e.g. 2025-05-10T14:00:00Z (a "
                f"number is not read as a time), got {type(value).__name__}"
            )
        return value

    @field_validator("kickoff")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return checked_time(value, "kickoff", "2025-05-10T14:00:00Z", EARLIEST_KICKOFF)

    @field_validator("home", "away")
    @classmethod
    def _one_spelling(cls, value: str) -> str:
        """The name as the loader stores it (`clean_team_name`): one sent decomposed (NFD) or
        with two spaces, as a file may write it, was an unknown team."""
        return clean_team_name(value)

    @field_validator("away")
    @classmethod
    def _two_teams(cls, value: str, info: ValidationInfo) -> str:
        """On ``away``, so a 422 points at it (a check of the whole fixture pointed at the
        body)."""
        home = info.data.get("home")
        if isinstance(home, str) and home.strip().casefold() == value.strip().casefold():
            raise ValueError(f"home and away are the same team ({home!r})")
        return value


class BatchIn(_Strict):
    """Up to ``MAX_BATCH`` fixtures."""

    fixtures: list[FixtureIn] = Field(min_length=1, max_length=MAX_BATCH)


class ModelRef(_Strict):
    """Which registered model version produced a forecast."""

    name: str
    version: str


class MarketForecast(_Strict):
    """Probabilities for a secondary market (over/under, Asian handicap) and who gave them.

    ``model`` is that market's champion, which need not be the 1X2 one the answer's top-level
    ``model`` names.
    """

    probabilities: dict[str, float]
    line: float | None = None
    model: ModelRef | None = None


class ForecastOut(BaseModel):
    """The design's forecast: probabilities, band, goal difference, logits, explanation, source."""

    model_config = ConfigDict(extra="forbid")

    probabilities: dict[str, float]
    band: dict[str, tuple[float, float]]
    expected_goal_difference: float | None
    logits: dict[str, float]
    explanation: str
    model: ModelRef
    path: Literal["edge", "cloud"]
    confidence: float
    markets: dict[str, MarketForecast] = Field(default_factory=dict)
    markets_not_served: dict[str, str] = Field(
        default_factory=dict,
        description="each market the fixture's odds quote (ou25, ah) that is not in `markets`, "
        "with the reason: no champion for it, or its champion, of another run than the 1X2 "
        "champion's, holds data past the fixture's kickoff or does not know its league or a team",
    )
    data_timestamp: str
    cached: bool = False


class BatchOut(BaseModel):
    """Forecasts in request order."""

    forecasts: list[ForecastOut]


class RankingRow(BaseModel):
    """A market ranked by edge after costs, confidence and capacity."""

    vertical: str
    market: str
    champion: str
    version: str
    edge_after_costs: float | None
    confidence: float | None
    capacity_bets: int | None
    roi: float | None
    clv: float | None
    log_loss_ratio_to_closing: float | None


_Row = TypeVar("_Row", bound=RankingRow)


def by_edge(rows: Iterable[_Row]) -> list[_Row]:
    """Rows by edge after costs (unknown last), then by confidence, both descending."""
    return sorted(
        rows,
        key=lambda r: (
            -(r.edge_after_costs if r.edge_after_costs is not None else -math.inf),
            -(r.confidence or 0.0),
        ),
    )


class DoNotTradeRow(BaseModel):
    """A market that fails a liquidity, cost or staleness check, with the reason."""

    vertical: str
    market: str
    reason: str
    check: Literal["liquidity", "cost", "staleness", "no_champion", "no_edge"]


class PromoteIn(_Strict):
    """Make a registered version the champion of a market."""

    market: str
    model_name: str
    version: str


class RollbackIn(_Strict):
    """Restore the previous champion of a market."""

    market: str
