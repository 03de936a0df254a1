"""Twilio Messaging in hub's terms: inbound SMS/MMS webhooks, status callbacks,
and what a refused send means. Pure functions of Twilio's form fields.

Field names are Twilio's (https://www.twilio.com/docs/messaging/guides/webhook-request):
`MessageSid`, `From`, `To`, `Body`, `NumMedia`, `MediaUrl{n}`, `MediaContentType{n}`;
status callbacks add `MessageStatus` and `ErrorCode`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hub.channels.telephony.diacritics import strip_diacritics
from hub.channels.telephony.keywords import ConsentKeyword, consent_keyword
from hub.channels.telephony.segments import measure
from hub.errors import InvalidRequest
from hub.inbox.addresses import phone_identity
from hub.inbox.inbound import ConsentChange, InboundMessage, InboundSender
from hub.inbox.model import Attachment, DeliveryStatus

CHANNEL = "twilio"
MAX_MEDIA = 10  # Twilio delivers at most ten media per MMS
MAX_BODY = 1600  # Twilio's own limit on an SMS body

# Twilio's message statuses, as hub delivery statuses; None: nothing to record
# (still on Twilio's side of "sent").
STATUSES: dict[str, DeliveryStatus | None] = {
    "accepted": None,
    "scheduled": None,
    "queued": None,
    "sending": None,
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "undelivered": "failed",
    "failed": "failed",
    "canceled": "failed",
}

# The error codes an agent most often meets, in words.
ERRORS: dict[int, str] = {
    20003: "authentication failed: check account_sid and the auth token",
    20429: "too many requests",
    21211: "the 'To' number is not a valid phone number",
    21408: "sending to this region is not enabled on the Twilio account",
    21606: "the 'From' number cannot send SMS",
    21610: "the recipient has unsubscribed (replied STOP) from this number",
    21612: "Twilio cannot route a message to this number",
    21614: "the 'To' number is not a mobile number",
    30001: "queue overflow",
    30002: "the Twilio account is suspended",
    30003: "unreachable destination handset",
    30004: "message blocked",
    30005: "unknown destination handset",
    30006: "landline or unreachable carrier",
    30007: "filtered by the carrier",
    30008: "unknown error",
}

# Refusals that will never succeed however often the send is tried.
PERMANENT = frozenset({20003, 21211, 21408, 21606, 21610, 21612, 21614})


def field(form: Mapping[str, str], name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise InvalidRequest(f"{name}: missing")
    return value


def normalise_sms(
    form: Mapping[str, str], *, account_id: str, default_region: str
) -> InboundMessage:
    """An inbound SMS/MMS webhook as an InboundMessage: the sender's E.164 phone
    identity, the body, MMS media as attachments (Twilio's media URLs), and a
    consent change when the whole body is an opt-out or opt-in keyword.
    Raises InvalidRequest naming the field that is missing or wrong."""
    sid = field(form, "MessageSid")
    sender = field(form, "From")
    try:
        identity = phone_identity(sender, default_region)
    except InvalidRequest as exc:
        raise InvalidRequest(f"From: {exc.message}") from exc
    body = form.get("Body", "")
    if len(body) > MAX_BODY:
        raise InvalidRequest(f"Body: longer than {MAX_BODY} characters")
    raw_count = form.get("NumMedia", "0").strip() or "0"
    # isdecimal() alone admits other scripts' digits ("²", "٣"), which int() refuses.
    if not (raw_count.isascii() and raw_count.isdecimal()) or int(raw_count) > MAX_MEDIA:
        raise InvalidRequest(f"NumMedia: must be a whole number from 0 to {MAX_MEDIA}")
    attachments = []
    for n in range(int(raw_count)):
        url = field(form, f"MediaUrl{n}")
        if not url.startswith(("https://", "http://")):
            raise InvalidRequest(f"MediaUrl{n}: not an http(s) URL")
        content_type = form.get(f"MediaContentType{n}", "").strip() or "application/octet-stream"
        attachments.append(Attachment(name=f"media-{n}", content_type=content_type, url=url))
    keyword = consent_keyword(body)
    consent = None
    if keyword is not None:
        consent = ConsentChange(key="sms", status=keyword[0], keyword=keyword[1])
    # With Twilio's Advanced Opt-Out, Twilio itself says which keyword it matched
    # (the account may define its own); that word is final.
    opt_out_type = form.get("OptOutType", "").strip().upper()
    if opt_out_type in ("STOP", "START"):
        status: ConsentKeyword = "opted_out" if opt_out_type == "STOP" else "opted_in"
        consent = ConsentChange(key="sms", status=status, keyword=body.strip().upper()[:40])
    return InboundMessage(
        account_id=account_id,
        channel=CHANNEL,
        external_id=sid,
        sender=InboundSender(identities=[identity]),
        text=body,
        attachments=attachments,
        meta={"kind": "mms" if attachments else "sms", "to": form.get("To", "")},
        consent=consent,
    )


@dataclass(frozen=True)
class StatusReport:
    """A status callback in hub's terms."""

    message_sid: str
    twilio_status: str
    status: DeliveryStatus | None
    error_code: int | None
    error: str | None


def describe_error(code: int | None, fallback: str = "") -> str:
    if code is None:
        return fallback or "no error code"
    words = ERRORS.get(code) or fallback or "see https://www.twilio.com/docs/errors/" + str(code)
    return f"Twilio error {code}: {words}"


def parse_status(form: Mapping[str, str]) -> StatusReport:
    """A message status callback. Raises InvalidRequest for a status Twilio does
    not send or a malformed error code."""
    sid = field(form, "MessageSid")
    twilio_status = field(form, "MessageStatus").lower()
    if twilio_status not in STATUSES:
        raise InvalidRequest(f"MessageStatus: unknown status {twilio_status!r}")
    raw_code = form.get("ErrorCode", "").strip()
    if raw_code and not (raw_code.isascii() and raw_code.isdigit()):
        raise InvalidRequest("ErrorCode: not a number")
    code = int(raw_code) if raw_code else None
    status = STATUSES[twilio_status]
    error = None
    if status == "failed":
        error = f"{twilio_status}: {describe_error(code, form.get('ErrorMessage', ''))}"
    return StatusReport(sid, twilio_status, status, code, error)


@dataclass(frozen=True)
class PreparedText:
    """The body that goes to Twilio, and what it costs."""

    body: str
    meta: dict[str, object]


def prepare_text(text: str, *, strip: bool) -> PreparedText:
    """The text as sent (without diacritics when the account asks for it) and its
    SMS size: `{"sms": {"encoding", "segments", "units", "characters",
    "diacritics_stripped"}}`."""
    body = strip_diacritics(text) if strip else text
    size = measure(body).as_meta()
    size["diacritics_stripped"] = body != text
    return PreparedText(body, {"sms": size})


def refusal(status: int, code: int | None, message: str) -> tuple[str, bool]:
    """(reason, retryable) for an error answer of the Messages API: throttling and
    Twilio's own outages are retried; a bad number or an unsubscribed recipient
    fails at once."""
    retryable = status == 429 or status >= 500
    if code in PERMANENT:
        retryable = False
    reason = describe_error(code, message) if code not in (None, status) else message
    return f"Twilio refused the message (HTTP {status}): {reason}", retryable
