"""One e-mail, as raw bytes, into what the hub keeps of it. Pure; never raises.

Parsing uses the standard `email` package (policy `default`) and is
defensive everywhere real mail is broken: headers that do not parse fall
back to their raw text, charsets to `charsets.decode`, truncated MIME and
bad base64 keep whatever could be read (the parser's defects are listed),
NUL bytes are dropped. Input that is not an e-mail at all (0 bytes, no
header fields) gives a result with `error` set.

Attachments larger than the cap are measured from their encoded size and
never decoded, so a 50 MB attachment costs no extra 50 MB of memory.
"""

from __future__ import annotations

import email.header
import email.utils
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import default
from html import escape
from typing import Any

from hub.channels.email import charsets
from hub.channels.email.automated import automated_reason
from hub.channels.email.content import html_to_text, quote_start, sanitise_html
from hub.channels.email.dsn import DeliveryReport, delivery_report

DEFAULT_MAX_ATTACHMENT_BYTES = 26_214_400
MAX_DEPTH = 30  # nested multiparts / forwarded messages deeper than this are not opened
MAX_PARTS = 1000
MAX_REFERENCES = 100
MESSAGE_ID = re.compile(r"<[^<>\s]+>")
SURROGATES = re.compile(r"[\udc80-\udcff]")


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass
class Part:
    """An attachment or inline image. `data` is None when it is `too_large`."""

    name: str
    content_type: str
    size: int
    data: bytes | None
    inline: bool = False
    content_id: str | None = None
    too_large: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.content_type,
            "size": self.size,
            "inline": self.inline,
            "content_id": self.content_id,
            "too_large": self.too_large,
        }


@dataclass
class ParsedEmail:
    size: int = 0
    subject: str = ""
    sender: Mailbox | None = None
    reply_to: list[Mailbox] = field(default_factory=list)
    to: list[Mailbox] = field(default_factory=list)
    cc: list[Mailbox] = field(default_factory=list)
    date: datetime | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    text: str = ""
    html: str | None = None
    quoted_at: int | None = None
    attachments: list[Part] = field(default_factory=list)
    auto_submitted: str | None = None
    automated: str | None = None
    report: DeliveryReport | None = None
    defects: list[str] = field(default_factory=list)
    error: str | None = None
    # Dedupe material: raw From/Date/Subject, as the message carries them.
    fingerprint: str = ""

    def as_json(self) -> dict[str, Any]:
        """What `hub email parse` prints."""
        body: dict[str, Any] = {
            "size": self.size,
            "subject": self.subject,
            "from": self.sender.as_json() if self.sender else None,
            "reply_to": [m.as_json() for m in self.reply_to],
            "to": [m.as_json() for m in self.to],
            "cc": [m.as_json() for m in self.cc],
            "date": self.date.isoformat() if self.date else None,
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "text": self.text,
            "quoted_at": self.quoted_at,
            "html": self.html,
            "attachments": [a.as_json() for a in self.attachments],
            "auto_submitted": self.auto_submitted,
            "automated": self.automated is not None,
            "automated_reason": self.automated,
            "bounce": None,
            "defects": self.defects,
        }
        if self.report is not None:
            body["bounce"] = {
                "original_message_id": self.report.original_message_id,
                "recipients": [
                    {
                        "address": r.address,
                        "action": r.action,
                        "status": r.status,
                        "diagnostic": r.diagnostic,
                    }
                    for r in self.report.recipients
                ],
            }
        if self.error is not None:
            body["error"] = self.error
        return body


def parse(raw: bytes, *, max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES) -> ParsedEmail:
    """Everything the hub keeps of one e-mail. Never raises: what cannot be read
    is reported in `defects`, and input that is no e-mail at all in `error`."""
    result = ParsedEmail(size=len(raw))
    if not raw.strip():
        result.error = "empty message (0 bytes)" if not raw else "empty message (only blanks)"
        return result
    try:
        message = BytesParser(policy=default).parsebytes(raw)
    except Exception as exc:  # the parser itself gave up (it rarely does)
        result.error = f"cannot parse: {type(exc).__name__}: {exc}"
        return result
    if not message.keys():
        result.error = "no header fields: this is not an e-mail message"
        return result
    for step in (_read_headers, _read_body, _read_loops):
        try:
            step(message, result, max_attachment_bytes)
        except (Exception, RecursionError) as exc:  # keep what the other steps found
            result.defects.append(f"{step.__name__[1:]} failed: {type(exc).__name__}: {exc}")
    result.defects.extend(_defects(message))
    return result


# -- headers ---------------------------------------------------------------
def _read_headers(message: Message, result: ParsedEmail, _: int) -> None:
    result.subject = header(message, "Subject")
    senders = addresses(message, "From") or addresses(message, "Sender")
    result.sender = senders[0] if senders else None
    result.reply_to = addresses(message, "Reply-To")
    result.to = addresses(message, "To")
    result.cc = addresses(message, "Cc")
    result.date = _date(header(message, "Date"))
    ids = message_ids(header(message, "Message-ID"))
    result.message_id = ids[0] if ids else None
    replied = message_ids(header(message, "In-Reply-To"))
    result.in_reply_to = replied[0] if replied else None
    result.references = message_ids(header(message, "References"))[-MAX_REFERENCES:]
    result.auto_submitted = header(message, "Auto-Submitted") or None
    result.fingerprint = "\n".join(
        _raw_header(message, name) or "" for name in ("From", "Date", "Subject", "To")
    )


def header(message: Message, name: str) -> str:
    """A header's decoded text ("" if absent), whatever state it is in."""
    try:
        value = message.get(name)
    except Exception:  # the structured-header parser has bugs on hostile input
        value = _decode_words(_raw_header(message, name))
    if value is None:
        return ""
    return _text(str(value)).replace("\r", "").replace("\n", " ").strip()


def _raw_header(message: Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return str(value)
    return None


def _decode_words(raw: str | None) -> str | None:
    if raw is None:
        return None
    try:
        pieces = email.header.decode_header(raw)
    except Exception:
        return raw
    text = []
    for piece, charset in pieces:
        if isinstance(piece, bytes):
            text.append(charsets.decode(piece, charset))
        else:
            text.append(piece)
    return "".join(text)


def _text(value: str) -> str:
    """Header text with raw 8-bit bytes (kept as surrogates by the parser) decoded
    as UTF-8 or windows-1258, in NFC, without NUL."""
    if SURROGATES.search(value):
        value = charsets.decode(value.encode("utf-8", "surrogateescape"), None)
    return charsets.clean(value)


def addresses(message: Message, name: str) -> list[Mailbox]:
    """The mailboxes in an address header; unparsable entries are skipped."""
    found: list[Mailbox] = []
    try:
        value = message.get(name)
        for address in getattr(value, "addresses", ()) or ():
            spec = _text(address.addr_spec or "")
            if "@" in spec:
                found.append(Mailbox(_text(address.display_name or ""), spec))
    except Exception:
        found = []
    if found:
        return found
    raw = _decode_words(_raw_header(message, name))
    if not raw:
        return []
    for display, spec in email.utils.getaddresses([raw]):
        spec = _text(spec).strip()
        if "@" in spec and " " not in spec:
            found.append(Mailbox(_text(display).strip(), spec))
    return found


def message_ids(value: str) -> list[str]:
    """The `<...>` message ids in a header, in order; a bare id without brackets
    (some mailers write one) is bracketed."""
    found = MESSAGE_ID.findall(value)
    if not found and value.strip() and "@" in value and not re.search(r"\s", value.strip()):
        found = [f"<{value.strip().strip('<>')}>"]
    return list(dict.fromkeys(found))


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not 1970 <= moment.year <= 2200:
        return None
    return moment.astimezone(UTC)


# -- body ------------------------------------------------------------------
@dataclass
class _Body:
    texts: list[str] = field(default_factory=list)
    htmls: list[str] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    count: int = 0
    defects: list[str] = field(default_factory=list)


def _read_body(message: Message, result: ParsedEmail, cap: int) -> None:
    body = _Body()
    _walk(message, body, cap, depth=0, related=False)
    raw_html = "\n".join(body.htmls) if body.htmls else None
    if raw_html is not None:
        result.html = sanitise_html(raw_html)
    result.text = "\n\n".join(t.strip("\n") for t in body.texts if t.strip())
    if not result.text and raw_html is not None:
        result.text = html_to_text(result.html or "")
    result.text = result.text.replace("\r\n", "\n").replace("\r", "\n")
    result.quoted_at = quote_start(result.text)
    result.attachments = body.parts
    result.defects.extend(body.defects)


def _walk(part: Message, body: _Body, cap: int, *, depth: int, related: bool) -> None:
    body.count += 1
    if depth > MAX_DEPTH or body.count > MAX_PARTS:
        if "too deep" not in " ".join(body.defects):
            body.defects.append("MIME structure too deep or too many parts; the rest is skipped")
        return
    info = _PartInfo.of(part)
    kind = info.kind
    payload = part.get_payload()
    if kind == "message/rfc822" and isinstance(payload, list):
        if payload and isinstance(payload[0], Message):
            _forwarded(payload[0], body, cap, depth)
        return
    if part.is_multipart():
        children = (
            [c for c in payload if isinstance(c, Message)] if isinstance(payload, list) else []
        )
        if kind == "multipart/alternative":
            _alternative(children, body, cap, depth)
        else:
            for child in children:
                _walk(child, body, cap, depth=depth + 1, related=kind == "multipart/related")
        return
    disposition, filename = info.disposition, info.filename
    if kind in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        text = charsets.decode(_payload(part), info.charset)
        (body.htmls if kind == "text/html" else body.texts).append(text)
        return
    body.parts.append(_attachment(part, kind, filename, disposition, related, cap, len(body.parts)))


def _alternative(children: list[Message], body: _Body, cap: int, depth: int) -> None:
    """Each child renders the same content: take the plain text from the first
    that has some, the HTML from the last that has some, attachments from all."""
    rendered = []
    for child in children:
        inner = _Body(count=body.count)
        _walk(child, inner, cap, depth=depth + 1, related=False)
        body.count = inner.count
        body.defects.extend(inner.defects)
        rendered.append(inner)
    text = next((r.texts for r in rendered if r.texts), [])
    html = next((r.htmls for r in reversed(rendered) if r.htmls), [])
    body.texts.extend(text)
    body.htmls.extend(html)
    for inner in rendered:
        body.parts.extend(inner.parts)


def _forwarded(inner_message: Message, body: _Body, cap: int, depth: int) -> None:
    """A forwarded message: its text joins the body under a header block, its
    attachments join ours, and it is kept whole as an .eml attachment too."""
    inner = _Body(count=body.count)
    _walk(inner_message, inner, cap, depth=depth + 1, related=False)
    body.count = inner.count
    body.defects.extend(inner.defects)
    lines = ["---------- Forwarded message ----------"]
    for name in ("From", "Date", "Subject", "To"):
        value = header(inner_message, name)
        if value:
            lines.append(f"{name}: {value}")
    block = "\n".join(lines)
    inner_text = "\n\n".join(inner.texts) or (
        html_to_text(sanitise_html("\n".join(inner.htmls))) if inner.htmls else ""
    )
    body.texts.append(f"{block}\n\n{inner_text}")
    if body.htmls:
        inner_html = "\n".join(inner.htmls) or f"<pre>{escape(inner_text)}</pre>"
        body.htmls.append(f"<hr><p>{escape(block).replace(chr(10), '<br>')}</p>{inner_html}")
    body.parts.extend(inner.parts)
    try:
        data = inner_message.as_bytes(policy=default)
    except Exception:  # a message too broken to serialise again stays in the raw MIME
        return
    name = (header(inner_message, "Subject") or "forwarded message")[:100] + ".eml"
    body.parts.append(_sized(data, name, "message/rfc822", False, None, cap))


@dataclass(frozen=True)
class _PartInfo:
    """What a part's Content-Type and Content-Disposition say, each parsed once
    (the `email` package parses a header again on every access)."""

    kind: str
    charset: str | None
    disposition: str | None
    filename: str | None

    @classmethod
    def of(cls, part: Message) -> _PartInfo:
        content_type = _structured(part, "Content-Type")
        kind = str(getattr(content_type, "content_type", "") or "").lower()
        if "/" not in kind:  # missing or invalid: what RFC 2045 says to assume
            kind = part.get_default_type()
        type_params = getattr(content_type, "params", {}) or {}
        disposition_header = _structured(part, "Content-Disposition")
        disposition = getattr(disposition_header, "content_disposition", None)
        disposition_params = getattr(disposition_header, "params", {}) or {}
        name = disposition_params.get("filename") or type_params.get("name")
        filename = None
        if name:
            cleaned = _text(str(name)).replace("/", "_").replace("\\", "_").strip()[:255]
            filename = cleaned or None
        return cls(
            kind=kind,
            charset=type_params.get("charset"),
            disposition=str(disposition).lower() if disposition else None,
            filename=filename,
        )


def _structured(part: Message, name: str) -> Any:
    try:
        return part.get(name)
    except Exception:  # a header the parser chokes on counts as absent
        return None


def _content_type(part: Message) -> str:
    return _PartInfo.of(part).kind


def _payload(part: Message) -> bytes:
    """The part's bytes after its transfer encoding (what could be decoded of a
    broken one)."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _encoded_size(part: Message) -> int:
    """The decoded size, estimated from the encoded payload without decoding it."""
    raw = part.get_payload()
    if not isinstance(raw, str):
        return 0
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        # Counting is much cheaper than a regex over tens of megabytes.
        blanks = raw.count("\n") + raw.count("\r") + raw.count(" ") + raw.count("\t")
        return (len(raw) - blanks) * 3 // 4 - raw.count("=")
    return len(raw)


def _attachment(
    part: Message,
    kind: str,
    filename: str | None,
    disposition: str | None,
    related: bool,
    cap: int,
    index: int,
) -> Part:
    content_id = None
    try:
        found = MESSAGE_ID.search(str(part.get("Content-ID", "") or ""))
        content_id = found.group(0)[1:-1] if found else None
    except Exception:
        content_id = None
    inline = disposition == "inline" or (related and content_id is not None)
    extension = mimetypes.guess_extension(kind) or (".txt" if kind.startswith("text/") else ".bin")
    name = filename or f"{'image' if kind.startswith('image/') else 'attachment'}-{index + 1}"
    if not filename:
        name += extension
    estimate = _encoded_size(part)
    if estimate > cap:
        return Part(name, kind, estimate, None, inline, content_id, too_large=True)
    return _sized(_payload(part), name, kind, inline, content_id, cap)


def _sized(
    data: bytes, name: str, kind: str, inline: bool, content_id: str | None, cap: int
) -> Part:
    if len(data) > cap:
        return Part(name, kind, len(data), None, inline, content_id, too_large=True)
    return Part(name, kind, len(data), data, inline, content_id)


# -- loops and reports -------------------------------------------------------
def _read_loops(message: Message, result: ParsedEmail, _: int) -> None:
    result.report = delivery_report(message)
    sender = result.sender.address if result.sender else None
    if sender and any(m.address.lower() != sender.lower() for m in result.reply_to):
        # A no-reply address that names someone to answer is a website form or
        # a service writing for a person: its sender's name says nothing.
        sender = None
    result.automated = automated_reason(
        lambda name: header(message, name), sender, _content_type(message)
    )


def _defects(message: Message) -> list[str]:
    found: list[str] = []
    try:
        for part in message.walk():
            for defect in getattr(part, "defects", ()):
                found.append(f"{type(defect).__name__}: {defect}".rstrip(": "))
    except Exception:
        pass
    return list(dict.fromkeys(found))[:50]
