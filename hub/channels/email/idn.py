"""Addresses as they go on the wire: in the SMTP envelope and in From/To.

A domain written in Vietnamese ("bưuđiện.vn") is sent in its ASCII form
("xn--buin-1ua66gr30m.vn", IDNA 2008 with the UTS 46 mapping, as registries and
mail servers use it): an SMTP server without SMTPUTF8 refuses a non-ASCII
envelope, and in a header the email package turned the domain into an
encoded-word, which is not allowed inside an address (RFC 2047 section 5) and
gives the receiver an address that does not exist.

A local part that is not ASCII ("khách@...") has no ASCII form: it can only go
through SMTPUTF8 (RFC 6531) with UTF-8 headers, which hub does not send yet,
so such an address is refused with that reason rather than sent broken.
"""

from __future__ import annotations

import idna


class UnsendableAddress(ValueError):
    """An address hub cannot put on the wire; the message says why."""


def ascii_address(address: str) -> str:
    """`address` with its domain in IDNA ASCII form (unchanged when already
    ASCII). Raises UnsendableAddress for a non-ASCII local part or a domain
    that is not a valid internationalised domain name."""
    if address.isascii():
        return address
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise UnsendableAddress(f"{address!r} is not an e-mail address")
    if not local.isascii():
        raise UnsendableAddress(
            f"{address!r} has a non-ASCII name before the @, which needs SMTPUTF8"
            " (RFC 6531); hub sends only ASCII addresses"
        )
    try:
        return f"{local}@{ascii_domain(domain)}"
    except UnsendableAddress as exc:
        raise UnsendableAddress(f"{address!r}: {exc}") from exc


def ascii_domain(domain: str) -> str:
    """`domain` in IDNA ASCII form, as Message-IDs and DKIM's d= need it.
    Raises UnsendableAddress when it is not a valid internationalised name."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UnsendableAddress(f"{domain!r} is not a valid domain name ({exc})") from exc
