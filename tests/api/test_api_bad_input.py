"""Bad requests a probing user sent: each is a 4xx naming the field, never a 500."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketcast.serving.schemas import AsianHandicapOdds

NOT_JSON_NUMBERS = ("NaN", "Infinity", "-Infinity", "1e400")


def _post(client: TestClient, path: str, body: str, headers: dict[str, str] | None = None) -> Any:
    return client.post(
        path, content=body.encode("utf-8", "surrogatepass"), headers={
            "content-type": "application/json", **(headers or {})
        }
    )  # fmt: skip


@pytest.mark.parametrize("number", NOT_JSON_NUMBERS)
@pytest.mark.parametrize(
    "template",
    [
        '"odds": {{"1x2": {{"home": {n}, "draw": 3.9, "away": 4.5}}}}',
        '"odds": {{"1x2": {{"home": 1.8, "draw": 3.9, "away": 4.5}}, '
        '"ah": {{"line": {n}, "home": 1.9, "away": 1.9}}}}',
        '"odds": {{"1x2": {{"home": 1.8, "draw": 3.9, "away": 4.5}}}}, "extra": {n}',
    ],
    ids=["odds", "ah_line", "unknown_key"],
)
def test_numbers_json_cannot_hold_are_a_422_not_a_500(
    client: TestClient, number: str, template: str
) -> None:
    """Python's JSON reader accepts NaN and 1e400 (as inf); echoing them back used to crash."""
    body = (
        '{"league": "E0", "home": "Arsenal", "away": "Chelsea", '
        '"kickoff": "2025-05-10T14:00:00Z", ' + template.format(n=number) + "}"
    )
    response = _post(client, "/v1/forecast", body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"][:2] == ["body", "odds"] or error["loc"] == ["body", "extra"]
    assert isinstance(error["input"], str | dict)  # the value, written as text JSON can hold


def test_a_lone_surrogate_in_a_team_name_is_a_422(client: TestClient) -> None:
    body = (
        '{"league": "E0", "home": "Arsenal\\ud800", "away": "Chelsea", '
        '"kickoff": "2025-05-10T14:00:00Z", "odds": {"1x2": {"home": 1.8, "draw": 3.9, '
        '"away": 4.5}}, "extra": "\\ud800"}'
    )
    response = _post(client, "/v1/forecast", body)
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json()["detail"]} == {
        ("body", "home"),
        ("body", "extra"),
    }


def test_admin_routes_answer_a_nan_body_with_a_422(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = _post(client, "/v1/admin/rollback", '{"market": NaN}', admin_headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["input"] == "nan"


@pytest.mark.parametrize(
    ("given", "served"),
    [(0.24999999999999997, 0.25), (1e-10, 0.0), (-1e-10, 0.0), (-0.75, -0.75)],
)
def test_handicap_lines_are_snapped_to_the_quarter_they_are_meant_as(
    given: float, served: float
) -> None:
    """0.24999999999999997 passed the check and then settled like a line below 0.25."""
    line = AsianHandicapOdds(line=given, home=1.9, away=1.9).line
    assert line == served
    assert str(line) == str(served)  # no -0.0


@pytest.mark.parametrize(
    ("market", "odds", "field"),
    [
        ("1x2", {"home": 10.0, "draw": 10.0, "away": 10.0}, "1x2"),
        ("1x2", {"home": 1.01, "draw": 1.01, "away": 1.01}, "1x2"),
        ("ou25", {"over": 1.1, "under": 1.1}, "ou25"),
        ("ah", {"line": 0.0, "home": 5.0, "away": 5.0}, "ah"),
    ],
)
def test_prices_no_bookmaker_would_quote_are_a_422(
    client: TestClient, fixture_body: dict[str, Any], market: str, odds: dict, field: str
) -> None:
    fixture_body["odds"][market] = odds
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "odds", field]
    assert "booksum" in error["msg"]


def test_a_team_playing_itself_is_a_422(client: TestClient, fixture_body: dict[str, Any]) -> None:
    fixture_body["away"] = " arsenal"
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert "same team" in error["msg"]
    assert error["loc"] == ["body", "away"]  # it pointed at the whole body


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("kickoff", 1746885600, ["body", "kickoff"]),  # seconds or milliseconds: a guess
        ("kickoff", 1746885600.0, ["body", "kickoff"]),
        ("kickoff", True, ["body", "kickoff"]),
        ("1x2.home", "1.80", ["body", "odds", "1x2", "home"]),  # text where a number belongs
        ("1x2.draw", True, ["body", "odds", "1x2", "draw"]),
        ("ah.line", "-0.25", ["body", "odds", "ah", "line"]),
    ],
)
def test_a_value_of_the_wrong_json_type_is_a_422_not_a_guess(
    client: TestClient, fixture_body: dict[str, Any], field: str, value: Any, loc: list[str]
) -> None:
    """Serving audit (low): an epoch number was read as a kickoff (seconds, or milliseconds
    past 2e10), and text or true as odds ("1.80", 1.0)."""
    fixture_body["odds"]["ah"] = {"line": -0.25, "home": 1.9, "away": 1.95}
    if field == "kickoff":
        fixture_body["kickoff"] = value
    else:
        market, name = field.split(".")
        fixture_body["odds"][market][name] = value
    response = client.post("/v1/forecast", json=fixture_body)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    # the same fixture with proper JSON types is answered (whole odds as JSON integers too)
    fixture_body["kickoff"] = "2025-05-10T14:00:00Z"
    fixture_body["odds"]["1x2"] = {"home": 2, "draw": 3.4, "away": 4}
    fixture_body["odds"]["ah"] = {"line": -0.25, "home": 1.9, "away": 1.95}
    assert client.post("/v1/forecast", json=fixture_body).status_code == 200


def test_an_unknown_team_after_a_cache_hit_is_named_at_its_request_position(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """Only cache misses reach the service: the index it reports is mapped back."""
    assert client.post("/v1/forecast", json=fixture_body).status_code == 200  # now cached
    bad = {**copy.deepcopy(fixture_body), "home": "Nobody"}
    response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, bad]})
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "fixtures", 1, "home"]
    assert error["input"] == "Nobody"


@pytest.mark.parametrize("batch", [False, True])
def test_a_kickoff_before_the_data_is_a_422_at_its_request_position(
    client: TestClient, fixture_body: dict[str, Any], batch: bool
) -> None:
    """It was a string detail naming neither the field nor the fixture's place in a batch."""
    past = {**copy.deepcopy(fixture_body), "kickoff": "1999-08-14T15:00:00Z"}
    if batch:
        assert client.post("/v1/forecast", json=fixture_body).status_code == 200  # now cached
        response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, past]})
    else:
        response = client.post("/v1/forecast", json=past)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["type"] == "kickoff_before_data"
    assert error["loc"] == (["body", "fixtures", 1, "kickoff"] if batch else ["body", "kickoff"])
    assert error["msg"].startswith("cannot forecast: ")
    assert error["input"].startswith("1999-08-14T15:00:00")


@pytest.mark.parametrize(
    "path",
    ["/healthz", "/readyz", "/v1/models", "/v1/rankings", "/metrics", "/v1/crypto/status"],
)
def test_every_get_route_answers_head_without_a_body(client: TestClient, path: str) -> None:
    """HEAD was a 405 everywhere but on the probes."""
    response = client.head(path)
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0


@pytest.mark.parametrize(
    "odds",
    [(1.20, 2.00, 15.00), (1.04, 2.50, 26.00)],
)
def test_a_booksum_exactly_on_the_bound_is_accepted(
    client: TestClient, fixture_body: dict[str, Any], odds: tuple[float, float, float]
) -> None:
    """They sum to 1.4000000000000001 in floating point and were refused as 'outside 1.4'."""
    fixture_body["odds"]["1x2"] = dict(zip(("home", "draw", "away"), odds, strict=True))
    assert client.post("/v1/forecast", json=fixture_body).status_code == 200


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain; charset=utf-8", None]
)
def test_a_body_sent_as_another_type_than_json_is_a_415_naming_it(
    client: TestClient, fixture_body: dict[str, Any], content_type: str | None
) -> None:
    """Serving audit (low): ``curl -d`` sends its body as a form, and FastAPI reads it (or one
    with no Content-Type) as bytes: a 422 "Input should be a valid dictionary" of the whole
    body, not naming the header."""
    body = json.dumps(fixture_body)
    headers = {} if content_type is None else {"content-type": content_type}
    response = client.post("/v1/forecast", content=body, headers=headers)
    assert response.status_code == 415
    got = "no Content-Type" if content_type is None else repr(content_type)
    assert response.json() == {
        "detail": f"the body must be JSON, sent with Content-Type: application/json (got {got})"
    }
    for sent in ("application/json; charset=utf-8", "application/vnd.api+json"):
        assert client.post("/v1/forecast", content=body, headers={"content-type": sent}).is_success


def test_an_integer_past_the_readers_digit_limit_is_a_422_at_its_field(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """Serving audit (low): Python reads at most 4,300 digits of an integer, and a valid JSON
    body holding a longer one was a 400 "There was an error parsing the body"."""
    body = json.dumps(fixture_body).replace('"draw": 3.9', '"draw": ' + "9" * 5000)
    response = client.post(
        "/v1/forecast", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "odds", "1x2", "draw"]
    assert error["type"] == "finite_number"


def test_a_team_name_is_read_as_the_loader_stores_it(fixture_body: dict[str, Any]) -> None:
    """The review of a6510a3: the loader composes team names (NFC) and makes runs of spaces
    one, so a request sending a name as its file writes it (decomposed, two spaces) asked for a
    team the server no longer held, and NFD against NFC passed the same-team check."""
    from marketcast.serving.schemas import FixtureIn

    fixture_body["home"] = "Bayern  Mu\u0308nchen"
    fixture_body["away"] = "K\u00f6ln\u200b"
    fixture = FixtureIn.model_validate(fixture_body)
    assert (fixture.home, fixture.away) == ("Bayern M\u00fcnchen", "K\u00f6ln")
    fixture_body["away"] = "Bayern M\u00fcnchen"
    with pytest.raises(ValueError, match="same team"):
        FixtureIn.model_validate(fixture_body)
