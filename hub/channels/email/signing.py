"""DKIM signatures (RFC 6376) on outbound mail, with dkimpy, when an account
has a key: receivers then trust that the mail really comes from the
company's domain, which keeps replies out of spam folders."""

from __future__ import annotations

from dataclasses import dataclass

import dkim

from hub.errors import ConfigError

# What the signature covers (a header listed but absent is signed as absent, so
# it cannot be added on the way). RFC 8058 section 4: List-Unsubscribe and
# List-Unsubscribe-Post MUST be signed, or Gmail and Yahoo do not offer the
# one-click unsubscribe; Reply-To, Precedence and the auto-reply markers change
# where answers go and how receivers treat the mail, so a relay must not add or
# change them either. "from" twice: a second From added later breaks the
# signature (RFC 6376 section 8.15; dkimpy's own default does the same).
SIGNED_HEADERS = [
    b"from",
    b"reply-to",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-id",
    b"precedence",
    b"auto-submitted",
    b"x-auto-response-suppress",
    b"from",
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
