"""Replies over SMTP to a real aiosmtpd server: the exact bytes, attachments,
pooled connections, TLS and login, retries on 4xx, failure on 5xx, DKIM."""

from __future__ import annotations

import base64
import email
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.policy import default
from pathlib import Path

import pytest

from hub.channels.base import OutboundMessage
from hub.channels.email.compose import hub_message_id_of, message_id_for, text_to_html
from hub.clock import FrozenClock
from hub.errors import ProviderRejected
from hub.inbox.model import new_id
from tests.channels.email.mails import mail
from tests.conftest import eventually
from tests.peers.dkim_dns import DkimDns
from tests.peers.smtp_server import SmtpPeer
from tests.web.test_api import add_agent

OUTBOUND = Path(__file__).parents[2] / "data" / "email" / "outbound"
T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


async def customer_writes(hub, raw: bytes, account: str = "support") -> str:
    outcome = await hub.runtime.channels[account].receive(raw, source={"test": True})
    return outcome.conversation_id


async def reply(hub, conversation_id: str, text: str, key: str, **body) -> dict:
    response = await hub.api(
        "POST",
        f"/api/v1/conversations/{conversation_id}/messages",
        hub.token,
        json={"text": text, **body},
        headers={"Idempotency-Key": key},
    )
    assert response.status == 202, await response.text()
    return await response.json()


async def status_of(hub, message_id: str, *statuses: str) -> dict:
    async def settled():
        message = await hub.runtime.store.get_message(message_id)
        return message.status in statuses

    await eventually(settled, timeout=15)
    return (await hub.runtime.store.get_message(message_id)).model_dump(mode="json")


@pytest.fixture
async def email_hub(make_settings, start_hub, smtp_peer, email_account):
    async def start(peer: SmtpPeer = smtp_peer, **options):
        account = email_account(smtp=peer, **options)
        hub = await start_hub(make_settings(accounts=[account]), clock=FrozenClock(T0))
        hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
        return hub

    return start


async def test_a_reply_goes_out_as_the_exact_mail_a_mail_client_threads(email_hub, smtp_peer):
    hub = await email_hub()
    conversation = await customer_writes(
        hub,
        mail(
            1,
            sender="binh.nguyen@gmail.com",
            name="Nguyễn Thị Bình",
            subject="Đơn hàng #1042 chưa giao",
            message_id="<CAF7e1Q3@mail.gmail.com>",
            references=["<root@mail.gmail.com>"],
        ),
    )
    sent = await reply(
        hub, conversation, "Dạ chị Bình, đơn hàng đang được giao ạ.\n\nShop Bình An", "r1"
    )
    assert (await status_of(hub, sent["id"], "sent", "failed"))["status"] == "sent"
    [received] = smtp_peer.received
    assert received.mail_from == "support@shop.vn"
    assert received.rcpt_tos == ["binh.nguyen@gmail.com"]
    # Byte for byte what the golden file says (our message id, and the Message-ID's
    # tag from this hub's key, vary per run).
    stored = await hub.runtime.store.get_message(sent["id"])
    key = hub.runtime.channels["support"].message_id_key
    assert hub_message_id_of(stored.thread.message_id, key) == sent["id"]
    tag = stored.thread.message_id.split(".")[1]
    assert stored.thread.message_id == f"<{sent['id']}.{tag}.hub@shop.vn>"
    expected = (OUTBOUND / "agent-reply.eml").read_bytes()
    anonymous = received.data.replace(f".{tag}.hub".encode(), b".HUBTAG.hub")
    assert anonymous.replace(sent["id"].encode(), b"HUBMESSAGEID") == expected
    assert stored.external_id == stored.thread.message_id


def test_hubs_message_ids_are_named_back_only_with_their_tag():
    key, other_key = b"k" * 32, b"o" * 32
    message_id = message_id_for("6b0c4602eec384be8b5df3ba", "shop.vn", key)
    assert re.fullmatch(r"<6b0c4602eec384be8b5df3ba\.[0-9a-f]{16}\.hub@shop\.vn>", message_id)
    assert message_id_for("6b0c4602eec384be8b5df3ba", "shop.vn", key) == message_id  # every try
    assert hub_message_id_of(message_id, key) == "6b0c4602eec384be8b5df3ba"
    # Guessed from the id (the form before tags), tagged wrongly, under another
    # hub's key, or not hub's at all: nobody's.
    for named, under in [
        ("<6b0c4602eec384be8b5df3ba.hub@shop.vn>", key),
        ("<6b0c4602eec384be8b5df3bb." + message_id.split(".")[1] + ".hub@shop.vn>", key),
        (message_id, other_key),
        ("<CAF7e1Q3@mail.gmail.com>", key),
        ("not a message id", key),
    ]:
        assert hub_message_id_of(named, under) is None, named


def test_the_golden_reply_is_a_proper_utf8_multipart_alternative():
    """What the golden file promises, read back by the standard library."""
    message = email.message_from_bytes((OUTBOUND / "agent-reply.eml").read_bytes(), policy=default)
    assert message["Subject"] == "Re: Đơn hàng #1042 chưa giao"
    assert str(message["From"]) == "Cửa hàng Bình An <support@shop.vn>"
    assert str(message["To"]) == "Nguyễn Thị Bình <binh.nguyen@gmail.com>"
    assert message["In-Reply-To"] == "<CAF7e1Q3@mail.gmail.com>"
    assert message["References"] == "<root@mail.gmail.com> <CAF7e1Q3@mail.gmail.com>"
    assert message["Message-ID"] == "<HUBMESSAGEID.HUBTAG.hub@shop.vn>"
    assert message["Auto-Submitted"] is None  # a person wrote it
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert text.get_content() == "Dạ chị Bình, đơn hàng đang được giao ạ.\r\n\r\nShop Bình An\r\n"
    assert "<p>Dạ chị Bình, đơn hàng đang được giao ạ.</p><p>Shop Bình An</p>" in html.get_content()
    raw = (OUTBOUND / "agent-reply.eml").read_bytes()
    assert raw.isascii() and all(len(line) <= 78 for line in raw.split(b"\r\n"))


# An Outlook/Exchange Message-ID: with "In-Reply-To: " before it, longer than a line.
OUTLOOK_ID = (
    "<SN6PR04MB4110F1B2A0C1D2E3F4A5B6C7D8E9F0A1B2C3@SN6PR04MB4110.namprd04.prod.outlook.com>"
)


async def test_a_reply_to_a_long_message_id_names_it_verbatim_so_it_threads(email_hub, smtp_peer):
    """Message ids are never RFC 2047-encoded, however long: receivers do not
    decode encoded-words in In-Reply-To or References, and the reply would
    fall out of the customer's thread."""
    hub = await email_hub()
    raw = mail(2, sender="chi.tran@contoso.vn", message_id="<placeholder@contoso.vn>")
    raw = raw.replace(b"<placeholder@contoso.vn>", OUTLOOK_ID.encode())
    conversation = await customer_writes(hub, raw)
    sent = await reply(hub, conversation, "Dạ, em đã nhận được ạ.", "r-long")
    assert (await status_of(hub, sent["id"], "sent", "failed"))["status"] == "sent"
    [received] = smtp_peer.received
    headers = received.data.split(b"\r\n\r\n", 1)[0]
    assert f"\r\nIn-Reply-To: {OUTLOOK_ID}\r\n".encode() in headers
    assert f"\r\nReferences: {OUTLOOK_ID}\r\n".encode() in headers
    assert b"=?" not in headers.split(b"\r\nIn-Reply-To:", 1)[1].split(b"\r\nMIME-Version")[0]
    assert all(len(line) <= 998 for line in received.data.split(b"\r\n"))
    parsed = email.message_from_bytes(received.data, policy=default)
    assert parsed["In-Reply-To"] == OUTLOOK_ID and parsed["References"] == OUTLOOK_ID


def test_links_in_a_reply_are_links_in_its_html_twin_and_nothing_else_is():
    html = text_to_html(
        "Theo dõi đơn: https://shop.vn/don/12?a=1&b=2. Hoặc (https://shop.vn/hd).\n"
        '<b>https://evil.test/"onmouseover="alert(1)</b> https://'
    )
    assert (
        '<a href="https://shop.vn/don/12?a=1&amp;b=2">https://shop.vn/don/12?a=1&amp;b=2</a>. '
        in html
    )
    assert '(<a href="https://shop.vn/hd">https://shop.vn/hd</a>).' in html
    # Customer-supplied or agent-typed markup stays text; a link stops at a quote.
    assert '<a href="https://evil.test/">https://evil.test/</a>&quot;onmouseover' in html
    assert (
        "<b>" not in html
        and html.count("<a ") == 3
        and html.endswith("https://</p></div></body></html>")
    )


async def test_attachments_go_out_with_their_utf8_names(email_hub, smtp_peer):
    hub = await email_hub()
    conversation = await customer_writes(hub, mail(1, sender="a@example.vn"))
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    upload = await hub.api(
        "POST",
        "/api/v1/attachments?name=Hóa đơn tháng 1.pdf",
        hub.token,
        data=pdf,
        headers={"Content-Type": "application/pdf"},
    )
    assert upload.status == 201
    attachment = await upload.json()
    sent = await reply(hub, conversation, "Shop gửi hóa đơn ạ.", "r1", attachments=[attachment])
    await status_of(hub, sent["id"], "sent")
    message = email.message_from_bytes(smtp_peer.received[0].data, policy=default)
    assert message.get_content_type() == "multipart/mixed"
    [part] = list(message.iter_attachments())
    assert part.get_filename() == "Hóa đơn tháng 1.pdf"
    assert part.get_content_type() == "application/pdf"
    assert part.get_content() == pdf
    data = smtp_peer.received[0].data
    assert b"filename*=utf-8''H%C3%B3a%20%C4%91%C6%A1n%20th%C3%A1ng%201.pdf" in data
    # Outlook reads the name from Content-Type, as encoded-words (Gmail sends it so).
    named = re.search(rb'\r\nContent-Type: application/pdf;\r\n name="([^"]+)"\r\n', data)
    assert named is not None
    assert as_a_receiver_reads(named[1].decode().replace("\r\n", "")) == "Hóa đơn tháng 1.pdf"


async def test_one_connection_is_reused_and_reopened_when_the_server_drops_it(email_hub, smtp_peer):
    hub = await email_hub()
    conversation = await customer_writes(hub, mail(1))
    for n in range(3):
        sent = await reply(hub, conversation, f"Trả lời {n}", f"r{n}")
        await status_of(hub, sent["id"], "sent")
    assert smtp_peer.connections == 1
    smtp_peer.drop_connections()  # the server closes idle clients
    sent = await reply(hub, conversation, "Sau khi mất kết nối", "r-after")
    assert (await status_of(hub, sent["id"], "sent", "failed"))["status"] == "sent"
    assert smtp_peer.connections == 2
    assert (
        len(smtp_peer.received) == 4
        and hub.runtime.channels["support"].smtp.connections_opened == 2
    )


async def test_starttls_and_login_are_used_when_the_server_requires_them(
    email_hub, certificate, monkeypatch
):
    peer = await SmtpPeer(
        tls=certificate.server_context(), logins={"support@shop.vn": "mật-khẩu"}
    ).start()
    try:
        monkeypatch.setenv("HUB_TEST_SMTP_PASSWORD", "mật-khẩu")
        hub = await email_hub(
            peer,
            smtp_security="starttls",
            smtp_ca_file=str(certificate.cert),
            smtp_username="support@shop.vn",
            smtp_password_env="HUB_TEST_SMTP_PASSWORD",
        )
        conversation = await customer_writes(hub, mail(1))
        sent = await reply(hub, conversation, "Qua TLS", "r1")
        assert (await status_of(hub, sent["id"], "sent", "failed"))["status"] == "sent"
        [received] = peer.received
        assert received.tls and received.login == "support@shop.vn"
    finally:
        await peer.stop()


async def test_implicit_tls_is_used_on_a_tls_port(email_hub, certificate):
    peer = await SmtpPeer(tls=certificate.server_context(), implicit_tls=True).start()
    try:
        hub = await email_hub(peer, smtp_security="tls", smtp_ca_file=str(certificate.cert))
        conversation = await customer_writes(hub, mail(1))
        sent = await reply(hub, conversation, "Qua TLS", "r1")
        assert (await status_of(hub, sent["id"], "sent", "failed"))["status"] == "sent"
        assert peer.received[0].tls
    finally:
        await peer.stop()


async def test_a_server_certificate_that_is_not_trusted_is_refused(email_hub, certificate):
    peer = await SmtpPeer(tls=certificate.server_context(), implicit_tls=True).start()
    try:
        hub = await email_hub(peer, smtp_security="tls")  # no CA: the system's won't do
        conversation = await customer_writes(hub, mail(1))
        sent = await reply(hub, conversation, "Qua TLS", "r1")
        failed = await status_of(hub, sent["id"], "failed")
        assert "CERTIFICATE_VERIFY_FAILED" in failed["error"]
        assert peer.received == []
    finally:
        await peer.stop()


async def test_a_temporary_refusal_is_retried_until_it_goes_through(email_hub, smtp_peer):
    hub = await email_hub()
    smtp_peer.answers = ["451 4.7.1 Greylisted, please try again later"]
    conversation = await customer_writes(hub, mail(1))
    sent = await reply(hub, conversation, "Lần hai sẽ qua", "r1")
    done = await status_of(hub, sent["id"], "sent", "failed")
    assert done["status"] == "sent" and done["attempts"] == 2
    assert len(smtp_peer.received) == 1


async def test_a_permanent_refusal_fails_the_reply_with_the_servers_words(email_hub, smtp_peer):
    hub = await email_hub()
    smtp_peer.answers = ["550 5.7.1 Relaying denied for shop.vn"]
    conversation = await customer_writes(hub, mail(1))
    sent = await reply(hub, conversation, "Không qua", "r1")
    failed = await status_of(hub, sent["id"], "failed")
    assert failed["attempts"] == 1
    assert failed["error"].endswith("answered 550 5.7.1 Relaying denied for shop.vn")


async def test_a_refused_recipient_fails_the_reply_naming_the_address(email_hub, smtp_peer):
    hub = await email_hub()
    smtp_peer.rcpt_answers["khach@example.vn"] = "550 5.1.1 <khach@example.vn>: User unknown"
    conversation = await customer_writes(hub, mail(1))
    sent = await reply(hub, conversation, "Không qua", "r1")
    failed = await status_of(hub, sent["id"], "failed")
    assert failed["error"] == (
        "recipient refused: khach@example.vn: 550 5.1.1 <khach@example.vn>: User unknown"
    )


async def test_without_an_smtp_server_replies_fail_saying_so(
    make_settings, start_hub, email_account
):
    hub = await start_hub(make_settings(accounts=[email_account()]))
    hub.agent, hub.token = await add_agent(hub, "lan@shop.vn")
    conversation = await customer_writes(hub, mail(1))
    sent = await reply(hub, conversation, "Không có SMTP", "r1")
    failed = await status_of(hub, sent["id"], "failed")
    assert "has no smtp_host" in failed["error"]


async def test_what_the_hub_sends_by_itself_is_marked_auto_submitted(email_hub, smtp_peer):
    hub = await email_hub()
    conversation = await customer_writes(hub, mail(1))
    automatic, _ = await hub.runtime.inbox.reply(conversation, None, "Shop đã nhận thư.")
    await status_of(hub, automatic.id, "sent")
    message = email.message_from_bytes(smtp_peer.received[0].data, policy=default)
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"


async def test_replies_are_dkim_signed_when_a_key_is_configured(
    email_hub, smtp_peer, dkim_dns, monkeypatch
):
    monkeypatch.setenv("HUB_TEST_DKIM_KEY", dkim_dns.private_key)
    hub = await email_hub(dkim_selector="hub2026", dkim_private_key_env="HUB_TEST_DKIM_KEY")
    conversation = await customer_writes(hub, mail(1))
    sent = await reply(hub, conversation, "Có chữ ký DKIM", "r1")
    await status_of(hub, sent["id"], "sent")
    data = smtp_peer.received[0].data
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=shop.vn;")
    assert dkim_dns.verify(data)
    assert dkim_dns.lookups[-1] == b"hub2026._domainkey.shop.vn."
    assert not dkim_dns.verify(data.replace(b"Co", b"Ko"))  # tampering breaks it


async def test_a_dkim_key_that_cannot_sign_is_refused_at_start(
    make_settings, email_account, monkeypatch
):
    from hub.app import open_runtime
    from hub.errors import ConfigError

    monkeypatch.setenv("HUB_TEST_DKIM_KEY", "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END")
    account = email_account(dkim_selector="x", dkim_private_key_env="HUB_TEST_DKIM_KEY")
    with pytest.raises(ConfigError, match="cannot DKIM-sign"):
        async with open_runtime(make_settings(accounts=[account])):
            pass


async def test_sending_twice_for_one_message_sends_the_same_message_id(email_hub, smtp_peer):
    """A worker killed after the server accepted, before recording, sends again:
    the copy carries the same Message-ID (and bytes), which receivers drop."""
    hub = await email_hub()
    conversation = await customer_writes(hub, mail(1))
    sent = await reply(hub, conversation, "Một lần thôi", "r1")
    await status_of(hub, sent["id"], "sent")
    outbound = await hub.runtime.store.get_message(sent["id"])
    channel = hub.runtime.channels["support"]

    again = OutboundMessage(
        message_id=outbound.id,
        conversation_id=conversation,
        account_id="support",
        to="khach@example.vn",
        contact_name="Khách Hàng",
        sender_name="Lan",
        text=outbound.text,
        subject="Câu hỏi số 1",
        thread=outbound.thread.model_copy(update={"message_id": None}),
        created_at=outbound.created_at,
    )
    await channel.send(again)
    first, second = smtp_peer.received
    assert (
        email.message_from_bytes(first.data)["Message-ID"]
        == email.message_from_bytes(second.data)["Message-ID"]
    )
    assert first.data == second.data


def wire_header(data: bytes, name: str) -> str:
    """A header's value as it is on the wire: unfolded, nothing decoded."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    for field in re.split(r"\r\n(?![ \t])", head):
        field_name, _, value = field.partition(":")
        if field_name.lower() == name.lower():
            return value.replace("\r\n", "").strip()
    raise AssertionError(f"no {name} header")


def as_a_receiver_reads(value: str) -> str:
    """RFC 2047 decoding as Gmail and Outlook do it: the space between two
    encoded-words is not text (section 6.2); the email package's legacy decoder
    follows the same rule."""
    return str(make_header(decode_header(value)))


async def send_direct(hub, peer: SmtpPeer, **fields) -> bytes:
    """One message through the account's channel; the bytes `peer` got."""
    channel = hub.runtime.channels["support"]
    before = len(peer.received)
    defaults = {"to": "khach@example.vn", "text": "Dạ, shop xin gửi thông tin ạ."}
    message = OutboundMessage(
        message_id=new_id(),
        conversation_id="c1",
        account_id="support",
        created_at=T0,
        **{**defaults, **fields},
    )
    await channel.send(message)
    return peer.received[before].data


LONG_SUBJECT = (
    "Đơn hàng #1042 của chị Nguyễn Thị Bình đã được giao thành công,"
    " cảm ơn chị đã mua sắm tại cửa hàng chúng tôi"
)
LONG_NAME = "Công ty TNHH Thương mại và Dịch vụ Bình An"


async def test_long_vietnamese_subjects_and_names_keep_their_spaces_on_the_wire(
    email_hub, smtp_peer
):
    """Folded onto several lines, every space stays inside an encoded-word:
    between two encoded-words a receiver drops it ("cảmơn", "Dịch vụBình").
    Each encoded-word is at most 75 characters and cut between characters,
    each line at most 76 (RFC 2047 section 2)."""
    hub = await email_hub(display_name=LONG_NAME)
    customer = "Nguyễn Thị Bình (Phòng Kinh doanh, Chi nhánh Hà Nội)"
    data = await send_direct(hub, smtp_peer, subject=LONG_SUBJECT, contact_name=customer)
    assert as_a_receiver_reads(wire_header(data, "Subject")) == LONG_SUBJECT
    assert as_a_receiver_reads(wire_header(data, "From")) == f"{LONG_NAME} <support@shop.vn>"
    assert as_a_receiver_reads(wire_header(data, "To")) == f"{customer} <khach@example.vn>"
    head = data.split(b"\r\n\r\n", 1)[0].decode("ascii")
    words = re.findall(r"=\?utf-8\?([bq])\?([^?]*)\?=", head)
    assert len(words) >= 6
    for encoding, text in words:
        assert len(text) + len("=?utf-8?b??=") <= 75
        raw = base64.b64decode(text) if encoding == "b" else text.encode()
        raw.decode("utf-8")  # whole characters in every word
    assert all(len(line) <= 76 for line in head.split("\r\n") if "=?" in line)
    # Short ones still go as the email package writes them (the golden file).
    data = await send_direct(hub, smtp_peer, subject="Re: Đơn hàng #1042 chưa giao")
    assert "Subject: Re: =?utf-8?b?xJDGoW4gaMOgbmcgIzEwNDIgY2jGsGE=?= giao\r\n" in data.decode()


async def test_a_vietnamese_domain_goes_out_in_its_ascii_form(email_hub, smtp_peer):
    """An SMTP server without SMTPUTF8 takes only ASCII addresses, and an
    encoded-word inside an address is not allowed (RFC 2047 section 5): the
    domain goes as IDNA ("xn--..."), in the envelope and in To alike."""
    hub = await email_hub()
    data = await send_direct(hub, smtp_peer, to="khach@bưuđiện.vn", contact_name="Khách")
    assert smtp_peer.received[-1].rcpt_tos == ["khach@xn--buin-1ua66gr30m.vn"]
    assert wire_header(data, "To") == "=?utf-8?q?Kh=C3=A1ch?= <khach@xn--buin-1ua66gr30m.vn>"


async def test_a_non_ascii_name_before_the_at_fails_saying_why_and_sends_nothing(
    email_hub, smtp_peer
):
    hub = await email_hub()
    with pytest.raises(ProviderRejected) as refused:
        await send_direct(hub, smtp_peer, to="khách@example.vn")
    assert not refused.value.retryable
    assert "needs SMTPUTF8" in refused.value.reason and "khách@example.vn" in refused.value.reason
    assert smtp_peer.received == []


@pytest.mark.parametrize("handover", [False, True])
async def test_lines_of_dots_arrive_as_written_on_either_send_path(email_hub, smtp_peer, handover):
    """SMTP dot-stuffing ("." at a line start doubled, RFC 5321 4.5.2) is the
    SMTP client's job, done once: the server's copy (unstuffed) is the composed
    message, dots and all, whether sent in one go or in two steps."""
    hub = await email_hub()
    channel = hub.runtime.channels["support"]
    text = "Line one\n.\n..\n.hidden\nEnd"
    message = OutboundMessage(
        message_id=new_id(),
        conversation_id="c1",
        account_id="support",
        to="khach@example.vn",
        text=text,
        created_at=T0,
    )
    handed: list[str] = []

    async def handing_over(message_id: str) -> None:
        handed.append(message_id)

    if handover:
        await channel.send_with_handover(message, handing_over)
    else:
        await channel.send(message)
    [received] = smtp_peer.received
    assert b"\r\n.\r\n..\r\n.hidden\r\n" in received.data
    plain = next(email.message_from_bytes(received.data, policy=default).iter_parts())
    assert plain.get_content() == text.replace("\n", "\r\n") + "\r\n"
    assert len(handed) == int(handover)


async def test_an_account_on_a_vietnamese_domain_writes_it_in_ascii_everywhere(
    email_hub, smtp_peer, tmp_path, monkeypatch
):
    """MAIL FROM, From, the Message-ID and DKIM's d= all carry the IDNA form:
    a Message-ID is ASCII by definition (an encoded-word there is not one), and
    the receiver looks the DKIM key up under the ASCII name."""
    ascii_domain = "xn--cahng-tqa2694c.vn"
    dns = DkimDns(tmp_path, domain=ascii_domain)
    monkeypatch.setenv("HUB_TEST_DKIM_KEY", dns.private_key)
    hub = await email_hub(
        address="support@cửahàng.vn",
        dkim_selector=dns.selector,
        dkim_private_key_env="HUB_TEST_DKIM_KEY",
    )
    data = await send_direct(hub, smtp_peer)
    assert smtp_peer.received[-1].mail_from == f"support@{ascii_domain}"
    assert wire_header(data, "From").endswith(f" <support@{ascii_domain}>")
    assert re.fullmatch(
        rf"<\w+\.[0-9a-f]{{16}}\.hub@{re.escape(ascii_domain)}>", wire_header(data, "Message-ID")
    )
    assert f" d={ascii_domain};" in wire_header(data, "DKIM-Signature")
    assert dns.verify(data)


async def test_control_characters_in_a_name_or_subject_never_reach_the_wire(email_hub, smtp_peer):
    """A contact named with a line break (an import, a sender's own encoded
    From) is still written to, as one line; NUL and other controls, which
    receiving servers refuse or cut at, become spaces; no header is injected."""
    hub = await email_hub()
    data = await send_direct(
        hub,
        smtp_peer,
        contact_name="Nguyễn\r\nVăn\x00 Bình",
        subject="Đơn\x1b hàng\r\nBcc: x@evil.test",
    )
    head = data.split(b"\r\n\r\n", 1)[0]
    assert as_a_receiver_reads(wire_header(data, "To")) == "Nguyễn Văn Bình <khach@example.vn>"
    assert as_a_receiver_reads(wire_header(data, "Subject")) == "Đơn hàng Bcc: x@evil.test"
    assert b"\r\nBcc:" not in head and not any(byte < 0x20 for byte in head.replace(b"\r\n", b""))


# -- who a mail is from: Reply-To before From ----------------------------------------


async def test_a_website_form_sent_as_the_shop_with_the_customer_in_reply_to_reaches_the_inbox(
    email_hub, smtp_peer
):
    """Contact forms mail the shop from the shop's own address (so SPF and DMARC
    pass), with the customer in Reply-To: that is the customer, and the answer
    goes to them, not to the shop nor into the void."""
    hub = await email_hub()
    raw = mail(
        3,
        sender="support@shop.vn",
        name="Website shop.vn",
        subject="Liên hệ từ website",
        headers={"Reply-To": "Nguyễn Văn An <an.nguyen@gmail.com>"},
    )
    outcome = await hub.runtime.channels["support"].receive(raw, source={"test": True})
    assert outcome is not None, "the form was dropped as the shop's own mail"
    contact = await hub.runtime.store.get_contact(outcome.contact_id)
    assert contact.name == "Nguyễn Văn An"
    assert [i.address for i in contact.identities] == ["an.nguyen@gmail.com"]
    sent = await reply(hub, outcome.conversation_id, "Dạ, shop đã nhận được ạ.", "form-1")
    assert (await status_of(hub, sent["id"], "sent", "failed"))["status"] == "sent"
    [received] = smtp_peer.received
    assert received.rcpt_tos == ["an.nguyen@gmail.com"]
    to = received.data.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]
    assert to.endswith(b" <an.nguyen@gmail.com>")


async def test_forms_from_a_no_reply_service_are_one_contact_per_customer(email_hub):
    hub = await email_hub()
    channel = hub.runtime.channels["support"]
    first = await channel.receive(
        mail(4, sender="no-reply@forms.example", headers={"Reply-To": "lan@example.vn"}),
        source={"test": True},
    )
    second = await channel.receive(
        mail(5, sender="no-reply@forms.example", headers={"Reply-To": "binh@example.vn"}),
        source={"test": True},
    )
    assert first is not None and second is not None
    assert first.contact_id != second.contact_id
    assert first.conversation_id != second.conversation_id
    # Written by a person through a form: care messages may answer it.
    message = await hub.runtime.store.get_message(first.message_id)
    assert "automated" not in message.meta
    notice = await channel.receive(mail(8, sender="no-reply@forms.example"), source={"t": 1})
    assert notice is not None
    assert (await hub.runtime.store.get_message(notice.message_id)).meta["automated"] is True


async def test_the_shops_own_mail_is_still_ignored_and_a_reply_to_the_shop_is_not_the_customer(
    email_hub,
):
    hub = await email_hub()
    channel = hub.runtime.channels["support"]
    assert await channel.receive(mail(6, sender="support@shop.vn"), source={"test": True}) is None
    outcome = await channel.receive(
        mail(7, sender="khach@example.vn", headers={"Reply-To": "support@shop.vn"}),
        source={"test": True},
    )
    assert outcome is not None
    contact = await hub.runtime.store.get_contact(outcome.contact_id)
    assert [i.address for i in contact.identities] == ["khach@example.vn"]


async def test_a_configured_reply_to_sends_the_customers_answers_there(email_hub, smtp_peer):
    """`reply_to`: From stays the account's address (what SPF and DKIM vouch
    for), and the customer's mail client answers to the Reply-To."""
    hub = await email_hub(display_name="Hỗ trợ Bình An", reply_to="HoTro@Shop.vn")
    data = await send_direct(hub, smtp_peer)
    assert as_a_receiver_reads(wire_header(data, "From")) == "Hỗ trợ Bình An <support@shop.vn>"
    assert as_a_receiver_reads(wire_header(data, "Reply-To")) == "Hỗ trợ Bình An <hotro@shop.vn>"
    assert smtp_peer.received[-1].mail_from == "support@shop.vn"
    # Without the option there is no Reply-To (the golden-file test above holds
    # every header of a default reply).
