"""WhatsApp, through Meta's WhatsApp Cloud API (one business phone number per account).

Inbound: Meta POSTs `whatsapp_business_account` webhooks to
`/webhooks/whatsapp/{account}`, signed with `X-Hub-Signature-256`; `GET` on the
same URL answers the verification handshake. `messages` become inbound
messages (text, image, document, audio and voice notes, video, sticker,
location, shared contact cards, button and list replies); `statuses` move our
replies to sent / delivered / read, or to failed with WhatsApp's reason — the
Cloud API often accepts a send and reports its failure (such as a closed
24-hour window, error 131047) only in a later status webhook.

Outbound: `POST /{phone-number-id}/messages` with
`{"messaging_product": "whatsapp", "to", "type", ...}`. Media goes by link; the
reply's text rides as the caption of its first image, video or document. A
reply of several messages sends each once: a retry starts at the first one
not yet accepted (`hub.channels.parts`).

The customer's WhatsApp id is their phone number, so the contact's first
identity is the E.164 phone: one customer, one history, across WhatsApp, SMS,
calls and Zalo. Media arrives as Meta media ids (fetched with the access
token), kept as `storage_key = "whatsapp:<media id>"`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.channels import meta
from hub.channels.base import Channel, OutboundMessage, PartAccepted, Receipt
from hub.channels.batch import Batch, store_batch
from hub.channels.media import location_text, media_kind
from hub.channels.parts import first_id, ignore_parts, send_parts
from hub.channels.text_parts import split_text
from hub.errors import InvalidRequest, ProviderRejected
from hub.inbox.addresses import normalise_phone
from hub.inbox.inbound import DeliveryReport, InboundMessage, InboundSender, ReplyWindow
from hub.inbox.model import Attachment, DeliveryStatus, Identity
from hub.outbound_http import read_within

PROVIDER = "WhatsApp"
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096  # characters in one text message's body


class WhatsAppOptions(meta.MetaOptions):
    phone_number_id: str = Field(pattern=r"^\d{1,32}$")


# -- the webhook's shape ---------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Profile(_Model):
    name: str = Field("", max_length=256)


class WaContact(_Model):
    wa_id: str = Field(min_length=1, max_length=64)
    profile: Profile = Field(default_factory=Profile)


class Media(_Model):
    id: str = Field(min_length=1, max_length=256)
    mime_type: str = Field("application/octet-stream", max_length=128)
    caption: str | None = Field(None, max_length=4096)
    filename: str | None = Field(None, max_length=512)
    voice: bool = False
    animated: bool = False


class Text(_Model):
    body: str = Field(max_length=65_536)


class Location(_Model):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str = Field("", max_length=1024)
    address: str = Field("", max_length=1024)


class CardName(_Model):
    formatted_name: str = Field("", max_length=512)


class CardPhone(_Model):
    phone: str = Field("", max_length=64)


class Card(_Model):
    name: CardName = Field(default_factory=CardName)
    phones: list[CardPhone] = Field(default_factory=list, max_length=20)


class Reply(_Model):
    id: str = Field("", max_length=256)
    title: str = Field("", max_length=1024)


class Interactive(_Model):
    type: str = Field("", max_length=32)
    button_reply: Reply | None = None
    list_reply: Reply | None = None


class Button(_Model):
    text: str = Field("", max_length=1024)
    payload: str = Field("", max_length=1024)


class WaError(_Model):
    code: int | None = None
    title: str = Field("", max_length=1024)
    message: str = Field("", max_length=1024)
    error_data: dict[str, Any] | None = None

    def describe(self) -> str:
        details = (self.error_data or {}).get("details")
        text = self.message or self.title or "unknown error"
        if details and details not in text:
            text += f" ({details})"
        return f"{text} (error {self.code})" if self.code is not None else text


class WaMessage(_Model):
    id: str = Field(min_length=1, max_length=256)
    from_: str = Field(alias="from", min_length=1, max_length=64)
    timestamp: str | None = Field(None, max_length=20)
    type: str = Field(max_length=32)
    text: Text | None = None
    image: Media | None = None
    document: Media | None = None
    audio: Media | None = None
    video: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: list[Card] = Field(default_factory=list, max_length=20)
    interactive: Interactive | None = None
    button: Button | None = None
    errors: list[WaError] = Field(default_factory=list, max_length=20)


class WaStatus(_Model):
    id: str = Field(min_length=1, max_length=256)
    status: str = Field(max_length=32)
    timestamp: str | None = Field(None, max_length=20)
    recipient_id: str | None = Field(None, max_length=64)
    errors: list[WaError] = Field(default_factory=list, max_length=20)


class Metadata(_Model):
    phone_number_id: str = Field(max_length=64)
    display_phone_number: str = Field("", max_length=64)


class ChangeValue(_Model):
    messaging_product: str = "whatsapp"
    metadata: Metadata | None = None
    contacts: list[WaContact] = Field(default_factory=list, max_length=1000)
    messages: list[WaMessage] = Field(default_factory=list, max_length=1000)
    statuses: list[WaStatus] = Field(default_factory=list, max_length=1000)


class Change(_Model):
    field: str = Field(max_length=64)
    value: ChangeValue


class WaEntry(_Model):
    id: str = Field(max_length=64)
    changes: list[Change] = Field(default_factory=list, max_length=1000)


class WhatsAppWebhook(_Model):
    object: str
    entry: list[WaEntry] = Field(default_factory=list, max_length=1000)


# -- normalise ---------------------------------------------------------------------


def customer_identities(wa_id: str, default_region: str) -> list[Identity]:
    """A WhatsApp id is the customer's phone number (digits, no "+"): their E.164
    phone identity, or — should Meta ever send an id that is not a number — a
    WhatsApp-only identity."""
    try:
        return [Identity(channel="phone", address=normalise_phone("+" + wa_id, default_region))]
    except InvalidRequest:
        return [Identity(channel="whatsapp", address=wa_id)]


def _time(seconds: str | None) -> datetime | None:
    if not seconds or not (seconds.isascii() and seconds.isdigit()):
        return None
    try:
        return datetime.fromtimestamp(int(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        return None


_STATUSES: dict[str, DeliveryStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}
_MEDIA_NAMES = {
    "image": "image",
    "audio": "audio",
    "video": "video",
    "sticker": "sticker",
    "document": "document",
}


def _content(message: WaMessage) -> tuple[str, list[Attachment], dict[str, Any]]:
    """What a WhatsApp message says: (text, attachments, extra meta)."""
    kind = message.type
    media = getattr(message, kind, None) if kind in _MEDIA_NAMES else None
    if isinstance(media, Media):
        name = media.filename or ("voice note" if media.voice else _MEDIA_NAMES[kind])
        attachment = Attachment(
            name=name, content_type=media.mime_type, storage_key=f"whatsapp:{media.id}"
        )
        return media.caption or "", [attachment], {"voice": True} if media.voice else {}
    if kind == "text" and message.text is not None:
        return message.text.body, [], {}
    if kind == "location" and message.location is not None:
        loc = message.location
        return location_text(loc.latitude, loc.longitude, loc.name, loc.address), [], {}
    if kind == "contacts" and message.contacts:
        cards = [
            " ".join([c.name.formatted_name, *(p.phone for p in c.phones if p.phone)]).strip()
            for c in message.contacts
        ]
        return "Shared contact: " + "; ".join(c for c in cards if c), [], {}
    if kind == "interactive" and message.interactive is not None:
        reply = message.interactive.button_reply or message.interactive.list_reply
        if reply is not None:
            return reply.title or reply.id, [], {"reply_id": reply.id}
    if kind == "button" and message.button is not None:
        return message.button.text or message.button.payload, [], {}
    if message.errors:
        return f"[WhatsApp could not show this message: {message.errors[0].describe()}]", [], {}
    return f"[unsupported WhatsApp message: {kind}]", [], {}


def normalise(
    webhook: WhatsAppWebhook, *, account_id: str, phone_number_id: str, default_region: str
) -> Batch:
    """Everything one WhatsApp webhook delivery means in hub's terms. Pure."""
    batch = Batch()
    if webhook.object != "whatsapp_business_account":
        batch.skipped.append(f"object {webhook.object!r} is not a WhatsApp webhook")
        return batch
    for entry in webhook.entry:
        for change in entry.changes:
            value = change.value
            if change.field != "messages":
                batch.skipped.append(f"change field {change.field!r}")
                continue
            if value.metadata is None or value.metadata.phone_number_id != phone_number_id:
                batch.skipped.append("change for another phone number")
                continue
            names = {c.wa_id: c.profile.name for c in value.contacts}
            for message in value.messages:
                if message.type == "reaction":
                    batch.skipped.append("reaction")
                    continue
                text, attachments, extra = _content(message)
                batch.messages.append(
                    InboundMessage(
                        account_id=account_id,
                        channel="whatsapp",
                        external_id=message.id,
                        sender=InboundSender(
                            name=names.get(message.from_, ""),
                            identities=customer_identities(message.from_, default_region),
                        ),
                        text=text,
                        attachments=attachments,
                        sent_at=_time(message.timestamp),
                        meta={"type": message.type, **extra},
                    )
                )
            for status in value.statuses:
                mapped = _STATUSES.get(status.status)
                if mapped is None:
                    batch.skipped.append(f"status {status.status!r}")
                    continue
                error = None
                if mapped == "failed":
                    error = "WhatsApp could not deliver the message: " + (
                        status.errors[0].describe() if status.errors else "no reason given"
                    )
                batch.reports.append(
                    DeliveryReport(
                        account_id=account_id,
                        channel="whatsapp",
                        status=mapped,
                        external_ids=[status.id],
                        error=error,
                    )
                )
    return batch


# -- the channel -------------------------------------------------------------------


class WhatsAppChannel(Channel):
    name = "whatsapp"
    Options = WhatsAppOptions
    options: WhatsAppOptions

    @property
    def reply_window(self) -> ReplyWindow | None:
        return ReplyWindow(
            length=timedelta(hours=self.options.reply_window_hours),
            rule="WhatsApp (Meta's 24-hour customer-service window)",
        )

    def routes(self) -> list[web.RouteDef]:
        path = f"/webhooks/whatsapp/{self.account.id}"
        return [web.get(path, self.verify), web.post(path, self.receive)]

    async def verify(self, request: web.Request) -> web.Response:
        return meta.answer_verification(request, self.options.verify_token)

    async def receive(self, request: web.Request) -> web.Response:
        """Verify, normalise and store every event; acknowledge only once all are stored."""
        body = await request.read()
        meta.verify_signature(
            self.options.app_secret, body, request.headers.get(meta.SIGNATURE_HEADER)
        )
        webhook = meta.parse_webhook(WhatsAppWebhook, body)
        batch = normalise(
            webhook,
            account_id=self.account.id,
            phone_number_id=self.options.phone_number_id,
            default_region=self.context.default_region,
        )
        await store_batch(self.context, batch, account_id=self.account.id)
        return meta.webhook_ack()

    async def open_attachment(self, attachment: Attachment) -> tuple[bytes, str] | None:
        """Media the customer sent: its URL from the Graph API, then the bytes, both
        with the access token (the URL alone does not open)."""
        key = attachment.storage_key or ""
        if not key.startswith("whatsapp:"):
            return None
        o = self.options
        headers = {"Authorization": f"Bearer {o.access_token}"}
        media_id = key.removeprefix("whatsapp:")
        try:
            async with self.context.http.get(
                f"{o.graph_url}/{o.graph_version}/{media_id}", headers=headers
            ) as response:
                text = await response.text(errors="replace")
                if response.status >= 400:
                    raise _media_error(media_id, response.status, text)
                info = json.loads(text)
            limit = self.context.attachments.max_bytes if self.context.attachments else None
            async with self.context.http.get(str(info["url"]), headers=headers) as response:
                if response.status >= 400:
                    raise _media_error(media_id, response.status, "")
                body = await (response.read() if limit is None else read_within(response, limit))
        except (TimeoutError, aiohttp.ClientError, ValueError, KeyError, TypeError) as exc:
            raise ProviderRejected(
                f"WhatsApp media {media_id} could not be fetched: {type(exc).__name__}",
                retryable=True,
            ) from exc
        if body is None:
            raise ProviderRejected(
                f"WhatsApp media {media_id} is larger than the {limit} bytes"
                " hub keeps an attachment to",
                retryable=False,
            )
        return body, str(info.get("mime_type") or attachment.content_type)

    @property
    def _send_url(self) -> str:
        o = self.options
        return f"{o.graph_url}/{o.graph_version}/{o.phone_number_id}/messages"

    async def send(self, message: OutboundMessage) -> Receipt:
        return await self.send_in_parts(message, ignore_parts)

    async def send_in_parts(self, message: OutboundMessage, accepted: PartAccepted) -> Receipt:
        """One Cloud API request per part (`outbound_bodies`); parts accepted
        before are skipped (`hub.channels.parts`)."""

        async def send_one(body: dict[str, Any]) -> str | None:
            answer = await meta.graph_post(
                self.context.http, PROVIDER, self._send_url, self.options.access_token, body
            )
            messages = answer.get("messages")
            first = messages[0] if isinstance(messages, list) and messages else None
            return str(first["id"]) if isinstance(first, dict) and first.get("id") else None

        ids = await send_parts(message, outbound_bodies(message), send_one, accepted)
        return Receipt(external_id=first_id(ids), status="sent")


def _media_error(media_id: str, status: int, text: str) -> ProviderRejected:
    graph = meta.graph_rejection(PROVIDER, status, text)
    detail = graph.reason.split(": ", 1)[-1]
    return ProviderRejected(
        f"WhatsApp media {media_id} could not be fetched: {detail}",
        retryable=graph.retryable,
        provider_code=graph.provider_code,
    )


def outbound_bodies(message: OutboundMessage) -> list[dict[str, Any]]:
    """The Cloud API requests for one reply: each attachment by link (the text as
    the first captionable one's caption), and the text alone if it found no place —
    in as many messages of at most 4096 characters as it needs, in order (the
    Cloud API refuses a longer body)."""
    to = message.to.removeprefix("+")
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    text = message.text.strip()
    bodies: list[dict[str, Any]] = []
    for attachment in message.attachments:
        if not attachment.url:
            continue
        kind = media_kind(attachment)
        wa_type = "document" if kind == "file" else kind
        media: dict[str, Any] = {"link": attachment.url}
        if wa_type == "document" and attachment.name:
            media["filename"] = attachment.name
        if text and wa_type != "audio" and len(message.text) <= CAPTION_LIMIT:
            media["caption"] = message.text
            text = ""
        bodies.append({**base, "type": wa_type, wa_type: media})
    texts = split_text(message.text, TEXT_LIMIT) if text else []
    if not texts and not bodies:
        texts = [message.text]
    for part in texts:
        bodies.append({**base, "type": "text", "text": {"preview_url": False, "body": part}})
    return bodies
