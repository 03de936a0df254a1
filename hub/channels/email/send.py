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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import aiosmtplib
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

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

    async def send(
        self,
        sender: str,
        recipients: Sequence[str],
        data: bytes,
        *,
        before_final_dot: Callable[[], Awaitable[None]] | None = None,
    ) -> str:
        """Send one message; returns the server's answer to DATA. Raises
        ProviderRejected (retryable for 4xx and network errors).

        `before_final_dot` runs once the whole message is with the server except
        the final "." that makes the server take it (see `sendmail_in_two_steps`)."""
        async with self._slots:
            connection = await self._take()
            try:
                if before_final_dot is None:
                    errors, answer = await connection.sendmail(sender, list(recipients), data)
                else:
                    errors, answer = await sendmail_in_two_steps(
                        connection, sender, recipients, data, before_final_dot
                    )
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


async def sendmail_in_two_steps(
    connection: aiosmtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    before_final_dot: Callable[[], Awaitable[None]],
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    """MAIL, RCPT, DATA and the message, then `before_final_dot()`, then the
    final "." (RFC 1047's way to shrink the window of duplicates).

    An SMTP server takes a message only at the final "."; a connection that
    drops before it aborts the transaction. So a sender that records "about to
    finish" in `before_final_dot` and then dies knows: with the record, the
    message went (the "." was being written); without it, it did not, and can be
    sent again without a duplicate. Uses aiosmtplib's protocol for the split DATA
    (its `data()` writes message and "." in one go).
    """
    try:
        return await _two_steps(connection, sender, recipients, data, before_final_dot)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        try:  # as `sendmail` does: a refused transaction leaves a usable connection
            await connection.rset()
        except (ConnectionError, aiosmtplib.SMTPException):
            pass
        raise


async def _two_steps(
    connection: aiosmtplib.SMTP,
    sender: str,
    recipients: Sequence[str],
    data: bytes,
    before_final_dot: Callable[[], Awaitable[None]],
) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
    await connection.mail(sender)
    refused: dict[str, aiosmtplib.SMTPResponse] = {}
    accepted = 0
    for recipient in recipients:
        try:
            await connection.rcpt(recipient)
            accepted += 1
        except aiosmtplib.SMTPRecipientRefused as exc:
            refused[recipient] = aiosmtplib.SMTPResponse(exc.code, exc.message)
            if not accepted and len(refused) == len(recipients):
                raise aiosmtplib.SMTPRecipientsRefused(
                    [
                        aiosmtplib.SMTPRecipientRefused(r.code, r.message, address)
                        for address, r in refused.items()
                    ]
                ) from exc
    protocol = connection.protocol
    if protocol is None or protocol._command_lock is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    body = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data))
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    timeout = connection.timeout
    async with protocol._command_lock:
        protocol._response_pending = True
        protocol.write(b"DATA\r\n")
        start = await protocol.read_response(timeout=timeout)
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        protocol.write(body)
        await before_final_dot()
        protocol._response_pending = True
        protocol.write(b".\r\n")
        response = await protocol.read_response(timeout=timeout)
    if response.code != 250:
        raise aiosmtplib.SMTPDataError(response.code, response.message)
    return refused, response.message


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
