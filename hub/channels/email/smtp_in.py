"""hub's own inbound SMTP server (aiosmtpd), for companies that point their MX
or a relay at the hub instead of (or beside) an IMAP mailbox.

- RCPT: an address (or `local+tag@domain`) of a configured e-mail account is
  accepted; anything else is refused there (550 5.1.1), before any data.
- DATA: over `max_message_bytes` is refused (552); otherwise the mail is
  stored for every account it was addressed to, and only then answered
  250. A mail that cannot be recorded gets 550 naming why; a store outage
  gets 451 so the sending server tries again later (a repeat is a no-op).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from hub.channels.email.channel import EmailChannel
from hub.errors import InvalidRequest, QueueUnavailable
from hub.settings import SmtpListenerSettings

log = logging.getLogger(__name__)


def mailbox_key(address: str) -> str:
    """`Support+Order42@Shop.vn` → `support@shop.vn`: sub-addresses reach the mailbox."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}".lower()


class _LoggingSMTP(SMTP):
    """aiosmtpd's server, logging the refusals it makes on its own (size limit)."""

    async def push(self, status: Any) -> None:
        if str(status).startswith("552"):
            log.warning(
                "inbound mail refused: too large",
                extra={
                    "event": "smtp_in.too_large",
                    "peer": str(self.session and self.session.peer),
                },
            )
        await super().push(status)


class SmtpListener:
    def __init__(self, settings: SmtpListenerSettings, channels: Sequence[EmailChannel]) -> None:
        self.settings = settings
        self.routes: dict[str, EmailChannel] = {}
        for channel in channels:
            for address in channel.addresses:
                self.routes.setdefault(mailbox_key(address), channel)
        self._server: asyncio.AbstractServer | None = None
        self.port = settings.port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # aiosmtpd would look the machine's name up (DNS) for every connection.
        hostname = self.settings.hostname or await asyncio.to_thread(socket.getfqdn)
        self._server = await loop.create_server(
            lambda: _LoggingSMTP(
                self,
                data_size_limit=self.settings.max_message_bytes,
                enable_SMTPUTF8=True,
                hostname=hostname,
                ident="hub",
            ),
            host=self.settings.host,
            port=self.settings.port,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        log.info(
            "SMTP listener started",
            extra={"event": "smtp_in.start", "host": self.settings.host, "port": self.port},
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    # -- aiosmtpd handler hooks -------------------------------------------
    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if mailbox_key(address) not in self.routes:
            log.info(
                "inbound mail refused: unknown recipient",
                extra={"event": "smtp_in.unknown_recipient", "peer": str(session.peer)},
            )
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        channels = list(
            {id(c): c for c in (self.routes[mailbox_key(r)] for r in envelope.rcpt_tos)}.values()
        )
        source: dict[str, Any] = {
            "smtp": {
                "peer": str(session.peer[0]) if session.peer else None,
                "mail_from": envelope.mail_from,
                "rcpt_to": list(envelope.rcpt_tos),
            }
        }
        try:
            for channel in channels:
                await channel.receive(raw, source=source)
        except InvalidRequest as exc:
            log.warning(
                "inbound mail refused",
                extra={"event": "smtp_in.rejected", "reason": exc.message},
            )
            return "550 5.6.0 " + " ".join(exc.message.split())[:200]
        except QueueUnavailable:
            pass  # stored; only other processes were not told
        except Exception:  # the store is down, a bug: the sender must keep the mail
            log.exception("inbound mail not stored", extra={"event": "smtp_in.failed"})
            return "451 4.3.0 the message could not be stored; please try again later"
        return "250 2.0.0 OK: stored"
