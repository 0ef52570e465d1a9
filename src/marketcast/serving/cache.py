"""A thread-safe, size-bounded LRU cache whose entries expire after a time to live."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Least-recently-used cache with a per-entry time to live.

    Parameters
    ----------
    max_entries
        Most entries kept; the least recently used one is evicted first. 0 disables the cache.
    ttl_s
        Seconds an entry stays valid after it was stored. 0 disables the cache.
    clock
        Monotonic clock in seconds (injected in tests).
    live
        Whether an entry under a key can still be looked up (the app's keys name a snapshot,
        live while it is the one served). Asked under the cache's lock: `put` does not store
        a dead key, and `prune` drops the entries of dead keys. ``None``: every key is live.

    Examples
    --------
    >>> now = [0.0]
    >>> cache = TTLCache[str](max_entries=2, ttl_s=10.0, clock=lambda: now[0])
    >>> cache.put("a", "A"); cache.put("b", "B"); cache.get("a")
    'A'
    >>> cache.put("c", "C")  # evicts "b", the least recently used
    >>> cache.get("b") is None, len(cache)
    (True, 2)
    >>> now[0] = 10.5
    >>> cache.get("a") is None  # expired
    True
    >>> cache.hits, cache.misses
    (1, 2)
    >>> served = ["s1"]
    >>> cache = TTLCache[str](10, 10.0, live=lambda key: key[0] == served[0])
    >>> cache.put(("s1", "x"), "X1"); served[0] = "s2"; cache.put(("s1", "y"), "Y1")
    >>> cache.put(("s2", "x"), "X2"); len(cache), cache.prune(), len(cache)
    (2, 1, 1)
    """

    def __init__(
        self,
        max_entries: int,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        live: Callable[[Hashable], bool] | None = None,
    ) -> None:
        if max_entries < 0 or ttl_s < 0:
            raise ValueError("max_entries and ttl_s must be >= 0")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        self._live = live
        self._lock = threading.Lock()
        # key -> (expiry time in clock seconds, value); order = recency, oldest first
        self._entries: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def enabled(self) -> bool:
        """False when the size or the time to live is 0."""
        return self.max_entries > 0 and self.ttl_s > 0

    def get(self, key: Hashable) -> V | None:
        """Return the live value under ``key`` (marking it recently used), else ``None``."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            expires_at, value = entry
            if expires_at <= now:
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value`` under ``key``, evicting the least recently used entries if full;
        nothing when ``key`` is not live (asked under the lock, so a `prune` cannot run between
        the question and the store)."""
        if not self.enabled:
            return
        expires_at = self._clock() + self.ttl_s
        with self._lock:
            if self._live is not None and not self._live(key):
                return
            self._entries[key] = (expires_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def prune(self) -> int:
        """Drop the entries whose key is no longer live; returns how many were dropped.

        Under the lock, so no `put` lands during the scan: an entry stored before it is
        dropped if dead, one stored after it was refused if dead.
        """
        if self._live is None:
            return 0
        with self._lock:
            dead = [key for key in self._entries if not self._live(key)]
            for key in dead:
                del self._entries[key]
        return len(dead)

    def clear(self) -> None:
        """Drop every entry (the hit and miss counts stay)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
