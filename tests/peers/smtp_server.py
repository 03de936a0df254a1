"""A mail server receiving hub's outbound mail: a real aiosmtpd SMTP server in
the test's event loop, recording the exact bytes of every message.

It can require STARTTLS and AUTH (or speak implicit TLS), answer DATA from a
script (`answers = ["451 4.7.1 Try again later"]`; once the script runs out
it answers 250), and drop every open connection (`drop_connections()`), the
way a server closes idle clients.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    login: str | None
    tls: bool
    at: float = 0.0  # when DATA was accepted (time.time())


class _PeerSMTP(SMTP):
    def __init__(self, peer: SmtpPeer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._peer = peer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._peer.connections += 1
        self._peer._transports.add(transport)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._peer._transports.discard(self.transport)  # type: ignore[arg-type]
        super().connection_lost(error)


class SmtpPeer:
    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        logins: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = 0
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.logins = logins
        self.received: list[Received] = []
        self.answers: list[str] = []
        self.rcpt_answers: dict[str, str] = {}
        self.connections = 0
        self._transports: set[asyncio.BaseTransport] = set()
        self._server: asyncio.AbstractServer | None = None
        self.arrived = asyncio.Event()

    async def start(self) -> SmtpPeer:
        loop = asyncio.get_running_loop()

        def factory() -> SMTP:
            return _PeerSMTP(
                self,
                self,
                hostname="mx.test",
                tls_context=None if self.implicit_tls else self.tls,
                require_starttls=self.tls is not None and not self.implicit_tls,
                authenticator=self._authenticate if self.logins is not None else None,
                auth_required=self.logins is not None,
                auth_require_tls=self.tls is not None,
            )

        self._server = await loop.create_server(
            factory, self.host, 0, ssl=self.tls if self.implicit_tls else None
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self.drop_connections()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_connections(self) -> None:
        for transport in list(self._transports):
            transport.close()
        self._transports.clear()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.logins and self.logins.get(user) == password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    # -- aiosmtpd handler hooks -------------------------------------------
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = self.rcpt_answers.get(address, "250 OK")
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.answers:
            return self.answers.pop(0)
        self.received.append(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=list(envelope.rcpt_tos),
                data=bytes(envelope.original_content or b""),
                login=session.auth_data if session.authenticated else None,
                tls=server.transport is not None
                and server.transport.get_extra_info("ssl_object") is not None,
                at=time.time(),
            )
        )
        self.arrived.set()
        return "250 2.0.0 Ok: queued as TEST"
