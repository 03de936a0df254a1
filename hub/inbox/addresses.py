"""Turn the addresses customers arrive with into identities that match across channels.

The same customer writes by SMS as "0901 234 567", calls from "+84901234567"
and is "84901234567" on Zalo: all three must become one identity, or the
company sees three strangers.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import idna
import phonenumbers

from hub.errors import InvalidRequest
from hub.inbox.model import Identity

# Deliberately loose: mail servers decide what is deliverable; we only refuse
# what cannot be an address at all.
EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")


@lru_cache(maxsize=65_536)  # customers write again and again from the same number
def normalise_phone(raw: str, default_region: str) -> str:
    """E.164 form of `raw` ("+84901234567"). Raises InvalidRequest if it is not a
    possible phone number. Numbers without a country code use `default_region`."""
    text = raw.strip()
    # Some providers (Zalo, WhatsApp) send international numbers without "+".
    if text.isdigit() and len(text) > 10 and not text.startswith("0"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidRequest(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidRequest(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str:
    """Lower-cased address, its domain in Unicode (NFC) form: mail from
    "khach@xn--buin-1ua66gr30m.vn" (as servers and bounce reports write it) is
    the same customer as "khach@bưuđiện.vn" (as people type it). Raises
    InvalidRequest if it cannot be an e-mail address."""
    text = unicodedata.normalize("NFC", raw.strip()).lower()
    if not EMAIL.match(text):
        raise InvalidRequest(f"{raw!r} is not an e-mail address")
    local, _, domain = text.rpartition("@")
    if "xn--" in domain:
        try:
            domain = unicodedata.normalize("NFC", idna.decode(domain, uts46=True))
        except idna.IDNAError:
            pass  # not a valid IDN: kept as written; the mail server decides
        text = f"{local}@{domain}"
    return text


def phone_identity(raw: str, default_region: str) -> Identity:
    return Identity(channel="phone", address=normalise_phone(raw, default_region))


def email_identity(raw: str) -> Identity:
    return Identity(channel="email", address=normalise_email(raw))
