"""The widget sockets open in this process, found by conversation and by visitor."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from hub.live_socket import LiveSocket


class VisitorSocket(LiveSocket):
    """One open widget: who it is, which conversation it shows."""

    def __init__(self, ws: web.WebSocketResponse, visitor_id: str, page: str = "") -> None:
        super().__init__(ws, hold=True)
        self.visitor_id = visitor_id
        self.page = page
        self.conversation_id: str | None = None
        self.contact_id: str | None = None
        self.name = ""
        self.last_typing_at = 0.0
        self.last_ack: tuple[str, str] | None = None
        # Messages this socket is sending (client id -> their view, once the
        # inbox announced them): the ack carries it, so no echo, no extra read.
        self.sending: dict[str, dict[str, Any] | None] = {}


class LiveSockets:
    def __init__(self) -> None:
        self._by_conversation: dict[str, set[VisitorSocket]] = defaultdict(set)
        self._by_visitor: dict[str, set[VisitorSocket]] = defaultdict(set)

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_visitor.values())

    def __iter__(self) -> Iterator[VisitorSocket]:
        return iter([s for group in self._by_visitor.values() for s in group])

    def add(self, socket: VisitorSocket) -> None:
        self._by_visitor[socket.visitor_id].add(socket)

    def attach(self, socket: VisitorSocket, conversation_id: str) -> bool:
        """Show `conversation_id` on this socket; False if it already did."""
        if socket.conversation_id == conversation_id:
            return False
        self._detach(socket)
        socket.conversation_id = conversation_id
        self._by_conversation[conversation_id].add(socket)
        return True

    def _detach(self, socket: VisitorSocket) -> None:
        if socket.conversation_id is None:
            return
        group = self._by_conversation.get(socket.conversation_id)
        if group is not None:
            group.discard(socket)
            if not group:
                del self._by_conversation[socket.conversation_id]

    def remove(self, socket: VisitorSocket) -> None:
        self._detach(socket)
        group = self._by_visitor.get(socket.visitor_id)
        if group is not None:
            group.discard(socket)
            if not group:
                del self._by_visitor[socket.visitor_id]

    def of_conversation(self, conversation_id: str) -> list[VisitorSocket]:
        return list(self._by_conversation.get(conversation_id, ()))

    def of_visitor(self, visitor_id: str) -> list[VisitorSocket]:
        return list(self._by_visitor.get(visitor_id, ()))
