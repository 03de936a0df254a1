"""Errors as types. The web layer maps them to HTTP status codes in one place
(`hub.web.errors`); everything else raises and catches them by meaning."""

from __future__ import annotations

from pydantic import ValidationError


class HubError(Exception):
    """Base of every error hub raises on purpose. `code` is stable and machine-readable."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(HubError):
    """The caller sent something we cannot accept: malformed JSON, a missing or bad field."""

    code = "invalid_request"


class SignatureInvalid(HubError):
    code = "signature_invalid"


class Unauthenticated(HubError):
    code = "unauthenticated"


class Forbidden(HubError):
    code = "forbidden"


class RateLimited(HubError):
    """Too many attempts (sign-ins): try again after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UnknownAccount(HubError):
    code = "unknown_account"


class NotFound(HubError):
    code = "not_found"


class Conflict(HubError):
    code = "conflict"


class PayloadTooLarge(HubError):
    code = "payload_too_large"


class StoreUnavailable(HubError):
    """The database cannot be reached or is locked; the caller should retry later."""

    code = "store_unavailable"


class QueueUnavailable(HubError):
    """Redis (job queue, event bus) cannot be reached; the caller should retry later."""

    code = "queue_unavailable"


class ProviderUnavailable(HubError):
    """A provider or PBX the request needs cannot be reached right now (retry later)."""

    code = "provider_unavailable"


class DuplicateMessage(HubError):
    """A message with the same (channel, account, external id) or idempotency key exists."""

    code = "duplicate_message"


class IdentityTaken(HubError):
    """The identity already belongs to another contact."""

    code = "identity_taken"


class ReplyWindowClosed(HubError):
    """The channel only lets a business reply for a while after the customer's
    last message (Meta's 24-hour window, Zalo's 7 days), and that time is over."""

    code = "reply_window_closed"


class ConfigError(HubError):
    code = "config_error"


class ProviderRejected(HubError):
    """A provider refused a send. `retryable` says whether trying again may succeed;
    `retry_after` (seconds), when known, is the soonest a retry makes sense."""

    code = "provider_rejected"

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.provider_code = provider_code
        self.retry_after = retry_after


def describe_validation(exc: ValidationError) -> str:
    """One line naming each bad field and what is wrong with it, for a 4xx body."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
