"""Hot reload under load: no failed request, and every answer names a version that was served."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from marketcast.serving.schemas import FixtureIn, ForecastOut

N_WORKERS = 8
REQUESTS_PER_WORKER = 120


def test_forecasts_stay_whole_while_reloading(
    client: TestClient, admin_headers: dict[str, str], fixture_body: dict[str, Any]
) -> None:
    service = client.app.state.service
    # a few distinct fixtures so both cache hits and misses happen during the swaps
    bodies = [{**fixture_body, "home": f"Team {i}"} for i in range(5)]
    done = threading.Event()
    reload_statuses: list[int] = []

    def reloader() -> None:
        while not done.is_set():
            reload_statuses.append(
                client.post("/v1/admin/reload", headers=admin_headers).status_code
            )

    def worker(worker_id: int) -> list[tuple[int, str | None, bool]]:
        seen = []
        for i in range(REQUESTS_PER_WORKER):
            response = client.post("/v1/forecast", json=bodies[(worker_id + i) % len(bodies)])
            out = response.json() if response.status_code == 200 else {}
            seen.append(
                (response.status_code, out.get("model", {}).get("version"), out.get("cached"))
            )
        return seen

    reload_thread = threading.Thread(target=reloader)
    reload_thread.start()
    try:
        with ThreadPoolExecutor(N_WORKERS) as pool:
            results = [row for rows in pool.map(worker, range(N_WORKERS)) for row in rows]
    finally:
        done.set()
        reload_thread.join(timeout=10)

    statuses = [status for status, _, _ in results]
    versions = {version for _, version, _ in results}
    assert len(results) == N_WORKERS * REQUESTS_PER_WORKER
    assert statuses.count(200) == len(results), f"non-200 answers: {set(statuses)}"
    assert None not in versions
    assert versions <= service.versions_served
    assert len(reload_statuses) >= 5
    assert set(reload_statuses) == {200}
    assert len(versions) >= 2, "reloads did not overlap the forecasts"
    assert any(cached for _, _, cached in results)


def test_an_answer_computed_across_a_swap_is_not_cached(
    client: TestClient, fixture_body: dict[str, Any]
) -> None:
    service = client.app.state.service
    original = service.forecast
    calls = {"n": 0}

    def forecast_then_swap(fixtures: Sequence[FixtureIn]) -> list[ForecastOut]:
        answer = original(fixtures)  # answered from snapshot 1 ...
        calls["n"] += 1
        if calls["n"] == 1:
            service.reload()  # ... while a reload lands before the call returns
        return answer

    service.forecast = forecast_then_swap
    first = client.post("/v1/forecast", json=fixture_body).json()
    assert len(client.app.state.cache) == 0  # the answer straddled a swap: not stored
    second = client.post("/v1/forecast", json=fixture_body).json()
    assert first["model"]["version"] == "v1"
    assert second["model"]["version"] == "v2"
    assert second["cached"] is False
    third = client.post("/v1/forecast", json=fixture_body).json()
    assert (third["model"]["version"], third["cached"]) == ("v2", True)
