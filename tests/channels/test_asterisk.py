"""Asterisk: AMI transcripts of real calls replayed by a local AMI server, the
resulting timeline asserted exactly; reconnects, keep-alive and click-to-call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.asterisk.assembler import CallAssembler
from hub.channels.asterisk.protocol import AmiReader, encode
from hub.inbox.calls import CallAgent, CallRecord, merge
from hub.inbox.store import ConversationFilter
from tests.channels.twilio_hub import add_agent
from tests.conftest import eventually
from tests.peers.asterisk import DATA, AmiPeer, transcript

SECRET_ENV = "HUB_TEST_AMI_SECRET"
VOICEMAIL_URL = "https://pbx.example.vn/voicemail/{mailbox}/{call_id}"
NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


@pytest.fixture
async def pbx():
    peer = AmiPeer()
    await peer.start()
    yield peer
    await peer.stop()


def pbx_account(pbx: AmiPeer, **options):
    return {
        "id": "pbx",
        "channel": "asterisk",
        "host": pbx.host,
        "port": pbx.port,
        "username": "hub",
        "secret_env": SECRET_ENV,
        "ping_interval_seconds": 0.3,
        "ping_timeout_seconds": 0.5,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "cdr_grace_seconds": 0.5,
        "voicemail_url": VOICEMAIL_URL,
        **options,
    }


@pytest.fixture
async def hub(make_settings, start_hub, pbx, monkeypatch):
    monkeypatch.setenv(SECRET_ENV, pbx.secret)
    hub = await start_hub(make_settings(accounts=[pbx_account(pbx)]))
    hub.lan, hub.lan_token = await add_agent(
        hub, "lan@shop.vn", name="Lan", extension="101", presence="online"
    )
    hub.minh, _ = await add_agent(hub, "minh@shop.vn", name="Minh", extension="102")
    await pbx.wait_for_login(1)

    async def caught_up():  # the hub's first catch-up is done before a test plays calls
        return any(a.get("Action") == "CoreShowChannels" for a in pbx.actions)

    await eventually(caught_up)
    return hub


async def timeline(hub):
    """Every call event in the hub: (customer phone, text), oldest first."""
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=100)
    events = [m for c in page.items for m in await store.list_messages(c.id) if "call" in m.meta]
    events.sort(key=lambda m: (m.meta["call"]["started_at"], m.id))
    return [(m.meta["call"]["customer"], m.text) for m in events]


async def settles_to(hub, expected):
    async def matches():
        return await timeline(hub) == expected

    try:
        await eventually(matches, timeout=10)
    except AssertionError:
        assert await timeline(hub) == expected  # show the difference
    return expected


async def call_message(hub, customer):
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=100)
    for conversation in page.items:
        for message in await store.list_messages(conversation.id):
            if message.meta.get("call", {}).get("customer") == customer:
                return conversation, message
    raise AssertionError(f"no call from {customer}")


# -- pure parts ----------------------------------------------------------------


def test_encode_refuses_line_breaks_in_values():
    assert encode("Ping", "a1", {}) == b"Action: Ping\r\nActionID: a1\r\n\r\n"
    with pytest.raises(ValueError):
        encode("Originate", "a1", {"Exten": "0901\r\nAction: Logoff"})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=60))
def test_the_reader_gives_the_same_messages_however_the_bytes_are_cut(cuts):
    raw = (
        b"Asterisk Call Manager/9.0.0\r\n"
        + b"\r\n\r\n".join(
            block.replace("\n", "\r\n").encode() for block in transcript("interleaved")
        )
        + b"\r\n\r\n"
    )
    whole = AmiReader()
    expected = whole.feed(raw)
    reader, pieces, start = AmiReader(), [], 0
    for cut in cuts:
        pieces.append(raw[start : start + cut])
        start += cut
    pieces.append(raw[start:])
    got = [m for piece in pieces for m in reader.feed(piece)]
    assert got == expected and reader.banner == "Asterisk Call Manager/9.0.0"
    assert reader.bad_lines == whole.bad_lines == 1


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_the_reader_and_assembler_survive_garbage(data):
    reader = AmiReader()
    assembler = CallAssembler()
    for message in reader.feed(b"banner\n" + data):
        for emit in assembler.feed(message, NOW):
            assert emit.update.call_id


ALL_EVENTS = [
    message
    for name in ("answered", "missed", "transferred", "voicemail", "outbound")
    for message in AmiReader(banner="-").feed("\n\n".join(transcript(name)).encode() + b"\n\n")
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALL_EVENTS), max_size=60), st.booleans())
def test_any_mix_of_real_events_in_any_order_never_breaks_the_assembler(events, reconnect):
    assembler = CallAssembler(cdr_grace=timedelta(0))
    for n, message in enumerate(events):
        if reconnect and n == len(events) // 2:
            assembler.reconnected(set(), NOW)
        for emit in assembler.feed(message, NOW):
            assert emit.update.call_id and emit.update.direction in ("inbound", "outbound")
    for emit in assembler.expire(NOW):
        assert emit.update.ended and emit.update.end_reason == "unknown"


@pytest.mark.parametrize(
    ("name", "status", "agent"),
    [
        ("answered", "completed", "101"),
        ("missed", "missed", None),
        ("transferred", "completed", "101"),
        ("voicemail", "voicemail", None),
        ("outbound", "completed", "101"),
    ],
)
def test_each_transcript_folds_into_one_call_record(name, status, agent):
    reader = AmiReader(banner="-")
    assembler = CallAssembler(recording_url=VOICEMAIL_URL)
    record = None
    for block in transcript(name):
        for message in reader.feed(block.encode() + b"\n\n"):
            for emit in assembler.feed(message, NOW):
                ref = emit.update.answered_by or emit.update.transferred_to
                resolved = CallAgent(extension=ref.extension) if ref else None
                record = merge(
                    record,
                    emit.update,
                    customer=emit.customer,
                    answered_by=resolved if emit.update.answered_by else None,
                    transferred_to=resolved if emit.update.transferred_to else None,
                )
    assert record is not None and record.status == status
    assert (record.answered_by.extension if record.answered_by else None) == agent
    assert assembler.calls == {}


# -- through the hub -------------------------------------------------------------


async def test_an_answered_call_lands_on_the_timeline_with_the_agent(hub, pbx):
    await pbx.play("answered")
    await settles_to(
        hub, [("+84901234567", "Call from +84901234567 answered by Lan (ext 101) · 1 min 32 s")]
    )
    conversation, message = await call_message(hub, "+84901234567")
    call = message.meta["call"]
    assert call["answered_by"]["agent_id"] == hub.lan.id and call["duration_seconds"] == 92
    record = CallRecord.from_meta(message.meta)
    assert record.started_at == datetime(2026, 1, 5, 2, 0, 0, 100_000, tzinfo=UTC)
    assert record.line == "02873001234"
    assert conversation.account_id == "pbx" and "call-back" not in conversation.labels
    contact = await hub.runtime.store.get_contact(conversation.contact_id)
    assert [(i.channel, i.address) for i in contact.identities] == [("phone", "+84901234567")]


async def test_a_missed_call_is_flagged_for_a_call_back_and_assigned(hub, pbx):
    await pbx.play("missed")
    await settles_to(hub, [("+84912345678", "Missed call from +84912345678 (no answer)")])
    conversation, _ = await call_message(hub, "+84912345678")
    assert conversation.labels == ["call-back"] and conversation.priority == "high"
    assert conversation.status == "open" and conversation.assignee_id == hub.lan.id


async def test_a_transferred_call_names_both_agents(hub, pbx):
    await pbx.play("transferred")
    await settles_to(
        hub,
        [
            (
                "+84987654321",
                "Call from +84987654321 answered by Lan (ext 101),"
                " transferred to Minh (ext 102) · 2 min 0 s",
            )
        ],
    )
    _, message = await call_message(hub, "+84987654321")
    assert [t["agent_id"] for t in message.meta["call"]["transfers"]] == [hub.minh.id]


async def test_a_voicemail_has_its_link_and_asks_for_a_call_back(hub, pbx):
    await pbx.play("voicemail")
    await settles_to(hub, [("+84909876543", "Voicemail from +84909876543")])
    conversation, message = await call_message(hub, "+84909876543")
    [link] = message.attachments
    assert link.url == "https://pbx.example.vn/voicemail/101@default/1767578580.41"
    assert conversation.labels == ["call-back"]


async def test_interleaved_calls_and_malformed_events(hub, pbx):
    await pbx.play("interleaved")
    await settles_to(
        hub,
        [
            ("+84938111222", "Call from +84938111222 answered by Lan (ext 101) · 1 min 32 s"),
            ("+84977333444", "Missed call from +84977333444 (no answer)"),
        ],
    )
    assert pbx.logins == 1  # noise is skipped, not a reason to reconnect


async def test_replayed_events_change_nothing(hub, pbx):
    await pbx.play("answered")
    expected = [("+84901234567", "Call from +84901234567 answered by Lan (ext 101) · 1 min 32 s")]
    await settles_to(hub, expected)
    _, before = await call_message(hub, "+84901234567")
    await pbx.play("answered")
    await pbx.play("answered_cdr")
    await pbx.play("missed")  # a marker: once it is in, the replays were processed
    await settles_to(
        hub, [*expected, ("+84912345678", "Missed call from +84912345678 (no answer)")]
    )
    _, after = await call_message(hub, "+84901234567")
    assert after == before


# -- reconnects ------------------------------------------------------------------


async def test_disconnect_mid_call_is_completed_from_the_cdr(hub, pbx):
    await pbx.play("answered_then_drop")
    await settles_to(
        hub, [("+84901234567", "Call from +84901234567 answered by Lan (ext 101) — in progress")]
    )
    await pbx.wait_for_login(2)  # the client came back by itself
    await pbx.play("answered_cdr")  # the call ended while the hub was away
    await settles_to(
        hub, [("+84901234567", "Call from +84901234567 answered by Lan (ext 101) · 1 min 32 s")]
    )
    _, message = await call_message(hub, "+84901234567")
    assert message.meta["call"]["end_reason"] == "completed"


async def test_disconnect_mid_call_without_a_cdr_is_closed_as_unknown_end(hub, pbx):
    await pbx.play("answered_then_drop")
    await pbx.wait_for_login(2)
    await settles_to(
        hub,
        [
            (
                "+84901234567",
                "Call from +84901234567 answered by Lan (ext 101)"
                " (end not seen: the PBX connection was lost)",
            )
        ],
    )
    _, message = await call_message(hub, "+84901234567")
    assert message.meta["call"]["end_reason"] == "unknown"
    assert any(a.get("Action") == "CoreShowChannels" for a in pbx.actions)


async def test_a_call_still_up_after_a_reconnect_carries_on(hub, pbx):
    pbx.live_channels = [
        {
            "Channel": "PJSIP/vnpt-trunk-0000000b",
            "Uniqueid": "1767578400.11",
            "Linkedid": "1767578400.11",
        },
        {"Channel": "PJSIP/101-0000000c", "Uniqueid": "1767578400.12", "Linkedid": "1767578400.11"},
    ]
    await pbx.play("answered_then_drop")
    await pbx.wait_for_login(2)

    async def reconciled():
        return sum(a.get("Action") == "CoreShowChannels" for a in pbx.actions) >= 2

    await eventually(reconciled)
    await pbx.play("answered_rest")
    await settles_to(
        hub, [("+84901234567", "Call from +84901234567 answered by Lan (ext 101) · 1 min 32 s")]
    )


async def test_unanswered_keep_alive_reconnects(hub, pbx):
    pbx.answer_pings = False
    await pbx.wait_for_login(2)
    pbx.answer_pings = True
    assert any(a.get("Action") == "Ping" for a in pbx.actions)


async def test_a_refused_login_is_retried_and_serving_goes_on(
    make_settings, start_hub, pbx, monkeypatch
):
    monkeypatch.setenv(SECRET_ENV, "not-the-secret")
    hub = await start_hub(make_settings(accounts=[pbx_account(pbx, reconnect_max_seconds=0.1)]))

    async def retried():
        return sum(a.get("Action") == "Login" for a in pbx.actions) >= 2

    await eventually(retried)
    assert pbx.logins == 0
    assert (await hub.client.get("/healthz")).status == 200


# -- click-to-call ------------------------------------------------------------------


async def a_conversation_with(hub, pbx):
    await pbx.play("missed")
    await settles_to(hub, [("+84912345678", "Missed call from +84912345678 (no answer)")])
    conversation, _ = await call_message(hub, "+84912345678")
    return conversation


async def test_click_to_call_rings_the_agent_then_the_customer(hub, pbx):
    conversation = await a_conversation_with(hub, pbx)
    response = await hub.api("POST", f"/api/v1/conversations/{conversation.id}/call", hub.lan_token)
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["status"] == "calling" and answer["customer"] == "+84912345678"
    assert answer["pbx"]["response"] == "Success"
    assert answer["pbx"]["message"] == "Originate successfully queued"
    [originate] = [a for a in pbx.actions if a.get("Action") == "Originate"]
    assert originate["ActionID"] == answer["pbx"]["action_id"]
    assert originate["Channel"] == "PJSIP/101" and originate["Exten"] == "0912345678"
    assert originate["Context"] == "from-internal" and originate["Async"] == "true"
    assert originate["Variable"] == f"HUB_CONVERSATION={conversation.id}"
    # The PBX then reports the call like any other.
    await pbx.play("outbound")
    await settles_to(
        hub,
        [
            ("+84912345678", "Missed call from +84912345678 (no answer)"),
            ("+84901234567", "Call to +84901234567 made by Lan (ext 101) · 45 s"),
        ],
    )


async def test_click_to_call_refuses_clearly(hub, pbx):
    conversation = await a_conversation_with(hub, pbx)
    path = f"/api/v1/conversations/{conversation.id}/call"
    _, no_extension = await add_agent(hub, "hoa@shop.vn", name="Hoa")
    response = await hub.api("POST", path, no_extension)
    assert response.status == 422
    assert "has no PBX extension" in (await response.json())["error"]["message"]
    assert (await hub.client.post(path)).status == 401
    pbx.originate_answer = "Extension does not exist."
    response = await hub.api("POST", path, hub.lan_token)
    assert response.status == 502
    assert "Extension does not exist." in (await response.json())["error"]["message"]
    response = await hub.api("POST", path, hub.lan_token, json={"account": "nope"})
    assert response.status == 422
    missing = await hub.api("POST", "/api/v1/conversations/" + "0" * 24 + "/call", hub.lan_token)
    assert missing.status == 404
    await pbx.stop()  # the PBX goes away

    async def down():
        return not hub.runtime.channels["pbx"].client.connected.is_set()

    await eventually(down)
    response = await hub.api("POST", path, hub.lan_token)
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "provider_unavailable"


async def test_a_contact_without_a_phone_cannot_be_called(
    make_settings, start_hub, pbx, monkeypatch
):
    from tests.channels.test_api import post
    from tests.peers.api_sender import message

    monkeypatch.setenv(SECRET_ENV, pbx.secret)
    api = {"id": "shop", "channel": "api", "secret_env": "HUB_TEST_API_SECRET"}
    hub = await start_hub(make_settings(accounts=[api, pbx_account(pbx)]))
    _, token = await add_agent(hub, "lan@shop.vn", extension="101")
    answer = await (await post(hub, message("m-1", "cust-1"))).json()
    response = await hub.api(
        "POST", f"/api/v1/conversations/{answer['conversation_id']}/call", token
    )
    assert response.status == 422
    assert (await response.json())["error"]["message"] == "the contact has no phone number to call"


async def test_a_text_reply_on_a_pbx_conversation_fails_saying_why(hub, pbx):
    conversation = await a_conversation_with(hub, pbx)
    response = await hub.api(
        "POST",
        f"/api/v1/conversations/{conversation.id}/messages",
        hub.lan_token,
        json={"text": "Alo"},
    )
    message_id = (await response.json())["id"]

    async def failed():
        return (await hub.runtime.store.get_message(message_id)).status == "failed"

    await eventually(failed)
    stored = await hub.runtime.store.get_message(message_id)
    assert "is a PBX: it carries calls, not text" in stored.error and stored.attempts == 1
    assert DATA.exists()


async def test_a_pbx_call_finds_the_customer_known_from_another_channel(
    make_settings, start_hub, pbx, monkeypatch
):
    from tests.channels.test_api import post
    from tests.peers.api_sender import message

    monkeypatch.setenv(SECRET_ENV, pbx.secret)
    api = {"id": "shop", "channel": "api", "secret_env": "HUB_TEST_API_SECRET"}
    hub = await start_hub(make_settings(accounts=[api, pbx_account(pbx)]))
    await pbx.wait_for_login(1)
    answer = await (await post(hub, message("m-1", "cust-1", phone="+84 90 123 45 67"))).json()
    await pbx.play("answered")  # the PBX knows them as 0901234567
    await settles_to(
        hub, [("+84901234567", "Call from +84901234567 answered by ext 101 · 1 min 32 s")]
    )
    conversation, _ = await call_message(hub, "+84901234567")
    assert conversation.contact_id == answer["contact_id"]


async def test_a_hub_restarted_mid_call_completes_the_call_from_its_cdr(
    make_settings, start_hub, pbx, monkeypatch
):
    monkeypatch.setenv(SECRET_ENV, pbx.secret)
    settings = make_settings(accounts=[pbx_account(pbx)])
    first = await start_hub(settings)
    await add_agent(first, "lan@shop.vn", name="Lan", extension="101")
    await pbx.wait_for_login(1)
    await pbx.play(transcript("answered")[:7])  # ringing, answered, bridged
    in_progress = "Call from +84901234567 answered by Lan (ext 101) — in progress"
    await settles_to(first, [("+84901234567", in_progress)])
    await first.client.close()  # the hub stops (a deploy) while the call goes on
    second = await start_hub(settings)
    await pbx.wait_for_login(2)
    await pbx.play("answered_rest")  # hang-ups of a call it never saw, then the Cdr
    await settles_to(
        second, [("+84901234567", "Call from +84901234567 answered by Lan (ext 101) · 1 min 32 s")]
    )


async def test_a_click_to_call_whose_agent_does_not_pick_up_says_so(hub, pbx):
    conversation = await a_conversation_with(hub, pbx)
    response = await hub.api("POST", f"/api/v1/conversations/{conversation.id}/call", hub.lan_token)
    action_id = (await response.json())["pbx"]["action_id"]
    await pbx.play(
        [
            "Event: OriginateResponse\nPrivilege: call,all\nActionID: " + action_id + "\n"
            "Response: Failure\nChannel: PJSIP/101\nContext: from-internal\n"
            "Exten: 0912345678\nApplication: \nData: \nReason: 3\nUniqueid: <null>\n"
            "CallerIDNum: 101\nCallerIDName: Lan"
        ]
    )

    async def reported():
        return len(await timeline(hub)) == 2

    await eventually(reported)
    texts = [text for _, text in await timeline(hub)]
    assert "Call to +84912345678 not answered (the agent's phone was not answered)" in texts
    # Nobody talked: the call-back is still to do.
    conversation = await hub.runtime.store.get_conversation(conversation.id)
    assert conversation.labels == ["call-back"]
