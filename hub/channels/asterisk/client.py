"""An asyncio AMI client that stays logged in.

- connects, reads the banner, logs in (`Login`), then hands `on_connect` the
  chance to catch up (the channel asks which channels are still up);
- keeps the connection alive with `Ping` every `ping_interval` seconds; a ping
  left unanswered for `ping_timeout` seconds means the connection is dead;
- reconnects after any loss with exponential backoff and jitter (a refused
  login waits the longest backoff: retrying a wrong password fast helps nobody);
- correlates actions and responses by `ActionID` (list actions collect the
  events that carry their ActionID until the list's completion event);
- delivers every other event, in order, to `on_event` from one consumer task
  that outlives connections: a slow consumer never stops the reader from
  answering keep-alives, and events read just before a drop are still handled.
  `on_connect` runs in that same order, after the events of the previous
  connection, so what it learns from the PBX is never older than the state
  it corrects.

Written by hand rather than on panoramisk (last released 2021) because the
reconnect semantics — what happens to in-flight actions and to calls the PBX
reported before a drop — are the point of this client and must be ours.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hub.channels.asterisk.protocol import AmiMessage, AmiReader, encode
from hub.errors import ProviderRejected, ProviderUnavailable

log = logging.getLogger(__name__)

EventHandler = Callable[[AmiMessage], Awaitable[None]]
ConnectHandler = Callable[[], Awaitable[None]]


class LoginRefused(Exception):
    pass


@dataclass
class _Pending:
    future: asyncio.Future[tuple[AmiMessage, list[AmiMessage]]]
    complete_event: str | None = None
    response: AmiMessage | None = None
    events: list[AmiMessage] = field(default_factory=list)


class AmiClient:
    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        name: str = "ami",
        ping_interval: float = 20.0,
        ping_timeout: float = 10.0,
        action_timeout: float = 10.0,
        backoff_min: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.username = username
        self.secret = secret
        self.name = name
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.action_timeout = action_timeout
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self.connections = 0  # successful logins so far
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._session = 0

    # -- actions ---------------------------------------------------------
    async def action(self, name: str, **fields: str) -> AmiMessage:
        """Send an action and return its response (Success or Error alike).
        Raises ProviderUnavailable when not connected or no answer comes in time."""
        response, _ = await self._send(name, fields, complete_event=None)
        return response

    async def action_list(
        self, name: str, complete_event: str, **fields: str
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        """An action answered by a list of events (`CoreShowChannels`): its response
        and the events carrying its ActionID, up to `complete_event`."""
        return await self._send(name, fields, complete_event=complete_event)

    async def _send(
        self, name: str, fields: dict[str, str], *, complete_event: str | None
    ) -> tuple[AmiMessage, list[AmiMessage]]:
        writer = self._writer
        if writer is None or not self.connected.is_set():
            raise ProviderUnavailable(f"PBX {self.name} is not connected; try again shortly")
        action_id = f"hub-{self._session}-{next(self._ids)}"
        pending = _Pending(asyncio.get_running_loop().create_future(), complete_event)
        self._pending[action_id] = pending
        try:
            writer.write(encode(name, action_id, fields))
            await writer.drain()
            return await asyncio.wait_for(pending.future, self.action_timeout)
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise ProviderUnavailable(
                f"PBX {self.name} did not answer {name}: {type(exc).__name__}"
            ) from exc
        finally:
            self._pending.pop(action_id, None)

    # -- connection ------------------------------------------------------
    async def run(self, on_event: EventHandler, on_connect: ConnectHandler) -> None:
        """Stay connected until cancelled, reconnecting with backoff."""
        events: asyncio.Queue[AmiMessage | None] = asyncio.Queue()
        consumer = asyncio.create_task(
            self._consume(events, on_event, on_connect), name=f"ami-events-{self.name}"
        )
        try:
            await self._reconnect_forever(events)
        finally:
            consumer.cancel()
            await asyncio.wait([consumer])

    async def _reconnect_forever(self, events: asyncio.Queue[AmiMessage | None]) -> None:
        delay = self.backoff_min
        while True:
            try:
                await self._session_once(events)
                delay = self.backoff_min  # it was up: start the backoff again
            except asyncio.CancelledError:
                raise
            except LoginRefused as exc:
                log.error(
                    "PBX refused the login; check username and secret",
                    extra={"event": "ami.login_refused", "pbx": self.name, "reason": str(exc)},
                )
                delay = self.backoff_max
            except (ConnectionError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                log.warning(
                    "PBX connection lost; reconnecting",
                    extra={
                        "event": "ami.disconnected",
                        "pbx": self.name,
                        "error": f"{type(exc).__name__}: {exc}",
                        "delay_s": round(delay, 2),
                    },
                )
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max)

    async def _session_once(self, events: asyncio.Queue[AmiMessage | None]) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.action_timeout
        )
        self._session += 1
        self._writer = writer
        ami = AmiReader()
        tasks: list[asyncio.Task[None]] = []
        try:
            read = asyncio.create_task(
                self._read(reader, ami, events), name=f"ami-read-{self.name}"
            )
            tasks.append(read)
            response, _ = await self._login(read)
            if response.get("Response") != "Success":
                raise LoginRefused(response.get("Message", "no reason given"))
            self.connections += 1
            self.connected.set()
            log.info(
                "PBX connected",
                extra={"event": "ami.connected", "pbx": self.name, "banner": ami.banner},
            )
            events.put_nowait(None)  # "connected": the consumer runs on_connect in turn
            tasks.append(asyncio.create_task(self._keep_alive()))
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise what ended the session
            raise ConnectionError("AMI session ended")
        finally:
            self.connected.clear()
            self._writer = None
            for task in tasks:
                task.cancel()
            if tasks:
                # asyncio.wait, not `await task`: our own cancellation (the hub
                # stopping) must propagate, not be swallowed with theirs.
                await asyncio.wait(tasks)
                for task in tasks:
                    if not task.cancelled():
                        task.exception()  # retrieved: the session's end is logged above
            for pending in self._pending.values():
                if not pending.future.done():
                    pending.future.set_exception(ConnectionError("AMI connection lost"))
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    async def _login(self, read: asyncio.Task[None]) -> tuple[AmiMessage, list[AmiMessage]]:
        # The reader runs already; `connected` is not set yet, so send directly.
        action_id = f"hub-{self._session}-login"
        pending = _Pending(asyncio.get_running_loop().create_future())
        self._pending[action_id] = pending
        assert self._writer is not None
        self._writer.write(
            encode("Login", action_id, {"Username": self.username, "Secret": self.secret})
        )
        await self._writer.drain()
        try:
            waiters: set[asyncio.Future[Any]] = {pending.future, read}
            done, _ = await asyncio.wait(
                waiters, timeout=self.action_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if read in done:
                read.result()
                raise ConnectionError("PBX closed the connection during login")
            if not done:
                raise TimeoutError("no answer to Login")
            return pending.future.result()
        finally:
            self._pending.pop(action_id, None)

    async def _read(
        self, reader: asyncio.StreamReader, ami: AmiReader, events: asyncio.Queue[AmiMessage | None]
    ) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                raise ConnectionError("PBX closed the connection")
            bad_before = ami.bad_lines
            for message in ami.feed(data):
                self._route(message, events)
            if ami.bad_lines > bad_before:
                log.warning(
                    "PBX sent malformed lines; skipped",
                    extra={"event": "ami.malformed", "pbx": self.name, "lines": ami.bad_lines},
                )

    def _route(self, message: AmiMessage, events: asyncio.Queue[AmiMessage | None]) -> None:
        pending = self._pending.get(message.action_id or "")
        if pending is not None and not pending.future.done():
            if message.response is not None and pending.response is None:
                pending.response = message
                if pending.complete_event is None or message.response != "Success":
                    pending.future.set_result((message, []))
                return
            if message.event is not None and pending.complete_event is not None:
                if message.event == pending.complete_event:
                    assert pending.response is not None
                    pending.future.set_result((pending.response, pending.events))
                else:
                    pending.events.append(message)
                return
        if message.event is not None:
            events.put_nowait(message)

    async def _consume(
        self,
        events: asyncio.Queue[AmiMessage | None],
        on_event: EventHandler,
        on_connect: ConnectHandler,
    ) -> None:
        while True:
            message = await events.get()
            if message is None:
                try:
                    await on_connect()
                except (ProviderUnavailable, ProviderRejected) as exc:
                    # Lost again already; the next connection catches up instead.
                    log.warning(
                        "could not catch up after connecting",
                        extra={"event": "ami.catch_up_failed", "pbx": self.name, "error": str(exc)},
                    )
                continue
            try:
                await on_event(message)
            except Exception:
                # One bad event must not stop the stream; it is logged with its type.
                log.exception(
                    "AMI event handler failed",
                    extra={"event": "ami.handler_failed", "ami_event": message.event},
                )

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await asyncio.wait_for(self.action("Ping"), self.ping_timeout)
            except (ProviderUnavailable, TimeoutError) as exc:
                raise ConnectionError(f"keep-alive Ping unanswered: {exc}") from exc
