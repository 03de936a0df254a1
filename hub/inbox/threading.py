"""How messages that carry reply keys (e-mail) find their conversation.

Mail clients thread by `In-Reply-To`/`References` first and by subject
second; the inbox does the same for messages whose channel asks for it
(`InboundMessage.threading == "reply_keys"`). The rules here are pure: the
store lookups live in `InboxService`.
"""

from __future__ import annotations

import re
import unicodedata

from hub.inbox.model import ThreadKeys

# Reply and forward prefixes in the languages our customers' mail clients
# speak: English, Vietnamese (Outlook: "TL:" = trả lời, "CT:" = chuyển tiếp),
# German, Nordic, French, Italian, Spanish, Portuguese, Dutch, Polish,
# Turkish, Chinese and Japanese full-width colons. A counter ("Re[2]:",
# "Re(3):") is allowed after the word.
REPLY_PREFIX = re.compile(
    r"^\s*(?:"
    r"re|fwd?|aw|wg|sv|vs|vl|tr|tl|ct|r|rif|res|enc|antw|doorst|odp|pd|ynt|ilt|"
    r"回复|回覆|转发|答复|trả\s+lời|chuyển\s+tiếp"
    r")\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]\s*",  # full-width colon too
    re.IGNORECASE,
)
# "[EXTERNAL]"-style tags some gateways put before the prefix.
GATEWAY_TAG = re.compile(r"^\s*\[(?:external|ext|spam|suspicious|bên ngoài)\]\s*", re.IGNORECASE)
SPACES = re.compile(r"\s+")
MAX_REFERENCES = 20


def normalise_subject(subject: str) -> str:
    """The subject with every reply/forward prefix removed, in NFC, case-folded
    and with runs of white space collapsed: "TL: Re: Đơn  hàng" and
    "đơn hàng" give the same answer. Empty when nothing is left."""
    text = unicodedata.normalize("NFC", subject or "")
    while True:
        stripped = GATEWAY_TAG.sub("", text, count=1)
        stripped = REPLY_PREFIX.sub("", stripped, count=1)
        if stripped == text:
            break
        text = stripped
    return SPACES.sub(" ", text).strip().casefold()


def reply_lookup_keys(thread: ThreadKeys) -> list[str]:
    """The keys to look for, most telling first: the message it answers, then its
    references from the newest back to the first. No repeats."""
    keys = [thread.in_reply_to, *reversed(thread.references)]
    return list(dict.fromkeys(k for k in keys if k))


def answering(previous: ThreadKeys | None) -> ThreadKeys:
    """Thread keys for a message that answers `previous`: In-Reply-To its id and
    References its chain plus its id. Long chains keep the first reference
    (the thread's root) and the newest ones, as RFC 5322 suggests."""
    if previous is None or not previous.message_id:
        return ThreadKeys()
    chain = [*previous.references, previous.message_id]
    chain = list(dict.fromkeys(chain))
    if len(chain) > MAX_REFERENCES:
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return ThreadKeys(in_reply_to=previous.message_id, references=chain)
