"""The header timeout of `marketcast serve`'s HTTP protocol, against a real uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn

from marketcast.serving.http_server import http_protocol

TIMEOUT_S = 0.5


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[int]:
    """``app`` served by uvicorn with `marketcast serve`'s protocol on a free port (its
    ``header_timeout_s`` 10 s unless given; other ``options`` go to ``uvicorn.Config``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = int(probe.getsockname()[1])
    header_timeout_s = options.pop("header_timeout_s", 10.0)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=free,
        http=http_protocol(header_timeout_s),
        timeout_keep_alive=30,  # longer than the header timeout: that one must act
        lifespan="off",
        **{"log_level": "error", **options},
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    try:
        yield free
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def port() -> Iterator[int]:
    with serving(_ok, header_timeout_s=TIMEOUT_S, log_level="warning") as free:
        yield free


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes the connection (recv gives b"") within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while chunk := sock.recv(4096):
            if b"ok" in chunk:
                continue
        return True
    except TimeoutError:
        return False


def test_a_client_that_never_finishes_its_headers_is_cut_off(port: int) -> None:
    """Such clients each held a socket for good, and 20,000 of them exhausted the server."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: headers never end
        started = time.monotonic()
        assert _closed_within(sock, 5)
        assert time.monotonic() - started < 5


def test_a_complete_request_is_answered_and_a_stalled_next_one_cut_off(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert b"200 OK" in sock.recv(4096)
        time.sleep(TIMEOUT_S / 2)
        sock.sendall(b"GET / HTTP/1.1\r\n")  # the keep-alive connection's next request stalls
        assert _closed_within(sock, 5)


def test_a_slow_but_timely_client_is_served(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for part in (b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            sock.sendall(part)
            time.sleep(TIMEOUT_S / 5)
        sock.settimeout(5)
        assert b"200 OK" in sock.recv(4096)
