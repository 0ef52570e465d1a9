"""The serving audit's findings: a deeply nested field, a batch answered by two snapshots, a
model this installation cannot rebuild, a pipelined request cut off by the header timeout,
uncounted overload 503s, and a full batch with bookmakers over the default body cap."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketcast.registry import Registry
from marketcast.registry.store import RegistryError
from marketcast.serving import service as service_module
from marketcast.serving.app import (
    ECHO_MAX_DEPTH,
    ERRORS_SHOWN,
    TOO_DEEP,
    TOO_LARGE,
    create_app,
)
from marketcast.serving.schemas import MAX_BATCH, FixtureIn, ForecastOut
from marketcast.serving.service import ChampionService
from marketcast.serving.settings import ServingSettings
from tests.api.fake_app import FakeService
from tests.api.test_http_server import serving

# -- 1. a field nested hundreds of levels deep ---------------------------------------------------


def _nested_body(home: str, *, batch: bool) -> bytes:
    fixture = (
        '{"league": "E0", "home": ' + home + ', "away": "Chelsea", '
        '"kickoff": "2025-05-10T14:00:00Z", "odds": {"1x2": {"home": 1.8, "draw": 3.9, '
        '"away": 4.5}}}'
    )
    return (('{"fixtures": [' + fixture + "]}") if batch else fixture).encode()


@pytest.mark.parametrize("batch", [False, True], ids=["single", "batch"])
@pytest.mark.parametrize(
    "home",
    ["[" * 485 + "]" * 485, "[" * 900 + "]" * 900, '{"a": ' * 600 + "1" + "}" * 600],
    ids=["list_485", "list_900", "object_600"],
)
def test_a_field_nested_hundreds_of_levels_is_a_small_422(
    client: TestClient, home: str, batch: bool
) -> None:
    """The 422 handler echoed the input through recursive encoders: past ~485 levels (a 1 KB
    body, the JSON reader takes ~990) a RecursionError, a 500 and ~150 KB of traceback."""
    response = client.post(
        "/v1/forecast/batch" if batch else "/v1/forecast",
        content=_nested_body(home, batch=batch),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert len(response.content) < 1000
    [error] = response.json()["detail"]
    assert error["loc"] == (["body", "fixtures", 0, "home"] if batch else ["body", "home"])
    assert error["type"] == "string_type"
    assert error["input"] == TOO_DEEP


def test_an_input_within_the_echo_depth_is_echoed_whole(client: TestClient) -> None:
    home = "[" * ECHO_MAX_DEPTH + "]" * ECHO_MAX_DEPTH
    response = client.post(
        "/v1/forecast",
        content=_nested_body(home, batch=False),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["input"] == json.loads(home)
    # one level more is the placeholder, not a 500
    home = "[" + home + "]"
    deeper = client.post(
        "/v1/forecast",
        content=_nested_body(home, batch=False),
        headers={"content-type": "application/json"},
    )
    assert deeper.status_code == 422
    assert deeper.json()["detail"][0]["input"] == TOO_DEEP


def test_a_body_of_many_unknown_keys_is_a_small_422(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """Serving audit (medium): every error was listed, and a missing field's input (the whole
    object around it) echoed: a 1 MiB body of 90,000 unknown keys got a 13.9 MB answer."""
    body = {key: value for key, value in fixture_body.items() if key != "home"}
    body |= {f"k{i}": i for i in range(1_000)}
    response = client.post("/v1/forecast", json=body)
    assert response.status_code == 422
    assert len(response.content) < 10_000
    detail = response.json()["detail"]
    assert len(detail) == ERRORS_SHOWN + 1
    missing = [error for error in detail if error["type"] == "missing"]
    assert missing[0]["loc"] == ["body", "home"]  # listed: its input, the whole body, is not
    assert missing[0]["input"] == TOO_LARGE
    assert detail[-1] == {
        "type": "too_many_errors",
        "loc": [],
        "msg": f"{1_001 - ERRORS_SHOWN:,} more errors, not listed",
        "input": None,
    }
    # a few errors are all listed, each small input echoed as it came
    few = client.post("/v1/forecast", json={**fixture_body, "x": 1, "y": [2]}).json()["detail"]
    assert [(error["loc"], error["input"]) for error in few] == [
        (["body", "x"], 1),
        (["body", "y"], [2]),
    ]


@pytest.mark.parametrize(
    "home", ['["Arsenal"' + ', "Arsenal"' * 499 + "]", "[" + ", ".join(["9" * 4000] * 3) + "]"]
)
def test_a_large_bad_input_is_not_echoed(client: TestClient, home: str) -> None:
    """A list of 4,000-digit integers counted 8 characters an item and was echoed whole."""
    body = _nested_body(home, batch=False)
    response = client.post(
        "/v1/forecast", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert (error["loc"], error["input"]) == (["body", "home"], TOO_LARGE)
    assert len(response.content) < 1000


# -- 2. one batch, one snapshot --------------------------------------------------------------------


def test_a_batch_straddling_a_swap_is_answered_by_one_snapshot(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """A cached fixture came from snapshot 1 and a new one from snapshot 2 when a reload (the
    registry watcher's, which clears no cache) landed between the look-up and the call."""
    service: FakeService = client.app.state.service
    cache = client.app.state.cache
    warm = client.post("/v1/forecast", json=fixture_body).json()
    assert (warm["model"]["version"], len(cache)) == ("v1", 1)
    original = service.forecast
    calls: list[int] = []

    def swap_then_forecast(fixtures: Sequence[FixtureIn]) -> list[ForecastOut]:
        calls.append(len(fixtures))
        if len(calls) == 1:
            service.reload()  # the watcher swaps in snapshot 2 after the look-up read 1
        return original(fixtures)

    service.forecast = swap_then_forecast  # type: ignore[method-assign]
    cold = {**fixture_body, "home": "Brentford"}
    response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, cold]})
    assert response.status_code == 200
    forecasts = response.json()["forecasts"]
    assert [(f["model"]["version"], f["cached"]) for f in forecasts] == [
        ("v2", False),
        ("v2", False),
    ]
    assert calls == [1, 2]  # the miss, then the whole batch again under one snapshot
    assert len(cache) == 1  # nothing of the mixed attempt or of the answer again is cached
    # the entry of snapshot 1 is never served under snapshot 2: its key names snapshot 1
    again = client.post("/v1/forecast", json=fixture_body).json()
    assert (again["model"]["version"], again["cached"]) == ("v2", False)


def test_a_batch_answered_again_counts_its_fixtures_as_misses(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    """Without a swap a batch keeps its hits and costs one call; answered again after one, its
    hits were not served, and it counts as many misses as fixtures."""
    service: FakeService = client.app.state.service
    client.post("/v1/forecast", json=fixture_body)
    calls_before = service.n_forecast_calls
    cold = {**fixture_body, "home": "Brentford"}
    response = client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, cold]})
    forecasts = response.json()["forecasts"]
    assert [f["cached"] for f in forecasts] == [True, False]
    assert service.n_forecast_calls == calls_before + 1
    metrics = client.app.state.metrics
    # the warm-up's miss, then one hit and one miss
    assert metrics.registry.get_sample_value("marketcast_cache_hits_total") == 1
    assert metrics.registry.get_sample_value("marketcast_cache_misses_total") == 2
    swapped = service.forecast

    def swap_then_forecast(fixtures: Sequence[FixtureIn]) -> list[ForecastOut]:
        service.forecast = swapped  # type: ignore[method-assign]
        service.reload()
        return swapped(fixtures)

    service.forecast = swap_then_forecast  # type: ignore[method-assign]
    other = {**fixture_body, "home": "Fulham"}
    client.post("/v1/forecast/batch", json={"fixtures": [fixture_body, other]})
    # answered again whole: no hit is counted, both fixtures are misses
    assert metrics.registry.get_sample_value("marketcast_cache_hits_total") == 1
    assert metrics.registry.get_sample_value("marketcast_cache_misses_total") == 4


# -- 3. a model this installation cannot rebuild ---------------------------------------------------


@pytest.fixture
def dixon_coles_cannot_be_rebuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dixon-Coles's files pass their hash check, but its class no longer takes what they hold
    (an artifact of another code version): a TypeError, not a registry or loader error."""
    load_model = service_module.load_model

    def load(name: str, files: Any) -> Any:
        if name == "dixon_coles":
            raise TypeError(f"{UNEXPECTED}\n  (the artifact's params)")
        return load_model(name, files)

    monkeypatch.setattr(service_module, "load_model", load)


UNEXPECTED = "DixonColes.__init__() got an unexpected keyword argument 'rho_prior'"


def _copy_with_champion(registry: Registry, tmp_path: Path, market: str, model: str) -> Registry:
    shutil.copytree(registry.root, tmp_path / "registry")
    copy = Registry(str(tmp_path / "registry"))
    version = copy.latest_version("football", market, model)
    assert version is not None
    copy.set_champion("football", market, model, version, "test: promoted")
    return copy


def _log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.usefixtures("dixon_coles_cannot_be_rebuilt")
def test_an_ensemble_member_that_cannot_be_rebuilt_is_left_out(
    small_registry: Registry, settings: ServingSettings, caplog: pytest.LogCaptureFixture
) -> None:
    service = ChampionService(small_registry)
    with caplog.at_level("WARNING", logger="marketcast.serving.service"):
        service.reload()
    assert service.ready
    assert [m.name for m in service.snapshot().members["1x2"]] == ["market"]
    version = small_registry.latest_version("football", "1x2", "dixon_coles")
    [line] = [x for x in _log_lines(caplog) if f"1x2/dixon_coles {version} left out" in x]
    assert line.endswith(f": TypeError: {UNEXPECTED}; (the artifact's params)")
    with TestClient(create_app(settings, service)) as client:
        models = {row["market"]: row for row in client.get("/v1/models").json()}
    assert [m["name"] for m in models["1x2"]["members"]] == ["market"]


@pytest.mark.usefixtures("dixon_coles_cannot_be_rebuilt")
def test_a_secondary_champion_that_cannot_be_rebuilt_leaves_its_market_out(
    small_registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = _copy_with_champion(small_registry, tmp_path, "ou25", "dixon_coles")
    service = ChampionService(copy)
    with caplog.at_level("WARNING", logger="marketcast.serving.service"):
        service.reload()
    assert service.ready
    assert set(service.snapshot().champions) == {"1x2"}
    version = copy.latest_version("football", "ou25", "dixon_coles")
    [line] = [x for x in _log_lines(caplog) if "football/ou25 left out of this snapshot" in x]
    assert f"(dixon_coles {version}): TypeError: {UNEXPECTED}; " in line
    assert "\n" not in line


@pytest.mark.usefixtures("dixon_coles_cannot_be_rebuilt")
def test_a_1x2_champion_that_cannot_be_rebuilt_is_a_one_line_registry_error(
    small_registry: Registry, tmp_path: Path
) -> None:
    """`marketcast serve` printed a 40-line traceback for the TypeError; a RegistryError is its
    one `marketcast: error:` line."""
    copy = _copy_with_champion(small_registry, tmp_path, "1x2", "dixon_coles")
    service = ChampionService(copy)
    version = copy.latest_version("football", "1x2", "dixon_coles")
    with pytest.raises(RegistryError) as raised:
        service.reload()
    assert str(raised.value) == (
        f"football/1x2 dixon_coles {version} cannot be served: TypeError: {UNEXPECTED}; "
        "(the artifact's params)"
    )
    assert isinstance(raised.value.__cause__, TypeError)
    assert not service.ready


# -- 4 and 5. the HTTP protocol: pipelining and overload ------------------------------------------


HEADER_TIMEOUT_S = 0.2


async def _slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers after three header timeouts (an LLM explanation, a cloud batch)."""
    if scope["type"] != "http":
        return
    await asyncio.sleep(3 * HEADER_TIMEOUT_S)
    body = scope["path"].encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _read_until_closed_or(sock: socket.socket, done: bytes) -> bytes:
    sock.settimeout(10)
    out = b""
    while not out.endswith(done):
        chunk = sock.recv(65536)
        if not chunk:
            break
        out += chunk
    return out


def test_a_pipelined_request_is_not_cut_off_by_the_header_timeout() -> None:
    """The second request's headers came with the first; once the first was answered, the
    header timer was armed again while the second ran, and closed the connection under it
    (the timer is due before the second request's own sleep ends, whatever the machine's
    load: both wait on the one event loop, the timer from earlier and shorter)."""
    with (
        serving(_slow, header_timeout_s=HEADER_TIMEOUT_S) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        out = _read_until_closed_or(sock, b"/second")
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.endswith(b"/second")


def test_a_stalled_request_after_a_pipelined_one_is_still_cut_off() -> None:
    """The header timer is armed again once no request is under way."""
    with (
        serving(_slow, header_timeout_s=HEADER_TIMEOUT_S) as port,
        socket.create_connection(("127.0.0.1", port)) as sock,
    ):
        sock.sendall(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /third HTTP/1.1\r\n"  # never finished
        )
        started = time.monotonic()
        out = _read_until_closed_or(sock, b"never")
    assert out.count(b"HTTP/1.1 200 OK") == 2  # then closed, not left open
    assert time.monotonic() - started < 5


def test_overload_503s_are_counted_in_the_apps_metrics(
    service: FakeService, settings: ServingSettings
) -> None:
    """uvicorn answers them with its own app, so the app's middleware never saw them."""
    app = create_app(settings, service)
    metrics = app.state.metrics
    with serving(app, limit_concurrency=3) as port:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            for sock in held:  # answered, and then kept open: two of the three places
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert b" 200 OK" in _read_until_closed_or(sock, b'{"status":"ok"}')
            answers = []
            for _ in range(4):
                with socket.create_connection(("127.0.0.1", port)) as sock:
                    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
                    answers.append(_read_until_closed_or(sock, b"never"))
        finally:
            for sock in held:
                sock.close()
    assert [answer[9:12] for answer in answers] == [b"503"] * 4
    # JSON as the API's other errors, with when to retry (uvicorn's was plain text)
    head, _, body = answers[0].partition(b"\r\n\r\n")
    assert json.loads(body) == {
        "detail": "server overloaded: too many requests in progress, retry shortly"
    }
    assert b"content-type: application/json" in head.lower()
    assert b"retry-after: 1" in head.lower()
    assert metrics.registry.get_sample_value("marketcast_overload_rejections_total") == 4
    body, _ = metrics.render()
    assert b"marketcast_overload_rejections_total 4.0" in body


# -- 5. the documented full batch fits the default body cap ----------------------------------------


def test_a_full_batch_quoting_a_football_data_rows_bookmakers_fits_the_default_cap(
    service: FakeService,
) -> None:
    """A football-data.co.uk row quotes 8 bookmakers for 1X2 and 4 for over/under and
    handicap: 256 such fixtures are ~272 KiB as json.dumps writes them, a 413 at 256 KiB."""
    x2 = {"home": 2.35, "draw": 3.4, "away": 3.1}
    ou25 = {"over": 1.91, "under": 1.99}
    ah = {"line": -0.25, "home": 2.02, "away": 1.88}
    books: dict[str, dict[str, Any]] = {
        code: {"1x2": x2} for code in ("b365", "bw", "iw", "pinnacle", "wh", "vc", "max", "avg")
    }
    for code in ("b365", "pinnacle", "max", "avg"):
        books[code] = {**books[code], "ou25": ou25, "ah": ah}
    fixture = {
        "league": "E0",
        "home": "Nott'm Forest",
        "away": "Wolves",
        "kickoff": "2025-05-10T14:00:00Z",
        "odds": {"1x2": x2, "ou25": ou25, "ah": ah, "bookmakers": books},
    }
    body = json.dumps({"fixtures": [fixture] * MAX_BATCH}).encode()
    assert len(body) > 256 * 1024
    with TestClient(create_app(ServingSettings(), service)) as client:
        response = client.post(
            "/v1/forecast/batch", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 200
    assert len(response.json()["forecasts"]) == MAX_BATCH
