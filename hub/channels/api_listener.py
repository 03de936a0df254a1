"""`hub api listen`: a stand-in for the system behind an API-channel account.

It receives the replies hub POSTs to the account's `callback_url`, checks their
signature with the account's secret exactly as that system must, prints each one,
and answers as a receiver should (200 and an `external_id`; 401 to a bad
signature). For trying the quick start on one machine, and for an integrator to
see what their endpoint will be sent before writing it."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from hub.channels.api import SIGNATURE_HEADER, verify
from hub.errors import SignatureInvalid

Printer = Callable[[str], None]


def describe(payload: dict[str, Any]) -> str:
    """One reply, as a line for a terminal."""
    to = payload.get("to") or {}
    who = to.get("name") or to.get("id") or "?"
    if to.get("name") and to.get("id"):
        who = f"{to['name']} ({to['id']})"
    sender = (payload.get("sender") or {}).get("name") or "hub"
    line = f"reply {payload.get('id', '?')} from {sender} to {who}: {payload.get('text', '')!r}"
    files = payload.get("attachments") or []
    if files:
        names = ", ".join(str(f.get("name") or f.get("url") or "?") for f in files)
        line += f" + {len(files)} file{'s' if len(files) > 1 else ''} ({names})"
    return line


def listener_app(account_id: str, secret: str, out: Printer) -> web.Application:
    """An aiohttp application that takes the account's replies on any path."""
    numbers = itertools.count(1)

    def say(text: str) -> None:
        out(f"[{datetime.now().astimezone():%H:%M:%S}] {text}")

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            verify(secret, body, request.headers.get(SIGNATURE_HEADER))
        except SignatureInvalid as exc:
            say(f"refused a POST to {request.path}: {exc.message}")
            return web.json_response({"error": exc.message}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            say(f"refused a POST to {request.path}: the body is not JSON")
            return web.json_response({"error": "the body is not JSON"}, status=400)
        if not isinstance(payload, dict):
            say(f"refused a POST to {request.path}: the body is not a JSON object")
            return web.json_response({"error": "the body is not a JSON object"}, status=400)
        say(describe(payload))
        return web.json_response({"external_id": f"{account_id}-listen-{next(numbers)}"})

    app = web.Application()
    app.router.add_post("/{path:.*}", receive)
    return app
