"""A local Telegram Bot API server, reached through python-telegram-bot's
`base_url`: setWebhook/deleteWebhook, getUpdates (long polling with offsets),
sendMessage/sendPhoto/sendDocument, with the Bot API's exact answer and error
shapes (`{"ok": true, "result": ...}` / `{"ok": false, "error_code",
"description", "parameters"?}`). It also plays Telegram's side of a webhook:
it POSTs updates to the registered URL with the registered secret token.

Like Telegram, it refuses a sendMessage text that is empty or longer than 4096
characters (counted, as Telegram does, in UTF-16 code units): "Bad Request:
message is too long" / "message text is empty"."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.peers.server import LocalServer

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TEXT_LIMIT = 4096


class Refused(Exception):
    """A Bot API method refused its arguments (HTTP 400)."""


@dataclass
class BotCall:
    method: str
    fields: dict[str, str]
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


class TelegramPeer(LocalServer):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.calls: list[BotCall] = []
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.failures_at: dict[tuple[str, int], tuple[int, dict[str, Any]]] = {}
        self._updates: list[dict[str, Any]] = []
        self._new_update = asyncio.Event()
        self._message_id = 9000
        self.stored_files: dict[str, tuple[str, bytes]] = {}  # file_id -> (path, bytes)

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    def calls_to(self, method: str) -> list[BotCall]:
        return [c for c in self.calls if c.method == method]

    def fail(self, method: str, error_code: int, description: str, **parameters: Any) -> None:
        """The next call of `method` fails the way the Bot API fails."""
        body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.failures.setdefault(method, []).append((error_code, body))

    def fail_call(
        self, method: str, number: int, error_code: int, description: str, **parameters: Any
    ) -> None:
        """The `number`th call of `method` (from 1, counting every call) fails the
        way the Bot API fails: part 2 of a reply, say."""
        body: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if parameters:
            body["parameters"] = parameters
        self.failures_at[(method, number)] = (error_code, body)

    def queue_update(self, update: dict[str, Any]) -> None:
        """An update for getUpdates (long polling)."""
        self._updates.append(update)
        self._new_update.set()

    async def deliver(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        """POST an update to the registered webhook as Telegram does; the status."""
        assert self.webhook_url, "no webhook registered"
        headers = {}
        token = self.webhook_secret if secret is None else secret
        if token:
            headers[SECRET_HEADER] = token
        async with aiohttp.ClientSession() as session:
            async with session.post(self.webhook_url, json=update, headers=headers) as response:
                return response.status

    def app(self) -> web.Application:
        app = web.Application(client_max_size=60 * 2**20)
        app.router.add_post("/bot{token}/{method}", self._call)
        app.router.add_get("/file/bot{token}/{path:.*}", self._download)
        return app

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        for path, content in self.stored_files.values():
            if path == request.match_info["path"]:
                return web.Response(body=content, content_type="application/octet-stream")
        return web.Response(status=404)

    async def _getFile(self, fields: dict[str, str]) -> dict[str, Any]:
        path, content = self.stored_files[fields["file_id"]]
        return {
            "file_id": fields["file_id"],
            "file_unique_id": "u" + fields["file_id"][-6:],
            "file_size": len(content),
            "file_path": path,
        }

    async def _call(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        form = await request.post()
        fields: dict[str, str] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = (value.filename, value.file.read())
            else:
                fields[key] = str(value)
        # PTB names an upload "attach://<id>" in the field and sends the file apart.
        for key, value in list(fields.items()):
            if value.startswith("attach://") and value[9:] in files:
                files[key] = files.pop(value[9:])
        self.calls.append(BotCall(method, fields, files))
        failure = self.failures_at.pop((method, len(self.calls_to(method))), None)
        if failure is not None:
            return web.json_response(failure[1], status=failure[0])
        if self.failures.get(method):
            status, body = self.failures[method].pop(0)
            return web.json_response(body, status=status)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        try:
            result = await handler(fields)
        except Refused as exc:
            body = {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"}
            return web.json_response(body, status=400)
        return web.json_response({"ok": True, "result": result})

    async def _setWebhook(self, fields: dict[str, str]) -> bool:
        self.webhook_url = fields["url"]
        self.webhook_secret = fields.get("secret_token")
        return True

    async def _deleteWebhook(self, fields: dict[str, str]) -> bool:
        self.webhook_url = None
        return True

    async def _getMe(self, fields: dict[str, str]) -> dict[str, Any]:
        return {"id": 7000000001, "is_bot": True, "first_name": "Shop", "username": "shop_bot"}

    async def _getUpdates(self, fields: dict[str, str]) -> list[dict[str, Any]]:
        offset = int(fields.get("offset", "0") or 0)
        # Asking from `offset` confirms every update before it: Telegram forgets them.
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates:
            self._new_update.clear()
            timeout = min(float(fields.get("timeout", "0") or 0), 2.0)
            try:
                await asyncio.wait_for(self._new_update.wait(), timeout)
            except TimeoutError:
                pass
        return list(self._updates)

    def _sent(self, fields: dict[str, str], extra: dict[str, Any]) -> dict[str, Any]:
        self._message_id += 1
        chat_id = int(fields["chat_id"])
        return {
            "message_id": self._message_id,
            "from": {"id": 7000000001, "is_bot": True, "first_name": "Shop"},
            "chat": {"id": chat_id, "type": "private", "first_name": "Customer"},
            "date": int(time.time()),
            **extra,
        }

    async def _sendMessage(self, fields: dict[str, str]) -> dict[str, Any]:
        text = fields.get("text", "")
        if not text.strip():
            raise Refused("message text is empty")
        if len(text.encode("utf-16-le")) // 2 > TEXT_LIMIT:
            raise Refused("message is too long")
        return self._sent(fields, {"text": fields["text"]})

    async def _sendPhoto(self, fields: dict[str, str]) -> dict[str, Any]:
        photo = [{"file_id": "AgAC-sent", "file_unique_id": "sent", "width": 1, "height": 1}]
        extra: dict[str, Any] = {"photo": photo}
        if "caption" in fields:
            extra["caption"] = fields["caption"]
        return self._sent(fields, extra)

    async def _sendDocument(self, fields: dict[str, str]) -> dict[str, Any]:
        extra: dict[str, Any] = {"document": {"file_id": "BQAC-sent", "file_unique_id": "sentdoc"}}
        if "caption" in fields:
            extra["caption"] = fields["caption"]
        return self._sent(fields, extra)
