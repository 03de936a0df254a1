"""The event bus: in-process subscribers, and Redis pub/sub so every hub process
sees what happened anywhere.

Two kinds of subscriber:
- `local` handlers react once, in the process where the event happened
  (routing, care rules): running them in every process would assign a
  conversation once per process.
- `cluster` handlers see every event from every process (pushing to the
  browsers connected to this process).

Local handlers run in `publish`, in subscription order; an exception in one
is logged and does not stop the others or the publisher.

Events go to Redis only while another process listens. A single hub process
(the embedded default) would otherwise pay a PUBLISH, its answer and the echo
on its own subscription for every webhook — about a fifth of what a webhook
costs when they come one by one — for nobody. Each bus learns who listens
from Redis itself: PUBLISH answers how many subscriptions received it, and a
process that subscribes says so on the channel ("hello") and waits, in
`start`, until every process already listening has answered ("here"), so
that none of them still keeps its events to itself once `start` returns.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic_core import from_json, to_json
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from hub.errors import QueueUnavailable
from hub.inbox.model import new_id

log = logging.getLogger(__name__)

ANY = "*"
# How long `EventBus.start` waits for the processes already listening to
# answer its hello (they do in a round trip unless stuck or gone).
ANSWER_WAIT = 2.0


@dataclass(frozen=True)
class Event:
    type: str
    data: dict[str, Any]
    id: str = field(default_factory=new_id)
    origin: str = ""

    def to_json(self) -> str:
        return to_json(
            {"type": self.type, "data": self.data, "id": self.id, "origin": self.origin}
        ).decode()

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        body = from_json(raw)
        return cls(type=body["type"], data=body["data"], id=body["id"], origin=body["origin"])


Handler = Callable[[Event], Awaitable[None]]


class Detached:
    """Local handlers that run in tasks of their own, started once the event's
    publication is done: the publisher (a webhook being answered) does not wait
    for them, and what it publishes reaches other processes first. A handler
    that raises is logged (`failed`: the message and the log event's name) and
    stops nothing else. `settled()` waits for every task started so far (tests,
    shutdown)."""

    def __init__(self, name: str, *, failed: tuple[str, str]) -> None:
        self.name = name
        self.failed = failed
        self._running: set[asyncio.Task[None]] = set()

    def subscribe(
        self,
        bus: EventBus,
        event_type: str,
        handler: Handler,
        *,
        wanted: Callable[[Event], bool] | None = None,
    ) -> None:
        """`wanted`: a cheap look at the event, on the publisher's step, that
        says when the handler surely has nothing to do (no task is started)."""

        async def start(event: Event) -> None:
            if wanted is not None and not wanted(event):
                return
            task = asyncio.create_task(
                self._guarded(handler, event), name=f"{self.name}:{event.type}"
            )
            self._running.add(task)
            task.add_done_callback(self._running.discard)

        bus.subscribe(event_type, start)

    async def _guarded(self, handler: Handler, event: Event) -> None:
        await asyncio.sleep(0)  # let the publisher finish first (its other events, then Redis)
        try:
            await handler(event)
        except Exception:
            message, name = self.failed
            log.exception(message, extra={"event": name, "event_type": event.type})

    async def settled(self) -> None:
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)


class EventBus:
    def __init__(self, redis: Redis | None, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.origin = f"{socket.gethostname()}:{os.getpid()}:{new_id()}"
        self._local: dict[str, list[Handler]] = defaultdict(list)
        self._cluster: dict[str, list[Handler]] = defaultdict(list)
        self._listener: asyncio.Task[None] | None = None
        # Events waiting to go to Redis, with the futures of the publishers
        # waiting for them: concurrent publishes share one round trip.
        self._outbox: list[tuple[list[str], asyncio.Future[int]]] = []
        self._flusher: asyncio.Task[None] | None = None
        # PUBLISH goes over a connection of the bus's own (one batch at a time):
        # through the client's pool and retry wrappers it cost twice as much
        # CPU, paid once per webhook when they come one by one.
        self._publisher: AbstractConnection | None = None
        self._echo = (self.origin + "\n").encode()
        # Who else listens (see the module's docstring). `_others` starts true:
        # until the subscription is confirmed and Redis has counted, publish.
        self._subscribed = False
        self._others = True
        self._heard = 0  # messages from other processes: a count older than one is stale
        self._answered: set[str] = set()  # origins that said "here" to our last hello
        self._answers_due = 0
        self._all_answered = asyncio.Event()

    def subscribe(
        self, event_type: str, handler: Handler, *, scope: Literal["local", "cluster"] = "local"
    ) -> None:
        """Call `handler` for events of `event_type` ("*" for all)."""
        (self._local if scope == "local" else self._cluster)[event_type].append(handler)

    async def publish(self, *events: Event) -> None:
        """Deliver to local and cluster handlers here, then to other processes.

        Raises QueueUnavailable when Redis cannot take the events; local handlers
        have run by then, so the caller's own process is consistent.
        """
        stamped = [Event(e.type, e.data, e.id, self.origin) for e in events]
        for event in stamped:
            await self._dispatch(event, self._local)
            await self._dispatch(event, self._cluster)
        if self.redis is None or not stamped or self.alone:
            return
        await self._send([e.to_json() for e in stamped])

    @property
    def alone(self) -> bool:
        """No other process listens: events stay in this one. Only a started
        bus can know (it hears newcomers say hello); one that is not publishes."""
        return self._subscribed and not self._others

    async def _send(self, lines: list[str]) -> int:
        """Queue `lines` for the next PUBLISH and wait until Redis took them;
        returns how many subscriptions received them (ours included)."""
        sent: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._outbox.append((lines, sent))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="event-bus-flush")
        return await sent

    async def _flush(self) -> None:
        """Send everything in the outbox as one Redis message, until it stays empty.

        On the wire: "<origin>\n<json>\n<json>...": one PUBLISH (and one message
        for every subscriber to parse) per batch rather than per event, and a
        process drops its own echo by its first line, unparsed. Events are
        compact JSON, which has no raw newline.
        """
        assert self.redis is not None
        while self._outbox:
            batch, self._outbox = self._outbox, []
            payload = "\n".join([self.origin, *(event for events, _ in batch for event in events)])
            heard = self._heard
            try:
                receivers = await self._publish(payload)
            except (RedisError, OSError) as exc:
                error = QueueUnavailable(f"cannot publish events to Redis: {exc}")
                for _, sent in batch:
                    if not sent.done():
                        sent.set_exception(error)
            else:
                if receivers > 1:
                    self._set_others(True)
                elif self._subscribed and heard == self._heard:
                    # Only our own subscription (or none) received it, and no
                    # other process spoke up while the PUBLISH was under way.
                    self._set_others(False)
                for _, sent in batch:
                    if not sent.done():
                        sent.set_result(receivers)

    async def _publish(self, payload: str) -> int:
        """One PUBLISH on the bus's connection, (re)connecting as needed; a
        failure drops the connection, so the next batch starts on a fresh one.
        Returns how many subscriptions received it."""
        assert self.redis is not None
        if self._publisher is None:
            self._publisher = self.redis.connection_pool.make_connection()
        publisher = self._publisher
        try:
            await publisher.send_command("PUBLISH", self.channel, payload)
            return int(await publisher.read_response())
        except BaseException:
            await publisher.disconnect(nowait=True)
            raise

    def _set_others(self, others: bool) -> None:
        if others == self._others:
            return
        self._others = others
        if others:
            log.info(
                "another hub process listens: events go through Redis",
                extra={"event": "bus.shared"},
            )
        else:
            log.info(
                "no other hub process listens: events stay in this one",
                extra={"event": "bus.alone"},
            )

    async def _dispatch(self, event: Event, table: dict[str, list[Handler]]) -> None:
        for handler in (*table.get(event.type, ()), *table.get(ANY, ())):
            try:
                await handler(event)
            except Exception:
                log.exception(
                    "event handler failed",
                    extra={"event": "bus.handler_failed", "event_type": event.type},
                )

    async def start(self) -> None:
        """Start receiving other processes' events (for cluster handlers), and
        say hello: on return, every process that was listening already has
        answered, so none keeps its events to itself any more (a process that
        does not answer within `ANSWER_WAIT` seconds is not waited for)."""
        if self.redis is None or self._listener is not None:
            return
        # Subscription confirmations are kept: each (a start, a reconnection)
        # is the moment to say hello.
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        self._listener = asyncio.create_task(self._listen(pubsub), name="event-bus-listener")
        try:
            await asyncio.wait_for(self._all_answered.wait(), ANSWER_WAIT)
        except TimeoutError:
            log.warning(
                "not every hub process answered this one's hello; going on",
                extra={
                    "event": "bus.unanswered",
                    "expected": self._answers_due,
                    "answered": len(self._answered),
                },
            )

    async def _listen(self, pubsub: Any) -> None:
        backoff = 0.5
        while True:
            try:
                async for raw in pubsub.listen():
                    backoff = 0.5
                    if raw["type"] == "subscribe":
                        await self._hello()
                    elif raw["type"] == "message":
                        await self._receive(raw["data"])
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except (RedisError, OSError) as exc:
                self._not_listening()
                log.warning(
                    "event bus lost Redis; reconnecting",
                    extra={"event": "bus.reconnect", "error": str(exc), "delay": backoff},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30)
                try:
                    await pubsub.subscribe(self.channel)
                except (RedisError, OSError):
                    continue

    async def _receive(self, data: str | bytes) -> None:
        """One message from the channel: our own echo (dropped unread), or
        another process's events and words."""
        if isinstance(data, str):
            data = data.encode()
        if data.startswith(self._echo):
            return  # our own: local handlers had it already
        self._heard += 1
        self._set_others(True)
        origin, _, lines = data.partition(b"\n")
        for line in lines.split(b"\n"):
            if line == b"hello":
                await self._say("here")
            elif line == b"here":
                self._answered.add(origin.decode(errors="replace"))
                if len(self._answered) >= self._answers_due:
                    self._all_answered.set()
            else:
                try:
                    event = Event.from_json(line)
                except (ValueError, KeyError):
                    log.warning("ignoring malformed event from Redis", extra={"event": "bus.bad"})
                    continue
                await self._dispatch(event, self._cluster)

    async def _hello(self) -> None:
        """Our subscription is confirmed: tell the processes listening, and
        count them (Redis's answer counts our own subscription too)."""
        self._subscribed = True
        self._answered.clear()
        self._all_answered.clear()
        receivers = await self._say("hello")
        self._answers_due = max(receivers - 1, 0)
        if len(self._answered) >= self._answers_due:
            self._all_answered.set()

    async def _say(self, word: str) -> int:
        """Send `word` on the channel; returns how many subscriptions got it
        (0 if Redis could not take it: the listener finds out about Redis)."""
        try:
            return await self._send([word])
        except QueueUnavailable as exc:
            log.warning(
                "event bus could not say %s", word, extra={"event": "bus.unsaid", "error": str(exc)}
            )
            return 0

    def _not_listening(self) -> None:
        """Our subscription is gone: who listens is unknown again, so events go
        to Redis until it counts again (or fail, while it is down: a 503)."""
        self._subscribed, self._others = False, True

    async def stop(self) -> None:
        # The listener first: it may still answer a hello, and what it sends
        # must go out before the publisher's connection closes, not reopen it.
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
            self._listener = None
        self._not_listening()
        if self._flusher is not None:
            await asyncio.wait([self._flusher])
        if self._publisher is not None:
            await self._publisher.disconnect()
            self._publisher = None
