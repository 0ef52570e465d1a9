"""ChampionService called from Python answers as the HTTP app does: empty lists, unknown leagues,
settings out of range, a registry folder that is not there."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketcast.orchestration.football import run_football
from marketcast.registry import Registry
from marketcast.serving.app import create_app
from marketcast.serving.default import build_service, service_settings_from_env
from marketcast.serving.protocol import FixtureError, UnknownLeagueError, UnknownTeamError
from marketcast.serving.schemas import FixtureIn
from marketcast.serving.service import ChampionService, ServiceSettings
from marketcast.serving.settings import ServingSettings
from tests.pipeline.test_run import _quiet, _small

SERVICE_VARIABLES = (
    "MARKETCAST_EDGE_THRESHOLD",
    "MARKETCAST_STALE_AFTER_DAYS",
    "MARKETCAST_NEURAL_RUNTIME",
    "MARKETCAST_LLM_BASE_URL",
)


@pytest.fixture(scope="module")
def champion_service(tmp_path_factory: pytest.TempPathFactory) -> ChampionService:
    """A registry whose only champion is the E0 market model (the cheapest real one)."""
    root = tmp_path_factory.mktemp("python_api")
    config = _small(root, ["market"])
    run_football(config, console=_quiet(root))
    service = ChampionService(Registry(config.registry_root))
    service.reload()
    return service


def _fixture(fixture_body: dict[str, Any], **changes: str) -> FixtureIn:
    # the data of the small run ends in 2023: a 2025 kick-off is an upcoming fixture
    return FixtureIn.model_validate({**fixture_body, **changes})


def test_an_empty_list_is_refused_as_the_batch_route_refuses_it(
    champion_service: ChampionService, settings: ServingSettings
) -> None:
    with pytest.raises(ValueError, match="no fixtures to forecast"):
        champion_service.forecast([])
    with TestClient(create_app(settings, champion_service)) as client:
        response = client.post("/v1/forecast/batch", json={"fixtures": []})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_short"


@pytest.mark.parametrize(
    ("league", "hint"), [("D1", ""), ("e0", "; did you mean 'E0'? (codes are case-sensitive)")]
)
def test_an_unknown_league_is_named_as_a_league_from_python_and_over_http(
    champion_service: ChampionService,
    settings: ServingSettings,
    fixture_body: dict[str, Any],
    league: str,
    hint: str,
) -> None:
    fixtures = [_fixture(fixture_body), _fixture(fixture_body, league=league)]
    with pytest.raises(UnknownLeagueError) as raised:
        champion_service.forecast(fixtures)
    error = raised.value
    assert isinstance(error, FixtureError)
    assert not isinstance(error, UnknownTeamError)
    assert (error.error_type, error.index, error.field) == ("unknown_league", 1, "league")
    assert (error.league, error.known_leagues) == (league, ("E0",))
    assert str(error) == f"unknown league {league!r}; the champions know E0{hint}"

    with TestClient(create_app(settings, champion_service)) as client:
        body = {"fixtures": [fixture_body, {**fixture_body, "league": league}]}
        response = client.post("/v1/forecast/batch", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "type": "unknown_league",
            "loc": ["body", "fixtures", 1, "league"],
            "msg": str(error),
            "input": league,
            "ctx": {"known_leagues": ["E0"]},
        }
    ]


def test_an_unknown_league_is_reported_before_an_earlier_unknown_team(
    champion_service: ChampionService, fixture_body: dict[str, Any]
) -> None:
    """The HTTP app checks every league before the service sees the request: so does Python."""
    fixtures = [_fixture(fixture_body, home="Arsenl"), _fixture(fixture_body, league="SC9")]
    with pytest.raises(UnknownLeagueError) as raised:
        champion_service.forecast(fixtures)
    assert raised.value.index == 1
    with pytest.raises(UnknownTeamError, match="Arsenl"):
        champion_service.forecast(fixtures[:1])


@pytest.mark.parametrize(
    "changes",
    [
        {"edge_threshold": 5.0},
        {"edge_threshold": math.nan},
        {"edge_threshold": -0.1},
        {"stale_after_days": -5.0},
        {"stale_after_days": 0.0},
        {"stale_after_days": math.nan},
        {"min_bets_for_liquidity": -1},
        {"neural_runtime": "tensorrt"},
    ],
)
def test_service_settings_out_of_range_are_refused_naming_the_field(
    changes: dict[str, Any],
) -> None:
    [name] = changes
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        ServiceSettings(**changes)


def test_service_settings_accept_their_range_ends_and_nothing_beyond() -> None:
    settings = ServiceSettings(edge_threshold=1.01, stale_after_days=0.5, min_bets_for_liquidity=0)
    assert (settings.edge_threshold, settings.stale_after_days) == (1.01, 0.5)
    assert ServiceSettings(edge_threshold=0).edge_threshold == 0
    with pytest.raises(ValueError, match=r"edge_threshold must be a number in \[0, 1\.01\]"):
        ServiceSettings(edge_threshold=1.02)


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("MARKETCAST_EDGE_THRESHOLD", "abc"),
        ("MARKETCAST_EDGE_THRESHOLD", "nan"),
        ("MARKETCAST_EDGE_THRESHOLD", "5"),
        ("MARKETCAST_STALE_AFTER_DAYS", "-5"),
        ("MARKETCAST_STALE_AFTER_DAYS", "0"),
        ("MARKETCAST_STALE_AFTER_DAYS", "nan"),
        ("MARKETCAST_STALE_AFTER_DAYS", "abc"),
        ("MARKETCAST_LLM_TIMEOUT_S", "abc"),
        ("MARKETCAST_LLM_TIMEOUT_S", "-1"),
        ("MARKETCAST_LLM_TIMEOUT_S", "nan"),
    ],
)
def test_bad_service_variables_are_refused_naming_the_variable(variable: str, raw: str) -> None:
    env = {variable: raw, "MARKETCAST_LLM_BASE_URL": "http://127.0.0.1:9/v1"}
    with pytest.raises(ValueError, match=rf"^{variable} must be .*, got '{raw}'$"):
        service_settings_from_env(env)


def test_a_bad_llm_timeout_is_refused_without_a_base_url_too() -> None:
    """It was read only beside MARKETCAST_LLM_BASE_URL: the server started with 0 and the
    typo waited for the day an explainer was configured."""
    with pytest.raises(ValueError, match=r"^MARKETCAST_LLM_TIMEOUT_S must be"):
        service_settings_from_env({"MARKETCAST_LLM_TIMEOUT_S": "0"})


def test_service_variables_read_as_before() -> None:
    env = {"MARKETCAST_EDGE_THRESHOLD": " 1.01 ", "MARKETCAST_STALE_AFTER_DAYS": "7"}
    settings = service_settings_from_env(env)
    assert (settings.edge_threshold, settings.stale_after_days) == (1.01, 7.0)
    never = service_settings_from_env({"MARKETCAST_STALE_AFTER_DAYS": "inf"})  # never stale
    assert never.stale_after_days == math.inf
    defaults = service_settings_from_env({"MARKETCAST_STALE_AFTER_DAYS": ""})
    assert (defaults.edge_threshold, defaults.stale_after_days) == (0.8, 14.0)


def test_a_registry_folder_that_does_not_exist_is_named_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fixture_body: dict[str, Any]
) -> None:
    for variable in SERVICE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    missing = tmp_path / "regsitry"
    does_not_exist = re.escape(f"registry {missing} does not exist")
    with pytest.raises(LookupError, match=does_not_exist) as raised:
        build_service(ServingSettings(registry=str(missing)))
    assert "champion" not in str(raised.value)

    service = ChampionService(Registry(str(missing)))
    service.reload()
    with pytest.raises(LookupError, match=does_not_exist):
        service.forecast([_fixture(fixture_body)])

    (tmp_path / "empty").mkdir()
    with pytest.raises(LookupError, match="has no football 1x2 champion: run `marketcast run`"):
        build_service(ServingSettings(registry=str(tmp_path / "empty")))
