"""Which web-chat conversations have a widget open right now, anywhere in the
cluster, and when the last one closed — kept in Redis, because the socket may
live in another hub process than the one asking.

Per conversation, a sorted set of socket ids scored by when their entry
expires; each process refreshes its own sockets' entries every `ttl / 3`, so a
crashed process's sockets drop out by themselves within `ttl`. When a socket
closes, the moment is kept as the conversation's "left at".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hub.clock import Clock
from hub.errors import QueueUnavailable
from hub.inbox.model import to_ms

log = logging.getLogger(__name__)

LEFT_KEPT_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class VisitorState:
    connected: bool
    left_at_ms: int | None  # when the last widget closed (None: unknown or never)


class VisitorPresence:
    def __init__(
        self, redis: Redis, prefix: str, account_id: str, clock: Clock, ttl_seconds: float = 60
    ) -> None:
        self.redis = redis
        self.base = f"{prefix}:webchat:{account_id}"
        self.clock = clock
        self.ttl_ms = int(ttl_seconds * 1000)

    def _live(self, conversation_id: str) -> str:
        return f"{self.base}:live:{conversation_id}"

    def _left(self, conversation_id: str) -> str:
        return f"{self.base}:left:{conversation_id}"

    async def refresh(self, entries: Iterable[tuple[str, str]]) -> None:
        """Mark these (conversation id, socket id) pairs as open for another ttl.
        Presence is advice, not data: a Redis outage is logged, not raised."""
        expires = to_ms(self.clock.now()) + self.ttl_ms
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                count = 0
                for conversation_id, socket_id in entries:
                    key = self._live(conversation_id)
                    pipe.zadd(key, {socket_id: expires})
                    pipe.pexpire(key, self.ttl_ms * 2)
                    count += 1
                if count:
                    await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning(
                "cannot record web-chat presence",
                extra={"event": "webchat.presence_failed", "error": str(exc)},
            )

    async def leave(self, conversation_id: str, socket_id: str) -> None:
        now = to_ms(self.clock.now())
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self._live(conversation_id), socket_id)
                pipe.set(self._left(conversation_id), now, ex=LEFT_KEPT_SECONDS)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning(
                "cannot record web-chat presence",
                extra={"event": "webchat.presence_failed", "error": str(exc)},
            )

    async def state(self, conversation_id: str) -> VisitorState:
        """Raises QueueUnavailable when Redis cannot say."""
        now = to_ms(self.clock.now())
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zcount(self._live(conversation_id), f"({now}", "+inf")
                pipe.get(self._left(conversation_id))
                live, left = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"cannot read web-chat presence: {exc}") from exc
        return VisitorState(connected=int(live) > 0, left_at_ms=int(left) if left else None)
