"""Zalo OA webhook events: their signature and what they mean in hub's terms.

Every event is one JSON object:
`{"app_id", "sender": {"id"}, "recipient": {"id"}, "event_name", "message": {...},
"timestamp": "<ms>", "user_id_by_app"?}` — ids and the timestamp are strings.
For a user's message the sender is the user and the recipient the OA; for
receipts (`user_received_message`, `user_seen_message`) the OA is the sender.

Signature: header `X-ZEvent-Signature: mac=<hex>` where
`mac = sha256(app_id + raw body + timestamp + OA secret key)` — a plain SHA-256
of the concatenation (not an HMAC), `timestamp` being the body's own field.

A follower is known by an OA-scoped user id: identity `zalo:<oa id>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.channels.batch import Batch
from hub.channels.media import location_text
from hub.errors import InvalidRequest, SignatureInvalid
from hub.inbox.addresses import phone_identity
from hub.inbox.inbound import DeliveryReport, InboundMessage, InboundSender
from hub.inbox.model import Attachment, Identity

SIGNATURE_HEADER = "X-ZEvent-Signature"


def mac(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    """Zalo's signature of a webhook body (hex)."""
    return hashlib.sha256(
        app_id.encode() + body + timestamp.encode() + secret_key.encode()
    ).hexdigest()


def signature_header(app_id: str, body: bytes, timestamp: str, secret_key: str) -> str:
    return f"mac={mac(app_id, body, timestamp, secret_key)}"


def verify(app_id: str, secret_key: str, body: bytes, header: str | None) -> dict[str, Any]:
    """The body's JSON object once its signature checks out (constant time).
    Raises SignatureInvalid (unsigned or tampered) or InvalidRequest (not JSON)."""
    if not header:
        raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise InvalidRequest("body is not valid JSON") from exc
    if not isinstance(event, dict):
        raise InvalidRequest("body must be a JSON object")
    timestamp = event.get("timestamp")
    given = header.strip().removeprefix("mac=").strip().lower()
    expected = mac(app_id, body, str(timestamp) if timestamp is not None else "", secret_key)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body")
    return event


# -- the event's shape ---------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class Party(_Model):
    id: str = Field(min_length=1, max_length=64)


class Coordinates(_Model):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Payload(_Model):
    url: str | None = Field(None, max_length=4096)
    thumbnail: str | None = Field(None, max_length=4096)
    name: str | None = Field(None, max_length=512)
    size: str | None = Field(None, max_length=32)
    type: str | None = Field(None, max_length=64)
    id: str | None = Field(None, max_length=128)
    description: str | None = Field(None, max_length=2048)
    coordinates: Coordinates | None = None


class ZaloAttachment(_Model):
    type: str = Field(max_length=32)
    payload: Payload = Field(default_factory=Payload)


class ZaloMessage(_Model):
    msg_id: str | None = Field(None, max_length=256)
    msg_ids: list[str] = Field(default_factory=list, max_length=1000)
    text: str | None = Field(None, max_length=65_536)
    attachments: list[ZaloAttachment] = Field(default_factory=list, max_length=50)
    quote_msg_id: str | None = Field(None, max_length=256)


class SubmittedInfo(_Model):
    name: str = Field("", max_length=256)
    phone: str = Field("", max_length=64)


class ZaloEvent(_Model):
    app_id: str = Field("", max_length=64)
    event_name: str = Field(max_length=64)
    sender: Party | None = None
    recipient: Party | None = None
    message: ZaloMessage | None = None
    info: SubmittedInfo | None = None
    timestamp: str = Field("", max_length=20)


# -- normalise -----------------------------------------------------------------------

# user_send_* events hub stores as messages.
USER_MESSAGES = frozenset(
    {
        "user_send_text",
        "user_send_image",
        "user_send_gif",
        "user_send_file",
        "user_send_sticker",
        "user_send_audio",
        "user_send_video",
        "user_send_location",
        "user_send_link",
        "user_send_business_card",
    }
)
_CONTENT_TYPES = {"image": "image/*", "gif": "image/gif", "sticker": "image/*"}
_CONTENT_TYPES |= {"audio": "audio/*", "video": "video/*"}


def identity(oa_id: str, user_id: str) -> Identity:
    return Identity(channel=f"zalo:{oa_id}", address=user_id)


def _time(ms: str) -> datetime | None:
    if not (ms.isascii() and ms.isdigit()):
        return None
    try:
        return datetime.fromtimestamp(int(ms) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _attachment(item: ZaloAttachment) -> tuple[Attachment | None, str]:
    """An inbound attachment as (file, text it adds)."""
    payload = item.payload
    if item.type == "location" and payload.coordinates is not None:
        return None, location_text(payload.coordinates.latitude, payload.coordinates.longitude)
    if item.type == "link":
        return None, " ".join(p for p in (payload.description, payload.url) if p)
    if item.type == "business_card":
        return None, "Shared a business card" + (
            f": {payload.description}" if payload.description else ""
        )
    url = payload.url or payload.thumbnail
    if not url:
        return None, f"[{item.type}]"
    size = (
        int(payload.size)
        if payload.size and payload.size.isascii() and payload.size.isdigit()
        else None
    )
    if item.type == "file":
        extension = (payload.type or "").lower()
        name = payload.name or (f"file.{extension}" if extension else "file")
        content_type = "application/pdf" if extension == "pdf" else "application/octet-stream"
    else:
        name = item.type
        content_type = _CONTENT_TYPES.get(item.type, "application/octet-stream")
    return Attachment(name=name, content_type=content_type, size=size, url=url), ""


def normalise(event: ZaloEvent, *, account_id: str, oa_id: str, default_region: str) -> Batch:
    """What one Zalo webhook event means in hub's terms. Pure."""
    batch = Batch()
    name = event.event_name
    if name in USER_MESSAGES:
        if event.recipient is None or event.recipient.id != oa_id:
            batch.skipped.append(f"{name} for another OA")
            return batch
        if event.sender is None or event.message is None or not event.message.msg_id:
            batch.skipped.append(f"{name} without sender or msg_id")
            return batch
        message = event.message
        texts = [message.text] if message.text else []
        attachments = []
        for item in message.attachments:
            attachment, text = _attachment(item)
            if attachment is not None:
                attachments.append(attachment)
            if text:
                texts.append(text)
        if not texts and not attachments:
            texts.append(f"[{name.removeprefix('user_send_')}]")
        extra: dict[str, Any] = {"event_name": name}
        if message.quote_msg_id:
            extra["quote_msg_id"] = message.quote_msg_id
        batch.messages.append(
            InboundMessage(
                account_id=account_id,
                channel="zalo",
                external_id=message.msg_id,
                sender=InboundSender(identities=[identity(oa_id, event.sender.id)]),
                text="\n".join(texts),
                attachments=attachments,
                sent_at=_time(event.timestamp),
                meta=extra,
            )
        )
    elif name == "user_submit_info":
        batch.extend(_submitted_info(event, account_id, oa_id, default_region))
    elif name in ("user_received_message", "user_seen_message"):
        if event.sender is None or event.sender.id != oa_id or event.message is None:
            batch.skipped.append(f"{name} for another OA")
            return batch
        ids = list(event.message.msg_ids)
        if event.message.msg_id:
            ids.append(event.message.msg_id)
        batch.reports.append(
            DeliveryReport(
                account_id=account_id,
                channel="zalo",
                status="delivered" if name == "user_received_message" else "read",
                external_ids=ids,
            )
        )
    else:
        batch.skipped.append(f"event {name!r}")
    return batch


def _submitted_info(event: ZaloEvent, account_id: str, oa_id: str, default_region: str) -> Batch:
    """The follower answered the OA's "share your information" request: store it as
    their message, and give the phone they shared to their contact when nobody has
    it. The phone is *claimed*, not proven: Zalo does not tell whether the form's
    number is the follower's own, so it never makes the follower someone else's
    contact (who would then see that customer's history; see `InboundSender`)."""
    batch = Batch()
    if event.sender is None or event.info is None or event.recipient is None:
        batch.skipped.append("user_submit_info without sender or info")
        return batch
    if event.recipient.id != oa_id:
        batch.skipped.append("user_submit_info for another OA")
        return batch
    claimed: list[Identity] = []
    if event.info.phone:
        try:
            claimed.append(phone_identity(event.info.phone, default_region))
        except InvalidRequest:
            pass  # shown in the text; an unusable number is not linked
    shared = ", ".join(p for p in (event.info.name, event.info.phone) if p)
    batch.messages.append(
        InboundMessage(
            account_id=account_id,
            channel="zalo",
            external_id=f"submit_info:{event.sender.id}:{event.timestamp}",
            sender=InboundSender(
                name=event.info.name,
                identities=[identity(oa_id, event.sender.id)],
                claimed=claimed,
            ),
            text=f"Shared their information: {shared}" if shared else "Shared their information",
            sent_at=_time(event.timestamp),
            meta={"event_name": event.event_name},
        )
    )
    return batch
