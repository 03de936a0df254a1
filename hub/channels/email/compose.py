"""Outbound mail as bytes: pure, and the same bytes every time for one message.

A reply is a `multipart/alternative` (plain text, and HTML made from it
when the agent wrote only text) inside a `multipart/mixed` when there are
attachments; headers are UTF-8 (RFC 2047 / 2231 encoded), bodies are
quoted-printable (ASCII) or base64. `In-Reply-To`/`References` make Gmail and
Outlook file it in the customer's thread; what the hub sends by itself
carries `Auto-Submitted` (RFC 3834) so no other robot answers it.

The Message-ID and the MIME boundaries come from the hub's message id, so a
retried send carries the same Message-ID (receivers drop the repeat) and is
byte-for-byte the same message.
"""

from __future__ import annotations

import email.policy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape

from hub.inbox.model import ThreadKeys

# CRLF line ends, headers folded at 78 and encoded to 7-bit as SMTP wants.
POLICY = email.policy.SMTP.clone(cte_type="7bit", max_line_length=78)


@dataclass(frozen=True)
class OutgoingFile:
    name: str
    content_type: str
    data: bytes


def message_id_for(hub_message_id: str, domain: str) -> str:
    """The Message-ID of the mail carrying hub message `hub_message_id`."""
    return f"<{hub_message_id}.hub@{domain}>"


def hub_message_id_of(message_id: str) -> str | None:
    """The hub message id a `message_id_for` Message-ID carries, else None."""
    local, at, _ = message_id.strip().strip("<>").rpartition("@")
    if not at or not local.endswith(".hub"):
        return None
    return local.removesuffix(".hub")


SUBJECT_WORDS_CHARS = 60


def reply_subject(subject: str, replying: bool, text: str = "") -> str:
    """The Subject line: "Re: " before the thread's subject when answering; when
    the conversation has none (it began where there are no subjects), the first
    words of the message, so the mail is not "(no subject)" in the inbox."""
    subject = " ".join(subject.split())
    if not subject:
        return first_words(text) or "(no subject)"
    if not replying or subject.lower().startswith(("re:", "re :")):
        return subject
    return f"Re: {subject}"


def first_words(text: str, limit: int = SUBJECT_WORDS_CHARS) -> str:
    """The start of `text`'s first non-blank line, cut at a word and marked "…"
    when longer than `limit` characters."""
    line = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit + 1].rsplit(" ", 1)[0] if " " in line[:limit] else line[:limit]
    return cut.rstrip(" ,.;:-") + "…"


def text_to_html(text: str) -> str:
    """The HTML twin of a plain-text reply: escaped, paragraphs and line breaks kept."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    body = "".join(f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip())
    return f'<!doctype html><html><body><div dir="auto">{body}</div></body></html>'


def compose(
    *,
    message_id: str,
    sender: Address,
    to: Address,
    subject: str,
    text: str,
    html: str | None,
    thread: ThreadKeys,
    date: datetime,
    automated: bool,
    files: Sequence[OutgoingFile] = (),
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The complete message, CRLF line ends, ready for SMTP DATA."""
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(date)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = reply_subject(subject, thread.in_reply_to is not None, text)
    if thread.in_reply_to:
        message["In-Reply-To"] = thread.in_reply_to
    if thread.references:
        message["References"] = " ".join(thread.references)
    if automated:
        message["Auto-Submitted"] = "auto-replied" if thread.in_reply_to else "auto-generated"
        # Asks Exchange/Outlook not to send out-of-office answers to it.
        message["X-Auto-Response-Suppress"] = "All"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text, cte=_transfer_encoding(text))
    html = html if html is not None else text_to_html(text)
    message.add_alternative(html, subtype="html", cte=_transfer_encoding(html))
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        message.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.name)
    seed = message_id.strip("<>").split("@", 1)[0]
    for index, part in enumerate(p for p in message.walk() if p.is_multipart()):
        # "=_" never occurs in quoted-printable or base64 text, so it cannot clash.
        part.set_boundary(f"=_{seed}_{index}")
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # the email package repeats it on inner parts
    return message.as_bytes(policy=POLICY)


def _transfer_encoding(text: str) -> str:
    """Quoted-printable keeps ASCII readable; base64 is a third the size of
    quoted-printable for Vietnamese, where most letters are multi-byte."""
    return "quoted-printable" if text.isascii() else "base64"
