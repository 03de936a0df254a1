"""Per-visitor message rate limit: a token bucket per visitor id, in memory.

Each hub process keeps its own buckets, so a visitor whose tabs reach several
processes gets the limit once per process; a chat widget's users never come
near it, and it is there to stop one script from flooding the inbox.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        burst: int,
        per_minute: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.burst = float(burst)
        self.per_second = per_minute / 60.0
        self.monotonic = monotonic
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token for `key`: 0 when allowed, else the seconds until a
        token is back (nothing is spent then)."""
        now = self.monotonic()
        tokens, at = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_second)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.per_second
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self.max_keys:
            # Forgetting the least recently seen visitor gives them a full bucket
            # back; that is the cheap side to err on.
            self._buckets.popitem(last=False)
        return 0.0
