"""A web-chat visitor without a browser: speaks the widget's wire protocol
(`hub/channels/webchat/protocol.py`) over a real WebSocket, for tests that
check the protocol itself. The real widget is driven in Chromium elsewhere."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp


class JsonSocket:
    """A WebSocket client that keeps every JSON frame it receives and lets a test
    wait for the next one of a kind."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
    ) -> None:
        self.session = session
        self.url = url
        self.headers = headers or {}
        self.frames: list[dict[str, Any]] = []
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.closed_with: int | None = None
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.ws = await self.session.ws_connect(self.url, headers=self.headers)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                async with self._arrived:
                    self.frames.append(json.loads(message.data))
                    self._arrived.notify_all()
        self.closed_with = self.ws.close_code
        async with self._arrived:
            self._arrived.notify_all()

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps(frame))

    async def next(
        self,
        kind: str,
        where: Callable[[dict[str, Any]], bool] = lambda f: True,
        *,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """The first frame of that type (matching `where`) not yet taken; waits."""

        def match() -> dict[str, Any] | None:
            for frame in self.frames:
                if frame["type"] == kind and where(frame) and not frame.get("_taken"):
                    frame["_taken"] = True
                    return frame
            return None

        async def wait() -> dict[str, Any]:
            async with self._arrived:
                while True:
                    frame = match()
                    if frame is not None:
                        return frame
                    if self.ws is None or (self.ws.closed and self._reader and self._reader.done()):
                        raise AssertionError(f"socket closed before a {kind} frame: {self.frames}")
                    await self._arrived.wait()

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {kind} frame within {timeout} s; got {self.frames}") from None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await asyncio.wait([self._reader], timeout=5)


class WidgetClient(JsonSocket):
    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        origin: str | None = "https://shop.example.vn",
        token: str | None = None,
    ) -> None:
        super().__init__(session, url, {"Origin": origin} if origin else {})
        self.token = token

    async def connect(self, *, after: str | None = None) -> dict[str, Any]:
        """Open, say hello (with the token if we have one), return the welcome."""
        await self.open()
        await self.send({"type": "hello", "token": self.token, "after": after})
        welcome = await self.next("welcome")
        self.token = welcome["token"]
        return welcome

    async def say(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message", "client_id": client_id, "text": text})
        return client_id


class AgentStreamClient(JsonSocket):
    """An agent's `GET /api/v1/stream` socket."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        super().__init__(session, url, {"Authorization": f"Bearer {token}"})

    async def connect(self) -> dict[str, Any]:
        await self.open()
        return await self.next("hello")

    async def event(
        self, event_type: str, where: Callable[[dict[str, Any]], bool] = lambda d: True
    ) -> dict[str, Any]:
        """The data of the next such bus event."""
        frame = await self.next("event", lambda f: f["event"] == event_type and where(f["data"]))
        data: dict[str, Any] = frame["data"]
        return data
