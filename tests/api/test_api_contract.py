"""The published API contract: the committed OpenAPI file, and no 5xx for any schema-valid call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from marketcast.serving.app import OPENAPI_URL, openapi_schema
from marketcast.serving.crypto import CryptoService
from marketcast.serving.schemas import API_VERSION
from tests.api.crypto_setup import Setup

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "docs" / "openapi-v1.json"
REGENERATE = "regenerate it with: PYTHONPATH=src python scripts/export_openapi.py"


def test_committed_openapi_matches_the_app(app: FastAPI) -> None:
    committed = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
    served = app.openapi()
    assert served == openapi_schema()
    assert committed == served, f"docs/openapi-v1.json is out of date; {REGENERATE}"


def test_openapi_is_served_versioned(client: Any) -> None:
    response = client.get(OPENAPI_URL)
    assert response.status_code == 200
    info = response.json()["info"]
    assert info == {**info, "title": "marketcast", "version": API_VERSION}
    assert client.get("/openapi.json").status_code == 404


def test_public_field_names_are_in_the_schema() -> None:
    components = openapi_schema()["components"]["schemas"]
    forecast_fields = set(components["ForecastOut"]["properties"])
    assert {"probabilities", "band", "model", "path", "cached", "data_timestamp"} <= forecast_fields
    assert set(components["FixtureIn"]["properties"]) == {
        "league",
        "home",
        "away",
        "kickoff",
        "odds",
    }
    assert "1x2" in components["FixtureOdds"]["properties"]


@pytest.fixture(scope="module")
def crypto_service(tmp_path_factory: pytest.TempPathFactory) -> CryptoService:
    """This module's own crypto store: accepted fuzzed pushes must not reach other tests."""
    return Setup(tmp_path_factory.mktemp("contract_crypto")).service()


# the schema the app serves (checked equal above); each case is sent to the fake-backed app
schema = schemathesis.openapi.from_dict(openapi_schema())


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, app: FastAPI, admin_headers: dict[str, str]) -> None:
    # admin calls and candle pushes carry the token, so their validation is fuzzed too
    admin = case.path.startswith("/v1/admin/") or case.path == "/v1/crypto/candles"
    headers = admin_headers if admin else None
    response = case.call(app=app, headers=headers)
    assert response.status_code < 500, f"{case.method} {case.path} -> {response.status_code}"
