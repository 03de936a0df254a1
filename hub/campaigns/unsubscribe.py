"""Signed unsubscribe links: what a campaign e-mail's `List-Unsubscribe` points
at (RFC 8058 one-click). The link names the campaign, the contact and the
consent it withdraws, signed with a key derived from the hub's own key, so it
cannot be forged for someone else and needs no session."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from hub.keys import derive

PURPOSE = "campaign-unsubscribe"


@dataclass(frozen=True)
class Unsubscribe:
    campaign_id: str
    contact_id: str
    consent_key: str


class UnsubscribeLinks:
    def __init__(self, secret_key: bytes, public_url: str) -> None:
        self._key = derive(secret_key, PURPOSE)
        self.public_url = public_url.rstrip("/")

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()[:32]

    def token(self, campaign_id: str, contact_id: str, consent_key: str) -> str:
        payload = f"{campaign_id}.{contact_id}.{consent_key}"
        return f"{payload}.{self._sign(payload)}"

    def url(self, campaign_id: str, contact_id: str, consent_key: str) -> str:
        return f"{self.public_url}/unsubscribe/{self.token(campaign_id, contact_id, consent_key)}"

    def verify(self, token: str) -> Unsubscribe | None:
        """What a token asks, or None if it is not one this hub signed."""
        parts = token.split(".")
        if len(parts) != 4:
            return None
        payload, signature = ".".join(parts[:3]), parts[3]
        if not hmac.compare_digest(self._sign(payload), signature):
            return None
        return Unsubscribe(*parts[:3])
