"""The widget's wire protocol: JSON text frames on one WebSocket per page.

Widget → hub (the first frame must be `hello`):
- `{"type": "hello", "token": str|null, "after": message id|null, "page": url?}`
  `token` is the visitor token kept in the browser (null: a new visitor);
  `after` the last message the widget shows (null: send the transcript).
- `{"type": "message", "client_id": str, "text": str}` — `client_id` is the
  widget's own id for the message; sending it again (after a reconnect) is
  answered with the same stored message, never stored twice.
- `{"type": "identify", "client_id": str, "name"?, "email"?, "phone"?}` — the
  pre-chat form or the "we will answer by e-mail" form.
- `{"type": "typing", "typing": bool}`
- `{"type": "received" | "seen", "up_to": message id}` — every message from the
  company up to this one reached the screen / was seen with the chat open.
- `{"type": "ping"}`

Hub → widget:
- `{"type": "welcome", "token", "visitor_id", "conversation_id", "config",
   "agents_online", "known": {"name", "email", "phone"}, "messages": [...],
   "resumed": bool}` — `messages` holds what follows `after` (with some overlap
   the widget drops by id), or the recent transcript.
- `{"type": "message", "message": view}` · `{"type": "ack", "client_id", "message": view}`
- `{"type": "identified", "client_id", "known": {...}}`
- `{"type": "typing", "typing": bool, "author": str}`
- `{"type": "seen", "up_to": message id|null}` — an agent read the visitor's
  messages (up to that one; null: all).
- `{"type": "availability", "agents_online": bool}`
- `{"type": "error", "code", "message", "client_id"?, "retry_after"?}` — codes:
  `invalid_frame`, `hello_expected`, `message_too_long`, `empty_message`,
  `rate_limited`, `invalid_details`, `unavailable` (try again later).
- `{"type": "pong"}`

A message view is `{"id", "from": "visitor"|"agent", "author", "text", "at"
(ms since epoch), "client_id", "attachments": [{"name", "url"}]}`. Text is
always plain text: the widget puts it on screen as text, never as HTML.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from hub.errors import InvalidRequest
from hub.inbox.addresses import email_identity, phone_identity
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Attachment, Identity, Message, to_ms

CHANNEL = "webchat"
IDENTITY_CHANNEL = "web"  # the address space of visitor ids (see Identity)
CLIENT_ID = r"^[A-Za-z0-9_-]{1,64}$"
MESSAGE_ID = r"^[A-Za-z0-9_-]{1,64}$"


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Hello(_Frame):
    type: Literal["hello"]
    token: str | None = Field(None, max_length=512)
    after: str | None = Field(None, pattern=MESSAGE_ID)
    page: str = Field("", max_length=2048)


class SendText(_Frame):
    type: Literal["message"]
    client_id: str = Field(pattern=CLIENT_ID)
    text: str  # its length is checked against the account's limit, for a clear error


class Identify(_Frame):
    type: Literal["identify"]
    client_id: str = Field(pattern=CLIENT_ID)
    name: str = Field("", max_length=200)
    email: str | None = Field(None, max_length=320)
    phone: str | None = Field(None, max_length=64)


class Typing(_Frame):
    type: Literal["typing"]
    typing: bool


class Acknowledge(_Frame):
    type: Literal["received", "seen"]
    up_to: str = Field(pattern=MESSAGE_ID)


class Ping(_Frame):
    type: Literal["ping"]


Frame = Annotated[
    Hello | SendText | Identify | Typing | Acknowledge | Ping, Field(discriminator="type")
]
FRAMES: TypeAdapter[Frame] = TypeAdapter(Frame)


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


def error_frame(
    code: str, message: str, *, client_id: str | None = None, retry_after: float | None = None
) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if client_id is not None:
        frame["client_id"] = client_id
    if retry_after is not None:
        frame["retry_after"] = round(retry_after, 2)
    return encode(frame)


def visitor_identity(visitor_id: str) -> Identity:
    return Identity(channel=IDENTITY_CHANNEL, address=visitor_id)


def _attachments(attachments: list[Attachment]) -> list[dict[str, str]]:
    # Only web links: the widget makes them clickable, and a javascript: URL must
    # never become one.
    return [
        {"name": a.name or "file", "url": a.url}
        for a in attachments
        if a.url and a.url.lower().startswith(("https://", "http://"))
    ]


def _without_quote(text: str, meta: dict[str, Any]) -> str:
    """What the customer wrote, without the mail they answered quoted below it
    (an e-mailed answer to a chat continued by e-mail; `quoted_at` is where the
    e-mail channel found the quote)."""
    quoted_at = meta.get("quoted_at")
    if isinstance(quoted_at, int) and 0 < quoted_at < len(text):
        return text[:quoted_at].rstrip()
    return text


def message_view(message: Message) -> dict[str, Any]:
    """A stored message as the visitor's widget shows it."""
    visitor = message.direction == "inbound"
    return {
        "id": message.id,
        "from": "visitor" if visitor else "agent",
        "author": "" if visitor else message.sender.name,
        "text": _without_quote(message.text, message.meta),
        "at": to_ms(message.created_at),
        "client_id": message.meta.get("client_id"),
        "attachments": _attachments(message.attachments),
    }


def event_view(message: dict[str, Any]) -> dict[str, Any]:
    """`message_view` of a message as a bus event carries it (JSON): the same
    view without validating the whole record again."""
    visitor = message["direction"] == "inbound"
    attachments = [Attachment.model_validate(a) for a in message.get("attachments") or ()]
    return {
        "id": message["id"],
        "from": "visitor" if visitor else "agent",
        "author": "" if visitor else (message.get("sender") or {}).get("name", ""),
        "text": _without_quote(message.get("text", ""), message.get("meta") or {}),
        "at": to_ms(datetime.fromisoformat(message["created_at"])),
        "client_id": (message.get("meta") or {}).get("client_id"),
        "attachments": _attachments(attachments),
    }


def outbound_view(
    message_id: str, author: str, text: str, at_ms: int, attachments: list[Attachment]
) -> dict[str, Any]:
    """A reply being sent, as the visitor's widget shows it (same shape as above)."""
    return {
        "id": message_id,
        "from": "agent",
        "author": author,
        "text": text,
        "at": at_ms,
        "client_id": None,
        "attachments": _attachments(attachments),
    }


def external_id(visitor_id: str, client_id: str) -> str:
    """The dedupe key: scoped to the visitor, so one visitor's ids can never
    collide with (or reveal) another's."""
    return f"{visitor_id}:{client_id}"


def normalise_text(
    frame: SendText, *, account_id: str, visitor_id: str, name: str, page: str
) -> InboundMessage:
    """A visitor's chat message in the hub's terms. Pure. The text is kept as
    typed: it is plain text, and no HTML field is ever set."""
    meta: dict[str, Any] = {"client_id": frame.client_id}
    if page:
        meta["page"] = page
    return InboundMessage(
        account_id=account_id,
        channel=CHANNEL,
        external_id=external_id(visitor_id, frame.client_id),
        sender=InboundSender(name=name, identities=[visitor_identity(visitor_id)]),
        text=frame.text,
        meta=meta,
    )


def normalise_details(
    frame: Identify, *, account_id: str, visitor_id: str, default_region: str
) -> InboundMessage:
    """The visitor's name, e-mail and phone as an event in their conversation.
    The e-mail and phone are only claimed (anyone can type anyone's): they are
    given to the visitor's contact when nobody has them, and never make the
    visitor someone else, whose chat history the widget would then show them.
    An agent who sees it is the same person merges the two contacts. Raises
    InvalidRequest naming a bad e-mail or phone."""
    identities = [visitor_identity(visitor_id)]
    shared: list[str] = []
    if frame.name.strip():
        shared.append(frame.name.strip())
    try:
        if frame.email and frame.email.strip():
            identities.append(email_identity(frame.email))
            shared.append(identities[-1].address)
    except InvalidRequest as exc:
        raise InvalidRequest(f"email: {exc.message}") from exc
    try:
        if frame.phone and frame.phone.strip():
            identities.append(phone_identity(frame.phone, default_region))
            shared.append(identities[-1].address)
    except InvalidRequest as exc:
        raise InvalidRequest(f"phone: {exc.message}") from exc
    return InboundMessage(
        account_id=account_id,
        channel=CHANNEL,
        external_id=external_id(visitor_id, frame.client_id),
        sender=InboundSender(
            name=frame.name.strip(), identities=identities[:1], claimed=identities[1:]
        ),
        direction="event",
        text="The visitor shared their details: " + (", ".join(shared) or "(none)"),
        meta={"client_id": frame.client_id, "details": [i.channel for i in identities[1:]]},
    )
