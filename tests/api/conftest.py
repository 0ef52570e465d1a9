"""App fixtures for the API tests: the deterministic ``FakeService`` of ``fake_app.py`` for
football, real crypto champions over a few bundled pairs (``crypto_setup.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketcast.config import FootballRunConfig
from marketcast.orchestration.football import run_football
from marketcast.registry import Registry
from marketcast.serving.app import create_app
from marketcast.serving.crypto import CryptoService
from marketcast.serving.settings import ServingSettings
from tests.api.crypto_setup import Setup
from tests.api.fake_app import FakeService
from tests.pipeline.test_run import _quiet

__all__ = ["ADMIN_TOKEN", "FakeService"]

ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture
def fixture_body() -> dict[str, Any]:
    """The issue's example fixture as a JSON body (a fresh copy per test)."""
    return {
        "league": "E0",
        "home": "Arsenal",
        "away": "Chelsea",
        "kickoff": "2025-05-10T14:00:00Z",
        "odds": {"1x2": {"home": 1.80, "draw": 3.90, "away": 4.50}},
    }


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def settings() -> ServingSettings:
    return ServingSettings(admin_token=ADMIN_TOKEN, max_body_bytes=16 * 1024)


@pytest.fixture(scope="session")
def small_registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The market model as 1X2 and ou25 champion, Dixon-Coles registered beside it (E0, one
    season); shared by the modules that load real champions: copy it before changing it."""
    root = tmp_path_factory.mktemp("small_registry")
    config = FootballRunConfig.model_validate(
        {
            "data": {"leagues": ["E0"]},
            "models": ["market", "dixon_coles"],
            "markets": ["1x2", "ou25"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 100},
            "registry_root": str(root / "registry"),
            "runs_dir": str(root / "runs"),
        }
    )
    run_football(config, console=_quiet(root))
    registry = Registry(config.registry_root)
    for market in ("1x2", "ou25"):
        champion = registry.champion("football", market)
        assert champion is not None
        assert champion.model_name == "market"
    return registry


@pytest.fixture(scope="session")
def crypto_service(tmp_path_factory: pytest.TempPathFactory) -> CryptoService:
    """Real crypto champions over a few bundled pairs (shared: building it takes seconds)."""
    return Setup(tmp_path_factory.mktemp("api_crypto")).service()


@pytest.fixture
def app(settings: ServingSettings, service: FakeService, crypto_service: CryptoService) -> FastAPI:
    return create_app(settings, service, crypto=crypto_service)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
