"""What every channel adapter looks like, and what it exchanges with the inbox.

A channel instance serves one account (one mailbox, one number, one bot, one
API source). It has an input half — webhooks it serves (`routes`) or pollers
it runs (`run`) that turn the provider's payload into an `InboundMessage` and
hand it to `context.ingest` — and an output half, `send`. It knows its
provider and nothing about storage or routing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import aiohttp
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from hub.clock import Clock
from hub.errors import ConfigError
from hub.inbox.attachments import AttachmentStore
from hub.inbox.inbound import (
    DeliveryFailure,
    DeliveryReport,
    InboundMessage,
    IngestOutcome,
    ReplyWindow,
)
from hub.inbox.model import Agent, Attachment, DeliveryStatus, Identity, ThreadKeys
from hub.outbound_http import Fetcher
from hub.settings import AccountSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from hub.events import EventBus
    from hub.inbox.customer_view import CustomerView


class OutboundMessage(BaseModel):
    """What a channel needs to send one message; `message_id` doubles as idempotency key."""

    message_id: str
    conversation_id: str
    account_id: str
    to: str
    contact_name: str = ""
    sender_name: str = ""
    text: str
    html: str | None = None
    subject: str = ""
    attachments: list[Attachment] = Field(default_factory=list)
    thread: ThreadKeys = Field(default_factory=ThreadKeys)
    automated: bool = Field(
        False,
        description="sent by the hub itself (care rules, auto-replies), not typed by a"
        " person: channels mark it so the other side never answers it automatically",
    )
    created_at: datetime
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="extra headers for channels that have them (a campaign e-mail's"
        " List-Unsubscribe); others ignore them",
    )
    sent_parts: list[str | None] = Field(
        default_factory=list,
        description="for a message the channel sends as several provider messages: the"
        " provider ids of the parts earlier attempts got accepted, in order (None: the"
        " provider named none). A send resumes at part `len(sent_parts)`",
    )


class Receipt(BaseModel):
    """What the provider told us when it accepted a message."""

    external_id: str | None = None
    status: DeliveryStatus = "sent"
    message_key: str | None = Field(
        None,
        description="the thread key the sent copy carries (the e-mail Message-ID),"
        " so that answers and bounces naming it find the message",
    )
    meta: dict[str, Any] = Field(default_factory=dict)


Ingest = Callable[[InboundMessage], Awaitable[IngestOutcome]]
# Told that the provider accepted part `index` of a multi-part send (with the
# provider's id for it), before the next part goes; see `Channel.send_in_parts`.
PartAccepted = Callable[[int, str | None], Awaitable[None]]
ReportFailure = Callable[[DeliveryFailure], Awaitable[bool]]


class Route(BaseModel):
    """Where one outbound message goes instead of its conversation's own account
    and address (see `Channel.reroute`). Kept on the message once chosen."""

    account_id: str
    to: str
    reason: str
    subject: str = Field(
        "",
        description="the subject to send under when the conversation has none (a chat"
        " continued by e-mail): the same for every message, so mail clients thread them",
    )


class ProviderReceipts(Protocol):
    async def record_provider_status(self, report: DeliveryReport) -> int:
        """Apply a provider's delivery/read/failure report (forward-only, idempotent)."""
        ...


class ChannelState(Protocol):
    """What a channel may remember between runs and share between processes
    (a poller's offset, a provider's current tokens)."""

    async def channel_state(self, account_id: str, key: str) -> dict[str, Any] | None: ...

    async def save_channel_state(
        self, account_id: str, key: str, value: dict[str, Any]
    ) -> None: ...


class Locks(Protocol):
    def hold(
        self, name: str, *, ttl: float = ..., wait: float = ...
    ) -> AbstractAsyncContextManager[None]:
        """A lock held across every hub process while the block runs."""
        ...


class DeliveryReports(Protocol):
    """Where a channel reports what became of a message it sent (status callbacks)."""

    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        external_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> bool:
        """Move the message's status forward; False if it did not move (a replay,
        a late callback) or the message is unknown."""
        ...

    async def delivery_status(self, message_id: str) -> DeliveryStatus | None:
        """The outbound message's delivery status; None if there is no such message."""
        ...


class AgentDirectory(Protocol):
    """Who should take a phone call: the routing side, as a channel sees it."""

    async def call_targets(self, account_id: str, caller: Identity) -> list[Agent]:
        """Agents to ring for a call from `caller`, best first (may be empty)."""
        ...


class _NoReports:
    async def record_delivery(
        self,
        message_id: str,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        external_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> bool:
        return False

    async def delivery_status(self, message_id: str) -> DeliveryStatus | None:
        return None


class _NoAgents:
    async def call_targets(self, account_id: str, caller: Identity) -> list[Agent]:
        return []


NO_REPORTS: DeliveryReports = _NoReports()
NO_AGENTS: AgentDirectory = _NoAgents()


@dataclass(frozen=True)
class ChannelContext:
    """What the hub lends a channel: sinks for inbound messages and delivery
    reports, who takes calls, and shared clients. (`reports` and `agents` have
    inert defaults so a channel built without a hub, in a test, still works;
    `receipts`, `state`, `locks`, `attachments` and `report_failure` are None when
    not provided, and a channel that needs one refuses to start without it.)
    `attachments` keeps files outside the database; `report_failure` applies a
    bounce to the message it is about (answering whether it knew the message).

    `bus` to `customers` serve live channels (the web-chat widget), which talk to
    the customer in real time from whichever hub process holds the socket.
    """

    ingest: Ingest
    http: aiohttp.ClientSession
    clock: Clock
    default_region: str
    public_url: str
    receipts: ProviderReceipts | None = None
    state: ChannelState | None = None
    locks: Locks | None = None
    reports: DeliveryReports = NO_REPORTS
    agents: AgentDirectory = NO_AGENTS
    bus: EventBus | None = None  # events from every hub process (cluster handlers)
    redis: Redis | None = None  # state shared by hub processes, keys under `key_prefix`
    key_prefix: str = "hub"
    secret_key: bytes = b""  # the hub's key (`hub.keys`); derive a key per purpose
    customers: CustomerView | None = None  # what a customer may see of their conversation
    attachments: AttachmentStore | None = None
    report_failure: ReportFailure | None = None
    # URLs a reply names (files to upload): never hub's own network (hub.outbound_http)
    files: Fetcher = field(default_factory=Fetcher)


class Channel(ABC):
    """Base of every channel adapter; subclasses set `name` and `Options`."""

    name: ClassVar[str]
    Options: ClassVar[type[BaseModel]]
    # The contact consent that sends on this channel need ("sms"): a contact who
    # opted out of it gets nothing more through it. None: no consent checked.
    consent_key: ClassVar[str | None] = None
    # True when `send_with_handover` marks the last step of a send: a message
    # whose handover was never recorded never reached the provider.
    hands_over: ClassVar[bool] = False

    def __init__(self, account: AccountSettings, context: ChannelContext) -> None:
        self.account = account
        self.context = context
        self.options = self.read_options(account)

    @classmethod
    def read_options(cls, account: AccountSettings) -> Any:
        """The account's options as this channel's `Options`; ConfigError naming
        every problem (an unset `*_env` variable, a bad value)."""
        try:
            return cls.Options.model_validate(account.options())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}"
                for e in exc.errors()
            )
            raise ConfigError(f"account {account.id!r} ({cls.name}): {problems}") from exc

    @property
    def reply_window(self) -> ReplyWindow | None:
        """How long after the customer's last message this channel lets the business
        reply, if the provider limits it (the inbox refuses later replies up front)."""
        return None

    def routes(self) -> list[web.RouteDef]:
        """HTTP routes this account serves (webhooks); none by default."""
        return []

    async def run(self) -> None:  # noqa: B027 - optional hook, deliberately empty
        """Long-running input (pollers, sockets). Returns when there is nothing to run."""

    async def close(self) -> None:  # noqa: B027 - optional hook, deliberately empty
        """Release the channel's own clients (pooled connections) when the hub stops."""

    def outbound_meta(self, message: OutboundMessage) -> dict[str, Any]:
        """Facts about how `message` goes out on this channel (SMS segments and
        encoding), stored on the message before it is sent. Pure; none by default."""
        return {}

    async def shutdown(self) -> None:  # noqa: B027 - optional hook, deliberately empty
        """The web server is stopping: close long-lived connections (sockets) so
        clients reconnect elsewhere instead of holding the shutdown up."""

    def references(self) -> Sequence[str]:
        """Ids of other accounts this one's options name; the hub refuses to start
        if one is not configured."""
        return ()

    def routes_through(self) -> Sequence[str]:
        """Ids of the accounts `reroute` may send this account's messages through,
        so that answers and bounces reaching those accounts find them."""
        return ()

    async def reroute(
        self, message: OutboundMessage, identities: Sequence[Identity]
    ) -> Route | None:
        """Where this message should go instead, when this channel cannot reach
        the customer now but another of the company's accounts can (a web-chat
        visitor who left, at an e-mail address they gave). `identities` are all
        of the contact's addresses. None (the default): send it here.

        Asked once per message, before its first successful decision; may raise
        ProviderRejected(retryable=True) to decide later.
        """
        return None

    async def send_with_handover(
        self, message: OutboundMessage, handing_over: Callable[[str], Awaitable[None]]
    ) -> Receipt:
        """`send`, for callers that must know after a crash whether the message
        went: a channel whose protocol has a last step that makes the provider
        take the message (SMTP's final ".") awaits `handing_over(external_id)`
        just before that step. The default has no such step and just sends."""
        return await self.send(message)

    async def send_in_parts(self, message: OutboundMessage, accepted: PartAccepted) -> Receipt:
        """`send`, for a caller that keeps a multi-part send's progress (the
        Deliverer). A channel that sends one message as several provider messages
        (a long text cut in pieces, each attachment apart) skips the parts named
        in `message.sent_parts` and awaits `accepted(index, external_id)` as each
        further part is accepted, before the next goes (`hub.channels.parts`), so
        that a retry or a restarted worker never sends a part twice. `accepted`
        may raise to stop the send (the delivery was taken over); the exception
        propagates. The default sends in one piece."""
        return await self.send(message)

    @abstractmethod
    async def send(self, message: OutboundMessage) -> Receipt:
        """Send one message. Raises ProviderRejected(retryable=...) when refused.
        Must be safe to call twice for one `message_id` where the provider allows."""
