"""How text is matched when agents search the inbox: without regard to case or
Vietnamese diacritics, since people type "hoan tien" for "Hoàn tiền".

SQLite compares `fold()`ed text (a function registered on its connections);
MongoDB matches `pattern()`, a regular expression in which each letter stands
for all its accented forms.
"""

from __future__ import annotations

import re
import unicodedata

_LETTERS = str.maketrans({"đ": "d", "Đ": "D"})
_VARIANTS = {
    "a": "aàáảãạăằắẳẵặâầấẩẫậ",
    "e": "eèéẻẽẹêềếểễệ",
    "i": "iìíỉĩị",
    "o": "oòóỏõọôồốổỗộơờớởỡợ",
    "u": "uùúủũụưừứửữự",
    "y": "yỳýỷỹỵ",
    "d": "dđ",
}


def fold(text: str | None) -> str:
    """`text` lower-cased, without diacritics (đ → d), in NFC."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFD", text.translate(_LETTERS))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", stripped).casefold()


# Combining marks after a letter: text stored decomposed (NFD, as macOS mail
# clients and some files write "Nguyễn": "e" + U+0302 + U+0303) still matches.
_MARKS = "[\u0300-\u036f]*"


def pattern(query: str) -> str:
    """A regular expression matching `query` anywhere, whatever the case and
    marks, in composed (NFC) or decomposed (NFD) text."""
    parts = []
    for char in fold(query):
        variants = _VARIANTS.get(char)
        part = f"[{variants}{variants.upper()}]" if variants else re.escape(char)
        parts.append(part + _MARKS if char.isalpha() else part)
    return "".join(parts)
