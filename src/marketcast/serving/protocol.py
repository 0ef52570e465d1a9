"""What the HTTP app needs from the forecasting side; the real one is ``ChampionService``."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, Protocol

from marketcast.features.football_state import unknown_league_message
from marketcast.serving.schemas import DoNotTradeRow, FixtureIn, ForecastOut, RankingRow


class ForecastService(Protocol):
    """The champions of a registry, swappable atomically.

    Every method that answers from models reads ONE immutable snapshot of the loaded champions
    (taken once at the start of the call), so a reload or promotion running at the same time can
    never produce a mixed answer: each forecast names the version that produced it.
    """

    @property
    def ready(self) -> bool:
        """True once champions are loaded (``/readyz``)."""
        ...

    @property
    def known_leagues(self) -> frozenset[str]:
        """Leagues the loaded champions were trained on (others are a 422)."""
        ...

    @property
    def snapshot_id(self) -> str:
        """Changes on every reload, promotion or rollback (part of cache keys)."""
        ...

    def forecast(self, fixtures: Sequence[FixtureIn]) -> list[ForecastOut]:
        """Forecast each fixture; raises ``FixtureError`` or another ``ValueError`` on bad input
        (an empty list included, as the batch route refuses one)."""
        ...

    def models(self) -> list[dict[str, Any]]:
        """Champion per market with its manifest summary."""
        ...

    def rankings(self) -> list[RankingRow]:
        """Markets ranked by edge after costs, confidence and capacity."""
        ...

    def do_not_trade(self) -> list[DoNotTradeRow]:
        """Markets failing liquidity, cost or staleness checks, each with its reason."""
        ...

    def reload(self) -> dict[str, Any]:
        """Re-read the registry's champions and swap them in atomically."""
        ...

    def promote(self, market: str, model_name: str, version: str) -> dict[str, Any]:
        """Make a registered version champion, then reload."""
        ...

    def rollback(self, market: str) -> dict[str, Any]:
        """Restore the previous champion, then reload."""
        ...


class FixtureError(ValueError):
    """A fixture the champions cannot forecast (answered as a 422 pointing at it).

    ``index`` is the fixture's position in the list given to ``forecast`` and ``field`` the
    request field at fault (``"league"``, ``"home"``, ``"away"``, ``"kickoff"``); a service that
    cannot tell leaves them ``None``. ``error_type`` is the 422's ``type``.
    """

    error_type = "cannot_forecast"

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.index = index
        self.field = field
        self.value = value


class UnknownTeamError(FixtureError):
    """A team the champions know nothing about (``field`` is the side, ``value`` the team)."""

    error_type = "unknown_team"

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        side: str | None = None,
        team: str | None = None,
    ) -> None:
        super().__init__(message, index=index, field=side, value=team)

    @property
    def side(self) -> str | None:
        return self.field

    @property
    def team(self) -> str | None:
        return None if self.value is None else str(self.value)


class UnknownLeagueError(FixtureError):
    """A league the champions were not trained on (``field`` is ``"league"``, ``value`` the
    league); ``known_leagues`` lists those they know, and the message suggests the right
    spelling when only the case differs. The HTTP app answers it as its ``unknown_league`` 422.
    """

    error_type = "unknown_league"

    def __init__(
        self, league: str, known_leagues: Iterable[str], *, index: int | None = None
    ) -> None:
        known = tuple(sorted(known_leagues))
        super().__init__(
            unknown_league_message(league, known), index=index, field="league", value=league
        )
        self.known_leagues = known

    @property
    def league(self) -> str:
        return str(self.value)

    @classmethod
    def check(cls, fixtures: Sequence[FixtureIn], known_leagues: Collection[str]) -> None:
        """Raise for the first fixture whose league is not in ``known_leagues``.

        The HTTP app runs it before its cache, the service before forecasting: one rule, so the
        two answer an unknown league alike.
        """
        for index, fixture in enumerate(fixtures):
            if fixture.league not in known_leagues:
                raise cls(fixture.league, known_leagues, index=index)


class KickoffTooEarlyError(FixtureError):
    """A kickoff at or before the end of the champion's data: its ratings hold later results."""

    error_type = "kickoff_before_data"
