"""Agents' presence from their browser sockets: online while a tab is open,
away a grace period after the last one closed.

Sockets are counted in Redis, across every hub process: one sorted set per
agent of live socket ids, each scored with a lease expiry that the process
holding the socket renews. A process that dies stops renewing, so its sockets
stop counting within one lease instead of keeping the agent "online" forever.

When an agent's last socket closes, an arq deferred job (`settle`) runs after
the grace period: if no socket came back meanwhile and the agent is still
online, they turn away. Reloading a page (close, then open within the grace
period) changes nothing. Opening a socket brings an agent turned away by this
grace back online. Only that automatic change is undone automatically: the
manual switch (`PUT /api/v1/agents/me/presence`) decides the rest, so signing
in to the workspace does not by itself start routing conversations to someone
who is offline, and an agent who chose "away" stays away.

Every change is published as `agent.presence`, which the router listens to
(someone came online: drain the waiting queue).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from hub.errors import QueueUnavailable
from hub.events import Event, EventBus
from hub.inbox.model import Presence
from hub.inbox.store import Store

log = logging.getLogger(__name__)

SETTLE = "settle_presence"
LEASE_SECONDS = 90.0  # a socket's entry lives this long unless renewed
RENEW_EVERY_SECONDS = 30.0


class PresenceTracker:
    def __init__(
        self,
        redis: ArqRedis,
        prefix: str,
        queue_name: str,
        store: Store,
        bus: EventBus,
        grace: timedelta,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.queue_name = queue_name
        self.store = store
        self.bus = bus
        self.grace = grace
        self._local: dict[str, str] = {}  # socket id → agent id, in this process
        self._renewer: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def _sockets_key(self, agent_id: str) -> str:
        return f"{self.prefix}:presence:sockets:{agent_id}"

    def _auto_away_key(self, agent_id: str) -> str:
        return f"{self.prefix}:presence:auto-away:{agent_id}"

    async def opened(self, agent_id: str, socket_id: str) -> Presence | None:
        """A browser socket of the agent opened (in this process). Returns the
        agent's presence now (None when Redis could not be reached)."""
        self._local[socket_id] = agent_id
        self._start_renewing()
        try:
            await self.redis.zadd(
                self._sockets_key(agent_id), {socket_id: time.time() + LEASE_SECONDS}
            )
            auto_away = await self.redis.get(self._auto_away_key(agent_id))
        except (RedisError, OSError) as exc:
            log.warning(
                "cannot record an agent's socket",
                extra={"event": "presence.redis_failed", "agent_id": agent_id, "error": str(exc)},
            )
            return None
        agent = await self.store.get_agent(agent_id)
        if agent is None or not agent.active:
            return None
        if agent.presence == "away" and auto_away:
            await self._set(agent_id, "online")
            return "online"
        return agent.presence

    def closed_soon(self, agent_id: str, socket_id: str) -> None:
        """`closed`, as a task of its own: safe to call from a handler that is
        being cancelled (the usual way a socket handler ends)."""
        task = asyncio.create_task(self.closed(agent_id, socket_id), name="presence-closed")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def closed(self, agent_id: str, socket_id: str) -> None:
        """A browser socket of the agent closed; if it was their last, they turn
        away after the grace period unless one opens again."""
        self._local.pop(socket_id, None)
        try:
            await self.redis.zrem(self._sockets_key(agent_id), socket_id)
            if await self.live_sockets(agent_id) == 0:
                await self.redis.enqueue_job(
                    SETTLE,
                    agent_id,
                    _job_id=f"{SETTLE}:{agent_id}:{time.time_ns()}",
                    _queue_name=self.queue_name,
                    _defer_by=self.grace,
                )
        except (RedisError, OSError) as exc:
            log.warning(
                "cannot record a closed agent socket",
                extra={"event": "presence.redis_failed", "agent_id": agent_id, "error": str(exc)},
            )

    async def live_sockets(self, agent_id: str) -> int:
        """Open sockets of the agent in every process (leases not yet expired)."""
        key = self._sockets_key(agent_id)
        await self.redis.zremrangebyscore(key, "-inf", time.time())
        return int(await self.redis.zcard(key))

    async def settle(self, agent_id: str) -> Presence | None:
        """The grace period is over: an online agent with no socket left turns
        away. Returns the new presence, or None when nothing changed. Safe to
        run twice."""
        if await self.live_sockets(agent_id):
            return None
        agent = await self.store.get_agent(agent_id)
        if agent is None or agent.presence != "online":
            return None
        await self.redis.set(self._auto_away_key(agent_id), "1")
        await self._set(agent_id, "away")
        return "away"

    async def _set(self, agent_id: str, presence: Presence) -> None:
        await self.store.update_agent(agent_id, presence=presence)
        if presence == "online":
            await self.redis.delete(self._auto_away_key(agent_id))
        log.info(
            "presence changed",
            extra={"event": "presence.changed", "agent_id": agent_id, "presence": presence},
        )
        try:
            await self.bus.publish(
                Event("agent.presence", {"agent_id": agent_id, "presence": presence})
            )
        except QueueUnavailable:
            pass  # stored; the workers' queue pass picks up what this would have

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew_forever(), name="presence-renew")

    async def _renew_forever(self) -> None:
        while self._local:
            await asyncio.sleep(RENEW_EVERY_SECONDS)
            expiry = time.time() + LEASE_SECONDS
            try:
                for socket_id, agent_id in list(self._local.items()):
                    await self.redis.zadd(self._sockets_key(agent_id), {socket_id: expiry}, xx=True)
            except (RedisError, OSError):
                pass  # the next round renews; a lease is three rounds long

    async def close(self) -> None:
        if self._closing:
            await asyncio.wait(self._closing, timeout=5)
        if self._renewer is not None:
            self._renewer.cancel()
            try:
                await self._renewer
            except asyncio.CancelledError:
                pass
