"""DKIM signatures (RFC 6376) on outbound mail, with dkimpy, when an account
has a key: receivers then trust that the mail really comes from the
company's domain, which keeps replies out of spam folders."""

from __future__ import annotations

from dataclasses import dataclass

import dkim

from hub.errors import ConfigError

SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"auto-submitted",
]


@dataclass(frozen=True)
class DkimKey:
    selector: str
    domain: str
    private_key: str  # PEM (PKCS#1 or PKCS#8)

    def sign(self, message: bytes) -> bytes:
        """`message` with a DKIM-Signature header in front (relaxed/relaxed)."""
        try:
            signature = dkim.sign(
                message,
                self.selector.encode(),
                self.domain.encode(),
                self.private_key.encode(),
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=SIGNED_HEADERS,
            )
        except dkim.DKIMException as exc:
            raise ConfigError(f"cannot DKIM-sign for {self.domain}: {exc}") from exc
        return signature + message
