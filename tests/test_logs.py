"""What the hub's logging setup lets through: its own records at the chosen
level, not the request-by-request chatter of libraries (which carries secrets:
bot tokens in httpx URLs, account SIDs in twilio's)."""

from __future__ import annotations

import logging

from hub.logs import configure_logging


def test_chatty_libraries_log_only_warnings_and_errors() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json")
        assert logging.getLogger("hub.inbox").isEnabledFor(logging.INFO)
        for name in ("aiohttp.access", "httpx", "twilio.http_client"):
            library = logging.getLogger(name)
            assert not library.isEnabledFor(logging.INFO), name
            assert library.isEnabledFor(logging.WARNING), name
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
