"""Contacts in the API: the person, their identities and attributes, the
cross-channel timeline (a page at a time), and merging two records of one person."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import InvalidRequest, NotFound
from hub.inbox.model import Contact
from hub.inbox.store import ConversationFilter
from hub.web.api import (
    INBOX,
    MAX_TIMELINE_PAGE,
    STORE,
    TIMELINE_PAGE,
    me,
    page_limit,
    read_body,
)
from hub.web.audit import record
from hub.web.permissions import conversation_scope, require

routes = web.RouteTableDef()
TIMELINE_CONVERSATIONS = 50
SEARCH_LIMIT = 20


class ContactPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    tags: list[str] | None = Field(None, max_length=50)
    attributes: dict[str, str | int | float | bool | None] | None = Field(None, max_length=100)


class TagBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str = Field(min_length=1, max_length=100)


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: str = Field(min_length=1, max_length=64, description="merged into this one")


async def contact_or_404(request: web.Request, contact_id: str) -> Contact:
    contact = await request.app[STORE].get_contact(contact_id)
    if contact is None:
        raise NotFound(f"contact {contact_id} does not exist")
    return contact


def phone_fragment(text: str) -> str:
    """A phone number as people type it ("090 111-1111", "+84 90...") as the part
    of a stored E.164 number it must contain; other text as it is."""
    digits = re.sub(r"[\s.()-]", "", text)
    if not re.fullmatch(r"\+?\d{3,}", digits):
        return text
    return digits[1:] if digits.startswith("0") else digits.lstrip("+")


@routes.get("/api/v1/contacts")
async def search(request: web.Request) -> web.Response:
    """Contacts whose name or an address contains `q` (case and diacritics
    ignored), at most 20."""
    text = request.query.get("q", "").strip()
    if not 2 <= len(text) <= 200:
        raise InvalidRequest("q must be 2 to 200 characters")
    found = await request.app[STORE].search_contacts(phone_fragment(text), limit=SEARCH_LIMIT)
    return web.json_response({"items": [c.model_dump(mode="json") for c in found]})


@routes.get("/api/v1/contacts/{id}")
async def get_contact(request: web.Request) -> web.Response:
    contact = await contact_or_404(request, request.match_info["id"])
    return web.json_response(contact.model_dump(mode="json"))


@routes.patch("/api/v1/contacts/{id}")
async def update_contact(request: web.Request) -> web.Response:
    """Name, language, tags and attributes (attributes are merged key by key; a
    null value removes the key)."""
    contact = await contact_or_404(request, request.match_info["id"])
    body = await read_body(request, ContactPatch)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"attributes"})
    if body.attributes is not None:
        attributes = {**contact.attributes, **body.attributes}
        changes["attributes"] = {k: v for k, v in attributes.items() if v is not None}
    changes = {k: v for k, v in changes.items() if v is not None or k == "language"}
    added: list[str] = []
    if body.tags is not None:
        # Removals are written here; additions go through the inbox one by one,
        # so `contact.tagged` starts what they start (care follow-ups).
        added = [t for t in dict.fromkeys(body.tags) if t not in contact.tags]
        changes["tags"] = [t for t in contact.tags if t in body.tags]
    if changes:
        changes["updated_at"] = request.app[INBOX].clock.now()
        await request.app[STORE].update_contact(contact.id, **changes)
    for tag in added:
        await request.app[INBOX].tag_contact(contact.id, tag)
    return web.json_response((await contact_or_404(request, contact.id)).model_dump(mode="json"))


@routes.post("/api/v1/contacts/{id}/tags")
async def tag_contact(request: web.Request) -> web.Response:
    """Add one tag ("purchased" from the shop's system starts the follow-ups of
    care rules on contact.tagged). Adding a tag the contact has is a no-op."""
    body = await read_body(request, TagBody)
    contact = await request.app[INBOX].tag_contact(request.match_info["id"], body.tag)
    return web.json_response(contact.model_dump(mode="json"))


@routes.get("/api/v1/contacts/{id}/timeline")
async def timeline(request: web.Request) -> web.Response:
    """What the contact wrote or was sent, on every channel: the newest `limit`
    messages (default 50), oldest first, and `next_cursor` to pass back as
    `cursor` for the ones before; with the conversations (newest first) they
    belong to — those the caller may see."""
    contact = await contact_or_404(request, request.match_info["id"])
    store = request.app[STORE]
    conversations = await store.list_conversations(
        ConversationFilter(contact_id=contact.id, visible_to=conversation_scope(me(request))),
        limit=TIMELINE_CONVERSATIONS,
    )
    messages = await store.timeline_page(
        [c.id for c in conversations.items],
        limit=page_limit(request, default=TIMELINE_PAGE, most=MAX_TIMELINE_PAGE),
        cursor=request.query.get("cursor") or None,
    )
    return web.json_response(
        {
            "contact": contact.model_dump(mode="json"),
            "conversations": [c.model_dump(mode="json") for c in conversations.items],
            "messages": [m.model_dump(mode="json") for m in messages.items],
            "next_cursor": messages.next_cursor,
            "more_conversations": conversations.next_cursor is not None,
        }
    )


@routes.post("/api/v1/contacts/{id}/merge")
async def merge(request: web.Request) -> web.Response:
    """Merge the contact named in the body into this one: its identities and
    conversations move here and it is deleted. Admins and agents; audited."""
    agent = me(request)
    require(agent, "admin", "agent")
    body = await read_body(request, MergeBody)
    keep_id = request.match_info["id"]
    store = request.app[STORE]
    merged = await contact_or_404(request, body.contact_id)
    await store.merge_contacts(keep_id, body.contact_id)
    await record(
        request,
        store,
        "contact.merged",
        actor_id=agent.id,
        target=keep_id,
        merged_contact_id=merged.id,
        merged_identities=[f"{i.channel}:{i.address}" for i in merged.identities],
    )
    return web.json_response((await contact_or_404(request, keep_id)).model_dump(mode="json"))
