"""First-response SLA: a deadline per priority, a deferred check cancelled by
the agent's reply, and the configured escalation when it passes unanswered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.events import Event
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Agent, Identity
from hub.routing.sla import job_id

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def inbound(n: int) -> InboundMessage:
    return InboundMessage(
        account_id="shop",
        channel="api",
        external_id=f"m{n}",
        sender=InboundSender(identities=[Identity(channel="api:shop", address=f"c{n}")]),
        text="hello",
    )


@pytest.fixture
async def runtime(make_settings):
    settings = make_settings(
        teams=[{"id": "support", "accounts": ["shop"]}],
        routing={
            "first_response_minutes": {"normal": 30},
            "escalation": ["reassign", "raise_priority", "notify_lead"],
            "teams": {"support": {"lead": "lead@x.vn"}},
        },
    )
    async with open_runtime(settings, clock=FrozenClock(START)) as runtime:
        yield runtime


async def add_agent(runtime, email, presence="online") -> Agent:
    agent = Agent(
        name=email,
        email=email,
        presence=presence,
        team_ids=["support"],
        created_at=runtime.clock.now(),
    )
    await runtime.store.add_agent(agent)
    return agent


async def queued(runtime, conversation_id: str, due: datetime) -> float | None:
    return await runtime.redis.zscore(runtime.sla.queue_name, job_id(conversation_id, due))


async def test_a_new_conversation_gets_a_deadline_and_a_deferred_check(runtime):
    await add_agent(runtime, "a@x.vn")
    outcome = await runtime.inbox.ingest(inbound(1))
    conversation = await runtime.store.get_conversation(outcome.conversation_id)
    due = START + timedelta(minutes=30)
    assert conversation.first_response_due_at == due
    assert await queued(runtime, conversation.id, due) is not None
    assert await runtime.sla.check(conversation.id) == "not_due"


async def test_an_agent_reply_cancels_the_check(runtime):
    agent = await add_agent(runtime, "a@x.vn")
    outcome = await runtime.inbox.ingest(inbound(1))
    await runtime.inbox.reply(outcome.conversation_id, agent, "Chào anh, em xem ngay ạ")
    due = START + timedelta(minutes=30)
    assert await queued(runtime, outcome.conversation_id, due) is None
    runtime.clock.advance(timedelta(hours=1))
    assert await runtime.sla.check(outcome.conversation_id) == "answered"


async def test_an_unanswered_conversation_is_escalated_once(runtime):
    slow = await add_agent(runtime, "slow@x.vn")
    lead = await add_agent(runtime, "lead@x.vn", presence="offline")
    outcome = await runtime.inbox.ingest(inbound(1))
    assert (await runtime.store.get_conversation(outcome.conversation_id)).assignee_id == slow.id
    other = await add_agent(runtime, "other@x.vn")
    breaches: list[Event] = []

    async def on_breach(event: Event) -> None:
        breaches.append(event)

    runtime.bus.subscribe("conversation.sla_breached", on_breach)
    runtime.clock.advance(timedelta(minutes=31))
    assert await runtime.sla.check(outcome.conversation_id) == "escalated"
    conversation = await runtime.store.get_conversation(outcome.conversation_id)
    assert conversation.assignee_id == other.id
    assert conversation.priority == "high"
    assert "sla-breached" in conversation.labels
    [breach] = breaches
    assert breach.data["lead_id"] == lead.id
    assert breach.data["previous_assignee_id"] == slow.id
    assert breach.data["reassigned_to"] == other.id
    assert await runtime.sla.check(outcome.conversation_id) == "escalated_before"
    assert len(breaches) == 1
    loads = {a.email: a.open_count for a in await runtime.store.list_agents()}
    assert loads == {"slow@x.vn": 0, "lead@x.vn": 0, "other@x.vn": 1}


async def test_a_priority_without_an_sla_gets_no_deadline(runtime):
    outcome = await runtime.inbox.ingest(inbound(1))
    await runtime.store.update_conversation(
        outcome.conversation_id, priority="low", first_response_due_at=None
    )
    assert await runtime.sla.start(outcome.conversation_id) is None
