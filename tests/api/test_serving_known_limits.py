"""The serving layer's known limits, fixed: a JSON key given twice (read last-wins), a registry
error reading a market's decisions or members (it failed the whole reload), the registry
watcher's swaps leaving dead cache entries, and ``serve`` exiting 0 on SIGINT when started with
SIGINT ignored."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from marketcast.registry import Registry
from marketcast.serving.app import TOO_DEEP, _Answer, create_app
from marketcast.serving.crypto import CryptoService
from marketcast.serving.json_body import MAX_DUPLICATES_REPORTED, StrictJSONRoute
from marketcast.serving.service import ChampionService
from marketcast.serving.settings import ServingSettings
from tests.api.conftest import ADMIN_TOKEN
from tests.api.fake_app import FakeService

JSON = {"content-type": "application/json"}
ADMIN = {**JSON, "authorization": f"Bearer {ADMIN_TOKEN}"}
FIXTURE = (
    '{"league": "E0", "home": "Arsenal", "away": "Chelsea", "kickoff": "2025-05-10T14:00:00Z", '
    '"odds": {"1x2": {"home": 1.8, "draw": 3.9, "away": 4.5}}}'
)

# -- 1. a key given twice in one JSON object -------------------------------------------------------


@pytest.fixture
def strict_app(settings: ServingSettings, service: FakeService) -> FastAPI:
    """The app with the crypto routes mounted: a body is refused before any service is called,
    so no crypto service is needed behind them."""
    return create_app(settings, service, crypto=cast("CryptoService", object()))


def test_a_key_given_twice_is_a_422_naming_it_and_where(
    strict_app: FastAPI, service: FakeService
) -> None:
    """``"home": "Arsenal", "home": "Nobody"`` was read as "Nobody" (the JSON reader keeps the
    last value): a client's mistake answered as if it meant the last one."""
    body = FIXTURE.replace('"home": "Arsenal"', '"home": "Arsenal", "home": "Nobody"')
    with TestClient(strict_app) as client:
        response = client.post("/v1/forecast", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "duplicate_key",
                "loc": ["body", "home"],
                "msg": "duplicate key 'home' at body.home: given 2 times in one object; "
                "give each key once",
                "input": ["Arsenal", "Nobody"],
            }
        ]
    }
    assert service.n_forecast_calls == 0


def test_a_key_given_twice_in_a_batch_names_the_fixture(strict_app: FastAPI) -> None:
    """Fixture 3's draw price given twice was forecast from the second (3.5 instead of 3.9)."""
    repeated = FIXTURE.replace('"draw": 3.9', '"draw": 3.9, "draw": 3.5')
    body = '{"fixtures": [' + ", ".join([FIXTURE] * 3 + [repeated]) + "]}"
    with TestClient(strict_app) as client:
        response = client.post("/v1/forecast/batch", content=body, headers=JSON)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "fixtures", 3, "odds", "1x2", "draw"]
    assert error["msg"].startswith("duplicate key 'draw' at body.fixtures[3].odds[\"1x2\"].draw:")
    assert error["input"] == [3.9, 3.5]


@pytest.mark.parametrize(
    ("path", "body", "loc"),
    [
        ("/v1/admin/rollback", '{"market": "zz", "market": "1x2"}', ["body", "market"]),
        (
            "/v1/admin/promote",
            '{"market": "1x2", "model_name": "market", "version": "v2", "version": "v3"}',
            ["body", "version"],
        ),
        (
            "/v1/crypto/candles",
            '{"bars": [{"pair": "BTCUSDT", "close": 1.0, "close": 2.0}]}',
            ["body", "bars", 0, "close"],
        ),
        ("/v1/crypto/funding", '{"rates": [], "rates": []}', ["body", "rates"]),
    ],
)
def test_every_route_refuses_a_key_given_twice(
    strict_app: FastAPI, path: str, body: str, loc: list[Any]
) -> None:
    """The admin and crypto bodies too: a rollback of ``zz`` then ``1x2`` rolled back 1X2."""
    with TestClient(strict_app) as client:
        response = client.post(path, content=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert [(e["type"], e["loc"]) for e in response.json()["detail"]] == [("duplicate_key", loc)]


def test_every_route_with_a_body_reads_it_strictly(strict_app: FastAPI) -> None:
    """A route added later without ``StrictJSONRoute`` would read its body last-wins again."""
    routes = list(strict_app.routes)
    for entry in list(routes):  # an included router is one entry (FastAPI 0.16x)
        included = getattr(entry, "original_router", None)
        routes.extend(included.routes if included is not None else [])
    with_body = [r for r in routes if isinstance(r, APIRoute) and r.body_field]
    assert {r.path for r in with_body} >= {
        "/v1/forecast",
        "/v1/forecast/batch",
        "/v1/admin/promote",
        "/v1/admin/rollback",
        "/v1/crypto/candles",
        "/v1/crypto/funding",
    }
    assert all(isinstance(route, StrictJSONRoute) for route in with_body)


def test_each_key_given_twice_is_listed_in_document_order_up_to_the_cap(
    strict_app: FastAPI,
) -> None:
    inner = ", ".join(f'"k{i}": 1, "k{i}": 2' for i in range(MAX_DUPLICATES_REPORTED + 8))
    body = '{"league": "E0", "league": "E1", "odds": {' + inner + "}}"
    with TestClient(strict_app) as client:
        response = client.post("/v1/forecast", content=body, headers=JSON)
    assert response.status_code == 422
    locs = [e["loc"] for e in response.json()["detail"]]
    assert len(locs) == MAX_DUPLICATES_REPORTED
    assert locs[:3] == [["body", "league"], ["body", "odds", "k0"], ["body", "odds", "k1"]]


def test_the_body_limits_still_hold_with_a_key_given_twice(strict_app: FastAPI) -> None:
    """The cap, the reader's errors and depth, and the 422's safe echo come first or stay."""
    deep = "[" * 40 + "1" + "]" * 40
    cases = {
        # over the cap: 413 from the middleware, before any read
        "cap": ('{"home": "A", "home": "' + "x" * 20_000 + '"}', 413),
        # cut short after a repeated key: the reader's own 422 (json_invalid)
        "malformed": ('{"home": "A", "home": "B", "away": ', 422),
        # nested beyond the reader's ~990 levels: its 400, as before
        "too deep": ('{"home": 1, "home": ' + "[" * 3000 + "]" * 3000 + "}", 400),
        # a repeated value nested deeper than the echo's depth, and non-finite numbers
        "echo": ('{"home": ' + deep + ', "home": NaN, "away": 1e400, "away": 2}', 422),
    }
    with TestClient(strict_app) as client:
        answers = {
            name: client.post("/v1/forecast", content=body, headers=JSON)
            for name, (body, _) in cases.items()
        }
    assert {name: r.status_code for name, r in answers.items()} == {
        name: status for name, (_, status) in cases.items()
    }
    assert answers["malformed"].json()["detail"][0]["type"] == "json_invalid"
    assert answers["echo"].json()["detail"] == [
        {
            "type": "duplicate_key",
            "loc": ["body", "home"],
            "msg": "duplicate key 'home' at body.home: given 2 times in one object; "
            "give each key once",
            "input": TOO_DEEP,
        },
        {
            "type": "duplicate_key",
            "loc": ["body", "away"],
            "msg": "duplicate key 'away' at body.away: given 2 times in one object; "
            "give each key once",
            "input": ["inf", 2],
        },
    ]


# -- 2. a registry error reading a market's decisions or ensemble members ------------------------


def _copy(registry: Registry, tmp_path: Path) -> Registry:
    shutil.copytree(registry.root, tmp_path / "registry")
    return Registry(str(tmp_path / "registry"))


def _unlistable(folder: Path) -> None:
    """``folder`` cannot be listed: a link to itself (ELOOP, root or not; as EACCES for a user
    without the right, or a remote store's error)."""
    shutil.rmtree(folder)
    os.symlink(folder, folder)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("market", ["1x2", "ou25"])
def test_a_decisions_folder_that_cannot_be_listed_fails_no_reload(
    small_registry: Registry,
    tmp_path: Path,
    settings: ServingSettings,
    caplog: pytest.LogCaptureFixture,
    market: str,
) -> None:
    """The error escaped the reload: ``serve`` could not start, whichever market's folder."""
    registry = _copy(small_registry, tmp_path)
    assert registry.latest_decision("football", market) is not None
    _unlistable(tmp_path / "registry" / "football" / market / "decisions")
    service = ChampionService(registry)
    with caplog.at_level("WARNING", logger="marketcast.serving.service"):
        service.reload()
    assert set(service.snapshot().champions) == {"1x2", "ou25"}
    [line] = [x for x in _warnings(caplog) if "decision" in x]
    assert line.startswith(f"football/{market} latest promotion decision not read (none reported)")
    assert "Too many levels of symbolic links" in line
    with TestClient(create_app(settings, service)) as client:
        rows = {row["market"]: row for row in client.get("/v1/models").json()}
    assert rows[market]["last_decision"] is None
    other = "ou25" if market == "1x2" else "1x2"
    assert rows[other]["last_decision"]["challenger"] is not None


def test_a_watcher_reload_keeps_the_decision_it_cannot_read_and_serves_the_new_1x2(
    small_registry: Registry, tmp_path: Path
) -> None:
    """A running worker's watcher failed every reload: a promoted 1X2 champion was never served."""
    registry = _copy(small_registry, tmp_path)
    service = ChampionService(registry)
    service.reload()
    before = service.snapshot()
    _unlistable(tmp_path / "registry" / "football" / "ou25" / "decisions")
    version = registry.latest_version("football", "1x2", "dixon_coles")
    assert version is not None
    registry.set_champion("football", "1x2", "dixon_coles", version, "test: promoted")
    service.reload()  # what the watcher calls
    after = service.snapshot()
    assert after.champions["1x2"].name == "dixon_coles"
    assert after.decisions["ou25"] == before.decisions["ou25"]  # same ou25 champion: kept


def test_a_model_folder_that_cannot_be_listed_leaves_the_members_as_they_were(
    small_registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The ensemble members' search (a model folder listed) escaped the reload the same way."""
    registry = _copy(small_registry, tmp_path)
    service = ChampionService(registry)
    service.reload()
    assert sorted(m.name for m in service.snapshot().members["ou25"]) == ["dixon_coles", "market"]
    _unlistable(tmp_path / "registry" / "football" / "ou25" / "dixon_coles")
    with caplog.at_level("WARNING", logger="marketcast.serving.service"):
        service.reload()  # same champions: the members it served stay
        fresh = ChampionService(registry)
        fresh.reload()  # nothing to keep: the champion alone
    assert sorted(m.name for m in service.snapshot().members["ou25"]) == ["dixon_coles", "market"]
    assert [m.name for m in fresh.snapshot().members["ou25"]] == ["market"]
    assert [x.split(": ")[0] for x in _warnings(caplog) if "members" in x] == [
        "football/ou25 ensemble members not searched (the previous ones kept)",
        "football/ou25 ensemble members not searched (the champion alone)",
    ]


# -- 3. the registry watcher's swaps and the forecast cache ----------------------------------------


def _fixture(home: str) -> dict[str, Any]:
    return {**json.loads(FIXTURE), "home": home, "kickoff": "2025-05-10T14:00:00Z"}


def test_a_watcher_swap_drops_the_old_snapshots_cache_entries(
    small_registry: Registry, tmp_path: Path, settings: ServingSettings
) -> None:
    """They stayed until their time to live or the LRU dropped them (only an admin call cleared
    the cache), holding memory no request could ever hit again."""
    registry = _copy(small_registry, tmp_path)
    service = ChampionService(registry)
    service.reload()
    app = create_app(settings, service)
    cache = app.state.cache
    fixtures = [_fixture("Arsenal"), _fixture("Brentford")]
    with TestClient(app) as client:
        assert client.post("/v1/forecast/batch", json={"fixtures": fixtures}).status_code == 200
        assert len(cache) == 2
        stop = service.follow_registry(0.05)
        try:
            version = registry.latest_version("football", "1x2", "dixon_coles")
            assert version is not None
            registry.set_champion("football", "1x2", "dixon_coles", version, "test: promoted")
            deadline = time.monotonic() + 20.0
            while (len(cache) or service.snapshot().champions["1x2"].name != "dixon_coles") and (
                time.monotonic() < deadline
            ):
                time.sleep(0.05)
        finally:
            stop.set()
        assert service.snapshot().champions["1x2"].name == "dixon_coles"
        assert len(cache) == 0
        assert client.post("/v1/forecast", json=fixtures[0]).json()["cached"] is False
        again = client.post("/v1/forecast", json=fixtures[0]).json()
    assert again["cached"] is True  # stored under the new snapshot
    assert len(cache) == 1


def test_an_answer_of_a_swapped_out_snapshot_is_never_stored(
    settings: ServingSettings, service: FakeService
) -> None:
    """A request that checked the snapshot id, then stored its answer after a swap, left an
    entry no request could hit: the cache asks whether the key is live as it stores."""
    cache = create_app(settings, service).state.cache
    old = service.snapshot_id
    answer = _Answer(b"{}", "market", "v1", "edge")
    cache.put((old, "a"), answer)
    service.reload()
    cache.put((old, "b"), answer)  # the straggler
    cache.put((service.snapshot_id, "a"), answer)
    assert len(cache) == 2
    assert cache.prune() == 1
    assert cache.get((service.snapshot_id, "a")) == answer


def test_an_admin_swap_keeps_the_new_snapshots_entries(
    settings: ServingSettings, service: FakeService, admin_headers: dict[str, str]
) -> None:
    """An admin call that changed the snapshot cleared the whole cache: answers of the new
    snapshot, stored by requests between the swap and the clear, went too."""
    app = create_app(settings, service)
    cache = app.state.cache
    answer = _Answer(b"{}", "market", "v2", "edge")
    swap = service.reload

    def swap_then_answer() -> dict[str, Any]:
        result = swap()
        cache.put((service.snapshot_id, "stored since the swap"), answer)
        return result

    service.reload = swap_then_answer  # type: ignore[method-assign]
    with TestClient(app) as client:
        assert client.post("/v1/forecast", json=_fixture("Arsenal")).status_code == 200
        assert client.post("/v1/admin/reload", headers=admin_headers).status_code == 200
    assert len(cache) == 1
    assert cache.get((service.snapshot_id, "stored since the swap")) == answer


# -- 4. SIGINT to a server started with SIGINT ignored ---------------------------------------------

#: ``marketcast serve`` over the tests' fake service (``create_fake_app``): a registry stand-in
#: with a champion, so nothing is trained.
_SERVE = """
import sys
from marketcast.cli import main
from marketcast.orchestration import commands
from marketcast.serving import default
from tests.api.fake_app import create_fake_app

class Registry:
    def __init__(self, root): self.root = root
    def champion(self, vertical, market): return object()
    def require_root(self): pass

commands.Registry = Registry
default.build_default_app = lambda settings: create_fake_app()
commands.SERVE_WORKER_APP = "tests.api.fake_app:create_fake_app"
sys.exit(main(["serve", "--port", sys.argv[1], "--workers", sys.argv[2]]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigint_stops_a_server_started_with_sigint_ignored_as_ctrl_c_does(workers: int) -> None:
    """``marketcast serve &`` from a script starts with SIGINT ignored: uvicorn's handler stopped
    the server on SIGINT all the same, and ``serve`` then exited 0, as after a clean end."""
    port = _free_port()
    repository = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repository), *sys.path])}
    env.pop("MARKETCAST_REGISTRY", None)
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(port), str(workers)],
        cwd=repository,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=_ignore_sigint,
    )
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("marketcast serve did not become ready in 60 s")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "marketcast: interrupted" in (process.stderr.read().decode() if process.stderr else "")
