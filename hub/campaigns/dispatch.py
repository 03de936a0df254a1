"""Sending a running campaign: one worker at a time per campaign (a Redis lock
that frees itself if the worker dies), batches of due recipients, each send
written before (`sending`) and after (`sent`/`failed`) it happens.

For each batch: consent is read fresh (an opted-out contact is skipped and
counted), recipients outside their local sending window are held until it
opens, the daily cap is reserved atomically in Redis (over it: skipped and
counted), and what remains goes out as fast as the account's shared rate
limiter allows, `concurrency` sends at a time.

A worker that starts on a campaign first settles the rows a dead worker left
in `sending` (see `messages.check_sent`), so every recipient is sent exactly
once where the provider lets us check, and at most resent with identical
bytes where it does not.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

from hub.campaigns.limits import DailyCaps, RateLimiter
from hub.campaigns.messages import CampaignMessages, check_sent
from hub.campaigns.model import Addressee, Campaign, DueSend, Outcome, Recipient
from hub.campaigns.rules import local_day, parse_time, window_opens, zone_of
from hub.campaigns.store import CampaignStore
from hub.campaigns.unsubscribe import UnsubscribeLinks
from hub.care.templates import TemplateError, Templates
from hub.channels.base import Channel
from hub.clock import Clock
from hub.errors import ProviderRejected, QueueUnavailable
from hub.events import Event, EventBus
from hub.inbox.bounces import bouncing_in
from hub.inbox.model import Contact
from hub.settings import HubSettings

log = logging.getLogger(__name__)

Turn = Literal["busy", "idle", "more", "waiting", "completed", "paused", "cancelled"]

THROTTLE_CODES = frozenset({"20429", "429", "421"})
FAR_FUTURE = timedelta(days=3650)
# How often a sending pass reads the campaign's status (a pause or cancel stops
# it within this much, plus the sends then in flight).
STATUS_EVERY = 0.1
# Progress is counted at most once a second, and for at most 1/this of the time.
ANNOUNCE_SHARE = 20
# Rows claimed in one statement (and outcomes written in one), at most: a
# commit's cost is mostly per page written, and neighbouring rows share pages
# (20k SMS: 1,050 commits with claims of `concurrency` = 20, 250 with 100).
CLAIM_ROWS = 100


class Hold:
    """A campaign lock this turn holds, and whether it has been lost."""

    def __init__(self, lock: Lock) -> None:
        self.lock = lock
        self.lost = False


def is_throttle(exc: ProviderRejected) -> bool:
    """A provider saying "too many requests" (Twilio 20429 / HTTP 429, SMTP 421)."""
    return exc.provider_code in THROTTLE_CODES or "(HTTP 429)" in exc.reason


# A due recipient that may be sent now: its contact is there (never None).
Sendable = DueSend


class Claims:
    """One pass's recipients, claimed (`pending → sending`) `size` at a time as
    the senders need them: one statement for several sends, and never more
    than `size` rows claimed ahead of their sends.

    The checked recipients come a batch at a time from `next_batch` (None: the
    pass is over). The next batch is asked for while `low` of the current one
    are still to be claimed, so its reads and checks overlap the current one's
    last sends instead of leaving the provider idle between batches."""

    def __init__(
        self,
        store: CampaignStore,
        clock: Clock,
        campaign_id: str,
        next_batch: Callable[[], Coroutine[Any, Any, list[Sendable] | None]],
        *,
        size: int,
        low: int,
        before_claim: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.before_claim = before_claim
        self.clock = clock
        self.campaign_id = campaign_id
        self.next_batch = next_batch
        self.size = max(1, size)
        self.low = low
        self.queue: deque[Sendable] = deque()
        self.ready: deque[Sendable] = deque()
        self.lock = asyncio.Lock()
        self.reading: asyncio.Task[list[Sendable] | None] | None = None
        self.more = True  # next_batch has not said None yet
        self.exhausted = False

    def _read_ahead(self) -> None:
        if self.more and self.reading is None and len(self.queue) <= self.low:
            self.reading = asyncio.create_task(self.next_batch(), name="campaign-next-batch")

    async def _read(self) -> None:
        """Wait for the batch being read and queue it."""
        assert self.reading is not None
        try:
            batch = await asyncio.shield(self.reading)
        finally:
            if self.reading.done():
                self.reading = None
        if batch is None:
            self.more = False
        else:
            self.queue.extend(batch)

    async def take(self) -> Sendable | None:
        """The next claimed recipient, or None when the pass has no more."""
        while not self.ready:
            if self.exhausted:
                return None
            async with self.lock:
                if self.ready or self.exhausted:
                    continue  # another sender claimed meanwhile
                self._read_ahead()
                if not self.queue:
                    if self.reading is None:
                        self.exhausted = True
                        return None
                    await self._read()
                    continue
                chunk = [self.queue.popleft() for _ in range(min(self.size, len(self.queue)))]
                self._read_ahead()
                self.before_claim()
                claimed = set(
                    await self.store.claim(
                        self.campaign_id, [d.contact_id for d in chunk], self.clock.now()
                    )
                )
                self.ready.extend(item for item in chunk if item.contact_id in claimed)
                if self.reading is not None and self.reading.done():
                    await self._read()
        return self.ready.popleft()

    async def release(self) -> None:
        """Give back what was claimed and will not be sent this turn (it stopped);
        a batch still being read is let finish (its skips and holds are written)
        and left pending."""
        self.exhausted = True
        if self.reading is not None:
            reading, self.reading = self.reading, None
            await asyncio.wait({reading})
            if not reading.cancelled() and reading.exception() is not None:
                log.warning(
                    "reading the next batch failed as the turn stopped",
                    exc_info=reading.exception(),
                    extra={"event": "campaign.read_failed", "campaign_id": self.campaign_id},
                )
        left = [d.contact_id for d in self.ready]
        self.ready.clear()
        self.queue.clear()
        await self.store.release(self.campaign_id, left, self.clock.now())


class OutcomeWriter:
    """Sends' outcomes, written `size` at a time in one statement rather than one
    transaction per send; fewer are written once the first of them has waited
    `delay` seconds, so the rows of a slow campaign do not stay `sending` long.
    `drain` writes what is left, waits for all of it and raises what a write
    raised (its rows stay `sending`, for `_recover`)."""

    def __init__(
        self, store: CampaignStore, campaign_id: str, *, size: int, delay: float = 0.05
    ) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self.size = max(1, size)
        self.delay = delay
        self.waiting: list[Outcome] = []
        self.writing: asyncio.Task[None] | None = None
        self.due: asyncio.Future[None] | None = None  # set: write what is waiting now
        self.draining = False
        self.error: Exception | None = None

    def add(self, outcome: Outcome) -> None:
        self.waiting.append(outcome)
        if self.writing is None:
            self.writing = asyncio.create_task(self._write(), name="campaign-outcomes")
        elif len(self.waiting) >= self.size:
            self.write_soon()

    def write_soon(self) -> None:
        """Write what is waiting on the next turn of the loop (a claim about to be
        made then shares its commit)."""
        if self.due is not None and not self.due.done():
            self.due.set_result(None)

    async def _write(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self.waiting:
                if len(self.waiting) < self.size and not self.draining:
                    self.due = loop.create_future()
                    timer = loop.call_later(self.delay, self.write_soon)
                    try:
                        await self.due
                    finally:
                        timer.cancel()
                        self.due = None
                batch, self.waiting = self.waiting, []
                await self.store.finish_many(self.campaign_id, batch)
        except Exception as exc:  # the store failed: drain() raises it
            self.error = exc
        finally:
            self.writing = None

    async def drain(self) -> None:
        self.draining = True
        self.write_soon()
        while self.writing is not None:
            await asyncio.shield(self.writing)
        if self.error is not None:
            raise self.error


class Dispatcher:
    def __init__(
        self,
        store: CampaignStore,
        channels: Mapping[str, Channel],
        clock: Clock,
        settings: HubSettings,
        redis: Redis,
        templates: Templates,
        links: UnsubscribeLinks,
        bus: EventBus | None = None,
    ) -> None:
        self.bus = bus
        # campaign id -> when its progress may next be counted and sent
        self._next_announcement: dict[str, float] = {}
        self.store = store
        self.channels = channels
        self.clock = clock
        self.settings = settings
        self.options = settings.campaigns
        self.redis = redis
        self.templates = templates
        self.links = links
        self.prefix = settings.redis.prefix
        self.limiter = RateLimiter(
            redis, self.prefix, window_seconds=settings.campaigns.rate_window_seconds
        )
        self.caps = DailyCaps(redis, self.prefix)
        self._rate: dict[str, float] = {}  # account id -> its rate_per_second

    def lock_name(self, campaign_id: str) -> str:
        return f"{self.prefix}:lock:campaign:{campaign_id}"

    def messages(self, campaign: Campaign) -> CampaignMessages:
        rules = self.options.rules_for(campaign.account_id)
        return CampaignMessages(
            campaign,
            self.templates,
            self.links,
            opt_out_text=rules.sms_opt_out_text or "",
            company=self.settings.campaigns.company_name,
        )

    async def run(self, campaign_id: str, *, max_seconds: float = 20.0) -> Turn:
        """One turn on a campaign: returns "busy" at once if another worker has it,
        else sends until nothing is due or `max_seconds` have passed ("more")."""
        lock = self.redis.lock(
            self.lock_name(campaign_id), timeout=self.options.lock_seconds, blocking=False
        )
        if not await lock.acquire():
            return "busy"
        hold = Hold(lock)
        keeper = asyncio.create_task(self._keep(hold), name=f"campaign-lock-{campaign_id}")
        try:
            return await self._turn(campaign_id, hold, max_seconds)
        finally:
            keeper.cancel()
            try:
                await keeper
            except asyncio.CancelledError:
                pass
            try:
                await lock.release()
            except (LockError, RedisError, OSError):
                pass  # expired: it freed itself

    async def _keep(self, hold: Hold) -> None:
        """Renew the campaign's lock while this turn runs; if it cannot be renewed
        (Redis lost it, or this process stalled past its TTL and another worker
        took over), the turn stops at its next step."""
        while True:
            await asyncio.sleep(self.options.lock_seconds / 4)
            try:
                await hold.lock.reacquire()
            except (LockError, RedisError, OSError):
                hold.lost = True
                log.warning(
                    "campaign lock lost; this turn stops",
                    extra={"event": "campaign.lock_lost", "lock": hold.lock.name},
                )
                return

    async def _turn(self, campaign_id: str, hold: Hold, max_seconds: float) -> Turn:
        campaign = await self.store.get_campaign(campaign_id)
        if campaign is None or campaign.status != "running":
            return "idle"
        channel = self.channels.get(campaign.account_id)
        if channel is None:
            log.error(
                "campaign account is not configured; campaign waits",
                extra={"event": "campaign.no_account", "campaign_id": campaign_id},
            )
            return "idle"
        messages = self.messages(campaign)
        await self._recover(campaign, channel, messages, hold)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds
        while loop.time() < deadline and not hold.lost:
            current = await self.store.get_campaign(campaign_id)
            if current is None or current.status != "running":
                return "idle" if current is None else _stopped(current.status)
            if not await self._pass(campaign, channel, messages, hold, deadline):
                return await self._settle(campaign)
            await self.announce(campaign.id)
        return "more"

    async def announce(self, campaign_id: str, *, force: bool = False) -> None:
        """Publish `campaign.progress` (the figures) on the event bus, at most
        once a second per campaign: what a live page shows without polling.

        The figures are a count over the campaign's rows (in SQLite a scan of
        its status index, a few ms of CPU for a hundred thousand; on a thread
        but on the same cores as the sends), so a very large campaign is
        counted less often: never more than 1/ANNOUNCE_SHARE of the time."""
        if self.bus is None:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        if not force and started < self._next_announcement.get(campaign_id, 0.0):
            return
        self._next_announcement[campaign_id] = started + 1.0  # meanwhile: no second count
        progress = await self.store.progress(campaign_id, self.clock.now())
        took = loop.time() - started
        self._next_announcement[campaign_id] = started + max(1.0, took * ANNOUNCE_SHARE)
        campaign = await self.store.get_campaign(campaign_id)
        data = {
            "campaign_id": campaign_id,
            "status": campaign.status if campaign else None,
            **progress.model_dump(),
        }
        try:
            await self.bus.publish(Event("campaign.progress", data))
        except QueueUnavailable:
            pass  # the figures are in the store; the next announcement catches up

    async def _settle(self, campaign: Campaign) -> Turn:
        """Nothing is due now: the campaign is complete, or waits for windows.
        (Two indexed look-ups, not a count: a waiting campaign is asked often.)"""
        if await self.store.next_waiting(campaign.id) is not None:
            return "waiting"
        if await self.store.stuck_sending(campaign.id, self.clock.now() + FAR_FUTURE, 1):
            return "waiting"
        now = self.clock.now()
        if await self.store.update_campaign(
            campaign.id,
            expect={"status": "running"},
            status="completed",
            finished_at=now,
            updated_at=now,
        ):
            await self.announce(campaign.id, force=True)
            log.info(
                "campaign completed",
                extra={"event": "campaign.completed", "campaign_id": campaign.id},
            )
        return "completed"

    async def _pass(
        self,
        campaign: Campaign,
        channel: Channel,
        messages: CampaignMessages,
        hold: Hold,
        deadline: float,
    ) -> int:
        """One pass over the campaign's due recipients in contact order, a batch
        at a time, until none is left after the last one read, the deadline
        passes, or the campaign stops. Returns how many were due (0: nothing
        is due now). Rows that fall due behind the pass (a retry, a window
        that opened) wait for the next one."""
        loop = asyncio.get_running_loop()
        seen = 0
        after: str | None = None
        stopped = False

        async def next_batch() -> list[Sendable] | None:
            nonlocal seen, after
            if stopped or hold.lost or (seen and loop.time() >= deadline):
                return None
            due = await self.store.due_sends(
                campaign.id,
                campaign.channel,
                self.clock.now(),
                self.options.batch_size,
                after=after,
            )
            if not due:
                return None
            seen += len(due)
            after = due[-1].contact_id
            await self.announce(campaign.id)  # at most once a second
            return await self._check(campaign, due)

        # `concurrency` sends in flight all the time (not a chunk waiting for its
        # slowest send before the next chunk starts, nor a batch waiting for the
        # next one to be read). Recipients are claimed a chunk at a time, one
        # statement for `claim_size` of them, just ahead of their sends;
        # outcomes are written as many at a time (`OutcomeWriter`). A crash
        # in between leaves rows `sending`, which the next turn settles by asking
        # the provider (`_recover`), as for a crash mid-send.
        # Each send takes its slot of the account's rate in `_send`, right before
        # the step that reaches the provider (the HTTP request; SMTP's final
        # "."), not at the claim: slots taken before waits on the store and the
        # network would let arrivals at the provider bunch past the rate.
        concurrency = self.options.concurrency
        claim_size = self._claim_size(campaign.account_id)
        outcomes = OutcomeWriter(self.store, campaign.id, size=claim_size)
        claims = Claims(
            self.store,
            self.clock,
            campaign.id,
            next_batch,
            size=claim_size,
            low=max(2 * concurrency, self.options.batch_size // 4),
            # The sends done so far are written in the claim's transaction (one
            # commit where there were two: the rows sit on the same pages).
            before_claim=outcomes.write_soon,
        )
        next_check = loop.time() + STATUS_EVERY

        async def sender() -> None:
            nonlocal next_check, stopped
            while not (stopped or hold.lost):
                taken = await claims.take()
                if taken is None:
                    return
                assert taken.contact is not None  # `_check` let through only those
                outcomes.add(await self._send(campaign, channel, messages, taken, taken.contact))
                if loop.time() >= next_check and not stopped:
                    next_check = loop.time() + STATUS_EVERY
                    current = await self.store.get_campaign(campaign.id)
                    if current is None or current.status != "running":
                        stopped = True  # paused or cancelled

        try:
            await asyncio.gather(*(sender() for _ in range(concurrency)))
        finally:
            # What was claimed and not sent goes back to pending for the next
            # turn; what was sent is written before the turn goes on.
            await claims.release()
            await outcomes.drain()
        if stopped:
            current = await self.store.get_campaign(campaign.id)
            if current is not None and current.status == "cancelled":
                # Rows given back or set to retry after the cancel skipped the
                # pending ones: skipped as well.
                await self.store.skip_all_pending(campaign.id, "cancelled", self.clock.now())
            # Tell the figures now that the sends in flight are done (the pause
            # told them while those were still `sending`).
            await self.announce(campaign.id, force=True)
        return seen

    async def _check(self, campaign: Campaign, due: list[DueSend]) -> list[Sendable]:
        """The due recipients that may be sent now, by their contacts as read
        with them: the opted out, bouncing and deleted are skipped, those
        outside their window held until it opens, those over the daily cap
        skipped."""
        now = self.clock.now()
        rules = self.options.rules_for(campaign.account_id)
        send_from, send_until = (
            parse_time(rules.send_from or "00:00"),
            parse_time(rules.send_until or "00:00"),
        )
        opted_out: list[str] = []
        bouncing: list[str] = []
        gone: list[str] = []
        holds: dict[datetime, list[str]] = {}
        ready: list[tuple[DueSend, Addressee, str]] = []
        for recipient in due:
            contact = recipient.contact
            if contact is None:
                gone.append(recipient.contact_id)
                continue
            if contact.consent == "opted_out":
                opted_out.append(recipient.contact_id)
                continue
            if campaign.channel == "email" and bouncing_in(contact.attributes, recipient.address):
                bouncing.append(recipient.contact_id)
                continue
            zone = zone_of(contact.timezone, self.options.default_timezone)
            opens = window_opens(now, zone, send_from, send_until)
            if opens is not None:
                holds.setdefault(opens, []).append(recipient.contact_id)
                continue
            ready.append((recipient, contact, local_day(now, zone)))
        await self.store.skip(campaign.id, opted_out, "opted_out", now)
        await self.store.skip(campaign.id, bouncing, "bouncing", now)
        await self.store.skip(campaign.id, gone, "no_address", now)
        for opens, ids in holds.items():
            await self.store.hold(campaign.id, ids, opens, now)
        allowed = await self.caps.reserve(
            campaign.account_id,
            rules.daily_cap or 0,
            [(c.id, day, r.key) for r, c, day in ready],
        )
        capped = [r.contact_id for (r, _, _), ok in zip(ready, allowed, strict=True) if not ok]
        await self.store.skip(campaign.id, capped, "frequency_cap", now)
        return [r for (r, _, _), ok in zip(ready, allowed, strict=True) if ok]

    async def _send(
        self,
        campaign: Campaign,
        channel: Channel,
        messages: CampaignMessages,
        recipient: Recipient | DueSend,
        contact: Contact | Addressee,
    ) -> Outcome:
        """Send one claimed (`sending`) recipient; the outcome is the caller's to write."""
        attempt = recipient.attempts + 1
        try:
            outbound = messages.outbound(
                recipient, contact, campaign.launched_at or self.clock.now()
            )
        except TemplateError as exc:
            return Outcome(recipient.contact_id, "failed", self.clock.now(), reason=str(exc))
        try:

            async def handing_over(external_id: str) -> None:
                if channel.hands_over:
                    await self._slot(campaign.account_id)
                await self.store.hand_over(campaign.id, recipient.contact_id, external_id)

            if not channel.hands_over:
                await self._slot(campaign.account_id)
            receipt = await channel.send_with_handover(outbound, handing_over)
        except ProviderRejected as exc:
            if is_throttle(exc):
                factor = await self.limiter.slow_down(campaign.account_id)
                log.warning(
                    "provider throttles; slowing down",
                    extra={**_send_context(campaign, recipient, attempt), "factor": factor},
                )
            return self._retry_or_fail(recipient, attempt, exc.reason, exc.retryable)
        except Exception as exc:  # a bug in a channel must not lose the recipient
            log.exception(
                "campaign send raised unexpectedly",
                extra=_send_context(campaign, recipient, attempt),
            )
            return self._retry_or_fail(recipient, attempt, repr(exc), True)
        return Outcome(
            recipient.contact_id, "sent", self.clock.now(), external_id=receipt.external_id
        )

    def _claim_size(self, account_id: str) -> int:
        """How many rows a claim takes (and an outcome write settles): CLAIM_ROWS,
        or fewer where that is more than STATUS_EVERY's worth of the account's
        rate (rows claimed long before their send show as `sending`, and a crash
        leaves them for recovery to check), never fewer than `concurrency`."""
        size = min(CLAIM_ROWS, self.options.batch_size)
        rate = self._account_rate(account_id)
        if rate > 0:
            size = min(size, int(rate * STATUS_EVERY))
        return max(self.options.concurrency, size)

    def _account_rate(self, account_id: str) -> float:
        rate = self._rate.get(account_id)
        if rate is None:  # settings do not change while the process runs
            rate = self._rate[account_id] = self.options.rules_for(account_id).rate_per_second or 0
        return rate

    async def _slot(self, account_id: str) -> None:
        """Wait for one send's slot of the account's rate."""
        rate = self._account_rate(account_id)
        if rate <= 0:
            return  # no limit: no round trip to Redis
        while True:
            grant = await self.limiter.acquire(account_id, rate, 1)
            if grant.count:
                return
            await asyncio.sleep(min(grant.wait_seconds, 1.0))

    def _retry_or_fail(
        self, recipient: Recipient | DueSend, attempt: int, reason: str, retryable: bool
    ) -> Outcome:
        now = self.clock.now()
        delivery = self.settings.delivery
        if retryable and attempt < delivery.max_attempts:
            seconds = min(
                delivery.backoff_base_seconds * 2 ** (attempt - 1), delivery.backoff_max_seconds
            ) * random.uniform(0.8, 1.2)
            return Outcome(
                recipient.contact_id,
                "pending",
                now,
                reason=reason,
                not_before=now + timedelta(seconds=seconds),
            )
        return Outcome(recipient.contact_id, "failed", now, reason=reason)

    async def _recover(
        self, campaign: Campaign, channel: Channel, messages: CampaignMessages, hold: Hold
    ) -> None:
        """Settle rows a dead worker left in `sending` (this worker holds the
        campaign's lock, so no live worker is sending them). A row whose provider
        cannot be asked now stays `sending` for the next turn."""
        unsettled: set[str] = set()
        while not hold.lost:
            stuck = [
                r
                for r in await self.store.stuck_sending(
                    campaign.id, self.clock.now() + FAR_FUTURE, self.options.batch_size
                )
                if r.contact_id not in unsettled
            ]
            if not stuck:
                return
            contacts = await self.store.contacts([r.contact_id for r in stuck])
            for recipient in stuck:
                if not await self._recover_one(campaign, channel, messages, recipient, contacts):
                    unsettled.add(recipient.contact_id)

    async def _recover_one(
        self,
        campaign: Campaign,
        channel: Channel,
        messages: CampaignMessages,
        recipient: Recipient,
        contacts: dict[str, Contact],
    ) -> bool:
        """Settle one interrupted send; False if it must wait for a later turn."""
        now = self.clock.now()
        contact = contacts.get(recipient.contact_id)
        if contact is None:
            await self.store.finish(
                campaign.id, recipient.contact_id, "failed", now, reason="contact deleted"
            )
            return True
        try:
            outbound = messages.outbound(recipient, contact, campaign.launched_at or now)
        except TemplateError as exc:
            await self.store.finish(
                campaign.id, recipient.contact_id, "failed", now, reason=str(exc)
            )
            return True
        try:
            checked = await check_sent(channel, recipient, outbound)
        except ProviderRejected as exc:
            log.warning(
                "cannot check an interrupted send yet",
                extra={
                    "event": "campaign.recover",
                    "campaign_id": campaign.id,
                    "contact_id": recipient.contact_id,
                    "reason": exc.reason,
                },
            )
            return False  # still `sending`: the next turn asks again
        log.info(
            "interrupted send settled",
            extra={
                "event": "campaign.recover",
                "campaign_id": campaign.id,
                "contact_id": recipient.contact_id,
                "outcome": checked.outcome,
            },
        )
        if checked.outcome == "sent":
            await self.store.finish(
                campaign.id, recipient.contact_id, "sent", now, external_id=checked.external_id
            )
        elif checked.outcome == "not_sent":
            await self.store.finish(campaign.id, recipient.contact_id, "pending", now)
        else:
            # Cannot be asked: send the identical message again (same Message-ID).
            outcome = await self._send(
                campaign,
                channel,
                messages,
                recipient.model_copy(update={"attempts": recipient.attempts - 1}),
                contact,
            )
            await self.store.finish_many(campaign.id, [outcome])
        return True


def _send_context(
    campaign: Campaign, recipient: Recipient | DueSend, attempt: int
) -> dict[str, Any]:
    """A send's log fields (built only when something is logged)."""
    return {
        "event": "campaign.send",
        "campaign_id": campaign.id,
        "contact_id": recipient.contact_id,
        "attempt": attempt,
    }


def _stopped(status: str) -> Turn:
    if status == "paused":
        return "paused"
    if status == "cancelled":
        return "cancelled"
    if status == "completed":
        return "completed"
    return "idle"
