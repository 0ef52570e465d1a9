"""A champion that passes its hash check but cannot be rebuilt (an artifact another code version
wrote): said as such, answered 409, left out of a snapshot by name, on both verticals.

A ``KeyError`` from a loader read as an unknown version (404, its message the bare key), and
``serve`` stopped on it; a crypto ``TypeError`` failed the whole crypto reload with a 500; an
over/under champion that failed to load was reported to clients as "no champion".
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import marketcast.serving.service as service_module
from marketcast.registry import Registry
from marketcast.serving.app import create_app
from marketcast.serving.service import ChampionService
from marketcast.serving.settings import ServingSettings
from tests.api.conftest import ADMIN_TOKEN
from tests.api.crypto_setup import Setup
from tests.api.fake_app import FakeService
from tests.api.test_serving_known_limits import _copy

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
BODY = {
    "league": "E0",
    "home": "Arsenal",
    "away": "Chelsea",
    "kickoff": "2030-08-12T14:00:00Z",
    "odds": {"1x2": {"home": 1.8, "draw": 3.9, "away": 4.5}, "ou25": {"over": 1.9, "under": 1.95}},
}


def _register_without(registry: Registry, market: str, key: str) -> str:
    """A version of ``market``'s champion whose model file lacks ``key`` (hashes consistent)."""
    champion = registry.champion("football", market)
    assert champion is not None
    files = registry.load_files("football", market, champion.model_name, champion.version)
    [name] = [n for n in files if n != "feature_state.json" and n.endswith(".json")]
    content = json.loads(files[name])
    content.pop(key)
    files[name] = json.dumps(content).encode()
    manifest = registry.manifest("football", market, champion.model_name, champion.version)
    manifest = manifest.model_copy(update={"version": None, "files": [], "run_id": "other-code"})
    return registry.register("football", market, champion.model_name, files, manifest)


def test_a_1x2_version_that_cannot_be_rebuilt_is_a_409_naming_it(
    small_registry: Registry, tmp_path: Path
) -> None:
    registry = _copy(small_registry, tmp_path)
    service = ChampionService(registry)
    served = service.reload()["snapshot_id"]
    bad = _register_without(registry, "1x2", "base_rates")
    with TestClient(create_app(ServingSettings(admin_token=ADMIN_TOKEN), service)) as client:
        promote = {"market": "1x2", "model_name": "market", "version": bad}
        response = client.post("/v1/admin/promote", json=promote, headers=ADMIN)
        assert response.status_code == 409  # was 404, "promote failed: base_rates"
        assert response.json()["detail"] == (
            f"promote failed: football/1x2 market {bad} cannot be served: KeyError: 'base_rates'"
        )
        registry.set_champion("football", "1x2", "market", bad, "another process")
        response = client.post("/v1/admin/reload", headers=ADMIN)
        assert response.status_code == 409
        assert "cannot be served: KeyError: 'base_rates'" in response.json()["detail"]
        assert client.get("/readyz").json()["snapshot_id"] == served  # the old one serves on


def test_an_over_under_champion_that_cannot_be_rebuilt_is_named_to_clients(
    small_registry: Registry, tmp_path: Path
) -> None:
    registry = _copy(small_registry, tmp_path)
    service = ChampionService(registry)
    service.reload()
    bad = _register_without(registry, "ou25", "base_rates")
    registry.set_champion("football", "ou25", "market", bad, "another process")
    service.reload()
    with TestClient(create_app(ServingSettings(), service)) as client:
        answer = client.post("/v1/forecast", json=BODY).json()
        why = f"its market {bad} could not be loaded"
        assert answer["markets_not_served"] == {"ou25": why}  # was "no champion for the market"
        [row] = [r for r in client.get("/v1/do-not-trade").json() if r["market"] == "ou25"]
        assert row["reason"] == why  # was "no champion registered"


def test_a_crypto_horizon_that_cannot_be_rebuilt_is_left_out_the_others_reload(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup = Setup(tmp_path)
    service = setup.service()
    registry = setup.registry
    record = registry.champion("crypto", "1d")
    assert record is not None
    files = registry.load_files("crypto", "1d", record.model_name, record.version)
    [name] = [n for n in files if n.endswith(".json") and b'"groups"' in files[n]]
    spec = json.loads(files[name])
    spec["groups"] = 2  # another code version's shape: a TypeError when rebuilt
    files[name] = json.dumps(spec).encode()
    manifest = registry.manifest("crypto", "1d", record.model_name, record.version)
    manifest = manifest.model_copy(update={"version": None, "files": []})
    bad = registry.register("crypto", "1d", record.model_name, files, manifest)
    registry.set_champion("crypto", "1d", record.model_name, bad, "another process")
    app = create_app(ServingSettings(admin_token=ADMIN_TOKEN), FakeService(), crypto=service)
    with (
        TestClient(app, raise_server_exceptions=False) as client,
        caplog.at_level("WARNING", logger="marketcast.serving.crypto"),
    ):
        response = client.post("/v1/admin/crypto/reload", headers=ADMIN)
    assert response.status_code == 200  # was 500, every horizon held back
    assert "1d" not in response.json()["champions"]
    assert response.json()["champions"]  # the other horizons reloaded
    assert "crypto/1d left out of this snapshot: TypeError" in caplog.text


def test_an_ensemble_member_an_outage_left_out_is_loaded_again_by_the_watcher(
    small_registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was recorded as loaded: the blend went on without it until the champion changed,
    and with several workers until each was restarted."""
    registry = _copy(small_registry, tmp_path)
    outage = {"on": True}
    real = service_module.load_servable

    def flaky(registry: Registry, market: str, name: str, version: str) -> Any:
        if outage["on"] and name == "dixon_coles":
            raise OSError(5, "NFS hiccup")
        return real(registry, market, name, version)

    monkeypatch.setattr(service_module, "load_servable", flaky)
    service = ChampionService(registry)
    service.reload()
    assert [m.name for m in service.snapshot().members["1x2"]] == ["market"]
    stop = service.follow_registry(poll_s=0.05)
    try:
        outage["on"] = False
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if len(service.snapshot().members["1x2"]) == 2:
                break
            time.sleep(0.05)
    finally:
        stop.set()
    assert sorted(m.name for m in service.snapshot().members["1x2"]) == ["dixon_coles", "market"]
