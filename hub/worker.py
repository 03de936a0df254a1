"""The worker: arq jobs that deliver outbound messages, and the sweeper.

It runs inside `hub serve` by default (embedded mode), or alone as
`hub worker` for deployments that scale workers apart from web processes.
The arq `Worker` is configured explicitly from hub's settings (below) rather
than through arq's CLI, so both commands share one runtime and one embedded
Redis. Jobs take ids, load fresh state and are safe to run twice.

On shutdown the worker stops taking jobs and lets running deliveries finish
(up to `server.shutdown_grace_seconds`); a job cut off after that is run
again after the restart, with the same idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from arq import Retry
from arq.cron import cron
from arq.worker import Worker, func

from hub.care.webhooks import Retry as WebhookRetry
from hub.care.webhooks import webhook_secret
from hub.delivery import RetryLater
from hub.inbox.model import from_ms, new_id
from hub.jobs import CAMPAIGN_SEND, CARE_WEBHOOK, DELIVER, WAKE
from hub.routing.presence import SETTLE
from hub.routing.sla import CHECK_SLA

if TYPE_CHECKING:
    from hub.app import Runtime

log = logging.getLogger(__name__)

# arq must never give up on its own: the deliverer counts attempts in the store
# and marks the message failed with its reason when they run out.
ARQ_MAX_TRIES = 10_000


async def deliver(ctx: dict[str, Any], message_id: str) -> str:
    runtime = ctx["runtime"]
    result = await runtime.deliverer.deliver(message_id)
    if isinstance(result, RetryLater):
        raise Retry(defer=result.delay)
    return str(result.outcome)


async def settle_presence(ctx: dict[str, Any], agent_id: str) -> str:
    """An agent's last socket closed a grace period ago: away, unless one is back."""
    presence = ctx["runtime"].presence
    return str(await presence.settle(agent_id)) if presence is not None else "None"


async def check_sla(ctx: dict[str, Any], conversation_id: str) -> str:
    """A first-response deadline came: escalate if no agent has answered."""
    sla = ctx["runtime"].sla
    return await sla.check(conversation_id) if sla is not None else "off"


async def care_webhook(
    ctx: dict[str, Any], rule_name: str, index: int, body: str, delivery_id: str
) -> str:
    """POST a care rule's webhook; retried with backoff by raising arq's Retry."""
    runtime = ctx["runtime"]
    rule = runtime.care.rule(rule_name)
    if rule is None or index >= len(rule.actions) or rule.actions[index].type != "webhook":
        log.warning(
            "care webhook for a rule that is no longer configured; dropped",
            extra={"event": "care.webhook_dropped", "rule": rule_name},
        )
        return "dropped"
    action = rule.actions[index]
    result = await runtime.care_webhooks.post(
        action.url, webhook_secret(action.secret_env), body, delivery_id, ctx["job_try"]
    )
    if isinstance(result, WebhookRetry):
        raise Retry(defer=result.delay)
    return str(result)


async def care_due(ctx: dict[str, Any]) -> int:
    """Send care messages that are due (follow-ups, ones that waited for daytime)."""
    return int(await ctx["runtime"].care_messages.run_due())


async def care_birthdays(ctx: dict[str, Any]) -> int:
    """Birthday wishes for contacts whose local time is past the birthday hour."""
    runtime = ctx["runtime"]
    return int(await runtime.care.run_birthdays(runtime.settings.care.daytime))


async def care_schedules(ctx: dict[str, Any]) -> int:
    """The schedule rules that are due (idle sweeps, daily or weekly runs)."""
    runtime = ctx["runtime"]
    # Well inside the job's timeout; what is left goes on at the next minute.
    return int(await runtime.care.run_schedules(max_seconds=job_timeout(runtime.settings) / 3))


async def reports_catch_up(ctx: dict[str, Any]) -> int:
    """Keep what reports read up to date (the embedded store's message rollup),
    so a report never has much to fold in first."""
    runtime = ctx["runtime"]
    if runtime.reports is None:
        return 0
    return int(await runtime.reports.store.catch_up(max_seconds=job_timeout(runtime.settings) / 3))


def job_timeout(settings: Any) -> float:
    """Every job's timeout. One for all: arq keeps a job "in progress" after its
    worker died for the longest timeout of any function, so a long one would
    hold up the re-delivery of messages a killed worker was sending."""
    return float(settings.delivery.timeout_seconds * 2 + 5)


async def campaign_send(ctx: dict[str, Any], campaign_id: str) -> str:
    """One turn of sending a campaign; queues the next turn while work remains.
    A turn stays well inside the job timeout (a send may take a timeout itself)."""
    runtime = ctx["runtime"]
    turn = await runtime.campaigns.dispatcher.run(
        campaign_id, max_seconds=job_timeout(runtime.settings) / 3
    )
    if turn == "more":
        await runtime.jobs.enqueue_campaign(campaign_id, turn=new_id())
    return str(turn)


async def wake_snoozed(ctx: dict[str, Any], conversation_id: str, until_ms: int) -> bool:
    runtime = ctx["runtime"]
    return bool(await runtime.inbox.wake(conversation_id, from_ms(until_ms)))


def functions(job_timeout: float) -> list[Any]:
    return [
        func(deliver, name=DELIVER, max_tries=ARQ_MAX_TRIES, keep_result=0, timeout=job_timeout),
        func(
            campaign_send,
            name=CAMPAIGN_SEND,
            max_tries=ARQ_MAX_TRIES,
            keep_result=0,
            timeout=job_timeout,
        ),
        func(wake_snoozed, name=WAKE, max_tries=5, keep_result=0, timeout=job_timeout),
        # No longer than a delivery's timeout: arq holds a job killed mid-run
        # for the longest timeout of all before running it again.
        func(settle_presence, name=SETTLE, max_tries=5, keep_result=0, timeout=job_timeout),
        func(check_sla, name=CHECK_SLA, max_tries=5, keep_result=0, timeout=job_timeout),
        func(
            care_webhook,
            name=CARE_WEBHOOK,
            max_tries=ARQ_MAX_TRIES,  # the sender counts attempts and gives up itself
            keep_result=0,
            timeout=job_timeout,
        ),
    ]


def cron_jobs(job_timeout: float) -> list[Any]:
    # unique (arq's default for cron): one run per tick across all workers.
    # An explicit timeout: arq keeps a job "in progress" for the longest timeout
    # of any function, and a cron job without one (300 s) would make a killed
    # worker's deliveries wait that long before they are run again.
    return [
        cron(care_due, name="care_due", second=0, run_at_startup=True, timeout=job_timeout),
        # Every quarter hour: contacts live in timezones offset by 15-minute steps.
        cron(
            care_birthdays,
            name="care_birthdays",
            minute={0, 15, 30, 45},
            second=5,
            timeout=job_timeout,
        ),
        cron(
            care_schedules,
            name="care_schedules",
            second=10,
            run_at_startup=True,
            timeout=job_timeout,
        ),
        cron(
            reports_catch_up,
            name="reports_catch_up",
            second=20,
            run_at_startup=True,
            timeout=job_timeout,
        ),
    ]


async def _cancelled(task: asyncio.Task[Any] | None) -> None:
    """Cancel `task` if it still runs, and wait until it has finished."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass


class WorkerService:
    """An arq worker and the sweeper, running as tasks in the current loop."""

    def __init__(self, runtime: Runtime, *, max_jobs: int = 20) -> None:
        from hub.app import queue_name

        self.runtime = runtime
        settings = runtime.settings
        self.worker = Worker(
            functions(job_timeout=job_timeout(settings)),
            cron_jobs=cron_jobs(job_timeout=job_timeout(settings)),
            queue_name=queue_name(settings),
            redis_pool=runtime.redis,
            handle_signals=False,
            ctx={"runtime": runtime},
            max_jobs=max_jobs,
            poll_delay=0.2,
            keep_result=0,
        )
        self._main: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Anything queued before a restart goes out now, not after the grace period.
        await self.runtime.sweeper.sweep(grace=timedelta(0))
        self._main = asyncio.create_task(self.worker.main(), name="arq-worker")
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="sweeper")
        if self.runtime.campaigns is not None:
            self._pump = asyncio.create_task(self._pump_forever(), name="campaign-pump")

    async def _pump_forever(self) -> None:
        """Launch scheduled campaigns whose time has come, and give every running
        campaign that no worker holds a turn (after a crash, after quiet hours)."""
        campaigns = self.runtime.campaigns
        assert campaigns is not None
        interval = self.runtime.settings.campaigns.pump_interval_seconds
        while True:
            try:
                await campaigns.pump()
            except Exception:
                log.exception("campaign pump failed; trying again later", extra={"event": "pump"})
            await asyncio.sleep(interval)

    async def _sweep_forever(self) -> None:
        interval = self.runtime.settings.delivery.sweep_interval_seconds
        while True:
            await asyncio.sleep(interval)
            try:
                await self.runtime.sweeper.sweep()
            except Exception:
                log.exception("sweep failed; trying again later", extra={"event": "sweeper"})
            try:
                # The waiting queue, for what no event announces: a team's
                # business hours opening, an agent added by another process.
                await self.runtime.router.drain()
            except Exception:
                log.exception("routing the queue failed", extra={"event": "routing.drain"})

    async def stop(self) -> None:
        """Stop taking jobs, give running ones the grace period, cancel the rest.

        Polling stops first: a poll already under way can still start the jobs it
        fetched, so the jobs to wait for are read only once nothing more can start.
        """
        grace = self.runtime.settings.server.shutdown_grace_seconds
        self.worker.allow_pick_jobs = False
        for task in (self._pump, self._sweeper, self._main):
            await _cancelled(task)
        running = [t for t in self.worker.tasks.values() if not t.done()]
        if running:
            log.info(
                "waiting for running jobs", extra={"event": "worker.draining", "jobs": len(running)}
            )
            await asyncio.wait(running, timeout=grace)
        for task in list(self.worker.tasks.values()):
            await _cancelled(task)

    async def run_until_cancelled(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
