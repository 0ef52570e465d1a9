"""HTTP routes of the crypto signals (v1): ``crypto_router(service, settings)`` builds them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, HTTPException, Query, Security
from fastapi.responses import Response

from marketcast.serving.crypto import (
    HORIZONS,
    CandleRejectedError,
    CryptoService,
    JournalWriteError,
    UnknownNameError,
)
from marketcast.serving.crypto_schemas import (
    CandlesIn,
    CandlesPushOut,
    CryptoDoNotTradeRow,
    CryptoRankingRow,
    CryptoSignalsOut,
    CryptoStatusOut,
    FundingPushIn,
    FundingPushOut,
)
from marketcast.serving.json_body import BODY_ERRORS, StrictJSONRoute
from marketcast.serving.security import admin_guard
from marketcast.serving.settings import ServingSettings

_Responses = dict[int | str, dict[str, Any]]
_SIGNAL_ERRORS: _Responses = {
    422: {"description": "unknown pair or horizon (the body names it)"},
    503: {"description": "no crypto champion for the horizon"},
}
_PUSH_ERRORS: _Responses = {
    **BODY_ERRORS,
    401: {"description": "missing or malformed bearer token"},
    403: {"description": "wrong token, or admin disabled"},
    422: {"description": "a bar breaks a candle rule (the body names the bar and the field)"},
    503: {"description": "the journal could not be written: nothing was kept; retry"},
}
_FUNDING_ERRORS: _Responses = {
    **_PUSH_ERRORS,
    422: {"description": "a funding event breaks a rule (the body names the event and the field)"},
}
_RELOAD_ERRORS: _Responses = {
    **{k: v for k, v in _PUSH_ERRORS.items() if k in (401, 403)},
    409: {"description": "the registry refused to read a champion"},
    422: {"description": "MARKETCAST_CRYPTO_WINDOW_BARS too short for a champion"},
    503: {"description": "registry unavailable"},
}
#: ``create_app``'s wrapper of an admin call: counts it in ``marketcast_reloads_total`` under
#: its action and answers a failure as the football admin endpoints do.
AdminCall = Callable[[str, Callable[[], dict[str, Any]]], Response]
HorizonQuery = Annotated[
    str | None, Query(description="1h, 4h or 1d; omitted: every horizon with a champion")
]


def crypto_router(
    service: CryptoService, settings: ServingSettings, admin_call: AdminCall | None = None
) -> APIRouter:
    """Build the ``/v1/crypto`` routes around a :class:`CryptoService`.

    Parameters
    ----------
    service
        The crypto champions and the candle store.
    settings
        Server settings: the admin token of the candle push.
    admin_call
        Runs ``POST /v1/admin/crypto/reload`` (action ``crypto_reload``): ``create_app``'s,
        which counts it and maps a registry error to its status. ``None``: called bare.

    Returns
    -------
    APIRouter
        ``create_app(..., crypto=service)`` mounts it behind the app's body cap
        (``BodySizeLimitMiddleware``) and metrics.
    """
    router = APIRouter(tags=["crypto"], route_class=StrictJSONRoute)  # no repeated JSON keys
    admin = Security(admin_guard(settings.admin_token))

    def answer(horizon: str | None, pair: str | None, where: str) -> CryptoSignalsOut:
        """``where``: the pair's place in the request (the horizon is always a query)."""
        try:
            snap, signals = service.signals(horizon, pair)
        except UnknownNameError as exc:
            _unknown_name(exc, where if exc.kind == "pair" else "query")
        except LookupError as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "60"}) from exc
        latest = service.latest_bar_time(snap)
        return CryptoSignalsOut(
            snapshot_id=snap.snapshot_id, latest_bar_time=latest, signals=signals
        )

    @router.get("/v1/crypto/signals", response_model=CryptoSignalsOut, responses=_SIGNAL_ERRORS)
    def signals(
        horizon: HorizonQuery = None,
        pair: Annotated[str | None, Query(description="e.g. BTCUSDT; omitted: every pair")] = None,
    ) -> CryptoSignalsOut:
        """The current signal of every pair (or one) for a horizon (or every horizon)."""
        return answer(horizon, pair, "query")

    @router.get(
        "/v1/crypto/signals/{pair}", response_model=CryptoSignalsOut, responses=_SIGNAL_ERRORS
    )
    def pair_signals(pair: str, horizon: HorizonQuery = None) -> CryptoSignalsOut:
        """The current signals of one pair, every horizon (or one)."""
        return answer(horizon, pair, "path")

    @router.get("/v1/crypto/rankings", response_model=list[CryptoRankingRow])
    def rankings() -> list[CryptoRankingRow]:
        """Tradable (pair, horizon) rows by edge after costs, then confidence."""
        return service.rankings()

    @router.get("/v1/crypto/do-not-trade", response_model=list[CryptoDoNotTradeRow])
    def do_not_trade() -> list[CryptoDoNotTradeRow]:
        """Pairs failing the staleness or universe checks, and horizons without a champion."""
        return service.do_not_trade()

    @router.get("/v1/crypto/status", response_model=CryptoStatusOut)
    def status() -> CryptoStatusOut:
        """The candle store (pairs, bars, latest bar) and the champion of each horizon."""
        return CryptoStatusOut.model_validate(service.status())

    @router.post(
        "/v1/crypto/candles",
        response_model=CandlesPushOut,
        responses=_PUSH_ERRORS,
        dependencies=[admin],
    )
    def push_candles(body: CandlesIn) -> CandlesPushOut:
        """Append closed hourly bars from the feed; the next signals read them."""
        try:
            pushed = service.push_candles(body.bars)
        except CandleRejectedError as exc:
            _rejected(exc, "bars", "bar")
        except JournalWriteError as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from exc
        snap = pushed.snapshot
        closes = service.bar_closes(snap)
        return CandlesPushOut(
            accepted=len(body.bars),
            latest_bar_time=service.latest_bar_time(snap),
            latest_by_pair={p: closes[p] for p in sorted({b.pair for b in body.bars})},
            snapshot_id=snap.snapshot_id,
            zero_volume=pushed.zero_volume,
            gap_bars_filled=pushed.gap_bars_filled,
            gap_bars_left=pushed.gap_bars_left,
        )

    @router.post(
        "/v1/crypto/funding",
        response_model=FundingPushOut,
        responses=_FUNDING_ERRORS,
        dependencies=[admin],
    )
    def push_funding(body: FundingPushIn) -> FundingPushOut:
        """Append funding events of perpetuals from the feed; the next signals read them."""
        try:
            snap = service.push_funding(body.rates)
        except CandleRejectedError as exc:
            _rejected(exc, "rates", "funding event")
        except JournalWriteError as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from exc
        latest = snap.store.last_funding_by_pair()
        return FundingPushOut(
            accepted=len(body.rates),
            latest_by_pair={
                p: latest[p].to_pydatetime() for p in sorted({r.pair for r in body.rates})
            },
            snapshot_id=snap.snapshot_id,
        )

    @router.post(
        "/v1/admin/crypto/reload",
        response_model=dict[str, Any],
        responses=_RELOAD_ERRORS,
        dependencies=[admin],
        tags=["admin"],
    )
    def reload() -> Any:
        """Re-read each horizon's crypto champion from the registry and swap them in."""
        if admin_call is None:
            return service.reload()
        return admin_call("crypto_reload", service.reload)

    return router


def _unknown_name(exc: UnknownNameError, where: str) -> NoReturn:
    known = sorted(exc.known) if exc.kind == "pair" else list(HORIZONS)
    raise HTTPException(
        422,
        detail=[
            {
                "type": f"unknown_{exc.kind}",
                "loc": [where, exc.kind],
                "msg": f"unknown {exc.kind} {exc.name!r}; known: {', '.join(known)}",
                "input": exc.name,
                "ctx": {f"known_{exc.kind}s": known},
            }
        ],
    ) from exc


def _rejected(exc: CandleRejectedError, key: str, noun: str) -> NoReturn:
    """A refused push as a 422 in FastAPI's validation-error shape, naming the row and field."""
    raise HTTPException(
        422,
        detail=[
            {
                "type": exc.kind,
                "loc": ["body", key, exc.row, exc.field],
                "msg": f"{noun} {exc.row}, field {exc.field!r}: {exc.reason}",
                "input": exc.value,
            }
        ],
    ) from exc
