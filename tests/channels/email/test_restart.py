"""The real `hub serve`, stopped (Ctrl-C) and killed (kill -9) while 200 mails
arrive in its Dovecot mailbox: each mail is ingested exactly once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from tests.channels.email.mails import mail
from tests.hub_process import HubProcess, hub_config
from tests.peers.dovecot import Mailbox

pytestmark = pytest.mark.slow
TOTAL = 200


def write_config(tmp_path: Path, mailbox: Mailbox) -> Path:
    return hub_config(
        tmp_path,
        f"""[[accounts]]
id = "support"
channel = "email"
address = "support@shop.vn"
imap_host = "{mailbox.host}"
imap_port = {mailbox.port}
imap_security = "none"
imap_username = "{mailbox.username}"
imap_password_env = "SUPPORT_IMAP_PASSWORD"
imap_reconnect_max_seconds = 1.0
""",
    )


def stored(data_dir: Path) -> list[str]:
    try:
        with sqlite3.connect(data_dir / "hub.db", timeout=5) as db:
            rows = db.execute(
                "SELECT json_extract(thread, '$.message_id') FROM messages"
                " WHERE direction = 'inbound'"
            )
            return [r[0] for r in rows]
    except sqlite3.OperationalError:  # not created yet
        return []


def cursor(data_dir: Path) -> dict | None:
    try:
        with sqlite3.connect(data_dir / "hub.db", timeout=5) as db:
            row = db.execute("SELECT value FROM channel_state WHERE key = 'imap:INBOX'").fetchone()
            return json.loads(row[0]) if row else None
    except sqlite3.OperationalError:
        return None


async def until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s")
        await asyncio.sleep(0.1)


async def test_200_mails_arriving_across_a_stop_and_a_kill_are_each_ingested_once(
    tmp_path, dovecot
):
    mailbox = dovecot.new_user()
    config = write_config(tmp_path, mailbox)
    data = tmp_path / "data"
    env = {"SUPPORT_IMAP_PASSWORD": mailbox.password}
    first = await asyncio.to_thread(HubProcess(config, data, env).start)
    await until(lambda: cursor(data) is not None)

    appended = [0]

    def deliver() -> None:
        imap = mailbox.client()
        try:
            for n in range(TOTAL):
                imap.append("INBOX", None, None, mail(n, sender=f"khach{n % 23}@example.vn"))
                appended[0] = n + 1
                time.sleep(0.03)
        finally:
            imap.logout()

    delivery = asyncio.create_task(asyncio.to_thread(deliver))
    processes = [first]
    try:
        await until(lambda: len(stored(data)) >= 40)
        assert await asyncio.to_thread(first.interrupt) == 0, first.log()  # Ctrl-C
        stopped_at = appended[0]
        second = await asyncio.to_thread(HubProcess(config, data, env).start)
        processes.append(second)
        assert appended[0] > stopped_at, "mail should arrive while the hub is down"
        await until(lambda: len(stored(data)) >= 110)
        await asyncio.to_thread(second.kill)  # kill -9, mid-stream
        assert len(stored(data)) < TOTAL
        third = await asyncio.to_thread(HubProcess(config, data, env).start)
        processes.append(third)
        await delivery
        await until(lambda: len(stored(data)) >= TOTAL, timeout=90)
        await asyncio.sleep(1)  # time for a double to show up, were there one
    finally:
        for process in processes:
            if process.process and process.process.poll() is None:
                await asyncio.to_thread(process.interrupt)
    ids = stored(data)
    assert len(ids) == TOTAL
    assert sorted(ids) == sorted(f"<mail-{n}@example.vn>" for n in range(TOTAL))
    assert cursor(data)["last_uid"] == TOTAL
    logs = "".join(p.log() for p in processes)
    # Fetched again at most what was being stored at the kill (the inbox drops it).
    assert logs.count("duplicate inbound message ignored") <= 2
    assert "Traceback" not in logs
