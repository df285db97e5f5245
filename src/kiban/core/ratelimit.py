"""A per-client sliding-window limit for public endpoints that anyone may call (the tax
simulation, certificate verification by code), kept in memory."""

from __future__ import annotations

import threading
import time
from collections import deque

from kiban.core.errors import KibanError


class RateLimited(KibanError):
    def __init__(self) -> None:
        super().__init__(ja="リクエストが多すぎます。しばらくしてからお試しください。",
                         en="Too many requests; try again shortly.", status=429,
                         code="rate-limited")


class SlidingWindow:
    """At most `limit` requests per `window` seconds per client address (in this process;
    behind several instances each enforces its own share)."""

    def __init__(self, limit: int = 60, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) > self.max_clients:  # forget idle clients, bounded memory
                self._seen = {k: v for k, v in self._seen.items()
                              if v and v[-1] > now - self.window}
            times = self._seen.setdefault(client, deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                raise RateLimited()
            times.append(now)
