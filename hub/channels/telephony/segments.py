"""How many SMS segments a text costs, and in which encoding.

An SMS carries 140 bytes: 160 GSM-7 characters, or 70 UCS-2 (UTF-16) code
units. A longer text is split into concatenated parts, each losing 6 bytes to
the header that glues them back together: 153 GSM-7 characters or 67 UCS-2
units a part. One character outside the GSM-7 alphabet (any Vietnamese
diacritic, an emoji) turns the whole message into UCS-2.

Carriers never split an escape sequence (GSM-7 extension characters such as
"€" take two septets) or a UTF-16 surrogate pair across two parts, so parts
are packed greedily rather than by dividing the length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet (the escape character itself excluded).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs an escape septet plus its own.
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
PART = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SmsSize:
    """What a text costs as SMS: its encoding, its parts, and its length in
    that encoding's units (septets or UTF-16 code units)."""

    encoding: Encoding
    segments: int
    units: int
    characters: int

    def as_meta(self) -> dict[str, object]:
        return {
            "encoding": self.encoding,
            "segments": self.segments,
            "units": self.units,
            "characters": self.characters,
        }


def is_gsm7(text: str) -> bool:
    return all(c in GSM_BASIC or c in GSM_EXTENDED for c in text)


def _unit_costs(text: str, encoding: Encoding) -> list[int]:
    """The units each character takes (its pieces must stay in one part)."""
    if encoding == "GSM-7":
        return [2 if c in GSM_EXTENDED else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def measure(text: str) -> SmsSize:
    """The encoding and number of segments `text` takes as one SMS.

    An empty text is still one (empty) message.
    """
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    if units <= SINGLE[encoding]:
        return SmsSize(encoding, 1, units, len(text))
    part, segments, used = PART[encoding], 1, 0
    for cost in costs:
        if used + cost > part:
            segments += 1
            used = 0
        used += cost
    return SmsSize(encoding, segments, units, len(text))
