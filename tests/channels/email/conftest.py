"""Fixtures for the e-mail channel: a real Dovecot, real aiosmtpd servers, TLS
certificates made with openssl, and hubs with e-mail accounts."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hub.inbox.model import new_id
from tests.peers.dovecot import MISSING, Dovecot, Mailbox
from tests.peers.smtp_server import SmtpPeer


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if MISSING:
        pytest.skip(MISSING)
    server = Dovecot().start()
    yield server
    server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    """A fresh, empty IMAP mailbox of its own for the test."""
    return dovecot.new_user()


@pytest.fixture
async def smtp_peer() -> AsyncIterator[SmtpPeer]:
    peer = await SmtpPeer().start()
    yield peer
    await peer.stop()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (the client trusts it as its CA)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed (Debian package openssl)")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)


@pytest.fixture
def email_account(monkeypatch: pytest.MonkeyPatch) -> Callable[..., dict[str, Any]]:
    """An `[[accounts]]` entry for an e-mail account; passwords go to the
    environment like an administrator's would."""

    def build(
        account_id: str = "support",
        address: str = "support@shop.vn",
        *,
        mailbox: Mailbox | None = None,
        smtp: SmtpPeer | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        account: dict[str, Any] = {
            "id": account_id,
            "channel": "email",
            "name": "Cửa hàng Bình An",
            "address": address,
            "imap_poll_seconds": 0.3,
            "imap_reconnect_min_seconds": 0.1,
            "imap_reconnect_max_seconds": 0.5,
            "imap_timeout_seconds": 10,
        }
        if mailbox is not None:
            variable = f"HUB_TEST_IMAP_{new_id()}"
            monkeypatch.setenv(variable, mailbox.password)
            account.update(
                imap_host=mailbox.host,
                imap_port=mailbox.port,
                imap_security="none",
                imap_username=mailbox.username,
                imap_password_env=variable,
            )
        if smtp is not None:
            account.update(smtp_host=smtp.host, smtp_port=smtp.port, smtp_security="none")
        account.update(options)
        return account

    return build
