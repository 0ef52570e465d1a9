"""Background polling shared by the services: follow the registry (and a feed) between requests."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable

from marketcast.registry import Registry, RegistryError

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, str, str], ...]

#: The name a reload records for a market whose champion it could not load (see `mark_failed`).
FAILED = "<failed>"


def champion_fingerprint(registry: Registry, vertical: str, markets: Iterable[str]) -> Fingerprint:
    """The champion ``(market, name, version)`` of each market that has one, as stored now.

    A market whose pointer cannot be read counts as ``(market, "<unreadable>", "")``: the
    service leaves such a market out and serves the others, so the fingerprint must not fail
    on it either (it changes again once the pointer is repaired).
    """
    out = []
    for market in markets:
        try:
            record = registry.champion(vertical, market)
        except RegistryError:
            out.append((market, "<unreadable>", ""))
            continue
        if record is not None:
            out.append((market, record.model_name, record.version))
    return tuple(out)


def mark_failed(fingerprint: Fingerprint, market: str, version: str = "") -> Fingerprint:
    """``fingerprint`` with ``market``'s champion recorded as not loaded: ``(market, FAILED,
    version)``, which no registry fingerprint equals, so the watcher tries that market again.

    A service that leaves out a market whose champion failed to load (files unreachable for a
    moment) recorded the registry's fingerprint as if it had loaded it: the watcher saw no
    change and the market stayed out until a restart.

    Examples
    --------
    >>> mark_failed((("1h", "flat", "v1"), ("4h", "flat", "v2")), "4h")
    (('1h', 'flat', 'v1'), ('4h', '<failed>', 'v2'))
    >>> mark_failed((("1h", "flat", "v1"),), "4h", "v3")
    (('1h', 'flat', 'v1'), ('4h', '<failed>', 'v3'))
    """
    kept = [entry for entry in fingerprint if entry[0] != market]
    stored = [entry[2] for entry in fingerprint if entry[0] == market]
    return (*kept, (market, FAILED, stored[0] if stored else version))


def not_loaded(fingerprint: Fingerprint | None) -> Fingerprint:
    """The entries of a loaded fingerprint that `mark_failed` recorded as not loaded."""
    return tuple(entry for entry in fingerprint or () if entry[1] == FAILED)


#: Longest wait between retries of a reload that keeps failing with the same error.
RETRY_CAP_S = 60.0


class _NotLoadedError(Exception):
    """A reload that served without a champion it could not load (the service said why)."""


def follow_champions(
    name: str,
    poll_s: float,
    fingerprint: Callable[[], Fingerprint],
    reload: Callable[[], object],
    also: Callable[[], object] | None = None,
    loaded: Callable[[], Fingerprint | None] | None = None,
) -> threading.Event:
    """Every ``poll_s`` seconds on a daemon thread: run ``also`` (if given), then ``reload`` when
    ``fingerprint`` differs from what the service last loaded (``loaded``: the registry's
    fingerprint as its latest reload read it, from whatever path: this watcher, an admin call),
    else from this watcher's previous look. Comparing with the previous look alone missed a
    promotion and rollback (A, B, A) whose reload happened between two looks: the service kept
    B for good.

    A reload that fails (a registry mid-write, a 1X2 champion that cannot be loaded), or that
    leaves out a champion it could not load (``loaded`` holds a `mark_failed` entry), is retried,
    since the service records what it loaded only when it loaded it: at the next poll, then,
    while the same error repeats on unchanged champions, after twice the previous wait, up to
    `RETRY_CAP_S` (a failing load re-reads and hash-checks every artifact of the version); a
    change of the registry's champions is reloaded at the next poll whatever the wait. Each
    distinct error is logged once here (the service says why each attempt left a champion out).
    ``also`` runs at every poll and its errors are logged once per distinct error.
    Returns the event that stops the thread.
    """
    stop = threading.Event()
    seen = fingerprint()
    cap_polls = max(1, math.ceil(RETRY_CAP_S / poll_s))

    def watch() -> None:
        nonlocal seen
        also_error = reload_error = ""
        failed_on: Fingerprint | None = None  # the registry's champions at the failed reload
        backoff = polls_left = 0  # polls between retries of that reload, and before the next
        while not stop.wait(poll_s):
            if also is not None:
                try:
                    also()
                    also_error = ""
                except Exception as exc:
                    also_error = _warn_once(name, exc, also_error)
            now: Fingerprint | None = None
            try:
                now = fingerprint()
                reference = loaded() if loaded is not None else seen
                if now != reference:
                    polls_left -= 1
                    if now == failed_on and polls_left > 0:
                        continue  # backing off: the same champions failed a moment ago
                    reload()
                    left_out = not_loaded(loaded()) if loaded is not None else ()
                    if left_out:
                        raise _NotLoadedError(", ".join(f"{m} {v}" for m, _, v in left_out))
                seen = now
                reload_error, failed_on, backoff = "", None, 0
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if error != reload_error or now != failed_on:
                    backoff = 1
                    if isinstance(exc, _NotLoadedError):
                        log.warning("%s: left out, not loaded: %s; retrying", name, exc)
                    else:
                        log.warning("%s failed; retrying", name, exc_info=True)
                else:
                    backoff = min(backoff * 2, cap_polls)
                reload_error, failed_on, polls_left = error, now, backoff

    threading.Thread(target=watch, name=name, daemon=True).start()
    return stop


def _warn_once(name: str, exc: Exception, last_error: str) -> str:
    """Log ``exc`` unless it repeats ``last_error``; returns its text, the new last error."""
    error = f"{type(exc).__name__}: {exc}"
    if error != last_error:
        log.warning("%s failed; retrying", name, exc_info=True)
    return error
