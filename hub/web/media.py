"""Files customers sent, for agents: `GET /api/v1/messages/{id}/attachments/{n}`.

Some providers hand over a file as an id that only the channel can turn into
bytes (a Telegram file id, a WhatsApp media id) — its URL would carry the bot
token, or needs the access token. This route asks the message's channel for
the bytes. A plain URL attachment is a redirect.

Customer files are served as downloads (`Content-Disposition: attachment`,
`nosniff`, a sandboxing CSP): a file a customer sent never runs in an agent's
browser, whatever it claims to be.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from aiohttp import web

from hub.errors import NotFound
from hub.inbox.model import Attachment
from hub.inbox.store import Store


@runtime_checkable
class MediaSource(Protocol):
    async def open_attachment(self, attachment: Attachment) -> tuple[bytes, str] | None:
        """(bytes, content type) behind a stored attachment; None if it is not one
        this source keeps. Raises ProviderRejected when the provider fails."""
        ...


MEDIA = web.AppKey("media", dict[str, MediaSource])
MEDIA_STORE = web.AppKey("media_store", Store)

routes = web.RouteTableDef()


@routes.get("/api/v1/messages/{id}/attachments/{index:\\d+}")
async def get_attachment(request: web.Request) -> web.StreamResponse:
    message = await request.app[MEDIA_STORE].get_message(request.match_info["id"])
    if message is None:
        raise NotFound(f"message {request.match_info['id']} does not exist")
    index = int(request.match_info["index"])
    if index >= len(message.attachments):
        raise NotFound(f"message {message.id} has no attachment {index}")
    attachment = message.attachments[index]
    content = None
    source = request.app[MEDIA].get(message.account_id)
    if attachment.storage_key and source is not None:
        content = await source.open_attachment(attachment)
    if content is None:
        if attachment.url:
            raise web.HTTPFound(attachment.url)
        raise NotFound(f"attachment {index} of message {message.id} cannot be fetched")
    body, content_type = content
    filename = (attachment.name or "file").replace('"', "").replace("\r", "").replace("\n", "")
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type or attachment.content_type,
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, max-age=300",
        },
    )
