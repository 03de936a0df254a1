"""Sending mail over SMTP (aiosmtplib), one small connection pool per account.

A connection is opened with the account's security (implicit TLS, STARTTLS
or none for a local relay) and login, used for one message at a time, and
put back for the next. A connection taken from the pool is checked with NOOP
first: servers close idle connections, and finding that out before MAIL
means a message is never half-sent on a dead connection. Errors become
`ProviderRejected`: SMTP 4xx and network trouble are retryable, 5xx are not
and carry the server's own words.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

from hub.errors import ProviderRejected

log = logging.getLogger(__name__)

Security = Literal["starttls", "tls", "none"]
DEFAULT_PORTS: dict[Security, int] = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: str | None = None
    local_hostname: str | None = None

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"


class SmtpPool:
    """Up to `size` connections to one server, reused across sends."""

    def __init__(self, server: SmtpServer, *, size: int = 2) -> None:
        self.server = server
        self._slots = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []
        self.connections_opened = 0

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> str:
        """Send one message; returns the server's answer to DATA. Raises
        ProviderRejected (retryable for 4xx and network errors)."""
        async with self._slots:
            connection = await self._take()
            try:
                errors, answer = await connection.sendmail(sender, list(recipients), data)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                self._idle.append(connection)  # the server answered: still usable
                raise _refused(exc.recipients) from exc
            except aiosmtplib.SMTPResponseException as exc:
                if connection.is_connected:
                    self._idle.append(connection)
                raise _rejected(exc.code, exc.message, self.server) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                _close(connection)
                raise ProviderRejected(
                    f"SMTP connection to {self.server.name} failed: {type(exc).__name__}: {exc}",
                    retryable=True,
                ) from exc
            self._idle.append(connection)
            if errors:
                # Some recipients refused, at least one accepted: the message is
                # out; note who did not get it.
                log.warning(
                    "some recipients refused",
                    extra={"event": "smtp.partial", "refused": sorted(errors)},
                )
            return answer

    async def _take(self) -> aiosmtplib.SMTP:
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_connected:
                continue
            try:
                await connection.noop()
                return connection
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                _close(connection)  # dropped by the server while idle: open a new one
        return await self._connect()

    async def _connect(self) -> aiosmtplib.SMTP:
        server = self.server
        tls_context = None
        if server.security != "none":
            tls_context = ssl.create_default_context(cafile=server.ca_file)
        connection = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.security == "tls",
            start_tls=server.security == "starttls",
            tls_context=tls_context,
            timeout=server.timeout,
            local_hostname=server.local_hostname,
        )
        try:
            await connection.connect()
            if server.username:
                await connection.login(server.username, server.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            _close(connection)
            raise ProviderRejected(
                f"SMTP login to {server.name} refused: {exc.code} {exc.message}",
                retryable=exc.code < 500,
                provider_code=str(exc.code),
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            _close(connection)
            raise _rejected(exc.code, exc.message, server) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            _close(connection)
            raise ProviderRejected(
                f"SMTP server {server.name} cannot do what the account asks: {exc}",
                retryable=False,
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError, ssl.SSLError) as exc:
            _close(connection)
            raise ProviderRejected(
                f"cannot reach SMTP server {server.name}: {type(exc).__name__}: {exc}",
                retryable=True,
            ) from exc
        self.connections_opened += 1
        return connection

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            try:
                await asyncio.wait_for(connection.quit(), timeout=2)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                _close(connection)


def _close(connection: aiosmtplib.SMTP) -> None:
    try:
        connection.close()
    except Exception:  # closing a half-open transport must not mask the real error
        pass


def _rejected(code: int, text: str, server: SmtpServer) -> ProviderRejected:
    return ProviderRejected(
        f"{server.name} answered {code} {' '.join(text.split())}",
        retryable=400 <= code < 500,
        provider_code=str(code),
    )


def _refused(recipients: Sequence[aiosmtplib.SMTPRecipientRefused]) -> ProviderRejected:
    first = recipients[0]
    text = "; ".join(f"{r.recipient}: {r.code} {' '.join(r.message.split())}" for r in recipients)
    return ProviderRejected(
        f"recipient refused: {text}",
        retryable=all(400 <= r.code < 500 for r in recipients),
        provider_code=str(first.code),
    )
