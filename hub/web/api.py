"""The REST API, `/api/v1`: what integrations, the CLI and the workspace use.

JSON in and out; single resources are returned as objects, lists as
`{"items": [...], "next_cursor": ...}`; errors as `{"error": {"code", "message"}}`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from hub.errors import Conflict, InvalidRequest, NotFound, QueueUnavailable, describe_validation
from hub.events import Event, EventBus
from hub.inbox.model import (
    OPEN_STATUSES,
    Agent,
    Attachment,
    Conversation,
    ConversationStatus,
    Presence,
    Priority,
)
from hub.inbox.service import InboxService
from hub.inbox.store import ConversationFilter, Store
from hub.jobs import JobQueue
from hub.settings import TeamSettings
from hub.web.audit import record
from hub.web.auth import AGENT
from hub.web.media import reply_files
from hub.web.permissions import (
    conversation_scope,
    may_assign_to,
    may_see,
    visible_conversation,
)

Body = TypeVar("Body", bound=BaseModel)

STATUSES: tuple[ConversationStatus, ...] = ("open", "pending", "snoozed", "resolved")
MAX_PAGE = 100
# A conversation's timeline: messages a page by default, and at most.
TIMELINE_PAGE = 50
MAX_TIMELINE_PAGE = 500

INBOX = web.AppKey("inbox", InboxService)
STORE = web.AppKey("store", Store)
BUS = web.AppKey("bus", EventBus)
TEAMS = web.AppKey("teams", list[TeamSettings])
JOBS = web.AppKey("jobs", JobQueue)

LABEL = r"^[^\s,][^,]{0,39}$"
# "@minh" or "@minh.tran" or "@minh@example.vn": an agent by e-mail or its local part.
MENTION = re.compile(r"(?<![\w@])@([\w.+-]+(?:@[\w-]+(?:\.[\w-]+)+)?)")


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field("", max_length=65_536)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=65_536)


class AssignBody(BaseModel):
    """Assign to an agent (None: unassign) and/or move to a team. With
    `only_if_unassigned` (taking a conversation) it fails with 409 if someone
    else has it."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str | None = None
    team_id: str | None = Field(None, min_length=1, max_length=64)
    only_if_unassigned: bool = False


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str] | None = Field(None, max_length=20)
    priority: Priority | None = None


class SnoozeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime


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
    """The list's filters, from the query string, within what the caller may see:
    `status` (comma-separated), `assignee` (an id, `me` or `none`), `team` (an
    id or `mine`), `account`, `channel`, `contact`, `label`, `q` (text),
    `updated_since` (ISO 8601)."""
    query = request.query
    agent = me(request)
    teams: list[str] | None = None
    if query.get("team") == "mine":
        teams = list(agent.team_ids)
    elif query.get("team"):
        teams = [query["team"]]
    since: datetime | None = None
    if query.get("updated_since"):
        try:
            since = datetime.fromisoformat(query["updated_since"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidRequest("updated_since must be an ISO 8601 time") from exc
        if since.tzinfo is None:
            raise InvalidRequest("updated_since needs a timezone (Z or +07:00)")
    text = query.get("q", "").strip()
    if len(text) > 200:
        raise InvalidRequest("q is at most 200 characters")
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
        team_ids=teams,
        label=query.get("label") or None,
        text=text or None,
        updated_since=since,
        visible_to=conversation_scope(agent),
    )


def page_limit(request: web.Request, *, default: int = 25, most: int = MAX_PAGE) -> int:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise InvalidRequest(f"limit must be a whole number from 1 to {most}")
    return int(raw)


routes = web.RouteTableDef()


@routes.get("/api/v1/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    """Conversations the caller may see, newest activity first; each item also
    names its contact (`contact_name`), so a list needs no second request."""
    store = request.app[STORE]
    page = await store.list_conversations(
        conversation_filter(request),
        limit=page_limit(request),
        cursor=request.query.get("cursor") or None,
    )
    names: dict[str, str] = {}
    for contact_id in dict.fromkeys(c.contact_id for c in page.items):
        contact = await store.get_contact(contact_id)
        names[contact_id] = contact.name if contact else ""
    return web.json_response(
        {
            "items": [
                {**c.model_dump(mode="json"), "contact_name": names.get(c.contact_id, "")}
                for c in page.items
            ],
            "next_cursor": page.next_cursor,
        }
    )


async def visible(request: web.Request) -> Conversation:
    return await visible_conversation(request.app[INBOX], me(request), request.match_info["id"])


VIEWS = ("mine", "unassigned", "teams", "all")
COUNTED = 100  # unread counts stop at "99+": a badge, not a report


@routes.get("/api/v1/views")
async def views(request: web.Request) -> web.Response:
    """The inbox views of the caller (mine, unassigned, my teams, all, each label)
    with how many of their open conversations have unread messages."""
    agent = me(request)
    scope = conversation_scope(agent)
    store = request.app[STORE]
    filters = {
        "mine": ConversationFilter(assignee_id=agent.id),
        "unassigned": ConversationFilter(unassigned=True),
        "teams": ConversationFilter(team_ids=list(agent.team_ids)),
        "all": ConversationFilter(),
    }
    labels = await store.label_counts()
    for label in labels:
        filters[f"label:{label}"] = ConversationFilter(label=label)
    items = []
    for name, view in filters.items():
        page = await store.list_conversations(
            ConversationFilter(
                statuses=OPEN_STATUSES,
                assignee_id=view.assignee_id,
                unassigned=view.unassigned,
                team_ids=view.team_ids,
                label=view.label,
                visible_to=scope,
            ),
            limit=COUNTED,
        )
        unread = sum(1 for c in page.items if c.unread_count)
        items.append({"view": name, "unread": unread, "more": page.next_cursor is not None})
    return web.json_response({"items": items})


@routes.get("/api/v1/conversations/{id}")
async def get_conversation(request: web.Request) -> web.Response:
    """One conversation, with its contact and its channel's reply window.

    `reply_window` is null where the channel lets a reply go at any time. On
    Messenger, WhatsApp and Zalo it says whether an agent's reply can go now:
    `rule`, `hours`, `last_customer_at`, `closes_at` (null if the customer never
    wrote), `open`, and where later replies are charged (Zalo)
    `paid_after_hours`, `paid_from` and `paid_rule`; `now` is the hub's clock."""
    conversation = await visible(request)
    contact = await request.app[STORE].get_contact(conversation.contact_id)
    body = conversation.model_dump(mode="json")
    body["contact"] = contact.model_dump(mode="json") if contact else None
    body["reply_window"] = await request.app[INBOX].reply_window(conversation)
    return web.json_response(body)


@routes.get("/api/v1/conversations/{id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    """The timeline's newest `limit` messages (default 50), oldest first. While
    `next_cursor` is not null, pass it back as `cursor` for the messages before
    them: a long timeline is read a page at a time, back from its end."""
    conversation = await visible(request)
    page = await request.app[STORE].timeline_page(
        [conversation.id],
        limit=page_limit(request, default=TIMELINE_PAGE, most=MAX_TIMELINE_PAGE),
        cursor=request.query.get("cursor") or None,
    )
    return web.json_response(
        {"items": [m.model_dump(mode="json") for m in page.items], "next_cursor": page.next_cursor}
    )


@routes.post("/api/v1/conversations/{id}/messages")
async def reply(request: web.Request) -> web.Response:
    """Reply to the customer on the conversation's channel. Send an
    `Idempotency-Key` header to make retries of this request safe."""
    await visible(request)
    body = await read_body(request, ReplyBody)
    await reply_files(request, body.attachments)
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
    """A private note; `@name` or `@email` mentions an agent (in `meta.mentions`)."""
    await visible(request)
    body = await read_body(request, NoteBody)
    mentioned = await mentions(request.app[STORE], body.text)
    note = await request.app[INBOX].add_note(
        request.match_info["id"], me(request), body.text, mentions=[a.id for a in mentioned]
    )
    return web.json_response(note.model_dump(mode="json"), status=201)


async def mentions(store: Store, text: str) -> list[Agent]:
    """The active agents a text mentions, by e-mail or by the local part of it."""
    names = {m.lower() for m in MENTION.findall(text)}
    if not names:
        return []
    found = []
    for agent in await store.list_agents():
        email = agent.email.lower()
        if email in names or email.split("@")[0] in names:
            found.append(agent)
    return found


@routes.post("/api/v1/conversations/{id}/assign")
async def assign(request: web.Request) -> web.Response:
    conversation = await visible(request)
    body = await read_body(request, AssignBody)
    if not body.model_fields_set & {"agent_id", "team_id"}:
        raise InvalidRequest("agent_id: Field required (or team_id, to move it to a team)")
    inbox = request.app[INBOX]
    agent = me(request)
    assignee = None
    if body.agent_id is not None:
        assignee = await request.app[STORE].get_agent(body.agent_id)
        if assignee is None or not assignee.active:
            raise InvalidRequest(f"agent {body.agent_id} does not exist or is deactivated")
    if body.team_id is not None and body.team_id not in {t.id for t in request.app[TEAMS]}:
        raise InvalidRequest(f"team {body.team_id} does not exist")
    may_assign_to(agent, assignee, body.team_id)
    if body.team_id is not None:
        await inbox.update_details(conversation.id, team_id=body.team_id)
    if body.agent_id is not None or "agent_id" in body.model_fields_set:
        taken = await inbox.assign(
            conversation.id,
            body.agent_id,
            only_if_unassigned=body.only_if_unassigned,
            agent=assignee,
        )
        if not taken and body.only_if_unassigned:
            raise Conflict("someone else has this conversation")
    return web.json_response((await inbox.conversation(conversation.id)).model_dump(mode="json"))


@routes.patch("/api/v1/conversations/{id}")
async def update_conversation(request: web.Request) -> web.Response:
    """Labels and priority."""
    conversation = await visible(request)
    body = await read_body(request, ConversationPatch)
    changes: dict[str, Any] = {}
    if body.labels is not None:
        labels = list(dict.fromkeys(label.strip() for label in body.labels))
        if not all(re.match(LABEL, label) for label in labels):
            raise InvalidRequest("a label is 1 to 40 characters, without commas")
        changes["labels"] = labels
    if body.priority is not None:
        changes["priority"] = body.priority
    if not changes:
        raise InvalidRequest("send labels and/or priority")
    updated = await request.app[INBOX].update_details(conversation.id, **changes)
    return web.json_response(updated.model_dump(mode="json"))


@routes.post("/api/v1/conversations/{id}/snooze")
async def snooze(request: web.Request) -> web.Response:
    conversation = await visible(request)
    body = await read_body(request, SnoozeBody)
    if body.until <= request.app[INBOX].clock.now():
        raise InvalidRequest("snooze until a time in the future")
    # The wake-up first: if the snooze then fails, the job finds nothing to wake.
    await request.app[JOBS].enqueue_wake(conversation.id, body.until)
    snoozed = await request.app[INBOX].snooze(conversation.id, body.until)
    return web.json_response(snoozed.model_dump(mode="json"))


@routes.get("/api/v1/conversations/{id}/export")
async def export_conversation(request: web.Request) -> web.Response:
    """The whole conversation with its contact and timeline, as one JSON file.
    Recorded in the audit log."""
    conversation = await visible(request)
    store = request.app[STORE]
    contact = await store.get_contact(conversation.contact_id)
    messages = await store.list_messages(conversation.id)
    await record(
        request, store, "conversation.exported", actor_id=me(request).id, target=conversation.id
    )
    return web.json_response(
        {
            "conversation": conversation.model_dump(mode="json"),
            "contact": contact.model_dump(mode="json") if contact else None,
            "messages": [m.model_dump(mode="json") for m in messages],
        },
        headers={
            "Content-Disposition": f'attachment; filename="conversation-{conversation.id}.json"'
        },
    )


@routes.get("/api/v1/labels")
async def list_labels(request: web.Request) -> web.Response:
    """Labels in use, with how many unresolved conversations carry each."""
    counts = await request.app[STORE].label_counts()
    return web.json_response({"items": [{"label": k, "open": v} for k, v in counts.items()]})


@routes.post("/api/v1/conversations/{id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    await visible(request)
    conversation = await request.app[INBOX].resolve(request.match_info["id"])
    return web.json_response(conversation.model_dump(mode="json"))


@routes.post("/api/v1/conversations/{id}/reopen")
async def reopen(request: web.Request) -> web.Response:
    await visible(request)
    conversation = await request.app[INBOX].reopen(request.match_info["id"])
    return web.json_response(conversation.model_dump(mode="json"))


@routes.post("/api/v1/conversations/{id}/pending")
async def mark_pending(request: web.Request) -> web.Response:
    """Waiting on the customer: `pending` until the customer writes (it opens
    again) or a schedule rule reminds them or closes it. 409 when resolved."""
    await visible(request)
    conversation = await request.app[INBOX].mark_pending(request.match_info["id"])
    return web.json_response(conversation.model_dump(mode="json"))


@routes.post("/api/v1/conversations/{id}/read")
async def mark_read(request: web.Request) -> web.Response:
    await visible(request)
    await request.app[INBOX].mark_read(request.match_info["id"], me(request))
    return web.json_response({"status": "ok"})


@routes.get("/api/v1/messages/{id}")
async def get_message(request: web.Request) -> web.Response:
    message = await request.app[STORE].get_message(request.match_info["id"])
    if message is None or not may_see(
        me(request), await request.app[INBOX].conversation(message.conversation_id)
    ):
        raise NotFound(f"message {request.match_info['id']} does not exist")
    return web.json_response(message.model_dump(mode="json"))


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
