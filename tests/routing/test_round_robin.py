"""Round-robin routing: online agents in turn, nobody twice, no double assignment."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import Agent, Identity


def inbound(n: int) -> InboundMessage:
    return InboundMessage(
        account_id="shop",
        channel="api",
        external_id=f"m{n}",
        sender=InboundSender(identities=[Identity(channel="api:shop", address=f"c{n}")]),
        text="hi",
    )


async def add_agent(runtime, email, presence="online", role="agent"):
    agent = Agent(
        name=email, email=email, presence=presence, role=role, created_at=runtime.clock.now()
    )
    await runtime.store.add_agent(agent)
    return agent


@pytest.fixture
async def runtime(make_settings):
    clock = FrozenClock()
    async with open_runtime(make_settings(), clock=clock) as runtime:
        yield runtime


async def assignee(runtime, conversation_id):
    return (await runtime.store.get_conversation(conversation_id)).assignee_id


async def test_new_conversations_go_round_the_online_agents(runtime):
    a = await add_agent(runtime, "a@x.vn")
    b = await add_agent(runtime, "b@x.vn")
    await add_agent(runtime, "off@x.vn", presence="offline")
    await add_agent(runtime, "away@x.vn", presence="away")
    await add_agent(runtime, "m@x.vn", role="marketer")
    owners = []
    for n in range(4):
        runtime.clock.advance(timedelta(seconds=1))
        outcome = await runtime.inbox.ingest(inbound(n))
        owners.append(await assignee(runtime, outcome.conversation_id))
    assert owners == [a.id, b.id, a.id, b.id]


async def test_with_nobody_online_the_conversation_waits_unassigned(runtime):
    await add_agent(runtime, "off@x.vn", presence="offline")
    outcome = await runtime.inbox.ingest(inbound(1))
    assert await assignee(runtime, outcome.conversation_id) is None


async def test_a_later_message_in_the_same_conversation_does_not_reassign(runtime):
    a = await add_agent(runtime, "a@x.vn")
    first = await runtime.inbox.ingest(inbound(1))
    await add_agent(runtime, "b@x.vn")
    again = await runtime.inbox.ingest(inbound(1).model_copy(update={"external_id": "m1-bis"}))
    assert again.conversation_id == first.conversation_id
    assert await assignee(runtime, first.conversation_id) == a.id


async def test_two_routers_racing_assign_a_conversation_once(make_settings):
    """Two hub runtimes (separate store connections, as two processes have) route the
    same unassigned conversations at the same moment: each is assigned exactly once."""
    settings = make_settings()
    async with open_runtime(settings) as one, open_runtime(settings) as two:
        await add_agent(one, "a@x.vn", presence="offline")
        await add_agent(one, "b@x.vn", presence="offline")
        conversations = [(await one.inbox.ingest(inbound(n))).conversation_id for n in range(20)]
        for agent in await one.store.list_agents():
            await one.store.update_agent(agent.id, presence="online")
        results = await asyncio.gather(
            *(router.route(c) for c in conversations for router in (one.router, two.router))
        )
        assert all(r is not None for r in results)
        # Each assignment counted once in its agent's load: nothing assigned twice.
        assert sum(a.open_count for a in await one.store.list_agents()) == len(conversations)
        for conversation_id in conversations:
            assert await assignee(one, conversation_id) is not None
