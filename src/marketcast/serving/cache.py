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
    """

    def __init__(
        self,
        max_entries: int,
        ttl_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 0 or ttl_s < 0:
            raise ValueError("max_entries and ttl_s must be >= 0")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
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
        """Store ``value`` under ``key``, evicting the least recently used entries if full."""
        if not self.enabled:
            return
        expires_at = self._clock() + self.ttl_s
        with self._lock:
            self._entries[key] = (expires_at, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every entry (the hit and miss counts stay)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
