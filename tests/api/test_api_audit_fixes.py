"""The cache key ignores the order of ``odds.bookmakers``; cache hits and misses are counted
only for answered requests; a validator's error text reaches the client."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from marketcast.serving.schemas import FixtureIn
from tests.api.test_api_bookmakers import B365, PINNACLE
from tests.api.test_api_forecast import _sample


def test_the_order_of_bookmakers_does_not_change_the_cache_key(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """It was part of the key as sent: the same quotes in another order missed the cache."""
    fixture_body["odds"]["bookmakers"] = {"pinnacle": PINNACLE, "b365": B365}
    first = client.post("/v1/forecast", json=fixture_body).json()
    fixture_body["odds"]["bookmakers"] = {"b365": B365, "pinnacle": PINNACLE}
    second = client.post("/v1/forecast", json=fixture_body).json()
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["probabilities"] == first["probabilities"]


def test_bookmakers_are_held_in_code_order() -> None:
    odds = {"1x2": B365["1x2"], "bookmakers": {"pinnacle": PINNACLE, "b365": B365, "avg": B365}}
    fixture = FixtureIn.model_validate(
        {"league": "E0", "home": "A", "away": "B", "kickoff": "2025-05-10T14:00:00Z", "odds": odds}
    )
    assert list(fixture.odds.bookmakers or {}) == ["avg", "b365", "pinnacle"]


def test_a_refused_batch_counts_no_cache_hit_or_miss(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """A miss was counted before the service refused the batch: no forecast was computed."""
    client.post("/v1/forecast", json=fixture_body)  # one miss, now cached
    refused = client.post(
        "/v1/forecast/batch", json={"fixtures": [fixture_body, {**fixture_body, "home": "Nobody"}]}
    )
    assert refused.status_code == 422, refused.text
    text = client.get("/metrics").text
    assert _sample(text, "marketcast_cache_hits_total") == 0.0
    assert _sample(text, "marketcast_cache_misses_total") == 1.0
    answered = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body]})
    assert answered.json()["forecasts"][0]["cached"] is True
    assert _sample(client.get("/metrics").text, "marketcast_cache_hits_total") == 1.0


def test_a_validators_error_text_is_in_ctx(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """pydantic puts the validator's exception in ``ctx.error``; it was written as ``{}``."""
    fixture_body["away"] = fixture_body["home"]
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "value_error"
    assert error["ctx"]["error"] == error["msg"].removeprefix("Value error, ")
    assert "Arsenal" in error["ctx"]["error"]
