"""A local Graph API that speaks Meta's Send API (Messenger) and WhatsApp Cloud
API message endpoints, their answers and their error format, and a sender of
signed webhooks as Meta sends them.

It refuses what Meta refuses (so a hub that sends it gets the real error):
- a Messenger text over 2000 characters, a WhatsApp text body over 4096
  (Graph error 100, invalid parameter);
- a Messenger request without `messaging_type`;
- what a test scripts: `answers` for the next requests, `answers_at` for the
  Nth request received (a 429 or 500 on part 2 of a reply), and `hold_at`, a
  request kept waiting unrecorded, then refused 503 (a provider that never took
  a message the hub died sending) or, with `accept_held`, taken;
- once told when a customer last wrote (`customer_wrote`, read against
  `clock`): a Messenger RESPONSE more than 24 hours later, a MESSAGE_TAG with
  tag HUMAN_AGENT more than 7 days later or from an app without that
  permission (error 10, subcode 2018278); a WhatsApp free-form message more
  than 24 hours later (error 131047, "Re-engagement message").
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from hub.channels.meta import SIGNATURE_HEADER, sign
from hub.clock import Clock
from tests.peers.server import LocalServer

MESSENGER_TEXT_LIMIT = 2000
WHATSAPP_TEXT_LIMIT = 4096
STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)


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
        self.received = 0  # message requests received, held ones included
        # The Nth message request received (from 1) gets this answer.
        self.answers_at: dict[int, tuple[int, dict[str, Any]]] = {}
        # The Nth message request waits, unrecorded, until the event is set; then 503.
        self.hold_at: dict[int, asyncio.Event] = {}
        self.holding = asyncio.Event()  # set once a request is held
        self.accept_held = False  # a released request is taken after all, not refused
        self.media: dict[str, tuple[bytes, str]] = {}  # media id -> (bytes, mime type)
        self.clock: Clock | None = None
        self.customer_wrote: dict[str, datetime] = {}  # PSID / wa_id -> last message
        self.human_agent_permission = True  # the app was granted the HUMAN_AGENT tag

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{version}/{node}/messages", self._messages)
        app.router.add_get("/{version}/{media_id}", self._media_url)
        app.router.add_get("/whatsapp_business/attachments/", self._media_download)
        return app

    async def stop(self) -> None:
        for held in self.hold_at.values():  # a test that failed left one waiting
            held.set()
        await super().stop()

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
        self.received += 1
        held = self.hold_at.get(self.received)
        if held is not None:
            self.holding.set()
            await held.wait()
            if not self.accept_held:
                return web.json_response(
                    graph_error(2, "Service temporarily unavailable"), status=503
                )
        self.requests.append(GraphRequest(request.path, dict(request.headers), body))
        if self.received in self.answers_at:
            status, answer = self.answers_at.pop(self.received)
            return web.json_response(answer, status=status)
        if self.answers:
            status, answer = self.answers.pop(0)
            return web.json_response(answer, status=status)
        whatsapp = body.get("messaging_product") == "whatsapp"
        refusal = self._whatsapp_refusal(body) if whatsapp else self._messenger_refusal(body)
        if refusal is not None:
            return web.json_response(refusal, status=400)
        n = len(self.requests)
        if whatsapp:
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

    def _since_customer_wrote(self, recipient: str) -> timedelta | None:
        wrote = self.customer_wrote.get(recipient)
        if wrote is None or self.clock is None:
            return None
        return self.clock.now() - wrote

    def _messenger_refusal(self, body: dict[str, Any]) -> dict[str, Any] | None:
        text = (body.get("message") or {}).get("text")
        if isinstance(text, str) and len(text) > MESSENGER_TEXT_LIMIT:
            return graph_error(
                100,
                f"(#100) Length of param message[text] must be less than or equal to"
                f" {MESSENGER_TEXT_LIMIT}",
            )
        kind = body.get("messaging_type")
        if kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return graph_error(
                100, "(#100) param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}"
            )
        since = self._since_customer_wrote(str(body["recipient"]["id"]))
        if since is None:
            return None
        if kind == "MESSAGE_TAG":
            allowed = (
                body.get("tag") == "HUMAN_AGENT"
                and self.human_agent_permission
                and since <= HUMAN_AGENT_WINDOW
            )
        else:
            allowed = since <= STANDARD_WINDOW
        if allowed:
            return None
        return graph_error(
            10, "(#10) This message is sent outside of allowed window.", subcode=2018278
        )

    def _whatsapp_refusal(self, body: dict[str, Any]) -> dict[str, Any] | None:
        text = (body.get("text") or {}).get("body") if body.get("type") == "text" else None
        if isinstance(text, str) and len(text) > WHATSAPP_TEXT_LIMIT:
            return graph_error(
                100,
                "(#100) Invalid parameter",
                details=f"Param text['body'] must be at most {WHATSAPP_TEXT_LIMIT} characters"
                " long.",
            )
        since = self._since_customer_wrote(str(body.get("to")))
        if body.get("type") != "template" and since is not None and since > STANDARD_WINDOW:
            return graph_error(
                131047,
                "Re-engagement message",
                details="Message failed to send because more than 24 hours have passed since"
                " the customer last replied to this number.",
            )
        return None


async def post_webhook(
    client: Any, path: str, body: bytes, app_secret: str | None, **headers: str
) -> aiohttp.ClientResponse:
    """POST a webhook body the way Meta does (signed when `app_secret` is given)."""
    sent = {"Content-Type": "application/json", **headers}
    if app_secret is not None:
        sent[SIGNATURE_HEADER] = sign(app_secret, body)
    response: aiohttp.ClientResponse = await client.post(path, data=body, headers=sent)
    return response
