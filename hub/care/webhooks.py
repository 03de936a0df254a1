"""Outgoing webhooks of automation rules: a signed JSON POST to the company's
other systems (a CRM, an ERP), sent by a worker job so ingest never waits on
someone else's server.

The body is signed like the API channel's callbacks: `X-Hub-Signature-256:
sha256=<hex HMAC-SHA256 of the raw body>` with the secret the rule names by
environment variable. `X-Hub-Delivery` carries the delivery id, the same on
every retry, so the receiver can drop repeats. A 2xx answer is success; a 4xx
other than 408/429 is final (the receiver refuses it, retrying will not help);
anything else is retried with backoff up to `care.webhook_max_attempts`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta

import aiohttp

from hub.channels.api import SIGNATURE_HEADER, sign
from hub.errors import ConfigError

log = logging.getLogger(__name__)

DELIVERY_HEADER = "X-Hub-Delivery"


@dataclass(frozen=True)
class Retry:
    delay: timedelta


def webhook_secret(secret_env: str) -> str:
    """The secret from the environment; ConfigError naming the variable if unset."""
    secret = os.environ.get(secret_env, "")
    if len(secret) < 16:
        raise ConfigError(
            f"environment variable {secret_env!r} must hold the webhook secret"
            " (at least 16 characters)"
        )
    return secret


class WebhookSender:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        timeout_seconds: float,
        max_attempts: int,
        backoff_seconds: float = 5.0,
    ) -> None:
        self.backoff_seconds = backoff_seconds
        self.http = http
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.max_attempts = max_attempts

    async def post(
        self, url: str, secret: str, body: str, delivery_id: str, attempt: int
    ) -> str | Retry:
        """POST once. Returns "sent", "refused" or "gave up", or Retry(delay)."""
        raw = body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, raw),
            DELIVERY_HEADER: delivery_id,
        }
        try:
            async with self.http.post(url, data=raw, headers=headers, timeout=self.timeout) as r:
                status = r.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = f"unreachable: {exc.__class__.__name__}"
        else:
            if 200 <= status < 300:
                log.info(
                    "care webhook delivered",
                    extra={"event": "care.webhook_sent", "delivery_id": delivery_id},
                )
                return "sent"
            if 400 <= status < 500 and status not in (408, 429):
                log.warning(
                    "care webhook refused by the receiver",
                    extra={
                        "event": "care.webhook_refused",
                        "delivery_id": delivery_id,
                        "status": status,
                    },
                )
                return "refused"
            reason = f"HTTP {status}"
        if attempt >= self.max_attempts:
            log.error(
                "care webhook given up",
                extra={
                    "event": "care.webhook_failed",
                    "delivery_id": delivery_id,
                    "reason": reason,
                    "attempts": attempt,
                },
            )
            return "gave up"
        return Retry(timedelta(seconds=min(self.backoff_seconds * 2 ** (attempt - 1), 900)))
