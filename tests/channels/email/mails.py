"""Small, well-formed mails for tests that are not about parsing."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime


def mail(
    n: int | str,
    *,
    sender: str = "khach@example.vn",
    name: str = "Khách Hàng",
    to: str = "support@shop.vn",
    subject: str | None = None,
    body: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = f"{name} <{sender}>"
    message["To"] = to
    message["Subject"] = subject if subject is not None else f"Câu hỏi số {n}"
    message["Date"] = format_datetime(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))
    message["Message-ID"] = message_id or f"<mail-{n}@example.vn>"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = " ".join(references)
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(body if body is not None else f"Nội dung thư số {n}.")
    return message.as_bytes()
