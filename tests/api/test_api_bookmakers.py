"""``odds.bookmakers``: several bookmakers' quotes in one request, checked before any model runs."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketcast.serving.schemas import BOOKMAKER_CODES

PINNACLE = {"1x2": {"home": 1.85, "draw": 3.80, "away": 4.60}}
B365 = {"1x2": {"home": 1.80, "draw": 3.90, "away": 4.50}}


def _error(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/forecast", json=body)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    return error


def test_the_codes_are_the_loaders_with_the_average_and_the_best_price() -> None:
    assert {"pinnacle", "b365", "bw", "wh", "avg", "max", "bfe"} <= set(BOOKMAKER_CODES)


def test_quotes_by_bookmaker_are_accepted_and_change_the_cache_key(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    plain = client.post("/v1/forecast", json=fixture_body).json()
    fixture_body["odds"]["bookmakers"] = {"pinnacle": PINNACLE, "b365": B365}
    quoted = client.post("/v1/forecast", json=fixture_body)
    assert quoted.status_code == 200, quoted.text
    assert plain["cached"] is False
    assert quoted.json()["cached"] is False  # another request, not the one answered above


@pytest.mark.parametrize(
    ("bookmakers", "message"),
    [
        ({"Pinnacle": PINNACLE}, "unknown bookmaker code(s) ['Pinnacle']; known: 1xb, avg"),
        ({"betfair": PINNACLE}, "unknown bookmaker code(s) ['betfair']"),
        ({}, "at least 1 item"),
    ],
)
def test_an_unknown_code_or_an_empty_set_is_a_422(
    client: TestClient, fixture_body: dict[str, Any], bookmakers: dict, message: str
) -> None:
    fixture_body["odds"]["bookmakers"] = bookmakers
    assert message in _error(client, fixture_body)["msg"]


def test_a_bookmaker_without_prices_is_a_422_naming_it(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    fixture_body["odds"]["bookmakers"] = {"pinnacle": PINNACLE, "b365": {}}
    error = _error(client, fixture_body)
    assert error["loc"] == ["body", "odds", "bookmakers", "b365"]
    assert "at least one market" in error["msg"]


def test_a_bookmakers_price_is_checked_as_the_top_level_one(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    typo = {"1x2": {"home": 10.0, "draw": 10.0, "away": 10.0}}
    fixture_body["odds"]["bookmakers"] = {"pinnacle": PINNACLE, "wh": typo}
    error = _error(client, fixture_body)
    assert error["loc"] == ["body", "odds", "bookmakers", "wh", "1x2"]
    assert "booksum" in error["msg"]


def test_a_market_answered_but_quoted_by_no_bookmaker_is_a_422(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    fixture_body["odds"]["ou25"] = {"over": 1.9, "under": 1.95}
    fixture_body["odds"]["bookmakers"] = {"pinnacle": PINNACLE}
    assert "odds.ou25 is given but no bookmaker" in _error(client, fixture_body)["msg"]


def test_handicap_quotes_on_another_line_are_a_422(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    fixture_body["odds"]["ah"] = {"line": -0.75, "home": 2.0, "away": 1.85}
    fixture_body["odds"]["bookmakers"] = {
        "pinnacle": {**PINNACLE, "ah": {"line": -0.75, "home": 2.02, "away": 1.88}},
        "b365": {**B365, "ah": {"line": -0.5, "home": 1.80, "away": 2.05}},
    }
    assert "on one line" in _error(client, fixture_body)["msg"]
    fixture_body["odds"]["bookmakers"]["b365"]["ah"]["line"] = -0.75
    assert client.post("/v1/forecast", json=fixture_body).status_code == 200
