"""A company's system receiving API-channel replies: a real HTTP server that
checks hub's signature and records what arrived.

Its answers can be scripted (`answers = [503, 503, 200]`) to make hub retry;
once the script runs out it answers 200.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hub.channels.api import SIGNATURE_HEADER, sign


@dataclass
class Delivery:
    body: dict[str, Any]
    headers: dict[str, str]
    signature_ok: bool


class CallbackPeer:
    def __init__(self, secret: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.secret = secret
        self.host = host
        self.port = port
        self.deliveries: list[Delivery] = []
        self.answers: list[int] = []
        self.delay = 0.0  # seconds to think before answering, to keep sends in flight
        self.endless = False  # answer 200 with a body that never ends
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/replies"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/replies", self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        ok = request.headers.get(SIGNATURE_HEADER) == sign(self.secret, raw)
        self.deliveries.append(Delivery(json.loads(raw), dict(request.headers), ok))
        status = self.answers.pop(0) if self.answers else 200
        if status == 200 and self.endless:
            return await self._endless(request, f"remote-{len(self.deliveries)}")
        if status == 200:
            return web.json_response({"external_id": f"remote-{len(self.deliveries)}"})
        return web.json_response({"error": "scripted failure"}, status=status)

    async def _endless(self, request: web.Request, external_id: str) -> web.StreamResponse:
        """200, the receiver's id first, then spaces until the client hangs up."""
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(f'{{"external_id": "{external_id}"'.encode())
        try:
            while True:
                await response.write(b" " * 65_536)
        except (ConnectionError, RuntimeError):
            return response

    def received_ids(self) -> list[str]:
        return [d.body["id"] for d in self.deliveries]
