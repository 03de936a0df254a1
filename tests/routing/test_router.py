"""The router's strategies, the waiting queue and the seams other parts call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.events import Event
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Agent, Identity

TEAMS = [{"id": "support", "accounts": ["shop"]}, {"id": "sales", "accounts": []}]
# A Monday, 09:00 in Ho Chi Minh City.
MONDAY_9AM = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


def inbound(n: int, text: str = "hello", customer: str | None = None) -> InboundMessage:
    return InboundMessage(
        account_id="shop",
        channel="api",
        external_id=f"m{n}",
        sender=InboundSender(
            identities=[Identity(channel="api:shop", address=customer or f"c{n}")]
        ),
        text=text,
    )


@pytest.fixture
def routed(make_settings):
    """A runtime factory with [routing] overrides and two teams."""

    def build(**routing: Any):
        return open_runtime(
            make_settings(teams=TEAMS, routing=routing), clock=FrozenClock(MONDAY_9AM)
        )

    return build


async def add_agent(runtime, email, **fields) -> Agent:
    fields = {"presence": "online", "team_ids": ["support"], **fields}
    agent = Agent(name=email, email=email, created_at=runtime.clock.now(), **fields)
    await runtime.store.add_agent(agent)
    return agent


async def new_conversation(runtime, n, **kwargs) -> str:
    runtime.clock.advance(timedelta(seconds=1))
    return (await runtime.inbox.ingest(inbound(n, **kwargs))).conversation_id


async def assignee(runtime, conversation_id):
    return (await runtime.store.get_conversation(conversation_id)).assignee_id


async def test_least_loaded_picks_the_agent_with_the_most_room(routed):
    async with routed(strategy="least_loaded") as runtime:
        busy = await add_agent(runtime, "busy@x.vn", capacity=4)
        free = await add_agent(runtime, "free@x.vn", capacity=4, presence="offline")
        first = [await new_conversation(runtime, n) for n in range(2)]
        assert {await assignee(runtime, c) for c in first} == {busy.id}
        await runtime.store.update_agent(free.id, presence="online")
        owners = [await assignee(runtime, await new_conversation(runtime, n)) for n in (5, 6, 7)]
        # free has 0/4 and busy 2/4: free twice, then they alternate.
        assert owners[:2] == [free.id, free.id]


async def test_nobody_gets_past_capacity_and_the_queue_drains_oldest_first(routed):
    async with routed() as runtime:
        agent = await add_agent(runtime, "a@x.vn", capacity=1)
        held = await new_conversation(runtime, 0)
        waiting = [await new_conversation(runtime, n) for n in (1, 2)]
        assert await assignee(runtime, held) == agent.id
        assert [await assignee(runtime, c) for c in waiting] == [None, None]
        await runtime.inbox.resolve(held)
        assert [await assignee(runtime, c) for c in waiting] == [agent.id, None]
        await runtime.inbox.resolve(waiting[0])
        assert await assignee(runtime, waiting[1]) == agent.id


async def test_a_waiting_conversation_goes_to_an_agent_the_moment_they_come_online(routed):
    async with routed() as runtime:
        conversation = await new_conversation(runtime, 1)
        agent = await add_agent(runtime, "late@x.vn", presence="offline")
        assert await assignee(runtime, conversation) is None
        await runtime.store.update_agent(agent.id, presence="online")
        await runtime.bus.publish(
            Event("agent.presence", {"agent_id": agent.id, "presence": "online"})
        )
        assert await assignee(runtime, conversation) == agent.id


async def test_required_skills_are_respected(make_settings):
    settings = make_settings(teams=TEAMS, routing={"accounts": {"shop": {"skills": ["orders"]}}})
    async with open_runtime(settings, clock=FrozenClock(MONDAY_9AM)) as runtime:
        await add_agent(runtime, "plain@x.vn")
        skilled = await add_agent(runtime, "orders@x.vn", skills=["orders", "refunds"])
        owners = {await assignee(runtime, await new_conversation(runtime, n)) for n in range(3)}
        assert owners == {skilled.id}


async def test_a_vietnamese_message_goes_to_a_vietnamese_speaker(routed):
    async with routed() as runtime:
        await add_agent(runtime, "en@x.vn", languages=["en"])
        vi = await add_agent(runtime, "vi@x.vn", languages=["vi", "en"])
        for n in range(3):
            conversation = await new_conversation(runtime, n, text="Đơn hàng đâu?")
            assert await assignee(runtime, conversation) == vi.id


async def test_required_language_waits_for_a_speaker(routed):
    async with routed(language="require") as runtime:
        await add_agent(runtime, "en@x.vn", languages=["en"])
        conversation = await new_conversation(runtime, 1, text="Cảm ơn nhiều")
        assert await assignee(runtime, conversation) is None
        vi = await add_agent(runtime, "vi@x.vn", languages=["vi"])
        await runtime.bus.publish(Event("agent.added", {"agent_id": vi.id}))
        assert await assignee(runtime, conversation) == vi.id


async def test_sticky_routing_returns_the_customer_to_their_last_agent(routed):
    async with routed(sticky_days=30) as runtime:
        a = await add_agent(runtime, "a@x.vn")
        b = await add_agent(runtime, "b@x.vn")
        first = await new_conversation(runtime, 1, customer="loyal")
        assert await assignee(runtime, first) == a.id
        await runtime.inbox.resolve(first)
        runtime.clock.advance(timedelta(days=5))
        other = await new_conversation(runtime, 2)
        assert await assignee(runtime, other) == b.id
        runtime.clock.advance(timedelta(days=4))  # past the 72 h reopen window
        again = await new_conversation(runtime, 3, customer="loyal")
        assert again != first
        assert await assignee(runtime, again) == a.id  # not b, whose turn it was


async def test_sticky_routing_prefers_the_contacts_owner(routed):
    async with routed(sticky_days=30) as runtime:
        await add_agent(runtime, "a@x.vn")
        owner = await add_agent(runtime, "owner@x.vn")
        conversation = await new_conversation(runtime, 1, customer="vip")
        contact_id = (await runtime.store.get_conversation(conversation)).contact_id
        await runtime.store.update_contact(contact_id, owner_id=owner.id)
        await runtime.inbox.resolve(conversation)
        runtime.clock.advance(timedelta(days=4))
        again = await new_conversation(runtime, 2, customer="vip")
        assert await assignee(runtime, again) == owner.id


async def test_a_full_team_overflows_to_its_overflow_team(routed):
    async with routed(teams={"support": {"overflow": "sales"}}) as runtime:
        support = await add_agent(runtime, "s@x.vn", capacity=1)
        sales = await add_agent(runtime, "sales@x.vn", team_ids=["sales"])
        owners = [await assignee(runtime, await new_conversation(runtime, n)) for n in range(3)]
        assert owners == [support.id, sales.id, sales.id]


async def test_outside_business_hours_a_team_waits_and_opening_time_drains_it(routed):
    hours = {"timezone": "Asia/Ho_Chi_Minh", "mon": ["08:00-17:00"], "holidays": ["2026-01-06"]}
    async with routed(teams={"support": {"hours": hours}}) as runtime:
        agent = await add_agent(runtime, "a@x.vn")
        runtime.clock.set(MONDAY_9AM - timedelta(hours=2))  # 07:00 local: closed
        early = await new_conversation(runtime, 1)
        assert await assignee(runtime, early) is None
        runtime.clock.set(MONDAY_9AM)
        assert await runtime.router.drain() == 1
        assert await assignee(runtime, early) == agent.id
        runtime.clock.set(MONDAY_9AM + timedelta(days=1))  # Tuesday: a holiday
        assert await assignee(runtime, await new_conversation(runtime, 2)) is None


async def test_rules_can_send_a_conversation_to_a_team_or_an_agent(routed):
    async with routed() as runtime:
        sales = await add_agent(runtime, "sales@x.vn", team_ids=["sales"], presence="offline")
        conversation = await new_conversation(runtime, 1)
        assert await runtime.router.assign_to_agent(conversation, sales.id)
        assert await assignee(runtime, conversation) == sales.id
        assert not await runtime.router.assign_to_agent(conversation, sales.id)
        await runtime.store.update_agent(sales.id, presence="online")
        moved = await new_conversation(runtime, 2)
        assert await runtime.router.assign_to_team(moved, "sales") == sales.id
        assert (await runtime.store.get_conversation(moved)).team_id == "sales"


async def test_deactivating_an_agent_hands_their_conversations_to_others(routed):
    async with routed() as runtime:
        leaving = await add_agent(runtime, "leaving@x.vn")
        conversations = [await new_conversation(runtime, n) for n in range(3)]
        stays = await add_agent(runtime, "stays@x.vn")
        seen: list[Event] = []

        async def record(event: Event) -> None:
            seen.append(event)

        runtime.bus.subscribe("conversation.assigned", record)
        runtime.bus.subscribe("agent.deactivated", record)
        handed = await runtime.router.deactivate_agent(leaving.id)
        assert seen[0].type == "agent.deactivated"
        taken_away = [
            e.data["conversation"]["id"]
            for e in seen
            if e.data.get("previous_assignee_id") == leaving.id
        ]
        assert sorted(taken_away) == sorted(conversations)
        assert sorted(handed) == sorted(conversations)
        assert [await assignee(runtime, c) for c in conversations] == [stays.id] * 3
        gone = await runtime.store.get_agent(leaving.id)
        assert gone is not None and not gone.active and gone.open_count == 0
        # The history stays: the messages are still there.
        assert await runtime.store.list_messages(conversations[0])
