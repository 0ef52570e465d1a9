"""The serving benchmark end to end: a real uvicorn server on loopback over the fake service."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.bench_module import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("serving")


def test_parse_head(bench: ModuleType) -> None:
    head = b"HTTP/1.1 413 Too Large\r\ncontent-length: 12\r\nconnection: close\r\n\r\n"
    assert bench._parse_head(head) == (413, 12, True)
    with pytest.raises(ValueError, match="Content-Length"):
        bench._parse_head(b"HTTP/1.1 200 OK\r\n\r\n")


def test_variants_are_distinct(bench: ModuleType) -> None:
    base = bench.base_fixtures(3, synthetic=True)
    out = bench.variants(base, 0, 10)
    keys = {json.dumps(f, sort_keys=True) for f in out}
    assert len(keys) == 10
    assert not keys & {json.dumps(f, sort_keys=True) for f in base}
    # round 1 raises the draw, round 3 the home price again, by 0.02
    assert out[3]["odds"]["1x2"]["draw"] == pytest.approx(base[0]["odds"]["1x2"]["draw"] + 0.01)
    assert out[3]["odds"]["1x2"]["home"] == base[0]["odds"]["1x2"]["home"]
    assert out[9]["odds"]["1x2"]["home"] == pytest.approx(base[0]["odds"]["1x2"]["home"] + 0.02)


def test_variants_of_a_heavy_favourite_stay_valid_odds(bench: ModuleType) -> None:
    """Raising only the home price by up to 0.43 over the batch rotation took a 1.10
    favourite's booksum below the server's 0.8: 60 of 3,000 batches were refused."""
    favourite = {
        "league": "E0",
        "home": "Home",
        "away": "Away",
        "kickoff": "2026-12-01T15:00:00Z",
        "odds": {"1x2": {"home": 1.10, "draw": 9.0, "away": 21.0}},
    }
    out = bench.variants([favourite], 0, 44_000 // 1_000)  # as many rounds as a default run
    booksums = [sum(1 / price for price in f["odds"]["1x2"].values()) for f in out]
    assert min(booksums) > 0.95
    assert len({json.dumps(f, sort_keys=True) for f in out}) == len(out)


def test_bench_runs_against_a_real_server(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MARKETCAST_CACHE_TTL_S", "0.5")  # the server's, and the bench's wait
    out = tmp_path / "serving.json"
    report = bench.main(
        [
            "--app=tests.api.fake_app:create_fake_app",
            "--synthetic",
            "--base-fixtures=20",
            "--rate=100",
            "--batch-rate=10",
            "--batch-size=8",
            "--duration=1",
            "--warmup=0.3",
            "--reload-every=0.25",
            "--distinct=50",
            "--distinct-batches=5",
            f"--out={out}",
        ]
    )
    assert json.loads(out.read_text()) == report
    # the distinct bodies are variants of fewer base fixtures: the meta says how many
    meta = report["meta"]
    assert meta["distinct_fixtures"] == 50
    assert meta["base_fixtures_requested"] == 20
    assert meta["base_fixtures"] == 20
    assert meta["base_fixtures_synthetic"] is True
    assert meta["variants_per_base_fixture"] == 3
    phases = report["phases"]
    assert set(phases) == {"single", "batch", "reload"}
    for phase in phases.values():
        assert phase["errors"] == 0
        assert phase["ok"] == phase["requests"]
        assert phase["all_name_a_version"] is True
        assert phase["latency"]["p50_ms"] > 0
    assert phases["single"]["requests"] == 100
    assert phases["batch"]["forecasts_per_s"] > phases["batch"]["throughput_per_s"]
    reload_phase = phases["reload"]
    # after the batch phase (1 s, over the 0.5 s cache lifetime) no wait was needed
    assert reload_phase["waited_for_cache_s"] == 0.0
    assert reload_phase["reloads"] >= 2
    assert reload_phase["reloads_failed"] == 0
    assert len(reload_phase["versions_seen"]) >= 2


def test_a_reload_phase_right_after_singles_waits_out_the_cache(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its bodies were sent by the single phase a moment before: 17% of a 1-worker reload
    phase were cache hits, read as the cost of forecasting under reloads."""
    monkeypatch.setenv("MARKETCAST_CACHE_TTL_S", "1.5")
    report = bench.main(
        [
            "--app=tests.api.fake_app:create_fake_app",
            "--synthetic",
            "--base-fixtures=10",
            "--rate=50",
            "--duration=0.5",
            "--warmup=0.1",
            "--reload-every=0.2",
            "--distinct=20",
            "--phases=single,reload",
            f"--out={tmp_path / 'serving.json'}",
        ]
    )
    assert 0.9 < report["phases"]["reload"]["waited_for_cache_s"] <= 1.5
