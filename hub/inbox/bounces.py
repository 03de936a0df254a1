"""Delivery failures reported after the fact (an e-mail bounce, RFC 3464).

A report names the message it is about by its thread key (the Message-ID it
was sent with). Recording one marks that outbound message `failed` with the
diagnostic and flags the address on the contact as bouncing:

    contact.attributes["bouncing"] = {
        "<address>": {"since": ISO time, "status": "5.1.1",
                      "diagnostic": "...", "message_id": "<hub message id>"
                      (or "campaign_id": "<campaign>" for a campaign's e-mail)}
    }

`is_bouncing(contact, address)` is how campaigns and care rules should read
it (a later successful send does not clear it: e-mail gives no proof of
delivery; an agent clears it by editing the contact).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hub.errors import InvalidRequest
from hub.inbox.addresses import normalise_email
from hub.inbox.inbound import DeliveryFailure
from hub.inbox.model import Contact, Message
from hub.inbox.service import InboxService

log = logging.getLogger(__name__)

BOUNCING = "bouncing"


def is_bouncing(contact: Contact, address: str) -> bool:
    """Whether mail to `address` (any case, a domain in either IDN form) has
    bounced for good."""
    return bouncing_in(contact.attributes, address)


def bouncing_in(attributes: Mapping[str, Any], address: str) -> bool:
    """`is_bouncing` from a contact's attributes alone."""
    flagged = attributes.get(BOUNCING)
    return isinstance(flagged, dict) and _key(address) in flagged


def _key(address: str) -> str:
    try:
        return normalise_email(address)
    except InvalidRequest:
        return address.strip().lower()


async def record_failure(inbox: InboxService, failure: DeliveryFailure) -> Message | None:
    """Apply a delivery failure to the outbound message it is about.

    Returns that message, or None when no outbound message of this account has
    one of the keys (the caller then keeps the report as an ordinary inbound
    message, so it is not lost). Safe to repeat: a message already `failed`
    stays as it is, and flagging the contact again changes nothing.
    """
    store = inbox.store
    message = None
    for key in failure.message_keys:
        message = await inbox.message_by_thread_key(failure.account_id, [key])
        if message is not None and message.direction == "outbound":
            break
        message = None
    if message is None:
        return None
    now = inbox.clock.now()
    detail = failure.diagnostic or failure.status or "the recipient's server refused it"
    if failure.permanent:
        await inbox.record_delivery(message.id, "failed", error=f"bounced: {detail}")
    meta = {
        **message.meta,
        "bounce": {
            "permanent": failure.permanent,
            "status": failure.status,
            "diagnostic": failure.diagnostic,
            "address": failure.address,
            "report_key": failure.report_key,
            "at": now.isoformat(),
        },
    }
    await store.update_message(message.id, meta=meta, updated_at=now)
    if failure.permanent:
        await _flag_contact(inbox, message, failure)
    log.info(
        "delivery failure recorded",
        extra={
            "event": "delivery.bounced",
            "message_id": message.id,
            "permanent": failure.permanent,
            "status": failure.status,
        },
    )
    refreshed = await store.get_message(message.id)
    return refreshed or message


async def _flag_contact(inbox: InboxService, message: Message, failure: DeliveryFailure) -> None:
    conversation = await inbox.store.get_conversation(message.conversation_id)
    if conversation is None:
        return
    # A report naming no recipient is about where the message went: its route's
    # address when it went another way (a web chat continued by e-mail).
    route = message.meta.get("route")
    routed_to = route.get("to") if isinstance(route, dict) else None
    address = failure.address or routed_to or conversation.contact_address
    await flag_bouncing(
        inbox, conversation.contact_id, address, failure, source={"message_id": message.id}
    )


async def flag_bouncing(
    inbox: InboxService,
    contact_id: str,
    address: str,
    failure: DeliveryFailure,
    *,
    source: dict[str, str],
) -> None:
    """Mark `address` of the contact as bouncing (once; `source` names the
    message or campaign that bounced)."""
    address = _key(address)
    for _ in range(5):  # compare-and-set: an agent may edit attributes meanwhile
        contact = await inbox.store.get_contact(contact_id)
        if contact is None:
            return
        flagged: dict[str, Any] = dict(contact.attributes.get(BOUNCING) or {})
        if address in flagged:
            return
        flagged[address] = {
            "since": inbox.clock.now().isoformat(),
            "status": failure.status,
            "diagnostic": failure.diagnostic[:500],
            **source,
        }
        attributes = {**contact.attributes, BOUNCING: flagged}
        if await inbox.store.update_contact(
            contact.id,
            expect={"attributes": contact.attributes},
            attributes=attributes,
            updated_at=inbox.clock.now(),
        ):
            return
    log.warning(
        "could not flag a bouncing address: the contact kept changing",
        extra={"event": "contact.bounce_flag_failed", "contact_id": contact_id},
    )
