"""The inbox: where every inbound message becomes part of a contact's history,
and where agents' replies, notes and decisions are recorded.

It knows the store and the event bus, and nothing about providers: channels
hand it `InboundMessage`s, and outbound messages leave through a
`DeliveryQueue` that the worker drains.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, get_args

from hub.clock import Clock
from hub.errors import (
    Conflict,
    DuplicateMessage,
    IdentityTaken,
    InvalidRequest,
    NotFound,
    QueueUnavailable,
    ReplyWindowClosed,
)
from hub.events import Event, EventBus
from hub.inbox.calls import (
    CALLBACK_LABEL,
    AgentRef,
    CallAgent,
    CallRecord,
    describe,
    merge,
)
from hub.inbox.inbound import (
    ConsentChange,
    DeliveryReport,
    InboundMessage,
    IngestOutcome,
    ReplyWindow,
)
from hub.inbox.model import (
    OPEN_STATUSES,
    Agent,
    Attachment,
    Consent,
    Contact,
    Conversation,
    DeliveryStatus,
    Identity,
    Message,
    Sender,
)
from hub.inbox.store import ConversationFilter, Store
from hub.inbox.threading import answering, normalise_subject, reply_lookup_keys

log = logging.getLogger(__name__)


class DeliveryQueue(Protocol):
    async def enqueue_delivery(self, message_id: str) -> bool:
        """Ask a worker to deliver the message; safe to call twice for one id."""


class ReplyWindows(Protocol):
    def reply_window(self, account_id: str) -> ReplyWindow | None:
        """The account's reply window; None when replies are always allowed."""


@dataclass(frozen=True)
class InboxPolicy:
    reopen_window: timedelta = timedelta(hours=72)
    # "reply_keys" threading: how recent a conversation with the same subject
    # must be for a message without known reply keys to join it.
    subject_window: timedelta = timedelta(days=14)
    # Account id → team id: a new conversation starts in its account's team.
    account_teams: Mapping[str, str] = field(default_factory=dict)
    # Account id → the accounts whose messages may go out through it (a web chat
    # continued by e-mail): answers and bounces reaching it look for the message
    # they name among those accounts' messages too.
    routed_through: Mapping[str, Sequence[str]] = field(default_factory=dict)


def conversation_event(kind: str, conversation: Conversation, **extra: Any) -> Event:
    return Event(
        f"conversation.{kind}",
        {"conversation": conversation.model_dump(mode="json"), **extra},
    )


def message_event(kind: str, message: Message) -> Event:
    return Event(f"message.{kind}", {"message": message.model_dump(mode="json")})


class InboxService:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        clock: Clock,
        deliveries: DeliveryQueue,
        policy: InboxPolicy | None = None,
        reply_windows: ReplyWindows | None = None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.deliveries = deliveries
        self.policy = policy or InboxPolicy()
        self.reply_windows = reply_windows

    # -- inbound ---------------------------------------------------------
    async def ingest(self, inbound: InboundMessage) -> IngestOutcome:
        """Store an inbound message exactly once and thread it into a conversation.

        Idempotent on (channel, account, external id): a repeat returns the stored
        message with `duplicate=True` and writes nothing. Everything is written in
        one transaction, then events are published; QueueUnavailable from the bus
        means "stored, but tell the sender to retry" (the retry is a no-op).

        A message that changes consent (`inbound.consent`, an SMS "STOP") records
        the change on the contact in the same transaction, naming the message.
        A call event (`inbound.call`) is merged into the call's one message
        instead (see `hub.inbox.calls`); `duplicate` then means "nothing new".
        """
        if inbound.call is not None:
            return await self._ingest_call(inbound)
        if not self.store.supports_transactions:
            # Without all-or-nothing transactions a repeat must be caught before
            # anything is written. With them, the unique index catches it inside
            # `_store_new`, which then writes nothing: one read fewer per message.
            existing = await self.store.message_by_external_id(
                inbound.channel, inbound.account_id, inbound.external_id
            )
            if existing is not None:
                return await self._duplicate(existing)
        return await self._store_new(inbound)

    async def _store_new(self, inbound: InboundMessage) -> IngestOutcome:
        events: list[Event] = []
        contact_created = False
        try:
            async with self.store.transaction():
                known = None
                if inbound.threading == "contact" and inbound.consent is None:
                    # Claimed identities too: one not yet the contact's is to be linked.
                    known = await self.store.known_sender(
                        [*inbound.sender.identities, *inbound.sender.claimed], inbound.account_id
                    )
                contact: Contact | None = None
                if known is not None:
                    # The common case, decided in one read: nothing to create,
                    # link, reopen or record but the message and the activity.
                    contact_id, contact_name = known.contact_id, known.contact_name
                    conversation_id = known.conversation_id
                    await self.store.record_inbound_activity(conversation_id, self.clock.now())
                else:
                    contact, contact_created = await self._resolve_contact(inbound)
                    conversation = await self._thread(inbound, contact, events)
                    contact_id, contact_name = contact.id, contact.name
                    conversation_id = conversation.id
                message = self._inbound_message(inbound, contact_id, contact_name, conversation_id)
                await self.store.add_message(message)
                if contact is not None and inbound.consent is not None:
                    contact = await self._record_consent(contact, inbound.consent, message, events)
                if contact is not None and contact_created:
                    contact_event = {"contact": contact.model_dump(mode="json")}
                    events.insert(0, Event("contact.created", contact_event))
        except DuplicateMessage:
            # Another request stored the same message between our check and insert.
            # Read it in a transaction: that sees the other write even before it is
            # committed, and returns only once it is (so a duplicate is never
            # acknowledged for a message that then fails to commit).
            async with self.store.transaction():
                stored = await self.store.message_by_external_id(
                    inbound.channel, inbound.account_id, inbound.external_id
                )
            if stored is None:
                raise
            return await self._duplicate(stored)
        created = message_event("created", message)
        # Care rules greet a contact's very first message: say so, as only here is it known.
        created.data["first_from_contact"] = contact_created
        created.data["contact_id"] = contact_id
        events.append(created)
        log.info(
            "message ingested",
            extra={
                "event": "message.ingested",
                "channel": inbound.channel,
                "account_id": inbound.account_id,
                "message_id": message.id,
                "conversation_id": conversation_id,
            },
        )
        await self.bus.publish(*events)
        return IngestOutcome(
            message_id=message.id,
            conversation_id=conversation_id,
            contact_id=contact_id,
            duplicate=False,
        )

    async def _record_consent(
        self, contact: Contact, change: ConsentChange, message: Message, events: list[Event]
    ) -> Contact:
        """Set the contact's consent as the message asks, naming the message and
        the moment. Nothing is written when the consent already says so (a second
        STOP keeps the first as the record of when they left)."""
        for _ in range(5):
            current = contact.consent.get(change.key)
            if current is not None and current.status == change.status:
                return contact
            now = self.clock.now()
            consent = {
                **contact.consent,
                change.key: Consent(status=change.status, at=now, how=f"message:{message.id}"),
            }
            if await self.store.update_contact(
                contact.id, expect={"consent": contact.consent}, consent=consent, updated_at=now
            ):
                updated = contact.model_copy(update={"consent": consent, "updated_at": now})
                events.append(
                    Event("contact.updated", {"contact": updated.model_dump(mode="json")})
                )
                log.info(
                    "consent changed by keyword",
                    extra={
                        "event": "contact.consent",
                        "contact_id": contact.id,
                        "consent": change.key,
                        "status": change.status,
                        "message_id": message.id,
                    },
                )
                return updated
            fresh = await self.store.get_contact(contact.id)
            if fresh is None:
                raise NotFound(f"contact {contact.id} vanished")
            contact = fresh
        raise Conflict(f"contact {contact.id} kept changing; consent not recorded")

    # -- calls -----------------------------------------------------------
    async def _ingest_call(self, inbound: InboundMessage) -> IngestOutcome:
        """Merge a call update into the call's message, creating it on first news.

        Safe under replays and races: the message is created once (unique external
        id) and updated with a compare-and-set on its `meta`, so two updates arriving
        together both land and a replayed one changes nothing.
        """
        update = inbound.call
        assert update is not None
        answered_by = await self._call_agent(update.answered_by)
        transferred_to = await self._call_agent(update.transferred_to)
        customer = inbound.sender.identities[0].address
        for _ in range(10):
            existing = await self.store.message_by_external_id(
                inbound.channel, inbound.account_id, inbound.external_id
            )
            if existing is None:
                record = merge(
                    None,
                    update,
                    customer=customer,
                    answered_by=answered_by,
                    transferred_to=transferred_to,
                )
                first = inbound.model_copy(
                    update={
                        "direction": "event",
                        "text": describe(record),
                        "attachments": _call_attachments(record),
                        "meta": {**inbound.meta, "call": record.to_meta()},
                        "call": None,
                    }
                )
                outcome = await self._store_new(first)
                if outcome.duplicate:
                    continue  # created meanwhile by another update: merge into it
                if record.needs_callback:
                    await self._request_callback(outcome.conversation_id, record)
                elif record.answered_at is not None:
                    await self._callback_done(outcome.conversation_id)
                return outcome
            before = CallRecord.from_meta(existing.meta)
            record = merge(
                before,
                update,
                customer=before.customer,
                answered_by=answered_by,
                transferred_to=transferred_to,
            )
            if record == before:
                return await self._duplicate(existing)
            now = self.clock.now()
            changes: dict[str, Any] = {
                "meta": {**existing.meta, "call": record.to_meta()},
                "text": describe(record),
                "attachments": _call_attachments(record),
                "updated_at": now,
            }
            if not await self.store.update_message(
                existing.id, expect={"meta": existing.meta}, **changes
            ):
                continue  # another update landed first: merge into the newer record
            conversation = await self.conversation(existing.conversation_id)
            log.info(
                "call updated",
                extra={
                    "event": "call.updated",
                    "message_id": existing.id,
                    "conversation_id": conversation.id,
                    "status": record.status,
                },
            )
            await self._announce(message_event("updated", existing.model_copy(update=changes)))
            if record.needs_callback and not before.needs_callback:
                await self._request_callback(conversation.id, record)
            elif record.answered_at is not None and before.answered_at is None:
                await self._callback_done(conversation.id)
            return IngestOutcome(
                message_id=existing.id,
                conversation_id=conversation.id,
                contact_id=conversation.contact_id,
                duplicate=False,
            )
        raise Conflict(f"call {inbound.external_id} kept changing; update not recorded")

    async def _call_agent(self, ref: AgentRef | None) -> CallAgent | None:
        """The agent a provider's reference points at (by id or extension), or the
        reference as given when no agent matches (an extension nobody has yet)."""
        if ref is None:
            return None
        agent: Agent | None = None
        if ref.agent_id:
            agent = await self.store.get_agent(ref.agent_id)
        if agent is None and ref.extension:
            agent = await self.store.agent_by_extension(ref.extension)
        if agent is None:
            return CallAgent(name=ref.name, extension=ref.extension, phone=ref.phone)
        return CallAgent(
            agent_id=agent.id,
            name=agent.name,
            extension=ref.extension or agent.extension,
            phone=ref.phone or agent.phone,
        )

    async def _request_callback(self, conversation_id: str, record: CallRecord) -> None:
        """A customer called and nobody spoke to them: open the conversation (again),
        label it for a call-back at high priority, and ask for it to be assigned."""
        for _ in range(5):
            conversation = await self.conversation(conversation_id)
            now = self.clock.now()
            labels = list(conversation.labels)
            if CALLBACK_LABEL not in labels:
                labels.append(CALLBACK_LABEL)
            changes: dict[str, Any] = {
                "status": "open",
                "resolved_at": None,
                "snoozed_until": None,
                "labels": labels,
                "last_activity_at": max(now, conversation.last_activity_at),
                "updated_at": now,
            }
            if conversation.priority in ("low", "normal"):
                changes["priority"] = "high"
            if await self.store.update_conversation(
                conversation.id,
                expect={"status": conversation.status, "labels": conversation.labels},
                **changes,
            ):
                updated = conversation.model_copy(update=changes)
                events = [conversation_event("callback_requested", updated, call=record.to_meta())]
                if conversation.status != "open":
                    events.insert(
                        0,
                        conversation_event(
                            "reopened", updated, previous_status=conversation.status
                        ),
                    )
                log.info(
                    "call-back requested",
                    extra={
                        "event": "call.callback_requested",
                        "conversation_id": conversation.id,
                        "status": record.status,
                    },
                )
                await self._announce(*events)
                return
        raise Conflict(f"conversation {conversation_id} kept changing; call-back not flagged")

    async def _callback_done(self, conversation_id: str) -> None:
        """Someone spoke with the customer on the phone: the call-back is done."""
        for _ in range(5):
            conversation = await self.conversation(conversation_id)
            if CALLBACK_LABEL not in conversation.labels:
                return
            labels = [label for label in conversation.labels if label != CALLBACK_LABEL]
            now = self.clock.now()
            if await self.store.update_conversation(
                conversation.id,
                expect={"labels": conversation.labels},
                labels=labels,
                updated_at=now,
            ):
                updated = conversation.model_copy(update={"labels": labels, "updated_at": now})
                await self._announce(conversation_event("callback_done", updated))
                return

    async def _duplicate(self, message: Message) -> IngestOutcome:
        conversation = await self.store.get_conversation(message.conversation_id)
        log.info(
            "duplicate inbound message ignored",
            extra={"event": "message.duplicate", "message_id": message.id},
        )
        return IngestOutcome(
            message_id=message.id,
            conversation_id=message.conversation_id,
            contact_id=conversation.contact_id if conversation else "",
            duplicate=True,
        )

    async def _resolve_contact(self, inbound: InboundMessage) -> tuple[Contact, bool]:
        """The contact behind the sender's identities, created if none is known.

        The first identity decides; other identities that nobody has yet are
        linked to that contact (so a phone given in a chat finds the SMS history).
        Identities that belong to a different contact are left alone: merging
        people is an agent's decision, not a guess.

        `claimed` identities (typed into a web-chat form) never choose the
        contact: whoever typed someone else's e-mail would otherwise become that
        person, and be shown their chat history and sent their replies.
        """
        identities = inbound.sender.identities
        claimed = [i for i in inbound.sender.claimed if i not in identities]
        owners = await self.store.contacts_owning([*identities, *claimed])
        known = {i: c.id for c in owners for i in c.identities}
        owner_id = next((known[i] for i in identities if i in known), None)
        if owner_id is None:
            now = self.clock.now()
            unowned = [i for i in claimed if i not in known]
            if len(unowned) < len(claimed):
                log.info(
                    "claimed identity belongs to another contact; not linked",
                    extra={"event": "contact.identity_conflict"},
                )
            contact = Contact(
                name=inbound.sender.name,
                identities=list(dict.fromkeys([*identities, *unowned])),
                created_at=now,
                updated_at=now,
            )
            await self.store.add_contact(contact)
            return contact, True
        owner = next(c for c in owners if c.id == owner_id)
        linked = False
        for identity in [*identities, *claimed]:
            if identity in known:
                if known[identity] != owner_id:
                    log.info(
                        "identity belongs to another contact; not merged",
                        extra={"event": "contact.identity_conflict", "contact_id": owner_id},
                    )
                continue
            try:
                await self.store.link_identity(owner_id, identity)
                linked = True
            except IdentityTaken:
                continue
        if linked:
            fresh = await self.store.get_contact(owner_id)
            if fresh is None:  # the identity row exists, so the contact does
                raise NotFound(f"contact {owner_id} vanished")
            owner = fresh
        return owner, False

    async def _thread(
        self, inbound: InboundMessage, contact: Contact, events: list[Event]
    ) -> Conversation:
        """The conversation this message belongs to (see `InboundMessage.threading`),
        reopened if it was not open, or a new one."""
        now = self.clock.now()
        if inbound.threading == "reply_keys":
            conversation = await self._by_reply_keys(inbound, contact)
        else:
            conversation = await self._by_contact(inbound, contact)
        if conversation is None:
            conversation = Conversation(
                contact_id=contact.id,
                account_id=inbound.account_id,
                channel=inbound.channel,
                contact_address=inbound.sender.identities[0].address,
                subject=inbound.subject,
                team_id=self.policy.account_teams.get(inbound.account_id),
                last_activity_at=now,
                unread_count=1,
                created_at=now,
                updated_at=now,
            )
            await self.store.add_conversation(conversation)
            events.append(conversation_event("created", conversation))
            return conversation
        if conversation.status != "open":
            # A customer writing wakes a snoozed, pending or resolved conversation.
            previous = conversation.status
            await self.store.update_conversation(
                conversation.id, status="open", resolved_at=None, snoozed_until=None, updated_at=now
            )
            conversation = conversation.model_copy(
                update={"status": "open", "resolved_at": None, "snoozed_until": None}
            )
            events.append(conversation_event("reopened", conversation, previous_status=previous))
        await self.store.record_inbound_activity(conversation.id, now)
        return conversation

    async def _by_contact(self, inbound: InboundMessage, contact: Contact) -> Conversation | None:
        """The contact's open conversation on this account, or one resolved within
        the reopen window."""
        conversation = await self.store.latest_conversation(
            contact.id, inbound.account_id, statuses=OPEN_STATUSES
        )
        if conversation is not None:
            return conversation
        last = await self.store.latest_conversation(
            contact.id, inbound.account_id, statuses=("resolved",)
        )
        if (
            last is not None
            and last.resolved_at is not None
            and self.clock.now() - last.resolved_at <= self.policy.reopen_window
        ):
            return last
        return None

    async def message_by_thread_key(self, account_id: str, keys: Sequence[str]) -> Message | None:
        """The newest message that reached or left through `account_id` with one of
        the thread `keys`: its own messages, and those of accounts that routed a
        message through it (kept with the route in `meta["route"]`)."""
        found = await self.store.message_by_thread_key(account_id, keys)
        if found is not None:
            return found
        for other in self.policy.routed_through.get(account_id, ()):
            found = await self.store.message_by_thread_key(other, keys)
            route = found.meta.get("route") if found is not None else None
            if isinstance(route, dict) and route.get("account_id") == account_id:
                return found
        return None

    async def _by_reply_keys(
        self, inbound: InboundMessage, contact: Contact
    ) -> Conversation | None:
        """The conversation of the message this one answers (any status, any
        contact: a colleague in Cc answering joins the thread), else the contact's
        conversation with the same subject active within the subject window."""
        keys = reply_lookup_keys(inbound.thread)
        if keys:
            earlier = await self.message_by_thread_key(inbound.account_id, keys)
            if earlier is not None:
                conversation = await self.store.get_conversation(earlier.conversation_id)
                if conversation is not None:
                    return conversation
        subject = normalise_subject(inbound.subject)
        if not subject:
            return None
        since = self.clock.now() - self.policy.subject_window
        view = ConversationFilter(contact_id=contact.id, account_id=inbound.account_id)
        cursor: str | None = None
        while True:
            page = await self.store.list_conversations(view, limit=50, cursor=cursor)
            for conversation in page.items:
                if conversation.last_activity_at < since:
                    return None
                if normalise_subject(conversation.subject) == subject:
                    return conversation
            if page.next_cursor is None:
                return None
            cursor = page.next_cursor

    def _inbound_message(
        self, inbound: InboundMessage, contact_id: str, contact_name: str, conversation_id: str
    ) -> Message:
        now = self.clock.now()
        meta = dict(inbound.meta)
        if inbound.sent_at is not None:
            meta["sent_at"] = inbound.sent_at.isoformat()
        return Message(
            conversation_id=conversation_id,
            account_id=inbound.account_id,
            channel=inbound.channel,
            direction=inbound.direction,
            sender=Sender(kind="contact", id=contact_id, name=inbound.sender.name or contact_name),
            text=inbound.text,
            html=inbound.html,
            attachments=inbound.attachments,
            external_id=inbound.external_id,
            thread=inbound.thread,
            meta=meta,
            created_at=now,
            updated_at=now,
        )

    # -- agents' actions -------------------------------------------------
    async def conversation(self, conversation_id: str) -> Conversation:
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} does not exist")
        return conversation

    async def reply(
        self,
        conversation_id: str,
        author: Agent | None,
        text: str,
        *,
        attachments: Sequence[Attachment] = (),
        idempotency_key: str | None = None,
    ) -> tuple[Message, bool]:
        """Record an outbound message as `queued` and ask a worker to deliver it.

        Returns (message, created). With an `idempotency_key`, repeating the call
        returns the first message and sends nothing more. The message is written
        before it is enqueued; if enqueueing fails, the sweeper enqueues it later.
        Raises ReplyWindowClosed, storing nothing, when the channel only allows
        replies for a while after the customer's last message and that is over.
        """
        if not text.strip() and not attachments:
            raise InvalidRequest("a reply needs text or an attachment")
        conversation = await self.conversation(conversation_id)
        if idempotency_key:
            earlier = await self.store.message_by_idempotency_key(conversation.id, idempotency_key)
            if earlier is not None:
                return earlier, False
        await self._check_reply_window(conversation, by_agent=author is not None)
        now = self.clock.now()
        keyed = await self.store.find_messages(
            conversation.id, threaded=True, newest_first=True, limit=1
        )
        message = Message(
            conversation_id=conversation.id,
            account_id=conversation.account_id,
            channel=conversation.channel,
            direction="outbound",
            sender=_sender(author),
            text=text,
            attachments=list(attachments),
            # What it answers, so the customer's mail client threads it.
            thread=answering(keyed[0].thread if keyed else None),
            status="queued",
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
        )
        changes: dict[str, Any] = {"last_activity_at": now, "updated_at": now}
        if author is not None:
            # An agent who answers has read it; an automated reply (a greeting, an
            # away reply) leaves the customer's message unread, as it is.
            changes["unread_count"] = 0
            if conversation.first_response_at is None:
                changes["first_response_at"] = now
        try:
            async with self.store.transaction():
                await self.store.add_message(message)
                await self.store.update_conversation(conversation.id, **changes)
        except DuplicateMessage:
            if idempotency_key is None:
                raise
            # Read as `ingest` does: inside a transaction, which sees the other
            # writer's message even before its (group) commit lands.
            async with self.store.transaction():
                earlier = await self.store.message_by_idempotency_key(
                    conversation.id, idempotency_key
                )
            if earlier is None:
                raise
            return earlier, False
        log.info(
            "reply queued",
            extra={"event": "message.queued", "message_id": message.id, "channel": message.channel},
        )
        try:
            await self.deliveries.enqueue_delivery(message.id)
        except QueueUnavailable:
            pass  # stored as queued: the sweeper enqueues it once Redis is back
        await self._announce(message_event("created", message))
        return message, True

    async def _window_now(self, conversation: Conversation, *, by_agent: bool) -> _WindowNow | None:
        """The conversation's reply window as it stands now (None: no limit)."""
        window = (
            self.reply_windows.reply_window(conversation.account_id) if self.reply_windows else None
        )
        if window is None:
            return None
        length = window.agent_length if by_agent and window.agent_length else window.length
        last = await self._last_customer_message_at(conversation.id)
        return _WindowNow(window, length, last, self.clock.now())

    async def _check_reply_window(self, conversation: Conversation, *, by_agent: bool) -> None:
        state = await self._window_now(conversation, by_agent=by_agent)
        if state is None or state.open:
            return
        window, length, last, now = state.window, state.length, state.last, state.now
        ago = "never" if last is None else f"{_hours(now - last)} ago"
        who = "" if length == window.length else " an agent's"
        raise ReplyWindowClosed(
            f"{window.rule}:{who} replies are allowed only within {_hours(length)} of the"
            f" customer's last message, and the customer last wrote {ago}."
            " The reply was not sent; it can go out once the customer writes again."
        )

    async def reply_window(self, conversation: Conversation) -> dict[str, Any] | None:
        """What the conversation's channel allows an agent's reply right now, for
        the composer to say before the agent writes (None: no limit). Times are
        ISO 8601; `now` is the hub's clock, against which the page measures.
        `closes_at` is None when the customer never wrote (no reply can go)."""
        state = await self._window_now(conversation, by_agent=True)
        if state is None:
            return None
        window, last = state.window, state.last

        def after(span: timedelta | None) -> str | None:
            return (last + span).isoformat() if last is not None and span is not None else None

        return {
            "rule": window.rule,
            "hours": state.length.total_seconds() / 3600,
            "last_customer_at": last.isoformat() if last is not None else None,
            "closes_at": after(state.length),
            "open": state.open,
            "paid_after_hours": (
                window.paid_after.total_seconds() / 3600 if window.paid_after else None
            ),
            "paid_from": after(window.paid_after),
            "paid_rule": window.paid_rule,
            "now": state.now.isoformat(),
        }

    async def _last_customer_message_at(self, conversation_id: str) -> datetime | None:
        """When the customer last wrote in this conversation: the provider's send
        time where known (a webhook may arrive late), else when we stored it."""
        message = await self.store.last_message(conversation_id, "inbound")
        if message is None:
            return None
        sent_at = message.meta.get("sent_at")
        if isinstance(sent_at, str):
            try:
                return datetime.fromisoformat(sent_at)
            except ValueError:
                pass
        return message.created_at

    async def add_note(
        self,
        conversation_id: str,
        author: Agent,
        text: str,
        *,
        mentions: Sequence[str] = (),
    ) -> Message:
        """A private note: stored in the timeline, never sent to the customer.
        `mentions` (agent ids) travel in `meta.mentions`, so the workspace can
        notify the agents named."""
        if not text.strip():
            raise InvalidRequest("a note needs text")
        conversation = await self.conversation(conversation_id)
        now = self.clock.now()
        note = Message(
            conversation_id=conversation.id,
            account_id=conversation.account_id,
            channel=conversation.channel,
            direction="note",
            sender=_sender(author),
            text=text,
            meta={"mentions": list(dict.fromkeys(mentions))} if mentions else {},
            created_at=now,
            updated_at=now,
        )
        await self.store.add_message(note)
        await self._announce(message_event("created", note))
        return note

    async def assign(
        self,
        conversation_id: str,
        agent_id: str | None,
        *,
        only_if_unassigned: bool = False,
        agent: Agent | None = None,
    ) -> bool:
        """Give the conversation to an agent (None: unassign).

        With `only_if_unassigned` it is a compare-and-set: False if someone else
        got it first, so two routers never assign one conversation twice. The
        agent's `last_assigned_at` moves in the same transaction (round-robin
        takes turns by it, and a manual assignment counts as a turn). A caller
        that has just read the agent may pass it to save reading it again.
        """
        conversation = await self.conversation(conversation_id)
        if agent_id is not None:
            if agent is None or agent.id != agent_id:
                agent = await self.store.get_agent(agent_id)
            if agent is None or not agent.active:
                raise InvalidRequest(f"agent {agent_id} does not exist or is deactivated")
        now = self.clock.now()
        expect = {"assignee_id": None} if only_if_unassigned else None
        async with self.store.transaction():
            changed = await self.store.update_conversation(
                conversation.id, expect=expect, assignee_id=agent_id, updated_at=now
            )
            if changed and agent_id is not None:
                await self.store.update_agent(agent_id, last_assigned_at=now)
        if changed:
            updated = conversation.model_copy(update={"assignee_id": agent_id, "updated_at": now})
            await self._announce(
                conversation_event(
                    "assigned", updated, previous_assignee_id=conversation.assignee_id
                )
            )
        return changed

    async def assign_within_capacity(
        self, conversation: Conversation, agent: Agent, at: datetime | None = None
    ) -> bool:
        """The router's assignment: the store's atomic compare-and-set on "still
        unassigned, not resolved, agent active and below capacity" (see
        `Store.assign_within_capacity`), then `conversation.assigned`. False,
        changing nothing, when any of that no longer holds. `at` is the agent's
        new turn in the rotation (now, unless the router moves it on)."""
        now = at or self.clock.now()
        if not await self.store.assign_within_capacity(conversation.id, agent.id, now):
            return False
        updated = conversation.model_copy(update={"assignee_id": agent.id, "updated_at": now})
        await self._announce(conversation_event("assigned", updated, previous_assignee_id=None))
        return True

    async def resolve(self, conversation_id: str) -> Conversation:
        conversation = await self.conversation(conversation_id)
        if conversation.status == "resolved":
            return conversation
        now = self.clock.now()
        changes = {"status": "resolved", "resolved_at": now, "snoozed_until": None}
        return await self._change_status(conversation, "resolved", now, changes)

    async def reopen(self, conversation_id: str) -> Conversation:
        conversation = await self.conversation(conversation_id)
        if conversation.status == "open":
            return conversation
        changes = {"status": "open", "resolved_at": None, "snoozed_until": None}
        return await self._change_status(
            conversation, "reopened", self.clock.now(), changes, previous_status=True
        )

    async def mark_pending(self, conversation_id: str) -> Conversation:
        """Waiting on the customer (status `pending`): out of the agents' open
        work until the customer writes, which opens it again, or a schedule
        rule reminds them or closes it."""
        conversation = await self.conversation(conversation_id)
        if conversation.status == "pending":
            return conversation
        if conversation.status == "resolved":
            raise Conflict("a resolved conversation cannot wait on the customer; reopen it first")
        changes = {"status": "pending", "snoozed_until": None}
        return await self._change_status(
            conversation, "pending", self.clock.now(), changes, previous_status=True
        )

    async def _change_status(
        self,
        conversation: Conversation,
        event_kind: str,
        now: datetime,
        changes: dict[str, Any],
        *,
        previous_status: bool = False,
    ) -> Conversation:
        """Apply a status change if the status is still the one read (else 409),
        and announce it as `conversation.<event_kind>`."""
        changes = {**changes, "updated_at": now}
        if not await self.store.update_conversation(
            conversation.id, expect={"status": conversation.status}, **changes
        ):
            raise Conflict("the conversation changed meanwhile; reload and try again")
        changed = conversation.model_copy(update=changes)
        extra = {"previous_status": conversation.status} if previous_status else {}
        await self._announce(conversation_event(event_kind, changed, **extra))
        return changed

    async def update_details(self, conversation_id: str, **changes: Any) -> Conversation:
        """Change how the conversation is filed — `labels`, `priority`, `team_id` —
        and tell everyone (`conversation.updated`, with the fields that changed)."""
        allowed = {"labels", "priority", "team_id"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"update_details changes only {sorted(allowed)}")
        conversation = await self.conversation(conversation_id)
        changes = {k: v for k, v in changes.items() if getattr(conversation, k) != v}
        if not changes:
            return conversation
        now = self.clock.now()
        await self.store.update_conversation(conversation.id, updated_at=now, **changes)
        updated = conversation.model_copy(update={**changes, "updated_at": now})
        extra: dict[str, Any] = {"changed": sorted(changes)}
        if "team_id" in changes:
            extra["previous_team_id"] = conversation.team_id
        await self._announce(conversation_event("updated", updated, **extra))
        return updated

    async def snooze(self, conversation_id: str, until: datetime) -> Conversation:
        """Put the conversation aside until `until` (status `snoozed`)."""
        now = self.clock.now()
        if until <= now:
            raise InvalidRequest("snooze until a time in the future")
        conversation = await self.conversation(conversation_id)
        if conversation.status == "resolved":
            raise Conflict("a resolved conversation cannot be snoozed; reopen it first")
        changes = {"status": "snoozed", "snoozed_until": until}
        return await self._change_status(conversation, "snoozed", now, changes)

    async def wake(self, conversation_id: str, until: datetime) -> bool:
        """The snooze that ends at `until` is over: the conversation is open again
        (`conversation.reopened`). False, changing nothing, if it was snoozed
        anew, reopened or resolved meanwhile. Safe to run twice."""
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None or conversation.status != "snoozed":
            return False
        now = self.clock.now()
        if not await self.store.update_conversation(
            conversation.id,
            expect={"status": "snoozed", "snoozed_until": until},
            status="open",
            snoozed_until=None,
            updated_at=now,
        ):
            return False
        woken = conversation.model_copy(
            update={"status": "open", "snoozed_until": None, "updated_at": now}
        )
        await self._announce(
            conversation_event("reopened", woken, previous_status="snoozed", woke=True)
        )
        return True

    async def record_satisfaction(self, conversation_id: str, score: int, how: str) -> bool:
        """The customer's answer (1-5) to the satisfaction survey; the latest answer
        counts. Returns False for a score outside 1-5 (nothing written)."""
        if not 1 <= score <= 5:
            return False
        conversation = await self.conversation(conversation_id)
        now = self.clock.now()
        await self.store.update_conversation(
            conversation.id, satisfaction=score, satisfaction_at=now, updated_at=now
        )
        rated = conversation.model_copy(update={"satisfaction": score, "satisfaction_at": now})
        await self._announce(conversation_event("rated", rated, how=how))
        return True

    async def tag_contact(self, contact_id: str, tag: str) -> Contact:
        """Give the contact a tag (compare-and-set on its tags); `contact.tagged`
        fires only when the tag is new, so follow-ups start once per tagging."""
        tag = tag.strip()
        if not tag:
            raise InvalidRequest("a tag needs text")
        for _ in range(5):
            contact = await self.store.get_contact(contact_id)
            if contact is None:
                raise NotFound(f"contact {contact_id} does not exist")
            if tag in contact.tags:
                return contact
            tags = [*contact.tags, tag]
            now = self.clock.now()
            if await self.store.update_contact(
                contact.id, expect={"tags": contact.tags}, tags=tags, updated_at=now
            ):
                tagged = contact.model_copy(update={"tags": tags, "updated_at": now})
                await self._announce(
                    Event("contact.tagged", {"contact": tagged.model_dump(mode="json"), "tag": tag})
                )
                return tagged
        raise Conflict(f"contact {contact_id} kept changing; tag not added")

    async def mark_read(
        self, conversation_id: str, reader: Agent | None = None, *, up_to: str | None = None
    ) -> None:
        """An agent has read the conversation (up to message `up_to`, else all of
        it): no more unread, and `conversation.read` tells everyone — live channels
        show the customer "seen"."""
        conversation = await self.conversation(conversation_id)
        if conversation.unread_count:
            await self.store.update_conversation(conversation.id, unread_count=0)
        read = conversation.model_copy(update={"unread_count": 0})
        await self._announce(
            conversation_event(
                "read", read, up_to=up_to, reader=_sender(reader).model_dump(mode="json")
            )
        )

    # -- delivery --------------------------------------------------------
    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        external_id: str | None = None,
        meta: dict[str, Any] | None = None,
        message_key: str | None = None,
    ) -> bool:
        """Move a message's delivery status forward (never back: a late "sent"
        does not undo "delivered"; "failed" is final). Returns whether it moved.
        `meta` (the provider's own status and error code) is merged into the
        message's meta when it moves.

        `message_key` is the thread key the provider's copy carries (the e-mail
        Message-ID it was sent with): stored as `thread.message_id`, so answers
        and bounces that name it find this message."""
        # Compare-and-set; when another receipt moved the status meanwhile, look
        # again: a "read" racing the send's "sent" must not be lost.
        for _ in range(5):
            message = await self.store.get_message(message_id)
            if message is None or message.status is None:
                return False
            if not _moves_forward(message.status, status):
                return False
            changes: dict[str, Any] = {"status": status, "updated_at": self.clock.now()}
            if error is not None or status != "failed":
                changes["error"] = error
            if external_id is not None:
                changes["external_id"] = external_id
            if meta:
                changes["meta"] = {**message.meta, **meta}
            if message_key is not None:
                changes["thread"] = message.thread.model_copy(update={"message_id": message_key})
            if await self.store.update_message(
                message.id, expect={"status": message.status}, **changes
            ):
                updated = message.model_copy(update=changes)
                await self._announce(message_event("status", updated))
                return True
        return False

    async def record_provider_status(self, report: DeliveryReport) -> int:
        """Apply a provider's delivery/read/failure report to our outbound messages
        (found by the provider's ids — of any part of a message sent as several — or
        by customer and watermark). Forward-only and safe to repeat: a replayed or
        late report changes nothing. Returns how many messages moved.

        A report on a part of a message whose later parts are still going out
        (still `queued`) moves it only to `failed`, which is final and stops the
        parts left; any other status waits for the reports on the later parts,
        since the delivery alone takes a message out of `queued` once every part
        is accepted (a `delivered` before that would end the delivery with parts
        unsent)."""
        moved = 0
        for external_id in dict.fromkeys(report.external_ids):
            message = await self.store.message_by_external_id(
                report.channel, report.account_id, external_id
            ) or await self.store.message_by_sent_part(
                report.channel, report.account_id, external_id
            )
            if message is None or message.direction != "outbound":
                continue
            if message.status == "queued" and report.status != "failed":
                continue
            moved += await self.record_delivery(message.id, report.status, error=report.error)
        if report.identity is not None and report.up_to is not None:
            moved += await self._record_up_to(report, report.identity, report.up_to)
        return moved

    async def _record_up_to(
        self, report: DeliveryReport, identity: Identity, up_to: datetime
    ) -> int:
        known = await self.store.contacts_by_identity([identity])
        contact_id = known.get(identity)
        if contact_id is None:
            return 0
        conversation = await self.store.latest_conversation(
            contact_id, report.account_id, statuses=None
        )
        if conversation is None:
            return 0
        moved = 0
        for message in await self.store.find_messages(
            conversation.id, directions=["outbound"], statuses=["sent", "delivered"], until=up_to
        ):
            moved += await self.record_delivery(message.id, report.status)
        return moved

    async def delivery_status(self, message_id: str) -> DeliveryStatus | None:
        """An outbound message's delivery status; None if there is no such message."""
        message = await self.store.get_message(message_id)
        return None if message is None or message.direction != "outbound" else message.status

    async def _announce(self, *events: Event) -> None:
        """Publish after a change that is already stored and answered for: a Redis
        outage must not turn a recorded action into an error the caller retries."""
        try:
            await self.bus.publish(*events)
        except QueueUnavailable as exc:
            log.warning(
                "events not published to other processes",
                extra={"event": "bus.publish_failed", "error": exc.message},
            )


def behind(status: DeliveryStatus) -> tuple[DeliveryStatus, ...]:
    """The statuses a message can be in and still move forward to `status`."""
    return tuple(s for s in get_args(DeliveryStatus) if _moves_forward(s, status))


def _moves_forward(current: DeliveryStatus, new: DeliveryStatus) -> bool:
    if current == "failed":
        return False
    if new == "failed":
        return current in ("queued", "sent")
    order = {"queued": 0, "sent": 1, "delivered": 2, "read": 3}
    return order[new] > order[current]


@dataclass(frozen=True)
class _WindowNow:
    """A channel's reply window as it stands for one conversation: what refuses
    a late reply and what the composer shows read the same."""

    window: ReplyWindow
    length: timedelta  # the one that applies: an agent's, or an automated reply's
    last: datetime | None  # when the customer last wrote
    now: datetime

    @property
    def open(self) -> bool:
        return self.last is not None and self.now - self.last <= self.length


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    if hours >= 48 and hours % 24 == 0:
        return f"{int(hours // 24)} days"
    return f"{hours:.0f} hours" if hours >= 1 else f"{span.total_seconds() / 60:.0f} minutes"


def _call_attachments(record: CallRecord) -> list[Attachment]:
    if not record.recording_url:
        return []
    return [Attachment(name="voicemail", content_type="audio/mpeg", url=record.recording_url)]


def _sender(author: Agent | None) -> Sender:
    if author is None:
        return Sender(kind="system", name="hub")
    return Sender(kind="agent", id=author.id, name=author.name)
