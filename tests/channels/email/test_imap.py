"""Reading support mailboxes from a real Dovecot over IMAP: IDLE and polling,
cursors that survive restarts, reconnecting, several accounts, bad mail."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import subprocess

import pytest

from hub.inbox.store import ConversationFilter
from tests.channels.email.mails import mail
from tests.conftest import eventually


def imap_state(hub, account="support", mailbox="INBOX"):
    return hub.runtime.store.channel_state(account, f"imap:{mailbox}")


async def started(hub, account="support", mailbox="INBOX"):
    """Wait until the account's poller has opened the mailbox and set its cursor."""

    async def cursor_saved():
        return await imap_state(hub, account, mailbox) is not None

    await eventually(cursor_saved)


async def inbound(hub, account="support"):
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(account_id=account), limit=100)
    found = []
    for conversation in page.items:
        found.extend(m for m in await store.list_messages(conversation.id))
    return sorted((m for m in found if m.direction == "inbound"), key=lambda m: m.created_at)


async def cursor_at(hub, last_uid, account="support", mailbox="INBOX") -> dict:
    """Wait for the saved cursor (it is saved just after the message is stored)."""

    async def saved():
        state = await imap_state(hub, account, mailbox)
        return state is not None and state["last_uid"] == last_uid

    await eventually(saved)
    return await imap_state(hub, account, mailbox)


def duplicates(hub) -> float:
    return hub.runtime.metrics.duplicates.labels(channel="email")._value.get()


async def count_is(hub, n, account="support", timeout=15.0):
    async def arrived():
        return len(await inbound(hub, account)) >= n

    await eventually(arrived, timeout=timeout)
    assert len(await inbound(hub, account)) == n


async def test_new_mail_arrives_through_idle_without_waiting_for_a_poll(
    make_settings, start_hub, mailbox, email_account
):
    # A poll interval far longer than the wait: only IDLE can bring the mail in time.
    account = email_account(mailbox=mailbox, imap_poll_seconds=3600)
    hub = await start_hub(make_settings(accounts=[account]))
    await started(hub)
    await asyncio.to_thread(
        mailbox.append, mail(1, subject="Đơn hàng #1042 chưa giao", body="Xin chào shop.")
    )
    await count_is(hub, 1, timeout=10)
    [message] = await inbound(hub)
    assert message.text == "Xin chào shop.\n"
    assert message.channel == "email" and message.account_id == "support"
    assert message.meta["imap"]["uid"] == 1
    conversation = await hub.runtime.store.get_conversation(message.conversation_id)
    assert conversation.subject == "Đơn hàng #1042 chưa giao"
    assert conversation.contact_address == "khach@example.vn"
    raw = await hub.runtime.attachments.read(message.meta["raw_key"])
    assert raw.replace(b"\r\n", b"\n") == mail(
        1, subject="Đơn hàng #1042 chưa giao", body="Xin chào shop."
    ).replace(b"\r\n", b"\n")
    assert hub.runtime.channels["support"].pollers[0].sessions == 1


async def test_without_idle_the_mailbox_is_polled(make_settings, start_hub, mailbox, email_account):
    account = email_account(mailbox=mailbox, imap_idle=False, imap_poll_seconds=0.2)
    hub = await start_hub(make_settings(accounts=[account]))
    await started(hub)
    await asyncio.to_thread(mailbox.append, mail(1), mail(2))
    await count_is(hub, 2)
    assert [m.thread.message_id for m in await inbound(hub)] == [
        "<mail-1@example.vn>",
        "<mail-2@example.vn>",
    ]


async def test_a_restart_neither_misses_nor_refetches_mail(
    make_settings, start_hub, mailbox, email_account
):
    settings = make_settings(accounts=[email_account(mailbox=mailbox)])
    first = await start_hub(settings)
    await started(first)
    await asyncio.to_thread(mailbox.append, mail(1), mail(2), mail(3))
    await count_is(first, 3)
    saved = await cursor_at(first, 3)
    await first.client.close()

    # Mail that arrives while the hub is down is read when it starts again...
    await asyncio.to_thread(mailbox.append, mail(4), mail(5))
    second = await start_hub(settings)
    await count_is(second, 5)
    # ...and what it had already stored is not fetched again.
    assert duplicates(second) == 0
    assert (await cursor_at(second, 5))["uidvalidity"] == saved["uidvalidity"]


async def test_first_connection_starts_with_new_mail_unless_told_to_backfill(
    make_settings, start_hub, mailbox, dovecot, email_account
):
    await asyncio.to_thread(mailbox.append, mail("old"))
    hub = await start_hub(make_settings(accounts=[email_account(mailbox=mailbox)]))
    await started(hub)
    await asyncio.to_thread(mailbox.append, mail("new"))
    await count_is(hub, 1)
    assert (await inbound(hub))[0].thread.message_id == "<mail-new@example.vn>"

    other = dovecot.new_user()
    await asyncio.to_thread(other.append, mail("yesterday"))
    backfilling = email_account("sales", "sales@shop.vn", mailbox=other, imap_backfill_days=2)
    hub2 = await start_hub(make_settings(accounts=[backfilling]))
    await count_is(hub2, 1, account="sales")


async def test_a_rebuilt_mailbox_with_new_uidvalidity_is_read_again_without_doubles(
    make_settings, start_hub, mailbox, email_account, caplog
):
    await asyncio.to_thread(mailbox.create, "Support")
    # Dovecot does not always interrupt IDLE when the folder goes away; the
    # periodic IDLE renewal is what notices then (quick here, 25 min by default).
    account = email_account(
        mailbox=mailbox, imap_mailboxes=["Support"], imap_idle_refresh_seconds=1
    )
    hub = await start_hub(make_settings(accounts=[account]))
    await started(hub, mailbox="Support")
    await asyncio.to_thread(mailbox.append, mail(1), mailbox="Support")
    await count_is(hub, 1)
    before = await imap_state(hub, mailbox="Support")

    # The administrator rebuilds the folder: same mail plus a new one, new UIDs.
    await asyncio.to_thread(mailbox.delete, "Support")
    await asyncio.to_thread(mailbox.create, "Support")
    await asyncio.to_thread(mailbox.append, mail(1), mail(2), mailbox="Support")
    await count_is(hub, 2)
    after = await cursor_at(hub, 2, mailbox="Support")
    assert after["uidvalidity"] != before["uidvalidity"]
    assert duplicates(hub) == 1  # mail 1 was seen again and dropped
    assert "UIDVALIDITY changed" in caplog.text
    # Dovecot answers IDLE on a vanished folder with "NO" at once: that must end
    # the session, not spin (once, thousands of catch-ups a second).
    assert hub.runtime.channels["support"].pollers[0].catch_ups < 30


async def test_the_poller_reconnects_after_the_server_drops_it(
    make_settings, start_hub, mailbox, dovecot, email_account, caplog
):
    caplog.set_level(logging.WARNING)
    hub = await start_hub(make_settings(accounts=[email_account(mailbox=mailbox)]))
    await started(hub)
    poller = hub.runtime.channels["support"].pollers[0]
    kicked = await asyncio.to_thread(
        subprocess.run,
        ["doveadm", "-c", str(dovecot.config), "kick", mailbox.username],
        capture_output=True,
        text=True,
    )
    assert kicked.returncode == 0, kicked.stderr

    async def reconnected():
        return poller.sessions >= 2

    await eventually(reconnected)
    await asyncio.to_thread(mailbox.append, mail(1))
    await count_is(hub, 1)
    assert "IMAP session ended; reconnecting" in caplog.text


async def test_unreachable_server_is_retried_with_growing_backoff(
    make_settings, start_hub, email_account, caplog, monkeypatch
):
    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("HUB_TEST_NOPE", "pw")
    # A port bound but not listening: connections are refused, and no other
    # server can take it while the test runs.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    account = email_account(
        imap_host="127.0.0.1",
        imap_port=closed.getsockname()[1],
        imap_security="none",
        imap_password_env="HUB_TEST_NOPE",
        imap_reconnect_min_seconds=0.05,
        imap_reconnect_max_seconds=0.4,
    )
    hub = await start_hub(make_settings(accounts=[account]))

    async def retried_six_times():
        return caplog.text.count("IMAP session ended; reconnecting") >= 6

    await eventually(retried_six_times)
    delays = [r.delay_s for r in caplog.records if getattr(r, "event", "") == "imap.reconnect"]
    closed.close()
    # 0.05 s, 0.1 s, 0.2 s, 0.4 s, 0.4 s... each +-20%
    assert delays[0] < delays[1] < delays[2] < delays[3], delays
    assert all(0.31 <= d <= 0.49 for d in delays[3:6]), delays  # logged rounded
    assert hub.runtime.channels["support"].pollers[0].sessions == 0


async def test_several_accounts_are_read_at_once(make_settings, start_hub, dovecot, email_account):
    support, sales = dovecot.new_user("support"), dovecot.new_user("sales")
    accounts = [
        email_account("support", "support@shop.vn", mailbox=support),
        email_account("sales", "sales@shop.vn", mailbox=sales),
    ]
    hub = await start_hub(make_settings(accounts=accounts))
    await started(hub, "support")
    await started(hub, "sales")
    await asyncio.gather(
        asyncio.to_thread(support.append, mail("s1"), mail("s2")),
        asyncio.to_thread(sales.append, mail("b1", to="sales@shop.vn")),
    )
    await count_is(hub, 2, account="support")
    await count_is(hub, 1, account="sales")


@pytest.mark.parametrize(
    "bad",
    [
        b"\x00\x01\x02 not a mail at all \xff\xfe",
        b"From: \r\nSubject: no sender address\r\n\r\nbody\r\n",
        b"Subject: truncated\r\nFrom: a@b.vn\r\n"
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\n"
        b"\r\nhalf",
        b"From: Nul\x00l <nul@b.vn>\r\nSubject: a\x00b\r\n\r\nbody\r\n",
    ],
    ids=["garbage", "no-sender", "truncated", "nul-bytes"],
)
async def test_bad_mail_is_recorded_or_rejected_and_the_poller_goes_on(
    bad, make_settings, start_hub, mailbox, email_account, caplog
):
    caplog.set_level(logging.INFO)
    hub = await start_hub(make_settings(accounts=[email_account(mailbox=mailbox)]))
    await started(hub)
    await asyncio.to_thread(mailbox.append, bad, mail("after"))

    async def good_one_arrived():
        return any(m.thread.message_id == "<mail-after@example.vn>" for m in await inbound(hub))

    await eventually(good_one_arrived)
    stored = await inbound(hub)
    rejected = [r for r in caplog.records if getattr(r, "event", "") == "email.rejected"]
    # Either recorded as a message or rejected with a reason, never silently dropped.
    assert len(stored) + len(rejected) == 2
    for record in rejected:
        assert record.uid == 1 and record.reason
    await cursor_at(hub, 2)


async def test_a_mail_arriving_while_the_store_is_down_is_stored_once_it_is_back(
    make_settings, start_hub, mailbox, email_account
):
    hub = await start_hub(make_settings(accounts=[email_account(mailbox=mailbox)]))
    await started(hub)
    store = hub.runtime.store
    await store.close()  # the database goes away (disk full, locked, restarting)
    await asyncio.to_thread(mailbox.append, mail(1))
    poller = hub.runtime.channels["support"].pollers[0]

    async def failed_and_reconnected():
        return poller.sessions >= 2

    await eventually(failed_and_reconnected)
    await store.open()
    await count_is(hub, 1)
    await cursor_at(hub, 1)


def mail_with_50_mb_attachment() -> bytes:
    """Generated here, never committed: a video of 50 MB, base64 in the mail."""
    import base64
    import random

    chunk = random.Random(50).randbytes(1024 * 1024)
    encoded = base64.encodebytes(chunk * 50).replace(b"\n", b"\r\n")
    head = mail(
        "big",
        subject="Video kiểm kê kho",
        body="Video kiểm kê đính kèm.",
        headers={"X-Note": "50 MB"},
    )
    # Turn the simple mail into a multipart one carrying the video.
    headers, _, _ = head.partition(b"\r\n\r\n")
    headers = b"\r\n".join(
        line
        for line in headers.split(b"\r\n")
        if not line.lower().startswith((b"content-type", b"content-transfer-encoding"))
    )
    return (
        headers
        + b"\r\nContent-Type: multipart/mixed; boundary=z\r\n\r\n"
        + b"--z\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + "Video kiểm kê đính kèm.\r\n".encode()
        + b"--z\r\nContent-Type: video/mp4\r\nContent-Disposition: attachment;"
        + b" filename=kiem-ke.mp4\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded
        + b"--z--\r\n"
    )


@pytest.mark.slow
async def test_a_50_mb_attachment_is_recorded_as_too_large_and_the_poller_goes_on(
    make_settings, start_hub, mailbox, email_account
):
    account = email_account(mailbox=mailbox, max_message_bytes=100 * 1024 * 1024)
    hub = await start_hub(make_settings(accounts=[account]))
    await started(hub)
    await asyncio.to_thread(mailbox.append, mail_with_50_mb_attachment(), mail("after"))
    await count_is(hub, 2, timeout=60)
    big, after = await inbound(hub)
    assert big.text == "Video kiểm kê đính kèm."
    [video] = big.attachments
    assert (video.name, video.size, video.too_large, video.storage_key) == (
        "kiem-ke.mp4",
        50 * 1024 * 1024,
        True,
        None,
    )
    assert hub.runtime.attachments.exists(big.meta["raw_key"])  # nothing lost: the raw is kept
    assert after.thread.message_id == "<mail-after@example.vn>"


@pytest.mark.slow
async def test_mail_over_the_size_limit_is_recorded_from_its_headers(
    make_settings, start_hub, mailbox, email_account
):
    account = email_account(mailbox=mailbox, max_message_bytes=1024 * 1024)
    hub = await start_hub(make_settings(accounts=[account]))
    await started(hub)
    await asyncio.to_thread(mailbox.append, mail_with_50_mb_attachment(), mail("after"))
    await count_is(hub, 2, timeout=30)
    big, _ = await inbound(hub)
    conversation = await hub.runtime.store.get_conversation(big.conversation_id)
    assert conversation.subject == "Video kiểm kê kho"
    assert re.match(r"\[This e-mail is 6\d\.\d MB, over this account's limit of 1 MB", big.text)
    assert big.meta["too_large"] is True and big.meta["raw_key"] is None
    [whole] = big.attachments
    assert (whole.content_type, whole.too_large) == ("message/rfc822", True)
    assert whole.size > 50 * 1024 * 1024
