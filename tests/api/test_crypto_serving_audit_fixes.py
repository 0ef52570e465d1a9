"""The crypto serving audit's defects: a long gap, error locations, metrics, bad prints, window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from marketcast.registry.store import RegistryError
from marketcast.serving.app import create_app
from marketcast.serving.crypto import CryptoService, CryptoSettings
from marketcast.serving.settings import ServingSettings, SettingsEnvError
from tests.api.crypto_setup import PAIRS
from tests.api.fake_app import FakeService

TOKEN = "crypto-admin-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_HOUR = pd.Timedelta(hours=1)


def fresh_service(
    shared: CryptoService, now: pd.Timestamp | None = None, **settings: Any
) -> CryptoService:
    """A service over the shared fixture's registry and candle files, with its own store and
    clock (by default the suite's: the last bundled bar + 2 h 05 min)."""
    latest = shared.snapshot().store.latest_open
    clock_at = (
        now if now is not None else latest + pd.Timedelta(hours=2, minutes=5)
    ).to_pydatetime()
    config = CryptoSettings(candle_paths=shared.settings.candle_paths, **settings)
    service = CryptoService(shared.registry, config, clock=lambda: clock_at)
    service.reload()
    return service


def client_of(service: CryptoService, **settings: Any) -> TestClient:
    app = create_app(ServingSettings(admin_token=TOKEN, **settings), FakeService(), crypto=service)
    return TestClient(app, raise_server_exceptions=False)


def bar_after(service: CryptoService, pair: str, hours: int = 1, **change: Any) -> dict[str, Any]:
    """A flat bar of ``pair`` ``hours`` after its latest stored bar, at its latest close."""
    last = service.snapshot().store.candles.query("pair == @pair").iloc[-1]
    close = float(last["close"])
    bar = {
        "pair": pair,
        "open_time_utc": (last["open_time_utc"] + hours * _HOUR).isoformat(),
        "open": close,
        "high": close,
        "low": close,
        "close": close,
        "volume": 1.0,
    }
    return {**bar, **change}


def metric(client: TestClient, line_start: str) -> float:
    """The value of the exposition line starting with ``line_start`` (0 when absent)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# -- 1. a push after a long gap ------------------------------------------------------------------
def test_a_push_after_a_long_gap_keeps_every_other_pair_served_as_stale(
    crypto_service: CryptoService, tmp_path: Path
) -> None:
    """A BTCUSDT bar 200 days on trimmed every other pair out of the store: they left the status,
    became unknown_pair for signals and pushes, and the journal replayed that after a restart."""
    latest = crypto_service.snapshot().store.latest_open
    far = latest + pd.Timedelta(days=200)
    now = far + pd.Timedelta(hours=1, minutes=5)
    journal = str(tmp_path / "feed" / "bars.jsonl")
    service = fresh_service(crypto_service, now, journal_path=journal)
    with client_of(service) as client:
        btc = bar_after(service, "BTCUSDT", open_time_utc=far.isoformat())
        response = client.post("/v1/crypto/candles", json={"bars": [btc]}, headers=AUTH)
        assert response.status_code == 200, response.text
        assert client.get("/v1/crypto/status").json()["pairs"] == sorted(PAIRS)

        eth = client.get("/v1/crypto/signals/ETHUSDT", params={"horizon": "1h"})
        assert eth.status_code == 200, eth.text
        signal = eth.json()["signals"][0]
        assert (signal["stale"], signal["tradable"], signal["position"]) == (True, False, 0)
        assert pd.Timestamp(signal["bar_open_utc"]) == latest
        stale = {r["market"] for r in client.get("/v1/crypto/do-not-trade").json()}
        assert {"ETHUSDT", "XRPUSDT", "DOGEUSDT"} <= stale

        # the feed catches ETHUSDT up from where it stopped
        next_eth = bar_after(service, "ETHUSDT")
        response = client.post("/v1/crypto/candles", json={"bars": [next_eth]}, headers=AUTH)
        assert response.status_code == 200, response.text

    restarted = fresh_service(crypto_service, now, journal_path=journal)
    held = restarted.snapshot().store.last_open_by_pair()
    assert sorted(held) == sorted(PAIRS)
    assert held["BTCUSDT"] == far
    assert held["ETHUSDT"] == latest + _HOUR
    assert restarted.status()["pairs"] == sorted(PAIRS)


# -- 2. the horizon's location on the pair route -------------------------------------------------
def test_a_bad_horizon_on_the_pair_route_is_located_in_the_query(
    crypto_service: CryptoService,
) -> None:
    with client_of(crypto_service) as client:
        response = client.get("/v1/crypto/signals/BTCUSDT", params={"horizon": "2h"})
        assert response.status_code == 422
        detail = response.json()["detail"][0]
        assert (detail["type"], detail["loc"]) == ("unknown_horizon", ["query", "horizon"])
        pair = client.get("/v1/crypto/signals/NOPEUSDT").json()["detail"][0]
        assert (pair["type"], pair["loc"]) == ("unknown_pair", ["path", "pair"])


# -- 3. a 413 on a crypto push is counted under its route ----------------------------------------
@pytest.mark.parametrize("path", ["/v1/crypto/candles", "/v1/crypto/funding"])
def test_a_413_on_a_crypto_push_is_counted_under_its_route(
    crypto_service: CryptoService, path: str
) -> None:
    with client_of(crypto_service, max_body_bytes=2048) as client:
        headers = {**AUTH, "content-type": "application/json"}
        response = client.post(path, content=b"x" * 4096, headers=headers)
        assert response.status_code == 413
        counted = f'marketcast_http_errors_total{{route="{path}",status="413"}}'
        assert metric(client, counted) == 1.0
        assert metric(client, 'marketcast_http_errors_total{route="unmatched"') == 0.0


# -- 4. the crypto reload goes through the admin wrapper -----------------------------------------
def test_the_crypto_reload_is_counted_and_a_registry_error_is_answered(
    crypto_service: CryptoService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = fresh_service(crypto_service)
    with client_of(service) as client:
        assert client.post("/v1/admin/crypto/reload", headers=AUTH).status_code == 200
        success = 'marketcast_reloads_total{action="crypto_reload",outcome="success"}'
        assert metric(client, success) == 1.0

        def refuse() -> Any:
            raise RegistryError("champion pointer crypto/1h moved meanwhile")

        monkeypatch.setattr(service, "champion_fingerprint", refuse)
        response = client.post("/v1/admin/crypto/reload", headers=AUTH)
        assert response.status_code == 409
        assert response.json()["detail"] == (
            "crypto_reload failed: champion pointer crypto/1h moved meanwhile"
        )
        failure = 'marketcast_reloads_total{action="crypto_reload",outcome="failure"}'
        assert metric(client, failure) == 1.0


# -- 5. pushed bars pass the loader's bad-print rule and a quote volume bound --------------------
def flat_at(price: float) -> dict[str, float]:
    return {"open": price, "high": price, "low": price, "close": price}


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"quote_volume": 1e307}, "quote_volume", "quote_volume_out_of_range"),
        ({"volume": 0.0, "quote_volume": 5.0}, "quote_volume", "quote_volume_out_of_range"),
        (flat_at(1e-300), "open", "price_spike"),
        (flat_at(1e300), "open", "price_spike"),
        (flat_at(5e-324), "open", "price_spike"),
    ],
)
def test_a_bad_print_is_refused_naming_bar_field_and_rule(
    crypto_service: CryptoService, change: dict[str, float], field: str, kind: str
) -> None:
    service = fresh_service(crypto_service)
    before = service.snapshot_id
    bars = [bar_after(service, pair) for pair in PAIRS]
    btc = PAIRS.index("BTCUSDT")
    bars[btc] = {**bars[btc], **change}
    with client_of(service) as client:
        response = client.post("/v1/crypto/candles", json={"bars": bars}, headers=AUTH)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert (detail["type"], detail["loc"]) == (kind, ["body", "bars", btc, field])
        assert kind in detail["msg"]
        assert len(detail["msg"]) < 400
    assert service.snapshot_id == before  # nothing of the push is kept


def test_a_spike_that_the_next_pushed_bar_reverts_is_a_spike_outlier(
    crypto_service: CryptoService,
) -> None:
    """The loader's drop_spikes on the stored tail and the push: a close 50% up that the next
    bar reverts without opening at it is a bad print; the same close confirmed is kept."""
    latest = crypto_service.snapshot().store.latest_open
    service = fresh_service(crypto_service, latest + pd.Timedelta(hours=3, minutes=5))
    start = bar_after(service, "BTCUSDT")
    close = start["close"]
    spike = {**start, "high": close * 1.5, "close": close * 1.5}
    revert = bar_after(service, "BTCUSDT", hours=2)
    before = service.snapshot_id
    with client_of(service) as client:
        response = client.post("/v1/crypto/candles", json={"bars": [spike, revert]}, headers=AUTH)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert (detail["type"], detail["loc"]) == ("spike_outlier", ["body", "bars", 0, "close"])
        assert service.snapshot_id == before
        confirmed = {**revert, "open": close * 1.5, "high": close * 1.5}
        response = client.post(
            "/v1/crypto/candles", json={"bars": [spike, confirmed]}, headers=AUTH
        )
        assert response.status_code == 200, response.text


# -- 6. a window too short for the champions -----------------------------------------------------
def test_a_window_too_short_for_the_champions_is_a_settings_error(
    crypto_service: CryptoService,
) -> None:
    with pytest.raises(SettingsEnvError) as raised:
        fresh_service(crypto_service, window_bars=500)
    message = str(raised.value)
    assert message.startswith("MARKETCAST_CRYPTO_WINDOW_BARS='500': must be >= 2500")
    assert message.endswith("(field window_bars)")
