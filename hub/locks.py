"""Locks shared by every hub process (web and workers), held in Redis.

For the rare work that must not run twice at once anywhere — refreshing a
provider's single-use refresh token is the case that needs it: two processes
spending the same refresh token leave one of them with a dead grant.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from hub.errors import QueueUnavailable

log = logging.getLogger(__name__)


class RedisLocks:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    @asynccontextmanager
    async def hold(
        self, name: str, *, ttl: float = 30.0, wait: float = 30.0
    ) -> AsyncIterator[None]:
        """Hold the lock `name` while the block runs. Waits up to `wait` seconds for
        another holder; the lock frees itself after `ttl` seconds if its holder died.
        Raises QueueUnavailable when Redis cannot be reached or the wait runs out."""
        lock = self.redis.lock(f"{self.prefix}:lock:{name}", timeout=ttl, blocking_timeout=wait)
        try:
            acquired = await lock.acquire()
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"cannot take lock {name!r}: {exc}") from exc
        if not acquired:
            raise QueueUnavailable(f"lock {name!r} is still held after {wait:.0f} s")
        try:
            yield
        finally:
            try:
                await lock.release()
            except (LockError, RedisError, OSError):
                # Expired (the block outlived ttl) or Redis went away: the lock frees
                # itself either way.
                log.warning("lock released late", extra={"event": "lock.expired", "lock": name})
