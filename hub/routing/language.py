"""Which language a customer wrote in, cheaply and explainably.

Vietnamese is written with letters no other language the hub meets uses
together (ă, â, đ, ê, ô, ơ, ư and the tone marks stacked on vowels), so a
message carrying any of them is Vietnamese. Anything else is "unknown" here,
and the router falls back to the contact's own language: guessing English
from plain ASCII would misread Vietnamese typed without diacritics
("cam on shop"), which is common on phones.
"""

from __future__ import annotations

import unicodedata

# Letters (lower case, composed) that only Vietnamese uses among hub's languages.
_VIETNAMESE = frozenset("ăắằẳẵặâấầẩẫậđêếềểễệôốồổỗộơớờởỡợưứừửữựảạẻẽẹỉĩịỏọủũụỳỷỹỵ")


def detect_language(text: str) -> str | None:
    """ "vi" when the text carries Vietnamese letters, else None (unknown)."""
    composed = unicodedata.normalize("NFC", text.lower())
    if any(char in _VIETNAMESE for char in composed):
        return "vi"
    return None
