"""An Asterisk Manager Interface on loopback: a real TCP server that speaks AMI
(banner, Login, Ping, CoreShowChannels, Originate) and replays event
transcripts of real calls from `tests/data/asterisk/*.ami`.

Transcripts are AMI text as Asterisk writes it; a line `--- drop` in one
closes the connection there (the PBX or the network going away mid-call).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent.parent / "data" / "asterisk"
BANNER = b"Asterisk Call Manager/9.0.0\r\n"


def transcript(name: str) -> list[str]:
    """The blocks of a transcript (each a message, or "--- drop")."""
    text = (DATA / f"{name}.ami").read_text(encoding="utf-8")
    blocks = []
    for raw in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in raw.split("\n") if line and not line.startswith("#")]
        if lines:
            blocks.append("\n".join(lines))
    return blocks


def parse_block(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


@dataclass
class AmiPeer:
    username: str = "hub"
    secret: str = "ami-test-secret"
    host: str = "127.0.0.1"
    port: int = 0
    logins: int = 0
    actions: list[dict[str, str]] = field(default_factory=list)
    live_channels: list[dict[str, str]] = field(default_factory=list)
    answer_pings: bool = True
    originate_answer: str = "Success"
    _server: asyncio.Server | None = None
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)  # logged in
    _open: set[asyncio.StreamWriter] = field(default_factory=set)  # every connection
    _logged_in: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._session, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening first (the client keeps reconnecting), then hang up on
        every connection, logged in or not."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._open):
            writer.close()
        self._writers.clear()
        if self._server is not None:
            await asyncio.wait_for(self._server.wait_closed(), 5)

    def drop(self) -> None:
        """Close every connection, as a PBX restart or a network cut would."""
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def wait_for_login(self, count: int, timeout: float = 10.0) -> None:
        async with self._logged_in:
            await asyncio.wait_for(self._logged_in.wait_for(lambda: self.logins >= count), timeout)

    async def play(self, name_or_blocks: str | list[str], *, pause: float = 0.0) -> None:
        """Send a transcript's events to the connected client, in order."""
        blocks = transcript(name_or_blocks) if isinstance(name_or_blocks, str) else name_or_blocks
        writer = self._writers[-1]
        for block in blocks:
            if block.strip() == "--- drop":
                self.drop()
                return
            writer.write(block.replace("\n", "\r\n").encode() + b"\r\n\r\n")
            await writer.drain()
            if pause:
                await asyncio.sleep(pause)

    async def send_raw(self, data: bytes) -> None:
        writer = self._writers[-1]
        writer.write(data)
        await writer.drain()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        writer.write(BANNER)
        authenticated = False
        buffer = b""
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    return
                buffer += data.replace(b"\r", b"")
                while b"\n\n" in buffer:
                    raw, buffer = buffer.split(b"\n\n", 1)
                    action = parse_block(raw.decode())
                    self.actions.append(action)
                    authenticated = await self._answer(action, writer, authenticated)
        except (ConnectionError, OSError):
            return
        finally:
            self._open.discard(writer)
            if writer in self._writers:
                self._writers.remove(writer)
            writer.close()

    async def _answer(
        self, action: dict[str, str], writer: asyncio.StreamWriter, authenticated: bool
    ) -> bool:
        name = action.get("Action", "").lower()
        action_id = action.get("ActionID", "")

        def reply(*lines: str) -> None:
            body = "\r\n".join([*lines[:1], f"ActionID: {action_id}", *lines[1:]])
            writer.write(body.encode() + b"\r\n\r\n")

        if name == "login":
            if (action.get("Username"), action.get("Secret")) != (self.username, self.secret):
                reply("Response: Error", "Message: Authentication failed")
                await writer.drain()
                return False
            reply("Response: Success", "Message: Authentication accepted")
            writer.write(
                b"Event: FullyBooted\r\nPrivilege: system,all\r\nStatus: Fully Booted\r\n\r\n"
            )
            await writer.drain()
            self._writers.append(writer)
            async with self._logged_in:
                self.logins += 1
                self._logged_in.notify_all()
            return True
        if not authenticated:
            reply("Response: Error", "Message: Permission denied")
        elif name == "ping":
            if self.answer_pings:
                reply("Response: Success", "Ping: Pong", "Timestamp: 1767578400.000000")
        elif name == "coreshowchannels":
            reply(
                "Response: Success",
                "EventList: start",
                "Message: Channels will follow",
            )
            for channel in self.live_channels:
                lines = "\r\n".join(f"{k}: {v}" for k, v in channel.items())
                writer.write(
                    f"Event: CoreShowChannel\r\nActionID: {action_id}\r\n{lines}\r\n\r\n".encode()
                )
            writer.write(
                f"Event: CoreShowChannelsComplete\r\nActionID: {action_id}\r\n"
                f"EventList: Complete\r\nListItems: {len(self.live_channels)}\r\n\r\n".encode()
            )
        elif name == "originate":
            if self.originate_answer == "Success":
                reply("Response: Success", "Message: Originate successfully queued")
            else:
                reply("Response: Error", f"Message: {self.originate_answer}")
        else:
            reply("Response: Error", "Message: Invalid/unknown command")
        await writer.drain()
        return True
