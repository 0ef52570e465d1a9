"""The forecast HTTP API (v1): ``create_app(settings, service)`` builds the app, no globals."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn, cast

from fastapi import FastAPI, HTTPException, Request, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute, APIRouter
from starlette.concurrency import run_in_threadpool

from marketcast.registry.manifest import ArtifactIntegrityError
from marketcast.registry.store import RegistryDamagedError, RegistryError
from marketcast.serving.cache import TTLCache
from marketcast.serving.crypto import CryptoService
from marketcast.serving.crypto_routes import crypto_router
from marketcast.serving.json_body import (
    BODY_ERRORS,
    MAX_DUPLICATES_REPORTED,
    DuplicateKeyError,
    StrictJSONRoute,
)
from marketcast.serving.metrics import MetricsMiddleware, ServingMetrics
from marketcast.serving.protocol import (
    FixtureError,
    ForecastService,
    TeamLeagueMismatchError,
    UnknownLeagueError,
)
from marketcast.serving.schemas import (
    API_VERSION,
    BatchIn,
    BatchOut,
    DoNotTradeRow,
    FixtureIn,
    ForecastOut,
    PromoteIn,
    RankingRow,
    RollbackIn,
)
from marketcast.serving.security import BodySizeLimitMiddleware, admin_guard, unsafe_identifier
from marketcast.serving.settings import ServingSettings

logger = logging.getLogger(__name__)

OPENAPI_URL = "/v1/openapi.json"

_Responses = dict[int | str, dict[str, Any]]
_ERROR_422: _Responses = {
    422: {
        "description": (
            "invalid fixture, unknown league or unknown team, or a team that last played in "
            "another country's league"
        )
    }
}
_ERROR_503: _Responses = {503: {"description": "champions not loaded yet"}}
_ADMIN_ERRORS: _Responses = {
    **BODY_ERRORS,
    401: {"description": "missing or malformed bearer token"},
    403: {"description": "wrong token, or admin disabled"},
    404: {"description": "unknown market, model or version, or nothing to roll back to"},
    409: {
        "description": (
            "the version's files no longer match its manifest, or the registry refused the "
            "change (the champion moved meanwhile)"
        )
    },
    422: {"description": "invalid or unsafe name"},
    503: {"description": "registry unavailable"},
}

CacheKey = tuple[str, str]


def _message(exc: BaseException) -> str:
    # KeyError's str() adds quotes around its argument; use the argument itself
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


@dataclass
class _Pending:
    """A request between the cache look-up and the service call."""

    snapshot_id: str
    answers: list[_Answer | None]
    keys: list[CacheKey]
    missing: list[int]


class _Answer(NamedTuple):
    """A forecast as its JSON bytes plus the labels the metrics need.

    Cached answers are kept in this form: a few immutable atoms instead of a tree of pydantic
    objects, so a full cache adds almost nothing to garbage-collection pauses.
    """

    json: bytes
    model_name: str
    version: str
    path: str

    @classmethod
    def of(cls, out: ForecastOut) -> _Answer:
        return cls(out.model_dump_json().encode(), out.model.name, out.model.version, out.path)


def create_app(
    settings: ServingSettings, service: ForecastService, crypto: CryptoService | None = None
) -> FastAPI:
    """Build the v1 forecast API around a forecast service.

    Parameters
    ----------
    settings
        Server settings (admin token, body cap, cache size and time to live).
    service
        The champions behind the API (``ChampionService`` in production, a fake in tests).
    crypto
        The crypto champions over a candle store: mounts ``/v1/crypto/*`` and adds their rows
        to ``/v1/rankings`` and ``/v1/do-not-trade``. ``None``: football only.

    Returns
    -------
    FastAPI
        The app, with its own metrics registry and forecast cache (``app.state.metrics``,
        ``app.state.cache``); several apps can live in one process.
    """
    app = FastAPI(
        title="marketcast",
        version=API_VERSION,
        description=(
            "Probabilistic football forecasts from the registry's champions. "
            "Every forecast names the model version that produced it."
        ),
        openapi_url=OPENAPI_URL,
        docs_url="/docs",
        redoc_url=None,
    )
    # every JSON body is read refusing a key given twice (the JSON reader keeps the last value)
    app.router.route_class = StrictJSONRoute
    metrics = ServingMetrics()
    # an entry is live while its key's snapshot is the one served: ids never come back, so the
    # others can never hit again
    cache: TTLCache[_Answer] = TTLCache(
        settings.cache_size,
        settings.cache_ttl_s,
        live=lambda key: cast("CacheKey", key)[0] == service.snapshot_id,
    )
    # a service that swaps snapshots on its own (the registry watcher) says so: the dead
    # entries are dropped then, not left to age out
    on_swap = getattr(service, "on_swap", None)
    if on_swap is not None:
        on_swap(cache.prune)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """FastAPI's 422, with the echoed input made JSON-safe.

        The default handler echoes each bad ``input`` back; for ``NaN``, ``Infinity``,
        ``1e400`` or a lone surrogate that echo cannot be written as JSON, and the client got
        a 500 instead of the 422 naming the field. An input nested deeper than
        ``ECHO_MAX_DEPTH`` levels is echoed as a placeholder (`_echo_safe`): the encoders walk
        it recursively, and a 1 KB field nested ~500 levels deep (the JSON reader takes ~990)
        overflowed the stack, a 500 with ~150 KB of traceback in the log per request. The
        first ``ERRORS_SHOWN`` errors are listed, then one ``too_many_errors`` entry counting
        the rest, and an input larger than ``ECHO_MAX_CHARS`` is echoed as a placeholder: a
        1 MiB body of 90,000 unknown keys was answered with 13.9 MB after 4.2 s on the loop.
        """
        errors = [_echo_safe(_with_error_text(error)) for error in exc.errors()[:ERRORS_SHOWN]]
        hidden = len(exc.errors()) - len(errors)
        if hidden > 0:
            errors.append(
                {
                    "type": "too_many_errors",
                    "loc": [],
                    "msg": f"{hidden:,} more {'error' if hidden == 1 else 'errors'}, not listed",
                    "input": None,
                }
            )
        return JSONResponse({"detail": json_safe(jsonable_encoder(errors))}, status_code=422)

    @app.exception_handler(DuplicateKeyError)
    async def duplicate_key(request: Request, exc: DuplicateKeyError) -> JSONResponse:
        """A key given twice in one object of the body: a 422 like the validation errors, each
        repeated key's values echoed (made JSON-safe as above)."""
        return await invalid_request(request, RequestValidationError(exc.errors))

    app.state.settings = settings
    app.state.service = service
    app.state.metrics = metrics
    app.state.cache = cache

    def look_up(fixtures: Sequence[FixtureIn], *, batch: bool) -> _Pending:
        """Check readiness, leagues and the teams' countries, then answer what the cache can
        (cheap, never blocks)."""
        if not service.ready:
            raise HTTPException(503, "champions not loaded yet", headers={"Retry-After": "1"})
        try:
            UnknownLeagueError.check(fixtures, service.known_leagues)
            # a service written before the check has no team_leagues: it is skipped, not a 500
            TeamLeagueMismatchError.check(fixtures, getattr(service, "team_leagues", None) or {})
        except (UnknownLeagueError, TeamLeagueMismatchError) as error:
            _fixture_error(error, fixtures, range(len(fixtures)), batch=batch)
        pending = _Pending(service.snapshot_id, [None] * len(fixtures), [], [])
        if not cache.enabled:
            pending.missing.extend(range(len(fixtures)))
            return pending
        for index, fixture in enumerate(fixtures):
            key = (pending.snapshot_id, fixture.model_dump_json(by_alias=True))
            pending.keys.append(key)
            hit = cache.get(key)
            if hit is None:
                pending.missing.append(index)
            else:
                pending.answers[index] = hit
        return pending

    def forecast_some(
        fixtures: Sequence[FixtureIn], positions: Sequence[int], *, batch: bool
    ) -> list[ForecastOut]:
        """The forecasts of ``fixtures`` at ``positions``, from ONE service call (so from one
        snapshot); the service's errors as the 422 pointing at the request's fixture."""
        to_forecast = (
            fixtures if len(positions) == len(fixtures) else [fixtures[i] for i in positions]
        )
        try:
            computed = service.forecast(to_forecast)
        except FixtureError as exc:
            _fixture_error(exc, to_forecast, positions, batch=batch)
        except ValueError as exc:
            raise HTTPException(422, f"cannot forecast: {_message(exc)}") from exc
        if len(computed) != len(positions):
            raise RuntimeError(f"service returned {len(computed)} forecasts for {len(positions)}")
        return computed

    def complete(fixtures: Sequence[FixtureIn], pending: _Pending, *, batch: bool) -> list[_Answer]:
        """Forecast the cache misses in one service call (may block), store and count them.

        The hits are answers of the snapshot the look-up read. If the snapshot id changed
        during the call (a reload, a promotion, the registry watcher's swap), the misses may be
        a newer snapshot's: the whole batch is then forecast again in one call, and nothing of
        it is cached, so one batch is never answered by two champions. An unchanged id proves
        the misses came from the snapshot of the hits: the service swaps its id and its models
        together, and an id never comes back.
        """
        missing: Sequence[int] = pending.missing
        n_hits = len(fixtures) - len(missing)
        if missing:
            computed = forecast_some(fixtures, missing, batch=batch)
            swapped = service.snapshot_id != pending.snapshot_id
            if swapped and n_hits:
                missing = range(len(fixtures))
                computed = forecast_some(fixtures, missing, batch=batch)
                n_hits = 0
            # cache only when no swap happened during the call: the answer then belongs to
            # the snapshot its key names
            cacheable = cache.enabled and not swapped
            for index, out in zip(missing, computed, strict=True):
                pending.answers[index] = _Answer.of(out)
                if cacheable:
                    cached = _Answer.of(out.model_copy(update={"cached": True}))
                    cache.put(pending.keys[index], cached)
        # counted once answered: a batch that another fixture's error refuses counts nothing
        if cache.enabled:
            if n_hits:
                metrics.cache_hits.inc(n_hits)
            if missing:
                metrics.cache_misses.inc(len(missing))
        answered = [answer for answer in pending.answers if answer is not None]
        for answer in answered:
            metrics.forecasts.labels(answer.model_name, answer.version, answer.path).inc()
        return answered

    @app.post(
        "/v1/forecast",
        response_model=ForecastOut,
        responses={**BODY_ERRORS, **_ERROR_422, **_ERROR_503},
        tags=["forecast"],
    )
    async def forecast(fixture: FixtureIn) -> Response:
        """Forecast one fixture from its pre-match odds."""
        fixtures = (fixture,)
        pending = look_up(fixtures, batch=False)
        if pending.missing and getattr(service, "blocking_io", True):
            # the service may wait on I/O (an explainer over HTTP): keep it off the event loop
            answers = await run_in_threadpool(complete, fixtures, pending, batch=False)
        else:
            answers = complete(fixtures, pending, batch=False)
        return Response(content=answers[0].json, media_type="application/json")

    @app.post(
        "/v1/forecast/batch",
        response_model=BatchOut,
        responses={**BODY_ERRORS, **_ERROR_422, **_ERROR_503},
        tags=["forecast"],
    )
    def forecast_batch(batch: BatchIn) -> Response:
        """Forecast up to ``MAX_BATCH`` fixtures; answers come in request order."""
        pending = look_up(batch.fixtures, batch=True)
        answers = complete(batch.fixtures, pending, batch=True)
        # BatchOut's JSON, assembled from each forecast's JSON (cached ones are stored as bytes)
        body = b'{"forecasts":[' + b",".join(answer.json for answer in answers) + b"]}"
        return Response(content=body, media_type="application/json")

    @app.get("/v1/models", response_model=list[dict[str, Any]], tags=["champions"])
    def models() -> list[dict[str, Any]]:
        """The champion of each market with its manifest summary."""
        return service.models()

    @app.get("/v1/rankings", response_model=list[RankingRow], tags=["champions"])
    def rankings() -> list[RankingRow]:
        """Markets ranked by edge after costs, confidence and capacity (football, then crypto)."""
        rows = service.rankings()
        return [*rows, *crypto.rankings()] if crypto is not None else rows

    @app.get("/v1/do-not-trade", response_model=list[DoNotTradeRow], tags=["champions"])
    def do_not_trade() -> list[DoNotTradeRow]:
        """Markets failing a liquidity, cost or staleness check, each with its reason."""
        rows = service.do_not_trade()
        return [*rows, *crypto.do_not_trade()] if crypto is not None else rows

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "not ready"}})
    async def readyz() -> JSONResponse:
        """Readiness: 200 once the champions are loaded, else 503."""
        if service.ready:
            return JSONResponse({"status": "ready", "snapshot_id": service.snapshot_id})
        return JSONResponse({"status": "loading"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition of this app's registry."""
        metrics.ready.set(1.0 if service.ready else 0.0)
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    def admin_call(action: str, call: Callable[[], dict[str, Any]]) -> JSONResponse:
        before = service.snapshot_id
        try:
            result = call()
        except Exception as exc:
            metrics.reloads.labels(action, "failure").inc()
            _admin_error(action, exc)
        metrics.reloads.labels(action, "success").inc()
        if service.snapshot_id != before:
            # entries of the old snapshot can never hit again: free their memory now (only
            # theirs: the new snapshot's, stored since the swap, stay)
            cache.prune()
        return JSONResponse(jsonable_encoder(result))

    def admin_route(path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return app.post(
            path,
            dependencies=[Security(admin_guard(settings.admin_token))],
            responses=_ADMIN_ERRORS,
            tags=["admin"],
            response_model=dict[str, Any],
        )

    @admin_route("/v1/admin/reload")
    def reload() -> JSONResponse:
        """Re-read the registry's champions and swap them in atomically."""
        return admin_call("reload", service.reload)

    @admin_route("/v1/admin/promote")
    def promote(body: PromoteIn) -> JSONResponse:
        """Make a registered version the champion of a market, then reload."""
        _check_identifiers(market=body.market, model_name=body.model_name, version=body.version)
        return admin_call(
            "promote", lambda: service.promote(body.market, body.model_name, body.version)
        )

    @admin_route("/v1/admin/rollback")
    def rollback(body: RollbackIn) -> JSONResponse:
        """Restore the previous champion of a market, then reload."""
        _check_identifiers(market=body.market)
        return admin_call("rollback", lambda: service.rollback(body.market))

    _answer_head_like_get(app.router)
    known_paths = {getattr(route, "path", "") for route in app.routes}
    if crypto is not None:
        crypto_routes = crypto_router(crypto, settings, admin_call)
        _answer_head_like_get(crypto_routes)
        app.include_router(crypto_routes)
        # an included router is one nested entry of app.routes without a path (FastAPI 0.16x),
        # so a 413 on a crypto push, refused before routing, was counted as "unmatched"
        known_paths |= {getattr(route, "path", "") for route in crypto_routes.routes}
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics, known_paths=known_paths)
    return app


def _answer_head_like_get(router: APIRouter) -> None:
    """HEAD on every GET route, as HTTP expects (it was a 405, counted as an error, except on
    the probes); the server sends the GET answer's headers without its body."""
    for route in list(router.routes):
        if isinstance(route, APIRoute) and "GET" in (route.methods or set()):
            router.add_api_route(
                route.path,
                route.endpoint,
                methods=["HEAD"],
                include_in_schema=False,
                dependencies=route.dependencies,
            )


def _with_error_text(error: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic error with ``ctx.error`` (the validator's exception) as its text: encoded
    as it is, the exception object came out as ``{}``."""
    ctx = error.get("ctx")
    if isinstance(ctx, Mapping) and isinstance(ctx.get("error"), BaseException):
        return {**error, "ctx": {**ctx, "error": str(ctx["error"])}}
    return dict(error)


#: Deepest nesting of a bad ``input`` a 422 echoes; deeper ones are echoed as `TOO_DEEP`.
#: A whole batch body, the deepest value a valid request holds, is 7 levels (the body,
#: ``fixtures``, a fixture, ``odds``, ``bookmakers``, a bookmaker, its ``1x2``).
ECHO_MAX_DEPTH = 32
TOO_DEEP = f"<value nested deeper than {ECHO_MAX_DEPTH} levels>"


#: The most errors a 422 lists (as many as the JSON reader reports keys given twice); the rest
#: are counted in one last ``too_many_errors`` entry.
ERRORS_SHOWN = MAX_DUPLICATES_REPORTED
#: The largest bad ``input`` a 422 echoes, in characters of JSON (about); larger is `TOO_LARGE`.
#: A missing field's input is the whole object around it, so a body of unknown keys echoed
#: itself once per missing field.
ECHO_MAX_CHARS = 1024
TOO_LARGE = f"<value of more than {ECHO_MAX_CHARS:,} characters, not echoed>"


def echo_refusal(value: Any) -> str | None:
    """Why a 422 does not echo ``value``: `TOO_DEEP` when it holds dicts, lists or tuples
    nested more than ``ECHO_MAX_DEPTH`` levels, `TOO_LARGE` when written as JSON it would take
    more than about ``ECHO_MAX_CHARS`` characters; None when it may be echoed.

    One walk with an explicit stack, not recursion (``value`` may be nested as deep as the
    JSON reader allows, ~990 levels, past what a recursive walk survives), stopped at the first
    level too deep or as soon as the count passes the limit: a huge value costs no more than a
    small one. A scalar is 0 levels deep, ``[1]`` and ``[]`` one level. A string counts its
    length and quotes, a key its length and ``": "``, a container its brackets and ``", "``
    between items, an integer its digits (a JSON integer may have 4,300: counted as 8, a list
    of 100 such was echoed whole, once per missing field), any other scalar 24.

    Examples
    --------
    >>> echo_refusal([[1], {"a": "Arsenal"}]) is None
    True
    >>> deep = []
    >>> for _ in range(ECHO_MAX_DEPTH):
    ...     deep = [deep]
    >>> echo_refusal(deep)
    '<value nested deeper than 32 levels>'
    >>> echo_refusal({"home": "x" * 2000})
    '<value of more than 1,024 characters, not echoed>'
    >>> echo_refusal([10**400] * 3)
    '<value of more than 1,024 characters, not echoed>'
    """
    count = 0
    stack: list[tuple[Any, int]] = [(value, 0)]  # (item, containers around it)
    while stack:
        item, around = stack.pop()
        if isinstance(item, str):
            count += len(item) + 2
        elif isinstance(item, dict | list | tuple):
            if around >= ECHO_MAX_DEPTH:  # this container is level around + 1
                return TOO_DEEP
            # no more items than the limit can hold: a dict of 90,000 keys is not copied
            items = item.items() if isinstance(item, dict) else item
            children = list(itertools.islice(items, ECHO_MAX_CHARS))
            count += 2 * len(children)  # its brackets, and ", " between its items
            if isinstance(item, dict):
                count += sum(len(str(key)) + 4 for key, _ in children)
                children = [child for _, child in children]
            stack.extend((child, around + 1) for child in children)
        elif isinstance(item, int):  # up to 4,300 digits in JSON: counted, not converted
            count += item.bit_length() * 30103 // 100000 + 2
        else:
            count += 24  # a float's longest repr
        if count > ECHO_MAX_CHARS:
            return TOO_LARGE
    return None


def _echo_safe(error: dict[str, Any]) -> dict[str, Any]:
    """``error`` with an ``input`` nested deeper than ``ECHO_MAX_DEPTH`` or larger than
    ``ECHO_MAX_CHARS`` as a placeholder (:func:`echo_refusal`), so the recursive encoders after
    it (``jsonable_encoder``, `json_safe`, ``json.dumps``) only ever see small, shallow
    values."""
    refusal = echo_refusal(error.get("input"))
    return error if refusal is None else {**error, "input": refusal}


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as text (``"nan"``, ``"inf"``) and unpaired surrogates
    escaped, so strict JSON can hold it.

    It recurses: callers pass values of bounded depth (the 422 handler caps an echoed input at
    ``ECHO_MAX_DEPTH`` levels first).

    Examples
    --------
    >>> json_safe({"input": [float("nan"), 1.5, "ok\\ud800"]})
    {'input': ['nan', 1.5, 'ok\\\\ud800']}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _fixture_error(
    exc: FixtureError,
    forecast: Sequence[FixtureIn],
    positions: Sequence[int],
    *,
    batch: bool,
) -> NoReturn:
    """A 422 pointing at the fixture's field: ``positions`` maps the forecast list back to the
    request's (cache hits are left out of the forecast list)."""
    message = _message(exc)
    where: list[str | int] = ["body", "fixtures"] if batch else ["body"]
    value = exc.value
    if exc.index is not None and exc.field in _FIXTURE_FIELDS and 0 <= exc.index < len(forecast):
        value = getattr(forecast[exc.index], exc.field)
        where = [*where, positions[exc.index], exc.field] if batch else [*where, exc.field]
    else:
        teams = ", ".join(f"{f.home!r} v {f.away!r}" for f in forecast)
        message = f"{message} (fixtures: {teams})"
    if exc.error_type not in ("unknown_team", "unknown_league", "team_league_mismatch"):
        message = f"cannot forecast: {message}"
    detail: dict[str, Any] = {
        "type": exc.error_type,
        "loc": where,
        "msg": message,
        "input": json_safe(jsonable_encoder(value)),
    }
    if isinstance(exc, UnknownLeagueError):
        detail["ctx"] = {"known_leagues": list(exc.known_leagues)}
    elif isinstance(exc, TeamLeagueMismatchError):
        detail["ctx"] = {"league": exc.league, "team_league": exc.team_league}
    raise HTTPException(422, detail=[detail]) from exc


_FIXTURE_FIELDS = ("home", "away", "kickoff", "league")


def _check_identifiers(**values: str) -> None:
    bad = {field: value for field, value in values.items() if unsafe_identifier(value)}
    if bad:
        raise HTTPException(
            422,
            detail=[
                {
                    "type": "unsafe_identifier",
                    "loc": ["body", field],
                    "msg": (
                        f"{field} {value!r} is not a plain name: use letters, digits, '_', '.', "
                        "'-' (at most 64, no '..')"
                    ),
                    "input": value,
                }
                for field, value in bad.items()
            ],
        )


def _admin_error(action: str, exc: Exception) -> NoReturn:
    message = f"{action} failed: {_message(exc)}"
    if isinstance(exc, RegistryDamagedError):
        logger.error("%s: %s", action, exc)
        raise HTTPException(503, message) from exc  # the server's registry, not the request
    if isinstance(exc, ArtifactIntegrityError):
        raise HTTPException(409, message) from exc  # the version exists but cannot be served
    if isinstance(exc, LookupError):
        raise HTTPException(404, message) from exc
    if isinstance(exc, ValueError):
        raise HTTPException(422, message) from exc
    if isinstance(exc, RegistryError):
        raise HTTPException(409, message) from exc
    if isinstance(exc, OSError):
        logger.exception("%s: registry unavailable", action)
        raise HTTPException(503, message) from exc
    logger.exception("%s failed", action)
    raise exc


class _NoChampions:
    """A service with nothing loaded: builds the app for its schema alone."""

    ready = False
    known_leagues: frozenset[str] = frozenset()
    team_leagues: Mapping[str, str] = MappingProxyType({})
    snapshot_id = "none"

    def forecast(self, fixtures: Sequence[FixtureIn]) -> list[ForecastOut]:
        raise RuntimeError("no champions loaded")

    def models(self) -> list[dict[str, Any]]:
        return []

    def rankings(self) -> list[RankingRow]:
        return []

    def do_not_trade(self) -> list[DoNotTradeRow]:
        return []

    def reload(self) -> dict[str, Any]:
        raise RuntimeError("no registry behind this app")

    def promote(self, market: str, model_name: str, version: str) -> dict[str, Any]:
        raise RuntimeError("no registry behind this app")

    def rollback(self, market: str) -> dict[str, Any]:
        raise RuntimeError("no registry behind this app")


def openapi_schema() -> dict[str, Any]:
    """Return the v1 OpenAPI schema (what ``/v1/openapi.json`` serves), without any service.

    Returns
    -------
    dict
        The OpenAPI document; ``scripts/export_openapi.py`` writes it to ``docs/openapi-v1.json``.
    """
    # the crypto routes touch their service only when a request arrives: none comes here
    no_crypto = cast("CryptoService", object())
    return create_app(ServingSettings(), _NoChampions(), crypto=no_crypto).openapi()
