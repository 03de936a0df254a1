"""Visitor tokens: how a browser proves, visit after visit, that it is the same
web-chat visitor — and so continues the same conversation.

A token is `<payload>.<signature>`, both base64url: the payload is
`{"a": account id, "v": visitor id, "t": issued at (unix seconds)}`, the
signature HMAC-SHA256 of the payload with a key derived from the hub's secret
key for this purpose only. Nothing secret is inside: it is a name the hub
vouches for, kept in the visitor's browser storage. The hub hands out a fresh
token on every connection, so `max_age` only ends visitors who stay away longer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from datetime import timedelta

from hub.clock import Clock
from hub.inbox.model import to_ms

MAX_TOKEN_CHARS = 512


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_visitor_id() -> str:
    """128 random bits: unguessable, so a visitor id cannot be claimed by guessing."""
    return secrets.token_urlsafe(16)


class VisitorTokens:
    def __init__(self, key: bytes, account_id: str, clock: Clock, max_age: timedelta) -> None:
        if len(key) < 16:
            raise ValueError("a visitor-token key needs at least 16 bytes")
        self.key = key
        self.account_id = account_id
        self.clock = clock
        self.max_age = max_age

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())

    def issue(self, visitor_id: str) -> str:
        body = {"a": self.account_id, "v": visitor_id, "t": to_ms(self.clock.now()) // 1000}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._signature(payload)}"

    def visitor(self, token: str) -> str | None:
        """The visitor id the token names, or None when it is malformed, forged,
        made for another account or older than `max_age`."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            return None
        payload, signature = token.split(".")
        if not hmac.compare_digest(self._signature(payload), signature):
            return None
        try:
            body = json.loads(_unb64(payload))
            account, visitor, issued = body["a"], body["v"], int(body["t"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if account != self.account_id or not isinstance(visitor, str) or not visitor:
            return None
        age_seconds = to_ms(self.clock.now()) // 1000 - issued
        if age_seconds > self.max_age.total_seconds():
            return None
        return visitor
