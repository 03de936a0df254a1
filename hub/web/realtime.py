"""The agents' live stream: `GET /api/v1/stream`, a WebSocket authenticated like
the REST API (`Authorization: Bearer <token>`), pushing what happens in the
inbox as it happens, from every hub process (cluster handlers on the bus).

Hub → agent (JSON text frames):
- `{"type": "hello", "protocol": 1, "agent": {...}}` once, first;
- `{"type": "event", "event": <type>, "id": <event id>, "data": {...}}` for every
  `conversation.*`, `message.*`, `contact.*` and `agent.*` event (and, to admins
  and marketers, `campaign.progress`: a campaign's figures), with the same
  `data` the bus carries (`message.created` → `{"message": {...}}`,
  `conversation.typing` → `{"conversation_id", "account_id", "typing", "by"}`,
  `conversation.read` → `{"conversation", "up_to", "reader"}`,
  `conversation.viewing` → `{"conversation_id", "account_id", "viewing", "by"}`, ...);
- `{"type": "error", "code", "message"}` for a frame it could not act on;
- `{"type": "pong"}`.

Agent → hub:
- `{"type": "typing", "conversation_id", "typing": bool}` — shown to the
  customer on live channels (web chat);
- `{"type": "read", "conversation_id", "up_to": message id|null}` — as
  `POST /conversations/{id}/read`; live channels show the customer "seen";
- `{"type": "viewing", "conversation_id": id|null}` — the conversation the
  agent has open now (null: none). Colleagues who may see it are told
  (`conversation.viewing`), so two agents do not work one customer unawares; a
  page repeats it while open (a viewer not repeated for a minute is gone), and a
  closed stream stops viewing. Customers are never told;
- `{"type": "ping"}`.

Customer text arrives as the `text` of messages, never as markup to render.
What an agent is shown is decided in one place, `AgentStream.visible`, with the
same rule as the REST API (`hub.web.permissions`): an agent sees events of the
conversations they may see, a marketer none; and the frames an agent can send
in one table, `AgentStream.handlers`. An admin's change to an agent
(`agent.updated`) applies to their open streams at once; deactivation closes them.

Resuming: the stream does not replay. After a reconnect the page asks
`GET /api/v1/conversations?updated_since=<the last change it saw, minus a
margin>` and reloads the open conversation's timeline, which covers whatever
happened while it was away (every change moves `updated_at`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import (
    HubError,
    InvalidRequest,
    NotFound,
    QueueUnavailable,
    describe_validation,
)
from hub.events import ANY, Event, EventBus
from hub.inbox.model import Agent, Conversation, new_id
from hub.inbox.service import InboxService
from hub.live_socket import LiveSocket
from hub.routing.presence import PresenceTracker
from hub.web.api import agent_json
from hub.web.auth import AGENT
from hub.web.permissions import may_see

log = logging.getLogger(__name__)

PROTOCOL = 1
STREAMED = ("conversation.", "message.", "contact.", "agent.", "campaign.")
TYPING_INTERVAL_SECONDS = 1.0
MAX_FRAME_BYTES = 65_536


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(code: str, message: str) -> str:
    return encode({"type": "error", "code": code, "message": message})


class AgentConnection(LiveSocket):
    def __init__(self, ws: web.WebSocketResponse, agent: Agent) -> None:
        super().__init__(ws)
        self.agent = agent
        self.last_typing: dict[str, float] = {}
        self.viewing: Conversation | None = None


class TypingFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversation_id: str = Field(min_length=1, max_length=64)
    typing: bool


class ViewingFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversation_id: str | None = Field(None, min_length=1, max_length=64)


class ReadFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversation_id: str = Field(min_length=1, max_length=64)
    up_to: str | None = Field(None, max_length=64)


Handler = Callable[[AgentConnection, dict[str, Any]], Awaitable[None]]


class AgentStream:
    def __init__(
        self, bus: EventBus, inbox: InboxService, presence: PresenceTracker | None = None
    ) -> None:
        self.bus = bus
        self.inbox = inbox
        self.presence = presence  # counts sockets per agent: online / away after grace
        self.connections: set[AgentConnection] = set()
        self.handlers: dict[str, Handler] = {
            "typing": self._on_typing,
            "read": self._on_read,
            "viewing": self._on_viewing,
            "ping": self._on_ping,
        }
        self._leaving: set[asyncio.Task[None]] = set()
        bus.subscribe(ANY, self._on_event, scope="cluster")

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/api/v1/stream", self.handle)]

    def visible(self, agent: Agent, event: Event, conversation: Conversation | None) -> bool:
        """Whether `agent` is shown `event` about `conversation` (None: the event is
        not about one, or it no longer exists). Never their own typing or
        viewing back."""
        if event.type in ("conversation.typing", "conversation.viewing"):
            by = event.data.get("by") or {}
            if by.get("kind") == "agent" and by.get("id") == agent.id:
                return False
        if event.type.startswith("campaign."):
            return agent.role in ("admin", "marketer")  # as the campaign API
        if not event.type.startswith(("conversation.", "message.")):
            return True
        if agent.role == "marketer" or conversation is None:
            return agent.role == "admin"
        if event.data.get("previous_assignee_id") == agent.id:
            return True  # it left their list: they must hear so
        if event.data.get("previous_team_id") in agent.team_ids:
            return True  # moved out of their team: likewise
        return may_see(agent, conversation)

    async def _conversation_of(self, event: Event) -> Conversation | None:
        data = event.data
        if isinstance(data.get("conversation"), dict):
            try:
                return Conversation.model_validate(data["conversation"])
            except ValidationError:
                return None
        conversation_id = data.get("conversation_id")
        if conversation_id is None and isinstance(data.get("message"), dict):
            conversation_id = data["message"].get("conversation_id")
        if not isinstance(conversation_id, str):
            return None
        try:
            return await self.inbox.store.get_conversation(conversation_id)
        except HubError:
            return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        agent = request[AGENT]  # the token middleware authenticated the upgrade request
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=MAX_FRAME_BYTES)
        if not ws.can_prepare(request).ok:
            raise InvalidRequest("this is the live stream: open it with a WebSocket client")
        await ws.prepare(request)
        socket_id = new_id()
        if self.presence is not None:
            presence = await self.presence.opened(agent.id, socket_id)
            agent = agent.model_copy(update={"presence": presence or agent.presence})
        connection = AgentConnection(ws, agent)
        connection.start()
        connection.push(encode({"type": "hello", "protocol": PROTOCOL, "agent": agent_json(agent)}))
        self.connections.add(connection)
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_frame(connection, frame.data)
                elif frame.type == WSMsgType.BINARY:
                    connection.push(error_frame("invalid_frame", "frames are JSON text"))
        finally:
            self.connections.discard(connection)
            if connection.viewing is not None:
                # Its own task too: colleagues must hear the agent has gone.
                task = asyncio.create_task(self._announce_viewing(connection, None))
                self._leaving.add(task)
                task.add_done_callback(self._leaving.discard)
            if self.presence is not None:
                # Its own task: aiohttp may be cancelling this handler right now.
                self.presence.closed_soon(agent.id, socket_id)
            await connection.stop()
        return ws

    async def shutdown(self) -> None:
        await asyncio.gather(
            *(
                c.ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"hub restarting")
                for c in list(self.connections)
            ),
            return_exceptions=True,
        )

    async def _on_event(self, event: Event) -> None:
        if not self.connections or not event.type.startswith(STREAMED):
            return
        if event.type == "agent.updated":
            await self._agent_updated(event)
        conversation = None
        if event.type.startswith(("conversation.", "message.")) and any(
            c.agent.role == "agent" for c in self.connections
        ):
            conversation = await self._conversation_of(event)  # admins need not know
        frame: str | None = None
        for connection in list(self.connections):
            if self.visible(connection.agent, event, conversation):
                frame = frame or encode(
                    {"type": "event", "event": event.type, "id": event.id, "data": event.data}
                )
                connection.push(frame)

    async def _agent_updated(self, event: Event) -> None:
        try:
            agent = Agent.model_validate(event.data.get("agent"))
        except ValidationError:
            return
        for connection in list(self.connections):
            if connection.agent.id != agent.id:
                continue
            if not agent.active:
                await connection.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"deactivated")
            else:
                connection.agent = agent.model_copy(
                    update={"password_hash": connection.agent.password_hash}
                )

    async def _on_frame(self, connection: AgentConnection, raw: str) -> None:
        try:
            body = json.loads(raw)
        except ValueError:
            connection.push(error_frame("invalid_frame", "frames are JSON objects"))
            return
        kind = body.get("type") if isinstance(body, dict) else None
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            connection.push(error_frame("invalid_frame", f"type must be one of {known}"))
            return
        try:
            await handler(connection, body)
        except ValidationError as exc:
            connection.push(error_frame("invalid_frame", describe_validation(exc)))
        except HubError as exc:
            connection.push(error_frame(exc.code, exc.message))

    async def _on_ping(self, connection: AgentConnection, body: dict[str, Any]) -> None:
        connection.push(encode({"type": "pong"}))

    async def _on_typing(self, connection: AgentConnection, body: dict[str, Any]) -> None:
        frame = TypingFrame.model_validate(body)
        now = time.monotonic()
        last = connection.last_typing.get(frame.conversation_id, 0.0)
        if frame.typing and now - last < TYPING_INTERVAL_SECONDS:
            return  # the customer already sees "typing"
        connection.last_typing[frame.conversation_id] = now if frame.typing else 0.0
        agent = connection.agent
        conversation = await self.inbox.conversation(frame.conversation_id)
        if not may_see(agent, conversation):
            raise NotFound(f"conversation {frame.conversation_id} does not exist")
        try:
            await self.bus.publish(
                Event(
                    "conversation.typing",
                    {
                        "conversation_id": conversation.id,
                        "account_id": conversation.account_id,
                        "typing": frame.typing,
                        "by": {"kind": "agent", "id": agent.id, "name": agent.name},
                    },
                )
            )
        except QueueUnavailable:
            pass  # typing is a hint; this process's customers were told already

    async def _on_viewing(self, connection: AgentConnection, body: dict[str, Any]) -> None:
        frame = ViewingFrame.model_validate(body)
        conversation = None
        if frame.conversation_id is not None:
            conversation = await self.inbox.conversation(frame.conversation_id)
            if not may_see(connection.agent, conversation):
                raise NotFound(f"conversation {frame.conversation_id} does not exist")
        await self._announce_viewing(connection, conversation)

    async def _announce_viewing(
        self, connection: AgentConnection, conversation: Conversation | None
    ) -> None:
        """The agent views `conversation` now (None: nothing): they stop viewing
        the one before, if another, and start (or go on) viewing this one."""
        before, connection.viewing = connection.viewing, conversation
        by = {"kind": "agent", "id": connection.agent.id, "name": connection.agent.name}
        events = [
            Event(
                "conversation.viewing",
                {
                    "conversation_id": c.id,
                    "account_id": c.account_id,
                    "viewing": c is conversation,
                    "by": by,
                },
            )
            for c in (before, conversation)
            if c is not None and (c is conversation or c.id != getattr(conversation, "id", None))
        ]
        try:
            await self.bus.publish(*events)
        except QueueUnavailable:
            pass  # a hint: this process's pages were told already

    async def _on_read(self, connection: AgentConnection, body: dict[str, Any]) -> None:
        frame = ReadFrame.model_validate(body)
        if not may_see(connection.agent, await self.inbox.conversation(frame.conversation_id)):
            raise NotFound(f"conversation {frame.conversation_id} does not exist")
        await self.inbox.mark_read(frame.conversation_id, connection.agent, up_to=frame.up_to)
