"""Files customers sent, for agents, and files agents attach to replies.

- `GET /api/v1/messages/{id}/attachments/{n}`: some providers hand over a file
  as an id that only the channel can turn into bytes (a Telegram file id, a
  WhatsApp media id: its URL would carry the bot token, or needs the access
  token); e-mail keeps files in hub's attachment store. This route asks the
  message's channel for the bytes. A plain URL attachment is a redirect.
- `GET /api/v1/messages/{id}/raw`: the message as received (an e-mail's raw
  MIME), when the channel kept it in the attachment store.
- `POST /api/v1/attachments` / `GET /api/v1/attachments/{key}`: a file an agent
  uploads to attach to a reply, kept in the attachment store.

The attachment store holds customers' files and raw mails next to agents'
uploads, under the same kind of key. So a key is not a permission: an upload is
served by key (and attached to a reply) only for the agent who uploaded it
(`Uploads`, for `upload_days`); any other file only through its message, to whoever
may see the conversation. A reply's files (`reply_files`) are such uploads or
http(s) links, nothing else: a storage key is also how a channel finds a
customer's file (`telegram:<file id>`, `whatsapp:<media id>`), and a reply
naming one would have hub fetch, with the channel's credentials, a file from a
conversation its author may not see.

Customer files are served as downloads (`Content-Disposition: attachment`,
`nosniff`, a sandboxing CSP), with a content type from a short list of plain
file types (anything else, HTML and SVG included, is `application/octet-stream`):
a file a customer sent never runs in an agent's browser, whatever it claims to
be. Names are sent both as ASCII and, when they need it, UTF-8 (RFC 6266).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, runtime_checkable
from urllib.parse import quote

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hub.errors import InvalidRequest, NotFound, PayloadTooLarge, QueueUnavailable
from hub.inbox.attachments import AttachmentStore
from hub.inbox.model import Attachment, Message
from hub.inbox.store import Store
from hub.web.auth import AGENT
from hub.web.permissions import may_see


@runtime_checkable
class MediaSource(Protocol):
    async def open_attachment(self, attachment: Attachment) -> tuple[bytes, str] | None:
        """(bytes, content type) behind a stored attachment; None if it is not one
        this source keeps. Raises ProviderRejected when the provider fails."""
        ...


@dataclass
class Uploads:
    """Which agent uploaded which file, remembered in Redis for `ttl`."""

    redis: Redis
    prefix: str
    ttl: timedelta

    def _key(self, agent_id: str, storage_key: str) -> str:
        return f"{self.prefix}:upload:{agent_id}:{storage_key}"

    async def add(self, agent_id: str, storage_key: str) -> None:
        try:
            await self.redis.set(self._key(agent_id, storage_key), 1, ex=self.ttl)
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"uploads unavailable: {exc}") from exc

    async def made_by(self, agent_id: str, storage_key: str) -> bool:
        """Whether the agent uploaded the file within the last `ttl`."""
        try:
            return bool(await self.redis.exists(self._key(agent_id, storage_key)))
        except (RedisError, OSError) as exc:
            raise QueueUnavailable(f"uploads unavailable: {exc}") from exc


MEDIA = web.AppKey("media", dict[str, MediaSource])
UPLOADS = web.AppKey("uploads", Uploads)
MEDIA_STORE = web.AppKey("media_store", Store)
ATTACHMENT_STORE = web.AppKey("attachment_store", AttachmentStore)

# Types a browser shows as what they are without running anything.
SAFE_TYPES = {
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/zip",
    "text/plain",
    "text/csv",
    "message/rfc822",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "audio/mpeg",
    "audio/ogg",
    "video/mp4",
}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, max-age=300",
}

routes = web.RouteTableDef()


def safe_type(content_type: str) -> str:
    kind = content_type.split(";")[0].strip().lower()
    return kind if kind in SAFE_TYPES else "application/octet-stream"


def content_disposition(name: str) -> str:
    """`attachment; filename="Hoa don.pdf"; filename*=UTF-8''H%C3%B3a%20%C4%91%C6%A1n.pdf`
    (the UTF-8 form only when the ASCII one lost something)."""
    name = name.replace("\r", "").replace("\n", "") or "file"
    plain = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in plain
    )
    value = f'attachment; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def download(body: bytes, name: str, content_type: str) -> web.Response:
    return web.Response(
        body=body,
        headers={
            "Content-Type": safe_type(content_type),
            "Content-Disposition": content_disposition(name),
            **HEADERS,
        },
    )


async def message_for(request: web.Request) -> Message:
    """The message, if the caller may see its conversation (hub.web.permissions)."""
    store = request.app[MEDIA_STORE]
    message = await store.get_message(request.match_info["id"])
    conversation = (
        None if message is None else await store.get_conversation(message.conversation_id)
    )
    if message is None or conversation is None or not may_see(request[AGENT], conversation):
        raise NotFound(f"message {request.match_info['id']} does not exist")
    return message


async def reply_files(request: web.Request, attachments: list[Attachment]) -> None:
    """Raise InvalidRequest unless each of a reply's files is one the caller
    uploaded (`storage_key` from `POST /api/v1/attachments`) or an http(s) `url`."""
    uploads = request.app[UPLOADS]
    agent = request[AGENT]
    for n, attachment in enumerate(attachments):
        where = f"attachments[{n}]"
        if attachment.storage_key is not None:
            if not await uploads.made_by(agent.id, attachment.storage_key):
                raise InvalidRequest(
                    f"{where}.storage_key is not a file you uploaded to POST /api/v1/attachments"
                )
        elif attachment.url is not None:
            scheme = attachment.url.split(":", 1)[0].lower()
            if scheme not in ("http", "https") or len(attachment.url) > 2048:
                raise InvalidRequest(
                    f"{where}.url must be an http(s) URL (2048 characters at most)"
                )
        else:
            raise InvalidRequest(f"{where} needs a storage_key (an upload) or a url")


@routes.get("/api/v1/messages/{id}/attachments/{index:\\d+}")
async def get_attachment(request: web.Request) -> web.StreamResponse:
    message = await message_for(request)
    index = int(request.match_info["index"])
    if index >= len(message.attachments):
        raise NotFound(f"message {message.id} has no attachment {index}")
    attachment = message.attachments[index]
    if attachment.too_large:
        raise NotFound(
            f"attachment {attachment.name!r} was too large to keep"
            " (it is in the raw message, when that was kept)"
        )
    content = None
    source = request.app[MEDIA].get(message.account_id)
    if attachment.storage_key and source is not None:
        content = await source.open_attachment(attachment)
    if content is None and attachment.storage_key:
        # A file an agent uploaded for a reply is in the hub's own store, whatever
        # the channel (an SMS or API account keeps no files of its own).
        kept = request.app[ATTACHMENT_STORE]
        if kept.exists(attachment.storage_key):
            content = await kept.read(attachment.storage_key), attachment.content_type
    if content is None:
        if attachment.url:
            raise web.HTTPFound(attachment.url)
        raise NotFound(f"attachment {index} of message {message.id} cannot be fetched")
    body, content_type = content
    return download(body, attachment.name or "file", content_type or attachment.content_type)


@routes.get("/api/v1/messages/{id}/raw")
async def get_raw(request: web.Request) -> web.StreamResponse:
    """The message exactly as received (e-mail: its raw MIME), as a download."""
    message = await message_for(request)
    key = message.meta.get("raw_key")
    if not isinstance(key, str):
        raise NotFound(f"message {message.id} has no raw copy")
    body = await request.app[ATTACHMENT_STORE].read(key)
    return download(body, f"message-{message.id}.eml", "message/rfc822")


@routes.post("/api/v1/attachments")
async def upload(request: web.Request) -> web.Response:
    """Upload a file to attach to a reply: the body is the file, `Content-Type`
    its type, `?name=` its file name. Answers the `Attachment` to send."""
    store = request.app[ATTACHMENT_STORE]
    name = request.query.get("name", "").strip()[:255] or "attachment"
    too_large = PayloadTooLarge(f"files up to {store.max_bytes} bytes can be attached")
    if request.content_length is not None and not store.accepts(request.content_length):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    # Read as a stream: the server's body limit is for JSON, not for files.
    async for chunk in request.content.iter_chunked(65_536):
        size += len(chunk)
        if not store.accepts(size):
            raise too_large
        chunks.append(chunk)
    if size == 0:
        raise InvalidRequest("the body is empty: send the file's bytes")
    key = await store.save(b"".join(chunks))
    await request.app[UPLOADS].add(request[AGENT].id, key)
    kind = request.headers.get("Content-Type", "").split(";")[0].strip()
    attachment = Attachment(
        name=name,
        content_type=kind or "application/octet-stream",
        size=size,
        storage_key=key,
    )
    return web.json_response(attachment.model_dump(mode="json"), status=201)


@routes.get("/api/v1/attachments/{key}")
async def get_upload(request: web.Request) -> web.StreamResponse:
    """A file the caller uploaded, by its key, as an opaque download (any other
    file: through its message)."""
    name = request.query.get("name", "").strip()[:255] or "attachment"
    key = request.match_info["key"]
    if not await request.app[UPLOADS].made_by(request[AGENT].id, key):
        raise NotFound(f"no attachment {key!r} that you uploaded")
    body = await request.app[ATTACHMENT_STORE].read(key)
    return download(body, name, "application/octet-stream")
