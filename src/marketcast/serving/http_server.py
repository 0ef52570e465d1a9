"""The HTTP protocol `marketcast serve` runs: uvicorn's httptools protocol with a header timeout.

uvicorn times out an idle keep-alive connection, but not a client that opens a connection and
sends its request headers slowly or never finishes them: each such client holds a socket (and a
file descriptor) for as long as it likes, and ``limit_concurrency`` is checked only once the
headers are complete. A probe exhausted the server's file descriptors with 20,000 of them.
This protocol closes a connection whose request headers are not complete within
``header_timeout_s`` of its opening, or of the previous response (nginx's
``client_header_timeout``). A reverse proxy in front remains the real defence against floods.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection whose request headers stall."""

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
        if not self.transport.is_closing():
            self._arm_header_timer()  # the next request on this connection gets as long

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
