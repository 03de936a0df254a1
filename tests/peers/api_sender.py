"""A company's system pushing messages into hub through the API channel."""

from __future__ import annotations

import json
from typing import Any

from hub.channels.api import SIGNATURE_HEADER, sign


def message(
    external_id: str, sender_id: str = "cust-1", text: str = "Xin chào", **sender: Any
) -> dict[str, Any]:
    return {
        "external_id": external_id,
        "from": {"id": sender_id, "name": sender.pop("name", "Nguyễn Văn Bình"), **sender},
        "text": text,
    }


def signed(payload: dict[str, Any] | bytes, secret: str) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers a correctly configured sender would use."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body)}
