"""Search matching: the SQLite way (fold both sides) and the MongoDB way (a
pattern of letter variants) agree, whatever the case and diacritics."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from hub.inbox.search import fold, pattern


def fold_by_category(text: str) -> str:
    """What `fold` means, one character at a time: đ to d, then the NFD form
    without its nonspacing marks (category Mn), in NFC, case-folded."""
    decomposed = unicodedata.normalize("NFD", text.translate(str.maketrans("đĐ", "dD")))
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", stripped).casefold()


VIETNAMESE = "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵdđbcghk %._"
WORDS = st.text(alphabet=VIETNAMESE + VIETNAMESE.upper(), max_size=12)


def test_fold_drops_case_and_marks():
    assert fold("Hoàn TIỀN đơn Đà Nẵng") == "hoan tien don da nang"


@given(text=st.text() | WORDS)
def test_fold_is_the_text_without_its_nonspacing_marks(text):
    # `fold` is a faster form of this definition; any text, any script.
    assert fold(text) == fold_by_category(text)
    assert fold(unicodedata.normalize("NFD", text)) == fold_by_category(text)


def test_fold_agrees_with_its_definition_on_every_character():
    import sys

    for code in range(sys.maxunicode + 1):
        char = chr(code)
        assert fold(char) == fold_by_category(char), hex(code)


@given(text=WORDS, query=WORDS.filter(bool))
def test_the_mongo_pattern_matches_exactly_where_folded_text_contains_the_query(text, query):
    assert bool(re.search(pattern(query), text, re.IGNORECASE)) == (fold(query) in fold(text))
    # Text stored decomposed (macOS, some files) matches the same.
    decomposed = unicodedata.normalize("NFD", text)
    assert bool(re.search(pattern(query), decomposed, re.IGNORECASE)) == (fold(query) in fold(text))
