"""Routing benchmark: assignment decisions per second, against the bare store
compare-and-set they are built on, measured the same way in the same run.

    python bench/route.py                        # SQLite in a temp folder
    python bench/route.py --conversations 5000 --agents 50

Three phases over the same kind of data (fresh unassigned conversations, each
with one inbound message, and online agents):

- `store_cas`: the baseline. `Store.assign_within_capacity` alone, agents taken
  in turn with no decision: the atomic step every assignment needs.
- `route`: `Router.route(conversation_id)` one conversation at a time, as a new
  conversation event does: read it, read the online agents, detect the
  message's language, rank the candidates (round-robin, skills, language),
  claim with the same compare-and-set, publish `conversation.assigned`.
- `drain`: `Router.drain()` over a waiting queue of the same size, as when
  agents come online: the agents are read once per pass.

It prints one row per phase and, last, `assignments_per_s=<route rate>`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from hub.clock import SystemClock
from hub.events import EventBus
from hub.inbox.model import Agent, Contact, Conversation, Message, Sender
from hub.inbox.service import InboxService
from hub.inbox.sqlite import SqliteStore
from hub.routing.router import Router
from hub.settings import RoutingSettings

TEXTS = ["Xin chào, đơn hàng của em đâu rồi ạ?", "Hello, where is my order?", "ok"]


class NoDeliveries:
    async def enqueue_delivery(self, message_id: str) -> bool:
        return True


async def seed(store: SqliteStore, count: int, tag: str) -> list[str]:
    """`count` unassigned conversations, each with one inbound message."""
    now = SystemClock().now()
    ids = []
    async with store.transaction():
        for n in range(count):
            contact = Contact(name=f"{tag}{n}", created_at=now, updated_at=now)
            await store.add_contact(contact)
            conversation = Conversation(
                contact_id=contact.id,
                account_id="bench",
                channel="api",
                contact_address=f"{tag}{n}",
                last_activity_at=now,
                created_at=now + timedelta(milliseconds=n),
                updated_at=now,
            )
            await store.add_conversation(conversation)
            await store.add_message(
                Message(
                    conversation_id=conversation.id,
                    account_id="bench",
                    channel="api",
                    direction="inbound",
                    sender=Sender(kind="contact", id=contact.id),
                    text=TEXTS[n % len(TEXTS)],
                    created_at=now,
                    updated_at=now,
                )
            )
            ids.append(conversation.id)
    return ids


async def add_agents(store: SqliteStore, count: int, tag: str) -> list[Agent]:
    agents = [
        Agent(
            name=f"{tag}{n}",
            email=f"{tag}{n}@bench.vn",
            presence="online",
            capacity=10**6,
            languages=["vi", "en"] if n % 2 else ["en"],
            created_at=SystemClock().now(),
        )
        for n in range(count)
    ]
    for agent in agents:
        await store.add_agent(agent)
    return agents


async def deactivate(store: SqliteStore, agents: list[Agent]) -> None:
    for agent in agents:
        await store.update_agent(agent.id, active=False, presence="offline")


async def run(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    store = SqliteStore(folder / "hub.db")
    await store.open()
    clock = SystemClock()
    bus = EventBus(None, channel="bench")
    inbox = InboxService(store, bus, clock, NoDeliveries())
    router = Router(store, inbox, clock, RoutingSettings(queue_batch=args.conversations))
    rates: dict[str, float] = {}
    try:
        # Baseline: the compare-and-set alone.
        ids = await seed(store, args.conversations, "cas")
        agents = await add_agents(store, args.agents, "cas")
        started = time.perf_counter()
        for n, conversation_id in enumerate(ids):
            assert await store.assign_within_capacity(
                conversation_id, agents[n % len(agents)].id, clock.now()
            )
        rates["store_cas"] = len(ids) / (time.perf_counter() - started)
        await deactivate(store, agents)

        # One decision per new conversation.
        ids = await seed(store, args.conversations, "route")
        agents = await add_agents(store, args.agents, "route")
        started = time.perf_counter()
        for conversation_id in ids:
            assert await router.route(conversation_id) is not None
        rates["route"] = len(ids) / (time.perf_counter() - started)
        await deactivate(store, agents)

        # The waiting queue drained in one go.
        ids = await seed(store, args.conversations, "drain")
        agents = await add_agents(store, args.agents, "drain")
        started = time.perf_counter()
        assigned = await router.drain()
        rates["drain"] = assigned / (time.perf_counter() - started)
        assert assigned == len(ids), (assigned, len(ids))
    finally:
        await store.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--agents", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-route-") as folder:
        rates = asyncio.run(run(args, Path(folder)))
    base = rates["store_cas"]
    print(f"{'phase':<10} {'per_s':>10} {'vs store_cas':>13}")
    for phase, rate in rates.items():
        print(f"{phase:<10} {rate:>10.0f} {rate / base:>13.2f}")
    print(f"assignments_per_s={rates['route']:.1f}")


if __name__ == "__main__":
    main()
