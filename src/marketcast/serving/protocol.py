"""What the HTTP app needs from the forecasting side; the real one is ``ChampionService``."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from marketcast.features.football_state import league_country, unknown_league_message
from marketcast.serving.schemas import DoNotTradeRow, FixtureIn, ForecastOut, RankingRow


class ForecastService(Protocol):
    """The champions of a registry, swappable atomically.

    Every method that answers from models reads ONE immutable snapshot of the loaded champions
    (taken once at the start of the call), so a reload or promotion running at the same time can
    never produce a mixed answer: each forecast names the version that produced it.

    A service that also swaps snapshots on its own (a registry watcher) has
    ``on_swap(listener)``, calling ``listener()`` after each swap; the app reads it with
    ``getattr`` and drops its cache's entries of other snapshots then (without it, at its
    admin calls only).
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
    def team_leagues(self) -> Mapping[str, str]:
        """The league each known team last played in: a fixture filed under a league of another
        country is a 422 (:meth:`TeamLeagueMismatchError.check`); a team not listed is not
        checked. The app reads it with ``getattr``: a service without it skips the check."""
        ...

    @property
    def snapshot_id(self) -> str:
        """Names the loaded models: changes when they change (a reload that changes them, a
        promotion, a rollback), in the same assignment, and never takes an earlier value again.

        Part of the app's cache keys; the app also takes an unchanged id around a service call
        as proof that the call read the snapshot the id names (a batch's cache hits and its
        forecasts then come from one snapshot).
        """
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


class TeamLeagueMismatchError(FixtureError):
    """A team filed under a league of another country than the league it last played in.

    Promotion and relegation move a team between divisions of one country (E1 to E0, SP2 to
    SP1), never across countries: Barcelona in an E0 fixture is a fixture filed under the wrong
    league, and forecasting it would mix two leagues' features. ``field`` is the side and
    ``value`` the team; ``team_league`` is where the team last played, ``league`` the fixture's.
    The HTTP app answers it as its ``team_league_mismatch`` 422.
    """

    error_type = "team_league_mismatch"

    def __init__(self, *, index: int, side: str, team: str, team_league: str, league: str) -> None:
        country, team_country = league_country(league), league_country(team_league)
        super().__init__(
            f"fixture {index}: {side} team {team!r} last played in {team_league} (country "
            f"{team_country}), not in a league of {league}'s country ({country}); teams move "
            "only between the divisions of one country, so check the fixture's league",
            index=index,
            field=side,
            value=team,
        )
        self.team_league = team_league
        self.league = league

    @property
    def side(self) -> str:
        return str(self.field)

    @property
    def team(self) -> str:
        return str(self.value)

    @classmethod
    def check(cls, fixtures: Sequence[FixtureIn], team_leagues: Mapping[str, str]) -> None:
        """Raise for the first fixture with a team whose last league (``team_leagues``) is of
        another country than the fixture's league (home before away); a team not in
        ``team_leagues`` is left to the service's unknown-team check.

        Like :meth:`UnknownLeagueError.check`, the HTTP app runs it before its cache and the
        service before forecasting (both after the league check), so the two answer alike.
        """
        for index, fixture in enumerate(fixtures):
            country = league_country(fixture.league)
            for side, team in (("home", fixture.home), ("away", fixture.away)):
                team_league = team_leagues.get(team)
                if team_league is not None and league_country(team_league) != country:
                    raise cls(
                        index=index,
                        side=side,
                        team=team,
                        team_league=team_league,
                        league=fixture.league,
                    )


class KickoffTooEarlyError(FixtureError):
    """A kickoff at or before the end of the champion's data: its ratings hold later results."""

    error_type = "kickoff_before_data"
