"""What the hub's logging setup lets through: its own records at the chosen
level, not the request-by-request chatter of libraries (which carries secrets:
bot tokens in httpx URLs, account SIDs in twilio's)."""

from __future__ import annotations

import logging

import pytest

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


def test_cron_runs_are_not_logged_but_their_failures_and_other_jobs_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    arq = logging.getLogger("arq.worker")
    try:
        configure_logging("INFO", "json")
        root.addHandler(caplog.handler)  # configure_logging replaced the root's handlers
        with caplog.at_level(logging.INFO):
            # The lines arq writes (arq/worker.py), with its own formats.
            arq.info("%6.2fs → %s(%s)%s", 0.01, "cron:care_due:1764400800123:care_due", "", "")
            arq.info("%6.2fs ← %s ● %s", 0.02, "cron:care_due:1764400800123:care_due", None)
            arq.info("%6.2fs → %s(%s)%s", 0.01, "5f2c:deliver", "'m1'", "")
            arq.info("%6.2fs ← %s ● %s", 0.09, "5f2c:deliver", None)
            arq.info("%6.2fs ↻ %s retrying job in %0.2fs", 0.5, "cron:care_due:17:care_due", 5)
            arq.warning("%6.2fs ! %s max retries %d exceeded", 3.0, "cron:x:1:x", 5)
        lines = [r.getMessage() for r in caplog.records if r.name == "arq.worker"]
        assert not any("cron:" in line and ("→" in line or "●" in line) for line in lines)
        assert sum("5f2c:deliver" in line for line in lines) == 2
        assert any("retrying" in line for line in lines)
        assert any("max retries" in line for line in lines)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
