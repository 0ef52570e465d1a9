"""A deterministic fake ``ForecastService`` and ``create_fake_app``, the API over it.

The API tests use ``FakeService`` (through ``conftest.py``); ``bench/serving.py`` can drive the
real server over it: ``python bench/serving.py --app tests.api.fake_app:create_fake_app`` from the
repository root (settings come from ``MARKETCAST_*`` variables, as in production).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from marketcast.serving.app import create_app
from marketcast.serving.protocol import KickoffTooEarlyError, UnknownTeamError
from marketcast.serving.schemas import (
    DoNotTradeRow,
    FixtureIn,
    ForecastOut,
    MarketForecast,
    ModelRef,
    RankingRow,
)
from marketcast.serving.settings import ServingSettings

MARKETS = ("1x2", "ou25", "ah")
#: Where the fake's listed teams last played; Arsenal, Chelsea and made-up teams are not listed,
#: so no league check applies to them.
TEAM_LEAGUES = {"Barcelona": "SP1", "Reading": "E1", "Bayern": "D1", "Dortmund": "D1"}
REGISTERED = {"market": ("v1", "v2", "v3"), "dixon_coles": ("20250101T000000Z-0a1b2c3d",)}


@dataclass(frozen=True)
class _Snapshot:
    """What one reload installs; swapped as a whole, never mutated."""

    version_number: int
    champions: tuple[tuple[str, str, str], ...]  # (market, model_name, version)

    @property
    def snapshot_id(self) -> str:
        return f"snap-{self.version_number}"

    @property
    def version(self) -> str:
        return f"v{self.version_number}"


class FakeService:
    """Deterministic stand-in for ``ChampionService``.

    Probabilities are the multiplicatively de-margined 1X2 odds; E0 goes the edge path, D1 the
    cloud path; a team called ``"Nobody"`` is unknown, and the teams of ``TEAM_LEAGUES`` last
    played in the league given there. ``reload()`` installs a new immutable
    snapshot with the next version number in one assignment, so a forecast reads one snapshot.
    """

    def __init__(self, *, ready: bool = True) -> None:
        self._ready = ready
        self._lock = threading.Lock()
        self._snapshot = _Snapshot(1, tuple((m, "market", "v1") for m in MARKETS))
        self._history: dict[str, list[tuple[str, str]]] = {m: [] for m in MARKETS}
        self.versions_served: set[str] = {"v1"}
        self.n_forecast_calls = 0

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def known_leagues(self) -> frozenset[str]:
        return frozenset({"E0", "D1"})

    @property
    def team_leagues(self) -> Mapping[str, str]:
        return TEAM_LEAGUES

    @property
    def snapshot_id(self) -> str:
        return self._snapshot.snapshot_id

    def set_ready(self, ready: bool) -> None:
        self._ready = ready

    def forecast(self, fixtures: Sequence[FixtureIn]) -> list[ForecastOut]:
        snapshot = self._snapshot  # one read: the whole call answers from this snapshot
        self.n_forecast_calls += 1
        return [self._one(snapshot, fixture, index) for index, fixture in enumerate(fixtures)]

    def _one(self, snapshot: _Snapshot, fixture: FixtureIn, index: int) -> ForecastOut:
        for side, team in (("home", fixture.home), ("away", fixture.away)):
            if team == "Nobody":
                raise UnknownTeamError(f"unknown team {team!r}", index=index, side=side, team=team)
        if fixture.kickoff.year < 2001:  # the fake champion's data ends in 2000
            raise KickoffTooEarlyError(
                "kickoff before the data ends", index=index, field="kickoff", value=fixture.kickoff
            )
        odds = fixture.odds.one_x_two
        inverse = [1.0 / odds.home, 1.0 / odds.draw, 1.0 / odds.away]
        total = sum(inverse)
        probs = dict(zip(("home", "draw", "away"), (x / total for x in inverse), strict=True))
        markets: dict[str, MarketForecast] = {}
        if fixture.odds.ou25 is not None:
            over, under = 1.0 / fixture.odds.ou25.over, 1.0 / fixture.odds.ou25.under
            markets["ou25"] = MarketForecast(
                probabilities={"over": over / (over + under), "under": under / (over + under)},
                line=2.5,
            )
        return ForecastOut(
            probabilities=probs,
            band={k: (max(0.0, p - 0.05), min(1.0, p + 0.05)) for k, p in probs.items()},
            expected_goal_difference=round(2.5 * (probs["home"] - probs["away"]), 6),
            logits={k: math.log(p) for k, p in probs.items()},
            explanation="de-margined 1X2 odds (fake)",
            model=ModelRef(name="market", version=snapshot.version),
            path="edge" if fixture.league == "E0" else "cloud",
            confidence=max(probs.values()),
            markets=markets,
            data_timestamp="2025-05-01T00:00:00Z",
        )

    def models(self) -> list[dict[str, Any]]:
        snapshot = self._snapshot
        return [
            {"market": market, "model_name": name, "version": version}
            for market, name, version in snapshot.champions
        ]

    def rankings(self) -> list[RankingRow]:
        return [
            RankingRow(
                vertical="football",
                market=market,
                champion=name,
                version=version,
                edge_after_costs=0.01,
                confidence=0.6,
                capacity_bets=100,
                roi=-0.01,
                clv=0.002,
                log_loss_ratio_to_closing=1.01,
            )
            for market, name, version in self._snapshot.champions
        ]

    def do_not_trade(self) -> list[DoNotTradeRow]:
        return [DoNotTradeRow(vertical="football", market="ah", reason="thin", check="liquidity")]

    def _install(self, champions: tuple[tuple[str, str, str], ...]) -> _Snapshot:
        with self._lock:
            snapshot = _Snapshot(self._snapshot.version_number + 1, champions)
            self.versions_served.add(snapshot.version)
            self._snapshot = snapshot  # the atomic swap
            return snapshot

    def reload(self) -> dict[str, Any]:
        snapshot = self._install(self._snapshot.champions)
        return {"status": "reloaded", "snapshot_id": snapshot.snapshot_id}

    def promote(self, market: str, model_name: str, version: str) -> dict[str, Any]:
        if market not in MARKETS:
            raise LookupError(f"unknown market {market!r}")
        if "/" in model_name or ".." in model_name:
            raise ValueError(f"unsafe model name {model_name!r}")
        if version not in REGISTERED.get(model_name, ()):
            raise LookupError(f"no version {version!r} of {model_name!r}")
        with self._lock:
            current = {m: (n, v) for m, n, v in self._snapshot.champions}
            self._history[market].append(current[market])
            current[market] = (model_name, version)
        snapshot = self._install(tuple((m, *current[m]) for m in MARKETS))
        return {"status": "promoted", "market": market, "snapshot_id": snapshot.snapshot_id}

    def rollback(self, market: str) -> dict[str, Any]:
        if market not in MARKETS:
            raise LookupError(f"unknown market {market!r}")
        with self._lock:
            if not self._history[market]:
                raise LookupError(f"no previous champion for market {market!r}")
            current = {m: (n, v) for m, n, v in self._snapshot.champions}
            current[market] = self._history[market].pop()
        snapshot = self._install(tuple((m, *current[m]) for m in MARKETS))
        return {"status": "rolled back", "market": market, "snapshot_id": snapshot.snapshot_id}


def create_fake_app() -> FastAPI:
    """Build the v1 app over a fresh ``FakeService`` (a uvicorn ``--factory``)."""
    return create_app(ServingSettings.from_env(), FakeService())
