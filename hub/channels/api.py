"""The API channel: any system the company already has pushes messages in with
signed JSON, and receives replies as signed JSON at its callback URL.

Inbound: `POST /webhooks/api/{account}` with
`{"external_id", "from": {"id", "name", "phone"?, "email"?}, "text", "attachments"?}`
and `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the
account's secret>`.

Outbound: `POST <callback_url>` with the reply as JSON, signed the same way,
with `Idempotency-Key: <message id>` so the receiver can drop a repeat (a
worker killed after sending but before recording it sends once more).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, model_validator

from hub.channels.base import Channel, OutboundMessage, Receipt
from hub.errors import InvalidRequest, ProviderRejected, SignatureInvalid, describe_validation
from hub.inbox.addresses import email_identity, phone_identity
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Attachment, Identity
from hub.outbound_http import read_head

SIGNATURE_HEADER = "X-Hub-Signature-256"
# How much of a callback receiver's answer is read.
ANSWER_BYTES = 65_536


def sign(secret: str, body: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> None:
    """Raise SignatureInvalid unless `header` is the body's signature (constant time)."""
    if not header:
        raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(sign(secret, body), header.strip()):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body")


class ApiOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str = Field(min_length=16, description="from `secret_env`")
    callback_url: HttpUrl | None = None


class ApiSender(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=256)
    name: str = Field("", max_length=256)
    phone: str | None = Field(None, max_length=64)
    email: str | None = Field(None, max_length=320)


class ApiAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: HttpUrl
    name: str = Field("", max_length=256)
    content_type: str = Field("application/octet-stream", max_length=128)
    size: int | None = Field(None, ge=0)


class ApiInbound(BaseModel):
    """The body of an inbound API-channel webhook."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    external_id: str = Field(min_length=1, max_length=256)
    sender: ApiSender = Field(alias="from")
    text: str = Field("", max_length=65_536)
    attachments: list[ApiAttachment] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _has_content(self) -> ApiInbound:
        if not self.text.strip() and not self.attachments:
            raise ValueError("a message needs text or at least one attachment")
        return self


def normalise(payload: ApiInbound, *, account_id: str, default_region: str) -> InboundMessage:
    """The hub's view of an API-channel payload. Pure; raises InvalidRequest for a
    phone or e-mail that cannot be an address."""
    identities: list[Identity] = [Identity(channel=f"api:{account_id}", address=payload.sender.id)]
    try:
        if payload.sender.phone:
            identities.append(phone_identity(payload.sender.phone, default_region))
        if payload.sender.email:
            identities.append(email_identity(payload.sender.email))
    except InvalidRequest as exc:
        raise InvalidRequest(f"from: {exc.message}") from exc
    return InboundMessage(
        account_id=account_id,
        channel="api",
        external_id=payload.external_id,
        sender=InboundSender(name=payload.sender.name, identities=identities),
        text=payload.text,
        attachments=[
            Attachment(url=str(a.url), name=a.name, content_type=a.content_type, size=a.size)
            for a in payload.attachments
        ],
    )


class ApiChannel(Channel):
    name = "api"
    Options = ApiOptions
    options: ApiOptions

    def routes(self) -> list[web.RouteDef]:
        return [web.post(f"/webhooks/api/{self.account.id}", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        """Verify, normalise and ingest; acknowledge only once stored."""
        body = await request.read()
        verify(self.options.secret, body, request.headers.get(SIGNATURE_HEADER))
        try:
            payload = ApiInbound.model_validate_json(body)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise InvalidRequest("body is not valid JSON") from exc
            raise InvalidRequest(describe_validation(exc)) from exc
        inbound = normalise(
            payload, account_id=self.account.id, default_region=self.context.default_region
        )
        outcome = await self.context.ingest(inbound)
        return web.json_response(
            {
                "status": "duplicate" if outcome.duplicate else "accepted",
                "message_id": outcome.message_id,
                "conversation_id": outcome.conversation_id,
                "contact_id": outcome.contact_id,
            }
        )

    async def send(self, message: OutboundMessage) -> Receipt:
        if self.options.callback_url is None:
            raise ProviderRejected(
                f"account {self.account.id!r} has no callback_url to deliver replies to",
                retryable=False,
            )
        body = json.dumps(
            outbound_payload(message), ensure_ascii=False, separators=(",", ":")
        ).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self.options.secret, body),
            "Idempotency-Key": message.message_id,
            "X-Hub-Delivery": message.message_id,
        }
        try:
            async with self.context.http.post(
                str(self.options.callback_url), data=body, headers=headers
            ) as response:
                # The receiver's answer is only glanced at (an external id, an
                # error's first words): a long or endless one is not read whole.
                head = await read_head(response, ANSWER_BYTES)
                text = head.decode("utf-8", errors="replace")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderRejected(
                f"callback unreachable: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if 200 <= response.status < 300:
            return Receipt(external_id=_external_id(text), status="sent")
        retryable = response.status in (408, 425, 429) or response.status >= 500
        raise ProviderRejected(
            f"callback answered {response.status}: {text[:200]}",
            retryable=retryable,
            provider_code=str(response.status),
        )


def outbound_payload(message: OutboundMessage) -> dict[str, Any]:
    return {
        "type": "message",
        "id": message.message_id,
        "conversation_id": message.conversation_id,
        "to": {"id": message.to, "name": message.contact_name},
        "sender": {"name": message.sender_name},
        "text": message.text,
        "attachments": [a.model_dump(mode="json", exclude_none=True) for a in message.attachments],
        "created_at": message.created_at.isoformat(),
    }


def _external_id(text: str) -> str | None:
    """The receiver may answer `{"external_id": "..."}`; anything else is fine too."""
    try:
        answer = json.loads(text)
    except ValueError:
        return None
    value = answer.get("external_id") if isinstance(answer, dict) else None
    return str(value) if value else None
