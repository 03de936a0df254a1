"""The Zalo OA channel: the webhook route, and replies as consultation messages.

Inbound: Zalo POSTs each event to `/webhooks/zalo/{account}` (the app's
webhook URL), signed with `X-ZEvent-Signature`; see `events`.

Outbound: `POST <api>/v3.0/oa/message/cs` with header `access_token` and
`{"recipient": {"user_id"}, "message": {...}}`. Images go by URL in a media
template (the text as their caption); other files are uploaded first
(`POST <api>/v2.0/oa/upload/file`, multipart `file`) and sent by token. A
text takes at most 2000 characters, so a longer reply goes as several text
messages, in order. Each part goes once: a retry starts at the first part not
yet accepted (`hub.channels.parts`).
Zalo answers HTTP 200 with `{"error": 0, "data": {"message_id"}}` on success
and a negative `error` with a `message` otherwise.

Zalo lets an OA send consultation messages only within 7 days of the
follower's last interaction (error -230 after that): the inbox refuses such
replies up front, and Zalo's own refusal marks the message failed with its
reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hub.channels.base import Channel, ChannelContext, OutboundMessage, PartAccepted, Receipt
from hub.channels.batch import store_batch
from hub.channels.media import download, media_kind
from hub.channels.parts import first_id, ignore_parts, send_parts
from hub.channels.text_parts import split_text
from hub.channels.zalo.events import SIGNATURE_HEADER, ZaloEvent, normalise, verify
from hub.channels.zalo.tokens import TOKEN_ERRORS, TokenPair, ZaloTokens
from hub.errors import ConfigError, InvalidRequest, ProviderRejected, describe_validation
from hub.inbox.inbound import ReplyWindow
from hub.inbox.model import Attachment
from hub.settings import AccountSettings

log = logging.getLogger(__name__)

API_URL = "https://openapi.zalo.me"
OAUTH_URL = "https://oauth.zaloapp.com"
# Errors worth trying again: -32 rate limits (app or OA).
RETRYABLE = frozenset({-32})
# The follower has not interacted with the OA recently enough for a consultation message.
WINDOW_ERRORS = frozenset({-230, -232})
TEXT_LIMIT = 2000  # characters in one consultation message's text


class ZaloOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(pattern=r"^\d{1,32}$")
    oa_id: str = Field(pattern=r"^\d{1,32}$")
    app_secret: str = Field(min_length=8, description="from `app_secret_env`")
    oa_secret_key: str | None = Field(
        None, min_length=8, description="from `oa_secret_key_env`; default: the app secret"
    )
    access_token: str = Field(min_length=8, description="from `access_token_env` (seed)")
    refresh_token: str = Field(min_length=8, description="from `refresh_token_env` (seed)")
    api_url: str = API_URL
    oauth_url: str = OAUTH_URL
    reply_window_hours: float = Field(168.0, gt=0)
    free_reply_hours: float = Field(
        48.0, gt=0, description="replies later than this after the follower's message are paid"
    )
    refresh_before_minutes: float = Field(60.0, ge=0)

    @model_validator(mode="after")
    def _urls(self) -> ZaloOptions:
        self.api_url = self.api_url.rstrip("/")
        self.oauth_url = self.oauth_url.rstrip("/")
        return self


class ZaloChannel(Channel):
    name = "zalo"
    Options = ZaloOptions
    options: ZaloOptions

    def __init__(self, account: AccountSettings, context: ChannelContext) -> None:
        super().__init__(account, context)
        if context.state is None or context.locks is None:
            raise ConfigError(
                f"account {account.id!r} (zalo): this hub lends channels no state or locks,"
                " which Zalo's token refresh needs"
            )
        self.tokens = ZaloTokens(
            account_id=account.id,
            app_id=self.options.app_id,
            app_secret=self.options.app_secret,
            seed=TokenPair(self.options.access_token, self.options.refresh_token, None),
            oauth_url=self.options.oauth_url,
            refresh_before=timedelta(minutes=self.options.refresh_before_minutes),
            http=context.http,
            state=context.state,
            locks=context.locks,
            clock=context.clock,
        )

    @property
    def reply_window(self) -> ReplyWindow | None:
        return ReplyWindow(
            length=timedelta(hours=self.options.reply_window_hours),
            rule="Zalo OA (consultation messages need an interaction within 7 days)",
            paid_after=timedelta(hours=self.options.free_reply_hours),
            paid_rule="Zalo OA: a consultation message more than"
            f" {self.options.free_reply_hours:g} hours after the follower's last interaction"
            " counts against the OA's paid message quota",
        )

    def routes(self) -> list[web.RouteDef]:
        return [web.post(f"/webhooks/zalo/{self.account.id}", self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        """Verify, normalise and store; acknowledge only once stored."""
        body = await request.read()
        raw = verify(
            self.options.app_id,
            self.options.oa_secret_key or self.options.app_secret,
            body,
            request.headers.get(SIGNATURE_HEADER),
        )
        try:
            event = ZaloEvent.model_validate(raw)
        except ValidationError as exc:
            raise InvalidRequest(describe_validation(exc)) from exc
        batch = normalise(
            event,
            account_id=self.account.id,
            oa_id=self.options.oa_id,
            default_region=self.context.default_region,
        )
        await store_batch(self.context, batch, account_id=self.account.id)
        return web.json_response({"status": "ok"})

    # -- sending ---------------------------------------------------------------
    async def send(self, message: OutboundMessage) -> Receipt:
        return await self.send_in_parts(message, ignore_parts)

    async def send_in_parts(self, message: OutboundMessage, accepted: PartAccepted) -> Receipt:
        """One consultation message per part (`outbound_parts`); parts accepted
        before are skipped (`hub.channels.parts`), and so is a skipped file's upload."""
        parts = outbound_parts(message)
        if not parts:
            raise ProviderRejected(
                "nothing Zalo can send: no text and no file URL", retryable=False
            )
        recipient = {"user_id": message.to}

        async def send_one(part: Part) -> str | None:
            attachment, text = part
            payload: dict[str, Any]
            if attachment is None:
                payload = {"text": text}
            elif media_kind(attachment) == "image":
                element = {"media_type": "image", "url": attachment.url}
                payload = {
                    "attachment": {
                        "type": "template",
                        "payload": {"template_type": "media", "elements": [element]},
                    }
                }
                if text is not None:
                    payload["text"] = text
            else:
                token = await self._upload(
                    attachment.name or "file", await download(self.context.files, attachment)
                )
                payload = {"attachment": {"type": "file", "payload": {"token": token}}}
            answer = await self._send_cs({"recipient": recipient, "message": payload})
            return _message_id(answer)

        ids = await send_parts(message, parts, send_one, accepted)
        return Receipt(external_id=first_id(ids), status="sent")

    async def _send_cs(self, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

        async def call(token: str) -> dict[str, Any]:
            return await self._request(
                f"{self.options.api_url}/v3.0/oa/message/cs",
                token,
                data=payload,
                headers={"Content-Type": "application/json"},
            )

        return await self._authorised(call)

    async def _upload(self, filename: str, content: bytes) -> str:
        async def call(token: str) -> dict[str, Any]:
            form = aiohttp.FormData()
            form.add_field("file", content, filename=filename)
            return await self._request(
                f"{self.options.api_url}/v2.0/oa/upload/file", token, data=form
            )

        answer = await self._authorised(call)
        token = (answer.get("data") or {}).get("token")
        if not token:
            raise ProviderRejected("Zalo upload answered without a file token", retryable=False)
        return str(token)

    async def _authorised(self, call: Callable[[str], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """Call with the current access token; on Zalo's "token invalid/expired",
        refresh once and call again. Raises ProviderRejected for any other error."""
        token = await self.tokens.current()
        answer = await call(token)
        if _error(answer) in TOKEN_ERRORS:
            log.info(
                "zalo refused the access token; refreshing",
                extra={"event": "zalo.token_rejected", "account_id": self.account.id},
            )
            pair = await self.tokens.refresh(rejected=token)
            answer = await call(pair.access_token)
        code = _error(answer)
        if code == 0:
            return answer
        reason = str(answer.get("message") or "no reason given")
        if code in WINDOW_ERRORS:
            text = f"Zalo: outside the OA's 7-day consultation window — {reason} (error {code})"
        elif code in TOKEN_ERRORS:
            text = f"Zalo refused the access token even after a refresh: {reason} (error {code})"
        else:
            text = f"Zalo refused the message: {reason} (error {code})"
        raise ProviderRejected(text, retryable=code in RETRYABLE, provider_code=str(code))

    async def _request(
        self, url: str, token: str, *, data: Any, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            async with self.context.http.post(
                url, data=data, headers={"access_token": token, **(headers or {})}
            ) as response:
                text = await response.text(errors="replace")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderRejected(
                f"Zalo unreachable: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if response.status == 429 or response.status >= 500:
            raise ProviderRejected(f"Zalo answered {response.status}", retryable=True)
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ProviderRejected(
                f"Zalo answered {response.status} with a body that is not a JSON object",
                retryable=False,
            )
        return answer


# One consultation message of a reply: a file (an image with its caption), or a
# piece of text.
Part = tuple[Attachment | None, str | None]


def outbound_parts(message: OutboundMessage) -> list[Part]:
    """The messages one reply goes as, in order: each file by URL (the text as
    the first image's caption when it fits in 2000 characters), then the text,
    unless it went as a caption, in pieces of at most 2000. Pure."""
    parts: list[Part] = []
    caption_used = False
    text = message.text.strip()
    for attachment in message.attachments:
        if not attachment.url:
            continue
        caption = None
        if media_kind(attachment) == "image" and text and not caption_used:
            if len(text) <= TEXT_LIMIT:
                caption, caption_used = message.text, True
        parts.append((attachment, caption))
    if not caption_used:
        parts += [(None, piece) for piece in split_text(message.text, TEXT_LIMIT)]
    return parts


def _error(answer: dict[str, Any]) -> int:
    try:
        return int(answer.get("error", -1))
    except (TypeError, ValueError):
        return -1


def _message_id(answer: dict[str, Any]) -> str | None:
    data = answer.get("data")
    value = data.get("message_id") if isinstance(data, dict) else None
    return str(value) if value else None
