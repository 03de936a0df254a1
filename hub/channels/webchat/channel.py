"""The web-chat channel: a chat bubble on the company's website, talking to the
hub over a WebSocket.

Routes: `GET /widget.js` (the widget, shared by every web-chat account) and
`GET /webchat/<account>/socket` (the visitor's socket; wire protocol in
`protocol.py`). The page's `Origin` must be one of the account's
`allowed_origins`, or the socket is refused with 403 before it opens.

Visitors are known by a random id in a token the hub signs (`tokens.py`),
kept in the browser; their identity is `("web", visitor id)`, so a returning
visitor is the same contact and continues the same conversation.

Real time across processes: everything the widget must see travels on the
event bus, and each process writes to the sockets it holds —
- an agent's reply goes the normal way (`InboxService.reply` → deliver job →
  `send`), and `send` publishes it as `webchat.push`;
- a visitor's own message reaches their other tabs through `message.created`;
- typing (`conversation.typing`), "seen" (`conversation.read`) and agent
  presence (`agent.presence`) come from the agents' side (`hub.web.realtime`).

What `send` returns: `sent` means the reply is in the visitor's transcript and
was pushed to every widget they have open; a visitor who is not connected gets
it when they come back (the widget resumes from the last message it has).
`delivered` follows when a widget reports it on screen, `read` when the
visitor saw it with the chat open. With `offline_email_account` set, a reply
to a visitor who has left and gave an e-mail address goes through that
account instead (`reroute`, under the chat's title as subject), and stays in
the transcript too; the customer's e-mailed answer finds the chat by its
Message-ID (`routes_through`) and shows in the widget.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import random
import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from hub.channels.base import Channel, ChannelContext, OutboundMessage, Receipt, Route
from hub.channels.webchat.limits import RateLimiter
from hub.channels.webchat.options import LANGUAGES, Language, WebChatOptions
from hub.channels.webchat.presence import VisitorPresence
from hub.channels.webchat.protocol import (
    CHANNEL,
    FRAMES,
    Acknowledge,
    Hello,
    Identify,
    Ping,
    SendText,
    Typing,
    encode,
    error_frame,
    event_view,
    message_view,
    normalise_details,
    normalise_text,
    outbound_view,
    visitor_identity,
)
from hub.channels.webchat.sockets import LiveSockets, VisitorSocket
from hub.channels.webchat.tokens import VisitorTokens, new_visitor_id
from hub.errors import (
    ConfigError,
    Forbidden,
    HubError,
    InvalidRequest,
    ProviderRejected,
    QueueUnavailable,
    StoreUnavailable,
    describe_validation,
)
from hub.events import Event
from hub.inbox.inbound import IngestOutcome
from hub.inbox.model import Contact, Identity, Message, to_ms
from hub.keys import derive
from hub.settings import AccountSettings

log = logging.getLogger(__name__)

WIDGET_FILE = Path(__file__).with_name("widget.js")
HELLO_TIMEOUT_SECONDS = 10.0
PRESENCE_TTL_SECONDS = 60.0
AVAILABILITY_CHECK_SECONDS = 20.0
TRANSCRIPT_LIMIT = 200
# On resume, messages stored up to this long before the widget's last one are
# sent again: ids sort by creation time, but a message created a moment earlier
# in another process can be committed a moment later. The widget drops repeats.
RESUME_OVERLAP_MS = 30_000
TYPING_INTERVAL_SECONDS = 1.0
# Pings keep idle sockets alive through proxies (which often drop a connection
# silent for 60 s) and find dead ones. Each socket gets its own interval: after
# a restart every widget reconnects within seconds, and equal intervals would
# make them all ping in the same few seconds, again and again.
HEARTBEAT_SECONDS = (40.0, 50.0)
PONG = encode({"type": "pong"})


class WidgetScript:
    """widget.js, read once, with an ETag so browsers revalidate cheaply."""

    def __init__(self, path: Path) -> None:
        self.body = path.read_bytes()
        self.gzipped = gzip.compress(self.body, mtime=0)  # a third of the size, for phones
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    async def serve(self, request: web.Request) -> web.Response:
        headers = {
            # Short max-age plus revalidation: an upgraded hub reaches every
            # site within minutes, and unchanged ones cost a 304.
            "Cache-Control": "public, max-age=300, must-revalidate",
            "ETag": self.etag,
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Vary": "Accept-Encoding",
        }
        if self.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        body = self.body
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            body = self.gzipped
            headers["Content-Encoding"] = "gzip"
        return web.Response(
            body=body, content_type="application/javascript", charset="utf-8", headers=headers
        )


@cache
def widget_script() -> WidgetScript:
    return WidgetScript(WIDGET_FILE)


def _known(contact: Contact | None) -> dict[str, bool]:
    channels = {i.channel for i in contact.identities} if contact else set()
    return {
        "name": bool(contact and contact.name),
        "email": "email" in channels,
        "phone": "phone" in channels,
    }


class WebChatChannel(Channel):
    name = CHANNEL
    Options = WebChatOptions
    options: WebChatOptions

    def __init__(self, account: AccountSettings, context: ChannelContext) -> None:
        super().__init__(account, context)
        if (
            context.bus is None
            or context.redis is None
            or context.customers is None
            or not context.secret_key
        ):
            raise ConfigError(
                f"account {account.id!r} (webchat): the hub did not provide the event bus,"
                " Redis, customer view and secret key a live channel needs"
            )
        self.bus = context.bus
        self.customers = context.customers
        self.clock = context.clock
        self.tokens = VisitorTokens(
            derive(context.secret_key, "webchat-visitor-token"),
            account.id,
            context.clock,
            timedelta(days=self.options.token_max_age_days),
        )
        # Presence is what `reroute` reads; with no fallback account, nothing
        # does, and a busy hub saves two Redis writes per visitor.
        self.presence: VisitorPresence | None = None
        if self.options.offline_email_account:
            self.presence = VisitorPresence(
                context.redis, context.key_prefix, account.id, context.clock, PRESENCE_TTL_SECONDS
            )
        self.sockets = LiveSockets()
        self.limiter = RateLimiter(
            self.options.rate_limit_burst, self.options.rate_limit_per_minute
        )
        # Typing and receipts are cheap but not free: a generous separate budget.
        self.signal_limiter = RateLimiter(60, 600)
        self._agents_online: bool | None = None
        self._availability_checked = float("-inf")
        self._availability_lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        # UTF-8 takes up to 4 bytes a character and JSON escapes up to 6: a frame
        # this big is refused by aiohttp itself; smaller over-long texts get a
        # clear `message_too_long` from us.
        self.max_frame_bytes = self.options.max_message_chars * 6 + 4096
        for event_type, handler in (
            ("webchat.push", self._on_push),
            ("message.created", self._on_message_created),
            ("conversation.typing", self._on_typing_event),
            ("conversation.read", self._on_read_event),
            ("agent.presence", self._on_presence_event),
        ):
            self.bus.subscribe(event_type, handler, scope="cluster")

    # -- wiring ------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/widget.js", widget_script().serve),
            web.get(f"/webchat/{self.account.id}/socket", self.socket),
        ]

    def references(self) -> Sequence[str]:
        return [self.options.offline_email_account] if self.options.offline_email_account else []

    def routes_through(self) -> Sequence[str]:
        return self.references()

    async def run(self) -> None:
        """Keep this process's sockets marked present, and widgets told whether
        anyone is there to answer (presence changes made outside the API, such
        as `hub agent add --online`, are noticed here)."""
        while True:
            await asyncio.sleep(PRESENCE_TTL_SECONDS / 3)
            if self.presence is not None:
                await self.presence.refresh(
                    (s.conversation_id, s.id) for s in self.sockets if s.conversation_id
                )
            try:
                await self._refresh_availability()
            except HubError:
                pass  # the store is down: widgets keep what they were last told

    async def shutdown(self) -> None:
        """Close every widget socket; the widgets reconnect (to another process,
        or to this one once it is back) and resume."""
        await asyncio.gather(
            *(
                s.ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"hub restarting")
                for s in self.sockets
            ),
            return_exceptions=True,
        )

    # -- the socket ----------------------------------------------------------
    async def socket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if not self.options.allows(origin):
            log.info(
                "web-chat socket refused: origin not allowed",
                extra={"event": "webchat.origin_refused", "account_id": self.account.id},
            )
            raise Forbidden(
                f"origin {origin or '(none)'} may not open the chat of account"
                f" {self.account.id!r}; add it to the account's allowed_origins"
            )
        ws = web.WebSocketResponse(
            heartbeat=random.uniform(*HEARTBEAT_SECONDS), max_msg_size=self.max_frame_bytes
        )
        if not ws.can_prepare(request).ok:
            raise InvalidRequest("this is the web-chat socket: open it with a WebSocket client")
        await ws.prepare(request)
        hello = await self._hello(ws)
        if hello is None:
            await ws.close()
            return ws
        socket = await self._open(ws, hello)
        if socket is None:
            return ws
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_frame(socket, frame.data)
                elif frame.type == WSMsgType.BINARY:
                    socket.push(error_frame("invalid_frame", "frames are JSON text, not binary"))
        finally:
            await self._close_surely(socket)
        return ws

    async def _hello(self, ws: web.WebSocketResponse) -> Hello | None:
        try:
            first = await ws.receive(timeout=HELLO_TIMEOUT_SECONDS)
        except TimeoutError:
            await ws.send_str(error_frame("hello_expected", "send a hello frame first"))
            return None
        if first.type != WSMsgType.TEXT:
            return None
        try:
            frame = FRAMES.validate_json(first.data)
        except ValidationError as exc:
            await ws.send_str(error_frame("invalid_frame", describe_validation(exc)))
            return None
        if not isinstance(frame, Hello):
            await ws.send_str(error_frame("hello_expected", "the first frame must be hello"))
            return None
        return frame

    async def _open(self, ws: web.WebSocketResponse, hello: Hello) -> VisitorSocket | None:
        visitor_id = self.tokens.visitor(hello.token) if hello.token else None
        new = visitor_id is None
        if visitor_id is None:
            visitor_id = new_visitor_id()
        socket = VisitorSocket(ws, visitor_id, hello.page)
        self.sockets.add(socket)
        socket.start()
        try:
            welcome = await self._welcome(socket, hello, new)
        except (StoreUnavailable, QueueUnavailable):
            socket.release(error_frame("unavailable", "the chat is unavailable; retrying"))
            await self._close_surely(socket)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"unavailable")
            return None
        socket.release(welcome)
        log.debug(
            "web-chat visitor connected",
            extra={"event": "webchat.connected", "account_id": self.account.id, "new": new},
        )
        return socket

    async def _welcome(self, socket: VisitorSocket, hello: Hello, new: bool) -> str:
        identity = visitor_identity(socket.visitor_id)
        contact = None if new else await self.customers.contact_for(identity)
        messages: list[Message] = []
        resumed = False
        if contact is not None:
            socket.contact_id = contact.id
            socket.name = contact.name
            conversation = await self.customers.current_conversation(self.account.id, contact.id)
            if conversation is not None:
                # Attached before the transcript is read: a reply sent meanwhile
                # is pushed (held until the welcome is queued) or in the transcript.
                await self._attach(socket, conversation.id)
                messages, resumed = self._since(
                    await self.customers.timeline(conversation.id), hello.after
                )
        return encode(
            {
                "type": "welcome",
                "token": self.tokens.issue(socket.visitor_id),
                "visitor_id": socket.visitor_id,
                "conversation_id": socket.conversation_id,
                "config": self._config(),
                "agents_online": await self._availability(),
                "known": _known(contact),
                "messages": [message_view(m) for m in messages],
                "resumed": resumed,
            }
        )

    @staticmethod
    def _since(timeline: list[Message], after: str | None) -> tuple[list[Message], bool]:
        """What a widget that shows everything up to `after` still needs."""
        if after:
            index = next((i for i, m in enumerate(timeline) if m.id == after), None)
            if index is not None:
                overlap = to_ms(timeline[index].created_at) - RESUME_OVERLAP_MS
                return [
                    m for i, m in enumerate(timeline) if i > index or to_ms(m.created_at) >= overlap
                ], True
        return timeline[-TRANSCRIPT_LIMIT:], False

    def _title(self, language: Language) -> str:
        """The chat's title: the widget's header, and the subject of the e-mail
        that continues a chat."""
        return self.options.text_for(self.options.title, language) or self.account.name or "Chat"

    def _config(self) -> dict[str, Any]:
        options = self.options
        title = {lang: self._title(lang) for lang in LANGUAGES}
        return {
            "color": options.color,
            "title": title,
            "greeting": {lang: options.text_for(options.greeting, lang) for lang in LANGUAGES},
            "language": options.language,
            "prechat": {"mode": options.prechat_form, "fields": options.prechat_fields},
            "max_chars": options.max_message_chars,
            "launcher": {"side": options.launcher_side, "bottom": options.launcher_bottom},
        }

    async def _close_surely(self, socket: VisitorSocket) -> None:
        """Clean up after a socket even when its handler is being cancelled (the
        server may cancel handlers whose connection dropped): the visitor must
        not stay "present" in Redis, or replies would wait for them in vain."""
        task = asyncio.create_task(self._close(socket), name=f"webchat-close-{socket.id}")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        await asyncio.shield(task)

    async def _close(self, socket: VisitorSocket) -> None:
        try:
            if socket.conversation_id is not None and self.presence is not None:
                await self.presence.leave(socket.conversation_id, socket.id)
        finally:
            self.sockets.remove(socket)
            await socket.stop()

    async def _attach(self, socket: VisitorSocket, conversation_id: str) -> None:
        previous = socket.conversation_id
        if self.sockets.attach(socket, conversation_id) and self.presence is not None:
            if previous is not None:
                await self.presence.leave(previous, socket.id)
            await self.presence.refresh([(conversation_id, socket.id)])

    # -- frames from the widget ---------------------------------------------
    async def _on_frame(self, socket: VisitorSocket, raw: str) -> None:
        try:
            frame = FRAMES.validate_json(raw)
        except ValidationError as exc:
            socket.push(error_frame("invalid_frame", describe_validation(exc)))
            return
        client_id = getattr(frame, "client_id", None)
        try:
            if isinstance(frame, SendText):
                await self._on_text(socket, frame)
            elif isinstance(frame, Identify):
                await self._on_identify(socket, frame)
            elif isinstance(frame, Typing):
                await self._on_typing(socket, frame)
            elif isinstance(frame, Acknowledge):
                await self._on_acknowledge(socket, frame)
            elif isinstance(frame, Ping):
                socket.push(PONG)
            else:
                socket.push(error_frame("invalid_frame", "hello is sent once, first"))
        except (StoreUnavailable, QueueUnavailable):
            # Stored or not, resending is safe: the client id makes it idempotent.
            socket.push(
                error_frame(
                    "unavailable",
                    "the chat could not take this just now; it is sent again shortly",
                    client_id=client_id,
                    retry_after=3,
                )
            )
        except HubError as exc:
            socket.push(error_frame(exc.code, exc.message, client_id=client_id))
        except Exception:
            log.exception(
                "web-chat frame failed",
                extra={"event": "webchat.frame_failed", "account_id": self.account.id},
            )
            socket.push(
                error_frame(
                    "unavailable", "something went wrong; retrying", client_id=client_id,
                    retry_after=5,
                )
            )  # fmt: skip

    def _limited(self, socket: VisitorSocket, client_id: str) -> bool:
        wait = self.limiter.take(socket.visitor_id)
        if wait:
            socket.push(
                error_frame(
                    "rate_limited",
                    f"too many messages; wait {wait:.0f} s",
                    client_id=client_id,
                    retry_after=wait,
                )
            )
        return bool(wait)

    async def _on_text(self, socket: VisitorSocket, frame: SendText) -> None:
        limit = self.options.max_message_chars
        if len(frame.text) > limit:
            socket.push(
                error_frame(
                    "message_too_long",
                    f"a message may have at most {limit} characters (this one has"
                    f" {len(frame.text)})",
                    client_id=frame.client_id,
                )
            )
            return
        if not frame.text.strip():
            socket.push(
                error_frame("empty_message", "the message is empty", client_id=frame.client_id)
            )
            return
        if self._limited(socket, frame.client_id):
            return
        inbound = normalise_text(
            frame,
            account_id=self.account.id,
            visitor_id=socket.visitor_id,
            name=socket.name,
            page=socket.page,
        )
        socket.sending[frame.client_id] = None
        try:
            outcome = await self.context.ingest(inbound)
            view = socket.sending.get(frame.client_id)
        finally:
            socket.sending.pop(frame.client_id, None)
        await self._joined(socket, outcome)
        if view is None:  # a repeat: the inbox announced nothing this time
            stored = await self.customers.message(outcome.message_id)
            view = message_view(stored) if stored else None
        socket.push(encode({"type": "ack", "client_id": frame.client_id, "message": view}))

    async def _on_identify(self, socket: VisitorSocket, frame: Identify) -> None:
        if self._limited(socket, frame.client_id):
            return
        try:
            inbound = normalise_details(
                frame,
                account_id=self.account.id,
                visitor_id=socket.visitor_id,
                default_region=self.context.default_region,
            )
        except InvalidRequest as exc:
            socket.push(error_frame("invalid_details", exc.message, client_id=frame.client_id))
            return
        outcome = await self.context.ingest(inbound)
        await self._joined(socket, outcome)
        if frame.name.strip():
            socket.name = frame.name.strip()
        contact = await self.customers.contact(outcome.contact_id)
        socket.push(
            encode({"type": "identified", "client_id": frame.client_id, "known": _known(contact)})
        )

    async def _joined(self, socket: VisitorSocket, outcome: IngestOutcome) -> None:
        """The inbox put the visitor's message in `outcome`'s conversation: show
        it on this socket. (The visitor's other tabs, wherever they are, follow
        through `message.created`: see `_on_message_created`.)"""
        socket.contact_id = outcome.contact_id
        await self._attach(socket, outcome.conversation_id)

    async def _on_typing(self, socket: VisitorSocket, frame: Typing) -> None:
        if socket.conversation_id is None:
            return  # nobody to tell before the first message
        now = time.monotonic()
        if frame.typing and now - socket.last_typing_at < TYPING_INTERVAL_SECONDS:
            return
        if self.signal_limiter.take(socket.visitor_id):
            return
        socket.last_typing_at = now if frame.typing else 0.0
        await self._publish(
            Event(
                "conversation.typing",
                {
                    "conversation_id": socket.conversation_id,
                    "account_id": self.account.id,
                    "typing": frame.typing,
                    "by": {"kind": "contact", "id": socket.contact_id, "name": socket.name},
                },
            )
        )

    async def _on_acknowledge(self, socket: VisitorSocket, frame: Acknowledge) -> None:
        if socket.conversation_id is None or socket.last_ack == (frame.type, frame.up_to):
            return
        if self.signal_limiter.take(socket.visitor_id):
            return
        socket.last_ack = (frame.type, frame.up_to)
        await self.customers.acknowledge(
            socket.conversation_id, frame.up_to, "read" if frame.type == "seen" else "delivered"
        )

    # -- events from any hub process ------------------------------------------
    def _mine(self, data: dict[str, Any]) -> bool:
        return bool(data.get("account_id") == self.account.id)

    async def _on_push(self, event: Event) -> None:
        if not self._mine(event.data):
            return
        frame = encode({"type": "message", "message": event.data["message"]})
        for socket in self.sockets.of_conversation(event.data["conversation_id"]):
            socket.push(frame)

    async def _on_message_created(self, event: Event) -> None:
        """A visitor's message reaches their other open tabs; tabs that showed no
        conversation yet (opened before the first message) join it."""
        data = event.data["message"]
        if data.get("account_id") != self.account.id or data.get("channel") != CHANNEL:
            # The customer writing to this chat another way (answering the e-mail
            # that continued it): widgets open on the conversation show it.
            if data.get("direction") == "inbound":
                self._show_inbound(data)
            return
        conversation_id = data["conversation_id"]
        # Our external ids are "<visitor id>:<client id>" (protocol.external_id).
        visitor_id = str(data.get("external_id") or "").partition(":")[0]
        for socket in self.sockets.of_visitor(visitor_id):
            if socket.conversation_id != conversation_id:
                await self._attach(socket, conversation_id)
        if data.get("direction") == "inbound":
            self._show_inbound(data)

    def _show_inbound(self, data: dict[str, Any]) -> None:
        """Push the customer's message to the widgets open on its conversation
        (a tab that is sending it gets it with its ack instead)."""
        sockets = self.sockets.of_conversation(data["conversation_id"])
        if not sockets:
            return
        view = event_view(data)
        frame: str | None = None
        for socket in sockets:
            if view["client_id"] in socket.sending:
                socket.sending[view["client_id"]] = view  # its ack will carry it
                continue
            frame = frame or encode({"type": "message", "message": view})
            socket.push(frame)

    async def _on_typing_event(self, event: Event) -> None:
        data = event.data
        if not self._mine(data) or data.get("by", {}).get("kind") != "agent":
            return
        frame = encode(
            {"type": "typing", "typing": bool(data["typing"]), "author": data["by"].get("name", "")}
        )
        for socket in self.sockets.of_conversation(data["conversation_id"]):
            socket.push(frame)

    async def _on_read_event(self, event: Event) -> None:
        conversation = event.data["conversation"]
        if conversation.get("account_id") != self.account.id:
            return
        frame = encode({"type": "seen", "up_to": event.data.get("up_to")})
        for socket in self.sockets.of_conversation(conversation["id"]):
            socket.push(frame)

    async def _on_presence_event(self, event: Event) -> None:
        if len(self.sockets):
            await self._refresh_availability()

    async def _availability(self) -> bool:
        if self._agents_online is None or (
            time.monotonic() - self._availability_checked > AVAILABILITY_CHECK_SECONDS
        ):
            await self._refresh_availability()
        return bool(self._agents_online)

    async def _refresh_availability(self) -> None:
        """Ask the store whether anyone can answer; tell every widget if that changed."""
        async with self._availability_lock:
            before = self._agents_online
            online = await self.customers.agents_available()
            self._agents_online = online
            self._availability_checked = time.monotonic()
        if before is not None and before != online:
            frame = encode({"type": "availability", "agents_online": online})
            for socket in self.sockets:
                socket.push(frame)

    async def _publish(self, event: Event) -> None:
        """Tell the other processes; this process's handlers have run already, so
        a Redis outage only delays other tabs until they reconnect."""
        try:
            await self.bus.publish(event)
        except QueueUnavailable as exc:
            log.warning(
                "web-chat event not published",
                extra={"event": "webchat.publish_failed", "error": exc.message},
            )

    # -- sending -------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> Receipt:
        view = outbound_view(
            message.message_id,
            message.sender_name,
            message.text,
            to_ms(message.created_at),
            message.attachments,
        )
        try:
            await self.bus.publish(
                Event(
                    "webchat.push",
                    {
                        "account_id": self.account.id,
                        "conversation_id": message.conversation_id,
                        "message": view,
                    },
                )
            )
        except QueueUnavailable as exc:
            raise ProviderRejected(
                f"cannot reach the hub processes holding the visitor's socket: {exc.message}",
                retryable=True,
            ) from exc
        return Receipt(status="sent")

    async def reroute(
        self, message: OutboundMessage, identities: Sequence[Identity]
    ) -> Route | None:
        """By e-mail, through `offline_email_account`, when the visitor has no
        widget open and has been gone longer than `offline_email_after_seconds`
        (a page change is not leaving) and gave an e-mail address."""
        target = self.options.offline_email_account
        email = next((i.address for i in identities if i.channel == "email"), None)
        if target is None or email is None:
            return None
        if self.presence is None:  # only without a target, which returned above
            return None
        try:
            state = await self.presence.state(message.conversation_id)
        except QueueUnavailable as exc:
            raise ProviderRejected(exc.message, retryable=True) from exc
        if state.connected:
            return None
        if state.left_at_ms is not None:
            away = (to_ms(self.clock.now()) - state.left_at_ms) / 1000
            wait = self.options.offline_email_after_seconds - away
            if wait > 0:
                raise ProviderRejected(
                    f"the visitor closed the chat {away:.0f} s ago and may be back; deciding"
                    f" in {wait:.0f} s whether to continue by e-mail",
                    retryable=True,
                    retry_after=wait,
                )
        return Route(
            account_id=target,
            to=email,
            reason="the visitor left the website; the conversation continues by e-mail",
            subject=self._title(self.options.language if self.options.language != "auto" else "en"),
        )
