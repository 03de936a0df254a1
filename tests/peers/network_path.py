"""The network between a phone and the hub: a TCP relay that can go silent.

When a phone sleeps or moves from Wi-Fi to 4G, its open connections do not
close: packets just stop arriving, in both directions, and neither end is told
(a half-open connection). `silence()` does that to every connection open now;
connections made afterwards (the new network) work again."""

from __future__ import annotations

import asyncio
import contextlib


class NetworkPath:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._open: list[asyncio.Event] = []  # set: that connection's packets are lost
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    def silence(self) -> None:
        """Every connection open now loses all its packets from here on."""
        for lost in self._open:
            lost.set()
        self._open = []

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        lost = asyncio.Event()
        self._open.append(lost)
        self._writers += [writer, upstream_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if lost.is_set():
                        continue  # swallowed: the other end never hears of it
                    dst.write(data)
                    await dst.drain()
            if not lost.is_set():  # an orderly close travels; a lost one does not
                dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
