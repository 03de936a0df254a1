"""Recognising mail a machine sent (RFC 3834 and common practice), so that
nothing in hub ever answers it automatically (see `hub.inbox.loops`)."""

from __future__ import annotations

import re
from collections.abc import Callable

# Local parts of addresses that only machines write from.
MACHINE_SENDERS = re.compile(
    r"^(mailer-daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply|bounces?|"
    r"auto[-_.]?(reply|responder|confirm)|notifications?)([+\-_.].*)?$",
    re.IGNORECASE,
)
BULK_PRECEDENCE = {"bulk", "list", "junk", "auto_reply"}


def automated_reason(
    header: Callable[[str], str], sender: str | None, content_type: str
) -> str | None:
    """Why this mail was sent by a machine, or None if a person seems to have
    written it. `header(name)` gives a header's decoded value ("" if absent)."""
    auto_submitted = header("Auto-Submitted").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = header("Precedence").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    if header("List-Id").strip():
        return "List-Id (mailing list)"
    if header("X-Autoreply").strip().lower() == "yes" or header("X-Autorespond").strip():
        return "X-Autoreply"
    if content_type == "multipart/report":
        return "delivery or read report"
    if header("Return-Path").strip() == "<>":
        return "null return path (a bounce)"
    if sender and MACHINE_SENDERS.match(sender.split("@", 1)[0]):
        return f"machine sender {sender}"
    return None
