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

Message ids and links (`Message-ID`, `In-Reply-To`, `References`,
`List-Unsubscribe`...) are written as they are, folded only at their spaces.
The email package, asked to fold a value that does not fit on a line (an
Outlook Message-ID with "In-Reply-To: " before it; any signed unsubscribe
link), turns it into RFC 2047 encoded-words, which are not allowed there
(RFC 2047 section 5) and which receivers do not decode: the reply would not
thread, and the one-click unsubscribe would not be offered. A token longer
than a line keeps a line of its own (RFC 5322 allows 998 characters).
"""

from __future__ import annotations

import email.policy
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage, MIMEPart
from email.utils import format_datetime
from html import escape

from hub.inbox.model import ThreadKeys
from hub.keys import derive

LINE = 78


class _Headers(HeaderRegistry):
    """The standard header classes, each made once: the stock registry builds
    a new class for every header of every message (a third of the time a
    campaign mail took to compose)."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# CRLF line ends, headers folded at 78 and encoded to 7-bit as SMTP wants;
# `refold_source="none"`: what `set_raw` stores (the verbatim headers, already
# folded) goes out as it is.
POLICY = email.policy.SMTP.clone(
    cte_type="7bit", max_line_length=LINE, refold_source="none", header_factory=_Headers()
)


@dataclass(frozen=True)
class OutgoingFile:
    name: str
    content_type: str
    data: bytes


# What the Message-ID tag's key is derived for (`hub.keys.derive`).
MESSAGE_ID_PURPOSE = "email-message-id"


def message_id_key(secret_key: bytes) -> bytes:
    """The key of the tags in hub's Message-IDs, from the hub's key."""
    return derive(secret_key, MESSAGE_ID_PURPOSE)


def _tag(hub_message_id: str, key: bytes) -> str:
    return hmac.new(key, hub_message_id.encode(), hashlib.sha256).hexdigest()[:16]


def message_id_for(hub_message_id: str, domain: str, key: bytes) -> str:
    """The Message-ID of the mail carrying hub message `hub_message_id`:
    `<id.tag.hub@domain>`, the same on every try.

    The tag (64 bits of an HMAC of the id, `message_id_key`) makes it
    unguessable. Hub's ids are sortable by time, so without it one mail from
    hub would reveal its neighbours', and anyone could name another customer's
    mail in an `In-Reply-To` (joining their conversation) or in a forged bounce
    (marking them as bouncing, or a campaign send as failed). With it, only
    whoever received the mail can name it."""
    return f"<{hub_message_id}.{_tag(hub_message_id, key)}.hub@{domain}>"


def hub_message_id_of(message_id: str, key: bytes) -> str | None:
    """The hub message id a `message_id_for` Message-ID carries, if its tag is
    right; else None (someone else's Message-ID, or one guessed or forged)."""
    local, at, _ = message_id.strip().strip("<>").rpartition("@")
    hub_message_id, dot, tag = local.removesuffix(".hub").rpartition(".")
    if not at or not local.endswith(".hub") or not dot:
        return None
    if not hmac.compare_digest(tag, _tag(hub_message_id, key)):
        return None
    return hub_message_id


SUBJECT_WORDS_CHARS = 60


def reply_subject(subject: str, replying: bool, text: str = "") -> str:
    """The Subject line: "Re: " before the thread's subject when answering; when
    the conversation has none (it began where there are no subjects), the first
    words of the message, so the mail is not "(no subject)" in the inbox."""
    subject = header_words(subject)
    if not subject:
        return header_words(first_words(text)) or "(no subject)"
    if not replying or subject.lower().startswith(("re:", "re :")):
        return subject
    return f"Re: {subject}"


# C0 and C1 control characters (NUL, BEL, ESC, DEL...) have no place in a
# header (RFC 5322 section 3.2.5: text is printable characters and spaces);
# a NUL gets the mail refused or cut short by receiving servers.
_CONTROLS = {code: " " for code in [*range(0x20), *range(0x7F, 0xA0)]}


def header_words(text: str) -> str:
    """`text` as words for a header (a subject, a display name): one line,
    control characters as spaces, runs of spaces as one. A name typed with a
    line break (an import, a sender's own From) would otherwise stop the mail:
    the email package refuses CR and LF in a name."""
    return " ".join(text.translate(_CONTROLS).split())


def first_words(text: str, limit: int = SUBJECT_WORDS_CHARS) -> str:
    """The start of `text`'s first non-blank line, cut at a word and marked "…"
    when longer than `limit` characters."""
    line = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[: limit + 1].rsplit(" ", 1)[0] if " " in line[:limit] else line[:limit]
    return cut.rstrip(" ,.;:-") + "…"


# A web link in escaped text: up to a space or an escaped character other than
# "&" (so never past a quote or markup), without the punctuation that ends a
# sentence after it ("xem https://shop.vn/don/12." must not link the stop).
_LINK = re.compile(r"https?://(?:[^\s&]|&amp;)+")
_AFTER_LINK = ".,;:!?)]}"


def text_to_html(text: str) -> str:
    """The HTML twin of a plain-text reply: escaped, paragraphs and line breaks
    kept, web links made links (an order's tracking page, a campaign's
    unsubscribe link)."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    body = "".join(
        f"<p>{_linked(escape(p)).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip()
    )
    return f'<!doctype html><html><body><div dir="auto">{body}</div></body></html>'


def _linked(escaped: str) -> str:
    def link(found: re.Match[str]) -> str:
        url = found.group(0).rstrip(_AFTER_LINK)
        if url.endswith("://"):
            return found.group(0)
        return f'<a href="{url}">{url}</a>{found.group(0)[len(url) :]}'

    return _LINK.sub(link, escaped)


def compose(
    *,
    message_id: str,
    sender: Address,
    to: Address,
    reply_to: Address | None = None,
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
    _set_verbatim(message, "Message-ID", message_id)
    message["Date"] = format_datetime(date)
    _set_words(message, "From", sender)
    if reply_to is not None:
        _set_words(message, "Reply-To", reply_to)
    _set_words(message, "To", to)
    _set_words(message, "Subject", reply_subject(subject, thread.in_reply_to is not None, text))
    if thread.in_reply_to:
        _set_verbatim(message, "In-Reply-To", thread.in_reply_to)
    if thread.references:
        _set_verbatim(message, "References", " ".join(thread.references))
    if automated:
        message["Auto-Submitted"] = "auto-replied" if thread.in_reply_to else "auto-generated"
        # Asks Exchange/Outlook not to send out-of-office answers to it.
        message["X-Auto-Response-Suppress"] = "All"
    for name, value in (headers or {}).items():
        _set_verbatim(message, name, value)
    message.set_content(text, cte=_transfer_encoding(text))
    html = html if html is not None else text_to_html(text)
    message.add_alternative(html, subtype="html", cte=_transfer_encoding(html))
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        if not subtype:
            maintype, subtype = "application", "octet-stream"
        name = header_words(file.name) or "attachment"
        message.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=name)
        if not name.isascii():
            *_, part = message.iter_parts()  # the one just added
            _name_for_outlook(part, f"{maintype}/{subtype}", name)
    seed = message_id.strip("<>").split("@", 1)[0]
    for index, part in enumerate(p for p in message.walk() if p.is_multipart()):
        # "=_" never occurs in quoted-printable or base64 text, so it cannot clash.
        part.set_boundary(f"=_{seed}_{index}")
    for part in message.walk():
        if part is not message:
            del part["MIME-Version"]  # the email package repeats it on inner parts
    return message.as_bytes(policy=POLICY)


def _set_verbatim(message: EmailMessage, name: str, value: str) -> None:
    """Add a header whose value is ASCII tokens (ids, links, keywords) as it is,
    folded at its spaces; anything else through the policy as usual."""
    words = value.split()  # no CR or LF can survive into the header
    if not words or not value.isascii():
        message[name] = value
        return
    lines = [words[0]]
    width = len(name) + 2 + len(words[0])
    for word in words[1:]:
        if width + 1 + len(word) <= LINE:
            lines[-1] += " " + word
            width += 1 + len(word)
        else:
            lines.append(" " + word)
            width = 1 + len(word)
    message.set_raw(name, "\r\n".join(lines))


def _set_words(message: EmailMessage, name: str, value: str | Address) -> None:
    """Add a header of words (a Subject; a From or To with its display name):
    through the policy when it fits on one line of 76 (or needs no
    encoded-words), else as whole encoded-words that keep their spaces.

    Folding a value with encoded-words, the email package leaves the space
    between two words outside the encoded-words at the fold, where receivers
    drop it (RFC 2047 section 6.2: space between encoded-words is not text):
    "Dịch vụ Bình An" reads "Dịch vụBình An" in Gmail and Outlook. The legacy
    `email.header.Header` puts the spaces inside the encoded-words, cuts only
    between characters and keeps lines to 76 (RFC 2047 section 2)."""
    folded = POLICY.header_factory(name, value).fold(policy=POLICY)
    if folded.find("=?") < 0 or (folded.count("\n") == 1 and len(folded) <= RFC2047_LINE + 2):
        message.set_raw(name, folded[len(name) + 2 :].removesuffix("\r\n"))
        return
    if not isinstance(value, Address):
        message.set_raw(name, _encoded_words(name, value))
        return
    words = _encoded_words(name, value.display_name)
    last = words.rsplit("\n", 1)[-1] if "\n" in words else f"{name}: {words}"
    fold = " " if len(last) + len(value.addr_spec) + 3 <= RFC2047_LINE else "\r\n "
    message.set_raw(name, f"{words}{fold}<{value.addr_spec}>")


RFC2047_LINE = 76


def _encoded_words(name: str, text: str) -> str:
    return Header(text, "utf-8", header_name=name).encode(linesep="\r\n", maxlinelen=RFC2047_LINE)


def _name_for_outlook(part: MIMEPart, content_type: str, name: str) -> None:
    """Also name a non-ASCII attachment in Content-Type, as encoded-words
    (`name="=?utf-8?b?...?="`), beside the RFC 2231 `filename*=` the email
    package writes in Content-Disposition. Outlook (and Exchange, and some
    webmail) do not read RFC 2231 names, the split ones of long names least of
    all, and show "ATT00001.bin" or "Untitled attachment"; encoded-words there
    are outside RFC 2047 (section 5) but are what Gmail and Outlook themselves
    send, and clients that read `filename*` take that first."""
    words = _encoded_words("Content-Type", name)  # base64 or Q: no '"' in it
    del part["Content-Type"]
    part.set_raw("Content-Type", f'{content_type};\r\n name="{words}"')


def _transfer_encoding(text: str) -> str:
    """Quoted-printable keeps ASCII readable; base64 is a third the size of
    quoted-printable for Vietnamese, where most letters are multi-byte."""
    return "quoted-printable" if text.isascii() else "base64"
