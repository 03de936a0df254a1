"""The inbox side of calls: one timeline message per call, whatever arrives
together, twice, or out of order; call-back flags; consent keywords."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.events import Event
from hub.inbox.calls import AgentRef, CallUpdate
from hub.inbox.inbound import ConsentChange, InboundMessage, InboundSender
from hub.inbox.model import Agent, Identity
from hub.inbox.store import ConversationFilter

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
CUSTOMER = Identity(channel="phone", address="+84901234567")


@pytest.fixture
async def hub(make_settings):
    async with open_runtime(make_settings(accounts=[]), clock=FrozenClock(T0)) as runtime:
        events: list[Event] = []

        async def record(event: Event) -> None:
            events.append(event)

        runtime.bus.subscribe("*", record)
        runtime.events_ = events
        yield runtime


def call(seconds: int = 0, call_id: str = "c1", **facts) -> InboundMessage:
    return InboundMessage(
        account_id="pbx",
        channel="cti",
        external_id=call_id,
        sender=InboundSender(identities=[CUSTOMER]),
        direction="event",
        call=CallUpdate(call_id=call_id, at=T0 + timedelta(seconds=seconds), **facts),
    )


async def timeline(hub):
    page = await hub.store.list_conversations(ConversationFilter(), limit=10)
    return [m for c in page.items for m in await hub.store.list_messages(c.id)]


@pytest.mark.parametrize("seed", range(6))
async def test_updates_arriving_together_in_any_order_all_land_in_one_message(hub, seed):
    lan = Agent(name="Lan", email="lan@shop.vn", extension="101", created_at=T0)
    await hub.store.add_agent(lan)
    updates = [
        call(0),
        call(5, answered_by=AgentRef(extension="101")),
        call(60, transferred_to=AgentRef(extension="102")),
        call(100, ended=True, end_reason="completed", duration_seconds=95),
    ] * 3
    random.Random(seed).shuffle(updates)
    outcomes = await asyncio.gather(*(hub.inbox.ingest(u) for u in updates))
    [message] = await timeline(hub)
    assert {o.message_id for o in outcomes} == {message.id}
    record = message.meta["call"]
    assert record["status"] == "completed" and record["duration_seconds"] == 95
    assert record["answered_by"]["agent_id"] == lan.id
    assert [t["extension"] for t in record["transfers"]] == ["102"]
    assert message.text == (
        "Call from +84901234567 answered by Lan (ext 101), transferred to ext 102 · 1 min 35 s"
    )
    # Exactly one "created", and an "updated" only for updates that changed something.
    created = [e for e in hub.events_ if e.type == "message.created"]
    assert len(created) == 1
    assert sum(not o.duplicate for o in outcomes) == 1 + sum(
        e.type == "message.updated" for e in hub.events_
    )


async def test_a_missed_call_on_a_snoozed_conversation_reopens_it_once(hub):
    await hub.inbox.ingest(call(0))
    [ringing] = await timeline(hub)
    await hub.store.update_conversation(ringing.conversation_id, status="snoozed")
    for _ in range(3):
        await hub.inbox.ingest(call(20, missed=True, miss_reason="no answer"))
    conversation = await hub.store.get_conversation(ringing.conversation_id)
    assert conversation.status == "open" and conversation.labels == ["call-back"]
    assert conversation.priority == "high"
    assert [e.type for e in hub.events_].count("conversation.callback_requested") == 1


async def test_consent_keyword_is_recorded_with_its_message_in_the_same_ingest(hub):
    stop = InboundMessage(
        account_id="hotline",
        channel="twilio",
        external_id="SM1",
        sender=InboundSender(identities=[CUSTOMER]),
        text="STOP",
        consent=ConsentChange(key="sms", status="opted_out", keyword="STOP"),
    )
    outcome = await hub.inbox.ingest(stop)
    contact = await hub.store.get_contact(outcome.contact_id)
    assert contact.consent["sms"].how == f"message:{outcome.message_id}"
    assert contact.consent["sms"].at == T0
    again = await hub.inbox.ingest(stop)
    assert again.duplicate
    assert [e.type for e in hub.events_].count("contact.updated") == 1
