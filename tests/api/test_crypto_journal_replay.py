"""The crypto journal replays what the push path would take: a failed append leaves no part of
the push behind (a 503 the feed retries), funding events pass the clock and order rules, records
keep journal order on every worker, and a renamed or unserved pair's records are mapped or said."""

from __future__ import annotations

import errno
import json
import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketcast.serving import crypto as crypto_module
from marketcast.serving.crypto import CryptoService, CryptoSettings
from marketcast.serving.crypto_schemas import CandleIn, FundingIn
from tests.api.crypto_setup import Setup
from tests.api.test_crypto_serving import AUTH, make_client, next_bars


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("crypto_journal"))


_HOUR = pd.Timedelta(hours=1)


def _service(setup: Setup, journal: Path, **settings: Any) -> CryptoService:
    latest = setup.prepared.data.candles["open_time_utc"].max().to_pydatetime()
    config = CryptoSettings(
        candle_paths=(str(setup.candle_dir),), journal_path=str(journal), **settings
    )
    service = CryptoService(setup.registry, config, clock=lambda: latest + timedelta(hours=3))
    service.reload()
    return service


def _line(kind: str, **record: Any) -> str:
    """A journal line as the service writes one: a bar bare, a funding event wrapped."""
    return json.dumps(record if kind == "bar" else {kind: record}) + "\n"


def test_a_push_the_journal_could_not_take_leaves_nothing_and_its_retry_is_taken(
    setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lines written before a full disk were replayed by a restart, and the feed's retry
    of the push answered 500 was refused as a duplicate."""
    journal = tmp_path / "bars.jsonl"
    service = _service(setup, journal)
    bars = next_bars(service.snapshot().store.candles, 0.001)
    before = service.snapshot().store.last_open_by_pair()
    sync = os.fsync
    failures = iter([OSError(errno.ENOSPC, "No space left on device")])

    def full_disk(fd: int) -> None:  # the lines are written; making them durable fails once
        failure = next(failures, None)
        if failure is not None:
            raise failure
        sync(fd)

    monkeypatch.setattr(crypto_module.os, "fsync", full_disk)
    with make_client(service) as client:
        answer = client.post("/v1/crypto/candles", json={"bars": bars}, headers=AUTH)
        assert answer.status_code == 503
        assert answer.headers["Retry-After"] == "5"
        assert "nothing of the push was kept" in answer.json()["detail"]
        assert journal.stat().st_size == 0
        assert _service(setup, journal).snapshot().store.last_open_by_pair() == before
        retry = client.post("/v1/crypto/candles", json={"bars": bars}, headers=AUTH)
    assert retry.status_code == 200
    restarted = _service(setup, journal).snapshot().store.last_open_by_pair()
    assert restarted == service.snapshot().store.last_open_by_pair() != before


def test_replayed_funding_passes_the_clock_and_order_rules(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An event dated 2199 was restored and refused every real one after it; two events of a
    pair at one second were both kept by a worker that read them together."""
    journal = tmp_path / "bars.jsonl"
    events = [
        ("BTCUSDT", "2199-01-01T00:00:00Z", 1e-4),
        ("ETHUSDT", "2023-06-30T16:00:00Z", 1e-4),
        ("ETHUSDT", "2023-06-30T16:00:00Z", 2e-4),
        ("ETHUSDT", "2023-06-30T08:00:00Z", 3e-4),
    ]
    journal.write_text(
        "".join(_line("funding", pair=p, funding_time_utc=t, funding_rate=r) for p, t, r in events)
    )
    with caplog.at_level(logging.WARNING, logger=crypto_module.__name__):
        service = _service(setup, journal)
    funding = service.snapshot().store.funding
    assert funding["pair"].tolist() == ["ETHUSDT"]
    assert funding["funding_rate"].tolist() == [1e-4]
    assert "BTCUSDT funding event at 2199-01-01" in caplog.text
    assert caplog.text.count("not after the 2023-06-30 16:00:00+00:00 before it") == 2
    real = {"pair": "BTCUSDT", "funding_time_utc": "2023-07-01T00:00:00Z", "funding_rate": 1e-4}
    with make_client(service) as client:
        answer = client.post("/v1/crypto/funding", json={"rates": [real]}, headers=AUTH)
    assert answer.status_code == 200


def test_replayed_bars_keep_journal_order_on_every_worker(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand-written [T+2, T+1] read in one batch kept both; a worker that read them in two
    batches kept one, and the workers' stores differed."""
    journal = tmp_path / "bars.jsonl"
    journal.touch()
    follower = _service(setup, journal)
    store = follower.snapshot().store
    [bar] = [b for b in next_bars(store.candles, 0.001) if b["pair"] == "BTCUSDT"]
    later = {**bar, "open_time_utc": (pd.Timestamp(bar["open_time_utc"]) + _HOUR).isoformat()}
    for record in (later, bar):  # the follower reads them one at a time
        with journal.open("a") as handle:
            handle.write(_line("bar", **record))
        follower._follow_journal()
    with caplog.at_level(logging.WARNING, logger=crypto_module.__name__):
        restarted = _service(setup, journal).snapshot().store  # reads both at once
    assert restarted.content_sha256 == follower.snapshot().store.content_sha256
    assert restarted.last_open_by_pair()["BTCUSDT"] == pd.Timestamp(later["open_time_utc"])
    assert f"skipped the BTCUSDT bar at {pd.Timestamp(bar['open_time_utc'])}: not after" in (
        caplog.text
    )


def test_a_renamed_pairs_journaled_bars_continue_the_new_name(setup: Setup, tmp_path: Path) -> None:
    """Bars pushed under the old name were dropped at a restart with the rename: the new
    pair's series stopped at the start-up files' last bar, the pushes lost."""
    journal = tmp_path / "bars.jsonl"
    pushing = _service(setup, journal)
    bars = next_bars(pushing.snapshot().store.candles, 0.001)
    pushing.push_candles([CandleIn.model_validate(b) for b in bars])
    [xrp] = [b for b in bars if b["pair"] == "XRPUSDT"]
    rate = {"pair": "XRPUSDT", "funding_time_utc": xrp["open_time_utc"], "funding_rate": 1e-4}
    pushing.push_funding([FundingIn.model_validate(rate)])
    renamed = _service(
        setup, journal, pair_renames={"XRPUSDT": {"to": "XRPNEWUSDT", "new_per_old": 10.0}}
    )
    candles = renamed.snapshot().store.candles
    last = candles.loc[candles["pair"] == "XRPNEWUSDT"].iloc[-1]
    assert last["open_time_utc"] == pd.Timestamp(xrp["open_time_utc"])
    assert last["close"] == pytest.approx(xrp["close"] / 10.0)
    assert last["volume"] == pytest.approx(xrp["volume"] * 10.0)
    funding = renamed.snapshot().store.funding  # a rate per unit of notional: as pushed
    assert funding.loc[funding["pair"] == "XRPNEWUSDT", "funding_rate"].tolist() == [1e-4]


def test_records_of_a_pair_not_served_are_left_out_with_a_warning(
    setup: Setup, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = tmp_path / "bars.jsonl"
    pushing = _service(setup, journal)
    pushing.push_candles(
        [CandleIn.model_validate(b) for b in next_bars(pushing.snapshot().store.candles, 0.001)]
    )
    with caplog.at_level(logging.WARNING, logger=crypto_module.__name__):
        _service(setup, journal, pairs=("BTCUSDT", "ETHUSDT"))
    assert "1 records of XRPUSDT left out: this server does not serve that pair" in caplog.text
    assert "1 records of DOGEUSDT left out" in caplog.text
