"""The REST API, `/api/v1`: what integrations, the CLI and the workspace use.

JSON in and out; single resources are returned as objects, lists as
`{"items": [...], "next_cursor": ...}`; errors as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import InvalidRequest, NotFound, QueueUnavailable, describe_validation
from hub.events import Event, EventBus
from hub.inbox.model import Agent, Attachment, ConversationStatus, Presence
from hub.inbox.service import InboxService
from hub.inbox.store import ConversationFilter, Store
from hub.web.auth import AGENT

Body = TypeVar("Body", bound=BaseModel)

STATUSES: tuple[ConversationStatus, ...] = ("open", "pending", "snoozed", "resolved")
MAX_PAGE = 100

INBOX = web.AppKey("inbox", InboxService)
STORE = web.AppKey("store", Store)
BUS = web.AppKey("bus", EventBus)


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field("", max_length=65_536)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=65_536)


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str | None


class TagBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(min_length=1, max_length=100)


class PresenceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    presence: Presence


async def read_body(request: web.Request, model: type[Body]) -> Body:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidRequest("body is not valid JSON") from exc
        raise InvalidRequest(describe_validation(exc)) from exc


def agent_json(agent: Agent) -> dict[str, Any]:
    return agent.model_dump(mode="json", exclude={"password_hash"})


def me(request: web.Request) -> Agent:
    return request[AGENT]


def conversation_filter(request: web.Request) -> ConversationFilter:
    query = request.query
    statuses: list[ConversationStatus] | None = None
    if query.get("status"):
        statuses = []
        for status in query["status"].split(","):
            if status not in STATUSES:
                raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
            statuses.append(status)
    assignee = query.get("assignee")
    return ConversationFilter(
        statuses=statuses,
        assignee_id=me(request).id
        if assignee == "me"
        else assignee
        if assignee != "none"
        else None,
        unassigned=assignee == "none",
        channel=query.get("channel") or None,
        account_id=query.get("account") or None,
        contact_id=query.get("contact") or None,
    )


def page_limit(request: web.Request) -> int:
    raw = request.query.get("limit", "25")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return int(raw)


routes = web.RouteTableDef()


@routes.get("/api/v1/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    page = await request.app[STORE].list_conversations(
        conversation_filter(request),
        limit=page_limit(request),
        cursor=request.query.get("cursor") or None,
    )
    return web.json_response(
        {
            "items": [c.model_dump(mode="json") for c in page.items],
            "next_cursor": page.next_cursor,
        }
    )


@routes.get("/api/v1/conversations/{id}")
async def get_conversation(request: web.Request) -> web.Response:
    conversation = await request.app[INBOX].conversation(request.match_info["id"])
    contact = await request.app[STORE].get_contact(conversation.contact_id)
    body = conversation.model_dump(mode="json")
    body["contact"] = contact.model_dump(mode="json") if contact else None
    return web.json_response(body)


@routes.get("/api/v1/conversations/{id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    conversation = await request.app[INBOX].conversation(request.match_info["id"])
    messages = await request.app[STORE].list_messages(conversation.id)
    return web.json_response({"items": [m.model_dump(mode="json") for m in messages]})


@routes.post("/api/v1/conversations/{id}/messages")
async def reply(request: web.Request) -> web.Response:
    """Reply to the customer on the conversation's channel. Send an
    `Idempotency-Key` header to make retries of this request safe."""
    body = await read_body(request, ReplyBody)
    message, created = await request.app[INBOX].reply(
        request.match_info["id"],
        me(request),
        body.text,
        attachments=body.attachments,
        idempotency_key=request.headers.get("Idempotency-Key") or None,
    )
    return web.json_response(message.model_dump(mode="json"), status=202 if created else 200)


@routes.post("/api/v1/conversations/{id}/notes")
async def add_note(request: web.Request) -> web.Response:
    body = await read_body(request, NoteBody)
    note = await request.app[INBOX].add_note(request.match_info["id"], me(request), body.text)
    return web.json_response(note.model_dump(mode="json"), status=201)


@routes.post("/api/v1/conversations/{id}/assign")
async def assign(request: web.Request) -> web.Response:
    body = await read_body(request, AssignBody)
    inbox = request.app[INBOX]
    await inbox.assign(request.match_info["id"], body.agent_id)
    return web.json_response(
        (await inbox.conversation(request.match_info["id"])).model_dump(mode="json")
    )


@routes.post("/api/v1/conversations/{id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    conversation = await request.app[INBOX].resolve(request.match_info["id"])
    return web.json_response(conversation.model_dump(mode="json"))


@routes.post("/api/v1/conversations/{id}/reopen")
async def reopen(request: web.Request) -> web.Response:
    conversation = await request.app[INBOX].reopen(request.match_info["id"])
    return web.json_response(conversation.model_dump(mode="json"))


@routes.post("/api/v1/conversations/{id}/read")
async def mark_read(request: web.Request) -> web.Response:
    await request.app[INBOX].mark_read(request.match_info["id"], me(request))
    return web.json_response({"status": "ok"})


@routes.get("/api/v1/messages/{id}")
async def get_message(request: web.Request) -> web.Response:
    message = await request.app[STORE].get_message(request.match_info["id"])
    if message is None:
        raise NotFound(f"message {request.match_info['id']} does not exist")
    return web.json_response(message.model_dump(mode="json"))


@routes.get("/api/v1/contacts/{id}")
async def get_contact(request: web.Request) -> web.Response:
    contact = await request.app[STORE].get_contact(request.match_info["id"])
    if contact is None:
        raise NotFound(f"contact {request.match_info['id']} does not exist")
    return web.json_response(contact.model_dump(mode="json"))


@routes.post("/api/v1/contacts/{id}/tags")
async def tag_contact(request: web.Request) -> web.Response:
    """Tag the contact ("purchased" from the shop's system starts the follow-ups
    of care rules on contact.tagged). Adding a tag the contact has is a no-op."""
    body = await read_body(request, TagBody)
    contact = await request.app[INBOX].tag_contact(request.match_info["id"], body.tag)
    return web.json_response(contact.model_dump(mode="json"))


@routes.get("/api/v1/agents")
async def list_agents(request: web.Request) -> web.Response:
    agents = await request.app[STORE].list_agents()
    return web.json_response({"items": [agent_json(a) for a in agents]})


@routes.get("/api/v1/agents/me")
async def get_me(request: web.Request) -> web.Response:
    return web.json_response(agent_json(me(request)))


@routes.put("/api/v1/agents/me/presence")
async def set_presence(request: web.Request) -> web.Response:
    body = await read_body(request, PresenceBody)
    agent = me(request)
    await request.app[STORE].update_agent(agent.id, presence=body.presence)
    try:
        # Live channels tell waiting customers whether anyone is there to answer.
        await request.app[BUS].publish(
            Event("agent.presence", {"agent_id": agent.id, "presence": body.presence})
        )
    except QueueUnavailable:
        pass  # stored; other processes notice on their next periodic check
    return web.json_response(agent_json(agent.model_copy(update={"presence": body.presence})))
