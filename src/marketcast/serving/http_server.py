"""The HTTP protocol `marketcast serve` runs: uvicorn's httptools protocol with a header timeout.

uvicorn times out an idle keep-alive connection, but not a client that opens a connection and
sends its request headers slowly or never finishes them: each such client holds a socket (and a
file descriptor) for as long as it likes, and ``limit_concurrency`` is checked only once the
headers are complete. A probe exhausted the server's file descriptors with 20,000 of them.
This protocol closes a connection whose request headers are not complete within
``header_timeout_s`` of its opening, or of the previous response (nginx's
``client_header_timeout``). A reverse proxy in front remains the real defence against floods.

It also counts the 503s uvicorn answers past ``limit_concurrency`` (with an app of its own, so
the app never sees them) in the app's ``marketcast_overload_rejections_total``.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess

from marketcast.serving.metrics import metrics_of

#: The body of the 503 answered past ``limit_concurrency``.
OVERLOADED_BODY = b'{"detail":"server overloaded: too many requests in progress, retry shortly"}'


async def overloaded(scope: Any, receive: Any, send: Any) -> None:
    """The 503 past ``limit_concurrency``: ``{"detail": ...}`` as the API's other errors, with
    ``Retry-After: 1`` (uvicorn's own answered "Service Unavailable" as plain text)."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(OVERLOADED_BODY)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": OVERLOADED_BODY})


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request headers stall, and counts
    the requests its concurrency limit refuses."""

    def __init__(self, *args: Any, header_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the next request on this connection gets as long, unless it is under way already:
        # a pipelined request, whose headers came during this one, was just started by
        # super() (the timer then cut it off if it ran longer than the header timeout)
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._arm_header_timer()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # uvicorn (0.54) starts every request here, queued pipelined ones too, with its own
        # `service_unavailable` app in place of ours past `limit_concurrency`: that 503 never
        # reaches the app's middleware, so it is counted here (a test serving through this
        # protocol fails if a later uvicorn starts requests elsewhere)
        if app is service_unavailable:
            metrics = metrics_of(self.app)
            if metrics is not None:
                metrics.overload_rejections.inc()
            app = overloaded  # JSON, as every other error of the API (uvicorn's is plain text)
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def http_protocol(header_timeout_s: float) -> Any:
    """The ``http=`` argument for ``uvicorn.run``: the protocol class with its timeout bound
    (a ``functools.partial`` of a module-level class, so it pickles for ``--workers N``)."""
    return functools.partial(HeaderTimeoutProtocol, header_timeout_s=header_timeout_s)


class _Server(uvicorn.Server):
    """uvicorn's server, remembering the first signal that stopped it."""

    stopped_by: int | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.stopped_by is None:
            self.stopped_by = sig
        super().handle_exit(sig, frame)


class _Supervisor(Multiprocess):
    """uvicorn's worker supervisor, remembering the signal that stopped it (it swallows it)."""

    stopped_by: int | None = None

    def handle_int(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGINT
        super().handle_int()

    def handle_term(self) -> None:
        self.stopped_by = self.stopped_by or signal.SIGTERM
        super().handle_term()


def run_until_signal(app: Any, *, workers: int = 1, **options: Any) -> None:
    """Serve ``app`` with uvicorn until a signal stops it, then deliver that signal again.

    ``uvicorn.run`` returns normally after Ctrl-C (it catches ``KeyboardInterrupt``, and its
    worker supervisor swallows SIGINT and SIGTERM), so ``marketcast serve`` exited 0 where the
    other commands exit 130 or 143. Here the server shuts down gracefully as before, and the
    signal is then raised again under the caller's handlers (``KeyboardInterrupt`` for SIGINT).
    ``app`` is an ASGI app, or an import string with ``factory=True`` (needed for workers > 1).

    A port that is taken ends the process as uvicorn ends it (``SystemExit(3)``, after its
    log line); a one-worker server that returns without having started is an ``OSError``.

    SIGINT stops the server whatever the process did with it before: uvicorn installs its own
    handler over an ignored one. A process started with SIGINT ignored (``marketcast serve &``
    from a script: POSIX shells ignore it for background jobs) was stopped by it all the same,
    and the signal raised again was then ignored: ``serve`` exited 0, as after a clean end.
    So while serving, an ignored SIGINT (or the default action, which skips the cleanup) is
    replaced by Python's ``KeyboardInterrupt`` handler, and the stop ends as any Ctrl-C does
    (exit status 130); the caller's setting is restored afterwards.
    """
    config = uvicorn.Config(app, workers=workers, **options)
    sigint_before = signal.getsignal(signal.SIGINT)
    # not callable: SIG_IGN, SIG_DFL, or None (set outside Python); signal handlers belong to
    # the main thread (uvicorn installs none in another)
    if callable(sigint_before) or threading.current_thread() is not threading.main_thread():
        _serve(config, workers)
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _serve(config, workers)
    finally:
        signal.signal(signal.SIGINT, sigint_before)


def _serve(config: uvicorn.Config, workers: int) -> None:
    """`run_until_signal`'s body: serve, then raise the stopping signal again."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if workers == 1:
        server = _Server(config)
        server.run()  # a re-raised signal may already end the call here
        if server.stopped_by is not None:
            signal.raise_signal(server.stopped_by)
        if not server.started:
            raise OSError(f"the server did not start on {config.host}:{config.port}")
        return
    supervisor = _Supervisor(config, sockets=[config.bind_socket()])
    try:
        supervisor.run()
    finally:
        for sig, handler in handlers.items():  # the supervisor replaced them for good
            signal.signal(sig, handler)
    if supervisor.stopped_by is not None:
        signal.raise_signal(supervisor.stopped_by)
