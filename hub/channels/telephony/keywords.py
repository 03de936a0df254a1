"""SMS keywords that change a customer's consent: opting out and back in.

A keyword counts only as the whole message ("STOP", "hủy", "Từ chối."), in
any case, with or without Vietnamese diacritics, surrounding blanks or a
final full stop: "stop by the shop tomorrow" is a message, not an opt-out.
"""

from __future__ import annotations

import re
from typing import Literal

from hub.channels.telephony.diacritics import strip_diacritics

ConsentKeyword = Literal["opted_out", "opted_in"]

OPT_OUT = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "HUY", "TU CHOI", "TUCHOI"}
)
OPT_IN = frozenset({"START", "UNSTOP", "YES"})

_BLANKS = re.compile(r"\s+")
_TRAILING = re.compile(r"[\s.!。]+$")


def keyword_of(text: str) -> str:
    """The message as a keyword: upper case, no diacritics, single spaces."""
    folded = strip_diacritics(text).upper().strip()
    return _BLANKS.sub(" ", _TRAILING.sub("", folded))


def consent_keyword(text: str) -> tuple[ConsentKeyword, str] | None:
    """("opted_out" | "opted_in", the keyword) when the whole message is a
    consent keyword; None for any other message."""
    if len(text) > 40:  # keywords are short; skip folding long messages
        return None
    keyword = keyword_of(text)
    if keyword in OPT_OUT:
        return "opted_out", keyword
    if keyword in OPT_IN:
        return "opted_in", keyword
    return None
