"""Creating a message through Twilio's Messages REST API: one form POST.

    POST {api_base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json
    Authorization: Basic base64(AccountSid:AuthToken)
    To=...&From=...&Body=...&StatusCallback=...[&MessagingServiceSid=...][&MediaUrl=...]

answered with the Message resource (201) or an error body with Twilio's `code`
and `message` (https://www.twilio.com/docs/messaging/api/message-resource).

This is the one request a campaign makes per recipient, so it is made here
rather than through the `twilio` library's `messages.create_async`, which
wraps the same request in about 140 µs of CPU of its own per message
(parameter objects, a multipart check of the form, request/response logging,
a 30-field resource with RFC 2822 dates parsed): more than the rest of the
send. Everything else Twilio (listing messages, signatures, TwiML) still goes
through the library.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from hub.channels.twilio.messaging import refusal
from hub.errors import ProviderRejected

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CreatedMessage:
    sid: str | None
    status: str | None
    num_segments: str | None


class MessagesApi:
    """The Messages resource of one Twilio account, on hub's shared HTTP session."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, account_sid: str, auth_token: str
    ) -> None:
        self.http = http
        self.url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
        self.headers = {
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "Accept-Charset": "utf-8",
        }

    async def create(self, fields: Sequence[tuple[str, str]]) -> CreatedMessage:
        """Create (send) a message. Raises ProviderRejected: retryable for 429,
        5xx and an unreachable API; not for a refusal such as a bad number."""
        body = form_body(fields)
        try:
            async with self.http.post(self.url, data=body, headers=self.headers) as response:
                status = response.status
                text = await response.text(encoding="utf-8", errors="replace")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderRejected(
                f"Twilio unreachable: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        answer = _json_object(text)
        if 200 <= status < 300:
            if answer is None:
                # Accepted, so sent: sending again would double it. Its status
                # callbacks still find it (their URL names hub's message).
                log.warning(
                    "Twilio accepted a message with an unreadable answer",
                    extra={"event": "twilio.unreadable_answer", "status": status},
                )
                return CreatedMessage(None, None, None)
            return CreatedMessage(
                _text(answer.get("sid")),
                _text(answer.get("status")),
                _text(answer.get("num_segments")),
            )
        code, message = _error(answer, text)
        reason, retryable = refusal(status, code, message)
        raise ProviderRejected(reason, retryable=retryable, provider_code=_text(code))


# application/x-www-form-urlencoded, byte by byte, as `urllib.parse.urlencode`
# writes it (quote_plus: letters, digits and "_.-~" as they are, space as "+",
# every other UTF-8 byte as %XX), in one `str.translate` instead of a Python
# call per character.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_FORM_BYTE = {
    byte: chr(byte) if byte in _UNRESERVED else "+" if byte == 0x20 else f"%{byte:02X}"
    for byte in range(256)
}


def form_body(fields: Sequence[tuple[str, str]]) -> bytes:
    """The fields as a form-urlencoded request body."""
    return "&".join(f"{_form_quote(name)}={_form_quote(value)}" for name, value in fields).encode(
        "ascii"
    )


def _form_quote(text: str) -> str:
    return text.encode("utf-8").decode("latin-1").translate(_FORM_BYTE)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _error(answer: dict[str, Any] | None, text: str) -> tuple[int | None, str]:
    """Twilio's error code and message, from its classic body (`code`,
    `message`) or an RFC 9457 problem (`code`, `title`, `detail`)."""
    if answer is None:
        return None, text.strip()[:200] or "no error message"
    code = answer.get("code")
    message = answer.get("message") or answer.get("detail") or answer.get("title") or ""
    return (code if isinstance(code, int) else None), str(message)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
