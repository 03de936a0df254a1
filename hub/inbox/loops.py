"""Mail loops: which messages must never get an automatic answer.

Two systems that both answer automatically (two hubs, a hub and an
out-of-office reply, a hub and a mailing list) would answer each other
forever. RFC 3834 breaks the loop from both ends, and so does hub:

- channels mark what a machine sent (`meta["automated"] = True`, with the
  reason in `meta["automated_reason"]`): e-mail with `Auto-Submitted` other
  than `no`, `Precedence: bulk|list|junk`, a `List-Id`, or from a
  mailer-daemon / no-reply address, and delivery reports;
- anything that answers automatically (care rules, away replies) asks
  `may_auto_reply(message)` first;
- what hub sends by itself is marked as automated on the wire (e-mail:
  `Auto-Submitted: auto-replied` / `auto-generated`), so the other side's
  rules can do the same.
"""

from __future__ import annotations

from hub.inbox.model import Message

AUTOMATED = "automated"
AUTOMATED_REASON = "automated_reason"


def may_auto_reply(message: Message) -> bool:
    """Whether an automatic answer may be sent in response to `message`: only to
    an inbound message from a person, never to one a machine sent."""
    return (
        message.direction == "inbound"
        and message.sender.kind == "contact"
        and not message.meta.get(AUTOMATED)
    )
