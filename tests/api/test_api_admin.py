"""Admin endpoints: bearer auth, reload / promote / rollback and their error statuses."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketcast.registry.manifest import ArtifactIntegrityError
from marketcast.registry.store import RegistryDamagedError
from marketcast.serving.app import create_app
from marketcast.serving.security import ADMIN_DISABLED
from marketcast.serving.settings import ServingSettings

ADMIN_CALLS = [
    ("/v1/admin/reload", None),
    ("/v1/admin/promote", {"market": "1x2", "model_name": "market", "version": "v2"}),
    ("/v1/admin/rollback", {"market": "1x2"}),
]


@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
def test_no_token_is_401(client: TestClient, path: str, body: dict[str, Any] | None) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Bearer <token>" in response.json()["detail"]


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "Bearer a b"]
)
def test_malformed_header_is_401(client: TestClient, header: str) -> None:
    response = client.post("/v1/admin/reload", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
def test_wrong_token_is_403(client: TestClient, path: str, body: dict[str, Any] | None) -> None:
    headers = {"Authorization": "Bearer not-the-admin-token-at-all"}
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "invalid admin token"}


def test_non_ascii_token_is_403_not_500(client: TestClient) -> None:
    headers = {"Authorization": "Bearer caf\u00e9-token-0123456789".encode()}
    response = client.post("/v1/admin/reload", headers=headers)
    assert response.status_code == 403


def test_reload_with_token(client: TestClient, admin_headers: dict[str, str]) -> None:
    service = client.app.state.service
    response = client.post("/v1/admin/reload", headers=admin_headers)
    assert response.status_code == 200
    assert response.json() == {"status": "reloaded", "snapshot_id": "snap-2"}
    assert service.snapshot_id == "snap-2"


def test_promote_then_rollback(client: TestClient, admin_headers: dict[str, str]) -> None:
    body = {"market": "1x2", "model_name": "dixon_coles", "version": "20250101T000000Z-0a1b2c3d"}
    promoted = client.post("/v1/admin/promote", json=body, headers=admin_headers)
    assert promoted.status_code == 200
    assert promoted.json()["status"] == "promoted"
    champions = {row["market"]: row for row in client.get("/v1/models").json()}
    assert champions["1x2"]["model_name"] == "dixon_coles"
    rolled = client.post("/v1/admin/rollback", json={"market": "1x2"}, headers=admin_headers)
    assert rolled.status_code == 200
    assert rolled.json()["status"] == "rolled back"
    champions = {row["market"]: row for row in client.get("/v1/models").json()}
    assert champions["1x2"] == {"market": "1x2", "model_name": "market", "version": "v1"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"market": "1x2", "model_name": "../../etc/passwd", "version": "v1"}, "model_name"),
        ({"market": "1x2", "model_name": "market", "version": "../v1"}, "version"),
        ({"market": "..", "model_name": "market", "version": "v1"}, "market"),
        ({"market": "1x2", "model_name": "a/b", "version": "v1"}, "model_name"),
    ],
)
def test_promote_rejects_path_like_names(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, str], field: str
) -> None:
    before = client.app.state.service.snapshot_id
    response = client.post("/v1/admin/promote", json=body, headers=admin_headers)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["type"] == "unsafe_identifier"
    assert error["loc"] == ["body", field]
    assert error["input"] == body[field]
    assert client.app.state.service.snapshot_id == before


def test_promote_unknown_version_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    body = {"market": "1x2", "model_name": "market", "version": "v99"}
    response = client.post("/v1/admin/promote", json=body, headers=admin_headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "promote failed: no version 'v99' of 'market'"}


def test_promote_unknown_market_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    body = {"market": "darts", "model_name": "market", "version": "v2"}
    response = client.post("/v1/admin/promote", json=body, headers=admin_headers)
    assert response.status_code == 404
    assert "unknown market 'darts'" in response.json()["detail"]


def test_rollback_without_history_is_404(client: TestClient, admin_headers: dict[str, str]) -> None:
    response = client.post("/v1/admin/rollback", json={"market": "ah"}, headers=admin_headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "rollback failed: no previous champion for market 'ah'"}


def test_service_value_error_is_422(
    client: TestClient, admin_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = client.app.state.service

    def broken_reload() -> dict[str, Any]:
        raise ValueError("manifest of dixon_coles is tampered")

    monkeypatch.setattr(service, "reload", broken_reload)
    response = client.post("/v1/admin/reload", headers=admin_headers)
    assert response.status_code == 422
    assert response.json() == {"detail": "reload failed: manifest of dixon_coles is tampered"}
    text = client.get("/metrics").text
    assert 'marketcast_reloads_total{action="reload",outcome="failure"} 1.0' in text


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (
            RegistryDamagedError("champion file registry/football/1x2/champion.json is unreadable"),
            503,
        ),
        (ArtifactIntegrityError("refusing to make football/1x2/elo v1 champion"), 409),
    ],
)
def test_a_damaged_registry_is_the_servers_fault_and_a_damaged_version_a_conflict(
    client: TestClient,
    admin_headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
) -> None:
    """An unreadable pointer answered 422, as if the request had been wrong."""

    def broken_reload() -> dict[str, Any]:
        raise error

    monkeypatch.setattr(client.app.state.service, "reload", broken_reload)
    response = client.post("/v1/admin/reload", headers=admin_headers)
    assert response.status_code == status
    assert response.json() == {"detail": f"reload failed: {error}"}


def test_reload_outcomes_are_counted(client: TestClient, admin_headers: dict[str, str]) -> None:
    client.post("/v1/admin/reload", headers=admin_headers)
    client.post("/v1/admin/reload", headers=admin_headers)
    text = client.get("/metrics").text
    assert 'marketcast_reloads_total{action="reload",outcome="success"} 2.0' in text


def test_admin_reload_invalidates_the_cache(
    client: TestClient, admin_headers: dict[str, str], fixture_body: dict[str, Any]
) -> None:
    assert client.post("/v1/forecast", json=fixture_body).json()["model"]["version"] == "v1"
    assert client.post("/v1/forecast", json=fixture_body).json()["cached"] is True
    assert client.post("/v1/admin/reload", headers=admin_headers).status_code == 200
    after = client.post("/v1/forecast", json=fixture_body).json()
    assert after["cached"] is False
    assert after["model"]["version"] == "v2"


@pytest.mark.parametrize(("path", "body"), ADMIN_CALLS)
def test_admin_disabled_without_a_configured_token(
    service: Any, path: str, body: dict[str, Any] | None
) -> None:
    with TestClient(create_app(ServingSettings(), service)) as client:
        for headers in ({}, {"Authorization": "Bearer anything-at-all-1234567"}):
            response = client.post(path, json=body, headers=headers)
            assert response.status_code == 403
            assert response.json() == {"detail": ADMIN_DISABLED}
    assert service.snapshot_id == "snap-1"
