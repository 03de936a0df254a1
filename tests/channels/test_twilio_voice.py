"""Twilio voice: the TwiML a caller hears, and one timeline event per call,
kept up to date by Twilio's callbacks however often they are replayed."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from hub.clock import FrozenClock
from hub.inbox.store import ConversationFilter
from tests.channels.twilio_hub import add_agent, start_twilio_hub
from tests.peers.twilio import TwilioPeer, recorded

CALL = "CA5e8f0b7c3d2a1f4e6b9c8d7a0e1f2b3c"
CUSTOMER = "+84901234567"
HOURS = {"timezone": "Asia/Ho_Chi_Minh", "mon": ["08:00-12:00", "13:30-17:30"]}


@pytest.fixture
async def peer():
    peer = TwilioPeer()
    await peer.start()
    yield peer
    await peer.stop()


@pytest.fixture
def clock():
    return FrozenClock()  # Monday 2026-01-05 09:00 in Ho Chi Minh City


@pytest.fixture
async def hub(make_settings, start_hub, peer, monkeypatch, clock):
    voice = {"hours": HOURS, "transcribe": True, "ring_seconds": 25}
    return await start_twilio_hub(
        make_settings, start_hub, peer, monkeypatch, clock=clock, voice=voice
    )


async def ring(peer, **fields):
    status, body = await peer.post(
        peer.webhook_url("hotline", "voice"), {**recorded("voice_incoming"), **fields}
    )
    assert status == 200, body
    return ET.fromstring(body)


async def callback(peer, url, params):
    status, body = await peer.post(url, params)
    assert status in (200, 204), body
    return ET.fromstring(body) if body.strip() else None


async def calls(hub):
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=100)
    return [m for c in page.items for m in await store.list_messages(c.id)]


async def the_call(hub):
    [message] = await calls(hub)
    assert message.direction == "event" and message.external_id == CALL
    return message


def query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_an_answered_call_is_one_event_updated_to_completed(hub, peer, clock):
    lan, _ = await add_agent(
        hub, "lan@shop.vn", name="Lan", presence="online", phone="+84911000111"
    )
    await add_agent(hub, "away@shop.vn", presence="away", phone="+84911000222")
    twiml = await ring(peer)
    say, dial = list(twiml)
    assert say.tag == "Say" and say.get("language") == "vi-VN" and "Xin chào" in say.text
    assert dial.tag == "Dial" and dial.get("timeout") == "25"
    assert dial.get("answerOnBridge") == "true"
    [number] = list(dial)
    assert number.text == "+84911000111"  # only online agents with a phone are rung
    assert query(number.get("statusCallback")) == {"caller": CUSTOMER, "agent": lan.id}
    ringing = await the_call(hub)
    assert ringing.text == f"Call from {CUSTOMER} — ringing"
    assert ringing.meta["call"]["status"] == "ringing"

    clock.advance(timedelta(seconds=8))
    agent_leg = recorded("voice_agent_leg", agent_phone="+84911000111")
    await callback(peer, number.get("statusCallback"), agent_leg)
    answered = await the_call(hub)
    assert answered.meta["call"]["status"] == "answered"
    assert answered.meta["call"]["answered_by"]["agent_id"] == lan.id
    assert answered.text == f"Call from {CUSTOMER} answered by Lan — in progress"

    clock.advance(timedelta(seconds=95))
    dialed = recorded(
        "voice_dial_action", dial_status="completed", dial_duration="95", bridged="true"
    )
    after = await callback(peer, dial.get("action"), dialed)
    assert [e.tag for e in after] == ["Hangup"]
    status = recorded("voice_status", status="completed", duration="104")
    await callback(peer, peer.webhook_url("hotline", "voice/status"), status)
    completed = await the_call(hub)
    assert completed.text == f"Call from {CUSTOMER} answered by Lan · 1 min 35 s"
    record = completed.meta["call"]
    assert record["status"] == "completed" and record["duration_seconds"] == 95
    assert record["answered_at"] == (clock.now() - timedelta(seconds=95)).isoformat().replace(
        "+00:00", "Z"
    )
    conversation = await hub.runtime.store.get_conversation(completed.conversation_id)
    assert "call-back" not in conversation.labels

    # Every callback replayed, in any order: nothing changes, status never goes back.
    clock.advance(timedelta(minutes=1))
    for _ in range(2):
        await ring(peer)
        await callback(peer, number.get("statusCallback"), agent_leg)
        await callback(peer, dial.get("action"), dialed)
        await callback(peer, peer.webhook_url("hotline", "voice/status"), status)
        ringing_again = recorded("voice_status", status="ringing", duration="0")
        await callback(peer, peer.webhook_url("hotline", "voice/status"), ringing_again)
    assert await the_call(hub) == completed


async def test_nobody_answers_voicemail_is_recorded_and_a_call_back_is_flagged(hub, peer, clock):
    lan, _ = await add_agent(
        hub, "lan@shop.vn", name="Lan", presence="online", phone="+84911000111"
    )
    twiml = await ring(peer)
    dial = twiml.find("Dial")
    clock.advance(timedelta(seconds=25))
    dialed = recorded(
        "voice_dial_action", dial_status="no-answer", dial_duration="0", bridged="false"
    )
    voicemail = await callback(peer, dial.get("action"), dialed)
    say, record = list(voicemail)
    assert "để lại lời nhắn" in say.text
    assert record.tag == "Record" and record.get("transcribe") == "true"
    missed = await the_call(hub)
    assert missed.text == f"Missed call from {CUSTOMER} (no answer)"
    conversation = await hub.runtime.store.get_conversation(missed.conversation_id)
    assert conversation.status == "open" and conversation.priority == "high"
    assert conversation.labels == ["call-back"] and conversation.assignee_id == lan.id

    clock.advance(timedelta(seconds=20))
    await callback(peer, record.get("recordingStatusCallback"), recorded("voice_recording"))
    done = await callback(
        peer, record.get("action"), recorded("voice_status", status="in-progress", duration="0")
    )
    assert [e.tag for e in done] == ["Say", "Hangup"]
    await callback(
        peer,
        peer.webhook_url("hotline", "voice/status"),
        recorded("voice_status", status="completed", duration="48"),
    )
    await callback(peer, record.get("transcribeCallback"), recorded("voice_transcription"))
    voicemail_event = await the_call(hub)
    assert voicemail_event.meta["call"]["status"] == "voicemail"
    assert voicemail_event.text == (
        f"Voicemail from {CUSTOMER} (17 s)\n“Please call me back about order 1024.”"
    )
    [link] = voicemail_event.attachments
    assert link.url.endswith("/Recordings/RE9f8e7d6c5b4a39281706f5e4d3c2b1a0.mp3")
    assert link.content_type == "audio/mpeg"


async def test_after_hours_goes_to_voicemail_and_reopens_a_resolved_conversation(hub, peer, clock):
    await ring(peer)
    first = await the_call(hub)
    await hub.runtime.inbox.resolve(first.conversation_id)
    clock.set(clock.now().replace(hour=12))  # 19:00 in Ho Chi Minh City
    twiml = await ring(peer, CallSid="CA" + "1" * 32)
    say, record = list(twiml)
    assert "ngoài giờ làm việc" in say.text and record.tag == "Record"
    events = await calls(hub)
    late = next(m for m in events if m.external_id == "CA" + "1" * 32)
    assert late.text == f"Missed call from {CUSTOMER} (after hours)"
    assert late.conversation_id == first.conversation_id
    conversation = await hub.runtime.store.get_conversation(late.conversation_id)
    assert conversation.status == "open" and conversation.labels == ["call-back"]


async def test_the_customers_own_agent_is_rung_first(hub, peer):
    lan, _ = await add_agent(hub, "lan@shop.vn", presence="online", phone="+84911000111")
    minh, _ = await add_agent(hub, "minh@shop.vn", presence="online", phone="+84911000333")
    await ring(peer)
    conversation_id = (await the_call(hub)).conversation_id
    await hub.runtime.inbox.assign(conversation_id, minh.id)
    twiml = await ring(peer, CallSid="CA" + "2" * 32)
    assert [n.text for n in twiml.find("Dial")] == ["+84911000333"]
    assert lan


async def test_nobody_online_goes_to_voicemail(hub, peer):
    await add_agent(hub, "lan@shop.vn", presence="offline", phone="+84911000111")
    twiml = await ring(peer)
    assert [e.tag for e in twiml] == ["Say", "Record"]
    assert (await the_call(hub)).text == f"Missed call from {CUSTOMER} (no agent available)"


async def test_a_withheld_number_is_still_recorded(hub, peer):
    await ring(peer, From="anonymous", Caller="anonymous")
    call = await the_call(hub)
    contact = await hub.runtime.store.get_contact(call.sender.id)
    assert [(i.channel, i.address) for i in contact.identities] == [("anonymous", CALL)]


async def test_a_tampered_voice_webhook_is_403_and_nothing_is_stored(hub, peer):
    params = recorded("voice_incoming")
    signature = peer.signature(peer.webhook_url("hotline", "voice"), params)
    params["From"] = "+84999999999"
    status, _ = await peer.post(peer.webhook_url("hotline", "voice"), params, signature=signature)
    assert status == 403
    status, _ = await peer.post(
        peer.webhook_url("hotline", "voice/agent") + "?caller=%2B84901234567&agent=x",
        recorded("voice_agent_leg", agent_phone="+84911000111"),
        signature="bm9wZQ==",
    )
    assert status == 403
    assert await calls(hub) == []


async def test_texts_and_calls_from_one_number_share_one_conversation(hub, peer):
    from tests.channels.twilio_hub import text_in

    await text_in(peer, "Alo shop", sid="SM" + "1" * 32)
    await ring(peer)
    messages = await calls(hub)
    assert [m.direction for m in messages] == ["inbound", "event"]
    assert len({m.conversation_id for m in messages}) == 1
    assert len({m.sender.id for m in messages}) == 1


async def test_a_caller_is_answered_even_with_the_store_down_and_the_call_is_recorded_later(
    make_settings, start_hub, peer, monkeypatch
):
    import sqlite3

    from tests.channels.twilio_hub import twilio_account

    monkeypatch.setenv("HUB_TEST_TWILIO_TOKEN", peer.auth_token)
    settings = make_settings(
        accounts=[twilio_account(peer)],
        server={"public_url": peer.public_url},
        store={"sqlite_busy_timeout_ms": 100},
    )
    hub = await start_hub(settings)
    peer.hub_url = str(hub.client.make_url("/"))
    await add_agent(hub, "lan@shop.vn", presence="online", phone="+84911000111")
    blocker = sqlite3.connect(settings.data_dir / "hub.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        twiml = await ring(peer)  # 200 with TwiML, not a 503 read to the caller
        assert [e.tag for e in twiml] == ["Say", "Record"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert await calls(hub) == []
    await callback(
        peer,
        peer.webhook_url("hotline", "voice/status"),
        recorded("voice_status", status="completed", duration="31"),
    )
    assert (await the_call(hub)).text == f"Missed call from {CUSTOMER}"
