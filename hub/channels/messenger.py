"""Facebook Messenger, through a Facebook Page and the Messenger Platform.

Inbound: Meta POSTs page webhooks to `/webhooks/messenger/{account}`
(`{"object": "page", "entry": [{"id": <page>, "messaging": [...]}]}`), signed
with `X-Hub-Signature-256`; `GET` on the same URL answers the verification
handshake. Text, images, videos, audio, files, stickers, shared locations and
button postbacks become messages; `delivery` and `read` events move our
replies' status (by message id, or by watermark time). Echoes of the Page's own
messages are ignored.

Outbound: the Send API, `POST /{page-id}/messages` with
`{"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": ...}`.
A message is text or one attachment (by URL), so a reply with attachments is
sent as several Messenger messages: attachments first, then the text. A text
takes at most 2000 characters (the Send API refuses longer with error 100), so
a longer reply goes as several texts, in order. Each part goes once: a retry
after part 2 failed starts at part 2 (`hub.channels.parts`).

The customer is known by a page-scoped id (PSID): identity `messenger:<page>`.
Replies are allowed within 24 hours of the customer's last message (Meta's
standard messaging window). With `human_agent_tag = true` (the app must have
been granted Meta's Human Agent permission) a reply an agent wrote may go up
to 7 days after it: when Meta refuses it as outside the 24 hours (error 10,
subcode 2018278), it is sent again as `messaging_type: MESSAGE_TAG`,
`tag: HUMAN_AGENT`. Automated messages (care rules) never carry the tag,
which Meta reserves for a person's answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.channels import meta
from hub.channels.base import Channel, OutboundMessage, PartAccepted, Receipt
from hub.channels.batch import Batch, store_batch
from hub.channels.media import location_text, media_kind
from hub.channels.parts import first_id, ignore_parts, send_parts
from hub.channels.text_parts import split_text
from hub.errors import ProviderRejected
from hub.inbox.inbound import DeliveryReport, InboundMessage, InboundSender, ReplyWindow
from hub.inbox.model import Attachment, Identity

PROVIDER = "Messenger"
TEXT_LIMIT = 2000  # characters in one Send API text message
HUMAN_AGENT_WINDOW = timedelta(days=7)


class MessengerOptions(meta.MetaOptions):
    page_id: str = Field(pattern=r"^\d{1,32}$")
    human_agent_tag: bool = Field(
        False,
        description="agents may answer up to 7 days after the customer's last message,"
        " with Meta's HUMAN_AGENT message tag (needs the Human Agent permission)",
    )


# -- the webhook's shape (only what hub reads; everything else is ignored) -----


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Party(_Model):
    id: str = Field(min_length=1, max_length=64)


class Coordinates(_Model):
    lat: float = Field(ge=-90, le=90)
    long: float = Field(ge=-180, le=180)


class AttachmentPayload(_Model):
    url: str | None = Field(None, max_length=4096)
    sticker_id: int | None = None
    coordinates: Coordinates | None = None
    title: str | None = Field(None, max_length=1024)


class MessengerAttachment(_Model):
    type: str = Field(max_length=32)
    payload: AttachmentPayload | None = None
    title: str | None = Field(None, max_length=1024)


class QuickReply(_Model):
    payload: str = Field("", max_length=1024)


class MessengerMessage(_Model):
    mid: str = Field(min_length=1, max_length=512)
    text: str | None = Field(None, max_length=65_536)
    attachments: list[MessengerAttachment] = Field(default_factory=list, max_length=50)
    sticker_id: int | None = None
    is_echo: bool = False
    quick_reply: QuickReply | None = None


class Postback(_Model):
    mid: str | None = Field(None, max_length=512)
    title: str = Field("", max_length=1024)
    payload: str = Field("", max_length=2048)


class Delivery(_Model):
    mids: list[str] = Field(default_factory=list, max_length=1000)
    watermark: int | None = Field(None, ge=0)


class Read(_Model):
    watermark: int = Field(ge=0)


class MessagingEvent(_Model):
    sender: Party
    recipient: Party
    timestamp: int | None = Field(None, ge=0)
    message: MessengerMessage | None = None
    postback: Postback | None = None
    delivery: Delivery | None = None
    read: Read | None = None


class PageEntry(_Model):
    id: str = Field(max_length=64)
    time: int | None = None
    messaging: list[MessagingEvent] = Field(default_factory=list, max_length=1000)


class MessengerWebhook(_Model):
    object: str
    entry: list[PageEntry] = Field(default_factory=list, max_length=1000)


# -- normalise -------------------------------------------------------------------


def identity(page_id: str, psid: str) -> Identity:
    return Identity(channel=f"messenger:{page_id}", address=psid)


def _time(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


_CONTENT_TYPES = {"image": "image/*", "video": "video/*", "audio": "audio/*"}


def _attachment(item: MessengerAttachment) -> tuple[Attachment | None, str]:
    """An inbound attachment as (file, text it adds)."""
    payload = item.payload or AttachmentPayload()
    if item.type == "location" and payload.coordinates is not None:
        return None, location_text(payload.coordinates.lat, payload.coordinates.long)
    if item.type == "fallback":
        return None, " ".join(p for p in (item.title or payload.title, payload.url) if p)
    if not payload.url:
        return None, f"[{item.type}]"
    name = "sticker" if payload.sticker_id is not None else item.type
    content_type = _CONTENT_TYPES.get(item.type, "application/octet-stream")
    return Attachment(name=name, content_type=content_type, url=payload.url), ""


def normalise(webhook: MessengerWebhook, *, account_id: str, page_id: str) -> Batch:
    """Everything one Messenger webhook delivery means in hub's terms. Pure."""
    batch = Batch()
    if webhook.object != "page":
        batch.skipped.append(f"object {webhook.object!r} is not a page webhook")
        return batch
    for entry in webhook.entry:
        if entry.id != page_id:
            batch.skipped.append(f"entry for page {entry.id}, not this account's page")
            continue
        for event in entry.messaging:
            batch.extend(_event(event, account_id=account_id, page_id=page_id))
    return batch


def _event(event: MessagingEvent, *, account_id: str, page_id: str) -> Batch:
    batch = Batch()
    customer = identity(page_id, event.sender.id)
    if event.message is not None:
        message = event.message
        if message.is_echo or event.sender.id == page_id:
            batch.skipped.append("echo of a message the page sent")
            return batch
        texts = [message.text] if message.text else []
        attachments = []
        for item in message.attachments:
            attachment, text = _attachment(item)
            if attachment is not None:
                attachments.append(attachment)
            if text:
                texts.append(text)
        meta_fields: dict[str, Any] = {}
        if message.sticker_id is not None:
            meta_fields["sticker_id"] = message.sticker_id
        if message.quick_reply is not None:
            meta_fields["quick_reply"] = message.quick_reply.payload
        if not texts and not attachments:
            texts.append("[message with no content hub can show]")
        batch.messages.append(
            InboundMessage(
                account_id=account_id,
                channel="messenger",
                external_id=message.mid,
                sender=InboundSender(identities=[customer]),
                text="\n".join(texts),
                attachments=attachments,
                sent_at=_time(event.timestamp),
                meta=meta_fields,
            )
        )
    elif event.postback is not None:
        postback = event.postback
        # A button press: what the customer "said" is the button's title.
        external_id = postback.mid or f"postback:{event.sender.id}:{event.timestamp}"
        batch.messages.append(
            InboundMessage(
                account_id=account_id,
                channel="messenger",
                external_id=external_id,
                sender=InboundSender(identities=[customer]),
                text=postback.title or postback.payload or "[button]",
                sent_at=_time(event.timestamp),
                meta={"postback": postback.payload},
            )
        )
    elif event.delivery is not None:
        delivery = event.delivery
        batch.reports.append(
            DeliveryReport(
                account_id=account_id,
                channel="messenger",
                status="delivered",
                external_ids=delivery.mids,
                identity=None if delivery.mids else customer,
                up_to=None if delivery.mids else _time(delivery.watermark),
            )
        )
    elif event.read is not None:
        batch.reports.append(
            DeliveryReport(
                account_id=account_id,
                channel="messenger",
                status="read",
                identity=customer,
                up_to=_time(event.read.watermark),
            )
        )
    else:
        batch.skipped.append("messaging event of a kind hub does not handle")
    return batch


# -- the channel -------------------------------------------------------------------


class MessengerChannel(Channel):
    name = "messenger"
    Options = MessengerOptions
    options: MessengerOptions

    @property
    def reply_window(self) -> ReplyWindow | None:
        if self.options.human_agent_tag:
            return ReplyWindow(
                length=timedelta(hours=self.options.reply_window_hours),
                agent_length=HUMAN_AGENT_WINDOW,
                rule="Messenger (Meta's 24-hour standard messaging window;"
                " 7 days for an agent's reply, with the HUMAN_AGENT tag)",
            )
        return ReplyWindow(
            length=timedelta(hours=self.options.reply_window_hours),
            rule="Messenger (Meta's 24-hour standard messaging window)",
        )

    def routes(self) -> list[web.RouteDef]:
        path = f"/webhooks/messenger/{self.account.id}"
        return [web.get(path, self.verify), web.post(path, self.receive)]

    async def verify(self, request: web.Request) -> web.Response:
        return meta.answer_verification(request, self.options.verify_token)

    async def receive(self, request: web.Request) -> web.Response:
        """Verify, normalise and store every event; acknowledge only once all are stored."""
        body = await request.read()
        meta.verify_signature(
            self.options.app_secret, body, request.headers.get(meta.SIGNATURE_HEADER)
        )
        webhook = meta.parse_webhook(MessengerWebhook, body)
        batch = normalise(webhook, account_id=self.account.id, page_id=self.options.page_id)
        await store_batch(self.context, batch, account_id=self.account.id)
        return meta.webhook_ack()

    @property
    def _send_url(self) -> str:
        o = self.options
        return f"{o.graph_url}/{o.graph_version}/{o.page_id}/messages"

    async def send(self, message: OutboundMessage) -> Receipt:
        return await self.send_in_parts(message, ignore_parts)

    async def send_in_parts(self, message: OutboundMessage, accepted: PartAccepted) -> Receipt:
        """Each attachment, then the text in pieces, one Send API request each;
        parts accepted before are skipped (`hub.channels.parts`)."""
        may_tag = self.options.human_agent_tag and not message.automated
        tagged = False

        async def send_one(body: dict[str, Any]) -> str | None:
            nonlocal tagged
            try:
                answer = await self._post(human_agent(body) if tagged else body)
            except ProviderRejected as exc:
                if tagged or not may_tag or not meta.outside_window(exc):
                    raise
                # Past the 24 hours: the agent's answer may still go, tagged.
                tagged = True
                answer = await self._post(human_agent(body))
            return _str(answer.get("message_id"))

        ids = await send_parts(message, outbound_bodies(message), send_one, accepted)
        return Receipt(
            external_id=first_id(ids),
            status="sent",
            meta={"tag": "HUMAN_AGENT"} if tagged else {},
        )

    async def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await meta.graph_post(
                self.context.http, PROVIDER, self._send_url, self.options.access_token, body
            )
        except ProviderRejected as exc:
            if body.get("tag") == "HUMAN_AGENT" and meta.outside_window(exc):
                raise ProviderRejected(
                    f"{PROVIDER}: outside the 7-day window of Meta's HUMAN_AGENT tag, or the"
                    f" app lacks the Human Agent permission — {exc.reason}",
                    retryable=False,
                    provider_code=exc.provider_code,
                ) from exc
            raise


def human_agent(body: dict[str, Any]) -> dict[str, Any]:
    """A Send API request as a human agent's answer past the 24-hour window."""
    return {**body, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}


def outbound_bodies(message: OutboundMessage) -> list[dict[str, Any]]:
    """The Send API requests for one reply: one per attachment, then the text in
    as many messages of at most 2000 characters as it needs, in order."""
    recipient = {"id": message.to}
    bodies: list[dict[str, Any]] = []
    for attachment in message.attachments:
        if not attachment.url:
            continue
        kind = media_kind(attachment)
        bodies.append(
            {
                "recipient": recipient,
                "messaging_type": "RESPONSE",
                "message": {
                    "attachment": {
                        "type": kind,
                        "payload": {"url": attachment.url, "is_reusable": False},
                    }
                },
            }
        )
    texts = split_text(message.text, TEXT_LIMIT)
    if not texts and not bodies:
        texts = [message.text]
    for text in texts:
        bodies.append(
            {"recipient": recipient, "messaging_type": "RESPONSE", "message": {"text": text}}
        )
    return bodies


def _str(value: Any) -> str | None:
    return str(value) if value else None
