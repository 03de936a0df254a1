"""Vietnamese text without its diacritics, for SMS that must stay in GSM-7.

Vietnamese letters carry up to two marks ("ệ" = e + circumflex + dot below),
and one of them forces the whole SMS into UCS-2: 70 characters a segment
instead of 160. Carriers' customers read diacritics-free Vietnamese every day,
so a company may choose to send it and pay a third as much.
"""

from __future__ import annotations

import unicodedata

# Letters whose base is not recovered by removing combining marks.
_LETTERS = str.maketrans({"đ": "d", "Đ": "D"})


def strip_diacritics(text: str) -> str:
    """`text` with every combining mark removed and đ/Đ spelled d/D.

    "Cảm ơn quý khách, đơn hàng đã giao" → "Cam on quy khach, don hang da giao".
    Characters that are not letters with marks are left as they are; the result
    is in NFC form.
    """
    decomposed = unicodedata.normalize("NFD", text.translate(_LETTERS))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", stripped)
