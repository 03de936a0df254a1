"""One outbound message sent as several provider messages, each part once.

Messenger, WhatsApp, Telegram and Zalo take one file, or one text of limited
length, per provider message, so a reply with files or a long text goes as
several provider messages ("parts") in order. A part the provider accepted
must never go again: when part 2 fails in a way worth retrying (a 429, a 5xx,
a timeout) or the worker dies between parts, the next attempt starts at the
first part not yet accepted.

A channel lists its parts as a pure function of the message (its text and
attachments, never the time or an earlier answer), so part N of a retry is
part N of the first attempt, and hands them to `send_parts` with a way to send
one. `send_parts` skips those named in `OutboundMessage.sent_parts` and reports
each acceptance through `PartAccepted` before the next part goes; the
Deliverer records it on the message (`Store.record_sent_part`).

What remains: a crash after the provider accepted a part and before hub
recorded it sends that one part again on the next attempt. None of these four
providers takes an idempotency key on a send (Meta's Send API and Cloud API,
the Telegram Bot API, Zalo's OA API), so nothing closes that gap; the API
channel, whose receiver gets `Idempotency-Key: <message id>`, sends one
request per message and has no parts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from hub.channels.base import OutboundMessage, PartAccepted

log = logging.getLogger(__name__)

P = TypeVar("P")


async def ignore_parts(index: int, external_id: str | None) -> None:
    """A `PartAccepted` for a plain `send`, whose caller keeps no progress."""


async def send_parts(
    message: OutboundMessage,
    parts: Sequence[P],
    send_one: Callable[[P], Awaitable[str | None]],
    accepted: PartAccepted,
) -> list[str | None]:
    """Send the parts of `message` that no earlier attempt got accepted, in
    order, awaiting `accepted(index, external_id)` after each before the next
    goes (not for a message of one part: there is no "next" to protect, and its
    receipt records it). Returns every part's provider id, earlier attempts'
    first. Whatever `send_one` or `accepted` raises stops the send there.

    More parts recorded than the message now has (hub's cut changed between two
    attempts, across an upgrade) is taken as all sent: doubling is the worse
    error of the two."""
    done = list(message.sent_parts)
    if len(done) > len(parts):
        log.warning(
            "more parts recorded than the message has; nothing more sent",
            extra={
                "event": "delivery.parts_mismatch",
                "message_id": message.message_id,
                "recorded": len(done),
                "parts": len(parts),
            },
        )
        return done
    for index in range(len(done), len(parts)):
        external_id = await send_one(parts[index])
        done.append(external_id)
        if len(parts) > 1:
            await accepted(index, external_id)
    return done


def first_id(external_ids: Sequence[str | None]) -> str | None:
    """The id a multi-part message is known by (its receipt's `external_id`):
    the first part's, or the first the provider named."""
    return next((i for i in external_ids if i), None)
