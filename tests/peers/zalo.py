"""A local Zalo OA API: consultation messages (`/v3.0/oa/message/cs`), file
upload, and the OAuth token endpoint with single-use refresh tokens; plus the
signed events Zalo POSTs to a webhook.

Like Zalo, it refuses a message text over 2000 characters (the OA API's
documented maximum) with an invalid-parameter error."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hub.channels.zalo.events import SIGNATURE_HEADER, signature_header
from tests.peers.server import LocalServer

TEXT_LIMIT = 2000


@dataclass
class ZaloRequest:
    access_token: str
    body: dict[str, Any]


class ZaloPeer(LocalServer):
    def __init__(self, *, app_id: str, app_secret: str, access_token: str, refresh_token: str):
        super().__init__()
        self.app_id = app_id
        self.app_secret = app_secret
        self.valid_access = {access_token}
        self.valid_refresh = {refresh_token}
        self.sent: list[ZaloRequest] = []
        self.uploads: list[tuple[str, bytes]] = []
        self.refresh_calls: list[str] = []
        self.refresh_delay = 0.0
        self.answers: list[dict[str, Any] | tuple[int, str]] = []  # scripted, in order
        # The Nth message sent (from 1, refused ones included) gets this answer.
        self.answers_at: dict[int, dict[str, Any] | tuple[int, str]] = {}
        self._issued = 0

    def expire_access_tokens(self) -> None:
        """Every access token given out so far stops working (-216)."""
        self.valid_access.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._send)
        app.router.add_post("/v2.0/oa/upload/file", self._upload)
        app.router.add_post("/v4/oa/access_token", self._token)
        return app

    def _token_error(self, request: web.Request) -> web.Response | None:
        if request.headers.get("access_token") not in self.valid_access:
            return web.json_response({"error": -216, "message": "Access token is invalid"})
        return None

    async def _send(self, request: web.Request) -> web.Response:
        refused = self._token_error(request)
        if refused is not None:
            return refused
        body = json.loads(await request.read())
        self.sent.append(ZaloRequest(request.headers["access_token"], body))
        text = body.get("message", {}).get("text")
        if isinstance(text, str) and len(text) > TEXT_LIMIT:
            return web.json_response(
                {"error": -201, "message": f"text must not exceed {TEXT_LIMIT} characters"}
            )
        answer = self.answers_at.pop(len(self.sent), None)
        if answer is None and self.answers:
            answer = self.answers.pop(0)
        if isinstance(answer, tuple):
            return web.Response(status=answer[0], text=answer[1])
        if answer is not None:
            return web.json_response(answer)
        return web.json_response(
            {
                "data": {
                    "message_id": f"zmsg{len(self.sent):04d}",
                    "user_id": body["recipient"]["user_id"],
                    "quota": {"quota_type": "reply", "remain": "7", "total": "8"},
                },
                "error": 0,
                "message": "Success",
            }
        )

    async def _upload(self, request: web.Request) -> web.Response:
        refused = self._token_error(request)
        if refused is not None:
            return refused
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        self.uploads.append((upload.filename, upload.file.read()))
        return web.json_response(
            {"data": {"token": f"filetoken{len(self.uploads)}"}, "error": 0, "message": "Success"}
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        refresh = str(form.get("refresh_token", ""))
        self.refresh_calls.append(refresh)
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        wrong_app = form.get("app_id") != self.app_id
        if request.headers.get("secret_key") != self.app_secret or wrong_app:
            return web.json_response(
                {"error": -14001, "error_name": "Invalid secret key", "error_reason": ""}
            )
        if form.get("grant_type") != "refresh_token" or refresh not in self.valid_refresh:
            return web.json_response(
                {
                    "error": -14014,
                    "error_name": "Invalid refresh token",
                    "error_reason": "Refresh token is invalid or has been used",
                    "ref_doc": "https://developers.zalo.me/docs/official-account/bat-dau/xac-thuc-va-uy-quyen-cho-ung-dung-new",
                }
            )
        self.valid_refresh.discard(refresh)  # single use
        self._issued += 1
        access, new_refresh = f"access-{self._issued:03d}-xyz", f"refresh-{self._issued:03d}-xyz"
        self.valid_access.add(access)
        self.valid_refresh.add(new_refresh)
        return web.json_response(
            {"access_token": access, "refresh_token": new_refresh, "expires_in": "90000"}
        )


def signed_event(
    body: bytes | dict[str, Any], *, app_id: str, secret_key: str
) -> tuple[bytes, dict[str, str]]:
    """An event body and the headers Zalo sends with it."""
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    timestamp = str(json.loads(raw).get("timestamp", ""))
    return raw, {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(app_id, raw, timestamp, secret_key),
    }
