"""A team filed under another country's league is refused, from Python and over HTTP, while a
promoted or relegated team (another division of its own country) is answered."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketcast.config import FootballRunConfig
from marketcast.datasets.bundle import BUNDLED_FOOTBALL, read_archive_csvs
from marketcast.orchestration.football import run_football
from marketcast.registry import Registry
from marketcast.serving.app import create_app
from marketcast.serving.protocol import (
    FixtureError,
    TeamLeagueMismatchError,
    UnknownTeamError,
)
from marketcast.serving.schemas import FixtureIn
from marketcast.serving.service import ChampionService
from marketcast.serving.settings import ServingSettings
from tests.api.fake_app import FakeService
from tests.pipeline.test_run import _quiet

#: The latest bundled seasons of two English divisions and a Spanish one: teams of E1 2020-2021
#: that were not promoted (Reading) last played in E1; Barcelona last played in SP1.
SEASONS = {
    "E0": ("2020-2021", "2021-2022", "2022-2023"),
    "E1": ("2019-2020", "2020-2021"),
    "SP1": ("2020-2021", "2021-2022"),
}
BARCELONA_IN_E0 = (
    "fixture {index}: {side} team 'Barcelona' last played in SP1 (country SP), not in a league "
    "of E0's country (E); teams move only between the divisions of one country, so check the "
    "fixture's league"
)


@pytest.fixture(scope="module")
def three_leagues(tmp_path_factory: pytest.TempPathFactory) -> ChampionService:
    """A market-model champion over E0, E1 and SP1 (a few seasons each: seconds to train)."""
    root = tmp_path_factory.mktemp("team_league")
    for name, data in read_archive_csvs(BUNDLED_FOOTBALL):
        league, season = Path(name).parent.name, Path(name).stem
        if season in SEASONS.get(league, ()):
            (root / "data" / league).mkdir(parents=True, exist_ok=True)
            (root / "data" / league / f"{season}.csv").write_bytes(data)
    config = FootballRunConfig.model_validate(
        {
            "data": {"paths": [str(root / "data")]},
            "models": ["market"],
            "markets": ["1x2"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 100},
            "registry_root": str(root / "registry"),
            "runs_dir": str(root / "runs"),
        }
    )
    run_football(config, console=_quiet(root))
    service = ChampionService(Registry(config.registry_root))
    service.reload()
    return service


def _body(fixture_body: dict[str, Any], **changes: str) -> dict[str, Any]:
    return {**copy.deepcopy(fixture_body), **changes}


def _fixture(fixture_body: dict[str, Any], **changes: str) -> FixtureIn:
    # the data ends in 2023: the 2025 kick-off of `fixture_body` is an upcoming fixture
    return FixtureIn.model_validate(_body(fixture_body, **changes))


def test_the_state_knows_where_each_team_last_played(three_leagues: ChampionService) -> None:
    assert three_leagues.known_leagues == {"E0", "E1", "SP1"}
    team_leagues = three_leagues.team_leagues
    assert (team_leagues["Arsenal"], team_leagues["Reading"]) == ("E0", "E1")
    assert team_leagues["Barcelona"] == "SP1"


@pytest.mark.parametrize(
    ("changes", "index", "side"),
    [
        ({"home": "Barcelona", "away": "Arsenal"}, 0, "home"),  # the fixture
        ({"home": "Arsenal", "away": "Barcelona"}, 1, "away"),  # second in a batch
    ],
)
def test_a_team_of_another_country_is_refused_naming_it_from_python_and_over_http(
    three_leagues: ChampionService,
    settings: ServingSettings,
    fixture_body: dict[str, Any],
    changes: dict[str, str],
    index: int,
    side: str,
) -> None:
    bad = _body(fixture_body, **changes)
    bodies = [bad] if index == 0 else [fixture_body, bad]
    with pytest.raises(TeamLeagueMismatchError) as raised:
        three_leagues.forecast([FixtureIn.model_validate(b) for b in bodies])
    error = raised.value
    assert isinstance(error, FixtureError)
    assert not isinstance(error, UnknownTeamError)  # Barcelona is known, in another league
    assert (error.error_type, error.index, error.field) == ("team_league_mismatch", index, side)
    assert (error.side, error.team, error.team_league, error.league) == (
        side,
        "Barcelona",
        "SP1",
        "E0",
    )
    assert str(error) == BARCELONA_IN_E0.format(index=index, side=side)

    with TestClient(create_app(settings, three_leagues)) as client:
        batch = client.post("/v1/forecast/batch", json={"fixtures": bodies})
        single = client.post("/v1/forecast", json=bad)
    assert batch.status_code == single.status_code == 422
    expected = {
        "type": "team_league_mismatch",
        "loc": ["body", "fixtures", index, side],
        "msg": str(error),
        "input": "Barcelona",
        "ctx": {"league": "E0", "team_league": "SP1"},
    }
    assert batch.json()["detail"] == [expected]
    assert single.json()["detail"] == [
        {**expected, "loc": ["body", side], "msg": BARCELONA_IN_E0.format(index=0, side=side)}
    ]


@pytest.mark.parametrize(
    "changes",
    [
        {"league": "E0", "home": "Reading", "away": "Arsenal"},  # promoted: E1 last, now E0
        {"league": "E1", "home": "Reading", "away": "Arsenal"},  # relegated: E0 last, now E1
        {"league": "SP1", "home": "Barcelona", "away": "Real Madrid"},
    ],
)
def test_a_team_from_another_division_of_its_country_is_answered(
    three_leagues: ChampionService,
    settings: ServingSettings,
    fixture_body: dict[str, Any],
    changes: dict[str, str],
) -> None:
    [out] = three_leagues.forecast([_fixture(fixture_body, **changes)])
    assert sum(out.probabilities.values()) == pytest.approx(1.0)
    with TestClient(create_app(settings, three_leagues)) as client:
        response = client.post("/v1/forecast", json=_body(fixture_body, **changes))
    assert response.status_code == 200
    assert response.json()["probabilities"] == pytest.approx(out.probabilities)


def test_a_team_of_another_country_is_reported_before_an_earlier_unknown_team(
    three_leagues: ChampionService, settings: ServingSettings, fixture_body: dict[str, Any]
) -> None:
    """The league checks run over the whole request first, in the app and the service alike."""
    bodies = [
        _body(fixture_body, home="Arsenl"),
        _body(fixture_body, league="SP1", home="Barcelona", away="Chelsea"),
    ]
    with pytest.raises(TeamLeagueMismatchError) as raised:
        three_leagues.forecast([FixtureIn.model_validate(b) for b in bodies])
    assert (raised.value.index, raised.value.team, raised.value.team_league) == (1, "Chelsea", "E0")
    assert raised.value.league == "SP1"
    with TestClient(create_app(settings, three_leagues)) as client:
        response = client.post("/v1/forecast/batch", json={"fixtures": bodies})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert (detail["type"], detail["loc"]) == (
        "team_league_mismatch",
        ["body", "fixtures", 1, "away"],
    )


def test_the_app_refuses_before_its_cache_and_the_service(
    client: TestClient, service: FakeService, fixture_body: dict[str, Any]
) -> None:
    """Over the fake service (Barcelona: SP1): the app's own check, at the request's position
    even when the fixture before it is a cache hit."""
    assert client.post("/v1/forecast", json=fixture_body).status_code == 200
    calls = service.n_forecast_calls
    bad = _body(fixture_body, league="D1", home="Bayern", away="Barcelona")
    response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, bad]})
    assert response.status_code == 422
    [detail] = response.json()["detail"]
    assert detail["type"] == "team_league_mismatch"
    assert detail["loc"] == ["body", "fixtures", 1, "away"]
    assert detail["input"] == "Barcelona"
    assert detail["ctx"] == {"league": "D1", "team_league": "SP1"}
    assert "last played in SP1 (country SP), not in a league of D1's country (D)" in detail["msg"]
    assert service.n_forecast_calls == calls  # refused before the service was asked
    promoted = _body(fixture_body, home="Reading")  # E1 last, now E0
    assert client.post("/v1/forecast", json=promoted).status_code == 200


class _ServiceWithoutTeamLeagues(FakeService):
    """A service written before the check: it has no ``team_leagues``."""

    @property
    def team_leagues(self) -> Any:
        raise AttributeError("team_leagues")


def test_a_service_without_team_leagues_skips_the_check_instead_of_failing(
    settings: ServingSettings, fixture_body: dict[str, Any]
) -> None:
    """Reading the new attribute turned every forecast of such a service into a 500."""
    with TestClient(create_app(settings, _ServiceWithoutTeamLeagues())) as client:
        bad = _body(fixture_body, league="D1", home="Bayern", away="Barcelona")
        assert client.post("/v1/forecast", json=bad).status_code == 200


@pytest.mark.parametrize(
    ("team_league", "league"),
    [
        ("E1", "E0"),
        ("E0", "E1"),
        ("EC", "E3"),
        ("E3", "EC"),
        ("SP2", "SP1"),
        ("D2", "D1"),
        ("I2", "I1"),
        ("F2", "F1"),
        ("SC1", "SC0"),
        ("SC3", "SC2"),
        ("N1", "N1"),
    ],
)
def test_moves_within_a_country_pass_the_check(
    fixture_body: dict[str, Any], team_league: str, league: str
) -> None:
    fixtures = [_fixture(fixture_body, league=league)]
    TeamLeagueMismatchError.check(fixtures, {"Arsenal": team_league, "Chelsea": league})


@pytest.mark.parametrize(
    ("team_league", "league"),
    [("SP1", "E0"), ("E0", "SP1"), ("SC0", "E0"), ("E1", "SC1"), ("D1", "N1"), ("P1", "SP1")],
)
def test_moves_across_countries_fail_the_check(
    fixture_body: dict[str, Any], team_league: str, league: str
) -> None:
    fixtures = [_fixture(fixture_body, league=league)]
    with pytest.raises(TeamLeagueMismatchError) as raised:
        TeamLeagueMismatchError.check(fixtures, {"Arsenal": team_league})
    assert (raised.value.index, raised.value.side, raised.value.team) == (0, "home", "Arsenal")


def test_a_team_without_a_recorded_league_is_not_checked(fixture_body: dict[str, Any]) -> None:
    """An unknown team is the service's own error (``unknown_team``), not this check's."""
    TeamLeagueMismatchError.check([_fixture(fixture_body, league="SP1")], {})
