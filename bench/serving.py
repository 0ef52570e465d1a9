"""Serving benchmark: the real HTTP server on loopback under a fixed open-loop request rate.

Starts the server as a subprocess (``python -m uvicorn --factory APP`` on 127.0.0.1 and a free
port, or ``--command``), waits for ``/readyz``, then drives it from this process with an asyncio
load generator that sends requests on a fixed schedule (open loop: latency is measured from the
scheduled send time, so a slow server cannot slow the generator down and hide its own queueing).

Phases (each ``--duration`` seconds):

1. ``single``: ``POST /v1/forecast`` at ``--rate`` per second, rotating over ``--distinct``
   fixtures (real teams and pre-match odds from the bundled data, odds nudged per variant so the
   cache answers only repeats); latency is also split by cache hit / miss.
2. ``batch``: ``POST /v1/forecast/batch`` with ``--batch-size`` fixtures at ``--batch-rate`` per s.
3. ``reload``: the single-forecast load while ``POST /v1/admin/reload`` runs every
   ``--reload-every`` seconds; every response must be a 200 naming a model version.

Writes ``bench/results/serving.json`` and prints a markdown table. Loopback only; bounded in
requests and time. Example (the tests' fake service)::

    PYTHONPATH=src python bench/serving.py --app tests.api.fake_app:create_fake_app --duration 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import secrets
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

try:
    import orjson

    def _loads(data: bytes) -> Any:
        return orjson.loads(data)

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is optional

    def _loads(data: bytes) -> Any:
        return json.loads(data)

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()


ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serving.json"
DEFAULT_APP = "marketcast.serving.default:create_default_app"
HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 10.0


# ----------------------------------------------------------------------------------------------
# server process


def free_port() -> int:
    """Return a TCP port that was free on the loopback interface a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def server_command(app: str, command: str | None, port: int) -> list[str]:
    """The server's argv: ``--command`` with ``{host}``/``{port}``/``{app}`` filled, or uvicorn."""
    if command:
        return shlex.split(command.format(host=HOST, port=port, app=app))
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def start_server(argv: list[str], port: int, admin_token: str) -> subprocess.Popen[bytes]:
    """Start the server with the admin token and loopback address in its environment."""
    env = dict(os.environ)
    python_path = [str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in python_path if p)
    env["MARKETCAST_ADMIN_TOKEN"] = admin_token
    env["MARKETCAST_HOST"] = HOST
    env["MARKETCAST_PORT"] = str(port)
    return subprocess.Popen(argv, cwd=ROOT, env=env)


def wait_ready(process: subprocess.Popen[bytes], base_url: str, timeout_s: float) -> float:
    """Poll ``/readyz`` until 200; return the seconds it took. Fails if the server exits."""
    started = time.perf_counter()
    with httpx.Client(base_url=base_url, timeout=2.0) as client:
        while time.perf_counter() - started < timeout_s:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with code {process.returncode} before ready")
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/readyz").status_code == 200:
                    return time.perf_counter() - started
            time.sleep(0.1)
    raise TimeoutError(f"server not ready after {timeout_s:.0f} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after 10 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process and its live descendants (Linux ``/proc``).

    ``uvicorn --workers N`` answers from child processes: the parent alone idles, so the
    whole tree is summed. ``None`` where ``/proc`` is not available.
    """
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, CPU seconds)
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone since the listing
        # after the name: state, ppid, ... utime (14th field overall), stime (15th)
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks_per_s)
    if pid not in stats:
        return None
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        total += stats[current][1]
        frontier.extend(child for child, (parent, _) in stats.items() if parent == current)
    return total


# ----------------------------------------------------------------------------------------------
# fixtures


def base_fixtures(max_fixtures: int, synthetic: bool) -> list[dict[str, Any]]:
    """Real fixtures (teams and average pre-match odds) of the latest bundled season per league.

    With ``synthetic`` (or when the bundled data cannot be read) made-up teams in E0 and D1.
    """
    return load_base_fixtures(max_fixtures, synthetic)[0]


def load_base_fixtures(max_fixtures: int, synthetic: bool) -> tuple[list[dict[str, Any]], bool]:
    """:func:`base_fixtures`, and whether they are the made-up ones (asked for, or fallen back
    to when the bundled data cannot be read)."""
    kickoff = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    kickoff_text = kickoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not synthetic:
        try:
            return _bundled_fixtures(max_fixtures, kickoff_text), False
        except Exception as exc:
            print(f"bundled data unavailable ({exc}); using synthetic fixtures", file=sys.stderr)
    return _synthetic_fixtures(max_fixtures, kickoff_text), True


def _synthetic_fixtures(max_fixtures: int, kickoff_text: str) -> list[dict[str, Any]]:
    return [
        {
            "league": ("E0", "D1")[i % 2],
            "home": f"Home {i}",
            "away": f"Away {i}",
            "kickoff": kickoff_text,
            "odds": {"1x2": {"home": 2.1, "draw": 3.4, "away": 3.6}},
        }
        for i in range(max_fixtures)
    ]


def _bundled_fixtures(max_fixtures: int, kickoff_text: str) -> list[dict[str, Any]]:
    import numpy as np

    from marketcast.datasets.football_data import load_football, odds_matrix

    data = load_football(None)
    one_x_two, _ = odds_matrix(data, "1x2", "prematch", "avg")
    over_under, _ = odds_matrix(data, "ou25", "prematch", "avg")
    handicap, ah_line = odds_matrix(data, "ah", "prematch", "avg")
    matches = data.matches
    latest = matches.groupby("league")["season"].transform("max")
    keep = np.flatnonzero(
        (matches["season"] == latest).to_numpy() & np.isfinite(one_x_two).all(axis=1)
    )
    fixtures = []
    for row in keep[::-1][:max_fixtures]:
        outcomes = ("home", "draw", "away")
        odds: dict[str, Any] = {"1x2": dict(zip(outcomes, one_x_two[row], strict=True))}
        if np.isfinite(over_under[row, :2]).all():
            odds["ou25"] = {"over": over_under[row, 0], "under": over_under[row, 1]}
        line = ah_line[row]
        if np.isfinite(handicap[row, :2]).all() and np.isfinite(line) and abs(line) <= 10:
            odds["ah"] = {"line": line, "home": handicap[row, 0], "away": handicap[row, 1]}
        fixtures.append(
            {
                "league": str(matches.at[row, "league"]),
                "home": str(matches.at[row, "home_team"]),
                "away": str(matches.at[row, "away_team"]),
                "kickoff": kickoff_text,
                "odds": _round_odds(odds),
            }
        )
    return fixtures


def _round_odds(odds: dict[str, Any]) -> dict[str, Any]:
    return {market: {k: round(float(v), 2) for k, v in q.items()} for market, q in odds.items()}


#: The outcome whose 1X2 price variant ``k`` of a base fixture nudges, in turn
_NUDGED = ("home", "draw", "away")


def variants(base: Sequence[dict[str, Any]], start: int, stop: int) -> list[dict[str, Any]]:
    """Variants ``start..stop-1``: variant ``v`` is base ``v % len(base)`` with one 1X2 price
    raised: round ``k = v // len(base)`` raises the home, draw, away price in turn, by ``0.01 *
    (1 + k // 3)``, so no two variants (nor a variant and a base fixture) share a cache key.

    Raising the home price alone by up to 0.43 (the rule until 2026-11-24, over the batch
    rotation's 44 rounds) took a heavy favourite's booksum below the server's 0.8 bound: 60 of
    3,000 batches were refused (HTTP 422). Spread over the three prices the largest raise is
    0.15, and the booksum of a 1.10 favourite drops by at most 0.11.
    """
    out = []
    for v in range(start, stop):
        fixture = base[v % len(base)]
        k = v // len(base)
        one_x_two = dict(fixture["odds"]["1x2"])
        nudged = _NUDGED[k % 3]
        one_x_two[nudged] = round(one_x_two[nudged] + 0.01 * (1 + k // 3), 2)
        out.append({**fixture, "odds": {**fixture["odds"], "1x2": one_x_two}})
    return out


def usable_fixtures(base_url: str, fixtures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the fixtures the server forecasts (known league and teams), checked in batches."""
    kept: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, timeout=60.0) as client:
        for start in range(0, len(fixtures), 256):
            chunk = fixtures[start : start + 256]
            if client.post("/v1/forecast/batch", json={"fixtures": chunk}).status_code == 200:
                kept.extend(chunk)
                continue
            for fixture in chunk:
                if client.post("/v1/forecast", json=fixture).status_code == 200:
                    kept.append(fixture)
    return kept


# ----------------------------------------------------------------------------------------------
# HTTP/1.1 keep-alive client on raw asyncio streams (cheaper per request than httpx)


class RawConnectionPool:
    """A fixed pool of keep-alive HTTP/1.1 connections; each request takes one connection."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port, self.size = host, port, size
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = (
            asyncio.Queue()
        )

    async def open(self) -> None:
        for _ in range(self.size):
            self._idle.put_nowait(None)  # connect lazily

    async def close(self) -> None:
        while not self._idle.empty():
            conn = self._idle.get_nowait()
            if conn is not None:
                conn[1].close()

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        conn = await self._idle.get()
        try:
            if conn is None:
                conn = await asyncio.open_connection(self.host, self.port)
            reader, writer = conn
            lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
            for name, value in (headers or {}).items():
                lines.append(f"{name}: {value}")
            if body is not None:
                lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            payload = await reader.readexactly(length)
            if close:
                writer.close()
                conn = None
            return status, payload
        except BaseException:
            if conn is not None:
                conn[1].close()
            conn = None
            raise
        finally:
            self._idle.put_nowait(conn)


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length, close = None, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            close = True
        elif name == "transfer-encoding":
            raise ValueError("chunked responses are not supported by the raw client")
    if length is None:
        raise ValueError("response without Content-Length")
    return status, length, close


class HttpxPool:
    """The same interface over ``httpx.AsyncClient`` with a bounded connection pool."""

    def __init__(self, host: str, port: int, size: int) -> None:
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}", limits=limits, timeout=REQUEST_TIMEOUT_S
        )

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        response = await self._client.request(method, path, content=body, headers=all_headers)
        return response.status_code, response.content


Pool = RawConnectionPool | HttpxPool


# ----------------------------------------------------------------------------------------------
# open-loop load


@dataclass
class Sample:
    """One request: scheduled and finish times (loop clock, s), outcome and cache hits."""

    scheduled_s: float
    done_s: float = math.nan
    status: int = 0
    error: str | None = None
    versions: tuple[str, ...] = ()
    n_forecasts: int = 0
    n_cached: int = 0
    paths: tuple[str, ...] = ()  # which path answered each forecast ("edge" / "cloud")


@dataclass
class PhaseResult:
    """Samples of one phase plus what ran beside them."""

    name: str
    rate_per_s: float
    duration_s: float
    samples: list[Sample]
    server_cpu_s: float | None
    client_cpu_s: float
    reloads: list[tuple[int, float]] = field(default_factory=list)  # (status, latency_s)
    #: seconds waited before the phase for a single phase's answers to leave the cache
    waited_for_cache_s: float = 0.0


def _check_forecasts(
    payload: bytes, batch: bool
) -> tuple[tuple[str, ...], int, int, tuple[str, ...]]:
    body = _loads(payload)
    forecasts = body["forecasts"] if batch else [body]
    versions = []
    paths = []
    n_cached = 0
    for forecast in forecasts:
        model = forecast.get("model") or {}
        if not model.get("name") or not model.get("version"):
            raise ValueError("a forecast without model name/version")
        versions.append(f"{model['name']}@{model['version']}")
        paths.append(str(forecast.get("path")))
        n_cached += bool(forecast.get("cached"))
    return tuple(sorted(set(versions))), len(forecasts), n_cached, tuple(paths)


async def open_loop(
    pool: Pool,
    path: str,
    bodies: Sequence[bytes],
    rate_per_s: float,
    duration_s: float,
    *,
    batch: bool,
    offset: int = 0,
) -> list[Sample]:
    """Send ``rate_per_s * duration_s`` requests on a fixed schedule; wait for all of them."""
    loop = asyncio.get_running_loop()
    n_requests = max(1, round(rate_per_s * duration_s))
    start_s = loop.time() + 0.05
    samples = [Sample(scheduled_s=start_s + i / rate_per_s) for i in range(n_requests)]

    async def one(i: int) -> None:
        sample = samples[i]
        try:
            status, payload = await asyncio.wait_for(
                pool.request("POST", path, bodies[(offset + i) % len(bodies)]),
                REQUEST_TIMEOUT_S,
            )
            sample.status = status
            if status == 200:
                sample.versions, sample.n_forecasts, sample.n_cached, sample.paths = (
                    _check_forecasts(payload, batch)
                )
            else:
                sample.error = f"HTTP {status}: {payload[:200]!r}"
        except Exception as exc:
            sample.error = f"{type(exc).__name__}: {exc}"
        sample.done_s = loop.time()

    tasks = []
    for i, sample in enumerate(samples):
        delay = sample.scheduled_s - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return samples


async def reload_every(
    pool: Pool, admin_token: str, every_s: float, stop: asyncio.Event
) -> list[tuple[int, float]]:
    """POST /v1/admin/reload every ``every_s`` seconds until ``stop``; (status, latency_s) each."""
    loop = asyncio.get_running_loop()
    results = []
    headers = {"Authorization": f"Bearer {admin_token}"}
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
        if stop.is_set():
            break
        started = loop.time()
        try:
            status, _ = await pool.request("POST", "/v1/admin/reload", b"", headers)
        except Exception:
            status = 0
        results.append((status, loop.time() - started))
    return results


async def run_phases(
    args: argparse.Namespace, port: int, pid: int, admin_token: str, fixtures: dict[str, Any]
) -> list[Any]:
    """Warm up, then run the selected phases one after the other.

    ``fixtures`` receives what the bodies were made of (for the report's meta): the base
    fixtures the server accepted and how many variants of each the single rotation sends.
    """
    base_url = f"http://{HOST}:{port}"
    candidates, synthetic = load_base_fixtures(args.base_fixtures, args.synthetic)
    base = usable_fixtures(base_url, candidates)
    if not base:
        raise RuntimeError("the server forecasts none of the benchmark fixtures")
    leagues = sorted({f["league"] for f in base})
    print(f"{len(base)} usable base fixtures in {', '.join(leagues)}", file=sys.stderr)
    fixtures.update(
        {
            "base_fixtures_requested": args.base_fixtures,
            "base_fixtures": len(base),
            "base_fixtures_synthetic": synthetic,
            "variants_per_base_fixture": math.ceil(args.distinct / len(base)),
            "variant_rule": (
                "round k = variant // base_fixtures raises the home, draw, away 1x2 price in "
                "turn (k % 3) by 0.01 * (1 + k // 3)"
            ),
        }
    )
    # disjoint stretches of variants: single rotation, batch rotation, warm-up
    n_batch_fixtures = args.batch_size * args.distinct_batches
    singles = [_dumps(f) for f in variants(base, 0, args.distinct)]
    batch_fixtures = variants(base, args.distinct, args.distinct + n_batch_fixtures)
    batches = [
        _dumps({"fixtures": batch_fixtures[i : i + args.batch_size]})
        for i in range(0, n_batch_fixtures, args.batch_size)
    ]
    warmup_start = args.distinct + n_batch_fixtures
    warmup = [_dumps(f) for f in variants(base, warmup_start, warmup_start + 2_000)]
    # The client has loaded the bundled matches (pandas): freeze those objects so its own
    # full garbage collections (tens of ms over them) do not stall the send schedule and show
    # up as server latency.
    gc.collect()
    gc.freeze()
    pool_cls = RawConnectionPool if args.client == "raw" else HttpxPool
    pool = pool_cls(HOST, port, args.connections)
    admin_pool = pool_cls(HOST, port, 1)
    await pool.open()
    await admin_pool.open()
    from marketcast.serving.settings import ServingSettings

    # the server's forecast cache lifetime: it inherits this environment
    cache_ttl_s = float(
        os.environ.get("MARKETCAST_CACHE_TTL_S")
        or ServingSettings.model_fields["cache_ttl_s"].default
    )
    results = []
    singles_ended = -math.inf  # when the single rotation was last sent
    try:
        await open_loop(pool, "/v1/forecast", warmup, args.rate, args.warmup, batch=False)
        for phase in args.phases:
            waited_s = 0.0
            if phase == "reload":
                # its stretch of the rotation was sent by a single phase just before (with no
                # batch phase between, 17% of a 1-worker reload phase were cache hits): wait
                # until those answers are out of the cache
                waited_s = max(0.0, cache_ttl_s - (time.monotonic() - singles_ended))
                await asyncio.sleep(waited_s)
            cpu_before = cpu_seconds(pid)
            client_cpu_before = time.process_time()
            reloads: list[tuple[int, float]] = []
            if phase == "single":
                samples = await open_loop(
                    pool, "/v1/forecast", singles, args.rate, args.duration, batch=False
                )
                singles_ended = time.monotonic()
                rate = args.rate
            elif phase == "batch":
                samples = await open_loop(
                    pool, "/v1/forecast/batch", batches, args.batch_rate, args.duration, batch=True
                )
                rate = args.batch_rate
            else:
                stop = asyncio.Event()
                reloader = asyncio.create_task(
                    reload_every(admin_pool, admin_token, args.reload_every, stop)
                )
                # another stretch of the rotation, its keys out of the cache (waited above)
                samples = await open_loop(
                    pool,
                    "/v1/forecast",
                    singles,
                    args.rate,
                    args.duration,
                    batch=False,
                    offset=len(singles) // 2,
                )
                stop.set()
                reloads = await reloader
                singles_ended = time.monotonic()
                rate = args.rate
            cpu_after = cpu_seconds(pid)
            cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
            client_cpu = time.process_time() - client_cpu_before
            results.append(
                PhaseResult(phase, rate, args.duration, samples, cpu, client_cpu, reloads, waited_s)
            )
            print(f"phase {phase}: done", file=sys.stderr)
    finally:
        await pool.close()
        await admin_pool.close()
    return results


# ----------------------------------------------------------------------------------------------
# report


def _quantile_ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return round(1000.0 * ordered[index], 3)


def _latency_summary(latencies_s: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": _quantile_ms(latencies_s, 0.50),
        "p90_ms": _quantile_ms(latencies_s, 0.90),
        "p99_ms": _quantile_ms(latencies_s, 0.99),
        "max_ms": _quantile_ms(latencies_s, 1.0),
    }


def summarise(result: PhaseResult) -> dict[str, Any]:
    """Throughput, latency quantiles (from the scheduled send), errors, cache and versions."""
    samples = result.samples
    ok = [s for s in samples if s.error is None]
    first = min(s.scheduled_s for s in samples)
    last = max(s.done_s for s in samples if not math.isnan(s.done_s))
    n_forecasts = sum(s.n_forecasts for s in ok)
    n_cached = sum(s.n_cached for s in ok)
    summary: dict[str, Any] = {
        "target_rate_per_s": result.rate_per_s,
        "duration_s": result.duration_s,
        "requests": len(samples),
        "ok": len(ok),
        "errors": len(samples) - len(ok),
        "error_examples": sorted({s.error for s in samples if s.error})[:5],
        "throughput_per_s": round(len(ok) / (last - first), 1),
        "forecasts_per_s": round(n_forecasts / (last - first), 1),
        "latency": _latency_summary([s.done_s - s.scheduled_s for s in ok]),
        "cache_hit_share": round(n_cached / n_forecasts, 4) if n_forecasts else None,
        "all_name_a_version": all(s.versions for s in ok),
        "versions_seen": sorted({v for s in ok for v in s.versions}),
        "server_cpu_s": None if result.server_cpu_s is None else round(result.server_cpu_s, 2),
        "client_cpu_s": round(result.client_cpu_s, 2),
    }
    if result.server_cpu_s is not None and ok:
        summary["server_cpu_ms_per_request"] = round(1000 * result.server_cpu_s / len(ok), 3)
    if result.name != "batch":
        summary["latency_cache_miss"] = _latency_summary(
            [s.done_s - s.scheduled_s for s in ok if s.n_cached == 0]
        )
        summary["latency_cache_hit"] = _latency_summary(
            [s.done_s - s.scheduled_s for s in ok if s.n_cached > 0]
        )
    paths = [path for s in ok for path in s.paths]
    summary["path_share"] = {
        path: round(paths.count(path) / len(paths), 4) for path in sorted(set(paths))
    }
    if result.name != "batch":
        # latency of fresh forecasts (cache misses) by the path that answered them
        summary["latency_by_path"] = {
            path: _latency_summary(
                [s.done_s - s.scheduled_s for s in ok if s.n_cached == 0 and s.paths == (path,)]
            )
            for path in sorted(set(paths))
        }
    if result.name == "reload":
        summary["waited_for_cache_s"] = round(result.waited_for_cache_s, 3)
        summary["reloads"] = len(result.reloads)
        summary["reloads_failed"] = sum(status != 200 for status, _ in result.reloads)
        summary["reload_latency"] = _latency_summary([lat for _, lat in result.reloads])
    return summary


def markdown_table(phases: dict[str, dict[str, Any]]) -> str:
    """One row per phase."""
    header = (
        "| phase | rate/s | requests | errors | throughput/s | p50 ms | p90 ms | p99 ms | max ms "
        "| cache hits | paths | versions named |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
    )
    rows = [header]
    for name, s in phases.items():
        lat = s["latency"]
        hits = "-" if s["cache_hit_share"] is None else f"{100 * s['cache_hit_share']:.0f}%"
        extra = f" ({s['reloads']} reloads, {s['reloads_failed']} failed)" if "reloads" in s else ""
        paths = ", ".join(f"{k} {100 * v:.0f}%" for k, v in s.get("path_share", {}).items())
        rows.append(
            f"| {name}{extra} | {s['target_rate_per_s']:g} | {s['requests']} | {s['errors']} "
            f"| {s['throughput_per_s']} | {lat['p50_ms']} | {lat['p90_ms']} | {lat['p99_ms']} "
            f"| {lat['max_ms']} | {hits} | {paths} | {'all' if s['all_name_a_version'] else 'NO'} |"
        )
    return "\n".join(rows)


# ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", default=DEFAULT_APP, help="import path of the app factory")
    parser.add_argument(
        "--command",
        default=None,
        help="server command instead of uvicorn, with {host} {port} {app}, "
        "e.g. 'marketcast serve --host {host} --port {port}'",
    )
    parser.add_argument("--rate", type=float, default=500.0, help="single forecasts per second")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--batch-rate", type=float, default=50.0, help="batches per second")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--reload-every", type=float, default=2.0, help="seconds between reloads")
    parser.add_argument(
        "--distinct",
        type=int,
        default=10_000,
        help="distinct single fixtures in rotation (10,000 at 500/s repeat after 20 s, "
        "inside the 30 s cache TTL: the first pass misses, later passes hit)",
    )
    parser.add_argument(
        "--distinct-batches", type=int, default=1_000, help="distinct batches in rotation"
    )
    parser.add_argument("--base-fixtures", type=int, default=1_000, help="real fixtures to vary")
    parser.add_argument("--synthetic", action="store_true", help="made-up teams, no data")
    parser.add_argument("--connections", type=int, default=32, help="client keep-alive pool")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unrecorded load")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument(
        "--phases",
        default="single,batch,reload",
        type=lambda text: [p for p in text.split(",") if p],
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    unknown = set(args.phases) - {"single", "batch", "reload"}
    if unknown:
        parser.error(f"unknown phases {sorted(unknown)}")
    positive = (args.rate, args.batch_rate, args.duration, args.distinct, args.distinct_batches)
    if min(positive) <= 0 or args.batch_size < 1:
        parser.error("rates, duration, sizes and counts must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    port = free_port()
    admin_token = secrets.token_urlsafe(24)
    argv_server = server_command(args.app, args.command, port)
    process = start_server(argv_server, port, admin_token)
    try:
        ready_s = wait_ready(process, f"http://{HOST}:{port}", args.startup_timeout)
        fixtures: dict[str, Any] = {}
        phase_results = asyncio.run(run_phases(args, port, process.pid, admin_token, fixtures))
    finally:
        stop_server(process)
    phases = {r.name: summarise(r) for r in phase_results}
    report = {
        "meta": {
            "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "app": args.app if not args.command else None,
            "server_command": " ".join(argv_server).replace(sys.executable, "python"),
            "client": args.client,
            "connections": args.connections,
            "distinct_fixtures": args.distinct,
            # the distinct bodies are variants of these base fixtures (nudged home price)
            **fixtures,
            "distinct_batches": args.distinct_batches,
            "batch_size": args.batch_size,
            "reload_every_s": args.reload_every,
            "startup_to_ready_s": round(ready_s, 2),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "latency_from": "scheduled send time (open loop)",
        },
        "phases": phases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown_table(phases))
    print(f"\nwrote {args.out}")
    reload_phase = phases.get("reload")
    if reload_phase and (reload_phase["errors"] or not reload_phase["all_name_a_version"]):
        raise SystemExit("hot reload run had failed requests or unnamed versions")
    return report


if __name__ == "__main__":
    main()
