"""Background polling shared by the services: follow the registry (and a feed) between requests."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from marketcast.registry import Registry, RegistryError

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, str, str], ...]


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


#: Longest wait between retries of a reload that keeps failing with the same error.
RETRY_CAP_S = 60.0


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
    B for good. A failing tick (a registry mid-write, a champion that cannot be loaded) is
    retried, since the service records what it loaded only when a reload succeeds: at the next
    poll, then, while the same error repeats, after twice the previous wait, up to
    `RETRY_CAP_S`; it is logged once per distinct error.
    Returns the event that stops the thread.
    """
    stop = threading.Event()
    seen = fingerprint()

    def watch() -> None:
        nonlocal seen
        last_error = ""
        wait = poll_s  # doubles while the same error repeats: a failing reload re-reads every
        while not stop.wait(wait):  # artifact of the version, so retrying each poll hammered
            try:
                if also is not None:
                    also()
                now = fingerprint()
                reference = loaded() if loaded is not None else seen
                if now != reference:
                    reload()
                seen = now
                last_error, wait = "", poll_s
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if error != last_error:
                    log.warning("%s failed; retrying", name, exc_info=True)
                    wait = poll_s
                else:
                    wait = min(wait * 2, max(poll_s, RETRY_CAP_S))
                last_error = error

    threading.Thread(target=watch, name=name, daemon=True).start()
    return stop
