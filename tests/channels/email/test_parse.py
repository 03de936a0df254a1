"""Parsing mail: charsets, headers, bodies, attachments, quotes, HTML, loops and
reports, and a parser that never raises whatever bytes it is given."""

from __future__ import annotations

import base64
import random
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.channels.email import charsets
from hub.channels.email.content import html_to_text, quote_start, sanitise_html
from hub.channels.email.parse import parse

CORPUS = Path(__file__).parents[2] / "data" / "email"


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


# -- charsets ----------------------------------------------------------------
def test_viscii_is_decoded_although_python_has_no_such_codec():
    assert charsets.decode("Hỏi giá máy lọc nước".encode("viscii"), "VISCII") == (
        "Hỏi giá máy lọc nước"
    )
    assert charsets.codec_for("csVISCII") == "viscii"


def test_windows_1258_tone_marks_come_out_composed():
    # "ầ" is written as "â" + a combining grave accent in windows-1258.
    text = charsets.decode(b"Tr\xe2\xccn", "windows-1258")
    assert text == "Trần" and unicodedata.is_normalized("NFC", text)


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        ("Giao hàng".encode(), "x-made-up-charset", "Giao hàng"),
        ("Giao hàng".encode(), None, "Giao hàng"),
        ("Số điện thoại".encode("cp1258", "replace"), None, "S? đi?n tho?i"),
        (b"\xff\xfe broken", "utf-8", "\ufffd\ufffd broken"),
        (b"a\x00b", "ascii", "ab"),
    ],
)
def test_any_declared_or_missing_charset_decodes_without_raising(data, declared, expected):
    assert charsets.decode(data, declared) == expected


# -- headers -------------------------------------------------------------------
def test_encoded_words_raw_utf8_and_nul_bytes_in_headers_are_all_read():
    raw = (
        b"From: \xc4\x90\xe1\xba\xb7ng H\xe1\xba\xa3i Y\xe1\xba\xbfn <Yen@Zing.vn>\r\n"
        b"To: =?utf-8?b?SOG7lyB0cuG7o8Kg?= <support@shop.vn>, bad address, <x@y.vn>\r\n"
        b"Subject: =?viscii?Q?H=FEi?= \x00=?utf-8?q?gi=C3=A1?=\r\n"
        b"Message-ID: not-bracketed@mailer.vn\r\n"
        b"References: <a@x> junk <b@x>\r\n"
        b"Date: not a date\r\n\r\nbody"
    )
    parsed = parse(raw)
    assert parsed.sender is not None
    assert (parsed.sender.name, parsed.sender.address) == ("Đặng Hải Yến", "Yen@Zing.vn")
    assert [m.address for m in parsed.to] == ["support@shop.vn", "x@y.vn"]
    assert "\x00" not in parsed.subject and parsed.subject.endswith("giá")
    assert parsed.message_id == "<not-bracketed@mailer.vn>"
    assert parsed.references == ["<a@x>", "<b@x>"]
    assert parsed.date is None and parsed.error is None


# -- bodies and attachments ----------------------------------------------------
def test_attachment_over_the_cap_is_measured_without_decoding_and_marked():
    payload = bytes(random.Random(1).randbytes(300_000))
    encoded = base64.encodebytes(payload).decode()
    raw = crlf(
        "From: a@b.vn\nSubject: x\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\nhi\n"
        "--z\nContent-Type: application/zip\n"
        "Content-Disposition: attachment; filename=big.zip\n"
        f"Content-Transfer-Encoding: base64\n\n{encoded}--z\n"
        "Content-Type: image/png\nContent-Disposition: attachment; filename=small.png\n"
        "Content-Transfer-Encoding: base64\n\naGVsbG8=\n--z--\n"
    )
    parsed = parse(raw, max_attachment_bytes=100_000)
    big, small = parsed.attachments
    assert (big.name, big.too_large, big.data) == ("big.zip", True, None)
    assert abs(big.size - len(payload)) < 10  # estimated from the encoded size
    assert (small.name, small.too_large, small.data, small.size) == (
        "small.png",
        False,
        b"hello",
        5,
    )


@pytest.mark.slow
def test_a_50_mb_attachment_is_recorded_as_too_large_not_held_in_memory_twice():
    chunk = random.Random(50).randbytes(1024 * 1024)
    encoded = base64.encodebytes(chunk * 50).replace(b"\n", b"\r\n")
    raw = (
        crlf(
            "From: Kho <kho@example.vn>\nSubject: Video kiểm kê\nMIME-Version: 1.0\n"
            "Content-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain; "
            "charset=utf-8\n\nVideo kiểm kê kho đính kèm.\n--z\nContent-Type: video/mp4\n"
            "Content-Disposition: attachment; filename=kiem-ke.mp4\n"
            "Content-Transfer-Encoding: base64\n\n"
        )
        + encoded
        + b"--z--\r\n"
    )
    parsed = parse(raw)
    assert parsed.text == "Video kiểm kê kho đính kèm."
    [video] = parsed.attachments
    assert (video.name, video.content_type, video.too_large, video.data) == (
        "kiem-ke.mp4",
        "video/mp4",
        True,
        None,
    )
    assert video.size == 50 * 1024 * 1024


def test_alternative_takes_plain_text_and_html_and_html_only_mail_gets_text():
    both = crlf(
        "From: a@b.vn\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=a\n\n"
        "--a\nContent-Type: text/plain; charset=utf-8\n\nChào\n"
        "--a\nContent-Type: text/html; charset=utf-8\n\n<p>Chào <b>bạn</b></p>\n--a--\n"
    )
    parsed = parse(both)
    assert parsed.text == "Chào"
    assert parsed.html == "<p>Chào <b>bạn</b></p>"
    html_only = crlf(
        "From: a@b.vn\nContent-Type: text/html; charset=utf-8\n\n"
        "<div>Dòng 1<br>Dòng&nbsp;2</div><ul><li>một</li><li>hai</li></ul>"
    )
    assert parse(html_only).text == "Dòng 1\nDòng 2\n\n- một\n- hai"


def test_absurdly_deep_nesting_is_cut_off_not_recursed_into():
    depth = 200
    text = "From: a@b.vn\nMIME-Version: 1.0\n"
    for level in range(depth):
        text += f"Content-Type: multipart/mixed; boundary=b{level}\n\n--b{level}\n"
    text += "Content-Type: text/plain\n\ndeep\n"
    parsed = parse(crlf(text))
    assert parsed.error is None
    assert any("too deep" in d for d in parsed.defects)


# -- quotes ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("Cảm ơn shop.\n\nOn Mon, 5 Jan 2026 at 09:12, Bình <b@x.vn> wrote:\n> cũ", "Cảm ơn shop."),
        (
            "Dạ vâng.\n\nVào Th 2, 5 thg 1, 2026 lúc 09:12 Bình <\nb@x.vn> đã viết:\n> cũ",
            "Dạ vâng.",
        ),
        ("OK.\n\n-----Original Message-----\nFrom: shop\n\nold", "OK."),
        ("Được.\n\nTừ: Shop <s@shop.vn>\nĐã gửi: Thứ Hai\nChủ đề: Re: x\n\ncũ", "Được."),
        ("Rồi ạ.\n\n________________________________\nFrom: Shop\nSent: Monday", "Rồi ạ."),
        ("Thanks\n> quoted\n> more\n\n> end", "Thanks"),
    ],
)
def test_quoted_history_is_found_so_it_can_be_folded(text, visible):
    start = quote_start(text)
    assert start is not None and text[:start].strip() == visible


@pytest.mark.parametrize(
    "text",
    [
        "No quotes here.\nJust text.",
        "> only a quote, nothing new",
        "FYI\n\n---------- Forwarded message ----------\nFrom: A\nDate: B\n\nforwarded text",
        "Inline answers:\n> question one\nanswer one\n> question two\nanswer two",
    ],
)
def test_text_without_trailing_quoted_history_is_not_folded(text):
    assert quote_start(text) is None


# -- HTML ------------------------------------------------------------------------
def test_html_is_sanitised_before_any_browser_sees_it():
    hostile = (
        "<html><head><style>*{x:y}</style><script>alert(1)</script></head>"
        '<body onload="steal()"><p class="gmail_quote" style="color:red">hi</p>'
        '<img src="x" onerror="alert(1)"><img src="cid:logo@x"><a href="javascript:alert(1)">a</a>'
        '<a href="https://ok.vn">b</a><iframe src="https://evil"></iframe>'
        '<form action="https://evil"><input name="p"></form><svg onload="x()"></svg></body></html>'
    )
    clean = sanitise_html(hostile)
    for forbidden in ("script", "alert", "onload", "onerror", "style", "iframe", "form",
                      "input", "javascript", "svg"):  # fmt: skip
        assert forbidden not in clean.lower(), forbidden
    assert 'class="gmail_quote"' in clean
    images = re.findall(r"<img [^>]*>", clean)
    assert len(images) == 2 and any('src="cid:logo@x"' in i for i in images)
    assert all('referrerpolicy="no-referrer"' in i for i in images)  # order varies
    assert '<a href="https://ok.vn" rel="noopener noreferrer nofollow">b</a>' in clean


def test_html_to_text_keeps_paragraphs_and_drops_scripts():
    assert html_to_text("<p>Một</p><p>Hai<script>x()</script></p><pre>a  b</pre>") == (
        "Một\n\nHai\n\na  b"
    )


# -- loops and reports -------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ("Auto-Submitted: auto-replied", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated; owner-email=x@y", "Auto-Submitted: auto-generated"),
        ("Auto-Submitted: no", None),
        ("Precedence: bulk", "Precedence: bulk"),
        ("Precedence: junk", "Precedence: junk"),
        ("Precedence: list", "Precedence: list"),
        ("List-Id: <news.shop.vn>", "List-Id (mailing list)"),
        ("X-Autoreply: yes", "X-Autoreply"),
        ("Return-Path: <>", "null return path (a bounce)"),
    ],
)
def test_mail_sent_by_machines_is_recognised(headers, reason):
    parsed = parse(crlf(f"From: Người <nguoi@example.vn>\n{headers}\nSubject: x\n\nbody"))
    assert parsed.automated == reason


@pytest.mark.parametrize(
    "sender",
    ["MAILER-DAEMON@mx.vn", "postmaster@x.vn", "no-reply@ghn.vn", "noreply@x.vn",
     "do-not-reply@x.vn", "donotreply@x.vn", "bounces+123@x.vn"],
)  # fmt: skip
def test_mailer_daemon_and_no_reply_senders_are_machines(sender):
    assert parse(crlf(f"From: {sender}\nSubject: x\n\nbody")).automated is not None
    assert parse(crlf("From: norah@x.vn\nSubject: x\n\nbody")).automated is None


def test_a_delivery_status_notification_names_the_failed_message_and_why():
    parsed = parse((CORPUS / "08-dsn-postfix-bounce.eml").read_bytes())
    assert parsed.report is not None
    assert parsed.report.original_message_id == "<0123456789abcdef01234567.hub@shop.vn>"
    [recipient] = parsed.report.recipients
    assert recipient.address == "khong-ton-tai@gmail.com"
    assert (recipient.action, recipient.status, recipient.permanent_failure) == (
        "failed",
        "5.1.1",
        True,
    )
    assert recipient.diagnostic.startswith("550-5.1.1 The email account that you tried to reach")


# -- never raises ----------------------------------------------------------------------
def test_input_that_is_no_email_gives_an_error_not_an_exception():
    assert parse(b"").error == "empty message (0 bytes)"
    assert parse(b"\r\n\r\n  ").error == "empty message (only blanks)"
    assert parse(b"\x00\x01\x02\xff").error == "no header fields: this is not an e-mail message"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_never_make_the_parser_raise(data):
    parse(data, max_attachment_bytes=1000).as_json()


CORPUS_FILES = sorted(p for p in CORPUS.glob("*.eml") if p.stat().st_size)


@st.composite
def mutated_corpus_message(draw):
    raw = bytearray(draw(st.sampled_from(CORPUS_FILES)).read_bytes())
    for _ in range(draw(st.integers(1, 12))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "nul"]))
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        if action == "flip" and raw:
            raw[at] = draw(st.integers(0, 255))
        elif action == "insert":
            raw[at:at] = draw(
                st.sampled_from(
                    [b"\r\n", b"--", b"=?utf-8?b?", b"?=", b"=", b"\x00", b";", b"*0*=", b"\xff"]
                )
            )
        elif action == "delete":
            del raw[at : at + draw(st.integers(1, 40))]
        elif action == "truncate":
            del raw[at:]
        else:
            raw[at:at] = b"\x00"
    return bytes(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_corpus_message())
def test_mutated_corpus_messages_never_make_the_parser_raise(raw):
    parsed = parse(raw, max_attachment_bytes=200)
    parsed.as_json()
    assert "\x00" not in parsed.text + parsed.subject + (parsed.html or "")
