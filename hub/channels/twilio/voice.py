"""Twilio Voice in hub's terms: the TwiML a caller hears, and each voice
callback as a `CallUpdate` for the call's one timeline message. Pure.

The call flow an account's options configure:

    incoming call ──► greeting ──► open and agents to ring? ──► <Dial> their phones
                                        │ no                         │ nobody answered
                                        ▼                            ▼
                                  closed message ──────────► voicemail <Record>

Callbacks the TwiML asks for (each URL carries the caller's number, signed by
Twilio with the rest of the URL, so later callbacks know whose call it is):
`/voice/agent?agent=<id>` when an agent's phone answers, `/voice/dialed` when
the <Dial> ends, `/voice/recording` and `/voice/transcription` for voicemail.
The number's own status callback (`/voice/status`) reports the end of the call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from twilio.twiml.voice_response import Dial, VoiceResponse

from hub.channels.twilio.messaging import CHANNEL, field
from hub.channels.twilio.options import VoiceOptions
from hub.errors import InvalidRequest
from hub.inbox.addresses import phone_identity
from hub.inbox.calls import AgentRef, CallUpdate, EndReason
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Agent, Identity

# <Dial> outcomes (DialCallStatus) in which nobody took the call, in words.
NOT_TAKEN = {
    "no-answer": "no answer",
    "busy": "busy",
    "failed": "agents could not be reached",
    "canceled": "caller hung up",
}
# The parent call's final statuses (CallStatus) and how hub names the end.
ENDED: dict[str, EndReason] = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "no-answer",
    "failed": "failed",
    "canceled": "canceled",
}


@dataclass(frozen=True)
class VoiceUrls:
    """The account's voice callback URLs, as Twilio must call them (public)."""

    base: str  # https://hub.example.com/webhooks/twilio/<account>/voice

    def of(self, name: str, caller: str, **query: str) -> str:
        return f"{self.base}/{name}?{urlencode({'caller': caller, **query})}"


def caller_identity(raw: str, default_region: str, call_sid: str) -> Identity:
    """The caller's phone identity; a withheld or malformed caller id ("anonymous",
    "+266696687") becomes an identity of this call alone, so the call is still
    recorded without merging strangers into one contact."""
    try:
        return phone_identity(raw, default_region)
    except InvalidRequest:
        return Identity(channel="anonymous", address=call_sid)


def call_event(update: CallUpdate, caller: Identity, *, account_id: str) -> InboundMessage:
    return InboundMessage(
        account_id=account_id,
        channel=CHANNEL,
        external_id=update.call_id,
        sender=InboundSender(identities=[caller]),
        direction="event",
        call=update,
    )


def incoming_call(form: Mapping[str, str], at: datetime) -> CallUpdate:
    """The incoming-call webhook (or the number's status callback while ringing)."""
    return CallUpdate(
        call_id=field(form, "CallSid"),
        direction="inbound",
        at=at,
        line=form.get("To", ""),
    )


def call_status(form: Mapping[str, str], at: datetime) -> CallUpdate:
    """The number's status callback: the end of the call, with its length."""
    status = field(form, "CallStatus").lower()
    update = incoming_call(form, at)
    if status in ENDED:
        duration = _seconds(form, "CallDuration")
        update = update.model_copy(
            update={"ended": True, "end_reason": ENDED[status], "duration_seconds": duration}
        )
        if status != "completed":
            update = update.model_copy(
                update={"missed": True, "miss_reason": NOT_TAKEN.get(status, status)}
            )
    return update


def agent_answered(form: Mapping[str, str], at: datetime, agent_id: str) -> CallUpdate | None:
    """An agent's phone leg reports in; news only when it answered."""
    if field(form, "CallStatus").lower() not in ("in-progress", "answered"):
        return None
    parent = field(form, "ParentCallSid")
    return CallUpdate(
        call_id=parent,
        at=at,
        answered_by=AgentRef(agent_id=agent_id, phone=form.get("To") or None),
    )


def dial_ended(form: Mapping[str, str], at: datetime) -> CallUpdate:
    """The <Dial> ended: talked (its length is the talk time) or not taken."""
    status = field(form, "DialCallStatus").lower()
    call_id = field(form, "CallSid")
    if status in ("completed", "answered"):
        # The agent's own callback names who answered; this only knows someone did.
        return CallUpdate(
            call_id=call_id,
            at=at,
            answered_by=AgentRef(),
            ended=True,
            end_reason="completed",
            duration_seconds=_seconds(form, "DialCallDuration"),
        )
    return CallUpdate(
        call_id=call_id, at=at, missed=True, miss_reason=NOT_TAKEN.get(status, status)
    )


def recording_ready(form: Mapping[str, str], at: datetime) -> CallUpdate | None:
    """A voicemail recording is ready (RecordingStatus=completed)."""
    if form.get("RecordingStatus", "completed").lower() != "completed":
        return None
    url = field(form, "RecordingUrl")
    if not url.startswith(("https://", "http://")):
        raise InvalidRequest("RecordingUrl: not an http(s) URL")
    return CallUpdate(
        call_id=field(form, "CallSid"),
        at=at,
        missed=True,
        recording_url=url if url.endswith(".mp3") else url + ".mp3",
        recording_seconds=_seconds(form, "RecordingDuration"),
    )


def transcription_ready(form: Mapping[str, str], at: datetime) -> CallUpdate | None:
    if form.get("TranscriptionStatus", "").lower() != "completed":
        return None
    text = form.get("TranscriptionText", "").strip()
    if not text:
        return None
    return CallUpdate(call_id=field(form, "CallSid"), at=at, missed=True, transcription=text[:4000])


def _seconds(form: Mapping[str, str], name: str) -> int | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidRequest(f"{name}: not a whole number of seconds")
    return int(raw)


# -- TwiML -------------------------------------------------------------------


def answer_call(
    options: VoiceOptions,
    urls: VoiceUrls,
    caller: str,
    *,
    open_now: bool,
    agents: Sequence[Agent],
) -> str:
    """Greeting, then ring the agents' phones at once (the first to answer takes
    it); closed or nobody to ring: straight to voicemail."""
    response = VoiceResponse()
    if not open_now:
        return voicemail(options, urls, caller, prompt=options.closed_message)
    reachable = [a for a in agents if a.phone]
    if not reachable:
        return voicemail(options, urls, caller, prompt=options.voicemail_prompt)
    response.say(options.greeting, language=options.language)
    dial = Dial(
        timeout=options.ring_seconds,
        action=urls.of("dialed", caller),
        method="POST",
        answer_on_bridge=True,
    )
    for agent in reachable:
        dial.number(
            agent.phone,
            status_callback=urls.of("agent", caller, agent=agent.id),
            status_callback_event="answered",
            status_callback_method="POST",
        )
    response.append(dial)
    return str(response)


def voicemail(options: VoiceOptions, urls: VoiceUrls, caller: str, *, prompt: str) -> str:
    """Ask for a message and record it (with transcription when enabled)."""
    response = VoiceResponse()
    response.say(prompt, language=options.language)
    record_options: dict[str, object] = {
        "action": urls.of("voicemail-done", caller),
        "method": "POST",
        "max_length": options.voicemail_max_seconds,
        "play_beep": True,
        "recording_status_callback": urls.of("recording", caller),
        "recording_status_callback_method": "POST",
    }
    if options.transcribe:
        record_options["transcribe"] = True
        record_options["transcribe_callback"] = urls.of("transcription", caller)
    response.record(**record_options)
    return str(response)


def after_dial(options: VoiceOptions, urls: VoiceUrls, caller: str, *, taken: bool) -> str:
    """After the <Dial>: hang up if someone talked, else voicemail."""
    if taken:
        response = VoiceResponse()
        response.hangup()
        return str(response)
    return voicemail(options, urls, caller, prompt=options.voicemail_prompt)


def goodbye(options: VoiceOptions) -> str:
    response = VoiceResponse()
    response.say(options.goodbye, language=options.language)
    response.hangup()
    return str(response)


def empty() -> str:
    """A TwiML answer that does nothing (messages need no reply)."""
    return str(VoiceResponse())
