"""What Facebook Messenger and the WhatsApp Cloud API share, because both are
Meta Graph API products: the webhook verification handshake, the
`X-Hub-Signature-256` payload signature, the Graph API's error format and what
each error means for a retry, and the 24-hour customer-service window.

Webhook verification (when the webhook is saved in the App Dashboard):
`GET <callback>?hub.mode=subscribe&hub.verify_token=<ours>&hub.challenge=<n>`
must answer the challenge, as plain text, only when the token is ours.

Every event POST carries `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the
raw body, keyed with the app secret>`.

Graph API errors look like
`{"error": {"message", "type", "code", "error_subcode"?, "error_data"?, "fbtrace_id"}}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.errors import InvalidRequest, ProviderRejected, SignatureInvalid, describe_validation

SIGNATURE_HEADER = "X-Hub-Signature-256"
GRAPH_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v23.0"

# The customer-service window: free-form replies only within 24 hours of the
# customer's last message (templates or message tags are needed after that).
CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)

# Graph error codes worth trying again: transient faults and rate limits.
#   1, 2: unknown / temporary error; 4, 17, 32, 613: application, user, page and
#   call-rate limits; 1200: Messenger "temporary send message failure";
#   80007: WhatsApp rate limit; 130429: throughput limit; 131016: service
#   unavailable; 131056: (business, customer) pair rate limit.
RETRYABLE_CODES = frozenset({1, 2, 4, 17, 32, 613, 1200, 80007, 130429, 131016, 131056})
# Replies outside the customer-service window: Messenger answers code 10 with
# subcode 2018278 (and 2018109 for the old 24+1 policy); WhatsApp 131047.
WINDOW_ERRORS = frozenset({(10, 2018278), (10, 2018109), (131047, None)})
TOKEN_CODE = 190  # the access token expired or was revoked


def outside_window(exc: ProviderRejected) -> bool:
    """Whether Meta refused a send as outside the customer-service window."""
    code, _, subcode = (exc.provider_code or "").partition("/")
    pair = (_int(code), _int(subcode) if subcode else None)
    return pair in WINDOW_ERRORS or (pair[0], None) in WINDOW_ERRORS


def sign(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str, body: bytes, header: str | None) -> None:
    """Raise SignatureInvalid unless `header` signs the raw `body` (constant time)."""
    if not header:
        raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
    if not hmac.compare_digest(sign(app_secret, body).encode(), header.strip().encode()):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match the body")


def answer_verification(request: web.Request, verify_token: str) -> web.Response:
    """The verification handshake: echo `hub.challenge` if the token is ours."""
    query = request.query
    given = query.get("hub.verify_token", "")
    if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
        given.encode(), verify_token.encode()
    ):
        raise SignatureInvalid("hub.verify_token does not match this account's verify_token")
    return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")


def parse_webhook(model: type[BaseModel], body: bytes) -> Any:
    """The webhook body as `model`; InvalidRequest (422) naming what is wrong."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidRequest("body is not valid JSON") from exc
        raise InvalidRequest(describe_validation(exc)) from exc


class MetaOptions(BaseModel):
    """Options every Meta account has."""

    model_config = ConfigDict(extra="forbid")

    app_secret: str = Field(min_length=8, description="from `app_secret_env`")
    verify_token: str = Field(min_length=8, description="from `verify_token_env`")
    access_token: str = Field(min_length=8, description="from `access_token_env`")
    graph_url: str = GRAPH_URL
    graph_version: str = Field(GRAPH_VERSION, pattern=r"^v\d+\.\d+$")
    reply_window_hours: float = Field(24.0, gt=0)


def graph_rejection(provider: str, status: int, text: str) -> ProviderRejected:
    """A Graph API error answer as ProviderRejected, retryable only when trying
    again may succeed (rate limits, transient faults, HTTP 429/5xx)."""
    error: dict[str, Any] = {}
    try:
        body = json.loads(text)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except ValueError:
        pass
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = str(error.get("message") or text[:200] or f"HTTP {status}")
    details = (
        (error.get("error_data") or {}).get("details")
        if isinstance(error.get("error_data"), dict)
        else None
    )
    code_int = code if isinstance(code, int) else _int(code)
    reason = f"{provider} refused the message: {message}"
    if details and details not in message:
        reason += f" ({details})"
    if (code_int, subcode) in WINDOW_ERRORS or (code_int, None) in WINDOW_ERRORS:
        reason = f"{provider}: outside Meta's 24-hour customer-service window — {message}" + (
            f" ({details})" if details and details not in message else ""
        )
    elif code_int == TOKEN_CODE:
        reason += " — the access token expired or was revoked; set a new one"
    retryable = status == 429 or status >= 500 or code_int in RETRYABLE_CODES
    provider_code = str(code_int) if code_int is not None else str(status)
    if subcode is not None:
        provider_code += f"/{subcode}"
    return ProviderRejected(reason, retryable=retryable, provider_code=provider_code)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def graph_post(
    http: aiohttp.ClientSession, provider: str, url: str, token: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST `body` to the Graph API; the JSON answer, or ProviderRejected."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        async with http.post(url, data=payload, headers=headers) as response:
            text = await response.text(errors="replace")
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise ProviderRejected(
            f"{provider} unreachable: {type(exc).__name__}: {exc}", retryable=True
        ) from exc
    if not 200 <= response.status < 300:
        raise graph_rejection(provider, response.status, text)
    try:
        answer = json.loads(text)
    except ValueError:
        answer = None
    # A 2xx means the message was accepted: never send it again, even when the
    # answer cannot be read (it only lacks the provider's message id then).
    return answer if isinstance(answer, dict) else {}


def webhook_ack() -> web.Response:
    """What Meta expects back once every event of the delivery is stored."""
    return web.Response(text="EVENT_RECEIVED", content_type="text/plain")
