"""SMS text rules, pure: segments and encoding, diacritics, consent keywords;
and the Twilio normalisers, fuzzed with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.telephony.diacritics import strip_diacritics
from hub.channels.telephony.keywords import consent_keyword
from hub.channels.telephony.segments import GSM_BASIC, GSM_EXTENDED, measure
from hub.channels.twilio import messaging, voice
from hub.errors import InvalidRequest
from hub.inbox.model import Identity
from tests.peers.twilio import recorded


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 1),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # 160 septets
        ("€" * 81, "GSM-7", 2),
        # 306 septets, yet three parts: the escape pair is never split (152 | 153 | 1).
        ("a" * 152 + "€" + "a" * 152, "GSM-7", 3),
        ("a" * 70 + "ệ", "UCS-2", 2),
        ("ệ" * 70, "UCS-2", 1),
        ("ệ" * 71, "UCS-2", 2),
        ("ệ" * 134, "UCS-2", 2),
        ("ệ" * 135, "UCS-2", 3),
        ("😀" * 35, "UCS-2", 1),  # surrogate pairs: 70 units
        # 134 units, yet three parts: a surrogate pair is never split (66 | 67 | 1).
        ("a" * 66 + "😀" + "a" * 66, "UCS-2", 3),
        ("Cảm ơn quý khách", "UCS-2", 1),
        ("Cam on quy khach", "GSM-7", 1),
    ],
)
def test_segments_and_encoding(text, encoding, segments):
    size = measure(text)
    assert (size.encoding, size.segments) == (encoding, segments)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=800))
def test_segments_cover_the_text_and_never_exceed_the_limits(text):
    size = measure(text)
    per_part = 153 if size.encoding == "GSM-7" else 67
    single = 160 if size.encoding == "GSM-7" else 70
    assert size.segments >= 1
    if size.units <= single:
        assert size.segments == 1
    else:
        # Greedy packing wastes at most one unit a part (an unsplittable pair).
        assert size.units <= size.segments * per_part
        assert size.units > (size.segments - 1) * (per_part - 1)
    if size.encoding == "GSM-7":
        assert all(c in GSM_BASIC or c in GSM_EXTENDED for c in text)


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("Cảm ơn quý khách", "Cam on quy khach"),
        ("ĐƠN HÀNG đã giao", "DON HANG da giao"),
        ("Nguyễn Thị Hường, phường Bến Nghé", "Nguyen Thi Huong, phuong Ben Nghe"),
        ("Từ chối", "Tu choi"),
        ("ỳ ỷ ỹ ỵ ý", "y y y y y"),
        ("Giá 100€ {ưu đãi}", "Gia 100€ {uu dai}"),
    ],
)
def test_strip_diacritics(text, plain):
    assert strip_diacritics(text) == plain


VIETNAMESE = (
    "aăâbcdđeêghiklmnoôơpqrstuưvxyàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ"
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=VIETNAMESE + VIETNAMESE.upper() + " .,!?0123456789", max_size=300))
def test_vietnamese_without_diacritics_is_always_gsm7(text):
    plain = strip_diacritics(text)
    assert measure(plain).encoding == "GSM-7"
    assert len(plain) == len(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("STOP", ("opted_out", "STOP")),
        ("stop", ("opted_out", "STOP")),
        (" Stop. ", ("opted_out", "STOP")),
        ("STOPALL", ("opted_out", "STOPALL")),
        ("unsubscribe", ("opted_out", "UNSUBSCRIBE")),
        ("Cancel", ("opted_out", "CANCEL")),
        ("end", ("opted_out", "END")),
        ("quit!", ("opted_out", "QUIT")),
        ("HUY", ("opted_out", "HUY")),
        ("Hủy", ("opted_out", "HUY")),
        ("hủy", ("opted_out", "HUY")),
        ("TU CHOI", ("opted_out", "TU CHOI")),
        ("Từ  chối", ("opted_out", "TU CHOI")),
        ("từ chối", ("opted_out", "TU CHOI")),
        ("START", ("opted_in", "START")),
        ("unstop", ("opted_in", "UNSTOP")),
        ("Yes", ("opted_in", "YES")),
        ("stop sending me this", None),
        ("Tôi muốn hủy đơn hàng", None),
        ("", None),
        ("STOP" * 20, None),
    ],
)
def test_consent_keywords_are_whole_messages(text, expected):
    assert consent_keyword(text) == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(recorded("inbound_mms"))), st.text(max_size=40)))
def test_normalise_sms_never_fails_except_with_invalid_request(overrides):
    form = {**recorded("inbound_mms"), **overrides}
    try:
        inbound = messaging.normalise_sms(form, account_id="hotline", default_region="VN")
    except InvalidRequest:
        return
    assert inbound.external_id == form["MessageSid"].strip()
    assert inbound.sender.identities[0].channel == "phone"
    assert inbound.sender.identities[0].address.startswith("+")


def test_normalise_recorded_sms_and_mms():
    sms = messaging.normalise_sms(
        recorded("inbound_sms"), account_id="hotline", default_region="VN"
    )
    assert sms.sender.identities == [Identity(channel="phone", address="+84901234567")]
    assert sms.consent is None and sms.attachments == []
    mms = messaging.normalise_sms(
        recorded("inbound_mms"), account_id="hotline", default_region="VN"
    )
    assert [a.content_type for a in mms.attachments] == ["image/jpeg", "application/pdf"]


def test_twilio_advanced_opt_out_type_is_final():
    form = {**recorded("inbound_sms"), "Body": "NGUNG", "OptOutType": "STOP"}
    inbound = messaging.normalise_sms(form, account_id="hotline", default_region="VN")
    assert inbound.consent is not None and inbound.consent.status == "opted_out"
    assert inbound.consent.keyword == "NGUNG"
    form = {**recorded("inbound_sms"), "Body": "Tiếp tục", "OptOutType": "START"}
    inbound = messaging.normalise_sms(form, account_id="hotline", default_region="VN")
    assert inbound.consent is not None and inbound.consent.status == "opted_in"
    form = {**recorded("inbound_sms"), "Body": "help", "OptOutType": "HELP"}
    assert messaging.normalise_sms(form, account_id="h", default_region="VN").consent is None


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            "voice_incoming",
            "voice_status",
            "voice_dial_action",
            "voice_recording",
            "voice_transcription",
        ]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "CallSid",
                "CallStatus",
                "CallDuration",
                "DialCallStatus",
                "DialCallDuration",
                "RecordingUrl",
                "RecordingDuration",
                "RecordingStatus",
                "TranscriptionText",
                "TranscriptionStatus",
                "From",
            ]
        ),
        st.text(max_size=30),
    ),
)
def test_voice_normalisers_never_fail_except_with_invalid_request(name, overrides):
    form = {
        **recorded(
            name,
            status="completed",
            duration="5",
            dial_status="no-answer",
            dial_duration="0",
            bridged="false",
        ),
        **overrides,
    }
    at = datetime(2026, 1, 5, tzinfo=UTC)
    for normalise in (
        voice.incoming_call,
        voice.call_status,
        voice.dial_ended,
        voice.recording_ready,
        voice.transcription_ready,
    ):
        try:
            update = normalise(form, at)
        except InvalidRequest:
            continue
        if update is not None:
            assert update.call_id == form["CallSid"].strip()
