"""Reading a mailbox over IMAP (aioimaplib): IDLE where the server offers it,
polling where it does not, reconnecting with backoff when anything breaks.

What it promises:
- Each message is handed to `deliver` in UID order, and the mailbox's
  UIDVALIDITY and last UID are saved in the store only after `deliver`
  returned (stored, or rejected with a logged reason). A restart or a
  reconnect resumes after the last saved UID: nothing is missed, and at
  most the one message being stored when the hub stopped is fetched again
  (the inbox drops it as a duplicate).
- `deliver` raising (the store is down) aborts the session without saving;
  the poller reconnects after a backoff and tries that message again.
- A new UIDVALIDITY (the mailbox was rebuilt, UIDs mean something else) is
  logged, and mail received since the last check is fetched again; the
  inbox's dedupe on the message's own identity keeps that from doubling.
- On the first connection it starts from the mail arriving now, or from
  `backfill_days` back.
- Messages over `max_message_bytes` are never downloaded: their headers are.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from aioimaplib import aioimaplib

from hub.channels.base import ChannelState
from hub.clock import Clock

log = logging.getLogger(__name__)
T = TypeVar("T")

UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
UIDNEXT = re.compile(rb"\[UIDNEXT (\d+)\]")
FETCH_UID = re.compile(rb"\bUID (\d+)")
FETCH_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ImapTrouble(Exception):
    """The server refused something the session needs (login, SELECT, FETCH)."""


@dataclass(frozen=True)
class ImapMailbox:
    host: str
    port: int
    security: Literal["tls", "none"]
    username: str
    password: str
    mailbox: str = "INBOX"
    idle: bool = True
    poll_seconds: float = 60.0
    idle_refresh_seconds: float = 1500.0
    timeout_seconds: float = 30.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    backfill_days: float = 0.0
    max_message_bytes: int = 52_428_800
    ca_file: str | None = None


@dataclass(frozen=True)
class FetchedMail:
    """One message as the server has it. `raw` is None when the message is
    larger than allowed; `headers` then holds its header block."""

    mailbox: str
    uidvalidity: int
    uid: int
    size: int
    raw: bytes | None
    headers: bytes | None = None


Deliver = Callable[[FetchedMail], Awaitable[None]]


@dataclass
class _Cursor:
    uidvalidity: int
    last_uid: int


class ImapPoller:
    def __init__(
        self,
        settings: ImapMailbox,
        *,
        account_id: str,
        state: ChannelState,
        deliver: Deliver,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.account_id = account_id
        self.state = state
        self.deliver = deliver
        self.clock = clock
        self.key = f"imap:{settings.mailbox}"
        self.sessions = 0  # how many times it connected (for tests and logs)
        self.catch_ups = 0  # how many times it looked for new mail
        self._lost = asyncio.Event()
        self._connected_once = False

    def _log(self, **extra: Any) -> dict[str, Any]:
        return {"account_id": self.account_id, "mailbox": self.settings.mailbox, **extra}

    async def run(self) -> None:
        """Read the mailbox until cancelled; connection trouble never ends it."""
        failures = 0
        while True:
            self._connected_once = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # anything: the poller must outlive it
                if self._connected_once:
                    failures = 0
                failures += 1
                delay = min(
                    self.settings.reconnect_max_seconds,
                    self.settings.reconnect_min_seconds * 2 ** (failures - 1),
                ) * random.uniform(0.8, 1.2)
                log.warning(
                    "IMAP session ended; reconnecting",
                    extra=self._log(
                        event="imap.reconnect",
                        error=f"{type(exc).__name__}: {exc}",
                        delay_s=round(delay, 2),
                    ),
                )
                await asyncio.sleep(delay)

    async def _ask(self, command: Awaitable[T]) -> T:
        """Run one IMAP command, but give up at once if the connection drops
        (aioimaplib would otherwise wait for the command's timeout)."""
        task = asyncio.ensure_future(command)
        closed = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({task, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if task.done():
            return task.result()
        task.cancel()
        raise ImapTrouble("the server closed the connection")

    async def _session(self) -> None:
        settings = self.settings
        lost = self._lost = asyncio.Event()
        client = aioimaplib.IMAP4(
            host=settings.host,
            port=settings.port,
            timeout=settings.timeout_seconds,
            conn_lost_cb=lambda _: lost.set(),
            ssl_context=ssl.create_default_context(cafile=settings.ca_file)
            if settings.security == "tls"
            else None,
        )
        try:
            await self._ask(client.wait_hello_from_server())
            answer = await self._ask(client.login(settings.username, settings.password))
            if answer.result != "OK":
                raise ImapTrouble(f"login refused: {_text(answer.lines)}")
            answer = await self._ask(client.select(_quoted(settings.mailbox)))
            if answer.result != "OK":
                raise ImapTrouble(f"cannot select {settings.mailbox!r}: {_text(answer.lines)}")
            self.sessions += 1
            self._connected_once = True
            cursor = await self._cursor(client, answer.lines)
            log.info(
                "IMAP mailbox open",
                extra=self._log(
                    event="imap.connected", last_uid=cursor.last_uid, idle=self._can_idle(client)
                ),
            )
            await self._catch_up(client, cursor)
            while True:
                await self._wait_for_mail(client, lost)
                if lost.is_set():
                    raise ImapTrouble("the server closed the connection")
                await self._catch_up(client, cursor)
        finally:
            await _logout(client, connected=not lost.is_set())

    def _can_idle(self, client: aioimaplib.IMAP4) -> bool:
        return self.settings.idle and client.has_capability("IDLE")

    async def _wait_for_mail(self, client: aioimaplib.IMAP4, lost: asyncio.Event) -> None:
        """Until the server reports a change (IDLE), or one poll interval (NOOP)."""
        if not self._can_idle(client):
            closed = asyncio.ensure_future(lost.wait())
            try:
                await asyncio.wait({closed}, timeout=self.settings.poll_seconds)
            finally:
                closed.cancel()
            if not lost.is_set():
                await self._ask(client.noop())
            return
        idle = await self._ask(client.idle_start(timeout=self.settings.idle_refresh_seconds))
        push = asyncio.ensure_future(
            client.wait_server_push(timeout=self.settings.idle_refresh_seconds + 30)
        )
        closed = asyncio.ensure_future(lost.wait())
        try:
            await asyncio.wait({push, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
        if push.done() and push.exception() is not None:
            raise ImapTrouble(f"IDLE ended badly: {push.exception()!r}")
        if push.done() and isinstance(push.result(), list):
            # The server complaining in the middle of IDLE (its mailbox went away,
            # an internal error) would otherwise answer every new IDLE at once:
            # a busy loop. Start over on a fresh connection, after a backoff.
            trouble = [bytes(line) for line in push.result() if _is_trouble(line)]
            if trouble:
                client.idle_done()
                raise ImapTrouble(f"the server said during IDLE: {_text(trouble)}")
        push.cancel()
        if lost.is_set():
            idle.cancel()
            return
        client.idle_done()
        await self._ask(asyncio.wait_for(idle, self.settings.timeout_seconds))

    async def _cursor(self, client: aioimaplib.IMAP4, select_lines: list[Any]) -> _Cursor:
        uidvalidity = _number(UIDVALIDITY, select_lines)
        if uidvalidity is None:
            raise ImapTrouble("the server did not say the mailbox's UIDVALIDITY")
        saved = await self.state.channel_state(self.account_id, self.key)
        if saved is not None and saved.get("uidvalidity") == uidvalidity:
            return _Cursor(uidvalidity, int(saved["last_uid"]))
        if saved is not None:
            # The mailbox was rebuilt: old UIDs are meaningless. Fetch what came
            # since the last check (a day's margin); duplicates are dropped.
            since = _parse_time(saved.get("checked_at")) or self.clock.now()
            log.warning(
                "IMAP UIDVALIDITY changed; fetching recent mail again",
                extra=self._log(
                    event="imap.uidvalidity_changed",
                    old=saved.get("uidvalidity"),
                    new=uidvalidity,
                ),
            )
            return await self._scan_since(client, uidvalidity, since - timedelta(days=1))
        if self.settings.backfill_days > 0:
            since = self.clock.now() - timedelta(days=self.settings.backfill_days)
            return await self._scan_since(client, uidvalidity, since)
        uidnext = _number(UIDNEXT, select_lines)
        if uidnext is None:
            uidnext = await self._highest_uid(client) + 1
        cursor = _Cursor(uidvalidity, uidnext - 1)
        await self._save(cursor)
        return cursor

    async def _scan_since(
        self, client: aioimaplib.IMAP4, uidvalidity: int, since: datetime
    ) -> _Cursor:
        answer = await self._ask(client.uid_search(f"SINCE {_imap_date(since)}"))
        if answer.result != "OK":
            raise ImapTrouble(f"SEARCH refused: {_text(answer.lines)}")
        uids = sorted(int(u) for line in answer.lines[:-1] for u in bytes(line).split())
        cursor = _Cursor(uidvalidity, 0)
        if uids:
            cursor.last_uid = uids[0] - 1  # the catch-up starts at the first of them
        else:
            cursor.last_uid = await self._highest_uid(client)
        await self._save(cursor)
        return cursor

    async def _highest_uid(self, client: aioimaplib.IMAP4) -> int:
        answer = await self._ask(client.uid_search("ALL"))
        uids = [int(u) for line in answer.lines[:-1] for u in bytes(line).split()]
        return max(uids, default=0)

    async def _catch_up(self, client: aioimaplib.IMAP4, cursor: _Cursor) -> None:
        """Deliver every message after the cursor, saving the cursor after each."""
        self.catch_ups += 1
        answer = await self._ask(
            client.uid("fetch", f"{cursor.last_uid + 1}:*", "(UID RFC822.SIZE)")
        )
        if answer.result != "OK":
            raise ImapTrouble(f"FETCH refused: {_text(answer.lines)}")
        waiting: list[tuple[int, int]] = []
        for line in answer.lines:
            if not isinstance(line, bytes | bytearray):
                continue
            uid, size = _number(FETCH_UID, [line]), _number(FETCH_SIZE, [line])
            if uid is not None and uid > cursor.last_uid:
                waiting.append((uid, size or 0))
        for uid, size in sorted(waiting):
            mail = await self._fetch(client, cursor.uidvalidity, uid, size)
            if mail is not None:
                await self.deliver(mail)
            cursor.last_uid = uid
            await self._save(cursor)

    async def _fetch(
        self, client: aioimaplib.IMAP4, uidvalidity: int, uid: int, size: int
    ) -> FetchedMail | None:
        too_large = size > self.settings.max_message_bytes
        # PEEK: reading a message must not mark it read for people using the mailbox.
        item = "BODY.PEEK[HEADER]" if too_large else "BODY.PEEK[]"
        answer = await self._ask(client.uid("fetch", str(uid), f"(UID {item})"))
        if answer.result != "OK":
            raise ImapTrouble(f"FETCH {uid} refused: {_text(answer.lines)}")
        literal = next((bytes(x) for x in answer.lines if isinstance(x, bytearray)), None)
        if literal is None:
            log.info(
                "message vanished before it could be fetched",
                extra=self._log(event="imap.vanished", uid=uid),
            )
            return None
        if too_large:
            return FetchedMail(self.settings.mailbox, uidvalidity, uid, size, None, literal)
        return FetchedMail(self.settings.mailbox, uidvalidity, uid, size or len(literal), literal)

    async def _save(self, cursor: _Cursor) -> None:
        await self.state.save_channel_state(
            self.account_id,
            self.key,
            {
                "uidvalidity": cursor.uidvalidity,
                "last_uid": cursor.last_uid,
                "checked_at": self.clock.now().isoformat(),
            },
        )


async def _logout(client: aioimaplib.IMAP4, *, connected: bool) -> None:
    """Say goodbye when the server is listening; in the middle of IDLE (a
    shutdown) just close: LOGOUT would wait for the IDLE to end."""
    try:
        if (
            connected
            and client.protocol is not None
            and client.get_state() not in ("LOGOUT", "NONAUTH")
            and not client.has_pending_idle()
        ):
            await asyncio.wait_for(client.logout(), timeout=2)
    except Exception:  # already gone; nothing to tidy
        pass
    transport = getattr(client.protocol, "transport", None)
    if transport is not None:
        transport.close()


def _is_trouble(line: Any) -> bool:
    return isinstance(line, bytes | bytearray) and bytes(line).startswith((b"NO ", b"BAD ", b"BYE"))


def _number(pattern: re.Pattern[bytes], lines: list[Any]) -> int | None:
    for line in lines:
        if isinstance(line, bytes | bytearray):
            found = pattern.search(bytes(line))
            if found:
                return int(found.group(1))
    return None


def _text(lines: list[Any]) -> str:
    return " ".join(
        bytes(line).decode("utf-8", "replace") for line in lines if isinstance(line, bytes)
    )[:300]


def _quoted(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _imap_date(moment: datetime) -> str:
    return f"{moment.day:02d}-{MONTHS[moment.month - 1]}-{moment.year}"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
