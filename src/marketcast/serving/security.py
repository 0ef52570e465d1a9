"""Protection of the API: admin bearer tokens, a request body cap and safe identifiers."""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_DISABLED = "admin disabled: set MARKETCAST_ADMIN_TOKEN"

# Names and versions sent to admin endpoints: registry-style identifiers, never a path.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_bearer(authorization: str | None, expected: SecretStr | None) -> None:
    """Check an ``Authorization: Bearer <token>`` header against the configured token.

    Parameters
    ----------
    authorization
        The raw header value, ``None`` when absent.
    expected
        The configured admin token; ``None`` means admin is disabled.

    Raises
    ------
    HTTPException
        403 when admin is disabled or the token is wrong; 401 (with ``WWW-Authenticate: Bearer``)
        when the header is missing or not a bearer token.

    Examples
    --------
    >>> check_bearer("Bearer 0123456789abcdef", SecretStr("0123456789abcdef")) is None
    True
    >>> try:
    ...     check_bearer("Basic dXNlcg==", SecretStr("0123456789abcdef"))
    ... except HTTPException as exc:
    ...     print(exc.status_code)
    401
    """
    if expected is None:
        raise HTTPException(status_code=403, detail=ADMIN_DISABLED)
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise HTTPException(
            status_code=401,
            detail="missing or malformed Authorization header: expected 'Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # compare_digest on bytes: constant time, and accepts non-ASCII input without raising. The
    # configured token is printable ASCII (ServingSettings refuses any other): Starlette decodes
    # header bytes as latin-1, so a non-ASCII token sent as UTF-8 never matched its UTF-8 here.
    if not hmac.compare_digest(token.encode(), expected.get_secret_value().encode()):
        raise HTTPException(status_code=403, detail="invalid admin token")


def unsafe_identifier(value: str) -> bool:
    """True when ``value`` is not a plain identifier (path separators, ``..``, spaces ...).

    Examples
    --------
    >>> unsafe_identifier("dixon_coles"), unsafe_identifier("../etc"), unsafe_identifier("a..b")
    (False, True, True)
    """
    return IDENTIFIER_PATTERN.fullmatch(value) is None or ".." in value


class BodyTooLargeError(HTTPException):
    """A request body over the cap (413); FastAPI re-raises it from body parsing."""

    def __init__(self, max_body_bytes: int) -> None:
        super().__init__(status_code=413, detail=f"request body over {max_body_bytes} bytes")


class BodySizeLimitMiddleware:
    """Pure-ASGI middleware answering 413 for bodies over ``max_body_bytes``.

    A declared ``Content-Length`` is checked before the app runs (the server itself refuses a body
    longer than its declared length). Without one (chunked transfer), the bytes are counted as the
    app reads them and the read fails with :class:`BodyTooLargeError` once over the cap.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
                break
        if declared is not None:
            try:
                declared_bytes = int(declared)
            except ValueError:
                await _send_json(send, 400, "invalid Content-Length header")
                return
            if declared_bytes > self.max_body_bytes:
                await _send_json(send, 413, BodyTooLargeError(self.max_body_bytes).detail)
                return
            await self.app(scope, receive, send)
            return
        await self._call_counting(scope, receive, send)

    async def _call_counting(self, scope: Scope, receive: Receive, send: Send) -> None:
        received_bytes = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received_bytes
            message = await receive()
            if message["type"] == "http.request":
                received_bytes += len(message.get("body", b""))
                if received_bytes > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError as exc:
            if response_started:
                raise
            await _send_json(send, 413, exc.detail)


async def _send_json(send: Send, status_code: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# Declares the bearer scheme in the OpenAPI document; the check itself is ``check_bearer``.
BEARER_SCHEME = HTTPBearer(auto_error=False, description="the MARKETCAST_ADMIN_TOKEN value")
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER_SCHEME)]


def admin_guard(admin_token: SecretStr | None) -> Callable[..., None]:
    """A FastAPI dependency refusing requests without ``Authorization: Bearer <admin_token>``."""

    def guard(request: Request, _credentials: BearerCredentials) -> None:
        check_bearer(request.headers.get("authorization"), admin_token)

    return guard
