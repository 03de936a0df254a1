"""hub's own SMTP listener: recipients routed to accounts, unknown ones refused
at RCPT, a size limit, 250 only once stored, 451 when the store is down."""

from __future__ import annotations

import asyncio
import smtplib

import pytest

from hub.errors import ConfigError
from tests.channels.email.mails import mail
from tests.channels.email.test_imap import inbound


@pytest.fixture
def listening_hub(make_settings, start_hub, email_account):
    async def start(*accounts, max_message_bytes=1_000_000):
        settings = make_settings(
            accounts=list(accounts) or [email_account(aliases=["hotro@shop.vn"])],
            smtp_listener={"enabled": True, "port": 0, "max_message_bytes": max_message_bytes},
        )
        hub = await start_hub(settings)
        hub.smtp_port = hub.runtime.smtp_listener.port
        return hub

    return start


def submit(port: int, sender: str, recipients: list[str], raw: bytes, **options):
    """What a sending mail server does (stdlib smtplib, in a thread)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        return client.sendmail(sender, recipients, raw, **options)


def talk(port: int, raw: bytes) -> tuple[int, bytes]:
    """MAIL, RCPT and DATA by hand, without declaring the size up front."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("khach@example.vn")
        client.rcpt("support@shop.vn")
        return client.data(raw)


async def test_mail_for_an_account_is_stored_before_the_server_answers_250(listening_hub):
    hub = await listening_hub()
    refused = await asyncio.to_thread(
        submit, hub.smtp_port, "khach@example.vn", ["support@shop.vn"], mail(1)
    )
    assert refused == {}
    [message] = await inbound(hub)  # stored by the time 250 came back
    assert message.thread.message_id == "<mail-1@example.vn>"
    assert message.meta["smtp"]["rcpt_to"] == ["support@shop.vn"]
    assert message.meta["smtp"]["mail_from"] == "khach@example.vn"
    code, answer = await asyncio.to_thread(talk, hub.smtp_port, mail(2))
    assert (code, answer) == (250, b"2.0.0 OK: stored")


async def test_an_unknown_recipient_is_refused_at_rcpt(listening_hub):
    hub = await listening_hub()
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await asyncio.to_thread(
            submit, hub.smtp_port, "spam@example.com", ["nobody@shop.vn"], mail(1)
        )
    code, text = refused.value.recipients["nobody@shop.vn"]
    assert code == 550 and text.startswith(b"5.1.1")
    assert await inbound(hub) == []


async def test_aliases_and_sub_addresses_reach_their_account_and_each_account_once(
    listening_hub, email_account
):
    hub = await listening_hub(
        email_account("support", "support@shop.vn", aliases=["hotro@shop.vn"]),
        email_account("sales", "sales@shop.vn"),
    )
    await asyncio.to_thread(
        submit,
        hub.smtp_port,
        "khach@example.vn",
        ["Support+Order42@Shop.vn", "hotro@shop.vn", "sales@shop.vn"],
        mail(1),
    )
    assert len(await inbound(hub, "support")) == 1
    assert len(await inbound(hub, "sales")) == 1


async def test_the_reply_to_address_reaches_its_account(listening_hub, email_account):
    # Customers answer replies there (the account's `reply_to`): it is one of
    # the account's addresses, as an alias is.
    hub = await listening_hub(email_account("support", "support@shop.vn", reply_to="cskh@shop.vn"))
    await asyncio.to_thread(submit, hub.smtp_port, "khach@example.vn", ["cskh@shop.vn"], mail(1))
    assert len(await inbound(hub, "support")) == 1


async def test_mail_over_the_size_limit_is_refused(listening_hub):
    hub = await listening_hub(max_message_bytes=20_000)
    big = mail(1, body="x" * 30_000)
    with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # SIZE=... in MAIL FROM
        await asyncio.to_thread(submit, hub.smtp_port, "k@example.vn", ["support@shop.vn"], big)
    assert declared.value.smtp_code == 552
    code, _ = await asyncio.to_thread(talk, hub.smtp_port, big)  # found out while reading
    assert code == 552
    assert await inbound(hub) == []


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", b"5.6.0 empty message"),
        (b"\x00\x01 garbage \xff", b"5.6.0 no header fields"),
        (b"Subject: who am I\r\n\r\nbody", b"5.6.0 the e-mail has no usable sender address"),
    ],
    ids=["zero-bytes", "garbage", "no-sender"],
)
async def test_mail_that_cannot_be_recorded_is_refused_naming_why(listening_hub, raw, reason):
    hub = await listening_hub()
    code, answer = await asyncio.to_thread(talk, hub.smtp_port, raw)
    assert code == 550 and answer.startswith(reason)
    assert await inbound(hub) == []


async def test_a_store_outage_answers_451_so_the_sender_tries_again(listening_hub):
    hub = await listening_hub()
    await hub.runtime.store.close()
    code, answer = await asyncio.to_thread(talk, hub.smtp_port, mail(1))
    assert code == 451 and answer.startswith(b"4.3.0")
    await hub.runtime.store.open()
    code, _ = await asyncio.to_thread(talk, hub.smtp_port, mail(1))  # the sender's retry
    assert code == 250
    code, _ = await asyncio.to_thread(talk, hub.smtp_port, mail(1))  # and a needless repeat
    assert code == 250
    assert len(await inbound(hub)) == 1


async def test_the_listener_needs_an_email_account(make_settings, start_hub):
    with pytest.raises(ConfigError, match="no account has channel"):
        await start_hub(make_settings(smtp_listener={"enabled": True, "port": 0}))
