"""Forecast endpoints: 200s, 422s, 413, 503, the cache and the metrics."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketcast.serving.app import create_app
from marketcast.serving.schemas import MAX_BATCH
from marketcast.serving.settings import ServingSettings


def _assert_forecast(out: dict[str, Any], *, path: str) -> None:
    probs = out["probabilities"]
    assert set(probs) == {"home", "draw", "away"}
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-9)
    assert all(0.0 < p < 1.0 for p in probs.values())
    assert out["model"]["name"] == "market"
    assert out["model"]["version"].startswith("v")
    assert out["path"] == path
    for key in ("band", "logits", "explanation", "confidence", "data_timestamp", "markets"):
        assert key in out


def test_forecast_returns_demargined_probabilities(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 200
    out = response.json()
    _assert_forecast(out, path="edge")
    inverse = [1 / 1.80, 1 / 3.90, 1 / 4.50]
    assert out["probabilities"]["home"] == pytest.approx(inverse[0] / sum(inverse), rel=1e-12)
    assert out["model"] == {"name": "market", "version": "v1"}
    assert out["cached"] is False


def test_forecast_with_secondary_markets(client: TestClient, fixture_body: dict[str, Any]) -> None:
    fixture_body["odds"]["ou25"] = {"over": 1.9, "under": 1.95}
    fixture_body["odds"]["ah"] = {"line": -0.75, "home": 2.0, "away": 1.85}
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 200
    ou25 = response.json()["markets"]["ou25"]
    assert sum(ou25["probabilities"].values()) == pytest.approx(1.0)
    assert ou25["line"] == 2.5


def test_batch_keeps_request_order_and_paths(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    cloud = {**copy.deepcopy(fixture_body), "league": "D1", "home": "Bayern", "away": "Dortmund"}
    response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, cloud]})
    assert response.status_code == 200
    forecasts = response.json()["forecasts"]
    assert len(forecasts) == 2
    _assert_forecast(forecasts[0], path="edge")
    _assert_forecast(forecasts[1], path="cloud")


@pytest.mark.parametrize("bad_odds", [1.0, 0.5, -2.0, 0.0])
def test_odds_not_above_one_are_422(
    client: TestClient, fixture_body: dict[str, Any], bad_odds: float
) -> None:
    fixture_body["odds"]["1x2"]["draw"] = bad_odds
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "odds", "1x2", "draw"]
    assert error["type"] == "greater_than"


def test_naive_kickoff_is_422(client: TestClient, fixture_body: dict[str, Any]) -> None:
    fixture_body["kickoff"] = "2025-05-10T14:00:00"
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    assert "timezone" in response.json()["detail"][0]["msg"]


def test_unknown_league_is_422_naming_it(client: TestClient, fixture_body: dict[str, Any]) -> None:
    fixture_body["league"] = "SC9"
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["type"] == "unknown_league"
    assert error["loc"] == ["body", "league"]
    assert "'SC9'" in error["msg"]
    assert "D1, E0" in error["msg"]
    assert error["ctx"]["known_leagues"] == ["D1", "E0"]


def test_unknown_league_in_batch_names_the_index(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    bad = {**copy.deepcopy(fixture_body), "league": "XX"}
    response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, bad]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "fixtures", 1, "league"]


def test_unknown_team_is_422_naming_it(client: TestClient, fixture_body: dict[str, Any]) -> None:
    fixture_body["away"] = "Nobody"
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["type"] == "unknown_team"
    assert error["input"] == "Nobody"
    assert error["loc"] == ["body", "away"]
    assert "Nobody" in error["msg"]


def test_batch_over_the_cap_is_422(service: Any, fixture_body: dict[str, Any]) -> None:
    with TestClient(create_app(ServingSettings(), service)) as client:
        batch = {"fixtures": [fixture_body] * (MAX_BATCH + 1)}
        response = client.post("/v1/forecast/batch", json=batch)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["type"] == "too_long"
    assert error["loc"] == ["body", "fixtures"]


def test_batch_at_the_cap_is_200(service: Any, fixture_body: dict[str, Any]) -> None:
    # the default 1 MiB body cap fits a full batch
    with TestClient(create_app(ServingSettings(), service)) as client:
        response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body] * MAX_BATCH})
    assert response.status_code == 200
    assert len(response.json()["forecasts"]) == MAX_BATCH


def test_body_over_the_cap_is_413(client: TestClient, fixture_body: dict[str, Any]) -> None:
    # the test app caps bodies at 16 KiB
    response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body] * 200})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body over 16384 bytes"}


def test_streamed_body_over_the_cap_is_413(client: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(40):
            yield b" " * 1024  # 40 KiB without a Content-Length header

    response = client.post(
        "/v1/forecast", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 413
    assert response.json() == {"detail": "request body over 16384 bytes"}


def test_streamed_body_under_the_cap_is_served(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    payload = json.dumps(fixture_body).encode()

    def chunks() -> Any:
        yield payload[:10]
        yield payload[10:]

    response = client.post(
        "/v1/forecast", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["model"]["version"] == "v1"


def test_healthz_and_readyz(client: TestClient) -> None:
    service = client.app.state.service
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "snapshot_id": "snap-1"}
    service.set_ready(False)
    assert client.get("/healthz").status_code == 200
    not_ready = client.get("/readyz")
    assert not_ready.status_code == 503
    assert not_ready.json() == {"status": "loading"}


def test_forecast_before_ready_is_503(client: TestClient, fixture_body: dict[str, Any]) -> None:
    client.app.state.service.set_ready(False)
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 503
    assert response.json() == {"detail": "champions not loaded yet"}
    assert response.headers["retry-after"] == "1"


def test_listing_endpoints(client: TestClient) -> None:
    models = client.get("/v1/models")
    assert models.status_code == 200
    assert {"market": "1x2", "model_name": "market", "version": "v1"} in models.json()
    rankings = client.get("/v1/rankings")
    assert rankings.status_code == 200
    rows = rankings.json()
    football = [row["market"] for row in rows if row["vertical"] == "football"]
    assert football == ["1x2", "ou25", "ah"]
    assert rows[0]["edge_after_costs"] == 0.01
    # the crypto champions' rows follow the football ones, as pair/horizon markets
    assert [row["vertical"] for row in rows] == ["football"] * 3 + ["crypto"] * (len(rows) - 3)
    assert len(rows) > 3
    assert all("/" in row["market"] for row in rows[3:])
    dnt = client.get("/v1/do-not-trade")
    assert dnt.status_code == 200
    assert [row for row in dnt.json() if row["vertical"] == "football"] == [
        {"vertical": "football", "market": "ah", "reason": "thin", "check": "liquidity"}
    ]


def test_cache_hit_is_marked_and_skips_the_service(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    service = client.app.state.service
    first = client.post("/v1/forecast", json=fixture_body).json()
    # same fixture, keys in another order: same canonical key
    reordered = dict(reversed(list(fixture_body.items())))
    second = client.post("/v1/forecast", json=reordered).json()
    assert first["cached"] is False
    assert second["cached"] is True
    assert second["probabilities"] == first["probabilities"]
    assert service.n_forecast_calls == 1
    other = client.post("/v1/forecast", json={**fixture_body, "home": "Everton"}).json()
    assert other["cached"] is False
    assert service.n_forecast_calls == 2


def test_a_new_snapshot_misses_the_cache(client: TestClient, fixture_body: dict[str, Any]) -> None:
    service = client.app.state.service
    assert client.post("/v1/forecast", json=fixture_body).json()["model"]["version"] == "v1"
    assert client.post("/v1/forecast", json=fixture_body).json()["cached"] is True
    service.reload()  # behind the API's back: only the snapshot id changes
    after = client.post("/v1/forecast", json=fixture_body).json()
    assert after["cached"] is False
    assert after["model"]["version"] == "v2"


def test_batch_uses_the_cache_per_fixture(client: TestClient, fixture_body: dict[str, Any]) -> None:
    service = client.app.state.service
    client.post("/v1/forecast", json=fixture_body)
    other = {**copy.deepcopy(fixture_body), "home": "Everton"}
    forecasts = client.post("/v1/forecast/batch", json={"fixtures": [other, fixture_body]}).json()
    assert [f["cached"] for f in forecasts["forecasts"]] == [False, True]
    assert service.n_forecast_calls == 2


def test_cache_disabled(service: Any, fixture_body: dict[str, Any]) -> None:
    with TestClient(create_app(ServingSettings(cache_size=0), service)) as client:
        client.post("/v1/forecast", json=fixture_body)
        assert client.post("/v1/forecast", json=fixture_body).json()["cached"] is False
    assert service.n_forecast_calls == 2


def _sample(metrics_text: str, prefix: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {prefix!r} in /metrics")


def test_metrics_after_requests(client: TestClient, fixture_body: dict[str, Any]) -> None:
    client.post("/v1/forecast", json=fixture_body)
    client.post("/v1/forecast", json=fixture_body)
    client.post("/v1/forecast", json={**fixture_body, "league": "D1"})
    client.post("/v1/forecast", json={**fixture_body, "league": "XX"})
    client.get("/no/such/path")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    count = 'marketcast_http_request_duration_seconds_count{method="POST",route="/v1/forecast"}'
    assert _sample(text, count) == 4.0
    assert 'le="0.0005"' in text
    assert (
        _sample(text, 'marketcast_forecasts_total{model="market",path="edge",version="v1"}') == 2.0
    )
    assert (
        _sample(text, 'marketcast_forecasts_total{model="market",path="cloud",version="v1"}') == 1.0
    )
    assert _sample(text, 'marketcast_http_errors_total{route="/v1/forecast",status="422"}') == 1.0
    assert _sample(text, 'marketcast_http_errors_total{route="unmatched",status="404"}') == 1.0
    assert _sample(text, "marketcast_cache_hits_total") == 1.0
    assert _sample(text, "marketcast_cache_misses_total") == 2.0
    assert _sample(text, "marketcast_ready") == 1.0


def test_413_is_counted_under_its_route(client: TestClient) -> None:
    client.post("/v1/forecast", content=b"x" * 20_000, headers={"Content-Type": "application/json"})
    text = client.get("/metrics").text
    assert _sample(text, 'marketcast_http_errors_total{route="/v1/forecast",status="413"}') == 1.0


def test_two_apps_have_separate_metrics(service: Any, fixture_body: dict[str, Any]) -> None:
    with (
        TestClient(create_app(ServingSettings(), service)) as first,
        TestClient(create_app(ServingSettings(), service)) as second,
    ):
        first.post("/v1/forecast", json=fixture_body)
        prefix = 'marketcast_forecasts_total{model="market",path="edge",version="v1"}'
        assert _sample(first.get("/metrics").text, prefix) == 1.0
        assert prefix not in second.get("/metrics").text


@pytest.mark.parametrize("kickoff", ["2263-01-01T00:00:00Z", "1850-06-01T15:00:00Z"])
def test_kickoff_out_of_range_is_422(
    client: TestClient, fixture_body: dict[str, Any], kickoff: str
) -> None:
    """Times past pandas' timestamps overflowed the cloud path's frame: refused up front."""
    response = client.post("/v1/forecast", json={**fixture_body, "kickoff": kickoff})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "kickoff"]
    assert "kickoff must fall in [1900-01-01, 2200-01-01)" in detail["msg"]
