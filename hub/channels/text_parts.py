"""A reply longer than a messaging app takes in one message, as several in order.

Each app caps one text message (Messenger 2000 characters, WhatsApp and
Telegram 4096) and refuses, rather than cuts, a longer one. An agent's long
answer is sent as consecutive messages instead, each cut where a reader
would pause: a blank line, else a line break, else a space, and only inside
a word when a "word" is longer than the limit (a pasted link).

Hand-written because the cut must keep every character (`textwrap` drops
and rewraps whitespace, which would change what the agent typed).
"""

from __future__ import annotations

from collections.abc import Callable

# Where to cut, best first: the end of a paragraph, of a line, of a word.
_BREAKS = ("\n\n", "\n", " ")


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji may count 2)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, *, length: Callable[[str], int] = len) -> list[str]:
    """`text` as pieces of at most `limit` (by `length`), in order. The whitespace
    a piece is cut at is dropped; nothing else is. Text within the limit is
    returned whole; blank text gives no pieces."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    pieces: list[str] = []
    rest = text.strip()
    while rest:
        if length(rest) <= limit:
            pieces.append(rest)
            break
        head = _longest_prefix(rest, limit, length)
        cut = _break_in(head)
        piece, rest = (head[:cut], rest[cut:]) if cut else (head, rest[len(head) :])
        pieces.append(piece.rstrip())
        rest = rest.lstrip()
    return [p for p in pieces if p]


def _longest_prefix(text: str, limit: int, length: Callable[[str], int]) -> str:
    """The longest start of `text` within `limit`, never splitting a surrogate pair
    or leaving nothing (a single character over the limit is kept whole)."""
    end = min(len(text), limit)
    while end > 1 and (excess := length(text[:end]) - limit) > 0:
        # A character counts at most 2 (a UTF-16 pair): dropping half the excess
        # in characters never drops more than needed.
        end -= max(1, (excess + 1) // 2)
    return text[: max(end, 1)]


def _break_in(head: str) -> int:
    """Where in `head` to cut: just before the last good break, or 0 for none."""
    for mark in _BREAKS:
        at = head.rfind(mark)
        if at > 0:
            return at
    return 0
