"""The Twilio channel: one Twilio number (or Messaging Service) as one inbox.

Webhooks, under `/webhooks/twilio/<account>` (configure the first two on the
number in Twilio's console, with the status callback for calls):

    POST /sms              inbound SMS/MMS          POST /voice          incoming call
    POST /sms/status       message status callback  POST /voice/status   call status callback
    POST /voice/{dialed,agent,recording,transcription,voicemail-done}   (set by hub's TwiML)

Every webhook is verified with `X-Twilio-Signature` on the public URL before
anything is read into the inbox; a bad one is 403 and nothing is stored. Every
webhook is idempotent: a replayed inbound message is a duplicate, a replayed
status never moves a message back, a replayed call callback adds nothing.

Outbound SMS are one form POST to the Messages API (`rest.MessagesApi`), on
hub's shared aiohttp session, with a status callback URL naming hub's message
id; listing sent messages (checking a send cut off by a crash) goes through the
`twilio` library's async client.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from multidict import MultiDict, MultiDictProxy
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from hub.channels.base import Channel, OutboundMessage, Receipt
from hub.channels.twilio import messaging, voice
from hub.channels.twilio.options import TwilioOptions
from hub.channels.twilio.rest import MessagesApi
from hub.channels.twilio.signature import public_request_url, verify
from hub.errors import (
    InvalidRequest,
    NotFound,
    ProviderRejected,
    QueueUnavailable,
    SignatureInvalid,
    StoreUnavailable,
)
from hub.inbox.addresses import normalise_phone
from hub.inbox.calls import CallUpdate
from hub.inbox.model import Agent
from hub.routing.hours import is_open

log = logging.getLogger(__name__)

TWIML = "text/xml"


class TwilioChannel(Channel):
    name = "twilio"
    Options = TwilioOptions
    options: TwilioOptions
    consent_key = "sms"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client: Client | None = None
        self._messages: MessagesApi | None = None

    # -- plumbing ----------------------------------------------------------
    @property
    def base_path(self) -> str:
        return f"/webhooks/twilio/{self.account.id}"

    @property
    def public_base(self) -> str:
        return self.context.public_url.rstrip("/") + self.base_path

    def client(self) -> Client:
        """The Twilio REST client, on hub's shared aiohttp session (so no session
        of its own to leak), pointed at `api_base_url`."""
        if self._client is None:
            http = AsyncTwilioHttpClient(pool_connections=False)
            http.session = self.context.http
            client = Client(self.options.account_sid, self.options.auth_token, http_client=http)
            client.api.base_url = str(self.options.api_base_url).rstrip("/")
            self._client = client
        return self._client

    def messages(self) -> MessagesApi:
        if self._messages is None:
            self._messages = MessagesApi(
                self.context.http,
                str(self.options.api_base_url),
                self.options.account_sid,
                self.options.auth_token,
            )
        return self._messages

    def routes(self) -> list[web.RouteDef]:
        base = self.base_path
        routes = [
            web.post(f"{base}/sms", self.receive_sms),
            web.post(f"{base}/sms/status", self.receive_sms_status),
        ]
        if self.options.voice.enabled:
            routes += [
                web.post(f"{base}/voice", self.receive_call),
                web.post(f"{base}/voice/status", self.receive_call_status),
                web.post(f"{base}/voice/dialed", self.receive_dial_result),
                web.post(f"{base}/voice/agent", self.receive_agent_answer),
                web.post(f"{base}/voice/recording", self.receive_recording),
                web.post(f"{base}/voice/transcription", self.receive_transcription),
                web.post(f"{base}/voice/voicemail-done", self.receive_voicemail_done),
            ]
        return routes

    async def verified_form(self, request: web.Request) -> MultiDictProxy[str]:
        """The webhook's form fields, once its signature and account are checked."""
        form = await request.post()
        # Twilio posts plain fields; anything else (a file part) is not Twilio's.
        fields = MultiDictProxy(MultiDict((k, v) for k, v in form.items() if isinstance(v, str)))
        url = public_request_url(self.context.public_url, request.path_qs)
        verify(self.options.auth_token, url, fields, request.headers)
        sid = fields.get("AccountSid")
        if sid is not None and sid != self.options.account_sid:
            raise SignatureInvalid(f"the webhook is for Twilio account {sid}, not this account's")
        return fields

    def check_line(self, form: MultiDictProxy[str]) -> None:
        """Refuse a message or call to a number this account does not own (a
        webhook pointed at the wrong account)."""
        to = form.get("To", "")
        service = form.get("MessagingServiceSid")
        if service and self.options.messaging_service_sid:
            if service != self.options.messaging_service_sid:
                raise InvalidRequest(
                    f"MessagingServiceSid {service} is not account"
                    f" {self.account.id!r}'s Messaging Service"
                )
            return
        if self.options.from_number and to and _same_number(to, self.options.from_number):
            return
        if self.options.from_number:
            raise InvalidRequest(
                f"To: {to or '(none)'} is not account {self.account.id!r}'s number"
                f" {self.options.from_number}"
            )

    # -- SMS in ------------------------------------------------------------
    async def receive_sms(self, request: web.Request) -> web.Response:
        """Verify, normalise and ingest an inbound SMS/MMS; acknowledge once stored."""
        form = await self.verified_form(request)
        self.check_line(form)
        inbound = messaging.normalise_sms(
            form, account_id=self.account.id, default_region=self.context.default_region
        )
        outcome = await self.context.ingest(inbound)
        log.info(
            "twilio message received",
            extra={
                "event": "twilio.sms",
                "account_id": self.account.id,
                "message_id": outcome.message_id,
                "duplicate": outcome.duplicate,
                "consent": inbound.consent.status if inbound.consent else None,
            },
        )
        return web.Response(text=voice.empty(), content_type=TWIML)

    async def receive_sms_status(self, request: web.Request) -> web.Response:
        """A message status callback: move hub's message forward (never back)."""
        form = await self.verified_form(request)
        report = messaging.parse_status(form)
        message_id = request.query.get("message", "")
        if not message_id:
            raise InvalidRequest("the status callback URL names no message")
        meta: dict[str, Any] = {"twilio_status": report.twilio_status}
        if report.error_code is not None:
            meta["error_code"] = report.error_code
        moved = False
        if report.status is not None:
            moved = await self.context.reports.record_delivery(
                message_id,
                report.status,
                error=report.error,
                external_id=report.message_sid,
                meta=meta,
            )
        if not moved and await self.context.reports.delivery_status(message_id) is None:
            raise NotFound(f"message {message_id} is not one this hub sent")
        log.info(
            "twilio status callback",
            extra={
                "event": "twilio.status",
                "message_id": message_id,
                "status": report.twilio_status,
                "moved": moved,
                "error_code": report.error_code,
            },
        )
        return web.Response(status=204)

    # -- SMS out -----------------------------------------------------------
    def outbound_meta(self, message: OutboundMessage) -> dict[str, Any]:
        return messaging.prepare_text(message.text, strip=self.options.strip_diacritics).meta

    async def send(self, message: OutboundMessage) -> Receipt:
        prepared = messaging.prepare_text(message.text, strip=self.options.strip_diacritics)
        fields = [
            ("To", message.to),
            ("Body", prepared.body),
            ("StatusCallback", f"{self.public_base}/sms/status?message={message.message_id}"),
        ]
        if self.options.messaging_service_sid:
            fields.append(("MessagingServiceSid", self.options.messaging_service_sid))
        if self.options.from_number:
            fields.append(("From", self.options.from_number))
        media = [a.url for a in message.attachments if a.url]
        fields += [("MediaUrl", url) for url in media[: messaging.MAX_MEDIA]]
        created = await self.messages().create(fields)
        return Receipt(
            external_id=created.sid,
            status="sent",
            meta={"twilio_status": created.status, "twilio_segments": created.num_segments},
        )

    async def find_sent(self, to: str, text: str, since: datetime) -> str | None:
        """The sid of a message this account sent to `to` with exactly this text
        (as `send` prepares it) since `since`, or None: how a send cut off by a
        crash is checked before it is tried again. Twilio's Messages API keeps
        every message, and its list filters by recipient, sender and date.
        Raises ProviderRejected(retryable=True) when Twilio cannot be asked."""
        body = messaging.prepare_text(text, strip=self.options.strip_diacritics).body
        params: dict[str, Any] = {"to": to, "date_sent_after": since, "limit": 50}
        if self.options.from_number:
            params["from_"] = self.options.from_number
        try:
            found = await self.client().messages.list_async(**params)
        except (TwilioException, TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderRejected(
                f"cannot list Twilio messages: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        for message in found:
            if message.body == body and message.direction != "inbound":
                return str(message.sid)
        return None

    # -- voice -------------------------------------------------------------
    def urls(self) -> voice.VoiceUrls:
        return voice.VoiceUrls(f"{self.public_base}/voice")

    async def _record(self, update: CallUpdate | None, caller: str, call_sid: str) -> None:
        if update is None:
            return
        identity = voice.caller_identity(caller, self.context.default_region, call_sid)
        await self.context.ingest(voice.call_event(update, identity, account_id=self.account.id))

    def _caller(self, request: web.Request, form: MultiDictProxy[str]) -> str:
        # Our own callback URLs carry the caller; the number's webhooks have From.
        return request.query.get("caller") or form.get("From") or ""

    async def receive_call(self, request: web.Request) -> web.Response:
        """An incoming call: record it as ringing, then answer with TwiML.

        A caller must never hear an error: with the store down the call is still
        answered (straight to voicemail, since nobody can be looked up), and the
        record is made by the callbacks that follow, which carry the caller too.
        """
        form = await self.verified_form(request)
        self.check_line(form)
        now = self.context.clock.now()
        caller = form.get("From", "")
        update = voice.incoming_call(form, now)
        stored = await self._record_if_possible(update, caller)
        hours = self.options.voice.hours
        open_now = hours is None or is_open(now, hours)
        agents: list[Agent] = []
        if open_now and stored:
            identity = voice.caller_identity(caller, self.context.default_region, update.call_id)
            try:
                agents = await self.context.agents.call_targets(self.account.id, identity)
            except StoreUnavailable:
                agents = []
        twiml = voice.answer_call(
            self.options.voice, self.urls(), caller, open_now=open_now, agents=agents
        )
        if not open_now or not any(a.phone for a in agents):
            reason = "after hours" if not open_now else "no agent available"
            await self._record_if_possible(
                update.model_copy(update={"missed": True, "miss_reason": reason}), caller
            )
        log.info(
            "twilio call answered",
            extra={
                "event": "twilio.call",
                "account_id": self.account.id,
                "call_id": update.call_id,
                "open": open_now,
                "agents": [a.id for a in agents],
                "recorded": stored,
            },
        )
        return web.Response(text=twiml, content_type=TWIML)

    async def _record_if_possible(self, update: CallUpdate, caller: str) -> bool:
        try:
            await self._record(update, caller, update.call_id)
        except StoreUnavailable as exc:
            log.warning(
                "call not recorded yet; its next callback will",
                extra={
                    "event": "twilio.call_unrecorded",
                    "call_id": update.call_id,
                    "error": exc.message,
                },
            )
            return False
        except QueueUnavailable:
            pass  # stored; only the announcement to other processes failed
        return True

    async def receive_call_status(self, request: web.Request) -> web.Response:
        form = await self.verified_form(request)
        update = voice.call_status(form, self.context.clock.now())
        await self._record(update, self._caller(request, form), update.call_id)
        return web.Response(text=voice.empty(), content_type=TWIML)

    async def receive_dial_result(self, request: web.Request) -> web.Response:
        form = await self.verified_form(request)
        update = voice.dial_ended(form, self.context.clock.now())
        caller = self._caller(request, form)
        await self._record(update, caller, update.call_id)
        twiml = voice.after_dial(self.options.voice, self.urls(), caller, taken=not update.missed)
        return web.Response(text=twiml, content_type=TWIML)

    async def receive_agent_answer(self, request: web.Request) -> web.Response:
        form = await self.verified_form(request)
        agent_id = request.query.get("agent", "")
        if not agent_id:
            raise InvalidRequest("the agent callback URL names no agent")
        update = voice.agent_answered(form, self.context.clock.now(), agent_id)
        await self._record(update, request.query.get("caller", ""), form.get("ParentCallSid", ""))
        return web.Response(text=voice.empty(), content_type=TWIML)

    async def receive_recording(self, request: web.Request) -> web.Response:
        form = await self.verified_form(request)
        update = voice.recording_ready(form, self.context.clock.now())
        await self._record(update, self._caller(request, form), form.get("CallSid", ""))
        return web.Response(status=204)

    async def receive_transcription(self, request: web.Request) -> web.Response:
        form = await self.verified_form(request)
        update = voice.transcription_ready(form, self.context.clock.now())
        await self._record(update, self._caller(request, form), form.get("CallSid", ""))
        return web.Response(status=204)

    async def receive_voicemail_done(self, request: web.Request) -> web.Response:
        await self.verified_form(request)
        return web.Response(text=voice.goodbye(self.options.voice), content_type=TWIML)


def _same_number(a: str, b: str) -> bool:
    try:
        return normalise_phone(a, "US") == normalise_phone(b, "US")
    except InvalidRequest:
        return a.strip() == b.strip()
