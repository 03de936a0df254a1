"""Checking that a webhook came from Twilio: `X-Twilio-Signature`, through the
Twilio library's own `RequestValidator`.

Twilio signs the URL it was told to call — the hub's public address, not the
one a proxy forwards to — so the URL is rebuilt from `server.public_url` and
the request's path and query.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from hub.errors import SignatureInvalid


def public_request_url(public_url: str, path_qs: str) -> str:
    return public_url.rstrip("/") + path_qs


def verify(
    auth_token: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
) -> None:
    """Raise SignatureInvalid unless the headers carry Twilio's signature of
    `url` and the form `params` (HMAC-SHA1 with the auth token, or the algorithm
    the signature-settings header names)."""
    signature = headers.get(SIGNATURE_HEADER)
    if not signature:
        raise SignatureInvalid(f"missing {SIGNATURE_HEADER} header")
    algorithm = get_signature_algorithm(headers.get(SIGNATURE_SETTINGS_HEADER))
    if not RequestValidator(auth_token).validate(url, params, signature, algorithm):
        raise SignatureInvalid(f"{SIGNATURE_HEADER} does not match {url} and its parameters")
