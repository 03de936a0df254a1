"""A local Graph API that speaks Meta's Send API (Messenger) and WhatsApp Cloud
API message endpoints, their answers and their error format, and a sender of
signed webhooks as Meta sends them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from hub.channels.meta import SIGNATURE_HEADER, sign
from tests.peers.server import LocalServer


@dataclass
class GraphRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


def graph_error(
    code: int, message: str, *, subcode: int | None = None, details: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEfGhIjK",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    return {"error": error}


class GraphPeer(LocalServer):
    """POST /{version}/{page-id or phone-number-id}/messages."""

    def __init__(self, access_token: str) -> None:
        super().__init__()
        self.access_token = access_token
        self.requests: list[GraphRequest] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []  # scripted, in order
        self.media: dict[str, tuple[bytes, str]] = {}  # media id -> (bytes, mime type)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/{node}/messages", self._messages)
        app.router.add_get("/{version}/{media_id}", self._media_url)
        app.router.add_get("/whatsapp_business/attachments/", self._media_download)
        return app

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.access_token}"

    async def _media_url(self, request: web.Request) -> web.Response:
        """GET /{version}/{media-id}: where to download the media (needs the token)."""
        media_id = request.match_info["media_id"]
        if not self._authorised(request):
            return web.json_response(graph_error(190, "Invalid OAuth access token"), status=401)
        if media_id not in self.media:
            return web.json_response(graph_error(100, "Unsupported get request."), status=400)
        content, mime_type = self.media[media_id]
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/whatsapp_business/attachments/?mid={media_id}",
                "mime_type": mime_type,
                "sha256": "0" * 64,
                "file_size": len(content),
                "id": media_id,
            }
        )

    async def _media_download(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401)
        content, mime_type = self.media[request.query["mid"]]
        return web.Response(body=content, content_type=mime_type)

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return web.json_response(
                graph_error(190, "Invalid OAuth access token - Cannot parse access token"),
                status=401,
            )
        body = json.loads(await request.read())
        self.requests.append(GraphRequest(request.path, dict(request.headers), body))
        if self.answers:
            status, answer = self.answers.pop(0)
            return web.json_response(answer, status=status)
        n = len(self.requests)
        if body.get("messaging_product") == "whatsapp":
            return web.json_response(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": f"wamid.sent{n:04d}"}],
                }
            )
        return web.json_response(
            {"recipient_id": body["recipient"]["id"], "message_id": f"m_sent{n:04d}"}
        )


async def post_webhook(
    client: Any, path: str, body: bytes, app_secret: str | None, **headers: str
) -> aiohttp.ClientResponse:
    """POST a webhook body the way Meta does (signed when `app_secret` is given)."""
    sent = {"Content-Type": "application/json", **headers}
    if app_secret is not None:
        sent[SIGNATURE_HEADER] = sign(app_secret, body)
    response: aiohttp.ClientResponse = await client.post(path, data=body, headers=sent)
    return response
