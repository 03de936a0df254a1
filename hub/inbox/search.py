"""How text is matched when agents search the inbox: without regard to case or
Vietnamese diacritics, since people type "hoan tien" for "Hoàn tiền".

SQLite compares `fold()`ed text (a function registered on its connections);
MongoDB matches `pattern()`, a regular expression in which each letter stands
for all its accented forms.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

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
    """`text` lower-cased, without diacritics (đ → d), in NFC.

    The same as dropping every nonspacing mark (category Mn) of the NFD form,
    done with one `str.translate` instead of a Python test per character: the
    search indexer folds every stored message, and this was most of its cost
    (the tests hold it to the per-character definition)."""
    if not text:
        return ""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", decomposed.translate(_fold_table())).casefold()


def prepare_fold() -> None:
    """Build `fold`'s table now (a walk over all of Unicode, ~80 ms, 200 ms on
    a slow machine) rather than in whatever first folds non-ASCII text: a
    webhook, or the search indexer's first chunk, which then held the event
    loop, and every webhook waiting on it, for that long."""
    _fold_table()


@cache
def _fold_table() -> dict[int, str | None]:
    """đ/Đ to d/D, and every nonspacing mark to nothing."""
    table: dict[int, str | None] = {
        code: None for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Mn"
    }
    table.update(_LETTERS)
    return table


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
