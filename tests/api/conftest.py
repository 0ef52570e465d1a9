"""App fixtures for the API tests, over the deterministic ``FakeService`` of ``fake_app.py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from marketcast.serving.app import create_app
from marketcast.serving.settings import ServingSettings
from tests.api.fake_app import FakeService

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


@pytest.fixture
def app(settings: ServingSettings, service: FakeService) -> FastAPI:
    return create_app(settings, service)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
