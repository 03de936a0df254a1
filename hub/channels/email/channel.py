"""An e-mail account ("support@", "sales@"): its IMAP pollers, what it does with
a received mail, and how it sends replies.

A received mail (from IMAP or the SMTP listener) is parsed, its raw MIME
and attachments are saved in the attachment store, and it is ingested with
`threading="reply_keys"`. A delivery report about a message the hub sent
marks that message failed instead (see `hub.inbox.bounces`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Collection
from email.headerregistry import Address
from typing import Any

from hub.channels.base import (
    Channel,
    ChannelContext,
    ChannelState,
    OutboundMessage,
    Receipt,
    ReportFailure,
)
from hub.channels.email.compose import (
    OutgoingFile,
    compose,
    header_words,
    message_id_for,
    message_id_key,
)
from hub.channels.email.idn import UnsendableAddress, ascii_address, ascii_domain
from hub.channels.email.imap import FetchedMail, ImapMailbox, ImapPoller
from hub.channels.email.options import EmailOptions
from hub.channels.email.parse import Mailbox, ParsedEmail, Part, parse
from hub.channels.email.send import DEFAULT_PORTS, SmtpPool, SmtpServer
from hub.channels.email.signing import DkimKey
from hub.errors import ConfigError, InvalidRequest, NotFound, ProviderRejected
from hub.inbox.addresses import email_identity
from hub.inbox.attachments import AttachmentStore
from hub.inbox.inbound import DeliveryFailure, InboundMessage, InboundSender, IngestOutcome
from hub.inbox.loops import AUTOMATED, AUTOMATED_REASON
from hub.inbox.model import Attachment, ThreadKeys
from hub.settings import AccountSettings

log = logging.getLogger(__name__)

# Parsing a big message takes long enough to stall other requests: do it in a thread.
PARSE_IN_THREAD_ABOVE = 512 * 1024


class EmailChannel(Channel):
    name = "email"
    Options = EmailOptions
    options: EmailOptions
    hands_over = True

    def __init__(self, account: AccountSettings, context: ChannelContext) -> None:
        super().__init__(account, context)
        if context.attachments is None or context.state is None or context.report_failure is None:
            raise ConfigError(
                f"account {account.id!r} (email) needs the hub's attachment store,"
                " channel state and bounce reporting"
            )
        self.attachments: AttachmentStore = context.attachments
        self.state: ChannelState = context.state
        self.report_failure: ReportFailure = context.report_failure
        self.pollers: list[ImapPoller] = []
        self.message_id_key = message_id_key(context.secret_key)
        try:  # what goes on the wire: ASCII (IDNA) domains, see hub.channels.email.idn
            self.sender_address = ascii_address(self.options.address)
            reply_to = self.options.reply_to
            self.reply_to_address = ascii_address(reply_to) if reply_to else None
            domain = self.sender_address.rpartition("@")[2]
            self.message_id_domain = ascii_domain(self.options.message_id_domain or domain)
            dkim_domain = ascii_domain(self.options.dkim_domain or domain)
        except UnsendableAddress as exc:
            raise ConfigError(f"account {account.id!r}: {exc}") from exc
        self.smtp: SmtpPool | None = None
        if self.options.smtp_host:
            security = self.options.smtp_security
            self.smtp = SmtpPool(
                SmtpServer(
                    host=self.options.smtp_host,
                    port=self.options.smtp_port or DEFAULT_PORTS[security],
                    security=security,
                    username=self.options.smtp_username,
                    password=self.options.smtp_password,
                    timeout=self.options.smtp_timeout_seconds,
                    ca_file=self.options.smtp_ca_file,
                    local_hostname=self.options.smtp_local_hostname,
                ),
                size=self.options.smtp_pool_size,
            )
        self.dkim: DkimKey | None = None
        if self.options.dkim_private_key and self.options.dkim_selector:
            self.dkim = DkimKey(
                self.options.dkim_selector,
                dkim_domain,
                self.options.dkim_private_key,
            )
            try:  # a key that cannot sign is a config error now, not a failed reply later
                self.dkim.sign(b"From: check@example.invalid\r\n\r\n")
            except ConfigError as exc:
                raise ConfigError(f"account {account.id!r}: {exc.message}") from exc

    @property
    def addresses(self) -> list[str]:
        """Every address mail for this account arrives at (lower-case)."""
        return self.options.addresses

    # -- input -----------------------------------------------------------
    async def run(self) -> None:
        """One IMAP poller per configured mailbox; returns at once without IMAP."""
        options = self.options
        if not options.imap_host:
            return
        self.pollers = [
            ImapPoller(
                ImapMailbox(
                    host=options.imap_host,
                    port=options.imap_port or (993 if options.imap_security == "tls" else 143),
                    security=options.imap_security,
                    username=options.imap_username or options.address,
                    password=options.imap_password or "",
                    mailbox=mailbox,
                    idle=options.imap_idle,
                    poll_seconds=options.imap_poll_seconds,
                    idle_refresh_seconds=options.imap_idle_refresh_seconds,
                    timeout_seconds=options.imap_timeout_seconds,
                    reconnect_min_seconds=options.imap_reconnect_min_seconds,
                    reconnect_max_seconds=options.imap_reconnect_max_seconds,
                    backfill_days=options.imap_backfill_days,
                    max_message_bytes=options.max_message_bytes,
                    ca_file=options.imap_ca_file,
                ),
                account_id=self.account.id,
                state=self.state,
                deliver=self.receive_fetched,
                clock=self.context.clock,
            )
            for mailbox in options.imap_mailboxes
        ]
        await asyncio.gather(*(poller.run() for poller in self.pollers))

    async def receive_fetched(self, mail: FetchedMail) -> None:
        """A message from the IMAP poller: stored, or rejected with a logged reason
        (it stays in the mailbox). Raises only when it could not be stored for
        now (the poller then tries it again)."""
        source = {
            "imap": {"mailbox": mail.mailbox, "uidvalidity": mail.uidvalidity, "uid": mail.uid}
        }
        try:
            if mail.raw is None:
                await self.receive_too_large(mail.headers or b"", mail.size, source)
            else:
                await self.receive(mail.raw, source=source)
        except InvalidRequest as exc:
            log.warning(
                "e-mail rejected",
                extra={
                    "event": "email.rejected",
                    "account_id": self.account.id,
                    "reason": exc.message,
                    **source["imap"],
                },
            )

    async def receive(self, raw: bytes, *, source: dict[str, Any]) -> IngestOutcome | None:
        """Record one received mail. Returns the ingest outcome, or None when the
        mail was a delivery report applied to a sent message or our own mail.
        Raises InvalidRequest naming why a mail cannot be recorded (not an e-mail,
        no sender address)."""
        cap = self.attachments.max_bytes
        if len(raw) > PARSE_IN_THREAD_ABOVE:
            parsed = await asyncio.to_thread(parse, raw, max_attachment_bytes=cap)
        else:
            parsed = parse(raw, max_attachment_bytes=cap)
        if parsed.error is not None:
            raise InvalidRequest(parsed.error)
        sender = customer_of(parsed, self.addresses)
        if sender is None:
            log.info(
                "own mail in the mailbox ignored",
                extra={"event": "email.own", "account_id": self.account.id},
            )
            return None
        raw_key = await self.attachments.save(raw, capped=False)
        if await self._apply_report(parsed, raw_key):
            return None
        attachments = [await self._keep(part) for part in parsed.attachments]
        inbound = normalise(
            parsed,
            account_id=self.account.id,
            sender=sender,
            attachments=attachments,
            raw_key=raw_key,
            source=source,
            external_id=dedupe_key(parsed, raw),
        )
        return await self.context.ingest(inbound)

    async def receive_too_large(
        self, headers: bytes, size: int, source: dict[str, Any]
    ) -> IngestOutcome | None:
        """A mail over `max_message_bytes`: recorded from its headers, with the whole
        message as one attachment marked too large (it stays on the server)."""
        parsed = parse(headers + b"\r\n", max_attachment_bytes=0)
        if parsed.error is not None:
            raise InvalidRequest(parsed.error)
        sender = customer_of(parsed, self.addresses) or _usable(parsed.sender)
        if sender is None:
            raise InvalidRequest("the e-mail has no usable sender address (From / Reply-To)")
        limit = self.options.max_message_bytes
        parsed.text = (
            f"[This e-mail is {size / 1_048_576:.1f} MB, over this account's limit of"
            f" {limit / 1_048_576:.0f} MB: only its headers were read. It is still in the"
            " mailbox.]"
        )
        parsed.attachments = []
        attachment = Attachment(
            name="message.eml", content_type="message/rfc822", size=size, too_large=True
        )
        inbound = normalise(
            parsed,
            account_id=self.account.id,
            sender=sender,
            attachments=[attachment],
            raw_key=None,
            source=source,
            external_id=dedupe_key(parsed, headers),
        )
        inbound.meta["too_large"] = True
        return await self.context.ingest(inbound)

    async def _keep(self, part: Part) -> Attachment:
        """The part in the attachment store (or listed as too large)."""
        attachment = Attachment(
            name=part.name,
            content_type=part.content_type,
            size=part.size,
            inline=part.inline,
            content_id=part.content_id,
            too_large=part.too_large,
        )
        if part.data is not None:
            attachment.storage_key = await self.attachments.save(part.data)
        return attachment

    async def _apply_report(self, parsed: ParsedEmail, raw_key: str) -> bool:
        """Apply a delivery report to the sent message it names; False when it names
        none the hub knows (the report is then recorded as an ordinary mail)."""
        report = parsed.report
        if report is None or not report.undelivered:
            return False
        keys = [k for k in (report.original_message_id, parsed.in_reply_to) if k]
        if not keys:
            return False
        applied = False
        for recipient in report.undelivered:
            applied |= await self.report_failure(
                DeliveryFailure(
                    account_id=self.account.id,
                    message_keys=keys,
                    address=recipient.address,
                    permanent=recipient.permanent_failure,
                    status=recipient.status,
                    diagnostic=recipient.diagnostic,
                    report_key=raw_key,
                )
            )
        return applied

    # -- output ----------------------------------------------------------
    async def send(self, message: OutboundMessage) -> Receipt:
        return await self._send(message, None)

    async def send_with_handover(
        self, message: OutboundMessage, handing_over: Callable[[str], Awaitable[None]]
    ) -> Receipt:
        """Send, awaiting `handing_over(Message-ID)` before the final "." of DATA:
        after a crash, a message without that record never reached the server."""
        return await self._send(message, handing_over)

    async def _send(
        self, message: OutboundMessage, handing_over: Callable[[str], Awaitable[None]] | None
    ) -> Receipt:
        if self.smtp is None:
            raise ProviderRejected(
                f"account {self.account.id!r} has no smtp_host to send replies through",
                retryable=False,
            )
        files: list[OutgoingFile] = []
        text = message.text
        for attachment in message.attachments:
            if attachment.storage_key:
                try:
                    data = await self.attachments.read(attachment.storage_key)
                except NotFound as exc:
                    raise ProviderRejected(
                        f"attachment {attachment.name!r} is missing from the store",
                        retryable=False,
                    ) from exc
                files.append(
                    OutgoingFile(attachment.name or "attachment", attachment.content_type, data)
                )
            elif attachment.url:
                text += f"\n\n{attachment.name or 'Attachment'}: {attachment.url}"
        message_id = message_id_for(message.message_id, self.message_id_domain, self.message_id_key)
        try:
            recipient = ascii_address(message.to)
            to = Address(header_words(message.contact_name), addr_spec=recipient)
        except (ValueError, IndexError) as exc:  # ours and email.headerregistry's refusals
            raise ProviderRejected(
                f"cannot address mail to {message.to!r}: {exc}", retryable=False
            ) from exc
        name = header_words(self.options.display_name or self.account.name)
        data = compose(
            message_id=message_id,
            sender=Address(name, addr_spec=self.sender_address),
            to=to,
            reply_to=(
                Address(name, addr_spec=self.reply_to_address) if self.reply_to_address else None
            ),
            subject=message.subject,
            text=text,
            html=message.html,
            thread=message.thread,
            date=message.created_at,
            automated=message.automated,
            files=files,
            headers=message.headers,
        )
        if self.dkim is not None:
            try:
                data = self.dkim.sign(data)
            except ConfigError as exc:
                raise ProviderRejected(exc.message, retryable=False) from exc
        before_final_dot = None
        if handing_over is not None:

            async def before_final_dot() -> None:
                await handing_over(message_id)

        answer = await self.smtp.send(
            self.sender_address, [recipient], data, before_final_dot=before_final_dot
        )
        return Receipt(
            external_id=message_id,
            message_key=message_id,
            status="sent",
            meta={"smtp_answer": answer[:200]},
        )

    async def open_attachment(self, attachment: Attachment) -> tuple[bytes, str] | None:
        """The bytes of an attachment this account kept (for agents' downloads)."""
        if not attachment.storage_key or not self.attachments.exists(attachment.storage_key):
            return None
        data = await self.attachments.read(attachment.storage_key)
        return data, attachment.content_type

    async def close(self) -> None:
        if self.smtp is not None:
            await self.smtp.close()


def customer_of(parsed: ParsedEmail, own: Collection[str]) -> Mailbox | None:
    """Who a mail is from as the inbox sees it, which is where answers go: the
    first usable Reply-To that is not one of the account's own addresses, else
    From. None when the mail is the account's own (From one of `own`, and no one
    else to answer). Raises InvalidRequest when no address is usable.

    Reply-To first (RFC 5322 section 3.6.2: answers go there): a website's
    contact form mails the shop from the shop's own address, or from a no-reply
    service, with the customer in Reply-To. Taking From, every form was one
    "no-reply" contact answered into the void, and a form sent as the shop
    itself was dropped as the shop's own mail."""
    for mailbox in parsed.reply_to:
        usable = _usable(mailbox)
        if usable is not None and usable.address.lower() not in own:
            if not usable.name and parsed.sender and _same(parsed.sender, usable):
                usable = Mailbox(parsed.sender.name, usable.address)
            return usable
    sender = _usable(parsed.sender)
    if sender is not None:
        return None if sender.address.lower() in own else sender
    if any(_usable(m) for m in parsed.reply_to):
        return None  # only our own address to answer
    raise InvalidRequest("the e-mail has no usable sender address (From / Reply-To)")


def _usable(mailbox: Mailbox | None) -> Mailbox | None:
    if mailbox is None:
        return None
    try:
        email_identity(mailbox.address)
    except InvalidRequest:
        return None
    return mailbox


def _same(a: Mailbox, b: Mailbox) -> bool:
    return a.address.lower() == b.address.lower()


def dedupe_key(parsed: ParsedEmail, raw: bytes) -> str:
    """The inbox's dedupe key for a mail: its Message-ID plus a digest of its
    From/Date/Subject/To, so the same mail fetched twice (two paths, a rebuilt
    mailbox) is one message, while two mails that reuse a Message-ID (some
    bulk senders do) are two. Without a Message-ID, a digest of the raw bytes."""
    if parsed.message_id:
        digest = hashlib.sha256(parsed.fingerprint.encode("utf-8", "surrogateescape")).hexdigest()
        return f"{parsed.message_id}#{digest[:16]}"
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def normalise(
    parsed: ParsedEmail,
    *,
    account_id: str,
    sender: Mailbox,
    attachments: list[Attachment],
    raw_key: str | None,
    source: dict[str, Any],
    external_id: str,
) -> InboundMessage:
    """The inbox's view of a parsed mail. Pure."""
    meta: dict[str, Any] = {
        "raw_key": raw_key,
        "email": {
            "from": (parsed.sender or sender).as_json(),
            "to": [m.as_json() for m in parsed.to],
            "cc": [m.as_json() for m in parsed.cc],
            "reply_to": [m.as_json() for m in parsed.reply_to],
        },
        **source,
    }
    if parsed.quoted_at is not None:
        meta["quoted_at"] = parsed.quoted_at
    if parsed.automated is not None:
        meta[AUTOMATED] = True
        meta[AUTOMATED_REASON] = parsed.automated
    if parsed.auto_submitted:
        meta["auto_submitted"] = parsed.auto_submitted
    if parsed.defects:
        meta["defects"] = parsed.defects[:20]
    return InboundMessage(
        account_id=account_id,
        channel="email",
        external_id=external_id,
        sender=InboundSender(name=sender.name, identities=[email_identity(sender.address)]),
        text=parsed.text,
        html=parsed.html,
        subject=parsed.subject,
        attachments=attachments,
        thread=ThreadKeys(
            message_id=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references,
        ),
        sent_at=parsed.date,
        meta=meta,
        threading="reply_keys",
    )
