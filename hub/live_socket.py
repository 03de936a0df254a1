"""A WebSocket that anyone may push frames to without waiting.

Every socket has its own bounded outbox and writer task: whoever pushes (a bus
handler fanning an event out, the socket's own reader) only queues, so one
stalled browser never holds up events for everyone else. A socket whose outbox
overflows is closed; its client reconnects and resumes, so nothing is lost.
Used by the web-chat widget's sockets and the agents' stream.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import WSCloseCode, web

from hub.inbox.model import new_id

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 256


class LiveSocket:
    def __init__(self, ws: web.WebSocketResponse, *, hold: bool = False) -> None:
        self.ws = ws
        self.id = new_id()
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue(OUTBOX_LIMIT)
        # With `hold`, pushes wait until `release` queues the first frame: a
        # client must get its greeting (token, transcript) before anything else.
        self._held: list[str] | None = [] if hold else None
        self._writer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name=f"live-socket-{self.id}")

    def push(self, frame: str) -> None:
        """Queue a frame; never waits. Closes the socket if it cannot keep up."""
        if self.ws.closed:
            return  # its client reconnects and resumes
        if self._held is not None:
            self._held.append(frame)
            if len(self._held) <= OUTBOX_LIMIT:
                return
            self._held = None
        try:
            self._outbox.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning(
                "socket too slow; closing it (its client resumes)",
                extra={"event": "socket.too_slow", "socket_id": self.id},
            )
            asyncio.get_running_loop().create_task(
                self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
            )

    def release(self, first: str) -> None:
        """Queue `first`, then whatever was pushed while held."""
        held, self._held = self._held or [], None
        for frame in (first, *held):
            self.push(frame)

    async def _write(self) -> None:
        while True:
            frame = await self._outbox.get()
            if frame is None or self.ws.closed:
                return
            try:
                await self.ws.send_str(frame)
            except (ConnectionError, RuntimeError):
                return  # the reader sees the closed socket and cleans up

    async def stop(self) -> None:
        """Let queued frames go out (briefly), then end the writer."""
        if self._writer is None:
            return
        try:
            if not self._writer.done():
                self._outbox.put_nowait(None)
            await asyncio.wait_for(asyncio.shield(self._writer), timeout=1)
        except (TimeoutError, asyncio.QueueFull):
            pass
        finally:
            # Also when the handler itself is being cancelled (server shutdown).
            self._writer.cancel()
