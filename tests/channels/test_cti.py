"""The generic CTI webhook: newCall / answer / hangup from any PBX, with a
shared token, into the same call records as Twilio and Asterisk."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.cti import CtiEvent, normalise
from hub.errors import InvalidRequest
from hub.inbox.store import ConversationFilter
from tests.channels.twilio_hub import add_agent

TOKEN = "cti-shared-token-0123456789"


@pytest.fixture
async def hub(make_settings, start_hub, monkeypatch):
    monkeypatch.setenv("HUB_TEST_CTI_TOKEN", TOKEN)
    account = {"id": "callcenter", "channel": "cti", "token_env": "HUB_TEST_CTI_TOKEN"}
    hub = await start_hub(make_settings(accounts=[account]))
    hub.lan, _ = await add_agent(hub, "lan@shop.vn", name="Lan", extension="101", presence="online")
    return hub


async def send(hub, body, token=TOKEN, **headers):
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    return await hub.client.post("/webhooks/cti/callcenter", json=body, headers=headers)


async def events(hub):
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=100)
    return [m for c in page.items for m in await store.list_messages(c.id)]


def call(event, **fields):
    return {"event": event, "call_id": "cc-1001", "from": "0901234567", "to": "19001234", **fields}


async def test_new_answer_hangup_make_one_completed_call(hub):
    started = await send(hub, call("newCall", timestamp="2026-01-05T09:00:00+07:00"))
    assert started.status == 200 and (await started.json())["status"] == "recorded"
    await send(hub, call("answer", extension="101", timestamp="2026-01-05T09:00:06+07:00"))
    await send(hub, call("hangup", duration=75, timestamp="2026-01-05T09:01:21+07:00"))
    [message] = await events(hub)
    assert message.text == "Call from +84901234567 answered by Lan (ext 101) · 1 min 15 s"
    assert message.meta["call"]["answered_by"]["agent_id"] == hub.lan.id
    # Replays and a late newCall change nothing.
    again = await send(hub, call("answer", extension="101"))
    assert (await again.json())["status"] == "unchanged"
    await send(hub, call("newCall"))
    assert await events(hub) == [message]


async def test_a_hangup_without_answer_is_a_missed_call_flagged_for_call_back(hub):
    await send(hub, call("newCall"))
    await send(hub, call("hangup", reason="no-answer"))
    [message] = await events(hub)
    assert message.text == "Missed call from +84901234567 (no answer)"
    conversation = await hub.runtime.store.get_conversation(message.conversation_id)
    assert conversation.labels == ["call-back"] and conversation.assignee_id == hub.lan.id


async def test_events_out_of_order_still_make_one_record(hub):
    await send(hub, call("hangup", duration=30, timestamp="2026-01-05T09:01:00+07:00"))
    await send(hub, call("answer", extension="101", timestamp="2026-01-05T09:00:30+07:00"))
    await send(hub, call("newCall", timestamp="2026-01-05T09:00:00+07:00"))
    [message] = await events(hub)
    record = message.meta["call"]
    assert record["status"] == "completed" and record["started_at"].startswith(
        "2026-01-05T02:00:00"
    )


async def test_an_outbound_call_is_on_the_called_customers_timeline(hub):
    body = {
        "event": "newCall",
        "call_id": "cc-2",
        "direction": "outbound",
        "from": "101",
        "to": "+84 912 345 678",
        "extension": "101",
    }
    await send(hub, body)
    await send(hub, {**body, "event": "answer"})
    await send(hub, {**body, "event": "hangup", "duration": 12})
    [message] = await events(hub)
    assert message.text == "Call to +84912345678 made by Lan (ext 101) · 12 s"


@pytest.mark.parametrize(
    ("headers", "token"),
    [({}, None), ({}, "wrong-token-0000000000000"), ({"X-Hub-Token": "nope"}, None)],
)
async def test_a_wrong_or_missing_token_is_403_and_nothing_is_stored(hub, headers, token):
    response = await send(hub, call("newCall"), token, **headers)
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "signature_invalid"
    assert await events(hub) == []


async def test_the_token_may_come_as_x_hub_token(hub):
    assert (await send(hub, call("newCall"), None, **{"X-Hub-Token": TOKEN})).status == 200


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"event": "ring", "call_id": "x", "from": "0901234567"}, "event: Input should be"),
        ({"event": "newCall", "from": "0901234567"}, "call_id: Field required"),
        ({"event": "newCall", "call_id": "x"}, "from: the customer's number is missing"),
        ({"event": "newCall", "call_id": "x", "from": "12"}, "'12' is not a possible phone number"),
        (
            {"event": "answer", "call_id": "x", "from": "0901234567"},
            "extension: an answer must say",
        ),
    ],
)
async def test_bad_events_get_a_clear_422(hub, body, says):
    response = await send(hub, body)
    assert response.status == 422
    assert says in (await response.json())["error"]["message"]
    assert await events(hub) == []


async def test_unknown_cti_account_is_404(hub):
    response = await hub.client.post("/webhooks/cti/other", json=call("newCall"))
    assert response.status == 404 and (await response.json())["error"]["code"] == "unknown_account"


@settings(max_examples=200, deadline=None)
@given(
    event=st.sampled_from(["newCall", "answer", "hangup"]),
    caller=st.text(max_size=20),
    extension=st.one_of(st.none(), st.text(max_size=6)),
    duration=st.one_of(st.none(), st.integers(0, 10_000)),
    reason=st.one_of(st.none(), st.text(max_size=10)),
)
def test_normalise_never_fails_except_with_invalid_request(
    event, caller, extension, duration, reason
):
    payload = CtiEvent.model_validate(
        {
            "event": event,
            "call_id": "c",
            "from": caller,
            "extension": extension,
            "duration": duration,
            "reason": reason,
        }
    )
    try:
        inbound = normalise(
            payload,
            account_id="cc",
            default_region="VN",
            now=datetime(2026, 1, 5, tzinfo=UTC),
            zone=ZoneInfo("Asia/Ho_Chi_Minh"),
        )
    except InvalidRequest:
        return
    assert inbound.call is not None and inbound.external_id == "c"


async def test_a_call_that_reaches_the_customer_clears_the_call_back(hub):
    await send(hub, call("newCall"))
    await send(hub, call("hangup", reason="no-answer"))
    [missed] = await events(hub)
    conversation = await hub.runtime.store.get_conversation(missed.conversation_id)
    assert conversation.labels == ["call-back"]
    back = {
        "event": "newCall",
        "call_id": "cc-back",
        "direction": "outbound",
        "from": "101",
        "to": "0901234567",
        "extension": "101",
    }
    await send(hub, back)
    conversation = await hub.runtime.store.get_conversation(missed.conversation_id)
    assert conversation.labels == ["call-back"]  # ringing is not talking
    await send(hub, {**back, "event": "answer"})
    conversation = await hub.runtime.store.get_conversation(missed.conversation_id)
    assert conversation.labels == [] and conversation.status == "open"
