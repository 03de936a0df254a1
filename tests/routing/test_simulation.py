"""The acceptance simulation: 1,000 conversations over 10 agents of capacity 5,
arriving in bursts while agents come and go and finish conversations."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from datetime import timedelta

from hub.app import open_runtime
from hub.clock import FrozenClock
from hub.events import Event
from hub.inbox.inbound import InboundMessage, InboundSender
from hub.inbox.model import OPEN_STATUSES, Agent, Identity
from hub.inbox.store import ConversationFilter

AGENTS = 10
CAPACITY = 5
TOTAL = 1000
BURST = 50
VIP_SKILLED = 4  # agents 0..3 have the "vip" skill the vip account requires


def inbound(n: int) -> InboundMessage:
    account = "vip" if n % 5 == 0 else "shop"
    return InboundMessage(
        account_id=account,
        channel="api",
        external_id=f"m{n}",
        sender=InboundSender(identities=[Identity(channel=f"api:{account}", address=f"c{n}")]),
        text="xin chào" if n % 2 else "hello",
    )


def api_account(account_id: str) -> dict[str, str]:
    return {
        "id": account_id,
        "channel": "api",
        "secret_env": "HUB_TEST_API_SECRET",
        "callback_url": "http://127.0.0.1:9/unused",
    }


async def test_a_thousand_conversations_in_bursts_with_presence_changes(make_settings):
    settings = make_settings(
        accounts=[api_account("shop"), api_account("vip")],
        routing={"accounts": {"vip": {"skills": ["vip"]}}, "queue_batch": 200},
    )
    rng = random.Random(6)
    clock = FrozenClock()
    async with open_runtime(settings, clock=clock) as runtime:
        store = runtime.store
        agents = []
        for n in range(AGENTS):
            agent = Agent(
                name=f"agent{n}",
                email=f"a{n}@x.vn",
                capacity=CAPACITY,
                presence="online",
                skills=["vip"] if n < VIP_SKILLED else [],
                created_at=clock.now(),
            )
            await store.add_agent(agent)
            agents.append(agent)
        skilled = {a.id for a in agents[:VIP_SKILLED]}
        assignments: Counter[str] = Counter()
        assigned_to: dict[str, str] = {}

        async def on_assigned(event: Event) -> None:
            conversation = event.data["conversation"]
            if conversation["assignee_id"] is not None:
                assignments[conversation["id"]] += 1
                assigned_to[conversation["id"]] = conversation["assignee_id"]

        runtime.bus.subscribe("conversation.assigned", on_assigned)

        async def check_capacity() -> None:
            for agent in await store.list_agents():
                page = await store.list_conversations(
                    ConversationFilter(statuses=OPEN_STATUSES, assignee_id=agent.id), limit=100
                )
                assert len(page.items) <= agent.capacity, f"{agent.name} over capacity"
                assert agent.open_count == len(page.items)

        async def set_presence(agent: Agent, presence: str) -> None:
            await store.update_agent(agent.id, presence=presence)
            await runtime.bus.publish(
                Event("agent.presence", {"agent_id": agent.id, "presence": presence})
            )

        # Round-robin: a first burst of plain conversations, everyone online and
        # nobody near capacity, is spread evenly.
        first = [n for n in range(TOTAL) if n % 5][:30]
        await asyncio.gather(*(runtime.inbox.ingest(inbound(n)) for n in first))
        per_agent = Counter(assigned_to.values())
        assert len(assigned_to) == 30
        assert max(per_agent.values()) - min(per_agent[a.id] for a in agents) <= 1
        await check_capacity()

        rest = [n for n in range(TOTAL) if n not in set(first)]
        for burst, start in enumerate(range(0, len(rest), BURST)):
            clock.advance(timedelta(seconds=1))
            await asyncio.gather(
                *(runtime.inbox.ingest(inbound(n)) for n in rest[start : start + BURST])
            )
            await check_capacity()
            # Someone leaves, someone comes back; about half the work gets done.
            await set_presence(agents[burst % AGENTS], rng.choice(["away", "offline"]))
            await set_presence(agents[(burst + 5) % AGENTS], "online")
            open_now = await store.list_conversations(
                ConversationFilter(statuses=("open",)), limit=TOTAL
            )
            done = [c for c in open_now.items if c.assignee_id and rng.random() < 0.5]
            await asyncio.gather(*(runtime.inbox.resolve(c.id) for c in done))
            await check_capacity()

        # Everyone back; work until the queue is empty.
        for agent in agents:
            await set_presence(agent, "online")
        for _ in range(TOTAL):
            open_now = await store.list_conversations(
                ConversationFilter(statuses=("open",)), limit=TOTAL
            )
            if not open_now.items:
                break
            await asyncio.gather(
                *(runtime.inbox.resolve(c.id) for c in open_now.items if c.assignee_id)
            )
            await check_capacity()
        assert not await store.waiting_conversations(10)

        assert len(assignments) == TOTAL, "every conversation eventually assigned"
        assert set(assignments.values()) == {1}, "nothing assigned twice"
        for n in range(0, TOTAL, 5):  # the vip account's conversations
            outcome = await runtime.inbox.ingest(inbound(n))  # a duplicate: no-op
            assert assigned_to[outcome.conversation_id] in skilled
