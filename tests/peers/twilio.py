"""Twilio, on loopback: a real HTTP server speaking the Messages REST API, and a
webhook sender signing every request with `twilio.request_validator`.

REST: `POST /2010-04-01/Accounts/{sid}/Messages.json` with Basic auth, as the
`twilio` library and hub send it. It answers with Twilio's own bodies
(`tests/data/twilio/`): 201 with the Message resource, 401 (20003) for bad
credentials, 400 with 21211 for an invalid `To`, 21610 for an unsubscribed
recipient, scripted 429/5xx answers (`answers = [429, 503]`), and accepted
messages answered with a body that is not JSON (`garbled = n`), as a proxy
in between might. A create that is not form-encoded finds no `To` (400, 21211),
as at Twilio.

Webhooks: Twilio signs the URL it was configured with (the hub's public URL)
and the proxy forwards to the hub; `public_url` → `hub_url` plays that proxy.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

DATA = Path(__file__).parent.parent / "data" / "twilio"
ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
LINE = "+14155550100"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def recorded(name: str, **values: Any) -> dict[str, Any]:
    """A recorded payload with its `{placeholders}` filled in."""
    body = json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            for key, replacement in values.items():
                if value == "{" + key + "}":
                    return replacement
                value = value.replace("{" + key + "}", str(replacement))
            return value
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    return fill(body)


@dataclass
class SentMessage:
    sid: str
    form: dict[str, list[str]]
    auth: str | None
    at: float = 0.0  # when it arrived (time.time())
    headers: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class TwilioPeer:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    public_url: str = "https://hub.example.vn"
    hub_url: str = ""  # where the "proxy" forwards public URLs to
    host: str = "127.0.0.1"
    port: int = 0
    sent: list[SentMessage] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)  # as the API lists them
    answers: list[int] = field(default_factory=list)  # scripted errors, then 201
    garbled: int = 0  # how many of the next accepted messages get a non-JSON answer
    list_answers: list[int] = field(default_factory=list)  # the same, for listing messages
    unsubscribed: set[str] = field(default_factory=set)
    invalid: set[str] = field(default_factory=set)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._list_messages)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- REST ----------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        try:
            auth = aiohttp.BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            return False
        return (auth.login, auth.password) == (self.account_sid, self.auth_token)

    async def _create_message(self, request: web.Request) -> web.Response:
        if request.match_info["sid"] != self.account_sid or not self._authorised(request):
            return web.json_response(recorded("error_20003"), status=401)
        form: dict[str, list[str]] = {}
        for key, value in (await request.post()).items():
            form.setdefault(key, []).append(str(value))
        to = form.get("To", [""])[0]
        if self.answers:
            status = self.answers.pop(0)
            name = "error_20429" if status == 429 else "error_500"
            body = recorded(name)
            body["status"] = status
            return web.json_response(body, status=status)
        if not E164.match(to) or to in self.invalid:
            return web.json_response(recorded("error_21211", to=to), status=400)
        if to in self.unsubscribed:
            return web.json_response(recorded("error_21610"), status=400)
        sid = "SM" + secrets.token_hex(16)
        self.sent.append(
            SentMessage(
                sid,
                form,
                request.headers.get("Authorization"),
                time.time(),
                dict(request.headers),
            )
        )
        if self.garbled:
            self.garbled -= 1
            return web.Response(status=201, text="<html>Created</html>", content_type="text/html")
        body = recorded(
            "message_created",
            sid=sid,
            to=to,
            body=form.get("Body", [""])[0],
            segments="1",
            **{"from": form.get("From", [""])[0]},
        )
        body["messaging_service_sid"] = form.get("MessagingServiceSid", [None])[0]
        self.resources.append(body)
        return web.json_response(body, status=201)

    async def _list_messages(self, request: web.Request) -> web.Response:
        """Messages list, filtered by `To` and `From` as Twilio does. (Date filters
        are accepted and not applied: every test's peer starts empty, and the hub
        under test may run on an injected clock.)"""
        if request.match_info["sid"] != self.account_sid or not self._authorised(request):
            return web.json_response(recorded("error_20003"), status=401)
        if self.list_answers:
            body = recorded("error_500")
            body["status"] = self.list_answers.pop(0)
            return web.json_response(body, status=body["status"])
        found = [
            m
            for m in reversed(self.resources)
            if m["to"] == request.query.get("To", m["to"])
            and m["from"] == request.query.get("From", m["from"])
        ]
        size = int(request.query.get("PageSize", "50"))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return web.json_response(
            {
                "messages": found[:size],
                "end": min(size, len(found)) - 1,
                "first_page_uri": f"{uri}?PageSize={size}&Page=0",
                "next_page_uri": None,
                "page": 0,
                "page_size": size,
                "previous_page_uri": None,
                "start": 0,
                "uri": f"{uri}?PageSize={size}&Page=0",
            }
        )

    # -- webhooks ------------------------------------------------------------
    def signature(self, public_url: str, params: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(public_url, params))

    async def post(
        self,
        public_url: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
    ) -> tuple[int, str]:
        """POST a webhook as Twilio would: form-encoded, signed on the public URL,
        delivered through the "proxy" to the hub. Returns (status, body)."""
        if not self.hub_url:
            raise RuntimeError("set hub_url to where the hub listens")
        target = public_url.replace(self.public_url, self.hub_url.rstrip("/"), 1)
        headers = {SIGNATURE_HEADER: signature or self.signature(public_url, params)}
        async with aiohttp.ClientSession() as session:
            async with session.post(target, data=params, headers=headers) as response:
                return response.status, await response.text()

    def webhook_url(self, account: str, path: str) -> str:
        return f"{self.public_url}/webhooks/twilio/{account}/{path}"

    async def status_callback(
        self, message: SentMessage, status: str, *, error_code: int | None = None
    ) -> tuple[int, str]:
        """Report a sent message's status to the StatusCallback it was sent with."""
        callback = message.get("StatusCallback")
        assert callback, "the message was sent without a StatusCallback"
        params = recorded("sms_status", sid=message.sid, status=status, to=message.get("To"))
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return await self.post(callback, params)
