"""What the messaging-app channel tests share: recorded payloads, counts of what
is stored, an agent with an API token, and waiting for a delivery status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hub.inbox.model import Agent, ApiToken
from hub.inbox.store import ConversationFilter
from hub.web.auth import hash_token, new_token
from tests.conftest import eventually

DATA = Path(__file__).resolve().parent.parent / "data"


def recorded(provider: str, name: str) -> bytes:
    """A recorded payload, byte for byte (signatures are over the raw bytes)."""
    return (DATA / provider / name).read_bytes()


def recorded_json(provider: str, name: str) -> Any:
    return json.loads(recorded(provider, name))


def with_ids(provider: str, name: str, *ids: str) -> bytes:
    """A recorded receipt whose placeholder message id is replaced by real ones."""
    text = recorded(provider, name).decode()
    return text.replace('"REPLACED_BY_TEST"', ", ".join(json.dumps(i) for i in ids)).encode()


async def stored_counts(hub: Any) -> tuple[int, int, int]:
    """(conversations, messages, contacts) stored by the hub."""
    store = hub.runtime.store
    page = await store.list_conversations(ConversationFilter(), limit=100)
    messages = sum([len(await store.list_messages(c.id)) for c in page.items])
    return len(page.items), messages, len({c.contact_id for c in page.items})


async def only_conversation(hub: Any) -> Any:
    page = await hub.runtime.store.list_conversations(ConversationFilter(), limit=10)
    assert len(page.items) == 1, page.items
    return page.items[0]


async def add_agent(hub: Any, email: str = "lan@shop.vn") -> tuple[Agent, str]:
    store = hub.runtime.store
    agent = Agent(name="Lan", email=email, presence="online", created_at=hub.runtime.clock.now())
    await store.add_agent(agent)
    token = new_token()
    await store.add_token(
        ApiToken(agent_id=agent.id, token_hash=hash_token(token), created_at=agent.created_at)
    )
    return agent, token


async def wait_status(hub: Any, message_id: str, status: str) -> Any:
    async def reached() -> bool:
        message = await hub.runtime.store.get_message(message_id)
        return message is not None and message.status == status

    await eventually(reached)
    return await hub.runtime.store.get_message(message_id)
