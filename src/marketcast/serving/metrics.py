"""Prometheus metrics of one app (on its own registry) and the ASGI middleware timing requests."""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Request latency buckets in seconds: fine at the low end, where a cached or edge forecast lands.
LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)

UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ServingMetrics:
    """The server's counters and histograms, registered on a private ``CollectorRegistry``.

    A private registry (never the process-global one) lets several apps live in one process,
    as they do in the tests.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_latency_s = Histogram(
            "marketcast_http_request_duration_seconds",
            "Time from request start to the last response byte, by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.errors = Counter(
            "marketcast_http_errors",
            "Responses with status >= 400, by route template and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.forecasts = Counter(
            "marketcast_forecasts",
            "Forecasts answered, by model name, version and path (edge or cloud).",
            ["model", "version", "path"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "marketcast_reloads",
            "Admin swaps of the champions, by action (reload, promote, rollback, "
            "crypto_reload) and outcome.",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "marketcast_cache_hits",
            "Forecasts answered from the cache (counted once the request is answered).",
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "marketcast_cache_misses",
            "Forecasts computed because the cache had no live entry.",
            registry=self.registry,
        )
        self.ready = Gauge(
            "marketcast_ready", "1 when champions are loaded, else 0.", registry=self.registry
        )
        self.overload_rejections = Counter(
            "marketcast_overload_rejections",
            "Requests the HTTP server answered 503 past its limit_concurrency, before the app "
            "(not in marketcast_http_errors_total nor the latency histogram).",
            registry=self.registry,
        )

    def render(self) -> tuple[bytes, str]:
        """Return the Prometheus text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def metrics_of(app: Any) -> ServingMetrics | None:
    """The `ServingMetrics` of an app ``create_app`` built (its ``app.state.metrics``), reached
    through the middleware the server wraps around it (each holds the app it wraps as
    ``.app``: uvicorn's proxy-headers middleware), or ``None`` for any other app.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> metrics = ServingMetrics()
    >>> served = SimpleNamespace(state=SimpleNamespace(metrics=metrics))
    >>> metrics_of(SimpleNamespace(app=served)) is metrics, metrics_of(object())
    (True, None)
    """
    for _ in range(8):  # a few wrappers at most; never loop on one that wraps itself
        found = getattr(getattr(app, "state", None), "metrics", None)
        if isinstance(found, ServingMetrics):
            return found
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class MetricsMiddleware:
    """Pure-ASGI middleware: latency histogram and error counter per route template.

    The route label is the matched route's path template (FastAPI stores the route in the scope),
    else the raw path when it is one of ``known_paths`` (requests rejected before routing, e.g. a
    413), else ``"unmatched"``, so random paths cannot blow up the label set.
    """

    def __init__(
        self, app: ASGIApp, *, metrics: ServingMetrics, known_paths: Collection[str]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.known_paths = frozenset(known_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_s = time.perf_counter()
        status_code = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._record(scope, status_code, time.perf_counter() - started_s)

    def _record(self, scope: Scope, status_code: int, elapsed_s: float) -> None:
        route: Any = scope.get("route")
        label = getattr(route, "path", None)
        if not isinstance(label, str):
            path = scope.get("path", "")
            label = path if path in self.known_paths else UNMATCHED_ROUTE
        method = scope.get("method", "")
        if method not in _METHODS:
            method = "OTHER"
        self.metrics.request_latency_s.labels(label, method).observe(elapsed_s)
        if status_code >= 400:
            self.metrics.errors.labels(label, str(status_code)).inc()
