"""Delivery status notifications (RFC 3464): a `multipart/report` with
`report-type=delivery-status` that says which recipients of which message
failed, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import default

from hub.channels.email.charsets import clean

MESSAGE_ID = re.compile(r"<[^<>\s]+>")


@dataclass(frozen=True)
class RecipientStatus:
    address: str
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # RFC 3463, e.g. 5.1.1
    diagnostic: str

    @property
    def permanent_failure(self) -> bool:
        return self.action == "failed" or self.status.startswith("5.")


@dataclass(frozen=True)
class DeliveryReport:
    """What a DSN says: the Message-ID of the message it reports on (when the
    report carries its headers) and each recipient's fate."""

    original_message_id: str | None
    recipients: list[RecipientStatus] = field(default_factory=list)

    @property
    def undelivered(self) -> list[RecipientStatus]:
        """Recipients that failed for good or are still being retried."""
        return [r for r in self.recipients if r.action in ("failed", "delayed")]


def delivery_report(message: Message) -> DeliveryReport | None:
    """The report in `message`, or None when it is not a delivery-status report."""
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":  # type: ignore[union-attr]
        return None
    recipients: list[RecipientStatus] = []
    original: str | None = None
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            recipients.extend(_recipients(part))
        elif kind in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            original = original or _original_message_id(part)
    return DeliveryReport(original, recipients)


def _recipients(part: Message) -> list[RecipientStatus]:
    payload = part.get_payload()
    blocks: list[Message] = (
        [b for b in payload if isinstance(b, Message)] if isinstance(payload, list) else []
    )
    if isinstance(payload, str):
        # Some servers send the fields undecoded or base64-encoded: parse them.
        data = part.get_payload(decode=True)
        text = data if isinstance(data, bytes) else payload.encode("utf-8", "replace")
        blocks = [
            BytesParser(policy=default).parsebytes(chunk + b"\r\n\r\n")
            for chunk in re.split(rb"\r?\n\s*\r?\n", text)
            if chunk.strip()
        ]
    found = []
    for block in blocks:
        recipient = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
        if not recipient:
            continue
        address = recipient.split(";", 1)[-1].strip().strip("<>")
        found.append(
            RecipientStatus(
                address=address,
                action=_field(block, "Action").lower(),
                status=_field(block, "Status"),
                diagnostic=re.sub(
                    r"\s+", " ", _field(block, "Diagnostic-Code").split(";", 1)[-1]
                ).strip(),
            )
        )
    return found


def _original_message_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        headers: Message = payload[0]
    else:
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            return None
        headers = BytesParser(policy=default).parsebytes(data, headersonly=True)
    value = _field(headers, "Message-ID")
    found = MESSAGE_ID.search(value)
    return found.group(0) if found else None


def _field(block: Message | EmailMessage, name: str) -> str:
    try:
        value = block.get(name)
    except Exception:  # a malformed field must not lose the rest of the report
        return ""
    return clean(str(value)).strip() if value is not None else ""
