"""AMI's wire format: a banner line, then messages of `Key: Value` lines, each
message ended by an empty line (CRLF everywhere, though we accept bare LF).

    Action: Login\r\nActionID: 1\r\nUsername: hub\r\nSecret: ...\r\n\r\n
    Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n
    Event: Newchannel\r\nChannel: PJSIP/trunk-00000001\r\nLinkedid: 1700000000.1\r\n...\r\n\r\n

Pure: the reader is fed bytes and hands back whole messages; nothing here
touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_MESSAGE_BYTES = 64 * 1024  # a message larger than this is garbage, not AMI


class AmiMessage(dict[str, str]):
    """One AMI message: its headers (first occurrence of a repeated key wins)."""

    @property
    def event(self) -> str | None:
        return self.get("Event")

    @property
    def response(self) -> str | None:
        return self.get("Response")

    @property
    def action_id(self) -> str | None:
        return self.get("ActionID")


def encode(action: str, action_id: str, fields: dict[str, str]) -> bytes:
    """An action as bytes. Values with line breaks are refused: they would let
    a value smuggle in headers of its own."""
    lines = [f"Action: {action}", f"ActionID: {action_id}"]
    for key, value in fields.items():
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key or ":" in key:
            raise ValueError(f"AMI field {key!r} holds a line break or colon")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse(block: str) -> tuple[AmiMessage, int]:
    """A message from its lines; returns it and how many lines were not `Key: Value`."""
    message = AmiMessage()
    bad = 0
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            bad += 1
            continue
        message.setdefault(key.strip(), value.strip())
    return message, bad


@dataclass
class AmiReader:
    """Incremental reader: `feed(bytes)` returns the messages completed so far.

    The first line a server sends is its banner ("Asterisk Call Manager/9.0.0"),
    kept in `banner`. Malformed lines are skipped and counted in `bad_lines`.
    """

    banner: str | None = None
    bad_lines: int = 0
    _buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[AmiMessage]:
        # Drop every CR (not just CRLF pairs): a CRLF split across two reads
        # would otherwise leave a stray CR behind.
        self._buffer.extend(data.replace(b"\r", b""))
        messages: list[AmiMessage] = []
        if self.banner is None:
            end = self._buffer.find(b"\n")
            if end < 0:
                return messages
            self.banner = self._buffer[:end].decode("utf-8", "replace").strip()
            del self._buffer[: end + 1]
        while True:
            end = self._buffer.find(b"\n\n")
            if end < 0:
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    self.bad_lines += self._buffer.count(b"\n") + 1
                    self._buffer.clear()
                return messages
            block = self._buffer[:end].decode("utf-8", "replace")
            del self._buffer[: end + 2]
            if not block.strip():
                continue
            message, bad = parse(block)
            self.bad_lines += bad
            if message:
                messages.append(message)
