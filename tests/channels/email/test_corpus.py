"""The corpus in tests/data/email/ (see its README): every message ingests without
an exception, and each one's text, attachments and thread are what a person
reading it would expect."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hub.errors import InvalidRequest
from hub.inbox.model import Message
from tests.channels.email.test_imap import inbound, started
from tests.conftest import eventually

CORPUS = Path(__file__).parents[2] / "data" / "email"


@dataclass(frozen=True)
class Expect:
    text: list[str] = field(default_factory=list)  # each must appear in the text
    visible: str | None = None  # the text before the folded quote
    attachments: list[tuple[str, str, int]] = field(default_factory=list)  # name, type, size
    thread: str | None = None  # same label: same conversation; None: not stored
    subject: str | None = None
    sender: str | None = None
    automated: bool = False
    rejected: str | None = None
    html_has: list[str] = field(default_factory=list)
    html_lacks: list[str] = field(default_factory=list)
    inline: dict[str, str | None] = field(default_factory=dict)  # name → Content-ID


# In ingestion order: later messages answer earlier ones.
EXPECTED: dict[str, Expect] = {
    "01-gmail-vietnamese-utf8.eml": Expect(
        text=["Đơn hàng #1042 của tôi đặt hôm thứ Hai vẫn chưa được giao."],
        subject="Đơn hàng #1042 chưa giao",
        sender="Nguyễn Thị Bình <binh.nguyen@gmail.com>",
        thread="binh",
        html_has=["<b>#1042</b>"],
    ),
    "02-outlook-windows-1258.eml": Expect(
        text=["Tôi muốn đổi hàng vì áo bị lỗi đường may.", "Trần Văn Minh"],
        subject="Yêu cầu đổi hàng áo sơ mi",
        sender="Trần Văn Minh <minh.tran@outlook.com>",
        thread="minh",
    ),
    "03-viscii-legacy-mailer.eml": Expect(
        text=["Cho tôi hỏi giá máy lọc nước loại nhỏ.", "Điện thoại: 0903 123 456"],
        subject="Hỏi giá máy lọc nước",
        thread="hung",
    ),
    "04-unknown-charset-labels.eml": Expect(
        text=["Giao hàng chậm quá, hôm nay có nhận được không?", "Số điện thoại: 0912 000 111"],
        thread="thu",
    ),
    "05-rfc2231-attachment-names.eml": Expect(
        text=["Gửi shop hóa đơn và bảng kê tháng 12."],
        attachments=[
            ("Hóa đơn tháng 12.pdf", "application/pdf", 125),
            (
                "Bảng kê.xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                204,
            ),
        ],
        thread="ketoan",
    ),
    "06-nested-inline-image.eml": Expect(
        text=["Ảnh sản phẩm bị vỡ khi nhận hàng, tôi gửi kèm ảnh."],
        attachments=[
            ("image-1.png", "image/png", 70),
            ("phieu-giao-hang.pdf", "application/pdf", 125),
        ],
        html_has=['src="cid:vo-hang@fpt.vn"'],
        inline={"image-1.png": "vo-hang@fpt.vn"},
        thread="anh",
    ),
    "07-forwarded-message.eml": Expect(
        text=[
            "Chuyển shop xử lý giúp.",
            "---------- Forwarded message ----------\nFrom: Vu Lan <lan.vu@gmail.com>",
            "Tôi khiếu nại về thái độ nhân viên giao hàng.",
        ],
        attachments=[
            ("bien-nhan.jpg", "image/jpeg", 106),
            ("Khiếu nại của khách.eml", "message/rfc822", 715),
        ],
        thread="quang",
    ),
    "08-dsn-postfix-bounce.eml": Expect(
        # About a message this hub never sent: kept as an automated message.
        text=["could not\nbe delivered to one or more recipients."],
        attachments=[("attachment-1.txt", "text/rfc822-headers", 240)],
        automated=True,
        thread="daemon",
    ),
    "09-out-of-office-auto-reply.eml": Expect(
        text=["Tôi đang nghỉ phép đến hết ngày 20/01."], automated=True, thread="hoa"
    ),
    "10-mailing-list-digest.eml": Expect(
        text=["Bản tin thương mại điện tử tháng 1."], automated=True, thread="vecom"
    ),
    "11-truncated-mime.eml": Expect(
        text=["Ảnh hóa đơn đây ạ."],
        attachments=[("hoa-don.jpg", "image/jpeg", 297)],  # what survived of it
        thread="bao",
    ),
    "12-nul-bytes-in-headers.eml": Expect(
        text=["May giat cua toi con bao hanh khong?"],
        subject="Hoi ve bao hanh",
        sender="Tran Khoa <khoa.tran@gmail.com>",
        thread="khoa",
    ),
    "13-html-only-hostile.eml": Expect(
        text=["Cơ hội hợp tác", "Xem chi tiết tại đây hoặc trang này.", "0987 654 321"],
        html_has=['href="https://example.com/hop-tac"', 'rel="noopener noreferrer nofollow"'],
        html_lacks=["script", "onload", "onerror", "javascript:", "iframe", "<form", "style"],
        thread="promo",
    ),
    "14-gmail-reply-quoted-vi.eml": Expect(
        text=["> Đơn hàng #1042 của tôi"],
        visible="Shop ơi, có mã vận đơn chưa ạ?",
        thread="binh",  # In-Reply-To names message 01
    ),
    "15-outlook-tl-reply-no-references.eml": Expect(
        visible="Tôi nhận được hàng rồi, cảm ơn shop.",
        text=["Từ: Cửa hàng Bình An <support@shop.vn>"],
        thread="binh",  # no references: "TL: TL:" stripped, same contact, same subject
    ),
    "16-raw-utf8-headers-no-message-id.eml": Expect(
        text=["Chân tôi dài 24cm thì đi size nào?"],
        subject="Tư vấn size giày",
        sender="Đặng Hải Yến <yen.dang@zing.vn>",
        thread="yen",
    ),
    "17-noreply-notification.eml": Expect(
        text=["Đơn GHN123456 đã giao thành công."], automated=True, thread="ghn"
    ),
    "18-zero-bytes.eml": Expect(rejected="empty message (0 bytes)"),
    "19-other-charsets.eml": Expect(
        text=["Здравствуйте, где мой заказ?", "您好，我的訂單在哪裡？"],  # noqa: RUF001
        subject="Заказ / 注文",
        thread="ivan",
    ),
    "20-qp-soft-line-breaks.eml": Expect(
        text=[
            "Tôi muốn đặt 50 thùng nước suối cho văn phòng, giao vào sáng thứ Bảy, địa chỉ 12 "
            "Nguyễn Huệ, Quận 1, TP.HCM; xuất hóa đơn VAT cho Công ty TNHH Ánh Dương."
        ],
        thread="vanphong",
    ),
    "21-apple-mail-text-image-text.eml": Expect(
        text=["Màu áo nhận được khác ảnh trên web:\n\nShop đổi giúp tôi màu xanh nhé."],
        attachments=[("IMG_0042.png", "image/png", 70)],
        inline={"IMG_0042.png": None},
        thread="phuong",
    ),
}


def test_every_corpus_file_has_expectations():
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(EXPECTED)


@pytest.fixture
async def corpus_hub(make_settings, start_hub, email_account):
    return await start_hub(make_settings(accounts=[email_account()]))


async def ingest_corpus(hub) -> dict[str, Message | str]:
    channel = hub.runtime.channels["support"]
    results: dict[str, Message | str] = {}
    for name in EXPECTED:
        raw = (CORPUS / name).read_bytes()
        try:
            outcome = await channel.receive(raw, source={"file": name})
        except InvalidRequest as exc:  # a clear rejection, never another exception
            results[name] = exc.message
            continue
        assert outcome is not None, name
        results[name] = await hub.runtime.store.get_message(outcome.message_id)
    return results


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_corpus_message(name, corpus_hub):
    results = await ingest_corpus(corpus_hub)
    expect = EXPECTED[name]
    result = results[name]
    if expect.rejected is not None:
        assert result == expect.rejected
        return
    assert isinstance(result, Message), result
    store = corpus_hub.runtime.store
    for fragment in expect.text:
        assert fragment in result.text
    if expect.visible is not None:
        assert result.text[: result.meta["quoted_at"]].strip() == expect.visible
    else:
        assert "quoted_at" not in result.meta
    assert [(a.name, a.content_type, a.size) for a in result.attachments] == expect.attachments
    assert {a.name: a.content_id for a in result.attachments if a.inline} == expect.inline
    for attachment in result.attachments:  # each one is kept, byte for byte
        assert not attachment.too_large and attachment.storage_key
        data = await corpus_hub.runtime.attachments.read(attachment.storage_key)
        assert len(data) == attachment.size
    raw = await corpus_hub.runtime.attachments.read(result.meta["raw_key"])
    assert raw == (CORPUS / name).read_bytes()  # the raw MIME is kept as it came
    assert bool(result.meta.get("automated")) is expect.automated
    if expect.subject is not None:
        conversation = await store.get_conversation(result.conversation_id)
        assert conversation.subject == expect.subject
    if expect.sender is not None:
        sender = result.meta["email"]["from"]
        assert f"{sender['name']} <{sender['address']}>" == expect.sender
    for fragment in expect.html_has:
        assert fragment in (result.html or "")
    for fragment in expect.html_lacks:
        assert fragment not in (result.html or "").lower()
    # Thread: same label, same conversation; a different label, another one.
    for other, other_expect in EXPECTED.items():
        stored = results[other]
        if other == name or not isinstance(stored, Message):
            continue
        same = stored.conversation_id == result.conversation_id
        assert same == (other_expect.thread == expect.thread), (name, other)


async def test_the_whole_corpus_goes_through_imap_without_an_exception(
    make_settings, start_hub, mailbox, email_account, caplog
):
    caplog.set_level(logging.INFO)
    hub = await start_hub(make_settings(accounts=[email_account(mailbox=mailbox)]))
    await started(hub)
    files = [n for n in EXPECTED if (CORPUS / n).stat().st_size]  # IMAP refuses 0 bytes
    await asyncio.to_thread(mailbox.append, *[(CORPUS / n).read_bytes() for n in files])

    async def all_read():
        state = await hub.runtime.store.channel_state("support", "imap:INBOX")
        return state["last_uid"] == len(files)

    await eventually(all_read, timeout=30)
    # One message is a bounce the hub applied to nothing it sent: kept as a message.
    assert len(await inbound(hub)) == len(files)
    assert "Traceback" not in caplog.text and "channel input crashed" not in caplog.text
    assert hub.runtime.channels["support"].pollers[0].sessions == 1
