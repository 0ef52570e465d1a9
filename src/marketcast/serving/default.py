"""The production wiring: settings from the environment, champions from the local registry."""

from __future__ import annotations

import contextlib
import difflib
import gc
import hashlib
import math
import os
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import fsspec.core
from fastapi import FastAPI
from fsspec.implementations.local import LocalFileSystem

from marketcast.registry import Registry
from marketcast.registry.store import protocol_names, underlying
from marketcast.serving.app import create_app
from marketcast.serving.crypto import ENV_PREFIX as CRYPTO_ENV_PREFIX
from marketcast.serving.crypto import ENV_VARIABLES as CRYPTO_ENV_VARIABLES
from marketcast.serving.crypto import HORIZONS, CryptoService, CryptoSettings
from marketcast.serving.crypto import VERTICAL as CRYPTO
from marketcast.serving.explain import LLMExplainer
from marketcast.serving.service import (
    ChampionService,
    ServiceSettings,
    no_champion_reason,
    setting_requirement,
)
from marketcast.serving.settings import ENV_PREFIX, ServingSettings, env_variable

#: `ServiceSettings` fields read from ``MARKETCAST_<FIELD>`` (the LLM's have their own names).
_SERVICE_ENV_FIELDS = ("edge_threshold", "stale_after_days", "neural_runtime")


def service_settings_from_env(environ: Mapping[str, str] | None = None) -> ServiceSettings:
    """Routing threshold, staleness limit, LLM endpoint and network runtime from ``MARKETCAST_*``.

    An unset or empty variable keeps the default. The ranges are :class:`ServiceSettings`'s
    own (:func:`setting_requirement`), so a bad value fails here and in Python alike; here the
    error names the variable.

    Raises
    ------
    ValueError
        Naming the variable, for text that is not a number or a value out of range.

    Examples
    --------
    >>> s = service_settings_from_env({"MARKETCAST_EDGE_THRESHOLD": "0.9"})
    >>> (s.edge_threshold, s.llm, s.neural_runtime)
    (0.9, None, 'onnx')
    >>> service_settings_from_env({"MARKETCAST_STALE_AFTER_DAYS": "-5"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: MARKETCAST_STALE_AFTER_DAYS must be a number of days > 0 (...), got '-5'
    """
    env = os.environ if environ is None else environ
    llm = None
    timeout_s = _llm_timeout_s(env)  # checked without a base URL too: a typo fails at start
    if env.get("MARKETCAST_LLM_BASE_URL"):
        llm = LLMExplainer(
            base_url=_llm_base_url(env["MARKETCAST_LLM_BASE_URL"]),
            # blank is unset, as the docstring says ('' was sent as the model's name)
            model=env.get("MARKETCAST_LLM_MODEL", "").strip() or "default",
            api_key=env.get("MARKETCAST_LLM_API_KEY", "").strip() or None,
            timeout_s=timeout_s,
        )
    values: dict[str, Any] = {}
    for name in _SERVICE_ENV_FIELDS:
        variable = ENV_PREFIX + name.upper()
        raw = env.get(variable, "").strip()
        if not raw:
            continue
        value: Any = raw
        if name != "neural_runtime":
            with contextlib.suppress(ValueError):
                value = float(raw)
        requirement = setting_requirement(name, value)
        if requirement is not None:
            raise ValueError(f"{variable} must be {requirement}, got {raw!r}")
        values[name] = value
    return ServiceSettings(llm=llm, **values)


def _llm_base_url(raw: str) -> str:
    """``MARKETCAST_LLM_BASE_URL`` if it is an http(s) URL with a host and no credentials.

    A ``user:password@`` part was never sent (the call takes the host alone) and went into
    every failure's log line; the key belongs in ``MARKETCAST_LLM_API_KEY``. A URL that is no
    http(s) URL failed every call and is refused at start instead.

    >>> _llm_base_url("http://u:secret@llm:8000/v1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: MARKETCAST_LLM_BASE_URL must not carry a user or password (http://***@llm:8000/v1)...
    """
    parts = urllib.parse.urlsplit(raw.strip())
    if parts.username is not None or parts.password is not None:
        shown = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
        raise ValueError(
            f"MARKETCAST_LLM_BASE_URL must not carry a user or password ({shown}): it is never "
            "sent; give the key in MARKETCAST_LLM_API_KEY"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"MARKETCAST_LLM_BASE_URL must be an http or https URL with a host, got {raw!r}"
        )
    return raw.strip()


def _llm_timeout_s(env: Mapping[str, str]) -> float:
    """``MARKETCAST_LLM_TIMEOUT_S`` (default 2): seconds a cloud forecast waits on the LLM."""
    raw = env.get("MARKETCAST_LLM_TIMEOUT_S", "").strip() or "2.0"
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 < value < math.inf:
        raise ValueError(f"MARKETCAST_LLM_TIMEOUT_S must be a number of seconds > 0, got {raw!r}")
    return value


def build_service(settings: ServingSettings) -> ChampionService:
    """Load the registry's champions.

    Raises
    ------
    LookupError
        When there is no 1X2 champion, saying whether the registry folder itself is missing,
        unless ``settings.await_champions``: the service then starts not ready and loads the
        champions once they are registered (:meth:`ChampionService.follow_registry`).
    """
    registry = Registry(settings.registry)
    service = ChampionService(registry, service_settings_from_env())
    service.reload()
    if not service.ready and not settings.await_champions:
        raise LookupError(no_champion_reason(registry))
    return service


def build_crypto_service(
    settings: ServingSettings, environ: Mapping[str, str] | None = None
) -> CryptoService | None:
    """The crypto champions over a candle store, or ``None`` when the registry has none (and
    ``settings.await_champions`` is off: with it, the service starts without champions until
    they are registered: a route for one horizon answers 503, the lists are empty).

    ``MARKETCAST_CRYPTO=0`` leaves crypto out. Without ``MARKETCAST_CRYPTO_JOURNAL`` the
    journal is :func:`default_journal_path`'s, so bars pushed to one worker reach every worker.
    """
    env = os.environ if environ is None else environ
    if env.get("MARKETCAST_CRYPTO", "1") == "0":
        return None
    registry = Registry(settings.registry)
    if not settings.await_champions and not any(
        registry.champion(CRYPTO, horizon) for horizon in HORIZONS
    ):
        return None
    crypto_settings = CryptoSettings.from_env(env)
    if crypto_settings.journal_path is None:
        journal = default_journal_path(settings.registry)
        if journal is not None:
            crypto_settings = crypto_settings.model_copy(update={"journal_path": str(journal)})
    service = CryptoService(registry, crypto_settings)
    service.reload()
    return service


def default_journal_path(registry: str, cwd: Path | None = None) -> Path | None:
    """Where a server's workers share the crypto feed when no journal is configured.

    A local registry (a path or a ``file://`` URL) keeps it beside itself, in
    ``<registry>/../feed/crypto-bars.jsonl``. A remote one (``s3://``, ``gs://``, ...) has no
    local folder, and the feed is this server's state, not the registry's: its journal goes to
    ``feed/crypto-bars-<12 hex digits of the URL's SHA-256>.jsonl`` under the working directory
    (``cwd``), which every worker of one ``marketcast serve`` shares; servers on several hosts
    need ``MARKETCAST_CRYPTO_JOURNAL`` on a shared disk. A ``memory://`` registry lives in one
    process, so there is nothing to share: ``None``.

    Examples
    --------
    >>> default_journal_path("/srv/marketcast/registry")
    PosixPath('/srv/marketcast/feed/crypto-bars.jsonl')
    >>> default_journal_path("s3://bets/registry", cwd=Path("/srv/app"))
    PosixPath('/srv/app/feed/crypto-bars-d030cfd6fe5d.jsonl')
    >>> default_journal_path("memory://registry") is None
    True

    A chained URL is the filesystem it opens, with its cache and ``dir::`` layers stepped over
    as the registry steps over them (``registry.store.underlying``): ``dir::/srv/reg`` is the
    folder ``/srv/reg``, and ``dir::memory://x`` lives in one process.

    >>> default_journal_path("dir::/srv/marketcast/registry")
    PosixPath('/srv/marketcast/feed/crypto-bars.jsonl')
    >>> default_journal_path("simplecache::memory://registry") is None
    True
    """
    if "::" in registry:
        try:
            fs, path = underlying(*fsspec.core.url_to_fs(registry))
        except (ImportError, ValueError, OSError):  # the server's registry check names it
            fs, path = None, ""
        if isinstance(fs, LocalFileSystem):
            return Path(path).resolve().parent / "feed" / "crypto-bars.jsonl"
        if fs is not None and "memory" in protocol_names(fs):
            return None
    protocol, _, rest = registry.partition("://")
    if not rest:  # a plain path
        return Path(registry).resolve().parent / "feed" / "crypto-bars.jsonl"
    if protocol in ("file", "local"):
        return Path(rest).resolve().parent / "feed" / "crypto-bars.jsonl"
    if protocol == "memory":
        return None
    digest = hashlib.sha256(registry.encode("utf-8")).hexdigest()[:12]
    return (Path.cwd() if cwd is None else cwd) / "feed" / f"crypto-bars-{digest}.jsonl"


def create_default_app() -> FastAPI:
    """App factory for ``uvicorn --factory marketcast.serving.default:create_default_app``."""
    return build_default_app(ServingSettings.from_env())


def build_default_app(settings: ServingSettings) -> FastAPI:
    """The production app: football and (when registered) crypto champions, following the
    registry, start-up objects frozen out of the garbage collector."""
    service = build_service(settings)
    crypto = build_crypto_service(settings)
    # The loaded champions (and torch, when the neural model is among them) are ~280k
    # long-lived objects: a full collection over them takes ~100 ms, a latency spike every time
    # the collector reaches the oldest generation. Freezing them keeps those pauses off requests;
    # what later reloads allocate is collected as usual.
    gc.collect()
    gc.freeze()
    # With several workers an admin call reaches one of them: all follow the registry instead.
    poll_s = registry_poll_seconds(os.environ)
    service.follow_registry(poll_s)
    if crypto is not None:
        crypto.follow(poll_s)
    return create_app(settings, service, crypto)


def unknown_env_variables(environ: Mapping[str, str], also: Iterable[str] = ()) -> list[str]:
    """``MARKETCAST_*`` variables in ``environ`` that no setting reads, each with the nearest
    known name when there is one (``MARKETCAST_PROT (did you mean MARKETCAST_PORT?)``): a
    misspelt variable was ignored without a word, and the default served. ``also`` adds names
    read elsewhere (the supervisor's own).

    Examples
    --------
    >>> unknown_env_variables({"MARKETCAST_PROT": "9000", "MARKETCAST_PORT": "9000", "HOME": "/"})
    ['MARKETCAST_PROT (did you mean MARKETCAST_PORT?)']
    """
    known = {env_variable(name) for name in ServingSettings.model_fields}
    known |= {ENV_PREFIX + name.upper() for name in _SERVICE_ENV_FIELDS}
    known |= {f"{ENV_PREFIX}LLM_{part}" for part in ("BASE_URL", "MODEL", "API_KEY", "TIMEOUT_S")}
    known |= {CRYPTO_ENV_PREFIX + suffix for suffix in CRYPTO_ENV_VARIABLES.values()}
    known |= {"MARKETCAST_CRYPTO", "MARKETCAST_REGISTRY_POLL_S", *also}
    out = []
    for name in sorted(v for v in environ if v.startswith(ENV_PREFIX) and v not in known):
        near = difflib.get_close_matches(name, sorted(known), n=1)
        out.append(name + (f" (did you mean {near[0]}?)" if near else ""))
    return out


def registry_poll_seconds(environ: Mapping[str, str]) -> float:
    """``MARKETCAST_REGISTRY_POLL_S`` (default 1): how often workers look for a new champion.

    Raises
    ------
    ValueError
        For text that is not a number, or a value outside [0.05, 3600] seconds: ``0`` or a
        negative value used to make the watcher spin a whole core.

    Examples
    --------
    >>> registry_poll_seconds({"MARKETCAST_REGISTRY_POLL_S": "2.5"})
    2.5
    >>> registry_poll_seconds({"MARKETCAST_REGISTRY_POLL_S": "-1"})
    Traceback (most recent call last):
    ...
    ValueError: MARKETCAST_REGISTRY_POLL_S=-1: seconds between registry checks, in [0.05, 3600]
    """
    raw = environ.get("MARKETCAST_REGISTRY_POLL_S", "").strip() or "1.0"
    problem = f"MARKETCAST_REGISTRY_POLL_S={raw}: seconds between registry checks, in [0.05, 3600]"
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(problem) from None
    if not 0.05 <= value <= 3600:
        raise ValueError(problem)
    return value
