"""Telegram bots, through python-telegram-bot (PTB) used as a Bot API client.

Inbound, in production: webhook mode inside hub's own web server. At start-up
the channel calls `setWebhook(url, secret_token=...)`; Telegram then POSTs each
update to `/webhooks/telegram/{account}` with the header
`X-Telegram-Bot-Api-Secret-Token`, which is checked (constant time) on every
update. For development without a public URL, `mode = "polling"` long-polls
`getUpdates` instead; its offset is kept in the store and advanced only after
the updates are stored.

Private chats only: text, photos, documents, voice notes, audio, video,
stickers, locations and shared contacts. A contact card the customer shares
of themself links their phone number (E.164) to their contact. Files arrive as
Telegram file ids, kept as `storage_key = "telegram:<file id>"` (a file URL
would carry the bot token).

Outbound: `sendMessage`, and `sendPhoto` / `sendDocument` for attachments,
whose bytes hub fetches from the attachment's URL and uploads (Telegram fetches
few kinds of file by URL itself). Text goes as plain text (no `parse_mode`, so
a "_" or "<" an agent types is shown, not parsed), at most 4096 UTF-16 units
per message: a longer reply goes as several messages, in order, each once (a
retry starts at the first not yet accepted, `hub.channels.parts`). A 429's
`retry_after` is when the worker tries again.

The customer is the Telegram user id (identity `telegram`), which for a
private chat is also the chat id replies go to. Telegram has no reply window.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from datetime import timedelta
from typing import Any, Literal

import telegram
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator
from telegram import error as tg_error
from telegram.request import HTTPXRequest

from hub.channels.base import Channel, ChannelContext, OutboundMessage, PartAccepted, Receipt
from hub.channels.batch import Batch, store_batch
from hub.channels.media import download, location_text, media_kind
from hub.channels.parts import first_id, ignore_parts, send_parts
from hub.channels.text_parts import split_text, utf16_length
from hub.errors import InvalidRequest, ProviderRejected, SignatureInvalid
from hub.inbox.addresses import phone_identity
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Attachment, Identity
from hub.settings import AccountSettings

log = logging.getLogger(__name__)

# python-telegram-bot (22.2+) is moving time periods, such as a rate limit's
# `RetryAfter.retry_after`, from int seconds to timedelta, and warns at every read
# until a program opts in (its own RetryAfter constructor reads it, so every rate
# limit warned). hub reads both kinds (`rejection`): opt in, unless the operator
# set it.
os.environ.setdefault("PTB_TIMEDELTA", "true")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
OFFSET_KEY = "telegram_offset"
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096  # UTF-16 code units in one sendMessage text


class TelegramOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=10, description="from `token_env`")
    webhook_secret: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]{16,256}$",
        description="from `webhook_secret_env`; required in webhook mode",
    )
    mode: Literal["webhook", "polling"] = "webhook"
    webhook_url: str | None = None
    set_webhook: bool = True
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    poll_timeout_seconds: int = Field(25, ge=0, le=50)

    @model_validator(mode="after")
    def _secret_for_webhooks(self) -> TelegramOptions:
        if self.mode == "webhook" and not self.webhook_secret:
            raise ValueError("webhook mode needs webhook_secret_env (16-256 of A-Z a-z 0-9 _ -)")
        return self


# -- normalise -------------------------------------------------------------------


def _name(user: telegram.User | telegram.Contact) -> str:
    return " ".join(p for p in (user.first_name, user.last_name) if p)


def _file(
    kind: str,
    file: telegram.PhotoSize
    | telegram.Document
    | telegram.Voice
    | telegram.Audio
    | telegram.Video
    | telegram.Sticker
    | telegram.VideoNote
    | telegram.Animation,
    content_type: str,
    name: str,
) -> Attachment:
    return Attachment(
        name=name or kind,
        content_type=content_type,
        size=file.file_size,
        storage_key=f"telegram:{file.file_id}",
    )


def _content(message: telegram.Message) -> tuple[list[str], list[Attachment]]:
    texts = [t for t in (message.text, message.caption) if t]
    files: list[Attachment] = []
    if message.photo:
        files.append(_file("photo", message.photo[-1], "image/jpeg", "photo.jpg"))
    if message.document is not None:
        d = message.document
        files.append(
            _file("document", d, d.mime_type or "application/octet-stream", d.file_name or "")
        )
    if message.voice is not None:
        v = message.voice
        files.append(_file("voice", v, v.mime_type or "audio/ogg", "voice note.ogg"))
    if message.audio is not None:
        a = message.audio
        files.append(_file("audio", a, a.mime_type or "audio/mpeg", a.file_name or "audio"))
    if message.video is not None:
        v2 = message.video
        files.append(_file("video", v2, v2.mime_type or "video/mp4", v2.file_name or "video"))
    if message.video_note is not None:
        files.append(_file("video", message.video_note, "video/mp4", "video note.mp4"))
    if message.sticker is not None:
        s = message.sticker
        files.append(_file("sticker", s, "image/webp", "sticker.webp"))
        if s.emoji:
            texts.append(s.emoji)
    if message.location is not None:
        texts.append(location_text(message.location.latitude, message.location.longitude))
    return texts, files


def normalise(update: telegram.Update, *, account_id: str, default_region: str) -> Batch:
    """What one Telegram update means in hub's terms. Pure."""
    batch = Batch()
    message = update.message
    if message is None:
        batch.skipped.append("update without a new message (edit, callback, membership...)")
        return batch
    if message.chat.type != "private":
        batch.skipped.append(f"message in a {message.chat.type} chat")
        return batch
    user = message.from_user
    if user is None or user.is_bot:
        batch.skipped.append("message without a human sender")
        return batch
    identities = [Identity(channel="telegram", address=str(user.id))]
    texts, files = _content(message)
    if message.contact is not None:
        contact = message.contact
        card = " ".join(p for p in (_name(contact), contact.phone_number) if p)
        texts.append(f"Shared contact: {card}")
        # Only the customer's own card is their number; a friend's card is not.
        if contact.user_id == user.id:
            try:
                identities.append(phone_identity(contact.phone_number, default_region))
            except InvalidRequest:
                pass  # shown in the text; an unusable number is not linked
    if not texts and not files:
        texts.append("[a kind of Telegram message hub cannot show]")
    batch.messages.append(
        InboundMessage(
            account_id=account_id,
            channel="telegram",
            external_id=f"{message.chat.id}:{message.message_id}",
            sender=InboundSender(name=_name(user), identities=identities),
            text="\n".join(texts),
            attachments=files,
            sent_at=message.date,
            meta={"username": user.username} if user.username else {},
        )
    )
    return batch


def parse_update(raw: Any) -> telegram.Update:
    """A Bot API `Update` JSON object as PTB's Update; InvalidRequest if it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("update_id"), int):
        raise InvalidRequest("body is not a Telegram Update (no integer update_id)")
    try:
        return telegram.Update.de_json(raw, None)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidRequest(f"body is not a valid Telegram Update: {exc}") from exc


# -- the channel -------------------------------------------------------------------


class TelegramChannel(Channel):
    name = "telegram"
    Options = TelegramOptions
    options: TelegramOptions

    def __init__(self, account: AccountSettings, context: ChannelContext) -> None:
        super().__init__(account, context)
        self._requests = (
            HTTPXRequest(connection_pool_size=8),
            HTTPXRequest(read_timeout=self.options.poll_timeout_seconds + 10),
        )
        # Used as a plain client: no `initialize()` (its getMe check would put the
        # token in an exception message), so its HTTP clients are closed in `close`.
        self.bot = telegram.Bot(
            self.options.token,
            base_url=self.options.base_url,
            base_file_url=self.options.base_file_url,
            request=self._requests[0],
            get_updates_request=self._requests[1],
        )

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/telegram/{self.account.id}"

    def routes(self) -> list[web.RouteDef]:
        if self.options.mode != "webhook":
            return []
        return [web.post(self.webhook_path, self.receive)]

    async def receive(self, request: web.Request) -> web.Response:
        """Check the secret token, normalise and store; acknowledge only once stored."""
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise SignatureInvalid(f"missing {SECRET_HEADER} header")
        secret = self.options.webhook_secret or ""
        if not hmac.compare_digest(given.encode(), secret.encode()):
            raise SignatureInvalid(f"{SECRET_HEADER} does not match this bot's webhook secret")
        try:
            raw = json.loads(await request.read())
        except ValueError as exc:
            raise InvalidRequest("body is not valid JSON") from exc
        update = parse_update(raw)
        batch = normalise(
            update, account_id=self.account.id, default_region=self.context.default_region
        )
        await store_batch(self.context, batch, account_id=self.account.id)
        return web.json_response({"ok": True})

    async def run(self) -> None:
        """Webhook mode: register the webhook once, then nothing to run. Polling
        mode: long-poll forever (a crash is restarted by the app)."""
        if self.options.mode == "webhook":
            if self.options.set_webhook:
                url = self.options.webhook_url or f"{self.context.public_url}{self.webhook_path}"
                await self.bot.set_webhook(
                    url, secret_token=self.options.webhook_secret, allowed_updates=["message"]
                )
                log.info(
                    "telegram webhook set",
                    extra={"event": "telegram.webhook_set", "account_id": self.account.id},
                )
            return
        await self.poll_forever()

    async def poll_forever(self) -> None:
        # getUpdates is refused while a webhook is set.
        await self.bot.delete_webhook()
        while True:
            await self.poll_once()

    async def poll_once(self) -> int:
        """One getUpdates round; the offset moves on only after every update is
        stored, so a crash mid-way gets the same updates again (stored once)."""
        state = self.context.state
        saved = await state.channel_state(self.account.id, OFFSET_KEY) if state else None
        offset = int(saved["offset"]) if saved else None
        updates = await self.bot.get_updates(
            offset=offset, timeout=self.options.poll_timeout_seconds, allowed_updates=["message"]
        )
        if not updates:
            return 0
        batch = Batch()
        for update in updates:
            batch.extend(
                normalise(
                    update, account_id=self.account.id, default_region=self.context.default_region
                )
            )
        await store_batch(self.context, batch, account_id=self.account.id)
        next_offset = max(u.update_id for u in updates) + 1
        if state is not None:
            await state.save_channel_state(self.account.id, OFFSET_KEY, {"offset": next_offset})
        return len(updates)

    async def open_attachment(self, attachment: Attachment) -> tuple[bytes, str] | None:
        """A file the customer sent, fetched through the bot (getFile + download)."""
        key = attachment.storage_key or ""
        if not key.startswith("telegram:"):
            return None
        try:
            file = await self.bot.get_file(key.removeprefix("telegram:"))
            content = await file.download_as_bytearray()
        except tg_error.TelegramError as exc:
            raise rejection(exc) from exc
        return bytes(content), attachment.content_type

    async def close(self) -> None:
        for request in self._requests:
            await request.shutdown()

    async def send(self, message: OutboundMessage) -> Receipt:
        return await self.send_in_parts(message, ignore_parts)

    async def send_in_parts(self, message: OutboundMessage, accepted: PartAccepted) -> Receipt:
        """Each file (the text as the first one's caption when it fits), else the
        text in pieces; parts accepted before are skipped (`hub.channels.parts`)."""
        chat_id = (
            int(message.to)
            if message.to.isascii() and message.to.lstrip("-").isdigit()
            else message.to
        )
        parts = outbound_parts(message)
        if not parts:
            raise ProviderRejected(
                "nothing Telegram can send: no text and no file URL", retryable=False
            )

        async def send_one(part: Part) -> str | None:
            attachment, text = part
            if attachment is None:
                sent = await self.bot.send_message(chat_id, text or "")
            else:
                content = await download(self.context.files, attachment)
                upload = telegram.InputFile(content, filename=attachment.name or "file")
                if media_kind(attachment) == "image":
                    sent = await self.bot.send_photo(chat_id, upload, caption=text)
                else:
                    sent = await self.bot.send_document(chat_id, upload, caption=text)
            return f"{sent.chat.id}:{sent.message_id}"

        try:
            ids = await send_parts(message, parts, send_one, accepted)
        except tg_error.TelegramError as exc:
            raise rejection(exc) from exc
        return Receipt(external_id=first_id(ids), status="sent")


# One Bot API message of a reply: a file with its caption, or a piece of text.
Part = tuple[Attachment | None, str | None]


def outbound_parts(message: OutboundMessage) -> list[Part]:
    """The messages one reply goes as, in order: each file by URL (the text as
    the first one's caption when it fits in 1024 UTF-16 units), then the text,
    unless it went as a caption, in pieces of at most 4096. Pure."""
    text = message.text
    files = [a for a in message.attachments if a.url]
    fits = utf16_length(text.strip()) <= CAPTION_LIMIT
    caption = text if text.strip() and fits and files else None
    parts: list[Part] = [(a, caption if i == 0 else None) for i, a in enumerate(files)]
    if caption is None:
        parts += [(None, piece) for piece in split_text(text, TEXT_LIMIT, length=utf16_length)]
    return parts


def rejection(exc: tg_error.TelegramError) -> ProviderRejected:
    """A Bot API error as ProviderRejected: rate limits and network faults are
    retryable; a refused request (bad chat, bot blocked, bad token) is not."""
    if isinstance(exc, tg_error.RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return ProviderRejected(
            f"Telegram rate limit: {exc.message}",
            retryable=True,
            provider_code="429",
            retry_after=seconds,
        )
    if isinstance(exc, tg_error.BadRequest):  # a NetworkError subclass: check it first
        return ProviderRejected(
            f"Telegram refused the message: {exc.message}", retryable=False, provider_code="400"
        )
    if isinstance(exc, tg_error.Forbidden):
        return ProviderRejected(
            f"Telegram refused the message: {exc.message}", retryable=False, provider_code="403"
        )
    if isinstance(exc, tg_error.InvalidToken):
        return ProviderRejected(
            "Telegram rejected the bot token", retryable=False, provider_code="401"
        )
    if isinstance(exc, tg_error.NetworkError):
        return ProviderRejected(f"Telegram unreachable or failing: {exc.message}", retryable=True)
    return ProviderRejected(f"Telegram error: {exc.message}", retryable=False)
